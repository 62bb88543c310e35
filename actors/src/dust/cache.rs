//! Short-lived cache of agent configurations for one workspace. Fresh entries (younger than the
//! TTL) spare a Dust call; older ones are kept so that, when Dust is down, callers can still be
//! served, marked stale with their age. Policy (when to use which) lives in `agents.rs`.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::types::AgentConfiguration;

/// A value with where it came from: `stale` means Dust could not be asked and this is old data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cached<T> {
    /// The data.
    pub value: T,
    /// True when served from cache past its TTL because Dust failed.
    pub stale: bool,
    /// Age of the data in milliseconds (0 when just fetched).
    pub age_ms: u64,
}

impl<T> Cached<T> {
    /// Freshly fetched data.
    pub fn fresh(value: T) -> Self {
        Self {
            value,
            stale: false,
            age_ms: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry<T> {
    value: T,
    at: Instant,
}

/// Agent list and per-agent lookups with a TTL.
#[derive(Debug)]
pub struct AgentCache {
    ttl: Duration,
    list: Mutex<Option<Entry<Vec<AgentConfiguration>>>>,
    by_id: Mutex<HashMap<String, Entry<AgentConfiguration>>>,
}

impl AgentCache {
    /// An empty cache; `ttl == 0` means never fresh (always ask Dust, still serve stale).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            list: Mutex::new(None),
            by_id: Mutex::new(HashMap::new()),
        }
    }

    /// The list when younger than the TTL.
    pub fn fresh_list(&self) -> Option<Cached<Vec<AgentConfiguration>>> {
        self.list_if(|age| age < self.ttl)
    }

    /// The list whatever its age, marked stale.
    pub fn stale_list(&self) -> Option<Cached<Vec<AgentConfiguration>>> {
        self.list_if(|_| true).map(|c| Cached { stale: true, ..c })
    }

    /// Stores a fetched list (and indexes its agents by sId).
    pub fn put_list(&self, agents: &[AgentConfiguration]) {
        let now = Instant::now();
        *lock(&self.list) = Some(Entry {
            value: agents.to_vec(),
            at: now,
        });
        let mut by_id = lock(&self.by_id);
        for a in agents {
            by_id.insert(
                a.s_id.clone(),
                Entry {
                    value: a.clone(),
                    at: now,
                },
            );
        }
    }

    /// One agent when younger than the TTL.
    pub fn fresh_agent(&self, s_id: &str) -> Option<Cached<AgentConfiguration>> {
        self.agent_if(s_id, |age| age < self.ttl)
    }

    /// One agent whatever its age, marked stale.
    pub fn stale_agent(&self, s_id: &str) -> Option<Cached<AgentConfiguration>> {
        self.agent_if(s_id, |_| true)
            .map(|c| Cached { stale: true, ..c })
    }

    /// Stores one fetched agent.
    pub fn put_agent(&self, agent: &AgentConfiguration) {
        lock(&self.by_id).insert(
            agent.s_id.clone(),
            Entry {
                value: agent.clone(),
                at: Instant::now(),
            },
        );
    }

    fn list_if(&self, keep: impl Fn(Duration) -> bool) -> Option<Cached<Vec<AgentConfiguration>>> {
        let guard = lock(&self.list);
        let entry = guard.as_ref()?;
        let age = entry.at.elapsed();
        keep(age).then(|| Cached {
            value: entry.value.clone(),
            stale: false,
            age_ms: age.as_millis() as u64,
        })
    }

    fn agent_if(
        &self,
        s_id: &str,
        keep: impl Fn(Duration) -> bool,
    ) -> Option<Cached<AgentConfiguration>> {
        let guard = lock(&self.by_id);
        let entry = guard.get(s_id)?;
        let age = entry.at.elapsed();
        keep(age).then(|| Cached {
            value: entry.value.clone(),
            stale: false,
            age_ms: age.as_millis() as u64,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned cache is still a valid cache.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str) -> AgentConfiguration {
        AgentConfiguration {
            s_id: id.into(),
            name: id.into(),
            ..AgentConfiguration::default()
        }
    }

    #[actix_rt::test]
    async fn fresh_within_ttl_then_only_stale() {
        tokio::time::pause();
        let cache = AgentCache::new(Duration::from_secs(300));
        assert!(cache.fresh_list().is_none() && cache.stale_list().is_none());
        cache.put_list(&[agent("a"), agent("b")]);
        tokio::time::sleep(Duration::from_secs(299)).await;
        let fresh = cache.fresh_list().unwrap();
        assert!(!fresh.stale);
        assert_eq!(fresh.value.len(), 2);
        assert!(cache.fresh_agent("b").is_some());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(cache.fresh_list().is_none());
        assert!(cache.fresh_agent("b").is_none());
        let stale = cache.stale_list().unwrap();
        assert!(stale.stale);
        assert!(
            (301_000..302_000).contains(&stale.age_ms),
            "{}",
            stale.age_ms
        );
        assert!(cache.stale_agent("a").unwrap().stale);
        assert!(cache.stale_agent("zz").is_none());
    }
}
