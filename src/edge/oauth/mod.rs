//! dust-mcp as its own OAuth 2.1 authorization server (issuer = the public URL) and the token
//! checks of the resource server (`/mcp`). Owns the routes `/.well-known/*`, `/register`,
//! `/authorize`, `/token`, `/revoke`, their CORS, and [`OAuth`]: settings, the store handle,
//! the CSRF key and the sign-in rate limits. People sign in with their personal access token.
//! Files: `metadata` (RFC 9728, RFC 8414), `clients` (RFC 7591, client metadata documents,
//! redirect URIs), `authorize` + `page` (sign-in), `token` (RFC 6749, 7636, 7009), `limits`.

mod authorize;
mod clients;
mod error;
mod limits;
mod metadata;
mod page;
mod token;

use std::sync::OnceLock;

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, Error, HttpResponse,
};
use actors::store::oauth::OAuthHandle;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use error::OAuthError;
use limits::{Limiter, UsedNonces};

use super::rescue::Challenge;

/// The scope that opens `/mcp`.
pub const SCOPE_MCP: &str = "mcp";
/// Scopes a client may ask for; `offline_access` is accepted (refresh tokens are always issued).
pub const SUPPORTED_SCOPES: &[&str] = &[SCOPE_MCP, "offline_access"];
/// Claude's OAuth callbacks (mcp.md §3.3: both hosts, the second one is where it may move).
pub const CLAUDE_CALLBACKS: &[&str] = &[
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
];
/// DCR requests per minute per client address (Claude may register twice per connect).
const REGISTRATIONS_PER_MINUTE: u32 = 30;

/// What `[auth]` configures.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// Lazy authentication: discovery and fixtures without a token.
    pub public_discovery: bool,
    /// Extra accepted redirect URIs (exact).
    pub allowed_redirect_uris: Vec<String>,
    /// Access token lifetime, seconds.
    pub access_ttl_secs: i64,
    /// Refresh token lifetime, seconds.
    pub refresh_ttl_secs: i64,
    /// Authorization code lifetime, seconds.
    pub code_ttl_secs: i64,
    /// Seconds after a rotation during which the rotated refresh token may be presented again.
    pub refresh_reuse_grace_secs: i64,
    /// Sign-in attempts per minute per address and failed ones per client.
    pub attempts_per_minute: u32,
    /// Trust the last `X-Forwarded-For` entry as the client address.
    pub trust_forwarded_for: bool,
    /// Accept `http://127.0.0.1:*` client metadata document URLs (tests).
    pub allow_http_client_metadata: bool,
}

/// The authorization server's state, shared by every worker.
pub struct OAuth {
    settings: OAuthSettings,
    store: OAuthHandle,
    base: OnceLock<String>,
    csrf_key: Vec<u8>,
    used_csrf: UsedNonces,
    by_address: Limiter,
    by_client: Limiter,
    registrations: Limiter,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("issuer", &self.base.get())
            .finish_non_exhaustive()
    }
}

impl OAuth {
    /// The authorization server over `store`; its CSRF key is derived from `secret`.
    pub fn new(settings: OAuthSettings, store: OAuthHandle, secret: &[u8]) -> OAuth {
        let mut h = Sha256::new();
        h.update(b"dust-mcp oauth sign-in form v1\0");
        h.update(secret);
        let per_minute = settings.attempts_per_minute.max(1);
        OAuth {
            store,
            base: OnceLock::new(),
            csrf_key: h.finalize().to_vec(),
            used_csrf: UsedNonces::default(),
            by_address: Limiter::per_minute(per_minute),
            by_client: Limiter::per_minute(per_minute),
            registrations: Limiter::per_minute(REGISTRATIONS_PER_MINUTE),
            settings,
        }
    }

    /// Sets the public base URL once the port is known (first call wins).
    pub fn set_public_base(&self, base: &str) {
        let _ = self.base.set(base.trim_end_matches('/').to_owned());
    }

    /// The issuer: the public base URL without a trailing slash.
    pub fn issuer(&self) -> &str {
        self.base.get().map(String::as_str).unwrap_or("")
    }

    /// The canonical resource URI (RFC 8707), the audience of every token we issue.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.issuer())
    }

    /// Where the protected resource metadata of `/mcp` is.
    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.issuer())
    }

    /// The challenge of a 401 or 403 from `/mcp`.
    pub fn challenge(&self) -> Challenge {
        Challenge {
            resource_metadata: Some(self.resource_metadata_url()),
            scope: SCOPE_MCP,
        }
    }

    /// Whether lazy authentication is on.
    pub fn public_discovery(&self) -> bool {
        self.settings.public_discovery
    }

    /// The grant behind an access token presented to `/mcp`: (user name, scopes), or `None`
    /// when it is unknown, expired, revoked or meant for another audience.
    pub async fn check_access(&self, token: &str) -> Result<Option<(String, String)>, OAuthError> {
        let hash = sha256_hex(token);
        let record = self.store.run(move |s| s.token(&hash)).await?;
        let now = actors::store::oauth::unix_now();
        Ok(record
            .filter(|r| {
                r.kind == actors::store::oauth::TokenKind::Access
                    && !r.revoked
                    && r.expires_at > now
                    && r.family.resource == self.resource()
            })
            .map(|r| (r.family.user, r.family.scope)))
    }
}

/// Registers the OAuth routes (inside the app's guarded scope).
pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route(
            "/.well-known/oauth-protected-resource",
            web::get().to(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            web::get().to(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            web::get().to(metadata::authorization_server),
        )
        .route("/register", web::post().to(clients::register))
        .route("/authorize", web::get().to(authorize::show))
        .route("/authorize", web::post().to(authorize::decide))
        .route("/token", web::post().to(token::token))
        .route("/revoke", web::post().to(token::revoke))
}

/// Paths called cross-origin by browser-based clients: CORS headers, preflights answered, and
/// no `Origin` check (they serve public metadata or authenticate the client themselves).
pub fn is_cross_origin_path(path: &str) -> bool {
    path.starts_with("/.well-known/") || matches!(path, "/register" | "/token" | "/revoke")
}

/// CORS for [`is_cross_origin_path`] routes: `OPTIONS` answered here, headers on every answer.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if !is_cross_origin_path(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    if req.method() == Method::OPTIONS {
        let mut res = HttpResponse::NoContent();
        add_cors(&mut res);
        return Ok(req.into_response(res.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    for (name, value) in CORS_HEADERS {
        h.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    Ok(res.map_into_left_body())
}

const CORS_HEADERS: [(&str, &str); 4] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "GET, POST, OPTIONS"),
    (
        "access-control-allow-headers",
        "authorization, content-type, mcp-protocol-version",
    ),
    ("access-control-max-age", "86400"),
];

fn add_cors(res: &mut actix_web::HttpResponseBuilder) {
    for h in CORS_HEADERS {
        res.insert_header(h);
    }
}

/// SHA-256 of a secret as lowercase hex: how codes, tokens and client secrets are stored.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh unguessable secret: `prefix` + 32 random bytes as hex.
fn fresh_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The client's address for rate limits: the peer, or the last `X-Forwarded-For` hop when the
/// operator says a proxy of theirs sets it.
fn client_address(req: &actix_web::HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        if let Some(last) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return last.to_owned();
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_origin_paths_are_the_metadata_and_client_endpoints() {
        assert!(is_cross_origin_path(
            "/.well-known/oauth-protected-resource/mcp"
        ));
        assert!(is_cross_origin_path("/token"));
        assert!(!is_cross_origin_path("/mcp"));
        assert!(!is_cross_origin_path("/authorize"));
    }
}
