//! End-to-end harness: `TestServer` starts the real server (`dust_mcp::server::start`) on
//! 127.0.0.1:0 with a temp data dir and the conformance fixtures; `McpClient` speaks Streamable
//! HTTP to it over awc (raw replies, incremental SSE reading, tool calls); `eventually` waits for
//! a condition with a bound instead of sleeping. Every wait here is bounded.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use std::{
    cell::Cell,
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use awc::{error::PayloadError, http::header::HeaderMap, ClientRequest};
use bytes::{Bytes, BytesMut};
use dust_mcp::{
    config::{Config, UserConfig},
    server::RunningServer,
};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Upper bound of any single read or request; a hung server fails the test instead of hanging it.
pub const BOUND: Duration = Duration::from_secs(10);

/// The versions the server speaks, newest first.
pub const LATEST: &str = "2025-11-25";

/// Hex SHA-256 of a token, as `[[users]]` and `admin_token_sha256` store it.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

// === TestServer ===

/// Builds a `TestServer`.
pub struct TestServerBuilder {
    config: Config,
}

/// A running server in the test's actix system, with its own temp data dir.
pub struct TestServer {
    server: Option<RunningServer>,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    dir: PathBuf,
}

fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "dust-mcp-e2e-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

impl TestServer {
    /// A builder: no auth, fixtures on, two workers, 1 s shutdown grace.
    pub fn builder() -> TestServerBuilder {
        let mut config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: temp_dir(),
            conformance_fixtures: true,
            no_auth: true,
            ..Config::default()
        };
        config.http.workers = 2;
        config.http.shutdown_grace_secs = 1;
        TestServerBuilder { config }
    }

    /// A server with the defaults.
    pub async fn start() -> TestServer {
        TestServer::builder().start().await
    }

    /// The demo workspace's Dust simulator (the harness never configures Dust credentials).
    pub fn simulator(&self) -> &dust_mcp::simulator::Simulator {
        self.server
            .as_ref()
            .and_then(|s| s.simulator())
            .expect("the test server runs the demo workspace")
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client without a token.
    pub fn client(&self) -> McpClient {
        McpClient::new(self.url("/mcp"), None)
    }

    /// A client presenting `token`.
    pub fn client_with_token(&self, token: &str) -> McpClient {
        McpClient::new(self.url("/mcp"), Some(token.to_owned()))
    }

    /// GET `path` with an optional bearer token: (status, body text).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = http().get(self.url(path));
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        let mut res = req.send().await.unwrap();
        let body = res.body().limit(8 << 20).await.unwrap();
        (
            res.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// `/admin/status` as JSON (needs the admin token, or none in no-auth mode).
    pub async fn status(&self, token: Option<&str>) -> Value {
        let (code, body) = self.get("/admin/status", token).await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Graceful stop; removes the data dir.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            tokio::time::timeout(BOUND, s.shutdown())
                .await
                .expect("server stops within the bound");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Best effort when a test fails before `stop`: the system ends with the test anyway.
        if let Some(s) = self.server.take() {
            actix_rt::spawn(s.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestServerBuilder {
    /// Bearer-token users as (name, token); turns authentication on.
    pub fn users(mut self, users: &[(&str, &str)]) -> Self {
        self.config.no_auth = false;
        self.config.users = users
            .iter()
            .map(|(name, token)| UserConfig {
                name: (*name).to_owned(),
                token_sha256: sha256_hex(token),
                full_name: None,
                email: None,
                timezone: None,
                dust_api_key: None,
            })
            .collect();
        self
    }

    /// The token that opens `/admin/status` and `/metrics`.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.config.admin_token_sha256 = Some(sha256_hex(token));
        self
    }

    /// Interval of keep-alive comments and heartbeats.
    pub fn keep_alive_secs(mut self, secs: u64) -> Self {
        self.config.mcp.keep_alive_secs = secs;
        self
    }

    /// The session-id HMAC key, as hex.
    pub fn session_secret(mut self, hex_key: &str) -> Self {
        self.config.session_secret = Some(hex_key.to_owned());
        self
    }

    /// Any other change.
    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// Starts the server and waits until its port is bound.
    pub async fn start(self) -> TestServer {
        let dir = self.config.data_dir.clone();
        let server = dust_mcp::server::start(self.config)
            .await
            .expect("test server starts");
        TestServer {
            addr: server.addr,
            server: Some(server),
            dir,
        }
    }
}

/// An awc client whose every exchange (including a streamed body) is bounded.
pub fn http() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .disable_redirects()
        .finish()
}

// === waiting ===

/// Polls `check` every 50 ms until it returns `Some`, for at most `bound`; panics with `what`
/// otherwise.
pub async fn eventually<T, F, Fut>(bound: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = actix::clock::Instant::now() + bound;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if actix::clock::Instant::now() >= deadline {
            panic!("not within {bound:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// === replies and SSE ===

/// A whole HTTP reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The JSON-RPC error code of the body.
    pub fn error_code(&self) -> i64 {
        let v = self.json();
        v["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no JSON-RPC error in {v}"))
    }

    /// Whether the body is an SSE stream.
    pub fn is_sse(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    }

    /// The SSE items of a complete body.
    pub fn sse(&self) -> Vec<SseItem> {
        let mut parser = SseParser::default();
        parser.feed(&self.body);
        let mut out = Vec::new();
        while let Some(item) = parser.next_item() {
            out.push(item);
        }
        out
    }

    /// The one JSON-RPC message answering a request: the JSON body, or the SSE message that
    /// carries an `id` and a `result`/`error`.
    pub fn message(&self) -> Value {
        if self.is_sse() {
            self.sse()
                .into_iter()
                .filter_map(|i| i.json())
                .find(is_response)
                .unwrap_or_else(|| panic!("no response in SSE body {:?}", self.body))
        } else {
            self.json()
        }
    }
}

/// Whether a JSON-RPC message is a response (not a notification or a server request).
pub fn is_response(m: &Value) -> bool {
    m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
}

/// One item of an SSE stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    /// A comment block (`: keep-alive`).
    Comment(String),
    /// An event.
    Event {
        id: Option<String>,
        event: Option<String>,
        data: String,
        retry: Option<u64>,
    },
}

impl SseItem {
    /// The event's id.
    pub fn id(&self) -> Option<&str> {
        match self {
            SseItem::Event { id, .. } => id.as_deref(),
            SseItem::Comment(_) => None,
        }
    }

    /// The event's data as JSON, if any.
    pub fn json(&self) -> Option<Value> {
        match self {
            SseItem::Event { data, .. } if !data.is_empty() => serde_json::from_str(data).ok(),
            _ => None,
        }
    }
}

/// Splits bytes into SSE items as they arrive.
#[derive(Default)]
pub struct SseParser {
    buf: BytesMut,
}

impl SseParser {
    /// Adds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete item, if the buffer holds one.
    pub fn next_item(&mut self) -> Option<SseItem> {
        let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
        let block = self.buf.split_to(end + 2);
        let text = String::from_utf8_lossy(&block[..end]).into_owned();
        let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
        if lines.iter().all(|l| l.starts_with(':')) {
            return Some(SseItem::Comment(lines.join("\n")));
        }
        let (mut id, mut event, mut retry, mut data) = (None, None, None, Vec::new());
        for line in lines {
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "retry" => retry = value.parse().ok(),
                "data" => data.push(value.to_owned()),
                _ => {}
            }
        }
        Some(SseItem::Event {
            id,
            event,
            data: data.join("\n"),
            retry,
        })
    }
}

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// A live SSE response read item by item; drop it to cut the connection.
pub struct SseStream {
    pub status: u16,
    pub headers: HeaderMap,
    body: BodyStream,
    parser: SseParser,
    ended: bool,
}

impl SseStream {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The next item, or `None` once the server ended the stream. Panics past [`BOUND`].
    pub async fn next(&mut self) -> Option<SseItem> {
        tokio::time::timeout(BOUND, self.next_unbounded())
            .await
            .expect("an SSE item or the end of the stream within the bound")
    }

    /// The next event with data (skipping comments and priming events).
    pub async fn next_message(&mut self) -> Option<(Option<String>, Value)> {
        loop {
            let item = self.next().await?;
            if let Some(v) = item.json() {
                return Some((item.id().map(str::to_owned), v));
            }
        }
    }

    async fn next_unbounded(&mut self) -> Option<SseItem> {
        loop {
            if let Some(item) = self.parser.next_item() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.parser.feed(&bytes),
                Some(Err(e)) => panic!("SSE body failed: {e}"),
                None => self.ended = true,
            }
        }
    }

    /// Everything until the server ends the stream.
    pub async fn rest(&mut self) -> Vec<SseItem> {
        let mut out = Vec::new();
        while let Some(item) = self.next().await {
            out.push(item);
        }
        out
    }
}

// === McpClient ===

/// What a client sends by default.
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// A Streamable HTTP client for one session (or none, before `initialize`).
pub struct McpClient {
    http: awc::Client,
    url: String,
    token: Option<String>,
    /// `Mcp-Session-Id` captured at `initialize`.
    pub session: Option<String>,
    /// Negotiated version, sent as `MCP-Protocol-Version` after `initialize`.
    pub version: Option<String>,
    next_id: Cell<i64>,
}

impl McpClient {
    /// A client of `url` presenting `token`.
    pub fn new(url: String, token: Option<String>) -> McpClient {
        McpClient {
            http: http(),
            url,
            token,
            session: None,
            version: None,
            next_id: Cell::new(1),
        }
    }

    /// A fresh request id.
    pub fn id(&self) -> i64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// A request to `/mcp` with the token, session and version headers.
    pub fn request(&self, method: awc::http::Method) -> ClientRequest {
        let mut req = self.http.request(method, &self.url);
        if let Some(t) = &self.token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        if let Some(s) = &self.session {
            req = req.insert_header(("Mcp-Session-Id", s.as_str()));
        }
        if let Some(v) = &self.version {
            req = req.insert_header(("MCP-Protocol-Version", v.as_str()));
        }
        req
    }

    /// A POST with JSON content type and `Accept` for both JSON and SSE.
    pub fn post_request(&self) -> ClientRequest {
        self.request(awc::http::Method::POST)
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Accept", ACCEPT_BOTH))
    }

    /// `initialize` asking for `version` with no capabilities; captures the session id and the
    /// negotiated version. Returns the result.
    pub async fn initialize(&mut self, version: &str) -> Value {
        self.initialize_with(version, json!({})).await
    }

    /// `initialize` declaring `capabilities`, then `notifications/initialized`.
    pub async fn initialize_with(&mut self, version: &str, capabilities: Value) -> Value {
        let body = json!({
            "jsonrpc": "2.0", "id": self.id(), "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": capabilities,
                "clientInfo": {"name": "e2e-test", "version": "1.0"}
            }
        });
        let reply = self.send(self.post_request(), &body).await;
        assert_eq!(reply.status, 200, "initialize: {:?}", reply.body);
        self.session = reply.header("mcp-session-id");
        assert!(self.session.is_some(), "initialize sets Mcp-Session-Id");
        let message = reply.message();
        let result = message["result"].clone();
        self.version = result["protocolVersion"].as_str().map(str::to_owned);
        let ack = self
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(ack.status, 202);
        result
    }

    /// Sends `req` with `body` and reads the whole reply.
    pub async fn send(&self, req: ClientRequest, body: &Value) -> Reply {
        self.send_bytes(req, Bytes::from(body.to_string())).await
    }

    /// Sends `req` with raw `body` and reads the whole reply.
    pub async fn send_bytes(&self, req: ClientRequest, body: Bytes) -> Reply {
        let mut res = req.send_body(body).await.expect("request sent");
        let body = tokio::time::timeout(BOUND, res.body().limit(64 << 20))
            .await
            .expect("body within the bound")
            .expect("body read");
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// POSTs one JSON body and reads the whole reply.
    pub async fn post(&self, body: &Value) -> Reply {
        self.send(self.post_request(), body).await
    }

    /// POSTs a request and returns its response message (from JSON or SSE).
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let reply = self
            .post(&json!({"jsonrpc": "2.0", "id": self.id(), "method": method, "params": params}))
            .await;
        assert_eq!(reply.status, 200, "{method}: {:?}", reply.body);
        reply.message()
    }

    /// POSTs `body` and returns the live SSE stream (panics if the reply is not SSE).
    pub async fn post_stream(&self, body: &Value) -> SseStream {
        let res = self
            .post_request()
            .send_body(body.to_string())
            .await
            .expect("request sent");
        let stream = into_stream(res);
        assert_eq!(stream.status, 200);
        assert!(
            stream
                .header("content-type")
                .is_some_and(|c| c.starts_with("text/event-stream")),
            "an SSE reply: {:?}",
            stream.headers
        );
        stream
    }

    /// The body of a `tools/call` with id `id`.
    pub fn tool_call(
        &self,
        id: i64,
        name: &str,
        args: Value,
        progress_token: Option<Value>,
    ) -> Value {
        let mut params = json!({"name": name, "arguments": args});
        if let Some(t) = progress_token {
            params["_meta"] = json!({"progressToken": t});
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
    }

    /// Calls a tool over SSE: (notifications and server requests received before the
    /// response, the response).
    pub async fn call_tool(
        &self,
        name: &str,
        args: Value,
        progress_token: Option<Value>,
    ) -> (Vec<Value>, Value) {
        let id = self.id();
        let mut stream = self
            .post_stream(&self.tool_call(id, name, args, progress_token))
            .await;
        let mut notes = Vec::new();
        while let Some((_, m)) = stream.next_message().await {
            if is_response(&m) {
                assert_eq!(m["id"], json!(id));
                return (notes, m);
            }
            notes.push(m);
        }
        panic!("the stream of {name} ended without a response; got {notes:?}");
    }

    /// GET /mcp (standalone stream, or a resume with `Last-Event-ID`). `Err` carries a
    /// refusal's whole reply.
    pub async fn get_stream(&self, last_event_id: Option<&str>) -> Result<SseStream, Reply> {
        let mut req = self
            .request(awc::http::Method::GET)
            .insert_header(("Accept", "text/event-stream"));
        if let Some(id) = last_event_id {
            req = req.insert_header(("Last-Event-ID", id));
        }
        let mut res = req.send().await.expect("request sent");
        if res.status().as_u16() != 200 {
            let body = res.body().await.unwrap_or_default();
            return Err(Reply {
                status: res.status().as_u16(),
                headers: res.headers().clone(),
                body,
            });
        }
        Ok(into_stream(res))
    }

    /// DELETE /mcp: the status.
    pub async fn delete(&self) -> u16 {
        let res = self
            .request(awc::http::Method::DELETE)
            .send()
            .await
            .expect("request sent");
        res.status().as_u16()
    }
}

fn into_stream<S>(res: awc::ClientResponse<S>) -> SseStream
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static,
{
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    SseStream {
        status,
        headers,
        body: Box::pin(res),
        parser: SseParser::default(),
        ended: false,
    }
}

/// The random `sid` inside a signed session id (its first 8 characters are what
/// `/admin/status` shows).
pub fn session_sid(header: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let (claims, _tag) = header.split_once('.').expect("<claims>.<tag>");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// The `/admin/status` entries whose id is the first 8 characters of `sid`.
pub fn status_entries(status: &Value, sid: &str) -> Vec<Value> {
    status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == sid[..8])
        .cloned()
        .collect()
}
