//! The run summary: built from a scenario's outcome plus the sampled timeline, printed as one
//! screen of text or as JSON, and written to `--report DIR` as `summary.json`,
//! `timeline.json`, `latency_over_time.json` and `chart.svg` (drawn by `chart.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::chart;
use crate::cli::{Config, Scenario};
use crate::sampler::{mean_cpu, Sample};
use crate::scenario::ask::AskFigures;
use crate::scenario::upload::UploadFigures;
use crate::scenario::{IdleFigures, Outcome};
use crate::stats::{rate, ErrorCounts, LatencySummary, Spread, TimePoint, Timed};

/// Everything a run reports.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Tool name and version, so saved reports say what produced them.
    pub generator_version: String,
    /// The scenario.
    pub scenario: Scenario,
    /// The target URL.
    pub url: String,
    /// Sessions asked for.
    pub sessions: usize,
    /// `--duration`, seconds.
    pub duration_s: Option<f64>,
    /// `--requests`.
    pub requests: Option<u64>,
    /// `--ramp-up`, seconds.
    pub ramp_up_s: f64,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    /// Session set-up.
    pub setup: SetupSummary,
    /// Calls (call scenario).
    pub calls: Option<CallSummary>,
    /// Idle streams (idle scenario).
    pub idle: Option<IdleFigures>,
    /// Streamed-answer timing (ask and upload).
    pub ask: Option<AskFigures>,
    /// Uploads (upload only).
    pub upload: Option<UploadFigures>,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Requests re-sent once because a reused connection had been closed by the server.
    pub resent_after_close: u64,
    /// Notifications received before responses, by method.
    pub notifications: BTreeMap<String, u64>,
    /// Server-to-client requests seen on POST streams (not answered).
    pub server_requests: u64,
    /// The server process (with `--pid`).
    pub server: Option<ProcessSummary>,
    /// The generator itself (to show it was not the bottleneck).
    pub generator: ProcessSummary,
    /// The sampled timeline (written to timeline.json, not part of summary.json).
    #[serde(skip)]
    pub timeline: Vec<Sample>,
    /// Latency percentiles per time bucket, one series per measured latency (for the chart).
    #[serde(skip)]
    pub latency_series: Vec<LatencySeries>,
}

/// One latency's percentiles over the run.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySeries {
    /// What was measured.
    pub name: String,
    /// Bucket width, seconds.
    pub bucket_s: f64,
    /// The buckets, in time order.
    pub points: Vec<TimePoint>,
}

/// Bucket width of the latency charts: at least 0.5 s, at most about 60 buckets per run.
fn bucket_for(elapsed_s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64((elapsed_s / 60.0).max(0.5))
}

fn series(name: &str, timed: &Timed, bucket: std::time::Duration) -> Option<LatencySeries> {
    (!timed.is_empty()).then(|| LatencySeries {
        name: name.to_owned(),
        bucket_s: bucket.as_secs_f64(),
        points: timed.over_time(bucket),
    })
}

/// Session set-up figures.
#[derive(Debug, Serialize)]
pub struct SetupSummary {
    /// Sessions set up.
    pub opened: u64,
    /// Sessions that failed to set up.
    pub failed: u64,
    /// From the start until every session was set up or had failed, seconds.
    pub seconds_to_ready: f64,
    /// `initialize` latency.
    pub initialize_ms: Option<LatencySummary>,
}

/// Tool-call figures.
#[derive(Debug, Serialize)]
pub struct CallSummary {
    /// Successful calls.
    pub ok: u64,
    /// Calls whose result said `isError: true` (included in `ok`).
    pub tool_errors: u64,
    /// Successful calls per second over the calling window.
    pub per_sec: f64,
    /// The measured calling window: from "all sessions ready" plus the warm-up to the last
    /// call's end, seconds.
    pub seconds: f64,
    /// Calls made during `--warm-up` and left out of every figure.
    pub warm_up_calls: u64,
    /// Latency of successful calls.
    pub latency_ms: Option<LatencySummary>,
}

/// Memory and CPU of one process.
#[derive(Debug, Serialize)]
pub struct ProcessSummary {
    /// The process id (absent for the generator).
    pub pid: Option<u32>,
    /// RSS before any session, KiB.
    pub rss_before_kib: Option<u64>,
    /// RSS once all sessions were set up, KiB.
    pub rss_open_kib: Option<u64>,
    /// RSS at the end, KiB.
    pub rss_end_kib: Option<u64>,
    /// (rss_open - rss_before) / sessions set up, KiB.
    pub rss_per_session_kib: Option<f64>,
    /// RSS samples, KiB.
    pub rss_kib: Option<Spread>,
    /// CPU samples after set-up, % of one core per 250 ms period.
    pub cpu_pct: Option<Spread>,
    /// Mean CPU after set-up (the measured window), % of one core.
    pub cpu_pct_mean: Option<f64>,
}

