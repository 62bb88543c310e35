//! `DustStream`: one Dust agent answer, streamed. Started by a `dust_ask` call (one per request),
//! on the arbiter of the session that runs it.
//!
//! - **Owns**: the upstream event stream of one agent message (with its reconnects, inside the
//!   Dust client), the answer so far, and the text not yet forwarded.
//! - **Takes**: the stream's `AgentEvent`s (as a `StreamHandler`), `CancelAnswer` (the MCP
//!   request was cancelled: stop the agent on Dust too), `Detach` (stop reading, let the agent
//!   finish on Dust's side: the call hit its time cap).
//! - **Emits**: `AnswerUpdate`s on the channel given at start: coalesced text, status lines
//!   (tool use, reasoning), and exactly one `Finished`.
//! - **Lifecycle**: not supervised: a failed stream ends with `Finished { outcome: Failed }`,
//!   and the caller decides. It stops after its terminal event, on cancel or detach, or when the
//!   caller drops the channel.
//! - **Timers**: a flush `coalesce` after the first unsent delta, so chunks reach the client in
//!   well under 100 ms without one notification per token.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::dust::{AgentEvent, DustClient, DustError, TextClass};

// === messages handled ===

/// Stop the agent on Dust (the MCP request was cancelled), then stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelAnswer;

/// Stop reading without cancelling on Dust (the call reached its time cap).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Detach;

// === events emitted ===

/// What the stream reports to the call that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerUpdate {
    /// New answer text (coalesced deltas, verbatim).
    Text(String),
    /// A status line: a tool started or finished, the agent is reasoning, a reconnect.
    Status(String),
    /// The answer ended; nothing follows.
    Finished(Outcome),
}

/// How an answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Dust's final text (`agent_message_success.message.content`).
    Succeeded { content: String },
    /// Stopped on Dust with the work so far.
    GracefullyStopped { content: String },
    /// The agent failed.
    AgentError { code: String, message: String },
    /// The generation was cancelled (by us or someone else).
    Cancelled { content: String },
    /// Dust rejected the user message.
    UserMessageError { code: String, message: String },
    /// The stream failed (network, Dust down, expired log); the text so far is kept.
    Failed { error: String, content: String },
}

/// The actor.
pub struct DustStream {
    client: DustClient,
    conversation_id: String,
    message_id: String,
    out: mpsc::UnboundedSender<AnswerUpdate>,
    coalesce: Duration,
    /// Everything the agent wrote so far.
    answer: String,
    /// Answer text not yet sent.
    pending: String,
    flush_at: Option<SpawnHandle>,
    /// Whether reasoning was already announced (announced once, not per token).
    thinking_announced: bool,
    finished: bool,
}

impl DustStream {
    /// Starts streaming `message_id` of `conversation_id`; updates go to `out`.
    pub fn start(
        client: DustClient,
        conversation_id: String,
        message_id: String,
        coalesce: Duration,
        out: mpsc::UnboundedSender<AnswerUpdate>,
    ) -> Addr<DustStream> {
        DustStream::create(|ctx| {
            ctx.add_stream(client.stream_agent_message(&conversation_id, &message_id));
            DustStream {
                client,
                conversation_id,
                message_id,
                out,
                coalesce,
                answer: String::new(),
                pending: String::new(),
                flush_at: None,
                thinking_announced: false,
                finished: false,
            }
        })
    }

    fn flush(&mut self) {
        self.flush_at = None;
        if !self.pending.is_empty() {
            let text = std::mem::take(&mut self.pending);
            let _ = self.out.send(AnswerUpdate::Text(text));
        }
    }

    fn status(&mut self, line: String) {
        // Keep the order the user would see: text written before a tool started comes first.
        self.flush();
        let _ = self.out.send(AnswerUpdate::Status(line));
    }

    fn finish(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        if self.finished {
            return;
        }
        self.flush();
        self.finished = true;
        let _ = self.out.send(AnswerUpdate::Finished(outcome));
        ctx.stop();
    }

