//! SSE responses: session frames out to the client, with the headers proxies need to leave a
//! stream alone (`Cache-Control: no-cache, no-transform`, `X-Accel-Buffering: no`, identity
//! encoding so no compression layer buffers it; mcp.md §6). Framing itself is done by the
//! session (`mcp_session/streams.rs`), which also writes the keep-alive comments.

use std::convert::Infallible;

use actix_web::{
    http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_ENCODING},
    HttpResponse, HttpResponseBuilder,
};
use actors::mcp_session::SseReceiver;
use futures::StreamExt;

/// The header carrying the session id.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Builds a streaming `text/event-stream` response.
pub fn sse_response(mut builder: HttpResponseBuilder, rx: SseReceiver) -> HttpResponse {
    builder
        .content_type("text/event-stream")
        .insert_header((CACHE_CONTROL, "no-cache, no-transform"))
        .insert_header((
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        ))
        .insert_header((CONTENT_ENCODING, "identity"))
        .streaming(rx.map(Ok::<_, Infallible>))
}
