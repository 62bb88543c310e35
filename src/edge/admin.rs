//! Operator routes: `/healthz` (process up), `/readyz` (actors answering), `/admin/status`
//! (sessions and totals, JSON) and `/metrics` (Prometheus text). The last two need the admin
//! token. Nothing here shows a session's full id, a token or a key.

use std::time::Duration;

use actix_web::{http::header::AUTHORIZATION, web, HttpRequest, HttpResponse};
use actors::session_registry::GetStatus;
use serde_json::json;

use super::rescue::EdgeError;
use crate::app::AppState;

/// How long `/readyz` waits for the registry.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

fn require_admin(req: &HttpRequest, state: &AppState) -> Result<(), EdgeError> {
    let auth = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if state.auth.is_admin(auth) {
        Ok(())
    } else {
        Err(EdgeError::AdminUnauthorized)
    }
}

/// GET /healthz.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// GET /readyz: 200 once the actor system answers, 503 otherwise.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(READY_TIMEOUT, state.registry.send(GetStatus)).await {
        Ok(Ok(_)) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        _ => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("not ready: the session registry does not answer\n"),
    }
}

/// GET /admin/status.
pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    require_admin(&req, &state)?;
    let snapshot = state
        .registry
        .send(GetStatus)
        .await
        .map_err(|e| EdgeError::Internal(format!("registry unavailable: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
        "auth": if state.no_auth { "none (loopback only)" } else { "bearer tokens" },
        "users": state.auth.user_count(),
        "sessions": snapshot.sessions,
        "sessions_truncated": snapshot.truncated,
        "totals": snapshot.totals,
    })))
}

/// GET /metrics.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    require_admin(&req, &state)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}
