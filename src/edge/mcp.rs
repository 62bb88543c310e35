//! `/mcp`: MCP's Streamable HTTP endpoint (MCP 2025-11-25, basic/transports).
//!
//! POST, in this order: `Host`/`Origin` (middleware, see `app.rs`), the principal (extractor),
//! `Content-Type`, `Accept`, `MCP-Protocol-Version`, the JSON-RPC body, the session (signed id,
//! or the principal's anonymous session when the header is absent), then the session serves the
//! messages and the answer is 202, JSON, or an SSE stream. GET opens the standalone stream or
//! resumes one (`Last-Event-ID`); DELETE ends a session.

use actix_web::{
    http::header::{ACCEPT, CONTENT_TYPE},
    web, HttpRequest, HttpResponse,
};
use actors::{
    mcp::{
        jsonrpc::{self, Body, Incoming},
        version::Version,
    },
    mcp_session::{HandlePost, PostReply, ReplyMode},
    principal::Principal,
    sessions::SessionHandle,
};
use serde_json::Value;

use super::{
    auth::Caller,
    headers,
    rescue::EdgeError,
    sse::{sse_response, SESSION_HEADER},
};
use crate::app::AppState;

const VERSION_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Methods whose answer may be preceded by notifications or questions to the client; they get an
/// SSE stream when the client accepts one.
fn may_stream(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// POST /mcp.
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, EdgeError> {
    if !headers::is_json_content_type(header(&req, CONTENT_TYPE.as_str())) {
        return Err(EdgeError::UnsupportedMediaType);
    }
    let accept = headers::acceptable(header(&req, ACCEPT.as_str()));
    if !accept.json && !accept.sse {
        return Err(EdgeError::NotAcceptable);
    }
    let body = read_body(payload, state.max_body_bytes).await?;
    let body = Body::decode(&body)?;
    let is_batch = matches!(body, Body::Batch(_));
    let messages = body.into_messages();
    // Lazy authentication: an anonymous caller gets 401 for anything touching user data.
    caller.require_for(&messages)?;
    let principal = caller.principal;
    let first_method = match messages.first() {
        Some(Incoming::Request(r)) => Some(r.method.as_str()),
        _ => None,
    };
    // `initialize` and the 2026-07-28 `server/discover` probe may carry any version header
    // (claude.ai sends one on initialize; modern clients send 2026-07-28 on discover).
    let handshake = matches!(first_method, Some("initialize" | "server/discover"));
    let header_version = match headers::protocol_version(header(&req, VERSION_HEADER)) {
        Ok(v) => v,
        Err(_) if handshake => None,
        Err(v) => return Err(EdgeError::UnsupportedVersion(v)),
    };

    let is_initialize = messages
        .iter()
        .any(|m| matches!(m, Incoming::Request(r) if r.method == "initialize"));
    let (session, new_session_header) = if is_initialize {
        if is_batch {
            return Err(EdgeError::InitializeInBatch);
        }
        let Some(Incoming::Request(r)) = messages.first() else {
            return Err(EdgeError::Internal("initialize without a request".into()));
        };
        match state.sessions.create(&principal, &r.params) {
            Ok((handle, id)) => (handle, Some(id)),
            // Malformed initialize params: a JSON-RPC error with the request's id.
            Err(e) => {
                return Ok(HttpResponse::Ok().json(jsonrpc::error_response(Some(&r.id), &e)));
            }
        }
    } else {
        (find_session(&req, &state, &principal)?, None)
    };

    let version = if session.is_anonymous() {
        header_version.unwrap_or(Version::ASSUMED_WITHOUT_HEADER)
    } else {
        session.claims().version
    };
    if is_batch && !version.allows_batches() {
        return Err(EdgeError::BatchNotAllowed);
    }

    let wants_stream = messages.iter().any(|m| match m {
        Incoming::Request(r) => state.sse_for_all || may_stream(&r.method),
        _ => false,
    });
    let mode = if accept.sse && (wants_stream || !accept.json) {
        ReplyMode::Sse
    } else {
        ReplyMode::Json
    };
    let reply = session
        .post(HandlePost {
            principal,
            messages,
            mode,
            version: Some(version),
        })
        .await?;

    let mut builder = match reply {
        PostReply::Accepted => HttpResponse::Accepted(),
        _ => HttpResponse::Ok(),
    };
    if let Some(id) = &new_session_header {
        builder.insert_header((SESSION_HEADER, id.as_str()));
    }
    Ok(match reply {
        PostReply::Accepted => builder.finish(),
        PostReply::Sse(_, rx) => sse_response(builder, rx),
        PostReply::Json(rx) => {
            let mut responses = rx.await.map_err(|_| EdgeError::SessionClosed)?;
            if responses.is_empty() {
                // Every request was cancelled: MCP says a cancelled request gets no response,
                // and a `null` body is not a JSON-RPC message.
                return Ok(builder
                    .status(actix_web::http::StatusCode::ACCEPTED)
                    .finish());
            }
            let body = if is_batch {
                Value::Array(responses)
            } else {
                responses.pop().unwrap_or(Value::Null)
            };
            builder.json(body)
        }
    })
}

/// Reads the body up to `limit` bytes (actix's own limit errors are plain text; ours are
/// JSON-RPC like every other refusal).
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, EdgeError> {
    use futures::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| EdgeError::Internal(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(EdgeError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn find_session(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
) -> Result<SessionHandle, EdgeError> {
    match header(req, SESSION_HEADER) {
        Some(id) => Ok(state.sessions.resolve(principal, id)?),
        // claude.ai does not always echo Mcp-Session-Id: serve such requests from the
        // principal's anonymous session instead of refusing them (mcp.md §6).
        None => Ok(state.sessions.anonymous(principal)),
    }
}

/// GET /mcp: the standalone server-to-client stream, or a resume with `Last-Event-ID`.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller { principal, .. }: Caller,
) -> Result<HttpResponse, EdgeError> {
    if !headers::acceptable(header(&req, ACCEPT.as_str())).sse {
        return Err(EdgeError::NotAcceptableSse);
    }
    if let Err(v) = headers::protocol_version(header(&req, VERSION_HEADER)) {
        return Err(EdgeError::UnsupportedVersion(v));
    }
    let session = find_session(&req, &state, &principal)?;
    let last_event_id = header(&req, LAST_EVENT_ID).map(str::to_owned);
    let rx = session.open_stream(last_event_id).await?;
    Ok(sse_response(HttpResponse::Ok(), rx))
}

/// DELETE /mcp: ends the session; its id answers 404 from then on.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller { principal, .. }: Caller,
) -> Result<HttpResponse, EdgeError> {
    let id = header(&req, SESSION_HEADER).ok_or(EdgeError::MissingSessionId)?;
    state.sessions.delete(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
