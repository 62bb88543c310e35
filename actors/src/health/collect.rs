//! `Collector`: what every format parser feeds, one reading at a time, in bounded memory
//! (accumulators per metric × unit and per metric × unit × local day, plus compact intervals of
//! cumulative metrics for de-duplication). `finish` (in `finish.rs`) turns it into the output.

use std::collections::{BTreeMap, HashMap, HashSet};

use foldhash::fast::FixedState;

use crate::health::dedup::{source_class, Interval};
use crate::health::error::{ParseError, Position};
use crate::health::stats::{Acc, Neumaier};
use crate::health::summary::{BpPair, LabResult, SkipSample, SleepNight, WorkoutSummary};
use crate::health::time::Stamp;
use crate::health::{Format, Limits};

pub(crate) type FastMap<K, V> = HashMap<K, V, FixedState>;

/// Per-day accumulator: count, sum, min, max.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DayAcc {
    pub count: u64,
    pub sum: Neumaier,
    pub min: f64,
    pub max: f64,
}

impl DayAcc {
    pub fn new() -> Self {
        DayAcc {
            count: 0,
            sum: Neumaier::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    #[inline]
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        self.sum.add(x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }
}

/// One metric's accumulators, per written unit.
pub(crate) struct MetricState {
    pub kind: Box<str>,
    pub name: Option<String>,
    pub glucose: bool,
    pub cumulative: bool,
    pub per_unit: Vec<(u16, Acc)>,
}

/// A sleep stage as Apple names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SleepStage {
    InBed,
    Unspecified,
    Core,
    Deep,
    Rem,
    Awake,
}

/// One reading handed in by a parser.
pub(crate) struct Reading<'a> {
    pub metric: &'a str,
    pub unit: &'a str,
    pub value: f64,
    pub start: Stamp,
    pub end: Option<Stamp>,
    pub source: &'a str,
    pub device: &'a str,
}

/// Everything gathered so far from one file.
pub(crate) struct Collector<'l> {
    pub format: Format,
    pub limits: &'l Limits,
    pub metrics: Vec<MetricState>,
    metric_ix: FastMap<Box<str>, u32>,
    last_metric: Option<u32>,
    pub units: Vec<Box<str>>,
    unit_ix: FastMap<Box<str>, u16>,
    /// Source names and their priority class.
    pub sources: Vec<(Box<str>, u8)>,
    source_ix: FastMap<Box<str>, u16>,
    days: FastMap<(u32, u16, i32), usize>,
    last_day: Option<((u32, u16, i32), usize)>,
    day_slots: Vec<((u32, u16, i32), DayAcc)>,
    pub intervals: FastMap<(u32, i32), Vec<Interval>>,
    interval_count: usize,
    pub dedup_overflow: bool,
    pub records: u64,
    pub skipped: u64,
    first_skip: Option<Position>,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub samples: Vec<SkipSample>,
    pub ignored: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    pub sleep: BTreeMap<i32, SleepNight>,
    pub workouts: BTreeMap<String, WorkoutSummary>,
    pub bp: (u64, Neumaier, Neumaier, Vec<(Stamp, f64, f64)>),
    pub labs: Vec<LabResult>,
    pub gki_glucose: Vec<(i64, f64)>,
    pub gki_ketone: Vec<(Stamp, f64)>,
    pub categories: BTreeMap<String, u64>,
    pub activity_summaries: u64,
    seen: HashSet<u64, FixedState>,
}

/// Types whose daily figure is a total (and so need source de-duplication).
pub(crate) fn is_cumulative(kind: &str) -> bool {
    let Some(rest) = kind.strip_prefix("HKQuantityTypeIdentifier") else {
        return false;
    };
    rest.starts_with("Distance")
        || rest.starts_with("Dietary")
        || matches!(
            rest,
            "StepCount"
                | "FlightsClimbed"
                | "ActiveEnergyBurned"
                | "BasalEnergyBurned"
                | "AppleExerciseTime"
                | "AppleStandTime"
                | "PushCount"
                | "SwimmingStrokeCount"
                | "NikeFuel"
        )
}

/// Glucose metrics, where mg/dL and mmol/L convert (HealthKit, LOINC 2339-0 / 2345-7).
pub(crate) fn is_glucose(kind: &str) -> bool {
    matches!(
        kind,
        "HKQuantityTypeIdentifierBloodGlucose" | "2339-0" | "2345-7" | "15074-8"
    )
}

