//! A session's SSE streams and its bounded event buffer (MCP 2025-11-25, Streamable HTTP,
//! "Resumability and Redelivery").
//!
//! Every event gets the id `<stream>-<seq>`, so the id names its stream; `GET` with
//! `Last-Event-ID` replays that stream's events after `seq` and re-attaches the stream if it is
//! still running. Stream 0 is the standalone GET stream. A dropped connection only detaches the
//! live sink: the request keeps running, its events keep landing in the buffer, and a
//! reconnecting client loses nothing that is still within the buffer's size and age bounds.

use std::collections::{HashMap, VecDeque};

use actix::clock::Instant;
use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use serde_json::Value;

/// Identifies a stream within its session.
pub type StreamId = u64;

/// The standalone stream opened by `GET` without `Last-Event-ID`.
pub const STANDALONE: StreamId = 0;

/// Frames a live connection may lag behind before it is cut (the client then resumes).
const SINK_CAPACITY: usize = 256;

/// The comment line written to idle streams so proxies keep them open.
pub const KEEP_ALIVE_FRAME: &[u8] = b": keep-alive\n\n";

/// Bounds of the buffer.
#[derive(Debug, Clone, Copy)]
pub struct BufferLimits {
    /// Most events kept per session.
    pub max_events: usize,
    /// Oldest event kept.
    pub max_age: std::time::Duration,
    /// `retry:` advertised in priming events, in milliseconds.
    pub retry_ms: u64,
}

/// What a live SSE connection receives.
pub type SseReceiver = mpsc::Receiver<Bytes>;

/// Why a `GET` could not be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("this session already has an open GET stream; only one is allowed")]
    Conflict,
    #[error("Last-Event-ID {0:?} is not of the form <stream>-<seq> issued by this server")]
    BadEventId(String),
    #[error("stream {0} is no longer held by this session (its events expired or the session was reset); retry the request")]
    UnknownStream(StreamId),
}

struct Event {
    stream: StreamId,
    seq: u64,
    at: Instant,
    frame: Bytes,
}

enum Delivery {
    /// Events go out as SSE frames, to `live` if a connection is attached.
    Sse { live: Option<mpsc::Sender<Bytes>> },
    /// Plain JSON: notifications cannot be delivered; responses are collected.
    Json {
        responses: Vec<Value>,
        done: Option<oneshot::Sender<Vec<Value>>>,
    },
}

struct Stream {
    next_seq: u64,
    open_requests: usize,
    finished: bool,
    finished_at: Option<Instant>,
    /// The final frame went to a live connection: a resume is then unlikely, so the stream's
    /// events are kept only for [`DELIVERED_GRACE`], not the whole buffer age.
    delivered: bool,
    delivery: Delivery,
}

