//! Session tests against a tiny scripted HTTP server on 127.0.0.1:0 (bounded: a handful of
//! requests each, every task ends with the test).

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::target;

/// Request heads the fake server saw, in order.
type Seen = Arc<Mutex<Vec<String>>>;

fn chunked(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str(&format!("{:x}\r\n{p}\r\n", p.len()));
    }
    out.push_str("0\r\n\r\n");
    out
}

fn sse_response(extra_header: &str, events: &[String]) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{extra_header}\
         Transfer-Encoding: chunked\r\n\r\n{}",
        chunked(events)
    )
    .into_bytes()
}

fn json_response(status: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The scripted answers: SSE for initialize and even ids, JSON for odd ids, errors on demand.
fn answer(msg: &Value) -> Option<Vec<u8>> {
    let id = msg.get("id").cloned();
    let method = msg["method"].as_str().unwrap_or("");
    let Some(id) = id else {
        return Some(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_vec());
    };
    let result = |r: Value| json!({"jsonrpc": "2.0", "id": id, "result": r}).to_string();
    if method == "initialize" {
        let init = result(json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {}}));
        return Some(sse_response(
            "Mcp-Session-Id: s-1\r\n",
            &[
                "id: p0\nretry: 5000\ndata:\n\n".into(),
                format!("event: message\ndata: {init}\n\n"),
            ],
        ));
    }
    match msg["params"]["name"].as_str() {
        Some("gone") => return Some(json_response("404 Not Found", &json!({}))),
        Some("hang") => return None,
        Some("fail") => {
            let err =
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "no"}});
            return Some(json_response("200 OK", &err));
        }
        _ => {}
    }
    let text = result(json!({"content": [{"type": "text", "text": "hi"}]}));
    if id.as_u64().unwrap_or(0) % 2 == 1 {
        return Some(json_response(
            "200 OK",
            &serde_json::from_str(&text).unwrap(),
        ));
    }
    let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
        "params": {"progressToken": id, "progress": 1}});
    // Split one event across two chunks, CRLF line ends, to exercise the incremental parser.
    let event = format!("data: {text}\r\n\r\n");
    let (a, b) = event.split_at(event.len() / 2);
    Some(sse_response(
        "",
        &[
            "id: p1\ndata:\n\n".into(),
            format!("data: {progress}\n\n"),
            a.into(),
            b.into(),
        ],
    ))
}

/// Serves `per_conn` requests on one connection, then closes it without warning.
async fn serve_conn(mut sock: TcpStream, per_conn: usize, seen: Seen) {
    let mut buf: Vec<u8> = Vec::new();
    for _ in 0..per_conn {
        let (head, body) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                if buf.len() >= end + 4 + len {
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    break (head, body);
                }
            }
            let mut tmp = [0u8; 4096];
            match sock.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        seen.lock().unwrap().push(head);
        let msg: Value = serde_json::from_slice(&body).unwrap();
        match answer(&msg) {
            Some(reply) => sock.write_all(&reply).await.unwrap(),
            // Never answer; hold the socket until the client gives up.
            None => {
                let _ = sock.read(&mut [0u8; 16]).await;
                return;
            }
        }
    }
}

/// Starts the fake server; returns its client config and the heads it records.
async fn fake_server(per_conn: usize, timeout_ms: u64) -> (Arc<ClientConfig>, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let recorder = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve_conn(sock, per_conn, recorder.clone()));
        }
    });
    let config = ClientConfig {
        target: target::resolve(&format!("http://{addr}/mcp"), false).unwrap(),
        authorization: Some("Bearer t0k".into()),
        timeout: Duration::from_millis(timeout_ms),
    };
    (Arc::new(config), seen)
}

fn call(name: &str) -> String {
    format!(r#"{{"name":"{name}","arguments":{{"message":"hi"}}}}"#)
}

#[tokio::test]
async fn json_and_sse_answers_both_end_the_call_and_notifications_are_counted() {
    let (config, seen) = fake_server(100, 5000).await;
    let mut session = Session::new(config);
    session.initialize().await.unwrap();
    for _ in 0..4 {
        let reply = session.request("tools/call", &call("echo")).await.unwrap();
        assert!(!reply.is_error);
    }
    // Ids 2 and 4 were answered over SSE, each after one progress notification.
    assert_eq!(
        session.counters.notifications.get("notifications/progress"),
        Some(&2)
    );
    assert_eq!(session.counters.resent_after_close, 0);
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 6, "initialize, initialized, 4 calls");
    assert!(!heads[0].contains("Mcp-Session-Id"));
    for head in &heads[1..] {
        assert!(head.contains("Mcp-Session-Id: s-1"), "{head}");
        assert!(head.contains("MCP-Protocol-Version: 2025-11-25"), "{head}");
        assert!(head.contains("Authorization: Bearer t0k"), "{head}");
    }
}

#[tokio::test]
async fn a_keep_alive_connection_closed_by_the_server_is_resent_once() {
    // One request per connection: every reuse finds the connection closed, as after a
    // server's 5 s keep-alive timeout.
    let (config, seen) = fake_server(1, 5000).await;
    let mut session = Session::new(config);
    session.initialize().await.unwrap();
    for _ in 0..3 {
        session.request("tools/call", &call("echo")).await.unwrap();
    }
    assert_eq!(
        session.counters.resent_after_close, 4,
        "initialized + 3 calls"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        5,
        "each request reached the server once"
    );
}

#[tokio::test]
async fn errors_are_classified_and_the_session_goes_on() {
    let (config, _) = fake_server(100, 300).await;
    let mut session = Session::new(config);
    session.initialize().await.unwrap();
    let err = session
        .request("tools/call", &call("fail"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "jsonrpc_-32602");
    let err = session
        .request("tools/call", &call("gone"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "http_404");
    session.request("tools/call", &call("echo")).await.unwrap();
    let err = session
        .request("tools/call", &call("hang"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "timeout");
    // After a timeout the half-read connection is dropped and a fresh one is used.
    session.request("tools/call", &call("echo")).await.unwrap();
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = ClientConfig {
        target: target::resolve(&format!("http://{addr}/mcp"), false).unwrap(),
        authorization: None,
        timeout: Duration::from_secs(2),
    };
    let err = Session::new(Arc::new(config))
        .initialize()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect");
}

#[tokio::test]
async fn an_observed_request_sees_each_message_before_its_response_with_arrival_times() {
    let (config, _seen) = fake_server(100, 5000).await;
    let mut session = Session::new(config);
    session.initialize().await.unwrap();
    let before = Arrival::now();
    let mut got: Vec<(Value, Arrival)> = Vec::new();
    let mut observe = |data: &[u8], at: Arrival| {
        got.push((serde_json::from_slice(data).unwrap(), at));
    };
    // Id 2 is answered over SSE after one progress notification.
    session
        .request_observed("tools/call", &call("echo"), Some(&mut observe))
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        1,
        "the progress notification only, not the response"
    );
    assert_eq!(got[0].0["method"], "notifications/progress");
    assert_eq!(got[0].0["params"]["progressToken"], 2);
    assert!(got[0].1.wall_us >= before.wall_us && got[0].1.at >= before.at);
}
