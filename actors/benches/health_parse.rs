//! Throughput of the Apple Health export.xml parser: generates a synthetic export (100 MB, or
//! `HEALTH_BENCH_MB=1000` for 1 GB) into a temp file, parses it on one thread, and prints MB/s
//! and the growth of peak RSS (VmHWM). `HEALTH_BENCH_ZIP=1` also measures the zipped export.

use std::fs::File;
use std::time::SystemTime;

use actors::health::{parse, synth, Format, Limits};

fn status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn measure(label: &str, path: &std::path::Path, format: Format, xml_bytes: u64) {
    let hwm_before = status("VmHWM:");
    let rss_before = status("VmRSS:");
    let started = SystemTime::now();
    let file = File::open(path).unwrap();
    let parsed = parse(format, file, &Limits::default(), &mut |_| {}).unwrap();
    let secs = started.elapsed().unwrap().as_secs_f64();
    let hwm_after = status("VmHWM:");
    let mb = xml_bytes as f64 / 1e6;
    println!(
        "{label}: {mb:.1} MB of XML in {secs:.2} s = {:.0} MB/s ({:.2} M records/s), {} records, {} day rows; \
         peak RSS {} -> {} KiB (growth {} KiB over RSS {rss_before} KiB before)",
        mb / secs,
        parsed.summary.records as f64 / secs / 1e6,
        parsed.summary.records,
        parsed.aggregates.len(),
        hwm_before,
        hwm_after,
        hwm_after.saturating_sub(hwm_before.max(rss_before)),
    );
}

fn main() {
    let mb: u64 = std::env::var("HEALTH_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = std::env::temp_dir();
    let xml = dir.join(format!("health_bench_{}.xml", std::process::id()));
    let opts = synth::AppleOptions {
        target_bytes: Some(mb * 1_000_000),
        seed: 42,
        ..Default::default()
    };
    let truth = synth::write_apple_export(File::create(&xml).unwrap(), &opts).unwrap();
    println!(
        "generated {} bytes, {} records, {} days",
        truth.bytes, truth.records, truth.days
    );
    measure("export.xml", &xml, Format::AppleHealthXml, truth.bytes);
    if std::env::var("HEALTH_BENCH_ZIP").is_ok_and(|v| v == "1") {
        let zip = dir.join(format!("health_bench_{}.zip", std::process::id()));
        let zopts = synth::AppleOptions { zip: true, ..opts };
        synth::write_apple_export(File::create(&zip).unwrap(), &zopts).unwrap();
        let zlen = std::fs::metadata(&zip).map(|m| m.len()).unwrap_or(0);
        println!("zip: {zlen} bytes compressed");
        measure("export.zip", &zip, Format::AppleHealthZip, truth.bytes);
        let _ = std::fs::remove_file(&zip);
    }
    let _ = std::fs::remove_file(&xml);
}
