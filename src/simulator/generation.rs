//! The generation task of one agent message: a tokio task (no thread) that appends the
//! §7.4 events to the message's log on timers (reasoning, an optional tool call, tokens, then
//! `agent_message_success` / `agent_error` / `agent_generation_cancelled`), keeps the message
//! state in step for GET conversation, and frees the log after the retention TTL.

use std::{sync::Arc, time::Duration};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::{
    agents::Persona,
    answers,
    event_log::EventLog,
    knobs::Knobs,
    model::{now_micros, now_ms, AgentMessage, AgentStatus, Conversation},
};

/// Extra first-token delay of the `slow` agent (ms).
const SLOW_EXTRA_FIRST_DELAY_MS: u64 = 1_500;
/// Token-interval multiplier of the `slow` agent.
const SLOW_INTERVAL_FACTOR: u64 = 5;

/// What a generation needs besides the message.
pub(crate) struct Job {
    pub(crate) msg: Arc<AgentMessage>,
    pub(crate) conversation: Arc<Mutex<Conversation>>,
    pub(crate) conversation_events: Arc<EventLog>,
    pub(crate) question: String,
    pub(crate) attachments: Vec<String>,
    pub(crate) knobs: Arc<Knobs>,
}

/// Starts the generation on the current runtime.
pub(crate) fn spawn(job: Job) {
    actix_rt::spawn(run(job));
}

enum End {
    Success,
    Error,
    Cancelled,
}

/// Sleeps `ms`, or returns true early when the message is cancelled.
async fn pause(msg: &AgentMessage, ms: u64) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => false,
        _ = msg.cancel.notified() => true,
    }
}

