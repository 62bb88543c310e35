//! Shared by the health end-to-end tests: a real server on 127.0.0.1:0 with a temporary
//! data_dir and two users, raw HTTP uploads and queries, the database behind it, and the check
//! of a summary against the generator's truth.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use std::time::Duration;

use actors::health::synth::{self, AppleOptions, Truth};
use dust_mcp::{
    config::{Config, UserConfig},
    server::{self, RunningServer},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const USERS: [&str; 2] = ["alice", "bob"];
pub const ADMIN: &str = "root-token";

pub fn token(user: &str) -> String {
    format!("token-of-{user}")
}

pub fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub struct Harness {
    pub server: Option<RunningServer>,
    pub base: String,
    pub data_dir: std::path::PathBuf,
    pub client: awc::Client,
}

impl Harness {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Harness {
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

    pub async fn upload(&self, user: &str, name: &str, ctype: &str, body: Vec<u8>) -> (u16, Value) {
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

    pub async fn get(&self, user: &str, path: &str) -> (u16, Value) {
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

    pub async fn delete(&self, user: &str, path: &str) -> u16 {
        self.client
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token(user))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn files(&self, user: &str) -> Vec<Value> {
        let (status, body) = self.get(user, "/v1/health/files").await;
        assert_eq!(status, 200, "{body}");
        body["files"].as_array().unwrap().clone()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir.join("dust-mcp.sqlite3")).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The returned summary's figures are the generator's truth.
pub fn check_summary(rec: &Value, truth: &Truth) {
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

pub fn apple(zip: bool) -> (Vec<u8>, Truth) {
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
