//! Conversations (dust-api.md §4–§6, §9): create with a first message mentioning the agent,
//! follow-ups, get, cancel, and finding the agent message that answers a user message.
//! Message POSTs are never blindly repeated: after an ambiguous failure we look in the
//! conversation for our message before posting again.
use std::time::Duration;

use serde_json::json;

use super::client::{check_id, now_ms, DustClient};
use super::context::UserContext;
use super::error::DustError;
use super::files::FragmentInput;
use super::retry::Backoff;
use super::types::{
    AgentMessage, Conversation, ConversationResponse, CreateConversationBody,
    CreateConversationResponse, Mention, MessageBody, PostMessageBody, PostMessageResponse,
    UserMessage,
};

/// How far Dust's clock may lag ours when matching a landed message by its `created` stamp.
const CLOCK_SKEW_MS: i64 = 30_000;
/// GET-conversation polls while waiting for an agent message Dust has not created yet.
const AGENT_MESSAGE_POLLS: u32 = 5;

/// A user message to send to one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The text (non-empty).
    pub content: String,
    /// sId of the agent to mention (the mention, not text markup, triggers it).
    pub agent_id: String,
    /// Who is speaking.
    pub context: UserContext,
}

/// The ids needed to stream the answer and to follow up later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    /// Conversation sId (pass it back for follow-ups).
    pub conversation_id: String,
    /// The user message sId.
    pub user_message_id: String,
    /// The agent message answering it (the `mId` of the event stream).
    pub agent_message_id: String,
    /// Link to the conversation in the Dust app, when Dust gave one.
    pub conversation_url: Option<String>,
}

impl NewMessage {
    fn to_body(&self) -> Result<MessageBody, DustError> {
        if self.content.trim().is_empty() {
            return Err(DustError::InvalidInput {
                detail: "the message content is empty".into(),
            });
        }
        check_id("agent", &self.agent_id)?;
        Ok(MessageBody {
            content: self.content.clone(),
            mentions: vec![Mention {
                configuration_id: self.agent_id.clone(),
            }],
            context: self.context.to_body()?,
        })
    }
}