    fn on_event(&mut self, event: AgentEvent, ctx: &mut Context<Self>) {
        match event {
            AgentEvent::TextDelta {
                text,
                classification: TextClass::Tokens,
            } => {
                self.answer.push_str(&text);
                self.pending.push_str(&text);
                if self.flush_at.is_none() {
                    self.flush_at = Some(ctx.run_later(self.coalesce, |act, _| act.flush()));
                }
            }
            AgentEvent::TextDelta {
                classification: TextClass::ChainOfThought,
                ..
            } => {
                if !self.thinking_announced {
                    self.thinking_announced = true;
                    self.status("The agent is reasoning…".into());
                }
            }
            AgentEvent::ActionStarted { tool_name, status } => {
                self.status(status.unwrap_or_else(|| format!("Using {tool_name}…")))
            }
            AgentEvent::ActionProgress { tool_name, status } => {
                if let Some(s) = status {
                    self.status(format!("{tool_name}: {s}"));
                }
            }
            AgentEvent::ActionDone { tool_name, status } => {
                self.status(status.unwrap_or_else(|| format!("{tool_name} done")))
            }
            AgentEvent::ToolError { code, message } => {
                self.status(format!("A tool failed ({code}): {message}"))
            }
            AgentEvent::ApprovalRequired { tool_name, .. } => self.status(format!(
                "The agent waits for a human to approve {tool_name} in Dust (enable skip_tools_validation to avoid this)"
            )),
            AgentEvent::Reconnected { attempt, .. } => {
                tracing::debug!(conversation = %self.conversation_id, attempt, "Dust stream reconnected")
            }
            AgentEvent::Success { content, .. } => {
                self.finish(Outcome::Succeeded { content }, ctx)
            }
            AgentEvent::GracefullyStopped { content, .. } => {
                let content = content.unwrap_or_else(|| self.answer.clone());
                self.finish(Outcome::GracefullyStopped { content }, ctx)
            }
            AgentEvent::Error { code, message } => {
                self.finish(Outcome::AgentError { code, message }, ctx)
            }
            AgentEvent::Cancelled => {
                let content = self.answer.clone();
                self.finish(Outcome::Cancelled { content }, ctx)
            }
            AgentEvent::UserMessageError { code, message } => {
                self.finish(Outcome::UserMessageError { code, message }, ctx)
            }
        }
    }
}

impl Actor for DustStream {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.finished {
            // The stream ended without a terminal event and the client gave up on it.
            let _ = self.out.send(AnswerUpdate::Finished(Outcome::Failed {
                error: "the Dust stream ended without a final event".into(),
                content: self.answer.clone(),
            }));
        }
    }
}

impl StreamHandler<Result<AgentEvent, DustError>> for DustStream {
    fn handle(&mut self, item: Result<AgentEvent, DustError>, ctx: &mut Self::Context) {
        match item {
            Ok(event) => self.on_event(event, ctx),
            Err(e) => {
                let content = self.answer.clone();
                self.finish(
                    Outcome::Failed {
                        error: e.to_string(),
                        content,
                    },
                    ctx,
                );
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        let content = self.answer.clone();
        self.finish(
            Outcome::Failed {
                error: "the Dust stream ended without a final event".into(),
                content,
            },
            ctx,
        );
    }
}

impl Handler<CancelAnswer> for DustStream {
    type Result = ();

    /// Cancels the agent message on Dust, then stops.
    fn handle(&mut self, _: CancelAnswer, ctx: &mut Self::Context) {
        if self.finished {
            return;
        }
        self.finished = true;
        let client = self.client.clone();
        let (c, m) = (self.conversation_id.clone(), self.message_id.clone());
        // Stop reading now; the cancel request outlives the actor.
        actix_rt::spawn(async move {
            if let Err(e) = client.cancel_message(&c, &m).await {
                tracing::warn!(conversation = %c, error = %e, "could not cancel the agent message on Dust");
            } else {
                tracing::info!(conversation = %c, message = %m, "agent message cancelled on Dust");
            }
        });
        ctx.stop();
    }
}

impl Handler<Detach> for DustStream {
    type Result = ();

    /// Stops reading; the agent keeps going on Dust.
    fn handle(&mut self, _: Detach, ctx: &mut Self::Context) {
        self.finished = true;
        ctx.stop();
    }
}

/// The caller's handle: dropping it without `finish`/`detach` cancels the answer on Dust, which
/// is what happens when an MCP request is cancelled (its task is dropped).
pub struct AnswerHandle {
    addr: Addr<DustStream>,
    armed: bool,
}

impl AnswerHandle {
    /// Wraps a started stream.
    pub fn new(addr: Addr<DustStream>) -> AnswerHandle {
        AnswerHandle { addr, armed: true }
    }

    /// The answer ended normally: dropping the handle no longer cancels anything.
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// Stop reading but let the agent finish on Dust.
    pub fn detach(mut self) {
        self.armed = false;
        self.addr.do_send(Detach);
    }
}

impl Drop for AnswerHandle {
    fn drop(&mut self) {
        if self.armed {
            self.addr.do_send(CancelAnswer);
        }
    }
}
