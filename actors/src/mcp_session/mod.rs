//! `McpSession`: one MCP session.
//!
//! - **Owns**: the protocol state (negotiated version, client capabilities, log level,
//!   subscriptions), the session's streams and bounded event buffer (`streams.rs`), the requests
//!   running now, and the server-to-client requests waiting for the client's answer.
//! - **Takes**: `HandlePost` (one POST's messages), `OpenStream` (GET), `Close` (DELETE),
//!   `Evict` (from the registry), plus `FromRequest`/`RequestDone` from its own running requests.
//! - **Emits**: `Register`/`Unregister` to the `SessionRegistry`.
//! - **Lifecycle**: started by `Sessions` under `actix::Supervisor`. A panic while a request is
//!   being set up is caught, answered with -32603, and the session is stopped so the supervisor
//!   restarts it with its state reset to what its signed id says (`restarting`). A panic inside a
//!   running request is caught in that request's task and fails only that request.
//! - **Timers**: every `keep_alive`, a `: keep-alive` comment on each open stream (which is also
//!   how a vanished client is noticed), a heartbeat for the registry, and buffer expiry.
//!
//! Each request runs as its own task, so a slow tool call never blocks another call, a ping or a
//! cancellation in the same session.

mod streams;

use std::{
    collections::{HashMap, HashSet},
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    time::Duration,
};

use actix::{clock::Instant, prelude::*};
use futures::{
    channel::oneshot,
    future::{AbortHandle, Abortable},
    FutureExt,
};
use rmcp::model::{ErrorData, RequestId};
use serde_json::{json, Value};

use self::streams::Streams;
pub use self::streams::{BufferLimits, SseReceiver, StreamError, StreamId, STANDALONE};
use crate::{
    mcp::{
        catalogue::Catalogue,
        context::{Emitter, LogLevel, Output, RequestContext},
        dispatch, jsonrpc,
        jsonrpc::{Incoming, Request},
        session_id::SessionClaims,
        version::Version,
    },
    metrics::{method_label, Metrics},
    principal::Principal,
    session_registry::{Evict, Register, SessionInfo, SessionRegistry, SessionStats, Unregister},
    sessions::SessionTable,
};

/// Session settings (defaults live in the server's `Config`).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Interval of keep-alive comments and heartbeats.
    pub keep_alive: Duration,
    /// Event buffer bounds.
    pub buffer: BufferLimits,
    /// How long a server-to-client request waits for the client's answer.
    pub ask_timeout: Duration,
    /// Items per page of list results.
    pub page_size: usize,
    /// Level of `notifications/message` before the client sets one.
    pub default_log_level: LogLevel,
}

/// What every session shares.
pub struct SessionEnv {
    /// Tools, resources and prompts.
    pub catalogue: Arc<Catalogue>,
    /// Session settings.
    pub settings: SessionSettings,
    /// Where sessions register.
    pub registry: Addr<SessionRegistry>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Origin of the sessions' `SessionStats` clocks.
    pub origin: Instant,
}

// === messages handled ===

/// How a POST wants its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// One JSON body once every request has its response (notifications cannot be delivered).
    Json,
    /// An SSE stream carrying notifications, server-to-client requests and the responses.
    Sse,
}

/// The messages of one POST.
#[derive(Message, Clone)]
#[rtype(result = "Result<PostReply, SessionError>")]
pub struct HandlePost {
    /// Who sent them (the edge has checked it owns this session).
    pub principal: Principal,
    /// The decoded messages, in order.
    pub messages: Vec<Incoming>,
    /// JSON or SSE.
    pub mode: ReplyMode,
    /// The version to serve these requests under when the session has none of its own
    /// (a principal's anonymous session takes it from each request's header).
    pub version: Option<Version>,
}

/// The answer to a POST.
#[derive(Debug)]
pub enum PostReply {
    /// Only notifications or responses: HTTP 202, no body.
    Accepted,
    /// The responses, in request order.
    Json(oneshot::Receiver<Vec<Value>>),
    /// An SSE stream, with the id of the stream it carries.
    Sse(StreamId, SseReceiver),
}

/// GET: open the standalone stream, or resume one with `Last-Event-ID`.
#[derive(Message, Clone)]
#[rtype(result = "Result<SseReceiver, SessionError>")]
pub struct OpenStream {
    /// `Last-Event-ID`, if the client sent one.
    pub last_event_id: Option<String>,
}

