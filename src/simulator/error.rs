//! Dust's wire errors as the simulator sends them: `{"error":{"type","message"}}` with the HTTP
//! status (dust-api.md §2.1), plus the simulator's own start-up error. Handlers return
//! `Result<_, ApiError>` and actix-web renders it through `ResponseError`.

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use serde_json::json;

/// A Dust API error response.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {kind}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `error.type` string.
    pub kind: &'static str,
    /// The `error.message` string.
    pub message: String,
    /// `Retry-After` header in seconds, if any.
    pub retry_after: Option<u64>,
    /// Send a plain-text body instead of the JSON envelope (an injected load-balancer 502).
    pub plain: bool,
}

impl ApiError {
    /// An error with status, type and message.
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind,
            message: message.into(),
            retry_after: None,
            plain: false,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    /// 400 for a body that does not match the schema, in the validator's words.
    pub fn invalid_body(details: impl std::fmt::Display) -> Self {
        Self::invalid(format!("Invalid request body: {details}"))
    }

    /// 404 `conversation_not_found`.
    pub fn conversation_not_found() -> Self {
        Self::new(404, "conversation_not_found", "Conversation not found.")
    }

    /// 404 `message_not_found`.
    pub fn message_not_found() -> Self {
        Self::new(
            404,
            "message_not_found",
            "The message you're trying to access was not found.",
        )
    }

    /// 404 `file_not_found`.
    pub fn file_not_found() -> Self {
        Self::new(404, "file_not_found", "File not found.")
    }

    /// 405 for a known path with the wrong method.
    pub fn method_not_supported() -> Self {
        Self::new(
            405,
            "method_not_supported_error",
            "The method passed is not supported.",
        )
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.plain {
            return resp
                .content_type("text/plain; charset=utf-8")
                .body(self.message.clone());
        }
        resp.json(json!({"error": {"type": self.kind, "message": self.message}}))
    }
}
