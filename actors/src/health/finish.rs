//! Turns a `Collector` into the output: picks each metric's majority unit, converts the other
//! units into it, merges accumulators, de-duplicates cumulative metrics per day, rolls days up
//! into ISO weeks and months, pairs GKI readings.

use std::collections::{BTreeMap, BTreeSet};

use crate::health::collect::{Collector, DayAcc};
use crate::health::dedup::dedup_total;
use crate::health::stats::{Acc, Neumaier};
use crate::health::summary::{
    Aggregate, BloodPressure, DedupTotal, GkiReading, MetricSummary, Period, Summary, UnitCount,
    Validation,
};
use crate::health::time::{format_day, iso_week_start, month_start};
use crate::health::units::{conversion, display_unit, GLUCOSE_MG_DL_PER_MMOL_L};
use crate::health::ParsedFile;

/// How far apart a ketone and a glucose reading may be to form a GKI pair.
pub const GKI_PAIR_WINDOW_SECS: i64 = 30 * 60;

/// One output series: a metric in one unit.
struct Series {
    metric: u32,
    unit: u16,
    acc: Acc,
    counts: Vec<UnitCount>,
}

/// Day-level row being built: raw accumulator plus the de-duplicated total.
#[derive(Clone, Copy)]
struct Row {
    acc: DayAcc,
    dedup: Option<Neumaier>,
}

