//! The Dust client's requests (`actors::dust`) against the Dust simulator on 127.0.0.1:0: rate
//! limits as 429 and 403, the circuit breaker, no duplicate message POSTs under faults and lost
//! responses, follow-ups, files and fragments, the agent cache, a wrong key.

#[path = "common/dust_client.rs"]
mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actors::dust::{BreakerState, ConversationItem, DustError, FragmentInput, Secret};
use bytes::Bytes;
use dust_mcp::simulator::{Knobs, RouteClass};
use support::*;

#[actix_rt::test]
async fn a_429_is_retried_after_its_retry_after() {
    let knobs = Knobs {
        throttle_next: Some(1),
        retry_after_secs: Some(1),
        throttle_route: Some(RouteClass::Agents),
        ..fast()
    };
    let sim = sim(knobs).await;
    let c = client(settings(&sim));
    let agents = c.list_agents().await.unwrap();
    assert!(agents.value.iter().any(|a| a.s_id == WRITER));
    assert_eq!(sim.stats().rate_limit_refusals, 1);
    let m = c.shared().status().metrics;
    assert_eq!((m.rate_limited, m.retries), (1, 1));
    sim.stop().await;
}

#[actix_rt::test]
async fn a_retry_after_beyond_the_bound_fails_fast_saying_when_to_retry() {
    let knobs = Knobs {
        throttle_next: Some(1),
        retry_after_secs: Some(120),
        ..fast()
    };
    let sim = sim(knobs).await;
    let c = client(settings(&sim));
    let err = c.get_agent(WRITER).await.unwrap_err();
    assert!(matches!(err, DustError::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("retry in 120 s"), "{err}");
    sim.stop().await;
}

#[actix_rt::test]
async fn a_403_rate_limit_on_a_follow_up_is_retried_and_posts_once() {
    let sim = sim(fast()).await;
    let c = client(settings(&sim));
    let first = c
        .create_conversation(&message("One", WRITER), &[], None)
        .await
        .unwrap();
    sim.set_knobs(Knobs {
        rate_limit_next_posts: Some(1),
        ..fast()
    });
    let second = c
        .post_message(&first.conversation_id, &message("Two", WRITER))
        .await
        .unwrap();
    assert_ne!(first.agent_message_id, second.agent_message_id);
    let stats = sim.stats();
    assert_eq!(stats.rate_limit_refusals, 1);
    assert_eq!(
        stats.user_messages_by_conversation[&first.conversation_id],
        2
    );
    sim.stop().await;
}

#[actix_rt::test]
async fn a_403_rate_limit_on_create_is_reported_as_rate_limiting() {
    let sim = sim(Knobs {
        rate_limit_next_posts: Some(1),
        ..fast()
    })
    .await;
    let c = client(settings(&sim));
    let err = c
        .create_conversation(&message("Hi", WRITER), &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), Some("rate_limit_error"));
    assert!(
        err.to_string()
            .starts_with("Dust rate-limited this workspace"),
        "{err}"
    );
    assert_eq!(sim.stats().user_messages_posted, 0);
    sim.stop().await;
}