/// DELETE: end the session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

/// Output of a running request.
#[derive(Message)]
#[rtype(result = "()")]
struct FromRequest {
    key: RequestId,
    output: Output,
}

/// A running request finished (successfully, with an error, or with a caught panic).
#[derive(Message)]
#[rtype(result = "()")]
struct RequestDone {
    key: RequestId,
    outcome: Result<Value, ErrorData>,
    panicked: bool,
}

/// Why a session could not serve a message.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the session is closed")]
    Closed,
    #[error(transparent)]
    Stream(#[from] StreamError),
}

// === the actor ===

/// Where a client's answer to a server-to-client request goes.
type AskReply = tokio::sync::oneshot::Sender<Result<Value, ErrorData>>;

struct InFlight {
    stream: StreamId,
    method: &'static str,
    abort: AbortHandle,
    started: Instant,
}

/// One MCP session.
pub struct McpSession {
    /// Table key (the random part of the signed id, or `anon:<principal>`).
    key: Arc<str>,
    /// What the signed id says; a restart resets the session to this.
    claims: SessionClaims,
    /// Whether this is a principal's session for requests without `Mcp-Session-Id`.
    anonymous: bool,
    env: Arc<SessionEnv>,
    /// The live-session table this session leaves when it closes.
    table: SessionTable,
    stats: Arc<SessionStats>,
    streams: Streams,
    /// Running requests by id (ids 1 and "1" are different requests).
    in_flight: HashMap<RequestId, InFlight>,
    /// Server-to-client requests waiting for the client's answer, by id.
    asks: HashMap<RequestId, AskReply>,
    next_ask: u64,
    /// Shared with running requests so `logging/setLevel` applies to them at once.
    log_level: Arc<AtomicU8>,
    subscriptions: HashSet<String>,
    /// Set by DELETE or eviction: the session never serves again, even if restarted.
    closed: bool,
    keep_alive: Option<SpawnHandle>,
}

impl McpSession {
    /// A session in the state its claims describe.
    pub fn new(
        key: Arc<str>,
        claims: SessionClaims,
        anonymous: bool,
        env: Arc<SessionEnv>,
        table: SessionTable,
    ) -> Self {
        let stats = Arc::new(SessionStats::new(env.origin));
        McpSession {
            key,
            streams: Streams::new(env.settings.buffer),
            log_level: Arc::new(AtomicU8::new(env.settings.default_log_level.rank())),
            claims,
            anonymous,
            stats,
            env,
            table,
            in_flight: HashMap::new(),
            asks: HashMap::new(),
            next_ask: 0,
            subscriptions: HashSet::new(),
            closed: false,
            keep_alive: None,
        }
    }

    fn register(&self, ctx: &mut Context<Self>) {
        self.env.registry.do_send(Register {
            key: self.key.clone(),
            info: SessionInfo {
                principal: self.claims.principal.clone(),
                protocol_version: self.claims.version.to_string(),
                client: self.claims.client.clone(),
                anonymous: self.anonymous,
            },
            stats: self.stats.clone(),
            evict: ctx.address().recipient(),
        });
    }

    fn heartbeat(&mut self) {
        let live = self.streams.keep_alive();
        self.set_open_streams(live);
        self.stats.heartbeat();
        // A tool that gave up waiting dropped its receiver; forget the question.
        self.asks.retain(|_, reply| !reply.is_closed());
    }

    /// Records this session's attached connections, moving the process-wide `mcp_open_streams`
    /// gauge by the difference (the gauge is the sum over sessions).
    fn set_open_streams(&mut self, live: usize) {
        let live = u32::try_from(live).unwrap_or(u32::MAX);
        let before = self.stats.open_streams.swap(live, Ordering::Relaxed);
        self.env
            .metrics
            .open_streams
            .add(i64::from(live) - i64::from(before));
    }

    fn shut(&mut self, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.abort_all();
        self.streams.detach_all();
        self.set_open_streams(0);
        if let Some(h) = self.keep_alive.take() {
            ctx.cancel_future(h);
        }
        self.env.registry.do_send(Unregister {
            key: self.key.clone(),
        });
        // Leave the table (unless a newer actor already took the key), so the next request for
        // this id re-creates the session and this actor stops once its last address is gone.
        let me = ctx.address();
        self.table.remove_if(&self.key, |_, addr| *addr == me);
        ctx.stop();
    }

