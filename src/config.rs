//! `Config`: every setting, with its default, read from (lowest to highest precedence) built-in
//! defaults, a TOML file, `DUST_MCP_*` environment variables and command-line flags.
//!
//! Environment variables name a key as `DUST_MCP_<KEY>` for top-level keys and
//! `DUST_MCP_<SECTION>__<KEY>` inside a section, e.g. `DUST_MCP_BIND=0.0.0.0:8080` or
//! `DUST_MCP_MCP__KEEP_ALIVE_SECS=5`. Values are TOML literals (`5`, `true`, `["a","b"]`) or plain
//! strings. `DUST_MCP_CONFIG` names the file. Unknown keys are errors, so typos do not pass
//! silently.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// Public base URL (e.g. `https://mcp.example.com`): the OAuth issuer, and `<public_url>/mcp`
    /// is the token audience; its host joins the Host allow-list. Default `http://<bind address>`.
    pub public_url: Option<String>,
    /// Directory for the session key and (later) the database. Default `./data`.
    pub data_dir: PathBuf,
    /// Log format. Default human.
    pub log_format: LogFormat,
    /// `tracing` filter directive when `RUST_LOG` is unset. Default `info`.
    pub log_filter: String,
    /// Serve every request as one local principal without a token. Loopback binds only.
    pub no_auth: bool,
    /// Register the conformance suite's fixture tools, resources and prompts.
    pub conformance_fixtures: bool,
    /// SHA-256 (hex) of the token that opens `/admin/status` and `/metrics`.
    pub admin_token_sha256: Option<String>,
    /// Hex HMAC key for session ids (at least 32 bytes). Default: generated once and kept in
    /// `<data_dir>/session.key`, so ids survive restarts.
    pub session_secret: Option<String>,
    /// HTTP edge settings.
    pub http: HttpConfig,
    /// MCP session settings.
    pub mcp: McpConfig,
    /// Dust workspace access. Without an API key and workspace id the server runs against the
    /// built-in demo workspace (the Dust simulator on a loopback port).
    pub dust: DustConfig,
    /// Health file uploads, parsing and storage.
    pub health: HealthConfig,
    /// OAuth 2.1: dust-mcp as its own authorization server for Claude.
    pub auth: AuthConfig,
    /// Who may use the server.
    pub users: Vec<UserConfig>,
}

/// Health file uploads (`[health]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Parser threads. Default 1.
    pub workers: usize,
    /// Uploads in flight (queued + parsing); more get 503 with Retry-After. Default 4.
    pub queue: usize,
    /// Largest upload body over HTTP, in bytes. Default 2 GiB.
    pub max_upload_bytes: u64,
    /// Largest file `health_upload` takes inline, in bytes. Default 8 MiB (the MCP body limit,
    /// `http.max_body_bytes`, must leave room for it and its base64).
    pub max_tool_upload_bytes: usize,
    /// Largest decompressed size of a zip's export.xml or a gzip body, in bytes. Default 16 GiB.
    pub max_decompressed_bytes: u64,
    /// Keep uploaded bytes under `<data_dir>/raw/<file id>`. Default false.
    pub keep_raw_uploads: bool,
    /// How long an upload link stays valid, in seconds. Default 900.
    pub upload_link_ttl_secs: u64,
    /// Store threads serving reads and deletes. Default 2.
    pub store_workers: usize,
    /// Test-only behaviour (a file named `__panic_test_hook__` makes the parser panic). Default false.
    pub test_hooks: bool,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            workers: 1,
            queue: 4,
            max_upload_bytes: 2 << 30,
            max_tool_upload_bytes: 8 << 20,
            max_decompressed_bytes: 16 << 30,
            keep_raw_uploads: false,
            upload_link_ttl_secs: 900,
            store_workers: 2,
            test_hooks: false,
        }
    }
}

