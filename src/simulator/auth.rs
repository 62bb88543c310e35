//! Bearer-key authentication as Dust's public-API middleware does it (dust-api.md §1): the three
//! distinct 401 types, then the workspace checks (401 `workspace_auth_error` for a workspace the
//! key is not a member of, 404 `workspace_not_found` otherwise).

use actix_web::{http::header, HttpRequest};

use super::{error::ApiError, state::SimState};

/// Checks the `Authorization` header of `req` against the key and workspace `w_id`.
pub(crate) fn check(state: &SimState, req: &HttpRequest, w_id: &str) -> Result<(), ApiError> {
    check_key(state, req)?;
    if w_id == state.workspace_id {
        return Ok(());
    }
    if state.foreign_workspace_ids.iter().any(|w| w == w_id) {
        return Err(ApiError::new(
            401,
            "workspace_auth_error",
            "Only users of the workspace can access this content.",
        ));
    }
    Err(ApiError::new(
        404,
        "workspace_not_found",
        "The workspace was not found.",
    ))
}

/// Checks the key only (also used by the `/_sim` admin routes).
pub(crate) fn check_key(state: &SimState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            401,
            "not_authenticated",
            "The request does not have valid authentication credentials.",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| is_key_shaped(t))
        .ok_or_else(|| {
            ApiError::new(
                401,
                "malformed_authorization_header_error",
                "Malformed Authorization header",
            )
        })?;
    if token != state.api_key {
        return Err(ApiError::new(
            401,
            "invalid_api_key_error",
            "The API key provided is invalid or disabled.",
        ));
    }
    Ok(())
}

/// Dust keys match `sk-[a-zA-Z0-9]+`; we also let dashes through after the first character so a
/// key like `sk-demo-...` works.
fn is_key_shaped(token: &str) -> bool {
    let Some(rest) = token.strip_prefix("sk-") else {
        return false;
    };
    rest.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::is_key_shaped;

    #[test]
    fn key_shape_follows_dust() {
        assert!(is_key_shaped("sk-abc123"));
        assert!(is_key_shaped("sk-demo-0000"));
        assert!(!is_key_shaped("sk-"));
        assert!(!is_key_shaped("pk-abc"));
        assert!(!is_key_shaped("sk-a b"));
    }
}
