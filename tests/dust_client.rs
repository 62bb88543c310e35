//! The Dust client's answer stream (`actors::dust`) against the Dust simulator on 127.0.0.1:0:
//! answers through the 307, resumes after caps, drops and stalls, idle timeouts, terminal types,
//! cancel, tool calls, reasoning and approvals. Requests, retries and faults are in
//! `dust_requests.rs`.

#[path = "common/dust_client.rs"]
mod support;

use std::time::Duration;

use actors::dust::{AgentEvent, DustError, TextClass};
use dust_mcp::simulator::Knobs;
use futures::StreamExt;
use support::*;

#[actix_rt::test]
async fn answer_streams_through_the_307_and_matches_the_simulated_text() {
    let sim = sim(fast()).await;
    let c = client(settings(&sim));
    let q = "Draft a two-line status update";
    let posted = c
        .create_conversation(&message(q, WRITER), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(err.is_none(), "{err:?}");
    // The handshake is not an event, and the answer is exactly the simulated one.
    assert!(
        matches!(events.first(), Some(AgentEvent::TextDelta { .. })),
        "{:?}",
        events.first()
    );
    assert_eq!(success(&events), expected(WRITER, q));
    assert_eq!(streamed_text(&events), expected(WRITER, q));
    assert_eq!(reconnects(&events), 0);
    let stats = sim.stats();
    assert_eq!((stats.stream_connections, stats.resumes), (1, 0));
    sim.stop().await;
}

#[actix_rt::test]
async fn resumes_after_the_connection_cap_without_losing_or_repeating_tokens() {
    let knobs = Knobs {
        tokens_per_answer: Some(80),
        token_interval_ms: Some(4),
        connection_cap_ms: Some(60),
        stamp_tokens: Some(true),
        ..fast()
    };
    let sim = sim(knobs).await;
    let c = client(settings(&sim));
    let posted = c
        .create_conversation(&message("Write a long note", WRITER), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(err.is_none(), "{err:?}");
    // Stamped tokens are all distinct, so any loss or repeat would break the equality.
    assert_eq!(streamed_text(&events), success(&events));
    let stats = sim.stats();
    assert!(
        stats.capped_connections >= 1 && stats.resumes >= 1,
        "{stats:?}"
    );
    assert!(reconnects(&events) >= 1);
    sim.stop().await;
}

#[actix_rt::test]
async fn resumes_after_dropped_connections_without_losing_or_repeating_tokens() {
    let knobs = Knobs {
        tokens_per_answer: Some(40),
        stamp_tokens: Some(true),
        drop_after_events: Some(5),
        drop_connections: Some(3),
        ..fast()
    };
    let sim = sim(knobs).await;
    let c = client(settings(&sim));
    let posted = c
        .create_conversation(&message("Summarise", WRITER), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(streamed_text(&events), success(&events));
    assert_eq!(sim.stats().dropped_connections, 3);
    assert_eq!(reconnects(&events), 3);
    sim.stop().await;
}

#[actix_rt::test]
async fn a_stalled_stream_hits_the_idle_timeout_and_the_answer_still_completes() {
    let knobs = Knobs {
        stall_after_events: Some(3),
        stall_ms: Some(20_000),
        stall_connections: Some(1),
        ..fast()
    };
    let sim = sim(knobs).await;
    let mut s = settings(&sim);
    s.stream_idle_timeout = Duration::from_millis(300);
    let c = client(s);
    let q = "Status please";
    let posted = c
        .create_conversation(&message(q, WRITER), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(success(&events), expected(WRITER, q));
    assert_eq!(sim.stats().stalled_connections, 1);
    sim.stop().await;
}

#[actix_rt::test]
async fn an_agent_that_stays_silent_fails_with_an_idle_error() {
    let sim = sim(Knobs {
        first_token_delay_ms: Some(60_000),
        ..fast()
    })
    .await;
    let mut s = settings(&sim);
    s.stream_idle_timeout = Duration::from_millis(200);
    s.stream_idle_retries = 1;
    let c = client(s);
    let posted = c
        .create_conversation(&message("Anyone there?", SLOW), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(
        matches!(err, Some(DustError::StreamIdle { .. })),
        "{err:?} after {events:?}"
    );
    assert!(err.unwrap().to_string().contains("silent"));
    sim.stop().await;
}

#[actix_rt::test]
async fn agent_error_is_terminal() {
    let sim = sim(fast()).await;
    let c = client(settings(&sim));
    let posted = c
        .create_conversation(&message("Do the thing", BROKEN), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(err.is_none(), "{err:?}");
    match events.last() {
        Some(AgentEvent::Error { code, .. }) => assert!(!code.is_empty()),
        other => panic!("expected agent_error, got {other:?}"),
    }
    sim.stop().await;
}

#[actix_rt::test]
async fn cancel_reaches_the_simulator_and_ends_the_stream() {
    let sim = sim(Knobs {
        tokens_per_answer: Some(400),
        token_interval_ms: Some(20),
        ..fast()
    })
    .await;
    let c = client(settings(&sim));
    let posted = c
        .create_conversation(&message("Tell me everything", WRITER), &[], None)
        .await
        .unwrap();
    let mut stream = c.stream_agent_message(&posted.conversation_id, &posted.agent_message_id);
    let outcome = tokio::time::timeout(ANSWER_BOUND, async {
        let mut cancelled = false;
        while let Some(item) = stream.next().await {
            match item.unwrap() {
                AgentEvent::TextDelta { .. } if !cancelled => {
                    c.cancel_message(&posted.conversation_id, &posted.agent_message_id)
                        .await
                        .unwrap();
                    cancelled = true;
                }
                ev if ev.is_terminal() => return ev,
                _ => {}
            }
        }
        panic!("stream ended without a terminal event");
    })
    .await
    .expect("cancel within bound");
    // The simulator keeps the stream open after a cancel, as Dust does: we stop on the event.
    assert_eq!(outcome, AgentEvent::Cancelled);
    assert_eq!(sim.stats().cancels, 1);
    sim.stop().await;
}

#[actix_rt::test]
async fn tool_calls_and_reasoning_surface_as_typed_events() {
    let sim = sim(Knobs {
        tool_events: Some(true),
        ..fast()
    })
    .await;
    let c = client(settings(&sim));
    let q = "How did I sleep?";
    let coach = "hC0ach7Lq2";
    let posted = c
        .create_conversation(&message(q, coach), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(err.is_none(), "{err:?}");
    let started = events
        .iter()
        .position(|e| matches!(e, AgentEvent::ActionStarted { .. }));
    let done = events
        .iter()
        .position(|e| matches!(e, AgentEvent::ActionDone { .. }));
    assert!(
        matches!((started, done), (Some(s), Some(d)) if s < d),
        "{events:?}"
    );
    let reasoning = events.iter().any(|e| {
        matches!(
            e,
            AgentEvent::TextDelta {
                classification: TextClass::ChainOfThought,
                ..
            }
        )
    });
    assert!(reasoning, "the coach agent thinks aloud");
    // Reasoning never leaks into the answer text.
    assert_eq!(streamed_text(&events), success(&events));
    assert_eq!(success(&events), expected(coach, q));
    sim.stop().await;
}

#[actix_rt::test]
async fn tools_run_without_approval_by_default_and_an_approval_request_surfaces_otherwise() {
    let knobs = Knobs {
        tool_events: Some(true),
        tool_approval: Some(true),
        ..fast()
    };
    let sim = sim(knobs).await;
    // Default: skipToolsValidation is sent, so the agent never blocks on a human.
    let c = client(settings(&sim));
    let posted = c
        .create_conversation(&message("Find the doc", WRITER), &[], None)
        .await
        .unwrap();
    let (events, err) = run(&c, &posted).await;
    assert!(err.is_none(), "{err:?}");
    assert!(!events
        .iter()
        .any(|e| matches!(e, AgentEvent::ApprovalRequired { .. })));
    success(&events);
    // Opted out: the approval request reaches the caller as a typed, non-terminal event.
    let mut s = settings(&sim);
    s.skip_tools_validation = false;
    let c = client(s);
    let posted = c
        .create_conversation(&message("Find the doc", WRITER), &[], None)
        .await
        .unwrap();
    let mut stream = c.stream_agent_message(&posted.conversation_id, &posted.agent_message_id);
    let first_approval = tokio::time::timeout(ANSWER_BOUND, async {
        while let Some(ev) = stream.next().await {
            if let AgentEvent::ApprovalRequired { action_id, .. } = ev.unwrap() {
                return action_id;
            }
        }
        panic!("stream ended without an approval request");
    })
    .await
    .unwrap();
    assert!(!first_approval.is_empty());
    sim.stop().await;
}
