//! Content fragments (dust-api.md §8): turning a fragment body (inline text or `fileId`) into the
//! public ContentFragment JSON stored in the conversation, and the
//! `POST .../conversations/{cId}/content_fragments` route.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::{
    body,
    error::ApiError,
    files::{base_url, FileRecord},
    knobs::RouteClass,
    model::{now_ms, Item},
    state::{admit, bump, SharedState, SimState},
    validate::{self, FragmentBody},
};

/// Resolves the fragment's file (creating one for inline text) and builds its JSON.
/// The conversation rank is filled in when it is stored.
pub(crate) fn build(
    state: &SimState,
    f: &FragmentBody,
    base: &str,
    w_id: &str,
) -> Result<Value, ApiError> {
    let file = if let Some(text) = &f.content {
        let ct = f.content_type.as_deref().unwrap_or("text/plain");
        let rec = FileRecord::inline(format!("fil_{}", state.new_sid()), &f.title, ct, text);
        state
            .files
            .insert(rec.s_id.clone(), Arc::new(Mutex::new(rec.clone())));
        rec
    } else if let Some(file_id) = &f.file_id {
        let rec = state
            .files
            .get(file_id)
            .map(|r| r.value().lock().clone())
            .ok_or_else(ApiError::file_not_found)?;
        if !rec.ready {
            return Err(ApiError::invalid(format!(
                "The file {file_id} has not been uploaded yet."
            )));
        }
        rec
    } else {
        return Err(ApiError::invalid(
            "Content node fragments are not supported by the simulator.",
        ));
    };
    let ctx = f.context.clone().unwrap_or_else(|| json!({}));
    let ctx_field = |k: &str| ctx.get(k).cloned().unwrap_or(Value::Null);
    let s_id = state.new_sid();
    Ok(json!({
        "type": "content_fragment",
        "id": state.next_id(),
        "sId": s_id,
        "created": now_ms(),
        "visibility": "visible",
        "version": 0,
        "sourceUrl": f.url,
        "title": f.title,
        "contentType": file.content_type,
        "context": {
            "username": ctx_field("username"),
            "fullName": ctx_field("fullName"),
            "email": ctx_field("email"),
            "profilePictureUrl": ctx_field("profilePictureUrl"),
        },
        "contentFragmentId": format!("cf_{s_id}"),
        "contentFragmentVersion": "latest",
        "contentFragmentType": "file",
        "expiredReason": null,
        "fileId": file.s_id,
        "snippet": file.snippet,
        "generatedTables": [],
        "textUrl": format!("{base}/api/v1/w/{w_id}/files/{}?action=view", file.s_id),
        "textBytes": file.file_size,
        "sourceProvider": null,
        "sourceIcon": null,
    }))
}

/// Appends a built fragment to the conversation items, setting its rank.
pub(crate) fn store(content: &mut Vec<Item>, mut fragment: Value) -> Value {
    fragment["rank"] = json!(content.len());
    content.push(Item::Fragment(fragment.clone()));
    fragment
}

/// `POST .../conversations/{cId}/content_fragments` → `{"contentFragment": ...}`.
async fn post(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Fragments).await?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let f: FragmentBody = validate::parse(&raw)?;
    validate::check_fragment(&f)?;
    let conv = state.conversation(&c_id)?;
    let built = build(&state, &f, &base_url(&req), &w_id)?;
    let stored = {
        let mut c = conv.lock();
        c.updated = now_ms();
        store(&mut c.content, built)
    };
    bump(&state.counters.content_fragments);
    Ok(HttpResponse::Ok().json(json!({ "contentFragment": stored })))
}

/// Registers the fragment route (relative to `/api/v1/w/{wId}`).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/assistant/conversations/{cId}/content_fragments")
            .route(web::post().to(post))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::method_not_supported())
            })),
    );
}
