//! The tools, resources and prompts the official conformance suite expects (mcp.md §4.4), plus a
//! few fixtures our own tests use (a tool that panics, a slow cancellable tool, a tool that cuts
//! its connection mid-call). Registered only with `--conformance-fixtures`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use futures::future::LocalBoxFuture;
use rmcp::model::{
    CallToolResult, ContentBlock, ErrorData, GetPromptResult, Prompt, PromptArgument,
    PromptMessage, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, Tool,
    ToolAnnotations,
};
use serde_json::{json, Value};

use super::{
    catalogue::{object_schema, Catalogue, FnPrompt, FnTool, ResourceHandler, ToolOutcome},
    context::{LogLevel, Output, RequestContext},
};

/// A 1×1 transparent PNG.
pub const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A WAV file with a header and no samples.
pub const WAV_EMPTY: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

/// Counters our tests read through `test_fixture_stats`, to prove cancellation stops work.
#[derive(Debug, Default)]
pub struct FixtureStats {
    /// `test_cancellable` runs that reached their end.
    pub finished: AtomicU64,
    /// `test_cancellable` runs dropped before their end (cancelled).
    pub dropped: AtomicU64,
}

/// Adds every fixture to `catalogue`.
pub fn register(catalogue: &mut Catalogue) {
    let stats = Arc::new(FixtureStats::default());
    for tool in tools(stats) {
        catalogue.add_tool(tool);
    }
    catalogue.add_resources(Arc::new(TestResources));
    for prompt in prompts() {
        catalogue.add_prompt(prompt);
    }
}

fn no_args() -> Arc<rmcp::model::JsonObject> {
    object_schema(json!({}), &[])
}

fn def(
    name: &'static str,
    description: &'static str,
    schema: Arc<rmcp::model::JsonObject>,
) -> Tool {
    Tool::new(name, description, schema).with_annotations(
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .open_world(false),
    )
}

fn done(result: CallToolResult) -> LocalBoxFuture<'static, ToolOutcome> {
    Box::pin(futures::future::ready(Ok(result)))
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

