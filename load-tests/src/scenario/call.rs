//! The `call` scenario: N sessions set up (spread over the ramp-up), then, once all are
//! ready, each calls one tool in a loop until the deadline or the shared request budget runs
//! out, recording each call's latency. Starting calls together keeps "RSS per session" free
//! of call garbage and makes calls/s a steady-state figure. A 404 (session lost) makes the
//! session initialize again, as the spec asks of clients. `ask` and `upload` run the same
//! loop with `dust_ask` calls timed by `ask.rs`; `upload` also starts the uploaders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::ask::AskRecorder;
use super::{server_rss, start_offset, upload, wait_all_ready, Live, Outcome, RunContext};
use crate::cli::{Scenario, MAX_DURATION_SECS};
use crate::mcp::{Arrival, CallError, Reply, Session, SessionCounters};
use crate::sse::SseItem;
use crate::stats::{ErrorCounts, Latencies, Timed};

/// Pause after a connection-level failure, so a dead server is not hammered in a hot loop.
const BACKOFF_AFTER_CONNECT_ERROR: Duration = Duration::from_millis(50);

/// What one calling session saw.
#[derive(Debug, Default)]
struct SessionResult {
    opened: bool,
    init: Latencies,
    calls: Latencies,
    calls_timed: Timed,
    ask: Option<AskRecorder>,
    tool_errors: u64,
    warm_up_calls: u64,
    errors: ErrorCounts,
    counters: SessionCounters,
}

/// Takes one call from the shared budget; `false` when it is spent.
fn take_ticket(budget: &Option<Arc<AtomicU64>>) -> bool {
    match budget {
        None => true,
        Some(b) => b
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok(),
    }
}