    fn abort_all(&mut self) {
        for (_, f) in self.in_flight.drain() {
            f.abort.abort();
            self.env.metrics.in_flight.dec();
        }
        self.stats.in_flight.store(0, Ordering::Relaxed);
        self.asks.clear();
    }

    fn context_for(
        &self,
        ctx: &mut Context<Self>,
        principal: Principal,
        req: &Request,
        version: Version,
    ) -> RequestContext {
        let addr = ctx.address();
        let key = req.id.clone();
        let emit: Emitter = Arc::new(move |output| {
            addr.do_send(FromRequest {
                key: key.clone(),
                output,
            })
        });
        let progress_token = req
            .params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .and_then(|t| serde_json::from_value(t.clone()).ok());
        RequestContext::new(
            principal,
            req.id.clone(),
            progress_token,
            self.claims.caps,
            version,
            self.env.settings.ask_timeout,
            emit,
            self.log_level.clone(),
        )
    }

    /// Starts one request on `stream`. Returns `true` if setting it up panicked.
    fn start_request(
        &mut self,
        ctx: &mut Context<Self>,
        stream: StreamId,
        principal: &Principal,
        req: Request,
        version: Version,
    ) -> bool {
        let key = req.id.clone();
        let method = method_label(&req.method);
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if self.in_flight.contains_key(&key) {
            let err = ErrorData::invalid_request(
                "a request with this id is still running; use a new id for each request",
                None,
            );
            self.count(method, "error", None);
            self.streams
                .respond(stream, jsonrpc::error_response(Some(&req.id), &err));
            return false;
        }
        if let Some(result) = self.session_method(&req, version) {
            self.count(method, if result.is_ok() { "ok" } else { "error" }, None);
            self.streams.respond(stream, wrap(&req.id, result));
            return false;
        }
        let rctx = self.context_for(ctx, principal.clone(), &req, version);
        let env = self.env.clone();
        let setup = std::panic::catch_unwind(AssertUnwindSafe(|| {
            dispatch::dispatch(&env.catalogue, env.settings.page_size, rctx, &req)
        }));
        let mut pending = match setup {
            Ok(pending) => pending,
            Err(panic) => {
                tracing::error!(session = %self.key, method = req.method, panic = panic_text(&panic), "panic while starting a request; resetting the session");
                self.count(method, "panic", None);
                self.streams.respond(
                    stream,
                    jsonrpc::error_response(Some(&req.id), &panic_error()),
                );
                return true;
            }
        };
        // List-style requests are ready at once: answer without a task.
        if let Some(result) = (&mut pending).now_or_never() {
            self.count(method, if result.is_ok() { "ok" } else { "error" }, None);
            self.streams.respond(stream, wrap(&req.id, result));
            return false;
        }
        let (abort, registration) = AbortHandle::new_pair();
        self.in_flight.insert(
            key.clone(),
            InFlight {
                stream,
                method,
                abort,
                started: Instant::now(),
            },
        );
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        self.env.metrics.in_flight.inc();
        let addr = ctx.address();
        actix_rt::spawn(async move {
            let work = Abortable::new(AssertUnwindSafe(pending).catch_unwind(), registration);
            match work.await {
                // Cancelled: MCP says the receiver does not respond.
                Err(_aborted) => {}
                Ok(Ok(outcome)) => addr.do_send(RequestDone {
                    key,
                    outcome,
                    panicked: false,
                }),
                Ok(Err(panic)) => {
                    tracing::error!(panic = panic_text(&panic), "panic inside a running request");
                    addr.do_send(RequestDone {
                        key,
                        outcome: Err(panic_error()),
                        panicked: true,
                    })
                }
            }
        });
        false
    }

