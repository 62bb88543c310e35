//! File routes (dust-api.md §8.2): upload URL with the 40-per-minute limit, multipart upload of
//! the part `file` to that URL, get and delete. Owns `FileRecord` (metadata and a short text
//! snippet; the bytes themselves are counted, not kept) and the accepted content types.

use std::sync::{atomic::Ordering, Arc};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    body,
    error::ApiError,
    knobs::RouteClass,
    state::{admit, bump, SharedState},
};

/// Bytes of text kept as `snippet`.
const SNIPPET_BYTES: usize = 256;
/// Upload bodies above this are refused before parsing (the largest category limit + margin).
const MAX_UPLOAD_BODY_BYTES: usize = 51 * 1024 * 1024;

/// Content types Dust accepts (dust-api.md §8.2).
static SUPPORTED: &[&str] = &[
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel",
    "application/vnd.google-apps.document",
    "application/vnd.google-apps.presentation",
    "application/vnd.google-apps.spreadsheet",
    "application/pdf",
    "message/rfc822",
    "text/plain",
    "text/markdown",
    "text/csv",
    "text/comma-separated-values",
    "text/tab-separated-values",
    "text/tsv",
    "text/html",
    "text/xml",
    "application/xml",
    "application/json",
    "text/calendar",
    "text/css",
    "text/javascript",
    "text/typescript",
    "application/octet-stream",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/svg+xml",
    "image/bmp",
    "image/x-icon",
    "audio/mpeg",
    "audio/x-m4a",
    "audio/ogg",
    "audio/wav",
    "audio/x-wav",
    "audio/webm",
    "video/webm",
];

/// Whether Dust accepts `ct` (parameters such as `; charset=` are ignored).
pub(crate) fn is_supported_content_type(ct: &str) -> bool {
    let base = ct.split(';').next().unwrap_or("").trim();
    SUPPORTED.contains(&base) || base.starts_with("text/x-")
}

/// Size limit of a content type's category (dust-api.md §8.2).
fn max_size(ct: &str) -> u64 {
    if ct.starts_with("image/") {
        5 * 1024 * 1024
    } else if ct.starts_with("audio/") || ct == "video/webm" {
        25 * 1024 * 1024
    } else {
        50 * 1024 * 1024
    }
}

/// One file.
#[derive(Debug, Clone)]
pub(crate) struct FileRecord {
    pub(crate) s_id: String,
    pub(crate) content_type: String,
    pub(crate) file_name: String,
    pub(crate) file_size: u64,
    pub(crate) ready: bool,
    pub(crate) snippet: Option<String>,
}

impl FileRecord {
    /// A ready file made from inline fragment text.
    pub(crate) fn inline(s_id: String, title: &str, content_type: &str, text: &str) -> Self {
        FileRecord {
            s_id,
            content_type: content_type.to_string(),
            file_name: title.to_string(),
            file_size: text.len() as u64,
            ready: true,
            snippet: Some(snippet_of(text.as_bytes())),
        }
    }

    /// The public file JSON.
    pub(crate) fn to_json(&self, base: &str, w_id: &str) -> Value {
        json!({
            "id": self.s_id,
            "sId": self.s_id,
            "contentType": self.content_type,
            "fileName": self.file_name,
            "fileSize": self.file_size,
            "status": if self.ready { "ready" } else { "created" },
            "useCase": "conversation",
            "version": 0,
            "uploadUrl": format!("{base}/api/v1/w/{w_id}/files/{}", self.s_id),
        })
    }
}

fn snippet_of(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SNIPPET_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

/// The simulator's origin as the client sees it.
pub(crate) fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadUrlBody {
    content_type: String,
    file_name: String,
    file_size: u64,
    use_case: String,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted for schema fidelity; the simulator has no use for it"
    )]
    use_case_metadata: Option<Value>,
}

/// `POST .../files`: a file in status `created` with its `uploadUrl`.
async fn create_upload_url(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let w_id = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Files).await?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let b: UploadUrlBody = super::validate::parse(&raw)?;
    let limit = state.knobs.snapshot().upload_url_limit_per_minute();
    if !state.upload_window.lock().hit(limit) {
        bump(&state.counters.rate_limit_refusals);
        return Err(ApiError::new(
            429,
            "rate_limit_error",
            "You have reached the rate limit for this workspace.",
        ));
    }
    if b.use_case != "conversation" {
        return Err(ApiError::invalid(
            "The file use case is not supported by the API.",
        ));
    }
    if b.file_name.chars().count() > 4096 {
        return Err(ApiError::invalid_body(
            "fileName: String must contain at most 4096 character(s)",
        ));
    }
    if !is_supported_content_type(&b.content_type) {
        return Err(ApiError::new(
            400,
            "file_type_not_supported",
            format!("Content type \"{}\" is not supported.", b.content_type),
        ));
    }
    if b.file_size > max_size(&b.content_type) {
        return Err(ApiError::new(
            400,
            "file_too_large",
            format!("File \"{}\" is too large.", b.file_name),
        ));
    }
    let rec = FileRecord {
        s_id: format!("fil_{}", state.new_sid()),
        content_type: b.content_type,
        file_name: b.file_name,
        file_size: b.file_size,
        ready: false,
        snippet: None,
    };
    let out = rec.to_json(&base_url(&req), &w_id);
    state
        .files
        .insert(rec.s_id.clone(), Arc::new(Mutex::new(rec)));
    bump(&state.counters.upload_urls);
    Ok(HttpResponse::Ok().json(json!({ "file": out })))
}

