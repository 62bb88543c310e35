//! `OAuthStore`: the authorization server's state in the shared SQLite file — registered clients,
//! authorization codes, token families (one per grant) and their access and refresh tokens.
//! Secrets are stored only as SHA-256 hex; times are Unix seconds. Every call blocks: async code
//! goes through [`OAuthHandle`], a `SyncArbiter` of threads that each own a connection.

mod worker;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

pub use worker::OAuthHandle;

use super::{sql, SqliteStore, StoreError};

/// Migration 3: when a refresh token was rotated away (`used_at`, Unix seconds), so a second
/// refresh with the same token within a short grace is told apart from a leaked token's reuse.
pub(crate) const MIGRATION_REFRESH_USED_AT: &str =
    "ALTER TABLE oauth_tokens ADD COLUMN used_at INTEGER;";

/// Schema of the OAuth tables; appended to the shared migration list in `sqlite.rs`.
pub(crate) const MIGRATION_OAUTH: &str = r#"
CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    secret_sha256 TEXT,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    auth_method   TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE oauth_families (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_families_by_user ON oauth_families (user_name);
CREATE TABLE oauth_codes (
    code_sha256    TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope          TEXT NOT NULL,
    resource       TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    family_id      TEXT
);
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);
CREATE TABLE oauth_tokens (
    token_sha256 TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    family_id    TEXT NOT NULL REFERENCES oauth_families (id) ON DELETE CASCADE,
    expires_at   INTEGER NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_tokens_by_family ON oauth_tokens (family_id);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);
"#;

/// A client registered through RFC 7591 dynamic registration.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    /// The issued `client_id`.
    pub client_id: String,
    /// SHA-256 hex of the client secret; `None` for public clients.
    pub secret_sha256: Option<String>,
    /// `client_name`, shown on the sign-in page.
    pub name: String,
    /// Registered redirect URIs, exact strings.
    pub redirect_uris: Vec<String>,
    /// `token_endpoint_auth_method`: `none`, `client_secret_post` or `client_secret_basic`.
    pub auth_method: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A grant: what one sign-in allowed, shared by every token rotated from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Opaque id.
    pub id: String,
    /// The client the grant was given to.
    pub client_id: String,
    /// The `[[users]]` name who signed in.
    pub user: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The audience: the canonical MCP resource URI.
    pub resource: String,
}

/// An authorization code, as issued at `/authorize`.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// Who signed in.
    pub user: String,
    /// The exact `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    /// PKCE S256 challenge (base64url, no padding).
    pub code_challenge: String,
    /// Granted scopes.
    pub scope: String,
    /// The audience.
    pub resource: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set once redeemed: the grant it produced (a second redemption revokes it).
    pub family_id: Option<String>,
}

/// Access or refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Presented to `/mcp`.
    Access,
    /// Exchanged at `/token` for a new pair.
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// A stored token with its grant.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// Access or refresh.
    pub kind: TokenKind,
    /// Unix seconds.
    pub expires_at: i64,
    /// A refresh token already rotated away (presenting it again is reuse).
    pub used: bool,
    /// When it was rotated away (Unix seconds), for refresh tokens rotated since migration 3.
    pub used_at: Option<i64>,
    /// The token or its whole grant was revoked.
    pub revoked: bool,
    /// The grant.
    pub family: Family,
}

/// A token to store: its hash and expiry.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// SHA-256 hex of the token.
    pub sha256: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Active grants of one user, for `dust-mcp token list`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserGrants {
    /// The `[[users]]` name.
    pub user: String,
    /// Grants not revoked that still hold an unexpired token.
    pub active: u64,
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The OAuth tables on one connection.
pub struct OAuthStore {
    conn: Connection,
}

impl std::fmt::Debug for OAuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthStore").finish_non_exhaustive()
    }
}

/// Opens an [`OAuthStore`] for one worker thread.
pub type OAuthFactory = Arc<dyn Fn() -> Result<OAuthStore, StoreError> + Send + Sync>;

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const FAMILY_COLUMNS: &str = "f.id, f.client_id, f.user_name, f.scope, f.resource";

fn family_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Family> {
    Ok(Family {
        id: row.get(at)?,
        client_id: row.get(at + 1)?,
        user: row.get(at + 2)?,
        scope: row.get(at + 3)?,
        resource: row.get(at + 4)?,
    })
}

impl OAuthStore {
    /// Opens the database file, bringing the shared schema up to date first.
    pub fn open(path: &Path) -> Result<OAuthStore, StoreError> {
        // The shared store owns the migration list; opening it once migrates the file.
        drop(SqliteStore::open(path)?);
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(open_err)?;
        Ok(OAuthStore { conn })
    }

    /// A factory opening one connection per worker on `path`.
    pub fn factory(path: PathBuf) -> OAuthFactory {
        Arc::new(move || OAuthStore::open(&path))
    }

