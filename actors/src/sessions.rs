//! `Sessions`: the edge's front door to session actors. It finds a session by its signed id,
//! re-creates one whose actor is gone (restart, reaped, another instance) from the id's claims,
//! keeps one anonymous session per principal for requests that carry no `Mcp-Session-Id`
//! (claude.ai does not always echo it), and remembers DELETEd ids so they answer 404.
//!
//! Lookups go through a `DashMap`, never through an actor, so they cost no mailbox hop.

use std::{sync::Arc, time::Duration};

use actix::prelude::*;
use dashmap::DashMap;
use rmcp::model::{ErrorData, InitializeRequestParams};
use serde_json::Value;

use crate::{
    mcp::{
        jsonrpc::parse_params,
        session_id::{unix_now, ClientCaps, SessionClaims, SessionIdError, SessionSigner},
        version::Version,
    },
    mcp_session::{
        Close, HandlePost, McpSession, OpenStream, PostReply, SessionEnv, SessionError, SseReceiver,
    },
    principal::Principal,
};

/// Why a presented session id does not lead to a session.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    /// Not an id this server issued: 400.
    #[error("the Mcp-Session-Id header is not a session id this server issued; start over with initialize (without the header)")]
    Malformed,
    /// DELETEd, expired, or another principal's: 404, and the client starts over.
    #[error("session not found (it was closed or has expired); start over with initialize")]
    NotFound,
}

/// Live session actors by table key. Shared with the sessions themselves, which leave it when
/// they close (DELETE, idle eviction, shutdown): the table's address would otherwise keep a
/// closed actor alive under its supervisor and be handed out again for the same id.
pub type SessionTable = Arc<DashMap<Arc<str>, Addr<McpSession>>>;

/// The session table.
pub struct Sessions {
    table: SessionTable,
    /// DELETEd session ids and when their ids would have expired anyway.
    deleted: DashMap<Arc<str>, u64>,
    signer: SessionSigner,
    env: Arc<SessionEnv>,
    lifetime: Duration,
}

/// A session found or created for one HTTP request.
#[derive(Clone)]
pub struct SessionHandle {
    addr: Addr<McpSession>,
    claims: SessionClaims,
    anonymous: bool,
    sessions: Arc<Sessions>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("sid", &self.claims.sid)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// An empty table; `lifetime` is how long a minted id stays valid.
    pub fn new(signer: SessionSigner, env: Arc<SessionEnv>, lifetime: Duration) -> Sessions {
        Sessions {
            table: SessionTable::default(),
            deleted: DashMap::new(),
            signer,
            env,
            lifetime,
        }
    }

    /// Live session actors in the table.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// `initialize`: mints a session for `principal` from the request's params. Returns the
    /// handle and the `Mcp-Session-Id` header value.
    pub fn create(
        self: &Arc<Self>,
        principal: &Principal,
        params: &Value,
    ) -> Result<(SessionHandle, String), ErrorData> {
        let init: InitializeRequestParams = parse_params("initialize", params)?;
        let now = unix_now();
        let claims = SessionClaims {
            sid: uuid::Uuid::new_v4().simple().to_string(),
            principal: principal.name.to_string(),
            version: Version::negotiate(init.protocol_version.as_str()),
            caps: ClientCaps {
                sampling: init.capabilities.sampling.is_some(),
                elicitation: init.capabilities.elicitation.is_some(),
                roots: init.capabilities.roots.is_some(),
            },
            client: init.client_info.name.clone(),
            issued_at: now,
            expires_at: now.saturating_add(self.lifetime.as_secs()),
        };
        let header = self.signer.sign(&claims);
        let addr = self.start_actor(&claims, false);
        self.env.metrics.sessions_created.inc();
        tracing::info!(session = %short(&claims.sid), principal = %claims.principal, version = %claims.version, client = %claims.client, "session created");
        Ok((
            SessionHandle {
                addr,
                claims,
                anonymous: false,
                sessions: self.clone(),
            },
            header,
        ))
    }

    /// Finds the session a presented id names, re-creating its actor if it is gone.
    pub fn resolve(
        self: &Arc<Self>,
        principal: &Principal,
        header: &str,
    ) -> Result<SessionHandle, LookupError> {
        let claims = match self.signer.verify(header, unix_now()) {
            Ok(c) => c,
            Err(SessionIdError::Malformed) => return Err(LookupError::Malformed),
            Err(SessionIdError::Expired) => return Err(LookupError::NotFound),
        };
        // Another principal's session behaves exactly like an unknown one.
        if !principal.owns(&claims.principal) || self.deleted.contains_key(claims.sid.as_str()) {
            return Err(LookupError::NotFound);
        }
        let addr = self.live_or_revive(&claims, false);
        Ok(SessionHandle {
            addr,
            claims,
            anonymous: false,
            sessions: self.clone(),
        })
    }

