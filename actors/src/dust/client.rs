//! `DustShared` (the `Send + Sync` part for one workspace: settings, limiter, breaker, agent
//! cache, counters) and `DustClient` (that plus this thread's pooled awc client), with the one
//! request path every call goes through: breaker → limiter → send → classify → retry policy.
//!
//! Getting a client on any arbiter: build `DustShared::new(settings)?` once at start-up, share
//! the `Arc`, and call `shared.client()` on the thread that will use it (inside the actor's
//! `started`, a handler, or an `App` factory). awc clients are `!Send`, so each thread gets its
//! own pooled client from a thread-local, created on first use and reused afterwards.
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use awc::error::SendRequestError;
use awc::http::{header, Method};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::breaker::{BreakerSnapshot, CircuitBreaker};
use super::cache::AgentCache;
use super::error::DustError;
use super::limiter::TokenBucket;
use super::metrics::{DustMetrics, DustMetricsSnapshot};
use super::retry::{parse_retry_after, Backoff};
use super::settings::DustSettings;

/// User-Agent sent to Dust, so their logs can tell our traffic apart.
const USER_AGENT: &str = concat!("dust-mcp/", env!("CARGO_PKG_VERSION"));

/// Source of `DustShared::id`, the thread-local cache key.
static NEXT_SHARED_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's awc clients, one per live `DustShared` (awc clients are `!Send`).
    static HTTP_CLIENTS: RefCell<HashMap<u64, (Weak<DustShared>, awc::Client)>> =
        RefCell::new(HashMap::new());
}

/// The serialisable status of one workspace's client, for /admin/status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DustStatus {
    /// Circuit breaker state.
    pub breaker: BreakerSnapshot,
    /// Counters.
    pub metrics: DustMetricsSnapshot,
}

/// Everything about one workspace's Dust access that threads share.
#[derive(Debug)]
pub struct DustShared {
    id: u64,
    base_url: String,
    settings: DustSettings,
    pub(crate) limiter: TokenBucket,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) agents: AgentCache,
    pub(crate) metrics: DustMetrics,
}

impl DustShared {
    /// Validates the settings and builds the shared state.
    pub fn new(settings: DustSettings) -> Result<Arc<Self>, DustError> {
        settings.validate()?;
        let base_url = settings.normalised_base_url()?;
        Ok(Arc::new(Self {
            id: NEXT_SHARED_ID.fetch_add(1, Ordering::Relaxed),
            base_url,
            limiter: TokenBucket::new(settings.rate_limit_per_sec, settings.rate_limit_burst),
            breaker: CircuitBreaker::new(
                settings.workspace_id.clone(),
                settings.breaker_failure_threshold,
                settings.breaker_cooldown,
            ),
            agents: AgentCache::new(settings.agent_cache_ttl),
            metrics: DustMetrics::default(),
            settings,
        }))
    }

    /// The settings in force.
    pub fn settings(&self) -> &DustSettings {
        &self.settings
    }

    /// Breaker state and counters.
    pub fn status(&self) -> DustStatus {
        DustStatus {
            breaker: self.breaker.snapshot(),
            metrics: self.metrics.snapshot(),
        }
    }

    /// A client for the calling thread (cheap after the first call on a thread).
    pub fn client(self: &Arc<Self>) -> DustClient {
        DustClient::new(self)
    }

    fn build_http(&self) -> awc::Client {
        let s = &self.settings;
        let connector = awc::Connector::new()
            .limit(s.pool_limit)
            .timeout(s.connect_timeout);
        awc::Client::builder()
            .connector(connector)
            .timeout(s.response_timeout)
            // We follow Dust's 307 ourselves so the Authorization header provably goes only
            // to our own base URL (dust-api.md §7.1).
            .disable_redirects()
            .add_default_header((header::USER_AGENT, USER_AGENT))
            .finish()
    }
}

/// A Dust client for one thread: cheap to clone, `!Send` (it holds an awc client).
#[derive(Clone)]
pub struct DustClient {
    pub(crate) shared: Arc<DustShared>,
    pub(crate) http: awc::Client,
}

