//! Streamable HTTP as a client sees it (MCP 2025-11-25, basic/transports): version negotiation,
//! the exact status codes, headers and JSON-RPC codes of every refusal, JSON versus SSE replies,
//! batches, keep-alives, and the catalogue methods (pagination, completion, resources, prompts).

mod common;

use common::{McpClient, SseItem, TestServer, ACCEPT_BOTH, LATEST};
use serde_json::{json, Value};

fn req(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn session(server: &TestServer, version: &str) -> McpClient {
    let mut c = server.client();
    c.initialize(version).await;
    c
}

#[actix_web::test]
async fn initialize_negotiates_the_latest_or_echoes_a_supported_version() {
    let server = TestServer::start().await;
    for (asked, answered) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let mut c = server.client();
        let result = c.initialize(asked).await;
        assert_eq!(result["protocolVersion"], answered, "asked {asked}");
        assert_eq!(result["serverInfo"]["name"], "dust-mcp");
        assert!(result["capabilities"]["tools"].is_object());
        let id = c.session.clone().unwrap();
        assert!(
            !id.is_empty() && id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "Mcp-Session-Id must be visible ASCII: {id:?}"
        );
    }
    server.stop().await;
}

#[actix_web::test]
async fn quick_requests_get_json_when_only_json_is_accepted() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let reply = c
        .send(
            c.post_request()
                .insert_header(("Accept", "application/json")),
            &req(5, "tools/list", json!({})),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = reply.json();
    assert_eq!(body["id"], 5);
    assert!(body["result"]["tools"].as_array().unwrap().len() > 5);
    server.stop().await;
}

#[actix_web::test]
async fn tool_calls_stream_as_uncompressed_sse_with_a_priming_event_on_2025_11_25() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let body = c.tool_call(9, "test_simple_text", json!({}), None);
    let reply = c
        .send(
            c.post_request()
                .insert_header(("Accept-Encoding", "gzip, br")),
            &body,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type").unwrap(), "text/event-stream");
    assert!(reply
        .header("cache-control")
        .unwrap()
        .starts_with("no-cache"));
    assert_eq!(reply.header("x-accel-buffering").as_deref(), Some("no"));
    let encoding = reply.header("content-encoding");
    assert!(
        encoding.is_none() || encoding.as_deref() == Some("identity"),
        "{encoding:?}"
    );
    let items = reply.sse();
    match &items[0] {
        SseItem::Event { id, data, .. } => {
            assert!(id.as_deref().unwrap().ends_with("-0"), "priming id {id:?}");
            assert!(data.is_empty(), "priming event has empty data");
        }
        other => panic!("first item is the priming event, got {other:?}"),
    }
    let response = reply.message();
    assert_eq!(response["id"], 9);
    assert_eq!(
        response["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );

    let old = session(&server, "2025-03-26").await;
    let reply = old.post(&body).await;
    assert!(reply.is_sse());
    let items = reply.sse();
    assert!(
        items.iter().all(|i| i.json().is_some()),
        "no priming event on 2025-03-26: {items:?}"
    );
    assert_eq!(reply.message()["id"], 9);
    server.stop().await;
}

#[actix_web::test]
async fn an_idle_standalone_stream_gets_keep_alive_comments() {
    let server = TestServer::builder().keep_alive_secs(1).start().await;
    let c = session(&server, LATEST).await;
    let mut stream = c.get_stream(None).await.unwrap();
    assert_eq!(stream.header("content-type").unwrap(), "text/event-stream");
    let item = stream.next().await.expect("the stream stays open");
    assert_eq!(item, SseItem::Comment(": keep-alive".into()));
    drop(stream);
    server.stop().await;
}

#[actix_web::test]
async fn lenient_accept_headers_are_served_and_html_only_is_406() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    for accept in [Some("*/*"), None] {
        let mut r = c.request(awc::http::Method::POST);
        r = r.insert_header(("Content-Type", "application/json"));
        if let Some(a) = accept {
            r = r.insert_header(("Accept", a));
        }
        let reply = c.send(r, &req(1, "ping", json!({}))).await;
        assert_eq!(reply.status, 200, "Accept {accept:?}");
        assert_eq!(reply.message()["result"], json!({}));
    }
    let reply = c
        .send(
            c.request(awc::http::Method::POST)
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("Accept", "text/html")),
            &req(1, "ping", json!({})),
        )
        .await;
    assert_eq!(reply.status, 406);
    server.stop().await;
}

