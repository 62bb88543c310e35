//! A Dust.tt public-API simulator: an actix-web app that speaks Dust's wire protocol
//! (`/work/shared/reference/dust-api.md`) for demo mode, client integration tests and load tests.
//! Owns the server and its state; behaviour is tuned at run time through `Knobs`
//! (`Simulator::set_knobs` or `POST /_sim/knobs`) and observed through `SimStats`.
//!
//! # Layout
//! - `state.rs`: shared state, counters, the request gate (`admit`); `auth.rs`: bearer keys.
//! - `agents.rs` + `answers.rs`: demo agents and their deterministic answers.
//! - `conversations.rs`, `fragments.rs`, `validate.rs`, `timezones.rs`: conversation routes.
//! - `model.rs`, `event_log.rs`, `generation.rs`: messages, their event logs, the generation task.
//! - `events.rs`: the 307 hop and the SSE streams; `files.rs`, `body.rs`: uploads and bodies.
//! - `approvals.rs`: validate-action and blocked actions (with the `tool_approval` knob).
//! - `knobs.rs`: every knob and its default; `admin.rs`: `/_sim/stats` and `/_sim/knobs`.
//!
//! Demo agents: `dust` (global, one tool call), `hC0ach7Lq2` health-coach (chain of thought),
//! `wR1ter9Xk4` writer, `sL0wAg3nt5` slow-thinker, `bR0k3nAg7t` broken-bot (always
//! `agent_error`), `l3gacyAg01` legacy-helper (archived). With `stamp_tokens`, each token text is
//! `"<word>[t=<unix micros>]<whitespace>"` and the final content keeps the stamps.
//!
//! Scripts change knobs with the API key, e.g.
//! `curl -H 'Authorization: Bearer sk-demo-0000000000000000' -d '{"token_interval_ms":5}'
//! http://127.0.0.1:<port>/_sim/knobs` (fields merge into the current knobs; `null` resets one).

mod admin;
pub mod agents;
pub mod answers;
mod approvals;
mod auth;
mod body;
mod conversations;
mod error;
pub mod event_log;
mod events;
mod files;
mod fragments;
mod generation;
pub mod knobs;
mod model;
mod state;
pub mod timezones;
mod validate;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};

pub use error::ApiError;
pub use knobs::{Knobs, RouteClass};
pub use state::{SimState, SimStats};

/// How long `stop` waits for the server task after asking it to stop.
const STOP_BOUND: Duration = Duration::from_secs(5);

/// Start-up settings of a simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The one valid API key (`Bearer <api_key>`). Default `sk-demo-0000000000000000`.
    pub api_key: String,
    /// The workspace the key belongs to. Default `demo-workspace`.
    pub workspace_id: String,
    /// Workspaces that exist but the key is not a member of (401 `workspace_auth_error`); any
    /// other unknown workspace gets 404 `workspace_not_found`. Default `["foreign-workspace"]`.
    pub foreign_workspace_ids: Vec<String>,
    /// Initial knobs. Default: all defaults (real Dust timings and limits).
    pub knobs: Knobs,
    /// Address to bind. Default `127.0.0.1:0` (a free loopback port).
    pub bind: SocketAddr,
    /// actix-web worker threads. Default 1 (streams are cheap; one worker holds thousands).
    pub workers: usize,
    /// Graceful shutdown bound in seconds. Default 2.
    pub shutdown_timeout_secs: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_key: "sk-demo-0000000000000000".to_string(),
            workspace_id: "demo-workspace".to_string(),
            foreign_workspace_ids: vec!["foreign-workspace".to_string()],
            knobs: Knobs::default(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 1,
            shutdown_timeout_secs: 2,
        }
    }
}

/// A running simulator.
pub struct Simulator {
    state: Arc<SimState>,
    addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Simulator {
    /// Binds `config.bind` (127.0.0.1:0 by default) and serves in the current actix system.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let state = SimState::new(&config);
        let for_app = state.clone();
        let server = HttpServer::new(move || App::new().configure(app_config(for_app.clone())))
            .workers(config.workers.max(1))
            .shutdown_timeout(config.shutdown_timeout_secs)
            .disable_signals()
            .bind(config.bind)?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("simulator: bind gave no address"))?;
        let server = server.run();
        let handle = server.handle();
        let task = actix_rt::spawn(server);
        tracing::info!(%addr, "dust simulator listening");
        Ok(Simulator {
            state,
            addr,
            handle,
            task,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The valid API key.
    pub fn api_key(&self) -> &str {
        &self.state.api_key
    }

    /// The workspace sId.
    pub fn workspace_id(&self) -> &str {
        &self.state.workspace_id
    }

    /// Replaces the knobs; takes effect for new requests and streams.
    pub fn set_knobs(&self, knobs: Knobs) {
        self.state.set_knobs(knobs);
    }

    /// The knobs as they stand (countdowns show what is left).
    pub fn knobs(&self) -> Knobs {
        self.state.knobs()
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Ends open streams (with `done`) and stops the server, waiting at most a few seconds.
    pub async fn stop(self) {
        self.state.shutdown.send_replace(true);
        let stopping = async {
            self.handle.stop(true).await;
            let _ = self.task.await;
        };
        if tokio::time::timeout(STOP_BOUND, stopping).await.is_err() {
            tracing::warn!(addr = %self.addr, "dust simulator: stop timed out");
        }
    }
}

/// The simulator's routes and state, for `App::configure` (in-process tests can use it with
/// `actix_web::test::init_service`).
pub fn app_config(state: Arc<SimState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::from(state))
            .service(
                web::scope("/api/v1/w/{wId}")
                    .configure(agents::routes)
                    .configure(conversations::routes)
                    .configure(fragments::routes)
                    .configure(events::redirect_routes)
                    .configure(files::routes)
                    .configure(approvals::routes),
            )
            .service(web::scope("/api/sse/v1/w/{wId}").configure(events::sse_routes))
            .service(web::scope("/_sim").configure(admin::routes))
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(serde_json::json!({
                    "error": {"type": "invalid_request_error", "message": "Not found."}
                }))
            }));
    }
}
