//! `OAuthError`: refusals of `/register`, `/token` and `/revoke` as RFC 6749 §5.2 / RFC 7591
//! §3.2.2 JSON (`error`, `error_description`), never cached. Descriptions never hold a secret.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use actors::store::StoreError;
use serde_json::json;

/// Why an authorization-server endpoint refused a request.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: the client is unknown (deleted: Claude re-registers on this) or its secret is wrong.
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 8707: the `resource` is not this server's MCP endpoint.
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error("too many requests from this address; try again in a minute")]
    TooManyRequests,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl OAuthError {
    /// The RFC `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            OAuthError::InvalidClientMetadata(_) => "invalid_client_metadata",
            OAuthError::TooManyRequests => "too_many_requests",
            OAuthError::Store(_) => "server_error",
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let OAuthError::Store(e) = self {
            tracing::warn!(error = %e, "OAuth storage failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header(("Cache-Control", "no-store"));
        if matches!(self, OAuthError::InvalidClient(_)) {
            // RFC 6749 §5.2: a 401 for client authentication names the scheme.
            res.insert_header(("WWW-Authenticate", r#"Basic realm="dust-mcp""#));
        }
        if matches!(self, OAuthError::TooManyRequests) {
            res.insert_header(("Retry-After", "60"));
        }
        let description = match self {
            OAuthError::Store(_) => "the server could not reach its storage".to_owned(),
            e => e.to_string(),
        };
        res.json(json!({"error": self.code(), "error_description": description}))
    }
}
