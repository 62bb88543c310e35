//! Who makes a request. Every request is made by a `Principal`; sessions, Dust conversations and
//! health files are scoped to it. Authentication (bearer tokens now, OAuth later) lives at the
//! edge; this is only the result.

use std::sync::Arc;

use serde::Serialize;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Unique, stable name (the `[[users]]` name); the ownership key.
    pub name: Arc<str>,
    /// Human name, for Dust's message context.
    pub full_name: Option<Arc<str>>,
    /// E-mail address, for Dust's message context.
    pub email: Option<Arc<str>>,
    /// IANA time zone, for Dust's message context and local-time displays.
    pub timezone: Option<Arc<str>>,
}

impl Principal {
    /// A principal known only by name.
    pub fn named(name: &str) -> Principal {
        Principal {
            name: Arc::from(name),
            full_name: None,
            email: None,
            timezone: None,
        }
    }

    /// Whether `self` owns something owned by `owner` (another principal's session, file or
    /// conversation must behave as unknown, never as forbidden).
    pub fn owns(&self, owner: &str) -> bool {
        &*self.name == owner
    }
}
