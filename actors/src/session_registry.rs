//! `SessionRegistry`: the one actor that knows every live session.
//!
//! - **Owns**: an entry per session (principal, version, client, and the session's shared
//!   `SessionStats`: last activity, last heartbeat, open streams, in-flight requests).
//! - **Takes**: `Register`, `Unregister`, `GetStatus`, `ReapIdle`, `CloseAll`.
//! - **Emits**: `Evict` to a session that has been idle past the TTL, or to every session at
//!   shutdown (through the `Recipient<Evict>` each session handed over at `Register`).
//! - **Lifecycle**: started once by `actors::start`; not supervised (it holds no state that a
//!   restart could rebuild, and it never panics: it only moves plain data).
//! - **Timers**: every `reap_interval`, sessions idle longer than `idle_ttl` with no open stream
//!   and no running request are evicted.
//!
//! Lookups by session id do not go through this actor (the edge uses the `Sessions` table), so it
//! only sees lifecycle events and is never on a request's path.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use actix::{clock::Instant, prelude::*};
use serde::Serialize;

use crate::metrics::Metrics;

/// Most sessions listed individually in a status snapshot (totals always cover all of them).
pub const STATUS_LIST_LIMIT: usize = 500;

// === messages handled ===

/// A session started (or restarted): track it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    /// The session's table key.
    pub key: Arc<str>,
    /// What the status page shows.
    pub info: SessionInfo,
    /// Live counters the session updates.
    pub stats: Arc<SessionStats>,
    /// Where to send `Evict`.
    pub evict: Recipient<Evict>,
}

/// A session ended (DELETE, eviction): forget it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    /// The session's table key.
    pub key: Arc<str>,
}

/// Asks for the status snapshot.
#[derive(Message)]
#[rtype(result = "StatusSnapshot")]
pub struct GetStatus;

/// Runs the reaper now (tests and operators; the timer runs it anyway).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ReapIdle;

/// Tells every session to close its streams and leave (graceful shutdown).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseAll;

// === messages emitted ===

/// Sent to a session the registry wants gone.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Evict {
    /// Why.
    pub reason: EvictReason,
}

/// Why a session is evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictReason {
    /// Idle past the TTL.
    Idle,
    /// The server is shutting down.
    Shutdown,
}

// === shared data ===

/// Static facts about a session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Principal name.
    pub principal: String,
    /// Negotiated protocol version.
    pub protocol_version: String,
    /// `clientInfo.name`.
    pub client: String,
    /// Whether this is a principal's session for requests without `Mcp-Session-Id`.
    pub anonymous: bool,
}

/// Counters a session updates and the registry reads (no message per request).
#[derive(Debug)]
pub struct SessionStats {
    origin: Instant,
    created_ms: AtomicU64,
    last_activity_ms: AtomicU64,
    last_heartbeat_ms: AtomicU64,
    /// Attached SSE connections.
    pub open_streams: AtomicU32,
    /// Requests running now.
    pub in_flight: AtomicU32,
    /// Requests served in the session's life.
    pub requests: AtomicU64,
}

impl SessionStats {
    /// Counters for a session starting now; times are measured from `origin`.
    pub fn new(origin: Instant) -> SessionStats {
        let now = origin.elapsed().as_millis() as u64;
        SessionStats {
            origin,
            created_ms: AtomicU64::new(now),
            last_activity_ms: AtomicU64::new(now),
            last_heartbeat_ms: AtomicU64::new(now),
            open_streams: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Records client activity (a request or a stream attach).
    pub fn touch(&self) {
        self.last_activity_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// Records a heartbeat (the session's keep-alive tick).
    pub fn heartbeat(&self) {
        self.last_heartbeat_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = self.last_activity_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    fn age(&self) -> Duration {
        let created = self.created_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(created))
    }

    fn since_heartbeat(&self) -> Duration {
        let hb = self.last_heartbeat_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(hb))
    }
}

/// One session as shown by `/admin/status`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionStatus {
    /// The first characters of the random session id (never the whole signed id).
    pub id: String,
    #[serde(flatten)]
    pub info: SessionInfo,
    pub age_secs: u64,
    pub idle_secs: u64,
    pub last_heartbeat_secs: u64,
    pub open_streams: u32,
    pub in_flight: u32,
    pub requests: u64,
}

/// The registry's view of the server.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    pub sessions: Vec<SessionStatus>,
    /// Whether `sessions` was cut at [`STATUS_LIST_LIMIT`].
    pub truncated: bool,
    pub totals: Totals,
}

