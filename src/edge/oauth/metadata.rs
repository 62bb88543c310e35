//! Discovery documents: Protected Resource Metadata of `/mcp` (RFC 9728; MCP 2025-06-18 and
//! 2025-11-25 authorization: served at the root and at the path-specific URL) and the
//! authorization server's metadata (RFC 8414, also at the OpenID discovery URL).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::{SCOPE_MCP, SUPPORTED_SCOPES};
use crate::app::AppState;

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn protected_resource(state: web::Data<AppState>) -> HttpResponse {
    let oauth = &state.oauth;
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({
            "resource": oauth.resource(),
            "authorization_servers": [oauth.issuer()],
            "scopes_supported": [SCOPE_MCP],
            "bearer_methods_supported": ["header"],
            "resource_name": "dust-mcp",
        }))
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn authorization_server(state: web::Data<AppState>) -> HttpResponse {
    let issuer = state.oauth.issuer();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "registration_endpoint": format!("{issuer}/register"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "scopes_supported": SUPPORTED_SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "client_id_metadata_document_supported": true,
        }))
}
