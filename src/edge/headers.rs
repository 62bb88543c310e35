//! Pure validators for the headers of MCP's Streamable HTTP transport (MCP 2025-11-25,
//! basic/transports): `Accept`, `Content-Type`, `MCP-Protocol-Version`, `Host` and `Origin`.
//! No I/O; each returns what the handler needs or the reason to refuse.

use actors::mcp::version::Version;

/// What a client's `Accept` header allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acceptable {
    /// `application/json` may be sent.
    pub json: bool,
    /// `text/event-stream` may be sent.
    pub sse: bool,
}

/// Reads `Accept` leniently: a missing header or `*/*` accepts both JSON and SSE (claude.ai sends
/// `*/*` on `initialize`, anthropics/claude-ai-mcp#217).
pub fn acceptable(accept: Option<&str>) -> Acceptable {
    let Some(accept) = accept else {
        return Acceptable {
            json: true,
            sse: true,
        };
    };
    let mut a = Acceptable {
        json: false,
        sse: false,
    };
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        // `q=0` means "not acceptable".
        let refused = fields.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        match media.as_str() {
            "*/*" | "" => {
                a.json = true;
                a.sse = true;
            }
            "application/json" | "application/*" => a.json = true,
            "text/event-stream" | "text/*" => a.sse = true,
            _ => {}
        }
    }
    a
}

/// Whether a POST's `Content-Type` is JSON (parameters such as `charset` allowed).
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The version named by `MCP-Protocol-Version`: `Ok(None)` when absent, `Err` with the value
/// when it names a version we do not speak (400).
pub fn protocol_version(header: Option<&str>) -> Result<Option<Version>, String> {
    match header {
        None => Ok(None),
        Some(v) => Version::parse(v.trim())
            .map(Some)
            .ok_or_else(|| v.to_owned()),
    }
}

/// The host part of a `Host` header or URL authority: `[::1]:80` → `[::1]`, `a.b:8080` → `a.b`.
pub fn host_without_port(authority: &str) -> &str {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether `Host` names this server. A missing `Host` (HTTP/1.0) passes.
pub fn host_allowed(host: Option<&str>, allowed: &[String]) -> bool {
    match host {
        None => true,
        Some(h) => {
            let h = host_without_port(h.trim()).to_ascii_lowercase();
            allowed.contains(&h)
        }
    }
}

/// Whether `Origin` may call us: absent (non-browser clients) passes; otherwise its host must be
/// an allowed host or the origin must be listed. MCP 2025-11-25: a present but invalid Origin is
/// answered 403, which is what stops DNS rebinding.
pub fn origin_allowed(
    origin: Option<&str>,
    allowed_hosts: &[String],
    allowed_origins: &[String],
) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let origin = origin.trim();
    if allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = host_without_port(rest.split('/').next().unwrap_or("")).to_ascii_lowercase();
    allowed_hosts.contains(&host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
    }

    #[test]
    fn accept_is_lenient_but_honours_explicit_choices() {
        assert_eq!(
            acceptable(None),
            Acceptable {
                json: true,
                sse: true
            }
        );
        assert_eq!(
            acceptable(Some("*/*")),
            Acceptable {
                json: true,
                sse: true
            }
        );
        assert_eq!(
            acceptable(Some("application/json, text/event-stream")),
            Acceptable {
                json: true,
                sse: true
            }
        );
        assert_eq!(
            acceptable(Some("application/json")),
            Acceptable {
                json: true,
                sse: false
            }
        );
        assert_eq!(
            acceptable(Some("text/event-stream;q=1, application/json;q=0")),
            Acceptable {
                json: false,
                sse: true
            }
        );
        assert_eq!(
            acceptable(Some("text/html")),
            Acceptable {
                json: false,
                sse: false
            }
        );
    }

    #[test]
    fn content_type_and_version() {
        assert!(is_json_content_type(Some(
            "application/json; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(None));
        assert_eq!(
            protocol_version(Some("2025-06-18")),
            Ok(Some(Version::V2025_06_18))
        );
        assert_eq!(protocol_version(None), Ok(None));
        assert_eq!(
            protocol_version(Some("1999-01-01")),
            Err("1999-01-01".into())
        );
    }

    #[test]
    fn dns_rebinding_is_refused() {
        assert!(host_allowed(Some("localhost:8080"), &hosts()));
        assert!(host_allowed(Some("[::1]:8080"), &hosts()));
        assert!(!host_allowed(Some("evil.example.com"), &hosts()));
        assert!(origin_allowed(None, &hosts(), &[]));
        assert!(origin_allowed(Some("http://localhost:8080"), &hosts(), &[]));
        assert!(!origin_allowed(
            Some("http://evil.example.com"),
            &hosts(),
            &[]
        ));
        assert!(origin_allowed(
            Some("https://claude.ai"),
            &hosts(),
            &["https://claude.ai".into()]
        ));
        assert!(!origin_allowed(Some("null"), &hosts(), &[]));
    }
}
