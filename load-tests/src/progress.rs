//! The progress bar on stderr (indicatif), fed from the live counters; off with `--quiet` or
//! when stderr is not a terminal, so piped and scripted runs print only the summary.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::scenario::Live;

/// Redraw period: fast enough to look alive, slow enough to cost nothing.
const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// A running progress display.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts the bar unless `quiet` or stderr is not a TTY; `total` sizes it in seconds.
    pub fn start(
        quiet: bool,
        live: Arc<Live>,
        sessions: usize,
        total: Option<Duration>,
    ) -> Option<Progress> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = match total {
            Some(t) => {
                ProgressBar::with_draw_target(Some(t.as_secs()), ProgressDrawTarget::stderr())
            }
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let style = ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {pos}/{len}s {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(REDRAW_EVERY).await;
                shown.set_position(started.elapsed().as_secs());
                shown.set_message(format!(
                    "sessions {}/{} failed {} calls {} errors {}",
                    live.sessions_open.load(Ordering::Relaxed),
                    sessions,
                    live.sessions_failed.load(Ordering::Relaxed),
                    live.calls_ok.load(Ordering::Relaxed),
                    live.errors.load(Ordering::Relaxed),
                ));
            }
        });
        Some(Progress { bar, task })
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
