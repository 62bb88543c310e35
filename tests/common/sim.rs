//! Test helpers for the Dust simulator: an `Api` wrapper (simulator + awc client, no redirect
//! following), JSON GET/POST with the bearer key, conversation creation, and a bounded SSE reader
//! that records handshake, events, `done` and abrupt breaks.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use std::time::Duration;

use dust_mcp::simulator::{Knobs, SimConfig, Simulator};
use serde_json::{json, Value};

/// The simulator's demo agents used by the tests.
pub const WRITER: &str = "wR1ter9Xk4";
pub const SLOW: &str = "sL0wAg3nt5";
pub const BROKEN: &str = "bR0k3nAg7t";

/// Upper bound of any single stream read, so a broken simulator fails a test instead of hanging.
pub const READ_BOUND: Duration = Duration::from_secs(20);

pub fn fast() -> Knobs {
    Knobs {
        token_interval_ms: Some(2),
        first_token_delay_ms: Some(5),
        ..Knobs::default()
    }
}

pub struct Api {
    pub sim: Simulator,
    pub client: awc::Client,
}

/// What one SSE connection delivered.
#[derive(Debug, Default)]
pub struct Sse {
    pub handshake_first: bool,
    pub events: Vec<(String, Value)>,
    pub done: bool,
    pub broken: bool,
}

impl Sse {
    pub fn last_id(&self) -> Option<String> {
        self.events.last().map(|(id, _)| id.clone())
    }
    pub fn types(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|(_, d)| d["type"].as_str().unwrap_or("").to_string())
            .collect()
    }
    pub fn tokens(&self) -> String {
        self.events
            .iter()
            .filter(|(_, d)| d["type"] == "generation_tokens" && d["classification"] == "tokens")
            .map(|(_, d)| d["text"].as_str().unwrap().to_string())
            .collect()
    }
    pub fn terminal(&self) -> Option<&Value> {
        self.events.iter().map(|(_, d)| d).find(|d| {
            matches!(
                d["type"].as_str(),
                Some("agent_message_success" | "agent_error" | "agent_generation_cancelled")
            )
        })
    }
}

pub struct Created {
    pub conversation: Value,
    pub c_id: String,
    pub user_sid: String,
    pub agent_sid: String,
}

pub fn message(content: &str, agent: &str) -> Value {
    json!({
        "content": content,
        "mentions": [{"configurationId": agent}],
        "context": {"username": "tester", "timezone": "Europe/Paris", "origin": "api"},
    })
}

