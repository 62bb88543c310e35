//! Test knobs of the simulator: timing of answers, injected faults and limits.
//! Owns `Knobs` (the serialisable settings, all optional so `Default` means "as real Dust"),
//! the effective-value getters with their documented defaults, and `KnobCell`, which holds the
//! live knobs plus the countdowns of the "next N" faults. It does not apply faults itself.

use std::sync::{
    atomic::{AtomicU32, Ordering},
    Arc,
};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Default delay between two `generation_tokens` events (ms).
pub const DEFAULT_TOKEN_INTERVAL_MS: u64 = 30;
/// Default delay before the first event of an answer (ms).
pub const DEFAULT_FIRST_TOKEN_DELAY_MS: u64 = 150;
/// Real Dust caps one message-event connection at 60 s (dust-api.md §7.3).
pub const DEFAULT_CONNECTION_CAP_MS: u64 = 60_000;
/// Real Dust keeps message event logs 10 minutes after their last write (dust-api.md §7.3).
pub const DEFAULT_EVENT_TTL_MS: u64 = 600_000;
/// Conversation event logs live 5 s in real Dust (dust-api.md §7.3).
pub const DEFAULT_CONVERSATION_EVENT_TTL_MS: u64 = 5_000;
/// Conversation streams close after 3 minutes without an event (dust-api.md §7.3).
pub const DEFAULT_CONVERSATION_IDLE_MS: u64 = 180_000;
/// `blocking: true` waits at most 3 minutes (dust-api.md §6).
pub const DEFAULT_BLOCKING_TIMEOUT_MS: u64 = 180_000;
/// Per-actor message limit of real Dust (dust-api.md §2.3).
pub const DEFAULT_MESSAGE_LIMIT_PER_MINUTE: u32 = 100;
/// Upload-URL limit per workspace of real Dust (dust-api.md §2.3).
pub const DEFAULT_UPLOAD_URL_LIMIT_PER_MINUTE: u32 = 40;
/// Default `Retry-After` of injected 429s (s).
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;
/// Default length of an injected stall (ms).
pub const DEFAULT_STALL_MS: u64 = 5_000;
/// Default number of tokens an erroring agent emits before `agent_error`.
pub const DEFAULT_ERROR_AFTER_TOKENS: u32 = 3;

/// Which routes an injected fault applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteClass {
    /// Every `/api/...` route (not `/_sim`).
    #[default]
    All,
    /// Agent list, search and get.
    Agents,
    /// Create conversation.
    CreateConversation,
    /// Post a follow-up message.
    PostMessage,
    /// GET conversation.
    GetConversation,
    /// Cancel.
    Cancel,
    /// Content fragments.
    Fragments,
    /// The SSE endpoints under `/api/sse/v1` (not the 307 hop).
    Events,
    /// Upload URL, upload, file get/delete.
    Files,
}

impl RouteClass {
    /// Whether a fault aimed at `self` hits a request of class `class`.
    pub fn covers(self, class: RouteClass) -> bool {
        self == RouteClass::All || self == class
    }
}

