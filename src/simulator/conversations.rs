//! Conversation routes (dust-api.md §4-§6, §9): create (with fragments and a first message),
//! follow-up messages, GET (final agent state), cancel, mark read, and the OAuth-only list.
//! Posting a message stores the user message and one agent message per mentioned agent, then
//! starts their generation tasks; `blocking: true` waits for them up to the knob's cap.

use std::{sync::Arc, time::Duration};

use actix_web::{web, HttpRequest, HttpResponse};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    agents::{self, AgentDef},
    body,
    error::ApiError,
    event_log::EventLog,
    files::base_url,
    fragments,
    generation::{self, Job},
    knobs::{Knobs, RouteClass},
    model::{now_ms, AgentMessage, Conversation, Item},
    state::{admit, bump, MessageRef, SharedState, SimState},
    validate::{self, CreateBody, Mention, MessageBody},
};

/// Agents a message triggers, or 404 for an unknown one (the simulator's choice; Dust's exact
/// answer for an unknown mention is not documented).
fn mentioned_agents(m: &MessageBody) -> Result<Vec<&'static AgentDef>, ApiError> {
    m.mentions
        .iter()
        .filter_map(|mention| match mention {
            Mention::Agent { configuration_id } => Some(configuration_id),
            Mention::User { .. } => None,
        })
        .map(|id| match agents::find(id) {
            Some(a) if a.status == "active" => Ok(a),
            Some(_) => Err(ApiError::new(
                403,
                "conversation_with_unavailable_agent",
                "This agent is archived and cannot be mentioned.",
            )),
            None => Err(ApiError::new(
                404,
                "agent_configuration_not_found",
                format!("The agent configuration {id} was not found."),
            )),
        })
        .collect()
}

/// Message-posting limits (dust-api.md §2.3): 403 `rate_limit_error`, no Retry-After.
fn check_message_limits(state: &SimState, knobs: &Knobs) -> Result<(), ApiError> {
    let limit = knobs.message_limit_per_minute();
    if state.knobs.rate_limit_posts.take() || !state.message_window.lock().hit(limit) {
        bump(&state.counters.rate_limit_refusals);
        return Err(ApiError::new(
            403,
            "rate_limit_error",
            format!("You have reached the message rate limit for this API key (max {limit} per minute)."),
        ));
    }
    Ok(())
}

fn user_message_json(state: &SimState, m: &MessageBody, rank: usize) -> Value {
    let c = &m.context;
    let mentions: Vec<Value> = m
        .mentions
        .iter()
        .map(|mention| match mention {
            Mention::Agent { configuration_id } => json!({ "configurationId": configuration_id }),
            Mention::User { user_id, .. } => json!({"type": "user", "userId": user_id}),
        })
        .collect();
    json!({
        "id": state.next_id(),
        "sId": state.new_sid(),
        "type": "user_message",
        "created": now_ms(),
        "visibility": "visible",
        "version": 0,
        "rank": rank,
        "user": null,
        "mentions": mentions,
        "content": m.content,
        "context": {
            "username": c.username,
            "timezone": c.timezone,
            "fullName": c.full_name,
            "email": c.email.as_ref().map(|e| e.to_lowercase()),
            "profilePictureUrl": c.profile_picture_url,
            "origin": validate::stored_origin(c.origin.as_deref()),
            "clientSideMCPServerIds": [],
        },
    })
}

