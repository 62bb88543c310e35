//! The typed agent-message events a caller sees (`AgentEvent`), and the mapping from one SSE
//! frame of Dust's message stream (dust-api.md §7.2, §7.4) to them. Unknown event types and the
//! handshake map to nothing; `data: done` is reported so the stream can reconnect at once.
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::sse::SseFrame;
use super::types::MessageError;

/// Name of the handshake event Dust sends first on every stream (dust-api.md §7.2).
const HANDSHAKE_EVENT: &str = "dust-handshake";

/// Which part of the answer a text delta belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextClass {
    /// The answer itself.
    Tokens,
    /// Visible reasoning.
    ChainOfThought,
}

/// One thing that happened to an agent message, as the stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// More text; append it verbatim (never trim at chunk boundaries).
    TextDelta {
        /// The new text.
        text: String,
        /// Answer or reasoning.
        classification: TextClass,
    },
    /// A tool call started (`tool_call_started`, `tool_params`).
    ActionStarted {
        /// Tool name.
        tool_name: String,
        /// Dust's "running" label, when it gave one.
        status: Option<String>,
    },
    /// A tool reported progress (`tool_notification`).
    ActionProgress {
        /// Tool name.
        tool_name: String,
        /// Progress label.
        status: Option<String>,
    },
    /// A tool call finished (`agent_action_success`).
    ActionDone {
        /// Tool name.
        tool_name: String,
        /// Dust's "done" label, when it gave one.
        status: Option<String>,
    },
    /// A tool failed (`tool_error`); the agent usually carries on.
    ToolError {
        /// Error code.
        code: String,
        /// Error text.
        message: String,
    },
    /// The agent waits for a human to approve a tool (`tool_approve_execution`); not terminal.
    ApprovalRequired {
        /// The action to validate.
        action_id: String,
        /// Tool name.
        tool_name: String,
    },
    /// Terminal: the answer is complete; `content` is Dust's own final text.
    Success {
        /// The final answer (`message.content`).
        content: String,
        /// Agent message sId.
        message_id: String,
    },
    /// Terminal: stopped by a user, with the work so far kept.
    GracefullyStopped {
        /// The answer so far.
        content: Option<String>,
        /// Agent message sId.
        message_id: String,
    },
    /// Terminal: the agent failed.
    Error {
        /// Error code.
        code: String,
        /// Error text.
        message: String,
    },
    /// Terminal: the generation was cancelled.
    Cancelled,
    /// Terminal: Dust rejected the user message.
    UserMessageError {
        /// Error code.
        code: String,
        /// Error text.
        message: String,
    },
    /// Observability: the stream reconnected (attempt 1 = first reconnect after a good one).
    Reconnected {
        /// Consecutive reconnect number since the last connection that delivered events.
        attempt: u32,
        /// Milliseconds from losing the previous connection to the new one answering.
        after_ms: u64,
    },
}

impl AgentEvent {
    /// True for the five events after which the message will not change (dust-api.md §10).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Success { .. }
                | Self::GracefullyStopped { .. }
                | Self::Error { .. }
                | Self::Cancelled
                | Self::UserMessageError { .. }
        )
    }
}

/// What one SSE frame meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Handshake, `{}` padding, unparsable or unknown: nothing to report.
    Ignored,
    /// `data: done`: the server is about to close; reconnect at once.
    Done,
    /// A Dust event; `event` is `None` for types we do not surface.
    Event {
        /// Redis stream id used for resume and dedup.
        event_id: Option<String>,
        /// The typed event.
        event: Option<AgentEvent>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    event_id: Option<String>,
    data: Option<Value>,
}

/// Interprets one frame of an agent message stream.
pub(crate) fn classify_frame(frame: &SseFrame) -> Frame {
    if frame.event.as_deref() == Some(HANDSHAKE_EVENT) {
        return Frame::Ignored;
    }
    let data = frame.data.trim();
    if data == "done" {
        return Frame::Done;
    }
    if data.is_empty() {
        return Frame::Ignored;
    }
    if let Some(frame) = token_frame(data) {
        return frame;
    }
    let envelope: Envelope = match serde_json::from_str(data) {
        Ok(e) => e,
        Err(e) => {
            // The SDK logs and skips these too; one bad frame must not end the answer.
            tracing::warn!(error = %e, "dust stream: unparsable event skipped");
            return Frame::Ignored;
        }
    };
    match envelope.data {
        Some(Value::Object(map)) if !map.is_empty() => Frame::Event {
            event_id: envelope.event_id,
            event: map_event(&Value::Object(map)),
        },
        _ => Frame::Ignored,
    }
}

/// `generation_tokens`, nearly every event of an answer, read without building a JSON tree:
/// only the three fields used, borrowed from the frame where no escape forces a copy.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenEnvelope<'a> {
    #[serde(borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: TokenData<'a>,
}

