//! Deterministic synthetic health files (seeded) with their TRUE statistics, computed by the
//! generator from the integers it chose (exact i128 sums), independently of the parser. Used by
//! tests, benchmarks and load tests; every generator streams to any `io::Write`.

mod apple;
mod other;
mod zipw;

use std::collections::BTreeMap;
use std::io::{self, Write};

pub use apple::{write_apple_export, AppleOptions};
pub use other::{write_fhir, write_keto_mojo, write_lab_csv};
pub use zipw::ZipStream;

use crate::health::time::{format_day, Stamp};

/// SplitMix64: small, fast and reproducible across platforms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
}

/// True statistics of one metric, in the unit the parser should report.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTruth {
    /// Expected summary unit (display form).
    pub unit: String,
    /// Readings.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub stddev: f64,
    /// Sum.
    pub sum: f64,
    /// First time, RFC 3339.
    pub first: String,
    /// Last time, RFC 3339.
    pub last: String,
}

/// True count/sum/min/max of one metric on one local day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayTruth {
    /// Readings.
    pub count: u64,
    /// Sum.
    pub sum: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// True workout totals of one activity type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkoutTruth {
    /// Workouts.
    pub count: u64,
    /// Minutes.
    pub duration_min: f64,
    /// kcal.
    pub energy_kcal: f64,
    /// km.
    pub distance_km: f64,
}

/// Everything a generator knows about the file it wrote.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Records the parser should count.
    pub records: u64,
    /// Per metric type.
    pub metrics: BTreeMap<String, MetricTruth>,
    /// Distinct local days with readings.
    pub days: u64,
    /// Per (metric, `YYYY-MM-DD`).
    pub daily: BTreeMap<(String, String), DayTruth>,
    /// De-duplicated daily totals of cumulative metrics, per (metric, day).
    pub dedup_daily: BTreeMap<(String, String), f64>,
    /// Per workout type.
    pub workouts: BTreeMap<String, WorkoutTruth>,
    /// Per night: in bed, unspecified, core, deep, REM, awake minutes.
    pub sleep: BTreeMap<String, [f64; 6]>,
    /// Blood-pressure pairs.
    pub bp_pairs: u64,
    /// ActivitySummary elements.
    pub activity_summaries: u64,
    /// GKI values in ketone-time order.
    pub gki: Vec<f64>,
    /// Lab flags: low / normal / high counts.
    pub lab_flags: BTreeMap<String, u64>,
    /// Bytes written (before zip compression for Apple exports).
    pub bytes: u64,
}

/// Exact accumulator over integer values `v / scale`.
#[derive(Debug, Clone)]
pub(crate) struct TruthAcc {
    unit: String,
    scale: f64,
    n: u64,
    s: i128,
    ss: i128,
    min: i64,
    max: i64,
    first: Option<Stamp>,
    last: Option<Stamp>,
}

impl TruthAcc {
    pub fn new(unit: &str, scale: f64) -> Self {
        TruthAcc {
            unit: unit.into(),
            scale,
            n: 0,
            s: 0,
            ss: 0,
            min: i64::MAX,
            max: i64::MIN,
            first: None,
            last: None,
        }
    }

    pub fn add(&mut self, v: i64, at: Stamp) {
        self.n += 1;
        self.s += i128::from(v);
        self.ss += i128::from(v) * i128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.first.is_none_or(|f| at.utc < f.utc) {
            self.first = Some(at);
        }
        if self.last.is_none_or(|l| at.utc > l.utc) {
            self.last = Some(at);
        }
    }

    pub fn truth(&self) -> MetricTruth {
        let n = self.n as f64;
        let var = if self.n > 1 {
            let num = i128::from(self.n as i64) * self.ss - self.s * self.s;
            num as f64 / (n * (n - 1.0)) / (self.scale * self.scale)
        } else {
            0.0
        };
        MetricTruth {
            unit: self.unit.clone(),
            count: self.n,
            min: self.min as f64 / self.scale,
            max: self.max as f64 / self.scale,
            mean: self.s as f64 / n / self.scale,
            stddev: var.sqrt(),
            sum: self.s as f64 / self.scale,
            first: self.first.map(|t| t.to_string()).unwrap_or_default(),
            last: self.last.map(|t| t.to_string()).unwrap_or_default(),
        }
    }
}

/// Count, integer sum, min, max and scale of one metric on one day.
pub(crate) type DayInts = (u64, i128, i64, i64, f64);

/// Collects truth while a generator runs.
#[derive(Default)]
pub(crate) struct TruthBuilder {
    pub metrics: BTreeMap<String, TruthAcc>,
    pub daily: BTreeMap<(String, i32), DayInts>,
    pub dedup: BTreeMap<(String, i32), i128>,
    pub truth: Truth,
}

impl TruthBuilder {
    /// One reading of `metric` with integer value `v` (= v / scale in `unit`).
    pub fn add(&mut self, metric: &str, unit: &str, scale: f64, v: i64, at: Stamp) {
        self.metrics
            .entry(metric.to_owned())
            .or_insert_with(|| TruthAcc::new(unit, scale))
            .add(v, at);
        let d = self
            .daily
            .entry((metric.to_owned(), at.local_day()))
            .or_insert((0, 0, i64::MAX, i64::MIN, scale));
        d.0 += 1;
        d.1 += i128::from(v);
        d.2 = d.2.min(v);
        d.3 = d.3.max(v);
        self.truth.records += 1;
    }

    /// Adds `v` to the de-duplicated total of `metric` on the day of `at`.
    pub fn dedup(&mut self, metric: &str, v: i64, at: Stamp) {
        *self
            .dedup
            .entry((metric.to_owned(), at.local_day()))
            .or_default() += i128::from(v);
    }

    pub fn finish(mut self, bytes: u64) -> Truth {
        let mut t = std::mem::take(&mut self.truth);
        t.metrics = self
            .metrics
            .iter()
            .map(|(k, a)| (k.clone(), a.truth()))
            .collect();
        let mut days = std::collections::BTreeSet::new();
        for ((m, day), (n, s, lo, hi, scale)) in &self.daily {
            days.insert(*day);
            t.daily.insert(
                (m.clone(), format_day(*day)),
                DayTruth {
                    count: *n,
                    sum: *s as f64 / scale,
                    min: *lo as f64 / scale,
                    max: *hi as f64 / scale,
                },
            );
        }
        for ((m, day), s) in &self.dedup {
            let scale = self.metrics.get(m).map_or(1.0, |a| a.scale);
            t.dedup_daily
                .insert((m.clone(), format_day(*day)), *s as f64 / scale);
        }
        t.days = days.len() as u64;
        t.bytes = bytes;
        t
    }
}

/// Counts bytes written through it.
pub struct CountingWriter<W> {
    inner: W,
    /// Bytes written so far.
    pub count: u64,
}

impl<W: Write> CountingWriter<W> {
    /// Wraps a writer.
    pub fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
