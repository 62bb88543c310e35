//! The `dust_*` tools end to end: a real dust-mcp in demo mode (the Dust simulator on loopback)
//! driven over MCP. What a Claude user notices: answers stream as progress and equal what the
//! agent wrote, conversations continue, one failing agent does not sink the others, cancelling
//! stops the agent on Dust, the time cap returns a partial answer, and Dust's refusals come back
//! as tool errors that say what to do.

mod common;

use std::time::Duration;

use common::{is_response, McpClient, TestServer, BOUND, LATEST};
use dust_mcp::simulator::{agents, answers, Knobs};
use serde_json::{json, Value};

const WRITER: &str = "wR1ter9Xk4";
const SLOW: &str = "sL0wAg3nt5";

fn expected_answer(agent_sid: &str, question: &str) -> String {
    answers::answer(agents::find(agent_sid).expect("demo agent"), question, &[])
}

fn text_of(result: &Value) -> String {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn session(server: &TestServer) -> McpClient {
    let mut c = server.client();
    c.initialize(LATEST).await;
    c
}

#[actix_rt::test]
async fn dust_ask_streams_the_answer_as_progress_and_returns_exactly_what_the_agent_wrote() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    let question = "Summarise the quarterly plan in two sentences";
    let (notes, result) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "writer", "message": question}),
            Some(json!(7)),
        )
        .await;
    let expected = expected_answer(WRITER, question);
    assert_eq!(result["result"]["isError"], json!(false), "{result}");
    assert_eq!(text_of(&result), expected);
    let structured = &result["result"]["structuredContent"];
    assert_eq!(structured["answer"], json!(expected));
    assert_eq!(structured["status"], "succeeded");
    assert_eq!(structured["partial"], false);
    assert_eq!(
        structured["agent"],
        json!({"sId": WRITER, "name": "writer"})
    );
    assert!(structured["conversation_id"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));

    let progress: Vec<&Value> = notes
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(
        progress.len() >= 3,
        "the answer streamed in several chunks: {progress:?}"
    );
    assert!(progress
        .iter()
        .all(|p| p["params"]["progressToken"] == json!(7)));
    let streamed: String = progress[1..]
        .iter()
        .map(|p| p["params"]["message"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(streamed, expected, "the chunks, joined, are the answer");
    let values: Vec<f64> = progress
        .iter()
        .map(|p| p["params"]["progress"].as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[1] > w[0]),
        "progress only grows: {values:?}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn a_follow_up_continues_the_conversation_and_posts_each_message_once() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    let (_, first) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "writer", "message": "First draft please"}),
            None,
        )
        .await;
    let conversation = first["result"]["structuredContent"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, second) = client
        .call_tool(
            "dust_ask",
            json!({"agent": WRITER, "message": "Shorter, please", "conversation_id": conversation}),
            None,
        )
        .await;
    assert_eq!(
        second["result"]["structuredContent"]["conversation_id"],
        json!(conversation)
    );
    assert_eq!(text_of(&second), expected_answer(WRITER, "Shorter, please"));
    let stats = server.simulator().stats();
    assert_eq!(stats.conversations_created, 1);
    assert_eq!(
        stats.user_messages_by_conversation.get(&conversation),
        Some(&2)
    );

    let (_, transcript) = client
        .call_tool(
            "dust_get_conversation",
            json!({"conversation_id": conversation}),
            None,
        )
        .await;
    let text = text_of(&transcript);
    assert!(
        text.contains("First draft please") && text.contains("Shorter, please"),
        "{text}"
    );
    assert_eq!(
        transcript["result"]["structuredContent"]["messages"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    server.stop().await;
}

#[actix_rt::test]
async fn agents_are_listed_and_names_resolve_or_explain_themselves() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    let (_, all) = client.call_tool("dust_list_agents", json!({}), None).await;
    let names: Vec<String> = all["result"]["structuredContent"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"writer".to_owned()) && names.contains(&"health-coach".to_owned()));
    let (_, coach) = client
        .call_tool("dust_list_agents", json!({"query": "COACH"}), None)
        .await;
    assert_eq!(
        coach["result"]["structuredContent"]["agents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, paged) = client
        .call_tool("dust_list_agents", json!({"limit": 2}), None)
        .await;
    assert_eq!(paged["result"]["structuredContent"]["next_cursor"], "2");

    let (_, unknown) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "nobody", "message": "hi"}),
            None,
        )
        .await;
    assert_eq!(unknown["result"]["isError"], true);
    assert!(
        text_of(&unknown).contains("writer"),
        "lists what exists: {unknown}"
    );
    // "er" is in writer, slow-thinker and health-coach... an ambiguity names the candidates.
    let (_, ambiguous) = client
        .call_tool("dust_ask", json!({"agent": "er", "message": "hi"}), None)
        .await;
    assert_eq!(ambiguous["result"]["isError"], true);
    let text = text_of(&ambiguous);
    assert!(
        text.contains("several") && text.contains("writer"),
        "{text}"
    );
    // Malformed params of a known tool stay a tool error the model can fix.
    let (_, bad) = client
        .call_tool("dust_ask", json!({"agent": "writer"}), None)
        .await;
    assert_eq!(bad["result"]["isError"], true);
    server.stop().await;
}

