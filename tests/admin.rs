//! Operator routes: `/healthz` and `/readyz` open, `/admin/status` and `/metrics` behind the
//! admin token; the status page names sessions by an 8-character prefix and never shows a full
//! session id or a token; the metrics count requests, sessions and open streams.

mod common;

use std::time::Duration;

use common::{eventually, session_sid, status_entries, TestServer, LATEST};
use serde_json::json;

const USERS: &[(&str, &str)] = &[("alice", "token-a"), ("bob", "token-b")];

async fn server() -> TestServer {
    TestServer::builder()
        .users(USERS)
        .admin_token("root")
        .keep_alive_secs(1)
        .start()
        .await
}

#[actix_web::test]
async fn health_routes_are_open() {
    let server = server().await;
    assert_eq!(server.get("/healthz", None).await.0, 200);
    assert_eq!(server.get("/readyz", None).await.0, 200);
    server.stop().await;
}

#[actix_web::test]
async fn admin_routes_need_the_admin_token() {
    let server = server().await;
    for path in ["/admin/status", "/metrics"] {
        assert_eq!(
            server.get(path, None).await.0,
            401,
            "{path} without a token"
        );
        assert_eq!(
            server.get(path, Some("token-a")).await.0,
            401,
            "{path} with a user token"
        );
        assert_eq!(
            server.get(path, Some("wrong")).await.0,
            401,
            "{path} with a wrong token"
        );
        assert_eq!(
            server.get(path, Some("root")).await.0,
            200,
            "{path} with the admin token"
        );
    }
    server.stop().await;
}

#[actix_web::test]
async fn status_lists_sessions_without_revealing_ids_or_tokens() {
    let server = server().await;
    let mut alice = server.client_with_token("token-a");
    alice.initialize("2025-06-18").await;
    let header = alice.session.clone().unwrap();
    let sid = session_sid(&header);
    let stream = alice.get_stream(None).await.unwrap();

    let (code, body) = server.get("/admin/status", Some("root")).await;
    assert_eq!(code, 200);
    for secret in [header.as_str(), sid.as_str(), "token-a", "token-b", "root"] {
        assert!(
            !body.contains(secret),
            "the status page shows {secret:?}: {body}"
        );
    }
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = status_entries(&status, &sid);
    assert_eq!(entries.len(), 1, "{status}");
    let e = &entries[0];
    assert_eq!(e["id"].as_str().unwrap().len(), 8);
    assert_eq!(e["principal"], "alice");
    assert_eq!(e["protocol_version"], "2025-06-18");
    assert_eq!(e["client"], "e2e-test");
    assert_eq!(e["open_streams"], 1, "the GET stream is open: {e}");
    assert_eq!(status["users"], 2);
    drop(stream);
    server.stop().await;
}

#[actix_web::test]
async fn metrics_count_calls_sessions_and_open_streams() {
    let server = server().await;
    let mut alice = server.client_with_token("token-a");
    alice.initialize(LATEST).await;
    let (_, result) = alice.call_tool("test_simple_text", json!({}), None).await;
    assert!(result["result"].is_object());
    let _stream = alice.get_stream(None).await.unwrap();
    let (code, text) = server.get("/metrics", Some("root")).await;
    assert_eq!(code, 200);
    assert!(
        text.contains(r#"mcp_requests_total{method="tools/call",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "mcp_sessions 1"), "{text}");
    eventually(
        Duration::from_secs(5),
        "mcp_open_streams counts the GET stream",
        || async {
            let (_, text) = server.get("/metrics", Some("root")).await;
            text.lines()
                .any(|l| l == "mcp_open_streams 1")
                .then_some(())
        },
    )
    .await;
    server.stop().await;
}

#[actix_web::test]
async fn metrics_record_how_many_events_a_resume_replayed() {
    let server = server().await;
    let mut alice = server.client_with_token("token-a");
    alice.initialize(LATEST).await;
    let mut stream = alice
        .post_stream(&alice.tool_call(
            alice.id(),
            "test_tool_with_progress",
            json!({}),
            Some(json!(1)),
        ))
        .await;
    let priming = stream.next().await.unwrap().id().unwrap().to_owned();
    let messages =
        |items: Vec<common::SseItem>| items.iter().filter(|i| i.json().is_some()).count();
    let events = messages(stream.rest().await);
    assert_eq!(events, 4, "three progress notifications and the result");
    let mut resumed = alice.get_stream(Some(&priming)).await.unwrap();
    assert_eq!(
        messages(resumed.rest().await),
        events,
        "the whole finished stream is replayed"
    );
    let (_, text) = server.get("/metrics", Some("root")).await;
    assert!(
        text.lines()
            .any(|l| l == "mcp_resume_replayed_events_count 1"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == format!("mcp_resume_replayed_events_sum {events}")),
        "{text}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn every_response_carries_a_request_id_and_a_valid_caller_id_is_echoed() {
    let server = server().await;
    let client = server.client_with_token("token-a");
    let reply = client
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    assert_eq!(reply.status, 200);
    let id = reply.header("x-request-id").expect("a request id");
    assert!(
        id.len() >= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{id}"
    );
    let echoed = client
        .send(
            client
                .post_request()
                .insert_header(("X-Request-Id", "trace-42")),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
        )
        .await;
    assert_eq!(echoed.header("x-request-id").as_deref(), Some("trace-42"));
    // Refused requests are tagged too.
    let refused = client
        .send(
            client
                .post_request()
                .insert_header(("Host", "evil.example.com")),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 421);
    assert!(refused.header("x-request-id").is_some());
    server.stop().await;
}

#[actix_web::test]
async fn shutdown_closes_open_streams_instead_of_waiting_for_them() {
    let server = server().await;
    let mut client = server.client_with_token("token-a");
    client.initialize(LATEST).await;
    let mut standalone = client.get_stream(None).await.expect("GET stream");
    let id = client.id();
    let mut call = client
        .post_stream(&client.tool_call(id, "test_cancellable", json!({"seconds": 60}), None))
        .await;
    let started = actix::clock::Instant::now();
    // Both streams end once the server shuts down; the bounded reads fail the test otherwise.
    let (_, a, b) = futures::join!(server.stop(), standalone.rest(), call.rest());
    assert!(
        a.iter().all(|i| i.json().is_none()),
        "no message on the idle stream"
    );
    assert!(b
        .iter()
        .filter_map(|i| i.json())
        .all(|m| !common::is_response(&m)));
    assert!(started.elapsed() < common::BOUND);
}