impl<'l> Collector<'l> {
    /// An empty collector for `format`.
    pub fn new(format: Format, limits: &'l Limits) -> Self {
        Collector {
            format,
            limits,
            metrics: Vec::new(),
            metric_ix: FastMap::default(),
            last_metric: None,
            units: Vec::new(),
            unit_ix: FastMap::default(),
            sources: Vec::new(),
            source_ix: FastMap::default(),
            days: FastMap::default(),
            last_day: None,
            day_slots: Vec::new(),
            intervals: FastMap::default(),
            interval_count: 0,
            dedup_overflow: false,
            records: 0,
            skipped: 0,
            first_skip: None,
            skipped_by_reason: BTreeMap::new(),
            samples: Vec::new(),
            ignored: BTreeMap::new(),
            warnings: Vec::new(),
            sleep: BTreeMap::new(),
            workouts: BTreeMap::new(),
            bp: (0, Neumaier::default(), Neumaier::default(), Vec::new()),
            labs: Vec::new(),
            gki_glucose: Vec::new(),
            gki_ketone: Vec::new(),
            categories: BTreeMap::new(),
            activity_summaries: 0,
            seen: HashSet::default(),
        }
    }

    /// The metric's index, created on first sight.
    fn metric(&mut self, kind: &str) -> u32 {
        if let Some(ix) = self.last_metric {
            if &*self.metrics[ix as usize].kind == kind {
                return ix;
            }
        }
        let ix = match self.metric_ix.get(kind) {
            Some(&ix) => ix,
            None => {
                let ix = self.metrics.len() as u32;
                self.metrics.push(MetricState {
                    kind: kind.into(),
                    name: None,
                    glucose: is_glucose(kind),
                    cumulative: is_cumulative(kind),
                    per_unit: Vec::new(),
                });
                self.metric_ix.insert(kind.into(), ix);
                ix
            }
        };
        self.last_metric = Some(ix);
        ix
    }

    fn unit(&mut self, unit: &str) -> u16 {
        if let Some(&ix) = self.unit_ix.get(unit) {
            return ix;
        }
        let ix = self.units.len().min(u16::MAX as usize) as u16;
        if (ix as usize) == self.units.len() {
            self.units.push(unit.into());
        }
        self.unit_ix.insert(unit.into(), ix);
        ix
    }

    fn source(&mut self, name: &str, device: &str) -> u16 {
        if let Some(&ix) = self.source_ix.get(name) {
            return ix;
        }
        let ix = self.sources.len().min(u16::MAX as usize) as u16;
        if (ix as usize) == self.sources.len() {
            self.sources.push((name.into(), source_class(name, device)));
        }
        self.source_ix.insert(name.into(), ix);
        ix
    }

    /// Gives a metric its friendly name (LOINC display, lab test name).
    pub fn name_metric(&mut self, kind: &str, name: &str) {
        let ix = self.metric(kind) as usize;
        if self.metrics[ix].name.is_none() && !name.is_empty() {
            self.metrics[ix].name = Some(name.to_owned());
        }
    }

    /// Counts one record as used.
    pub fn record(&mut self) {
        self.records += 1;
    }

    /// True the first time this fingerprint is seen: readings listed both inside a Correlation
    /// and at top level are counted once.
    pub fn first_sighting(&mut self, fingerprint: u64) -> bool {
        self.seen.insert(fingerprint)
    }

    /// Adds one numeric reading.
    pub fn reading(&mut self, r: Reading<'_>) {
        let m = self.metric(r.metric);
        let u = self.unit(r.unit);
        let state = &mut self.metrics[m as usize];
        match state.per_unit.iter_mut().find(|(uu, _)| *uu == u) {
            Some((_, acc)) => acc.add(r.value, r.start),
            None => {
                let mut acc = Acc::default();
                acc.add(r.value, r.start);
                state.per_unit.push((u, acc));
            }
        }
        let cumulative = state.cumulative;
        let day = r.start.local_day();
        self.day_add((m, u, day), r.value);
        if cumulative && !self.dedup_overflow {
            if self.interval_count >= self.limits.max_dedup_intervals {
                self.dedup_overflow = true;
                self.intervals.clear();
                self.warnings.push(format!(
                    "more than {} cumulative readings: source de-duplication was switched off, \
                     dedup totals equal raw sums",
                    self.limits.max_dedup_intervals
                ));
                return;
            }
            let source = self.source(r.source, r.device);
            let dur = r
                .end
                .map_or(0, |e| (e.utc - r.start.utc).clamp(0, i64::from(u32::MAX)));
            self.intervals.entry((m, day)).or_default().push(Interval {
                start: r.start.utc,
                value: r.value,
                dur: dur as u32,
                source,
                unit: u,
            });
            self.interval_count += 1;
        }
    }

