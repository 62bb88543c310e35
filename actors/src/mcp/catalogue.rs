//! The catalogue: every tool, resource and prompt the server offers, behind three small traits.
//! The backbone registers the conformance fixtures here; the Dust and health features add their
//! own. Lists are deterministic (registration order) and paginated with opaque cursors.

use std::{collections::HashMap, sync::Arc};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use futures::future::LocalBoxFuture;
use rmcp::model::{
    CallToolResult, ContentBlock, ErrorData, GetPromptResult, JsonObject, Prompt,
    ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use serde::de::DeserializeOwned;

use super::context::RequestContext;

/// What a tool call produces: a result (possibly `isError`), or a JSON-RPC error for requests
/// that are malformed at the protocol level.
pub type ToolOutcome = Result<CallToolResult, ErrorData>;

/// A tool. `call` runs synchronously inside the session (keep it to argument checks and setting
/// up); the returned future does the work, concurrently with the session's other requests.
pub trait ToolHandler: Send + Sync + 'static {
    /// The tool's definition as listed by `tools/list`.
    fn definition(&self) -> &Tool;
    /// Starts a call.
    fn call(&self, ctx: RequestContext, args: JsonObject) -> LocalBoxFuture<'static, ToolOutcome>;
}

/// A fixed-URI resource or a family of resources behind URI templates.
pub trait ResourceHandler: Send + Sync + 'static {
    /// Concrete resources visible to the caller.
    fn list(&self, ctx: &RequestContext) -> Vec<Resource>;
    /// URI templates (RFC 6570) this handler serves.
    fn templates(&self) -> Vec<ResourceTemplate> {
        Vec::new()
    }
    /// Reads `uri`, or `None` when the URI is not this handler's.
    fn read(
        &self,
        ctx: RequestContext,
        uri: &str,
    ) -> Option<LocalBoxFuture<'static, Result<ReadResourceResult, ErrorData>>>;
    /// Completion values for a template argument, or `None` when the template is not ours.
    fn complete(&self, _template: &str, _argument: &str, _value: &str) -> Option<Vec<String>> {
        None
    }
}

/// A prompt.
pub trait PromptHandler: Send + Sync + 'static {
    /// The prompt's definition as listed by `prompts/list`.
    fn definition(&self) -> &Prompt;
    /// Renders the prompt.
    fn get(
        &self,
        ctx: RequestContext,
        args: HashMap<String, String>,
    ) -> LocalBoxFuture<'static, Result<GetPromptResult, ErrorData>>;
    /// Completion values for one argument.
    fn complete(
        &self,
        _ctx: RequestContext,
        _argument: &str,
        _value: &str,
    ) -> LocalBoxFuture<'static, Vec<String>> {
        Box::pin(async { Vec::new() })
    }
}

/// The registry of everything offered. Built once at start-up, shared by all sessions.
#[derive(Default, Clone)]
pub struct Catalogue {
    tools: Vec<Arc<dyn ToolHandler>>,
    resources: Vec<Arc<dyn ResourceHandler>>,
    prompts: Vec<Arc<dyn PromptHandler>>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("tools", &self.tools.len())
            .field("resources", &self.resources.len())
            .field("prompts", &self.prompts.len())
            .finish()
    }
}

impl Catalogue {
    /// An empty catalogue.
    pub fn new() -> Catalogue {
        Catalogue::default()
    }

    /// Adds a tool. Names must be unique; a duplicate replaces nothing and is reported.
    pub fn add_tool(&mut self, tool: Arc<dyn ToolHandler>) -> &mut Self {
        debug_assert!(
            self.tool(&tool.definition().name).is_none(),
            "duplicate tool {}",
            tool.definition().name
        );
        self.tools.push(tool);
        self
    }

    /// Adds a resource handler.
    pub fn add_resources(&mut self, handler: Arc<dyn ResourceHandler>) -> &mut Self {
        self.resources.push(handler);
        self
    }

    /// Adds a prompt.
    pub fn add_prompt(&mut self, prompt: Arc<dyn PromptHandler>) -> &mut Self {
        self.prompts.push(prompt);
        self
    }

    /// Looks a tool up by name.
    pub fn tool(&self, name: &str) -> Option<&Arc<dyn ToolHandler>> {
        self.tools.iter().find(|t| t.definition().name == name)
    }

    /// Every tool definition, in registration order.
    pub fn tool_definitions(&self) -> Vec<Tool> {
        self.tools.iter().map(|t| t.definition().clone()).collect()
    }

    /// Every resource handler.
    pub fn resource_handlers(&self) -> &[Arc<dyn ResourceHandler>] {
        &self.resources
    }

    /// Looks a prompt up by name.
    pub fn prompt(&self, name: &str) -> Option<&Arc<dyn PromptHandler>> {
        self.prompts.iter().find(|p| p.definition().name == name)
    }

    /// Every prompt definition, in registration order.
    pub fn prompt_definitions(&self) -> Vec<Prompt> {
        self.prompts
            .iter()
            .map(|p| p.definition().clone())
            .collect()
    }
}

