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
        "dust": {
            "mode": if state.dust_demo { "demo workspace (simulator)" } else { "workspace" },
            "base_url": state.dust.settings().base_url,
            "status": state.dust.status(),
        },
        "health": {
            "in_flight": state.health.pool.in_flight(),
            "capacity": state.health.pool.settings().queue,
            "workers": state.health.pool.settings().workers,
            "jobs": state.health.pool.jobs(),
        },
    })))
}

/// GET /metrics.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    require_admin(&req, &state)?;
    let mut body = state.metrics.render();
    body.push_str(&dust_metrics(&state));
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}

/// The Dust client's counters and breaker state, in Prometheus text.
fn dust_metrics(state: &AppState) -> String {
    use actors::dust::BreakerState;
    let s = state.dust.status();
    let ws = s.breaker.workspace_id.replace(['"', '\\', '\n'], "_");
    let breaker = match s.breaker.state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    };
    let m = &s.metrics;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, v: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{workspace=\"{ws}\"}} {v}\n"
        ));
    };
    gauge(
        "dust_breaker_state",
        "Circuit breaker: 0 closed, 1 half-open, 2 open",
        "gauge",
        breaker,
    );
    gauge(
        "dust_breaker_opened_total",
        "Times the breaker opened",
        "counter",
        s.breaker.times_opened,
    );
    gauge(
        "dust_requests_total",
        "Requests sent to Dust",
        "counter",
        m.requests,
    );
    gauge(
        "dust_failures_total",
        "Dust requests that failed",
        "counter",
        m.failures,
    );
    gauge(
        "dust_retries_total",
        "Dust requests retried",
        "counter",
        m.retries,
    );
    gauge(
        "dust_rate_limited_total",
        "Dust rate-limit refusals",
        "counter",
        m.rate_limited,
    );
    gauge(
        "dust_stream_reconnects_total",
        "Answer stream reconnects",
        "counter",
        m.stream_reconnects,
    );
    gauge(
        "dust_duplicate_posts_avoided_total",
        "Message posts found landed instead of re-posted",
        "counter",
        m.duplicate_posts_avoided,
    );
    out
}
