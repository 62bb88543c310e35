//! The sign-in page and the error page of `/authorize`: small server-rendered HTML, no script,
//! no external asset, labelled controls; every value is escaped. Tokens are never echoed.

use actix_web::{http::StatusCode, HttpResponse};

/// What the sign-in page shows and carries.
pub struct SignIn<'a> {
    /// The client's name (from its registration or metadata document: not trusted).
    pub client_name: &'a str,
    /// Where the person is sent back.
    pub redirect_host: &'a str,
    /// Hidden fields: the authorization request and the CSRF token.
    pub hidden: &'a [(&'a str, &'a str)],
    /// An error from the previous attempt.
    pub error: Option<&'a str>,
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}\
h1{font-size:1.4rem}label{display:block;font-weight:600;margin-top:1rem}\
input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #666;border-radius:4px}\
.actions{display:flex;gap:.75rem;margin-top:1.25rem}button{font:inherit;padding:.5rem 1.25rem;border-radius:4px;border:1px solid #333;cursor:pointer}\
button[value=approve]{background:#1a1a1a;color:#fff}.error{color:#a00;border-left:4px solid #a00;padding-left:.5rem}\
.hint{color:#555;font-size:.9rem}:focus-visible{outline:3px solid #2463eb;outline-offset:2px}";

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// An HTML answer that no one caches or frames (clickjacking of the approve button).
pub fn html(status: StatusCode, page: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Content-Type", "text/html; charset=utf-8"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ))
        // Not `no-referrer`: browsers then send `Origin: null` on the form POST, which the
        // Origin check refuses; `same-origin` still keeps the URL from other sites.
        .insert_header(("Referrer-Policy", "same-origin"))
        .body(page)
}

/// The sign-in form.
pub fn sign_in(p: &SignIn<'_>) -> String {
    let hidden: String = p
        .hidden
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let error = p
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Connect {name} to dust-mcp</h1>\
<p><strong>{name}</strong> (returning to <strong>{host}</strong>) asks to act as you on this \
dust-mcp server: ask your Dust agents and read your health files.</p>{error}\
<form method=\"post\" action=\"/authorize\">{hidden}\
<label for=\"token\">Your access token</label>\
<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" spellcheck=\"false\" aria-describedby=\"token-hint\">\
<p id=\"token-hint\" class=\"hint\">The token your dust-mcp operator gave you (made with <code>dust-mcp token new</code>). \
It stays on this server; {name} gets its own revocable token.</p>\
<div class=\"actions\"><button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></div></form>",
        name = escape(p.client_name),
        host = escape(p.redirect_host),
    );
    document(&format!("Connect {} to dust-mcp", p.client_name), &body)
}

/// A page saying why the request cannot go on (nothing is sent back to the client).
pub fn error(title: &str, message: &str) -> String {
    document(
        title,
        &format!(
            "<h1>{}</h1><p role=\"alert\">{}</p>",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_names_are_escaped() {
        let page = sign_in(&SignIn {
            client_name: "<script>x</script>",
            redirect_host: "a\"b",
            hidden: &[("state", "\"><img>")],
            error: None,
        });
        assert!(!page.contains("<script>"));
        assert!(!page.contains("\"><img>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("<label for=\"token\">"));
    }
}
