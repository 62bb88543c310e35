//! The `health_*` tool definitions and bodies. Store work runs on the store threads and
//! parsing in the parser pool; these futures only wait, reporting parse progress meanwhile.

use std::{sync::Arc, time::Duration};

use base64::{engine::general_purpose, Engine};
use bytes::Bytes;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{render, summary_uri, ttl_minutes, HealthService};
use crate::{
    health_parser::UploadError,
    mcp::{
        catalogue::{object_schema, tool_args, Catalogue, FnTool, ToolOutcome},
        context::RequestContext,
    },
    store::{FileRecord, Inserted, Period, SeriesQuery, StoreError},
};

/// Size of the pieces an inline upload is fed to the parser in.
const TOOL_CHUNK_BYTES: usize = 256 * 1024;
/// How often a waiting tool reports parse progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Points shown in `health_query`'s text (all of them are in structuredContent).
const TEXT_POINTS: usize = 60;

fn annotations(read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(idempotent)
        .open_world(false)
}

fn error_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn store_error(e: &StoreError) -> CallToolResult {
    tracing::warn!(error = %e, "health store failed");
    error_result(format!("the health store failed: {e}; try again later"))
}

fn with_structured(text: impl Into<String>, structured: Value) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(structured);
    r
}

fn not_found(id: &str) -> CallToolResult {
    error_result(format!(
        "no health file {id:?}: use health_list_files to see your files' ids"
    ))
}

/// A record without its summary, as listed.
fn listed(rec: &FileRecord) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.remove("summary");
    }
    v
}

// === definitions ===

fn upload_tool(max: usize) -> Tool {
    Tool::new(
        "health_upload",
        format!("Upload a small health file (up to {} MB) given inline: Apple Health export.xml, Keto-Mojo CSV, lab-result CSV, FHIR Bundle JSON or FHIR NDJSON (zip exports: pass content_base64). It is parsed and stored; the result has its file_id and headline figures. For larger files use health_upload_link.", max / 1_000_000),
        object_schema(
            json!({
                "name": {"type": "string", "minLength": 1, "description": "File name, e.g. export.xml (helps tell CSV kinds apart)"},
                "content": {"type": "string", "description": "The file's text (for XML, CSV, JSON)"},
                "content_base64": {"type": "string", "description": "The file's bytes in base64 (for zip or binary files)"}
            }),
            &["name"],
        ),
    )
    .with_title("Upload a health file")
    .with_annotations(annotations(false, false, true))
}

fn link_tool() -> Tool {
    Tool::new(
        "health_upload_link",
        "Get a short-lived link to upload a large health export (e.g. a multi-GB Apple Health export.zip) from a browser page or with curl, without a token. The upload is stored under your account.",
        object_schema(json!({}), &[]),
    )
    .with_title("Get a health upload link")
    .with_annotations(annotations(true, false, false))
}

fn list_tool() -> Tool {
    Tool::new(
        "health_list_files",
        "List your uploaded health files with their file_id, format, size, record counts and upload time.",
        object_schema(json!({}), &[]),
    )
    .with_title("List health files")
    .with_annotations(annotations(true, false, true))
}

fn summary_tool() -> Tool {
    let tool = Tool::new(
        "health_summary",
        "Summarise one uploaded health file: per-metric count, min, max, mean, standard deviation and time span, days covered, workouts, sleep, blood pressure, lab flags and warnings.",
        object_schema(
            json!({"file_id": {"type": "string", "description": "From health_list_files or an upload result"}}),
            &["file_id"],
        ),
    )
    .with_title("Summarise a health file")
    .with_annotations(annotations(true, false, true));
    match render::summary_schema() {
        Value::Object(schema) => tool.with_raw_output_schema(Arc::new(schema)),
        _ => tool,
    }
}

fn query_tool(max_points: usize) -> Tool {
    Tool::new(
        "health_query",
        format!("A time series of one metric (e.g. HKQuantityTypeIdentifierStepCount, StepCount, blood_ketone, a LOINC code) per day, ISO week or month, from the stored aggregates: count, sum, min, max, mean per period. Without file_id, all your files are merged. At most {max_points} points."),
        object_schema(
            json!({
                "file_id": {"type": "string", "description": "One file; omit for all your files"},
                "metric": {"type": "string", "minLength": 1, "description": "Metric type as in health_summary (a unique part of it is enough)"},
                "from": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$", "description": "First day, YYYY-MM-DD (inclusive)"},
                "to": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$", "description": "Last day, YYYY-MM-DD (inclusive)"},
                "granularity": {"type": "string", "enum": ["day", "week", "month"], "description": "Period length"}
            }),
            &["metric", "granularity"],
        ),
    )
    .with_title("Query a health metric over time")
    .with_annotations(annotations(true, false, true))
}

