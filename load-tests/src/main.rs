//! `mcp-load`: an MCP Streamable HTTP load generator that speaks the protocol itself (no SDK).
//!
//! # Layout
//! - `cli`: options and the safety rules (bounded runs, loopback only) → `Config`.
//! - `target`: URL parsing and the loopback check.
//! - `http`: one raw HTTP/1.1 connection (head parsing, body framing, chunked decoding).
//! - `sse`: incremental `text/event-stream` parser.
//! - `mcp`: one MCP session (initialize, requests answered as JSON or SSE, GET stream).
//! - `scenario/`: the load shapes (`idle`, `call`), one module each.
//! - `proc` + `sampler`: server and generator RSS/CPU from `/proc`, every 250 ms.
//! - `stats`: histograms and spreads; `report`: text, JSON and the report directory.
//!
//! Flow: `main` validates the options, raises the open-file limit, starts the sampler and the
//! progress bar, runs the scenario, then prints the summary.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

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

use crate::cli::{Args, Config};
use crate::mcp::ClientConfig;
use crate::scenario::{Live, RunContext};

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
    let expected = config.duration.map(|d| d + config.ramp_up);
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
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
