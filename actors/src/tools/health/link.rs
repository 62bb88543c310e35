//! Signed, short-lived upload links: `base64url(claims JSON) "." base64url(HMAC-SHA256)`, the
//! principal and expiry inside, so `POST /v1/health/upload/{token}` needs no bearer token. The
//! MAC covers a purpose label first, so a session id (same key) never passes as a link.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PURPOSE: &[u8] = b"dust-mcp health upload link v1\n";

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Principal name.
    p: String,
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
}

/// Why a link was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("this upload link is not valid; ask for a new one with the health_upload_link tool")]
    Invalid,
    #[error("this upload link has expired; ask for a new one with the health_upload_link tool")]
    Expired,
}

/// Mints and checks upload links.
#[derive(Clone)]
pub struct UploadLinks {
    key: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for UploadLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadLinks")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl UploadLinks {
    /// A signer with the server secret; links live `ttl`.
    pub fn new(key: &[u8], ttl: Duration) -> UploadLinks {
        UploadLinks {
            key: key.to_vec(),
            ttl,
        }
    }

    /// How long a link lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn tag(&self, payload: &str) -> Vec<u8> {
        // unwrap-free: HMAC accepts keys of any length.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        mac.update(PURPOSE);
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// A token for `principal` and its expiry (seconds since the epoch).
    pub fn mint(&self, principal: &str) -> (String, u64) {
        let exp = now() + self.ttl.as_secs();
        let claims = Claims {
            p: principal.to_owned(),
            exp,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(self.tag(&payload));
        (format!("{payload}.{tag}"), exp)
    }

    /// The principal of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Result<String, LinkError> {
        let (payload, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let given = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LinkError::Invalid)?;
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).map_err(|_| LinkError::Invalid)?;
        mac.update(PURPOSE);
        mac.update(payload.as_bytes());
        mac.verify_slice(&given).map_err(|_| LinkError::Invalid)?;
        let raw = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&raw).map_err(|_| LinkError::Invalid)?;
        if claims.exp <= now() {
            return Err(LinkError::Expired);
        }
        Ok(claims.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_carries_its_principal_and_cannot_be_forged_or_reused_late() {
        let links = UploadLinks::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let (token, _) = links.mint("alice");
        assert_eq!(links.verify(&token).unwrap(), "alice");
        let other = UploadLinks::new(
            b"another key another key another k",
            Duration::from_secs(60),
        );
        assert_eq!(other.verify(&token), Err(LinkError::Invalid));
        let (payload, tag) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"p":"bob","exp":99999999999}"#);
        assert_eq!(
            links.verify(&format!("{forged}.{tag}")),
            Err(LinkError::Invalid)
        );
        assert_eq!(links.verify(payload), Err(LinkError::Invalid));
        let expired = UploadLinks::new(b"0123456789abcdef0123456789abcdef", Duration::ZERO);
        let (old, _) = expired.mint("alice");
        assert_eq!(expired.verify(&old), Err(LinkError::Expired));
    }
}
