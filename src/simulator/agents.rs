//! The demo agent catalogue and the agent routes: list (with `view`), search by name, get one
//! (dust-api.md §3). Owns the static `AgentDef`s and their LightAgentConfiguration JSON; the
//! answers they give live in `answers.rs`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    error::ApiError,
    knobs::RouteClass,
    state::{admit, SharedState},
};

/// How an agent behaves when it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    /// The global `dust` agent: looks things up (one tool call) and answers.
    Dust,
    /// A health coach: reasons first (chain of thought), then answers.
    HealthCoach,
    /// A writer: plain prose.
    Writer,
    /// Slow to start and slow to type.
    Slow,
    /// Always ends with `agent_error`.
    Broken,
    /// Archived: listed with `status: "archived"`, answers like the writer.
    Legacy,
}

/// One demo agent.
#[derive(Debug)]
pub struct AgentDef {
    /// Numeric id.
    pub id: u64,
    /// sId used in mentions.
    pub s_id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Description.
    pub description: &'static str,
    /// `global` or `visible`/`published`.
    pub scope: &'static str,
    /// `active` or `archived`.
    pub status: &'static str,
    /// Model id shown in `model`.
    pub model: (&'static str, &'static str),
    /// Behaviour.
    pub persona: Persona,
}

/// The demo agents, in list order.
pub static AGENTS: &[AgentDef] = &[
    AgentDef {
        id: 1,
        s_id: "dust",
        name: "dust",
        description: "An assistant with context on your company data and the web.",
        scope: "global",
        status: "active",
        model: ("anthropic", "claude-sonnet-4-5"),
        persona: Persona::Dust,
    },
    AgentDef {
        id: 4101,
        s_id: "hC0ach7Lq2",
        name: "health-coach",
        description: "Reads your health numbers and suggests small, safe next steps.",
        scope: "visible",
        status: "active",
        model: ("anthropic", "claude-sonnet-4-5"),
        persona: Persona::HealthCoach,
    },
    AgentDef {
        id: 4102,
        s_id: "wR1ter9Xk4",
        name: "writer",
        description: "Drafts and polishes short texts: emails, summaries, announcements.",
        scope: "published",
        status: "active",
        model: ("openai", "gpt-5"),
        persona: Persona::Writer,
    },
    AgentDef {
        id: 4103,
        s_id: "sL0wAg3nt5",
        name: "slow-thinker",
        description: "Takes its time: a late first token and slow typing (for tests).",
        scope: "visible",
        status: "active",
        model: ("mistral", "mistral-large-latest"),
        persona: Persona::Slow,
    },
    AgentDef {
        id: 4104,
        s_id: "bR0k3nAg7t",
        name: "broken-bot",
        description: "Starts answering, then fails with an agent_error (for tests).",
        scope: "visible",
        status: "active",
        model: ("openai", "gpt-4o-mini"),
        persona: Persona::Broken,
    },
    AgentDef {
        id: 4005,
        s_id: "l3gacyAg01",
        name: "legacy-helper",
        description: "An archived agent, kept to test status filtering.",
        scope: "visible",
        status: "archived",
        model: ("openai", "gpt-4o"),
        persona: Persona::Legacy,
    },
];

/// The agent with sId `s_id`.
pub fn find(s_id: &str) -> Option<&'static AgentDef> {
    AGENTS.iter().find(|a| a.s_id == s_id)
}

impl AgentDef {
    /// The LightAgentConfiguration JSON (dust-api.md §3.1).
    pub fn light_json(&self) -> Value {
        let global = self.scope == "global";
        json!({
            "id": self.id,
            "sId": self.s_id,
            "version": if global { 0 } else { 3 },
            "versionCreatedAt": if global { Value::Null } else { json!("2026-05-02T09:14:00.000Z") },
            "versionAuthorId": if global { Value::Null } else { json!(77) },
            "name": self.name,
            "description": self.description,
            "pictureUrl": format!("https://dust.tt/static/systemavatar/{}.png", self.name),
            "instructions": Value::Null,
            "model": {"providerId": self.model.0, "modelId": self.model.1, "temperature": 0.7},
            "status": self.status,
            "scope": self.scope,
            "userFavorite": false,
            "maxStepsPerRun": 8,
            "templateId": Value::Null,
            "tags": [],
            "visualizationEnabled": false,
            "groupIds": [],
        })
    }
}

#[derive(Deserialize)]
struct ListQuery {
    view: Option<String>,
    #[serde(rename = "withAuthors")]
    with_authors: Option<String>,
}

/// `GET .../assistant/agent_configurations`.
async fn list(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admit(&state, &req, &path, RouteClass::Agents).await?;
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("Invalid query parameters: {e}")))?;
    let view = query.view.as_deref().unwrap_or("all");
    let keep: fn(&AgentDef) -> bool = match view {
        "all" => |a| a.scope != "private",
        "workspace" | "published" => |a| a.scope == "published" || a.scope == "visible",
        "global" => |a| a.scope == "global",
        "list" | "favorites" => {
            return Err(ApiError::new(
                401,
                "invalid_request_error",
                "The user must be authenticated with oAuth to retrieve list agents.",
            ))
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid query parameters: unknown view {other:?}"
            )))
        }
    };
    let with_authors = query.with_authors.as_deref() == Some("true");
    let agents: Vec<Value> = AGENTS
        .iter()
        .filter(|a| keep(a))
        .map(|a| {
            let mut v = a.light_json();
            if with_authors {
                v["lastAuthors"] = json!(["Demo Admin"]);
            }
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "agentConfigurations": agents })))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

/// `GET .../assistant/agent_configurations/search?q=`.
async fn search(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admit(&state, &req, &path, RouteClass::Agents).await?;
    let query = web::Query::<SearchQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("Invalid query parameters: {e}")))?;
    let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) else {
        return Err(ApiError::invalid("Invalid query parameters: q is required"));
    };
    let needle = q.to_lowercase();
    let agents: Vec<Value> = AGENTS
        .iter()
        .filter(|a| a.scope != "private" && a.name.to_lowercase().contains(&needle))
        .map(|a| {
            let mut v = a.light_json();
            v["requestedGroupIds"] = json!([]);
            v["requestedSpaceIds"] = json!([]);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "agentConfigurations": agents })))
}

/// `GET .../assistant/agent_configurations/{sId}`.
async fn get_one(
    state: SharedState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (w_id, s_id) = path.into_inner();
    admit(&state, &req, &w_id, RouteClass::Agents).await?;
    let agent = find(&s_id).ok_or_else(|| {
        ApiError::new(
            404,
            "agent_configuration_not_found",
            "The agent configuration you're trying to access was not found.",
        )
    })?;
    Ok(HttpResponse::Ok().json(json!({ "agentConfiguration": agent.light_json() })))
}

/// Registers the agent routes (paths relative to `/api/v1/w/{wId}`).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    let nm = || web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_supported()) });
    cfg.service(
        web::resource("/assistant/agent_configurations")
            .route(web::get().to(list))
            .default_service(nm()),
    )
    .service(
        web::resource("/assistant/agent_configurations/search")
            .route(web::get().to(search))
            .default_service(nm()),
    )
    .service(
        web::resource("/assistant/agent_configurations/{sId}")
            .route(web::get().to(get_one))
            .default_service(nm()),
    );
}