/// How long a stream whose response reached a live connection stays resumable. A client that
/// got everything does not resume; this covers a connection that died with the last frames
/// still in flight. Without it, a busy session's buffer would fill with answered calls.
pub const DELIVERED_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Least time between two expiry passes started by finishing streams. The heartbeat alone
/// (every keep-alive interval, 15 s) let a busy session's answered calls pile up to the event
/// cap: 1,000 sessions streaming answers grew the server to 250 MiB.
const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One SSE event carrying `message`: the JSON is written straight into the frame (no
/// intermediate string), once per event however many connections replay it.
fn sse_frame(stream: StreamId, seq: u64, message: &Value) -> Bytes {
    use std::io::Write as _;
    let mut frame = Vec::with_capacity(160);
    // Writing to a Vec cannot fail, and a `Value` always serializes.
    let _ = write!(frame, "id: {stream}-{seq}\nevent: message\ndata: ");
    let _ = serde_json::to_writer(&mut frame, message);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// All streams of one session.
pub struct Streams {
    limits: BufferLimits,
    buffer: VecDeque<Event>,
    streams: HashMap<StreamId, Stream>,
    next_id: StreamId,
    /// The last expiry pass.
    expired_at: Instant,
}

impl Streams {
    /// No streams yet; the standalone stream exists from the start so server-initiated
    /// messages sent before the client opens it are buffered.
    pub fn new(limits: BufferLimits) -> Streams {
        let mut streams = HashMap::new();
        streams.insert(
            STANDALONE,
            Stream {
                next_seq: 1,
                open_requests: 0,
                finished: false,
                finished_at: None,
                delivered: false,
                delivery: Delivery::Sse { live: None },
            },
        );
        Streams {
            limits,
            buffer: VecDeque::new(),
            streams,
            next_id: 1,
            expired_at: Instant::now(),
        }
    }

    /// Opens a POST's SSE stream for `requests` requests; sends the priming event if asked.
    pub fn open_sse(&mut self, requests: usize, prime: bool) -> (StreamId, SseReceiver) {
        let (tx, rx) = mpsc::channel(SINK_CAPACITY);
        let id = self.next_id;
        self.next_id += 1;
        self.streams.insert(
            id,
            Stream {
                next_seq: 1,
                open_requests: requests,
                finished: false,
                finished_at: None,
                delivered: false,
                delivery: Delivery::Sse { live: Some(tx) },
            },
        );
        if prime {
            let frame = format!("id: {id}-0\nretry: {}\ndata: \n\n", self.limits.retry_ms);
            self.send_live(id, Bytes::from(frame));
        }
        (id, rx)
    }

    /// Opens a POST answered with plain JSON once all `requests` have responses.
    pub fn open_json(&mut self, requests: usize) -> (StreamId, oneshot::Receiver<Vec<Value>>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        self.streams.insert(
            id,
            Stream {
                next_seq: 1,
                open_requests: requests,
                finished: false,
                finished_at: None,
                delivered: false,
                delivery: Delivery::Json {
                    responses: Vec::new(),
                    done: Some(tx),
                },
            },
        );
        (id, rx)
    }

    /// Whether `stream` delivers SSE (so notifications and client requests can reach the client).
    pub fn is_sse(&self, stream: StreamId) -> bool {
        matches!(
            self.streams.get(&stream).map(|s| &s.delivery),
            Some(Delivery::Sse { .. })
        )
    }

    /// Whether a connection is attached to `stream`.
    pub fn is_live(&self, stream: StreamId) -> bool {
        matches!(
            self.streams.get(&stream).map(|s| &s.delivery),
            Some(Delivery::Sse { live: Some(_) })
        )
    }

    /// Delivers a notification or a server-to-client request on `stream`.
    pub fn push(&mut self, stream: StreamId, message: &Value) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if s.finished || !matches!(s.delivery, Delivery::Sse { .. }) {
            return;
        }
        let seq = s.next_seq;
        s.next_seq += 1;
        let frame = sse_frame(stream, seq, message);
        self.buffer.push_back(Event {
            stream,
            seq,
            at: Instant::now(),
            frame: frame.clone(),
        });
        self.send_live(stream, frame);
        self.trim();
    }

    /// Delivers the response of one of `stream`'s requests; closes the stream after the last.
    pub fn respond(&mut self, stream: StreamId, response: Value) {
        let is_json = match self.streams.get_mut(&stream) {
            None => return,
            Some(s) => match &mut s.delivery {
                Delivery::Json { responses, .. } => {
                    responses.push(response.clone());
                    true
                }
                Delivery::Sse { .. } => false,
            },
        };
        if !is_json {
            self.push(stream, &response);
        }
        self.request_done(stream);
    }

    /// Ends one of `stream`'s requests without a response (it was cancelled).
    pub fn request_done(&mut self, stream: StreamId) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        s.open_requests = s.open_requests.saturating_sub(1);
        if s.open_requests > 0 || stream == STANDALONE {
            return;
        }
        s.finished = true;
        s.finished_at = Some(Instant::now());
        s.delivered = match &s.delivery {
            Delivery::Sse { live } => live.as_ref().is_some_and(|tx| !tx.is_closed()),
            Delivery::Json { .. } => true,
        };
        match &mut s.delivery {
            // Dropping the sender ends the HTTP response once its frames are written.
            Delivery::Sse { live } => *live = None,
            Delivery::Json { responses, done } => {
                if let Some(done) = done.take() {
                    let _ = done.send(std::mem::take(responses));
                }
            }
        }
        // A finished stream is what becomes expirable: look at most once per EXPIRE_EVERY.
        if self.expired_at.elapsed() >= EXPIRE_EVERY {
            self.expire();
        }
    }

    /// Attaches a connection to the standalone stream (`GET` without `Last-Event-ID`).
    pub fn attach_standalone(&mut self) -> Result<SseReceiver, StreamError> {
        let Some(s) = self.streams.get_mut(&STANDALONE) else {
            return Err(StreamError::UnknownStream(STANDALONE));
        };
        if let Delivery::Sse { live: Some(tx) } = &s.delivery {
            if !tx.is_closed() {
                return Err(StreamError::Conflict);
            }
        }
        let (tx, rx) = mpsc::channel(SINK_CAPACITY);
        s.delivery = Delivery::Sse { live: Some(tx) };
        Ok(rx)
    }

    /// Replays the events after `last_event_id` on a new connection, attaching it if the stream
    /// is still running. Returns the connection and how many events were replayed.
    pub fn resume(&mut self, last_event_id: &str) -> Result<(SseReceiver, usize), StreamError> {
        let (stream, seq) = parse_event_id(last_event_id)
            .ok_or_else(|| StreamError::BadEventId(last_event_id.to_owned()))?;
        let Some(s) = self.streams.get(&stream) else {
            return Err(StreamError::UnknownStream(stream));
        };
        if !matches!(s.delivery, Delivery::Sse { .. }) {
            return Err(StreamError::UnknownStream(stream));
        }
        let finished = s.finished;
        let last_issued = s.next_seq.saturating_sub(1);
        let missed: Vec<&Event> = self
            .buffer
            .iter()
            .filter(|e| e.stream == stream && e.seq > seq)
            .collect();
        // The buffer drops its oldest events first, so what it still holds of a stream is a
        // suffix. If that suffix does not start right after `seq`, replaying it would hand the
        // client a silent gap (possibly without the result): refuse, so the client retries.
        if last_issued > seq && missed.first().map(|e| e.seq) != Some(seq + 1) {
            return Err(StreamError::UnknownStream(stream));
        }
        // Replay may exceed the sink's capacity: size the channel to fit it.
        let missed: Vec<Bytes> = missed.into_iter().map(|e| e.frame.clone()).collect();
        let replayed = missed.len();
        let (mut tx, rx) = mpsc::channel(SINK_CAPACITY.max(replayed + 1));
        for frame in missed {
            let _ = tx.try_send(frame);
        }
        if !finished {
            if let Some(s) = self.streams.get_mut(&stream) {
                s.delivery = Delivery::Sse { live: Some(tx) };
            }
        }
        Ok((rx, replayed))
    }

    /// Writes a keep-alive comment to every live connection; detaches the ones that are gone.
    /// Returns the number still attached.
    pub fn keep_alive(&mut self) -> usize {
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in &ids {
            self.send_live(*id, Bytes::from_static(KEEP_ALIVE_FRAME));
        }
        self.expire();
        self.live_count()
    }

    /// Number of attached connections.
    pub fn live_count(&self) -> usize {
        self.streams
            .values()
            .filter(|s| matches!(&s.delivery, Delivery::Sse { live: Some(tx) } if !tx.is_closed()))
            .count()
    }

    /// Drops the connection of one stream; its events stay buffered for a resume.
    pub fn detach(&mut self, stream: StreamId) {
        if let Some(Stream {
            delivery: Delivery::Sse { live },
            ..
        }) = self.streams.get_mut(&stream)
        {
            *live = None;
        }
    }

    /// Drops every connection (shutdown, DELETE, reset). Requests' events stay buffered.
    pub fn detach_all(&mut self) {
        for s in self.streams.values_mut() {
            if let Delivery::Sse { live } = &mut s.delivery {
                *live = None;
            }
        }
    }

    fn send_live(&mut self, stream: StreamId, frame: Bytes) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if let Delivery::Sse { live } = &mut s.delivery {
            if let Some(tx) = live {
                // A full sink means a client too slow to keep up; cutting it is safe because
                // everything is in the buffer for its resume.
                if tx.try_send(frame).is_err() {
                    *live = None;
                }
            }
        }
    }

    fn trim(&mut self) {
        while self.buffer.len() > self.limits.max_events {
            self.buffer.pop_front();
        }
    }

    /// Forgets events past the age bound and finished streams with nothing left to replay.
    pub fn expire(&mut self) {
        let now = Instant::now();
        self.expired_at = now;
        let max_age = self.limits.max_age;
        while self
            .buffer
            .front()
            .is_some_and(|e| now.duration_since(e.at) > max_age)
        {
            self.buffer.pop_front();
        }
        let keep_for = |s: &Stream| {
            if s.delivered {
                DELIVERED_GRACE.min(max_age)
            } else {
                max_age
            }
        };
        let mut forgotten = Vec::new();
        self.streams.retain(|id, s| {
            let keep = *id == STANDALONE
                || !s.finished
                || s.finished_at
                    .is_some_and(|t| now.duration_since(t) <= keep_for(s));
            if !keep {
                forgotten.push(*id);
            }
            keep
        });
        if !forgotten.is_empty() {
            self.buffer.retain(|e| !forgotten.contains(&e.stream));
        }
    }
}

