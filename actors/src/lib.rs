//! dust-mcp's actor system and what runs behind the mailboxes.
//!
//! # Layout
//! - [`sessions`]: the edge's front door — finds, creates and re-creates session actors.
//! - [`mcp_session`]: `McpSession`, one supervised actor per MCP session: protocol state,
//!   streams, event buffer, running requests.
//! - [`session_registry`]: `SessionRegistry`, the actor that tracks every session's heartbeat,
//!   reaps idle ones and builds the status snapshot.
//! - [`mcp`]: the protocol layer (JSON-RPC, versions, signed ids, catalogue, dispatch,
//!   conformance fixtures). No actors.
//! - [`dust`]: the Dust API client (awc): agents, conversations, the answer event stream with
//!   reconnects, files; retries, a rate limiter and a circuit breaker. No actors.
//! - [`dust_stream`]: `DustStream`, one actor per `dust_ask` streaming one agent answer.
//! - [`tools`]: the product's tools (`dust_*`) registered into the catalogue.
//! - [`health`]: pure streaming parsers and exact analysis of health exports. No actors.
//! - [`metrics`]: Prometheus counters shared by all of the above.
//! - [`principal`]: who makes a request.
//!
//! # Data flow
//! The HTTP edge (the `dust-mcp` crate) authenticates a request, decodes its body with
//! [`mcp::jsonrpc`], finds the session through [`sessions::Sessions`] and sends it a
//! `HandlePost`. The session answers session-level methods itself and runs catalogue methods as
//! tasks whose progress, logs and questions to the client flow back through it onto the
//! request's SSE stream. Start reading at `mcp_session/mod.rs`.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod dust;
pub mod dust_stream;
pub mod health;
pub mod health_parser;
pub mod mcp;
pub mod mcp_session;
pub mod metrics;
pub mod principal;
pub mod session_registry;
pub mod sessions;
pub mod store;
pub mod tools;

use std::{sync::Arc, time::Duration};

use actix::{clock::Instant, Actor, Addr};

use crate::{
    mcp::{catalogue::Catalogue, session_id::SessionSigner},
    mcp_session::{SessionEnv, SessionSettings},
    metrics::Metrics,
    session_registry::{RegistrySettings, SessionRegistry},
    sessions::Sessions,
};

/// Everything `start` needs.
pub struct ActorSettings {
    /// Per-session settings.
    pub session: SessionSettings,
    /// Registry settings.
    pub registry: RegistrySettings,
    /// How long a minted session id stays valid.
    pub session_lifetime: Duration,
    /// HMAC key for session ids.
    pub session_secret: Vec<u8>,
}

/// Handles to the running actor system.
#[derive(Clone)]
pub struct Handles {
    /// The session table.
    pub sessions: Arc<Sessions>,
    /// The registry actor.
    pub registry: Addr<SessionRegistry>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
}

/// Starts the registry and builds the session table, in the current actix system.
pub fn start(settings: ActorSettings, catalogue: Catalogue, metrics: Arc<Metrics>) -> Handles {
    let registry = SessionRegistry::new(settings.registry, metrics.clone()).start();
    let env = Arc::new(SessionEnv {
        catalogue: Arc::new(catalogue),
        settings: settings.session,
        registry: registry.clone(),
        metrics: metrics.clone(),
        origin: Instant::now(),
    });
    let sessions = Arc::new(Sessions::new(
        SessionSigner::new(&settings.session_secret),
        env,
        settings.session_lifetime,
    ));
    Handles {
        sessions,
        registry,
        metrics,
    }
}
