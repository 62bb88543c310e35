//! Catalogue methods: `tools/*`, `resources/*` (except subscriptions), `prompts/*` and
//! `completion/complete`. The session handles the methods that touch its own state
//! (`initialize`, `ping`, `logging/setLevel`, subscriptions) before calling `dispatch`.
//!
//! Every handler here returns a future; list methods resolve at once, calls run as long as they
//! need while the session keeps serving other requests.

use std::collections::HashMap;

use futures::{future::LocalBoxFuture, FutureExt};
use rmcp::model::{
    CallToolRequestParams, CompleteRequestParams, CompleteResult, CompletionInfo, ErrorCode,
    ErrorData, GetPromptRequestParams, PaginatedRequestParams, ReadResourceRequestParams,
    Reference,
};
use serde_json::{json, Value};

use super::{
    catalogue::{page, Catalogue},
    context::RequestContext,
    jsonrpc::{parse_params, to_wire, Request},
    version::Version,
};

/// Most completion values returned at once (MCP server/utilities/completion: at most 100).
const MAX_COMPLETIONS: usize = 100;

/// The future of one request's result.
pub type Pending = LocalBoxFuture<'static, Result<Value, ErrorData>>;

fn ready(result: Result<Value, ErrorData>) -> Pending {
    Box::pin(futures::future::ready(result))
}

/// Routes a catalogue method. Unknown methods are -32601; known methods with params that do not
/// parse are -32602 (never -32601).
pub fn dispatch(
    catalogue: &Catalogue,
    page_size: usize,
    ctx: RequestContext,
    req: &Request,
) -> Pending {
    let method = req.method.as_str();
    let params = &req.params;
    match method {
        "tools/list" => ready(list_tools(catalogue, page_size, method, params)),
        "tools/call" => call_tool(catalogue, ctx, method, params),
        "resources/list" => ready(list_resources(catalogue, &ctx, page_size, method, params)),
        "resources/templates/list" => ready(list_templates(catalogue, page_size, method, params)),
        "resources/read" => read_resource(catalogue, ctx, method, params),
        "prompts/list" => ready(list_prompts(catalogue, page_size, method, params)),
        "prompts/get" => get_prompt(catalogue, ctx, method, params),
        "completion/complete" => complete(catalogue, ctx, method, params),
        _ => ready(Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
            None,
        ))),
    }
}

fn cursor(method: &str, params: &Value) -> Result<Option<String>, ErrorData> {
    let p: PaginatedRequestParams = parse_params(method, params)?;
    Ok(p.cursor)
}

fn list_tools(
    cat: &Catalogue,
    size: usize,
    method: &str,
    params: &Value,
) -> Result<Value, ErrorData> {
    let (tools, next) = page(
        cat.tool_definitions(),
        cursor(method, params)?.as_deref(),
        size,
    )?;
    Ok(with_cursor(json!({ "tools": tools }), next))
}

fn list_resources(
    cat: &Catalogue,
    ctx: &RequestContext,
    size: usize,
    method: &str,
    params: &Value,
) -> Result<Value, ErrorData> {
    let all: Vec<_> = cat
        .resource_handlers()
        .iter()
        .flat_map(|h| h.list(ctx))
        .collect();
    let (resources, next) = page(all, cursor(method, params)?.as_deref(), size)?;
    Ok(with_cursor(json!({ "resources": resources }), next))
}

fn list_templates(
    cat: &Catalogue,
    size: usize,
    method: &str,
    params: &Value,
) -> Result<Value, ErrorData> {
    let all: Vec<_> = cat
        .resource_handlers()
        .iter()
        .flat_map(|h| h.templates())
        .collect();
    let (templates, next) = page(all, cursor(method, params)?.as_deref(), size)?;
    Ok(with_cursor(json!({ "resourceTemplates": templates }), next))
}

fn list_prompts(
    cat: &Catalogue,
    size: usize,
    method: &str,
    params: &Value,
) -> Result<Value, ErrorData> {
    let (prompts, next) = page(
        cat.prompt_definitions(),
        cursor(method, params)?.as_deref(),
        size,
    )?;
    Ok(with_cursor(json!({ "prompts": prompts }), next))
}

fn with_cursor(mut result: Value, next: Option<String>) -> Value {
    if let Some(next) = next {
        result["nextCursor"] = Value::String(next);
    }
    result
}

fn call_tool(cat: &Catalogue, ctx: RequestContext, method: &str, params: &Value) -> Pending {
    let p: CallToolRequestParams = match parse_params(method, params) {
        Ok(p) => p,
        Err(e) => return ready(Err(e)),
    };
    let Some(tool) = cat.tool(&p.name) else {
        return ready(Err(ErrorData::invalid_params(
            format!(
                "unknown tool {:?}: call tools/list for the available tools",
                p.name
            ),
            None,
        )));
    };
    let work = tool.call(ctx, p.arguments.unwrap_or_default());
    Box::pin(work.map(|outcome| outcome.and_then(|r| to_wire(&r))))
}

