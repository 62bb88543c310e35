//! `/token` (RFC 6749 §4.1.3 and §6 with PKCE, RFC 7636 §4.6, and RFC 8707 `resource`) and
//! `/revoke` (RFC 7009). Codes are single use: a second redemption revokes what the first
//! produced. Refresh tokens rotate: a used one presented again revokes its whole grant.

use actix_web::{web, HttpRequest, HttpResponse};
use actors::store::oauth::{unix_now, Family, NewToken, TokenKind};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{fresh_secret, sha256_hex, OAuth, OAuthError};
use crate::app::AppState;

/// The token request's fields (both grants).
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
}

/// The revocation request's fields.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// A PKCE verifier: 43 to 128 unreserved characters (RFC 7636 §4.1).
fn verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn missing(field: &str) -> OAuthError {
    OAuthError::InvalidRequest(format!("{field} is required"))
}

impl OAuth {
    fn check_resource(&self, resource: Option<&str>, granted: &str) -> Result<(), OAuthError> {
        match resource {
            Some(r) if r.trim_end_matches('/') != granted => Err(OAuthError::InvalidTarget(
                "resource must be this server's MCP endpoint".into(),
            )),
            _ => Ok(()),
        }
    }

    /// A fresh access + refresh pair for a grant, and the JSON answer carrying it.
    fn new_pair(&self, family: &Family) -> (NewToken, NewToken, serde_json::Value) {
        let access = fresh_secret("dmcp_at_");
        let refresh = fresh_secret("dmcp_rt_");
        let now = unix_now();
        let body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.settings.access_ttl_secs,
            "refresh_token": refresh,
            "scope": family.scope,
        });
        (
            NewToken {
                sha256: sha256_hex(&access),
                expires_at: now + self.settings.access_ttl_secs,
            },
            NewToken {
                sha256: sha256_hex(&refresh),
                expires_at: now + self.settings.refresh_ttl_secs,
            },
            body,
        )
    }

    async fn code_grant(
        &self,
        state: &AppState,
        client_id: String,
        form: TokenForm,
    ) -> Result<serde_json::Value, OAuthError> {
        let code = form.code.ok_or_else(|| missing("code"))?;
        let hash = sha256_hex(&code);
        let lookup = hash.clone();
        let record = self.store.run(move |s| s.code(&lookup)).await?;
        let invalid = |why: &str| OAuthError::InvalidGrant(why.into());
        let record = record.ok_or_else(|| invalid("unknown authorization code"))?;
        if let Some(family) = record.family_id {
            // RFC 6749 §4.1.2: a code used twice may have been stolen; revoke what it gave.
            tracing::warn!(client_id = %record.client_id, "authorization code reused; its grant is revoked");
            self.store.run(move |s| s.revoke_family(&family)).await?;
            return Err(invalid("authorization code already used"));
        }
        if record.expires_at <= unix_now() {
            return Err(invalid("authorization code expired"));
        }
        if record.client_id != client_id {
            return Err(invalid("authorization code was issued to another client"));
        }
        if form.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
            return Err(invalid(
                "redirect_uri does not match the authorization request",
            ));
        }
        self.check_resource(form.resource.as_deref(), &record.resource)?;
        let verifier = form.code_verifier.ok_or_else(|| missing("code_verifier"))?;
        if !verifier_ok(&verifier) || s256(&verifier) != record.code_challenge {
            return Err(invalid("PKCE verification failed"));
        }
        if state.auth.user_named(&record.user).is_none() {
            return Err(invalid("the user of this grant no longer exists"));
        }
        let family = Family {
            id: uuid::Uuid::new_v4().simple().to_string(),
            client_id,
            user: record.user,
            scope: record.scope,
            resource: record.resource,
        };
        let (access, refresh, body) = self.new_pair(&family);
        let f = family.clone();
        let redeemed = self
            .store
            .run(move |s| s.redeem_code(&hash, &f, &access, &refresh))
            .await?;
        if !redeemed {
            return Err(invalid("authorization code already used"));
        }
        tracing::info!(client_id = %family.client_id, user = %family.user, "tokens issued");
        Ok(body)
    }

    async fn refresh_grant(
        &self,
        state: &AppState,
        client_id: String,
        form: TokenForm,
    ) -> Result<serde_json::Value, OAuthError> {
        let token = form.refresh_token.ok_or_else(|| missing("refresh_token"))?;
        let hash = sha256_hex(&token);
        let lookup = hash.clone();
        let record = self.store.run(move |s| s.token(&lookup)).await?;
        let invalid = |why: &str| OAuthError::InvalidGrant(why.into());
        let record = record
            .filter(|r| r.kind == TokenKind::Refresh)
            .ok_or_else(|| invalid("unknown refresh token"))?;
        if record.family.client_id != client_id {
            return Err(invalid("refresh token was issued to another client"));
        }
        if record.revoked {
            return Err(invalid("refresh token revoked"));
        }
        let family = record.family;
        let now = unix_now();
        let grace = self.settings.refresh_reuse_grace_secs;
        let in_grace = record.used && grace > 0 && record.used_at.is_some_and(|t| now - t <= grace);
        if record.used && !in_grace {
            // OAuth 2.1 §4.3.1: reuse of a rotated refresh token means it leaked.
            tracing::warn!(client_id = %family.client_id, user = %family.user, "refresh token reused; the whole grant is revoked");
            let id = family.id.clone();
            self.store.run(move |s| s.revoke_family(&id)).await?;
            return Err(invalid("refresh token already used; the grant is revoked"));
        }
        if record.expires_at <= unix_now() {
            return Err(invalid("refresh token expired"));
        }
        self.check_resource(form.resource.as_deref(), &family.resource)?;
        if let Some(scope) = &form.scope {
            let granted: Vec<&str> = family.scope.split_whitespace().collect();
            if scope.split_whitespace().any(|s| !granted.contains(&s)) {
                return Err(OAuthError::InvalidScope(
                    "a refresh cannot widen the granted scopes".into(),
                ));
            }
        }
        if state.auth.user_named(&family.user).is_none() {
            return Err(invalid("the user of this grant no longer exists"));
        }
        let (access, refresh, body) = self.new_pair(&family);
        let id = family.id.clone();
        let rotated = if in_grace {
            // The same client refreshing twice in a moment (several machines, or a retry of a
            // lost answer): one more pair, and the grant lives on.
            tracing::info!(client_id = %family.client_id, user = %family.user, "refresh token presented again within the grace; issuing another pair");
            self.store
                .run(move |s| s.reissue_after_rotation(&hash, &id, now - grace, &access, &refresh))
                .await?
        } else {
            self.store
                .run(move |s| s.rotate_refresh(&hash, &id, now, &access, &refresh))
                .await?
        };
        if !rotated {
            let id = family.id.clone();
            self.store.run(move |s| s.revoke_family(&id)).await?;
            return Err(invalid("refresh token already used; the grant is revoked"));
        }
        Ok(body)
    }
}

