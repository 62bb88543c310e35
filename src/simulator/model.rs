//! The conversation model and its public JSON (dust-api.md §4): a conversation is a list of
//! ranks, each holding one message (user message, agent message or content fragment; the
//! simulator never edits, so each rank has a single version). Agent messages carry their own
//! event log and mutable generation state, written by `generation.rs`.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::{agents::AgentDef, event_log::EventLog};

/// Wall-clock milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Wall-clock microseconds since the epoch (for `stamp_tokens`).
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One rank of a conversation.
pub(crate) enum Item {
    /// A user message, already in its public JSON form.
    User(Value),
    /// An agent message.
    Agent(Arc<AgentMessage>),
    /// A content fragment, in its public JSON form.
    Fragment(Value),
}

/// A conversation.
pub(crate) struct Conversation {
    pub(crate) id: u64,
    pub(crate) s_id: String,
    pub(crate) created: u64,
    pub(crate) updated: u64,
    pub(crate) title: Option<String>,
    pub(crate) visibility: String,
    pub(crate) unread: bool,
    pub(crate) content: Vec<Item>,
    /// Conversation-level events (`user_message_new`, `agent_message_new`, ...).
    pub(crate) events: Arc<EventLog>,
}

impl Conversation {
    /// User messages posted in this conversation.
    pub(crate) fn user_message_count(&self) -> u64 {
        self.content
            .iter()
            .filter(|i| matches!(i, Item::User(_)))
            .count() as u64
    }

    /// The public Conversation JSON; `base` is the simulator's origin, `w_id` the workspace.
    pub(crate) fn to_json(&self, base: &str, w_id: &str) -> Value {
        let content: Vec<Value> = self
            .content
            .iter()
            .map(|item| match item {
                Item::User(v) | Item::Fragment(v) => json!([v]),
                Item::Agent(a) => json!([a.to_json()]),
            })
            .collect();
        json!({
            "id": self.id,
            "sId": self.s_id,
            "created": self.created,
            "updated": self.updated,
            "unread": self.unread,
            "actionRequired": false,
            "owner": owner_json(w_id),
            "title": self.title,
            "visibility": self.visibility,
            "requestedGroupIds": [],
            "requestedSpaceIds": [],
            "url": format!("{base}/w/{w_id}/conversation/{}", self.s_id),
            "content": content,
        })
    }
}

/// The workspace object in `conversation.owner`.
pub(crate) fn owner_json(w_id: &str) -> Value {
    json!({
        "id": 1,
        "sId": w_id,
        "name": "Demo workspace",
        "role": "builder",
        "segmentation": null,
        "whiteListedProviders": null,
        "defaultEmbeddingProvider": null,
        "regionalModelsOnly": false,
    })
}

/// Public status of an agent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AgentStatus {
    Created,
    Succeeded,
    Failed,
    Cancelled,
}

impl AgentStatus {
    fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Created => "created",
            AgentStatus::Succeeded => "succeeded",
            AgentStatus::Failed => "failed",
            AgentStatus::Cancelled => "cancelled",
        }
    }
}

/// What the generation task has produced so far.
pub(crate) struct AgentState {
    pub(crate) status: AgentStatus,
    pub(crate) content: Option<String>,
    pub(crate) chain_of_thought: Option<String>,
    pub(crate) error: Option<Value>,
    pub(crate) completed_ts: Option<u64>,
    pub(crate) actions: Vec<Value>,
    /// Current step (0, or 1 after a tool call); terminal events carry it.
    pub(crate) step: u32,
}

/// One agent message and its generation.
pub(crate) struct AgentMessage {
    pub(crate) id: u64,
    pub(crate) agent_message_id: u64,
    pub(crate) s_id: String,
    pub(crate) created: u64,
    pub(crate) rank: usize,
    pub(crate) parent_message_id: String,
    pub(crate) conversation_id: String,
    pub(crate) agent: &'static AgentDef,
    pub(crate) skip_tools_validation: bool,
    pub(crate) log: Arc<EventLog>,
    pub(crate) state: Mutex<AgentState>,
    /// Woken by a cancel request; the generation task stops at its next await.
    pub(crate) cancel: Notify,
    /// The `blockedActions` entry while a tool waits for validate-action.
    pub(crate) pending_approval: Mutex<Option<Value>>,
    /// The `approved` value sent to validate-action, taken by the generation task.
    pub(crate) decision: Mutex<Option<String>>,
    /// Woken by validate-action.
    pub(crate) decided: Notify,
}

impl AgentMessage {
    /// A new agent message in status `created`.
    pub(crate) fn new(
        ids: (u64, u64, String),
        rank: usize,
        parent_message_id: String,
        conversation_id: String,
        agent: &'static AgentDef,
        skip_tools_validation: bool,
    ) -> Self {
        AgentMessage {
            id: ids.0,
            agent_message_id: ids.1,
            s_id: ids.2,
            created: now_ms(),
            rank,
            parent_message_id,
            conversation_id,
            agent,
            skip_tools_validation,
            log: Arc::new(EventLog::default()),
            state: Mutex::new(AgentState {
                status: AgentStatus::Created,
                content: None,
                chain_of_thought: None,
                error: None,
                completed_ts: None,
                actions: Vec::new(),
                step: 0,
            }),
            cancel: Notify::new(),
            pending_approval: Mutex::new(None),
            decision: Mutex::new(None),
            decided: Notify::new(),
        }
    }

    /// Whether the generation has ended.
    pub(crate) fn is_terminal(&self) -> bool {
        self.state.lock().status != AgentStatus::Created
    }

    /// The public AgentMessage JSON as it stands now.
    pub(crate) fn to_json(&self) -> Value {
        let st = self.state.lock();
        let raw: Vec<Value> = st
            .content
            .iter()
            .map(|c| json!({"step": 0, "content": c}))
            .collect();
        json!({
            "id": self.id,
            "agentMessageId": self.agent_message_id,
            "sId": self.s_id,
            "type": "agent_message",
            "created": self.created,
            "completedTs": st.completed_ts,
            "visibility": "visible",
            "version": 0,
            "rank": self.rank,
            "parentMessageId": self.parent_message_id,
            "parentAgentMessageId": null,
            "configuration": self.agent.light_json(),
            "skipToolsValidation": self.skip_tools_validation,
            "status": st.status.as_str(),
            "actions": st.actions,
            "content": st.content,
            "chainOfThought": st.chain_of_thought,
            "rawContents": raw,
            "error": st.error,
        })
    }
}
