//! Event streams (dust-api.md §7): the 307 hop from `/api/v1/...events` to `/api/sse/v1/...`,
//! and the SSE endpoints themselves. A connection is a `futures::stream::unfold` over the
//! message's event log (no task of its own): handshake, replay strictly after `lastEventId`,
//! live events, then `data: done` on end-of-stream or at the per-connection cap. The drop and
//! stall knobs act here.

use std::{collections::VecDeque, io, sync::Arc, time::Duration};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use bytes::Bytes;
use tokio::{sync::watch, time::Instant};

use super::{
    error::ApiError,
    event_log::{Entry, EventId, EventLog},
    files::base_url,
    knobs::{Knobs, RouteClass},
    state::{admit, bump, MessageRef, SharedState},
};

const HANDSHAKE: &[u8] = b"event: dust-handshake\ndata: {}\n\n";
const DONE: &[u8] = b"data: done\n\n";
/// Pause before an abrupt drop, so the frames already yielded reach the socket first.
const DROP_FLUSH_DELAY: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    Events,
    Done,
    End,
}

/// What kind of stream a reader serves.
#[derive(Clone, Copy)]
enum Mode {
    /// Agent message: `done` sentinel, per-connection cap.
    Message { deadline: Instant },
    /// Conversation: no `done`, closes after an idle period.
    Conversation { idle: Duration },
}

/// One SSE connection.
struct Reader {
    state: SharedState,
    log: Arc<EventLog>,
    rx: watch::Receiver<usize>,
    shutdown: watch::Receiver<bool>,
    cursor: usize,
    pending: VecDeque<Entry>,
    phase: Phase,
    mode: Mode,
    sent: u32,
    drop_after: Option<u32>,
    stall: Option<(u32, Duration)>,
}

impl Reader {
    fn end_phase(&self) -> Phase {
        match self.mode {
            Mode::Message { .. } => Phase::Done,
            Mode::Conversation { .. } => Phase::End,
        }
    }
}

type Frame = Result<Bytes, io::Error>;

async fn next_frame(mut r: Reader) -> Option<(Frame, Reader)> {
    loop {
        match r.phase {
            Phase::Handshake => {
                r.phase = Phase::Events;
                return Some((Ok(Bytes::from_static(HANDSHAKE)), r));
            }
            Phase::Done => {
                r.phase = Phase::End;
                return Some((Ok(Bytes::from_static(DONE)), r));
            }
            Phase::End => return None,
            Phase::Events => {}
        }
        if r.drop_after == Some(r.sent) {
            bump(&r.state.counters.dropped_connections);
            tokio::time::sleep(DROP_FLUSH_DELAY).await;
            r.phase = Phase::End;
            return Some((
                Err(io::Error::other("connection dropped by the simulator")),
                r,
            ));
        }
        if let Some((after, len)) = r.stall {
            if after == r.sent {
                r.stall = None;
                bump(&r.state.counters.stalled_connections);
                tokio::select! {
                    _ = tokio::time::sleep(len) => {}
                    _ = r.shutdown.changed() => { r.phase = r.end_phase(); continue; }
                }
            }
        }
        if let Some(entry) = r.pending.pop_front() {
            if entry.end_of_stream {
                r.phase = r.end_phase();
                continue;
            }
            if let Mode::Message { deadline } = r.mode {
                // Dust checks its 60 s cap between events, then ends normally with `done`.
                if Instant::now() >= deadline {
                    bump(&r.state.counters.capped_connections);
                    r.phase = Phase::Done;
                    continue;
                }
            }
            r.sent += 1;
            return Some((Ok(entry.frame), r));
        }
        let fresh = r.log.read_from(r.cursor);
        if !fresh.is_empty() {
            r.cursor += fresh.len();
            r.pending.extend(fresh);
            continue;
        }
        // A stop that happened before this stream subscribed never shows up as `changed()`.
        if *r.shutdown.borrow() {
            r.phase = r.end_phase();
            continue;
        }
        let wake_at = match r.mode {
            Mode::Message { deadline } => deadline,
            Mode::Conversation { idle } => Instant::now() + idle,
        };
        tokio::select! {
            changed = r.rx.changed() => {
                if changed.is_err() {
                    r.phase = r.end_phase();
                }
            }
            _ = tokio::time::sleep_until(wake_at) => {
                if matches!(r.mode, Mode::Message { .. }) {
                    bump(&r.state.counters.capped_connections);
                }
                r.phase = r.end_phase();
            }
            _ = r.shutdown.changed() => r.phase = r.end_phase(),
        }
    }
}