#[actix_web::test]
async fn malformed_posts_get_the_right_status_and_json_rpc_code() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;

    let reply = c
        .send_bytes(
            c.request(awc::http::Method::POST)
                .insert_header(("Content-Type", "text/plain"))
                .insert_header(("Accept", ACCEPT_BOTH)),
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.into(),
        )
        .await;
    assert_eq!(reply.status, 415);

    let reply = c.send_bytes(c.post_request(), "{not json".into()).await;
    assert_eq!((reply.status, reply.error_code()), (400, -32700));

    let reply = c.post(&json!({"jsonrpc": "2.0", "id": 1})).await;
    assert_eq!((reply.status, reply.error_code()), (400, -32600));

    let reply = c.post(&req(2, "no/such/method", json!({}))).await;
    assert_eq!(reply.message()["error"]["code"], -32601);

    let reply = c
        .post(&req(3, "tools/call", json!({"arguments": {}})))
        .await;
    assert_eq!(
        reply.message()["error"]["code"],
        -32602,
        "missing name is invalid params, not method-not-found"
    );

    let reply = c
        .post(&req(4, "tools/call", json!({"name": "no_such_tool"})))
        .await;
    assert_eq!(reply.message()["error"]["code"], -32602);
    server.stop().await;
}

#[actix_web::test]
async fn protocol_version_header_must_name_a_supported_version() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let reply = c
        .send(
            c.post_request()
                .insert_header(("MCP-Protocol-Version", "1999-01-01")),
            &req(1, "ping", json!({})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1999-01-01"));
    for other in ["2025-06-18", "2025-03-26"] {
        let reply = c
            .send(
                c.post_request()
                    .insert_header(("MCP-Protocol-Version", other)),
                &req(1, "tools/list", json!({})),
            )
            .await;
        assert_eq!(reply.status, 200, "header {other} on a {LATEST} session");
    }
    server.stop().await;
}

#[actix_web::test]
async fn batches_work_on_2025_03_26_only() {
    let server = TestServer::start().await;
    let batch = json!([
        req(1, "ping", json!({})),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        req(2, "tools/list", json!({}))
    ]);
    let old = session(&server, "2025-03-26").await;
    let reply = old
        .send(
            old.post_request()
                .insert_header(("Accept", "application/json")),
            &batch,
        )
        .await;
    assert_eq!(reply.status, 200);
    let responses = reply.json();
    let responses = responses.as_array().expect("an array of responses");
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0]["id"], 1);
    assert_eq!(responses[1]["id"], 2);
    assert!(responses[1]["result"]["tools"].is_array());

    let new = session(&server, LATEST).await;
    let reply = new.post(&batch).await;
    assert_eq!((reply.status, reply.error_code()), (400, -32600));
    server.stop().await;
}

#[actix_web::test]
async fn notification_only_posts_are_accepted_with_202_and_no_body() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let reply = c
        .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    assert_eq!(reply.status, 202);
    assert!(reply.body.is_empty());
    server.stop().await;
}

#[actix_web::test]
async fn server_discover_lists_only_handshake_versions() {
    let server = TestServer::start().await;
    let c = server.client();
    let reply = c
        .send(
            c.post_request()
                .insert_header(("mcp-protocol-version", "2026-07-28")),
            &req(1, "server/discover", json!({})),
        )
        .await;
    assert_eq!(reply.status, 200);
    let m = reply.message();
    let versions: Vec<&str> = m["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("a result, not {m}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!versions.is_empty());
    assert!(
        versions.iter().all(|v| v.starts_with("2025-")),
        "{versions:?}"
    );
    assert!(versions.contains(&LATEST));
    server.stop().await;
}

#[actix_web::test]
async fn ping_and_log_levels() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    assert_eq!(c.rpc("ping", json!({})).await["result"], json!({}));
    assert_eq!(
        c.rpc("logging/setLevel", json!({"level": "warning"})).await["result"],
        json!({})
    );
    let m = c.rpc("logging/setLevel", json!({"level": "loud"})).await;
    assert_eq!(m["error"]["code"], -32602);
    server.stop().await;
}

