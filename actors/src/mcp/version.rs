//! Protocol versions: which we negotiate, which we accept in the `MCP-Protocol-Version` header.
//!
//! MCP 2025-11-25 lifecycle: if the server supports the requested version it echoes it, otherwise
//! it answers with the latest it supports. We speak the three handshake revisions of the
//! Streamable HTTP transport; the stateless 2026-07-28 revision only gets a `server/discover`
//! answer that lists these, so modern clients fall back to the handshake (mcp.md §1.5).

use serde::{Deserialize, Serialize};

/// A protocol revision this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Version {
    #[serde(rename = "2025-03-26")]
    V2025_03_26,
    #[serde(rename = "2025-06-18")]
    V2025_06_18,
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
}

impl Version {
    /// The version we negotiate when the client asks for one we do not speak.
    pub const LATEST: Version = Version::V2025_11_25;
    /// Every supported version, newest first.
    pub const ALL: [Version; 3] = [
        Version::V2025_11_25,
        Version::V2025_06_18,
        Version::V2025_03_26,
    ];
    /// MCP 2025-06-18, Streamable HTTP: "If the server does not receive an
    /// MCP-Protocol-Version header [...] the server SHOULD assume 2025-03-26".
    pub const ASSUMED_WITHOUT_HEADER: Version = Version::V2025_03_26;

    /// Parses a version string; `None` for one we do not speak.
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "2025-03-26" => Some(Version::V2025_03_26),
            "2025-06-18" => Some(Version::V2025_06_18),
            "2025-11-25" => Some(Version::V2025_11_25),
            _ => None,
        }
    }

    /// The version answered to an `initialize` that asked for `requested`.
    pub fn negotiate(requested: &str) -> Version {
        Version::parse(requested).unwrap_or(Version::LATEST)
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
        }
    }

    /// JSON-RPC batches exist only in 2025-03-26 (removed in 2025-06-18).
    pub fn allows_batches(self) -> bool {
        self == Version::V2025_03_26
    }

    /// 2025-11-25 (SEP-1699): a server SHOULD open SSE streams with a priming event (an id and
    /// empty data) so the client can resume even before the first real event.
    pub fn primes_streams(self) -> bool {
        self >= Version::V2025_11_25
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_echoes_known_and_falls_back_to_latest() {
        assert_eq!(Version::negotiate("2025-06-18"), Version::V2025_06_18);
        assert_eq!(Version::negotiate("2026-07-28"), Version::LATEST);
        assert_eq!(Version::negotiate("2024-11-05"), Version::LATEST);
        assert!(Version::V2025_03_26.allows_batches());
        assert!(!Version::V2025_06_18.allows_batches());
    }
}
