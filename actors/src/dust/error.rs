//! `DustError`: every way a Dust call can fail, each rendered as what happened and what to do.
//! Also the mapping from Dust's JSON error envelope (dust-api.md §2) to a variant. No variant
//! ever holds the API key: Dust's messages are scrubbed of it before they are stored.
use std::time::Duration;

use serde::Deserialize;

/// Longest Dust-provided message kept in an error (they are meant for humans, not logs).
const MAX_DUST_MESSAGE_CHARS: usize = 300;

/// A failed Dust call; `Display` says what happened and what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DustError {
    /// Dust (or our own limiter) refused the call for rate reasons (403 or 429 `rate_limit_error`).
    #[error("Dust rate-limited this workspace ({error_type}): {message}; retry in {} s", retry_secs(.retry_after))]
    RateLimited {
        /// Dust's `error.type`.
        error_type: String,
        /// Dust's message, scrubbed.
        message: String,
        /// The server's `Retry-After` when sent, else our own estimate.
        retry_after: Option<Duration>,
    },
    /// The key, workspace or region is wrong (401s, dust-api.md §1).
    #[error("Dust rejected the API key ({error_type}, HTTP {status}): {message}; check DUST_API_KEY, DUST_WORKSPACE_ID and the region (https://dust.tt or https://eu.dust.tt)")]
    Auth {
        /// HTTP status.
        status: u16,
        /// Dust's `error.type`.
        error_type: String,
        /// Dust's message, scrubbed.
        message: String,
    },
    /// The conversation, message, agent or file does not exist (404).
    #[error("Dust has no such object ({error_type}): {message}; check the id")]
    NotFound {
        /// Dust's `error.type`.
        error_type: String,
        /// Dust's message, scrubbed.
        message: String,
    },
    /// Dust refused the request itself (other 4xx); repeating it unchanged will not help.
    #[error("Dust refused the request ({error_type}, HTTP {status}): {message}; fix the request or the workspace plan, retrying unchanged will not help")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Dust's `error.type`.
        error_type: String,
        /// Dust's message, scrubbed.
        message: String,
    },
    /// Dust failed on its side (5xx).
    #[error("Dust failed with HTTP {status} ({}): {message}; the problem is on Dust's side, retry shortly", .error_type.as_deref().unwrap_or("no error type"))]
    Server {
        /// HTTP status.
        status: u16,
        /// Dust's `error.type`, when the body had one.
        error_type: Option<String>,
        /// Dust's message (or the start of the body), scrubbed.
        message: String,
    },
    /// No answer within the configured deadline.
    #[error("Dust did not answer {operation} within {} ms; Dust may be slow or down, retry shortly", .after.as_millis())]
    Timeout {
        /// What we were doing.
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The connection failed; `sent` says whether the request may have reached Dust.
    #[error("could not talk to Dust ({operation}): {detail}; check the network and DUST_BASE_URL")]
    Transport {
        /// What we were doing.
        operation: String,
        /// The transport error.
        detail: String,
        /// True when the request may have been sent before the failure.
        sent: bool,
    },
    /// A creating POST failed in a way that leaves its outcome unknown and it cannot be checked.
    #[error("{operation} may have reached Dust before it failed ({cause}); not retried so that nothing is created twice: check Dust before sending again")]
    Unconfirmed {
        /// What we were doing.
        operation: String,
        /// Why the outcome is unknown.
        cause: Box<DustError>,
    },
    /// The workspace's circuit breaker is open after repeated failures.
    #[error("Dust workspace {workspace_id} failed repeatedly; calls are paused for {} s (circuit breaker open), retry after that", retry_secs(&Some(*.retry_in)))]
    CircuitOpen {
        /// The workspace whose breaker is open.
        workspace_id: String,
        /// Time until the breaker lets a probe through.
        retry_in: Duration,
    },
    /// The answer stream stayed silent past the idle timeout, even after reconnecting.
    #[error("the Dust answer stream was silent for {} s; the agent may be stuck: check the conversation in Dust or raise the stream idle timeout", .after.as_secs())]
    StreamIdle {
        /// The idle timeout that passed.
        after: Duration,
    },
    /// The answer stream kept failing to reconnect.
    #[error("the Dust answer stream broke {attempts} times in a row (last: {last}); retry later")]
    StreamExhausted {
        /// Consecutive failed connections.
        attempts: u32,
        /// The last failure, rendered.
        last: String,
    },
    /// Dust sent something we could not parse.
    #[error(
        "Dust sent a {what} we could not read ({detail}); the Dust API may have changed, report it"
    )]
    Decode {
        /// Which response.
        what: String,
        /// The parse error.
        detail: String,
    },
    /// Inline content above Dust's limit (dust-api.md §8.1).
    #[error("the inline content is {size} characters, above Dust's limit of {limit}; upload it as a file instead")]
    ContentTooLarge {
        /// Size in UTF-16 units, as Dust counts.
        size: usize,
        /// Dust's limit.
        limit: usize,
    },
    /// Our caller passed something Dust would refuse.
    #[error("invalid Dust request: {detail}")]
    InvalidInput {
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// The settings cannot work.
    #[error("invalid Dust settings: {detail}")]
    InvalidSettings {
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// The user message was posted but no agent message answers it.
    #[error("Dust started no agent for message {user_message_id} in conversation {conversation_id}; check that the agent is active and mentioned")]
    NoAgentMessage {
        /// Conversation sId.
        conversation_id: String,
        /// The user message sId.
        user_message_id: String,
    },
}

fn retry_secs(d: &Option<Duration>) -> u64 {
    // Round up: "retry in 0 s" would invite an immediate retry.
    d.map_or(60, |d| d.as_millis().div_ceil(1000).max(1) as u64)
}

impl DustError {
    /// Dust's `error.type` when Dust sent one.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Self::RateLimited { error_type, .. }
            | Self::Auth { error_type, .. }
            | Self::NotFound { error_type, .. }
            | Self::Refused { error_type, .. } => Some(error_type),
            Self::Server { error_type, .. } => error_type.as_deref(),
            Self::Unconfirmed { cause, .. } => cause.error_type(),
            _ => None,
        }
    }

    /// The delay Dust asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            Self::CircuitOpen { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }

    /// True for failures a repeatable request (GET, stream connect) may retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
        )
    }

    /// True for failures that say Dust is unhealthy (they feed the circuit breaker).
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::Timeout { .. } | Self::Transport { .. }
        )
    }

    /// True when the request certainly never reached Dust.
    pub fn never_sent(&self) -> bool {
        matches!(
            self,
            Self::Transport { sent: false, .. } | Self::CircuitOpen { .. }
        )
    }

    /// True when a creating POST may or may not have taken effect.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::Timeout { .. } | Self::Transport { sent: true, .. }
        )
    }

    /// Builds the error for a non-2xx Dust response (dust-api.md §2).
    pub fn from_response(
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
        api_key: &str,
    ) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: EnvelopeError,
        }
        #[derive(Deserialize)]
        struct EnvelopeError {
            #[serde(rename = "type")]
            kind: Option<String>,
            message: Option<String>,
        }
        let parsed = serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|e| e.error);
        let (kind, message) = match parsed {
            Some(e) => (e.kind, e.message.unwrap_or_default()),
            None => (None, String::from_utf8_lossy(body).into_owned()),
        };
        let message = scrub(&message, api_key);
        // A type-less 413 is Dust's body limit (the SDK maps it the same way).
        let kind = kind.or_else(|| (status == 413).then(|| "content_too_large".to_owned()));
        let error_type = kind.clone().unwrap_or_else(|| format!("http_{status}"));
        // dust-api.md §2.3: rate limiting is the type, whatever the status (403 or 429).
        if kind.as_deref() == Some("rate_limit_error") || status == 429 {
            return Self::RateLimited {
                error_type,
                message,
                retry_after,
            };
        }
        match status {
            401 => Self::Auth {
                status,
                error_type,
                message,
            },
            400 if kind.as_deref() == Some("workspace_auth_error") => Self::Auth {
                status,
                error_type,
                message,
            },
            404 => Self::NotFound {
                error_type,
                message,
            },
            500..=599 => Self::Server {
                status,
                error_type: kind,
                message,
            },
            _ => Self::Refused {
                status,
                error_type,
                message,
            },
        }
    }
}

