//! Authentication: who is calling. A bearer token is a personal access token from `[[users]]`
//! (stored as SHA-256 hashes) or an access token our OAuth server issued (audience, expiry,
//! revocation and scope checked, see `oauth/`); `--no-auth` is one local principal on loopback.
//! Handlers get a `Principal` through `Authenticated`, or a `Caller` on `/mcp`, where lazy
//! authentication (`auth.public_discovery`) lets discovery and fixtures through without one.

use std::{collections::HashMap, sync::Arc};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use actors::{mcp::jsonrpc::Incoming, principal::Principal};
use futures::future::LocalBoxFuture;
use sha2::{Digest, Sha256};

use super::{oauth::SCOPE_MCP, rescue::EdgeError};
use crate::{app::AppState, config::UserConfig};

/// The name of the single principal of `--no-auth` mode.
pub const LOCAL_PRINCIPAL: &str = "local";
/// The principal of unauthenticated callers under lazy authentication; it reaches only public
/// methods and the conformance fixtures, never user data.
pub const ANONYMOUS_PRINCIPAL: &str = "#anonymous";

/// What the synchronous checks found in `Authorization`.
#[derive(Debug)]
pub enum Identity {
    /// A personal access token, or `--no-auth`.
    Known(Principal),
    /// No bearer token.
    Missing,
    /// A bearer token that is not a personal access token: maybe an OAuth access token.
    Unknown(String),
}

/// Token checks.
pub struct Auth {
    by_hash: HashMap<[u8; 32], Principal>,
    by_name: HashMap<Arc<str>, Principal>,
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
            .collect::<HashMap<_, _>>();
        let by_name = by_hash
            .values()
            .map(|p: &Principal| (p.name.clone(), p.clone()))
            .collect();
        Auth {
            by_hash,
            by_name,
            no_auth: no_auth.then(|| Principal::named(LOCAL_PRINCIPAL)),
            admin_hash: admin_token_sha256.and_then(parse_hash),
        }
    }

    /// Number of configured users.
    pub fn user_count(&self) -> usize {
        self.by_hash.len()
    }

    /// What `Authorization` names, without touching the OAuth store.
    pub fn identify(&self, authorization: Option<&str>) -> Identity {
        if let Some(p) = &self.no_auth {
            return Identity::Known(p.clone());
        }
        let Some(token) = bearer(authorization) else {
            return Identity::Missing;
        };
        match self.by_hash.get(&token_hash(token)) {
            Some(p) => Identity::Known(p.clone()),
            None => Identity::Unknown(token.to_owned()),
        }
    }

    /// The user whose personal access token this is (the OAuth sign-in page asks for it).
    pub fn user_for_token(&self, token: &str) -> Option<Principal> {
        if token.is_empty() {
            return None;
        }
        self.by_hash.get(&token_hash(token)).cloned()
    }

    /// The `[[users]]` entry of that name: OAuth grants map to the same principal as the
    /// personal access token used at sign-in.
    pub fn user_named(&self, name: &str) -> Option<Principal> {
        self.by_name.get(name).cloned()
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

/// The principal behind `Authorization`: a personal access token, or an OAuth access token
/// for this resource with the `mcp` scope.
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&str>,
) -> Result<Principal, EdgeError> {
    let oauth = &state.oauth;
    match state.auth.identify(authorization) {
        Identity::Known(p) => Ok(p),
        Identity::Missing => Err(EdgeError::Unauthorized(oauth.challenge())),
        Identity::Unknown(token) => match oauth.check_access(&token).await {
            Ok(Some((user, scope))) => {
                let principal = state
                    .auth
                    .user_named(&user)
                    .ok_or_else(|| EdgeError::BadToken(oauth.challenge()))?;
                if !scope.split_whitespace().any(|s| s == SCOPE_MCP) {
                    return Err(EdgeError::InsufficientScope(oauth.challenge()));
                }
                Ok(principal)
            }
            Ok(None) => Err(EdgeError::BadToken(oauth.challenge())),
            Err(e) => Err(EdgeError::Internal(format!("checking a token: {e}"))),
        },
    }
}

fn authorization_header(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Extracts the request's principal; refuses with 401 and a `WWW-Authenticate` challenge.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = EdgeError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = authorization_header(req);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| EdgeError::Internal("application state missing".into()))?;
            authenticate(&state, header.as_deref())
                .await
                .map(Authenticated)
        })
    }
}