    /// The methods that act on the session itself; `None` for catalogue methods.
    fn session_method(
        &mut self,
        req: &Request,
        version: Version,
    ) -> Option<Result<Value, ErrorData>> {
        Some(match req.method.as_str() {
            "initialize" => Ok(dispatch::initialize_result(version)),
            "server/discover" => Ok(dispatch::discover_result()),
            "ping" => Ok(json!({})),
            "logging/setLevel" => {
                let level = req.params.get("level").and_then(Value::as_str);
                match level.and_then(LogLevel::parse) {
                    Some(level) => {
                        self.log_level.store(level.rank(), Ordering::Relaxed);
                        Ok(json!({}))
                    }
                    None => Err(ErrorData::invalid_params(
                        "logging/setLevel needs \"level\": one of debug, info, notice, warning, error, critical, alert, emergency",
                        None,
                    )),
                }
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                match req.params.get("uri").and_then(Value::as_str) {
                    Some(uri) => {
                        if req.method == "resources/subscribe" {
                            self.subscriptions.insert(uri.to_owned());
                        } else {
                            self.subscriptions.remove(uri);
                        }
                        Ok(json!({}))
                    }
                    None => Err(ErrorData::invalid_params(
                        format!("{} needs \"uri\": the resource's URI", req.method),
                        None,
                    )),
                }
            }
            _ => return None,
        })
    }

    fn count(&self, method: &'static str, outcome: &str, started: Option<Instant>) {
        self.env
            .metrics
            .requests
            .with_label_values(&[method, outcome])
            .inc();
        let secs = started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        self.env
            .metrics
            .latency
            .with_label_values(&[method])
            .observe(secs);
    }

    fn handle_notification(&mut self, method: &str, params: &Value) {
        match method {
            "notifications/cancelled" => {
                let Some(id) = params
                    .get("requestId")
                    .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok())
                else {
                    return;
                };
                // Unknown or finished ids are ignored: races are normal (MCP cancellation).
                if let Some(f) = self.in_flight.remove(&id) {
                    f.abort.abort();
                    self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                    self.env.metrics.in_flight.dec();
                    self.count(f.method, "cancelled", Some(f.started));
                    self.streams.request_done(f.stream);
                    tracing::debug!(session = %self.key, request = ?id, "request cancelled by the client");
                }
            }
            "notifications/initialized" | "notifications/roots/list_changed" => {}
            other => tracing::debug!(session = %self.key, method = other, "ignored notification"),
        }
    }

    fn handle_client_answer(&mut self, id: &RequestId, outcome: Result<Value, ErrorData>) {
        match self.asks.remove(id) {
            Some(reply) => {
                let _ = reply.send(outcome);
            }
            None => tracing::debug!(session = %self.key, ?id, "answer to no pending question"),
        }
    }

    fn ask_client(&mut self, stream: StreamId, method: String, params: Value, reply: AskReply) {
        // MCP 2025-11-25: requests related to a POST go on its SSE stream; a POST answered with
        // plain JSON has none, so the standalone GET stream is the only way left.
        let target = if self.streams.is_sse(stream) {
            stream
        } else if self.streams.is_live(STANDALONE) {
            STANDALONE
        } else {
            let _ = reply.send(Err(ErrorData::internal_error(
                "no open stream reaches the client: send the request with Accept: text/event-stream",
                None,
            )));
            return;
        };
        self.next_ask += 1;
        let id = RequestId::String(format!("srv-{}", self.next_ask).into());
        self.asks.insert(id.clone(), reply);
        self.streams
            .push(target, &jsonrpc::request(&id, &method, params));
    }
}

fn wrap(id: &RequestId, result: Result<Value, ErrorData>) -> Value {
    match result {
        Ok(v) => jsonrpc::response(id, v),
        Err(e) => jsonrpc::error_response(Some(id), &e),
    }
}

fn panic_error() -> ErrorData {
    ErrorData::internal_error(
        "internal error: the server hit a bug while handling this request and recovered; the request was not completed",
        None,
    )
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".into())
}

impl Actor for McpSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.closed {
            // Restarted by the supervisor after DELETE while someone still held the address:
            // stay inert until the last address is dropped.
            return;
        }
        // A burst of concurrent POSTs to one session must not be refused by a full mailbox.
        ctx.set_mailbox_capacity(256);
        self.register(ctx);
        self.keep_alive =
            Some(ctx.run_interval(self.env.settings.keep_alive, |act, _| act.heartbeat()));
    }
}

