//! Which HTTP proxy to use, from the proxy environment variables

use std::net::IpAddr;
use std::time::Duration;

use invoke_proto::{Endpoint, Scheme, redact_url};

use crate::env::Env;

/// The proxy environment variables, captured once
///
/// Read as the AWS CLI reads them (through Python's `urllib`): `https_proxy` for an `https`
/// endpoint and `http_proxy` for an `http` one (`all_proxy` is not read: botocore takes only
/// the endpoint's scheme); each name in lower case first (a lower-case variable that is set
/// hides the upper-case one, even when blank), then upper case; `no_proxy` / `NO_PROXY` lists
/// hosts reached directly (comma-separated; `*` for all; a name matches itself and its
/// subdomains, a leading `.` is ignored; `host:port` entries match that port only; IPv6
/// addresses with or without brackets).
///
/// `Debug` hides the credentials a proxy URL may carry (see [`redact_url`]).
///
/// ```
/// use invoke_config::{Env, ProxyEnv};
/// use invoke_proto::{resolve_endpoint, EndpointConfig};
///
/// let env = ProxyEnv::from_env(&Env::from_pairs([
///     ("HTTPS_PROXY", "http://proxy.internal:3128"),
///     ("NO_PROXY", "localhost,.amazonaws.com"),
/// ]));
/// let aws = resolve_endpoint(&EndpointConfig::default().with_region("us-east-1"))?;
/// assert_eq!(env.proxy_for(&aws), None);
/// let other = resolve_endpoint(&EndpointConfig::default().with_custom("https://lambda.example.com"))?;
/// assert_eq!(env.proxy_for(&other), Some("http://proxy.internal:3128"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    http: Option<String>,
    https: Option<String>,
    no_proxy: Option<String>,
}

impl std::fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = |u: &Option<String>| u.as_deref().map(redact_url);
        f.debug_struct("ProxyEnv")
            .field("http", &url(&self.http))
            .field("https", &url(&self.https))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyEnv {
    /// No proxy at all
    pub fn none() -> Self {
        Self::default()
    }

    /// The proxy variables of an environment snapshot
    pub fn from_env(env: &Env) -> Self {
        let get = |lower: &str| {
            env.get_raw(lower)
                .or_else(|| env.get_raw(&lower.to_ascii_uppercase()))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Self {
            http: get("http_proxy"),
            https: get("https_proxy"),
            no_proxy: get("no_proxy"),
        }
    }

    /// A snapshot of this process's environment (the edge of a program; see
    /// [`Env::from_process`])
    pub fn from_process() -> Self {
        Self::from_env(&Env::from_process())
    }

    /// From `(name, value)` pairs, as if they were the environment
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self::from_env(&Env::from_pairs(vars))
    }

    /// The proxy URL for `endpoint`, `None` to connect directly
    pub fn proxy_for(&self, endpoint: &Endpoint) -> Option<&str> {
        let proxy = match endpoint.scheme() {
            Scheme::Https => self.https.as_ref(),
            Scheme::Http => self.http.as_ref(),
        }?;
        if self
            .no_proxy
            .as_deref()
            .is_some_and(|n| bypass(n, endpoint.host(), endpoint.port_or_default()))
        {
            return None;
        }
        Some(proxy)
    }

    /// The proxy URL for a credentials provider's request to `uri`: `None` for a
    /// [local host](is_local_host) (instance metadata, container endpoints, loopback: always
    /// reached directly) or a URI that is not absolute, else as
    /// [`proxy_for`](Self::proxy_for) decides for the endpoint at `uri`'s scheme and authority
    ///
    /// ```
    /// use invoke_config::ProxyEnv;
    ///
    /// let env = ProxyEnv::from_vars([("HTTPS_PROXY", "http://proxy:3128")]);
    /// let sts = "https://sts.eu-west-1.amazonaws.com/".parse()?;
    /// assert_eq!(env.proxy_for_uri(&sts), Some("http://proxy:3128"));
    /// let imds = "http://169.254.169.254/latest/api/token".parse()?;
    /// assert_eq!(env.proxy_for_uri(&imds), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proxy_for_uri(&self, uri: &http::Uri) -> Option<&str> {
        let (scheme, authority) = (uri.scheme_str()?, uri.authority()?);
        if is_local_host(authority.host()) {
            return None;
        }
        let target = invoke_proto::resolve_endpoint(
            &invoke_proto::EndpointConfig::default().with_custom(format!("{scheme}://{authority}")),
        )
        .ok()?;
        self.proxy_for(&target)
    }
}

/// Whether `no_proxy` lists `host` (on `port`)
fn bypass(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let host_port = format!("{host}:{port}");
    no_proxy.split(',').map(str::trim).any(|name| {
        if name == "*" {
            return true;
        }
        let name = name.trim_start_matches('.').to_ascii_lowercase();
        // `[::1]` and `[::1]:9001` as the host is compared: without brackets
        let name = match name.strip_prefix('[').and_then(|n| n.split_once(']')) {
            Some((ip, port)) => format!("{ip}{port}"),
            None => name,
        };
        if name.is_empty() {
            return false;
        }
        if name == host || name == host_port {
            return true;
        }
        let suffix = format!(".{name}");
        host.ends_with(&suffix) || host_port.ends_with(&suffix)
    })
}

