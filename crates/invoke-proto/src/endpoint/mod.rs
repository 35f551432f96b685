//! Endpoint resolution for the Lambda service
//! ([AWS docs](https://docs.aws.amazon.com/general/latest/gr/lambda-service.html))
//!
//! [`resolve_endpoint`] turns an [`EndpointConfig`] (region, FIPS and dual-stack switches, an optional
//! custom endpoint URL) into an [`Endpoint`]: scheme, host, port, path prefix and signing
//! region. It implements Lambda's `endpoint-rule-set-1.json` ([rules]) exactly, with the
//! partition table of botocore's `partitions.json` built in:
//!
//! 1. a custom endpoint together with FIPS or dual-stack is a configuration error, otherwise
//!    the custom URL is used verbatim (scheme, host, port and path prefix);
//! 2. else a region picks its partition and the host is
//!    `lambda[-fips].{region}.{dnsSuffix | dualStackDnsSuffix}`;
//! 3. else the region is missing.
//!
//! Pure: no DNS lookups, no environment reads. Reading `AWS_REGION`, `AWS_ENDPOINT_URL_LAMBDA`
//! and friends is the adapters' job.
//!
//! ```
//! use invoke_proto::{resolve_endpoint, EndpointConfig};
//!
//! let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("eu-west-1"))?;
//! assert_eq!(endpoint.to_string(), "https://lambda.eu-west-1.amazonaws.com");
//!
//! let local = resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9001"))?;
//! assert_eq!(local.port(), Some(9001));
//! assert_eq!(local.region(), "us-east-1"); // nothing configured: sign for us-east-1
//! assert!(local.region_defaulted());
//! let uri = local.uri_for("/2015-03-31/functions/f/response-streaming-invocations")?;
//! assert_eq!(
//!     uri.to_string(),
//!     "http://127.0.0.1:9001/2015-03-31/functions/f/response-streaming-invocations"
//! );
//! # Ok::<(), invoke_proto::EndpointError>(())
//! ```
//!
//! [rules]: https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/endpoint-rule-set-1.json

use std::fmt;

use bytes::Bytes;

use crate::sigv4::SigningScope;

mod partitions;
mod url;

use partitions::partition;
use url::parse_url;
pub use url::{Scheme, UrlProblem, redact_url};

/// The signing region used with a custom endpoint when no region is configured
///
/// The AWS SDKs need a region even with a custom endpoint; with none configured we sign
/// for `us-east-1` and let the caller warn about it (see
/// [`Endpoint::region_defaulted`]).
pub const DEFAULT_SIGNING_REGION: &str = "us-east-1";

/// What to resolve: the inputs of Lambda's endpoint rule set
///
/// A plain struct; fill the fields directly or chain the `with_*` setters on
/// [`EndpointConfig::default()`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The AWS region (`Region`), e.g. `us-east-1`; also the signing region
    pub region: Option<String>,
    /// Use the FIPS endpoint (`UseFIPS`)
    pub use_fips: bool,
    /// Use the dual-stack (IPv4 and IPv6) endpoint (`UseDualStack`)
    pub use_dual_stack: bool,
    /// A custom endpoint URL (`Endpoint`), e.g. `http://127.0.0.1:9001`
    pub custom: Option<String>,
}

impl EndpointConfig {
    /// Sets the region
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the FIPS switch
    #[must_use]
    pub fn with_fips(mut self, use_fips: bool) -> Self {
        self.use_fips = use_fips;
        self
    }

    /// Sets the dual-stack switch
    #[must_use]
    pub fn with_dual_stack(mut self, use_dual_stack: bool) -> Self {
        self.use_dual_stack = use_dual_stack;
        self
    }

    /// Sets a custom endpoint URL
    #[must_use]
    pub fn with_custom(mut self, url: impl Into<String>) -> Self {
        self.custom = Some(url.into());
        self
    }
}

/// A resolved endpoint: where to send requests and which region to sign for
///
/// Built by [`resolve_endpoint`]. `Display` prints it as a URL (`https://lambda.us-east-1.amazonaws.com`,
/// `http://127.0.0.1:9001`, `https://example.com/prefix`); [`Endpoint::uri_for`] joins it with a
/// request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
    path_prefix: String,
    region: String,
    region_defaulted: bool,
    /// [`authority`](Self::authority), written once: every request's URI and `Host` header
    /// share these bytes
    authority: Bytes,
}

