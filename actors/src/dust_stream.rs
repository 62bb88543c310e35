//! `DustStream`: one Dust agent answer, streamed. Started by a `dust_ask` call (one per request),
//! on the arbiter of the session that runs it.
//!
//! - **Owns**: the upstream event stream of one agent message (with its reconnects, inside the
//!   Dust client), the answer so far, and the text not yet forwarded.
//! - **Takes**: the stream's `AgentEvent`s (as a `StreamHandler`), `CancelAnswer` (the MCP
//!   request was cancelled: stop the agent on Dust too), `Detach` (stop reading, let the agent
//!   finish on Dust's side: the call hit its time cap).
//! - **Emits**: `AnswerUpdate`s to the sink given at start, called in order on this actor's
//!   own arbiter (the session's) as they happen: coalesced text, status lines (tool use,
//!   reasoning), and exactly one `Finished`. A sink, not a channel: the caller turns text into
//!   progress notifications right here, without waking its own task for every token.
//! - **Lifecycle**: not supervised: a failed stream ends with `Finished { outcome: Failed }`,
//!   and the caller decides. It stops after its terminal event, on cancel or detach.
//! - **Timers**: text is forwarded at once when nothing was sent for `coalesce`; deltas that
//!   arrive sooner wait for one flush at the end of that window. So a slow writer's words go out
//!   immediately, and a fast one's are batched: at most one chunk per `coalesce`, gaps well under
//!   100 ms, never one notification per token.

use std::time::Duration;

use actix::{clock::Instant, prelude::*};

use crate::dust::{AgentEvent, AgentEventStream, DustClient, DustError, TextClass};

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

/// Receives a stream's updates, in order, on the stream's arbiter.
pub type AnswerSink = Box<dyn FnMut(AnswerUpdate)>;

/// The actor.
pub struct DustStream {
    client: DustClient,
    conversation_id: String,
    message_id: String,
    out: AnswerSink,
    coalesce: Duration,
    /// Everything the agent wrote so far.
    answer: String,
    /// Answer text not yet sent.
    pending: String,
    flush_at: Option<SpawnHandle>,
    /// When text was last sent.
    last_flush: Option<Instant>,
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
        out: AnswerSink,
    ) -> Addr<DustStream> {
        let events = client.stream_agent_message(&conversation_id, &message_id);
        Self::start_with(client, events, conversation_id, message_id, coalesce, out)
    }

    /// Starts over a given event stream (`client` is used only to cancel on Dust).
    pub fn start_with(
        client: DustClient,
        events: AgentEventStream,
        conversation_id: String,
        message_id: String,
        coalesce: Duration,
        out: AnswerSink,
    ) -> Addr<DustStream> {
        DustStream::create(|ctx| {
            ctx.add_stream(events);
            DustStream {
                client,
                conversation_id,
                message_id,
                out,
                coalesce,
                answer: String::new(),
                pending: String::new(),
                flush_at: None,
                last_flush: None,
                thinking_announced: false,
                finished: false,
            }
        })
    }

    fn flush(&mut self) {
        self.flush_at = None;
        if !self.pending.is_empty() {
            let text = std::mem::take(&mut self.pending);
            self.last_flush = Some(Instant::now());
            (self.out)(AnswerUpdate::Text(text));
        }
    }

    /// Sends pending text now if the window since the last send has passed, else once it has.
    fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        if self.flush_at.is_some() {
            return;
        }
        let since = self.last_flush.map(|t| t.elapsed());
        match since {
            Some(since) if since < self.coalesce => {
                let wait = self.coalesce - since;
                self.flush_at = Some(ctx.run_later(wait, |act, _| act.flush()));
            }
            _ => self.flush(),
        }
    }

    fn status(&mut self, line: String) {
        // Keep the order the user would see: text written before a tool started comes first.
        self.flush();
        (self.out)(AnswerUpdate::Status(line));
    }

    fn finish(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        if self.finished {
            return;
        }
        self.flush();
        self.finished = true;
        (self.out)(AnswerUpdate::Finished(outcome));
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
                self.schedule_flush(ctx);
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
            (self.out)(AnswerUpdate::Finished(Outcome::Failed {
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

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::sync::mpsc;

    use super::*;
    use crate::dust::{DustSettings, DustShared, Secret};

    fn client() -> DustClient {
        let settings = DustSettings::new("http://127.0.0.1:9", Secret::new("sk-test"), "w");
        DustShared::new(settings).unwrap().client()
    }

    fn delta(text: &str) -> Result<AgentEvent, DustError> {
        Ok(AgentEvent::TextDelta {
            text: text.into(),
            classification: TextClass::Tokens,
        })
    }

    /// Replays `(delay_ms, event)` pairs on the (paused) clock.
    fn scripted(events: Vec<(u64, Result<AgentEvent, DustError>)>) -> AgentEventStream {
        futures::stream::iter(events)
            .then(|(ms, e)| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                e
            })
            .boxed_local()
    }

    /// Runs a stream over `events` (50 ms coalescing) and returns what it delivered, in order,
    /// up to and including `Finished`.
    async fn run(events: AgentEventStream) -> Vec<AnswerUpdate> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink: AnswerSink = Box::new(move |u| {
            let _ = tx.send(u);
        });
        DustStream::start_with(
            client(),
            events,
            "c".into(),
            "m".into(),
            Duration::from_millis(50),
            sink,
        );
        let mut out = Vec::new();
        while let Some(u) = rx.recv().await {
            let done = matches!(u, AnswerUpdate::Finished(_));
            out.push(u);
            if done {
                break;
            }
        }
        out
    }

    #[actix::test]
    async fn slow_text_goes_out_at_once_and_bursts_are_coalesced() {
        tokio::time::pause();
        let events = scripted(vec![
            (0, delta("Hel")),
            (100, delta("lo ")),
            (5, delta("wor")),
            (5, delta("ld")),
            (
                100,
                Ok(AgentEvent::Success {
                    content: "Hello world".into(),
                    message_id: "m".into(),
                }),
            ),
        ]);
        let updates = run(events).await;
        assert_eq!(
            updates,
            vec![
                AnswerUpdate::Text("Hel".into()),
                AnswerUpdate::Text("lo ".into()),
                AnswerUpdate::Text("world".into()),
                AnswerUpdate::Finished(Outcome::Succeeded {
                    content: "Hello world".into()
                }),
            ]
        );
    }

    #[actix::test]
    async fn a_tool_status_never_overtakes_text_written_before_it() {
        tokio::time::pause();
        let events = scripted(vec![
            (0, delta("a")),
            (1, delta("b")),
            (
                1,
                Ok(AgentEvent::ActionStarted {
                    tool_name: "search".into(),
                    status: None,
                }),
            ),
            (
                1,
                Ok(AgentEvent::Error {
                    code: "boom".into(),
                    message: "it broke".into(),
                }),
            ),
        ]);
        let updates = run(events).await;
        assert_eq!(updates[0], AnswerUpdate::Text("a".into()));
        assert_eq!(updates[1], AnswerUpdate::Text("b".into()));
        assert_eq!(updates[2], AnswerUpdate::Status("Using search…".into()));
        assert!(
            matches!(&updates[3], AnswerUpdate::Finished(Outcome::AgentError { code, .. }) if code == "boom")
        );
    }

    #[actix::test]
    async fn a_stream_that_ends_without_a_final_event_fails_with_the_text_so_far() {
        let events = scripted(vec![(0, delta("partial"))]);
        let updates = run(events).await;
        assert!(
            matches!(updates.last(), Some(AnswerUpdate::Finished(Outcome::Failed { content, .. })) if content == "partial")
        );
    }
}
