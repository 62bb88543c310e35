//! `dust_*` tools and the `dust_agent` prompt: Dust agents through MCP, answers streamed as
//! progress while the agent writes.
//!
//! MCP has no partial tool results, so the answer travels twice: as `notifications/progress`
//! messages while the agent writes (only when the request carried a progress token), and whole
//! in the final `CallToolResult`. Agent failures and Dust refusals are `isError` results that say
//! what to do; only protocol-level mistakes are JSON-RPC errors.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    sync::Arc,
    time::Duration,
};

use futures::future::{join_all, LocalBoxFuture};
use rmcp::model::{
    CallToolResult, ContentBlock, ErrorData, GetPromptResult, JsonObject, Prompt, PromptArgument,
    PromptMessage, Role, Tool, ToolAnnotations,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::{
    dust::{
        valid_timezone, AgentConfiguration, AgentStatus, ConversationItem, DustClient, DustError,
        DustShared, FragmentInput, NewMessage, UserContext,
    },
    dust_stream::{AnswerHandle, AnswerSink, AnswerUpdate, DustStream, Outcome},
    mcp::{
        catalogue::{object_schema, tool_args, Catalogue, FnTool, PromptHandler, ToolOutcome},
        context::RequestContext,
    },
    principal::Principal,
};

/// Most agents `dust_ask_many` asks at once.
pub const MAX_PARALLEL_AGENTS: usize = 8;

/// Settings of the Dust tools.
#[derive(Debug, Clone, Copy)]
pub struct DustToolSettings {
    /// Longest a `dust_ask` waits for the answer before returning what was written so far
    /// (below Claude's 300 s tool limit).
    pub call_cap: Duration,
    /// Window in which text deltas are coalesced into one progress notification.
    pub coalesce: Duration,
    /// Longest answer text returned; longer ones are cut with a note.
    pub max_result_chars: usize,
}

impl Default for DustToolSettings {
    fn default() -> Self {
        DustToolSettings {
            call_cap: Duration::from_secs(270),
            coalesce: Duration::from_millis(50),
            max_result_chars: 100_000,
        }
    }
}

/// Which Dust credentials serve whom: the workspace's, unless a user has a key of their own.
#[derive(Clone)]
pub struct DustAccess {
    /// The workspace's client state (its API key, breaker, limiter, agent cache).
    pub workspace: Arc<DustShared>,
    /// Users with their own Dust API key (`[[users]] dust_api_key`), by principal name.
    pub per_user: HashMap<String, Arc<DustShared>>,
}

impl DustAccess {
    /// The workspace's credentials for everyone.
    pub fn workspace(shared: Arc<DustShared>) -> DustAccess {
        DustAccess {
            workspace: shared,
            per_user: HashMap::new(),
        }
    }

    /// A client for this thread with the credentials that serve `principal`.
    pub fn client_for(&self, principal: &Principal) -> DustClient {
        self.per_user
            .get(&*principal.name)
            .unwrap_or(&self.workspace)
            .client()
    }
}

/// What the Dust tools share.
pub struct DustTools {
    access: DustAccess,
    settings: DustToolSettings,
}

/// Attaches text (e.g. health summaries) to the first message of a `dust_ask` conversation.
/// Given the principal and the requested ids, it returns the fragments or a message for the user.
pub type FragmentSource = dyn Fn(&Principal, &[String]) -> LocalBoxFuture<'static, Result<Vec<FragmentInput>, String>>
    + Send
    + Sync;

/// Registers the Dust tools and prompt.
pub fn register(
    catalogue: &mut Catalogue,
    access: DustAccess,
    settings: DustToolSettings,
    fragments: Option<Arc<FragmentSource>>,
) {
    let tools = Arc::new(DustTools { access, settings });
    let t = tools.clone();
    catalogue.add_tool(FnTool::new(list_agents_tool(), move |ctx, args| {
        let t = t.clone();
        Box::pin(async move { t.list_agents(ctx, args).await })
    }));
    let t = tools.clone();
    let f = fragments.clone();
    catalogue.add_tool(FnTool::new(
        ask_tool(fragments.is_some()),
        move |ctx, args| {
            let t = t.clone();
            let f = f.clone();
            Box::pin(async move { t.ask(ctx, args, f).await })
        },
    ));
    let t = tools.clone();
    catalogue.add_tool(FnTool::new(ask_many_tool(), move |ctx, args| {
        let t = t.clone();
        Box::pin(async move { t.ask_many(ctx, args).await })
    }));
    let t = tools.clone();
    catalogue.add_tool(FnTool::new(get_conversation_tool(), move |ctx, args| {
        let t = t.clone();
        Box::pin(async move { t.get_conversation(ctx, args).await })
    }));
    catalogue.add_prompt(Arc::new(DustAgentPrompt {
        definition: Prompt::new(
            "dust_agent",
            Some("Start a conversation with a Dust agent of the workspace."),
            Some(vec![
                PromptArgument::new("agent")
                    .with_description(
                        "The agent's name or sId (completion lists the workspace's agents)",
                    )
                    .with_required(true),
                PromptArgument::new("question")
                    .with_description("What to ask first")
                    .with_required(false),
            ]),
        ),
        tools,
    }));
}

// === definitions ===

fn annotations(read_only: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .destructive(false)
        .idempotent(read_only)
        .open_world(true)
}

fn list_agents_tool() -> Tool {
    Tool::new(
        "dust_list_agents",
        "List the Dust agents of the workspace (sId, name, description). Use `query` to filter by name or description.",
        object_schema(
            json!({
                "query": {"type": "string", "description": "Case-insensitive text to look for in names and descriptions"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200, "description": "Agents per page (default 50)"},
                "cursor": {"type": "string", "description": "next_cursor from a previous call"}
            }),
            &[],
        ),
    )
    .with_title("List Dust agents")
    .with_annotations(annotations(true))
}

fn ask_tool(with_health: bool) -> Tool {
    let mut props = json!({
        "agent": {"type": "string", "description": "The agent's sId or name (case-insensitive)"},
        "message": {"type": "string", "minLength": 1, "description": "What to ask"},
        "conversation_id": {"type": "string", "description": "Continue this conversation (from a previous answer) instead of starting a new one"},
        "timeout_seconds": {"type": "integer", "minimum": 5, "maximum": 280, "description": "Return what the agent wrote so far after this long (default and maximum: the server's cap)"}
    });
    if with_health {
        props["health_file_ids"] = json!({
            "type": "array", "items": {"type": "string"}, "maxItems": 10,
            "description": "Attach the summaries of these uploaded health files (never raw records) to the conversation"
        });
    }
    let mut tool = Tool::new(
        "dust_ask",
        "Ask a Dust agent and get its answer. The answer streams as progress notifications while the agent writes; the result is the final answer with the conversation_id to continue it.",
        object_schema(props, &["agent", "message"]),
    )
    .with_title("Ask a Dust agent")
    .with_annotations(annotations(false));
    if let Value::Object(schema) = answer_schema() {
        tool = tool.with_raw_output_schema(Arc::new(schema));
    }
    tool
}

fn answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "conversation_id": {"type": "string"},
            "message_id": {"type": "string"},
            "agent": {
                "type": "object",
                "properties": {"sId": {"type": "string"}, "name": {"type": "string"}},
                "required": ["sId", "name"]
            },
            "status": {"type": "string", "enum": ["succeeded", "gracefully_stopped", "cancelled", "failed", "partial"]},
            "answer": {"type": "string"},
            "partial": {"type": "boolean"}
        },
        "required": ["conversation_id", "message_id", "agent", "status", "answer", "partial"]
    })
}