fn call_params(ctx: &RunContext, progress_token: Option<u64>) -> String {
    let c = &ctx.config;
    if c.scenario != Scenario::Call {
        let token = progress_token.unwrap_or(0);
        return format!(
            r#"{},"_meta":{{"progressToken":{token}}}}}"#,
            c.ask.params_prefix
        );
    }
    match progress_token {
        Some(token) => format!(
            r#"{{"name":{},"arguments":{},"_meta":{{"progressToken":{token}}}}}"#,
            c.tool_json, c.args_json
        ),
        None => format!(r#"{{"name":{},"arguments":{}}}"#, c.tool_json, c.args_json),
    }
}

async fn one_session(
    ctx: RunContext,
    i: usize,
    mut go: watch::Receiver<Option<Instant>>,
    budget: Option<Arc<AtomicU64>>,
) -> SessionResult {
    let asking = ctx.config.scenario != Scenario::Call;
    let mut out = SessionResult {
        ask: asking.then(AskRecorder::default),
        ..SessionResult::default()
    };
    tokio::time::sleep(start_offset(i, ctx.config.sessions, ctx.config.ramp_up)).await;
    let mut session = Session::new(ctx.client.clone());
    match session.initialize().await {
        Ok(reply) => out.init.record(reply.latency),
        Err(e) => {
            out.errors.add(e.kind());
            out.counters = session.counters;
            Live::add(&ctx.live.errors);
            Live::add(&ctx.live.sessions_failed);
            return out;
        }
    }
    out.opened = true;
    Live::add(&ctx.live.sessions_open);
    // The optional GET stream is only held open and drained; calls do not wait on it.
    let get_stream = if ctx.config.get_stream {
        match session.open_stream().await {
            Ok(Some(mut stream)) => Some(tokio::spawn(async move {
                let mut items: Vec<SseItem> = Vec::new();
                while let Ok(true) = stream.next_items(&mut items).await {
                    items.clear();
                }
            })),
            Ok(None) => None,
            Err(e) => {
                out.errors.add(format!("get_stream_{}", e.kind()));
                None
            }
        }
    } else {
        None
    };
    // The sender lives until every session is joined, so this only ends with a deadline.
    let deadline = match go.wait_for(Option::is_some).await {
        Ok(d) => d.unwrap_or_else(Instant::now),
        Err(_) => Instant::now(),
    };
    let measured_from = deadline.checked_sub(window(&ctx)).unwrap_or(deadline);
    // Warm-up calls are made like the others but recorded into this, which is dropped.
    let mut unrecorded = AskRecorder::default();
    tokio::time::sleep(start_offset(i, ctx.config.sessions, ctx.config.stagger)).await;
    loop {
        let warming = Instant::now() < measured_from;
        if Instant::now() >= deadline || !(warming || take_ticket(&budget)) {
            break;
        }
        let token = (ctx.config.progress || asking).then(|| session.peek_next_id());
        let params = call_params(&ctx, token);
        let recorder = match (out.ask.as_mut(), warming) {
            (None, _) => None,
            (Some(_), true) => Some(&mut unrecorded),
            (Some(rec), false) => Some(rec),
        };
        let result = match recorder {
            None => session.request("tools/call", &params).await,
            Some(rec) => {
                let delay = ctx.config.ask.first_token_delay;
                let mut call = rec.start_call(token.unwrap_or(0), Instant::now(), ctx.t0, delay);
                let mut observe = |data: &[u8], at: Arrival| call.on_message(data, at);
                let r: Result<Reply, CallError> = session
                    .request_observed("tools/call", &params, Some(&mut observe))
                    .await;
                if r.is_ok() {
                    call.finish();
                }
                r
            }
        };
        match result {
            Ok(_) if warming => out.warm_up_calls += 1,
            Ok(reply) => {
                out.calls.record(reply.latency);
                out.calls_timed.record(ctx.t0.elapsed(), reply.latency);
                out.tool_errors += u64::from(reply.is_error);
                Live::add(&ctx.live.calls_ok);
            }
            Err(e) => {
                out.errors.add(e.kind());
                Live::add(&ctx.live.errors);
                match e {
                    CallError::Status(404) => {
                        if let Err(e) = session.initialize().await {
                            out.errors.add(format!("reinit_{}", e.kind()));
                        }
                    }
                    CallError::Http(_) => tokio::time::sleep(BACKOFF_AFTER_CONNECT_ERROR).await,
                    _ => {}
                }
            }
        }
    }
    if let Some(task) = get_stream {
        task.abort();
    }
    out.counters = session.counters;
    out
}

/// The measured calling window (`--requests` alone bounds the run at the longest window).
fn window(ctx: &RunContext) -> Duration {
    ctx.config
        .duration
        .unwrap_or(Duration::from_secs_f64(MAX_DURATION_SECS))
}

/// Runs N calling sessions and merges their figures.
pub async fn run(ctx: RunContext) -> Outcome {
    let c = &ctx.config;
    let n = c.sessions;
    let window = window(&ctx);
    let budget = c.requests.map(|r| Arc::new(AtomicU64::new(r)));
    let mut outcome = Outcome {
        rss_before_kib: server_rss(c),
        ..Outcome::default()
    };
    let (go_tx, go_rx) = watch::channel(None);
    let uploads = match upload::start(&ctx, &go_rx) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "cannot read --upload-file; running without uploads");
            outcome.errors.add("upload_file_unreadable".into());
            None
        }
    };
    let mut ask = (c.scenario != Scenario::Call).then(AskRecorder::default);
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(one_session(ctx.clone(), i, go_rx.clone(), budget.clone())))
        .collect();
    wait_all_ready(&ctx.live, n).await;
    outcome.time_to_ready = ctx.t0.elapsed();
    outcome.rss_open_kib = server_rss(c);
    let calls_start = Instant::now();
    let measured_from = calls_start + c.warm_up;
    let _ = go_tx.send(Some(measured_from + window));
    for task in tasks {
        let Ok(r) = task.await else {
            outcome.errors.add("panic".into());
            continue;
        };
        if r.opened {
            outcome.opened += 1;
        } else {
            outcome.failed += 1;
        }
        outcome.init_latency.merge(&r.init);
        outcome.call_latency.merge(&r.calls);
        outcome.call_latency_timed.merge(&r.calls_timed);
        if let (Some(all), Some(one)) = (ask.as_mut(), r.ask.as_ref()) {
            all.merge(one);
        }
        outcome.tool_errors += r.tool_errors;
        outcome.warm_up_calls += r.warm_up_calls;
        outcome.errors.merge(&r.errors);
        outcome.merge_counters(&r.counters);
    }
    outcome.calls_window = measured_from.elapsed();
    if let Some(u) = uploads {
        let file_bytes = u.file_bytes;
        let result = u.join().await;
        outcome.errors.merge(result.errors());
        let uploaders = c.upload.as_ref().map_or(0, |u| u.uploaders);
        outcome.upload = Some(result.figures(file_bytes, uploaders, calls_start.elapsed()));
    }
    outcome.ask = ask;
    outcome.elapsed = ctx.t0.elapsed();
    outcome.rss_end_kib = server_rss(c);
    drop(go_tx);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use crate::cli::Args;
    use crate::mcp::ClientConfig;
    use crate::scenario::Live;

    /// What the test server saw.
    #[derive(Default)]
    struct Seen {
        /// `tools/call`s answered.
        calls: AtomicU64,
        /// When each connection's first `tools/call` arrived.
        first_calls: std::sync::Mutex<Vec<Instant>>,
    }

    /// Answers every request on a keep-alive connection with JSON, `tools/call` after 10 ms.
    async fn serve(mut sock: TcpStream, seen: Arc<Seen>) {
        let mut buf: Vec<u8> = Vec::new();
        let mut first = true;
        loop {
            let (head_len, body_len) = loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
                    if buf.len() >= end + 4 + len {
                        break (end + 4, len);
                    }
                }
                let mut tmp = [0u8; 4096];
                match sock.read(&mut tmp).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            };
            let body: serde_json::Value =
                serde_json::from_slice(&buf[head_len..head_len + body_len]).unwrap_or_default();
            buf.drain(..head_len + body_len);
            let answer = match body.get("id") {
                None => "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_owned(),
                Some(id) => {
                    if body["method"] == "tools/call" {
                        if std::mem::take(&mut first) {
                            seen.first_calls.lock().unwrap().push(Instant::now());
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        seen.calls.fetch_add(1, Ordering::Relaxed);
                    }
                    let json = serde_json::json!({"jsonrpc": "2.0", "id": id,
                        "result": {"content": [], "protocolVersion": "2025-11-25"}})
                    .to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s\r\nContent-Length: {}\r\n\r\n{json}",
                        json.len()
                    )
                }
            };
            if sock.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// Runs the `call` scenario with `options` against a fresh test server on 127.0.0.1.
    async fn run_against_test_server(options: &[&str]) -> (Outcome, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        let server = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, shared.clone()));
            }
        });
        let args = ["mcp-load", "--url", &url];
        let config = Args::try_parse_from(args.iter().chain(options))
            .unwrap()
            .validate()
            .unwrap();
        let config = Arc::new(config);
        let ctx = RunContext {
            client: Arc::new(ClientConfig {
                target: config.target.clone(),
                authorization: None,
                timeout: Duration::from_secs(5),
            }),
            config,
            live: Arc::new(Live::default()),
            t0: Instant::now(),
        };
        let outcome = run(ctx).await;
        server.abort();
        (outcome, seen)
    }

    #[tokio::test]
    async fn warm_up_calls_are_made_but_left_out_of_the_figures() {
        let options = ["--sessions", "2", "--warm-up", "0.3", "--duration", "0.3"];
        let (outcome, seen) = run_against_test_server(&options).await;
        let recorded = outcome.call_latency.count();
        assert_eq!(outcome.errors.total(), 0, "{:?}", outcome.errors);
        assert!(outcome.warm_up_calls > 0, "warm-up calls were made");
        assert!(recorded > 0, "measured calls were made");
        // Every call the server answered is either recorded or a warm-up call, never both.
        assert_eq!(
            recorded + outcome.warm_up_calls,
            seen.calls.load(Ordering::Relaxed)
        );
        // calls/s is taken over the measured window only, not the warm-up.
        assert!(
            outcome.calls_window < Duration::from_millis(550),
            "{:?}",
            outcome.calls_window
        );
    }

    #[tokio::test]
    async fn stagger_spreads_the_first_calls_of_the_sessions() {
        let options = ["--sessions", "4", "--duration", "0.6", "--stagger", "0.4"];
        let (outcome, seen) = run_against_test_server(&options).await;
        assert_eq!(outcome.errors.total(), 0, "{:?}", outcome.errors);
        let mut firsts = seen.first_calls.lock().unwrap().clone();
        firsts.sort();
        assert_eq!(firsts.len(), 4, "every session called");
        // Session i waits i/4 of the 0.4 s before its first call, so the last one starts at
        // least 0.3 s after the first, however loaded the machine.
        let spread = firsts[3] - firsts[0];
        assert!(spread >= Duration::from_millis(290), "{spread:?}");
    }
}