#[actix_rt::test]
async fn ask_many_answers_side_by_side_when_one_agent_fails() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    let (_, result) = client
        .call_tool(
            "dust_ask_many",
            json!({"agents": ["writer", "broken-bot"], "message": "Status update?"}),
            Some(json!("many")),
        )
        .await;
    assert_eq!(result["result"]["isError"], false, "{result}");
    let answers = result["result"]["structuredContent"]["answers"]
        .as_array()
        .unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["status"], "succeeded");
    assert_eq!(
        answers[0]["answer"],
        json!(expected_answer(WRITER, "Status update?"))
    );
    assert_eq!(answers[1]["status"], "failed");
    assert!(answers[1]["error"]
        .as_str()
        .is_some_and(|e| e.contains("failed")));
    let text = text_of(&result);
    assert!(
        text.contains("## writer") && text.contains("## broken-bot"),
        "{text}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn cancelling_a_call_stops_the_agent_on_dust() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    let id = client.id();
    let mut stream = client
        .post_stream(&client.tool_call(
            id,
            "dust_ask",
            json!({"agent": SLOW, "message": "take your time"}),
            Some(json!("slow")),
        ))
        .await;
    // The first progress ("Asking slow-thinker…") proves the call is running.
    let (_, first) = stream
        .next_message()
        .await
        .expect("a progress notification");
    assert_eq!(first["method"], "notifications/progress");
    let ack = client
        .post(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id}}))
        .await;
    assert_eq!(ack.status, 202);
    let rest = tokio::time::timeout(BOUND, stream.rest())
        .await
        .expect("stream closes");
    assert!(
        rest.iter()
            .filter_map(|e| e.json())
            .all(|m| !is_response(&m)),
        "a cancelled request gets no response"
    );
    let sim = server.simulator();
    common::eventually(BOUND, "the cancel reaches Dust", || async {
        (sim.stats().cancels == 1).then_some(())
    })
    .await;
    server.stop().await;
}

#[actix_rt::test]
async fn the_time_cap_returns_what_was_written_so_far_with_the_conversation_to_continue() {
    let server = TestServer::builder()
        .config(|c| c.dust.call_timeout_secs = 1)
        .start()
        .await;
    server.simulator().set_knobs(Knobs {
        token_interval_ms: Some(150),
        ..Knobs::default()
    });
    let client = session(&server).await;
    let (_, result) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "writer", "message": "a long one"}),
            None,
        )
        .await;
    let s = &result["result"]["structuredContent"];
    assert_eq!(result["result"]["isError"], false);
    assert_eq!(s["status"], "partial");
    assert_eq!(s["partial"], true);
    let full = expected_answer(WRITER, "a long one");
    let got = s["answer"].as_str().unwrap();
    assert!(
        !got.is_empty() && full.starts_with(got) && got.len() < full.len(),
        "{got:?}"
    );
    let conversation = s["conversation_id"].as_str().unwrap();
    assert!(text_of(&result).contains(conversation));
    // The agent was not cancelled: it keeps writing on Dust.
    assert_eq!(server.simulator().stats().cancels, 0);
    server.stop().await;
}

