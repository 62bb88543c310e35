//! `/authorize` (RFC 6749 §4.1 with PKCE S256 only, RFC 7636, and RFC 8707 `resource`): GET
//! checks the request and shows the sign-in page; POST checks the form's CSRF token (signed,
//! bound to the request, single use), the rate limits and the person's access token, then
//! redirects with a short-lived single-use code, or with `error=access_denied`.
//! Until the client and its redirect URI are known good, errors are pages, never redirects.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use actors::store::oauth::{unix_now, CodeRecord};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde::Deserialize;
use sha2::Sha256;

use super::{
    client_address,
    clients::{redirect_allowed, redirect_host},
    fresh_secret, page, sha256_hex, OAuth, SCOPE_MCP, SUPPORTED_SCOPES,
};
use crate::app::AppState;

/// How long a sign-in form stays valid, in seconds.
const FORM_TTL_SECS: i64 = 600;

/// The authorization request's parameters (query of GET, hidden fields of POST).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// The sign-in form: the request plus the person's answer.
#[derive(Debug, Deserialize)]
pub struct Decision {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    decision: String,
}

/// A request that passed every check.
struct Checked {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    scope: String,
    resource: String,
}

/// Why a request cannot go on: shown as a page, or sent back to the client's redirect URI.
enum Refusal {
    Page(StatusCode, &'static str, String),
    Redirect(String),
}

fn redirect_to(uri: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    format!("{uri}{sep}{query}")
}

fn error_redirect(uri: &str, state: Option<&str>, code: &str, description: &str) -> Refusal {
    let mut pairs = vec![("error", code), ("error_description", description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    Refusal::Redirect(redirect_to(uri, &pairs))
}

/// A PKCE S256 challenge: 43 base64url characters (RFC 7636 §4.2).
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl OAuth {
    /// Checks an authorization request. The client and redirect URI first (page errors),
    /// then the rest (redirected errors, RFC 6749 §4.1.2.1).
    async fn check(&self, p: &AuthorizeParams) -> Result<Checked, Refusal> {
        let page = |why: String| Refusal::Page(StatusCode::BAD_REQUEST, "Cannot connect", why);
        let client_id = p
            .client_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| page("The request names no client (client_id is missing).".into()))?;
        let client = match self.resolve_client(&client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Err(page(
                    "This client is not registered here (it may have been deleted). Start connecting again from your app.".into(),
                ))
            }
            Err(e) => return Err(page(e.to_string())),
        };
        let redirect_uri = match &p.redirect_uri {
            Some(u) => u.clone(),
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(page("The request has no redirect_uri.".into())),
        };
        if !client.redirect_uris.contains(&redirect_uri)
            || !redirect_allowed(&redirect_uri, &self.settings.allowed_redirect_uris)
        {
            return Err(page(format!(
                "The redirect URI {redirect_uri} is not allowed for this client."
            )));
        }
        let state = p.state.clone();
        let refuse =
            |code: &str, why: &str| error_redirect(&redirect_uri, state.as_deref(), code, why);
        if p.response_type.as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let Some(challenge) = p.code_challenge.clone().filter(|c| !c.is_empty()) else {
            return Err(refuse(
                "invalid_request",
                "PKCE is required: send code_challenge",
            ));
        };
        if p.code_challenge_method.as_deref() != Some("S256") {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        if !is_s256_challenge(&challenge) {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be 43 base64url characters",
            ));
        }
        let resource = self.resource();
        if let Some(r) = &p.resource {
            if r.trim_end_matches('/') != resource {
                return Err(refuse(
                    "invalid_target",
                    "resource must be this server's MCP endpoint",
                ));
            }
        }
        let mut scopes: Vec<&str> = Vec::new();
        for s in p.scope.as_deref().unwrap_or("").split_whitespace() {
            if !SUPPORTED_SCOPES.contains(&s) {
                return Err(refuse(
                    "invalid_scope",
                    "supported scopes: mcp offline_access",
                ));
            }
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        if scopes.is_empty() {
            scopes.push(SCOPE_MCP);
        }
        Ok(Checked {
            client_id,
            client_name: client.name,
            redirect_uri,
            state,
            code_challenge: challenge,
            scope: scopes.join(" "),
            resource,
        })
    }

    /// The form MAC; `None` cannot happen (HMAC takes keys of any length) and fails closed.
    fn csrf_mac(&self, nonce: &str, expires_at: i64, c: &Checked) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).ok()?;
        for part in [
            nonce,
            &expires_at.to_string(),
            &c.client_id,
            &c.redirect_uri,
            c.state.as_deref().unwrap_or(""),
            &c.code_challenge,
            &c.scope,
            &c.resource,
        ] {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        Some(mac)
    }

    /// A fresh form token bound to this request: `nonce.expiry.hmac`.
    fn csrf_token(&self, c: &Checked) -> String {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let nonce = hex::encode(nonce);
        let expires_at = unix_now() + FORM_TTL_SECS;
        let tag = self
            .csrf_mac(&nonce, expires_at, c)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default();
        format!("{nonce}.{expires_at}.{tag}")
    }

