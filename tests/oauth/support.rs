//! Helpers of `tests/oauth.rs`: raw HTTP answers, registration, the sign-in form played as a
//! browser would, and the token endpoint.

use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{http, TestServer};

pub const USERS: &[(&str, &str)] = &[("alice", "token-a"), ("bob", "token-b")];
pub const REDIRECT: &str = "http://127.0.0.1:53682/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more-chars";

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A whole reply: status, headers we look at, body.
pub struct Answer {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// The query of the `Location` redirect, decoded.
    pub fn redirect_query(&self) -> HashMap<String, String> {
        let location = self.header("location");
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
        serde_urlencoded::from_str(query).unwrap()
    }
}

pub async fn answer(
    mut res: awc::ClientResponse<
        impl futures::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
    >,
) -> Answer {
    let body = res.body().limit(1 << 20).await.unwrap();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(server: &TestServer, path: &str) -> Answer {
    answer(http().get(server.url(path)).send().await.unwrap()).await
}

pub async fn post_form(server: &TestServer, path: &str, form: &[(&str, &str)]) -> Answer {
    answer(
        http()
            .post(server.url(path))
            .send_form(&form)
            .await
            .unwrap(),
    )
    .await
}

pub async fn register(server: &TestServer, body: Value) -> Answer {
    answer(
        http()
            .post(server.url("/register"))
            .send_json(&body)
            .await
            .unwrap(),
    )
    .await
}

/// Registers a public client with [`REDIRECT`]; its client id.
pub async fn public_client(server: &TestServer) -> String {
    let r = register(
        server,
        json!({"client_name": "Test Client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["client_id"].as_str().unwrap().to_owned()
}

pub fn authorize_query(server: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let resource = server.url("/mcp");
    let challenge = challenge(VERIFIER);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "st-1"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("resource", &resource),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    format!(
        "/authorize?{}",
        serde_urlencoded::to_string(&pairs).unwrap()
    )
}

/// The hidden fields of the sign-in form.
pub fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let name = rest
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (unescape(name), unescape(value))
        })
        .collect()
}

/// Submits the sign-in form with `token` and `decision`.
pub async fn submit(
    server: &TestServer,
    fields: &[(String, String)],
    token: &str,
    decision: &str,
) -> Answer {
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("token", token));
    form.push(("decision", decision));
    post_form(server, "/authorize", &form).await
}

/// Signs in as `token` and approves; the authorization code.
pub async fn code_for(
    server: &TestServer,
    client_id: &str,
    extra: &[(&str, &str)],
    token: &str,
) -> String {
    let page = get(server, &authorize_query(server, client_id, extra)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = submit(server, &hidden_fields(&page.body), token, "approve").await;
    assert_eq!(r.status, 302, "{}", r.body);
    let q = r.redirect_query();
    assert_eq!(q["state"], "st-1");
    q["code"].clone()
}

pub async fn exchange(server: &TestServer, client_id: &str, code: &str, verifier: &str) -> Answer {
    let resource = server.url("/mcp");
    post_form(
        server,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", verifier),
            ("resource", &resource),
        ],
    )
    .await
}

pub async fn refresh(server: &TestServer, client_id: &str, refresh_token: &str) -> Answer {
    post_form(
        server,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await
}

/// A full grant for alice: (client id, token response).
pub async fn grant(server: &TestServer) -> (String, Value) {
    let client = public_client(server).await;
    let code = code_for(server, &client, &[], "token-a").await;
    let r = exchange(server, &client, &code, VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    (client, r.json())
}

/// The status of a `ping` to `/mcp` with `token`.
pub async fn ping_status(server: &TestServer, token: &str) -> (u16, String) {
    let r = server
        .client_with_token(token)
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    (r.status, r.header("www-authenticate").unwrap_or_default())
}

pub fn oauth_server() -> crate::common::TestServerBuilder {
    TestServer::builder().users(USERS)
}
