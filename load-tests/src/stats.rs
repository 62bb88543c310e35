//! Summary maths: latency histograms (hdrhistogram, microseconds), percentiles, the
//! min/median/max spread of samples, and error counts by kind. No I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histogram tracks, in µs (the run cap); longer values are clamped.
const MAX_TRACKED_US: u64 = 600_000_000;

/// Latencies of one kind of request, recorded per session and merged at the end. Values are
/// kept raw (4 bytes each) and put into one histogram only for the summary: a full-range
/// histogram is ~170 KiB, and with seven of them per session 1,000 `ask` sessions made the
/// generator itself 1.2 GiB.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    us: Vec<u32>,
}

impl Latencies {
    /// An empty recorder (1 µs to 600 s, reported with 3 significant digits).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_TRACKED_US);
        self.us.push(u32::try_from(us).unwrap_or(u32::MAX));
    }

    /// Adds another recorder's values.
    pub fn merge(&mut self, other: &Latencies) {
        self.us.extend_from_slice(&other.us);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.us.len() as u64
    }

    /// Percentiles in milliseconds; `None` when nothing was recorded.
    #[expect(
        clippy::expect_used,
        reason = "constant bounds (low 1 >= 1, high >= 2 * low, 3 digits) never fail"
    )]
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.us.is_empty() {
            return None;
        }
        let mut hist: Histogram<u64> =
            Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid bounds");
        for &us in &self.us {
            hist.saturating_record(u64::from(us));
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(LatencySummary {
            count: hist.len(),
            mean_ms: hist.mean() / 1000.0,
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            max_ms: ms(hist.max()),
        })
    }
}

/// Latency percentiles of one request kind.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Arithmetic mean, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest value, ms.
    pub max_ms: f64,
}

/// Min, median and max of a series of samples.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    /// Smallest sample.
    pub min: f64,
    /// Median sample (mean of the two middle ones for an even count).
    pub median: f64,
    /// Largest sample.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` for an empty series. NaNs are ignored.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        let (first, last) = (*v.first()?, *v.last()?);
        Some(Spread {
            min: first,
            median: median_sorted(&v)?,
            max: last,
        })
    }
}

