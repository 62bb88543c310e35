//! `SqliteStore`: the [`HealthStore`] on one SQLite file (`<data_dir>/dust-mcp.sqlite3`) in WAL
//! mode, so readers on other connections never wait for a writer. Schema changes are ordered
//! migrations recorded in `schema_version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{
    now_rfc3339, sql, AuditAction, AuditEntry, FileRecord, HealthStore, Inserted, NewFile,
    SeriesPoint, SeriesQuery, StoreError, StoreFactory,
};
use crate::health::Period;

/// The database file's name inside the data directory.
pub const DB_FILE_NAME: &str = "dust-mcp.sqlite3";

/// How long a writer waits for another connection's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Ordered migrations; entry `i` brings the schema to version `i + 1`. Never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    format      TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    status      TEXT NOT NULL,
    records     INTEGER NOT NULL,
    skipped     INTEGER NOT NULL,
    warnings    TEXT NOT NULL,
    summary     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (owner, sha256)
);
CREATE INDEX files_by_owner ON files (owner, created_at);
CREATE TABLE aggregates (
    file_id     TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    metric      TEXT NOT NULL,
    unit        TEXT NOT NULL,
    period      TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
    start       TEXT NOT NULL,
    count       INTEGER NOT NULL,
    sum         REAL NOT NULL,
    min         REAL NOT NULL,
    max         REAL NOT NULL,
    mean        REAL NOT NULL,
    dedup_total REAL
);
CREATE INDEX aggregates_by_file ON aggregates (file_id, metric, period, start);
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    principal   TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('upload', 'read', 'delete', 'list')),
    file_id     TEXT,
    detail      TEXT
);
CREATE INDEX audit_by_principal ON audit_log (principal, id);
"#,
    // 2: the OAuth authorization server's clients, codes, grants and tokens.
    super::oauth::MIGRATION_OAUTH,
    // 3: when a refresh token was rotated away, for the concurrent-refresh grace window.
    super::oauth::MIGRATION_REFRESH_USED_AT,
];

/// A [`HealthStore`] on one SQLite connection.
pub struct SqliteStore {
    conn: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn period_name(p: Period) -> &'static str {
    match p {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
    }
}

fn format_name(f: crate::health::Format) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

const FILE_COLUMNS: &str =
    "id, owner, name, format, bytes, sha256, status, records, skipped, warnings, created_at";

fn file_row(row: &Row<'_>, with_summary: bool) -> rusqlite::Result<(FileRecord, String)> {
    let warnings: String = row.get(9)?;
    let summary: String = if with_summary {
        row.get(11)?
    } else {
        String::new()
    };
    Ok((
        FileRecord {
            id: row.get(0)?,
            owner: row.get(1)?,
            name: row.get(2)?,
            format: row.get(3)?,
            bytes: row.get::<_, i64>(4)? as u64,
            sha256: row.get(5)?,
            status: row.get(6)?,
            records: row.get::<_, i64>(7)? as u64,
            skipped: row.get::<_, i64>(8)? as u64,
            warnings: serde_json::from_str(&warnings).unwrap_or_default(),
            summary: None,
            created_at: row.get(10)?,
        },
        summary,
    ))
}