impl Endpoint {
    /// The scheme, `http` or `https`
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as written in the URL: a DNS name, an IPv4 address, or an IPv6 address in
    /// brackets (`[::1]`)
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port if the URL names one; `None` means the scheme's default
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The port to connect to: the explicit one, else 80 or 443
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| self.scheme.default_port())
    }

    /// `host[:port]`, as it goes into the `Host` header
    pub fn authority(&self) -> String {
        std::str::from_utf8(&self.authority)
            .expect("written from a str")
            .to_owned()
    }

    /// [`authority`](Self::authority) as shared bytes (no copy)
    pub(crate) fn authority_bytes(&self) -> Bytes {
        self.authority.clone()
    }

    /// `host[:port]`, the port only when the URL names one
    fn make_authority(host: &str, port: Option<u16>) -> Bytes {
        match port {
            None => Bytes::copy_from_slice(host.as_bytes()),
            Some(port) => Bytes::from(format!("{host}:{port}")),
        }
    }

    /// The path of a custom endpoint URL exactly as given (`/prefix` for
    /// `https://example.com/prefix`, `/` for `https://example.com/`); empty when the URL has no
    /// path and for every endpoint built from a region
    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// The signing region: the configured region, or [`DEFAULT_SIGNING_REGION`] for a custom
    /// endpoint without one
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The SigV4 scope to sign requests to this endpoint with: service `lambda` in
    /// [`region`](Self::region)
    ///
    /// Lambda's endpoint rules never override the signing region or service, so this is
    /// the endpoint's region, including the [`DEFAULT_SIGNING_REGION`] stand-in.
    pub fn signing_scope(&self) -> SigningScope {
        SigningScope::lambda(self.region.clone())
    }

    /// True when no region was configured and [`Endpoint::region`] is the
    /// [`DEFAULT_SIGNING_REGION`] stand-in (only possible with a custom endpoint); callers
    /// should warn about it
    pub fn region_defaulted(&self) -> bool {
        self.region_defaulted
    }

    /// The full request URI for `path_and_query`, keeping the endpoint's path prefix
    ///
    /// `path_and_query` is empty or starts with `/` or `?`. It is joined the way botocore
    /// joins paths: an empty path or `/` leaves the prefix as it is (or `/` without one), and a
    /// prefix ending in `/` loses that slash before a path starting with `/`:
    ///
    /// | prefix | `path_and_query` | result path |
    /// |---|---|---|
    /// | (none) | `/2015-03-31/functions/f/invocations` | `/2015-03-31/functions/f/invocations` |
    /// | `/prefix` | `/2015-03-31/functions/f/invocations` | `/prefix/2015-03-31/functions/f/invocations` |
    /// | `/prefix/` | `/a?b=c` | `/prefix/a?b=c` |
    /// | `/prefix` | `/` | `/prefix` |
    ///
    /// # Errors
    ///
    /// [`EndpointError::InvalidRequestPath`] if `path_and_query` starts with anything else or
    /// holds characters a URI cannot carry (encode them first).
    pub fn uri_for(&self, path_and_query: &str) -> Result<http::Uri, EndpointError> {
        self.uri_with_authority(self.authority_bytes(), path_and_query)
    }

    /// [`uri_for`](Self::uri_for) given [`authority`](Self::authority) as bytes, which the
    /// URI then shares (a `Host` header can share them too)
    pub(crate) fn uri_with_authority(
        &self,
        authority: Bytes,
        path_and_query: &str,
    ) -> Result<http::Uri, EndpointError> {
        let invalid = || EndpointError::InvalidRequestPath {
            path_and_query: path_and_query.to_owned(),
        };
        let (path, query) = match path_and_query.find('?') {
            Some(at) => path_and_query.split_at(at),
            None => (path_and_query, ""),
        };
        if !(path.is_empty() || path.starts_with('/')) {
            return Err(invalid());
        }
        let prefix = self.path_prefix.as_str();
        let mut joined = String::with_capacity(prefix.len() + path_and_query.len() + 1);
        if path.is_empty() || path == "/" {
            joined.push_str(if prefix.is_empty() { "/" } else { prefix });
        } else {
            joined.push_str(prefix.strip_suffix('/').unwrap_or(prefix));
            joined.push_str(path);
        }
        joined.push_str(query);
        if !joined.bytes().all(|b| b.is_ascii_graphic()) || joined.contains('#') {
            return Err(invalid());
        }
        // built from its parts: only the authority and the path are parsed, no URL text
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(match self.scheme {
            Scheme::Http => http::uri::Scheme::HTTP,
            Scheme::Https => http::uri::Scheme::HTTPS,
        });
        parts.authority =
            Some(http::uri::Authority::from_maybe_shared(authority).map_err(|_| invalid())?);
        parts.path_and_query = Some(
            http::uri::PathAndQuery::from_maybe_shared(Bytes::from(joined))
                .map_err(|_| invalid())?,
        );
        http::Uri::from_parts(parts).map_err(|_| invalid())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path_prefix)
    }
}