fn median_sorted(v: &[f64]) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Error counts by [`crate::mcp::CallError::kind`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct ErrorCounts(pub BTreeMap<String, u64>);

impl ErrorCounts {
    /// Counts one error of `kind`.
    pub fn add(&mut self, kind: String) {
        *self.0.entry(kind).or_default() += 1;
    }

    /// Adds another table.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    /// Total errors.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Events per second over `elapsed` (0 for an empty window).
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Values with the moment they were taken, for the "latency over time" chart: (ms since the
/// run started, value in µs), kept raw and cut into time buckets at the end.
#[derive(Debug, Clone, Default)]
pub struct Timed {
    points: Vec<(u32, u32)>,
}

/// Percentiles of the values taken in one time bucket.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct TimePoint {
    /// Middle of the bucket, seconds since the run started.
    pub t_s: f64,
    /// Values in the bucket.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

impl Timed {
    /// Records `value` taken `since_start` after the run began (both saturate at u32).
    pub fn record(&mut self, since_start: Duration, value: Duration) {
        let ms = u32::try_from(since_start.as_millis()).unwrap_or(u32::MAX);
        let us = u32::try_from(value.as_micros()).unwrap_or(u32::MAX);
        self.points.push((ms, us));
    }

    /// Appends another session's values.
    pub fn merge(&mut self, other: &Timed) {
        self.points.extend_from_slice(&other.points);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Percentiles per bucket of `bucket` width (empty buckets are left out), in time order.
    pub fn over_time(&self, bucket: Duration) -> Vec<TimePoint> {
        let width = u32::try_from(bucket.as_millis()).unwrap_or(u32::MAX).max(1);
        let mut by_bucket: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &(ms, us) in &self.points {
            by_bucket.entry(ms / width).or_default().push(us);
        }
        by_bucket
            .into_iter()
            .map(|(b, mut values)| {
                values.sort_unstable();
                let ms = |q: f64| f64::from(nearest_rank(&values, q)) / 1000.0;
                TimePoint {
                    t_s: (f64::from(b) + 0.5) * f64::from(width) / 1000.0,
                    count: values.len(),
                    p50_ms: ms(0.50),
                    p90_ms: ms(0.90),
                    p99_ms: ms(0.99),
                }
            })
            .collect()
    }
}

/// Nearest-rank percentile of a sorted, non-empty slice (0 for an empty one).
fn nearest_rank(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_series_are_where_expected() {
        let mut lat = Latencies::new();
        for ms in 1..=1000u64 {
            lat.record(Duration::from_millis(ms));
        }
        let s = lat.summary().unwrap();
        assert_eq!(s.count, 1000);
        // hdrhistogram keeps 3 significant digits: values are exact to 0.1 %.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50_ms, 500.0), "{s:?}");
        assert!(close(s.p90_ms, 900.0), "{s:?}");
        assert!(close(s.p99_ms, 990.0), "{s:?}");
        assert!(close(s.max_ms, 1000.0), "{s:?}");
        assert!(close(s.mean_ms, 500.5), "{s:?}");
    }

    #[test]
    fn merged_recorders_equal_one_recorder() {
        let (mut a, mut b, mut all) = (Latencies::new(), Latencies::new(), Latencies::new());
        for us in [120u64, 900, 15_000, 15_100, 2_000_000] {
            let d = Duration::from_micros(us);
            if us % 2 == 0 {
                a.record(d)
            } else {
                b.record(d)
            }
            all.record(d);
        }
        a.merge(&b);
        assert_eq!(a.summary(), all.summary());
        assert_eq!(Latencies::new().summary(), None);
    }

    #[test]
    fn spread_gives_min_median_max() {
        assert_eq!(
            Spread::of([3.0, 1.0, 2.0]),
            Some(Spread {
                min: 1.0,
                median: 2.0,
                max: 3.0
            })
        );
        assert_eq!(Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of([f64::NAN, 5.0]).unwrap().median, 5.0);
        assert_eq!(Spread::of(Vec::new()), None);
    }

    #[test]
    fn error_counts_merge_by_kind() {
        let mut a = ErrorCounts::default();
        a.add("timeout".into());
        a.add("http_404".into());
        let mut b = ErrorCounts::default();
        b.add("timeout".into());
        a.merge(&b);
        assert_eq!(a.0.get("timeout"), Some(&2));
        assert_eq!(a.total(), 3);
    }

    #[test]
    fn timed_values_fall_into_their_buckets_with_nearest_rank_percentiles() {
        let mut a = Timed::default();
        let mut b = Timed::default();
        // Bucket 0 (0-999 ms): 1..=100 ms; bucket 2 (2000-2999 ms): one value of 7 ms.
        for v in 1..=100u64 {
            let target = if v % 2 == 0 { &mut a } else { &mut b };
            target.record(Duration::from_millis(v * 9), Duration::from_millis(v));
        }
        b.record(Duration::from_millis(2500), Duration::from_millis(7));
        a.merge(&b);
        let points = a.over_time(Duration::from_secs(1));
        assert_eq!(points.len(), 2, "the empty bucket is left out");
        assert_eq!(points[0].count, 100);
        assert_eq!(points[0].t_s, 0.5);
        assert_eq!(
            (points[0].p50_ms, points[0].p90_ms, points[0].p99_ms),
            (50.0, 90.0, 99.0)
        );
        assert_eq!(points[1].t_s, 2.5);
        assert_eq!((points[1].p50_ms, points[1].p99_ms), (7.0, 7.0));
        assert!(Timed::default()
            .over_time(Duration::from_secs(1))
            .is_empty());
    }

    #[test]
    fn rate_is_per_second() {
        assert_eq!(rate(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
    }
}