fn delete_tool() -> Tool {
    Tool::new(
        "health_delete_file",
        "Delete one of your uploaded health files with its summary and aggregates. This cannot be undone.",
        object_schema(
            json!({"file_id": {"type": "string", "description": "The file to delete"}}),
            &["file_id"],
        ),
    )
    .with_title("Delete a health file")
    .with_annotations(annotations(false, true, true))
}

/// Registers the six tools.
pub(super) fn register_tools(catalogue: &mut Catalogue, service: Arc<HealthService>) {
    macro_rules! tool {
        ($def:expr, $method:ident) => {{
            let s = service.clone();
            catalogue.add_tool(FnTool::new($def, move |ctx, args| {
                let s = s.clone();
                Box::pin(async move { $method(&s, ctx, args).await })
            }));
        }};
    }
    tool!(upload_tool(service.settings.max_tool_upload_bytes), upload);
    tool!(link_tool(), upload_link);
    tool!(list_tool(), list_files);
    tool!(summary_tool(), summary);
    tool!(query_tool(service.settings.max_query_points), query);
    tool!(delete_tool(), delete_file);
}

// === arguments ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadArgs {
    name: String,
    content: Option<String>,
    content_base64: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileArgs {
    file_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryArgs {
    file_id: Option<String>,
    metric: String,
    from: Option<String>,
    to: Option<String>,
    granularity: Granularity,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Granularity {
    Day,
    Week,
    Month,
}

impl Granularity {
    fn period(self) -> Period {
        match self {
            Granularity::Day => Period::Day,
            Granularity::Week => Period::Week,
            Granularity::Month => Period::Month,
        }
    }
}

macro_rules! args {
    ($tool:literal, $args:expr) => {
        match tool_args($tool, $args) {
            Ok(a) => a,
            Err(r) => return Ok(r),
        }
    };
}

// === bodies ===

async fn upload(s: &HealthService, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
    let a: UploadArgs = args!("health_upload", args);
    let name = a.name.trim().to_owned();
    if name.is_empty() {
        return Ok(error_result(
            "`name` is empty: give the file's name, e.g. export.xml",
        ));
    }
    let bytes = match (a.content, a.content_base64) {
        (Some(text), None) => Bytes::from(text.into_bytes()),
        (None, Some(b64)) => {
            let compact: String = b64.split_whitespace().collect();
            match general_purpose::STANDARD
                .decode(&compact)
                .or_else(|_| general_purpose::URL_SAFE.decode(&compact))
            {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    return Ok(error_result(format!(
                        "content_base64 is not valid base64 ({e}); encode the file's bytes with standard base64"
                    )))
                }
            }
        }
        _ => return Ok(error_result(
            "give exactly one of `content` (text files) or `content_base64` (zip or binary files)",
        )),
    };
    let max = s.settings.max_tool_upload_bytes;
    if bytes.len() > max {
        return Ok(error_result(format!(
            "the file is {} bytes, over health_upload's limit of {max} bytes; use health_upload_link to upload it from a browser or with curl",
            bytes.len()
        )));
    }
    let owner = ctx.principal.name.to_string();
    let mut up = match s.begin(&owner, &name, false) {
        Ok(u) => u,
        Err(e) => return Ok(error_result(e.to_string())),
    };
    let job = up.job.clone();
    let total = bytes.len() as f64;
    let mut reported = 0u64;
    let mut report = |done: u64| {
        if done > reported {
            reported = done;
            ctx.progress(
                done as f64,
                Some(total),
                Some(&format!("parsed {done} of {total} bytes")),
            );
        }
    };
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + TOOL_CHUNK_BYTES).min(bytes.len());
        if !up.feed(bytes.slice(offset..end)).await {
            break;
        }
        offset = end;
        report(job.parsed());
    }
    let done = s.complete(up);
    tokio::pin!(done);
    let outcome = loop {
        tokio::select! {
            r = &mut done => break r,
            _ = tokio::time::sleep(PROGRESS_EVERY) => report(job.parsed()),
        }
    };
    Ok(upload_result(outcome))
}