/// OAuth 2.1 authorization server and resource server (`[auth]`). The issuer is `public_url`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Serve `initialize`, `tools/list` and the conformance fixtures without a token; tools
    /// touching user data still answer 401 (Claude's lazy authentication). Default false.
    pub public_discovery: bool,
    /// Redirect URIs accepted besides Claude's callbacks and loopback ones (exact strings).
    pub allowed_redirect_uris: Vec<String>,
    /// Lifetime of an access token, in seconds. Default 3600.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, in seconds (each refresh issues a new one). Default 90 days.
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of an authorization code, in seconds. Default 60.
    pub code_ttl_secs: u64,
    /// A refresh token presented again within this many seconds of its rotation gets one more
    /// pair instead of revoking the grant: Claude refreshes from several machines and retries
    /// refreshes whose answer it lost. Later reuse still revokes the whole grant. 0 turns the
    /// grace off. Default 30.
    pub refresh_reuse_grace_secs: u64,
    /// Sign-in attempts per minute per client address, and failed ones per client. Default 10.
    pub sign_in_attempts_per_minute: u32,
    /// Take the client address from `X-Forwarded-For` (set it behind a TLS proxy you run).
    /// Default false.
    pub trust_forwarded_for: bool,
    /// Accept client metadata documents at `http://127.0.0.1:*` URLs (tests only). Default false.
    pub allow_http_client_metadata: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            public_discovery: false,
            allowed_redirect_uris: Vec::new(),
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 90 * 24 * 3600,
            code_ttl_secs: 60,
            refresh_reuse_grace_secs: 30,
            sign_in_attempts_per_minute: 10,
            trust_forwarded_for: false,
            allow_http_client_metadata: false,
        }
    }
}

/// HTTP edge settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Host names (without port) accepted in the `Host` header. Default: loopback names. The
    /// host of `public_url` is added automatically.
    pub allowed_hosts: Vec<String>,
    /// Extra allowed `Origin` values (e.g. `https://claude.ai`). An origin whose host is an
    /// allowed host is always accepted; requests without `Origin` are accepted.
    pub allowed_origins: Vec<String>,
    /// Largest JSON-RPC body accepted, in bytes. Default 12 MiB (an 8 MB `health_upload` in
    /// base64 is about 11 MB).
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per core. Default 0.
    pub workers: usize,
    /// How long shutdown waits for open connections to finish, in seconds. Default 10.
    pub shutdown_grace_secs: u64,
}

/// MCP session settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Interval of `: keep-alive` comments on idle SSE streams, in seconds. Default 15.
    pub keep_alive_secs: u64,
    /// Most events a session's resumption buffer keeps. Default 1024.
    pub event_buffer_events: usize,
    /// Oldest event a session's resumption buffer keeps, in seconds: the reconnect grace
    /// period. Default 300.
    pub event_buffer_age_secs: u64,
    /// Sessions idle this long with no open stream are reaped, in seconds. Default 1800.
    pub session_idle_ttl_secs: u64,
    /// How often the reaper runs, in seconds. Default 60.
    pub reap_interval_secs: u64,
    /// How long a session id stays valid, in seconds. Default 7 days.
    pub session_lifetime_secs: u64,
    /// How long a server-to-client request waits for the client's answer, in seconds. Default 30.
    pub ask_timeout_secs: u64,
    /// Items per page in list results. Default 100.
    pub page_size: usize,
    /// `retry:` advertised in SSE priming events, in milliseconds. Default 3000.
    pub sse_retry_ms: u64,
    /// Answer every request with SSE when the client accepts it, not only `tools/call`.
    /// Default false (quick requests get plain JSON).
    pub sse_for_all_requests: bool,
}

/// Dust workspace access and the `dust_*` tools.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DustConfig {
    /// `https://dust.tt` (US, default), `https://eu.dust.tt` (EU), or a loopback simulator URL.
    /// Also `DUST_BASE_URL` and `--dust-url`.
    pub base_url: String,
    /// Workspace API key (`sk-...`). Also `DUST_API_KEY`. Never logged.
    pub api_key: Option<String>,
    /// Workspace sId. Also `DUST_WORKSPACE_ID`.
    pub workspace_id: Option<String>,
    /// Most simultaneous connections to Dust per worker thread (each open answer holds one).
    pub pool_limit: usize,
    /// Client-side request budget per second; 0 turns the limiter off. Default 50.
    pub rate_limit_per_sec: u32,
    /// How long the agent list is cached, in seconds. Default 300.
    pub agent_cache_ttl_secs: u64,
    /// Send `skipToolsValidation` so agents never wait for a human approval. Default true.
    pub skip_tools_validation: bool,
    /// An answer stream silent this long is resumed, in seconds. Default 90.
    pub stream_idle_timeout_secs: u64,
    /// Consecutive failures that open the workspace's circuit breaker. Default 5.
    pub breaker_failure_threshold: u32,
    /// How long an open breaker refuses calls, in seconds. Default 30.
    pub breaker_cooldown_secs: u64,
    /// A `dust_ask` returns what was written so far after this long, in seconds (Claude gives a
    /// tool 300 s). Default 270.
    pub call_timeout_secs: u64,
    /// Window in which answer deltas are coalesced into one progress notification, in ms.
    /// Default 50.
    pub coalesce_ms: u64,
    /// Longest answer returned in a result, in characters. Default 100000.
    pub max_result_chars: usize,
}

