//! Which host names this server answers for, and which pages may talk to it.
//!
//! A page of another site can make a browser send requests here only under that site's own name
//! (DNS rebinding: `evil.example` made to resolve to this server). Over plain HTTP such requests
//! are refused by name: the server answers only for the names of `--public-url`, the names of a
//! certificate made with `--tls-self-signed`, `localhost` and addresses. Over HTTPS a browser
//! refuses a certificate that does not name the host it asked for, so every name is answered.
//!
//! Socket.IO and the plain `/ws` chat also check a browser's `Origin`: scheme, host and port must
//! be the page's own (as this server sees its own scheme and name), or listed in
//! `--allowed-origins`.

use axum::http::{HeaderMap, HeaderValue, header};

/// A URL people open this server at (`--public-url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub https: bool,
    /// Lowercase, an IPv6 address in brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl PublicUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = || format!("{url:?} is not a URL of this server (expected e.g. https://meet.example.com)");
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!("{url:?}: give the scheme and the host name only, without a path"));
        }
        let (host, port) = split_host(authority).ok_or_else(bad)?;
        Ok(Self { https, host, port })
    }

    /// `scheme://host[:port]`, as a browser writes an origin.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(port) if port != default_port(self.https) => format!("{scheme}://{}:{port}", self.host),
            _ => format!("{scheme}://{}", self.host),
        }
    }
}

/// The names and origins a server is configured for.
#[derive(Debug, Clone)]
pub struct Served {
    public: Vec<PublicUrl>,
    /// Names of the self-signed certificate, lowercase.
    names: Vec<String>,
    tls: bool,
    allowed_origins: Vec<String>,
}

/// How a request's `Origin` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` (not a browser, or a same-origin navigation).
    None,
    SameOrigin,
    /// Another origin, listed in `--allowed-origins`: answered with CORS headers.
    Allowed,
    Refused,
}

impl Served {
    /// From `--public-url`, the names of `--tls-self-signed`, whether the server speaks HTTPS,
    /// and `--allowed-origins` (checked already: what does not parse is left out).
    pub fn new(public_urls: &[String], self_signed: &[String], tls: bool, allowed_origins: &[String]) -> Self {
        Self {
            public: public_urls.iter().filter(|u| !u.is_empty()).filter_map(|u| PublicUrl::parse(u).ok()).collect(),
            names: self_signed.iter().filter(|n| !n.is_empty()).map(|n| n.to_ascii_lowercase()).collect(),
            tls,
            allowed_origins: allowed_origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect(),
        }
    }

    /// Whether this server answers for the request's `Host`.
    pub fn serves(&self, headers: &HeaderMap) -> bool {
        if self.tls {
            return true;
        }
        let Some((host, _)) = request_host(headers) else { return false };
        is_local_or_address(&host) || self.public.iter().any(|u| u.host == host) || self.names.contains(&host)
    }

    /// The request's own origin: its scheme (a public URL's, for its name behind a proxy that
    /// ends TLS) and its `Host`.
    fn own_origin(&self, headers: &HeaderMap) -> Option<String> {
        let (host, port) = request_host(headers)?;
        let https = self.public.iter().find(|u| u.host == host).map_or(self.tls, |u| u.https);
        let scheme = if https { "https" } else { "http" };
        Some(match port {
            Some(port) if port != default_port(https) => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        })
    }

    pub fn check_origin(&self, headers: &HeaderMap) -> OriginCheck {
        let Some(origin) = headers.get(header::ORIGIN) else { return OriginCheck::None };
        let Ok(origin) = origin.to_str().map(str::to_ascii_lowercase) else { return OriginCheck::Refused };
        if self.own_origin(headers).is_some_and(|own| own == origin) {
            return OriginCheck::SameOrigin;
        }
        if self.allowed_origins.iter().any(|allowed| allowed == "*" || *allowed == origin) {
            return OriginCheck::Allowed;
        }
        OriginCheck::Refused
    }

    /// Where the plain-HTTP port sends a request for `path`: the first HTTPS public URL, or the
    /// request's own name when this server answers for it, on `https_port`.
    pub fn https_location(&self, headers: &HeaderMap, https_port: u16, path: &str) -> Option<String> {
        if let Some(public) = self.public.iter().find(|u| u.https) {
            return Some(format!("{}{path}", public.origin()));
        }
        let (host, _) = request_host(headers)?;
        if !(is_local_or_address(&host) || self.names.contains(&host)) {
            return None;
        }
        let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
        Some(format!("https://{host}{port}{path}"))
    }
}

fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

/// The request's `Host`, lowercase, and its port if given.
fn request_host(headers: &HeaderMap) -> Option<(String, Option<u16>)> {
    let host = headers.get(header::HOST).and_then(|h: &HeaderValue| h.to_str().ok())?;
    split_host(host)
}

/// `host[:port]` (an IPv6 address in brackets) into a lowercase host and a port.
fn split_host(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.to_ascii_lowercase();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && (!host.starts_with('[') || host.ends_with(']')) => {
            (host.to_owned(), Some(port.parse::<u16>().ok()?))
        }
        _ => (authority, None),
    };
    let name_ok =
        |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let valid = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        name_ok(&host)
    };
    valid.then_some((host, port))
}

/// `localhost`, a name under it, or an IP address: no other site can own these names, so a
/// rebinding page cannot be served under them.
fn is_local_or_address(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        h
    }

    fn served(public: &[&str], tls: bool, allowed: &[&str]) -> Served {
        Served {
            public: public.iter().map(|u| PublicUrl::parse(u).unwrap()).collect(),
            names: Vec::new(),
            tls,
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn plain_http_answers_only_for_its_names() {
        let s = served(&["https://meet.example.com"], false, &[]);
        for host in ["localhost:3000", "127.0.0.1:3000", "[::1]:3000", "app.localhost", "MEET.example.com", "10.1.2.3"]
        {
            assert!(s.serves(&headers(host, None)), "{host}");
        }
        for host in ["evil.example:3000", "meet.example.com.evil.example", "", "a b", "[::1"] {
            assert!(!s.serves(&headers(host, None)), "{host}");
        }
        assert!(served(&[], true, &[]).serves(&headers("anything.example", None)), "over HTTPS, the certificate");
    }

    #[test]
    fn the_origin_must_match_scheme_host_and_port() {
        let s = served(&[], false, &[]);
        let check = |host, origin| s.check_origin(&headers(host, Some(origin)));
        assert_eq!(check("localhost:3000", "http://localhost:3000"), OriginCheck::SameOrigin);
        assert_eq!(check("localhost:3000", "https://localhost:3000"), OriginCheck::Refused, "scheme");
        assert_eq!(check("localhost:3000", "http://localhost:3001"), OriginCheck::Refused, "port");
        assert_eq!(
            check("evil.example:3000", "http://evil.example:3000"),
            OriginCheck::SameOrigin,
            "the Host check refuses this one"
        );
        assert_eq!(check("localhost:3000", "null"), OriginCheck::Refused);
        assert_eq!(s.check_origin(&headers("localhost:3000", None)), OriginCheck::None);
        // Behind a proxy that ends TLS, the public URL says the scheme.
        let proxied = served(&["https://meet.example.com"], false, &["https://app.example.com"]);
        assert_eq!(
            proxied.check_origin(&headers("meet.example.com", Some("https://meet.example.com"))),
            OriginCheck::SameOrigin
        );
        assert_eq!(
            proxied.check_origin(&headers("meet.example.com", Some("http://meet.example.com"))),
            OriginCheck::Refused
        );
        assert_eq!(
            proxied.check_origin(&headers("meet.example.com", Some("https://app.example.com"))),
            OriginCheck::Allowed
        );
    }

    #[test]
    fn the_redirect_goes_to_the_public_name_not_the_requests() {
        let s = served(&["https://meet.example.com"], true, &[]);
        assert_eq!(
            s.https_location(&headers("evil.example", None), 8443, "/r/x").as_deref(),
            Some("https://meet.example.com/r/x")
        );
        let unnamed = served(&[], true, &[]);
        assert_eq!(unnamed.https_location(&headers("evil.example", None), 8443, "/"), None);
        assert_eq!(
            unnamed.https_location(&headers("localhost:8080", None), 8443, "/a").as_deref(),
            Some("https://localhost:8443/a")
        );
    }

    #[test]
    fn public_urls_are_scheme_and_name() {
        assert_eq!(
            PublicUrl::parse("https://Meet.example.com:8443/").unwrap(),
            PublicUrl { https: true, host: "meet.example.com".into(), port: Some(8443) }
        );
        assert_eq!(PublicUrl::parse("http://[::1]:3000").unwrap().origin(), "http://[::1]:3000");
        assert_eq!(PublicUrl::parse("https://a.example:443").unwrap().origin(), "https://a.example");
        for bad in ["meet.example.com", "ftp://x", "https://x/path", "https://", "https://u@x", "https://x:99999"] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
