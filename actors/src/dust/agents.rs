//! Agent calls (dust-api.md §3): list (`view=all`, the only list view an API key may use),
//! search by name, get one; served from the agent cache when fresh, and from stale cache
//! (marked so) when Dust is failing.
use std::future::Future;

use super::cache::Cached;
use super::client::{check_id, encode_query, DustClient};
use super::error::DustError;
use super::types::{AgentConfiguration, AgentGetResponse, AgentListResponse, AgentStatus};

impl DustClient {
    /// Active agents of the workspace.
    pub async fn list_agents(&self) -> Result<Cached<Vec<AgentConfiguration>>, DustError> {
        let cache = &self.shared.agents;
        if let Some(hit) = cache.fresh_list() {
            return Ok(hit);
        }
        let fetched = async {
            let resp: AgentListResponse = self
                .get_json("assistant/agent_configurations?view=all", "list agents")
                .await?;
            let active: Vec<_> = resp
                .agent_configurations
                .into_iter()
                .filter(|a| a.status == AgentStatus::Active)
                .collect();
            cache.put_list(&active);
            Ok(active)
        };
        self.or_stale(fetched, || cache.stale_list()).await
    }

    /// Active agents whose name matches `query` (Dust's search; the cached list when Dust fails).
    pub async fn search_agents(
        &self,
        query: &str,
    ) -> Result<Cached<Vec<AgentConfiguration>>, DustError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(DustError::InvalidInput {
                detail: "agent search needs a non-empty name".into(),
            });
        }
        let path = format!(
            "assistant/agent_configurations/search?q={}",
            encode_query(query)
        );
        let fetched = async {
            let resp: AgentListResponse = self.get_json(&path, "search agents").await?;
            Ok(resp
                .agent_configurations
                .into_iter()
                .filter(|a| a.status == AgentStatus::Active)
                .collect())
        };
        let needle = query.to_lowercase();
        self.or_stale(fetched, || {
            self.shared.agents.stale_list().map(|c| Cached {
                value: c
                    .value
                    .into_iter()
                    .filter(|a| a.name.to_lowercase().contains(&needle))
                    .collect(),
                ..c
            })
        })
        .await
    }

    /// One agent by sId.
    pub async fn get_agent(&self, s_id: &str) -> Result<Cached<AgentConfiguration>, DustError> {
        check_id("agent", s_id)?;
        let cache = &self.shared.agents;
        if let Some(hit) = cache.fresh_agent(s_id) {
            return Ok(hit);
        }
        let path = format!("assistant/agent_configurations/{s_id}?variant=light");
        let fetched = async {
            let resp: AgentGetResponse = self.get_json(&path, "get agent").await?;
            cache.put_agent(&resp.agent_configuration);
            Ok(resp.agent_configuration)
        };
        self.or_stale(fetched, || cache.stale_agent(s_id)).await
    }

    /// Returns the fetched value, or the stale one when Dust is failing (not when it refused).
    async fn or_stale<T>(
        &self,
        fetched: impl Future<Output = Result<T, DustError>>,
        stale: impl FnOnce() -> Option<Cached<T>>,
    ) -> Result<Cached<T>, DustError> {
        match fetched.await {
            Ok(v) => Ok(Cached::fresh(v)),
            Err(e) if e.is_transient() || matches!(e, DustError::CircuitOpen { .. }) => {
                match stale() {
                    Some(old) => {
                        tracing::warn!(error = %e, age_ms = old.age_ms, "dust unavailable; serving stale agents");
                        self.note_stale_read();
                        Ok(old)
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}