fn with_summary((mut record, summary): (FileRecord, String)) -> Result<FileRecord, StoreError> {
    record.summary = Some(
        serde_json::from_str(&summary)
            .map_err(|e| StoreError::Corrupt(format!("summary of file {}: {e}", record.id)))?,
    );
    Ok(record)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_err(e.to_string()))?;
        // WAL: readers see the last commit while a writer works; NORMAL sync is durable at
        // each checkpoint and never corrupts (sqlite.org/wal.html).
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )
        .map_err(|e| open_err(e.to_string()))?;
        let mut store = SqliteStore { conn };
        store.migrate()?;
        Ok(store)
    }

    /// A factory opening one connection per worker on `path`.
    pub fn factory(path: PathBuf) -> StoreFactory {
        std::sync::Arc::new(move || Ok(Box::new(SqliteStore::open(&path)?) as Box<_>))
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v as usize)
            .map_err(sql("read schema version"))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .map_err(sql("create schema_version"))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin migration"))?;
        let current: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                [],
                |r| r.get(0),
            )
            .map_err(sql("read schema version"))?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(migration).map_err(sql("migrate"))?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [i as i64 + 1],
            )
            .map_err(sql("record schema version"))?;
            tracing::info!(version = i + 1, "health store schema migrated");
        }
        tx.commit().map_err(sql("commit migration"))
    }

    fn find_by_sha(
        conn: &Connection,
        owner: &str,
        sha256: &str,
    ) -> Result<Option<FileRecord>, StoreError> {
        conn.query_row(
            &format!("SELECT {FILE_COLUMNS}, summary FROM files WHERE owner = ?1 AND sha256 = ?2"),
            params![owner, sha256],
            |r| file_row(r, true),
        )
        .optional()
        .map_err(sql("find file by hash"))?
        .map(with_summary)
        .transpose()
    }
}

fn audit_in(
    conn: &Connection,
    principal: &str,
    action: AuditAction,
    file_id: Option<&str>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, principal, action, file_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![now_rfc3339(), principal, action.as_str(), file_id, detail]))
    .map(|_| ())
    .map_err(sql("write audit row"))
}

