//! Health file routes: `POST /v1/health/files` (raw body, streamed into the parser pool),
//! list / get / delete, the signed-link variant `POST /v1/health/upload/{token}`, and the small
//! `GET /upload` page. Errors are `{"error": {"type", "message"}}` saying what to do.

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse, ResponseError,
};
use actors::{
    health::ParseError,
    health_parser::UploadError,
    store::{Inserted, StoreError},
};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::auth::Authenticated;
use crate::app::AppState;

/// Content types accepted for uploads (parameters such as `charset` are ignored). The format
/// itself is detected from the bytes.
pub const ACCEPTED_TYPES: &[&str] = &[
    "application/zip",
    "application/x-zip-compressed",
    "application/xml",
    "text/xml",
    "text/csv",
    "application/csv",
    "application/vnd.ms-excel",
    "application/json",
    "application/fhir+json",
    "application/x-ndjson",
    "application/fhir+ndjson",
    "application/octet-stream",
];

/// Longest file name kept.
const MAX_NAME_CHARS: usize = 255;

/// A refused or failed health request.
#[derive(Debug)]
pub struct HealthHttpError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl std::fmt::Display for HealthHttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl HealthHttpError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        HealthHttpError {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no health file {id:?}; GET /v1/health/files lists yours"),
        )
    }
}

impl ResponseError for HealthHttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(json!({"error": {"type": self.kind, "message": self.message}}))
    }
}

impl From<StoreError> for HealthHttpError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "health store failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage",
            format!("{e}; try again later"),
        )
    }
}

impl From<UploadError> for HealthHttpError {
    fn from(e: UploadError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        let (status, kind) = match &e {
            UploadError::Busy {
                retry_after_secs, ..
            } => {
                let mut err = Self::new(S::SERVICE_UNAVAILABLE, "busy", message);
                err.retry_after = Some(*retry_after_secs);
                return err;
            }
            UploadError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "too_large"),
            UploadError::Store(_) => (S::INTERNAL_SERVER_ERROR, "storage"),
            UploadError::Panicked(_) => (S::INTERNAL_SERVER_ERROR, "parser_crashed"),
            UploadError::Unavailable => (S::SERVICE_UNAVAILABLE, "unavailable"),
            UploadError::Parse(p) => match p {
                ParseError::Empty => (S::BAD_REQUEST, "empty"),
                ParseError::UnknownFormat { .. } => {
                    (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_format")
                }
                ParseError::Truncated { .. } => (S::UNPROCESSABLE_ENTITY, "truncated"),
                ParseError::Corrupt { .. } => (S::UNPROCESSABLE_ENTITY, "corrupt"),
                ParseError::UnsafeZipEntry { .. } => (S::UNPROCESSABLE_ENTITY, "unsafe_zip"),
                ParseError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "too_large"),
                ParseError::MissingExportXml => (S::UNPROCESSABLE_ENTITY, "missing_export_xml"),
                ParseError::UnsupportedZip { .. } => (S::UNPROCESSABLE_ENTITY, "unsupported_zip"),
                ParseError::TooManySkipped { .. } => (S::UNPROCESSABLE_ENTITY, "too_many_skipped"),
                ParseError::LineTooLong { .. } => (S::UNPROCESSABLE_ENTITY, "line_too_long"),
                ParseError::Io { .. } => (S::BAD_REQUEST, "bad_body"),
            },
        };
        Self::new(status, kind, message)
    }
}

/// `?name=FILE`.
#[derive(Debug, Deserialize)]
pub struct NameQuery {
    name: Option<String>,
}

/// POST /v1/health/files.
pub async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<NameQuery>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, HealthHttpError> {
    receive(&req, payload, &state, &principal.name, query.into_inner()).await
}

/// POST /v1/health/upload/{token}: the same, authorised by a signed link.
pub async fn upload_with_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<NameQuery>,
    token: web::Path<String>,
) -> Result<HttpResponse, HealthHttpError> {
    let owner =
        state.health.links.verify(&token).map_err(|e| {
            HealthHttpError::new(StatusCode::UNAUTHORIZED, "bad_link", e.to_string())
        })?;
    receive(&req, payload, &state, &owner, query.into_inner()).await
}

