//! Starting and stopping the server: configuration checked before any port is bound, the actor
//! system started, the HTTP server bound, and on shutdown every session told to close its streams
//! before actix-web drains within a bounded grace period.

use std::{io, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use actix::clock::Instant;
use actix_web::{dev::ServerHandle, web, App, HttpServer};
use actors::{
    dust::{DustError, DustSettings, DustShared, Secret},
    health::Limits,
    health_parser::{ParserPool, PoolSettings},
    mcp::{catalogue::Catalogue, context::LogLevel, fixtures},
    mcp_session::{BufferLimits, SessionSettings},
    metrics::Metrics,
    session_registry::{CloseAll, RegistrySettings},
    store::{SqliteStore, StoreHandle},
    tools::{
        self,
        dust::DustToolSettings,
        health::{HealthService, HealthSettings, UploadLinks},
    },
    ActorSettings,
};
use rand::RngCore;

use crate::{
    app::{configure, AppState},
    config::{Config, ConfigError},
    edge::{
        auth::Auth,
        oauth::{OAuth, OAuthSettings},
    },
    simulator::{SimConfig, Simulator},
};

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: io::Error },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("Dust settings: {0}")]
    Dust(#[from] DustError),
    #[error("cannot start the demo Dust workspace: {0}")]
    Demo(io::Error),
    #[error("health store: {0}")]
    Store(#[from] actors::store::StoreError),
}

/// A running server.
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: ServerHandle,
    registry: actix::Addr<actors::session_registry::SessionRegistry>,
    task: actix_rt::task::JoinHandle<io::Result<()>>,
    grace: Duration,
    /// The demo workspace, when no Dust credentials were configured.
    simulator: Option<Simulator>,
    dust: Arc<DustShared>,
}

/// Starts everything in the current actix system. Returns once the port is bound.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    config.validate()?;
    let secret = session_secret(&config)?;
    let metrics = Arc::new(Metrics::new()?);
    let (dust_settings, simulator) = dust_settings(&config).await?;
    let dust_settings_base = dust_settings.clone();
    let dust = DustShared::new(dust_settings)?;
    let health = health_service(&config, &secret)?;
    let mut catalogue = Catalogue::new();
    let fragments_from = health.clone();
    let fragments: Arc<tools::dust::FragmentSource> =
        Arc::new(move |principal, ids| fragments_from.fragments(principal, ids));
    let mut access = tools::dust::DustAccess::workspace(dust.clone());
    for user in &config.users {
        if let Some(key) = user
            .dust_api_key
            .as_deref()
            .filter(|k| !k.trim().is_empty())
        {
            let mut own = dust_settings_base.clone();
            own.api_key = Secret::new(key);
            access
                .per_user
                .insert(user.name.clone(), DustShared::new(own)?);
        }
    }
    tools::dust::register(
        &mut catalogue,
        access,
        DustToolSettings {
            call_cap: Config::secs(config.dust.call_timeout_secs),
            coalesce: Duration::from_millis(config.dust.coalesce_ms),
            max_result_chars: config.dust.max_result_chars,
        },
        Some(fragments),
    );
    tools::health::register(&mut catalogue, health.clone());
    if config.conformance_fixtures {
        fixtures::register(&mut catalogue);
    }
    let m = &config.mcp;
    let handles = actors::start(
        ActorSettings {
            session: SessionSettings {
                keep_alive: Config::secs(m.keep_alive_secs),
                buffer: BufferLimits {
                    max_events: m.event_buffer_events,
                    max_age: Config::secs(m.event_buffer_age_secs),
                    retry_ms: m.sse_retry_ms,
                },
                ask_timeout: Config::secs(m.ask_timeout_secs),
                page_size: m.page_size,
                default_log_level: LogLevel::Info,
            },
            registry: RegistrySettings {
                idle_ttl: Config::secs(m.session_idle_ttl_secs),
                reap_interval: Config::secs(m.reap_interval_secs),
            },
            session_lifetime: Config::secs(m.session_lifetime_secs),
            session_secret: secret.clone(),
        },
        catalogue,
        metrics.clone(),
    );
    let auth = Auth::new(
        &config.users,
        config.no_auth,
        config.admin_token_sha256.as_deref(),
    );
    if config.no_auth {
        tracing::warn!(bind = %config.bind, "authentication is OFF (--no-auth): every request acts as the local user");
    } else if auth.user_count() == 0 {
        tracing::warn!("no [[users]] configured: every /mcp request will get 401. Add a user with `dust-mcp token new NAME`, or run with --no-auth on loopback");
    }
    let oauth = Arc::new(oauth_server(&config, &secret)?);
    let state = web::Data::new(AppState {
        sessions: handles.sessions.clone(),
        registry: handles.registry.clone(),
        metrics,
        auth,
        oauth: oauth.clone(),
        allowed_hosts: config.allowed_hosts(),
        allowed_origins: config.http.allowed_origins.clone(),
        sse_for_all: config.mcp.sse_for_all_requests,
        no_auth: config.no_auth,
        max_body_bytes: config.http.max_body_bytes,
        started: Instant::now(),
        dust: dust.clone(),
        dust_demo: simulator.is_some(),
        health: health.clone(),
        max_upload_bytes: config.health.max_upload_bytes,
    });
    let grace = Config::secs(config.http.shutdown_grace_secs);
    let mut server = HttpServer::new(move || App::new().configure(configure(state.clone())))
        .disable_signals()
        .shutdown_timeout(grace.as_secs());
    if config.http.workers > 0 {
        server = server.workers(config.http.workers);
    }
    let server = server
        .bind(config.bind)
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = server.addrs().first().copied().unwrap_or(config.bind);
    let public_base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    health.set_public_base(&public_base);
    oauth.set_public_base(&public_base);
    let server = server.run();
    let handle = server.handle();
    let task = actix_rt::spawn(server);
    tracing::info!(%addr, "dust-mcp listening: MCP endpoint http://{addr}/mcp");
    Ok(RunningServer {
        addr,
        handle,
        registry: handles.registry,
        task,
        grace,
        simulator,
        dust,
    })
}

