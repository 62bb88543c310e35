//! Background sampling every [`SAMPLE_EVERY`]: the server's RSS and CPU (when `--pid` was
//! given), the generator's own CPU and RSS, and the live call count, as a timeline for the
//! report (and for the charts a later task draws from it).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::proc::{self, Pid, ProcReading};
use crate::scenario::Live;

/// Sampling period (the brief's 250 ms: fine enough to see GC steps, cheap to read).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// One point of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Server RSS, KiB (absent without `--pid` or once the process is gone).
    pub server_rss_kib: Option<u64>,
    /// Server CPU over the last period, % of one core.
    pub server_cpu_pct: Option<f64>,
    /// Generator CPU over the last period, % of one core.
    pub own_cpu_pct: Option<f64>,
    /// Generator RSS, KiB.
    pub own_rss_kib: Option<u64>,
    /// Calls completed so far (successes).
    pub calls_ok: u64,
    /// Sessions open so far.
    pub sessions_open: u64,
    /// Raw CPU ticks, kept to compute run means.
    #[serde(skip)]
    pub server_ticks: Option<u64>,
    /// Raw CPU ticks of the generator.
    #[serde(skip)]
    pub own_ticks: Option<u64>,
}

/// A running sampler; [`Sampler::stop`] returns the timeline.
#[derive(Debug)]
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<Sample>>,
}

fn take(
    pid: Pid,
    previous: Option<(ProcReading, Instant)>,
    now: Instant,
) -> (Option<ProcReading>, Option<f64>) {
    let reading = proc::read(pid).ok();
    let cpu = match (reading, previous) {
        (Some(r), Some((p, at))) => Some(proc::cpu_percent(p.cpu_ticks, r.cpu_ticks, now - at)),
        _ => None,
    };
    (reading, cpu)
}

impl Sampler {
    /// Starts sampling now; `t0` is the run's start.
    pub fn start(server: Option<u32>, live: Arc<Live>, t0: Instant) -> Sampler {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut prev_server: Option<(ProcReading, Instant)> = None;
            let mut prev_own: Option<(ProcReading, Instant)> = None;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break,
                }
                let now = Instant::now();
                let (server_reading, server_cpu) = match server {
                    Some(pid) => take(Pid::Other(pid), prev_server, now),
                    None => (None, None),
                };
                let (own_reading, own_cpu) = take(Pid::OwnProcess, prev_own, now);
                prev_server = server_reading.map(|r| (r, now));
                prev_own = own_reading.map(|r| (r, now));
                samples.push(Sample {
                    t_s: (now - t0).as_secs_f64(),
                    server_rss_kib: server_reading.map(|r| r.rss_kib),
                    server_cpu_pct: server_cpu,
                    own_cpu_pct: own_cpu,
                    own_rss_kib: own_reading.map(|r| r.rss_kib),
                    calls_ok: live.calls_ok.load(Ordering::Relaxed),
                    sessions_open: live.sessions_open.load(Ordering::Relaxed),
                    server_ticks: server_reading.map(|r| r.cpu_ticks),
                    own_ticks: own_reading.map(|r| r.cpu_ticks),
                });
            }
            samples
        });
        Sampler { stop, task }
    }

    /// Stops sampling and returns the timeline.
    pub async fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Mean CPU % of one core between the first and last samples that have ticks.
pub fn mean_cpu(samples: &[Sample], ticks: impl Fn(&Sample) -> Option<u64>) -> Option<f64> {
    let first = samples.iter().find(|s| ticks(s).is_some())?;
    let last = samples.iter().rev().find(|s| ticks(s).is_some())?;
    let elapsed = Duration::from_secs_f64((last.t_s - first.t_s).max(0.0));
    if elapsed.is_zero() {
        return None;
    }
    Some(proc::cpu_percent(ticks(first)?, ticks(last)?, elapsed))
}