/// The tool result of an upload, shared with nothing else: the HTTP route answers JSON.
fn upload_result(outcome: Result<Inserted, UploadError>) -> CallToolResult {
    let inserted = match outcome {
        Ok(i) => i,
        Err(e) => return error_result(format!("the file was not stored: {e}")),
    };
    let duplicate = matches!(inserted, Inserted::Existing(_));
    let rec = inserted.record();
    let days = rec
        .summary
        .as_ref()
        .and_then(|s| s["days"].as_u64())
        .unwrap_or(0);
    let metrics = rec
        .summary
        .as_ref()
        .and_then(|s| s["metrics"].as_array().map(Vec::len))
        .unwrap_or(0);
    let text = format!(
        "{}{} as file_id {} ({}): {} records used, {} skipped, {} days, {} metrics.{}\nNext: health_summary with this file_id, or health_query for a metric over time.",
        if duplicate { "You uploaded this content before; it is stored " } else { "Stored " },
        rec.name,
        rec.id,
        rec.format,
        rec.records,
        rec.skipped,
        days,
        metrics,
        if rec.warnings.is_empty() { String::new() } else { format!(" {} warnings (see health_summary).", rec.warnings.len()) }
    );
    let mut structured = listed(rec);
    structured["duplicate"] = json!(duplicate);
    structured["days"] = json!(days);
    structured["resource"] = json!(summary_uri(&rec.id));
    with_structured(text, structured)
}

async fn upload_link(s: &HealthService, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
    let _: NoArgs = args!("health_upload_link", args);
    let (token, expires_at) = s.links.mint(&ctx.principal.name);
    let base = s.public_base();
    let url = format!("{base}/v1/health/upload/{token}");
    let page = format!("{base}/upload?token={token}");
    let curl = format!(
        "curl -sS --fail-with-body -X POST -H 'Content-Type: application/zip' --data-binary @export.zip '{url}?name=export.zip'"
    );
    let minutes = ttl_minutes(s.links.ttl());
    let text = format!(
        "Upload link (valid {minutes} min, for your account only):\n- In a browser: {page}\n- With curl (change the file name and Content-Type as needed: application/xml, text/csv, application/json, application/x-ndjson):\n  {curl}\nThe answer includes the file_id to use with health_summary."
    );
    Ok(with_structured(
        text,
        json!({"upload_url": url, "page_url": page, "curl": curl, "expires_at": expires_at, "method": "POST"}),
    ))
}

async fn list_files(s: &HealthService, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
    let _: NoArgs = args!("health_list_files", args);
    let owner = ctx.principal.name.to_string();
    let files = match s.store.run(move |st| st.list_files(&owner)).await {
        Ok(f) => f,
        Err(e) => return Ok(store_error(&e)),
    };
    let mut text = if files.is_empty() {
        "You have no health files yet. Upload one with health_upload (small files) or health_upload_link.".to_owned()
    } else {
        format!("{} health files:\n", files.len())
    };
    for f in &files {
        text.push_str(&format!(
            "- {} (file_id `{}`): {}, {} bytes, {} records, uploaded {}\n",
            f.name, f.id, f.format, f.bytes, f.records, f.created_at
        ));
    }
    let listed: Vec<Value> = files.iter().map(listed).collect();
    Ok(with_structured(text.trim_end(), json!({"files": listed})))
}

async fn summary(s: &HealthService, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
    let a: FileArgs = args!("health_summary", args);
    let owner = ctx.principal.name.to_string();
    let id = a.file_id.clone();
    match s.store.run(move |st| st.get_file(&owner, &id)).await {
        Ok(Some(rec)) => Ok(with_structured(
            render::markdown(&rec),
            render::structured(&rec),
        )),
        Ok(None) => Ok(not_found(&a.file_id)),
        Err(e) => Ok(store_error(&e)),
    }
}

/// Finds the metric the caller means among the stored ones.
fn resolve_metric(wanted: &str, known: &[String]) -> Result<String, String> {
    let w = wanted.trim();
    if let Some(m) = known.iter().find(|m| *m == w) {
        return Ok(m.clone());
    }
    let short = |m: &str| {
        m.trim_start_matches("HKQuantityTypeIdentifier")
            .trim_start_matches("HKCategoryTypeIdentifier")
            .to_lowercase()
    };
    let wl = short(w);
    if let Some(m) = known.iter().find(|m| short(m) == wl) {
        return Ok(m.clone());
    }
    let partial: Vec<&String> = known
        .iter()
        .filter(|m| m.to_lowercase().contains(&wl))
        .collect();
    match partial.as_slice() {
        [one] => Ok((*one).clone()),
        _ => {
            let list: Vec<&str> = known.iter().take(60).map(String::as_str).collect();
            Err(if known.is_empty() {
                "there are no stored metrics for this selection; upload a file first".to_owned()
            } else if partial.is_empty() {
                format!(
                    "no stored metric matches {wanted:?}. Available: {}",
                    list.join(", ")
                )
            } else {
                let many: Vec<&str> = partial.iter().map(|m| m.as_str()).collect();
                format!(
                    "{wanted:?} matches several metrics: {}; pass the full type",
                    many.join(", ")
                )
            })
        }
    }
}

