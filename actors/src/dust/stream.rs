//! The agent-message event stream (dust-api.md §7, §10) as a local `futures::Stream` of
//! `AgentEvent`s: follows the 307 itself (keeping auth, then calls the SSE path directly),
//! decodes SSE as bytes arrive, resumes with `lastEventId` at once on `done`/EOF/drop (backoff
//! only for repeated failures), drops duplicate event ids, applies an idle timeout, and falls
//! back to GET conversation when the stream is silent or yields nothing.
use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::time::Duration;

use awc::error::PayloadError;
use awc::http::{header, Method, StatusCode};
use bytes::Bytes;
use futures::stream::{LocalBoxStream, StreamExt};
use tokio::time::{Instant, Sleep};

use super::client::{check_id, encode_query, retry_after_header, send_error, DustClient};
use super::error::DustError;
use super::events::{classify_frame, AgentEvent, Frame};
use super::retry::Backoff;
use super::sse::SseDecoder;
use super::types::AgentMessageStatus;

/// Redirect hops followed per connection (Dust uses exactly one).
const MAX_REDIRECTS: u32 = 3;

/// The stream of one agent message's events; ends after a terminal event or a fatal error.
pub type AgentEventStream = LocalBoxStream<'static, Result<AgentEvent, DustError>>;

type ByteStream = LocalBoxStream<'static, Result<Bytes, PayloadError>>;