impl actix::Supervised for McpSession {
    /// actix reuses this value on restart, so reset everything but what the signed id says.
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if self.closed {
            return;
        }
        tracing::warn!(session = %self.key, "session restarting with its state reset");
        self.abort_all();
        self.streams = Streams::new(self.env.settings.buffer);
        self.subscriptions.clear();
        self.log_level.store(
            self.env.settings.default_log_level.rank(),
            Ordering::Relaxed,
        );
        self.set_open_streams(0);
        self.keep_alive = None;
    }
}

impl Handler<HandlePost> for McpSession {
    type Result = Result<PostReply, SessionError>;

    /// Serves one POST: answers client responses and notifications at once, starts requests.
    fn handle(&mut self, msg: HandlePost, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.stats.touch();
        let version = if self.anonymous {
            msg.version.unwrap_or(self.claims.version)
        } else {
            self.claims.version
        };
        let mut requests = Vec::new();
        for m in msg.messages {
            match m {
                Incoming::Request(r) => requests.push(r),
                Incoming::Notification { method, params } => {
                    self.handle_notification(&method, &params)
                }
                Incoming::Response { id, outcome } => self.handle_client_answer(&id, outcome),
            }
        }
        if requests.is_empty() {
            return Ok(PostReply::Accepted);
        }
        let (stream, reply) = match msg.mode {
            ReplyMode::Sse => {
                let (id, rx) = self
                    .streams
                    .open_sse(requests.len(), version.primes_streams());
                (id, PostReply::Sse(id, rx))
            }
            ReplyMode::Json => {
                let (id, rx) = self.streams.open_json(requests.len());
                (id, PostReply::Json(rx))
            }
        };
        let mut panicked = false;
        for r in requests {
            panicked |= self.start_request(ctx, stream, &msg.principal, r, version);
        }
        if panicked {
            // The answers are queued on the stream; the restart resets everything else.
            ctx.stop();
        }
        Ok(reply)
    }
}

impl Handler<OpenStream> for McpSession {
    type Result = Result<SseReceiver, SessionError>;

    /// GET: the standalone stream, or a resume.
    fn handle(&mut self, msg: OpenStream, _: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.stats.touch();
        let rx = match msg.last_event_id {
            Some(id) => {
                let (rx, replayed) = self.streams.resume(&id)?;
                self.env.metrics.replayed.observe(replayed as f64);
                rx
            }
            None => self.streams.attach_standalone()?,
        };
        self.set_open_streams(self.streams.live_count());
        Ok(rx)
    }
}

impl Handler<Close> for McpSession {
    type Result = ();

    /// DELETE: stop running requests, close streams, leave the registry.
    fn handle(&mut self, _: Close, ctx: &mut Self::Context) {
        tracing::info!(session = %self.key, "session closed by the client");
        self.shut(ctx);
    }
}

impl Handler<Evict> for McpSession {
    type Result = ();

    /// The registry wants this session gone (idle, or shutdown).
    fn handle(&mut self, msg: Evict, ctx: &mut Self::Context) {
        tracing::debug!(session = %self.key, reason = ?msg.reason, "session evicted");
        // For an idle eviction the registry has already forgotten the session, so the Unregister
        // that `shut` sends is a no-op there.
        self.shut(ctx);
    }
}

impl Handler<FromRequest> for McpSession {
    type Result = ();

    /// Routes a running request's notification or question to its stream.
    fn handle(&mut self, msg: FromRequest, _: &mut Self::Context) {
        let Some(stream) = self.in_flight.get(&msg.key).map(|f| f.stream) else {
            // Finished or cancelled: progress after the response must not be sent.
            return;
        };
        match msg.output {
            Output::Notify(message) => self.streams.push(stream, &message),
            Output::AskClient {
                method,
                params,
                reply,
            } => self.ask_client(stream, method, params, reply),
            Output::Detach => self.streams.detach(stream),
        }
    }
}

impl Handler<RequestDone> for McpSession {
    type Result = ();

    /// Sends a finished request's response on its stream.
    fn handle(&mut self, msg: RequestDone, _: &mut Self::Context) {
        let Some(f) = self.in_flight.remove(&msg.key) else {
            return;
        };
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.env.metrics.in_flight.dec();
        let outcome = match (&msg.outcome, msg.panicked) {
            (_, true) => "panic",
            (Ok(_), _) => "ok",
            (Err(_), _) => "error",
        };
        self.count(f.method, outcome, Some(f.started));
        self.streams.respond(f.stream, wrap(&msg.key, msg.outcome));
    }
}
