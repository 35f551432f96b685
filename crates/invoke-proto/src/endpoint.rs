//! Endpoint resolution for the Lambda service (protocol.md §6.1, §6.2)
//!
//! [`resolve`] turns an [`EndpointConfig`] (region, FIPS and dual-stack switches, an optional
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
//! and friends (protocol.md §6.2, §6.3) is the adapters' job.
//!
//! ```
//! use invoke_proto::endpoint::{resolve, EndpointConfig};
//!
//! let endpoint = resolve(&EndpointConfig::default().with_region("eu-west-1"))?;
//! assert_eq!(endpoint.to_string(), "https://lambda.eu-west-1.amazonaws.com");
//!
//! let local = resolve(&EndpointConfig::default().with_custom("http://127.0.0.1:9001"))?;
//! assert_eq!(local.port(), Some(9001));
//! assert_eq!(local.region(), "us-east-1"); // nothing configured: sign for us-east-1
//! assert!(local.region_defaulted());
//! let uri = local.uri_for("/2015-03-31/functions/f/response-streaming-invocations")?;
//! assert_eq!(
//!     uri.to_string(),
//!     "http://127.0.0.1:9001/2015-03-31/functions/f/response-streaming-invocations"
//! );
//! # Ok::<(), invoke_proto::endpoint::EndpointError>(())
//! ```
//!
//! [rules]: https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/endpoint-rule-set-1.json

use std::fmt;

/// The signing region used with a custom endpoint when no region is configured
///
/// protocol.md §6.3: sign with `us-east-1` and let the caller warn about it (see
/// [`Endpoint::region_defaulted`]).
pub const DEFAULT_SIGNING_REGION: &str = "us-east-1";

/// URL scheme of an [`Endpoint`]
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
/// Built by [`resolve`]. `Display` prints it as a URL (`https://lambda.us-east-1.amazonaws.com`,
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
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
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

    /// True when no region was configured and [`Endpoint::region`] is the
    /// [`DEFAULT_SIGNING_REGION`] stand-in (only possible with a custom endpoint); callers
    /// should warn about it (protocol.md §6.3)
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
        let full = format!("{}://{}{joined}", self.scheme, self.authority());
        http::Uri::try_from(full).map_err(|_| invalid())
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

/// What is wrong with a custom endpoint URL, see [`EndpointError::InvalidUrl`]
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

/// A failure to resolve an endpoint, or to join one with a request path
///
/// The `Invalid Configuration: ...` and partition messages are the rule set's own error strings,
/// word for word, so they match other SDKs' output and the rule-set tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// A custom endpoint was combined with `use_fips`
    #[error("Invalid Configuration: FIPS and custom endpoint are not supported")]
    FipsWithCustomEndpoint,
    /// A custom endpoint was combined with `use_dual_stack`
    #[error("Invalid Configuration: Dualstack and custom endpoint are not supported")]
    DualStackWithCustomEndpoint,
    /// Neither a region nor a custom endpoint was configured
    #[error("Invalid Configuration: Missing Region")]
    MissingRegion,
    /// FIPS and dual-stack were both asked for in a partition lacking one of them
    #[error("FIPS and DualStack are enabled, but this partition does not support one or both")]
    FipsAndDualStackUnsupported {
        /// The partition id, e.g. `aws-iso`
        partition: &'static str,
    },
    /// FIPS was asked for in a partition without it
    #[error("FIPS is enabled but this partition does not support FIPS")]
    FipsUnsupported {
        /// The partition id
        partition: &'static str,
    },
    /// Dual-stack was asked for in a partition without it
    #[error("DualStack is enabled but this partition does not support DualStack")]
    DualStackUnsupported {
        /// The partition id
        partition: &'static str,
    },
    /// The region is not a DNS label (1 to 63 ASCII letters, digits and hyphens, starting and
    /// ending with a letter or digit)
    ///
    /// The rule set has no such check; botocore rejects these regions when it creates a client,
    /// and a region outside this form cannot go into a host name.
    #[error("invalid region {region:?}: expected 1 to 63 ascii letters, digits and inner hyphens")]
    InvalidRegion {
        /// The region as configured
        region: String,
    },
    /// The custom endpoint URL cannot be used
    #[error("invalid endpoint url {url:?}: {problem}")]
    InvalidUrl {
        /// The URL as configured
        url: String,
        /// What is wrong with it
        problem: UrlProblem,
    },
    /// The request path given to [`Endpoint::uri_for`] is not `/...` or `?...`, or has
    /// characters a URI cannot carry
    #[error("invalid request path {path_and_query:?}: expected /path?query with uri characters")]
    InvalidRequestPath {
        /// The path and query as given
        path_and_query: String,
    },
}