/// The OAuth authorization server on the shared database.
fn oauth_server(config: &Config, secret: &[u8]) -> Result<OAuth, StartError> {
    let a = &config.auth;
    let db = config.data_dir.join(actors::store::DB_FILE_NAME);
    actors::store::oauth::OAuthStore::open(&db)?;
    let store = actors::store::oauth::OAuthHandle::start(
        OAUTH_STORE_THREADS,
        actors::store::oauth::OAuthStore::factory(db),
    );
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 2);
    let settings = OAuthSettings {
        public_discovery: a.public_discovery,
        allowed_redirect_uris: a.allowed_redirect_uris.clone(),
        access_ttl_secs: secs(a.access_token_ttl_secs),
        refresh_ttl_secs: secs(a.refresh_token_ttl_secs),
        code_ttl_secs: secs(a.code_ttl_secs),
        refresh_reuse_grace_secs: secs(a.refresh_reuse_grace_secs),
        attempts_per_minute: a.sign_in_attempts_per_minute,
        trust_forwarded_for: a.trust_forwarded_for,
        allow_http_client_metadata: a.allow_http_client_metadata,
    };
    Ok(OAuth::new(settings, store, secret))
}

/// Threads checking tokens and serving the OAuth endpoints' storage: every authenticated
/// `/mcp` request with an OAuth token makes one indexed read.
const OAUTH_STORE_THREADS: usize = 2;