    /// The principal's session for requests without `Mcp-Session-Id`.
    pub fn anonymous(self: &Arc<Self>, principal: &Principal) -> SessionHandle {
        let claims = SessionClaims {
            sid: format!("anon:{}", principal.name),
            principal: principal.name.to_string(),
            version: Version::ASSUMED_WITHOUT_HEADER,
            caps: ClientCaps::default(),
            client: String::new(),
            issued_at: unix_now(),
            expires_at: u64::MAX,
        };
        let addr = self.live_or_revive(&claims, true);
        SessionHandle {
            addr,
            claims,
            anonymous: true,
            sessions: self.clone(),
        }
    }

    /// DELETE: ends the session; its id answers 404 from now on.
    pub async fn delete(
        self: &Arc<Self>,
        principal: &Principal,
        header: &str,
    ) -> Result<(), LookupError> {
        let handle = self.resolve(principal, header)?;
        let now = unix_now();
        self.deleted.retain(|_, exp| *exp > now);
        self.deleted.insert(
            Arc::from(handle.claims.sid.as_str()),
            handle.claims.expires_at,
        );
        self.table.remove(handle.claims.sid.as_str());
        let _ = handle.addr.send(Close).await;
        Ok(())
    }

    fn live_or_revive(&self, claims: &SessionClaims, anonymous: bool) -> Addr<McpSession> {
        if let Some(addr) = self.table.get(claims.sid.as_str()) {
            if addr.connected() {
                return addr.clone();
            }
        }
        let addr = self.start_actor(claims, anonymous);
        if !anonymous {
            self.env.metrics.sessions_recreated.inc();
            tracing::info!(session = %short(&claims.sid), "session re-created from its signed id");
        }
        addr
    }

    fn start_actor(&self, claims: &SessionClaims, anonymous: bool) -> Addr<McpSession> {
        let key: Arc<str> = Arc::from(claims.sid.as_str());
        // The entry API makes a concurrent re-create of the same id start one actor, not two.
        let entry = self.table.entry(key.clone());
        match entry {
            dashmap::Entry::Occupied(mut o) if !o.get().connected() => {
                let addr = self.spawn(key, claims, anonymous);
                o.insert(addr.clone());
                addr
            }
            dashmap::Entry::Occupied(o) => o.get().clone(),
            dashmap::Entry::Vacant(v) => {
                let addr = self.spawn(key, claims, anonymous);
                v.insert(addr.clone());
                addr
            }
        }
    }

    fn spawn(&self, key: Arc<str>, claims: &SessionClaims, anonymous: bool) -> Addr<McpSession> {
        let claims = claims.clone();
        let env = self.env.clone();
        let table = self.table.clone();
        actix::Supervisor::start(move |_| McpSession::new(key, claims, anonymous, env, table))
    }

    fn is_deleted(&self, sid: &str) -> bool {
        self.deleted.contains_key(sid)
    }

    fn forget(&self, sid: &str, addr: &Addr<McpSession>) {
        self.table.remove_if(sid, |_, a| a == addr);
    }
}

fn short(sid: &str) -> &str {
    sid.get(..8).unwrap_or(sid)
}

impl SessionHandle {
    /// The session's claims.
    pub fn claims(&self) -> &SessionClaims {
        &self.claims
    }

    /// Whether this is the principal's anonymous session.
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Hands one POST's messages to the session. If its actor died (a bug outside the caught
    /// paths), the session is re-created from its claims and the POST is tried once more.
    ///
    /// A session that closed between lookup and delivery (reaped for idleness in that instant)
    /// is revived the same way, unless it was DELETEd: only DELETE and expiry end an id.
    pub async fn post(&self, msg: HandlePost) -> Result<PostReply, SessionError> {
        let retry = msg.clone();
        match self.addr.send(msg).await {
            Ok(Err(SessionError::Closed)) if !self.sessions.is_deleted(&self.claims.sid) => {
                tracing::debug!(session = %short(&self.claims.sid), "session closed while the request was on its way; reviving it");
            }
            Ok(r) => return r,
            Err(_) => {
                tracing::warn!(session = %short(&self.claims.sid), "session actor gone; re-creating it");
            }
        }
        self.sessions.forget(&self.claims.sid, &self.addr);
        let addr = self.sessions.live_or_revive(&self.claims, self.anonymous);
        addr.send(retry).await.map_err(|_| SessionError::Closed)?
    }

    /// GET: the standalone stream or a resume.
    pub async fn open_stream(
        &self,
        last_event_id: Option<String>,
    ) -> Result<SseReceiver, SessionError> {
        let msg = OpenStream { last_event_id };
        match self.addr.send(msg.clone()).await {
            Ok(r) => r,
            Err(_) => {
                self.sessions.forget(&self.claims.sid, &self.addr);
                let addr = self.sessions.live_or_revive(&self.claims, self.anonymous);
                addr.send(msg).await.map_err(|_| SessionError::Closed)?
            }
        }
    }
}
