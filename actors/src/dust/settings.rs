//! Dust client settings: every knob with its default in one `Default` impl, and the redacted
//! `Secret` that holds the API key. Validation of the base URL lives here too.
use std::fmt;
use std::time::Duration;

use super::error::DustError;

/// The US region (`https://dust.tt`), Dust's default host (dust-api.md §1).
pub const DUST_US_BASE_URL: &str = "https://dust.tt";
/// The EU region host; EU workspaces and their keys exist only there (dust-api.md §1).
pub const DUST_EU_BASE_URL: &str = "https://eu.dust.tt";

/// A secret string (an API key) whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How the Dust client reaches one workspace, and how hard it tries.
#[derive(Debug, Clone)]
pub struct DustSettings {
    /// Dust host: `https://dust.tt` (US), `https://eu.dust.tt` (EU), or a loopback
    /// `http://127.0.0.1:PORT` (the simulator). Plain http is refused for any other host.
    pub base_url: String,
    /// Workspace API key (`sk-...`), sent only as `Authorization: Bearer` to `base_url`.
    pub api_key: Secret,
    /// Workspace sId (`wId` in every path).
    pub workspace_id: String,
    /// Maximum simultaneous connections per thread's HTTP client; every open answer stream
    /// holds one for its whole life (rust-stack.md §5.1). 0 means unlimited.
    pub pool_limit: usize,
    /// Deadline for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Deadline for a whole non-streamed request (head and body), and for a stream's head.
    pub response_timeout: Duration,
    /// An answer stream silent for this long is dropped and resumed; Dust sends no heartbeats.
    pub stream_idle_timeout: Duration,
    /// While a stream is silent, check the persisted message this often (an expired event log
    /// or a missed end shows there long before the idle timeout).
    pub stream_silence_probe: Duration,
    /// How many idle timeouts in a row a stream survives (by reconnecting) before failing.
    pub stream_idle_retries: u32,
    /// Consecutive failed stream connections tolerated before the stream fails.
    pub stream_max_reconnects: u32,
    /// Retries after the first attempt for requests that are safe to repeat.
    pub max_retries: u32,
    /// First backoff delay; doubles per consecutive failure, with jitter.
    pub retry_base_delay: Duration,
    /// Cap on any backoff delay.
    pub retry_max_delay: Duration,
    /// Longest `Retry-After` we wait for inside one call; longer ones fail fast with the delay.
    pub max_retry_after: Duration,
    /// Client-side request budget per second (token bucket); 0 turns the limiter off.
    pub rate_limit_per_sec: u32,
    /// Token bucket size: how many requests may go out at once after a quiet period.
    pub rate_limit_burst: u32,
    /// How long an agent list or agent lookup is served from cache without asking Dust.
    pub agent_cache_ttl: Duration,
    /// Send `skipToolsValidation: true` so agents never block on a human tool approval
    /// (dust-api.md §4); a headless bridge has nobody to approve.
    pub skip_tools_validation: bool,
    /// Consecutive failures (5xx, timeouts, connection errors; never 4xx) that open the breaker.
    pub breaker_failure_threshold: u32,
    /// How long an open breaker refuses calls before letting one probe through.
    pub breaker_cooldown: Duration,
    /// Largest JSON response body read into memory (a long conversation can be large).
    pub max_response_bytes: usize,
    /// Largest single SSE event accepted from a stream.
    pub max_sse_event_bytes: usize,
    /// How long to wait before checking whether an ambiguously failed message POST landed
    /// (the server may still be finishing it).
    pub post_check_delay: Duration,
}

impl Default for DustSettings {
    fn default() -> Self {
        Self {
            base_url: DUST_US_BASE_URL.to_owned(),
            api_key: Secret::new(""),
            workspace_id: String::new(),
            pool_limit: 100,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(90),
            stream_silence_probe: Duration::from_secs(15),
            stream_idle_retries: 1,
            stream_max_reconnects: 10,
            max_retries: 3,
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            rate_limit_per_sec: 50,
            rate_limit_burst: 50,
            agent_cache_ttl: Duration::from_secs(300),
            skip_tools_validation: true,
            breaker_failure_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            max_sse_event_bytes: 4 * 1024 * 1024,
            post_check_delay: Duration::from_millis(250),
        }
    }
}

impl DustSettings {
    /// Settings for a workspace with every other knob at its default.
    pub fn new(
        base_url: impl Into<String>,
        api_key: Secret,
        workspace_id: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            workspace_id: workspace_id.into(),
            ..Self::default()
        }
    }

    /// The base URL without a trailing slash, after checking it is https or loopback http.
    pub fn normalised_base_url(&self) -> Result<String, DustError> {
        let url = self.base_url.trim().trim_end_matches('/');
        let invalid = |why: &str| {
            DustError::InvalidSettings {
            detail: format!("base_url {url:?} {why}; use https://dust.tt, https://eu.dust.tt or http://127.0.0.1:PORT"),
        }
        };
        let rest = if let Some(rest) = url.strip_prefix("https://") {
            rest
        } else if let Some(rest) = url.strip_prefix("http://") {
            let host = rest.split([':', '/']).next().unwrap_or_default();
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                return Err(invalid("uses plain http for a non-loopback host"));
            }
            rest
        } else {
            return Err(invalid("is not an http(s) URL"));
        };
        if rest.is_empty() || rest.contains(['?', '#', ' ']) {
            return Err(invalid("has no host or carries a query"));
        }
        Ok(url.to_owned())
    }

    /// Checks every field a request depends on, so mistakes surface at start-up.
    pub fn validate(&self) -> Result<(), DustError> {
        self.normalised_base_url()?;
        if self.workspace_id.trim().is_empty()
            || !self
                .workspace_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(DustError::InvalidSettings {
                detail: "workspace_id is empty or not a Dust sId; set DUST_WORKSPACE_ID".into(),
            });
        }
        if self.api_key.expose().trim().is_empty() {
            return Err(DustError::InvalidSettings {
                detail: "api_key is empty; set DUST_API_KEY".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_and_display() {
        let s = Secret::new("sk-verysecret");
        assert!(!format!("{s:?}").contains("verysecret"));
        assert!(!format!("{s}").contains("verysecret"));
        let settings = DustSettings::new(DUST_EU_BASE_URL, s, "w1");
        assert!(!format!("{settings:?}").contains("verysecret"));
    }

    #[test]
    fn base_url_accepts_regions_and_loopback_only() {
        let mut s = DustSettings::new("https://eu.dust.tt/", Secret::new("sk-1"), "w1");
        assert_eq!(s.normalised_base_url().unwrap(), "https://eu.dust.tt");
        s.base_url = "http://127.0.0.1:8080".into();
        assert_eq!(s.normalised_base_url().unwrap(), "http://127.0.0.1:8080");
        s.base_url = "http://dust.tt".into();
        assert!(s.normalised_base_url().is_err());
        s.base_url = "ftp://dust.tt".into();
        assert!(s.normalised_base_url().is_err());
    }

    #[test]
    fn validate_rejects_missing_key_and_workspace() {
        let s = DustSettings::new(DUST_US_BASE_URL, Secret::new(""), "w1");
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("DUST_API_KEY"));
        let s = DustSettings::new(DUST_US_BASE_URL, Secret::new("sk-1"), "");
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("DUST_WORKSPACE_ID"));
    }
}
