//! End-to-end tests of the Dust simulator (`src/simulator/`) over HTTP on 127.0.0.1:0 with awc:
//! routes and errors as dust-api.md describes them, the event stream (307, handshake, replay,
//! cap, drop, cancel), the fault knobs and the counters. Every stream read is bounded.

#[path = "common/sim.rs"]
mod sim;

use std::collections::HashSet;

use dust_mcp::simulator::{agents, answers, Knobs, RouteClass};
use serde_json::{json, Value};
use sim::{err_type, fast, message, Api};

const WRITER: &str = "wR1ter9Xk4";
const SLOW: &str = "sL0wAg3nt5";
const BROKEN: &str = "bR0k3nAg7t";

#[actix_web::test]
async fn auth_failures_have_distinct_types() {
    let api = Api::start(fast()).await;
    let url = api.url("/assistant/agent_configurations");
    let cases: Vec<(Option<String>, u16, &str)> = vec![
        (None, 401, "not_authenticated"),
        (
            Some("Basic abc".into()),
            401,
            "malformed_authorization_header_error",
        ),
        (
            Some("Bearer nope".into()),
            401,
            "malformed_authorization_header_error",
        ),
        (
            Some("Bearer sk-wrongKey1".into()),
            401,
            "invalid_api_key_error",
        ),
    ];
    for (header, status, kind) in cases {
        let mut req = api.client.get(&url);
        if let Some(h) = header {
            req = req.insert_header(("Authorization", h));
        }
        let mut resp = req.send().await.unwrap();
        let body: Value = resp.json().await.unwrap();
        assert_eq!((resp.status().as_u16(), err_type(&body)), (status, kind));
        assert!(body["error"]["message"].is_string());
    }
    let foreign = format!(
        "{}/api/v1/w/foreign-workspace/assistant/agent_configurations",
        api.sim.url()
    );
    let (s, b) = api.send(api.client.get(foreign), None).await;
    assert_eq!((s, err_type(&b)), (401, "workspace_auth_error"));
    let unknown = format!(
        "{}/api/v1/w/nowhere/assistant/agent_configurations",
        api.sim.url()
    );
    let (s, b) = api.send(api.client.get(unknown), None).await;
    assert_eq!((s, err_type(&b)), (404, "workspace_not_found"));
    api.sim.stop().await;
}