impl DustClient {
    /// Creates a conversation whose first message mentions the agent, with optional fragments.
    ///
    /// Dust offers API keys no way to list conversations, so a create that fails after it may
    /// have reached Dust cannot be checked; it is reported as `Unconfirmed`, never re-posted.
    pub async fn create_conversation(
        &self,
        message: &NewMessage,
        fragments: &[FragmentInput],
        title: Option<&str>,
    ) -> Result<PostedMessage, DustError> {
        let body = CreateConversationBody {
            title: title.map(str::to_owned),
            visibility: "unlisted",
            message: message.to_body()?,
            content_fragments: fragments
                .iter()
                .map(FragmentInput::to_body)
                .collect::<Result<_, _>>()?,
            blocking: false,
            skip_tools_validation: self.settings().skip_tools_validation,
        };
        let url = self.url("assistant/conversations");
        let resp: CreateConversationResponse = match self
            .post_json_once(&url, &body, "create conversation")
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_ambiguous() => {
                return Err(DustError::Unconfirmed {
                    operation: "creating the conversation".into(),
                    cause: Box::new(e),
                })
            }
            Err(e) => return Err(e),
        };
        let conversation = resp.conversation;
        let user = match resp.message {
            Some(m) => m,
            None => conversation
                .last_user_message()
                .cloned()
                .ok_or_else(|| DustError::Decode {
                    what: "create conversation response".into(),
                    detail: "no user message".into(),
                })?,
        };
        let agent = match conversation.agent_message_for(&user.s_id) {
            Some(a) => a.s_id.clone(),
            None => {
                self.wait_for_agent_message(&conversation.s_id, &user.s_id)
                    .await?
                    .s_id
            }
        };
        Ok(PostedMessage {
            conversation_id: conversation.s_id.clone(),
            user_message_id: user.s_id,
            agent_message_id: agent,
            conversation_url: conversation.url.clone(),
        })
    }

    /// Posts a follow-up message in an existing conversation, never creating it twice.
    pub async fn post_message(
        &self,
        conversation_id: &str,
        message: &NewMessage,
    ) -> Result<PostedMessage, DustError> {
        check_id("conversation", conversation_id)?;
        let body = PostMessageBody {
            message: message.to_body()?,
            blocking: false,
            skip_tools_validation: self.settings().skip_tools_validation,
        };
        let url = self.url(&format!(
            "assistant/conversations/{conversation_id}/messages"
        ));
        let not_before_ms = now_ms() - CLOCK_SKEW_MS;
        let s = self.settings();
        let mut backoff = Backoff::new(s.retry_base_delay, s.retry_max_delay);
        loop {
            let err = match self
                .post_json_once::<PostMessageResponse>(&url, &body, "post message")
                .await
            {
                Ok(resp) => {
                    return self
                        .posted(conversation_id, resp.message, &resp.agent_messages)
                        .await
                }
                Err(e) => e,
            };
            // A 403/429 rate limit on posting is decided before the message is stored.
            if matches!(err, DustError::RateLimited { .. }) {
                match self.retry_delay(&err, &mut backoff) {
                    Some(delay) => {
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    None => return Err(err),
                }
            }
            if !err.is_ambiguous() {
                return Err(err);
            }
            tokio::time::sleep(s.post_check_delay).await;
            match self
                .find_landed(conversation_id, &body.message, not_before_ms)
                .await
            {
                Ok(Some(user)) => {
                    tracing::info!(conversation = conversation_id, error = %err, "message POST failed but had landed; not re-posting");
                    self.note_duplicate_avoided();
                    return self.posted(conversation_id, user, &[]).await;
                }
                Ok(None) => match self.retry_delay(&err, &mut backoff) {
                    Some(delay) => {
                        tracing::info!(conversation = conversation_id, error = %err, "message POST did not land; posting again");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(err),
                },
                Err(check) => {
                    tracing::warn!(error = %check, "could not check whether the message landed");
                    return Err(DustError::Unconfirmed {
                        operation: "posting the message".into(),
                        cause: Box::new(err),
                    });
                }
            }
        }
    }

    /// The conversation with all its messages.
    pub async fn get_conversation(&self, conversation_id: &str) -> Result<Conversation, DustError> {
        check_id("conversation", conversation_id)?;
        let resp: ConversationResponse = self
            .get_json(
                &format!("assistant/conversations/{conversation_id}"),
                "get conversation",
            )
            .await?;
        Ok(resp.conversation)
    }

    /// Asks Dust to stop generating an agent message (repeating it is harmless).
    pub async fn cancel_message(
        &self,
        conversation_id: &str,
        agent_message_id: &str,
    ) -> Result<(), DustError> {
        check_id("conversation", conversation_id)?;
        check_id("message", agent_message_id)?;
        let url = self.url(&format!("assistant/conversations/{conversation_id}/cancel"));
        let _: serde_json::Value = self
            .post_json_idempotent(
                &url,
                &json!({"messageIds": [agent_message_id]}),
                "cancel message",
            )
            .await?;
        Ok(())
    }

    /// Our message, if the last user message of the conversation is it (same content and
    /// author, created after we first sent it).
    async fn find_landed(
        &self,
        conversation_id: &str,
        sent: &MessageBody,
        not_before_ms: i64,
    ) -> Result<Option<UserMessage>, DustError> {
        let conversation = self.get_conversation(conversation_id).await?;
        Ok(conversation
            .last_user_message()
            .filter(|m| {
                m.content == sent.content
                    && m.context.username == sent.context.username
                    && (m.created == 0 || m.created >= not_before_ms)
            })
            .cloned())
    }

    async fn posted(
        &self,
        conversation_id: &str,
        user: UserMessage,
        agent_messages: &[AgentMessage],
    ) -> Result<PostedMessage, DustError> {
        let agent = agent_messages
            .iter()
            .filter(|a| a.parent_message_id.as_deref() == Some(user.s_id.as_str()))
            .max_by_key(|a| a.version)
            .cloned();
        let agent = match agent {
            Some(a) => a,
            None => {
                self.wait_for_agent_message(conversation_id, &user.s_id)
                    .await?
            }
        };
        Ok(PostedMessage {
            conversation_id: conversation_id.to_owned(),
            user_message_id: user.s_id,
            agent_message_id: agent.s_id,
            conversation_url: None,
        })
    }

    /// Polls the conversation until the agent message for `user_message_id` exists (a steered
    /// message may get one only later, dust-api.md §5).
    async fn wait_for_agent_message(
        &self,
        conversation_id: &str,
        user_message_id: &str,
    ) -> Result<AgentMessage, DustError> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for _ in 0..AGENT_MESSAGE_POLLS {
            let conversation = self.get_conversation(conversation_id).await?;
            if let Some(a) = conversation.agent_message_for(user_message_id) {
                return Ok(a.clone());
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
        Err(DustError::NoAgentMessage {
            conversation_id: conversation_id.to_owned(),
            user_message_id: user_message_id.to_owned(),
        })
    }
}