    /// Stores a newly registered client.
    pub fn insert_client(&mut self, c: &ClientRecord) -> Result<(), StoreError> {
        let uris = serde_json::to_string(&c.redirect_uris)
            .map_err(|e| StoreError::Corrupt(format!("redirect uris: {e}")))?;
        self.conn
            .execute(
                "INSERT INTO oauth_clients (client_id, secret_sha256, name, redirect_uris, auth_method, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.client_id, c.secret_sha256, c.name, uris, c.auth_method, c.created_at],
            )
            .map(|_| ())
            .map_err(sql("insert oauth client"))
    }

    /// A registered client.
    pub fn client(&mut self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT client_id, secret_sha256, name, redirect_uris, auth_method, created_at
                 FROM oauth_clients WHERE client_id = ?1",
                [client_id],
                |r| {
                    Ok((
                        ClientRecord {
                            client_id: r.get(0)?,
                            secret_sha256: r.get(1)?,
                            name: r.get(2)?,
                            redirect_uris: Vec::new(),
                            auth_method: r.get(4)?,
                            created_at: r.get(5)?,
                        },
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(sql("read oauth client"))?;
        row.map(|(mut c, uris)| {
            c.redirect_uris = serde_json::from_str(&uris).map_err(|e| {
                StoreError::Corrupt(format!("redirect uris of {}: {e}", c.client_id))
            })?;
            Ok(c)
        })
        .transpose()
    }

    /// Deletes a client and revokes every grant it holds; `false` when unknown.
    pub fn delete_client(&mut self, client_id: &str) -> Result<bool, StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        let n = tx
            .execute(
                "DELETE FROM oauth_clients WHERE client_id = ?1",
                [client_id],
            )
            .map_err(sql("delete oauth client"))?;
        tx.execute(
            "UPDATE oauth_families SET revoked = 1 WHERE client_id = ?1",
            [client_id],
        )
        .map_err(sql("revoke client grants"))?;
        tx.commit().map_err(sql("commit"))?;
        Ok(n > 0)
    }

    /// Stores an authorization code (by hash), and drops codes and tokens past their expiry.
    pub fn insert_code(&mut self, sha256: &str, code: &CodeRecord) -> Result<(), StoreError> {
        self.purge_expired(unix_now())?;
        self.conn
            .execute(
                "INSERT INTO oauth_codes (code_sha256, client_id, user_name, redirect_uri, code_challenge, scope, resource, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![sha256, code.client_id, code.user, code.redirect_uri, code.code_challenge, code.scope, code.resource, code.expires_at],
            )
            .map(|_| ())
            .map_err(sql("insert authorization code"))
    }

    /// An authorization code by hash, redeemed or not.
    pub fn code(&mut self, sha256: &str) -> Result<Option<CodeRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT client_id, user_name, redirect_uri, code_challenge, scope, resource, expires_at, family_id
                 FROM oauth_codes WHERE code_sha256 = ?1",
                [sha256],
                |r| {
                    Ok(CodeRecord {
                        client_id: r.get(0)?,
                        user: r.get(1)?,
                        redirect_uri: r.get(2)?,
                        code_challenge: r.get(3)?,
                        scope: r.get(4)?,
                        resource: r.get(5)?,
                        expires_at: r.get(6)?,
                        family_id: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(sql("read authorization code"))
    }

    /// Redeems a code once: records `family` as its grant and stores the first token pair.
    /// `false` when the code was redeemed meanwhile (nothing is stored then).
    pub fn redeem_code(
        &mut self,
        sha256: &str,
        family: &Family,
        access: &NewToken,
        refresh: &NewToken,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin"))?;
        let n = tx
            .execute(
                "UPDATE oauth_codes SET family_id = ?2 WHERE code_sha256 = ?1 AND family_id IS NULL",
                params![sha256, family.id],
            )
            .map_err(sql("redeem authorization code"))?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO oauth_families (id, client_id, user_name, scope, resource, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                family.id,
                family.client_id,
                family.user,
                family.scope,
                family.resource,
                unix_now()
            ],
        )
        .map_err(sql("insert grant"))?;
        insert_token(&tx, TokenKind::Access, &family.id, access)?;
        insert_token(&tx, TokenKind::Refresh, &family.id, refresh)?;
        tx.commit().map_err(sql("commit"))?;
        Ok(true)
    }

    /// A token by hash, with its grant; `revoked` covers the grant's revocation too.
    pub fn token(&mut self, sha256: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT t.kind, t.expires_at, t.used, t.revoked OR f.revoked, t.used_at, {FAMILY_COLUMNS}
                 FROM oauth_tokens t JOIN oauth_families f ON f.id = t.family_id
                 WHERE t.token_sha256 = ?1"
            ))
            .and_then(|mut s| {
                s.query_row([sha256], |r| {
                    Ok(TokenRecord {
                        kind: if r.get::<_, String>(0)? == "refresh" {
                            TokenKind::Refresh
                        } else {
                            TokenKind::Access
                        },
                        expires_at: r.get(1)?,
                        used: r.get(2)?,
                        revoked: r.get(3)?,
                        used_at: r.get(4)?,
                        family: family_at(r, 5)?,
                    })
                })
                .optional()
            })
            .map_err(sql("read token"))
    }

    /// Rotates a refresh token: marks it used and stores the new pair in its grant. `false`
    /// when it was already used or revoked meanwhile (nothing is stored then).
    pub fn rotate_refresh(
        &mut self,
        old_sha256: &str,
        family_id: &str,
        now: i64,
        access: &NewToken,
        refresh: &NewToken,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin"))?;
        let n = tx
            .execute(
                "UPDATE oauth_tokens SET used = 1, used_at = ?2
                 WHERE token_sha256 = ?1 AND kind = 'refresh' AND used = 0 AND revoked = 0",
                params![old_sha256, now],
            )
            .map_err(sql("rotate refresh token"))?;
        if n == 0 {
            return Ok(false);
        }
        insert_token(&tx, TokenKind::Access, family_id, access)?;
        insert_token(&tx, TokenKind::Refresh, family_id, refresh)?;
        tx.commit().map_err(sql("commit"))?;
        Ok(true)
    }

    /// A second refresh with a token rotated away at or after `rotated_since` (a client retrying
    /// a refresh whose answer it lost, or two of its machines refreshing at once): issues one
    /// more pair in the same grant. `false` when the token is not such a token (nothing stored).
    pub fn reissue_after_rotation(
        &mut self,
        old_sha256: &str,
        family_id: &str,
        rotated_since: i64,
        access: &NewToken,
        refresh: &NewToken,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin"))?;
        let eligible: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM oauth_tokens t JOIN oauth_families f ON f.id = t.family_id
                  WHERE t.token_sha256 = ?1 AND t.kind = 'refresh' AND t.used = 1 AND t.revoked = 0
                    AND f.revoked = 0 AND t.used_at >= ?2)",
                params![old_sha256, rotated_since],
                |r| r.get(0),
            )
            .map_err(sql("check rotated refresh token"))?;
        if !eligible {
            return Ok(false);
        }
        insert_token(&tx, TokenKind::Access, family_id, access)?;
        insert_token(&tx, TokenKind::Refresh, family_id, refresh)?;
        tx.commit().map_err(sql("commit"))?;
        Ok(true)
    }

    /// Revokes a whole grant: every access and refresh token in it stops working.
    pub fn revoke_family(&mut self, family_id: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE oauth_families SET revoked = 1 WHERE id = ?1",
                [family_id],
            )
            .map(|_| ())
            .map_err(sql("revoke grant"))
    }

    /// Revokes one token.
    pub fn revoke_token(&mut self, sha256: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE oauth_tokens SET revoked = 1 WHERE token_sha256 = ?1",
                [sha256],
            )
            .map(|_| ())
            .map_err(sql("revoke token"))
    }

    /// Revokes every grant of a user; returns how many were active.
    pub fn revoke_user(&mut self, user: &str) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE oauth_families SET revoked = 1 WHERE user_name = ?1 AND revoked = 0",
                [user],
            )
            .map_err(sql("revoke user grants"))
    }

    /// Users with grants that still hold an unexpired token, by name.
    pub fn active_grants(&mut self) -> Result<Vec<UserGrants>, StoreError> {
        let mut s = self
            .conn
            .prepare(
                "SELECT f.user_name, COUNT(DISTINCT f.id) FROM oauth_families f
                 JOIN oauth_tokens t ON t.family_id = f.id
                 WHERE f.revoked = 0 AND t.revoked = 0 AND t.used = 0 AND t.expires_at > ?1
                 GROUP BY f.user_name ORDER BY f.user_name",
            )
            .map_err(sql("list grants"))?;
        let rows = s
            .query_map([unix_now()], |r| {
                Ok(UserGrants {
                    user: r.get(0)?,
                    active: r.get::<_, i64>(1)? as u64,
                })
            })
            .map_err(sql("list grants"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list grants"))
    }

    /// Drops codes and tokens past their expiry, and grants left without tokens.
    pub fn purge_expired(&mut self, now: i64) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!(
                "DELETE FROM oauth_codes WHERE expires_at < {now};
                 DELETE FROM oauth_tokens WHERE expires_at < {now};
                 DELETE FROM oauth_families WHERE NOT EXISTS
                     (SELECT 1 FROM oauth_tokens t WHERE t.family_id = oauth_families.id)
                   AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.family_id = oauth_families.id);"
            ))
            .map_err(sql("purge expired grants"))
    }
}

fn insert_token(
    conn: &Connection,
    kind: TokenKind,
    family_id: &str,
    token: &NewToken,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO oauth_tokens (token_sha256, kind, family_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token.sha256, kind.as_str(), family_id, token.expires_at],
    )
    .map(|_| ())
    .map_err(sql("insert token"))
}

#[cfg(test)]
mod tests;
