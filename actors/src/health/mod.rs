//! Pure health-data parsing and analysis: no actix, no HTTP, no database. Everything reads a
//! non-seekable `std::io::Read` in one streaming pass with bounded memory.
//!
//! # API
//! - [`detect`] guesses the [`Format`] from the first bytes (name only as a tie-break);
//! - [`parse`] reads one file and returns a [`ParsedFile`]: the [`Summary`] (the
//!   `health_summary` structuredContent minus `file_id`) and [`Aggregate`] rows (day, ISO week,
//!   month) for the store; [`parse_auto`] does both from the stream;
//! - [`ParseError`] says what was wrong, where, and what to do; a failed parse has no partial
//!   result;
//! - [`synth`] writes deterministic synthetic files of every format with their true statistics.
//!
//! # Layout
//! `apple.rs` (export.xml), `zip.rs` (streamed export.zip), `csv_formats.rs` (Keto-Mojo, labs),
//! `fhir.rs` (Bundle, NDJSON) feed a `collect::Collector`; `finish.rs` builds the output;
//! `stats.rs`, `units.rs`, `time.rs`, `dedup.rs` are the arithmetic.

mod apple;
mod collect;
mod csv_formats;
mod dedup;
mod error;
mod fhir;
mod finish;
mod io;
mod stats;
mod summary;
pub mod synth;
mod time;
mod units;
mod zip;

#[cfg(test)]
mod tests;

use std::io::Read;

use serde::Serialize;

pub use dedup::source_class;
pub use error::{ParseError, Position, SUPPORTED};
pub use finish::GKI_PAIR_WINDOW_SECS;
pub use summary::{
    Aggregate, BloodPressure, BpPair, DedupTotal, Flag, GkiReading, LabResult, MetricSummary,
    Period, SkipSample, SleepNight, Summary, UnitCount, Validation, WorkoutSummary,
};
pub use time::{parse_stamp, Stamp};

/// How many bytes [`detect`] looks at (callers pass at most this much).
pub const DETECT_PREFIX_BYTES: usize = 64 * 1024;

/// A supported input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The Health app's `export.zip` (only `apple_health_export/export.xml` is read).
    AppleHealthZip,
    /// A bare `export.xml`.
    AppleHealthXml,
    /// Keto-Mojo (MyMojoHealth) CSV export.
    KetoMojoCsv,
    /// A lab-result CSV with columns found by header name.
    LabCsv,
    /// A FHIR R4 `Bundle` in JSON.
    FhirBundle,
    /// FHIR resources, one JSON object per line (bulk export).
    FhirNdjson,
}

impl Format {
    /// Human name used in messages.
    pub fn label(self) -> &'static str {
        match self {
            Format::AppleHealthZip => "Apple Health export.zip",
            Format::AppleHealthXml => "Apple Health export.xml",
            Format::KetoMojoCsv => "Keto-Mojo CSV",
            Format::LabCsv => "lab-result CSV",
            Format::FhirBundle => "FHIR Bundle",
            Format::FhirNdjson => "FHIR NDJSON",
        }
    }
}

/// Bounds on one parse; the defaults suit a multi-GB Apple export.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest decompressed zip entry we read (bytes); also checked against declared sizes.
    pub max_decompressed_bytes: u64,
    /// Largest decompressed/compressed ratio once past 1 MiB (real exports are ~10-20×).
    pub max_compression_ratio: u64,
    /// Skipped-record samples and warnings kept in the report.
    pub max_warnings: usize,
    /// Skipped records tolerated before the file is refused as damaged.
    pub max_skipped: u64,
    /// Longest NDJSON line or CSV record (bytes).
    pub max_line_bytes: usize,
    /// Longest list kept in the summary (labs, GKI, blood-pressure readings).
    pub max_listed: usize,
    /// Cumulative readings kept for source de-duplication (24 bytes each).
    pub max_dedup_intervals: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed_bytes: 16 << 30,
            max_compression_ratio: 200,
            max_warnings: 100,
            max_skipped: 100_000,
            max_line_bytes: 16 << 20,
            max_listed: 10_000,
            max_dedup_intervals: 1 << 23,
        }
    }
}

/// The result of one parse.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedFile {
    /// Whole-file summary.
    pub summary: Summary,
    /// Day, ISO-week and month rows per metric, sorted by period, metric, start.
    pub aggregates: Vec<Aggregate>,
}

/// Guesses the format from the first bytes (at most [`DETECT_PREFIX_BYTES`]); `file_name` only
/// breaks ties. Fails with [`ParseError::Empty`] or [`ParseError::UnknownFormat`].
pub fn detect(prefix: &[u8], file_name: Option<&str>) -> Result<Format, ParseError> {
    io::detect(prefix, file_name)
}

/// Parses one file of a known format. `progress` gets the bytes consumed from `input` so far,
/// at most once per MiB.
pub fn parse(
    format: Format,
    input: impl Read,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<ParsedFile, ParseError> {
    let mut counted = io::Counting::new(input, progress);
    let out = match format {
        Format::AppleHealthXml => apple::parse(&mut counted, limits, format),
        Format::AppleHealthZip => match zip::open_export_xml(&mut counted, limits) {
            Ok(entry) => apple::parse(entry, limits, format),
            Err(e) => Err(e),
        },
        Format::KetoMojoCsv => csv_formats::parse_keto_mojo(&mut counted, limits),
        Format::LabCsv => csv_formats::parse_lab(&mut counted, limits),
        Format::FhirBundle => fhir::parse_bundle(&mut counted, limits),
        Format::FhirNdjson => fhir::parse_ndjson(&mut counted, limits),
    };
    if counted.total() == 0 {
        return Err(ParseError::Empty);
    }
    out
}

/// Reads the first bytes, detects the format, and parses the whole stream.
pub fn parse_auto(
    mut input: impl Read,
    file_name: Option<&str>,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<ParsedFile, ParseError> {
    let mut prefix = Vec::with_capacity(DETECT_PREFIX_BYTES);
    (&mut input)
        .take(DETECT_PREFIX_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(|source| ParseError::Io {
            offset: prefix.len() as u64,
            source,
        })?;
    let format = detect(&prefix, file_name)?;
    parse(
        format,
        std::io::Cursor::new(prefix).chain(input),
        limits,
        progress,
    )
}

/// Wraps a gzip stream (`Content-Encoding: gzip`) so it can be passed to [`parse`].
pub fn gunzip<R: Read>(input: R) -> flate2::read::MultiGzDecoder<R> {
    flate2::read::MultiGzDecoder::new(input)
}