    #[inline]
    fn day_add(&mut self, key: (u32, u16, i32), x: f64) {
        // Exports list records of one type in time order, so the last bucket nearly always hits.
        if let Some((k, slot)) = self.last_day {
            if k == key {
                self.day_slots[slot].1.add(x);
                return;
            }
        }
        let slot = match self.days.get(&key) {
            Some(&slot) => slot,
            None => {
                let slot = self.day_slots.len();
                self.day_slots.push((key, DayAcc::new()));
                self.days.insert(key, slot);
                slot
            }
        };
        self.day_slots[slot].1.add(x);
        self.last_day = Some((key, slot));
    }

    /// Day buckets as (metric, unit, day) → accumulator.
    pub fn day_buckets(&self) -> &[((u32, u16, i32), DayAcc)] {
        &self.day_slots
    }

    /// Records one unusable record; fails once more than `Limits::max_skipped` were skipped.
    pub fn skip(&mut self, pos: Position, reason: &str, sample: &[u8]) -> Result<(), ParseError> {
        self.skipped += 1;
        self.first_skip.get_or_insert(pos);
        *self.skipped_by_reason.entry(reason.to_owned()).or_default() += 1;
        if self.samples.len() < self.limits.max_warnings {
            let cut = &sample[..sample.len().min(120)];
            self.samples.push(SkipSample {
                position: pos.to_string(),
                reason: reason.to_owned(),
                sample: String::from_utf8_lossy(cut).into_owned(),
            });
        }
        if self.skipped > self.limits.max_skipped {
            return Err(ParseError::TooManySkipped {
                format: self.format.label(),
                skipped: self.skipped,
                limit: self.limits.max_skipped,
                first: self.first_skip.unwrap_or(pos),
            });
        }
        Ok(())
    }

    /// Counts a record ignored on purpose.
    pub fn ignore(&mut self, what: &str) {
        *self.ignored.entry(what.to_owned()).or_default() += 1;
    }

    /// Adds a user-visible warning (bounded).
    pub fn warn(&mut self, msg: String) {
        if self.warnings.len() < self.limits.max_warnings {
            self.warnings.push(msg);
        }
    }

    /// Adds one workout.
    pub fn workout(&mut self, kind: &str, duration_min: f64, energy_kcal: f64, distance_km: f64) {
        let w = self
            .workouts
            .entry(kind.to_owned())
            .or_insert_with(|| WorkoutSummary {
                kind: kind.to_owned(),
                count: 0,
                duration_min: 0.0,
                energy_kcal: 0.0,
                distance_km: 0.0,
            });
        w.count += 1;
        w.duration_min += duration_min;
        w.energy_kcal += energy_kcal;
        w.distance_km += distance_km;
    }

    /// Adds one sleep sample to its night.
    pub fn sleep(&mut self, stage: SleepStage, start: Stamp, end: Stamp) {
        let minutes = (end.utc - start.utc).max(0) as f64 / 60.0;
        let night = (start.local_secs() - 12 * 3600).div_euclid(86_400) as i32;
        let n = self.sleep.entry(night).or_default();
        match stage {
            SleepStage::InBed => n.in_bed_min += minutes,
            SleepStage::Unspecified => n.unspecified_min += minutes,
            SleepStage::Core => n.core_min += minutes,
            SleepStage::Deep => n.deep_min += minutes,
            SleepStage::Rem => n.rem_min += minutes,
            SleepStage::Awake => n.awake_min += minutes,
        }
    }

    /// Adds one blood-pressure pair (mmHg).
    pub fn bp_pair(&mut self, at: Stamp, systolic: f64, diastolic: f64) {
        self.bp.0 += 1;
        self.bp.1.add(systolic);
        self.bp.2.add(diastolic);
        if self.bp.3.len() < self.limits.max_listed {
            self.bp.3.push((at, systolic, diastolic));
        }
    }

    /// Adds one flagged lab value (bounded by `Limits::max_listed`).
    pub fn lab(&mut self, lab: LabResult) {
        if self.labs.len() < self.limits.max_listed {
            self.labs.push(lab);
        } else if self.labs.len() == self.limits.max_listed {
            self.warn(format!(
                "more than {} lab values: the list is cut",
                self.limits.max_listed
            ));
        }
    }

    /// Blood-pressure pairs in output form.
    pub fn bp_pairs(&self) -> Vec<BpPair> {
        self.bp
            .3
            .iter()
            .map(|(t, s, d)| BpPair {
                time: t.to_string(),
                systolic: *s,
                diastolic: *d,
            })
            .collect()
    }
}