impl HealthStore for SqliteStore {
    fn insert_file(&mut self, file: NewFile<'_>) -> Result<Inserted, StoreError> {
        // IMMEDIATE takes the write lock first, so the duplicate check and the insert cannot
        // interleave with another upload of the same content.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin upload"))?;
        if let Some(existing) = Self::find_by_sha(&tx, file.owner, file.sha256)? {
            audit_in(
                &tx,
                file.owner,
                AuditAction::Upload,
                Some(&existing.id),
                Some("duplicate content: existing file returned"),
            )?;
            tx.commit().map_err(sql("commit duplicate upload"))?;
            return Ok(Inserted::Existing(existing));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let summary = serde_json::to_value(file.summary)
            .map_err(|e| StoreError::Corrupt(format!("summary not serialisable: {e}")))?;
        let warnings =
            serde_json::to_string(&file.summary.warnings).unwrap_or_else(|_| "[]".into());
        let record = FileRecord {
            id: id.clone(),
            owner: file.owner.to_owned(),
            name: file.name.to_owned(),
            format: format_name(file.summary.format),
            bytes: file.bytes,
            sha256: file.sha256.to_owned(),
            status: "ready".into(),
            records: file.summary.records,
            skipped: file.summary.skipped,
            warnings: file.summary.warnings.clone(),
            summary: Some(summary),
            created_at: now_rfc3339(),
        };
        tx.execute(
            "INSERT INTO files (id, owner, name, format, bytes, sha256, status, records, skipped, warnings, summary, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                record.id,
                record.owner,
                record.name,
                record.format,
                record.bytes as i64,
                record.sha256,
                record.status,
                record.records as i64,
                record.skipped as i64,
                warnings,
                record.summary.as_ref().map(|s| s.to_string()),
                record.created_at,
            ],
        )
        .map_err(sql("insert file"))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO aggregates (file_id, metric, unit, period, start, count, sum, min, max, mean, dedup_total)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(sql("prepare aggregates"))?;
            for a in file.aggregates {
                insert
                    .execute(params![
                        id,
                        a.metric,
                        a.unit,
                        period_name(a.period),
                        a.start,
                        a.count as i64,
                        a.sum,
                        a.min,
                        a.max,
                        a.mean,
                        a.dedup_total
                    ])
                    .map_err(sql("insert aggregate"))?;
            }
        }
        let detail = format!("{} ({} bytes)", record.format, record.bytes);
        audit_in(
            &tx,
            file.owner,
            AuditAction::Upload,
            Some(&id),
            Some(&detail),
        )?;
        // Dropping `tx` on any `?` above rolls everything back: no half file.
        tx.commit().map_err(sql("commit upload"))?;
        Ok(Inserted::Created(record))
    }

    fn list_files(&mut self, owner: &str) -> Result<Vec<FileRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE owner = ?1 ORDER BY created_at DESC, id"
            ))
            .map_err(sql("list files"))?;
        let files = stmt
            .query_map([owner], |r| file_row(r, false).map(|(f, _)| f))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql("list files"))?;
        drop(stmt);
        audit_in(&self.conn, owner, AuditAction::List, None, None)?;
        Ok(files)
    }

    fn get_file(&mut self, owner: &str, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let found = self
            .conn
            .query_row(
                &format!("SELECT {FILE_COLUMNS}, summary FROM files WHERE owner = ?1 AND id = ?2"),
                params![owner, id],
                |r| file_row(r, true),
            )
            .optional()
            .map_err(sql("read file"))?
            .map(with_summary)
            .transpose()?;
        if found.is_some() {
            audit_in(&self.conn, owner, AuditAction::Read, Some(id), None)?;
        }
        Ok(found)
    }

    fn delete_file(&mut self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin delete"))?;
        let n = tx
            .execute(
                "DELETE FROM files WHERE owner = ?1 AND id = ?2",
                params![owner, id],
            )
            .map_err(sql("delete file"))?;
        if n > 0 {
            audit_in(&tx, owner, AuditAction::Delete, Some(id), None)?;
        }
        tx.commit().map_err(sql("commit delete"))?;
        Ok(n > 0)
    }

    fn metrics(&mut self, owner: &str, file_id: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT a.metric FROM aggregates a JOIN files f ON f.id = a.file_id
                 WHERE f.owner = ?1 AND (?2 IS NULL OR f.id = ?2) ORDER BY a.metric",
            )
            .map_err(sql("list metrics"))?;
        stmt.query_map(params![owner, file_id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql("list metrics"))
    }

    fn series(&mut self, owner: &str, q: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT a.start, a.unit, SUM(a.count), SUM(a.sum), MIN(a.min), MAX(a.max),
                        SUM(a.dedup_total)
                 FROM aggregates a JOIN files f ON f.id = a.file_id
                 WHERE f.owner = ?1 AND (?2 IS NULL OR f.id = ?2) AND a.metric = ?3
                   AND a.period = ?4 AND (?5 IS NULL OR a.start >= ?5)
                   AND (?6 IS NULL OR a.start <= ?6)
                 GROUP BY a.start, a.unit ORDER BY a.start, a.unit LIMIT ?7",
            )
            .map_err(sql("read series"))?;
        let points = stmt
            .query_map(
                params![
                    owner,
                    q.file_id,
                    q.metric,
                    period_name(q.period),
                    q.from,
                    q.to,
                    (q.limit + 1) as i64
                ],
                |r| {
                    let count = r.get::<_, i64>(2)? as u64;
                    let sum: f64 = r.get(3)?;
                    Ok(SeriesPoint {
                        start: r.get(0)?,
                        unit: r.get(1)?,
                        count,
                        sum,
                        min: r.get(4)?,
                        max: r.get(5)?,
                        mean: if count > 0 { sum / count as f64 } else { 0.0 },
                        dedup_total: r.get(6)?,
                    })
                },
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql("read series"))?;
        drop(stmt);
        let detail = format!("series {} by {}", q.metric, period_name(q.period));
        audit_in(
            &self.conn,
            owner,
            AuditAction::Read,
            q.file_id.as_deref(),
            Some(&detail),
        )?;
        Ok(points)
    }

    fn audit(
        &mut self,
        principal: &str,
        action: AuditAction,
        file_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        audit_in(&self.conn, principal, action, file_id, detail)
    }

    fn index(&mut self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT owner, id, name FROM files ORDER BY created_at, id")
            .map_err(sql("index files"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(sql("index files"))
    }

    fn audit_log(&mut self, principal: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT at, principal, action, file_id, detail FROM audit_log
                 WHERE principal = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(sql("read audit log"))?;
        stmt.query_map(params![principal, limit as i64], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                principal: r.get(1)?,
                action: r.get(2)?,
                file_id: r.get(3)?,
                detail: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(sql("read audit log"))
    }
}