fn tools(stats: Arc<FixtureStats>) -> Vec<Arc<dyn super::catalogue::ToolHandler>> {
    let mut out: Vec<Arc<dyn super::catalogue::ToolHandler>> = vec![
        FnTool::new(
            def("test_simple_text", "Returns a simple text response (conformance fixture).", no_args()),
            |_, _| done(text("This is a simple text response for testing.")),
        ),
        FnTool::new(
            def("test_image_content", "Returns a 1x1 PNG image (conformance fixture).", no_args()),
            |_, _| done(CallToolResult::success(vec![ContentBlock::image(PNG_1X1, "image/png")])),
        ),
        FnTool::new(
            def("test_audio_content", "Returns a short WAV clip (conformance fixture).", no_args()),
            |_, _| done(CallToolResult::success(vec![ContentBlock::audio(WAV_EMPTY, "audio/wav")])),
        ),
        FnTool::new(
            def("test_embedded_resource", "Returns an embedded text resource (conformance fixture).", no_args()),
            |_, _| {
                done(CallToolResult::success(vec![ContentBlock::resource(
                    ResourceContents::text(
                        "This is an embedded resource content.",
                        "test://embedded-resource",
                    )
                    .with_mime_type("text/plain"),
                )]))
            },
        ),
        FnTool::new(
            def("test_multiple_content_types", "Returns text, an image and a resource (conformance fixture).", no_args()),
            |_, _| {
                done(CallToolResult::success(vec![
                    ContentBlock::text("Multiple content types test:"),
                    ContentBlock::image(PNG_1X1, "image/png"),
                    ContentBlock::resource(
                        ResourceContents::text(
                            r#"{"test":"data","value":123}"#,
                            "test://mixed-content-resource",
                        )
                        .with_mime_type("application/json"),
                    ),
                ]))
            },
        ),
        FnTool::new(
            def("test_tool_with_logging", "Sends three log notifications while it runs (conformance fixture).", no_args()),
            |ctx, _| {
                Box::pin(async move {
                    for (i, step) in ["Tool execution started", "Tool processing data", "Tool execution completed"]
                        .iter()
                        .enumerate()
                    {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        ctx.log(LogLevel::Info, "test_tool_with_logging", json!(step));
                    }
                    Ok(text("Logging test completed"))
                })
            },
        ),
        FnTool::new(
            def("test_error_handling", "Always fails with an error result (conformance fixture).", no_args()),
            |_, _| {
                done(CallToolResult::error(vec![ContentBlock::text(
                    "This tool intentionally returns an error for testing",
                )]))
            },
        ),
        FnTool::new(
            def("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100 (conformance fixture).", no_args()),
            |ctx, _| {
                Box::pin(async move {
                    for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        ctx.progress(p, Some(100.0), Some(&format!("step {} of 3", i + 1)));
                    }
                    Ok(text("Progress test completed"))
                })
            },
        ),
        FnTool::new(
            def(
                "test_sampling",
                "Asks the client's model to answer a prompt (conformance fixture).",
                object_schema(json!({"prompt": {"type": "string", "description": "The prompt to send"}}), &["prompt"]),
            ),
            |ctx, args| {
                Box::pin(async move {
                    let prompt = args.get("prompt").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let params = json!({
                        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                        "maxTokens": 100
                    });
                    match ctx.ask_client("sampling", "sampling/createMessage", params).await {
                        Ok(answer) => {
                            let said = answer
                                .pointer("/content/text")
                                .and_then(Value::as_str)
                                .unwrap_or("(no text)");
                            Ok(text(format!("LLM response: {said}")))
                        }
                        Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(format!("sampling failed: {e}"))])),
                    }
                })
            },
        ),
        elicitation_tool(
            "test_elicitation",
            "Asks the user for a username and an e-mail address (conformance fixture).",
            object_schema(json!({"message": {"type": "string", "description": "What to ask the user"}}), &["message"]),
            |args| {
                let message = args.get("message").and_then(Value::as_str).unwrap_or("Please provide your details");
                json!({
                    "message": message,
                    "requestedSchema": {
                        "type": "object",
                        "properties": {
                            "username": {"type": "string", "description": "User's response"},
                            "email": {"type": "string", "description": "User's email address"}
                        },
                        "required": ["username", "email"]
                    }
                })
            },
        ),
        elicitation_tool(
            "test_elicitation_sep1034_defaults",
            "Elicits a form whose fields have default values (conformance fixture, SEP-1034).",
            no_args(),
            |_| {
                json!({
                    "message": "Please review and update the form fields with defaults",
                    "requestedSchema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "description": "User name", "default": "John Doe"},
                            "age": {"type": "integer", "description": "User age", "default": 30},
                            "score": {"type": "number", "description": "User score", "default": 95.5},
                            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                            "verified": {"type": "boolean", "description": "Verification status", "default": true}
                        }
                    }
                })
            },
        ),
        elicitation_tool(
            "test_elicitation_sep1330_enums",
            "Elicits a form with every enum variant (conformance fixture, SEP-1330).",
            no_args(),
            |_| {
                json!({
                    "message": "Please select options from the enum fields",
                    "requestedSchema": {
                        "type": "object",
                        "properties": {
                            "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
                            "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
                                {"const": "value1", "title": "First Option"},
                                {"const": "value2", "title": "Second Option"},
                                {"const": "value3", "title": "Third Option"}]},
                            "legacyEnum": {"type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"],
                                "enumNames": ["Option One", "Option Two", "Option Three"]},
                            "untitledMulti": {"type": "array", "description": "Select multiple options",
                                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                            "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                                "items": {"anyOf": [
                                    {"const": "value1", "title": "First Choice"},
                                    {"const": "value2", "title": "Second Choice"},
                                    {"const": "value3", "title": "Third Choice"}]}}
                        }
                    }
                })
            },
        ),
        FnTool::new(
            def("json_schema_2020_12_tool", "Declares a JSON Schema 2020-12 input schema (conformance fixture).", schema_2020_12()),
            |_, args| done(text(format!("Received: {}", Value::Object(args)))),
        ),
        FnTool::new(
            def("test_reconnection", "Closes its SSE connection mid-call; the result arrives after the client resumes (conformance fixture).", no_args()),
            |ctx, _| {
                Box::pin(async move {
                    ctx.detach_connection();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(text("Reconnection test completed"))
                })
            },
        ),
        FnTool::new(
            def(
                "test_panic",
                "Panics on purpose, while starting (where=setup) or while running (where=run), to prove a panic is contained (test fixture).",
                object_schema(json!({"where": {"type": "string", "enum": ["setup", "run"]}}), &["where"]),
            ),
            |_, args| {
                if args.get("where").and_then(Value::as_str) == Some("setup") {
                    panic!("test_panic: deliberate panic while setting up the call");
                }
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    panic!("test_panic: deliberate panic while running the call");
                })
            },
        ),
    ];
    out.push(FnTool::new(
        def(
            "echo",
            "Echoes its message back (test fixture; the same tool the load tests call on every server).",
            object_schema(json!({"message": {"type": "string"}}), &["message"]),
        ),
        |_, args| {
            let message = args.get("message").and_then(Value::as_str).unwrap_or_default();
            done(text(format!("Echo: {message}")))
        },
    ));
    out.push(cancellable_tool(stats.clone()));
    out.push(FnTool::new(
        def(
            "test_fixture_stats",
            "Counts finished and cancelled runs of test_cancellable (test fixture).",
            no_args(),
        ),
        move |_, _| {
            let v = json!({
                "finished": stats.finished.load(Ordering::SeqCst),
                "dropped": stats.dropped.load(Ordering::SeqCst),
            });
            done(CallToolResult::structured(v))
        },
    ));
    out
}

