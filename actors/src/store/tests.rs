//! Store tests on a temporary SQLite file: scoping, duplicates, one transaction per file.

use super::*;
use crate::health::{self, synth, Limits, ParsedFile};

fn temp_db(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dust-mcp-store-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    dir.join(DB_FILE_NAME)
}

fn parsed_keto(seed: u64) -> (ParsedFile, synth::Truth) {
    let mut buf = Vec::new();
    let truth = synth::write_keto_mojo(&mut buf, seed, 20, None).unwrap();
    let parsed =
        health::parse_auto(&buf[..], Some("k.csv"), &Limits::default(), &mut |_| {}).unwrap();
    (parsed, truth)
}

fn new_file<'a>(owner: &'a str, sha: &'a str, p: &'a ParsedFile) -> NewFile<'a> {
    NewFile {
        owner,
        name: "keto.csv",
        bytes: 1234,
        sha256: sha,
        summary: &p.summary,
        aggregates: &p.aggregates,
    }
}

fn aggregate_rows(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT COUNT(*) FROM aggregates", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn migrations_run_once_and_reopening_keeps_data() {
    let path = temp_db("migrate");
    let (parsed, _) = parsed_keto(1);
    let id = {
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), 3);
        s.insert_file(new_file("alice", "aa", &parsed))
            .unwrap()
            .record()
            .id
            .clone()
    };
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 3);
    assert!(s.get_file("alice", &id).unwrap().is_some());
}

#[test]
fn files_are_scoped_to_their_owner_and_duplicates_are_found() {
    let path = temp_db("scope");
    let mut s = SqliteStore::open(&path).unwrap();
    let (parsed, truth) = parsed_keto(2);
    let first = s.insert_file(new_file("alice", "h1", &parsed)).unwrap();
    let Inserted::Created(rec) = first else {
        panic!("first upload must be created")
    };
    assert_eq!(rec.records, truth.records);
    let again = s.insert_file(new_file("alice", "h1", &parsed)).unwrap();
    assert!(
        matches!(again, Inserted::Existing(ref r) if r.id == rec.id && r.records == rec.records)
    );
    // The same content from another principal is that principal's own file.
    let bob = s.insert_file(new_file("bob", "h1", &parsed)).unwrap();
    assert!(matches!(bob, Inserted::Created(ref r) if r.id != rec.id));

    assert_eq!(s.list_files("alice").unwrap().len(), 1);
    assert!(s.get_file("bob", &rec.id).unwrap().is_none());
    assert!(!s.delete_file("bob", &rec.id).unwrap());
    assert!(s.get_file("alice", &rec.id).unwrap().is_some());
    let rows_before = aggregate_rows(&path);
    assert!(s.delete_file("alice", &rec.id).unwrap());
    assert!(s.get_file("alice", &rec.id).unwrap().is_none());
    assert_eq!(
        aggregate_rows(&path),
        rows_before - parsed.aggregates.len() as i64,
        "a deleted file's aggregates go with it"
    );
    let actions: Vec<String> = s
        .audit_log("alice", 10)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["delete", "read", "list", "upload", "upload"]);
}

#[test]
fn a_write_failing_mid_file_leaves_nothing_of_that_file() {
    let path = temp_db("atomic");
    let mut s = SqliteStore::open(&path).unwrap();
    let (parsed, _) = parsed_keto(3);
    assert!(parsed.aggregates.len() > 10);
    // Abort the 6th aggregate row of any file: the file row and 5 rows are already written.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fail_mid_file BEFORE INSERT ON aggregates
         WHEN (SELECT COUNT(*) FROM aggregates WHERE file_id = NEW.file_id) >= 5
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    let err = s.insert_file(new_file("alice", "h", &parsed)).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(s.list_files("alice").unwrap().is_empty());
    assert_eq!(aggregate_rows(&path), 0);
    let uploads = s
        .audit_log("alice", 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "upload")
        .count();
    assert_eq!(
        uploads, 0,
        "the upload's audit row is part of the same transaction"
    );
    conn.execute_batch("DROP TRIGGER fail_mid_file").unwrap();
    assert!(matches!(
        s.insert_file(new_file("alice", "h", &parsed)).unwrap(),
        Inserted::Created(_)
    ));
}

#[test]
fn series_merge_files_and_respect_bounds() {
    let path = temp_db("series");
    let mut s = SqliteStore::open(&path).unwrap();
    let (parsed, truth) = parsed_keto(4);
    let id = s
        .insert_file(new_file("alice", "a", &parsed))
        .unwrap()
        .record()
        .id
        .clone();
    let metric = "HKQuantityTypeIdentifierBloodGlucose".to_owned();
    assert!(s.metrics("alice", None).unwrap().contains(&metric));
    let q = |file_id: Option<String>, limit| SeriesQuery {
        file_id,
        metric: metric.clone(),
        period: Period::Day,
        from: None,
        to: None,
        limit,
    };
    let one = s.series("alice", &q(Some(id.clone()), 1000)).unwrap();
    let days: Vec<_> = truth.daily.keys().filter(|(m, _)| *m == metric).collect();
    assert_eq!(one.len(), days.len());
    let (_, day0) = days[0];
    let t0 = &truth.daily[&(metric.clone(), day0.clone())];
    assert_eq!(
        (one[0].start.as_str(), one[0].count),
        (day0.as_str(), t0.count)
    );
    assert!((one[0].sum - t0.sum).abs() < 1e-9);
    // A second file of the same principal doubles every point of the merged series.
    s.insert_file(new_file("alice", "b", &parsed)).unwrap();
    let both = s.series("alice", &q(None, 1000)).unwrap();
    assert_eq!(both[0].count, 2 * t0.count);
    assert!(s.series("bob", &q(None, 1000)).unwrap().is_empty());
    assert_eq!(
        s.series("alice", &q(None, 3)).unwrap().len(),
        4,
        "limit + 1 tells a cut"
    );
}
