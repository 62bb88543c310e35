//! Dust wire types (dust-api.md §3–§8): request bodies we send and the parts of responses we
//! read. Every response type ignores unknown fields and every enum is open (unknown values are
//! kept as `Other`), because Dust adds fields and values without notice.
use serde::{Deserialize, Deserializer, Serialize};

/// Declares an enum that deserialises known strings to variants and anything else to `Other`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this client does not know yet.
            Other(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(match s.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Other(s),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }
    };
}

open_enum!(
    /// An agent configuration's `status` (dust-api.md §3.1).
    AgentStatus {
        /// Usable.
        Active = "active",
        /// Archived.
        Archived = "archived",
        /// Draft.
        Draft = "draft",
    }
);

open_enum!(
    /// An agent message's public `status` (dust-api.md §4).
    AgentMessageStatus {
        /// Still running.
        Created = "created",
        /// Finished with an answer (includes gracefully stopped).
        Succeeded = "succeeded",
        /// Finished with an error.
        Failed = "failed",
        /// Cancelled.
        Cancelled = "cancelled",
    }
);

impl AgentMessageStatus {
    /// True once the message will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A "light" agent configuration (dust-api.md §3.1), the fields a bridge needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentConfiguration {
    /// Agent sId (global agents have readable ids such as `dust`).
    pub s_id: String,
    /// Display name.
    pub name: String,
    /// What the agent is for.
    pub description: String,
    /// Avatar URL.
    pub picture_url: Option<String>,
    /// Lifecycle status.
    pub status: AgentStatus,
    /// Visibility scope (open string).
    pub scope: Option<String>,
    /// Configuration version.
    pub version: Option<i64>,
}

/// `{"agentConfigurations": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentListResponse {
    #[serde(default)]
    pub agent_configurations: Vec<AgentConfiguration>,
}

/// `{"agentConfiguration": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentGetResponse {
    pub agent_configuration: AgentConfiguration,
}

/// An `error` object on agent messages and events: `{code, message, metadata}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageError {
    /// Machine code.
    pub code: String,
    /// Human text.
    pub message: String,
}

/// A user message in a conversation (dust-api.md §4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserMessage {
    /// Message sId; agent messages point at it with `parentMessageId`.
    pub s_id: String,
    /// Version (edits create new versions).
    pub version: i64,
    /// Creation time, ms since the epoch.
    pub created: i64,
    /// The text.
    pub content: String,
    /// The context we sent (username, timezone, origin...).
    pub context: WireUserContext,
    /// `visible`, `deleted` or `pending` (steering).
    pub visibility: Option<String>,
}

/// The user-message context as Dust echoes it back.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WireUserContext {
    /// Username we sent.
    pub username: String,
    /// Timezone we sent.
    pub timezone: String,
    /// Origin (we always send `api`).
    pub origin: Option<String>,
}

/// An agent message (public form, dust-api.md §4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentMessage {
    /// Agent message sId (the `mId` of the events route).
    pub s_id: String,
    /// Version; the latest version of a rank is the one that counts.
    pub version: i64,
    /// Creation time, ms since the epoch.
    pub created: i64,
    /// The user message this answers.
    pub parent_message_id: Option<String>,
    /// Lifecycle status.
    pub status: AgentMessageStatus,
    /// The final answer once succeeded.
    pub content: Option<String>,
    /// Reasoning text, when the model exposes it.
    pub chain_of_thought: Option<String>,
    /// The failure when `status == failed`.
    pub error: Option<MessageError>,
    /// The agent that answered.
    pub configuration: Option<AgentConfiguration>,
}

/// A content fragment as it appears in conversations and fragment responses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContentFragment {
    /// Fragment sId.
    pub s_id: String,
    /// Title shown in Dust.
    pub title: String,
    /// MIME type.
    pub content_type: String,
    /// The uploaded file, when file-backed.
    pub file_id: Option<String>,
}

/// One version of one message rank in `conversation.content`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum ConversationItem {
    /// A user message.
    #[serde(rename = "user_message")]
    User(UserMessage),
    /// An agent message.
    #[serde(rename = "agent_message")]
    Agent(AgentMessage),
    /// A content fragment.
    #[serde(rename = "content_fragment")]
    Fragment(ContentFragment),
    /// A kind this client does not know.
    #[serde(other)]
    Other,
}

/// A conversation (dust-api.md §4): `content` holds, per rank, all versions of one message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Conversation {
    /// Conversation sId.
    pub s_id: String,
    /// Creation time, ms since the epoch.
    pub created: i64,
    /// Title, once Dust made one.
    pub title: Option<String>,
    /// Link to the conversation in the Dust app.
    pub url: Option<String>,
    /// Message ranks, each an array of versions.
    pub content: Vec<Vec<ConversationItem>>,
}

impl Conversation {
    /// The latest version of each rank, in rank order.
    pub fn latest_items(&self) -> impl Iterator<Item = &ConversationItem> {
        self.content.iter().filter_map(|versions| versions.last())
    }

    /// The agent message answering `user_message_id`, latest version, latest rank
    /// (dust-api.md §4: match `parentMessageId`, never "the first finished one").
    pub fn agent_message_for(&self, user_message_id: &str) -> Option<&AgentMessage> {
        self.latest_items()
            .filter_map(|item| match item {
                ConversationItem::Agent(m) => Some(m),
                _ => None,
            })
            .filter(|m| m.parent_message_id.as_deref() == Some(user_message_id))
            .last()
    }

