//! Request bodies of the conversation routes and their checks, in the order Dust runs them
//! (dust-api.md §4, §5, §8): schema (serde, worded like the zod validator), context lengths,
//! username, OAuth-only fields, depth, fragments. Origin is checked later, when the message is
//! posted, as in Dust.

use serde::Deserialize;
use serde_json::Value;

use super::{error::ApiError, files::is_supported_content_type, timezones::is_known_timezone};

/// Inline fragments may hold at most 512 KiB (characters), dust-api.md §8.1.
pub(crate) const MAX_INLINE_FRAGMENT_CHARS: usize = 512 * 1024;

/// A mention: an agent (`configurationId`) or a user.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Mention {
    /// Triggers the agent.
    Agent {
        #[serde(rename = "configurationId")]
        configuration_id: String,
    },
    /// A user mention; triggers nothing.
    User {
        #[serde(rename = "type")]
        kind: String,
        #[serde(rename = "userId")]
        user_id: String,
    },
}

/// `message.context`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Context {
    pub(crate) username: String,
    pub(crate) timezone: String,
    pub(crate) full_name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) profile_picture_url: Option<String>,
    pub(crate) origin: Option<String>,
    #[serde(rename = "clientSideMCPServerIds")]
    pub(crate) client_side_mcp_server_ids: Option<Vec<String>>,
    #[serde(rename = "selectedMCPServerViewIds")]
    pub(crate) selected_mcp_server_view_ids: Option<Vec<String>>,
}

/// A user message: `message` of create, or the whole body of a follow-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageBody {
    pub(crate) content: String,
    #[serde(default)]
    pub(crate) mentions: Vec<Mention>,
    pub(crate) context: Context,
    pub(crate) agentic_message_data: Option<Value>,
    pub(crate) model_selection: Option<Value>,
    pub(crate) blocking: Option<bool>,
    pub(crate) skip_tools_validation: Option<bool>,
}

/// A content fragment (inline, file or content node).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FragmentBody {
    pub(crate) title: String,
    pub(crate) content: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) file_id: Option<String>,
    pub(crate) node_id: Option<String>,
    pub(crate) node_data_source_view_id: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) context: Option<Value>,
}

/// The create-conversation body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateBody {
    pub(crate) title: Option<String>,
    pub(crate) visibility: Option<String>,
    pub(crate) message: Option<MessageBody>,
    pub(crate) content_fragment: Option<FragmentBody>,
    pub(crate) content_fragments: Option<Vec<FragmentBody>>,
    pub(crate) blocking: Option<bool>,
    pub(crate) skip_tools_validation: Option<bool>,
    pub(crate) space_id: Option<String>,
    pub(crate) depth: Option<u32>,
}

/// Parses a JSON body into `T`, with Dust's 400 wording on failure.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::invalid_body)
}

/// Schema-level checks zod would do: non-empty content, known timezone, mention shapes,
/// visibility.
fn check_message_schema(m: &MessageBody, prefix: &str) -> Result<(), ApiError> {
    if m.content.is_empty() {
        return Err(ApiError::invalid_body(format!(
            "{prefix}content: String must contain at least 1 character(s)"
        )));
    }
    if !is_known_timezone(&m.context.timezone) {
        return Err(ApiError::invalid_body(format!(
            "{prefix}context.timezone: Invalid timezone"
        )));
    }
    if let Some(sel) = &m.model_selection {
        let ok = sel["providerId"].is_string() && sel["modelId"].is_string();
        if !ok {
            return Err(ApiError::invalid_body(format!(
                "{prefix}modelSelection: providerId and modelId are required"
            )));
        }
    }
    for mention in &m.mentions {
        match mention {
            Mention::Agent { configuration_id } if !configuration_id.is_empty() => {}
            Mention::User { kind, user_id } if kind == "user" && !user_id.is_empty() => {}
            _ => {
                return Err(ApiError::invalid_body(format!(
                    "{prefix}mentions: Invalid mention"
                )))
            }
        }
    }
    Ok(())
}