impl DustClient {
    /// Streams the events of agent message `message_id` from the beginning.
    pub fn stream_agent_message(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> AgentEventStream {
        self.resume_agent_message(conversation_id, message_id, None)
    }

    /// Streams the events strictly after `last_event_id` (resume after a restart).
    pub fn resume_agent_message(
        &self,
        conversation_id: &str,
        message_id: &str,
        last_event_id: Option<String>,
    ) -> AgentEventStream {
        if let Err(e) =
            check_id("conversation", conversation_id).and_then(|_| check_id("message", message_id))
        {
            return futures::stream::once(async move { Err(e) }).boxed_local();
        }
        let api_url = self.url(&format!(
            "assistant/conversations/{conversation_id}/messages/{message_id}/events"
        ));
        let state = StreamState::new(
            self.clone(),
            api_url,
            conversation_id,
            message_id,
            last_event_id,
        );
        // Boxed: unfold moves its state into and out of every item's future, and the state
        // (decoder, queue, timers) is large enough for that copy to show in profiles.
        futures::stream::unfold(Box::new(state), |mut s| async move {
            let item = s.next_item().await?;
            Some((item, s))
        })
        .boxed_local()
    }
}

/// How a connection ended.
enum ConnEnd {
    /// `data: done` or EOF without a terminal event.
    Clean,
    /// The connection broke or could not be opened.
    Failed(DustError),
    /// No byte for the idle timeout.
    Idle,
}

struct StreamState {
    client: DustClient,
    conversation_id: String,
    message_id: String,
    /// `/api/v1/.../events`, where every stream starts.
    api_url: String,
    /// The `/api/sse/v1/...` URL learnt from the first 307, used directly afterwards.
    sse_url: Option<String>,
    last_event_id: Option<String>,
    /// Event ids already delivered (replays may overlap).
    seen: HashSet<String>,
    body: Option<ByteStream>,
    decoder: SseDecoder,
    queue: VecDeque<AgentEvent>,
    finished: bool,
    /// Connections opened so far.
    connections: u32,
    /// New (non-duplicate) events on the current connection.
    new_events: u32,
    /// Consecutive connections that failed or yielded nothing.
    failures: u32,
    /// Consecutive idle timeouts.
    idle_hits: u32,
    backoff: Backoff,
    /// Wait before the next connection attempt.
    delay: Duration,
    /// When the previous connection ended, for `Reconnected.after_ms`.
    lost_at: Option<Instant>,
    last_error: Option<DustError>,
    /// The current silence, for the idle timeout and the conversation probe.
    silence: Silence,
}

/// How long the stream has been silent, watched by one timer: a chunk only notes the time (no
/// timer per chunk, which cost a timer-wheel insert and removal per token); the timer, when it
/// fires early, is moved to the current deadline.
struct Silence {
    /// The last byte, or the connection's start.
    since: Instant,
    /// The last probe of the persisted conversation.
    probed: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Silence {
    fn new() -> Silence {
        let now = Instant::now();
        Silence {
            since: now,
            probed: now,
            timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    /// Bytes arrived.
    fn heard(&mut self) {
        self.since = Instant::now();
    }

    /// The conversation was probed; the next probe is one `probe` interval later.
    fn probed(&mut self) {
        self.probed = Instant::now();
    }

    fn silent_for(&self) -> Duration {
        self.since.elapsed()
    }

    /// When the silence reaches the next probe or the idle timeout (never earlier than before:
    /// both marks only move forward).
    fn due(&self, probe: Duration, idle: Duration) -> Instant {
        (self.since.max(self.probed) + probe).min(self.since + idle)
    }

    /// Completes once the silence reaches the next probe or the idle timeout. Cancel-safe.
    async fn reached(&mut self, probe: Duration, idle: Duration) {
        loop {
            self.timer.as_mut().await;
            let due = self.due(probe, idle);
            if Instant::now() >= due {
                return;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

impl StreamState {
    /// Nothing read yet; the first `next_item` connects to `api_url`.
    fn new(
        client: DustClient,
        api_url: String,
        conversation_id: &str,
        message_id: &str,
        last_event_id: Option<String>,
    ) -> StreamState {
        let s = client.settings();
        StreamState {
            decoder: SseDecoder::new(s.max_sse_event_bytes),
            backoff: Backoff::new(s.retry_base_delay, s.retry_max_delay),
            client,
            api_url,
            conversation_id: conversation_id.to_owned(),
            message_id: message_id.to_owned(),
            sse_url: None,
            last_event_id,
            seen: HashSet::new(),
            body: None,
            queue: VecDeque::new(),
            finished: false,
            connections: 0,
            new_events: 0,
            failures: 0,
            idle_hits: 0,
            delay: Duration::ZERO,
            lost_at: None,
            last_error: None,
            silence: Silence::new(),
        }
    }

    async fn next_item(&mut self) -> Option<Result<AgentEvent, DustError>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            if self.finished {
                return None;
            }
            if self.body.is_none() {
                if let Err(fatal) = self.connect().await {
                    self.finished = true;
                    return Some(Err(fatal));
                }
                continue;
            }
            if let Some(end) = self.read().await {
                self.body = None;
                if let Err(fatal) = self.after_end(end).await {
                    self.finished = true;
                    return Some(Err(fatal));
                }
            }
        }
    }

    /// Opens a connection (after the planned delay); transient failures only plan a retry.
    async fn connect(&mut self) -> Result<(), DustError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(std::mem::take(&mut self.delay)).await;
        }
        match self.open().await {
            Ok(body) => {
                self.connections += 1;
                if let Some(lost_at) = self.lost_at.take() {
                    self.client.note_stream_reconnect();
                    self.queue.push_back(AgentEvent::Reconnected {
                        attempt: self.failures + 1,
                        after_ms: lost_at.elapsed().as_millis() as u64,
                    });
                }
                self.body = Some(body);
                self.decoder = SseDecoder::new(self.client.settings().max_sse_event_bytes);
                self.new_events = 0;
                self.silence.heard();
                Ok(())
            }
            Err(e) if e.is_transient() || matches!(e, DustError::CircuitOpen { .. }) => {
                self.after_end(ConnEnd::Failed(e)).await
            }
            Err(e) => Err(e),
        }
    }

    /// Sends the GET, following redirects to the same host with auth kept.
    async fn open(&mut self) -> Result<ByteStream, DustError> {
        let client = self.client.clone();
        let settings = client.settings();
        let mut url = self.sse_url.clone().unwrap_or_else(|| self.api_url.clone());
        for _ in 0..=MAX_REDIRECTS {
            let full = match &self.last_event_id {
                Some(id) => format!("{url}?lastEventId={}", encode_query(id)),
                None => url.clone(),
            };
            client.admit().await?;
            let req = client
                .request(Method::GET, &full)
                .insert_header((header::ACCEPT, "text/event-stream"))
                .insert_header((header::CACHE_CONTROL, "no-cache"));
            let deadline = settings.response_timeout;
            let sent = tokio::time::timeout(deadline, req.send()).await;
            let mut resp = match sent {
                Err(_) => Err(DustError::Timeout {
                    operation: "open answer stream".into(),
                    after: deadline,
                }),
                Ok(r) => r.map_err(|e| send_error(e, "open answer stream", deadline)),
            }
            .inspect_err(|e| client.record::<()>(&Err(e.clone())))?;
            let status = resp.status();
            if status.is_redirection() {
                let next = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| same_host_url(client.base_url(), loc));
                let Some(next) = next else {
                    let err = DustError::Decode {
                        what: "answer stream redirect".into(),
                        detail: "Location missing or pointing to another host".into(),
                    };
                    return Err(err);
                };
                self.sse_url = Some(next.clone());
                url = next;
                continue;
            }
            if status == StatusCode::OK {
                client.record::<()>(&Ok(()));
                let body = resp.map(|chunk| chunk).boxed_local();
                return Ok(body);
            }
            let retry_after = retry_after_header(resp.headers());
            let bytes = tokio::time::timeout(deadline, resp.body().limit(64 * 1024)).await;
            let bytes = match bytes {
                Ok(Ok(b)) => b,
                _ => Bytes::new(),
            };
            let err =
                DustError::from_response(status.as_u16(), retry_after, &bytes, client.api_key());
            client.record::<()>(&Err(err.clone()));
            return Err(err);
        }
        Err(DustError::Decode {
            what: "answer stream".into(),
            detail: "too many redirects".into(),
        })
    }

    /// Reads one chunk; `Some(end)` when the connection is over.
    async fn read(&mut self) -> Option<ConnEnd> {
        let settings = self.client.settings();
        let idle = settings.stream_idle_timeout;
        let probe = settings.stream_silence_probe.min(idle);
        let body = self.body.as_mut()?;
        let chunk = tokio::select! {
            biased;
            c = body.next() => c,
            () = self.silence.reached(probe, idle) => {
                if self.silence.silent_for() >= idle {
                    return Some(ConnEnd::Idle);
                }
                // Silent but not yet idle: the event log may have expired or the answer may
                // have finished unseen; the persisted message tells (dust-api.md §7.3).
                self.silence.probed();
                self.finish_from_conversation().await;
                return self.finished.then_some(ConnEnd::Clean);
            }
        };
        match chunk {
            None => Some(ConnEnd::Clean),
            Some(Err(e)) => Some(ConnEnd::Failed(DustError::Transport {
                operation: "read answer stream".into(),
                detail: e.to_string(),
                sent: true,
            })),
            Some(Ok(bytes)) => {
                self.silence.heard();
                self.on_bytes(&bytes)
            }
        }
    }

    fn on_bytes(&mut self, bytes: &[u8]) -> Option<ConnEnd> {
        let frames = match self.decoder.feed(bytes) {
            Ok(f) => f,
            Err(e) => {
                return Some(ConnEnd::Failed(DustError::Decode {
                    what: "answer stream".into(),
                    detail: e.to_string(),
                }))
            }
        };
        for frame in frames {
            match classify_frame(&frame) {
                Frame::Ignored => {}
                // Dust closes right after `done`; reconnect now rather than wait for the close.
                Frame::Done => return Some(ConnEnd::Clean),
                Frame::Event { event_id, event } => {
                    if let Some(id) = event_id {
                        if !self.seen.insert(id.clone()) {
                            continue;
                        }
                        self.last_event_id = Some(id);
                    }
                    self.new_events += 1;
                    self.idle_hits = 0;
                    if let Some(ev) = event {
                        let terminal = ev.is_terminal();
                        self.queue.push_back(ev);
                        if terminal {
                            self.finished = true;
                            return Some(ConnEnd::Clean);
                        }
                    }
                }
            }
        }
        None
    }

    /// Decides what follows a connection's end: an immediate or delayed reconnect, a finish
    /// from the persisted message, or a fatal error.
    async fn after_end(&mut self, end: ConnEnd) -> Result<(), DustError> {
        if self.finished {
            return Ok(());
        }
        self.lost_at.get_or_insert_with(Instant::now);
        let productive = self.new_events > 0;
        self.new_events = 0;
        let s = self.client.settings();
        let (idle_timeout, idle_retries, max_reconnects) = (
            s.stream_idle_timeout,
            s.stream_idle_retries,
            s.stream_max_reconnects,
        );
        let mut check = !productive;
        match end {
            ConnEnd::Clean | ConnEnd::Failed(_) if productive => {
                self.failures = 0;
                self.backoff.reset();
                self.delay = Duration::ZERO;
            }
            ConnEnd::Idle => {
                self.idle_hits += 1;
                check = true;
                if self.idle_hits > idle_retries {
                    self.finish_from_conversation().await;
                    if self.finished {
                        return Ok(());
                    }
                    return Err(DustError::StreamIdle {
                        after: idle_timeout,
                    });
                }
                self.delay = Duration::ZERO;
            }
            ConnEnd::Clean => self.plan_retry(None),
            ConnEnd::Failed(e) => self.plan_retry(Some(e)),
        }
        if self.failures > max_reconnects {
            self.finish_from_conversation().await;
            if self.finished {
                return Ok(());
            }
            let last = self
                .last_error
                .as_ref()
                .map_or_else(|| "no events".to_owned(), ToString::to_string);
            return Err(DustError::StreamExhausted {
                attempts: self.failures,
                last,
            });
        }
        if check && self.connections > 0 {
            self.finish_from_conversation().await;
        }
        Ok(())
    }

    /// Counts one more unproductive connection and plans the wait before the next one:
    /// none for the first, jittered backoff (or the server's Retry-After) after that.
    fn plan_retry(&mut self, err: Option<DustError>) {
        self.failures += 1;
        let asked = err.as_ref().and_then(DustError::retry_after);
        let backoff = if self.failures > 1 {
            self.backoff.next_delay()
        } else {
            Duration::ZERO
        };
        let cap = self.client.settings().max_retry_after;
        self.delay = backoff.max(asked.map_or(Duration::ZERO, |a| a.min(cap)));
        if let Some(e) = err {
            tracing::debug!(error = %e, failures = self.failures, "dust answer stream connection failed");
            self.last_error = Some(e);
        }
    }

    /// Ends the stream from the persisted agent message when it is terminal.
    async fn finish_from_conversation(&mut self) {
        let conversation = match self.client.get_conversation(&self.conversation_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "dust stream fallback: conversation unavailable");
                return;
            }
        };
        let Some(message) = conversation.agent_message(&self.message_id) else {
            return;
        };
        let event = match &message.status {
            AgentMessageStatus::Succeeded => AgentEvent::Success {
                content: message.content.clone().unwrap_or_default(),
                message_id: message.s_id.clone(),
            },
            AgentMessageStatus::Failed => {
                let e = message.error.clone().unwrap_or_default();
                AgentEvent::Error {
                    code: e.code,
                    message: e.message,
                }
            }
            AgentMessageStatus::Cancelled => AgentEvent::Cancelled,
            _ => return,
        };
        tracing::debug!(message = %self.message_id, "dust stream finished from the persisted message");
        self.queue.push_back(event);
        self.finished = true;
        self.body = None;
    }
}

/// Resolves a `Location` against our base URL; `None` if it leaves our host.
fn same_host_url(base: &str, location: &str) -> Option<String> {
    let absolute = if location.starts_with('/') && !location.starts_with("//") {
        format!("{base}{location}")
    } else {
        location.to_owned()
    };
    let rest = absolute.strip_prefix(base)?;
    if !rest.starts_with('/') {
        return None;
    }
    // We add `lastEventId` ourselves on every connection.
    let without_query = absolute.split(['?', '#']).next().unwrap_or_default();
    Some(without_query.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dust::{DustSettings, DustShared, Secret};

    fn state() -> StreamState {
        let shared = DustShared::new(DustSettings::new(
            "http://127.0.0.1:9",
            Secret::new("sk-t"),
            "w1",
        ))
        .unwrap();
        StreamState::new(shared.client(), String::new(), "c", "m", None)
    }

    fn tok(id: &str, text: &str) -> String {
        format!("data: {{\"eventId\":\"{id}\",\"data\":{{\"type\":\"generation_tokens\",\"text\":\"{text}\",\"classification\":\"tokens\"}}}}\n\n")
    }

    fn texts(s: &mut StreamState) -> String {
        s.queue
            .drain(..)
            .map(|e| match e {
                AgentEvent::TextDelta { text, .. } => text,
                other => format!("<{other:?}>"),
            })
            .collect()
    }

    #[actix_rt::test]
    async fn replayed_events_are_dropped_and_resume_point_advances() {
        let mut s = state();
        let first = format!(
            "event: dust-handshake\ndata: {{}}\n\n{}{}",
            tok("1-0", "a"),
            tok("2-0", "b")
        );
        assert!(s.on_bytes(first.as_bytes()).is_none());
        assert_eq!(texts(&mut s), "ab");
        assert_eq!(s.last_event_id.as_deref(), Some("2-0"));
        // A replay that overlaps what we saw, then `done`.
        let second = format!(
            "{}{}{}data: done\n\n",
            tok("2-0", "b"),
            tok("3-0", "c"),
            tok("1-0", "a")
        );
        assert!(matches!(
            s.on_bytes(second.as_bytes()),
            Some(ConnEnd::Clean)
        ));
        assert_eq!(texts(&mut s), "c");
        assert_eq!(s.last_event_id.as_deref(), Some("3-0"));
        assert!(!s.finished, "done without a terminal event means reconnect");
    }

    #[actix_rt::test]
    async fn terminal_event_finishes_and_ignores_the_rest() {
        let mut s = state();
        let bytes = format!(
            "{}data: {{\"eventId\":\"2-0\",\"data\":{{\"type\":\"agent_generation_cancelled\"}}}}\n\n{}",
            tok("1-0", "a"),
            tok("3-0", "late")
        );
        assert!(matches!(s.on_bytes(bytes.as_bytes()), Some(ConnEnd::Clean)));
        assert!(s.finished);
        assert_eq!(texts(&mut s), "a<Cancelled>");
    }

    #[actix_rt::test]
    async fn first_failure_reconnects_at_once_repeated_ones_back_off() {
        let mut s = state();
        s.connections = 1;
        s.plan_retry(None);
        assert_eq!(s.delay, Duration::ZERO);
        s.plan_retry(None);
        assert!(s.delay > Duration::ZERO);
        let limited = DustError::RateLimited {
            error_type: "rate_limit_error".into(),
            message: String::new(),
            retry_after: Some(Duration::from_secs(7)),
        };
        s.plan_retry(Some(limited));
        assert_eq!(s.delay, Duration::from_secs(7), "Retry-After is honoured");
    }

    #[test]
    fn redirects_stay_on_our_host() {
        let base = "https://dust.tt";
        assert_eq!(
            same_host_url(base, "/api/sse/v1/w/w1/x/events?lastEventId=1-0").as_deref(),
            Some("https://dust.tt/api/sse/v1/w/w1/x/events")
        );
        assert_eq!(
            same_host_url(base, "https://dust.tt/api/sse/v1/e").as_deref(),
            Some("https://dust.tt/api/sse/v1/e")
        );
        assert_eq!(same_host_url(base, "https://dust.tt.evil.com/api"), None);
        assert_eq!(same_host_url(base, "//evil.com/api"), None);
        assert_eq!(same_host_url(base, "https://other.tt/api"), None);
    }
}