fn ask_many_tool() -> Tool {
    Tool::new(
        "dust_ask_many",
        "Ask several Dust agents the same question in parallel; their answers come back side by side, and one agent failing does not fail the others.",
        object_schema(
            json!({
                "agents": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_PARALLEL_AGENTS,
                    "description": "Agent sIds or names"},
                "message": {"type": "string", "minLength": 1, "description": "What to ask each of them"}
            }),
            &["agents", "message"],
        ),
    )
    .with_title("Ask several Dust agents")
    .with_annotations(annotations(false))
}

fn get_conversation_tool() -> Tool {
    Tool::new(
        "dust_get_conversation",
        "Read a Dust conversation as a compact transcript (who said what, and the status of each agent answer).",
        object_schema(
            json!({"conversation_id": {"type": "string", "description": "From a dust_ask result"}}),
            &["conversation_id"],
        ),
    )
    .with_title("Read a Dust conversation")
    .with_annotations(annotations(true))
}

// === arguments ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    query: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskArgs {
    agent: String,
    message: String,
    conversation_id: Option<String>,
    timeout_seconds: Option<u64>,
    #[serde(default)]
    health_file_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskManyArgs {
    agents: Vec<String>,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationArgs {
    conversation_id: String,
}

fn error_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn dust_error(e: &DustError) -> CallToolResult {
    error_result(format!("Dust: {e}"))
}

// === the tools ===

/// One answer, as `dust_ask` and `dust_ask_many` report it.
struct Answer {
    agent: AgentConfiguration,
    conversation_id: String,
    message_id: String,
    status: &'static str,
    text: String,
    partial: bool,
    failure: Option<String>,
}

/// Sends progress for one or several concurrent answers, keeping `progress` increasing.
#[derive(Clone)]
struct Reporter {
    ctx: RequestContext,
    counter: Rc<Cell<f64>>,
    prefix: String,
}

impl Reporter {
    fn report(&self, step: usize, message: &str) {
        let next = self.counter.get() + step.max(1) as f64;
        self.counter.set(next);
        let message = format!("{}{message}", self.prefix);
        self.ctx.progress(next, None, Some(&message));
    }
}

/// Where a `DustStream` delivers: text and status lines become progress notifications on the
/// spot (on the stream's own arbiter, so no task of ours wakes per token), text is kept for a
/// partial answer, and the outcome goes to `done`.
fn answer_sink(
    reporter: Reporter,
    text: Rc<RefCell<String>>,
    done: oneshot::Sender<Outcome>,
) -> AnswerSink {
    let mut done = Some(done);
    Box::new(move |update| match update {
        AnswerUpdate::Text(t) => {
            reporter.report(t.chars().count(), &t);
            text.borrow_mut().push_str(&t);
        }
        AnswerUpdate::Status(s) => reporter.report(1, &s),
        AnswerUpdate::Finished(outcome) => {
            if let Some(done) = done.take() {
                let _ = done.send(outcome);
            }
        }
    })
}

impl DustTools {
    fn client(&self, principal: &Principal) -> DustClient {
        self.access.client_for(principal)
    }

    async fn list_agents(&self, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
        let args: ListArgs = match tool_args("dust_list_agents", args) {
            Ok(a) => a,
            Err(r) => return Ok(r),
        };
        let listed = match self.client(&ctx.principal).list_agents().await {
            Ok(l) => l,
            Err(e) => return Ok(dust_error(&e)),
        };
        let query = args.query.as_deref().map(str::to_lowercase);
        let agents: Vec<&AgentConfiguration> = listed
            .value
            .iter()
            .filter(|a| a.status == AgentStatus::Active)
            .filter(|a| match &query {
                None => true,
                Some(q) => {
                    a.name.to_lowercase().contains(q) || a.description.to_lowercase().contains(q)
                }
            })
            .collect();
        let limit = args.limit.unwrap_or(50).clamp(1, 200);
        let start = match args.cursor.as_deref() {
            None => 0,
            Some(c) => match c.parse::<usize>() {
                Ok(n) if n <= agents.len() => n,
                _ => {
                    return Ok(error_result(format!(
                        "invalid cursor {c:?}: pass next_cursor exactly as returned"
                    )))
                }
            },
        };
        let end = (start + limit).min(agents.len());
        let page = &agents[start..end];
        let next = (end < agents.len()).then(|| end.to_string());
        let mut text = String::new();
        if listed.stale {
            text.push_str(&format!(
                "(Dust is unreachable; this list is {} s old)\n",
                listed.age_ms / 1000
            ));
        }
        if page.is_empty() {
            text.push_str("No agent matches.");
        }
        for a in page {
            text.push_str(&format!(
                "- {} (sId `{}`): {}\n",
                a.name, a.s_id, a.description
            ));
        }
        if let Some(n) = &next {
            text.push_str(&format!("More agents: call again with cursor \"{n}\"."));
        }
        let structured = json!({
            "agents": page.iter().map(|a| json!({"sId": a.s_id, "name": a.name, "description": a.description})).collect::<Vec<_>>(),
            "next_cursor": next,
            "stale": listed.stale,
        });
        let mut result = CallToolResult::success(vec![ContentBlock::text(text.trim_end())]);
        result.structured_content = Some(structured);
        Ok(result)
    }

    async fn ask(
        &self,
        ctx: RequestContext,
        args: JsonObject,
        fragments: Option<Arc<FragmentSource>>,
    ) -> ToolOutcome {
        let args: AskArgs = match tool_args("dust_ask", args) {
            Ok(a) => a,
            Err(r) => return Ok(r),
        };
        if args.message.trim().is_empty() {
            return Ok(error_result(
                "`message` is empty: say what to ask the agent",
            ));
        }
        let attached = match (&fragments, args.health_file_ids.is_empty()) {
            (_, true) => Vec::new(),
            (Some(source), false) => match source(&ctx.principal, &args.health_file_ids).await {
                Ok(f) => f,
                Err(msg) => return Ok(error_result(msg)),
            },
            (None, false) => {
                return Ok(error_result(
                    "health files are not available on this server",
                ))
            }
        };
        let cap = args
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(self.settings.call_cap)
            .min(self.settings.call_cap);
        let reporter = Reporter {
            ctx: ctx.clone(),
            counter: Rc::new(Cell::new(0.0)),
            prefix: String::new(),
        };
        let answer = match self
            .ask_one(
                &ctx.principal,
                &args.agent,
                &args.message,
                args.conversation_id.as_deref(),
                &attached,
                cap,
                &reporter,
            )
            .await
        {
            Ok(a) => a,
            Err(result) => return Ok(result),
        };
        Ok(self.render(answer))
    }

    /// Resolves the agent, posts the message, and streams the answer to `reporter`.
    #[allow(clippy::too_many_arguments)]
    async fn ask_one(
        &self,
        principal: &Principal,
        agent: &str,
        message: &str,
        conversation_id: Option<&str>,
        fragments: &[FragmentInput],
        cap: Duration,
        reporter: &Reporter,
    ) -> Result<Answer, CallToolResult> {
        let deadline = tokio::time::Instant::now() + cap;
        let client = self.client(principal);
        let agent = self.resolve_agent(&client, agent).await?;
        reporter.report(1, &format!("Asking {}…", agent.name));
        let new = NewMessage {
            content: message.to_owned(),
            agent_id: agent.s_id.clone(),
            context: user_context(principal),
        };
        let posted = match conversation_id {
            Some(c) => client.post_message(c, &new).await,
            None => client.create_conversation(&new, fragments, None).await,
        }
        .map_err(|e| dust_error(&e))?;
        let text = Rc::new(RefCell::new(String::new()));
        let (done, outcome) = oneshot::channel();
        let mut handle = AnswerHandle::new(DustStream::start(
            client,
            posted.conversation_id.clone(),
            posted.agent_message_id.clone(),
            self.settings.coalesce,
            answer_sink(reporter.clone(), text.clone(), done),
        ));
        // The sink is the only other holder of `text` and runs only between our polls.
        let text_so_far = || std::mem::take(&mut *text.borrow_mut());
        let answer = |status, text: String, partial, failure| Answer {
            agent: agent.clone(),
            conversation_id: posted.conversation_id.clone(),
            message_id: posted.agent_message_id.clone(),
            status,
            text,
            partial,
            failure,
        };
        let outcome = tokio::select! {
            o = outcome => o,
            _ = tokio::time::sleep_until(deadline) => {
                handle.detach();
                return Ok(answer("partial", text_so_far(), true, None));
            }
        };
        handle.disarm();
        Ok(match outcome {
            Ok(Outcome::Succeeded { content }) => answer("succeeded", content, false, None),
            Ok(Outcome::GracefullyStopped { content }) => {
                answer("gracefully_stopped", content, false, None)
            }
            Ok(Outcome::Cancelled { content }) => answer(
                "cancelled",
                content,
                true,
                Some("the generation was cancelled in Dust".into()),
            ),
            Ok(Outcome::AgentError { code, message }) => answer(
                "failed",
                text_so_far(),
                true,
                Some(format!("the agent failed ({code}): {message}")),
            ),
            Ok(Outcome::UserMessageError { code, message }) => answer(
                "failed",
                text_so_far(),
                true,
                Some(format!("Dust rejected the message ({code}): {message}")),
            ),
            Ok(Outcome::Failed { error, content }) => answer(
                "failed",
                content,
                true,
                Some(format!("the answer stream failed: {error}")),
            ),
            Err(_) => answer(
                "failed",
                text_so_far(),
                true,
                Some("the answer stream stopped unexpectedly".into()),
            ),
        })
    }

    fn truncate(&self, text: &str, conversation_id: &str) -> String {
        let max = self.settings.max_result_chars;
        let total = text.chars().count();
        if total <= max {
            return text.to_owned();
        }
        let cut: String = text.chars().take(max).collect();
        format!(
            "{cut}\n\n[truncated: {} more characters. The whole answer is in Dust conversation {conversation_id}; read it with dust_get_conversation.]",
            total - max
        )
    }

    fn render(&self, a: Answer) -> CallToolResult {
        let shown = self.truncate(&a.text, &a.conversation_id);
        let structured = json!({
            "conversation_id": a.conversation_id,
            "message_id": a.message_id,
            "agent": {"sId": a.agent.s_id, "name": a.agent.name},
            "status": a.status,
            "answer": shown,
            "partial": a.partial,
        });
        let text = match (&a.failure, a.status) {
            (Some(why), _) => format!(
                "{} could not finish: {why}.{}\nconversation_id: {} (retry with dust_ask, or read it with dust_get_conversation)",
                a.agent.name,
                if shown.is_empty() { String::new() } else { format!(" What it wrote so far:\n\n{shown}\n") },
                a.conversation_id
            ),
            (None, "partial") => format!(
                "{shown}\n\n[partial: {} was still writing when the time cap was reached; it goes on in Dust. Continue with conversation_id {} or read the rest with dust_get_conversation.]",
                a.agent.name, a.conversation_id
            ),
            (None, _) => shown,
        };
        let mut result = if a.failure.is_some() {
            CallToolResult::error(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::success(vec![ContentBlock::text(text)])
        };
        result.structured_content = Some(structured);
        result
    }

    async fn ask_many(&self, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
        let args: AskManyArgs = match tool_args("dust_ask_many", args) {
            Ok(a) => a,
            Err(r) => return Ok(r),
        };
        if args.agents.is_empty() || args.agents.len() > MAX_PARALLEL_AGENTS {
            return Ok(error_result(format!(
                "`agents` needs 1 to {MAX_PARALLEL_AGENTS} agents"
            )));
        }
        if args.message.trim().is_empty() {
            return Ok(error_result(
                "`message` is empty: say what to ask the agents",
            ));
        }
        let counter = Rc::new(Cell::new(0.0));
        let cap = self.settings.call_cap;
        let asks = args.agents.iter().map(|agent| {
            let reporter = Reporter {
                ctx: ctx.clone(),
                counter: counter.clone(),
                prefix: format!("[{agent}] "),
            };
            let principal = ctx.principal.clone();
            let message = args.message.clone();
            async move {
                let r = self
                    .ask_one(&principal, agent, &message, None, &[], cap, &reporter)
                    .await;
                (agent.clone(), r)
            }
        });
        let results = join_all(asks).await;
        let mut text = String::new();
        let mut answers = Vec::new();
        let mut failures = 0;
        for (asked, r) in results {
            match r {
                Ok(a) => {
                    if a.failure.is_some() {
                        failures += 1;
                    }
                    let shown = self.truncate(&a.text, &a.conversation_id);
                    text.push_str(&format!("## {} ({})\n", a.agent.name, a.status));
                    if let Some(why) = &a.failure {
                        text.push_str(&format!("Failed: {why}.\n"));
                    }
                    text.push_str(&format!(
                        "{shown}\n(conversation_id: {})\n\n",
                        a.conversation_id
                    ));
                    answers.push(json!({
                        "agent": {"sId": a.agent.s_id, "name": a.agent.name},
                        "status": a.status, "answer": shown, "partial": a.partial,
                        "conversation_id": a.conversation_id, "message_id": a.message_id,
                        "error": a.failure,
                    }));
                }
                Err(err) => {
                    failures += 1;
                    let why = err
                        .content
                        .first()
                        .and_then(|c| c.as_text())
                        .map(|t| t.text.clone())
                        .unwrap_or_default();
                    text.push_str(&format!("## {asked} (failed)\n{why}\n\n"));
                    answers.push(json!({"agent": {"sId": null, "name": asked}, "status": "failed", "error": why}));
                }
            }
        }
        let all_failed = failures == answers.len();
        let content = vec![ContentBlock::text(text.trim_end())];
        let mut result = if all_failed {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        result.structured_content = Some(json!({"answers": answers}));
        Ok(result)
    }

    async fn get_conversation(&self, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
        let args: ConversationArgs = match tool_args("dust_get_conversation", args) {
            Ok(a) => a,
            Err(r) => return Ok(r),
        };
        let conv = match self
            .client(&ctx.principal)
            .get_conversation(&args.conversation_id)
            .await
        {
            Ok(c) => c,
            Err(e) => return Ok(dust_error(&e)),
        };
        let mut text = format!(
            "Conversation {}{}\n\n",
            conv.s_id,
            conv.title
                .as_deref()
                .map(|t| format!(" — {t}"))
                .unwrap_or_default()
        );
        let mut messages = Vec::new();
        for item in conv.latest_items() {
            match item {
                ConversationItem::User(u) => {
                    text.push_str(&format!("**{}**: {}\n\n", u.context.username, u.content));
                    messages.push(
                        json!({"role": "user", "author": u.context.username, "content": u.content}),
                    );
                }
                ConversationItem::Agent(a) => {
                    let name = a
                        .configuration
                        .as_ref()
                        .map(|c| c.name.as_str())
                        .unwrap_or("agent");
                    let status = a.status.as_str();
                    let content = a.content.as_deref().unwrap_or("");
                    text.push_str(&format!("**{name}** ({status}): {content}\n\n"));
                    messages.push(json!({"role": "agent", "author": name, "status": status, "content": content, "message_id": a.s_id}));
                }
                ConversationItem::Fragment(f) => {
                    text.push_str(&format!("[attachment: {}]\n\n", f.title));
                    messages.push(json!({"role": "attachment", "title": f.title}));
                }
                ConversationItem::Other => {}
            }
        }
        let text = self.truncate(text.trim_end(), &conv.s_id);
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(json!({
            "conversation_id": conv.s_id, "title": conv.title, "url": conv.url, "messages": messages,
        }));
        Ok(result)
    }

    /// An sId, an exact name (case-insensitive), or a unique partial name.
    async fn resolve_agent(
        &self,
        client: &DustClient,
        wanted: &str,
    ) -> Result<AgentConfiguration, CallToolResult> {
        let listed = client.list_agents().await.map_err(|e| dust_error(&e))?;
        let active: Vec<&AgentConfiguration> = listed
            .value
            .iter()
            .filter(|a| a.status == AgentStatus::Active)
            .collect();
        let wanted_trim = wanted.trim();
        if let Some(a) = active.iter().find(|a| a.s_id == wanted_trim) {
            return Ok((*a).clone());
        }
        let lower = wanted_trim.trim_start_matches('@').to_lowercase();
        let exact: Vec<_> = active
            .iter()
            .filter(|a| a.name.to_lowercase() == lower)
            .collect();
        let candidates: Vec<_> = if exact.is_empty() {
            active
                .iter()
                .filter(|a| a.name.to_lowercase().contains(&lower))
                .collect()
        } else {
            exact
        };
        match candidates.as_slice() {
            [one] => Ok((**one).clone()),
            [] => {
                let names: Vec<&str> = active.iter().take(20).map(|a| a.name.as_str()).collect();
                Err(error_result(format!(
                    "No active Dust agent is called {wanted:?}. Available agents: {}. Use dust_list_agents to search.",
                    names.join(", ")
                )))
            }
            many => {
                let list: Vec<String> = many
                    .iter()
                    .map(|a| format!("{} (sId {})", a.name, a.s_id))
                    .collect();
                Err(error_result(format!(
                    "{wanted:?} matches several agents: {}. Pass the sId or the full name.",
                    list.join("; ")
                )))
            }
        }
    }
}

fn user_context(p: &Principal) -> UserContext {
    let mut c = UserContext::new(p.full_name.as_deref().unwrap_or(&p.name));
    c.full_name = p.full_name.as_deref().map(str::to_owned);
    c.email = p.email.as_deref().map(str::to_owned);
    c.timezone = valid_timezone(p.timezone.as_deref().unwrap_or("UTC"));
    c
}

/// The `dust_agent` prompt, with agent-name completion from the workspace.
struct DustAgentPrompt {
    definition: Prompt,
    tools: Arc<DustTools>,
}

impl PromptHandler for DustAgentPrompt {
    fn definition(&self) -> &Prompt {
        &self.definition
    }

    fn get(
        &self,
        _ctx: RequestContext,
        args: HashMap<String, String>,
    ) -> LocalBoxFuture<'static, Result<GetPromptResult, ErrorData>> {
        let agent = args.get("agent").cloned().unwrap_or_default();
        let question = args
            .get("question")
            .cloned()
            .filter(|q| !q.trim().is_empty());
        let text = match question {
            Some(q) => format!(
                "Use the dust_ask tool to ask the Dust agent \"{agent}\": {q}\nShow me its answer, then keep the conversation_id so we can continue the conversation."
            ),
            None => format!(
                "I want to talk with the Dust agent \"{agent}\". Ask me what I want to know, then use the dust_ask tool with agent \"{agent}\", and reuse its conversation_id for follow-ups."
            ),
        };
        Box::pin(futures::future::ready(Ok(GetPromptResult::new(vec![
            PromptMessage::new_text(Role::User, text),
        ])
        .with_description(format!("Talk with the Dust agent {agent}")))))
    }

    fn complete(
        &self,
        ctx: RequestContext,
        argument: &str,
        value: &str,
    ) -> LocalBoxFuture<'static, Vec<String>> {
        if argument != "agent" {
            return Box::pin(futures::future::ready(Vec::new()));
        }
        let client = self.tools.client(&ctx.principal);
        let prefix = value.to_lowercase();
        Box::pin(async move {
            let Ok(listed) = client.list_agents().await else {
                return Vec::new();
            };
            let mut names: Vec<String> = listed
                .value
                .iter()
                .filter(|a| a.status == AgentStatus::Active)
                .filter(|a| {
                    a.name.to_lowercase().starts_with(&prefix)
                        || (prefix.len() >= 2 && a.name.to_lowercase().contains(&prefix))
                })
                .map(|a| a.name.clone())
                .collect();
            names.sort();
            names
        })
    }
}