    /// Verifies and spends a form token.
    fn spend_csrf(&self, token: &str, c: &Checked) -> bool {
        let mut parts = token.split('.');
        let (Some(nonce), Some(exp), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expires_at), Ok(tag)) = (exp.parse::<i64>(), hex::decode(tag)) else {
            return false;
        };
        let now = unix_now();
        expires_at >= now
            && self
                .csrf_mac(nonce, expires_at, c)
                .is_some_and(|m| m.verify_slice(&tag).is_ok())
            && self.used_csrf.use_once(nonce, expires_at, now)
    }

    fn sign_in_page(&self, c: &Checked, status: StatusCode, error: Option<&str>) -> HttpResponse {
        let csrf = self.csrf_token(c);
        let mut hidden = vec![
            ("response_type", "code"),
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_challenge", c.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", c.scope.as_str()),
            ("resource", c.resource.as_str()),
            ("csrf", csrf.as_str()),
        ];
        if let Some(s) = &c.state {
            hidden.push(("state", s.as_str()));
        }
        page::html(
            status,
            page::sign_in(&page::SignIn {
                client_name: &c.client_name,
                redirect_host: &redirect_host(&c.redirect_uri),
                hidden: &hidden,
                error,
            }),
        )
    }
}

fn refusal_response(r: Refusal) -> HttpResponse {
    match r {
        Refusal::Page(status, title, why) => page::html(status, page::error(title, &why)),
        Refusal::Redirect(to) => found(&to),
    }
}

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// `GET /authorize`: the sign-in page.
pub async fn show(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = web::Query::<AuthorizeParams>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    match state.oauth.check(&params).await {
        Ok(c) => state.oauth.sign_in_page(&c, StatusCode::OK, None),
        Err(r) => refusal_response(r),
    }
}

/// `POST /authorize`: the person's decision.
pub async fn decide(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Decision>,
) -> HttpResponse {
    let oauth = &state.oauth;
    let form = form.into_inner();
    let address = client_address(&req, oauth.settings.trust_forwarded_for);
    let client_key = form.params.client_id.clone().unwrap_or_default();
    if !oauth.by_address.hit(&address) || oauth.by_client.exhausted(&client_key) {
        tracing::info!(client_id = %client_key, "sign-in attempts over the limit");
        let mut res = page::html(
            StatusCode::TOO_MANY_REQUESTS,
            page::error(
                "Too many attempts",
                "Too many sign-in attempts. Wait a minute, then start connecting again from your app.",
            ),
        );
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("60"),
        );
        return res;
    }
    let checked = match oauth.check(&form.params).await {
        Ok(c) => c,
        Err(r) => return refusal_response(r),
    };
    if !oauth.spend_csrf(&form.csrf, &checked) {
        return page::html(
            StatusCode::BAD_REQUEST,
            page::error(
                "This sign-in form has expired",
                "This form was already used, has expired, or does not belong to this request. Start connecting again from your app.",
            ),
        );
    }
    let state_param = checked.state.as_deref();
    if form.decision != "approve" {
        tracing::info!(client_id = %checked.client_id, "authorization denied by the person");
        return refusal_response(error_redirect(
            &checked.redirect_uri,
            state_param,
            "access_denied",
            "the person denied access",
        ));
    }
    let Some(principal) = state.auth.user_for_token(form.token.trim()) else {
        oauth.by_client.hit(&client_key);
        tracing::info!(client_id = %checked.client_id, "sign-in with an unknown access token");
        return oauth.sign_in_page(
            &checked,
            StatusCode::FORBIDDEN,
            Some("That access token is not valid here. Check it and try again."),
        );
    };
    let code = fresh_secret("dmcp_code_");
    let record = CodeRecord {
        client_id: checked.client_id.clone(),
        user: principal.name.to_string(),
        redirect_uri: checked.redirect_uri.clone(),
        code_challenge: checked.code_challenge.clone(),
        scope: checked.scope.clone(),
        resource: checked.resource.clone(),
        expires_at: unix_now() + oauth.settings.code_ttl_secs,
        family_id: None,
    };
    let hash = sha256_hex(&code);
    if let Err(e) = oauth
        .store
        .run(move |s| s.insert_code(&hash, &record))
        .await
    {
        tracing::warn!(error = %e, "cannot store an authorization code");
        return refusal_response(error_redirect(
            &checked.redirect_uri,
            state_param,
            "server_error",
            "the server could not record the grant; try again",
        ));
    }
    tracing::info!(client_id = %checked.client_id, user = %principal.name, "authorization granted");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = state_param {
        pairs.push(("state", s));
    }
    found(&redirect_to(&checked.redirect_uri, &pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_an_existing_query_and_encode_values() {
        assert_eq!(
            redirect_to(
                "http://127.0.0.1:1/cb?x=1",
                &[("code", "a b"), ("state", "&")]
            ),
            "http://127.0.0.1:1/cb?x=1&code=a+b&state=%26"
        );
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge("plain-verifier"));
    }
}
