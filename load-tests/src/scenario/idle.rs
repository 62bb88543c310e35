//! The `idle` scenario: N sessions initialize, open the GET stream and hold it; measures the
//! server's memory per idle session and whether it sends keep-alives. Each session drops its
//! POST connection after the handshake, so it holds exactly one socket.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{server_rss, start_offset, wait_all_ready, IdleFigures, Live, Outcome, RunContext};
use crate::mcp::{CallError, Session, SessionCounters};
use crate::sse::SseItem;
use crate::stats::Latencies;

/// Pause between "all open" and the RSS reading, so allocations made while answering the
/// last GETs are counted.
const SETTLE: Duration = Duration::from_millis(500);

/// What one idle session saw.
#[derive(Debug, Default)]
struct SessionResult {
    opened: bool,
    init_latency: Option<Duration>,
    error: Option<String>,
    no_stream: bool,
    open_at_end: bool,
    ended_early: bool,
    keepalives: u64,
    events: u64,
    counters: SessionCounters,
}

async fn one_session(ctx: RunContext, i: usize, mut stop: watch::Receiver<bool>) -> SessionResult {
    let mut out = SessionResult::default();
    tokio::time::sleep(start_offset(i, ctx.config.sessions, ctx.config.ramp_up)).await;
    let mut session = Session::new(ctx.client.clone());
    let opened = async {
        let init = session.initialize().await?;
        session.close_connection();
        let stream = session.open_stream().await?;
        Ok::<_, CallError>((init, stream))
    }
    .await;
    out.counters = session.counters.clone();
    let (init, stream) = match opened {
        Ok(v) => v,
        Err(e) => {
            out.error = Some(e.kind());
            Live::add(&ctx.live.errors);
            Live::add(&ctx.live.sessions_failed);
            return out;
        }
    };
    out.opened = true;
    out.init_latency = Some(init.latency);
    Live::add(&ctx.live.sessions_open);
    let Some(mut stream) = stream else {
        out.no_stream = true;
        let _ = stop.wait_for(|s| *s).await;
        return out;
    };
    let mut items = Vec::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {
                out.open_at_end = true;
                break;
            }
            more = stream.next_items(&mut items) => {
                for item in items.drain(..) {
                    match item {
                        SseItem::Comment(_) => out.keepalives += 1,
                        SseItem::Event { data, .. } if !data.is_empty() => out.events += 1,
                        SseItem::Event { .. } => {}
                    }
                }
                match more {
                    Ok(true) => {}
                    Ok(false) => {
                        out.ended_early = true;
                        break;
                    }
                    Err(e) => {
                        out.ended_early = true;
                        out.error = Some(e.kind());
                        Live::add(&ctx.live.errors);
                        break;
                    }
                }
            }
        }
    }
    // Hold the socket until the stop even if the stream broke, so the socket count is stable.
    let _ = stop.wait_for(|s| *s).await;
    out
}

/// Opens all sessions, reads RSS, holds for the duration, then stops them.
pub async fn run(ctx: RunContext) -> Outcome {
    let n = ctx.config.sessions;
    let hold = ctx.config.duration.unwrap_or(Duration::from_secs(1));
    let mut outcome = Outcome {
        rss_before_kib: server_rss(&ctx.config),
        ..Outcome::default()
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(one_session(ctx.clone(), i, stop_rx.clone())))
        .collect();
    wait_all_ready(&ctx.live, n).await;
    outcome.time_to_ready = ctx.t0.elapsed();
    let hold_until = Instant::now() + hold;
    tokio::time::sleep(SETTLE.min(hold)).await;
    outcome.rss_open_kib = server_rss(&ctx.config);
    tokio::time::sleep_until(hold_until).await;
    outcome.rss_end_kib = server_rss(&ctx.config);
    let _ = stop_tx.send(true);

    let mut figures = IdleFigures::default();
    let mut init = Latencies::new();
    for task in tasks {
        let Ok(r) = task.await else {
            outcome.errors.add("panic".into());
            continue;
        };
        if r.opened {
            outcome.opened += 1;
        } else {
            outcome.failed += 1;
        }
        if let Some(lat) = r.init_latency {
            init.record(lat);
        }
        if let Some(kind) = r.error {
            outcome.errors.add(kind);
        }
        figures.no_get_stream += u64::from(r.no_stream);
        figures.streams_open += u64::from(r.open_at_end);
        figures.ended_early += u64::from(r.ended_early);
        figures.with_keepalive += u64::from(r.keepalives > 0);
        figures.keepalives += r.keepalives;
        figures.events += r.events;
        outcome.merge_counters(&r.counters);
    }
    outcome.init_latency = init;
    outcome.idle = Some(figures);
    outcome.elapsed = ctx.t0.elapsed();
    outcome
}