#[actix_rt::test]
async fn dust_rate_limits_are_tool_errors_that_say_when_to_retry() {
    let server = TestServer::start().await;
    server.simulator().set_knobs(Knobs {
        rate_limit_next_posts: Some(10),
        ..Knobs::default()
    });
    let client = session(&server).await;
    let (_, result) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "writer", "message": "hello"}),
            None,
        )
        .await;
    assert_eq!(result["result"]["isError"], true, "{result}");
    let text = text_of(&result).to_lowercase();
    assert!(text.contains("rate") && text.contains("retry"), "{text}");
    assert!(
        !text.contains(server.simulator().api_key()),
        "never the key"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn the_dust_agent_prompt_completes_agent_names() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    let completion = client
        .rpc(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "dust_agent"}, "argument": {"name": "agent", "value": "wr"}}),
        )
        .await;
    assert_eq!(
        completion["result"]["completion"]["values"],
        json!(["writer"])
    );
    let prompt = client
        .rpc(
            "prompts/get",
            json!({"name": "dust_agent", "arguments": {"agent": "writer", "question": "hi"}}),
        )
        .await;
    let text = prompt["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("dust_ask") && text.contains("writer"),
        "{text}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn dust_breaker_and_counters_show_in_status_and_metrics() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    client.call_tool("dust_list_agents", json!({}), None).await;
    let status = server.status(None).await;
    assert_eq!(
        status["dust"]["status"]["breaker"]["state"], "closed",
        "{status}"
    );
    assert!(status["dust"]["mode"].as_str().unwrap().contains("demo"));
    assert!(
        status["dust"]["status"]["metrics"]["requests"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let (code, metrics) = server.get("/metrics", None).await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("dust_breaker_state{workspace=\"demo-workspace\"} 0"),
        "{metrics}"
    );
    assert!(!metrics.contains(server.simulator().api_key()));
    tokio::time::sleep(Duration::from_millis(1)).await;
    server.stop().await;
}

#[actix_rt::test]
async fn long_answers_are_cut_with_a_note_naming_the_conversation() {
    let server = TestServer::builder()
        .config(|c| c.dust.max_result_chars = 40)
        .start()
        .await;
    let client = session(&server).await;
    let (_, result) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "writer", "message": "Write the long version"}),
            None,
        )
        .await;
    let text = text_of(&result);
    let conversation = result["result"]["structuredContent"]["conversation_id"]
        .as_str()
        .unwrap();
    let full = expected_answer(WRITER, "Write the long version");
    let shown: String = full.chars().take(40).collect();
    assert!(text.starts_with(&shown), "{text}");
    assert!(
        text.contains("[truncated:") && text.contains(conversation),
        "{text}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn dust_ask_attaches_health_summaries_to_the_conversation() {
    let server = TestServer::start().await;
    let client = session(&server).await;
    let mut csv = Vec::new();
    actors::health::synth::write_keto_mojo(&mut csv, 3, 10, None).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let (_, up) = client
        .call_tool(
            "health_upload",
            json!({"name": "keto.csv", "content": csv}),
            None,
        )
        .await;
    assert_ne!(up["result"]["isError"], true, "{up}");
    let file_id = up["result"]["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let question = "What do my ketone numbers say?";
    let (_, answer) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "health-coach", "message": question, "health_file_ids": [file_id]}),
            None,
        )
        .await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let coach = agents::AGENTS
        .iter()
        .find(|a| a.name == "health-coach")
        .unwrap();
    let expected = answers::answer(coach, question, &["Health summary: keto.csv".to_owned()]);
    assert_eq!(
        text_of(&answer),
        expected,
        "the agent read the attached summary"
    );
    assert_eq!(server.simulator().stats().content_fragments, 1);

    let (_, unknown) = client
        .call_tool(
            "dust_ask",
            json!({"agent": "health-coach", "message": question, "health_file_ids": ["0".repeat(32)]}),
            None,
        )
        .await;
    assert_eq!(unknown["result"]["isError"], true);
    assert!(text_of(&unknown).contains("health_list_files"));
    assert_eq!(
        server.simulator().stats().conversations_created,
        1,
        "nothing sent for a bad id"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn a_user_with_their_own_dust_key_calls_dust_with_it_and_others_use_the_workspace_key() {
    let server = TestServer::builder()
        .users(&[("alice", "token-a"), ("bob", "token-b")])
        .config(|c| {
            // Bob's key is not one the (demo) workspace knows, so his calls must fail with
            // Dust's own refusal while Alice's, on the workspace key, succeed.
            c.users[1].dust_api_key = Some("sk-bobs-own-key".into());
            c.users[0].full_name = Some("Alice Martin".into());
            c.users[0].timezone = Some("Europe/Paris".into());
        })
        .start()
        .await;
    let mut alice = server.client_with_token("token-a");
    alice.initialize(LATEST).await;
    let (_, ok) = alice.call_tool("dust_list_agents", json!({}), None).await;
    assert_eq!(ok["result"]["isError"], false, "{ok}");
    // Dust's message context comes from the principal's profile.
    let (_, asked) = alice
        .call_tool(
            "dust_ask",
            json!({"agent": "writer", "message": "hello"}),
            None,
        )
        .await;
    let conversation = asked["result"]["structuredContent"]["conversation_id"].clone();
    let (_, transcript) = alice
        .call_tool(
            "dust_get_conversation",
            json!({"conversation_id": conversation}),
            None,
        )
        .await;
    assert!(
        text_of(&transcript).contains("**Alice Martin**: hello"),
        "{transcript}"
    );

    let mut bob = server.client_with_token("token-b");
    bob.initialize(LATEST).await;
    let (_, refused) = bob.call_tool("dust_list_agents", json!({}), None).await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = text_of(&refused);
    assert!(text.contains("invalid_api_key"), "{text}");
    assert!(
        !text.contains("sk-bobs-own-key"),
        "the key never shows: {text}"
    );
    server.stop().await;
}