/// Simulator knobs. Every field is optional; `None` (or absent in JSON) means the default noted
/// on the field, which mirrors real Dust where Dust has a value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Exact number of `generation_tokens` (classification `tokens`) per answer; the demo text is
    /// cut or repeated to fit. Default: the natural length of the demo answer (40-90 words).
    pub tokens_per_answer: Option<u32>,
    /// Delay between tokens in ms. Default 30. The `slow` agent multiplies it by 5.
    pub token_interval_ms: Option<u64>,
    /// Delay before the first event in ms. Default 150. The `slow` agent adds 1,500.
    pub first_token_delay_ms: Option<u64>,
    /// Per-connection cap of message streams in ms, after which the server writes `data: done`
    /// and closes, even mid-answer. Default 60,000 (real Dust).
    pub connection_cap_ms: Option<u64>,
    /// How long a message's events stay replayable after its last event, in ms. Default 600,000.
    pub event_ttl_ms: Option<u64>,
    /// Cap of `blocking: true` requests in ms. Default 180,000.
    pub blocking_timeout_ms: Option<u64>,
    /// Close message streams with `done` after `agent_generation_cancelled`. Default false: real
    /// Dust keeps the stream open until the cap (dust-api.md §7.3).
    pub close_stream_on_cancel: Option<bool>,
    /// Put each emission time in the token text: `"Hello[t=<unix micros>] "`. The final content
    /// keeps the stamps. Default false.
    pub stamp_tokens: Option<bool>,
    /// Emit a tool call (`tool_call_started`, `tool_params`, `agent_action_success`) before the
    /// answer, for every agent. Default false (only the `dust` agent uses a tool).
    pub tool_events: Option<bool>,
    /// Tool calls are "high stake": unless the message set `skipToolsValidation: true`, the agent
    /// emits `tool_approve_execution` and waits for validate-action (dust-api.md §9).
    /// Default false.
    pub tool_approval: Option<bool>,
    /// Abruptly drop a message stream (no `done`, broken chunked body) after this many event
    /// frames on the connection. Default off.
    pub drop_after_events: Option<u32>,
    /// How many upcoming connections `drop_after_events` applies to. Default: all of them.
    pub drop_connections: Option<u32>,
    /// Stop sending for `stall_ms` (without closing) after this many event frames. Default off.
    pub stall_after_events: Option<u32>,
    /// Length of a stall in ms. Default 5,000. A stall ignores the connection cap, as the real
    /// cap is only checked between events.
    pub stall_ms: Option<u64>,
    /// How many upcoming connections stall. Default: all of them.
    pub stall_connections: Option<u32>,
    /// The next N requests of `fail_route` get `fail_status`. Default 0.
    pub fail_next: Option<u32>,
    /// Status of injected failures: 500 (JSON `internal_server_error`), 502 (plain-text body, as a
    /// load balancer) or 503 (JSON `service_unavailable`). Default 503.
    pub fail_status: Option<u16>,
    /// Route class of injected failures. Default `all`.
    pub fail_route: Option<RouteClass>,
    /// The next N requests of `throttle_route` get 429 `rate_limit_error` with `Retry-After`.
    /// Default 0.
    pub throttle_next: Option<u32>,
    /// `Retry-After` of throttled requests in s. Default 1.
    pub retry_after_secs: Option<u64>,
    /// Route class of throttling. Default `all`.
    pub throttle_route: Option<RouteClass>,
    /// The next N message posts (create with message, or follow-up) get 403 `rate_limit_error`.
    /// Default 0.
    pub rate_limit_next_posts: Option<u32>,
    /// Message posts allowed per minute (fixed window) before 403 `rate_limit_error`.
    /// Default 100 (real Dust, per API key). Load tests should raise it.
    pub message_limit_per_minute: Option<u32>,
    /// Upload URLs allowed per minute before 429. Default 40 (real Dust).
    pub upload_url_limit_per_minute: Option<u32>,
    /// Added latency on every non-stream `/api/v1` route, in ms. Default 0.
    pub response_delay_ms: Option<u64>,
    /// Agent sIds whose answers end with `agent_error` (the `broken` agent always does).
    /// Default empty.
    pub failing_agents: Option<Vec<String>>,
    /// Tokens an erroring agent emits before its `agent_error`. Default 3.
    pub error_after_tokens: Option<u32>,
}

impl Knobs {
    /// Delay between tokens.
    pub fn token_interval_ms(&self) -> u64 {
        self.token_interval_ms.unwrap_or(DEFAULT_TOKEN_INTERVAL_MS)
    }
    /// Delay before the first event.
    pub fn first_token_delay_ms(&self) -> u64 {
        self.first_token_delay_ms
            .unwrap_or(DEFAULT_FIRST_TOKEN_DELAY_MS)
    }
    /// Per-connection cap of message streams.
    pub fn connection_cap_ms(&self) -> u64 {
        self.connection_cap_ms.unwrap_or(DEFAULT_CONNECTION_CAP_MS)
    }
    /// Replay retention of message events.
    pub fn event_ttl_ms(&self) -> u64 {
        self.event_ttl_ms.unwrap_or(DEFAULT_EVENT_TTL_MS)
    }
    /// Cap of blocking requests.
    pub fn blocking_timeout_ms(&self) -> u64 {
        self.blocking_timeout_ms
            .unwrap_or(DEFAULT_BLOCKING_TIMEOUT_MS)
    }
    /// Whether the stream ends after a cancel.
    pub fn close_stream_on_cancel(&self) -> bool {
        self.close_stream_on_cancel.unwrap_or(false)
    }
    /// Whether tokens carry their emission time.
    pub fn stamp_tokens(&self) -> bool {
        self.stamp_tokens.unwrap_or(false)
    }
    /// Whether every agent emits a tool call.
    pub fn tool_events(&self) -> bool {
        self.tool_events.unwrap_or(false)
    }
    /// Whether tool calls need approval.
    pub fn tool_approval(&self) -> bool {
        self.tool_approval.unwrap_or(false)
    }
    /// Length of a stall.
    pub fn stall_ms(&self) -> u64 {
        self.stall_ms.unwrap_or(DEFAULT_STALL_MS)
    }
    /// Status of injected failures.
    pub fn fail_status(&self) -> u16 {
        self.fail_status
            .filter(|s| matches!(s, 500 | 502 | 503))
            .unwrap_or(503)
    }
    /// Route class of injected failures.
    pub fn fail_route(&self) -> RouteClass {
        self.fail_route.unwrap_or_default()
    }
    /// `Retry-After` of throttled requests.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS)
    }
    /// Route class of throttling.
    pub fn throttle_route(&self) -> RouteClass {
        self.throttle_route.unwrap_or_default()
    }
    /// Message posts allowed per minute.
    pub fn message_limit_per_minute(&self) -> u32 {
        self.message_limit_per_minute
            .unwrap_or(DEFAULT_MESSAGE_LIMIT_PER_MINUTE)
    }
    /// Upload URLs allowed per minute.
    pub fn upload_url_limit_per_minute(&self) -> u32 {
        self.upload_url_limit_per_minute
            .unwrap_or(DEFAULT_UPLOAD_URL_LIMIT_PER_MINUTE)
    }
    /// Added latency of non-stream routes.
    pub fn response_delay_ms(&self) -> u64 {
        self.response_delay_ms.unwrap_or(0)
    }
    /// Whether the agent `s_id` is forced to fail.
    pub fn agent_fails(&self, s_id: &str) -> bool {
        self.failing_agents
            .as_ref()
            .is_some_and(|list| list.iter().any(|a| a == s_id))
    }
    /// Tokens before an `agent_error`.
    pub fn error_after_tokens(&self) -> u32 {
        self.error_after_tokens
            .unwrap_or(DEFAULT_ERROR_AFTER_TOKENS)
    }
}