/// Combines a scenario outcome with the timeline.
pub fn build(config: &Config, outcome: Outcome, timeline: Vec<Sample>) -> Summary {
    let per_session = match (outcome.rss_before_kib, outcome.rss_open_kib, outcome.opened) {
        (Some(before), Some(open), n) if n > 0 => Some((open as f64 - before as f64) / n as f64),
        _ => None,
    };
    // CPU figures cover the measured window (after set-up), where the load is steady.
    let ready_s = outcome.time_to_ready.as_secs_f64();
    let window: Vec<Sample> = timeline
        .iter()
        .filter(|s| s.t_s >= ready_s)
        .cloned()
        .collect();
    let spread = |f: &dyn Fn(&Sample) -> Option<f64>| Spread::of(timeline.iter().filter_map(f));
    let cpu_spread = |f: &dyn Fn(&Sample) -> Option<f64>| Spread::of(window.iter().filter_map(f));
    let server = config.pid.map(|pid| ProcessSummary {
        pid: Some(pid),
        rss_before_kib: outcome.rss_before_kib,
        rss_open_kib: outcome.rss_open_kib,
        rss_end_kib: outcome.rss_end_kib,
        rss_per_session_kib: per_session,
        rss_kib: spread(&|s| s.server_rss_kib.map(|v| v as f64)),
        cpu_pct: cpu_spread(&|s| s.server_cpu_pct),
        cpu_pct_mean: mean_cpu(&window, |s| s.server_ticks),
    });
    let generator = ProcessSummary {
        pid: None,
        rss_before_kib: None,
        rss_open_kib: None,
        rss_end_kib: timeline.last().and_then(|s| s.own_rss_kib),
        rss_per_session_kib: None,
        rss_kib: spread(&|s| s.own_rss_kib.map(|v| v as f64)),
        cpu_pct: cpu_spread(&|s| s.own_cpu_pct),
        cpu_pct_mean: mean_cpu(&window, |s| s.own_ticks),
    };
    let bucket = bucket_for(outcome.elapsed.as_secs_f64());
    let mut latency_series = Vec::new();
    if let Some(a) = &outcome.ask {
        latency_series.extend(series(
            "delay added per token (arrival - stamp)",
            &a.chunk_delay_timed,
            bucket,
        ));
        latency_series.extend(series(
            "time to first answer text",
            &a.first_text_timed,
            bucket,
        ));
    }
    latency_series.extend(series(
        "tools/call latency",
        &outcome.call_latency_timed,
        bucket,
    ));
    let ask = outcome
        .ask
        .as_ref()
        .map(|a| a.figures(config.ask.first_token_delay));
    let calls = config.scenario.calls().then(|| CallSummary {
        ok: outcome.call_latency.count(),
        tool_errors: outcome.tool_errors,
        per_sec: rate(outcome.call_latency.count(), outcome.calls_window),
        seconds: outcome.calls_window.as_secs_f64(),
        warm_up_calls: outcome.warm_up_calls,
        latency_ms: outcome.call_latency.summary(),
    });
    Summary {
        generator_version: format!("mcp-load {}", env!("CARGO_PKG_VERSION")),
        scenario: config.scenario,
        url: config.target.url.clone(),
        sessions: config.sessions,
        duration_s: config.duration.map(|d| d.as_secs_f64()),
        requests: config.requests,
        ramp_up_s: config.ramp_up.as_secs_f64(),
        elapsed_s: outcome.elapsed.as_secs_f64(),
        setup: SetupSummary {
            opened: outcome.opened,
            failed: outcome.failed,
            seconds_to_ready: outcome.time_to_ready.as_secs_f64(),
            initialize_ms: outcome.init_latency.summary(),
        },
        calls,
        idle: outcome.idle,
        ask,
        upload: outcome.upload,
        errors: outcome.errors,
        resent_after_close: outcome.counters.resent_after_close,
        notifications: outcome.counters.notifications,
        server_requests: outcome.counters.server_requests,
        server,
        generator,
        timeline,
        latency_series,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

fn latency_line(l: &LatencySummary) -> String {
    format!(
        "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  max {:.2}  (mean {:.2}, n {})",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.mean_ms, l.count
    )
}

fn process_lines(out: &mut String, name: &str, p: &ProcessSummary) {
    let pid = p.pid.map(|v| format!(" (pid {v})")).unwrap_or_default();
    if p.rss_before_kib.is_some() || p.rss_open_kib.is_some() {
        let _ = writeln!(
            out,
            "  {name:<10} RSS before {}, all open {} ({} per session), end {}",
            opt(p.rss_before_kib, mib),
            opt(p.rss_open_kib, mib),
            opt(p.rss_per_session_kib, |v| format!("{v:+.1} KiB")),
            opt(p.rss_end_kib, mib),
        );
    }
    if let Some(r) = p.rss_kib {
        let _ = writeln!(
            out,
            "  {name:<10} RSS min/median/max {} / {} / {}{pid}",
            mib(r.min as u64),
            mib(r.median as u64),
            mib(r.max as u64)
        );
    }
    let _ = writeln!(
        out,
        "  {name:<10} CPU mean {} of one core; per 250 ms min/median/max {}",
        opt(p.cpu_pct_mean, |v| format!("{v:.0} %")),
        opt(p.cpu_pct, |s| format!(
            "{:.0} / {:.0} / {:.0} %",
            s.min, s.median, s.max
        )),
    );
}

fn ask_lines(out: &mut String, a: &AskFigures) {
    let rows: [(&str, &Option<LatencySummary>); 5] = [
        ("1st progr.", &a.first_progress_ms),
        ("1st text", &a.first_text_ms),
        ("text-delay", &a.first_text_added_ms),
        ("text gaps", &a.gap_ms),
        ("added/tok", &a.chunk_delay_ms),
    ];
    for (name, l) in rows {
        let _ = writeln!(out, "  {name:<10} {}", opt(l.as_ref(), latency_line));
    }
    let _ = writeln!(
        out,
        "  stream     {} progress notifications, {} stamped tokens ({:.1} per call), {} calls without text, {} negative delays, first-token delay {}",
        a.progress_notifications,
        a.stamps,
        a.stamps_per_call,
        a.calls_without_text,
        a.negative_delays,
        opt(a.first_token_delay_ms, |v| format!("{v} ms")),
    );
}

/// The one-screen human summary.
pub fn render_text(s: &Summary) -> String {
    let mut out = String::new();
    let bound = match (s.duration_s, s.requests) {
        (Some(d), Some(r)) => format!("{d} s or {r} calls"),
        (Some(d), None) => format!("{d} s"),
        (None, Some(r)) => format!("{r} calls"),
        (None, None) => "-".into(),
    };
    let scenario = s.scenario.name();
    let _ = writeln!(
        out,
        "mcp-load {scenario}  {}  sessions {}  {bound}  (ran {:.1} s)",
        s.url, s.sessions, s.elapsed_s
    );
    let init = opt(s.setup.initialize_ms.as_ref(), |l| {
        format!("initialize p50 {:.1} ms, p99 {:.1} ms", l.p50_ms, l.p99_ms)
    });
    let _ = writeln!(
        out,
        "  sessions   {} set up, {} failed, all ready after {:.2} s ({init})",
        s.setup.opened, s.setup.failed, s.setup.seconds_to_ready
    );
    if let Some(c) = &s.calls {
        let _ = writeln!(
            out,
            "  calls      {} ok ({} isError), {:.1} calls/s over {:.1} s{}",
            c.ok,
            c.tool_errors,
            c.per_sec,
            c.seconds,
            if c.warm_up_calls > 0 {
                format!(" (after {} warm-up calls, not counted)", c.warm_up_calls)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "  latency    {}",
            opt(c.latency_ms.as_ref(), latency_line)
        );
    }
    if let Some(a) = &s.ask {
        ask_lines(&mut out, a);
    }
    if let Some(u) = &s.upload {
        let _ = writeln!(
            out,
            "  uploads    {} x {:.1} MiB by {} uploaders: {} ok ({} already stored), {} records, {:.1} MiB/s, {} failed",
            u.ok + u.errors.total(),
            u.file_bytes as f64 / (1024.0 * 1024.0),
            u.uploaders,
            u.ok,
            u.duplicates,
            u.records,
            u.mib_per_sec,
            u.errors.total()
        );
        let _ = writeln!(
            out,
            "  upload lat {}",
            opt(u.latency_ms.as_ref(), latency_line)
        );
    }
    if let Some(i) = &s.idle {
        let _ = writeln!(
            out,
            "  streams    {} open at end, {} without GET stream (405), {} ended early",
            i.streams_open, i.no_get_stream, i.ended_early
        );
        let _ = writeln!(
            out,
            "  keep-alive {} sessions got one ({} comments), {} events",
            i.with_keepalive, i.keepalives, i.events
        );
    }
    let errors = if s.errors.0.is_empty() {
        "none".to_owned()
    } else {
        let kinds: Vec<String> = s
            .errors
            .0
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!("{} ({})", s.errors.total(), kinds.join(", "))
    };
    let _ = writeln!(out, "  errors     {errors}");
    let notes: Vec<String> = s
        .notifications
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let _ = writeln!(
        out,
        "  other      re-sent after idle close {}, notifications {}, server requests {}",
        s.resent_after_close,
        if notes.is_empty() {
            "0".to_owned()
        } else {
            notes.join(", ")
        },
        s.server_requests
    );
    match &s.server {
        Some(p) => process_lines(&mut out, "server", p),
        None => out.push_str("  server     not sampled (pass --pid)\n"),
    }
    process_lines(&mut out, "generator", &s.generator);
    out
}

/// Writes `summary.json` and `timeline.json` into `dir` (created if missing).
pub fn write_dir(dir: &Path, s: &Summary) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(s)?)?;
    std::fs::write(
        dir.join("timeline.json"),
        serde_json::to_vec_pretty(&s.timeline)?,
    )?;
    std::fs::write(
        dir.join("latency_over_time.json"),
        serde_json::to_vec_pretty(&s.latency_series)?,
    )?;
    let title = format!("mcp-load {} N={} {}", s.scenario.name(), s.sessions, s.url);
    chart::write_svg(
        &dir.join("chart.svg"),
        &title,
        &s.latency_series,
        &s.timeline,
    )
    .map_err(std::io::Error::other)?;
    Ok(())
}