/// The caller of `/mcp`: authenticated, or anonymous under lazy authentication (then only
/// [`is_public`] messages are served; see [`Caller::require_for`]).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who; [`ANONYMOUS_PRINCIPAL`] when `anonymous`.
    pub principal: Principal,
    /// No token was presented and `auth.public_discovery` let the request in.
    pub anonymous: bool,
    challenge: super::rescue::Challenge,
}

impl Caller {
    /// Refuses an anonymous caller with 401 `invalid_token` (Claude then shows its Connect
    /// card and retries) unless every message is public.
    pub fn require_for(&self, messages: &[Incoming]) -> Result<(), EdgeError> {
        if self.anonymous && !messages.iter().all(is_public) {
            return Err(EdgeError::SignInRequired(self.challenge.clone()));
        }
        Ok(())
    }
}

impl FromRequest for Caller {
    type Error = EdgeError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = authorization_header(req);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| EdgeError::Internal("application state missing".into()))?;
            let challenge = state.oauth.challenge();
            if state.oauth.public_discovery()
                && matches!(state.auth.identify(header.as_deref()), Identity::Missing)
            {
                return Ok(Caller {
                    principal: Principal::named(ANONYMOUS_PRINCIPAL),
                    anonymous: true,
                    challenge,
                });
            }
            let principal = authenticate(&state, header.as_deref()).await?;
            Ok(Caller {
                principal,
                anonymous: false,
                challenge,
            })
        })
    }
}

/// Whether a message may be served without a token under lazy authentication: discovery and
/// listing methods, notifications, answers to our own requests, and the conformance fixtures
/// (`test_*` tools and prompts, `test://` resources). Anything else (`dust_*`, `health_*`, a
/// `health://` resource) touches user data.
pub fn is_public(message: &Incoming) -> bool {
    let Incoming::Request(r) = message else {
        return true;
    };
    let param = |key: &str| r.params.get(key).and_then(|v| v.as_str()).unwrap_or("");
    match r.method.as_str() {
        "initialize"
        | "ping"
        | "server/discover"
        | "tools/list"
        | "prompts/list"
        | "resources/list"
        | "resources/templates/list"
        | "logging/setLevel" => true,
        "tools/call" | "prompts/get" => param("name").starts_with("test_"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            param("uri").starts_with("test://")
        }
        _ => false,
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
            dust_api_key: None,
        }
    }

    #[test]
    fn tokens_map_to_their_principal() {
        let auth = Auth::new(&[user("alice", "ta"), user("bob", "tb")], false, None);
        let name = |h: Option<&str>| match auth.identify(h) {
            Identity::Known(p) => p.name.to_string(),
            Identity::Missing => "<missing>".into(),
            Identity::Unknown(t) => format!("<unknown {t}>"),
        };
        assert_eq!(name(Some("Bearer ta")), "alice");
        assert_eq!(name(Some("bearer tb")), "bob");
        assert_eq!(name(Some("Bearer nope")), "<unknown nope>");
        assert_eq!(name(None), "<missing>");
        assert_eq!(name(Some("Basic ta")), "<missing>");
        assert_eq!(auth.user_for_token("ta").unwrap().name.as_ref(), "alice");
        assert!(auth.user_for_token("").is_none());
        assert_eq!(auth.user_named("bob").unwrap().name.as_ref(), "bob");
        assert!(!auth.is_admin(Some("Bearer ta")));
    }

    #[test]
    fn only_discovery_and_fixtures_are_public() {
        let req = |method: &str, params: serde_json::Value| {
            Incoming::Request(actors::mcp::jsonrpc::Request {
                id: actors::mcp::model::RequestId::Number(1),
                method: method.into(),
                params,
            })
        };
        use serde_json::json;
        assert!(is_public(&req("initialize", json!({}))));
        assert!(is_public(&req("tools/list", json!({}))));
        assert!(is_public(&req(
            "tools/call",
            json!({"name": "test_simple_text"})
        )));
        assert!(!is_public(&req("tools/call", json!({"name": "dust_ask"}))));
        assert!(!is_public(&req(
            "tools/call",
            json!({"name": "health_list_files"})
        )));
        assert!(!is_public(&req(
            "resources/read",
            json!({"uri": "health://files/x/summary"})
        )));
        assert!(is_public(&req(
            "resources/read",
            json!({"uri": "test://static-text"})
        )));
        assert!(!is_public(&req("completion/complete", json!({}))));
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