/// A failure to resolve an endpoint, or to join one with a request path
///
/// The `Invalid Configuration: ...` and partition messages are the rule set's own error strings,
/// word for word, so they match other SDKs' output and the rule-set tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// A custom endpoint was combined with `use_fips`
    FipsWithCustomEndpoint,
    /// A custom endpoint was combined with `use_dual_stack`
    DualStackWithCustomEndpoint,
    /// Neither a region nor a custom endpoint was configured
    MissingRegion,
    /// FIPS and dual-stack were both asked for in a partition lacking one of them
    FipsAndDualStackUnsupported {
        /// The partition id, e.g. `aws-iso`
        partition: &'static str,
    },
    /// FIPS was asked for in a partition without it
    FipsUnsupported {
        /// The partition id
        partition: &'static str,
    },
    /// Dual-stack was asked for in a partition without it
    DualStackUnsupported {
        /// The partition id
        partition: &'static str,
    },
    /// The region is not a DNS label (1 to 63 ASCII letters, digits and hyphens, starting and
    /// ending with a letter or digit)
    ///
    /// The rule set has no such check; botocore rejects these regions when it creates a client,
    /// and a region outside this form cannot go into a host name.
    InvalidRegion {
        /// The region as configured
        region: String,
    },
    /// The custom endpoint URL cannot be used
    InvalidUrl {
        /// The URL as configured, any `user:password@` replaced by `***@` ([`redact_url`])
        url: String,
        /// What is wrong with it
        problem: UrlProblem,
    },
    /// The request path given to [`Endpoint::uri_for`] is not `/...` or `?...`, or has
    /// characters a URI cannot carry
    InvalidRequestPath {
        /// The path and query as given
        path_and_query: String,
    },
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FipsWithCustomEndpoint => {
                f.write_str("Invalid Configuration: FIPS and custom endpoint are not supported")
            }
            Self::DualStackWithCustomEndpoint => f.write_str(
                "Invalid Configuration: Dualstack and custom endpoint are not supported",
            ),
            Self::MissingRegion => f.write_str("Invalid Configuration: Missing Region"),
            Self::FipsAndDualStackUnsupported { .. } => f.write_str(
                "FIPS and DualStack are enabled, but this partition does not support one or both",
            ),
            Self::FipsUnsupported { .. } => {
                f.write_str("FIPS is enabled but this partition does not support FIPS")
            }
            Self::DualStackUnsupported { .. } => {
                f.write_str("DualStack is enabled but this partition does not support DualStack")
            }
            Self::InvalidRegion { region } => write!(
                f,
                "invalid region {region:?}: expected 1 to 63 ascii letters, digits and inner hyphens"
            ),
            Self::InvalidUrl { url, problem } => {
                write!(f, "invalid endpoint url {url:?}: {problem}")
            }
            Self::InvalidRequestPath { path_and_query } => write!(
                f,
                "invalid request path {path_and_query:?}: expected /path?query with uri characters"
            ),
        }
    }
}

impl std::error::Error for EndpointError {}