fn sse_response(reader: Reader) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header((header::CONTENT_ENCODING, "none"))
        .streaming(futures::stream::unfold(reader, next_frame))
}

/// `lastEventId` from the query; empty means absent (dust-api.md §7.1).
fn last_event_id(req: &HttpRequest) -> Result<Option<EventId>, ApiError> {
    let q = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("Invalid query parameters: {e}")))?;
    match q.get("lastEventId").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|()| ApiError::invalid("Invalid query parameters: lastEventId")),
    }
}

/// Both `/api/v1/...events` routes answer 307 to `/api/sse/v1/...`, query kept (dust-api.md §7.1).
async fn redirect(state: SharedState, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let w_id = req.match_info().get("wId").unwrap_or_default().to_string();
    admit(&state, &req, &w_id, RouteClass::All).await?;
    let path = req.path().replacen("/api/v1/", "/api/sse/v1/", 1);
    let mut location = format!("{}{path}", base_url(&req));
    if !req.query_string().is_empty() {
        location.push('?');
        location.push_str(req.query_string());
    }
    Ok(HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, location))
        .finish())
}

fn connection_faults(state: &SharedState, knobs: &Knobs) -> (Option<u32>, Option<(u32, Duration)>) {
    let drop_after = knobs
        .drop_after_events
        .filter(|_| state.knobs.drop_conns.take());
    let stall = knobs
        .stall_after_events
        .filter(|_| state.knobs.stall_conns.take())
        .map(|n| (n, Duration::from_millis(knobs.stall_ms())));
    (drop_after, stall)
}

/// `GET /api/sse/v1/w/{wId}/assistant/conversations/{cId}/messages/{mId}/events`.
async fn message_events(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id, m_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Events).await?;
    state.conversation(&c_id)?;
    let msg = match state.messages.get(&m_id).map(|m| m.value().clone()) {
        Some(MessageRef::Agent(a)) if a.conversation_id == c_id => a,
        Some(MessageRef::User(conv)) if conv == c_id => {
            return Err(ApiError::invalid(
                "Events are only available for agent messages.",
            ))
        }
        _ => return Err(ApiError::message_not_found()),
    };
    let after = last_event_id(&req)?;
    let knobs = state.knobs.snapshot();
    bump(&state.counters.stream_connections);
    if after.is_some() {
        bump(&state.counters.resumes);
    }
    let cursor = msg
        .log
        .start_index(after, Duration::from_millis(knobs.event_ttl_ms()));
    let (drop_after, stall) = connection_faults(&state, &knobs);
    let reader = Reader {
        rx: msg.log.subscribe(),
        log: msg.log.clone(),
        shutdown: state.shutdown.subscribe(),
        state: state.clone(),
        cursor,
        pending: VecDeque::new(),
        phase: Phase::Handshake,
        mode: Mode::Message {
            deadline: Instant::now() + Duration::from_millis(knobs.connection_cap_ms()),
        },
        sent: 0,
        drop_after,
        stall,
    };
    Ok(sse_response(reader))
}

/// `GET /api/sse/v1/w/{wId}/assistant/conversations/{cId}/events`.
async fn conversation_events(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Events).await?;
    let log = state.conversation(&c_id)?.lock().events.clone();
    let after = last_event_id(&req)?;
    bump(&state.counters.conversation_stream_connections);
    let ttl = Duration::from_millis(super::knobs::DEFAULT_CONVERSATION_EVENT_TTL_MS);
    let reader = Reader {
        rx: log.subscribe(),
        cursor: log.start_index(after, ttl),
        log,
        shutdown: state.shutdown.subscribe(),
        state: state.clone(),
        pending: VecDeque::new(),
        phase: Phase::Handshake,
        mode: Mode::Conversation {
            idle: Duration::from_millis(super::knobs::DEFAULT_CONVERSATION_IDLE_MS),
        },
        sent: 0,
        drop_after: None,
        stall: None,
    };
    Ok(sse_response(reader))
}

/// Registers the 307 routes (relative to `/api/v1/w/{wId}`).
pub(crate) fn redirect_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/assistant/conversations/{cId}/messages/{mId}/events",
        web::get().to(redirect),
    )
    .route(
        "/assistant/conversations/{cId}/events",
        web::get().to(redirect),
    );
}

/// Registers the SSE routes (relative to `/api/sse/v1/w/{wId}`).
pub(crate) fn sse_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/assistant/conversations/{cId}/messages/{mId}/events",
        web::get().to(message_events),
    )
    .route(
        "/assistant/conversations/{cId}/events",
        web::get().to(conversation_events),
    );
}
