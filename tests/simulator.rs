//! End-to-end tests of the Dust simulator's routes (`src/simulator/`) over HTTP on 127.0.0.1:0
//! with awc: authentication, agents, conversations and follow-ups, files and fragments, the rate
//! limits as 403 and 429, injected faults, the admin routes and blocking requests, as
//! dust-api.md describes them. The event stream is in `simulator_stream.rs`.

#[path = "common/sim.rs"]
mod sim;

use dust_mcp::simulator::{agents, Knobs, RouteClass};
use serde_json::{json, Value};
use sim::{err_type, fast, message, Api, BROKEN, SLOW, WRITER};

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

#[actix_web::test]
async fn files_upload_url_multipart_upload_and_file_fragment() {
    let api = Api::start(Knobs {
        upload_url_limit_per_minute: Some(3),
        ..fast()
    })
    .await;
    let req = |ct: &str, use_case: &str| json!({"contentType": ct, "fileName": "steps.csv", "fileSize": 12, "useCase": use_case});
    let (s, b) = api.post("/files", req("text/csv", "conversation")).await;
    assert_eq!(
        (s, b["file"]["status"].as_str()),
        (200, Some("created")),
        "{b}"
    );
    let upload_url = b["file"]["uploadUrl"].as_str().unwrap().to_string();
    let file_id = b["file"]["sId"].as_str().unwrap().to_string();
    assert!(upload_url.starts_with(&api.url("/files/")));
    let (s, b) = api
        .upload(&upload_url, "steps.csv", b"day,steps\n1,9000\n")
        .await;
    assert_eq!(
        (s, b["file"]["status"].as_str()),
        (200, Some("ready")),
        "{b}"
    );
    let (s, b) = api
        .post("/files", req("application/x-msdownload", "conversation"))
        .await;
    assert_eq!((s, err_type(&b)), (400, "file_type_not_supported"));
    let (s, b) = api.post("/files", req("text/csv", "avatar")).await;
    assert_eq!((s, err_type(&b)), (400, "invalid_request_error"));
    // The fourth upload-URL request of the minute is over the limit of 3: 429, no Retry-After.
    let resp = api
        .client
        .post(api.url("/files"))
        .insert_header(("Authorization", api.bearer()))
        .send_json(&req("text/csv", "conversation"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_none());

    let body = json!({
        "message": message("Summarise my steps", "dust"),
        "contentFragments": [{"title": "steps.csv", "fileId": file_id}],
    });
    let (s, b) = api.post("/assistant/conversations", body).await;
    assert_eq!(s, 200, "{b}");
    let fragment = &b["conversation"]["content"][0][0];
    assert_eq!(
        (fragment["type"].as_str(), fragment["fileId"].as_str()),
        (Some("content_fragment"), Some(file_id.as_str()))
    );
    assert_eq!(b["contentFragment"]["sId"], fragment["sId"]);
    let c_id = b["conversation"]["sId"].as_str().unwrap();
    let agent_sid = b["conversation"]["content"][2][0]["sId"].as_str().unwrap();
    let sse = api.stream(c_id, agent_sid, None).await;
    assert!(
        sse.tokens().contains("steps.csv"),
        "the answer mentions the attachment"
    );
    let bad = json!({"message": message("x", "dust"), "contentFragments": [{"title": "t", "fileId": "fil_nope"}]});
    let (s, b) = api.post("/assistant/conversations", bad).await;
    assert_eq!((s, err_type(&b)), (404, "file_not_found"));
    let stats = api.sim.stats();
    assert_eq!(
        (stats.upload_urls, stats.uploads, stats.rate_limit_refusals),
        (1, 1, 1)
    );
    api.sim.stop().await;
}

#[actix_web::test]
async fn inline_fragments_are_capped_at_512_kib() {
    let api = Api::start(fast()).await;
    let c = api.create("dust", "hello").await;
    let path = format!("/assistant/conversations/{}/content_fragments", c.c_id);
    let frag =
        |n: usize| json!({"title": "notes", "content": "a".repeat(n), "contentType": "text/plain"});
    let (s, b) = api.post(&path, frag(512 * 1024 + 1)).await;
    assert_eq!(
        (s, b["error"]["message"].as_str()),
        (
            400,
            Some("The content must be a non-empty string of less than 512kB.")
        )
    );
    let (s, b) = api.post(&path, frag(0)).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = api.post(&path, frag(512 * 1024)).await;
    assert_eq!(
        (s, b["contentFragment"]["title"].as_str()),
        (200, Some("notes"))
    );
    let (s, b) = api
        .post("/assistant/conversations/nope/content_fragments", frag(3))
        .await;
    assert_eq!((s, err_type(&b)), (404, "conversation_not_found"));
    api.sim.stop().await;
}

#[actix_web::test]
async fn injected_5xx_bursts_hit_only_their_route_class_and_run_out() {
    let api = Api::start(Knobs {
        fail_next: Some(2),
        fail_status: Some(502),
        fail_route: Some(RouteClass::Agents),
        ..fast()
    })
    .await;
    let c = api.create(WRITER, "unaffected").await;
    assert!(!c.c_id.is_empty());
    for _ in 0..2 {
        let mut resp = api
            .client
            .get(api.url("/assistant/agent_configurations"))
            .insert_header(("Authorization", api.bearer()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 502);
        assert!(
            resp.json::<Value>().await.is_err(),
            "a 502 from a proxy is not JSON"
        );
    }
    let (s, _) = api.get("/assistant/agent_configurations").await;
    assert_eq!(s, 200);
    api.sim.set_knobs(Knobs {
        fail_next: Some(1),
        fail_status: Some(500),
        ..fast()
    });
    let (s, b) = api.get("/assistant/agent_configurations/dust").await;
    assert_eq!((s, err_type(&b)), (500, "internal_server_error"));
    assert_eq!(api.sim.stats().injected_5xx, 3);
    api.sim.stop().await;
}

#[actix_web::test]
async fn admin_routes_merge_knobs_and_report_stats() {
    let api = Api::start(Knobs {
        connection_cap_ms: Some(1234),
        ..fast()
    })
    .await;
    let admin = |p: &str| format!("{}/_sim/{p}", api.sim.url());
    let (s, b) = api
        .send(
            api.client.post(admin("knobs")),
            Some(json!({"token_interval_ms": 1, "fail_next": 1})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["token_interval_ms"].as_u64(),
            b["connection_cap_ms"].as_u64()
        ),
        (Some(1), Some(1234))
    );
    assert_eq!(api.sim.knobs().token_interval_ms, Some(1));
    let (s, b) = api
        .send(
            api.client.post(admin("knobs")),
            Some(json!({"no_such_knob": 1})),
        )
        .await;
    assert_eq!((s, err_type(&b)), (400, "invalid_request_error"));
    let mut resp = api.client.get(admin("stats")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let _ = resp.body().await;
    let (s, _) = api.get("/assistant/agent_configurations").await;
    assert_eq!(s, 503, "the fail_next set through the admin route applies");
    let (s, b) = api.send(api.client.get(admin("stats")), None).await;
    assert_eq!((s, b["injected_5xx"].as_u64()), (200, Some(1)));
    api.sim.stop().await;
}

#[actix_web::test]
async fn blocking_requests_return_after_completion() {
    let api = Api::start(fast()).await;
    let body = json!({"blocking": true, "message": message("block please", WRITER)});
    let (s, b) = api.post("/assistant/conversations", body).await;
    assert_eq!(s, 200);
    let agent = &b["conversation"]["content"][1][0];
    assert_eq!(agent["status"], "succeeded");
    assert!(agent["content"].as_str().unwrap().contains("block please"));
    let c_id = b["conversation"]["sId"].as_str().unwrap();
    let mut m = message("and fail", BROKEN);
    m["blocking"] = json!(true);
    let (s, b) = api
        .post(&format!("/assistant/conversations/{c_id}/messages"), m)
        .await;
    assert_eq!(
        (s, b["agentMessages"].as_array().map(Vec::len)),
        (200, Some(0)),
        "failed answers are dropped"
    );
    api.sim.set_knobs(Knobs {
        blocking_timeout_ms: Some(30),
        ..Knobs::default()
    });
    let (s, b) = api
        .post(
            "/assistant/conversations",
            json!({"blocking": true, "message": message("slow", SLOW)}),
        )
        .await;
    assert_eq!(
        (s, b["conversation"]["content"][1][0]["status"].as_str()),
        (200, Some("created")),
        "capped"
    );
    api.sim.stop().await;
}
