//! `OAuthHandle`: the OAuth tables behind the same store threads as the health store
//! ([`Workers`]), so the HTTP edge never touches SQLite on an async worker.

use crate::store::worker::Workers;

use super::OAuthStore;

/// Async access to the OAuth store threads (`OAuthHandle::start(threads, OAuthStore::factory(..))`).
pub type OAuthHandle = Workers<OAuthStore>;