    /// The agent message with this sId (latest version).
    pub fn agent_message(&self, message_id: &str) -> Option<&AgentMessage> {
        self.latest_items().find_map(|item| match item {
            ConversationItem::Agent(m) if m.s_id == message_id => Some(m),
            _ => None,
        })
    }

    /// The last user message (latest version).
    pub fn last_user_message(&self) -> Option<&UserMessage> {
        self.latest_items()
            .filter_map(|item| match item {
                ConversationItem::User(m) => Some(m),
                _ => None,
            })
            .last()
    }
}

/// `{"conversation": ...}` (GET conversation).
#[derive(Debug, Deserialize)]
pub(crate) struct ConversationResponse {
    pub conversation: Conversation,
}

/// Response of create-conversation.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateConversationResponse {
    pub conversation: Conversation,
    #[serde(default)]
    pub message: Option<UserMessage>,
}

/// Response of post-message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostMessageResponse {
    pub message: UserMessage,
    #[serde(default)]
    pub agent_messages: Vec<AgentMessage>,
}

/// `{"contentFragment": ...}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContentFragmentResponse {
    pub content_fragment: ContentFragment,
}

/// A file record (dust-api.md §8.2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DustFile {
    /// File sId, used as `fileId` in fragments.
    pub s_id: String,
    /// Legacy id (same as sId).
    pub id: String,
    /// MIME type.
    pub content_type: String,
    /// File name.
    pub file_name: String,
    /// Size in bytes.
    pub file_size: u64,
    /// `created` before upload, `ready` after processing.
    pub status: String,
    /// Where to POST the bytes (only on creation).
    pub upload_url: Option<String>,
}

impl DustFile {
    /// The id to put in a fragment (`sId`, falling back to `id`).
    pub fn file_id(&self) -> &str {
        if self.s_id.is_empty() {
            &self.id
        } else {
            &self.s_id
        }
    }
}

/// `{"file": ...}`.
#[derive(Debug, Deserialize)]
pub(crate) struct FileResponse {
    pub file: DustFile,
}

// === request bodies ===

/// `mentions[]` entry that triggers an agent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Mention {
    pub configuration_id: String,
}

/// `message.context` (dust-api.md §4).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageContextBody {
    pub username: String,
    pub timezone: String,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub profile_picture_url: Option<String>,
    pub origin: &'static str,
}

/// The message object (create) or the whole body (post-message).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageBody {
    pub content: String,
    pub mentions: Vec<Mention>,
    pub context: MessageContextBody,
}

/// Body of `POST .../conversations/{cId}/messages`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostMessageBody {
    #[serde(flatten)]
    pub message: MessageBody,
    pub blocking: bool,
    pub skip_tools_validation: bool,
}

/// Body of `POST .../conversations`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateConversationBody {
    pub title: Option<String>,
    pub visibility: &'static str,
    pub message: MessageBody,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub content_fragments: Vec<serde_json::Value>,
    pub blocking: bool,
    pub skip_tools_validation: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_tolerates_unknown_fields_kinds_and_values() {
        let json = r#"{"conversation":{"sId":"c1","created":1,"extra":{"x":1},"content":[
            [{"type":"user_message","sId":"u1","content":"hi","context":{"username":"a","timezone":"UTC"},"newField":3}],
            [{"type":"agent_message","sId":"a0","parentMessageId":"u1","status":"created","version":0},
             {"type":"agent_message","sId":"a1","parentMessageId":"u1","status":"weird_new","version":1}],
            [{"type":"compaction_message","sId":"x"}],
            [{"type":"user_message","sId":"u2","content":"again","context":{"username":"a","timezone":"UTC"}}],
            [{"type":"agent_message","sId":"a2","parentMessageId":"u2","status":"succeeded","content":"ok"}]
        ]}}"#;
        let c: ConversationResponse = serde_json::from_str(json).unwrap();
        let c = c.conversation;
        let first = c.agent_message_for("u1").unwrap();
        assert_eq!(first.s_id, "a1", "latest version wins");
        assert_eq!(first.status, AgentMessageStatus::Other("weird_new".into()));
        assert!(!first.status.is_terminal());
        let second = c.agent_message_for("u2").unwrap();
        assert_eq!(
            (second.s_id.as_str(), second.content.as_deref()),
            ("a2", Some("ok"))
        );
        assert!(second.status.is_terminal());
        assert_eq!(c.last_user_message().unwrap().s_id, "u2");
        assert!(matches!(c.content[2][0], ConversationItem::Other));
    }

    #[test]
    fn post_message_body_is_flat() {
        let body = PostMessageBody {
            message: MessageBody {
                content: "hi".into(),
                mentions: vec![Mention {
                    configuration_id: "ag".into(),
                }],
                context: MessageContextBody {
                    username: "u".into(),
                    timezone: "UTC".into(),
                    full_name: None,
                    email: None,
                    profile_picture_url: None,
                    origin: "api",
                },
            },
            blocking: false,
            skip_tools_validation: true,
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["content"], "hi");
        assert_eq!(v["mentions"][0]["configurationId"], "ag");
        assert_eq!(v["context"]["origin"], "api");
        assert_eq!(v["skipToolsValidation"], true);
    }
}
