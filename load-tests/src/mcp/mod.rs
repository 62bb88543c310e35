//! One MCP client session over Streamable HTTP (MCP 2025-11-25, mcp.md §1.3-1.4), spoken by
//! hand: initialize, notifications/initialized, requests answered as JSON or SSE, the GET
//! stream. Owns the session id, the negotiated version and one keep-alive connection; it
//! re-sends once when a reused connection turns out closed (peers.md point 5).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use tokio::time::Instant;

use crate::http::{build_request, Conn, Framing, HttpError, ResponseHead};
use crate::sse::{SseItem, SseParser};
use crate::target::Target;

/// The version we ask for in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// How long to wait for the rest of a POST's SSE body after its response arrived before
/// giving the connection up (servers close the stream right after the response).
const DRAIN_AFTER_RESPONSE: Duration = Duration::from_secs(1);

/// Largest error body read to keep a connection reusable after a 4xx/5xx.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// When a piece of a POST's SSE body arrived: monotonic (for intervals) and wall-clock (to
/// compare with timestamps a server wrote into its messages).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Monotonic arrival time.
    pub at: Instant,
    /// Wall-clock arrival time, microseconds since the Unix epoch.
    pub wall_us: u64,
}

impl Arrival {
    /// Now.
    pub fn now() -> Self {
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            at: Instant::now(),
            wall_us,
        }
    }
}

/// Sees the data of every message that arrives on a POST's SSE stream before the response.
pub type OnMessage<'a> = &'a mut (dyn FnMut(&[u8], Arrival) + Send);

/// Settings shared by every session of a run.
#[derive(Debug)]
pub struct ClientConfig {
    /// The server.
    pub target: Target,
    /// `Authorization` header value (`Bearer ...`), if a token was given.
    pub authorization: Option<String>,
    /// Deadline for one request (head and body).
    pub timeout: Duration,
}

/// Why one request failed; [`CallError::kind`] is the key in the report's error table.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Socket-level failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// No answer within the per-request timeout.
    #[error("request timed out")]
    Timeout,
    /// The server answered with an unexpected HTTP status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The server answered with a JSON-RPC error.
    #[error("JSON-RPC error {0}")]
    JsonRpc(i64),
    /// The answer was not what the protocol says.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl CallError {
    /// Stable short name for the error table: `http_404`, `jsonrpc_-32602`, `timeout`, ...
    pub fn kind(&self) -> String {
        match self {
            CallError::Http(HttpError::Connect { .. }) => "connect".into(),
            CallError::Http(HttpError::Protocol(_)) | CallError::Protocol(_) => "protocol".into(),
            CallError::Http(_) => "connection".into(),
            CallError::Timeout => "timeout".into(),
            CallError::Status(code) => format!("http_{code}"),
            CallError::JsonRpc(code) => format!("jsonrpc_{code}"),
        }
    }
}

/// A successful request.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// From writing the request to receiving the JSON-RPC response (not the end of the body).
    pub latency: Duration,
    /// The result carried `isError: true` (a tool-level failure, not a protocol one).
    pub is_error: bool,
}

/// What a session saw besides responses, for the report.
#[derive(Debug, Default, Clone)]
pub struct SessionCounters {
    /// Requests re-sent because a reused connection was closed before any response byte.
    pub resent_after_close: u64,
    /// Notifications received on POST streams, by method.
    pub notifications: BTreeMap<String, u64>,
    /// Server-to-client requests seen (not answered: a load run has no user to ask).
    pub server_requests: u64,
}

/// The subset of a JSON-RPC message that matters here; other fields are skipped unparsed.
#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    result: Option<WireResult>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireResult {
    #[serde(default, rename = "isError")]
    is_error: bool,
}

#[derive(Deserialize)]
struct WireError {
    code: i64,
}

/// One MCP session.
#[derive(Debug)]
pub struct Session {
    config: Arc<ClientConfig>,
    conn: Option<Conn>,
    session_id: Option<String>,
    next_id: u64,
    /// What this session saw besides responses.
    pub counters: SessionCounters,
}

