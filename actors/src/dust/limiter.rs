//! Client-side token bucket that keeps our request rate to Dust under a budget, shared by every
//! thread's client for one workspace. It delays requests; it never refuses them.
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `rate` tokens per second, at most `burst` stored; rate 0 means unlimited.
#[derive(Debug)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket; `rate_per_sec == 0` turns limiting off.
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate_per_sec: f64::from(rate_per_sec),
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// True when the bucket limits anything at all.
    pub fn is_enabled(&self) -> bool {
        self.rate_per_sec > 0.0
    }

    /// Takes a token now, or says how long until one is available (having reserved it).
    pub fn reserve(&self) -> Duration {
        if !self.is_enabled() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        // A poisoned lock only means another thread panicked mid-update of two numbers;
        // the numbers are still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.refilled_at).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate_per_sec).min(self.burst);
        s.refilled_at = now;
        // Going negative reserves a future token, so waiters queue fairly instead of racing.
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.rate_per_sec)
        }
    }

    /// Waits until the request may go out.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn burst_then_steady_rate() {
        tokio::time::pause();
        let bucket = TokenBucket::new(10, 5);
        for _ in 0..5 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        // The sixth waits one token interval, the seventh two.
        assert_eq!(bucket.reserve(), Duration::from_millis(100));
        assert_eq!(bucket.reserve(), Duration::from_millis(200));
        tokio::time::sleep(Duration::from_secs(10)).await;
        // Refill is capped at the burst size.
        for _ in 0..5 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        assert!(bucket.reserve() > Duration::ZERO);
    }

    #[actix_rt::test]
    async fn acquire_spaces_requests_out() {
        tokio::time::pause();
        let bucket = TokenBucket::new(4, 1);
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        // Four waits of 250 ms (plus the paused timer's millisecond rounding).
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
            "{took:?}"
        );
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let bucket = TokenBucket::new(0, 0);
        assert!(!bucket.is_enabled());
        for _ in 0..10_000 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
    }
}
