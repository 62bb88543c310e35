//! Shared state of one simulator: conversations, messages, files, knobs, counters and
//! fixed-window limiters, plus `admit`, the gate every `/api` request passes (added latency,
//! injected 5xx/429, then auth). Owns no task; generation tasks hold `Arc`s into it.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use actix_web::{web, HttpRequest};
use dashmap::DashMap;
use parking_lot::Mutex;
use rand::{distr::Alphanumeric, Rng};
use serde::{Deserialize, Serialize};
use tokio::{sync::watch, time::Instant};

use super::{
    auth,
    error::ApiError,
    files::FileRecord,
    knobs::{KnobCell, Knobs, RouteClass},
    model::{AgentMessage, Conversation},
    SimConfig,
};

/// How handlers reach the state.
pub(crate) type SharedState = web::Data<SimState>;

/// Counters exposed by `Simulator::stats` and `GET /_sim/stats`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimStats {
    /// Conversations created.
    pub conversations_created: u64,
    /// User messages posted (create with message + follow-ups).
    pub user_messages_posted: u64,
    /// User messages per conversation sId, so a test can prove nothing was posted twice.
    pub user_messages_by_conversation: BTreeMap<String, u64>,
    /// Agent messages created.
    pub agent_messages_created: u64,
    /// Message-event SSE connections opened (after auth and lookups succeeded).
    pub stream_connections: u64,
    /// Of those, connections with a non-empty `lastEventId`.
    pub resumes: u64,
    /// Conversation-event SSE connections opened.
    pub conversation_stream_connections: u64,
    /// Message streams ended by the per-connection cap.
    pub capped_connections: u64,
    /// Message streams dropped abruptly by `drop_after_events`.
    pub dropped_connections: u64,
    /// Message streams stalled by `stall_after_events`.
    pub stalled_connections: u64,
    /// Cancel requests.
    pub cancels: u64,
    /// Upload URLs created.
    pub upload_urls: u64,
    /// File bodies uploaded.
    pub uploads: u64,
    /// Content fragments attached.
    pub content_fragments: u64,
    /// Requests refused with `rate_limit_error` (403 or 429, injected or by limit).
    pub rate_limit_refusals: u64,
    /// Injected 5xx answers.
    pub injected_5xx: u64,
}

/// Atomic counters behind `SimStats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) conversations_created: AtomicU64,
    pub(crate) user_messages_posted: AtomicU64,
    pub(crate) agent_messages_created: AtomicU64,
    pub(crate) stream_connections: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) conversation_stream_connections: AtomicU64,
    pub(crate) capped_connections: AtomicU64,
    pub(crate) dropped_connections: AtomicU64,
    pub(crate) stalled_connections: AtomicU64,
    pub(crate) cancels: AtomicU64,
    pub(crate) upload_urls: AtomicU64,
    pub(crate) uploads: AtomicU64,
    pub(crate) content_fragments: AtomicU64,
    pub(crate) rate_limit_refusals: AtomicU64,
    pub(crate) injected_5xx: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A fixed one-minute window, as Dust's limiters use.
#[derive(Debug)]
pub(crate) struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    fn new() -> Self {
        Window {
            started: Instant::now(),
            count: 0,
        }
    }

    /// Counts one hit; false when `limit` is already reached in this window.
    pub(crate) fn hit(&mut self, limit: u32) -> bool {
        if self.started.elapsed() >= Duration::from_secs(60) {
            *self = Window::new();
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }
}

/// A message sId resolved to its conversation and kind.
#[derive(Clone)]
pub(crate) enum MessageRef {
    /// A user message of conversation `.0`.
    User(String),
    /// An agent message.
    Agent(Arc<AgentMessage>),
}

/// Everything one simulator knows.
pub struct SimState {
    pub(crate) api_key: String,
    pub(crate) workspace_id: String,
    pub(crate) foreign_workspace_ids: Vec<String>,
    pub(crate) knobs: KnobCell,
    pub(crate) counters: Counters,
    pub(crate) conversations: DashMap<String, Arc<Mutex<Conversation>>>,
    pub(crate) messages: DashMap<String, MessageRef>,
    pub(crate) files: DashMap<String, Arc<Mutex<FileRecord>>>,
    pub(crate) message_window: Mutex<Window>,
    pub(crate) upload_window: Mutex<Window>,
    next_id: AtomicU64,
    /// Flips to true when the simulator stops, so open streams end instead of holding shutdown.
    pub(crate) shutdown: watch::Sender<bool>,
}