// === closure-backed handlers ===

type ToolFn =
    dyn Fn(RequestContext, JsonObject) -> LocalBoxFuture<'static, ToolOutcome> + Send + Sync;

/// A tool made of a definition and a function: enough for most tools.
pub struct FnTool {
    definition: Tool,
    call: Box<ToolFn>,
}

impl FnTool {
    /// A tool calling `f`.
    pub fn new<F>(definition: Tool, f: F) -> Arc<FnTool>
    where
        F: Fn(RequestContext, JsonObject) -> LocalBoxFuture<'static, ToolOutcome>
            + Send
            + Sync
            + 'static,
    {
        Arc::new(FnTool {
            definition,
            call: Box::new(f),
        })
    }
}

impl ToolHandler for FnTool {
    fn definition(&self) -> &Tool {
        &self.definition
    }

    fn call(&self, ctx: RequestContext, args: JsonObject) -> LocalBoxFuture<'static, ToolOutcome> {
        (self.call)(ctx, args)
    }
}

type PromptFn = dyn Fn(RequestContext, HashMap<String, String>) -> Result<GetPromptResult, ErrorData>
    + Send
    + Sync;

/// A prompt rendered synchronously by a function.
pub struct FnPrompt {
    definition: Prompt,
    get: Box<PromptFn>,
    completions: HashMap<String, Vec<String>>,
}

impl FnPrompt {
    /// A prompt rendered by `f`, with fixed completion candidates per argument.
    pub fn new<F>(
        definition: Prompt,
        completions: HashMap<String, Vec<String>>,
        f: F,
    ) -> Arc<FnPrompt>
    where
        F: Fn(RequestContext, HashMap<String, String>) -> Result<GetPromptResult, ErrorData>
            + Send
            + Sync
            + 'static,
    {
        Arc::new(FnPrompt {
            definition,
            get: Box::new(f),
            completions,
        })
    }
}

impl PromptHandler for FnPrompt {
    fn definition(&self) -> &Prompt {
        &self.definition
    }

    fn get(
        &self,
        ctx: RequestContext,
        args: HashMap<String, String>,
    ) -> LocalBoxFuture<'static, Result<GetPromptResult, ErrorData>> {
        Box::pin(futures::future::ready((self.get)(ctx, args)))
    }

    fn complete(
        &self,
        _ctx: RequestContext,
        argument: &str,
        value: &str,
    ) -> LocalBoxFuture<'static, Vec<String>> {
        let prefix = value.to_lowercase();
        let values = self
            .completions
            .get(argument)
            .map(|all| {
                all.iter()
                    .filter(|v| v.to_lowercase().starts_with(&prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Box::pin(futures::future::ready(values))
    }
}

// === pagination ===

/// Cuts `items` into a page. The cursor is opaque to clients (MCP server/utilities/pagination);
/// ours encodes the offset, and anything we did not mint is -32602.
pub fn page<T>(
    items: Vec<T>,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(c) => decode_cursor(c).ok_or_else(|| {
            ErrorData::invalid_params(
                format!("invalid cursor {c:?}: pass back a nextCursor exactly as received"),
                None,
            )
        })?,
    };
    if start > items.len() {
        return Err(ErrorData::invalid_params(
            "the cursor points past the end of the list; list again from the start",
            None,
        ));
    }
    let page_size = page_size.max(1);
    let end = (start + page_size).min(items.len());
    let next = (end < items.len()).then(|| encode_cursor(end));
    let page = items.into_iter().skip(start).take(end - start).collect();
    Ok((page, next))
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}

// === helpers for tool authors ===

/// Deserialises tool arguments; a mismatch is a tool error the model can correct (SEP-1303),
/// so it comes back as an `isError` result, not a JSON-RPC error.
pub fn tool_args<T: DeserializeOwned>(tool: &str, args: JsonObject) -> Result<T, CallToolResult> {
    serde_json::from_value(serde_json::Value::Object(args)).map_err(|e| {
        CallToolResult::error(vec![ContentBlock::text(format!(
            "invalid arguments for {tool}: {e}. See the tool's inputSchema."
        ))])
    })
}

/// An input schema with the given properties and required names, closed to other properties.
pub fn object_schema(properties: serde_json::Value, required: &[&str]) -> Arc<JsonObject> {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), properties);
    if !required.is_empty() {
        schema.insert("required".into(), serde_json::json!(required));
    }
    schema.insert("additionalProperties".into(), false.into());
    Arc::new(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_through_a_list_and_refuses_foreign_cursors() {
        let items: Vec<u32> = (0..5).collect();
        let (p1, c1) = page(items.clone(), None, 2).unwrap();
        assert_eq!(p1, vec![0, 1]);
        let (p2, c2) = page(items.clone(), c1.as_deref(), 2).unwrap();
        assert_eq!(p2, vec![2, 3]);
        let (p3, c3) = page(items.clone(), c2.as_deref(), 2).unwrap();
        assert_eq!((p3, c3), (vec![4], None));
        let err = page(items, Some("bogus!"), 2).unwrap_err();
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    }
}