/// Stores a user message and its agent messages, and starts the generations.
fn post_message(
    state: &SimState,
    conv: &Arc<Mutex<Conversation>>,
    m: &MessageBody,
    skip_tools_validation: bool,
) -> Result<(Value, Vec<Arc<AgentMessage>>), ApiError> {
    let knobs = state.knobs.snapshot();
    check_message_limits(state, &knobs)?;
    if !validate::origin_allowed(m.context.origin.as_deref()) {
        return Err(ApiError::invalid(
            "This origin is not allowed. Remove the origin from the context property.",
        ));
    }
    let agent_defs = mentioned_agents(m)?;
    let (user_msg, agent_msgs, events, c_id, attachments) = {
        let mut c = conv.lock();
        let attachments: Vec<String> = c
            .content
            .iter()
            .rev()
            .map_while(|i| match i {
                Item::Fragment(f) => f["title"].as_str().map(str::to_string),
                _ => None,
            })
            .collect();
        let user_msg = user_message_json(state, m, c.content.len());
        c.content.push(Item::User(user_msg.clone()));
        let parent = user_msg["sId"].as_str().unwrap_or_default().to_string();
        let mut agent_msgs = Vec::new();
        for agent in agent_defs {
            let ids = (state.next_id(), state.next_id(), state.new_sid());
            let a = Arc::new(AgentMessage::new(
                ids,
                c.content.len(),
                parent.clone(),
                c.s_id.clone(),
                agent,
                skip_tools_validation,
            ));
            c.content.push(Item::Agent(a.clone()));
            agent_msgs.push(a);
        }
        c.updated = now_ms();
        (
            user_msg,
            agent_msgs,
            c.events.clone(),
            c.s_id.clone(),
            attachments,
        )
    };
    bump(&state.counters.user_messages_posted);
    let user_sid = user_msg["sId"].as_str().unwrap_or_default().to_string();
    state
        .messages
        .insert(user_sid.clone(), MessageRef::User(c_id));
    events.push(json!({
        "type": "user_message_new", "created": now_ms(),
        "messageId": user_sid, "message": user_msg,
    }));
    for a in &agent_msgs {
        bump(&state.counters.agent_messages_created);
        state
            .messages
            .insert(a.s_id.clone(), MessageRef::Agent(a.clone()));
        events.push(json!({
            "type": "agent_message_new", "created": now_ms(),
            "configurationId": a.agent.s_id, "messageId": a.s_id, "message": a.to_json(),
        }));
        generation::spawn(Job {
            msg: a.clone(),
            conversation: conv.clone(),
            conversation_events: events.clone(),
            question: m.content.clone(),
            attachments: attachments.clone(),
            knobs: knobs.clone(),
        });
    }
    Ok((user_msg, agent_msgs))
}

/// Waits until every message is terminal, or the blocking cap passes (dust-api.md §6).
async fn wait_for(msgs: &[Arc<AgentMessage>], cap_ms: u64) {
    let all = async {
        for a in msgs {
            let mut rx = a.log.subscribe();
            while !a.is_terminal() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(cap_ms), all).await;
}

/// `POST .../assistant/conversations` → `{conversation, message?, contentFragment?}`.
async fn create(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let w_id = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::CreateConversation).await?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let b: CreateBody = validate::parse(&raw)?;
    validate::check_create(&b)?;
    let base = base_url(&req);
    let frags: Vec<Value> = b
        .content_fragment
        .iter()
        .chain(b.content_fragments.iter().flatten())
        .map(|f| fragments::build(&state, f, &base, &w_id))
        .collect::<Result<_, _>>()?;

    let s_id = state.new_sid();
    let visibility = match b.visibility.as_deref() {
        None | Some("workspace") => "unlisted",
        Some(v) => v,
    };
    let mut conv = Conversation {
        id: state.next_id(),
        s_id: s_id.clone(),
        created: now_ms(),
        updated: now_ms(),
        title: b.title.clone(),
        visibility: visibility.to_string(),
        unread: false,
        content: Vec::new(),
        events: Arc::new(EventLog::default()),
    };
    let last_fragment = frags
        .into_iter()
        .map(|f| fragments::store(&mut conv.content, f))
        .last();
    let conv = Arc::new(Mutex::new(conv));
    state.conversations.insert(s_id, conv.clone());
    bump(&state.counters.conversations_created);
    if last_fragment.is_some() {
        bump(&state.counters.content_fragments);
    }

    let mut out = json!({});
    if let Some(m) = &b.message {
        let skip = b.skip_tools_validation.unwrap_or(false);
        let (user_msg, agent_msgs) = post_message(&state, &conv, m, skip)?;
        if b.blocking.unwrap_or(false) {
            wait_for(&agent_msgs, state.knobs.snapshot().blocking_timeout_ms()).await;
        }
        out["message"] = user_msg;
    }
    out["conversation"] = conv.lock().to_json(&base, &w_id);
    if let Some(f) = last_fragment {
        out["contentFragment"] = f;
    }
    Ok(HttpResponse::Ok().json(out))
}

