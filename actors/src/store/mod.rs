//! Storage of health files: what a parse produced (file record, summary, aggregates) and the
//! audit log, behind the narrow [`HealthStore`] trait so a PostgreSQL backend can follow the
//! SQLite one. Every call is blocking: run it on a pool thread or through [`StoreHandle`]
//! (a `SyncArbiter`), never on an async worker.

pub mod oauth;
mod sqlite;
mod worker;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::Value;

pub use crate::health::Period;
use crate::health::{Aggregate, Summary};

pub use sqlite::{SqliteStore, DB_FILE_NAME};
pub use worker::{
    panic_message as worker_panic_message, Opener, StoreHandle, StoreWorker, Workers,
};

/// Why a store operation failed. Messages name the operation; they never hold file content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {op}: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: {message}")]
    Open {
        /// The database file.
        path: String,
        /// What went wrong.
        message: String,
    },
    #[error("stored data is not readable ({0}); the database may be damaged")]
    Corrupt(String),
    #[error("the storage workers are not running")]
    Unavailable,
    #[error("a storage worker crashed: {0}")]
    Panicked(String),
}

/// Shorthand used by the implementations.
pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

/// One stored file, as the HTTP API and the tools show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileRecord {
    /// Opaque id (32 hex digits).
    pub id: String,
    /// Owner principal name; never shown to others.
    #[serde(skip)]
    pub owner: String,
    /// The name given at upload.
    pub name: String,
    /// Detected format (`apple_health_zip`, `keto_mojo_csv`, ...).
    pub format: String,
    /// Size of the (decompressed) file in bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of the (decompressed) file.
    pub sha256: String,
    /// `ready`: only completely parsed files are stored.
    pub status: String,
    /// Records used.
    pub records: u64,
    /// Records skipped.
    pub skipped: u64,
    /// Warnings of the parse.
    pub warnings: Vec<String>,
    /// The whole summary (the parser's `Summary`); `None` in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    /// When it was stored, RFC 3339 UTC.
    pub created_at: String,
}

/// What a successful parse gives the store.
#[derive(Debug, Clone, Copy)]
pub struct NewFile<'a> {
    /// Owner principal name.
    pub owner: &'a str,
    /// The name given at upload.
    pub name: &'a str,
    /// Size of the (decompressed) file in bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of the (decompressed) file.
    pub sha256: &'a str,
    /// The parse's summary.
    pub summary: &'a Summary,
    /// The parse's aggregate rows.
    pub aggregates: &'a [Aggregate],
}

/// Result of [`HealthStore::insert_file`].
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// Newly stored.
    Created(FileRecord),
    /// The owner had already uploaded the same content: its existing record.
    Existing(FileRecord),
}

impl Inserted {
    /// The record, new or existing.
    pub fn record(&self) -> &FileRecord {
        match self {
            Inserted::Created(r) | Inserted::Existing(r) => r,
        }
    }
}

/// One point of a series: a metric over one period, merged over the selected files.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeriesPoint {
    /// First local date of the period, `YYYY-MM-DD`.
    pub start: String,
    /// Unit of the figures.
    pub unit: String,
    /// Readings.
    pub count: u64,
    /// Sum of readings.
    pub sum: f64,
    /// Smallest reading.
    pub min: f64,
    /// Largest reading.
    pub max: f64,
    /// Mean reading (sum / count).
    pub mean: f64,
    /// Source-de-duplicated total (cumulative metrics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_total: Option<f64>,
}

/// Which aggregates [`HealthStore::series`] reads.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    /// One file, or all the owner's files.
    pub file_id: Option<String>,
    /// Exact metric type.
    pub metric: String,
    /// Period length.
    pub period: Period,
    /// First period start included, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last period start included, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// Most points returned.
    pub limit: usize,
}

/// What the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A file was uploaded (or refused: then `file_id` is empty and `detail` says why).
    Upload,
    /// A file's summary or aggregates were read.
    Read,
    /// A file was deleted.
    Delete,
    /// The owner's files were listed.
    List,
}

impl AuditAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Upload => "upload",
            AuditAction::Read => "read",
            AuditAction::Delete => "delete",
            AuditAction::List => "list",
        }
    }
}

/// One audit row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    /// RFC 3339 UTC.
    pub at: String,
    /// Who.
    pub principal: String,
    /// What: `upload`, `read`, `delete`, `list`.
    pub action: String,
    /// Which file, if any.
    pub file_id: Option<String>,
    /// Free text (never file content).
    pub detail: Option<String>,
}

/// The storage operations the health service needs. Every read is scoped to `owner`: another
/// principal's file id behaves exactly as an unknown one. Reads and writes are audited.
pub trait HealthStore: Send {
    /// Stores everything a parse produced in one transaction and audits the upload; returns
    /// the existing record instead when `owner` already stored the same SHA-256.
    fn insert_file(&mut self, file: NewFile<'_>) -> Result<Inserted, StoreError>;
    /// The owner's files, newest first, without summaries; audited as `list`.
    fn list_files(&mut self, owner: &str) -> Result<Vec<FileRecord>, StoreError>;
    /// One of the owner's files with its summary; audited as `read` when found.
    fn get_file(&mut self, owner: &str, id: &str) -> Result<Option<FileRecord>, StoreError>;
    /// Deletes one of the owner's files and its aggregates; `false` when unknown.
    fn delete_file(&mut self, owner: &str, id: &str) -> Result<bool, StoreError>;
    /// Distinct metric types in the owner's aggregates (one file or all), sorted.
    fn metrics(&mut self, owner: &str, file_id: Option<&str>) -> Result<Vec<String>, StoreError>;
    /// Aggregates merged per period start; at most `limit + 1` points so callers can tell a
    /// cut series; audited as `read`.
    fn series(&mut self, owner: &str, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError>;
    /// Appends one audit row outside any file transaction (e.g. a refused upload).
    fn audit(
        &mut self,
        principal: &str,
        action: AuditAction,
        file_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Every file as (owner, id, name), for the in-memory index built at start-up.
    fn index(&mut self) -> Result<Vec<(String, String, String)>, StoreError>;
    /// The principal's audit rows, newest first.
    fn audit_log(&mut self, principal: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Opens a store for one worker thread.
pub type StoreFactory =
    std::sync::Arc<dyn Fn() -> Result<Box<dyn HealthStore>, StoreError> + Send + Sync>;

/// The current time, RFC 3339 UTC with milliseconds (sortable as text).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        now.subsec_millis()
    )
}

/// Civil date of a day number (days since 1970-01-01), after H. Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day number (days since 1970-01-01) of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
