//! Resumability (MCP 2025-11-25, Streamable HTTP, "Resumability and Redelivery"): a client whose
//! connection drops mid-call resumes with `Last-Event-ID` and gets exactly what it missed; bad
//! event ids are 400; one standalone GET stream per session (409 for a second one).

mod common;

use std::time::Duration;

use common::{eventually, McpClient, SseItem, TestServer, LATEST};
use serde_json::{json, Value};

/// `<stream>-<seq>` → (stream, seq).
fn parse_id(id: &str) -> (u64, u64) {
    let (s, q) = id.split_once('-').expect("event ids are <stream>-<seq>");
    (s.parse().unwrap(), q.parse().unwrap())
}

async fn session(server: &TestServer) -> McpClient {
    let mut c = server.client();
    c.initialize(LATEST).await;
    c
}

#[actix_web::test]
async fn a_dropped_tool_call_resumes_with_nothing_lost_and_nothing_repeated() {
    let server = TestServer::start().await;
    let c = session(&server).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(
            id,
            "test_cancellable",
            json!({"seconds": 1.5}),
            Some(json!("p")),
        ))
        .await;

    let mut seen: Vec<(String, Value)> = Vec::new();
    let priming = stream.next().await.expect("a priming event");
    let mut last_id = priming
        .id()
        .expect("the priming event has an id")
        .to_owned();
    assert_eq!(parse_id(&last_id).1, 0);
    while seen.len() < 3 {
        let (eid, m) = stream
            .next_message()
            .await
            .expect("progress before the end");
        last_id = eid.expect("every event has an id");
        seen.push((last_id.clone(), m));
    }
    drop(stream);
    // The client is away for a while; the call keeps running and its events are buffered.
    tokio::time::sleep(Duration::from_millis(400)).await;

    let mut resumed = c
        .get_stream(Some(&last_id))
        .await
        .unwrap_or_else(|r| panic!("resume refused: {} {:?}", r.status, r.body));
    for item in resumed.rest().await {
        if let SseItem::Event { id: Some(eid), .. } = &item {
            if let Some(m) = item.json() {
                seen.push((eid.clone(), m));
            }
        }
    }

    let stream_id = parse_id(&last_id).0;
    let seqs: Vec<u64> = seen
        .iter()
        .map(|(eid, _)| {
            let (s, q) = parse_id(eid);
            assert_eq!(s, stream_id, "every event belongs to the call's stream");
            q
        })
        .collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "event ids without gaps or repeats");

    let progress: Vec<f64> = seen
        .iter()
        .filter(|(_, m)| m["method"] == "notifications/progress")
        .map(|(_, m)| {
            assert_eq!(m["params"]["progressToken"], "p");
            m["params"]["progress"].as_f64().unwrap()
        })
        .collect();
    let expected: Vec<f64> = (1..=15).map(f64::from).collect();
    assert_eq!(progress, expected, "every progress value exactly once");
    let (_, last) = seen.last().unwrap();
    assert_eq!(last["id"], id, "the result comes last");
    assert_eq!(last["result"]["content"][0]["text"], "ran for 1.5 s");
    server.stop().await;
}

#[actix_web::test]
async fn a_call_whose_connection_is_cut_delivers_its_result_after_resume() {
    let server = TestServer::start().await;
    let c = session(&server).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(id, "test_reconnection", json!({}), None))
        .await;
    let items = stream.rest().await;
    let priming = items[0].id().expect("priming event id").to_owned();
    assert!(
        items.iter().all(|i| i.json().is_none()),
        "the cut stream carries no result: {items:?}"
    );
    let mut resumed = c.get_stream(Some(&priming)).await.unwrap();
    let (_, m) = resumed
        .next_message()
        .await
        .expect("the result after resume");
    assert_eq!(m["id"], id);
    assert_eq!(
        m["result"]["content"][0]["text"],
        "Reconnection test completed"
    );
    assert!(
        resumed.next().await.is_none(),
        "the stream ends after its result"
    );
    server.stop().await;
}

#[actix_web::test]
async fn malformed_or_unknown_last_event_ids_are_400() {
    let server = TestServer::start().await;
    let c = session(&server).await;
    for bad in ["garbage", "1-x", "-"] {
        let r = c.get_stream(Some(bad)).await.err().expect("refused");
        assert_eq!(r.status, 400, "Last-Event-ID {bad:?}");
        assert!(r.json()["error"]["message"].is_string());
    }
    let r = c.get_stream(Some("999-1")).await.err().expect("refused");
    assert_eq!(r.status, 400, "an unknown stream");
    server.stop().await;
}

#[actix_web::test]
async fn only_one_standalone_stream_at_a_time() {
    let server = TestServer::builder().keep_alive_secs(1).start().await;
    let c = session(&server).await;
    let first = c.get_stream(None).await.expect("the first GET stream");
    let r = c.get_stream(None).await.err().expect("a second GET stream");
    assert_eq!(r.status, 409);
    drop(first);
    let mut again = eventually(
        Duration::from_secs(5),
        "a new GET after the first is gone",
        || async { c.get_stream(None).await.ok() },
    )
    .await;
    assert_eq!(
        again.next().await,
        Some(SseItem::Comment(": keep-alive".into()))
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_resume_past_what_the_buffer_still_holds_is_refused_not_silently_incomplete() {
    let server = TestServer::builder()
        .config(|c| c.mcp.event_buffer_events = 4)
        .start()
        .await;
    let c = session(&server).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(
            id,
            "test_cancellable",
            json!({"seconds": 1}),
            Some(json!(1)),
        ))
        .await;
    let priming = stream.next().await.unwrap().id().unwrap().to_owned();
    drop(stream);
    // Wait until the call is over: its 10 progress events and result overflowed the buffer.
    let (_, stats) = c.call_tool("test_fixture_stats", json!({}), None).await;
    let finished = stats["result"]["structuredContent"]["finished"]
        .as_u64()
        .unwrap();
    eventually(Duration::from_secs(5), "the call finishes", || async {
        let (_, s) = c.call_tool("test_fixture_stats", json!({}), None).await;
        (s["result"]["structuredContent"]["finished"].as_u64() > Some(finished)).then_some(())
    })
    .await;
    let r = c.get_stream(Some(&priming)).await.err().expect("refused");
    assert_eq!(r.status, 400, "{:?}", r.body);
    server.stop().await;
}
