//! In-memory bounds of the sign-in flow: fixed-window attempt counters per key, and the set of
//! sign-in form nonces already used (single use until their expiry).

use std::time::Duration;

use actix::clock::Instant;
use dashmap::DashMap;

/// Keys kept before stale ones are swept, so a flood of addresses cannot grow the maps forever.
const SWEEP_ABOVE: usize = 10_000;

/// Counts hits per key in fixed one-minute windows.
#[derive(Debug)]
pub struct Limiter {
    per_window: u32,
    window: Duration,
    hits: DashMap<String, (Instant, u32)>,
}

impl Limiter {
    /// At most `n` hits per key per minute.
    pub fn per_minute(n: u32) -> Limiter {
        Limiter {
            per_window: n,
            window: Duration::from_secs(60),
            hits: DashMap::new(),
        }
    }

    /// Counts a hit; `false` when the key is over its budget in the current window.
    pub fn hit(&self, key: &str) -> bool {
        let now = Instant::now();
        if self.hits.len() > SWEEP_ABOVE {
            self.hits
                .retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let mut entry = self.hits.entry(key.to_owned()).or_insert((now, 0));
        let (start, count) = entry.value_mut();
        if now.duration_since(*start) >= self.window {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= self.per_window
    }

    /// Whether the key is already over its budget, without counting a hit.
    pub fn exhausted(&self, key: &str) -> bool {
        self.hits.get(key).is_some_and(|e| {
            let (start, count) = *e.value();
            Instant::now().duration_since(start) < self.window && count >= self.per_window
        })
    }
}

/// Nonces of sign-in forms already submitted, with their expiry (Unix seconds).
#[derive(Debug, Default)]
pub struct UsedNonces(DashMap<String, i64>);

impl UsedNonces {
    /// Records a nonce; `false` when it was used before.
    pub fn use_once(&self, nonce: &str, expires_at: i64, now: i64) -> bool {
        if self.0.len() > SWEEP_ABOVE {
            self.0.retain(|_, exp| *exp >= now);
        }
        self.0.insert(nonce.to_owned(), expires_at).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_budget_is_refused_and_others_are_not() {
        let l = Limiter::per_minute(2);
        assert!(l.hit("a"));
        assert!(!l.exhausted("a"));
        assert!(l.hit("a"));
        assert!(l.exhausted("a"));
        assert!(!l.hit("a"));
        assert!(l.hit("b"));
    }

    #[test]
    fn a_nonce_is_used_once() {
        let n = UsedNonces::default();
        assert!(n.use_once("x", 10, 0));
        assert!(!n.use_once("x", 10, 0));
    }
}