#[actix_web::test]
async fn agents_list_honours_views_search_and_get() {
    let api = Api::start(fast()).await;
    let (s, all) = api.get("/assistant/agent_configurations").await;
    assert_eq!(s, 200);
    let list = all["agentConfigurations"].as_array().unwrap();
    assert_eq!(list.len(), agents::AGENTS.len());
    for a in list {
        for field in [
            "id",
            "sId",
            "version",
            "name",
            "description",
            "pictureUrl",
            "model",
            "status",
            "scope",
            "userFavorite",
            "maxStepsPerRun",
        ] {
            assert!(a.get(field).is_some(), "{field} missing in {a}");
        }
    }
    assert!(list.iter().any(|a| a["status"] == "archived"));
    let (_, global) = api.get("/assistant/agent_configurations?view=global").await;
    let names: Vec<&str> = global["agentConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sId"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dust"]);
    for view in ["list", "favorites"] {
        let (s, b) = api
            .get(&format!("/assistant/agent_configurations?view={view}"))
            .await;
        assert_eq!((s, err_type(&b)), (401, "invalid_request_error"));
    }
    let (s, found) = api
        .get("/assistant/agent_configurations/search?q=WRI")
        .await;
    assert_eq!(s, 200);
    let found = found["agentConfigurations"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["sId"], WRITER);
    assert_eq!(found[0]["requestedSpaceIds"], json!([]));
    let (s, b) = api.get("/assistant/agent_configurations/search").await;
    assert_eq!((s, err_type(&b)), (400, "invalid_request_error"));
    let (s, one) = api.get("/assistant/agent_configurations/dust").await;
    assert_eq!(
        (s, one["agentConfiguration"]["scope"].as_str()),
        (200, Some("global"))
    );
    let (s, b) = api.get("/assistant/agent_configurations/nope").await;
    assert_eq!((s, err_type(&b)), (404, "agent_configuration_not_found"));
    api.sim.stop().await;
}

#[actix_web::test]
async fn create_conversation_validates_the_message() {
    let api = Api::start(fast()).await;
    let mut bad_tz = message("hi", WRITER);
    bad_tz["context"]["timezone"] = json!("Mars/Base");
    let mut blank_user = message("hi", WRITER);
    blank_user["context"]["username"] = json!("   ");
    let mut bad_mention = message("hi", WRITER);
    bad_mention["mentions"] = json!([{"agent": WRITER}]);
    let mut no_context = message("hi", WRITER);
    no_context.as_object_mut().unwrap().remove("context");
    let cases = [
        (message("", WRITER), "at least 1 character"),
        (bad_tz, "Invalid timezone"),
        (
            blank_user,
            "The message.context.username must be a non-empty string.",
        ),
        (bad_mention, "Invalid request body"),
        (no_context, "Invalid request body"),
    ];
    for (msg, text) in cases {
        let (s, b) = api
            .post("/assistant/conversations", json!({ "message": msg }))
            .await;
        assert_eq!((s, err_type(&b)), (400, "invalid_request_error"), "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(text),
            "{b}"
        );
    }
    for tz in ["UTC", "Etc/UTC", "America/New_York", "Asia/Tokyo"] {
        let mut m = message("hi", WRITER);
        m["context"]["timezone"] = json!(tz);
        let (s, b) = api
            .post("/assistant/conversations", json!({ "message": m }))
            .await;
        assert_eq!(s, 200, "{tz}: {b}");
    }
    let (s, b) = api.get("/assistant/conversations/doesNotExist").await;
    assert_eq!((s, err_type(&b)), (404, "conversation_not_found"));
    assert_eq!(api.sim.stats().conversations_created, 4);
    api.sim.stop().await;
}

#[actix_web::test]
async fn create_returns_a_created_agent_message_answering_the_user_message() {
    let api = Api::start(fast()).await;
    let c = api.create(WRITER, "Draft a note about the offsite").await;
    let content = c.conversation["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    let user = &content[0][0];
    let agent = &content[1][0];
    assert_eq!(user["type"], "user_message");
    assert_eq!(user["context"]["origin"], "api");
    assert_eq!(agent["type"], "agent_message");
    assert_eq!(agent["status"], "created");
    assert_eq!(agent["parentMessageId"], c.user_sid.as_str());
    assert_eq!(agent["configuration"]["sId"], WRITER);
    assert!(agent["content"].is_null());
    api.sim.stop().await;
}

#[actix_web::test]
async fn events_route_redirects_307_to_sse_keeping_the_query() {
    let api = Api::start(fast()).await;
    let c = api.create(WRITER, "hello").await;
    let path = format!(
        "/assistant/conversations/{}/messages/{}/events?lastEventId=1-0",
        c.c_id, c.agent_sid
    );
    let resp = api
        .client
        .get(api.url(&path))
        .insert_header(("Authorization", api.bearer()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 307);
    let location = resp.headers().get("location").unwrap().to_str().unwrap();
    assert_eq!(location, api.sse_url(&c.c_id, &c.agent_sid, Some("1-0")));
    // A client that follows redirects (awc's default) keeps Authorization on the same origin.
    let follow = awc::Client::default();
    let resp = follow
        .get(api.url(&path.replace("?lastEventId=1-0", "")))
        .insert_header(("Authorization", api.bearer()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    api.sim.stop().await;
}

#[actix_web::test]
async fn answer_streams_token_by_token_and_ends_with_success_holding_the_joined_tokens() {
    let api = Api::start(fast()).await;
    let question = "What should we tell the team about Friday?";
    let c = api.create(WRITER, question).await;
    let sse = api.stream(&c.c_id, &c.agent_sid, None).await;
    assert!(sse.handshake_first && sse.done && !sse.broken);
    let types = sse.types();
    assert!(types.iter().filter(|t| *t == "generation_tokens").count() > 5);
    assert_eq!(types.last().unwrap(), "agent_message_success");
    let success = sse.terminal().unwrap();
    let content = success["message"]["content"].as_str().unwrap();
    assert_eq!(content, sse.tokens());
    assert_eq!(
        content,
        answers::answer(agents::find(WRITER).unwrap(), question, &[])
    );
    assert!(content.contains(question));
    assert_eq!(success["message"]["status"], "succeeded");
    assert!(sse
        .events
        .iter()
        .all(|(_, d)| d["step"].is_number() && d["messageId"] == c.agent_sid.as_str()));
    let ids: Vec<&String> = sse.events.iter().map(|(id, _)| id).collect();
    assert!(ids.iter().all(|id| id.contains('-')));
    let final_msg = api.agent_message(&c.c_id).await;
    assert_eq!(final_msg["status"], "succeeded");
    assert_eq!(final_msg["content"], content);
    api.sim.stop().await;
}

#[actix_web::test]
async fn last_event_id_replays_strictly_after_that_event() {
    let api = Api::start(fast()).await;
    let c = api.create(WRITER, "replay me").await;
    let full = api.stream(&c.c_id, &c.agent_sid, None).await;
    let (pivot, _) = &full.events[4];
    let rest = api.stream(&c.c_id, &c.agent_sid, Some(pivot)).await;
    let expected: Vec<&String> = full.events[5..].iter().map(|(id, _)| id).collect();
    let got: Vec<&String> = rest.events.iter().map(|(id, _)| id).collect();
    assert_eq!(got, expected);
    assert!(rest.done);
    let stats = api.sim.stats();
    assert_eq!((stats.stream_connections, stats.resumes), (2, 1));
    api.sim.stop().await;
}

#[actix_web::test]
async fn connection_cap_ends_mid_answer_with_done_and_resumes_lose_nothing() {
    let api = Api::start(Knobs {
        token_interval_ms: Some(10),
        tokens_per_answer: Some(40),
        connection_cap_ms: Some(120),
        ..fast()
    })
    .await;
    let c = api.create(WRITER, "a long answer please").await;
    let conns = api.stream_to_end(&c.c_id, &c.agent_sid).await;
    assert!(conns.len() > 1, "the cap should split the answer");
    assert!(conns.iter().all(|s| s.done && !s.broken));
    assert!(conns[0].terminal().is_none() && !conns[0].events.is_empty());
    let all: Vec<&(String, Value)> = conns.iter().flat_map(|s| s.events.iter()).collect();
    let unique: HashSet<&String> = all.iter().map(|(id, _)| id).collect();
    assert_eq!(unique.len(), all.len(), "no event twice");
    let tokens: String = conns.iter().map(|s| s.tokens()).collect();
    let content = conns.last().unwrap().terminal().unwrap()["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(tokens, content);
    assert_eq!(answers::tokens(&content, None).len(), 40);
    assert!(api.sim.stats().capped_connections >= 1);
    api.sim.stop().await;
}

#[actix_web::test]
async fn drop_after_n_events_breaks_the_connection_without_done() {
    let api = Api::start(Knobs {
        drop_after_events: Some(3),
        drop_connections: Some(2),
        ..fast()
    })
    .await;
    let c = api.create(WRITER, "drop me").await;
    // On the wire: three event frames, then the socket closes with no `done` and no final
    // zero-length chunk (awc reports such a cut as a plain end of body).
    let sse_path = api
        .sse_url(&c.c_id, &c.agent_sid, None)
        .replace(&api.sim.url(), "");
    let raw = String::from_utf8(api.raw_get(&sse_path).await).unwrap();
    assert!(
        raw.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{raw}"
    );
    assert_eq!(raw.matches("\"eventId\"").count(), 3);
    assert!(
        !raw.contains("data: done") && !raw.ends_with("0\r\n\r\n"),
        "{raw}"
    );
    let first = api.stream(&c.c_id, &c.agent_sid, None).await;
    assert!(!first.done && first.terminal().is_none(), "{first:?}");
    assert_eq!(first.events.len(), 3);
    let second = api
        .stream(&c.c_id, &c.agent_sid, first.last_id().as_deref())
        .await;
    assert!(second.done && !second.broken);
    let content = second.terminal().unwrap()["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(format!("{}{}", first.tokens(), second.tokens()), content);
    assert_eq!(api.sim.stats().dropped_connections, 2);
    api.sim.stop().await;
}

#[actix_web::test]
async fn cancel_ends_the_generation_with_agent_generation_cancelled() {
    let api = Api::start(Knobs {
        connection_cap_ms: Some(400),
        ..fast()
    })
    .await;
    let c = api.create(SLOW, "take your time").await;
    let (s, b) = api
        .post(
            &format!("/assistant/conversations/{}/cancel", c.c_id),
            json!({"messageIds": [c.agent_sid]}),
        )
        .await;
    assert_eq!((s, &b), (200, &json!({"success": true})));
    let sse = api.stream(&c.c_id, &c.agent_sid, None).await;
    assert_eq!(
        sse.terminal().unwrap()["type"],
        "agent_generation_cancelled"
    );
    // Real Dust keeps the stream open after a cancel; it ends at the cap with `done`.
    assert!(sse.done);
    assert_eq!(api.agent_message(&c.c_id).await["status"], "cancelled");
    assert_eq!(api.sim.stats().cancels, 1);
    api.sim.stop().await;
}

#[actix_web::test]
async fn follow_up_returns_message_and_agent_messages_and_counts_per_conversation() {
    let api = Api::start(fast()).await;
    let c = api.create(WRITER, "first").await;
    let (s, b) = api
        .post(
            &format!("/assistant/conversations/{}/messages", c.c_id),
            message("second", WRITER),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let agent = &b["agentMessages"][0];
    assert_eq!(agent["parentMessageId"], b["message"]["sId"]);
    assert_eq!(agent["status"], "created");
    let (s, b) = api
        .post(
            "/assistant/conversations/nope/messages",
            message("x", WRITER),
        )
        .await;
    assert_eq!((s, err_type(&b)), (404, "conversation_not_found"));
    let mut blank = message("x", WRITER);
    blank["context"]["username"] = json!("");
    let (s, b) = api
        .post(
            &format!("/assistant/conversations/{}/messages", c.c_id),
            blank,
        )
        .await;
    assert_eq!(
        (s, b["error"]["message"].as_str()),
        (400, Some("The context.username field is required."))
    );
    let stats = api.sim.stats();
    assert_eq!(stats.user_messages_posted, 2);
    assert_eq!(stats.user_messages_by_conversation.get(&c.c_id), Some(&2));
    api.sim.stop().await;
}

#[actix_web::test]
async fn events_route_refuses_user_messages_and_unknown_ids() {
    let api = Api::start(fast()).await;
    let c = api.create(WRITER, "ids").await;
    let get = |url: String| async {
        let (s, b) = api.send(api.client.get(url), None).await;
        (s, err_type(&b).to_string())
    };
    assert_eq!(
        get(api.sse_url(&c.c_id, &c.user_sid, None)).await,
        (400, "invalid_request_error".into())
    );
    assert_eq!(
        get(api.sse_url(&c.c_id, "nope", None)).await,
        (404, "message_not_found".into())
    );
    assert_eq!(
        get(api.sse_url("nope", &c.agent_sid, None)).await,
        (404, "conversation_not_found".into())
    );
    api.sim.stop().await;
}

#[actix_web::test]
async fn broken_agent_ends_with_agent_error_and_a_failed_message() {
    let api = Api::start(fast()).await;
    let c = api.create(BROKEN, "will fail").await;
    let sse = api.stream(&c.c_id, &c.agent_sid, None).await;
    let err = sse.terminal().unwrap();
    assert_eq!(err["type"], "agent_error");
    for field in ["code", "message", "metadata"] {
        assert!(err["error"].get(field).is_some());
    }
    assert!(sse.done);
    let msg = api.agent_message(&c.c_id).await;
    assert_eq!(msg["status"], "failed");
    assert_eq!(msg["error"]["code"], err["error"]["code"]);
    api.sim.stop().await;
}

#[actix_web::test]
async fn message_limits_give_403_rate_limit_error_and_throttling_gives_429_with_retry_after() {
    let api = Api::start(Knobs {
        message_limit_per_minute: Some(2),
        ..fast()
    })
    .await;
    api.create(WRITER, "one").await;
    api.create(WRITER, "two").await;
    let (s, b) = api
        .post(
            "/assistant/conversations",
            json!({"message": message("three", WRITER)}),
        )
        .await;
    assert_eq!((s, err_type(&b)), (403, "rate_limit_error"));
    api.sim.set_knobs(Knobs {
        throttle_next: Some(1),
        retry_after_secs: Some(7),
        throttle_route: Some(RouteClass::Agents),
        ..fast()
    });
    let resp = api
        .client
        .get(api.url("/assistant/agent_configurations"))
        .insert_header(("Authorization", api.bearer()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "7");
    let (s, _) = api.get("/assistant/agent_configurations").await;
    assert_eq!(s, 200);
    api.sim.set_knobs(Knobs {
        rate_limit_next_posts: Some(1),
        ..fast()
    });
    let (s, b) = api
        .post(
            "/assistant/conversations",
            json!({"message": message("four", WRITER)}),
        )
        .await;
    assert_eq!((s, err_type(&b)), (403, "rate_limit_error"));
    assert_eq!(api.sim.stats().rate_limit_refusals, 3);
    api.sim.stop().await;
}