impl Default for DustConfig {
    fn default() -> Self {
        DustConfig {
            base_url: "https://dust.tt".into(),
            api_key: None,
            workspace_id: None,
            pool_limit: 1000,
            rate_limit_per_sec: 50,
            agent_cache_ttl_secs: 300,
            skip_tools_validation: true,
            stream_idle_timeout_secs: 90,
            breaker_failure_threshold: 5,
            breaker_cooldown_secs: 30,
            call_timeout_secs: 270,
            coalesce_ms: 50,
            max_result_chars: 100_000,
        }
    }
}

impl std::fmt::Debug for DustConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DustConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("workspace_id", &self.workspace_id)
            .finish_non_exhaustive()
    }
}

impl DustConfig {
    /// Whether real workspace credentials are configured (otherwise: demo workspace).
    pub fn has_credentials(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        set(&self.api_key) && set(&self.workspace_id)
    }
}

/// One user allowed in by bearer token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Unique name; the principal.
    pub name: String,
    /// SHA-256 (hex) of the user's token, as printed by `dust-mcp token new`.
    pub token_sha256: String,
    /// Full name for Dust's message context.
    #[serde(default)]
    pub full_name: Option<String>,
    /// E-mail for Dust's message context.
    #[serde(default)]
    pub email: Option<String>,
    /// IANA time zone for Dust's message context (e.g. `Europe/Paris`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The user's own Dust API key, used for their `dust_*` calls instead of the workspace's
    /// (same workspace and base URL). Never logged.
    #[serde(default)]
    pub dust_api_key: Option<String>,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("full_name", &self.full_name)
            .field("email", &self.email)
            .field("timezone", &self.timezone)
            .field(
                "dust_api_key",
                &self.dust_api_key.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Human,
            log_filter: "info".into(),
            no_auth: false,
            conformance_fixtures: false,
            admin_token_sha256: None,
            session_secret: None,
            http: HttpConfig::default(),
            mcp: McpConfig::default(),
            dust: DustConfig::default(),
            health: HealthConfig::default(),
            auth: AuthConfig::default(),
            users: Vec::new(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            allowed_origins: Vec::new(),
            max_body_bytes: 12 * 1024 * 1024,
            workers: 0,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            keep_alive_secs: 15,
            event_buffer_events: 1024,
            event_buffer_age_secs: 300,
            session_idle_ttl_secs: 1800,
            reap_interval_secs: 60,
            session_lifetime_secs: 7 * 24 * 3600,
            ask_timeout_secs: 30,
            page_size: 100,
            sse_retry_ms: 3000,
            sse_for_all_requests: false,
        }
    }
}

const ENV_PREFIX: &str = "DUST_MCP_";
/// Environment variables with the prefix that are not config keys.
const ENV_NOT_KEYS: &[&str] = &["DUST_MCP_CONFIG"];
/// The Dust variables every Dust tool knows, accepted under their usual names.
const DUST_ENV: &[(&str, &str)] = &[
    ("DUST_API_KEY", "api_key"),
    ("DUST_WORKSPACE_ID", "workspace_id"),
    ("DUST_BASE_URL", "base_url"),
];