#[actix_web::test]
async fn tools_list_pages_through_every_tool_and_refuses_a_garbage_cursor() {
    let server = TestServer::builder()
        .config(|c| c.mcp.page_size = 3)
        .start()
        .await;
    let c = session(&server, LATEST).await;
    let all = c.rpc("tools/list", json!({})).await;
    let mut names = Vec::new();
    let mut page = all;
    let mut pages = 0;
    loop {
        pages += 1;
        let tools = page["result"]["tools"].as_array().unwrap().clone();
        assert!(tools.len() <= 3);
        names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match page["result"]["nextCursor"].as_str() {
            Some(cursor) => page = c.rpc("tools/list", json!({"cursor": cursor})).await,
            None => break,
        }
        assert!(pages < 50, "pagination terminates");
    }
    assert!(pages > 2, "{pages} pages");
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no tool twice: {names:?}");
    for expected in ["test_simple_text", "test_cancellable", "test_fixture_stats"] {
        assert!(names.iter().any(|n| n == expected), "{expected} listed");
    }
    let m = c.rpc("tools/list", json!({"cursor": "garbage!"})).await;
    assert_eq!(m["error"]["code"], -32602);
    server.stop().await;
}

#[actix_web::test]
async fn completion_resources_and_prompts_answer_like_the_conformance_suite_expects() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;

    let m = c
        .rpc(
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "test://template/{id}/data"},
                   "argument": {"name": "id", "value": "4"}}),
        )
        .await;
    assert_eq!(m["result"]["completion"]["values"], json!(["456"]));
    let m = c
        .rpc(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
                   "argument": {"name": "arg1", "value": "test"}}),
        )
        .await;
    assert_eq!(
        m["result"]["completion"]["values"],
        json!(["test-value-1", "testValue1"])
    );

    let m = c.rpc("resources/list", json!({})).await;
    let uris: Vec<&str> = m["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.contains(&"test://static-text"), "{uris:?}");
    let m = c
        .rpc("resources/read", json!({"uri": "test://static-text"}))
        .await;
    assert_eq!(
        m["result"]["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    let m = c
        .rpc("resources/read", json!({"uri": "test://template/42/data"}))
        .await;
    let text: Value =
        serde_json::from_str(m["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["id"], "42");
    let m = c.rpc("resources/read", json!({"uri": "test://nope"})).await;
    assert_eq!(m["error"]["code"], -32002);
    let m = c.rpc("resources/templates/list", json!({})).await;
    let templates: Vec<&str> = m["result"]["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["uriTemplate"].as_str())
        .collect();
    assert!(
        templates.contains(&"test://template/{id}/data"),
        "{templates:?}"
    );
    let m = c
        .rpc(
            "resources/subscribe",
            json!({"uri": "test://watched-resource"}),
        )
        .await;
    assert_eq!(m["result"], json!({}));
    let m = c
        .rpc(
            "resources/unsubscribe",
            json!({"uri": "test://watched-resource"}),
        )
        .await;
    assert_eq!(m["result"], json!({}));

    let m = c.rpc("prompts/list", json!({})).await;
    assert!(m["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "test_simple_prompt"));
    let m = c
        .rpc(
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
        )
        .await;
    assert_eq!(
        m["result"]["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='a', arg2='b'"
    );
    let m = c
        .rpc(
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a"}}),
        )
        .await;
    assert_eq!(m["error"]["code"], -32602, "a missing required argument");
    server.stop().await;
}

#[actix_web::test]
async fn dns_rebinding_is_refused_by_host_and_origin() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let ping = req(1, "ping", json!({}));
    let reply = c
        .send(
            c.post_request().insert_header(("Host", "evil.example.com")),
            &ping,
        )
        .await;
    assert_eq!(reply.status, 421);
    let reply = c
        .send(
            c.post_request()
                .insert_header(("Origin", "http://evil.example.com")),
            &ping,
        )
        .await;
    assert_eq!(reply.status, 403);
    let port = server.addr.port();
    let reply = c
        .send(
            c.post_request()
                .insert_header(("Host", format!("localhost:{port}")))
                .insert_header(("Origin", format!("http://localhost:{port}"))),
            &ping,
        )
        .await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413() {
    let server = TestServer::builder()
        .config(|c| c.http.max_body_bytes = 1024)
        .start()
        .await;
    let c = session(&server, LATEST).await;
    let big = req(1, "ping", json!({"padding": "x".repeat(4096)}));
    let reply = c.post(&big).await;
    assert_eq!(reply.status, 413);
    assert_eq!(c.rpc("ping", json!({})).await["result"], json!({}));
    server.stop().await;
}

#[actix_web::test]
async fn progress_tokens_are_echoed_with_their_json_type() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    for token in [json!(7), json!("abc")] {
        let (notes, result) = c
            .call_tool("test_tool_with_progress", json!({}), Some(token.clone()))
            .await;
        assert_eq!(
            result["result"]["content"][0]["text"],
            "Progress test completed"
        );
        let progress: Vec<&Value> = notes
            .iter()
            .filter(|n| n["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 3, "{notes:?}");
        for p in &progress {
            assert_eq!(p["params"]["progressToken"], token);
        }
        let values: Vec<f64> = progress
            .iter()
            .map(|p| p["params"]["progress"].as_f64().unwrap())
            .collect();
        assert_eq!(values, vec![0.0, 50.0, 100.0]);
    }
    server.stop().await;
}

#[actix_web::test]
async fn log_notifications_follow_the_level_the_client_set() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let count_logs = |notes: &[Value]| {
        notes
            .iter()
            .filter(|n| n["method"] == "notifications/message")
            .count()
    };
    c.rpc("logging/setLevel", json!({"level": "debug"})).await;
    let (notes, result) = c.call_tool("test_tool_with_logging", json!({}), None).await;
    assert_eq!(
        result["result"]["content"][0]["text"],
        "Logging test completed"
    );
    assert_eq!(count_logs(&notes), 3, "{notes:?}");
    c.rpc("logging/setLevel", json!({"level": "error"})).await;
    let (notes, result) = c.call_tool("test_tool_with_logging", json!({}), None).await;
    assert!(result["result"].is_object());
    assert_eq!(count_logs(&notes), 0, "{notes:?}");
    server.stop().await;
}

#[actix_web::test]
async fn initialize_with_bad_params_is_invalid_params_and_creates_no_session() {
    let server = TestServer::start().await;
    let c = server.client();
    let reply = c
        .post(&req(1, "initialize", json!({"protocolVersion": 5})))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.message()["error"]["code"], -32602);
    assert!(reply.header("mcp-session-id").is_none());
    server.stop().await;
}

#[actix_web::test]
async fn a_get_that_does_not_accept_sse_is_406() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let mut res = c
        .request(awc::http::Method::GET)
        .insert_header(("Accept", "application/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 406);
    let _ = res.body().await;
    server.stop().await;
}

#[actix_web::test]
async fn reusing_the_id_of_a_running_request_is_invalid_request() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let body = c.tool_call(
        77,
        "test_cancellable",
        json!({"seconds": 30}),
        Some(json!(1)),
    );
    let mut first = c.post_stream(&body).await;
    let (_, m) = first.next_message().await.unwrap();
    assert_eq!(m["method"], "notifications/progress");
    let again = c
        .post(&c.tool_call(77, "test_simple_text", json!({}), None))
        .await;
    assert_eq!(again.message()["error"]["code"], -32600);
    c.post(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77}}))
        .await;
    server.stop().await;
}

#[actix_web::test]
async fn a_cancelled_json_only_call_gets_no_json_rpc_body() {
    let server = TestServer::start().await;
    let c = session(&server, LATEST).await;
    let body = c.tool_call(31, "test_cancellable", json!({"seconds": 30}), None);
    let call = c.send(
        c.post_request()
            .insert_header(("Accept", "application/json")),
        &body,
    );
    let cancel = async {
        // Cancel once the call is running (it is in flight until then).
        common::eventually(
            std::time::Duration::from_secs(5),
            "the call runs",
            || async {
                let s = server.status(None).await;
                (s["totals"]["in_flight"] == 1).then_some(())
            },
        )
        .await;
        let r = c
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 31}}))
            .await;
        assert_eq!(r.status, 202);
    };
    let (reply, ()) = futures::join!(call, cancel);
    assert!(
        reply.status == 202 && reply.body.is_empty(),
        "a cancelled request has no response: {} {:?}",
        reply.status,
        reply.body
    );
    server.stop().await;
}