/// Removes the API key from text Dust sent back and bounds its length.
pub fn scrub(text: &str, api_key: &str) -> String {
    let cleaned = if api_key.len() >= 4 {
        text.replace(api_key, "[redacted]")
    } else {
        text.to_owned()
    };
    let mut out: String = cleaned
        .trim()
        .chars()
        .take(MAX_DUST_MESSAGE_CHARS)
        .collect();
    if cleaned.trim().chars().count() > MAX_DUST_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-topsecret123";

    fn err(status: u16, body: &str) -> DustError {
        DustError::from_response(status, Some(Duration::from_secs(12)), body.as_bytes(), KEY)
    }

    #[test]
    fn rate_limit_is_the_type_whatever_the_status() {
        let e = err(
            403,
            r#"{"error":{"type":"rate_limit_error","message":"slow down"}}"#,
        );
        assert!(matches!(e, DustError::RateLimited { .. }));
        assert_eq!(
            e.to_string(),
            "Dust rate-limited this workspace (rate_limit_error): slow down; retry in 12 s"
        );
        let e = err(429, "not json");
        assert!(matches!(e, DustError::RateLimited { .. }));
        assert!(e.is_transient() && !e.is_outage());
    }

    #[test]
    fn auth_errors_point_at_the_key() {
        let e = err(
            401,
            r#"{"error":{"type":"invalid_api_key_error","message":"bad"}}"#,
        );
        let text = e.to_string();
        assert!(text.contains("(invalid_api_key_error, HTTP 401)"), "{text}");
        assert!(text.contains("check DUST_API_KEY"), "{text}");
        assert_eq!(e.error_type(), Some("invalid_api_key_error"));
        assert!(!e.is_transient());
    }

    #[test]
    fn status_classes_map_to_variants() {
        assert!(matches!(
            err(404, r#"{"error":{"type":"conversation_not_found"}}"#),
            DustError::NotFound { .. }
        ));
        let e = err(502, "<html>bad gateway</html>");
        assert!(matches!(
            e,
            DustError::Server {
                status: 502,
                error_type: None,
                ..
            }
        ));
        assert!(e.is_outage() && e.is_ambiguous());
        let e = err(413, "");
        assert_eq!(e.error_type(), Some("content_too_large"));
        assert!(!e.is_outage());
        let e = err(
            403,
            r#"{"error":{"type":"plan_message_limit_exceeded","message":"m"}}"#,
        );
        assert!(matches!(e, DustError::Refused { status: 403, .. }));
    }

    #[test]
    fn no_rendering_ever_contains_the_key() {
        let body = format!(
            r#"{{"error":{{"type":"invalid_api_key_error","message":"key {KEY} is bad"}}}}"#
        );
        for status in [400, 401, 403, 404, 429, 500] {
            let e = DustError::from_response(status, None, body.as_bytes(), KEY);
            assert!(!e.to_string().contains(KEY), "{status}: {e}");
            assert!(!format!("{e:?}").contains(KEY), "{status}: {e:?}");
        }
        let raw = format!("upstream said {KEY}");
        let e = DustError::from_response(500, None, raw.as_bytes(), KEY);
        assert!(!e.to_string().contains(KEY));
        let wrapped = DustError::Unconfirmed {
            operation: "post".into(),
            cause: Box::new(e),
        };
        assert!(!wrapped.to_string().contains(KEY));
    }

    #[test]
    fn long_messages_are_bounded() {
        let long = "x".repeat(5000);
        let e = DustError::from_response(500, None, long.as_bytes(), KEY);
        assert!(e.to_string().len() < 600);
    }

    #[test]
    fn circuit_open_says_when_to_retry() {
        let e = DustError::CircuitOpen {
            workspace_id: "w1".into(),
            retry_in: Duration::from_millis(2500),
        };
        assert!(e.to_string().contains("paused for 3 s"), "{e}");
    }
}