/// Context checks shared by create and follow-up (lengths, then username, then OAuth-only
/// fields). `username_message` differs between the two routes.
fn check_context(m: &MessageBody, username_message: &str) -> Result<(), ApiError> {
    let c = &m.context;
    let long = |s: &Option<String>, max: usize| s.as_ref().is_some_and(|s| s.chars().count() > max);
    if c.username.chars().count() > 255
        || c.timezone.chars().count() > 255
        || long(&c.full_name, 255)
        || long(&c.email, 255)
        || long(&c.profile_picture_url, 2048)
    {
        return Err(ApiError::invalid(
            "The message.context properties (username, timezone, fullName, and email) must be \
             less than 255 characters and the profilePictureUrl must be less than 2048 characters.",
        ));
    }
    if c.username.trim().is_empty() {
        return Err(ApiError::invalid(username_message));
    }
    let used = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if used(&c.client_side_mcp_server_ids) || used(&c.selected_mcp_server_view_ids) {
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            "MCP server selection is only available to users authenticated with OAuth.",
        ));
    }
    if m.agentic_message_data.is_some() {
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            "agenticMessageData is only available to system keys.",
        ));
    }
    Ok(())
}

/// Checks a fragment body (not whether its file exists).
pub(crate) fn check_fragment(f: &FragmentBody) -> Result<(), ApiError> {
    let variants = [
        f.content.is_some(),
        f.file_id.is_some(),
        f.node_id.is_some(),
    ];
    if variants.iter().filter(|v| **v).count() != 1 {
        return Err(ApiError::invalid_body(
            "contentFragment: exactly one of content, fileId or nodeId is required",
        ));
    }
    if let Some(content) = &f.content {
        if content.is_empty() || content.chars().count() > MAX_INLINE_FRAGMENT_CHARS {
            return Err(ApiError::invalid(
                "The content must be a non-empty string of less than 512kB.",
            ));
        }
        match f.content_type.as_deref() {
            Some(ct) if is_supported_content_type(ct) => {}
            Some(ct) => {
                return Err(ApiError::invalid(format!(
                    "The content type {ct:?} is not supported."
                )))
            }
            None => return Err(ApiError::invalid_body("contentType: Required")),
        }
    }
    if f.node_id.is_some() && f.node_data_source_view_id.is_none() {
        return Err(ApiError::invalid_body("nodeDataSourceViewId: Required"));
    }
    Ok(())
}

/// All create-conversation checks that run before anything is stored.
pub(crate) fn check_create(body: &CreateBody) -> Result<(), ApiError> {
    match body.visibility.as_deref() {
        None | Some("unlisted" | "workspace" | "deleted" | "test") => {}
        Some(_) => return Err(ApiError::invalid_body("visibility: Invalid enum value")),
    }
    if let Some(m) = &body.message {
        check_message_schema(m, "message.")?;
        check_context(
            m,
            "The message.context.username must be a non-empty string.",
        )?;
    }
    if body.depth.is_some_and(|d| d >= 4) {
        return Err(ApiError::invalid(
            "Recursive run_agent calls exceeded depth of 4",
        ));
    }
    for f in body
        .content_fragment
        .iter()
        .chain(body.content_fragments.iter().flatten())
    {
        check_fragment(f)?;
    }
    if body.space_id.is_some() {
        return Err(ApiError::new(404, "space_not_found", "Space not found."));
    }
    Ok(())
}

/// All follow-up checks that run before anything is stored.
pub(crate) fn check_follow_up(m: &MessageBody) -> Result<(), ApiError> {
    check_message_schema(m, "")?;
    check_context(m, "The context.username field is required.")
}

/// Origins an API key may not use (they need OAuth, dust-api.md §4).
pub(crate) fn origin_allowed(origin: Option<&str>) -> bool {
    !matches!(
        origin,
        Some("cli" | "cli_programmatic" | "extension" | "raycast")
    )
}

/// The stored origin: unknown strings become `api`, as the schema coerces them.
pub(crate) fn stored_origin(origin: Option<&str>) -> &str {
    match origin {
        Some(o @ ("zapier" | "make" | "n8n" | "gsheet" | "excel" | "powerpoint")) => o,
        _ => "api",
    }
}
