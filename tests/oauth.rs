//! Claude connects with OAuth 2.1 (issue 6): discovery documents, dynamic registration and
//! client metadata documents, the sign-in page (CSRF, rate limits, deny), PKCE, `resource`,
//! single-use codes, refresh rotation with reuse detection, revocation, expiry, scopes, lazy
//! authentication, CORS, and grants that survive a restart.

mod common;
#[path = "oauth/support.rs"]
mod support;

use std::collections::HashMap;

use common::{http, LATEST};
use dust_mcp::config::Config;
use serde_json::{json, Value};
use support::*;

#[actix_web::test]
async fn discovery_documents_describe_the_resource_and_the_authorization_server_with_cors() {
    let server = oauth_server().start().await;
    let issuer = server.url("");
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = get(&server, path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), "*");
        let prm = r.json();
        assert_eq!(prm["resource"], server.url("/mcp"));
        assert_eq!(prm["authorization_servers"], json!([issuer]));
        assert_eq!(prm["scopes_supported"], json!(["mcp"]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let m = get(&server, path).await.json();
        assert_eq!(m["issuer"], issuer);
        assert_eq!(m["token_endpoint"], server.url("/token"));
        assert_eq!(m["registration_endpoint"], server.url("/register"));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(
            m["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_post", "client_secret_basic"])
        );
        assert_eq!(m["client_id_metadata_document_supported"], true);
    }
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/token",
        "/register",
    ] {
        let r = answer(
            http()
                .request(awc::http::Method::OPTIONS, server.url(path))
                .insert_header(("Origin", "https://claude.ai"))
                .insert_header(("Access-Control-Request-Method", "POST"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(r.status == 204 || r.status == 200, "{path}: {}", r.status);
        assert_eq!(r.header("access-control-allow-origin"), "*");
        let allowed = r.header("access-control-allow-headers");
        assert!(
            allowed.contains("mcp-protocol-version") && allowed.contains("authorization"),
            "{allowed}"
        );
    }
    // A browser-based client on another origin may read the metadata.
    let r = answer(
        http()
            .get(server.url("/.well-known/oauth-authorization-server"))
            .insert_header(("Origin", "https://inspector.example"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    server.stop().await;
}

#[actix_web::test]
async fn a_request_without_a_valid_token_gets_a_challenge_naming_the_metadata() {
    let server = oauth_server().start().await;
    let metadata = server.url("/.well-known/oauth-protected-resource/mcp");
    let r = server
        .client()
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(r#"Bearer resource_metadata="{metadata}", scope="mcp""#)
    );
    let (status, challenge) = ping_status(&server, "dmcp_at_forged").await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!(r#"Bearer error="invalid_token", resource_metadata="{metadata}", scope="mcp""#)
    );
    assert_eq!(
        ping_status(&server, "token-a").await.0,
        200,
        "personal access tokens still work"
    );
    server.stop().await;
}

#[actix_web::test]
async fn claude_registers_signs_in_and_its_token_acts_as_the_person_who_signed_in() {
    let server = oauth_server().start().await;
    // Claude may register twice per connect attempt: both registrations work.
    let first = public_client(&server).await;
    let second = register(
        &server,
        json!({"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback", REDIRECT],
               "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    assert_eq!(second.status, 201);
    let reg = second.json();
    assert!(reg["client_secret_expires_at"].is_i64(), "{reg}");
    let (second, secret) = (
        reg["client_id"].as_str().unwrap().to_owned(),
        reg["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_ne!(first, second);

    let page = get(&server, &authorize_query(&server, &second, &[])).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert!(
        page.body.contains("Claude") && page.body.contains("127.0.0.1:53682"),
        "names the client and where it returns"
    );
    assert!(page.body.contains("<label for=\"token\">"));
    let r = submit(&server, &hidden_fields(&page.body), "token-a", "approve").await;
    assert_eq!(r.status, 302);
    assert!(
        !r.body.contains("token-a") && !r.header("location").contains("token-a"),
        "the PAT is never echoed"
    );
    let code = r.redirect_query()["code"].clone();
    let resource = server.url("/mcp");
    let tokens = post_form(
        &server,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &second),
            ("client_secret", &secret),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ],
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let t = tokens.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "mcp");
    assert!(t["expires_in"].as_i64().unwrap() > 0);
    let access = t["access_token"].as_str().unwrap();

    // Same principal as alice's PAT: her session accepts the OAuth token, bob's PAT does not.
    let mut alice = server.client_with_token("token-a");
    alice.initialize(LATEST).await;
    let mut via_oauth = server.client_with_token(access);
    via_oauth.session = alice.session.clone();
    via_oauth.version = alice.version.clone();
    assert_eq!(via_oauth.rpc("ping", json!({})).await["result"], json!({}));
    let mut bob = server.client_with_token("token-b");
    bob.session = alice.session.clone();
    bob.version = alice.version.clone();
    assert_eq!(
        bob.post(&json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
            .await
            .status,
        404
    );
    let list = via_oauth
        .rpc(
            "tools/call",
            json!({"name": "health_list_files", "arguments": {}}),
        )
        .await;
    assert!(list["result"].is_object(), "{list}");

    // A confidential client without its secret is refused as a client.
    let r = refresh(&server, &second, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_client");
    server.stop().await;
}

#[actix_web::test]
async fn pkce_resource_redirect_and_client_mistakes_are_refused() {
    let server = oauth_server().start().await;
    let client = public_client(&server).await;
    // Plain PKCE and a missing challenge: redirected errors.
    for extra in [
        [("code_challenge_method", "plain")],
        [("code_challenge", "")],
    ] {
        let r = get(&server, &authorize_query(&server, &client, &extra)).await;
        assert_eq!(r.status, 302, "{}", r.body);
        assert_eq!(r.redirect_query()["error"], "invalid_request");
        assert_eq!(r.redirect_query()["state"], "st-1");
    }
    let r = get(
        &server,
        &authorize_query(
            &server,
            &client,
            &[("resource", "https://other.example/mcp")],
        ),
    )
    .await;
    assert_eq!(r.redirect_query()["error"], "invalid_target");
    let r = get(
        &server,
        &authorize_query(&server, &client, &[("scope", "admin")]),
    )
    .await;
    assert_eq!(r.redirect_query()["error"], "invalid_scope");
    // An unregistered redirect URI or unknown client: a page, never a redirect.
    let r = get(
        &server,
        &authorize_query(
            &server,
            &client,
            &[("redirect_uri", "https://evil.example/cb")],
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_empty());
    let r = get(
        &server,
        &authorize_query(&server, "dmcp_client_unknown", &[]),
    )
    .await;
    assert_eq!(r.status, 400);
    // Registration refuses redirect URIs outside the policy.
    let r = register(
        &server,
        json!({"redirect_uris": ["https://evil.example/cb"]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_redirect_uri");

    // PKCE failure at the token endpoint; the right verifier still works afterwards.
    let code = code_for(&server, &client, &[], "token-a").await;
    let r = exchange(
        &server,
        &client,
        &code,
        "wrong-verifier-wrong-verifier-wrong-verifier-x",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = post_form(
        &server,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example/mcp"),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_target");
    let r = exchange(&server, "dmcp_client_deleted", &code, VERIFIER).await;
    assert_eq!(
        r.status, 401,
        "an unknown client makes Claude register again"
    );
    assert_eq!(r.json()["error"], "invalid_client");
    let first = exchange(&server, &client, &code, VERIFIER).await;
    assert_eq!(first.status, 200);
    // The code is single use, and its second use revokes what the first gave.
    let again = exchange(&server, &client, &code, VERIFIER).await;
    assert_eq!(again.json()["error"], "invalid_grant");
    assert_eq!(
        ping_status(&server, first.json()["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
    let r = post_form(
        &server,
        "/token",
        &[("grant_type", "password"), ("client_id", &client)],
    )
    .await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    server.stop().await;
}

#[actix_web::test]
async fn a_refresh_repeated_within_the_grace_gets_another_pair_and_keeps_the_grant() {
    // Claude refreshes from several machines and retries refreshes whose answer it lost: the
    // same refresh token twice in a moment must not sign the user out.
    let server = oauth_server().start().await;
    let (client, t) = grant(&server).await;
    let r1 = t["refresh_token"].as_str().unwrap().to_owned();
    let first = refresh(&server, &client, &r1).await;
    let again = refresh(&server, &client, &r1).await;
    assert_eq!((first.status, again.status), (200, 200), "{}", again.body);
    let (t1, t2) = (first.json(), again.json());
    assert_ne!(t1["refresh_token"], t2["refresh_token"]);
    for t in [&t1, &t2] {
        let access = t["access_token"].as_str().unwrap();
        assert_eq!(ping_status(&server, access).await.0, 200, "both pairs work");
    }
    // Each new refresh token rotates on its own.
    let next = refresh(&server, &client, t2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(next.status, 200);
    server.stop().await;
}

#[actix_web::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_grant() {
    // No grace: any second use of a rotated refresh token is reuse.
    let server = oauth_server()
        .config(|c| c.auth.refresh_reuse_grace_secs = 0)
        .start()
        .await;
    let (client, t) = grant(&server).await;
    let r1 = t["refresh_token"].as_str().unwrap().to_owned();
    let rotated = refresh(&server, &client, &r1).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let t2 = rotated.json();
    let (a2, r2) = (
        t2["access_token"].as_str().unwrap(),
        t2["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(r2, r1);
    assert_eq!(ping_status(&server, a2).await.0, 200);
    let reuse = refresh(&server, &client, &r1).await;
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(
        ping_status(&server, a2).await.0,
        401,
        "the whole family is revoked"
    );
    assert_eq!(
        refresh(&server, &client, r2).await.json()["error"],
        "invalid_grant"
    );
    server.stop().await;
}

#[actix_web::test]
async fn expired_and_revoked_tokens_get_401_with_invalid_token() {
    let server = oauth_server()
        .config(|c| c.auth.access_token_ttl_secs = 0)
        .start()
        .await;
    let (client, t) = grant(&server).await;
    let (status, challenge) = ping_status(&server, t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 401, "an access token past its lifetime");
    assert!(challenge.contains(r#"error="invalid_token""#));
    server.stop().await;

    let server = oauth_server().start().await;
    let (client2, t) = grant(&server).await;
    assert_ne!(client, client2);
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(ping_status(&server, access).await.0, 200);
    let r = post_form(
        &server,
        "/revoke",
        &[("token", access), ("client_id", &client2)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(ping_status(&server, access).await.0, 401);
    let refresh_token = t["refresh_token"].as_str().unwrap();
    let r = post_form(
        &server,
        "/revoke",
        &[("token", refresh_token), ("client_id", &client2)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        refresh(&server, &client2, refresh_token).await.json()["error"],
        "invalid_grant"
    );
    let r = post_form(
        &server,
        "/revoke",
        &[("token", "unknown"), ("client_id", &client2)],
    )
    .await;
    assert_eq!(r.status, 200, "RFC 7009: unknown tokens are not an error");
    server.stop().await;
}

#[actix_web::test]
async fn a_token_without_the_mcp_scope_gets_403_insufficient_scope() {
    let server = oauth_server().start().await;
    let client = public_client(&server).await;
    let code = code_for(&server, &client, &[("scope", "offline_access")], "token-a").await;
    let t = exchange(&server, &client, &code, VERIFIER).await.json();
    let (status, challenge) = ping_status(&server, t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="mcp""#), "{challenge}");
    server.stop().await;
}

#[actix_web::test]
async fn the_sign_in_form_is_single_use_bound_to_its_request_and_rate_limited() {
    let server = oauth_server()
        .config(|c| c.auth.sign_in_attempts_per_minute = 5)
        .start()
        .await;
    let client = public_client(&server).await;
    let page = get(&server, &authorize_query(&server, &client, &[])).await;
    let fields = hidden_fields(&page.body);
    // Tampered request: the CSRF token is bound to the state it was issued for.
    let tampered: Vec<_> = fields
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if k == "state" {
                    "other".into()
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let r = submit(&server, &tampered, "token-a", "approve").await;
    assert_eq!(r.status, 400, "{}", r.body);
    // A wrong PAT re-shows the form without echoing it.
    let r = submit(&server, &fields, "token-wrong", "approve").await;
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("token-wrong"));
    // The form it answered with was consumed: replaying it is refused.
    let r = submit(&server, &fields, "token-a", "approve").await;
    assert_eq!(r.status, 400);
    // Deny sends the person back with access_denied.
    let page = get(&server, &authorize_query(&server, &client, &[])).await;
    let r = submit(&server, &hidden_fields(&page.body), "", "deny").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.redirect_query()["error"], "access_denied");
    assert_eq!(r.redirect_query()["state"], "st-1");
    // Five attempts were made from this address: the sixth is refused.
    let page = get(&server, &authorize_query(&server, &client, &[])).await;
    let r = submit(&server, &hidden_fields(&page.body), "token-a", "approve").await;
    assert_eq!(r.status, 302);
    let page = get(&server, &authorize_query(&server, &client, &[])).await;
    let r = submit(&server, &hidden_fields(&page.body), "token-a", "approve").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), "60");
    server.stop().await;
}

#[actix_web::test]
async fn a_client_metadata_document_is_fetched_and_checked() {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let doc_base = format!("http://{}", listener.local_addr().unwrap());
    let base = doc_base.clone();
    let docs = HttpServer::new(move || {
        let base = base.clone();
        App::new()
            .route("/client.json", web::get().to({
                let base = base.clone();
                move || {
                    let id = format!("{base}/client.json");
                    async move { HttpResponse::Ok().json(json!({"client_id": id, "client_name": "Doc Client", "redirect_uris": [REDIRECT]})) }
                }
            }))
            .route("/liar.json", web::get().to(|| async { HttpResponse::Ok().json(json!({"client_id": "https://someone.else/c.json", "redirect_uris": [REDIRECT]})) }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let docs_handle = docs.handle();
    actix_rt::spawn(docs);

    let server = oauth_server()
        .config(|c| c.auth.allow_http_client_metadata = true)
        .start()
        .await;
    let client_id = format!("{doc_base}/client.json");
    let page = get(&server, &authorize_query(&server, &client_id, &[])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Doc Client"));
    let r = submit(&server, &hidden_fields(&page.body), "token-b", "approve").await;
    let code = r.redirect_query()["code"].clone();
    let t = exchange(&server, &client_id, &code, VERIFIER).await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(
        ping_status(&server, t.json()["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    // A document whose client_id is not its own URL, and a redirect it does not list.
    let r = get(
        &server,
        &authorize_query(&server, &format!("{doc_base}/liar.json"), &[]),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = get(
        &server,
        &authorize_query(
            &server,
            &client_id,
            &[("redirect_uri", "http://127.0.0.1:1/other")],
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    server.stop().await;

    // Without the flag, http document URLs are not client ids at all.
    let server = oauth_server().start().await;
    assert_eq!(
        get(&server, &authorize_query(&server, &client_id, &[]))
            .await
            .status,
        400
    );
    server.stop().await;
    docs_handle.stop(false).await;
}

#[actix_web::test]
async fn lazy_authentication_serves_discovery_and_asks_for_sign_in_on_user_data() {
    let server = oauth_server()
        .config(|c| c.auth.public_discovery = true)
        .start()
        .await;
    let mut anon = server.client();
    anon.initialize(LATEST).await;
    let tools = anon.rpc("tools/list", json!({})).await;
    assert!(tools["result"]["tools"].as_array().unwrap().len() > 3);
    let fixture = anon
        .rpc(
            "tools/call",
            json!({"name": "test_simple_text", "arguments": {}}),
        )
        .await;
    assert!(fixture["result"]["content"].is_array(), "{fixture}");
    let r = anon
        .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "health_list_files", "arguments": {}}}))
        .await;
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    // A bad token is still refused, so a client with a stale token re-authorizes.
    assert_eq!(ping_status(&server, "dmcp_at_stale").await.0, 401);
    assert_eq!(ping_status(&server, "token-a").await.0, 200);
    server.stop().await;
}

#[actix_web::test]
async fn grants_survive_a_restart_on_the_same_data_dir() {
    let dir = std::env::temp_dir().join(format!(
        "dust-mcp-oauth-restart-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let config = || {
        let mut c = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.clone(),
            // A fixed public URL: the audience must not change with the port.
            public_url: Some("http://127.0.0.1:18999".into()),
            users: USERS
                .iter()
                .map(|(name, token)| dust_mcp::config::UserConfig {
                    name: (*name).into(),
                    token_sha256: common::sha256_hex(token),
                    full_name: None,
                    email: None,
                    timezone: None,
                    dust_api_key: None,
                })
                .collect(),
            ..Config::default()
        };
        c.http.workers = 1;
        c.http.shutdown_grace_secs = 1;
        c
    };
    let start = |c: Config| async move { dust_mcp::server::start(c).await.unwrap() };
    let running = start(config()).await;
    let base = format!("http://{}", running.addr);
    let c = http();
    let reg: Value = c
        .post(format!("{base}/register"))
        .send_json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = reg["client_id"].as_str().unwrap().to_owned();
    let ch = challenge(VERIFIER);
    let q = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client.as_str()),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", "http://127.0.0.1:18999/mcp"),
    ])
    .unwrap();
    let mut page = c.get(format!("{base}/authorize?{q}")).send().await.unwrap();
    let body = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    assert_eq!(page.status(), 200, "{body}");
    let mut form = hidden_fields(&body);
    form.push(("token".into(), "token-a".into()));
    form.push(("decision".into(), "approve".into()));
    let res = c
        .post(format!("{base}/authorize"))
        .send_form(&form)
        .await
        .unwrap();
    let location = res
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap();
    let t: Value = c
        .post(format!("{base}/token"))
        .send_form(&[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    running.shutdown().await;

    let running = start(config()).await;
    let base = format!("http://{}", running.addr);
    let status = c
        .post(format!("{base}/mcp"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", t["access_token"].as_str().unwrap()),
        ))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the access token survived the restart");
    let res = c
        .post(format!("{base}/token"))
        .send_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ])
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the refresh token and the client survived the restart"
    );
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
