//! Admin routes for scripts, guarded by the simulator's API key: `GET /_sim/stats`,
//! `GET /_sim/knobs`, and `POST /_sim/knobs`, which merges the top-level fields of a JSON object
//! into the current knobs (a `null` field goes back to its default) and returns the result.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::{auth, body, error::ApiError, knobs::Knobs, state::SharedState};

async fn stats(state: SharedState, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::check_key(&state, &req)?;
    Ok(HttpResponse::Ok().json(state.stats()))
}

async fn get_knobs(state: SharedState, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::check_key(&state, &req)?;
    Ok(HttpResponse::Ok().json(state.knobs()))
}

async fn post_knobs(
    state: SharedState,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::check_key(&state, &req)?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let Value::Object(patch) =
        serde_json::from_slice::<Value>(&raw).map_err(ApiError::invalid_body)?
    else {
        return Err(ApiError::invalid_body("expected a JSON object of knobs"));
    };
    let mut merged = serde_json::to_value(state.knobs()).map_err(ApiError::invalid_body)?;
    if let Value::Object(current) = &mut merged {
        current.extend(patch);
    }
    let knobs: Knobs = serde_json::from_value(merged).map_err(ApiError::invalid_body)?;
    state.set_knobs(knobs);
    Ok(HttpResponse::Ok().json(state.knobs()))
}

/// Registers the admin routes (relative to `/_sim`).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats", web::get().to(stats))
        .route("/knobs", web::get().to(get_knobs))
        .route("/knobs", web::post().to(post_knobs));
}