fn parse_event_id(id: &str) -> Option<(StreamId, u64)> {
    let (stream, seq) = id.trim().split_once('-')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;

    fn limits() -> BufferLimits {
        BufferLimits {
            max_events: 100,
            max_age: std::time::Duration::from_secs(60),
            retry_ms: 1000,
        }
    }

    fn drain(rx: &mut SseReceiver) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(b) = rx.try_recv() {
            out.push(String::from_utf8(b.to_vec()).unwrap());
        }
        out
    }

    #[actix_rt::test]
    async fn resume_replays_exactly_what_was_missed() {
        let mut s = Streams::new(limits());
        let (id, mut rx) = s.open_sse(1, true);
        s.push(id, &json!({"n": 1}));
        let first = drain(&mut rx);
        assert!(first[0].starts_with(&format!("id: {id}-0\nretry: 1000")));
        assert!(first[1].contains(r#"{"n":1}"#));
        drop(rx); // the client's connection drops mid-call
        s.push(id, &json!({"n": 2}));
        s.push(id, &json!({"n": 3}));
        let (mut rx, replayed) = s.resume(&format!("{id}-1")).unwrap();
        assert_eq!(replayed, 2);
        s.respond(id, json!({"result": "done"}));
        let frames: Vec<String> = rx
            .by_ref()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        assert_eq!(frames.len(), 3, "{frames:?}");
        assert!(frames[0].contains(r#"{"n":2}"#));
        assert!(frames[1].contains(r#"{"n":3}"#));
        assert!(frames[2].contains("done"));
    }

    #[actix_rt::test]
    async fn second_standalone_stream_conflicts_until_the_first_is_gone() {
        let mut s = Streams::new(limits());
        let rx = s.attach_standalone().unwrap();
        assert_eq!(s.attach_standalone().unwrap_err(), StreamError::Conflict);
        drop(rx);
        assert!(s.attach_standalone().is_ok());
    }

    #[test]
    fn json_streams_collect_responses_and_drop_notifications() {
        let mut s = Streams::new(limits());
        let (id, mut rx) = s.open_json(2);
        s.push(id, &json!({"note": true}));
        s.respond(id, json!(1));
        assert!(rx.try_recv().unwrap().is_none());
        s.respond(id, json!(2));
        assert_eq!(rx.try_recv().unwrap().unwrap(), vec![json!(1), json!(2)]);
    }

    #[test]
    fn unknown_and_malformed_event_ids_are_refused() {
        let mut s = Streams::new(limits());
        assert!(matches!(s.resume("x"), Err(StreamError::BadEventId(_))));
        assert_eq!(
            s.resume("42-1").unwrap_err(),
            StreamError::UnknownStream(42)
        );
    }

    #[test]
    fn resume_past_the_buffer_is_refused() {
        let mut s = Streams::new(BufferLimits {
            max_events: 2,
            ..limits()
        });
        let (id, rx) = s.open_sse(1, true);
        drop(rx);
        for n in 0..5 {
            s.push(id, &json!(n));
        }
        assert_eq!(
            s.resume(&format!("{id}-0")).unwrap_err(),
            StreamError::UnknownStream(id)
        );
        assert!(
            s.resume(&format!("{id}-3")).is_ok(),
            "events 4 and 5 are still held"
        );
    }

    #[actix_rt::test]
    async fn answered_streams_leave_the_buffer_after_the_grace_and_unanswered_ones_stay() {
        tokio::time::pause();
        let mut s = Streams::new(limits());
        let (answered, live) = s.open_sse(1, false);
        s.respond(answered, json!({"result": 1}));
        let (dropped, rx) = s.open_sse(1, false);
        drop(rx); // the client vanished before the answer
        s.respond(dropped, json!({"result": 2}));
        tokio::time::sleep(DELIVERED_GRACE + std::time::Duration::from_secs(1)).await;
        s.expire();
        assert_eq!(
            s.resume(&format!("{answered}-0")).unwrap_err(),
            StreamError::UnknownStream(answered)
        );
        assert!(
            s.resume(&format!("{dropped}-0")).is_ok(),
            "kept for the client to resume"
        );
        assert!(s.buffer.iter().all(|e| e.stream == dropped));
        drop(live);
    }

    #[actix_rt::test]
    async fn a_busy_session_forgets_answered_streams_without_waiting_for_the_heartbeat() {
        tokio::time::pause();
        let mut s = Streams::new(limits());
        let (first, _live) = s.open_sse(1, false);
        s.push(first, &json!({"progress": 1}));
        s.respond(first, json!({"result": 1}));
        tokio::time::sleep(DELIVERED_GRACE + EXPIRE_EVERY).await;
        // Only requests come and go; no heartbeat, no explicit expire().
        let (next, _live) = s.open_sse(1, false);
        s.respond(next, json!({"result": 2}));
        assert!(
            s.buffer.iter().all(|e| e.stream == next),
            "the first answer's events are gone"
        );
        assert_eq!(
            s.resume(&format!("{first}-0")).unwrap_err(),
            StreamError::UnknownStream(first)
        );
    }

    #[test]
    fn buffer_is_bounded_in_size() {
        let mut s = Streams::new(BufferLimits {
            max_events: 3,
            ..limits()
        });
        let (id, rx) = s.open_sse(1, false);
        drop(rx);
        for n in 0..10 {
            s.push(id, &json!(n));
        }
        assert_eq!(s.buffer.len(), 3);
    }
}