/// `POST /token`.
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let oauth = &state.oauth;
    let grant = form
        .grant_type
        .clone()
        .ok_or_else(|| missing("grant_type"))?;
    if !matches!(grant.as_str(), "authorization_code" | "refresh_token") {
        return Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type {grant:?} is not supported; use authorization_code or refresh_token"
        )));
    }
    let client_id = oauth
        .authenticate_client(
            &req,
            form.client_id.as_deref(),
            form.client_secret.as_deref(),
        )
        .await?;
    let body = if grant == "authorization_code" {
        oauth.code_grant(&state, client_id, form).await?
    } else {
        oauth.refresh_grant(&state, client_id, form).await?
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body))
}

/// `POST /revoke`: 200 whether or not the token was known (RFC 7009 §2.2). A refresh token
/// takes its whole grant with it; an access token only itself.
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let oauth = &state.oauth;
    let client_id = oauth
        .authenticate_client(
            &req,
            form.client_id.as_deref(),
            form.client_secret.as_deref(),
        )
        .await?;
    let token = form.token.ok_or_else(|| missing("token"))?;
    let hash = sha256_hex(&token);
    oauth
        .store
        .run(move |s| {
            match s.token(&hash)? {
                Some(r) if r.family.client_id == client_id => match r.kind {
                    TokenKind::Refresh => s.revoke_family(&r.family.id)?,
                    TokenKind::Access => s.revoke_token(&hash)?,
                },
                _ => {}
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(verifier_ok(verifier));
        assert_eq!(
            s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(!verifier_ok("short"));
    }
}
