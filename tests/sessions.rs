//! Session lifecycle as a client notices it: signed ids keep working after their actor is gone
//! (another server with the same secret, idle reaping), tampered ids are 400, DELETEd ids are 404,
//! and requests without `Mcp-Session-Id` are served by the principal's anonymous session.

mod common;

use std::time::Duration;

use common::{eventually, session_sid, status_entries, TestServer, LATEST};
use serde_json::json;

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[actix_web::test]
async fn a_session_id_keeps_working_on_a_server_that_never_saw_it() {
    let first = TestServer::builder().session_secret(SECRET).start().await;
    let mut c = first.client();
    c.initialize(LATEST).await;
    assert!(c.rpc("tools/list", json!({})).await["result"]["tools"].is_array());
    let session = c.session.clone().unwrap();
    first.stop().await;

    let second = TestServer::builder().session_secret(SECRET).start().await;
    let mut c2 = second.client();
    c2.session = Some(session.clone());
    c2.version = c.version.clone();
    let m = c2.rpc("tools/list", json!({})).await;
    assert!(m["result"]["tools"].is_array(), "{m}");
    let (_, result) = c2.call_tool("test_simple_text", json!({}), None).await;
    assert_eq!(
        result["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );
    let status = second.status(None).await;
    let entries = status_entries(&status, &session_sid(&session));
    assert_eq!(entries.len(), 1, "re-created under its own id: {status}");
    assert_eq!(entries[0]["protocol_version"], LATEST);
    assert_eq!(entries[0]["client"], "e2e-test");

    let other = TestServer::start().await;
    let mut c3 = other.client();
    c3.session = Some(session);
    let r = c3
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    assert_eq!(
        r.status, 400,
        "an id signed with another secret is not ours"
    );
    other.stop().await;
    second.stop().await;
}

#[actix_web::test]
async fn a_tampered_session_id_is_400() {
    let server = TestServer::start().await;
    let mut c = server.client();
    c.initialize(LATEST).await;
    let id = c.session.clone().unwrap();
    let first = if id.starts_with('A') { 'B' } else { 'A' };
    c.session = Some(format!("{first}{}", &id[1..]));
    let r = c
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].is_string());
    c.session = Some("not-a-session".into());
    assert_eq!(c.get_stream(None).await.err().unwrap().status, 400);
    server.stop().await;
}

#[actix_web::test]
async fn a_deleted_session_is_gone_for_good() {
    let server = TestServer::start().await;
    let mut c = server.client();
    c.initialize(LATEST).await;
    assert_eq!(c.delete().await, 204);
    let r = c
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(c.get_stream(None).await.err().unwrap().status, 404);
    assert_eq!(c.delete().await, 404);
    let status = server.status(None).await;
    let sid = session_sid(c.session.as_deref().unwrap());
    assert!(status_entries(&status, &sid).is_empty(), "{status}");
    server.stop().await;
}

#[actix_web::test]
async fn requests_without_a_session_header_are_served() {
    let server = TestServer::start().await;
    let c = server.client();
    let m = c.rpc("tools/list", json!({})).await;
    assert!(m["result"]["tools"].as_array().unwrap().len() > 5);
    let (_, result) = c.call_tool("test_simple_text", json!({}), None).await;
    assert_eq!(
        result["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );
    assert_eq!(c.delete().await, 400, "DELETE needs the session header");
    server.stop().await;
}

#[actix_web::test]
async fn an_idle_session_is_reaped_but_its_id_still_works() {
    let server = TestServer::builder()
        .keep_alive_secs(1)
        .config(|c| {
            c.mcp.session_idle_ttl_secs = 1;
            c.mcp.reap_interval_secs = 1;
        })
        .start()
        .await;
    let mut c = server.client();
    c.initialize(LATEST).await;
    let sid = session_sid(c.session.as_deref().unwrap());
    assert_eq!(status_entries(&server.status(None).await, &sid).len(), 1);
    eventually(
        Duration::from_secs(6),
        "the idle session is reaped",
        || async {
            let status = server.status(None).await;
            (status_entries(&status, &sid).is_empty()
                && status["totals"]["reaped"].as_u64() >= Some(1))
            .then_some(())
        },
    )
    .await;
    let m = c.rpc("ping", json!({})).await;
    assert_eq!(
        m["result"],
        json!({}),
        "the reaped session's id is re-created: {m}"
    );
    let (_, result) = c.call_tool("test_simple_text", json!({}), None).await;
    assert!(result["result"].is_object(), "{result}");
    assert_eq!(status_entries(&server.status(None).await, &sid).len(), 1);
    server.stop().await;
}

#[actix_web::test]
async fn an_idle_anonymous_session_is_reaped_and_header_less_requests_still_work() {
    let server = TestServer::builder()
        .keep_alive_secs(1)
        .config(|c| {
            c.mcp.session_idle_ttl_secs = 1;
            c.mcp.reap_interval_secs = 1;
        })
        .start()
        .await;
    let c = server.client();
    assert_eq!(c.rpc("ping", json!({})).await["result"], json!({}));
    eventually(
        Duration::from_secs(6),
        "the anonymous session is reaped",
        || async {
            let status = server.status(None).await;
            (status["totals"]["anonymous_sessions"] == 0
                && status["totals"]["reaped"].as_u64() >= Some(1))
            .then_some(())
        },
    )
    .await;
    let m = c.rpc("ping", json!({})).await;
    assert_eq!(m["result"], json!({}), "{m}");
    server.stop().await;
}

#[actix_web::test]
async fn an_expired_session_id_is_404() {
    let server = TestServer::builder()
        .config(|c| c.mcp.session_lifetime_secs = 1)
        .start()
        .await;
    let mut c = server.client();
    c.initialize(LATEST).await;
    eventually(Duration::from_secs(5), "the id expires", || async {
        let r = c
            .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .await;
        (r.status == 404).then_some(())
    })
    .await;
    server.stop().await;
}

#[actix_web::test]
async fn deleting_a_session_ends_its_running_call() {
    let server = TestServer::start().await;
    let mut c = server.client();
    c.initialize(LATEST).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(
            id,
            "test_cancellable",
            json!({"seconds": 30}),
            Some(json!(1)),
        ))
        .await;
    let (_, m) = stream.next_message().await.expect("progress");
    assert_eq!(m["method"], "notifications/progress");
    assert_eq!(c.delete().await, 204);
    let rest = stream.rest().await;
    assert!(
        rest.iter().filter_map(|i| i.json()).all(|m| m["id"] != id),
        "no result after DELETE: {rest:?}"
    );
    server.stop().await;
}
