//! The caller-supplied `UserContext` of a Dust message, checked against Dust's rules
//! (dust-api.md §4): non-empty username, fields ≤ 255 chars, and an IANA timezone from a
//! built-in list (generated from tzdata 2025b, zones plus links), else "UTC" with a warning.
use super::error::DustError;
use super::types::MessageContextBody;

/// IANA zone and link names, one per line, sorted bytewise.
const TIMEZONES: &str = include_str!("timezones.txt");
/// Dust's length cap on username, timezone, full name and email.
const MAX_CONTEXT_FIELD_CHARS: usize = 255;
/// Dust's length cap on the profile picture URL.
const MAX_PICTURE_URL_CHARS: usize = 2048;

/// Who is speaking, as shown in Dust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserContext {
    /// Display username (required, non-empty).
    pub username: String,
    /// IANA timezone; invalid names become "UTC".
    pub timezone: String,
    /// Full name, optional.
    pub full_name: Option<String>,
    /// Email, optional.
    pub email: Option<String>,
    /// Avatar URL, optional.
    pub profile_picture_url: Option<String>,
}

impl UserContext {
    /// A context with just a username, in UTC.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            timezone: "UTC".into(),
            full_name: None,
            email: None,
            profile_picture_url: None,
        }
    }

    /// Builds the wire context, refusing what Dust would refuse with a 400.
    pub(crate) fn to_body(&self) -> Result<MessageContextBody, DustError> {
        let username = self.username.trim();
        if username.is_empty() {
            return Err(DustError::InvalidInput {
                detail: "the user context needs a non-empty username".into(),
            });
        }
        let too_long = |name: &str, value: &str, max: usize| {
            (value.chars().count() > max).then(|| DustError::InvalidInput {
                detail: format!("the user context {name} is longer than {max} characters"),
            })
        };
        let fields = [
            ("username", Some(username), MAX_CONTEXT_FIELD_CHARS),
            (
                "full name",
                self.full_name.as_deref(),
                MAX_CONTEXT_FIELD_CHARS,
            ),
            ("email", self.email.as_deref(), MAX_CONTEXT_FIELD_CHARS),
            (
                "profile picture URL",
                self.profile_picture_url.as_deref(),
                MAX_PICTURE_URL_CHARS,
            ),
        ];
        for (name, value, max) in fields {
            if let Some(err) = value.and_then(|v| too_long(name, v, max)) {
                return Err(err);
            }
        }
        Ok(MessageContextBody {
            username: username.to_owned(),
            timezone: valid_timezone(&self.timezone),
            full_name: self.full_name.clone(),
            email: self.email.clone(),
            profile_picture_url: self.profile_picture_url.clone(),
            origin: "api",
        })
    }
}

/// True when `name` is an IANA timezone Dust accepts.
pub fn is_known_timezone(name: &str) -> bool {
    !name.is_empty() && TIMEZONES.lines().any(|tz| tz == name)
}

/// `name` when it is a known IANA timezone, else "UTC" (Dust would answer 400 otherwise).
pub fn valid_timezone(name: &str) -> String {
    let name = name.trim();
    if is_known_timezone(name) {
        name.to_owned()
    } else {
        tracing::warn!(timezone = %name, "unknown IANA timezone for Dust; using UTC");
        "UTC".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezones_known_and_unknown() {
        for tz in [
            "UTC",
            "Etc/UTC",
            "Europe/Paris",
            "America/Argentina/Buenos_Aires",
            "US/Eastern",
        ] {
            assert!(is_known_timezone(tz), "{tz}");
        }
        for tz in ["", "Mars/Olympus", "europe/paris", "UTC+2", "Europe"] {
            assert!(!is_known_timezone(tz), "{tz}");
        }
        assert_eq!(valid_timezone("Mars/Olympus"), "UTC");
        assert_eq!(valid_timezone(" Asia/Tokyo "), "Asia/Tokyo");
    }

    #[test]
    fn context_body_validates() {
        let mut ctx = UserContext::new("  alice  ");
        ctx.timezone = "Nowhere/Land".into();
        let body = ctx.to_body().unwrap();
        assert_eq!(
            (body.username.as_str(), body.timezone.as_str(), body.origin),
            ("alice", "UTC", "api")
        );
        assert!(UserContext::new("   ").to_body().is_err());
        let mut ctx = UserContext::new("a");
        ctx.email = Some("x".repeat(256));
        assert!(ctx.to_body().unwrap_err().to_string().contains("email"));
    }
}
