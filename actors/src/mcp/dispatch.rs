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

fn err(e: ErrorData) -> Pending {
    ready(Err(e))
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
    let handlers = catalogue.resource_handlers();
    let paged = (page_size, method, params);
    match method {
        "tools/list" => ready(list("tools", catalogue.tool_definitions(), paged)),
        "tools/call" => call_tool(catalogue, ctx, method, params).unwrap_or_else(err),
        "resources/list" => {
            let all = handlers.iter().flat_map(|h| h.list(&ctx)).collect();
            ready(list("resources", all, paged))
        }
        "resources/templates/list" => {
            let all = handlers.iter().flat_map(|h| h.templates()).collect();
            ready(list("resourceTemplates", all, paged))
        }
        "resources/read" => read_resource(catalogue, ctx, method, params).unwrap_or_else(err),
        "prompts/list" => ready(list("prompts", catalogue.prompt_definitions(), paged)),
        "prompts/get" => get_prompt(catalogue, ctx, method, params).unwrap_or_else(err),
        "completion/complete" => complete(catalogue, ctx, method, params).unwrap_or_else(err),
        _ => ready(Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
            None,
        ))),
    }
}

/// One page of a list method's items under `key`, with `nextCursor` when more remain.
fn list<T: serde::Serialize>(
    key: &str,
    items: Vec<T>,
    (size, method, params): (usize, &str, &Value),
) -> Result<Value, ErrorData> {
    let p: PaginatedRequestParams = parse_params(method, params)?;
    let (page, next) = page(items, p.cursor.as_deref(), size)?;
    let mut result = json!({ key: page });
    if let Some(next) = next {
        result["nextCursor"] = Value::String(next);
    }
    Ok(result)
}

fn call_tool(
    cat: &Catalogue,
    ctx: RequestContext,
    method: &str,
    params: &Value,
) -> Result<Pending, ErrorData> {
    let p: CallToolRequestParams = parse_params(method, params)?;
    let tool = cat.tool(&p.name).ok_or_else(|| {
        ErrorData::invalid_params(
            format!(
                "unknown tool {:?}: call tools/list for the available tools",
                p.name
            ),
            None,
        )
    })?;
    let work = tool.call(ctx, p.arguments.unwrap_or_default());
    Ok(Box::pin(
        work.map(|outcome| outcome.and_then(|r| to_wire(&r))),
    ))
}

fn read_resource(
    cat: &Catalogue,
    ctx: RequestContext,
    method: &str,
    params: &Value,
) -> Result<Pending, ErrorData> {
    let p: ReadResourceRequestParams = parse_params(method, params)?;
    for handler in cat.resource_handlers() {
        if let Some(work) = handler.read(ctx.clone(), &p.uri) {
            return Ok(Box::pin(work.map(|r| r.and_then(|r| to_wire(&r)))));
        }
    }
    Err(ErrorData::resource_not_found(
        format!("resource not found: {}", p.uri),
        Some(json!({ "uri": p.uri })),
    ))
}

fn get_prompt(
    cat: &Catalogue,
    ctx: RequestContext,
    method: &str,
    params: &Value,
) -> Result<Pending, ErrorData> {
    let p: GetPromptRequestParams = parse_params(method, params)?;
    let prompt = cat.prompt(&p.name).ok_or_else(|| {
        ErrorData::invalid_params(
            format!(
                "unknown prompt {:?}: call prompts/list for the available prompts",
                p.name
            ),
            None,
        )
    })?;
    // Prompt arguments are strings (MCP server/prompts); anything else is taken as its JSON text.
    let args: HashMap<String, String> = p
        .arguments
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    let required = prompt.definition().arguments.iter().flatten();
    if let Some(missing) = required
        .filter(|a| a.required == Some(true))
        .find(|a| !args.contains_key(&a.name))
    {
        return Err(ErrorData::invalid_params(
            format!("prompt {:?} needs the argument {:?}", p.name, missing.name),
            None,
        ));
    }
    Ok(Box::pin(
        prompt.get(ctx, args).map(|r| r.and_then(|r| to_wire(&r))),
    ))
}

fn complete(
    cat: &Catalogue,
    ctx: RequestContext,
    method: &str,
    params: &Value,
) -> Result<Pending, ErrorData> {
    let p: CompleteRequestParams = parse_params(method, params)?;
    let (name, value) = (&p.argument.name, &p.argument.value);
    let values: LocalBoxFuture<'static, Vec<String>> = match &p.r#ref {
        Reference::Prompt(r) => cat
            .prompt(&r.name)
            .ok_or_else(|| ErrorData::invalid_params(format!("unknown prompt {:?}", r.name), None))?
            .complete(ctx, name, value),
        Reference::Resource(r) => {
            let found = cat
                .resource_handlers()
                .iter()
                .find_map(|h| h.complete(&r.uri, name, value))
                .ok_or_else(|| {
                    ErrorData::invalid_params(
                        format!("unknown resource template {:?}", r.uri),
                        None,
                    )
                })?;
            Box::pin(futures::future::ready(found))
        }
        _ => {
            return Err(ErrorData::invalid_params(
                "unsupported completion reference type",
                None,
            ))
        }
    };
    Ok(Box::pin(values.map(|mut values| {
        let total = values.len();
        values.truncate(MAX_COMPLETIONS);
        let mut info = CompletionInfo::default();
        info.has_more = Some(total > values.len());
        info.total = u32::try_from(total).ok();
        info.values = values;
        to_wire(&CompleteResult::new(info))
    })))
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
