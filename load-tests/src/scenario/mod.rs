//! Load scenarios, one module each (`idle`, `call`, which also runs `ask` and `upload` with
//! the timing of `ask.rs` and the uploaders of `upload.rs`), and what they share: the run
//! context, the live counters the progress bar and sampler read, ramp-up pacing and the
//! result every scenario hands to the report.

pub mod ask;
mod call;
mod idle;
pub mod upload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cli::{Config, Scenario};
use crate::mcp::{ClientConfig, SessionCounters};
use crate::proc::{self, Pid};
use crate::stats::{ErrorCounts, Latencies, Timed};

/// Counters updated by sessions while the run goes on (read by the progress bar and sampler).
#[derive(Debug, Default)]
pub struct Live {
    /// Sessions that completed their set-up.
    pub sessions_open: AtomicU64,
    /// Sessions whose set-up failed.
    pub sessions_failed: AtomicU64,
    /// Successful calls so far.
    pub calls_ok: AtomicU64,
    /// Failed requests so far.
    pub errors: AtomicU64,
}

impl Live {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn ready(&self) -> u64 {
        self.sessions_open.load(Ordering::Relaxed) + self.sessions_failed.load(Ordering::Relaxed)
    }
}

/// Everything a scenario needs.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The validated options.
    pub config: Arc<Config>,
    /// Shared HTTP/MCP settings.
    pub client: Arc<ClientConfig>,
    /// Live counters.
    pub live: Arc<Live>,
    /// When the run started.
    pub t0: Instant,
}

/// Idle-scenario figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IdleFigures {
    /// Sessions holding an open GET stream when the hold ended.
    pub streams_open: u64,
    /// Sessions whose server answered the GET with 405 (no standalone stream).
    pub no_get_stream: u64,
    /// Sessions that received at least one keep-alive comment.
    pub with_keepalive: u64,
    /// Keep-alive comments received, all sessions.
    pub keepalives: u64,
    /// Events received on GET streams, all sessions.
    pub events: u64,
    /// GET streams the server ended before the hold was over.
    pub ended_early: u64,
}

/// What one scenario run produced (the report adds samples and maths).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Sessions whose set-up succeeded.
    pub opened: u64,
    /// Sessions whose set-up failed.
    pub failed: u64,
    /// From the start until every session was set up or had failed.
    pub time_to_ready: Duration,
    /// `initialize` round trips.
    pub init_latency: Latencies,
    /// `tools/call` latencies (successes only).
    pub call_latency: Latencies,
    /// Calls whose result had `isError: true`.
    pub tool_errors: u64,
    /// Failed requests by kind (set-up and calls).
    pub errors: ErrorCounts,
    /// Merged per-session counters.
    pub counters: SessionCounters,
    /// Idle figures (idle scenario only).
    pub idle: Option<IdleFigures>,
    /// Streamed-answer timing (ask and upload).
    pub ask: Option<ask::AskRecorder>,
    /// Uploads (upload only).
    pub upload: Option<upload::UploadFigures>,
    /// `tools/call` latency over the run, for the chart.
    pub call_latency_timed: Timed,
    /// Server RSS before any session, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS once all sessions were set up, KiB.
    pub rss_open_kib: Option<u64>,
    /// Server RSS at the end of the measured window, KiB.
    pub rss_end_kib: Option<u64>,
    /// Wall time of the run (start to last session done).
    pub elapsed: Duration,
    /// From the end of the warm-up (calls start once all sessions are ready) to the last
    /// call's end.
    pub calls_window: Duration,
    /// Calls made during the warm-up, not recorded.
    pub warm_up_calls: u64,
}

impl Outcome {
    fn merge_counters(&mut self, c: &SessionCounters) {
        self.counters.resent_after_close += c.resent_after_close;
        self.counters.server_requests += c.server_requests;
        for (k, v) in &c.notifications {
            *self.counters.notifications.entry(k.clone()).or_default() += v;
        }
    }
}

/// Runs the configured scenario.
pub async fn run(ctx: RunContext) -> Outcome {
    match ctx.config.scenario {
        Scenario::Idle => idle::run(ctx).await,
        Scenario::Call | Scenario::Ask | Scenario::Upload => call::run(ctx).await,
    }
}

/// When session `i` of `n` starts, spreading starts evenly over `ramp`.
pub fn start_offset(i: usize, n: usize, ramp: Duration) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    ramp.mul_f64(i as f64 / n as f64)
}

/// Waits until every session has finished set-up (opened or failed).
async fn wait_all_ready(live: &Live, n: usize) {
    while live.ready() < n as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's RSS now, if `--pid` was given and the process is readable.
fn server_rss(config: &Config) -> Option<u64> {
    config
        .pid
        .and_then(|pid| proc::read(Pid::Other(pid)).ok())
        .map(|r| r.rss_kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_up_spreads_starts_evenly_and_stays_inside_the_window() {
        let ramp = Duration::from_secs(10);
        assert_eq!(start_offset(0, 4, ramp), Duration::ZERO);
        assert_eq!(start_offset(2, 4, ramp), Duration::from_secs(5));
        assert!(start_offset(3, 4, ramp) < ramp);
        assert_eq!(start_offset(0, 1, ramp), Duration::ZERO);
        assert_eq!(start_offset(7, 8, Duration::ZERO), Duration::ZERO);
    }
}
