//! Counters of one workspace's Dust traffic (requests, failures, retries, rate limits,
//! reconnects, duplicates avoided, stale reads), readable as a serialisable snapshot.
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters for /metrics and /admin/status.
#[derive(Debug, Default)]
pub struct DustMetrics {
    pub(crate) requests: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) stream_reconnects: AtomicU64,
    pub(crate) duplicate_posts_avoided: AtomicU64,
    pub(crate) stale_agent_reads: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DustMetricsSnapshot {
    /// HTTP requests sent to Dust.
    pub requests: u64,
    /// Requests that failed (any error).
    pub failures: u64,
    /// Automatic retries of repeatable requests.
    pub retries: u64,
    /// Responses that were rate limits.
    pub rate_limited: u64,
    /// Answer-stream reconnections.
    pub stream_reconnects: u64,
    /// Message POSTs that failed ambiguously but were found to have landed (not re-posted).
    pub duplicate_posts_avoided: u64,
    /// Agent reads served from stale cache because Dust failed.
    pub stale_agent_reads: u64,
}

impl DustMetrics {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> DustMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DustMetricsSnapshot {
            requests: get(&self.requests),
            failures: get(&self.failures),
            retries: get(&self.retries),
            rate_limited: get(&self.rate_limited),
            stream_reconnects: get(&self.stream_reconnects),
            duplicate_posts_avoided: get(&self.duplicate_posts_avoided),
            stale_agent_reads: get(&self.stale_agent_reads),
        }
    }
}
