//! Who the OAuth client is: dynamic registration (RFC 7591 `POST /register`), client ID
//! metadata documents (a `client_id` that is an https URL, fetched with size and time limits),
//! the redirect-URI policy, and client authentication at `/token` and `/revoke`.

use std::time::Duration;

use actix_web::{http::Uri, web, HttpRequest, HttpResponse};
use actors::store::oauth::{unix_now, ClientRecord};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{client_address, fresh_secret, sha256_hex, OAuth, OAuthError, CLAUDE_CALLBACKS};
use crate::app::AppState;

/// Largest client metadata document read.
const MAX_METADATA_BYTES: usize = 64 * 1024;
/// How long fetching a client metadata document may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirect URIs one registration may list.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest accepted client name (longer ones are cut) and redirect URI.
const MAX_NAME_CHARS: usize = 100;
const MAX_URI_BYTES: usize = 2048;

/// A client, registered or described by its metadata document.
#[derive(Debug, Clone)]
pub struct Client {
    /// The name shown on the sign-in page.
    pub name: String,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// Whether `uri` may receive codes: Claude's callbacks, loopback (any port, RFC 8252 §7.3),
/// or an operator-listed URI.
pub fn redirect_allowed(uri: &str, extra: &[String]) -> bool {
    if CLAUDE_CALLBACKS.contains(&uri) || extra.iter().any(|e| e == uri) {
        return true;
    }
    let Ok(parsed) = uri.parse::<Uri>() else {
        return false;
    };
    parsed.scheme_str() == Some("http")
        && matches!(parsed.host(), Some("127.0.0.1" | "localhost" | "[::1]"))
        && !uri.contains('#')
}

/// The host a redirect URI sends the person back to, for the sign-in page.
pub fn redirect_host(uri: &str) -> String {
    uri.parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| uri.to_owned())
}

/// Registration request fields we read (RFC 7591 §2); the rest is ignored.
#[derive(Debug, Deserialize)]
pub struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    scope: Option<String>,
}

/// `POST /register`: every registration gets a fresh client, so a client registering twice
/// (Claude may, mcp.md §6) ends up with two working ones.
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let oauth = &state.oauth;
    if !oauth
        .registrations
        .hit(&client_address(&req, oauth.settings.trust_forwarded_for))
    {
        return Err(OAuthError::TooManyRequests);
    }
    let reg: Registration = serde_json::from_slice(&body)
        .map_err(|e| OAuthError::InvalidClientMetadata(format!("not a registration: {e}")))?;
    if reg.redirect_uris.is_empty() || reg.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::InvalidRedirectUri(format!(
            "redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"
        )));
    }
    if let Some(bad) = reg.redirect_uris.iter().find(|u| {
        u.len() > MAX_URI_BYTES || !redirect_allowed(u, &oauth.settings.allowed_redirect_uris)
    }) {
        return Err(OAuthError::InvalidRedirectUri(format!(
            "redirect URI {bad:?} is not allowed: use Claude's callback, a loopback URI, or ask the operator to add it to auth.allowed_redirect_uris"
        )));
    }
    let method = reg
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".into());
    if !matches!(
        method.as_str(),
        "none" | "client_secret_post" | "client_secret_basic"
    ) {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "token_endpoint_auth_method {method:?} is not supported"
        )));
    }
    if let Some(bad) = reg
        .grant_types
        .iter()
        .flatten()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "grant type {bad:?} is not supported"
        )));
    }
    let name: String = reg
        .client_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Unnamed client")
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let secret = (method != "none").then(|| fresh_secret("dmcp_cs_"));
    let record = ClientRecord {
        client_id: fresh_secret("dmcp_client_")[..44].to_owned(),
        secret_sha256: secret.as_deref().map(sha256_hex),
        name,
        redirect_uris: reg.redirect_uris.clone(),
        auth_method: method.clone(),
        created_at: unix_now(),
    };
    let stored = record.clone();
    oauth.store.run(move |s| s.insert_client(&stored)).await?;
    tracing::info!(client_id = %record.client_id, client_name = %record.name, "OAuth client registered");
    let mut body = json!({
        "client_id": record.client_id,
        "client_id_issued_at": record.created_at,
        "client_name": record.name,
        "redirect_uris": record.redirect_uris,
        "token_endpoint_auth_method": method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    if let Some(scope) = reg.scope {
        body["scope"] = Value::String(scope);
    }
    if let Some(secret) = secret {
        body["client_secret"] = Value::String(secret);
        // RFC 7591 §3.2.1: 0 means the secret does not expire; an integer either way.
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// Refuses a URL whose host resolves to a loopback, private, link-local, shared (CGNAT) or
/// otherwise non-public address. (Resolution happens again when connecting; a DNS answer that
/// changes in between is not caught here.)
async fn ensure_public_host(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|_| "not a valid URL".to_owned())?;
    let host = uri
        .host()
        .ok_or("the URL has no host")?
        .trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host} ({e})"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    match addrs.iter().find(|a| !is_public(a.ip())) {
        Some(a) => Err(format!(
            "{host} resolves to the non-public address {}",
            a.ip()
        )),
        None => Ok(()),
    }
}

/// Whether an address is on the public Internet.
fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..=127).contains(&b)) // shared address space (CGNAT)
                || a >= 224) // multicast and reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

impl OAuth {
    /// Whether `client_id` names a client metadata document we may fetch.
    pub(super) fn is_metadata_url(&self, client_id: &str) -> bool {
        let Ok(uri) = client_id.parse::<Uri>() else {
            return false;
        };
        let has_path = uri.path().len() > 1;
        match uri.scheme_str() {
            Some("https") => has_path && !client_id.contains('#'),
            Some("http") => {
                self.settings.allow_http_client_metadata
                    && uri.host() == Some("127.0.0.1")
                    && has_path
            }
            _ => false,
        }
    }

