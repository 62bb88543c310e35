//! Health uploads end to end on a real server (127.0.0.1:0, temporary data_dir): every format
//! against its generator's truth, duplicates, scoping, refusals that store nothing, the bounded
//! pool, a panicking parser and an injected mid-file write failure. The MCP tools are in
//! `health_tools.rs`.

#[path = "common/health.rs"]
mod health;

use std::time::Duration;

use actors::health::synth::{self, AppleOptions, Truth, ZipStream};
use health::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[actix_rt::test]
async fn every_format_is_parsed_stored_and_summarised_as_the_generator_says() {
    let h = Harness::start(|_| {}).await;
    let mut cases: Vec<(&str, &str, &str, Vec<u8>, Truth)> = Vec::new();
    let (xml, t) = apple(false);
    cases.push(("export.xml", "application/xml", "apple_health_xml", xml, t));
    let (zip, t) = apple(true);
    cases.push(("export.zip", "application/zip", "apple_health_zip", zip, t));
    let mut b = Vec::new();
    let t = synth::write_keto_mojo(&mut b, 3, 30, None).unwrap();
    cases.push(("keto.csv", "text/csv", "keto_mojo_csv", b, t));
    let mut b = Vec::new();
    let t = synth::write_lab_csv(&mut b, 5, 12, None).unwrap();
    cases.push(("labs.csv", "text/csv", "lab_csv", b, t));
    let mut b = Vec::new();
    let t = synth::write_fhir(&mut b, 11, 20, false, None).unwrap();
    cases.push(("bundle.json", "application/fhir+json", "fhir_bundle", b, t));
    let mut b = Vec::new();
    let t = synth::write_fhir(&mut b, 12, 20, true, None).unwrap();
    cases.push(("obs.ndjson", "application/x-ndjson", "fhir_ndjson", b, t));
    for (name, ctype, format, body, truth) in cases {
        let len = body.len();
        let sha = hex::encode(Sha256::digest(&body));
        let (status, rec) = h.upload("alice", name, ctype, body).await;
        assert_eq!(status, 201, "{name}: {rec}");
        assert_eq!(rec["format"], format, "{name}");
        assert_eq!(
            (rec["bytes"].as_u64(), rec["sha256"].as_str()),
            (Some(len as u64), Some(sha.as_str()))
        );
        assert_eq!(rec["status"], "ready");
        check_summary(&rec, &truth);
        let (status, again) = h
            .get(
                "alice",
                &format!("/v1/health/files/{}", rec["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(status, 200);
        check_summary(&again, &truth);
    }
    assert_eq!(h.files("alice").await.len(), 6);
    h.stop().await;
}

#[actix_rt::test]
async fn a_gzip_body_is_the_same_file_and_a_duplicate_returns_the_existing_record() {
    use std::io::Write;
    let h = Harness::start(|_| {}).await;
    let mut csv = Vec::new();
    let truth = synth::write_keto_mojo(&mut csv, 9, 15, None).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&csv).unwrap();
    let mut res = h
        .client
        .post(format!("{}/v1/health/files?name=keto.csv", h.base))
        .bearer_auth(token("alice"))
        .insert_header(("Content-Type", "text/csv"))
        .insert_header(("Content-Encoding", "gzip"))
        .send_body(gz.finish().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let first: Value = res.json().limit(16 << 20).await.unwrap();
    check_summary(&first, &truth);
    assert_eq!(
        first["bytes"],
        json!(csv.len()),
        "bytes of the decompressed file"
    );
    // The same content, uncompressed this time: recognised, not stored twice.
    let (status, dup) = h.upload("alice", "again.csv", "text/csv", csv).await;
    assert_eq!(status, 200, "{dup}");
    assert_eq!(dup["id"], first["id"]);
    assert_eq!(h.files("alice").await.len(), 1);
    let path = format!("/v1/health/files/{}", first["id"].as_str().unwrap());
    assert_eq!(h.delete("alice", &path).await, 204);
    assert_eq!(h.get("alice", &path).await.0, 404);
    assert_eq!(h.delete("alice", &path).await, 404);
    assert!(h.files("alice").await.is_empty());
    h.stop().await;
}

#[actix_rt::test]
async fn another_principal_can_neither_see_nor_delete_a_file() {
    let h = Harness::start(|_| {}).await;
    let mut csv = Vec::new();
    synth::write_lab_csv(&mut csv, 1, 4, None).unwrap();
    let (status, rec) = h.upload("alice", "labs.csv", "text/csv", csv.clone()).await;
    assert_eq!(status, 201);
    let path = format!("/v1/health/files/{}", rec["id"].as_str().unwrap());
    assert!(h.files("bob").await.is_empty());
    let (status, err) = h.get("bob", &path).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["type"], "not_found");
    assert_eq!(h.delete("bob", &path).await, 404);
    assert_eq!(
        h.get("alice", &path).await.0,
        200,
        "still there for its owner"
    );
    // Bob uploading the same bytes gets a file of his own, not Alice's.
    let (status, bobs) = h.upload("bob", "labs.csv", "text/csv", csv).await;
    assert_eq!(status, 201);
    assert_ne!(bobs["id"], rec["id"]);
    let unauth = h
        .client
        .get(format!("{}/v1/health/files", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status().as_u16(), 401);
    h.stop().await;
}

#[actix_rt::test]
async fn bad_uploads_are_refused_with_a_clear_error_and_nothing_is_stored() {
    let h = Harness::start(|c| c.health.max_upload_bytes = 3_000_000).await;
    let (status, err) = h
        .upload(
            "alice",
            "notes.txt",
            "application/octet-stream",
            b"just some words\n".to_vec(),
        )
        .await;
    assert_eq!(status, 415, "{err}");
    assert_eq!(err["error"]["type"], "unsupported_format");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Keto-Mojo CSV"),
        "{err}"
    );
    let (status, err) = h
        .upload("alice", "x.png", "image/png", vec![0x89, b'P', b'N', b'G'])
        .await;
    assert_eq!(status, 415);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/zip"),
        "{err}"
    );

    let (xml, _) = apple(false);
    let cut = xml[..xml.len() / 2].to_vec();
    let (status, err) = h
        .upload("alice", "export.xml", "application/xml", cut)
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["type"], "truncated");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("byte "),
        "position given: {err}"
    );

    let mut z = ZipStream::new(Vec::new());
    z.entry("../../etc/evil.xml", |w| w.write_all(b"<HealthData/>"))
        .unwrap();
    let (status, err) = h
        .upload(
            "alice",
            "export.zip",
            "application/zip",
            z.finish().unwrap(),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["type"], "unsafe_zip");

    let mut big = Vec::new();
    let opts = AppleOptions {
        target_bytes: Some(4_000_000),
        ..Default::default()
    };
    synth::write_apple_export(&mut big, &opts).unwrap();
    let (status, err) = h.upload("alice", "big.xml", "application/xml", big).await;
    assert_eq!(status, 413, "{err}");

    assert!(h.files("alice").await.is_empty());
    assert_eq!(h.count("SELECT COUNT(*) FROM files"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM aggregates"), 0);
    assert!(
        h.count("SELECT COUNT(*) FROM audit_log WHERE action = 'upload' AND file_id IS NULL AND principal = 'alice'") >= 3,
        "refused uploads are audited"
    );
    h.stop().await;
}

#[actix_rt::test]
async fn a_full_pool_refuses_at_once_with_503_and_retry_after() {
    let h = Harness::start(|c| {
        c.health.queue = 1;
        c.health.workers = 1;
    })
    .await;
    let mut csv = Vec::new();
    let truth = synth::write_keto_mojo(&mut csv, 2, 30, None).unwrap();
    // awc holds small chunks back until its buffer fills, so the slow client is a plain
    // socket on its own thread that sends half the body, then waits for the go-ahead.
    let half = csv.len() / 2;
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let addr = h.server.as_ref().unwrap().addr;
    let body = csv.clone();
    let slow = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        write!(
            sock,
            "POST /v1/health/files?name=slow.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            token("alice"),
            body.len()
        )
        .unwrap();
        sock.write_all(&body[..half]).unwrap();
        sock.flush().unwrap();
        wait.recv_timeout(Duration::from_secs(60)).unwrap();
        sock.write_all(&body[half..]).unwrap();
        let mut response = String::new();
        sock.read_to_string(&mut response).unwrap();
        response
    });
    // Wait (bounded) until the slow upload holds the only slot, as /admin/status shows.
    let mut seen = false;
    for _ in 0..400 {
        let mut res = h
            .client
            .get(format!("{}/admin/status", h.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status: Value = res.json().await.unwrap();
        if status["health"]["jobs"]
            .as_array()
            .is_some_and(|j| !j.is_empty())
        {
            assert_eq!(status["health"]["jobs"][0]["name"], "slow.csv");
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(seen, "the slow upload never showed up in /admin/status");
    let res = h
        .client
        .post(format!("{}/v1/health/files?name=other.csv", h.base))
        .bearer_auth(token("bob"))
        .insert_header(("Content-Type", "text/csv"))
        .send_body(csv.clone())
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().get("retry-after").is_some());
    assert!(
        h.files("bob").await.is_empty(),
        "a refused upload stores nothing"
    );
    go.send(()).unwrap();
    let response = actix_rt::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let (_, json_body) = response.split_once("\r\n\r\n").unwrap();
    let rec: Value = serde_json::from_str(json_body).unwrap();
    check_summary(&rec, &truth);
    let (status, _) = h.upload("bob", "other.csv", "text/csv", csv).await;
    assert_eq!(status, 201, "the slot is free again");
    h.stop().await;
}

#[actix_rt::test]
async fn a_parser_panic_fails_that_file_and_the_same_worker_parses_the_next() {
    let h = Harness::start(|c| {
        c.health.test_hooks = true;
        c.health.workers = 1;
    })
    .await;
    let mut csv = Vec::new();
    synth::write_keto_mojo(&mut csv, 4, 10, None).unwrap();
    for _ in 0..2 {
        let (status, err) = h
            .upload("alice", "__panic_test_hook__", "text/csv", csv.clone())
            .await;
        assert_eq!(status, 500, "{err}");
        assert_eq!(err["error"]["type"], "parser_crashed");
    }
    assert!(h.files("alice").await.is_empty());
    let (status, rec) = h.upload("alice", "keto.csv", "text/csv", csv).await;
    assert_eq!(status, 201, "the only worker survived two panics: {rec}");
    h.stop().await;
}

#[actix_rt::test]
async fn a_write_failing_mid_file_leaves_nothing_of_that_file() {
    let h = Harness::start(|_| {}).await;
    h.db()
        .execute_batch(
            "CREATE TRIGGER fail_mid_file BEFORE INSERT ON aggregates
             WHEN (SELECT COUNT(*) FROM aggregates WHERE file_id = NEW.file_id) >= 10
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let (xml, truth) = apple(false);
    let (status, err) = h
        .upload("alice", "export.xml", "application/xml", xml.clone())
        .await;
    assert_eq!(status, 500, "{err}");
    assert_eq!(err["error"]["type"], "storage");
    assert_eq!(h.count("SELECT COUNT(*) FROM files"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM aggregates"), 0);
    assert!(h.files("alice").await.is_empty());
    h.db().execute_batch("DROP TRIGGER fail_mid_file").unwrap();
    let (status, rec) = h
        .upload("alice", "export.xml", "application/xml", xml)
        .await;
    assert_eq!(status, 201, "the same file stores once the failure is gone");
    check_summary(&rec, &truth);
    h.stop().await;
}

// === MCP ===
