//! Shared by the Dust client's end-to-end tests: the simulator on 127.0.0.1:0, client settings
//! pointing at it, messages, and readers of a streamed answer.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use std::time::Duration;

use actors::dust::{
    AgentEvent, DustClient, DustError, DustSettings, DustShared, NewMessage, PostedMessage, Secret,
    TextClass, UserContext,
};
use dust_mcp::simulator::{agents, answers, Knobs, SimConfig, Simulator};
use futures::StreamExt;

/// Upper bound on one whole answer, so a broken client fails a test instead of hanging it.
pub const ANSWER_BOUND: Duration = Duration::from_secs(30);
pub const WRITER: &str = "wR1ter9Xk4";
pub const SLOW: &str = "sL0wAg3nt5";
pub const BROKEN: &str = "bR0k3nAg7t";

pub fn fast() -> Knobs {
    Knobs {
        token_interval_ms: Some(2),
        first_token_delay_ms: Some(5),
        ..Knobs::default()
    }
}

pub async fn sim(knobs: Knobs) -> Simulator {
    Simulator::start(SimConfig {
        knobs,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

pub fn settings(sim: &Simulator) -> DustSettings {
    let mut s = DustSettings::new(sim.url(), Secret::new(sim.api_key()), sim.workspace_id());
    s.rate_limit_per_sec = 0;
    s.retry_base_delay = Duration::from_millis(10);
    s.retry_max_delay = Duration::from_millis(100);
    s.response_timeout = Duration::from_secs(5);
    s.stream_idle_timeout = Duration::from_secs(10);
    s
}

pub fn client(settings: DustSettings) -> DustClient {
    DustShared::new(settings).expect("valid settings").client()
}

pub fn message(content: &str, agent: &str) -> NewMessage {
    let mut context = UserContext::new("dust-client-test");
    context.timezone = "Europe/Paris".into();
    NewMessage {
        content: content.into(),
        agent_id: agent.into(),
        context,
    }
}

pub fn expected(agent: &str, question: &str) -> String {
    answers::answer(agents::find(agent).expect("demo agent"), question, &[])
}

/// Every event of one answer, or the error that ended it.
pub async fn run(
    client: &DustClient,
    posted: &PostedMessage,
) -> (Vec<AgentEvent>, Option<DustError>) {
    let mut stream = client.stream_agent_message(&posted.conversation_id, &posted.agent_message_id);
    let mut events = Vec::new();
    let collect = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(ev) => events.push(ev),
                Err(e) => return Some(e),
            }
        }
        None
    };
    let err = tokio::time::timeout(ANSWER_BOUND, collect)
        .await
        .expect("answer within bound");
    (events, err)
}

pub fn streamed_text(events: &[AgentEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::TextDelta {
                text,
                classification: TextClass::Tokens,
            } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub fn success(events: &[AgentEvent]) -> &str {
    match events.last() {
        Some(AgentEvent::Success { content, .. }) => content,
        other => panic!("no success at the end: {other:?}"),
    }
}

pub fn reconnects(events: &[AgentEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AgentEvent::Reconnected { .. }))
        .count()
}