/// A countdown of "the next N" faults; `u32::MAX` means "no limit".
#[derive(Debug, Default)]
pub(crate) struct Countdown(AtomicU32);

impl Countdown {
    fn set(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }
    fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
    /// Takes one unit; false when none is left.
    pub(crate) fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            })
            .is_ok()
    }
}

/// Live knobs plus the countdowns that requests consume.
#[derive(Debug, Default)]
pub(crate) struct KnobCell {
    knobs: RwLock<Arc<Knobs>>,
    pub(crate) fail: Countdown,
    pub(crate) throttle: Countdown,
    pub(crate) rate_limit_posts: Countdown,
    pub(crate) drop_conns: Countdown,
    pub(crate) stall_conns: Countdown,
}

impl KnobCell {
    /// A cell holding `knobs`.
    pub(crate) fn new(knobs: Knobs) -> Self {
        let cell = KnobCell::default();
        cell.set(knobs);
        cell
    }

    /// Replaces the knobs and re-arms the countdowns.
    pub(crate) fn set(&self, knobs: Knobs) {
        self.fail.set(knobs.fail_next.unwrap_or(0));
        self.throttle.set(knobs.throttle_next.unwrap_or(0));
        self.rate_limit_posts
            .set(knobs.rate_limit_next_posts.unwrap_or(0));
        self.drop_conns.set(match knobs.drop_after_events {
            None => 0,
            Some(_) => knobs.drop_connections.unwrap_or(u32::MAX),
        });
        self.stall_conns.set(match knobs.stall_after_events {
            None => 0,
            Some(_) => knobs.stall_connections.unwrap_or(u32::MAX),
        });
        *self.knobs.write() = Arc::new(knobs);
    }

    /// A snapshot for one request or stream.
    pub(crate) fn snapshot(&self) -> Arc<Knobs> {
        self.knobs.read().clone()
    }

    /// The knobs with the countdowns as they stand now (what is left of each "next N").
    pub(crate) fn current(&self) -> Knobs {
        let mut k = (*self.snapshot()).clone();
        let left = |c: &Countdown, set: bool| -> Option<u32> {
            match c.get() {
                u32::MAX => None,
                n if set => Some(n),
                _ => None,
            }
        };
        k.fail_next = k.fail_next.map(|_| self.fail.get());
        k.throttle_next = k.throttle_next.map(|_| self.throttle.get());
        k.rate_limit_next_posts = k.rate_limit_next_posts.map(|_| self.rate_limit_posts.get());
        k.drop_connections = left(&self.drop_conns, k.drop_connections.is_some());
        k.stall_connections = left(&self.stall_conns, k.stall_connections.is_some());
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_stops_at_zero_and_unlimited_never_does() {
        let cell = KnobCell::new(Knobs {
            fail_next: Some(2),
            drop_after_events: Some(3),
            ..Knobs::default()
        });
        assert!(cell.fail.take());
        assert!(cell.fail.take());
        assert!(!cell.fail.take());
        for _ in 0..10 {
            assert!(cell.drop_conns.take());
        }
        assert!(!cell.stall_conns.take());
        assert_eq!(cell.current().fail_next, Some(0));
    }

    #[test]
    fn knobs_json_rejects_unknown_fields() {
        assert!(serde_json::from_str::<Knobs>(r#"{"token_interval_ms":5}"#).is_ok());
        assert!(serde_json::from_str::<Knobs>(r#"{"tokn_interval_ms":5}"#).is_err());
    }
}