/// Resolves `config` to an endpoint by Lambda's endpoint rules
///
/// A configured region is checked first (see [`EndpointError::InvalidRegion`]). Then, in the
/// rule set's order: a custom endpoint is rejected with FIPS, then with dual-stack, and
/// otherwise used verbatim after parsing; a region is mapped to its partition (explicit region
/// lists first, then the partitions' region patterns, then `aws` as botocore does) and gives
/// `https://lambda[-fips].{region}.{suffix}`; with neither, the region is missing.
///
/// # Errors
///
/// - [`EndpointError::InvalidRegion`] for a region that cannot be a host label
/// - [`EndpointError::FipsWithCustomEndpoint`], [`EndpointError::DualStackWithCustomEndpoint`]
/// - [`EndpointError::InvalidUrl`] for a custom endpoint without `http`/`https` scheme or host,
///   with a bad port, user info, query or fragment
/// - [`EndpointError::MissingRegion`] with neither region nor custom endpoint
/// - the three partition errors if a partition lacks FIPS or dual-stack (none does today)
pub fn resolve_endpoint(config: &EndpointConfig) -> Result<Endpoint, EndpointError> {
    if let Some(region) = config.region.as_ref().filter(|r| !is_region_label(r)) {
        return Err(EndpointError::InvalidRegion {
            region: region.clone(),
        });
    }
    if let Some(url) = &config.custom {
        if config.use_fips {
            return Err(EndpointError::FipsWithCustomEndpoint);
        }
        if config.use_dual_stack {
            return Err(EndpointError::DualStackWithCustomEndpoint);
        }
        let parsed = parse_url(url).map_err(|problem| EndpointError::InvalidUrl {
            url: redact_url(url),
            problem,
        })?;
        let (region, region_defaulted) = match &config.region {
            Some(region) => (region.clone(), false),
            None => (DEFAULT_SIGNING_REGION.to_owned(), true),
        };
        return Ok(Endpoint {
            scheme: parsed.scheme,
            host: parsed.host.to_owned(),
            port: parsed.port,
            path_prefix: parsed.path.to_owned(),
            region,
            region_defaulted,
            authority: Endpoint::make_authority(parsed.host, parsed.port),
        });
    }
    let Some(region) = &config.region else {
        return Err(EndpointError::MissingRegion);
    };
    let host = regional_host("lambda", region, config.use_fips, config.use_dual_stack)?;
    Ok(Endpoint {
        scheme: Scheme::Https,
        authority: Endpoint::make_authority(&host, None),
        host,
        port: None,
        path_prefix: String::new(),
        region: region.clone(),
        region_defaulted: false,
    })
}

/// The partition of `region` (`aws`, `aws-cn`, `aws-us-gov`, ...), the second field of an
/// ARN, as botocore's endpoint rules find it (a region matching no partition is `aws`)
///
/// ```
/// use invoke_proto::partition_id;
/// assert_eq!(partition_id("eu-west-1"), "aws");
/// assert_eq!(partition_id("cn-north-1"), "aws-cn");
/// assert_eq!(partition_id("us-gov-west-1"), "aws-us-gov");
/// ```
pub fn partition_id(region: &str) -> &'static str {
    partition(region).id
}

/// The host of an AWS `service` in `region` by the partition table:
/// `{service}[-fips].{region}.{suffix}`, with the dual-stack suffix when asked
///
/// Lambda's own host comes from here (see [`resolve_endpoint`]); so can the hosts of the
/// services a credentials provider calls (`sts`, `portal.sso`).
///
/// # Errors
///
/// [`EndpointError::InvalidRegion`] for a region that cannot be a host label, and the three
/// partition errors if the region's partition lacks FIPS or dual-stack
pub fn regional_host(
    service: &str,
    region: &str,
    use_fips: bool,
    use_dual_stack: bool,
) -> Result<String, EndpointError> {
    if !is_region_label(region) {
        return Err(EndpointError::InvalidRegion {
            region: region.to_owned(),
        });
    }
    let p = partition(region);
    let (fips, suffix) = match (use_fips, use_dual_stack) {
        (true, true) if !(p.supports_fips && p.supports_dual_stack) => {
            return Err(EndpointError::FipsAndDualStackUnsupported { partition: p.id });
        }
        (true, true) => ("-fips", p.dual_stack_dns_suffix),
        (true, false) if !p.supports_fips => {
            return Err(EndpointError::FipsUnsupported { partition: p.id });
        }
        (true, false) => ("-fips", p.dns_suffix),
        (false, true) if !p.supports_dual_stack => {
            return Err(EndpointError::DualStackUnsupported { partition: p.id });
        }
        (false, true) => ("", p.dual_stack_dns_suffix),
        (false, false) => ("", p.dns_suffix),
    };
    Ok(format!("{service}{fips}.{region}.{suffix}"))
}

/// botocore's `validate_region_name`: `^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$`
fn is_region_label(region: &str) -> bool {
    let b = region.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

#[cfg(test)]
mod tests;