impl Collector<'_> {
    /// Builds the summary and aggregate rows.
    pub fn finish(mut self) -> ParsedFile {
        // (metric, unit) -> (series index, a, b)
        let mut map: BTreeMap<(u32, u16), (usize, f64, f64)> = BTreeMap::new();
        let mut series: Vec<Series> = Vec::new();
        for (m, state) in self.metrics.iter().enumerate() {
            let m = m as u32;
            let mut pending: Vec<(u16, Acc)> = state.per_unit.clone();
            // Majority first; ties keep the unit seen first.
            pending.sort_by_key(|p| std::cmp::Reverse(p.1.count));
            while !pending.is_empty() {
                let (main_u, main_acc) = pending.remove(0);
                let main_name = self.units[main_u as usize].clone();
                let ix = series.len();
                map.insert((m, main_u), (ix, 1.0, 0.0));
                let mut s = Series {
                    metric: m,
                    unit: main_u,
                    acc: main_acc,
                    counts: vec![UnitCount {
                        unit: main_name.to_string(),
                        count: main_acc.count,
                    }],
                };
                let mut rest = Vec::new();
                for (u, acc) in pending {
                    let name = &self.units[u as usize];
                    match conversion(name, &main_name, state.glucose) {
                        Some((a, b)) => {
                            s.acc.merge(&acc.transformed(a, b));
                            s.counts.push(UnitCount {
                                unit: name.to_string(),
                                count: acc.count,
                            });
                            map.insert((m, u), (ix, a, b));
                        }
                        None => rest.push((u, acc)),
                    }
                }
                if !rest.is_empty() {
                    self.warnings.push(format!(
                        "{}: readings in units that do not convert to {} are reported separately",
                        state.kind,
                        display_unit(&main_name)
                    ));
                }
                series.push(s);
                pending = rest;
            }
        }

        // Day rows per series.
        let mut day_rows: BTreeMap<(usize, i32), Row> = BTreeMap::new();
        let mut all_days: BTreeSet<i32> = BTreeSet::new();
        for &((m, u, day), acc) in self.day_buckets() {
            all_days.insert(day);
            let Some(&(ix, a, b)) = map.get(&(m, u)) else {
                continue;
            };
            let row = day_rows.entry((ix, day)).or_insert(Row {
                acc: DayAcc::new(),
                dedup: None,
            });
            row.acc.count += acc.count;
            row.acc.sum.add(a * acc.sum.value() + b * acc.count as f64);
            row.acc.min = row.acc.min.min(a * acc.min + b);
            row.acc.max = row.acc.max.max(a * acc.max + b);
        }
        let sources = std::mem::take(&mut self.sources);
        let rank = |s: u16| {
            sources
                .get(s as usize)
                .map_or((2, s), |(_, class)| (*class, s))
        };
        let mut intervals = std::mem::take(&mut self.intervals);
        for ((m, day), items) in intervals.iter_mut() {
            let main = series.iter().position(|s| s.metric == *m);
            let Some(main) = main else { continue };
            let factor = |u: u16| match map.get(&(*m, u)) {
                Some(&(ix, a, _)) if ix == main => a,
                _ => 0.0,
            };
            let total = dedup_total(items, rank, factor);
            if let Some(row) = day_rows.get_mut(&(main, *day)) {
                let mut n = Neumaier::default();
                n.add(total);
                row.dedup = Some(n);
            }
        }
        drop(intervals);
        let overflow = self.dedup_overflow;
        for ((ix, _), row) in day_rows.iter_mut() {
            let s = &series[*ix];
            if self.metrics[s.metric as usize].cumulative && row.dedup.is_none() && overflow {
                row.dedup = Some(row.acc.sum);
            }
        }

        let mut aggregates = Vec::new();
        let mut dedup = Vec::new();
        let mut rollups: [BTreeMap<(usize, i32), Row>; 2] = [BTreeMap::new(), BTreeMap::new()];
        for (&(ix, day), row) in &day_rows {
            for (p, start) in [iso_week_start(day), month_start(day)]
                .into_iter()
                .enumerate()
            {
                let r = rollups[p].entry((ix, start)).or_insert(Row {
                    acc: DayAcc::new(),
                    dedup: None,
                });
                r.acc.count += row.acc.count;
                r.acc.sum.add(row.acc.sum.value());
                r.acc.min = r.acc.min.min(row.acc.min);
                r.acc.max = r.acc.max.max(row.acc.max);
                if let Some(d) = row.dedup {
                    r.dedup.get_or_insert_with(Neumaier::default).add(d.value());
                }
            }
        }
        let mut dedup_sums: BTreeMap<usize, Neumaier> = BTreeMap::new();
        for (period, rows) in [
            (Period::Day, &day_rows),
            (Period::Week, &rollups[0]),
            (Period::Month, &rollups[1]),
        ] {
            for (&(ix, start), row) in rows {
                let s = &series[ix];
                if period == Period::Day {
                    if let Some(d) = row.dedup {
                        dedup_sums.entry(ix).or_default().add(d.value());
                    }
                }
                aggregates.push(Aggregate {
                    metric: self.metrics[s.metric as usize].kind.to_string(),
                    unit: display_unit(&self.units[s.unit as usize]).to_owned(),
                    period,
                    start: format_day(start),
                    count: row.acc.count,
                    sum: row.acc.sum.value(),
                    min: row.acc.min,
                    max: row.acc.max,
                    mean: row.acc.sum.value() / row.acc.count.max(1) as f64,
                    dedup_total: row.dedup.map(|d| d.value()),
                });
            }
        }
        for (ix, total) in dedup_sums {
            let s = &series[ix];
            dedup.push(DedupTotal {
                kind: self.metrics[s.metric as usize].kind.to_string(),
                unit: display_unit(&self.units[s.unit as usize]).to_owned(),
                raw_total: s.acc.sum.value(),
                dedup_total: total.value(),
            });
        }

        aggregates.sort_by(|x: &Aggregate, y: &Aggregate| {
            (x.period, &x.metric, &x.unit, &x.start).cmp(&(y.period, &y.metric, &y.unit, &y.start))
        });
        let mut metrics: Vec<MetricSummary> = series
            .iter()
            .map(|s| {
                let state = &self.metrics[s.metric as usize];
                MetricSummary {
                    kind: state.kind.to_string(),
                    name: state
                        .name
                        .clone()
                        .unwrap_or_else(|| friendly_name(&state.kind)),
                    unit: display_unit(&self.units[s.unit as usize]).to_owned(),
                    count: s.acc.count,
                    min: s.acc.min,
                    max: s.acc.max,
                    mean: s.acc.mean(),
                    stddev: s.acc.stddev(),
                    first: s.acc.first.map(|t| t.to_string()).unwrap_or_default(),
                    last: s.acc.last.map(|t| t.to_string()).unwrap_or_default(),
                    sum: s.acc.sum.value(),
                    units: s.counts.clone(),
                }
            })
            .collect();
        metrics.sort_by(|a, b| (&a.kind, &a.unit).cmp(&(&b.kind, &b.unit)));

        let sleep = std::mem::take(&mut self.sleep)
            .into_iter()
            .map(|(night, mut n)| {
                n.night = format_day(night);
                n.asleep_min = n.unspecified_min + n.core_min + n.deep_min + n.rem_min;
                n
            })
            .collect();
        let bp_n = self.bp.0.max(1) as f64;
        let blood_pressure = BloodPressure {
            pairs: self.bp.0,
            systolic_mean: self.bp.1.value() / bp_n,
            diastolic_mean: self.bp.2.value() / bp_n,
            readings: self.bp_pairs(),
        };
        let gki = pair_gki(
            &mut self.gki_glucose,
            &self.gki_ketone,
            self.limits.max_listed,
        );
        let summary = Summary {
            format: self.format,
            records: self.records,
            skipped: self.skipped,
            metrics,
            days: all_days.len() as u64,
            workouts: std::mem::take(&mut self.workouts).into_values().collect(),
            warnings: std::mem::take(&mut self.warnings),
            sleep,
            blood_pressure,
            gki,
            labs: std::mem::take(&mut self.labs),
            dedup,
            categories: std::mem::take(&mut self.categories),
            activity_summaries: self.activity_summaries,
            validation: Validation {
                skipped_by_reason: std::mem::take(&mut self.skipped_by_reason),
                samples: std::mem::take(&mut self.samples),
                ignored: std::mem::take(&mut self.ignored),
            },
        };
        ParsedFile {
            summary,
            aggregates,
        }
    }
}