#[derive(Deserialize)]
struct TokenData<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    classification: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// The frame, if it is a `generation_tokens` event; `None` sends it down the general path.
fn token_frame(data: &str) -> Option<Frame> {
    let envelope: TokenEnvelope = serde_json::from_str(data).ok()?;
    if envelope.data.kind != "generation_tokens" {
        return None;
    }
    let classification = match envelope.data.classification.as_deref() {
        Some("tokens") => Some(TextClass::Tokens),
        Some("chain_of_thought") => Some(TextClass::ChainOfThought),
        _ => None, // delimiters only frame segments
    };
    Some(Frame::Event {
        event_id: envelope.event_id.map(Cow::into_owned),
        event: classification.map(|classification| AgentEvent::TextDelta {
            text: envelope.data.text.map(Cow::into_owned).unwrap_or_default(),
            classification,
        }),
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, key| v.get(key))?.as_str()
}

fn owned(v: &Value, path: &[&str]) -> String {
    str_at(v, path).unwrap_or_default().to_owned()
}

fn tool_name(v: &Value) -> String {
    str_at(v, &["toolName"])
        .or_else(|| str_at(v, &["action", "toolName"]))
        .or_else(|| str_at(v, &["action", "functionCallName"]))
        .or_else(|| str_at(v, &["metadata", "toolName"]))
        .unwrap_or("tool")
        .to_owned()
}

fn error_of(v: &Value) -> MessageError {
    v.get("error")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default()
}

/// Maps one event `data` object to an `AgentEvent` (dust-api.md §7.4); unknown types → None.
fn map_event(v: &Value) -> Option<AgentEvent> {
    let kind = str_at(v, &["type"])?;
    let message_id = || {
        str_at(v, &["message", "sId"])
            .or_else(|| str_at(v, &["messageId"]))
            .unwrap_or_default()
            .to_owned()
    };
    Some(match kind {
        "generation_tokens" => {
            let classification = match str_at(v, &["classification"])? {
                "tokens" => TextClass::Tokens,
                "chain_of_thought" => TextClass::ChainOfThought,
                _ => return None, // delimiters only frame segments
            };
            AgentEvent::TextDelta {
                text: owned(v, &["text"]),
                classification,
            }
        }
        "tool_call_started" => AgentEvent::ActionStarted {
            tool_name: tool_name(v),
            status: None,
        },
        "tool_params" => AgentEvent::ActionStarted {
            tool_name: tool_name(v),
            status: str_at(v, &["action", "displayLabels", "running"]).map(str::to_owned),
        },
        "tool_notification" => AgentEvent::ActionProgress {
            tool_name: tool_name(v),
            status: str_at(v, &["notification", "data", "label"])
                .or_else(|| str_at(v, &["notification", "_meta", "data", "label"]))
                .map(str::to_owned),
        },
        "agent_action_success" => AgentEvent::ActionDone {
            tool_name: tool_name(v),
            status: str_at(v, &["action", "displayLabels", "done"]).map(str::to_owned),
        },
        "tool_error" => {
            let e = error_of(v);
            AgentEvent::ToolError {
                code: e.code,
                message: e.message,
            }
        }
        "tool_approve_execution" => AgentEvent::ApprovalRequired {
            action_id: owned(v, &["actionId"]),
            tool_name: tool_name(v),
        },
        "agent_message_success" => AgentEvent::Success {
            content: owned(v, &["message", "content"]),
            message_id: message_id(),
        },
        "agent_message_gracefully_stopped" => AgentEvent::GracefullyStopped {
            content: str_at(v, &["message", "content"]).map(str::to_owned),
            message_id: message_id(),
        },
        "agent_error" => {
            let e = error_of(v);
            AgentEvent::Error {
                code: e.code,
                message: e.message,
            }
        }
        "agent_generation_cancelled" => AgentEvent::Cancelled,
        "user_message_error" => {
            let e = error_of(v);
            AgentEvent::UserMessageError {
                code: e.code,
                message: e.message,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &str) -> SseFrame {
        SseFrame {
            data: data.to_owned(),
            ..SseFrame::default()
        }
    }

    fn event(data: &str) -> Option<AgentEvent> {
        let json = format!(r#"{{"eventId":"1-0","data":{data}}}"#);
        match classify_frame(&frame(&json)) {
            Frame::Event { event_id, event } => {
                assert_eq!(event_id.as_deref(), Some("1-0"));
                event
            }
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn handshake_done_and_padding() {
        let hs = SseFrame {
            event: Some("dust-handshake".into()),
            data: "{}".into(),
            id: None,
        };
        assert_eq!(classify_frame(&hs), Frame::Ignored);
        assert_eq!(classify_frame(&frame("{}")), Frame::Ignored);
        assert_eq!(classify_frame(&frame("done")), Frame::Done);
        assert_eq!(classify_frame(&frame("{not json")), Frame::Ignored);
        assert_eq!(
            classify_frame(&frame(r#"{"eventId":"1-0","data":{}}"#)),
            Frame::Ignored
        );
    }

    #[test]
    fn tokens_keep_their_spaces_and_delimiters_are_dropped() {
        let e = event(r#"{"type":"generation_tokens","text":" two ","classification":"tokens"}"#);
        assert_eq!(
            e,
            Some(AgentEvent::TextDelta {
                text: " two ".into(),
                classification: TextClass::Tokens
            })
        );
        let e = event(
            r#"{"type":"generation_tokens","text":"hm","classification":"chain_of_thought"}"#,
        );
        assert!(matches!(
            e,
            Some(AgentEvent::TextDelta {
                classification: TextClass::ChainOfThought,
                ..
            })
        ));
        let e = event(
            r#"{"type":"generation_tokens","text":"<x>","classification":"opening_delimiter"}"#,
        );
        assert_eq!(e, None);
    }

    #[test]
    fn token_fast_path_decodes_escapes_and_agrees_with_the_general_path() {
        let cases = [
            r#"{"eventId":"7-1","data":{"type":"generation_tokens","created":1,"configurationId":"c","messageId":"m","text":"a \"quote\"\n\u00e9\ud83d\ude00","classification":"tokens"}}"#,
            r#"{"eventId":"7-2","data":{"type":"generation_tokens","text":"why","classification":"chain_of_thought","extra":{"nested":[1,2]}}}"#,
            r#"{"eventId":"7-3","data":{"type":"generation_tokens","classification":"closing_delimiter"}}"#,
            r#"{"data":{"type":"generation_tokens","classification":"tokens"}}"#,
        ];
        for json in cases {
            let fast = token_frame(json).expect("a generation_tokens frame");
            let envelope: Envelope = serde_json::from_str(json).unwrap();
            let general = Frame::Event {
                event_id: envelope.event_id,
                event: map_event(&envelope.data.unwrap()),
            };
            assert_eq!(fast, general, "{json}");
        }
        match token_frame(cases[0]) {
            Some(Frame::Event {
                event: Some(AgentEvent::TextDelta { text, .. }),
                ..
            }) => assert_eq!(text, "a \"quote\"\né😀"),
            other => panic!("{other:?}"),
        }
        // Everything else takes the general path.
        assert_eq!(
            token_frame(r#"{"data":{"type":"agent_generation_cancelled"}}"#),
            None
        );
        assert_eq!(token_frame(r#"{"data":{}}"#), None);
    }

    #[test]
    fn every_terminal_type() {
        let cases = [
            (
                r#"{"type":"agent_message_success","messageId":"m","message":{"sId":"m","content":"Two P1 incidents."}}"#,
                AgentEvent::Success {
                    content: "Two P1 incidents.".into(),
                    message_id: "m".into(),
                },
            ),
            (
                r#"{"type":"agent_message_gracefully_stopped","message":{"sId":"m","content":"part"}}"#,
                AgentEvent::GracefullyStopped {
                    content: Some("part".into()),
                    message_id: "m".into(),
                },
            ),
            (
                r#"{"type":"agent_error","error":{"code":"model_error","message":"boom","metadata":null}}"#,
                AgentEvent::Error {
                    code: "model_error".into(),
                    message: "boom".into(),
                },
            ),
            (
                r#"{"type":"agent_generation_cancelled"}"#,
                AgentEvent::Cancelled,
            ),
            (
                r#"{"type":"user_message_error","error":{"code":"c","message":"no"}}"#,
                AgentEvent::UserMessageError {
                    code: "c".into(),
                    message: "no".into(),
                },
            ),
        ];
        for (json, want) in cases {
            let got = event(json).unwrap();
            assert!(got.is_terminal(), "{json}");
            assert_eq!(got, want);
        }
    }

    #[test]
    fn tools_and_unknown_types() {
        let e = event(
            r#"{"type":"tool_params","action":{"toolName":"search","displayLabels":{"running":"Searching","done":"Searched"}}}"#,
        );
        assert_eq!(
            e,
            Some(AgentEvent::ActionStarted {
                tool_name: "search".into(),
                status: Some("Searching".into())
            })
        );
        let e = event(
            r#"{"type":"agent_action_success","action":{"functionCallName":"f","displayLabels":{"done":"Done"}}}"#,
        );
        assert_eq!(
            e,
            Some(AgentEvent::ActionDone {
                tool_name: "f".into(),
                status: Some("Done".into())
            })
        );
        let e = event(
            r#"{"type":"tool_approve_execution","actionId":"a1","metadata":{"toolName":"t"}}"#,
        )
        .unwrap();
        assert!(!e.is_terminal());
        assert_eq!(event(r#"{"type":"retrieval_params","x":1}"#), None);
        assert_eq!(event(r#"{"type":"agent_message_done"}"#), None);
        assert_eq!(event(r#"{"noType":true}"#), None);
    }
}
