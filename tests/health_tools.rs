//! The health MCP tools end to end on a real server (127.0.0.1:0, temporary data_dir): upload,
//! summarise, query and delete through `tools/call`, with the audit rows they leave.

#[path = "common/health.rs"]
mod health;

use actors::health::synth;
use health::*;
use serde_json::{json, Value};

struct Mcp<'a> {
    h: &'a Harness,
    user: &'a str,
    session: String,
    next: u64,
}

impl<'a> Mcp<'a> {
    async fn open(h: &'a Harness, user: &'a str) -> Mcp<'a> {
        let mut res = h
            .client
            .post(format!("{}/mcp", h.base))
            .bearer_auth(token(user))
            .insert_header(("Accept", "application/json, text/event-stream"))
            .insert_header(("Content-Type", "application/json"))
            .send_json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "health-test", "version": "1"}}}))
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let session = res
            .headers()
            .get("mcp-session-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let _ = res.body().await;
        let mut m = Mcp {
            h,
            user,
            session,
            next: 1,
        };
        m.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        m
    }

    async fn post(&mut self, msg: Value) -> Value {
        let mut res = self
            .h
            .client
            .post(format!("{}/mcp", self.h.base))
            .bearer_auth(token(self.user))
            .insert_header(("Accept", "application/json"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Mcp-Session-Id", self.session.as_str()))
            .insert_header(("MCP-Protocol-Version", "2025-11-25"))
            .send_json(&msg)
            .await
            .unwrap();
        let body = res.body().limit(64 << 20).await.unwrap();
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let reply = self
            .post(json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params}))
            .await;
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    async fn tool(&mut self, name: &str, args: Value) -> Value {
        self.call("tools/call", json!({"name": name, "arguments": args}))
            .await
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or("")
}

#[actix_rt::test]
async fn the_mcp_tools_upload_summarise_query_and_delete_with_audit_rows() {
    let h = Harness::start(|_| {}).await;
    let mut mcp = Mcp::open(&h, "alice").await;
    let tools = mcp.call("tools/list", json!({})).await;
    for t in tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("health_"))
    {
        assert!(!t["description"].as_str().unwrap().is_empty());
        assert_eq!(
            t["inputSchema"]["additionalProperties"], false,
            "{}",
            t["name"]
        );
        assert!(t.get("annotations").is_some());
    }
    let mut csv = Vec::new();
    let truth = synth::write_keto_mojo(&mut csv, 6, 40, None).unwrap();
    let up = mcp
        .tool(
            "health_upload",
            json!({"name": "keto.csv", "content": String::from_utf8(csv).unwrap()}),
        )
        .await;
    assert_ne!(up["isError"], true, "{up}");
    let id = up["structuredContent"]["id"].as_str().unwrap().to_owned();

    let sum = mcp.tool("health_summary", json!({"file_id": id})).await;
    let s = &sum["structuredContent"];
    assert_eq!(
        (s["file_id"].as_str(), s["records"].as_u64()),
        (Some(id.as_str()), Some(truth.records))
    );
    let glucose = "HKQuantityTypeIdentifierBloodGlucose";
    let m = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == glucose)
        .unwrap();
    assert!(close(
        m["mean"].as_f64().unwrap(),
        truth.metrics[glucose].mean
    ));
    assert!(text(&sum).contains("Blood Glucose"));

    let day_truth: Vec<_> = truth
        .daily
        .iter()
        .filter(|((m, _), _)| m == glucose)
        .collect();
    let day = mcp
        .tool(
            "health_query",
            json!({"metric": "bloodglucose", "granularity": "day"}),
        )
        .await;
    let points = day["structuredContent"]["points"].as_array().unwrap();
    assert_eq!(points.len(), day_truth.len());
    for (p, ((_, d), t)) in points.iter().zip(&day_truth) {
        assert_eq!(
            (p["start"].as_str(), p["count"].as_u64()),
            (Some(d.as_str()), Some(t.count))
        );
    }
    let total: u64 = day_truth.iter().map(|(_, t)| t.count).sum();
    for g in ["week", "month"] {
        let r = mcp
            .tool(
                "health_query",
                json!({"file_id": id, "metric": glucose, "granularity": g}),
            )
            .await;
        let pts = r["structuredContent"]["points"].as_array().unwrap();
        assert!(!pts.is_empty() && pts.len() < points.len(), "{g}");
        assert_eq!(
            pts.iter()
                .map(|p| p["count"].as_u64().unwrap())
                .sum::<u64>(),
            total,
            "{g} counts add up"
        );
    }
    let first = points[0]["start"].as_str().unwrap();
    let bounded = mcp
        .tool(
            "health_query",
            json!({"metric": glucose, "granularity": "day", "from": first, "to": first}),
        )
        .await;
    assert_eq!(
        bounded["structuredContent"]["points"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let wrong = mcp
        .tool(
            "health_query",
            json!({"metric": "heart rate", "granularity": "day"}),
        )
        .await;
    assert_eq!(wrong["isError"], true);
    assert!(
        text(&wrong).contains("blood_ketone"),
        "lists what exists: {wrong}"
    );

    let listed = mcp.call("resources/list", json!({})).await;
    let uri = format!("health://files/{id}/summary");
    assert!(listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["uri"] == json!(uri)));
    let read = mcp.call("resources/read", json!({"uri": uri})).await;
    assert!(read["contents"][0]["text"].as_str().unwrap().contains(&id));
    let prompt = mcp
        .call(
            "prompts/get",
            json!({"name": "health_review", "arguments": {"file_id": id}}),
        )
        .await;
    assert!(prompt["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("health_summary"));

    // Bob's session sees none of it.
    let mut bob = Mcp::open(&h, "bob").await;
    let theirs = bob.tool("health_summary", json!({"file_id": id})).await;
    assert_eq!(theirs["isError"], true);
    assert_eq!(
        bob.tool("health_delete_file", json!({"file_id": id})).await["isError"],
        true
    );

    // An upload link works without a bearer token and files under Alice.
    let link = mcp.tool("health_upload_link", json!({})).await;
    let url = link["structuredContent"]["upload_url"].as_str().unwrap();
    let mut labs = Vec::new();
    synth::write_lab_csv(&mut labs, 2, 3, None).unwrap();
    let res = h
        .client
        .post(format!("{url}?name=labs.csv"))
        .insert_header(("Content-Type", "text/csv"))
        .send_body(labs)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let forged = h
        .client
        .post(format!("{}/v1/health/upload/not-a-token", h.base))
        .send_body("x")
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let page_url = link["structuredContent"]["page_url"].as_str().unwrap();
    let mut page = h.client.get(page_url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(String::from_utf8(page.body().await.unwrap().to_vec())
        .unwrap()
        .contains("/v1/health/upload/"));
    assert_eq!(h.files("alice").await.len(), 2);

    let del = mcp.tool("health_delete_file", json!({"file_id": id})).await;
    assert_ne!(del["isError"], true, "{del}");
    assert_eq!(
        mcp.tool("health_summary", json!({"file_id": id})).await["isError"],
        true
    );

    let actions: Vec<String> = h
        .db()
        .prepare("SELECT DISTINCT action FROM audit_log WHERE principal = 'alice' ORDER BY action")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(actions, ["delete", "list", "read", "upload"]);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM audit_log WHERE principal = 'bob' AND action = 'delete'"),
        0
    );
    h.stop().await;
}
