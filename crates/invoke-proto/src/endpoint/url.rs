//! Parsing a custom endpoint URL: `scheme://host[:port][/path]`, checked part by part

use std::fmt;

/// URL scheme of an [`Endpoint`](super::Endpoint)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`, plain text (local emulators)
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// The scheme as written in a URL, lowercase
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port used when the URL names none: 80 or 443
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with a custom endpoint URL, see [`EndpointError::InvalidUrl`](super::EndpointError::InvalidUrl)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlProblem {
    /// No `scheme://` at the start (e.g. `localhost:9001`)
    MissingScheme,
    /// A scheme other than `http` or `https`
    UnsupportedScheme {
        /// The scheme as written
        scheme: String,
    },
    /// Nothing between `://` and the path
    MissingHost,
    /// The host is not a DNS name, IPv4 address or bracketed IPv6 address
    InvalidHost,
    /// The port is empty, not a number, or above 65535
    InvalidPort,
    /// The URL carries `user:password@`, which endpoints do not support
    UserInfo,
    /// The URL has a query string (`?...`); an endpoint may only add a path prefix
    Query,
    /// The URL has a fragment (`#...`)
    Fragment,
    /// The path has characters a URI cannot carry (spaces, control or non-ASCII characters)
    InvalidPath,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingScheme => f.write_str("missing scheme, expected http:// or https://"),
            Self::UnsupportedScheme { scheme } => {
                write!(f, "unsupported scheme {scheme:?}, expected http or https")
            }
            Self::MissingHost => f.write_str("missing host"),
            Self::InvalidHost => f.write_str("invalid host"),
            Self::InvalidPort => f.write_str("invalid port"),
            Self::UserInfo => f.write_str("user info (user:password@) is not supported"),
            Self::Query => f.write_str("a query string is not allowed"),
            Self::Fragment => f.write_str("a fragment is not allowed"),
            Self::InvalidPath => f.write_str("invalid path"),
        }
    }
}

/// The parts of a custom endpoint URL, borrowed from it
pub(super) struct ParsedUrl<'a> {
    pub(super) scheme: Scheme,
    pub(super) host: &'a str,
    pub(super) port: Option<u16>,
    pub(super) path: &'a str,
}

/// Splits `scheme://host[:port][/path]` and checks each part
pub(super) fn parse_url(url: &str) -> Result<ParsedUrl<'_>, UrlProblem> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(UrlProblem::MissingScheme);
    };
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.is_empty() {
        return Err(UrlProblem::MissingScheme);
    } else {
        return Err(UrlProblem::UnsupportedScheme {
            scheme: scheme.to_owned(),
        });
    };
    if rest.contains('#') {
        return Err(UrlProblem::Fragment);
    }
    if rest.contains('?') {
        return Err(UrlProblem::Query);
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(UrlProblem::UserInfo);
    }
    if authority.is_empty() {
        return Err(UrlProblem::MissingHost);
    }
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| UrlProblem::InvalidPort)?)
        }
        Some(_) => return Err(UrlProblem::InvalidPort),
    };
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UrlProblem::InvalidPath);
    }
    // Belt and braces: whatever passed the checks above must make a valid `http::Uri`
    http::Uri::try_from(url).map_err(|_| UrlProblem::InvalidHost)?;
    Ok(ParsedUrl {
        scheme,
        host,
        port,
        path,
    })
}

/// `host[:port]` or `[v6][:port]`; the port is returned unchecked
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlProblem> {
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or(UrlProblem::InvalidHost)?;
        let (host, rest) = authority.split_at(end + 1);
        let inner = &host[1..host.len() - 1];
        if !inner.contains(':')
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UrlProblem::InvalidHost);
        }
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(UrlProblem::InvalidHost),
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(UrlProblem::MissingHost);
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(UrlProblem::InvalidHost);
    }
    Ok((host, port))
}

/// `url` with any `user:password@` replaced by `***@`, for logs and errors
///
/// ```
/// assert_eq!(invoke_proto::redact_url("http://u:pw@proxy:3128"), "http://***@proxy:3128");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    // up to the last `@` anywhere: a password may hold an unencoded `/`, and a proxy URL has
    // no path worth showing
    match rest.rfind('@') {
        Some(at) => {
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}***@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}