fn read_resource(cat: &Catalogue, ctx: RequestContext, method: &str, params: &Value) -> Pending {
    let p: ReadResourceRequestParams = match parse_params(method, params) {
        Ok(p) => p,
        Err(e) => return ready(Err(e)),
    };
    for handler in cat.resource_handlers() {
        if let Some(work) = handler.read(ctx.clone(), &p.uri) {
            return Box::pin(work.map(|r| r.and_then(|r| to_wire(&r))));
        }
    }
    ready(Err(ErrorData::resource_not_found(
        format!("resource not found: {}", p.uri),
        Some(json!({ "uri": p.uri })),
    )))
}

fn get_prompt(cat: &Catalogue, ctx: RequestContext, method: &str, params: &Value) -> Pending {
    let p: GetPromptRequestParams = match parse_params(method, params) {
        Ok(p) => p,
        Err(e) => return ready(Err(e)),
    };
    let Some(prompt) = cat.prompt(&p.name) else {
        return ready(Err(ErrorData::invalid_params(
            format!(
                "unknown prompt {:?}: call prompts/list for the available prompts",
                p.name
            ),
            None,
        )));
    };
    let mut args = HashMap::new();
    for (k, v) in p.arguments.unwrap_or_default() {
        let v = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        args.insert(k, v);
    }
    for required in prompt
        .definition()
        .arguments
        .iter()
        .flatten()
        .filter(|a| a.required == Some(true))
    {
        if !args.contains_key(&required.name) {
            return ready(Err(ErrorData::invalid_params(
                format!("prompt {:?} needs the argument {:?}", p.name, required.name),
                None,
            )));
        }
    }
    Box::pin(prompt.get(ctx, args).map(|r| r.and_then(|r| to_wire(&r))))
}

fn complete(cat: &Catalogue, ctx: RequestContext, method: &str, params: &Value) -> Pending {
    let p: CompleteRequestParams = match parse_params(method, params) {
        Ok(p) => p,
        Err(e) => return ready(Err(e)),
    };
    let values: LocalBoxFuture<'static, Vec<String>> = match &p.r#ref {
        Reference::Prompt(r) => match cat.prompt(&r.name) {
            Some(prompt) => prompt.complete(ctx, &p.argument.name, &p.argument.value),
            None => {
                return ready(Err(ErrorData::invalid_params(
                    format!("unknown prompt {:?}", r.name),
                    None,
                )))
            }
        },
        Reference::Resource(r) => {
            let found = cat
                .resource_handlers()
                .iter()
                .find_map(|h| h.complete(&r.uri, &p.argument.name, &p.argument.value));
            match found {
                Some(v) => Box::pin(futures::future::ready(v)),
                None => {
                    return ready(Err(ErrorData::invalid_params(
                        format!("unknown resource template {:?}", r.uri),
                        None,
                    )))
                }
            }
        }
        _ => {
            return ready(Err(ErrorData::invalid_params(
                "unsupported completion reference type",
                None,
            )))
        }
    };
    Box::pin(values.map(|mut values| {
        let total = values.len();
        values.truncate(MAX_COMPLETIONS);
        let mut info = CompletionInfo::default();
        info.has_more = Some(total > values.len());
        info.total = u32::try_from(total).ok();
        info.values = values;
        to_wire(&CompleteResult::new(info))
    }))
}

/// Capabilities we declare (only what we implement; mcp.md §2).
pub fn server_capabilities() -> Value {
    json!({
        "tools": { "listChanged": true },
        "resources": { "subscribe": true, "listChanged": true },
        "prompts": { "listChanged": true },
        "logging": {},
        "completions": {}
    })
}

/// The `serverInfo` object.
pub fn server_info() -> Value {
    json!({
        "name": "dust-mcp",
        "title": "Dust agents and health data",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Text sent as `instructions` in the `InitializeResult`.
pub const INSTRUCTIONS: &str = "dust-mcp connects you to a Dust workspace's agents (dust_* tools: \
answers stream as progress while the agent writes) and to the caller's uploaded health data \
(health_* tools). Tool results are compact; follow-up questions can reuse a conversation_id.";

/// The `InitializeResult` for a negotiated version.
pub fn initialize_result(version: Version) -> Value {
    json!({
        "protocolVersion": version.as_str(),
        "capabilities": server_capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

/// Our answer to the 2026-07-28 `server/discover` probe: it lists only handshake revisions, so
/// a modern client falls back to `initialize` (mcp.md §1.5) instead of treating us as broken.
pub fn discover_result() -> Value {
    json!({
        "supportedVersions": Version::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        "capabilities": server_capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}