async fn query(s: &HealthService, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
    let a: QueryArgs = args!("health_query", args);
    let period = a.granularity.period();
    let mut bounds = [None, None];
    for (i, (label, v)) in [("from", &a.from), ("to", &a.to)].into_iter().enumerate() {
        if let Some(v) = v {
            match render::parse_day(v) {
                Some(d) => bounds[i] = Some(d),
                None => {
                    return Ok(error_result(format!(
                        "`{label}` must be a date YYYY-MM-DD, not {v:?}"
                    )))
                }
            }
        }
    }
    // A period is included when it contains `from`, so step back to its start.
    let from = bounds[0].map(|d| render::format_day(render::period_start(period, d)));
    let to = bounds[1].map(render::format_day);
    let owner = ctx.principal.name.to_string();
    let file_id = a.file_id.clone();
    let (o, f) = (owner.clone(), file_id.clone());
    let known = match s.store.run(move |st| st.metrics(&o, f.as_deref())).await {
        Ok(k) => k,
        Err(e) => return Ok(store_error(&e)),
    };
    if let Some(id) = &file_id {
        if !s.indexed(&owner).iter().any(|(k, _)| k == id) {
            return Ok(not_found(id));
        }
    }
    let metric = match resolve_metric(&a.metric, &known) {
        Ok(m) => m,
        Err(msg) => return Ok(error_result(msg)),
    };
    let limit = s.settings.max_query_points;
    let q = SeriesQuery {
        file_id: file_id.clone(),
        metric: metric.clone(),
        period,
        from: from.clone(),
        to: to.clone(),
        limit,
    };
    let mut points = match s.store.run(move |st| st.series(&owner, &q)).await {
        Ok(p) => p,
        Err(e) => return Ok(store_error(&e)),
    };
    let truncated = points.len() > limit;
    points.truncate(limit);
    let granularity = serde_json::to_value(period).unwrap_or(Value::Null);
    let g = granularity.as_str().unwrap_or("");
    let unit = points.first().map(|p| p.unit.clone()).unwrap_or_default();
    let scope = file_id
        .as_deref()
        .map(|id| format!("file {id}"))
        .unwrap_or_else(|| "all your files".into());
    let note = truncated.then(|| format!("only the first {limit} points are returned; narrow `from`/`to` or use a coarser granularity"));
    let mut text = format!(
        "{metric} per {g} ({unit}), {scope}: {} points.\n",
        points.len()
    );
    if file_id.is_none() {
        text.push_str(
            "Files are merged by adding their figures; overlapping uploads count twice.\n",
        );
    }
    text.push('\n');
    text.push_str(&render::series_table(&points, TEXT_POINTS));
    if points.len() > TEXT_POINTS {
        text.push_str(&format!(
            "\n({} more points in structuredContent)\n",
            points.len() - TEXT_POINTS
        ));
    }
    if let Some(n) = &note {
        text.push_str(&format!("\nNote: {n}.\n"));
    }
    Ok(with_structured(
        text,
        json!({"metric": metric, "unit": unit, "granularity": granularity, "file_id": file_id,
               "from": from, "to": to, "points": points, "truncated": truncated, "note": note}),
    ))
}

async fn delete_file(s: &HealthService, ctx: RequestContext, args: JsonObject) -> ToolOutcome {
    let a: FileArgs = args!("health_delete_file", args);
    match s.delete(&ctx.principal.name, &a.file_id).await {
        Ok(true) => Ok(with_structured(
            format!(
                "Deleted health file {} with its summary and aggregates.",
                a.file_id
            ),
            json!({"file_id": a.file_id, "deleted": true}),
        )),
        Ok(false) => Ok(not_found(&a.file_id)),
        Err(e) => Ok(store_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_metric;

    #[test]
    fn metrics_are_found_by_type_short_name_or_unique_part() {
        let known = vec![
            "HKQuantityTypeIdentifierStepCount".to_owned(),
            "HKQuantityTypeIdentifierDistanceWalkingRunning".to_owned(),
            "blood_ketone".to_owned(),
        ];
        assert_eq!(resolve_metric("stepcount", &known).unwrap(), known[0]);
        assert_eq!(resolve_metric("ketone", &known).unwrap(), known[2]);
        let err = resolve_metric("heart", &known).unwrap_err();
        assert!(
            err.contains("Available") && err.contains("blood_ketone"),
            "{err}"
        );
    }
}