/// The longest a credentials provider's transport should take to connect to a
/// [local host](is_local_host): such a host answers at once or is not there (the AWS SDKs give
/// instance metadata one second as well)
pub const LOCAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether `host` (a URI host, IPv6 in brackets or not) is instance metadata, a container
/// credentials endpoint (link-local) or loopback: reached directly whatever the proxy
/// variables say, and within [`LOCAL_CONNECT_TIMEOUT`]
///
/// ```
/// assert!(invoke_config::is_local_host("169.254.169.254"));
/// assert!(invoke_config::is_local_host("[fd00:ec2::254]"));
/// assert!(!invoke_config::is_local_host("sts.amazonaws.com"));
/// ```
pub fn is_local_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_link_local(),
        // fd00:ec2::254 is IMDS over IPv6; fe80::/10 is link-local
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback()
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip.segments()[..2] == [0xfd00, 0x0ec2]
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use invoke_proto::{EndpointConfig, resolve_endpoint};

    use super::*;

    fn ep(url: &str) -> Endpoint {
        resolve_endpoint(&EndpointConfig::default().with_custom(url)).unwrap()
    }

    #[test]
    fn scheme_selects_the_variable_lower_case_first() {
        let env = ProxyEnv::from_vars([
            ("HTTP_PROXY", "http://upper:1"),
            ("http_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://secure:2"),
        ]);
        assert_eq!(env.proxy_for(&ep("http://h:80")), Some("http://lower:1"));
        assert_eq!(env.proxy_for(&ep("https://h")), Some("http://secure:2"));
        // ALL_PROXY is not read (botocore takes only the endpoint's scheme): a desktop's
        // `ALL_PROXY=socks5://...` must not make clients fail to build
        let env = ProxyEnv::from_vars([("ALL_PROXY", "socks5://all:3"), ("https_proxy", " ")]);
        assert_eq!(env.proxy_for(&ep("https://h")), None);
        // a blank lower-case variable hides the upper-case one, as in urllib
        let env = ProxyEnv::from_vars([("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "")]);
        assert_eq!(env.proxy_for(&ep("https://h")), None);
        assert_eq!(ProxyEnv::none().proxy_for(&ep("https://h")), None);
    }

    #[test]
    fn credentials_in_proxy_urls_are_redacted() {
        let env = ProxyEnv::from_vars([("https_proxy", "http://user:s3cret@proxy:1")]);
        assert!(!format!("{env:?}").contains("s3cret"));
        let env = ProxyEnv::from_vars([
            ("HTTPS_PROXY", "http://user:s3cret@proxy:1"),
            ("http_proxy", "http://plain:2"),
            ("no_proxy", "localhost"),
        ]);
        assert_eq!(
            format!("{env:?}"),
            r#"ProxyEnv { http: Some("http://plain:2"), https: Some("http://***@proxy:1"), no_proxy: Some("localhost") }"#
        );
        assert_eq!(
            format!("{:?}", ProxyEnv::none()),
            "ProxyEnv { http: None, https: None, no_proxy: None }"
        );
    }

    #[test]
    fn no_proxy_matches_as_urllib_does() {
        let env = |n: &str| ProxyEnv::from_vars([("http_proxy", "http://p:1"), ("no_proxy", n)]);
        let direct = |n: &str, url: &str| env(n).proxy_for(&ep(url)).is_none();
        assert!(direct("*", "http://anything:1"));
        assert!(direct("127.0.0.1", "http://127.0.0.1:9001"));
        assert!(direct("localhost, 127.0.0.1:9001", "http://127.0.0.1:9001"));
        assert!(!direct("127.0.0.1:9002", "http://127.0.0.1:9001"));
        assert!(direct(".example.com", "http://lambda.example.com"));
        assert!(direct("example.com", "http://lambda.example.com"));
        assert!(direct("EXAMPLE.com", "http://example.com"));
        assert!(!direct("ample.com", "http://example.com"));
        assert!(!direct("", "http://example.com"));
        assert!(!direct(",,", "http://example.com"));
        assert!(direct("[::1]", "http://[::1]:9001"));
        assert!(direct("::1", "http://[::1]:9001"));
        assert!(direct("[::1]:9001", "http://[::1]:9001"));
        assert!(!direct("[::1]:9002", "http://[::1]:9001"));
        let upper = ProxyEnv::from_vars([("HTTP_PROXY", "http://p:1"), ("NO_PROXY", "h")]);
        assert_eq!(upper.proxy_for(&ep("http://h:1")), None);
    }

    #[test]
    fn metadata_container_and_loopback_hosts_are_local() {
        for host in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.170.23",
            "[fd00:ec2::254]",
            "[fd00:ec2::23]",
            "[fe80::1]",
            "127.0.0.1",
            "localhost",
            "[::1]",
            "::1",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "sts.amazonaws.com",
            "10.0.0.1",
            "[2001:db8::1]",
            "localhost.example",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }
}