    /// The client behind `client_id`: registered, or described by its metadata document.
    /// `Ok(None)` for an unknown client; `Err` with a reason a person can read otherwise.
    pub(super) async fn resolve_client(
        &self,
        client_id: &str,
    ) -> Result<Option<Client>, OAuthError> {
        if self.is_metadata_url(client_id) {
            return self.fetch_metadata_document(client_id).await.map(Some);
        }
        let id = client_id.to_owned();
        let record = self.store.run(move |s| s.client(&id)).await?;
        Ok(record.map(|r| Client {
            name: r.name,
            redirect_uris: r.redirect_uris,
        }))
    }

    async fn fetch_metadata_document(&self, url: &str) -> Result<Client, OAuthError> {
        let bad = |why: String| {
            OAuthError::InvalidClient(format!("client metadata document {url}: {why}"))
        };
        // A client_id URL is chosen by whoever registers; never let it make us fetch from our
        // own network (SSRF). The test-only http://127.0.0.1 documents are the one exception.
        if url.starts_with("https://") {
            ensure_public_host(url).await.map_err(bad)?;
        }
        let http = awc::Client::builder()
            .timeout(METADATA_TIMEOUT)
            .disable_redirects()
            .finish();
        let mut res = http
            .get(url)
            .insert_header(("Accept", "application/json"))
            .send()
            .await
            .map_err(|e| bad(format!("cannot fetch it ({e})")))?;
        if !res.status().is_success() {
            return Err(bad(format!("answered HTTP {}", res.status().as_u16())));
        }
        let body = res.body().limit(MAX_METADATA_BYTES).await.map_err(|e| {
            bad(format!(
                "cannot read it within {MAX_METADATA_BYTES} bytes ({e})"
            ))
        })?;
        let doc: Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON ({e})")))?;
        if doc["client_id"].as_str() != Some(url) {
            return Err(bad("its client_id is not its own URL".into()));
        }
        let redirect_uris: Vec<String> = doc["redirect_uris"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if redirect_uris.is_empty() {
            return Err(bad("it lists no redirect_uris".into()));
        }
        let name = doc["client_name"]
            .as_str()
            .map(|n| n.chars().take(MAX_NAME_CHARS).collect())
            .unwrap_or_else(|| redirect_host(url));
        Ok(Client {
            name,
            redirect_uris,
        })
    }

    /// Authenticates the client of a `/token` or `/revoke` request (RFC 6749 §2.3:
    /// `client_secret_basic`, `client_secret_post`, or a public client's bare `client_id`).
    /// An unknown client is 401 `invalid_client`, which makes Claude register again.
    pub(super) async fn authenticate_client(
        &self,
        req: &HttpRequest,
        form_id: Option<&str>,
        form_secret: Option<&str>,
    ) -> Result<String, OAuthError> {
        let basic = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
            .map(|b64| {
                let decoded = STANDARD
                    .decode(b64.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        OAuthError::InvalidClient("malformed Basic credentials".into())
                    })?;
                let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                    OAuthError::InvalidClient("malformed Basic credentials".into())
                })?;
                Ok::<_, OAuthError>((form_decode(id), form_decode(secret)))
            })
            .transpose()?;
        let (id, secret) = match (&basic, form_id) {
            (Some((id, secret)), _) => (id.clone(), Some(secret.clone())),
            (None, Some(id)) => (id.to_owned(), form_secret.map(str::to_owned)),
            (None, None) => {
                return Err(OAuthError::InvalidClient(
                    "client authentication required (client_id)".into(),
                ))
            }
        };
        if self.is_metadata_url(&id) {
            return Ok(id);
        }
        let lookup = id.clone();
        let Some(client) = self.store.run(move |s| s.client(&lookup)).await? else {
            return Err(OAuthError::InvalidClient(
                "unknown client_id; register again".into(),
            ));
        };
        match (&client.secret_sha256, secret) {
            (None, _) => Ok(id),
            (Some(expected), Some(given)) if *expected == sha256_hex(&given) => Ok(id),
            _ => Err(OAuthError::InvalidClient(
                "client authentication failed".into(),
            )),
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of a Basic credential part (RFC 6749 §2.3.1).
fn form_decode(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, v)| v)
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn metadata_documents_on_our_own_network_are_refused_before_any_fetch() {
        for url in [
            "https://127.0.0.1:9/client.json",
            "https://localhost/client.json",
            "https://[::1]/c.json",
        ] {
            let err = ensure_public_host(url).await.unwrap_err();
            assert!(err.contains("non-public"), "{url}: {err}");
        }
    }

    #[test]
    fn claude_and_loopback_redirects_are_allowed_and_others_are_not() {
        assert!(redirect_allowed(
            "https://claude.ai/api/mcp/auth_callback",
            &[]
        ));
        assert!(redirect_allowed(
            "https://claude.com/api/mcp/auth_callback",
            &[]
        ));
        assert!(redirect_allowed("http://127.0.0.1:53127/callback", &[]));
        assert!(redirect_allowed("http://localhost:9/cb", &[]));
        assert!(!redirect_allowed("https://evil.example/cb", &[]));
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "160.79.106.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        assert!(!redirect_allowed("http://127.0.0.1.evil.example/cb", &[]));
        assert!(!redirect_allowed("https://claude.ai/other", &[]));
        assert!(redirect_allowed(
            "https://app.example/cb",
            &["https://app.example/cb".into()]
        ));
        assert_eq!(redirect_host("https://claude.ai/api/x"), "claude.ai");
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
    }
}
