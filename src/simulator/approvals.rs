//! Tool approval routes (dust-api.md §9): `POST .../messages/{mId}/validate-action` with
//! `{actionId, approved}` → `{success}`, and `GET .../conversations/{cId}/actions/blocked`.
//! The waiting itself happens in `generation.rs` when the `tool_approval` knob is on.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    body,
    error::ApiError,
    knobs::RouteClass,
    model::Item,
    state::{admit, MessageRef, SharedState},
    validate,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidateBody {
    action_id: String,
    approved: String,
}

/// `POST .../conversations/{cId}/messages/{mId}/validate-action`.
async fn validate_action(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id, m_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::PostMessage).await?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let b: ValidateBody = validate::parse(&raw)?;
    if !matches!(
        b.approved.as_str(),
        "approved" | "rejected" | "always_approved"
    ) {
        return Err(ApiError::invalid_body("approved: Invalid enum value"));
    }
    state.conversation(&c_id)?;
    let Some(MessageRef::Agent(msg)) = state.messages.get(&m_id).map(|m| m.value().clone()) else {
        return Err(ApiError::message_not_found());
    };
    let pending = msg.pending_approval.lock().clone();
    let matches = pending.is_some_and(|p| p["actionId"] == b.action_id.as_str());
    if matches {
        *msg.decision.lock() = Some(b.approved);
        msg.decided.notify_one();
    }
    Ok(HttpResponse::Ok().json(json!({ "success": matches })))
}

/// `GET .../conversations/{cId}/actions/blocked`.
async fn blocked(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::GetConversation).await?;
    let conv = state.conversation(&c_id)?;
    let blocked: Vec<Value> = conv
        .lock()
        .content
        .iter()
        .filter_map(|i| match i {
            Item::Agent(a) => a.pending_approval.lock().clone(),
            _ => None,
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "blockedActions": blocked })))
}

/// Registers the approval routes (relative to `/api/v1/w/{wId}`).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/assistant/conversations/{cId}/messages/{mId}/validate-action",
        web::post().to(validate_action),
    )
    .route(
        "/assistant/conversations/{cId}/actions/blocked",
        web::get().to(blocked),
    );
}