fn elicitation_tool(
    name: &'static str,
    description: &'static str,
    schema: Arc<rmcp::model::JsonObject>,
    params: fn(&rmcp::model::JsonObject) -> Value,
) -> Arc<dyn super::catalogue::ToolHandler> {
    FnTool::new(def(name, description, schema), move |ctx, args| {
        let request = params(&args);
        Box::pin(async move {
            match ctx
                .ask_client("elicitation", "elicitation/create", request)
                .await
            {
                Ok(answer) => Ok(text(format!(
                    "User response: action={}, content={}",
                    answer
                        .get("action")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown"),
                    answer.get("content").cloned().unwrap_or(Value::Null)
                ))),
                Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                    "elicitation failed: {e}"
                ))])),
            }
        })
    })
}

fn cancellable_tool(stats: Arc<FixtureStats>) -> Arc<dyn super::catalogue::ToolHandler> {
    /// Counts a run as dropped unless it reached its end.
    struct RunGuard {
        stats: Arc<FixtureStats>,
        finished: bool,
    }
    impl Drop for RunGuard {
        fn drop(&mut self) {
            let counter = if self.finished {
                &self.stats.finished
            } else {
                &self.stats.dropped
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
    FnTool::new(
        def(
            "test_cancellable",
            "Runs for `seconds`, reporting progress every 100 ms; cancel it to see it stop (test fixture).",
            object_schema(json!({"seconds": {"type": "number", "minimum": 0, "maximum": 600}}), &["seconds"]),
        ),
        move |ctx, args| {
            let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(1.0).clamp(0.0, 600.0);
            let stats = stats.clone();
            Box::pin(async move {
                let mut guard = RunGuard { stats, finished: false };
                let ticks = (seconds * 10.0).ceil() as u64;
                for tick in 1..=ticks {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    ctx.progress(tick as f64, Some(ticks as f64), Some("working"));
                }
                guard.finished = true;
                Ok(text(format!("ran for {seconds} s")))
            })
        },
    )
}

fn schema_2020_12() -> Arc<rmcp::model::JsonObject> {
    let v = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"}
        },
        "additionalProperties": false
    });
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(rmcp::model::JsonObject::new()),
    }
}

/// The `test://` resources.
struct TestResources;

const TEMPLATE: &str = "test://template/{id}/data";

impl ResourceHandler for TestResources {
    fn list(&self, _ctx: &RequestContext) -> Vec<Resource> {
        vec![
            Resource::new("test://static-text", "Static Text Resource")
                .with_description("A static text resource for testing")
                .with_mime_type("text/plain"),
            Resource::new("test://static-binary", "Static Binary Resource")
                .with_description("A static binary resource (image) for testing")
                .with_mime_type("image/png"),
            Resource::new("test://watched-resource", "Watched Resource")
                .with_description("A resource that can be subscribed to")
                .with_mime_type("text/plain"),
        ]
    }

    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![ResourceTemplate::new(TEMPLATE, "Resource Template")
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json")]
    }