impl SimState {
    /// Fresh state for `config`.
    pub fn new(config: &SimConfig) -> Arc<SimState> {
        Arc::new(SimState {
            api_key: config.api_key.clone(),
            workspace_id: config.workspace_id.clone(),
            foreign_workspace_ids: config.foreign_workspace_ids.clone(),
            knobs: KnobCell::new(config.knobs.clone()),
            counters: Counters::default(),
            conversations: DashMap::new(),
            messages: DashMap::new(),
            files: DashMap::new(),
            message_window: Mutex::new(Window::new()),
            upload_window: Mutex::new(Window::new()),
            next_id: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
        })
    }

    /// Replaces the knobs; new requests and streams see them.
    pub fn set_knobs(&self, knobs: Knobs) {
        self.knobs.set(knobs);
    }

    /// The knobs as they stand, countdowns included.
    pub fn knobs(&self) -> Knobs {
        self.knobs.current()
    }

    /// A numeric id, unique within this simulator.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A 10-character sId, like Dust's.
    pub(crate) fn new_sid(&self) -> String {
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(10)
            .map(char::from)
            .collect()
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let by_conv = self
            .conversations
            .iter()
            .map(|e| (e.key().clone(), e.value().lock().user_message_count()))
            .collect();
        SimStats {
            conversations_created: get(&c.conversations_created),
            user_messages_posted: get(&c.user_messages_posted),
            user_messages_by_conversation: by_conv,
            agent_messages_created: get(&c.agent_messages_created),
            stream_connections: get(&c.stream_connections),
            resumes: get(&c.resumes),
            conversation_stream_connections: get(&c.conversation_stream_connections),
            capped_connections: get(&c.capped_connections),
            dropped_connections: get(&c.dropped_connections),
            stalled_connections: get(&c.stalled_connections),
            cancels: get(&c.cancels),
            upload_urls: get(&c.upload_urls),
            uploads: get(&c.uploads),
            content_fragments: get(&c.content_fragments),
            rate_limit_refusals: get(&c.rate_limit_refusals),
            injected_5xx: get(&c.injected_5xx),
        }
    }

    /// The conversation `c_id`, or 404 `conversation_not_found`.
    pub(crate) fn conversation(&self, c_id: &str) -> Result<Arc<Mutex<Conversation>>, ApiError> {
        self.conversations
            .get(c_id)
            .map(|c| c.value().clone())
            .ok_or_else(ApiError::conversation_not_found)
    }
}

/// The gate of every `/api` request: added latency (not on streams), injected 5xx, injected 429,
/// then auth and workspace checks (dust-api.md §1).
pub(crate) async fn admit(
    state: &SimState,
    req: &HttpRequest,
    w_id: &str,
    class: RouteClass,
) -> Result<(), ApiError> {
    let knobs = state.knobs.snapshot();
    let delay = knobs.response_delay_ms();
    if delay > 0 && class != RouteClass::Events {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if knobs.fail_route().covers(class) && state.knobs.fail.take() {
        bump(&state.counters.injected_5xx);
        return Err(injected_failure(knobs.fail_status()));
    }
    if knobs.throttle_route().covers(class) && state.knobs.throttle.take() {
        bump(&state.counters.rate_limit_refusals);
        return Err(ApiError::new(
            429,
            "rate_limit_error",
            "Too many requests to this endpoint for this workspace (max 500 per minute).",
        )
        .with_retry_after(knobs.retry_after_secs()));
    }
    auth::check(state, req, w_id)
}

fn injected_failure(status: u16) -> ApiError {
    match status {
        500 => ApiError::new(
            500,
            "internal_server_error",
            "Unhandled internal server error: injected by the simulator.",
        ),
        502 => ApiError {
            plain: true,
            ..ApiError::new(502, "bad_gateway", "502 Bad Gateway")
        },
        _ => ApiError::new(
            503,
            "service_unavailable",
            "The service is temporarily unavailable.",
        ),
    }
}
