//! The one place where edge errors become an HTTP status and a JSON-RPC error body. Anything not
//! recognised is a 500 with -32603 and a `warn!` carrying the request id.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use actors::{
    mcp::{jsonrpc, jsonrpc::DecodeError, model::ErrorData},
    mcp_session::{SessionError, StreamError},
    sessions::LookupError,
};

/// What a 401 or 403 tells the client about getting a token (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Clone, Default)]
pub struct Challenge {
    /// The protected resource metadata URL of `/mcp`.
    pub resource_metadata: Option<String>,
    /// The scope the request needs.
    pub scope: &'static str,
}

impl Challenge {
    /// The `WWW-Authenticate` value, with `error` when a token was presented.
    pub fn header(&self, error: Option<&str>) -> String {
        let mut parts = Vec::new();
        if let Some(e) = error {
            parts.push(format!("error=\"{e}\""));
        }
        if let Some(url) = &self.resource_metadata {
            parts.push(format!("resource_metadata=\"{url}\""));
        }
        if !self.scope.is_empty() {
            parts.push(format!("scope=\"{}\"", self.scope));
        }
        if parts.is_empty() {
            return r#"Bearer realm="dust-mcp""#.to_owned();
        }
        format!("Bearer {}", parts.join(", "))
    }
}

/// Why the edge refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("Host {0:?} is not served here; add it to http.allowed_hosts (or set public_url)")]
    BadHost(String),
    #[error("Origin {0:?} is not allowed; add it to http.allowed_origins")]
    BadOrigin(String),
    #[error("authentication required: send Authorization: Bearer <token> (connect with OAuth, or use a token from `dust-mcp token new`)")]
    Unauthorized(Challenge),
    #[error("the bearer token is not valid for this server (unknown, expired, revoked, or for another resource)")]
    BadToken(Challenge),
    #[error("this request touches your data: connect (sign in) first, then retry")]
    SignInRequired(Challenge),
    #[error("the bearer token lacks the scope this request needs; authorize again")]
    InsufficientScope(Challenge),
    #[error("admin routes need Authorization: Bearer <admin token>; set admin_token_sha256 in the config")]
    AdminUnauthorized,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("the Accept header must allow application/json or text/event-stream")]
    NotAcceptable,
    #[error("GET /mcp opens an SSE stream: the Accept header must allow text/event-stream")]
    NotAcceptableSse,
    #[error(
        "unsupported MCP-Protocol-Version {0:?}; supported: 2025-11-25, 2025-06-18, 2025-03-26"
    )]
    UnsupportedVersion(String),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error(
        "JSON-RPC batches are only part of protocol version 2025-03-26; send one message per POST"
    )]
    BatchNotAllowed,
    #[error("initialize must be sent alone, not in a batch")]
    InitializeInBatch,
    #[error("{0}")]
    Lookup(#[from] LookupError),
    #[error("DELETE /mcp needs the Mcp-Session-Id header of the session to end")]
    MissingSessionId,
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("the session closed while the request was being served; start over with initialize")]
    SessionClosed,
    #[error("the request body is too large (limit {0} bytes)")]
    TooLarge(usize),
    #[error("{0}")]
    JsonRpc(ErrorData),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<SessionError> for EdgeError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Closed => EdgeError::SessionClosed,
            SessionError::Stream(s) => EdgeError::Stream(s),
        }
    }
}

impl EdgeError {
    fn error_data(&self) -> ErrorData {
        match self {
            EdgeError::Decode(d) => d.to_error_data(),
            EdgeError::JsonRpc(e) => e.clone(),
            EdgeError::Internal(_) => ErrorData::internal_error(self.to_string(), None),
            EdgeError::UnsupportedVersion(_)
            | EdgeError::BatchNotAllowed
            | EdgeError::InitializeInBatch => ErrorData::invalid_request(self.to_string(), None),
            // -32000: the implementation-defined server error range, as the SDKs use for
            // transport-level refusals.
            _ => ErrorData::new(
                actors::mcp::model::ErrorCode(-32000),
                self.to_string(),
                None,
            ),
        }
    }

    /// A short reason label for the `http_refused_total` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            EdgeError::BadHost(_) => "bad_host",
            EdgeError::BadOrigin(_) => "bad_origin",
            EdgeError::Unauthorized(_)
            | EdgeError::BadToken(_)
            | EdgeError::SignInRequired(_)
            | EdgeError::InsufficientScope(_)
            | EdgeError::AdminUnauthorized => "unauthorized",
            EdgeError::UnsupportedMediaType => "media_type",
            EdgeError::NotAcceptable | EdgeError::NotAcceptableSse => "not_acceptable",
            EdgeError::UnsupportedVersion(_) => "version",
            EdgeError::Decode(_) | EdgeError::BatchNotAllowed | EdgeError::InitializeInBatch => {
                "bad_body"
            }
            EdgeError::Lookup(LookupError::Malformed) | EdgeError::MissingSessionId => {
                "bad_session"
            }
            EdgeError::Lookup(LookupError::NotFound) | EdgeError::SessionClosed => {
                "session_not_found"
            }
            EdgeError::Stream(StreamError::Conflict) => "conflict",
            EdgeError::Stream(_) => "bad_event_id",
            EdgeError::TooLarge(_) => "too_large",
            EdgeError::JsonRpc(_) => "jsonrpc",
            EdgeError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for EdgeError {
    fn status_code(&self) -> StatusCode {
        match self {
            // The Python SDK answers a bad Host with 421 Misdirected Request: the request reached
            // a server that does not serve that name.
            EdgeError::BadHost(_) => StatusCode::MISDIRECTED_REQUEST,
            EdgeError::BadOrigin(_) => StatusCode::FORBIDDEN,
            EdgeError::Unauthorized(_)
            | EdgeError::BadToken(_)
            | EdgeError::SignInRequired(_)
            | EdgeError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            EdgeError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            EdgeError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EdgeError::NotAcceptable | EdgeError::NotAcceptableSse => StatusCode::NOT_ACCEPTABLE,
            EdgeError::Lookup(LookupError::NotFound) | EdgeError::SessionClosed => {
                StatusCode::NOT_FOUND
            }
            EdgeError::Stream(StreamError::Conflict) => StatusCode::CONFLICT,
            EdgeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            EdgeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            EdgeError::JsonRpc(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let EdgeError::Internal(detail) = self {
            tracing::warn!(error = %detail, "internal error at the edge");
        }
        let mut res = HttpResponse::build(self.status_code());
        // MCP 2025-11-25 authorization: every 401 names the resource metadata so clients can
        // discover the authorization server; a 403 asks for the missing scope.
        match self {
            EdgeError::Unauthorized(c) => {
                res.insert_header(("WWW-Authenticate", c.header(None)));
            }
            // Claude's lazy authentication: `invalid_token` makes it show its Connect card.
            EdgeError::BadToken(c) | EdgeError::SignInRequired(c) => {
                res.insert_header(("WWW-Authenticate", c.header(Some("invalid_token"))));
            }
            EdgeError::InsufficientScope(c) => {
                res.insert_header(("WWW-Authenticate", c.header(Some("insufficient_scope"))));
            }
            _ => {}
        }
        if matches!(self, EdgeError::AdminUnauthorized) {
            res.insert_header(("WWW-Authenticate", r#"Bearer realm="dust-mcp-admin""#));
        }
        res.json(jsonrpc::error_response(None, &self.error_data()))
    }
}
