//! Authentication: who is calling. Phase one is bearer tokens from the `[[users]]` list (stored
//! as SHA-256 hashes) or `--no-auth` for one local principal on loopback. Every handler gets a
//! `Principal` through the `Authenticated` extractor, so OAuth can later replace this file alone.

use std::{collections::HashMap, future::Ready, sync::Arc};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use actors::principal::Principal;
use sha2::{Digest, Sha256};

use super::rescue::EdgeError;
use crate::{app::AppState, config::UserConfig};

/// The name of the single principal of `--no-auth` mode.
pub const LOCAL_PRINCIPAL: &str = "local";

/// Token checks.
pub struct Auth {
    by_hash: HashMap<[u8; 32], Principal>,
    no_auth: Option<Principal>,
    admin_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.by_hash.len())
            .field("no_auth", &self.no_auth.is_some())
            .finish()
    }
}

/// SHA-256 of a token, as stored in the config.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hash(hex_hash: &str) -> Option<[u8; 32]> {
    hex::decode(hex_hash).ok()?.try_into().ok()
}

impl Auth {
    /// Builds the token table. `users` were validated by `Config::validate`.
    pub fn new(users: &[UserConfig], no_auth: bool, admin_token_sha256: Option<&str>) -> Auth {
        let by_hash = users
            .iter()
            .filter_map(|u| {
                let hash = parse_hash(&u.token_sha256)?;
                Some((
                    hash,
                    Principal {
                        name: Arc::from(u.name.as_str()),
                        full_name: u.full_name.as_deref().map(Arc::from),
                        email: u.email.as_deref().map(Arc::from),
                        timezone: u.timezone.as_deref().map(Arc::from),
                    },
                ))
            })
            .collect();
        Auth {
            by_hash,
            no_auth: no_auth.then(|| Principal::named(LOCAL_PRINCIPAL)),
            admin_hash: admin_token_sha256.and_then(parse_hash),
        }
    }

    /// Number of configured users.
    pub fn user_count(&self) -> usize {
        self.by_hash.len()
    }

    /// The principal behind `Authorization`, or why there is none.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, EdgeError> {
        if let Some(p) = &self.no_auth {
            return Ok(p.clone());
        }
        let token = bearer(authorization).ok_or(EdgeError::Unauthorized)?;
        self.by_hash
            .get(&token_hash(token))
            .cloned()
            .ok_or(EdgeError::BadToken)
    }

    /// Whether `Authorization` carries the admin token (any request in `--no-auth` mode, which
    /// only runs on loopback).
    pub fn is_admin(&self, authorization: Option<&str>) -> bool {
        if self.no_auth.is_some() && self.admin_hash.is_none() {
            return true;
        }
        match (self.admin_hash, bearer(authorization)) {
            (Some(expected), Some(token)) => token_hash(token) == expected,
            _ => false,
        }
    }
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Extracts the request's principal; refuses with 401 and a `WWW-Authenticate` challenge.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = EdgeError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<AppState>>() {
            None => Err(EdgeError::Internal("application state missing".into())),
            Some(state) => {
                let header = req
                    .headers()
                    .get(actix_web::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                state.auth.authenticate(header).map(Authenticated)
            }
        };
        std::future::ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, token: &str) -> UserConfig {
        UserConfig {
            name: name.into(),
            token_sha256: hex::encode(token_hash(token)),
            full_name: None,
            email: None,
            timezone: None,
        }
    }

    #[test]
    fn tokens_map_to_their_principal() {
        let auth = Auth::new(&[user("alice", "ta"), user("bob", "tb")], false, None);
        assert_eq!(
            &*auth.authenticate(Some("Bearer ta")).unwrap().name,
            "alice"
        );
        assert_eq!(&*auth.authenticate(Some("bearer tb")).unwrap().name, "bob");
        assert!(matches!(
            auth.authenticate(Some("Bearer nope")),
            Err(EdgeError::BadToken)
        ));
        assert!(matches!(
            auth.authenticate(None),
            Err(EdgeError::Unauthorized)
        ));
        assert!(matches!(
            auth.authenticate(Some("Basic ta")),
            Err(EdgeError::Unauthorized)
        ));
        assert!(!auth.is_admin(Some("Bearer ta")));
    }

    #[test]
    fn admin_token_is_separate() {
        let admin = hex::encode(token_hash("root"));
        let auth = Auth::new(&[], false, Some(&admin));
        assert!(auth.is_admin(Some("Bearer root")));
        assert!(!auth.is_admin(Some("Bearer other")));
        assert!(!auth.is_admin(None));
    }
}
