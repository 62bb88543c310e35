//! Who may call: bearer tokens (401 with a `WWW-Authenticate` challenge otherwise), sessions
//! scoped to their principal (another user's session id behaves as unknown, 404), one anonymous
//! session per principal, and `--no-auth` refused off loopback.

mod common;

use common::{TestServer, LATEST};
use dust_mcp::config::Config;
use serde_json::json;

const USERS: &[(&str, &str)] = &[("alice", "token-a"), ("bob", "token-b")];

fn ping() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})
}

#[actix_web::test]
async fn requests_without_a_valid_token_get_401_with_a_bearer_challenge() {
    let server = TestServer::builder().users(USERS).start().await;
    let r = server.client().post(&ping()).await;
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(!challenge.contains("invalid_token"), "{challenge}");
    assert!(r.json()["error"]["message"].is_string());

    let r = server.client_with_token("not-a-token").post(&ping()).await;
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    let r = server.client_with_token("token-a").post(&ping()).await;
    assert_eq!(r.status, 200);
    let get = server.client().get_stream(None).await.err().unwrap();
    assert_eq!(get.status, 401, "GET needs a token too");
    server.stop().await;
}

#[actix_web::test]
async fn another_users_session_id_behaves_as_unknown() {
    let server = TestServer::builder().users(USERS).start().await;
    let mut alice = server.client_with_token("token-a");
    alice.initialize(LATEST).await;
    let mut bob = server.client_with_token("token-b");
    bob.session = alice.session.clone();
    bob.version = alice.version.clone();
    assert_eq!(bob.post(&ping()).await.status, 404);
    assert_eq!(bob.get_stream(None).await.err().unwrap().status, 404);
    assert_eq!(bob.delete().await, 404, "bob cannot end alice's session");
    assert_eq!(alice.rpc("ping", json!({})).await["result"], json!({}));
    server.stop().await;
}

#[actix_web::test]
async fn each_user_has_their_own_anonymous_session() {
    let server = TestServer::builder()
        .users(USERS)
        .admin_token("root")
        .start()
        .await;
    let alice = server.client_with_token("token-a");
    let bob = server.client_with_token("token-b");
    // Alice silences logging in her header-less session; Bob's must not be affected.
    let m = alice
        .rpc("logging/setLevel", json!({"level": "error"}))
        .await;
    assert_eq!(m["result"], json!({}));
    let logs = |notes: &[serde_json::Value]| {
        notes
            .iter()
            .filter(|n| n["method"] == "notifications/message")
            .count()
    };
    let (notes, _) = bob
        .call_tool("test_tool_with_logging", json!({}), None)
        .await;
    assert_eq!(logs(&notes), 3, "bob's session keeps the default level");
    let (notes, _) = alice
        .call_tool("test_tool_with_logging", json!({}), None)
        .await;
    assert_eq!(logs(&notes), 0, "alice's level applies to alice only");

    let status = server.status(Some("root")).await;
    let mut anon: Vec<&str> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["anonymous"] == true)
        .map(|s| s["principal"].as_str().unwrap())
        .collect();
    anon.sort();
    assert_eq!(anon, vec!["alice", "bob"], "{status}");
    server.stop().await;
}

#[actix_web::test]
async fn no_auth_is_refused_off_loopback() {
    let config = Config {
        no_auth: true,
        bind: "0.0.0.0:0".parse().unwrap(),
        data_dir: std::env::temp_dir().join("dust-mcp-e2e-never-created"),
        ..Config::default()
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("loopback"), "{err}");
    let err = match dust_mcp::server::start(config).await {
        Ok(_) => panic!("a no-auth server on 0.0.0.0 must not start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("loopback"), "{err}");
    let loopback = Config {
        no_auth: true,
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    loopback.validate().unwrap();
}