fn file_name(query: NameQuery) -> Result<String, HealthHttpError> {
    let name = query.name.unwrap_or_default().trim().to_owned();
    if name.is_empty() {
        return Ok("upload".into());
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(HealthHttpError::new(
            StatusCode::BAD_REQUEST,
            "bad_name",
            format!("`name` must be at most {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(name)
}

/// Checks the headers, then streams the body into the parser pool chunk by chunk.
async fn receive(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
    owner: &str,
    query: NameQuery,
) -> Result<HttpResponse, HealthHttpError> {
    let name = file_name(query)?;
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    if !ACCEPTED_TYPES.contains(&media.as_str()) {
        return Err(HealthHttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {media:?} is not accepted; send one of {} (the format is detected from the content). Supported formats: {}",
                ACCEPTED_TYPES.join(", "),
                actors::health::SUPPORTED
            ),
        ));
    }
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("identity") | Some("") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(HealthHttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding {other:?} is not supported; send the file as is or gzip-compressed"),
            ))
        }
    };
    let max = state.max_upload_bytes;
    let too_large = || {
        HealthHttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the upload is larger than this server's limit of {max} bytes; nothing was stored"
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let service = &state.health;
    let mut up = service.begin(owner, &name, gzip)?;
    let mut received = 0u64;
    let mut over = false;
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(bytes) => {
                received += bytes.len() as u64;
                if received > max {
                    over = true;
                    up.abort("the upload is over the size limit").await;
                    break;
                }
                if !up.feed(bytes).await {
                    break;
                }
            }
            Err(e) => {
                up.abort(&format!("the upload broke off: {e}")).await;
                break;
            }
        }
    }
    let result = service.complete(up).await;
    if over {
        return Err(too_large());
    }
    match result? {
        Inserted::Created(rec) => Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/v1/health/files/{}", rec.id)))
            .json(rec)),
        Inserted::Existing(rec) => Ok(HttpResponse::Ok().json(rec)),
    }
}

/// GET /v1/health/files.
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, HealthHttpError> {
    let owner = principal.name.to_string();
    let files = state
        .health
        .store
        .run(move |s| s.list_files(&owner))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "files": files })))
}

/// GET /v1/health/files/{id}.
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, HealthHttpError> {
    let owner = principal.name.to_string();
    let file_id = id.clone();
    match state
        .health
        .store
        .run(move |s| s.get_file(&owner, &file_id))
        .await?
    {
        Some(rec) => Ok(HttpResponse::Ok().json(rec)),
        None => Err(HealthHttpError::not_found(&id)),
    }
}

/// DELETE /v1/health/files/{id}.
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, HealthHttpError> {
    if state.health.delete(&principal.name, &id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(HealthHttpError::not_found(&id))
    }
}

/// GET /upload?token=...: a self-contained page that POSTs a dropped file with the link.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(UPLOAD_PAGE)
}

const UPLOAD_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upload a health file — dust-mcp</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1a1a1a; }
#drop { border: 3px dashed #555; border-radius: 8px; padding: 2rem; text-align: center; }
#drop.over { background: #eef5ff; border-color: #0b57d0; }
#drop:focus-within { outline: 3px solid #0b57d0; outline-offset: 2px; }
button { font-size: 1rem; padding: .5rem 1rem; }
#status { margin-top: 1rem; white-space: pre-wrap; }
.error { color: #a50e0e; }
</style>
</head>
<body>
<main>
<h1>Upload a health file</h1>
<p>Apple Health <code>export.zip</code> or <code>export.xml</code>, Keto-Mojo CSV, lab-result CSV, FHIR Bundle JSON or FHIR NDJSON. The file is parsed on the server and stored under your account; this link expires after a few minutes.</p>
<div id="drop">
<p>Drop the file here, or</p>
<label for="file">Choose a file</label>
<input type="file" id="file" name="file" accept=".zip,.xml,.csv,.json,.ndjson">
<p><button type="button" id="send" disabled>Upload</button></p>
</div>
<progress id="bar" max="100" value="0" hidden aria-label="Upload progress"></progress>
<div id="status" role="status" aria-live="polite"></div>
</main>
<script>
(function () {
  var token = new URLSearchParams(location.search).get('token');
  var input = document.getElementById('file'), send = document.getElementById('send');
  var drop = document.getElementById('drop'), status = document.getElementById('status');
  var bar = document.getElementById('bar'), chosen = null;
  function say(text, isError) { status.textContent = text; status.className = isError ? 'error' : ''; }
  if (!token) { say('This page needs the link from the health_upload_link tool (it ends in ?token=...).', true); }
  function choose(f) { chosen = f; send.disabled = !f || !token; if (f) say('Ready to upload ' + f.name + ' (' + f.size + ' bytes).'); }
  input.addEventListener('change', function () { choose(input.files[0]); });
  drop.addEventListener('dragover', function (e) { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', function () { drop.classList.remove('over'); });
  drop.addEventListener('drop', function (e) { e.preventDefault(); drop.classList.remove('over'); choose(e.dataTransfer.files[0]); });
  send.addEventListener('click', function () {
    if (!chosen) return;
    var xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/health/upload/' + encodeURIComponent(token) + '?name=' + encodeURIComponent(chosen.name));
    xhr.setRequestHeader('Content-Type', chosen.type || 'application/octet-stream');
    bar.hidden = false; send.disabled = true; say('Uploading ' + chosen.name + '...');
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
    xhr.onload = function () {
      send.disabled = false;
      var body = {}; try { body = JSON.parse(xhr.responseText); } catch (e) {}
      if (xhr.status === 200 || xhr.status === 201) {
        say('Stored ' + body.name + ' as file_id ' + body.id + ': ' + body.records + ' records (' + body.format + '). Ask Claude for its health_summary.');
      } else {
        say('Not stored: ' + ((body.error && body.error.message) || ('HTTP ' + xhr.status)), true);
      }
    };
    xhr.onerror = function () { send.disabled = false; say('The upload failed (network error). Try again.', true); };
    xhr.send(chosen);
  });
})();
</script>
</body>
</html>
"#;
