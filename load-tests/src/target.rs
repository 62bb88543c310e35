//! The server under test: `http://host:port/path` parsed and resolved once at start-up.
//! Owns the loopback rule: this workplace forbids traffic to non-loopback addresses, so a URL
//! that resolves anywhere else is refused unless the user passed `--allow-remote`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Why a `--url` was refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Only plain `http://` is spoken (no TLS): load runs target local test instances.
    #[error("url {url}: only http:// is supported (no TLS)")]
    Scheme {
        /// The URL as given.
        url: String,
    },
    /// The URL could not be split into host, port and path.
    #[error("url {url}: {reason}")]
    Malformed {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host did not resolve.
    #[error("url {url}: cannot resolve {host}: {source}")]
    Resolve {
        /// The URL as given.
        url: String,
        /// The host part.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The host resolved to a non-loopback address and `--allow-remote` was not given.
    #[error(
        "url {url}: {addr} is not a loopback address; pass --allow-remote to load a remote server"
    )]
    NotLoopback {
        /// The URL as given.
        url: String,
        /// The first non-loopback address it resolved to.
        addr: IpAddr,
    },
}

/// A parsed, resolved and checked server endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, for reports.
    pub url: String,
    /// The `Host` header value (`host:port`, as written in the URL).
    pub authority: String,
    /// The request path including any query, at least `/`.
    pub path: String,
    /// The address every connection goes to (the first resolved one).
    pub addr: SocketAddr,
}

/// Parses `url`, resolves its host and applies the loopback rule.
pub fn resolve(url: &str, allow_remote: bool) -> Result<Target, TargetError> {
    let (host, port, authority, path) = split(url)?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|source| TargetError::Resolve {
                url: url.to_owned(),
                host: host.clone(),
                source,
            })?
            .collect(),
    };
    if !allow_remote {
        if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(TargetError::NotLoopback {
                url: url.to_owned(),
                addr: bad.ip(),
            });
        }
    }
    let addr = *addrs.first().ok_or_else(|| TargetError::Malformed {
        url: url.to_owned(),
        reason: "host resolved to no address",
    })?;
    Ok(Target {
        url: url.to_owned(),
        authority,
        path,
        addr,
    })
}

/// Splits into (host without brackets, port, authority, path).
fn split(url: &str) -> Result<(String, u16, String, String), TargetError> {
    let malformed = |reason| TargetError::Malformed {
        url: url.to_owned(),
        reason,
    };
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => {
            return Err(TargetError::Scheme {
                url: url.to_owned(),
            })
        }
        None => return Err(malformed("missing http:// prefix")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.contains('@') {
        return Err(malformed(
            "credentials in the URL are not supported; use --token",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| malformed("unclosed [ in host"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(malformed("junk after ]")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(malformed("empty host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| malformed("bad port"))?,
        None => 80,
    };
    Ok((host.to_owned(), port, authority.to_owned(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_accepted_with_their_parts() {
        let t = resolve("http://127.0.0.1:3001/mcp", false).unwrap();
        assert_eq!(t.addr, "127.0.0.1:3001".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:3001");
        assert_eq!(t.path, "/mcp");
        let v6 = resolve("http://[::1]:8080", false).unwrap();
        assert_eq!(v6.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(v6.path, "/");
        let q = resolve("http://127.0.0.1:9?x=1", false).unwrap();
        assert_eq!(q.path, "/?x=1");
    }

    #[test]
    fn non_loopback_urls_are_refused_without_allow_remote() {
        for url in [
            "http://10.1.2.3:80/mcp",
            "http://[2001:db8::1]/mcp",
            "http://8.8.8.8/",
        ] {
            let err = resolve(url, false).unwrap_err();
            assert!(
                matches!(err, TargetError::NotLoopback { .. }),
                "{url}: {err}"
            );
        }
        // With the opt-in the same literal is accepted (no traffic happens here).
        assert!(resolve("http://10.1.2.3:80/mcp", true).is_ok());
    }

    #[test]
    fn tls_credentials_and_bad_ports_are_refused() {
        assert!(matches!(
            resolve("https://127.0.0.1/mcp", false),
            Err(TargetError::Scheme { .. })
        ));
        assert!(resolve("http://user:pw@127.0.0.1/mcp", false).is_err());
        assert!(resolve("http://127.0.0.1:99999/mcp", false).is_err());
        assert!(resolve("127.0.0.1:80/mcp", false).is_err());
    }
}