/// Resolves `config` to an endpoint by Lambda's endpoint rules (protocol.md §6.1)
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
pub fn resolve(config: &EndpointConfig) -> Result<Endpoint, EndpointError> {
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
            url: url.clone(),
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
        });
    }
    let Some(region) = &config.region else {
        return Err(EndpointError::MissingRegion);
    };
    let p = partition(region);
    let (service, suffix) = match (config.use_fips, config.use_dual_stack) {
        (true, true) if !(p.supports_fips && p.supports_dual_stack) => {
            return Err(EndpointError::FipsAndDualStackUnsupported { partition: p.id });
        }
        (true, true) => ("lambda-fips", p.dual_stack_dns_suffix),
        (true, false) if !p.supports_fips => {
            return Err(EndpointError::FipsUnsupported { partition: p.id });
        }
        (true, false) => ("lambda-fips", p.dns_suffix),
        (false, true) if !p.supports_dual_stack => {
            return Err(EndpointError::DualStackUnsupported { partition: p.id });
        }
        (false, true) => ("lambda", p.dual_stack_dns_suffix),
        (false, false) => ("lambda", p.dns_suffix),
    };
    Ok(Endpoint {
        scheme: Scheme::Https,
        host: format!("{service}.{region}.{suffix}"),
        port: None,
        path_prefix: String::new(),
        region: region.clone(),
        region_defaulted: false,
    })
}

/// botocore's `validate_region_name`: `^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$`
fn is_region_label(region: &str) -> bool {
    let b = region.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

/// One partition of botocore's `partitions.json` (the outputs Lambda's rules use)
#[derive(Debug)]
struct Partition {
    id: &'static str,
    dns_suffix: &'static str,
    dual_stack_dns_suffix: &'static str,
    supports_fips: bool,
    supports_dual_stack: bool,
    /// The explicit `regions` keys
    regions: &'static [&'static str],
    /// `regionRegex` is `^(p1|p2|...)\w+\-\d+$` with these literal alternatives (each ending in
    /// `-`); see [`matches_region_regex`]
    regex_prefixes: &'static [&'static str],
}

/// botocore `partitions.json`, in file order
const PARTITIONS: [Partition; 8] = [
    Partition {
        id: "aws",
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "aws-global",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
        // ^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$
        regex_prefixes: &[
            "us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-",
        ],
    },
    Partition {
        id: "aws-cn",
        dns_suffix: "amazonaws.com.cn",
        dual_stack_dns_suffix: "api.amazonwebservices.com.cn",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-cn-global", "cn-north-1", "cn-northwest-1"],
        // ^cn\-\w+\-\d+$
        regex_prefixes: &["cn-"],
    },
    Partition {
        id: "aws-eusc",
        dns_suffix: "amazonaws.eu",
        dual_stack_dns_suffix: "api.amazonwebservices.eu",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["eusc-de-east-1"],
        // ^eusc\-(de)\-\w+\-\d+$
        regex_prefixes: &["eusc-de-"],
    },
    Partition {
        id: "aws-iso",
        dns_suffix: "c2s.ic.gov",
        dual_stack_dns_suffix: "api.aws.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-global", "us-iso-east-1", "us-iso-west-1"],
        // ^us\-iso\-\w+\-\d+$
        regex_prefixes: &["us-iso-"],
    },
    Partition {
        id: "aws-iso-b",
        dns_suffix: "sc2s.sgov.gov",
        dual_stack_dns_suffix: "api.aws.scloud",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-b-global", "us-isob-east-1", "us-isob-west-1"],
        // ^us\-isob\-\w+\-\d+$
        regex_prefixes: &["us-isob-"],
    },
    Partition {
        id: "aws-iso-e",
        dns_suffix: "cloud.adc-e.uk",
        dual_stack_dns_suffix: "api.cloud-aws.adc-e.uk",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-e-global", "eu-isoe-west-1"],
        // ^eu\-isoe\-\w+\-\d+$
        regex_prefixes: &["eu-isoe-"],
    },
    Partition {
        id: "aws-iso-f",
        dns_suffix: "csp.hci.ic.gov",
        dual_stack_dns_suffix: "api.aws.hci.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-f-global", "us-isof-east-1", "us-isof-south-1"],
        // ^us\-isof\-\w+\-\d+$
        regex_prefixes: &["us-isof-"],
    },
    Partition {
        id: "aws-us-gov",
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-us-gov-global", "us-gov-east-1", "us-gov-west-1"],
        // ^us\-gov\-\w+\-\d+$
        regex_prefixes: &["us-gov-"],
    },
];