/// `POST .../conversations/{cId}/messages` → `{message, agentMessages}`.
async fn follow_up(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::PostMessage).await?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let m: MessageBody = validate::parse(&raw)?;
    validate::check_follow_up(&m)?;
    let conv = state.conversation(&c_id)?;
    let (user_msg, agent_msgs) =
        post_message(&state, &conv, &m, m.skip_tools_validation.unwrap_or(false))?;
    let agent_json: Vec<Value> = if m.blocking.unwrap_or(false) {
        wait_for(&agent_msgs, state.knobs.snapshot().blocking_timeout_ms()).await;
        // Blocking returns only the messages that succeeded (dust-api.md §6).
        agent_msgs
            .iter()
            .map(|a| a.to_json())
            .filter(|j| j["status"] == "succeeded")
            .collect()
    } else {
        agent_msgs.iter().map(|a| a.to_json()).collect()
    };
    Ok(HttpResponse::Ok().json(json!({ "message": user_msg, "agentMessages": agent_json })))
}

/// `GET .../conversations/{cId}` → `{conversation}` (plus `hasMore`/`lastValue` with `limit`).
async fn get(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::GetConversation).await?;
    let conv = state.conversation(&c_id)?;
    let mut out = json!({ "conversation": conv.lock().to_json(&base_url(&req), &w_id) });
    if req.query_string().contains("limit=") {
        // The simulator always returns every message, so there is never more to page.
        out["hasMore"] = json!(false);
        out["lastValue"] = Value::Null;
    }
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelBody {
    message_ids: Vec<String>,
}

/// `POST .../conversations/{cId}/cancel` with `{messageIds}` → `{success: true}`.
async fn cancel(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Cancel).await?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let b: CancelBody = validate::parse(&raw)?;
    state.conversation(&c_id)?;
    bump(&state.counters.cancels);
    for id in &b.message_ids {
        if let Some(MessageRef::Agent(a)) = state.messages.get(id).map(|r| r.value().clone()) {
            if a.conversation_id == c_id && !a.is_terminal() {
                a.cancel.notify_one();
            }
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "success": true })))
}

#[derive(Deserialize)]
struct PatchBody {
    read: bool,
}

/// `PATCH .../conversations/{cId}` with `{read}` → `{success: true}`.
async fn patch(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (w_id, c_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::GetConversation).await?;
    let raw = body::read(payload, body::MAX_JSON_BODY_BYTES).await?;
    let b: PatchBody = validate::parse(&raw)?;
    state.conversation(&c_id)?.lock().unread = !b.read;
    Ok(HttpResponse::Ok().json(json!({ "success": true })))
}

/// `GET .../assistant/conversations`: only for OAuth users (dust-api.md §4).
async fn list(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admit(&state, &req, &path, RouteClass::GetConversation).await?;
    Err(ApiError::new(
        401,
        "user_not_found",
        "Listing conversations requires a user authenticated with OAuth.",
    ))
}

/// Registers the conversation routes (relative to `/api/v1/w/{wId}`).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    let nm = || web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_supported()) });
    cfg.service(
        web::resource("/assistant/conversations")
            .route(web::post().to(create))
            .route(web::get().to(list))
            .default_service(nm()),
    )
    .service(
        web::resource("/assistant/conversations/{cId}")
            .route(web::get().to(get))
            .route(web::patch().to(patch))
            .default_service(nm()),
    )
    .service(
        web::resource("/assistant/conversations/{cId}/messages")
            .route(web::post().to(follow_up))
            .default_service(nm()),
    )
    .service(
        web::resource("/assistant/conversations/{cId}/cancel")
            .route(web::post().to(cancel))
            .default_service(nm()),
    );
}
