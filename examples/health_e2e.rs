//! End-to-end health upload benchmark over loopback: a real server (no auth, temporary
//! data_dir), synthetic Apple Health export.xml of 10 MB and 100 MB and the 100 MB export as a
//! zip, each POSTed to /v1/health/files; prints MB/s from first byte sent to the stored summary.
//! Run: `cargo run --release --example health_e2e` (`HEALTH_E2E_MB=10,100` to choose sizes).

use std::time::{Duration, SystemTime};

use actors::health::synth::{self, AppleOptions};
use dust_mcp::{config::Config, server};

async fn post(
    client: &awc::Client,
    base: &str,
    name: &str,
    ctype: &str,
    body: Vec<u8>,
) -> (f64, u64) {
    let started = SystemTime::now();
    let mut res = client
        .post(format!("{base}/v1/health/files?name={name}"))
        .insert_header(("Content-Type", ctype))
        .send_body(body)
        .await
        .expect("upload");
    let json: serde_json::Value = res.json().limit(256 << 20).await.expect("json");
    let secs = started.elapsed().unwrap_or_default().as_secs_f64();
    assert!(res.status().is_success(), "{json}");
    (secs, json["records"].as_u64().unwrap_or(0))
}

#[actix_rt::main]
async fn main() {
    let sizes: Vec<u64> = std::env::var("HEALTH_E2E_MB")
        .unwrap_or_else(|_| "10,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data_dir = std::env::temp_dir().join(format!("dust-mcp-e2e-{}", std::process::id()));
    let mut config = Config {
        bind: "127.0.0.1:0".parse().expect("addr"),
        data_dir: data_dir.clone(),
        no_auth: true,
        ..Config::default()
    };
    config.health.queue = 2;
    let running = server::start(config).await.expect("server");
    let base = format!("http://{}", running.addr);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(600))
        .finish();
    for (i, mb) in sizes.iter().enumerate() {
        let opts = AppleOptions {
            seed: 42 + i as u64,
            target_bytes: Some(mb * 1_000_000),
            ..Default::default()
        };
        let mut xml = Vec::new();
        let truth = synth::write_apple_export(&mut xml, &opts).expect("generate");
        let xml_mb = xml.len() as f64 / 1e6;
        let (secs, records) = post(&client, &base, "export.xml", "application/xml", xml).await;
        println!(
            "export.xml {xml_mb:.1} MB: {secs:.2} s upload->summary = {:.1} MB/s, {records} records (truth {})",
            xml_mb / secs,
            truth.records
        );
        if i + 1 == sizes.len() {
            let mut zip = Vec::new();
            synth::write_apple_export(
                &mut zip,
                &AppleOptions {
                    zip: true,
                    seed: 1000,
                    ..opts
                },
            )
            .expect("generate zip");
            let zip_mb = zip.len() as f64 / 1e6;
            let (secs, records) = post(&client, &base, "export.zip", "application/zip", zip).await;
            println!(
                "export.zip {zip_mb:.1} MB compressed ({xml_mb:.1} MB of XML): {secs:.2} s = {:.1} MB/s of XML, {records} records",
                xml_mb / secs
            );
        }
    }
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