/// Opens the health store (migrating it), starts its threads and the parser pool.
fn health_service(config: &Config, secret: &[u8]) -> Result<Arc<HealthService>, StartError> {
    let h = &config.health;
    let db = config.data_dir.join(actors::store::DB_FILE_NAME);
    // Open once here so a broken database or migration stops start-up with a clear error.
    SqliteStore::open(&db)?;
    let factory = SqliteStore::factory(db);
    let raw_dir = h.keep_raw_uploads.then(|| config.data_dir.join("raw"));
    if let Some(dir) = &raw_dir {
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let limits = Limits {
        max_decompressed_bytes: h.max_decompressed_bytes,
        ..Limits::default()
    };
    let pool = ParserPool::start(
        PoolSettings {
            workers: h.workers,
            queue: h.queue,
            limits,
            max_decoded_bytes: h.max_decompressed_bytes,
            raw_dir: raw_dir.clone(),
            test_hooks: h.test_hooks,
            retry_after_secs: 5,
        },
        factory.clone(),
    );
    let store = StoreHandle::start(h.store_workers, factory.clone());
    let links = UploadLinks::new(secret, Config::secs(h.upload_link_ttl_secs));
    let settings = HealthSettings {
        max_tool_upload_bytes: h.max_tool_upload_bytes,
        raw_dir,
        ..HealthSettings::default()
    };
    Ok(HealthService::new(pool, store, links, settings, factory)?)
}

/// Dust settings from the config; without credentials, starts the demo workspace (the Dust
/// simulator on a loopback port) and points the client at it.
async fn dust_settings(config: &Config) -> Result<(DustSettings, Option<Simulator>), StartError> {
    let d = &config.dust;
    let (base_url, key, workspace, simulator) = if d.has_credentials() {
        (
            d.base_url.clone(),
            d.api_key.clone().unwrap_or_default(),
            d.workspace_id.clone().unwrap_or_default(),
            None,
        )
    } else {
        let sim = Simulator::start(SimConfig::default())
            .await
            .map_err(StartError::Demo)?;
        tracing::warn!(
            url = %sim.url(),
            "DEMO WORKSPACE: no DUST_API_KEY/DUST_WORKSPACE_ID configured, so dust_* tools talk to the built-in Dust simulator with demo agents. Set both to use your real workspace."
        );
        let s = (
            sim.url(),
            sim.api_key().to_owned(),
            sim.workspace_id().to_owned(),
        );
        (s.0, s.1, s.2, Some(sim))
    };
    let mut settings = DustSettings::new(base_url, Secret::new(key), workspace);
    settings.pool_limit = d.pool_limit;
    settings.rate_limit_per_sec = d.rate_limit_per_sec;
    settings.rate_limit_burst = d.rate_limit_per_sec.max(1);
    settings.agent_cache_ttl = Config::secs(d.agent_cache_ttl_secs);
    settings.skip_tools_validation = d.skip_tools_validation;
    settings.stream_idle_timeout = Config::secs(d.stream_idle_timeout_secs);
    settings.breaker_failure_threshold = d.breaker_failure_threshold;
    settings.breaker_cooldown = Config::secs(d.breaker_cooldown_secs);
    Ok((settings, simulator))
}

impl RunningServer {
    /// The MCP endpoint URL.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The demo workspace's simulator, when running in demo mode.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    /// The Dust client's shared state (breaker, counters).
    pub fn dust(&self) -> &Arc<DustShared> {
        &self.dust
    }

    /// Graceful stop: sessions close their streams (so SSE responses end), then actix-web
    /// drains open connections within the grace period.
    pub async fn shutdown(self) {
        let started = Instant::now();
        let closed = self.registry.send(CloseAll).await.unwrap_or(0);
        tracing::info!(sessions = closed, "shutting down: streams closed");
        self.handle.stop(true).await;
        match tokio::time::timeout(self.grace + Duration::from_secs(1), self.task).await {
            Ok(_) => tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "stopped"),
            Err(_) => tracing::warn!(
                grace_secs = self.grace.as_secs(),
                "shutdown grace ran out; connections were dropped"
            ),
        }
    }

    /// Waits until the server stops by itself.
    pub async fn wait(self) -> io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
    }
}

/// The session-id HMAC key: configured, or generated once into `<data_dir>/session.key` so
/// ids stay valid across restarts.
fn session_secret(config: &Config) -> Result<Vec<u8>, StartError> {
    if let Some(hex_key) = &config.session_secret {
        return hex::decode(hex_key).map_err(|_| {
            StartError::Config(ConfigError::Invalid("session_secret is not hex".into()))
        });
    }
    let dir = &config.data_dir;
    let err = |source| StartError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let path = dir.join("session.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => match hex::decode(text.trim()) {
            Ok(k) if k.len() >= 32 => return Ok(k),
            _ => {
                return Err(StartError::Config(ConfigError::Invalid(format!(
                    "{} does not hold a hex key of 32+ bytes; delete it to generate a new one (open sessions will then need to initialize again)",
                    path.display()
                ))))
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut key);
    write_private(&path, hex::encode(&key).as_bytes()).map_err(err)?;
    tracing::info!(path = %path.display(), "generated a new session key");
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}