#[actix_rt::test]
async fn the_breaker_opens_on_a_5xx_burst_and_closes_after_the_cooldown() {
    let knobs = Knobs {
        fail_next: Some(3),
        fail_status: Some(503),
        fail_route: Some(RouteClass::Agents),
        ..fast()
    };
    let sim = sim(knobs).await;
    let mut s = settings(&sim);
    s.max_retries = 0;
    s.breaker_failure_threshold = 3;
    s.breaker_cooldown = Duration::from_millis(300);
    let c = client(s);
    for _ in 0..3 {
        assert!(matches!(
            c.list_agents().await,
            Err(DustError::Server { status: 503, .. })
        ));
    }
    let err = c.list_agents().await.unwrap_err();
    assert!(matches!(err, DustError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(c.shared().status().breaker.state, BreakerState::Open);
    assert_eq!(
        c.shared().status().metrics.requests,
        3,
        "an open breaker sends nothing"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        c.list_agents().await.is_ok(),
        "the probe after the cool-down succeeds"
    );
    let snap = c.shared().status().breaker;
    assert_eq!((snap.state, snap.times_opened), (BreakerState::Closed, 1));
    assert_eq!(sim.stats().injected_5xx, 3);
    sim.stop().await;
}

#[actix_rt::test]
async fn a_follow_up_refused_with_5xx_is_checked_then_posted_exactly_once() {
    let sim = sim(fast()).await;
    let c = client(settings(&sim));
    let first = c
        .create_conversation(&message("One", WRITER), &[], None)
        .await
        .unwrap();
    sim.set_knobs(Knobs {
        fail_next: Some(1),
        fail_status: Some(502),
        fail_route: Some(RouteClass::PostMessage),
        ..fast()
    });
    let second = c
        .post_message(&first.conversation_id, &message("Two", WRITER))
        .await
        .unwrap();
    let stats = sim.stats();
    assert_eq!(stats.injected_5xx, 1);
    assert_eq!(
        stats.user_messages_by_conversation[&first.conversation_id],
        2
    );
    let (events, err) = run(&c, &second).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(success(&events), expected(WRITER, "Two"));
    sim.stop().await;
}

#[actix_rt::test]
async fn a_follow_up_that_timed_out_is_never_posted_twice() {
    let sim = sim(fast()).await;
    let mut s = settings(&sim);
    s.response_timeout = Duration::from_millis(300);
    s.post_check_delay = Duration::from_millis(3000);
    let c = client(s);
    let first = c
        .create_conversation(&message("One", WRITER), &[], None)
        .await
        .unwrap();
    // Slow enough that our POST times out while the simulator still stores the message.
    sim.set_knobs(Knobs {
        response_delay_ms: Some(1500),
        ..fast()
    });
    let cid = first.conversation_id.clone();
    let post = {
        let c = c.clone();
        actix_rt::spawn(async move { c.post_message(&cid, &message("Two", WRITER)).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    sim.set_knobs(fast()); // the landed-check GET now answers promptly
    let result = post.await.unwrap();
    let second = result.expect("found the landed message or posted it once");
    assert_ne!(second.agent_message_id, first.agent_message_id);
    assert_eq!(
        sim.stats().user_messages_by_conversation[&first.conversation_id],
        2
    );
    sim.stop().await;
}

#[actix_rt::test]
async fn a_conversation_continues_with_the_right_agent_message() {
    let sim = sim(fast()).await;
    let c = client(settings(&sim));
    let first = c
        .create_conversation(&message("First question", WRITER), &[], Some("t"))
        .await
        .unwrap();
    let (events, _) = run(&c, &first).await;
    assert_eq!(success(&events), expected(WRITER, "First question"));
    let second = c
        .post_message(&first.conversation_id, &message("Second question", WRITER))
        .await
        .unwrap();
    assert_eq!(second.conversation_id, first.conversation_id);
    assert_ne!(second.agent_message_id, first.agent_message_id);
    let (events, _) = run(&c, &second).await;
    assert_eq!(
        success(&events),
        expected(WRITER, "Second question"),
        "not the old answer"
    );
    let conversation = c.get_conversation(&first.conversation_id).await.unwrap();
    let answer = conversation
        .agent_message_for(&second.user_message_id)
        .unwrap();
    assert_eq!(answer.s_id, second.agent_message_id);
    sim.stop().await;
}

#[actix_rt::test]
async fn upload_then_attach_by_file_id_and_inline() {
    let sim = sim(fast()).await;
    let c = client(settings(&sim));
    let csv = Bytes::from_static(b"date,glucose\n2026-01-01,92\n2026-01-02,97\n");
    let file = c
        .upload_file("glucose.csv", "text/csv", csv, None)
        .await
        .unwrap();
    assert_eq!(file.status, "ready");
    let fragments = [
        FragmentInput::File {
            title: "glucose.csv".into(),
            file_id: file.file_id().into(),
        },
        FragmentInput::Inline {
            title: "notes.txt".into(),
            content: "fasting".into(),
            content_type: "text/plain".into(),
        },
    ];
    let posted = c
        .create_conversation(&message("Read these", WRITER), &fragments, None)
        .await
        .unwrap();
    let conversation = c.get_conversation(&posted.conversation_id).await.unwrap();
    let titles: Vec<&str> = conversation
        .latest_items()
        .filter_map(|i| match i {
            ConversationItem::Fragment(f) => Some(f.title.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(titles, ["glucose.csv", "notes.txt"]);
    let (events, _) = run(&c, &posted).await;
    let answer = success(&events);
    assert!(
        answer.contains("glucose.csv") && answer.contains("notes.txt"),
        "{answer}"
    );
    let stats = sim.stats();
    assert_eq!((stats.upload_urls, stats.uploads), (1, 1));
    // Above 512 KiB inline: refused before anything is sent.
    let big = FragmentInput::Inline {
        title: "big".into(),
        content: "x".repeat(512 * 1024 + 1),
        content_type: "text/plain".into(),
    };
    let err = c
        .add_content_fragment(&posted.conversation_id, &big)
        .await
        .unwrap_err();
    assert!(matches!(err, DustError::ContentTooLarge { .. }), "{err:?}");
    sim.stop().await;
}

#[actix_rt::test]
async fn agents_list_search_get_and_stale_cache_when_dust_fails() {
    let sim = sim(fast()).await;
    let mut s = settings(&sim);
    s.agent_cache_ttl = Duration::ZERO;
    s.max_retries = 0;
    let c = client(s);
    let list = c.list_agents().await.unwrap();
    assert!(!list.stale);
    assert!(list.value.iter().any(|a| a.s_id == WRITER));
    assert!(
        list.value.iter().all(|a| a.s_id != "l3gacyAg01"),
        "archived agents are hidden"
    );
    let found = c.search_agents("writ").await.unwrap();
    assert!(
        found.value.iter().any(|a| a.s_id == WRITER),
        "{:?}",
        found.value
    );
    assert_eq!(c.get_agent("dust").await.unwrap().value.s_id, "dust");
    sim.set_knobs(Knobs {
        fail_next: Some(2),
        fail_route: Some(RouteClass::Agents),
        ..fast()
    });
    let stale = c.list_agents().await.unwrap();
    assert!(stale.stale, "served from cache while Dust fails");
    assert_eq!(stale.value, list.value);
    assert!(c.get_agent("dust").await.unwrap().stale);
    assert_eq!(c.shared().status().metrics.stale_agent_reads, 2);
    sim.stop().await;
}

#[actix_rt::test]
async fn a_wrong_key_names_the_fix_and_never_shows_the_key() {
    let sim = sim(fast()).await;
    let mut s = settings(&sim);
    s.api_key = Secret::new("sk-wrongwrongwrong42");
    let c = client(s);
    let err = c.list_agents().await.unwrap_err();
    assert!(
        matches!(err, DustError::Auth { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("check DUST_API_KEY"), "{text}");
    assert!(!text.contains("wrongwrongwrong") && !format!("{err:?}").contains("wrongwrongwrong"));
    sim.stop().await;
}

/// A pass-through proxy in front of the simulator that, for the next `lose` follow-up POSTs,
/// lets the simulator store the message and then answers 502 itself, as a load balancer that
/// lost the upstream response would.
struct LossyProxy {
    upstream: String,
    lose: AtomicU32,
}

async fn lossy(req: HttpRequest, body: web::Bytes, proxy: web::Data<LossyProxy>) -> HttpResponse {
    let url = format!("{}{}", proxy.upstream, req.uri());
    let mut fwd = awc::Client::builder()
        .disable_redirects()
        .finish()
        .request(req.method().clone(), url);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = req.headers().get(name) {
            fwd = fwd.insert_header((name, v.clone()));
        }
    }
    let Ok(mut resp) = fwd.send_body(body).await else {
        return HttpResponse::BadGateway().finish();
    };
    let bytes = resp.body().limit(16 << 20).await.unwrap_or_default();
    let is_follow_up = req.method() == "POST" && req.path().ends_with("/messages");
    if is_follow_up
        && proxy
            .lose
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return HttpResponse::BadGateway().body("upstream connection reset");
    }
    let mut out = HttpResponse::build(resp.status());
    for name in ["content-type", "location", "retry-after"] {
        if let Some(v) = resp.headers().get(name) {
            out.insert_header((name, v.clone()));
        }
    }
    out.body(bytes)
}

#[actix_rt::test]
async fn a_follow_up_whose_response_was_lost_is_found_and_not_posted_again() {
    let sim = sim(fast()).await;
    let proxy = web::Data::new(LossyProxy {
        upstream: sim.url(),
        lose: AtomicU32::new(1),
    });
    let for_app = proxy.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(for_app.clone())
            .default_service(web::to(lossy))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    let mut s = settings(&sim);
    s.base_url = format!("http://{addr}");
    s.post_check_delay = Duration::from_millis(10);
    let c = client(s);
    let first = c
        .create_conversation(&message("One", WRITER), &[], None)
        .await
        .unwrap();
    let second = c
        .post_message(&first.conversation_id, &message("Two", WRITER))
        .await
        .unwrap();
    assert_eq!(proxy.lose.load(Ordering::SeqCst), 0, "the 502 was served");
    assert_eq!(
        sim.stats().user_messages_by_conversation[&first.conversation_id],
        2,
        "posted once"
    );
    assert_eq!(c.shared().status().metrics.duplicate_posts_avoided, 1);
    let conversation = c.get_conversation(&first.conversation_id).await.unwrap();
    let answer = conversation
        .agent_message_for(&second.user_message_id)
        .unwrap();
    assert_eq!(answer.s_id, second.agent_message_id);
    handle.stop(true).await;
    sim.stop().await;
}