impl std::fmt::Debug for DustClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DustClient")
            .field("base_url", &self.shared.base_url)
            .finish()
    }
}

/// A request body.
pub(crate) enum Body {
    Empty,
    Json(Bytes),
    Raw { content_type: String, bytes: Bytes },
}

impl DustClient {
    /// This thread's client for `shared` (the awc client is created once per thread).
    pub fn new(shared: &Arc<DustShared>) -> Self {
        let http = HTTP_CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, http)) = clients.get(&shared.id) {
                return http.clone();
            }
            // A new workspace on this thread: forget clients whose workspace is gone.
            clients.retain(|_, (owner, _)| owner.strong_count() > 0);
            let http = shared.build_http();
            clients.insert(shared.id, (Arc::downgrade(shared), http.clone()));
            http
        });
        Self {
            shared: Arc::clone(shared),
            http,
        }
    }

    /// The shared part (settings, breaker, counters).
    pub fn shared(&self) -> &Arc<DustShared> {
        &self.shared
    }

    pub(crate) fn settings(&self) -> &DustSettings {
        &self.shared.settings
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// `{base}/api/v1/w/{wId}/{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/w/{}/{}",
            self.shared.base_url,
            self.settings().workspace_id,
            path
        )
    }

    pub(crate) fn api_key(&self) -> &str {
        self.settings().api_key.expose()
    }

    /// Admission shared by every request and stream connection: breaker, then rate limiter.
    pub(crate) async fn admit(&self) -> Result<(), DustError> {
        self.shared
            .breaker
            .admit()
            .map_err(|retry_in| DustError::CircuitOpen {
                workspace_id: self.settings().workspace_id.clone(),
                retry_in,
            })?;
        self.shared.limiter.acquire().await;
        DustMetrics::bump(&self.shared.metrics.requests);
        Ok(())
    }

    /// Feeds the breaker and counters with a request's outcome.
    pub(crate) fn record<T>(&self, result: &Result<T, DustError>) {
        match result {
            Ok(_) => self.shared.breaker.record_success(),
            Err(e) => {
                DustMetrics::bump(&self.shared.metrics.failures);
                if matches!(e, DustError::RateLimited { .. }) {
                    DustMetrics::bump(&self.shared.metrics.rate_limited);
                }
                if e.is_outage() {
                    self.shared.breaker.record_failure();
                } else if !matches!(e, DustError::CircuitOpen { .. }) {
                    self.shared.breaker.record_success();
                }
            }
        }
    }

    /// A request builder with auth, for a URL already checked to be on our base URL.
    pub(crate) fn request(&self, method: Method, url: &str) -> awc::ClientRequest {
        self.http
            .request(method, url)
            .insert_header((header::AUTHORIZATION, format!("Bearer {}", self.api_key())))
    }

    /// One attempt: sends, reads the whole body within the response timeout, classifies.
    pub(crate) async fn execute(
        &self,
        method: Method,
        url: &str,
        body: &Body,
        operation: &str,
    ) -> Result<Bytes, DustError> {
        self.admit().await?;
        let deadline = self.settings().response_timeout;
        let limit = self.settings().max_response_bytes;
        let req = self
            .request(method, url)
            .insert_header((header::ACCEPT, "application/json"));
        let attempt = async {
            let sent = match body {
                Body::Empty => req.send().await,
                Body::Json(b) => {
                    req.content_type("application/json")
                        .send_body(b.clone())
                        .await
                }
                Body::Raw {
                    content_type,
                    bytes,
                } => {
                    req.content_type(content_type.as_str())
                        .send_body(bytes.clone())
                        .await
                }
            };
            let mut resp = sent.map_err(|e| send_error(e, operation, deadline))?;
            let status = resp.status().as_u16();
            let retry_after = retry_after_header(resp.headers());
            let bytes = resp
                .body()
                .limit(limit)
                .await
                .map_err(|e| DustError::Transport {
                    operation: operation.to_owned(),
                    detail: format!("reading the response: {e}"),
                    sent: true,
                })?;
            if (200..300).contains(&status) {
                Ok(bytes)
            } else {
                Err(DustError::from_response(
                    status,
                    retry_after,
                    &bytes,
                    self.api_key(),
                ))
            }
        };
        let result = match tokio::time::timeout(deadline, attempt).await {
            Ok(r) => r,
            Err(_) => Err(DustError::Timeout {
                operation: operation.to_owned(),
                after: deadline,
            }),
        };
        self.record(&result);
        if let Err(e) = &result {
            tracing::debug!(operation, error = %e, "dust request failed");
        }
        result
    }

    /// The delay before retrying after `err`, or `None` when retrying is pointless or too late.
    pub(crate) fn retry_delay(&self, err: &DustError, backoff: &mut Backoff) -> Option<Duration> {
        if !err.is_transient() || backoff.attempts() >= self.settings().max_retries {
            return None;
        }
        let ours = backoff.next_delay();
        match err.retry_after() {
            // Honour Dust's Retry-After, but never park a caller for longer than the bound:
            // past it, the caller gets the error (which says when to retry) at once.
            Some(asked) if asked > self.settings().max_retry_after => None,
            Some(asked) => Some(asked.max(ours)),
            None => Some(ours),
        }
    }

    /// Runs `attempt` with retries on transient errors; only for requests safe to repeat.
    pub(crate) async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, DustError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DustError>>,
    {
        let s = self.settings();
        let mut backoff = Backoff::new(s.retry_base_delay, s.retry_max_delay);
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.retry_delay(&e, &mut backoff) {
                    Some(delay) => {
                        DustMetrics::bump(&self.shared.metrics.retries);
                        tracing::debug!(error = %e, delay_ms = delay.as_millis() as u64, "retrying dust request");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(e),
                },
            }
        }
    }

    /// GET a workspace path and decode it, retrying transient failures.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        operation: &str,
    ) -> Result<T, DustError> {
        let url = self.url(path);
        self.with_retries(|| async {
            let bytes = self
                .execute(Method::GET, &url, &Body::Empty, operation)
                .await?;
            decode(&bytes, operation)
        })
        .await
    }

    /// POST JSON once, retrying only when the request certainly never left (connect failures).
    pub(crate) async fn post_json_once<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &impl Serialize,
        operation: &str,
    ) -> Result<T, DustError> {
        let body = Body::Json(encode(body, operation)?);
        let s = self.settings();
        let mut backoff = Backoff::new(s.retry_base_delay, s.retry_max_delay);
        loop {
            match self.execute(Method::POST, url, &body, operation).await {
                Ok(bytes) => return decode(&bytes, operation),
                Err(e @ DustError::Transport { sent: false, .. }) => {
                    match self.retry_delay(&e, &mut backoff) {
                        Some(delay) => {
                            DustMetrics::bump(&self.shared.metrics.retries);
                            tokio::time::sleep(delay).await;
                        }
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// POST JSON that is harmless to repeat (cancel), with the GET retry policy.
    pub(crate) async fn post_json_idempotent<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &impl Serialize,
        operation: &str,
    ) -> Result<T, DustError> {
        let body = Body::Json(encode(body, operation)?);
        self.with_retries(|| async {
            let bytes = self.execute(Method::POST, url, &body, operation).await?;
            decode(&bytes, operation)
        })
        .await
    }

    pub(crate) fn note_stream_reconnect(&self) {
        DustMetrics::bump(&self.shared.metrics.stream_reconnects);
    }

    pub(crate) fn note_duplicate_avoided(&self) {
        DustMetrics::bump(&self.shared.metrics.duplicate_posts_avoided);
    }

    pub(crate) fn note_stale_read(&self) {
        DustMetrics::bump(&self.shared.metrics.stale_agent_reads);
    }
}

/// Maps awc's send errors, keeping apart "never sent" (safe to retry) from "maybe sent".
pub(crate) fn send_error(err: SendRequestError, operation: &str, deadline: Duration) -> DustError {
    let operation = operation.to_owned();
    match err {
        SendRequestError::Timeout => DustError::Timeout {
            operation,
            after: deadline,
        },
        SendRequestError::Connect(e) => DustError::Transport {
            operation,
            detail: format!("connect: {e}"),
            sent: false,
        },
        SendRequestError::Url(e) => DustError::Transport {
            operation,
            detail: format!("bad URL: {e}"),
            sent: false,
        },
        other => DustError::Transport {
            operation,
            detail: other.to_string(),
            sent: true,
        },
    }
}

/// Reads `Retry-After` when present and parsable.
pub(crate) fn retry_after_header(headers: &awc::http::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], operation: &str) -> Result<T, DustError> {
    serde_json::from_slice(bytes).map_err(|e| DustError::Decode {
        what: format!("{operation} response"),
        detail: e.to_string(),
    })
}

pub(crate) fn encode(body: &impl Serialize, operation: &str) -> Result<Bytes, DustError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| DustError::InvalidInput {
            detail: format!("{operation}: cannot encode the request body: {e}"),
        })
}

