//! Signed, self-contained `Mcp-Session-Id`s.
//!
//! A session id carries what a session needs to be rebuilt anywhere (principal, negotiated
//! version, client capabilities, client name, expiry) and an HMAC-SHA256 over it with the
//! server secret. So a session whose actor is gone (restart, reaped, another instance) is
//! re-created from the id instead of failing, which is what claude.ai needs (mcp.md §6).
//! Format: `base64url(claims JSON) "." base64url(tag)`, visible ASCII as the spec requires.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::version::Version;

type HmacSha256 = Hmac<Sha256>;

/// What a client declared it can do, reduced to what the server acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCaps {
    /// `sampling/createMessage` may be sent.
    #[serde(default, rename = "s", skip_serializing_if = "is_false")]
    pub sampling: bool,
    /// `elicitation/create` may be sent.
    #[serde(default, rename = "e", skip_serializing_if = "is_false")]
    pub elicitation: bool,
    /// `roots/list` may be sent.
    #[serde(default, rename = "r", skip_serializing_if = "is_false")]
    pub roots: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The signed content of a session id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Random part, unique per `initialize`; the key of the live-session table.
    #[serde(rename = "sid")]
    pub sid: String,
    /// Name of the principal that initialised the session.
    #[serde(rename = "p")]
    pub principal: String,
    /// Negotiated protocol version.
    #[serde(rename = "v")]
    pub version: Version,
    /// Client capabilities that matter to the server.
    #[serde(rename = "c", default)]
    pub caps: ClientCaps,
    /// `clientInfo.name` (truncated), for the status page.
    #[serde(rename = "n", default)]
    pub client: String,
    /// Issued at, seconds since the Unix epoch.
    #[serde(rename = "iat")]
    pub issued_at: u64,
    /// Expires at, seconds since the Unix epoch: after this the id is answered with 404.
    #[serde(rename = "exp")]
    pub expires_at: u64,
}

/// Why a presented session id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionIdError {
    /// Not of our format, or the signature does not match: malformed input (400).
    #[error("the Mcp-Session-Id is not one this server issued; start over with initialize")]
    Malformed,
    /// Signed by us but past its expiry (404: the client must initialize again).
    #[error("the session has expired; start over with initialize")]
    Expired,
}

/// Signs and verifies session ids with the server secret.
#[derive(Clone)]
pub struct SessionSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSigner(<redacted>)")
    }
}

/// Longest client name kept in a session id (the id travels on every request).
const MAX_CLIENT_NAME: usize = 64;

impl SessionSigner {
    /// A signer over `secret` (at least 32 bytes of randomness in production).
    pub fn new(secret: &[u8]) -> SessionSigner {
        SessionSigner {
            key: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        }
    }

    /// Mints the header value for `claims`.
    pub fn sign(&self, claims: &SessionClaims) -> String {
        let mut claims = claims.clone();
        if claims.client.len() > MAX_CLIENT_NAME {
            let cut = (0..=MAX_CLIENT_NAME)
                .rev()
                .find(|i| claims.client.is_char_boundary(*i))
                .unwrap_or(0);
            claims.client.truncate(cut);
        }
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(payload);
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// Checks the signature and expiry of a presented id, `now` in Unix seconds.
    pub fn verify(&self, header: &str, now: u64) -> Result<SessionClaims, SessionIdError> {
        let (body, tag) = header.split_once('.').ok_or(SessionIdError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SessionIdError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| SessionIdError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SessionIdError::Malformed)?;
        let claims: SessionClaims =
            serde_json::from_slice(&payload).map_err(|_| SessionIdError::Malformed)?;
        if now >= claims.expires_at {
            return Err(SessionIdError::Expired);
        }
        Ok(claims)
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-size-key MACs; HMAC-SHA256 accepts any length.
    unreachable!("HMAC accepts keys of any length")
}

/// Seconds since the Unix epoch, from the wall clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            sid: "abc".into(),
            principal: "alice".into(),
            version: Version::V2025_11_25,
            caps: ClientCaps {
                sampling: true,
                ..Default::default()
            },
            client: "x".repeat(200),
            issued_at: 100,
            expires_at: 200,
        }
    }

    #[test]
    fn round_trips_and_truncates_client_name() {
        let s = SessionSigner::new(b"k");
        let id = s.sign(&claims());
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        let back = s.verify(&id, 150).unwrap();
        assert_eq!(back.principal, "alice");
        assert!(back.caps.sampling);
        assert_eq!(back.client.len(), MAX_CLIENT_NAME);
    }

    #[test]
    fn refuses_tampering_other_keys_and_expiry() {
        let s = SessionSigner::new(b"k");
        let id = s.sign(&claims());
        let (body, tag) = id.split_once('.').unwrap();
        let mut forged: SessionClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        forged.principal = "mallory".into();
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap())
        );
        assert_eq!(s.verify(&forged, 150), Err(SessionIdError::Malformed));
        assert_eq!(
            SessionSigner::new(b"other").verify(&id, 150),
            Err(SessionIdError::Malformed)
        );
        assert_eq!(s.verify(&id, 200), Err(SessionIdError::Expired));
        assert_eq!(s.verify("garbage", 0), Err(SessionIdError::Malformed));
    }
}