/// The `aws.partition` function as botocore implements it
///
/// First every partition's explicit region list, then every partition's `regionRegex`, both in
/// file order; a region matching nothing gets `aws` (botocore; the Smithy spec would return no
/// partition).
fn partition(region: &str) -> &'static Partition {
    PARTITIONS
        .iter()
        .find(|p| p.regions.contains(&region))
        .or_else(|| PARTITIONS.iter().find(|p| matches_region_regex(p, region)))
        .unwrap_or(&PARTITIONS[0])
}

/// `^(prefix alternatives)\w+\-\d+$`, by hand
///
/// `\w` cannot match `-`, so after the prefix the rest is exactly one run of word characters,
/// one `-` and one run of digits. `\w` and `\d` are taken as ASCII: regions reaching here passed
/// [`is_region_label`], so Python's Unicode classes would match the same strings.
fn matches_region_regex(p: &Partition, region: &str) -> bool {
    p.regex_prefixes.iter().any(|prefix| {
        region.strip_prefix(prefix).is_some_and(|rest| {
            rest.split_once('-').is_some_and(|(word, digits)| {
                !word.is_empty()
                    && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
            })
        })
    })
}

/// The parts of a custom endpoint URL, borrowed from it
struct ParsedUrl<'a> {
    scheme: Scheme,
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
}

