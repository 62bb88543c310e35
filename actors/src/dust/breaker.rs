//! Circuit breaker for one Dust workspace: opens after N consecutive outage failures (5xx,
//! timeouts, connection errors; never 4xx), lets one probe through after a cool-down, and closes
//! on success. Its state is readable as a serialisable snapshot for /admin/status and metrics.
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One probe call is in flight; its outcome decides.
    HalfOpen,
}

/// A point-in-time view of a breaker, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerSnapshot {
    /// The workspace this breaker guards.
    pub workspace_id: String,
    /// Current state.
    pub state: BreakerState,
    /// Outage failures since the last success.
    pub consecutive_failures: u32,
    /// Milliseconds until an open breaker admits a probe (0 unless open).
    pub retry_in_ms: u64,
    /// How many times the breaker has opened since start.
    pub times_opened: u64,
}

/// The per-workspace circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    workspace_id: String,
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    /// When the breaker opened, or when the current probe started (half-open).
    since: Instant,
    times_opened: u64,
}

impl CircuitBreaker {
    /// A closed breaker; `threshold == 0` disables it.
    pub fn new(workspace_id: impl Into<String>, threshold: u32, cooldown: Duration) -> Self {
        Self {
            workspace_id: workspace_id.into(),
            threshold,
            cooldown,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                since: Instant::now(),
                times_opened: 0,
            }),
        }
    }

    /// Admits a call, or says how long until the breaker will admit one.
    pub fn admit(&self) -> Result<(), Duration> {
        if self.threshold == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut s = self.lock();
        match s.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => {
                let waited = now.saturating_duration_since(s.since);
                if waited >= self.cooldown {
                    s.state = BreakerState::HalfOpen;
                    s.since = now;
                    Ok(())
                } else {
                    Err(self.cooldown - waited)
                }
            }
            BreakerState::HalfOpen => {
                // A probe whose caller vanished never reports back; after one more cool-down
                // we let another probe through rather than stay stuck half-open.
                let waited = now.saturating_duration_since(s.since);
                if waited >= self.cooldown {
                    s.since = now;
                    Ok(())
                } else {
                    Err(self.cooldown - waited)
                }
            }
        }
    }

    /// Records a call that proved Dust healthy (any response that is not an outage, 4xx included).
    pub fn record_success(&self) {
        let mut s = self.lock();
        s.state = BreakerState::Closed;
        s.failures = 0;
    }

    /// Records an outage failure (5xx, timeout, connection error).
    pub fn record_failure(&self) {
        if self.threshold == 0 {
            return;
        }
        let now = Instant::now();
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        let reopen = s.state == BreakerState::HalfOpen;
        if reopen || (s.state == BreakerState::Closed && s.failures >= self.threshold) {
            s.state = BreakerState::Open;
            s.since = now;
            s.times_opened += 1;
            tracing::warn!(workspace = %self.workspace_id, failures = s.failures, "dust circuit breaker opened");
        }
    }

    /// The current state, for status pages.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let s = self.lock();
        let retry_in = match s.state {
            BreakerState::Open => self
                .cooldown
                .saturating_sub(now.saturating_duration_since(s.since)),
            _ => Duration::ZERO,
        };
        BreakerSnapshot {
            workspace_id: self.workspace_id.clone(),
            state: s.state,
            consecutive_failures: s.failures,
            retry_in_ms: retry_in.as_millis() as u64,
            times_opened: s.times_opened,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Poisoning only means a panic elsewhere mid-update of plain counters; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn opens_after_threshold_probes_after_cooldown_and_closes() {
        tokio::time::pause();
        let b = CircuitBreaker::new("w1", 3, Duration::from_secs(10));
        for _ in 0..2 {
            assert!(b.admit().is_ok());
            b.record_failure();
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        b.record_failure();
        let snap = b.snapshot();
        assert_eq!(
            (snap.state, snap.consecutive_failures, snap.times_opened),
            (BreakerState::Open, 3, 1)
        );
        assert_eq!(b.admit(), Err(Duration::from_secs(10)));

        tokio::time::sleep(Duration::from_secs(4)).await;
        // Paused-clock sleeps round up to the timer's millisecond tick.
        let left = b.admit().unwrap_err();
        assert!(
            left <= Duration::from_secs(6) && left > Duration::from_secs(5),
            "{left:?}"
        );
        tokio::time::sleep(Duration::from_secs(6)).await;
        // One probe goes through; a second caller is held back while it runs.
        assert!(b.admit().is_ok());
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(b.admit().is_err());
        b.record_success();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        assert_eq!(b.snapshot().consecutive_failures, 0);
        assert!(b.admit().is_ok());
    }

    #[actix_rt::test]
    async fn failed_probe_reopens_for_a_full_cooldown() {
        tokio::time::pause();
        let b = CircuitBreaker::new("w1", 1, Duration::from_secs(5));
        b.record_failure();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(b.admit().is_ok());
        b.record_failure();
        let snap = b.snapshot();
        assert_eq!((snap.state, snap.times_opened), (BreakerState::Open, 2));
        assert!(
            snap.retry_in_ms > 4000 && snap.retry_in_ms <= 5000,
            "a full cool-down again"
        );
    }

    #[actix_rt::test]
    async fn a_lost_probe_does_not_wedge_the_breaker() {
        tokio::time::pause();
        let b = CircuitBreaker::new("w1", 1, Duration::from_secs(5));
        b.record_failure();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(b.admit().is_ok()); // probe whose outcome never arrives
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(b.admit().is_ok());
    }

    #[test]
    fn success_resets_the_failure_count() {
        let b = CircuitBreaker::new("w1", 3, Duration::from_secs(5));
        b.record_failure();
        b.record_failure();
        b.record_success();
        b.record_failure();
        b.record_failure();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        let json = serde_json::to_value(b.snapshot()).unwrap();
        assert_eq!(json["state"], "closed");
        assert_eq!(json["consecutive_failures"], 2);
    }
}
