//! Health uploads end to end on a real server (127.0.0.1:0, temporary data_dir): every format
//! against its generator's truth, duplicates, scoping, refusals that store nothing, the bounded
//! pool, a panicking parser, an injected mid-file write failure, and the MCP tools.

use std::time::Duration;

use actors::health::synth::{self, AppleOptions, Truth, ZipStream};
use dust_mcp::{
    config::{Config, UserConfig},
    server::{self, RunningServer},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const USERS: [&str; 2] = ["alice", "bob"];
const ADMIN: &str = "root-token";

fn token(user: &str) -> String {
    format!("token-of-{user}")
}

fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

struct Harness {
    server: Option<RunningServer>,
    base: String,
    data_dir: std::path::PathBuf,
    client: awc::Client,
}

impl Harness {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Harness {
        let data_dir = std::env::temp_dir().join(format!(
            "dust-mcp-health-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            admin_token_sha256: Some(sha_hex(ADMIN)),
            users: USERS
                .iter()
                .map(|u| UserConfig {
                    name: (*u).into(),
                    token_sha256: sha_hex(&token(u)),
                    full_name: None,
                    email: None,
                    timezone: None,
                    dust_api_key: None,
                })
                .collect(),
            ..Config::default()
        };
        config.http.workers = 2;
        config.http.max_body_bytes = 16 << 20;
        tweak(&mut config);
        let server = server::start(config).await.unwrap();
        Harness {
            base: format!("http://{}", server.addr),
            server: Some(server),
            data_dir,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .finish(),
        }
    }

    async fn upload(&self, user: &str, name: &str, ctype: &str, body: Vec<u8>) -> (u16, Value) {
        let mut res = self
            .client
            .post(format!("{}/v1/health/files?name={name}", self.base))
            .bearer_auth(token(user))
            .insert_header(("Content-Type", ctype))
            .send_body(body)
            .await
            .unwrap();
        let body = res.body().limit(64 << 20).await.unwrap();
        (
            res.status().as_u16(),
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, user: &str, path: &str) -> (u16, Value) {
        let mut res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token(user))
            .send()
            .await
            .unwrap();
        let body = res.body().limit(64 << 20).await.unwrap();
        (
            res.status().as_u16(),
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }

    async fn delete(&self, user: &str, path: &str) -> u16 {
        self.client
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token(user))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn files(&self, user: &str) -> Vec<Value> {
        let (status, body) = self.get(user, "/v1/health/files").await;
        assert_eq!(status, 200, "{body}");
        body["files"].as_array().unwrap().clone()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir.join("dust-mcp.sqlite3")).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The returned summary's figures are the generator's truth.
fn check_summary(rec: &Value, truth: &Truth) {
    let s = &rec["summary"];
    assert_eq!(rec["records"], json!(truth.records), "records");
    assert_eq!(s["days"], json!(truth.days), "days");
    let metrics = s["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), truth.metrics.len());
    for (kind, t) in &truth.metrics {
        let m = metrics.iter().find(|m| m["type"] == json!(kind)).unwrap();
        assert_eq!(m["unit"], json!(t.unit), "{kind} unit");
        assert_eq!(m["count"], json!(t.count), "{kind} count");
        for (what, want) in [
            ("min", t.min),
            ("max", t.max),
            ("mean", t.mean),
            ("stddev", t.stddev),
        ] {
            let got = m[what].as_f64().unwrap();
            assert!(close(got, want), "{kind} {what}: {got} vs truth {want}");
        }
        assert_eq!(m["first"], json!(t.first), "{kind} first");
        assert_eq!(m["last"], json!(t.last), "{kind} last");
    }
}

fn apple(zip: bool) -> (Vec<u8>, Truth) {
    let mut out = Vec::new();
    let t = synth::write_apple_export(
        &mut out,
        &AppleOptions {
            zip,
            days: 10,
            ..Default::default()
        },
    )
    .unwrap();
    (out, t)
}

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

struct Mcp<'a> {
    h: &'a Harness,
    user: &'a str,
    session: String,
    next: u64,
}

impl<'a> Mcp<'a> {
    async fn open(h: &'a Harness, user: &'a str) -> Mcp<'a> {
        let mut res = h
            .client
            .post(format!("{}/mcp", h.base))
            .bearer_auth(token(user))
            .insert_header(("Accept", "application/json, text/event-stream"))
            .insert_header(("Content-Type", "application/json"))
            .send_json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "health-test", "version": "1"}}}))
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let session = res
            .headers()
            .get("mcp-session-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let _ = res.body().await;
        let mut m = Mcp {
            h,
            user,
            session,
            next: 1,
        };
        m.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        m
    }

    async fn post(&mut self, msg: Value) -> Value {
        let mut res = self
            .h
            .client
            .post(format!("{}/mcp", self.h.base))
            .bearer_auth(token(self.user))
            .insert_header(("Accept", "application/json"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Mcp-Session-Id", self.session.as_str()))
            .insert_header(("MCP-Protocol-Version", "2025-11-25"))
            .send_json(&msg)
            .await
            .unwrap();
        let body = res.body().limit(64 << 20).await.unwrap();
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let reply = self
            .post(json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params}))
            .await;
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    async fn tool(&mut self, name: &str, args: Value) -> Value {
        self.call("tools/call", json!({"name": name, "arguments": args}))
            .await
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or("")
}

#[actix_rt::test]
async fn the_mcp_tools_upload_summarise_query_and_delete_with_audit_rows() {
    let h = Harness::start(|_| {}).await;
    let mut mcp = Mcp::open(&h, "alice").await;
    let tools = mcp.call("tools/list", json!({})).await;
    for t in tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("health_"))
    {
        assert!(!t["description"].as_str().unwrap().is_empty());
        assert_eq!(
            t["inputSchema"]["additionalProperties"], false,
            "{}",
            t["name"]
        );
        assert!(t.get("annotations").is_some());
    }
    let mut csv = Vec::new();
    let truth = synth::write_keto_mojo(&mut csv, 6, 40, None).unwrap();
    let up = mcp
        .tool(
            "health_upload",
            json!({"name": "keto.csv", "content": String::from_utf8(csv).unwrap()}),
        )
        .await;
    assert_ne!(up["isError"], true, "{up}");
    let id = up["structuredContent"]["id"].as_str().unwrap().to_owned();

    let sum = mcp.tool("health_summary", json!({"file_id": id})).await;
    let s = &sum["structuredContent"];
    assert_eq!(
        (s["file_id"].as_str(), s["records"].as_u64()),
        (Some(id.as_str()), Some(truth.records))
    );
    let glucose = "HKQuantityTypeIdentifierBloodGlucose";
    let m = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == glucose)
        .unwrap();
    assert!(close(
        m["mean"].as_f64().unwrap(),
        truth.metrics[glucose].mean
    ));
    assert!(text(&sum).contains("Blood Glucose"));

    let day_truth: Vec<_> = truth
        .daily
        .iter()
        .filter(|((m, _), _)| m == glucose)
        .collect();
    let day = mcp
        .tool(
            "health_query",
            json!({"metric": "bloodglucose", "granularity": "day"}),
        )
        .await;
    let points = day["structuredContent"]["points"].as_array().unwrap();
    assert_eq!(points.len(), day_truth.len());
    for (p, ((_, d), t)) in points.iter().zip(&day_truth) {
        assert_eq!(
            (p["start"].as_str(), p["count"].as_u64()),
            (Some(d.as_str()), Some(t.count))
        );
    }
    let total: u64 = day_truth.iter().map(|(_, t)| t.count).sum();
    for g in ["week", "month"] {
        let r = mcp
            .tool(
                "health_query",
                json!({"file_id": id, "metric": glucose, "granularity": g}),
            )
            .await;
        let pts = r["structuredContent"]["points"].as_array().unwrap();
        assert!(!pts.is_empty() && pts.len() < points.len(), "{g}");
        assert_eq!(
            pts.iter()
                .map(|p| p["count"].as_u64().unwrap())
                .sum::<u64>(),
            total,
            "{g} counts add up"
        );
    }
    let first = points[0]["start"].as_str().unwrap();
    let bounded = mcp
        .tool(
            "health_query",
            json!({"metric": glucose, "granularity": "day", "from": first, "to": first}),
        )
        .await;
    assert_eq!(
        bounded["structuredContent"]["points"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let wrong = mcp
        .tool(
            "health_query",
            json!({"metric": "heart rate", "granularity": "day"}),
        )
        .await;
    assert_eq!(wrong["isError"], true);
    assert!(
        text(&wrong).contains("blood_ketone"),
        "lists what exists: {wrong}"
    );

    let listed = mcp.call("resources/list", json!({})).await;
    let uri = format!("health://files/{id}/summary");
    assert!(listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["uri"] == json!(uri)));
    let read = mcp.call("resources/read", json!({"uri": uri})).await;
    assert!(read["contents"][0]["text"].as_str().unwrap().contains(&id));
    let prompt = mcp
        .call(
            "prompts/get",
            json!({"name": "health_review", "arguments": {"file_id": id}}),
        )
        .await;
    assert!(prompt["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("health_summary"));

    // Bob's session sees none of it.
    let mut bob = Mcp::open(&h, "bob").await;
    let theirs = bob.tool("health_summary", json!({"file_id": id})).await;
    assert_eq!(theirs["isError"], true);
    assert_eq!(
        bob.tool("health_delete_file", json!({"file_id": id})).await["isError"],
        true
    );

    // An upload link works without a bearer token and files under Alice.
    let link = mcp.tool("health_upload_link", json!({})).await;
    let url = link["structuredContent"]["upload_url"].as_str().unwrap();
    let mut labs = Vec::new();
    synth::write_lab_csv(&mut labs, 2, 3, None).unwrap();
    let res = h
        .client
        .post(format!("{url}?name=labs.csv"))
        .insert_header(("Content-Type", "text/csv"))
        .send_body(labs)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let forged = h
        .client
        .post(format!("{}/v1/health/upload/not-a-token", h.base))
        .send_body("x")
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let page_url = link["structuredContent"]["page_url"].as_str().unwrap();
    let mut page = h.client.get(page_url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(String::from_utf8(page.body().await.unwrap().to_vec())
        .unwrap()
        .contains("/v1/health/upload/"));
    assert_eq!(h.files("alice").await.len(), 2);

    let del = mcp.tool("health_delete_file", json!({"file_id": id})).await;
    assert_ne!(del["isError"], true, "{del}");
    assert_eq!(
        mcp.tool("health_summary", json!({"file_id": id})).await["isError"],
        true
    );

    let actions: Vec<String> = h
        .db()
        .prepare("SELECT DISTINCT action FROM audit_log WHERE principal = 'alice' ORDER BY action")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(actions, ["delete", "list", "read", "upload"]);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM audit_log WHERE principal = 'bob' AND action = 'delete'"),
        0
    );
    h.stop().await;
}