impl Api {
    pub async fn start(knobs: Knobs) -> Api {
        let sim = Simulator::start(SimConfig {
            knobs,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        Api {
            sim,
            client: awc::Client::builder().disable_redirects().finish(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/w/{}{path}",
            self.sim.url(),
            self.sim.workspace_id()
        )
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.sim.api_key())
    }

    pub async fn send(&self, req: awc::ClientRequest, body: Option<Value>) -> (u16, Value) {
        let req = req.insert_header(("Authorization", self.bearer()));
        let mut resp = match body {
            Some(b) => req.send_json(&b).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        let bytes = resp.body().limit(8 << 20).await.unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (resp.status().as_u16(), v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path)), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)), Some(body))
            .await
    }

    pub async fn create(&self, agent: &str, question: &str) -> Created {
        let (status, body) = self
            .post(
                "/assistant/conversations",
                json!({"title": null, "message": message(question, agent)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let user_sid = body["message"]["sId"].as_str().unwrap().to_string();
        let agent_msg = body["conversation"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|versions| versions.as_array().and_then(|v| v.last()))
            .find(|m| m["type"] == "agent_message" && m["parentMessageId"] == user_sid.as_str())
            .expect("agent message in conversation.content")
            .clone();
        Created {
            c_id: body["conversation"]["sId"].as_str().unwrap().to_string(),
            conversation: body["conversation"].clone(),
            user_sid,
            agent_sid: agent_msg["sId"].as_str().unwrap().to_string(),
        }
    }

    pub fn sse_url(&self, c_id: &str, m_id: &str, last: Option<&str>) -> String {
        let mut url = format!(
            "{}/api/sse/v1/w/{}/assistant/conversations/{c_id}/messages/{m_id}/events",
            self.sim.url(),
            self.sim.workspace_id()
        );
        if let Some(id) = last {
            url.push_str(&format!("?lastEventId={id}"));
        }
        url
    }

    /// Reads one SSE connection to its end (or until `stop_when` holds for the frames so far).
    pub async fn stream_until(&self, url: &str, stop_when: impl Fn(&Sse) -> bool) -> Sse {
        use futures::StreamExt;
        let read = async {
            let mut resp = self
                .client
                .get(url)
                .insert_header(("Authorization", self.bearer()))
                .insert_header(("Accept", "text/event-stream"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(
                resp.headers().get("content-type").unwrap(),
                "text/event-stream"
            );
            let mut sse = Sse::default();
            let mut buf = String::new();
            let mut frames = 0;
            loop {
                match resp.next().await {
                    None => break,
                    Some(Err(_)) => {
                        sse.broken = true;
                        break;
                    }
                    Some(Ok(chunk)) => buf.push_str(std::str::from_utf8(&chunk).unwrap()),
                }
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    frames += 1;
                    if frame.starts_with("event: dust-handshake\ndata: {}") {
                        sse.handshake_first = frames == 1;
                    } else if frame == "data: done\n\n" {
                        sse.done = true;
                    } else {
                        let json: Value =
                            serde_json::from_str(frame.trim_start_matches("data: ").trim())
                                .unwrap();
                        sse.events.push((
                            json["eventId"].as_str().unwrap().to_string(),
                            json["data"].clone(),
                        ));
                    }
                }
                if stop_when(&sse) {
                    break;
                }
            }
            sse
        };
        tokio::time::timeout(READ_BOUND, read)
            .await
            .expect("stream read bounded")
    }

    pub async fn stream(&self, c_id: &str, m_id: &str, last: Option<&str>) -> Sse {
        self.stream_until(&self.sse_url(c_id, m_id, last), |_| false)
            .await
    }

    /// Reconnects with `lastEventId` until a terminal event; returns every connection.
    pub async fn stream_to_end(&self, c_id: &str, m_id: &str) -> Vec<Sse> {
        let mut conns: Vec<Sse> = Vec::new();
        let mut last: Option<String> = None;
        for _ in 0..50 {
            let sse = self.stream(c_id, m_id, last.as_deref()).await;
            let end = sse.terminal().is_some();
            if let Some(id) = sse.last_id() {
                last = Some(id);
            }
            conns.push(sse);
            if end {
                return conns;
            }
        }
        panic!("no terminal event after 50 connections");
    }

    pub async fn agent_message(&self, c_id: &str) -> Value {
        let (status, body) = self.get(&format!("/assistant/conversations/{c_id}")).await;
        assert_eq!(status, 200);
        body["conversation"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .filter_map(|v| v.as_array().and_then(|v| v.last()))
            .find(|m| m["type"] == "agent_message")
            .unwrap()
            .clone()
    }
}

pub fn err_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or("<no error.type>")
}

impl Api {
    /// GETs `path` over a raw TCP connection (HTTP/1.1, `Connection: close`) and returns every
    /// byte the server wrote until it closed: lets a test see chunked framing that awc hides.
    pub async fn raw_get(&self, path_and_query: &str) -> Vec<u8> {
        use std::io::{Read, Write};
        let addr = self.sim.url().trim_start_matches("http://").to_string();
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\n\
             Accept: text/event-stream\r\nConnection: close\r\n\r\n",
            self.bearer()
        );
        let read = move || {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(READ_BOUND)).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            out
        };
        tokio::task::spawn_blocking(read).await.unwrap()
    }
}

impl Api {
    /// URL of the conversation event stream under `/api/sse/v1`.
    pub fn conversation_sse_url(&self, c_id: &str) -> String {
        format!(
            "{}/api/sse/v1/w/{}/assistant/conversations/{c_id}/events",
            self.sim.url(),
            self.sim.workspace_id()
        )
    }

    /// Uploads `bytes` as the multipart part `file` to `upload_url`.
    pub async fn upload(&self, upload_url: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
        let mut body = format!(
            "--SimBoundary42\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n--SimBoundary42--\r\n");
        let mut resp = self
            .client
            .post(upload_url)
            .insert_header(("Authorization", self.bearer()))
            .insert_header((
                "Content-Type",
                "multipart/form-data; boundary=SimBoundary42",
            ))
            .send_body(body)
            .await
            .unwrap();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (resp.status().as_u16(), v)
    }
}