impl Session {
    /// A session that has not yet initialized.
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Self {
            config,
            conn: None,
            session_id: None,
            next_id: 1,
            counters: SessionCounters::default(),
        }
    }

    /// Runs the handshake: `initialize` then `notifications/initialized`.
    pub async fn initialize(&mut self) -> Result<Reply, CallError> {
        self.session_id = None;
        let params = format!(
            r#"{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"mcp-load","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let reply = self.request("initialize", &params).await?;
        self.notify("notifications/initialized").await?;
        Ok(reply)
    }

    /// Drops the keep-alive connection (an idle session needs only its GET stream).
    pub fn close_connection(&mut self) {
        self.conn = None;
    }

    /// Sends a request with `params` (a JSON object text) and waits for its response.
    pub async fn request(&mut self, method: &str, params: &str) -> Result<Reply, CallError> {
        self.request_observed(method, params, None).await
    }

    /// Like [`Session::request`], and hands every message streamed before the response to
    /// `observer` with its arrival time (the ask scenario times progress notifications so).
    pub async fn request_observed(
        &mut self,
        method: &str,
        params: &str,
        observer: Option<OnMessage<'_>>,
    ) -> Result<Reply, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
        self.post(body.as_bytes(), Some(id), observer).await
    }

    /// Next request id (for a progress token equal to the id, as the TS client does).
    pub fn peek_next_id(&self) -> u64 {
        self.next_id
    }

    /// Sends a notification (answered 202 with no body).
    pub async fn notify(&mut self, method: &str) -> Result<(), CallError> {
        let body = format!(r#"{{"jsonrpc":"2.0","method":"{method}"}}"#);
        self.post(body.as_bytes(), None, None).await.map(|_| ())
    }

    fn headers(&self, accept: &'static str) -> Vec<(&'static str, &str)> {
        let mut h = vec![("Accept", accept)];
        if let Some(sid) = &self.session_id {
            h.push(("Mcp-Session-Id", sid.as_str()));
            h.push(("MCP-Protocol-Version", PROTOCOL_VERSION));
        }
        if let Some(auth) = &self.config.authorization {
            h.push(("Authorization", auth.as_str()));
        }
        h
    }

    async fn post(
        &mut self,
        body: &[u8],
        id: Option<u64>,
        observer: Option<OnMessage<'_>>,
    ) -> Result<Reply, CallError> {
        let mut headers = self.headers("application/json, text/event-stream");
        headers.push(("Content-Type", "application/json"));
        let t = &self.config.target;
        let request = build_request("POST", &t.authority, &t.path, &headers, body);
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.exchange(&request, id, observer)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection is mid-response: it cannot carry the next request.
                self.conn = None;
                Err(CallError::Timeout)
            }
        }
    }

    async fn exchange(
        &mut self,
        request: &[u8],
        id: Option<u64>,
        observer: Option<OnMessage<'_>>,
    ) -> Result<Reply, CallError> {
        let addr = self.config.target.addr;
        let mut resent = false;
        loop {
            let mut conn = match self.conn.take() {
                Some(c) => c,
                None => Conn::connect(addr).await?,
            };
            let start = Instant::now();
            match conn.send(request).await {
                Ok(head) => return self.read_reply(conn, head, id, start, observer).await,
                // A reused connection the server closed while idle: nothing was processed.
                Err(HttpError::ClosedBeforeResponse) if conn.served > 0 && !resent => {
                    resent = true;
                    self.counters.resent_after_close += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn read_reply(
        &mut self,
        mut conn: Conn,
        head: ResponseHead,
        id: Option<u64>,
        start: Instant,
        observer: Option<OnMessage<'_>>,
    ) -> Result<Reply, CallError> {
        if let Some(sid) = head.session_id {
            self.session_id = Some(sid);
        }
        let keep_alive = head.keep_alive;
        let mut framing = head.framing;
        let outcome = match (head.status, id) {
            (200..=299, None) => {
                read_to_end(&mut conn, &mut framing, MAX_ERROR_BODY).await?;
                Ok(Reply {
                    latency: start.elapsed(),
                    is_error: false,
                })
            }
            (200, Some(id)) if head.content_type == "application/json" => {
                let body = read_to_end(&mut conn, &mut framing, u64::MAX).await?;
                let latency = start.elapsed();
                let msg: WireMessage = serde_json::from_slice(&body)
                    .map_err(|e| CallError::Protocol(format!("JSON body: {e}")))?;
                match response_to(&msg, id) {
                    Some(result) => result.map(|is_error| Reply { latency, is_error }),
                    None => Err(CallError::Protocol("JSON body is not our response".into())),
                }
            }
            (200, Some(id)) if head.content_type == "text/event-stream" => {
                let reply = self
                    .read_sse_reply(&mut conn, &mut framing, id, start, observer)
                    .await?;
                // Finish the stream so the connection can be reused; give up after a bound.
                match tokio::time::timeout(
                    DRAIN_AFTER_RESPONSE,
                    read_to_end(&mut conn, &mut framing, u64::MAX),
                )
                .await
                {
                    Ok(Ok(_)) => {}
                    _ => return reply,
                }
                reply
            }
            (200, Some(_)) => Err(CallError::Protocol(format!(
                "unexpected content type {:?}",
                head.content_type
            ))),
            (status, _) => {
                if read_to_end(&mut conn, &mut framing, MAX_ERROR_BODY)
                    .await
                    .is_err()
                {
                    return Err(CallError::Status(status));
                }
                Err(CallError::Status(status))
            }
        };
        if keep_alive {
            conn.served += 1;
            self.conn = Some(conn);
        }
        outcome
    }

    /// Parses SSE until the response with `id`; counts what comes before it.
    async fn read_sse_reply(
        &mut self,
        conn: &mut Conn,
        framing: &mut Framing,
        id: u64,
        start: Instant,
        mut observer: Option<OnMessage<'_>>,
    ) -> Result<Result<Reply, CallError>, CallError> {
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        while let Some(piece) = conn.body_piece(framing).await? {
            // One reading per TCP piece: every event in it arrived at the same moment.
            let arrival = observer.as_ref().map(|_| Arrival::now());
            parser.feed(&piece, &mut items);
            for item in items.drain(..) {
                let SseItem::Event { data, .. } = item else {
                    continue;
                };
                if data.is_empty() {
                    continue; // the priming event of MCP 2025-11-25
                }
                let msg: WireMessage = serde_json::from_slice(&data)
                    .map_err(|e| CallError::Protocol(format!("SSE data: {e}")))?;
                if let Some(result) = response_to(&msg, id) {
                    let latency = start.elapsed();
                    return Ok(result.map(|is_error| Reply { latency, is_error }));
                }
                if let (Some(observe), Some(arrival)) = (observer.as_deref_mut(), arrival) {
                    observe(&data, arrival);
                }
                match (&msg.method, &msg.id) {
                    (Some(method), None) => {
                        *self
                            .counters
                            .notifications
                            .entry(method.clone())
                            .or_default() += 1;
                    }
                    (Some(_), Some(_)) => self.counters.server_requests += 1,
                    _ => {}
                }
            }
        }
        Err(CallError::Protocol(
            "SSE stream ended without our response".into(),
        ))
    }

    /// Opens the standalone GET stream; `Ok(None)` when the server has none (405).
    pub async fn open_stream(&self) -> Result<Option<EventStream>, CallError> {
        let headers = self.headers("text/event-stream");
        let t = &self.config.target;
        let request = build_request("GET", &t.authority, &t.path, &headers, b"");
        let open = async {
            let mut conn = Conn::connect(t.addr).await?;
            let head = conn.send(&request).await?;
            Ok::<_, CallError>((conn, head))
        };
        let (conn, head) = tokio::time::timeout(self.config.timeout, open)
            .await
            .map_err(|_| CallError::Timeout)??;
        match head.status {
            200 if head.content_type == "text/event-stream" => Ok(Some(EventStream {
                conn,
                framing: head.framing,
                parser: SseParser::new(),
            })),
            200 => Err(CallError::Protocol(format!(
                "GET answered {:?}",
                head.content_type
            ))),
            405 => Ok(None),
            status => Err(CallError::Status(status)),
        }
    }
}

/// `Some(Ok(is_error))` / `Some(Err(..))` if `msg` answers request `id`, else `None`.
fn response_to(msg: &WireMessage, id: u64) -> Option<Result<bool, CallError>> {
    let matches = match &msg.id {
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(id),
        Some(serde_json::Value::String(s)) => s.parse::<u64>().ok() == Some(id),
        _ => false,
    };
    if !matches || msg.method.is_some() {
        return None;
    }
    if let Some(err) = &msg.error {
        return Some(Err(CallError::JsonRpc(err.code)));
    }
    Some(Ok(msg.result.as_ref().is_some_and(|r| r.is_error)))
}

async fn read_to_end(
    conn: &mut Conn,
    framing: &mut Framing,
    limit: u64,
) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    while let Some(piece) = conn.body_piece(framing).await? {
        if body.len() as u64 + piece.len() as u64 > limit {
            return Err(CallError::Protocol("response body too large".into()));
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

/// The standalone GET stream of a session.
#[derive(Debug)]
pub struct EventStream {
    conn: Conn,
    framing: Framing,
    parser: SseParser,
}

impl EventStream {
    /// Waits for more bytes and appends the items they complete; `Ok(false)` when the stream ended.
    pub async fn next_items(&mut self, out: &mut Vec<SseItem>) -> Result<bool, CallError> {
        let piece: Option<Bytes> = self.conn.body_piece(&mut self.framing).await?;
        match piece {
            Some(bytes) => {
                self.parser.feed(&bytes, out);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests;