impl Config {
    /// Loads defaults, then `file` (if any), then the `DUST_MCP_*` variables in `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        for (var, value) in env {
            if let Some((_, key)) = DUST_ENV.iter().find(|(name, _)| *name == var) {
                if !value.trim().is_empty() {
                    overlay_env(&mut table, &format!("{ENV_PREFIX}DUST__{key}"), &value)?;
                }
                continue;
            }
            if !var.starts_with(ENV_PREFIX) || ENV_NOT_KEYS.contains(&var.as_str()) {
                continue;
            }
            overlay_env(&mut table, &var, &value)?;
        }
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: file
                        .map(Path::to_owned)
                        .unwrap_or_else(|| PathBuf::from("<environment>")),
                    message: e.to_string(),
                })?;
        Ok(config)
    }

    /// Checks what cannot be expressed in types; called after flags are applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.no_auth && !self.bind.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "--no-auth is only allowed on a loopback address, not {}: without authentication \
                 anyone who reaches the port acts as the local user. Bind to 127.0.0.1, or \
                 configure [[users]] (see `dust-mcp token new`)",
                self.bind
            )));
        }
        let mut names = std::collections::HashSet::new();
        for u in &self.users {
            if u.name.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "a [[users]] entry has an empty name".into(),
                ));
            }
            if !names.insert(u.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "user {:?} is listed twice in [[users]]",
                    u.name
                )));
            }
            if !is_sha256_hex(&u.token_sha256) {
                return Err(ConfigError::Invalid(format!(
                    "user {:?}: token_sha256 must be 64 hex characters (the line printed by `dust-mcp token new`)",
                    u.name
                )));
            }
        }
        if let Some(h) = &self.admin_token_sha256 {
            if !is_sha256_hex(h) {
                return Err(ConfigError::Invalid(
                    "admin_token_sha256 must be 64 hex characters (see `dust-mcp token new admin`)"
                        .into(),
                ));
            }
        }
        if let Some(secret) = &self.session_secret {
            match hex::decode(secret) {
                Ok(k) if k.len() >= 32 => {}
                _ => {
                    return Err(ConfigError::Invalid(
                        "session_secret must be at least 32 bytes written as hex (64+ characters)"
                            .into(),
                    ))
                }
            }
        }
        if let Some(url) = &self.public_url {
            if public_host(url).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "public_url {url:?} must look like https://host[:port]"
                )));
            }
        }
        if self.mcp.keep_alive_secs == 0 || self.mcp.reap_interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "mcp.keep_alive_secs and mcp.reap_interval_secs must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Host names accepted in `Host`: the configured list plus the public URL's host.
    pub fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .http
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if let Some(h) = self.public_url.as_deref().and_then(public_host) {
            hosts.push(h);
        }
        hosts
    }

    /// Shorthand for durations.
    pub fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The host (without port) of a public URL.
pub fn public_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split('/').next()?;
    let host = crate::edge::headers::host_without_port(authority);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn overlay_env(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let key = var[ENV_PREFIX.len()..].to_ascii_lowercase();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|_| !key.ends_with("api_key") && !key.ends_with("workspace_id"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (section, field) = match key.split_once("__") {
        Some((s, f)) => (Some(s.to_owned()), f.to_owned()),
        None => (None, key),
    };
    let target = match section {
        None => table,
        Some(s) => match table
            .entry(s.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Env {
                    var: var.to_owned(),
                    message: format!("{s} is not a section"),
                })
            }
        },
    };
    target.insert(field, parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_env() {
        let dir = std::env::temp_dir().join(format!("dust-mcp-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:9000\"\n[mcp]\nkeep_alive_secs = 5\n",
        )
        .unwrap();
        let env = vec![
            ("DUST_MCP_MCP__KEEP_ALIVE_SECS".to_owned(), "7".to_owned()),
            (
                "DUST_MCP_HTTP__ALLOWED_HOSTS".to_owned(),
                r#"["mcp.example.com"]"#.to_owned(),
            ),
            ("DUST_MCP_CONFIG".to_owned(), "ignored".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        let c = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.mcp.keep_alive_secs, 7);
        assert_eq!(c.mcp.page_size, McpConfig::default().page_size);
        assert_eq!(c.http.allowed_hosts, vec!["mcp.example.com"]);
    }

    #[test]
    fn dust_credentials_come_from_their_usual_variables_and_are_redacted() {
        let env = vec![
            ("DUST_API_KEY".to_owned(), "sk-secret123".to_owned()),
            ("DUST_WORKSPACE_ID".to_owned(), "12345".to_owned()),
            ("DUST_BASE_URL".to_owned(), "https://eu.dust.tt".to_owned()),
        ];
        let c = Config::load(None, env).unwrap();
        assert!(c.dust.has_credentials());
        assert_eq!(c.dust.workspace_id.as_deref(), Some("12345"));
        assert_eq!(c.dust.base_url, "https://eu.dust.tt");
        assert!(!format!("{c:?}").contains("sk-secret123"));
        assert!(!Config::default().dust.has_credentials());
    }

    #[test]
    fn typos_and_unsafe_settings_are_errors() {
        let env = vec![("DUST_MCP_BINDD".to_owned(), "x".to_owned())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("bindd"), "{err}");
        let mut c = Config {
            no_auth: true,
            bind: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("loopback"));
        c.bind = "127.0.0.1:8080".parse().unwrap();
        c.validate().unwrap();
        c.users.push(UserConfig {
            name: "a".into(),
            token_sha256: "nothex".into(),
            full_name: None,
            email: None,
            timezone: None,
            dust_api_key: None,
        });
        assert!(c.validate().unwrap_err().to_string().contains("64 hex"));
    }

    #[test]
    fn public_url_host_is_allowed() {
        let c = Config {
            public_url: Some("https://MCP.example.com:8443/x".into()),
            ..Config::default()
        };
        assert!(c.allowed_hosts().contains(&"mcp.example.com".to_owned()));
    }
}