    fn read(
        &self,
        _ctx: RequestContext,
        uri: &str,
    ) -> Option<LocalBoxFuture<'static, Result<ReadResourceResult, ErrorData>>> {
        let contents = match uri {
            "test://static-text" => {
                ResourceContents::text("This is the content of the static text resource.", uri)
                    .with_mime_type("text/plain")
            }
            "test://static-binary" => {
                ResourceContents::blob(PNG_1X1, uri).with_mime_type("image/png")
            }
            "test://watched-resource" => {
                ResourceContents::text("Watched resource content", uri).with_mime_type("text/plain")
            }
            _ => {
                let id = uri
                    .strip_prefix("test://template/")?
                    .strip_suffix("/data")?;
                if id.is_empty() || id.contains('/') {
                    return None;
                }
                let body =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                ResourceContents::text(body.to_string(), uri).with_mime_type("application/json")
            }
        };
        Some(Box::pin(futures::future::ready(Ok(
            ReadResourceResult::new(vec![contents]),
        ))))
    }

    fn complete(&self, template: &str, argument: &str, value: &str) -> Option<Vec<String>> {
        (template == TEMPLATE && argument == "id").then(|| {
            ["123", "456", "789"]
                .iter()
                .filter(|v| v.starts_with(value))
                .map(|v| v.to_string())
                .collect()
        })
    }
}

fn prompts() -> Vec<Arc<FnPrompt>> {
    vec![
        FnPrompt::new(
            Prompt::new(
                "test_simple_prompt",
                Some("A simple prompt without arguments (conformance fixture)."),
                None,
            ),
            HashMap::new(),
            |_, _| {
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    "This is a simple prompt for testing.",
                )]))
            },
        ),
        FnPrompt::new(
            Prompt::new(
                "test_prompt_with_arguments",
                Some("A prompt with two required arguments (conformance fixture)."),
                Some(vec![
                    PromptArgument::new("arg1")
                        .with_description("First test argument")
                        .with_required(true),
                    PromptArgument::new("arg2")
                        .with_description("Second test argument")
                        .with_required(true),
                ]),
            ),
            HashMap::from([(
                "arg1".to_owned(),
                vec!["test-value-1".to_owned(), "testValue1".to_owned()],
            )]),
            |_, args| {
                let a1 = args.get("arg1").cloned().unwrap_or_default();
                let a2 = args.get("arg2").cloned().unwrap_or_default();
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{a1}', arg2='{a2}'"),
                )]))
            },
        ),
        FnPrompt::new(
            Prompt::new(
                "test_prompt_with_embedded_resource",
                Some("A prompt that embeds a resource (conformance fixture)."),
                Some(vec![PromptArgument::new("resourceUri")
                    .with_description("URI of the resource to embed")
                    .with_required(true)]),
            ),
            HashMap::new(),
            |_, args| {
                let uri = args.get("resourceUri").cloned().unwrap_or_default();
                Ok(GetPromptResult::new(vec![
                    PromptMessage::new_resource(
                        Role::User,
                        uri,
                        Some("text/plain".into()),
                        Some("Embedded resource content for testing.".into()),
                        None,
                        None,
                        None,
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ]))
            },
        ),
        FnPrompt::new(
            Prompt::new(
                "test_prompt_with_image",
                Some("A prompt that includes an image (conformance fixture)."),
                None,
            ),
            HashMap::new(),
            |_, _| {
                Ok(GetPromptResult::new(vec![
                    PromptMessage::new(Role::User, ContentBlock::image(PNG_1X1, "image/png")),
                    PromptMessage::new_text(Role::User, "Please analyze the image above."),
                ]))
            },
        ),
    ]
}

impl RequestContext {
    /// Cuts the request's live SSE connection (the request keeps running); the client must
    /// resume with `Last-Event-ID` to get the result. Used by `test_reconnection`.
    pub fn detach_connection(&self) {
        self.emit(Output::Detach);
    }
}