/// Totals over every session.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub sessions: usize,
    pub anonymous_sessions: usize,
    pub open_streams: u64,
    pub in_flight: u64,
    pub reaped: u64,
}

/// Registry settings.
#[derive(Debug, Clone, Copy)]
pub struct RegistrySettings {
    /// A session idle this long with nothing open is evicted.
    pub idle_ttl: Duration,
    /// How often the reaper runs.
    pub reap_interval: Duration,
}

struct Entry {
    info: SessionInfo,
    stats: Arc<SessionStats>,
    evict: Recipient<Evict>,
}

/// The registry actor.
pub struct SessionRegistry {
    settings: RegistrySettings,
    entries: HashMap<Arc<str>, Entry>,
    metrics: Arc<Metrics>,
    reaped: u64,
}

impl SessionRegistry {
    /// A registry with no sessions.
    pub fn new(settings: RegistrySettings, metrics: Arc<Metrics>) -> SessionRegistry {
        SessionRegistry {
            settings,
            entries: HashMap::new(),
            metrics,
            reaped: 0,
        }
    }

    fn reap(&mut self) -> usize {
        let ttl = self.settings.idle_ttl;
        let mut gone = Vec::new();
        for (key, e) in &self.entries {
            if !e.evict.connected() {
                // The actor died without unregistering (it should not, but a dead entry must
                // not linger in the status page).
                gone.push((key.clone(), false));
                continue;
            }
            let busy = e.stats.open_streams.load(Ordering::Relaxed) > 0
                || e.stats.in_flight.load(Ordering::Relaxed) > 0;
            if !busy && e.stats.idle_for() > ttl {
                gone.push((key.clone(), true));
            }
        }
        let mut reaped = 0;
        for (key, evict) in gone {
            if let Some(e) = self.entries.remove(&key) {
                if evict {
                    e.evict.do_send(Evict {
                        reason: EvictReason::Idle,
                    });
                    reaped += 1;
                }
            }
        }
        self.reaped += reaped as u64;
        self.metrics.sessions_reaped.inc_by(reaped as u64);
        self.metrics.sessions.set(self.entries.len() as i64);
        if reaped > 0 {
            tracing::info!(reaped, live = self.entries.len(), "reaped idle sessions");
        }
        reaped
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Sessions register in bursts (a load test, a reconnect storm after a deploy).
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(self.settings.reap_interval, |act, _| {
            act.reap();
        });
    }
}

impl Handler<Register> for SessionRegistry {
    type Result = ();

    /// Tracks a session; a restarted session re-registers under the same key.
    fn handle(&mut self, msg: Register, _: &mut Self::Context) {
        self.entries.insert(
            msg.key,
            Entry {
                info: msg.info,
                stats: msg.stats,
                evict: msg.evict,
            },
        );
        self.metrics.sessions.set(self.entries.len() as i64);
    }
}

impl Handler<Unregister> for SessionRegistry {
    type Result = ();

    /// Forgets a session.
    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) {
        self.entries.remove(&msg.key);
        self.metrics.sessions.set(self.entries.len() as i64);
    }
}

impl Handler<GetStatus> for SessionRegistry {
    type Result = MessageResult<GetStatus>;

