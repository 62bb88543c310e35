//! The serialisable results of a parse: `Summary` (the `health_summary` tool's structuredContent
//! minus `file_id`) and `Aggregate` rows (day / ISO week / month) for the store.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::health::Format;

/// What one parsed file says, in the `health_summary` shape plus detail sections.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The detected or requested format.
    pub format: Format,
    /// Records used: unique readings, workouts, activity summaries, CSV rows, Observations.
    pub records: u64,
    /// Records skipped as unusable (see `validation`).
    pub skipped: u64,
    /// Per-metric statistics, sorted by type.
    pub metrics: Vec<MetricSummary>,
    /// Distinct local days with at least one reading.
    pub days: u64,
    /// Workouts grouped by activity type.
    pub workouts: Vec<WorkoutSummary>,
    /// Things the user should know (unit clashes, limits reached, ...).
    pub warnings: Vec<String>,
    /// Sleep stages per night.
    pub sleep: Vec<SleepNight>,
    /// Blood-pressure pairs (Apple correlations, FHIR panels).
    pub blood_pressure: BloodPressure,
    /// Glucose-ketone index from paired Keto-Mojo readings.
    pub gki: Vec<GkiReading>,
    /// Lab values with reference ranges, flagged.
    pub labs: Vec<LabResult>,
    /// Totals of cumulative metrics: raw sum and source-de-duplicated total.
    pub dedup: Vec<DedupTotal>,
    /// Category records (other than sleep) by type, counted only.
    pub categories: BTreeMap<String, u64>,
    /// Apple `ActivitySummary` elements seen.
    pub activity_summaries: u64,
    /// Why records were skipped, with samples.
    pub validation: Validation,
}

/// Statistics of one metric over the whole file, in its majority unit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricSummary {
    /// HealthKit type identifier, LOINC code, or test name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Friendly name.
    pub name: String,
    /// Unit of the figures: the one most readings were written in.
    pub unit: String,
    /// Readings.
    pub count: u64,
    /// Smallest reading.
    pub min: f64,
    /// Largest reading.
    pub max: f64,
    /// Mean (compensated sum / count).
    pub mean: f64,
    /// Sample standard deviation (n − 1).
    pub stddev: f64,
    /// Earliest reading time, RFC 3339 with the written offset.
    pub first: String,
    /// Latest reading time, RFC 3339 with the written offset.
    pub last: String,
    /// Compensated sum of all readings (meaningful for cumulative metrics).
    pub sum: f64,
    /// The units as written, with how many readings used each.
    pub units: Vec<UnitCount>,
}

/// How many readings of a metric were written in one unit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnitCount {
    /// The unit as written in the file.
    pub unit: String,
    /// Readings in that unit.
    pub count: u64,
}

/// Workouts of one activity type.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkoutSummary {
    /// Activity type without the `HKWorkoutActivityType` prefix, e.g. `Running`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Workouts.
    pub count: u64,
    /// Total duration in minutes.
    pub duration_min: f64,
    /// Total energy in kcal (attributes or WorkoutStatistics).
    pub energy_kcal: f64,
    /// Total distance in km (attributes or WorkoutStatistics).
    pub distance_km: f64,
}

/// Sleep of one night (the evening's local date: a sample belongs to the night of the local
/// date twelve hours before its start), minutes per stage.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SleepNight {
    /// `YYYY-MM-DD` of the evening.
    pub night: String,
    /// In bed.
    pub in_bed_min: f64,
    /// Asleep, any stage (unspecified + core + deep + REM).
    pub asleep_min: f64,
    /// Asleep without a stage (pre-iOS 16).
    pub unspecified_min: f64,
    /// Core sleep.
    pub core_min: f64,
    /// Deep sleep.
    pub deep_min: f64,
    /// REM sleep.
    pub rem_min: f64,
    /// Awake.
    pub awake_min: f64,
}

/// Blood-pressure pairs: statistics and the pairs themselves (up to `Limits::max_listed`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BloodPressure {
    /// Complete systolic/diastolic pairs.
    pub pairs: u64,
    /// Mean systolic, mmHg.
    pub systolic_mean: f64,
    /// Mean diastolic, mmHg.
    pub diastolic_mean: f64,
    /// The pairs, oldest first, capped.
    pub readings: Vec<BpPair>,
}

/// One blood-pressure reading.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BpPair {
    /// Time, RFC 3339.
    pub time: String,
    /// Systolic, mmHg.
    pub systolic: f64,
    /// Diastolic, mmHg.
    pub diastolic: f64,
}

/// One glucose-ketone index: a ketone reading and the nearest glucose reading within 30 min.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GkiReading {
    /// Time of the ketone reading, RFC 3339.
    pub time: String,
    /// Glucose in mmol/L (mg/dL ÷ 18.016).
    pub glucose_mmol_l: f64,
    /// Ketone (β-hydroxybutyrate) in mmol/L.
    pub ketone_mmol_l: f64,
    /// glucose ÷ ketone.
    pub gki: f64,
}

/// A lab value compared with its reference range.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabResult {
    /// LOINC code if given, else the test name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Test name.
    pub name: String,
    /// Value as written.
    pub value: f64,
    /// Unit as written.
    pub unit: String,
    /// Collection time, RFC 3339.
    pub time: String,
    /// Lower bound of the reference range.
    pub low: Option<f64>,
    /// Upper bound of the reference range.
    pub high: Option<f64>,
    /// `low`, `normal` or `high`; `unknown` without a usable range.
    pub flag: Flag,
}

/// Where a lab value lies against its reference range.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Below the range.
    Low,
    /// Inside the range (bounds included).
    Normal,
    /// Above the range.
    High,
    /// No usable range.
    Unknown,
}

/// Raw and de-duplicated totals of a cumulative metric over the file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DedupTotal {
    /// Metric type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unit of both totals.
    pub unit: String,
    /// Plain sum over every source (double counts overlaps).
    pub raw_total: f64,
    /// Sum after source-priority de-duplication per time interval.
    pub dedup_total: f64,
}

/// The validation report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Validation {
    /// Skipped records per reason.
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// The first skipped records (up to `Limits::max_warnings`).
    pub samples: Vec<SkipSample>,
    /// Records ignored on purpose (e.g. FHIR resources that are not Observations), per kind.
    pub ignored: BTreeMap<String, u64>,
}

/// One skipped record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SkipSample {
    /// Where it was (`byte N` or `line N`).
    pub position: String,
    /// Why it was skipped.
    pub reason: String,
    /// Its first characters.
    pub sample: String,
}

/// Length of an aggregate's period.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A local calendar day.
    Day,
    /// An ISO week starting on Monday.
    Week,
    /// A calendar month.
    Month,
}

/// One aggregate row: a metric over one period, in the metric's summary unit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Aggregate {
    /// Metric type.
    pub metric: String,
    /// Unit of the figures.
    pub unit: String,
    /// Period length.
    pub period: Period,
    /// First local date of the period, `YYYY-MM-DD`.
    pub start: String,
    /// Readings.
    pub count: u64,
    /// Sum of readings (raw, all sources).
    pub sum: f64,
    /// Smallest reading.
    pub min: f64,
    /// Largest reading.
    pub max: f64,
    /// Mean reading.
    pub mean: f64,
    /// For cumulative metrics: the source-de-duplicated total.
    pub dedup_total: Option<f64>,
}