/// Splits `scheme://host[:port][/path]` and checks each part
fn parse_url(url: &str) -> Result<ParsedUrl<'_>, UrlProblem> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn url(region: &str, fips: bool, dual_stack: bool) -> String {
        let config = EndpointConfig::default()
            .with_region(region)
            .with_fips(fips)
            .with_dual_stack(dual_stack);
        resolve(&config).unwrap().to_string()
    }

    fn custom(url: &str) -> Result<Endpoint, EndpointError> {
        resolve(&EndpointConfig::default().with_custom(url))
    }

    fn url_problem(url: &str) -> UrlProblem {
        match custom(url) {
            Err(EndpointError::InvalidUrl { problem, .. }) => problem,
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }

    #[test]
    fn protocol_md_table() {
        #[rustfmt::skip]
        let table = [
            ("us-east-1", false, false, "https://lambda.us-east-1.amazonaws.com"),
            ("us-east-1", true, false, "https://lambda-fips.us-east-1.amazonaws.com"),
            ("us-east-1", false, true, "https://lambda.us-east-1.api.aws"),
            ("us-east-1", true, true, "https://lambda-fips.us-east-1.api.aws"),
            ("cn-north-1", false, false, "https://lambda.cn-north-1.amazonaws.com.cn"),
            ("cn-north-1", false, true, "https://lambda.cn-north-1.api.amazonwebservices.com.cn"),
            ("cn-north-1", true, true, "https://lambda-fips.cn-north-1.api.amazonwebservices.com.cn"),
            ("us-gov-west-1", true, false, "https://lambda-fips.us-gov-west-1.amazonaws.com"),
            ("us-gov-east-1", false, true, "https://lambda.us-gov-east-1.api.aws"),
            ("us-iso-east-1", false, false, "https://lambda.us-iso-east-1.c2s.ic.gov"),
            ("us-isob-east-1", true, false, "https://lambda-fips.us-isob-east-1.sc2s.sgov.gov"),
        ];
        for (region, fips, dual_stack, want) in table {
            assert_eq!(
                url(region, fips, dual_stack),
                want,
                "{region} {fips} {dual_stack}"
            );
        }
        let ep = resolve(
            &EndpointConfig::default()
                .with_region("eu-west-1")
                .with_custom("https://example.com"),
        )
        .unwrap();
        assert_eq!(ep.to_string(), "https://example.com");
        assert_eq!(ep.region(), "eu-west-1");
        assert!(!ep.region_defaulted());
    }

    #[test]
    fn region_endpoint_parts() {
        let ep = resolve(&EndpointConfig::default().with_region("us-west-2")).unwrap();
        assert_eq!(ep.scheme(), Scheme::Https);
        assert_eq!(ep.host(), "lambda.us-west-2.amazonaws.com");
        assert_eq!(ep.port(), None);
        assert_eq!(ep.port_or_default(), 443);
        assert_eq!(ep.authority(), "lambda.us-west-2.amazonaws.com");
        assert_eq!(ep.path_prefix(), "");
        assert_eq!(ep.region(), "us-west-2");
        assert!(!ep.region_defaulted());
        assert_eq!(
            ep.uri_for("/2015-03-31/functions/f/response-streaming-invocations?Qualifier=1")
                .unwrap()
                .to_string(),
            "https://lambda.us-west-2.amazonaws.com/2015-03-31/functions/f/response-streaming-invocations?Qualifier=1"
        );
    }

    #[test]
    fn partitions_by_list_regex_and_fallback() {
        let cases = [
            // explicit lists, including names the regexes do not match
            ("aws-global", "aws"),
            ("aws-cn-global", "aws-cn"),
            ("aws-us-gov-global", "aws-us-gov"),
            ("aws-iso-global", "aws-iso"),
            ("aws-iso-b-global", "aws-iso-b"),
            ("aws-iso-e-global", "aws-iso-e"),
            ("aws-iso-f-global", "aws-iso-f"),
            ("eusc-de-east-1", "aws-eusc"),
            // regexes
            ("mx-central-9", "aws"),
            ("us-gov-south-7", "aws-us-gov"),
            ("cn-south-2", "aws-cn"),
            ("us-iso-north-3", "aws-iso"),
            ("us-isob-west-2", "aws-iso-b"),
            ("eu-isoe-north-1", "aws-iso-e"),
            ("us-isof-west-5", "aws-iso-f"),
            ("eusc-de-west-2", "aws-eusc"),
            // nothing matches: botocore falls back to aws
            ("xx-foo-1", "aws"),
            ("eusc-fr-east-1", "aws"),
            ("us-east-1a", "aws"),
            ("us-east", "aws"),
            ("US-EAST-1", "aws"),
            ("cn-north-1-extra", "aws"),
            ("local", "aws"),
        ];
        for (region, want) in cases {
            assert_eq!(partition(region).id, want, "{region}");
        }
        // \w does not match '-': us-gov-west-1 is not an `aws` region
        assert!(!matches_region_regex(&PARTITIONS[0], "us-gov-west-1"));
        assert!(matches_region_regex(&PARTITIONS[0], "us-west_2-1"));
    }

    #[test]
    fn every_partition_suffix() {
        #[rustfmt::skip]
        let table = [
            ("eusc-de-east-1", false, false, "https://lambda.eusc-de-east-1.amazonaws.eu"),
            ("eusc-de-east-1", true, true, "https://lambda-fips.eusc-de-east-1.api.amazonwebservices.eu"),
            ("us-iso-east-1", false, true, "https://lambda.us-iso-east-1.api.aws.ic.gov"),
            ("us-isob-east-1", false, true, "https://lambda.us-isob-east-1.api.aws.scloud"),
            ("eu-isoe-west-1", false, false, "https://lambda.eu-isoe-west-1.cloud.adc-e.uk"),
            ("eu-isoe-west-1", true, true, "https://lambda-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk"),
            ("us-isof-south-1", false, false, "https://lambda.us-isof-south-1.csp.hci.ic.gov"),
            ("us-isof-south-1", false, true, "https://lambda.us-isof-south-1.api.aws.hci.ic.gov"),
            ("xx-foo-1", true, false, "https://lambda-fips.xx-foo-1.amazonaws.com"),
        ];
        for (region, fips, dual_stack, want) in table {
            assert_eq!(
                url(region, fips, dual_stack),
                want,
                "{region} {fips} {dual_stack}"
            );
        }
    }

    #[test]
    fn rule_set_errors() {
        let err = |c: EndpointConfig| resolve(&c).unwrap_err();
        let base = EndpointConfig::default().with_custom("https://example.com");
        assert_eq!(
            err(base.clone().with_fips(true)),
            EndpointError::FipsWithCustomEndpoint
        );
        // FIPS is checked before dual-stack
        assert_eq!(
            err(base.clone().with_fips(true).with_dual_stack(true)),
            EndpointError::FipsWithCustomEndpoint
        );
        assert_eq!(
            err(base.with_dual_stack(true)).to_string(),
            "Invalid Configuration: Dualstack and custom endpoint are not supported"
        );
        // the configuration errors come before the URL is looked at
        assert_eq!(
            err(EndpointConfig::default()
                .with_custom("not a url")
                .with_fips(true)),
            EndpointError::FipsWithCustomEndpoint
        );
        assert_eq!(
            err(EndpointConfig::default()).to_string(),
            "Invalid Configuration: Missing Region"
        );
        assert_eq!(
            err(EndpointConfig::default()
                .with_fips(true)
                .with_dual_stack(true)),
            EndpointError::MissingRegion
        );
    }

    #[test]
    fn invalid_regions() {
        for region in [
            "",
            "-us-east-1",
            "us-east-1-",
            "us east 1",
            "us-east-1/x",
            "us_east_1",
            "us-east-1.",
            "us-east-1\n",
            "ü-east-1",
            &"a".repeat(64),
        ] {
            for with_custom in [false, true] {
                let mut config = EndpointConfig::default().with_region(region);
                if with_custom {
                    config = config.with_custom("http://localhost:9001");
                }
                assert_eq!(
                    resolve(&config),
                    Err(EndpointError::InvalidRegion {
                        region: region.to_owned()
                    }),
                    "{region:?}"
                );
            }
        }
        assert_eq!(
            url(&"a".repeat(63), false, false),
            format!("https://lambda.{}.amazonaws.com", "a".repeat(63))
        );
        assert_eq!(url("7", false, false), "https://lambda.7.amazonaws.com");
    }

    #[test]
    fn custom_with_port() {
        let ep = custom("http://127.0.0.1:9001").unwrap();
        assert_eq!(ep.scheme(), Scheme::Http);
        assert_eq!(ep.host(), "127.0.0.1");
        assert_eq!(ep.port(), Some(9001));
        assert_eq!(ep.port_or_default(), 9001);
        assert_eq!(ep.authority(), "127.0.0.1:9001");
        assert_eq!(ep.path_prefix(), "");
        assert_eq!(ep.region(), DEFAULT_SIGNING_REGION);
        assert!(ep.region_defaulted());
        assert_eq!(ep.to_string(), "http://127.0.0.1:9001");
        assert_eq!(
            ep.uri_for("/2015-03-31/functions/f/response-streaming-invocations")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:9001/2015-03-31/functions/f/response-streaming-invocations"
        );
        assert_eq!(
            ep.uri_for("").unwrap().to_string(),
            "http://127.0.0.1:9001/"
        );
        assert_eq!(
            ep.uri_for("?a=b").unwrap().to_string(),
            "http://127.0.0.1:9001/?a=b"
        );
        let ep = custom("http://localhost").unwrap();
        assert_eq!(ep.port(), None);
        assert_eq!(ep.port_or_default(), 80);
    }

    #[test]
    fn custom_with_path_prefix() {
        let ep = custom("https://example.com/prefix").unwrap();
        assert_eq!(ep.scheme(), Scheme::Https);
        assert_eq!(ep.host(), "example.com");
        assert_eq!(ep.port(), None);
        assert_eq!(ep.path_prefix(), "/prefix");
        assert_eq!(ep.to_string(), "https://example.com/prefix");
        let cases = [
            (
                "/2015-03-31/functions/f/invocations",
                "/prefix/2015-03-31/functions/f/invocations",
            ),
            ("/a?b=c", "/prefix/a?b=c"),
            ("/", "/prefix"),
            ("", "/prefix"),
            ("?x=1", "/prefix?x=1"),
        ];
        for (path, want) in cases {
            let uri = ep.uri_for(path).unwrap();
            assert_eq!(
                uri.to_string(),
                format!("https://example.com{want}"),
                "{path}"
            );
        }
        let ep = custom("https://example.com/prefix/").unwrap();
        assert_eq!(ep.path_prefix(), "/prefix/");
        assert_eq!(ep.to_string(), "https://example.com/prefix/");
        assert_eq!(
            ep.uri_for("/a").unwrap().to_string(),
            "https://example.com/prefix/a"
        );
        assert_eq!(
            ep.uri_for("/").unwrap().to_string(),
            "https://example.com/prefix/"
        );
        let ep = custom("https://example.com/").unwrap();
        assert_eq!(ep.path_prefix(), "/");
        assert_eq!(
            ep.uri_for("/a").unwrap().to_string(),
            "https://example.com/a"
        );
        let ep = custom("https://example.com:8443/a/b").unwrap();
        assert_eq!(ep.authority(), "example.com:8443");
        assert_eq!(
            ep.uri_for("/c").unwrap().to_string(),
            "https://example.com:8443/a/b/c"
        );
    }

    #[test]
    fn custom_hosts() {
        let ep = custom("http://[::1]:9001/x").unwrap();
        assert_eq!(ep.host(), "[::1]");
        assert_eq!(ep.port(), Some(9001));
        assert_eq!(ep.to_string(), "http://[::1]:9001/x");
        assert_eq!(
            ep.uri_for("/y").unwrap().to_string(),
            "http://[::1]:9001/x/y"
        );
        let ep = custom("HTTPS://Lambda.Example_Host.internal").unwrap();
        assert_eq!(ep.scheme(), Scheme::Https);
        assert_eq!(ep.host(), "Lambda.Example_Host.internal");
        assert_eq!(ep.to_string(), "https://Lambda.Example_Host.internal");
        assert_eq!(custom("http://h:65535").unwrap().port(), Some(65535));
        assert_eq!(custom("http://h:0080").unwrap().port(), Some(80));
    }

    #[test]
    fn invalid_urls() {
        let cases = [
            ("", UrlProblem::MissingScheme),
            ("example.com", UrlProblem::MissingScheme),
            ("localhost:9001", UrlProblem::MissingScheme),
            ("://example.com", UrlProblem::MissingScheme),
            (
                "ftp://example.com",
                UrlProblem::UnsupportedScheme {
                    scheme: "ftp".into(),
                },
            ),
            (
                "httpx://example.com",
                UrlProblem::UnsupportedScheme {
                    scheme: "httpx".into(),
                },
            ),
            ("https://", UrlProblem::MissingHost),
            ("https:///path", UrlProblem::MissingHost),
            ("https://:443", UrlProblem::MissingHost),
            ("https://example.com?x=1", UrlProblem::Query),
            ("https://example.com/p?x=1", UrlProblem::Query),
            ("https://example.com#frag", UrlProblem::Fragment),
            ("https://example.com/p#", UrlProblem::Fragment),
            ("https://user:pw@example.com", UrlProblem::UserInfo),
            ("https://example.com:", UrlProblem::InvalidPort),
            ("https://example.com:65536", UrlProblem::InvalidPort),
            ("https://example.com:-1", UrlProblem::InvalidPort),
            ("https://example.com:80a", UrlProblem::InvalidPort),
            ("https://example.com:1:2", UrlProblem::InvalidPort),
            ("https://exa mple.com", UrlProblem::InvalidHost),
            ("https://exämple.com", UrlProblem::InvalidHost),
            ("https://::1", UrlProblem::MissingHost),
            ("https://[::1", UrlProblem::InvalidHost),
            ("https://[]", UrlProblem::InvalidHost),
            ("https://[zz::1]", UrlProblem::InvalidHost),
            ("https://[::1]x", UrlProblem::InvalidHost),
            ("https://[::1]:", UrlProblem::InvalidPort),
            ("https://example.com/a b", UrlProblem::InvalidPath),
            ("https://example.com/ä", UrlProblem::InvalidPath),
            (
                " https://example.com",
                UrlProblem::UnsupportedScheme {
                    scheme: " https".into(),
                },
            ),
            ("https://example.com ", UrlProblem::InvalidHost),
        ];
        for (url, want) in cases {
            assert_eq!(url_problem(url), want, "{url:?}");
        }
        let err = custom("ftp://example.com").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid endpoint url "ftp://example.com": unsupported scheme "ftp", expected http or https"#
        );
    }

    #[test]
    fn invalid_request_paths() {
        let ep = custom("https://example.com/prefix").unwrap();
        for path in ["relative", "/a b", "/a#b", "/\u{e4}", "*", "/a\n"] {
            assert_eq!(
                ep.uri_for(path),
                Err(EndpointError::InvalidRequestPath {
                    path_and_query: path.to_owned()
                }),
                "{path:?}"
            );
        }
    }
}
