//! The application: shared state, routes and the middleware stack. Tests build the same app
//! through `server::start`, so what they exercise is what runs.

use std::sync::Arc;

use actix::{clock::Instant, Addr};
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderValue, HOST, ORIGIN},
    middleware::{from_fn, Next},
    web, Error, ResponseError,
};
use actors::{metrics::Metrics, session_registry::SessionRegistry, sessions::Sessions};
use tracing::Instrument;

use crate::edge::{admin, auth::Auth, headers, mcp, oauth, rescue::EdgeError, upload};

/// State shared by every worker.
pub struct AppState {
    /// The session table.
    pub sessions: Arc<Sessions>,
    /// The registry actor.
    pub registry: Addr<SessionRegistry>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Token checks.
    pub auth: Auth,
    /// The OAuth authorization server and access-token checks.
    pub oauth: Arc<oauth::OAuth>,
    /// Accepted `Host` names.
    pub allowed_hosts: Vec<String>,
    /// Extra accepted `Origin`s.
    pub allowed_origins: Vec<String>,
    /// Answer every request with SSE when accepted.
    pub sse_for_all: bool,
    /// Running without authentication.
    pub no_auth: bool,
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// Process start, for uptime.
    pub started: Instant,
    /// The Dust client's shared state (breaker, counters) for status and metrics.
    pub dust: Arc<actors::dust::DustShared>,
    /// Whether Dust is the built-in demo workspace.
    pub dust_demo: bool,
    /// Health uploads: parser pool, store, upload links.
    pub health: Arc<actors::tools::health::HealthService>,
    /// Largest health upload body, in bytes.
    pub max_upload_bytes: u64,
}

/// Routes. Middleware runs in the reverse of registration order: the last `.wrap()` is the
/// outermost, so a request meets `request_id` first, then `guard_host_origin`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let scope = oauth::routes(web::scope(""))
            // Inner: refuse DNS-rebinding before anything reads the body.
            .wrap(from_fn(guard_host_origin))
            // Middle: CORS and preflights of the OAuth metadata and client endpoints.
            .wrap(from_fn(oauth::cors))
            // Outer: every request gets an id and a span, even refused ones.
            .wrap(from_fn(request_id));
        cfg.app_data(state).service(
            scope
                .route("/mcp", web::post().to(mcp::post))
                .route("/mcp", web::get().to(mcp::get))
                .route("/mcp", web::delete().to(mcp::delete))
                .route("/healthz", web::get().to(admin::healthz))
                .route("/readyz", web::get().to(admin::readyz))
                .route("/admin/status", web::get().to(admin::status))
                .route("/metrics", web::get().to(admin::metrics))
                .route("/v1/health/files", web::post().to(upload::upload))
                .route("/v1/health/files", web::get().to(upload::list))
                .route("/v1/health/files/{id}", web::get().to(upload::get))
                .route("/v1/health/files/{id}", web::delete().to(upload::delete))
                .route(
                    "/v1/health/upload/{token}",
                    web::post().to(upload::upload_with_link),
                )
                .route("/upload", web::get().to(upload::page)),
        );
    }
}

const REQUEST_ID: &str = "x-request-id";

/// Tags each request with an id (the caller's `X-Request-Id` if it is short and printable),
/// runs it inside a span carrying that id, and echoes the id on the response.
async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span =
        tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path());
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(
            REQUEST_ID
                .parse()
                .map_err(|_| EdgeError::Internal("header name".into()))?,
            v,
        );
    }
    let status = res.status();
    span.in_scope(|| tracing::debug!(status = status.as_u16(), "served"));
    Ok(res)
}

/// `Host` allow-list and `Origin` check (MCP 2025-11-25: a present, invalid Origin is 403).
async fn guard_host_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, Error> {
    let refusal = match req.app_data::<web::Data<AppState>>() {
        None => Some(EdgeError::Internal("application state missing".into())),
        Some(state) => {
            let host = req.headers().get(HOST).and_then(|v| v.to_str().ok());
            let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok());
            if !headers::host_allowed(host, &state.allowed_hosts) {
                Some(EdgeError::BadHost(host.unwrap_or_default().to_owned()))
            } else if !oauth::is_cross_origin_path(req.path())
                && !headers::origin_allowed(origin, &state.allowed_hosts, &state.allowed_origins)
            {
                Some(EdgeError::BadOrigin(origin.unwrap_or_default().to_owned()))
            } else {
                None
            }
        }
    };
    match refusal {
        Some(e) => {
            if let Some(state) = req.app_data::<web::Data<AppState>>() {
                state.metrics.refused.with_label_values(&[e.reason()]).inc();
            }
            tracing::info!(error = %e, "refused");
            Ok(req.into_response(e.error_response()).map_into_right_body())
        }
        None => Ok(next.call(req).await?.map_into_left_body()),
    }
}
