//! Server-to-client requests (MCP client/sampling, client/elicitation): a tool asks the client's
//! model or user on the POST's SSE stream (or the standalone stream when the POST is plain JSON),
//! the client POSTs its answer (202) and the call completes with it; a client that did not
//! declare the capability gets an `isError` result at once.

mod common;

use common::{is_response, McpClient, TestServer, LATEST};
use serde_json::{json, Value};

async fn session(server: &TestServer, caps: Value) -> McpClient {
    let mut c = server.client();
    c.initialize_with(LATEST, caps).await;
    c
}

fn answer(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn text_of(m: &Value) -> &str {
    m["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
}

#[actix_web::test]
async fn sampling_is_asked_on_the_call_stream_and_the_answer_completes_the_call() {
    let server = TestServer::start().await;
    let c = session(&server, json!({"sampling": {}})).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(id, "test_sampling", json!({"prompt": "Say hi"}), None))
        .await;
    let (_, ask) = stream.next_message().await.expect("a sampling request");
    assert_eq!(ask["method"], "sampling/createMessage");
    assert_eq!(ask["params"]["messages"][0]["content"]["text"], "Say hi");
    let r = c
        .post(&answer(
            &ask["id"],
            json!({"role": "assistant", "content": {"type": "text", "text": "Hello from the client"},
                   "model": "test-model", "stopReason": "endTurn"}),
        ))
        .await;
    assert_eq!(r.status, 202);
    let (_, m) = stream.next_message().await.expect("the result");
    assert_eq!(m["id"], id);
    assert_eq!(text_of(&m), "LLM response: Hello from the client");
    server.stop().await;
}

#[actix_web::test]
async fn elicitation_answers_reach_the_tool() {
    let server = TestServer::start().await;
    let c = session(&server, json!({"elicitation": {}})).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(
            id,
            "test_elicitation",
            json!({"message": "Who are you?"}),
            None,
        ))
        .await;
    let (_, ask) = stream.next_message().await.expect("an elicitation request");
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["message"], "Who are you?");
    let content = json!({"username": "ada", "email": "ada@example.com"});
    let r = c
        .post(&answer(
            &ask["id"],
            json!({"action": "accept", "content": content}),
        ))
        .await;
    assert_eq!(r.status, 202);
    let (_, m) = stream.next_message().await.expect("the result");
    assert_eq!(
        text_of(&m),
        format!("User response: action=accept, content={content}")
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_json_only_call_is_asked_on_the_standalone_stream() {
    let server = TestServer::start().await;
    let c = session(&server, json!({"sampling": {}})).await;
    let mut standalone = c.get_stream(None).await.unwrap();
    let id = c.id();
    let body = c.tool_call(id, "test_sampling", json!({"prompt": "p"}), None);
    let call = c.send(
        c.post_request()
            .insert_header(("Accept", "application/json")),
        &body,
    );
    let client_side = async {
        let (_, ask) = standalone
            .next_message()
            .await
            .expect("asked on the GET stream");
        assert_eq!(ask["method"], "sampling/createMessage");
        let r = c
            .post(&answer(
                &ask["id"],
                json!({"role": "assistant", "content": {"type": "text", "text": "via GET"}, "model": "m"}),
            ))
            .await;
        assert_eq!(r.status, 202);
    };
    let (reply, ()) = futures::join!(call, client_side);
    assert_eq!(reply.status, 200);
    assert_eq!(text_of(&reply.json()), "LLM response: via GET");
    server.stop().await;
}

#[actix_web::test]
async fn a_client_without_the_capability_gets_an_error_result_at_once() {
    let server = TestServer::start().await;
    let c = session(&server, json!({})).await;
    // Fails within the read bound, far below the 30 s ask timeout: not a timeout.
    let (notes, m) = c
        .call_tool("test_sampling", json!({"prompt": "p"}), None)
        .await;
    assert!(
        notes
            .iter()
            .all(|n| n["method"] != "sampling/createMessage"),
        "nothing is asked: {notes:?}"
    );
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert!(text_of(&m).contains("sampling"), "{m}");
    let (_, m) = c
        .call_tool("test_elicitation", json!({"message": "x"}), None)
        .await;
    assert_eq!(m["result"]["isError"], true, "{m}");
    server.stop().await;
}

#[actix_web::test]
async fn a_client_error_answer_fails_the_call_with_its_message() {
    let server = TestServer::start().await;
    let c = session(&server, json!({"sampling": {}})).await;
    let id = c.id();
    let mut stream = c
        .post_stream(&c.tool_call(id, "test_sampling", json!({"prompt": "p"}), None))
        .await;
    let (_, ask) = stream.next_message().await.expect("a sampling request");
    let r = c
        .post(&json!({"jsonrpc": "2.0", "id": ask["id"],
                      "error": {"code": -1, "message": "user rejected sampling"}}))
        .await;
    assert_eq!(r.status, 202);
    let (_, m) = stream.next_message().await.expect("the result");
    assert!(is_response(&m));
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert!(text_of(&m).contains("user rejected sampling"), "{m}");
    server.stop().await;
}