    /// Builds the status snapshot, most recently active sessions first.
    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        let mut totals = Totals {
            sessions: self.entries.len(),
            reaped: self.reaped,
            ..Totals::default()
        };
        let mut sessions: Vec<SessionStatus> = self
            .entries
            .iter()
            .map(|(key, e)| {
                let s = &e.stats;
                let status = SessionStatus {
                    id: key.chars().take(8).collect(),
                    info: e.info.clone(),
                    age_secs: s.age().as_secs(),
                    idle_secs: s.idle_for().as_secs(),
                    last_heartbeat_secs: s.since_heartbeat().as_secs(),
                    open_streams: s.open_streams.load(Ordering::Relaxed),
                    in_flight: s.in_flight.load(Ordering::Relaxed),
                    requests: s.requests.load(Ordering::Relaxed),
                };
                totals.open_streams += u64::from(status.open_streams);
                totals.in_flight += u64::from(status.in_flight);
                totals.anonymous_sessions += usize::from(status.info.anonymous);
                status
            })
            .collect();
        sessions.sort_by_key(|s| s.idle_secs);
        let truncated = sessions.len() > STATUS_LIST_LIMIT;
        sessions.truncate(STATUS_LIST_LIMIT);
        MessageResult(StatusSnapshot {
            sessions,
            truncated,
            totals,
        })
    }
}

impl Handler<ReapIdle> for SessionRegistry {
    type Result = usize;

    /// Runs the reaper now; returns how many sessions were evicted.
    fn handle(&mut self, _: ReapIdle, _: &mut Self::Context) -> usize {
        self.reap()
    }
}

impl Handler<CloseAll> for SessionRegistry {
    type Result = usize;

    /// Evicts every session; returns how many were told.
    fn handle(&mut self, _: CloseAll, _: &mut Self::Context) -> usize {
        let n = self.entries.len();
        for (_, e) in self.entries.drain() {
            e.evict.do_send(Evict {
                reason: EvictReason::Shutdown,
            });
        }
        self.metrics.sessions.set(0);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records evictions, standing in for a session.
    struct Probe {
        evicted: Arc<AtomicU32>,
    }
    impl Actor for Probe {
        type Context = Context<Self>;
    }
    impl Handler<Evict> for Probe {
        type Result = ();
        fn handle(&mut self, _: Evict, _: &mut Self::Context) {
            self.evicted.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn info() -> SessionInfo {
        SessionInfo {
            principal: "alice".into(),
            protocol_version: "2025-11-25".into(),
            client: "test".into(),
            anonymous: false,
        }
    }

    #[actix::test]
    async fn reaps_idle_sessions_but_not_busy_ones() {
        tokio::time::pause();
        let metrics = Arc::new(Metrics::new().unwrap());
        let registry = SessionRegistry::new(
            RegistrySettings {
                idle_ttl: Duration::from_secs(60),
                reap_interval: Duration::from_secs(3600),
            },
            metrics.clone(),
        )
        .start();
        let evicted = Arc::new(AtomicU32::new(0));
        let probe = Probe {
            evicted: evicted.clone(),
        }
        .start();
        let origin = Instant::now();
        let idle = Arc::new(SessionStats::new(origin));
        let streaming = Arc::new(SessionStats::new(origin));
        streaming.open_streams.store(1, Ordering::Relaxed);
        for (key, stats) in [("idle", idle.clone()), ("streaming", streaming.clone())] {
            registry
                .send(Register {
                    key: Arc::from(key),
                    info: info(),
                    stats,
                    evict: probe.clone().recipient(),
                })
                .await
                .unwrap();
        }
        assert_eq!(
            registry.send(ReapIdle).await.unwrap(),
            0,
            "nothing is idle yet"
        );
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(registry.send(ReapIdle).await.unwrap(), 1);
        tokio::task::yield_now().await;
        assert_eq!(evicted.load(Ordering::SeqCst), 1);
        let status = registry.send(GetStatus).await.unwrap();
        assert_eq!(status.totals.sessions, 1);
        assert_eq!(status.totals.open_streams, 1);
        assert_eq!(status.totals.reaped, 1);
        assert_eq!(metrics.sessions_reaped.get(), 1);
    }
}
