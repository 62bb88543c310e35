//! Cancellation and concurrency (MCP basic/utilities/cancellation): a cancelled call stops its
//! work and sends no result; a slow call never blocks other requests of its session; a panic in a
//! tool fails only that request (-32603) and the session, and every other session, keep serving.

mod common;

use std::time::Duration;

use common::{eventually, is_response, McpClient, TestServer, LATEST};
use serde_json::{json, Value};

async fn session(server: &TestServer) -> McpClient {
    let mut c = server.client();
    c.initialize(LATEST).await;
    c
}

/// (finished, dropped) runs of `test_cancellable` so far.
async fn fixture_stats(c: &McpClient) -> (u64, u64) {
    let (_, m) = c.call_tool("test_fixture_stats", json!({}), None).await;
    let s = &m["result"]["structuredContent"];
    (
        s["finished"].as_u64().unwrap(),
        s["dropped"].as_u64().unwrap(),
    )
}

/// Waits for the first progress notification of a running call.
async fn wait_for_progress(stream: &mut common::SseStream) -> Value {
    loop {
        let (_, m) = stream.next_message().await.expect("progress while running");
        if m["method"] == "notifications/progress" {
            return m;
        }
    }
}

#[actix_web::test]
async fn a_cancelled_call_stops_its_work_and_sends_no_result() {
    let server = TestServer::start().await;
    let c = session(&server).await;
    let (finished, dropped) = fixture_stats(&c).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(
            id,
            "test_cancellable",
            json!({"seconds": 30}),
            Some(json!(1)),
        ))
        .await;
    wait_for_progress(&mut stream).await;
    let r = c
        .post(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": id, "reason": "the user changed their mind"}}),
        )
        .await;
    assert_eq!(r.status, 202);
    let rest = stream.rest().await;
    assert!(
        !rest
            .iter()
            .filter_map(|i| i.json())
            .any(|m| is_response(&m)),
        "no response after cancellation: {rest:?}"
    );
    eventually(
        Duration::from_secs(5),
        "the cancelled run is dropped",
        || async {
            let now = fixture_stats(&c).await;
            (now.1 == dropped + 1).then_some(now)
        },
    )
    .await;
    assert_eq!(
        fixture_stats(&c).await.0,
        finished,
        "the run did not finish"
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_slow_call_does_not_block_other_requests_of_its_session() {
    let server = TestServer::start().await;
    let c = session(&server).await;
    let id = c.id();
    let mut slow = c
        .post_stream(&c.tool_call(
            id,
            "test_cancellable",
            json!({"seconds": 30}),
            Some(json!("slow")),
        ))
        .await;
    wait_for_progress(&mut slow).await;
    // Each of these would time out if it queued behind the 30-second call.
    assert_eq!(c.rpc("ping", json!({})).await["result"], json!({}));
    assert!(c.rpc("tools/list", json!({})).await["result"]["tools"].is_array());
    let (_, m) = c.call_tool("test_simple_text", json!({}), None).await;
    assert!(m["result"]["content"].is_array());
    let p = wait_for_progress(&mut slow).await;
    assert_eq!(
        p["params"]["progressToken"], "slow",
        "the slow call is still running"
    );
    c.post(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id}}))
        .await;
    server.stop().await;
}

#[actix_web::test]
async fn a_panic_while_running_fails_only_that_request() {
    let server = TestServer::start().await;
    let c = session(&server).await;
    let other = session(&server).await;
    let (_, m) = c
        .call_tool("test_panic", json!({"where": "run"}), None)
        .await;
    assert_eq!(m["error"]["code"], -32603, "{m}");
    assert_eq!(c.rpc("ping", json!({})).await["result"], json!({}));
    assert_eq!(other.rpc("ping", json!({})).await["result"], json!({}));
    server.stop().await;
}

#[actix_web::test]
async fn a_panic_while_starting_resets_the_session_which_keeps_its_id() {
    let server = TestServer::start().await;
    let c = session(&server).await;
    let other = session(&server).await;
    let (_, m) = c
        .call_tool("test_panic", json!({"where": "setup"}), None)
        .await;
    assert_eq!(m["error"]["code"], -32603, "{m}");
    let m = c.rpc("tools/list", json!({})).await;
    assert!(
        m["result"]["tools"].is_array(),
        "the same id still works: {m}"
    );
    let (_, m) = c.call_tool("test_simple_text", json!({}), None).await;
    assert!(m["result"]["content"].is_array());
    assert_eq!(other.rpc("ping", json!({})).await["result"], json!({}));
    // Panics in JSON mode are contained the same way.
    let reply = c
        .send(
            c.post_request()
                .insert_header(("Accept", "application/json")),
            &c.tool_call(c.id(), "test_panic", json!({"where": "setup"}), None),
        )
        .await;
    assert_eq!(reply.json()["error"]["code"], -32603);
    assert_eq!(c.rpc("ping", json!({})).await["result"], json!({}));
    server.stop().await;
}