fn event(msg: &AgentMessage, kind: &str, step: u32, extra: Value) -> Value {
    let mut v = json!({
        "type": kind,
        "created": now_ms(),
        "configurationId": msg.agent.s_id,
        "messageId": msg.s_id,
        "step": step,
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

fn tokens_event(
    msg: &AgentMessage,
    step: u32,
    text: &str,
    class: &str,
    delim: Option<&str>,
) -> Value {
    let mut extra = json!({"text": text, "classification": class});
    if let Some(d) = delim {
        extra["delimiterClassification"] = json!(d);
    }
    event(msg, "generation_tokens", step, extra)
}

fn stamped(token: &str, stamp: bool) -> String {
    if !stamp {
        return token.to_string();
    }
    let word_len = token.trim_end().len();
    let (word, space) = token.split_at(word_len);
    format!("{word}[t={}]{space}", now_micros())
}

async fn run(job: Job) {
    let Job {
        msg,
        conversation,
        conversation_events,
        question,
        attachments,
        knobs,
    } = job;
    let slow = msg.agent.persona == Persona::Slow;
    let interval = knobs.token_interval_ms() * if slow { SLOW_INTERVAL_FACTOR } else { 1 };
    let first = knobs.first_token_delay_ms() + if slow { SLOW_EXTRA_FIRST_DELAY_MS } else { 0 };
    let end = generate(&msg, &knobs, &question, &attachments, interval, first).await;
    finish(&msg, &knobs, end);

    let status = if matches!(end_kind(&msg), AgentStatus::Failed) {
        "error"
    } else {
        "success"
    };
    conversation_events.push(json!({
        "type": "agent_message_done",
        "created": now_ms(),
        "conversationId": msg.conversation_id,
        "configurationId": msg.agent.s_id,
        "messageId": msg.s_id,
        "status": status,
    }));
    let new_title = {
        let mut conv = conversation.lock();
        conv.updated = now_ms();
        if conv.title.is_none() {
            let title: String = question.chars().take(60).collect();
            conv.title = Some(title.clone());
            Some(title)
        } else {
            None
        }
    };
    if let Some(title) = new_title {
        conversation_events
            .push(json!({"type": "conversation_title", "created": now_ms(), "title": title}));
    }

    tokio::time::sleep(Duration::from_millis(knobs.event_ttl_ms())).await;
    msg.log.expire();
}

fn end_kind(msg: &AgentMessage) -> AgentStatus {
    msg.state.lock().status
}

async fn generate(
    msg: &AgentMessage,
    knobs: &Knobs,
    question: &str,
    attachments: &[String],
    interval: u64,
    first: u64,
) -> End {
    if pause(msg, first).await {
        return End::Cancelled;
    }
    let mut step = 0;
    if let Some(cot) = answers::chain_of_thought(msg.agent, question) {
        msg.log.push(tokens_event(
            msg,
            step,
            "<thinking>",
            "opening_delimiter",
            Some("chain_of_thought"),
        ));
        for tok in answers::tokens(&cot, None) {
            if pause(msg, interval).await {
                return End::Cancelled;
            }
            msg.state
                .lock()
                .chain_of_thought
                .get_or_insert_with(String::new)
                .push_str(&tok);
            msg.log
                .push(tokens_event(msg, step, &tok, "chain_of_thought", None));
        }
        msg.log.push(tokens_event(
            msg,
            step,
            "</thinking>",
            "closing_delimiter",
            Some("chain_of_thought"),
        ));
    }
    if msg.agent.persona == Persona::Dust || knobs.tool_events() {
        let needs_approval = knobs.tool_approval() && !msg.skip_tools_validation;
        if run_tool(msg, step, question, interval, needs_approval).await {
            return End::Cancelled;
        }
        step += 1;
        msg.state.lock().step = step;
    }
    let fails = msg.agent.persona == Persona::Broken || knobs.agent_fails(msg.agent.s_id);
    let text = answers::answer(msg.agent, question, attachments);
    let stamp = knobs.stamp_tokens();
    for (i, tok) in answers::tokens(&text, knobs.tokens_per_answer)
        .iter()
        .enumerate()
    {
        if fails && i as u32 >= knobs.error_after_tokens() {
            return End::Error;
        }
        if i > 0 && pause(msg, interval).await {
            return End::Cancelled;
        }
        let tok = stamped(tok, stamp);
        msg.state
            .lock()
            .content
            .get_or_insert_with(String::new)
            .push_str(&tok);
        msg.log.push(tokens_event(msg, step, &tok, "tokens", None));
    }
    if fails {
        End::Error
    } else {
        End::Success
    }
}

/// Emits `tool_approve_execution` and waits for validate-action (dust-api.md §9); returns the
/// decision, or None when cancelled meanwhile.
async fn wait_for_approval(msg: &AgentMessage, step: u32, action: &Value) -> Option<String> {
    let action_id = action["sId"].clone();
    let inputs = action["params"].clone();
    let metadata = json!({
        "mcpServerName": "search",
        "toolName": "semantic_search",
        "agentName": msg.agent.name,
        "mcpServerDisplayName": "Search",
    });
    *msg.pending_approval.lock() = Some(json!({
        "messageId": msg.s_id,
        "conversationId": msg.conversation_id,
        "actionId": action_id,
        "status": "blocked_validation_required",
        "inputs": inputs,
        "stake": "high",
        "metadata": metadata,
    }));
    msg.log.push(event(
        msg,
        "tool_approve_execution",
        step,
        json!({
            "conversationId": msg.conversation_id,
            "actionId": action_id,
            "inputs": inputs,
            "stake": "high",
            "metadata": metadata,
            "isLastBlockingEventForStep": true,
        }),
    ));
    loop {
        if let Some(d) = msg.decision.lock().take() {
            *msg.pending_approval.lock() = None;
            return Some(d);
        }
        tokio::select! {
            _ = msg.decided.notified() => {}
            _ = msg.cancel.notified() => {
                *msg.pending_approval.lock() = None;
                return None;
            }
        }
    }
}

/// Emits a `search` tool call; true when cancelled meanwhile.
async fn run_tool(
    msg: &AgentMessage,
    step: u32,
    question: &str,
    interval: u64,
    needs_approval: bool,
) -> bool {
    let call_id = format!("call_{}", msg.s_id);
    msg.log.push(event(
        msg,
        "tool_call_started",
        step,
        json!({"toolName": "search", "toolCallId": call_id, "toolCallIndex": 0}),
    ));
    let mut action = json!({
        "id": msg.id * 10,
        "sId": format!("act{}", msg.s_id),
        "createdAt": now_ms(),
        "updatedAt": now_ms(),
        "mcpServerId": null,
        "internalMCPServerName": "search",
        "toolName": "semantic_search",
        "agentMessageId": msg.agent_message_id,
        "functionCallName": "search__semantic_search",
        "functionCallId": call_id,
        "status": "running",
        "params": {"query": question},
        "step": step,
        "executionDurationMs": null,
        "citationsAllocated": 0,
        "output": null,
        "generatedFiles": [],
        "displayLabels": {"running": "Searching", "done": "Searched"},
    });
    msg.log
        .push(event(msg, "tool_params", step, json!({ "action": action })));
    if needs_approval {
        match wait_for_approval(msg, step, &action).await {
            None => return true,
            Some(d) if d == "rejected" => {
                action["status"] = json!("denied");
                action["output"] =
                    json!([{"type": "text", "text": "The user rejected this tool call."}]);
                msg.state.lock().actions.push(action.clone());
                msg.log.push(event(
                    msg,
                    "agent_action_success",
                    step,
                    json!({ "action": action }),
                ));
                return false;
            }
            Some(_) => {}
        }
    }
    if pause(msg, interval * 3).await {
        return true;
    }
    action["status"] = json!("succeeded");
    action["executionDurationMs"] = json!(interval * 3);
    action["output"] =
        json!([{"type": "text", "text": "3 documents found in the demo workspace."}]);
    msg.state.lock().actions.push(action.clone());
    msg.log.push(event(
        msg,
        "agent_action_success",
        step,
        json!({ "action": action }),
    ));
    false
}

/// Sets the terminal state, then appends the terminal event (state first, so a reader woken by
/// the event sees the final state).
fn finish(msg: &AgentMessage, knobs: &Knobs, end: End) {
    let run_ids = json!([format!("run_{}", msg.s_id)]);
    let step = msg.state.lock().step;
    match end {
        End::Success => {
            {
                let mut st = msg.state.lock();
                st.status = AgentStatus::Succeeded;
                st.completed_ts = Some(now_ms());
                st.content.get_or_insert_with(String::new);
            }
            let message = msg.to_json();
            msg.log.push(event(
                msg,
                "agent_message_success",
                step,
                json!({"message": message, "runIds": run_ids}),
            ));
            msg.log.push_end_of_stream();
        }
        End::Error => {
            let error = json!({
                "code": "model_error",
                "message": format!("The agent {} failed to answer (simulated error).", msg.agent.name),
                "metadata": null,
            });
            {
                let mut st = msg.state.lock();
                st.status = AgentStatus::Failed;
                st.completed_ts = Some(now_ms());
                st.error = Some(error.clone());
            }
            msg.log.push(event(
                msg,
                "agent_error",
                step,
                json!({"error": error, "runIds": run_ids}),
            ));
            msg.log.push_end_of_stream();
        }
        End::Cancelled => {
            {
                let mut st = msg.state.lock();
                st.status = AgentStatus::Cancelled;
                st.completed_ts = Some(now_ms());
            }
            msg.log
                .push(event(msg, "agent_generation_cancelled", step, json!({})));
            if knobs.close_stream_on_cancel() {
                msg.log.push_end_of_stream();
            }
        }
    }
}
