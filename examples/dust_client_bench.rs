//! Benchmark of the Dust client against the simulator on loopback: requests per second it
//! sustains with the rate limiter lifted, and how fast an answer stream resumes after the
//! upstream drops it. Prints figures; asserts nothing.
//!
//! Run: `cargo run --release --example dust_client_bench -- [concurrency] [seconds] [drops]`
use std::time::Duration;

use actors::dust::{AgentEvent, DustSettings, DustShared, NewMessage, Secret, UserContext};
use dust_mcp::simulator::{Knobs, SimConfig, Simulator};
use futures::StreamExt;
use tokio::time::Instant;

fn fast() -> Knobs {
    Knobs {
        token_interval_ms: Some(1),
        first_token_delay_ms: Some(1),
        message_limit_per_minute: Some(1_000_000),
        ..Knobs::default()
    }
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[actix_rt::main]
async fn main() -> anyhow::Result<()> {
    let concurrency = arg(1, 32) as usize;
    let seconds = arg(2, 5);
    let drops = arg(3, 50) as u32;

    let sim = Simulator::start(SimConfig {
        knobs: fast(),
        workers: 2,
        ..SimConfig::default()
    })
    .await?;
    let mut settings = DustSettings::new(sim.url(), Secret::new(sim.api_key()), sim.workspace_id());
    settings.rate_limit_per_sec = 0;
    settings.pool_limit = concurrency.max(1);
    let shared = DustShared::new(settings)?;
    let client = shared.client();
    let message = NewMessage {
        content: "benchmark".into(),
        agent_id: "wR1ter9Xk4".into(),
        context: UserContext::new("bench"),
    };
    let posted = client.create_conversation(&message, &[], None).await?;

    // 1. Sustained GET conversation (each one a real round trip: nothing is cached).
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let client = client.clone();
        let cid = posted.conversation_id.clone();
        async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                match client.get_conversation(&cid).await {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        }
    });
    let results = futures::future::join_all(workers).await;
    let elapsed = start.elapsed().as_secs_f64();
    let ok: u64 = results.iter().map(|r| r.0).sum();
    let failed: u64 = results.iter().map(|r| r.1).sum();
    println!(
        "get_conversation: {ok} ok, {failed} failed in {elapsed:.2} s = {:.0} req/s (concurrency {concurrency}, one client thread, simulator 2 workers)",
        ok as f64 / elapsed
    );

    // 2. Resume time after an upstream drop: every connection of every answer drops after 5 events.
    sim.set_knobs(Knobs {
        drop_after_events: Some(5),
        drop_connections: Some(drops),
        tokens_per_answer: Some(40),
        ..fast()
    });
    let mut resume_ms: Vec<u64> = Vec::new();
    let mut first_token_us: Vec<u64> = Vec::new();
    let mut answers = 0;
    // Each connection consumes one unit of `drop_connections`, dropped or not; stop once an
    // answer sees no drop (the countdown is spent).
    loop {
        let posted = client
            .post_message(&posted.conversation_id, &message)
            .await?;
        let mut stream =
            client.stream_agent_message(&posted.conversation_id, &posted.agent_message_id);
        let mut reconnected_at: Option<Instant> = None;
        let before = resume_ms.len();
        while let Some(ev) = stream.next().await {
            let ev = ev?;
            if std::env::var_os("BENCH_DEBUG").is_some() {
                eprintln!("{:?} {ev:?}", start.elapsed());
            }
            match ev {
                AgentEvent::Reconnected { after_ms, .. } => {
                    resume_ms.push(after_ms);
                    reconnected_at = Some(Instant::now());
                }
                AgentEvent::TextDelta { .. } => {
                    if let Some(at) = reconnected_at.take() {
                        first_token_us.push(at.elapsed().as_micros() as u64);
                    }
                }
                _ => {}
            }
        }
        answers += 1;
        if resume_ms.len() == before {
            break;
        }
    }
    if resume_ms.is_empty() || first_token_us.is_empty() {
        anyhow::bail!("no resume observed");
    }
    resume_ms.sort_unstable();
    first_token_us.sort_unstable();
    let pct = |v: &[u64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "resume after drop: {} resumes over {answers} answers; drop detected -> new stream open: median {} ms, p95 {} ms, max {} ms; new stream open -> next token: median {} us, p95 {} us",
        resume_ms.len(),
        pct(&resume_ms, 0.5),
        pct(&resume_ms, 0.95),
        pct(&resume_ms, 1.0),
        pct(&first_token_us, 0.5),
        pct(&first_token_us, 0.95),
    );
    println!(
        "client status: {}",
        serde_json::to_string(&shared.status())?
    );
    sim.stop().await;
    Ok(())
}