/// `POST .../files/{fileId}`: the multipart upload; the file becomes `ready`.
async fn upload(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (w_id, f_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Files).await?;
    let file = state
        .files
        .get(&f_id)
        .map(|f| f.value().clone())
        .ok_or_else(ApiError::file_not_found)?;
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart_boundary)
        .ok_or_else(|| {
            ApiError::invalid("The request must be multipart/form-data with a boundary.")
        })?;
    let raw = body::read(payload, MAX_UPLOAD_BODY_BYTES).await?;
    let part = file_part(&raw, &boundary)
        .ok_or_else(|| ApiError::invalid("No file part named \"file\" in the upload."))?;
    let out = {
        let mut f = file.lock();
        if part.len() as u64 > max_size(&f.content_type) {
            return Err(ApiError::new(
                400,
                "file_too_large",
                format!("File \"{}\" is too large.", f.file_name),
            ));
        }
        f.file_size = part.len() as u64;
        f.ready = true;
        if f.content_type.starts_with("text/") || f.content_type == "application/json" {
            f.snippet = Some(snippet_of(part));
        }
        f.to_json(&base_url(&req), &w_id)
    };
    state.counters.uploads.fetch_add(1, Ordering::Relaxed);
    Ok(HttpResponse::Ok().json(json!({ "file": out })))
}

/// `GET .../files/{fileId}`.
async fn get_file(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (w_id, f_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Files).await?;
    let file = state
        .files
        .get(&f_id)
        .map(|f| f.value().clone())
        .ok_or_else(ApiError::file_not_found)?;
    let out = file.lock().to_json(&base_url(&req), &w_id);
    Ok(HttpResponse::Ok().json(json!({ "file": out })))
}

/// `DELETE .../files/{fileId}` → 204.
async fn delete_file(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (w_id, f_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Files).await?;
    state
        .files
        .remove(&f_id)
        .ok_or_else(ApiError::file_not_found)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The boundary of a `multipart/form-data` content type.
fn multipart_boundary(ct: &str) -> Option<String> {
    let mut parts = ct.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// The content of the part named `file` (RFC 7578).
fn file_part<'a>(body: &'a [u8], boundary: &str) -> Option<&'a [u8]> {
    let delim = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delim.as_bytes());
    let starts: Vec<usize> = finder.find_iter(body).collect();
    for pair in starts.windows(2) {
        let part = &body[pair[0] + delim.len()..pair[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let head_end = memchr::memmem::find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..head_end]).to_ascii_lowercase();
        let is_file = head
            .lines()
            .any(|l| l.starts_with("content-disposition:") && l.contains("name=\"file\""));
        if is_file {
            let content = &part[head_end + 4..];
            return Some(content.strip_suffix(b"\r\n").unwrap_or(content));
        }
    }
    None
}

/// Registers the file routes (paths relative to `/api/v1/w/{wId}`).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    let nm = || web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_supported()) });
    cfg.service(
        web::resource("/files")
            .route(web::post().to(create_upload_url))
            .default_service(nm()),
    )
    .service(
        web::resource("/files/{fileId}")
            .route(web::post().to(upload))
            .route(web::get().to(get_file))
            .route(web::delete().to(delete_file))
            .default_service(nm()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_part_among_others() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\
Content-Type: text/csv\r\n\r\na,b\r\n1,2\r\n--XyZ--\r\n";
        assert_eq!(file_part(body, "XyZ"), Some(&b"a,b\r\n1,2"[..]));
        assert_eq!(file_part(body, "Other"), None);
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("XyZ")
        );
        assert!(multipart_boundary("application/json").is_none());
    }

    #[test]
    fn content_types_follow_dust() {
        assert!(is_supported_content_type("text/csv"));
        assert!(is_supported_content_type("text/plain; charset=utf-8"));
        assert!(is_supported_content_type("text/x-python"));
        assert!(!is_supported_content_type("application/x-msdownload"));
    }
}