/// Refuses ids that would change the URL path (Dust sIds are alphanumeric).
pub(crate) fn check_id(kind: &str, id: &str) -> Result<(), DustError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(DustError::InvalidInput {
            detail: format!("{kind} id {id:?} is not a Dust sId"),
        })
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Milliseconds since the epoch, by our clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dust::settings::Secret;

    fn shared() -> Arc<DustShared> {
        let mut s = DustSettings::new("http://127.0.0.1:9", Secret::new("sk-test"), "w1");
        s.max_retries = 2;
        s.max_retry_after = Duration::from_secs(5);
        DustShared::new(s).unwrap()
    }

    #[actix_rt::test]
    async fn retry_delay_honours_bounded_retry_after() {
        let client = shared().client();
        let limited = |secs| DustError::RateLimited {
            error_type: "rate_limit_error".into(),
            message: String::new(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_millis(10));
        assert_eq!(
            client.retry_delay(&limited(3), &mut b),
            Some(Duration::from_secs(3))
        );
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_millis(10));
        assert_eq!(
            client.retry_delay(&limited(60), &mut b),
            None,
            "beyond the bound: fail fast"
        );
        let refused = DustError::Refused {
            status: 400,
            error_type: "x".into(),
            message: String::new(),
        };
        assert_eq!(client.retry_delay(&refused, &mut b), None);
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_millis(10));
        let timeout = DustError::Timeout {
            operation: "x".into(),
            after: Duration::ZERO,
        };
        assert!(client.retry_delay(&timeout, &mut b).is_some());
        assert!(client.retry_delay(&timeout, &mut b).is_some());
        assert_eq!(
            client.retry_delay(&timeout, &mut b),
            None,
            "max_retries reached"
        );
    }

    #[actix_rt::test]
    async fn one_http_client_per_thread_and_shared_state() {
        let shared = shared();
        let a = shared.client();
        let b = DustClient::new(&shared);
        assert!(Arc::ptr_eq(a.shared(), b.shared()));
        assert!(format!("{a:?}").contains("127.0.0.1"));
        assert!(!format!("{a:?}").contains("sk-test"));
    }

    #[actix_rt::test]
    async fn https_client_builds_with_the_ring_provider() {
        // awc's rustls feature panics at client creation without a crypto provider
        // (rust-stack.md §5.2); depending on rustls with `ring` must prevent it.
        let s = DustSettings::new("https://eu.dust.tt", Secret::new("sk-test"), "w1");
        let client = DustShared::new(s).unwrap().client();
        assert_eq!(client.url("files"), "https://eu.dust.tt/api/v1/w/w1/files");
    }

    #[actix_rt::test]
    async fn clients_of_dropped_workspaces_are_forgotten() {
        let first = shared();
        drop(first.client());
        drop(first);
        let _second = shared().client();
        HTTP_CLIENTS.with(|c| assert!(c.borrow().values().all(|(w, _)| w.strong_count() > 0)));
    }

    #[test]
    fn ids_and_queries_are_safe_in_urls() {
        assert!(check_id("conversation", "Qw3rTy1234").is_ok());
        assert!(check_id("conversation", "../x").is_err());
        assert!(check_id("conversation", "").is_err());
        assert_eq!(encode_query("a b/é&"), "a%20b%2F%C3%A9%26");
    }
}
