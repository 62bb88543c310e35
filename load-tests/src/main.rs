//! `mcp-load`: an MCP Streamable HTTP load generator that speaks the protocol itself (no SDK).
//!
//! # Layout
//! - `cli`: options and the safety rules (bounded runs, loopback only) → `Config`.
//! - `target`: URL parsing and the loopback check.
//! - `http`: one raw HTTP/1.1 connection (head parsing, body framing, chunked decoding).
//! - `sse`: incremental `text/event-stream` parser.
//! - `mcp`: one MCP session (initialize, requests answered as JSON or SSE, GET stream).
//! - `scenario/`: the load shapes (`idle`, `call`; `ask` and `upload` run in `call` with the
//!   timing of `ask.rs` and the uploaders of `upload.rs`).
//! - `proc` + `sampler`: server and generator RSS/CPU from `/proc`, every 250 ms.
//! - `stats`: histograms and spreads; `report`: text, JSON and the report directory;
//!   `chart`: its `chart.svg`. `gen-health` writes a synthetic export.xml for `upload`.
//!
//! Flow: `main` validates the options, raises the open-file limit, starts the sampler and the
//! progress bar, runs the scenario, then prints the summary.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod chart;
mod cli;
mod http;
mod mcp;
mod proc;
mod progress;
mod report;
mod sampler;
mod scenario;
mod sse;
mod stats;
mod target;

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use tracing::warn;

use crate::cli::{Args, Command, Config};
use crate::mcp::ClientConfig;
use crate::scenario::{Live, RunContext};

/// The generator shares the box with the server it measures: the lighter it is, the better.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Raises the soft open-file limit to the hard one: 10,000 idle sessions need 10,000 sockets.
fn raise_nofile_limit(sessions: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < sessions as u64 + 64 => warn!(
            limit,
            sessions, "open-file limit is below the session count; some sessions will fail"
        ),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not raise the open-file limit"),
    }
}

async fn run(config: Config, quiet: bool) -> report::Summary {
    let config = Arc::new(config);
    let client = Arc::new(ClientConfig {
        target: config.target.clone(),
        authorization: config.token.as_ref().map(|t| format!("Bearer {t}")),
        timeout: config.timeout,
    });
    let live = Arc::new(Live::default());
    let t0 = tokio::time::Instant::now();
    let sampler = sampler::Sampler::start(config.pid, live.clone(), t0);
    let expected = config.duration.map(|d| d + config.ramp_up + config.warm_up);
    let progress = progress::Progress::start(quiet, live.clone(), config.sessions, expected);
    let ctx = RunContext {
        config: config.clone(),
        client,
        live,
        t0,
    };
    let outcome = scenario::run(ctx).await;
    if let Some(p) = progress {
        p.finish();
    }
    let timeline = sampler.stop().await;
    report::build(&config, outcome, timeline)
}

/// `mcp-load gen-health`: the project's seeded Apple Health generator, to a file.
fn gen_health(mb: f64, out: &std::path::Path, seed: u64) -> anyhow::Result<()> {
    use actors::health::synth::{write_apple_export, AppleOptions};
    anyhow::ensure!(
        mb.is_finite() && mb > 0.0 && mb <= 4096.0,
        "--mb must be above 0 and at most 4096, got {mb}"
    );
    let file = std::fs::File::create(out).with_context(|| format!("create {}", out.display()))?;
    let opts = AppleOptions {
        seed,
        target_bytes: Some((mb * 1024.0 * 1024.0) as u64),
        ..AppleOptions::default()
    };
    let truth =
        write_apple_export(file, &opts).with_context(|| format!("write {}", out.display()))?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({:.1} MiB, seed {seed}): {} records the parser should count, {} days",
        out.display(),
        bytes as f64 / (1024.0 * 1024.0),
        truth.records,
        truth.days
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if let Some(Command::GenHealth { mb, out, seed }) = &args.command {
        return gen_health(*mb, out, *seed);
    }
    let config = args.validate()?;
    if let Some(pid) = config.pid {
        proc::read(proc::Pid::Other(pid))
            .with_context(|| format!("--pid {pid}: cannot read /proc/{pid}"))?;
    }
    raise_nofile_limit(config.sessions);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let summary = runtime.block_on(run(config, args.quiet));
    if let Some(dir) = &args.report {
        report::write_dir(dir, &summary)
            .with_context(|| format!("write report to {}", dir.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", report::render_text(&summary));
    }
    Ok(())
}