/// Pairs each ketone reading with the nearest glucose reading within 30 minutes (earlier wins a
/// tie); a glucose reading may serve several ketone readings. Glucose is in mmol/L.
fn pair_gki(
    glucose: &mut [(i64, f64)],
    ketone: &[(crate::health::time::Stamp, f64)],
    cap: usize,
) -> Vec<GkiReading> {
    glucose.sort_by_key(|g| g.0);
    let mut out = Vec::new();
    for &(at, k) in ketone {
        if k <= 0.0 || out.len() >= cap {
            continue;
        }
        let i = glucose.partition_point(|g| g.0 < at.utc);
        let best = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| glucose.get(j))
            .filter(|g| (g.0 - at.utc).abs() <= GKI_PAIR_WINDOW_SECS)
            .min_by_key(|g| ((g.0 - at.utc).abs(), g.0));
        if let Some(&(_, g)) = best {
            out.push(GkiReading {
                time: at.to_string(),
                glucose_mmol_l: g,
                ketone_mmol_l: k,
                gki: g / k,
            });
        }
    }
    out
}

/// mg/dL glucose to mmol/L for the GKI.
pub fn glucose_mmol(value: f64, unit: &str) -> Option<f64> {
    match unit {
        "mmol/L" | "mmol/l" => Some(value),
        "mg/dL" | "mg/dl" => Some(value / GLUCOSE_MG_DL_PER_MMOL_L),
        _ => None,
    }
}

/// A readable name: LOINC codes we know, else the HealthKit identifier split into words.
pub fn friendly_name(kind: &str) -> String {
    let known = match kind {
        "8867-4" => "Heart rate",
        "29463-7" => "Body weight",
        "39156-5" => "Body mass index",
        "8302-2" => "Body height",
        "8480-6" => "Systolic blood pressure",
        "8462-4" => "Diastolic blood pressure",
        "2708-6" | "59408-5" => "Oxygen saturation",
        "9279-1" => "Respiratory rate",
        "8310-5" => "Body temperature",
        "2339-0" => "Glucose in blood",
        "2345-7" => "Glucose in serum or plasma",
        "4548-4" => "Hemoglobin A1c",
        "2093-3" => "Total cholesterol",
        "2085-9" => "HDL cholesterol",
        "13457-7" | "18262-6" => "LDL cholesterol",
        "2571-8" => "Triglycerides",
        "blood_ketone" => "Blood ketone (β-hydroxybutyrate)",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let bare = [
        "HKQuantityTypeIdentifier",
        "HKCategoryTypeIdentifier",
        "HKDataType",
    ]
    .iter()
    .find_map(|p| kind.strip_prefix(p))
    .unwrap_or(kind);
    let chars: Vec<char> = bare.chars().collect();
    let mut out = String::with_capacity(bare.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || (prev.is_uppercase() && next_lower) {
                out.push(' ');
            }
        }
        out.push(c);
    }
    out
}
