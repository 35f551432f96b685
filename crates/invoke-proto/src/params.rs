//! The operation's parameters and their validation; no HTTP types, no wire bytes

use std::fmt;

use bytes::Bytes;

use crate::endpoint::EndpointError;

/// Largest request payload for a synchronous invoke: 6 MB, read as 6 MiB (6,291,456 bytes),
/// the figure the service's own error messages use
pub const MAX_PAYLOAD_LEN: usize = 6 * 1024 * 1024;
/// Largest `X-Amz-Client-Context` value: 3,583 bytes of base64 text
///
/// The documentation says "up to 3,583 bytes of base64-encoded data" and the model puts no
/// length on the member. We enforce the limit on the header value, i.e. the base64 text
/// (decoded JSON of at most 2,685 bytes), the reading under which a request we accept is
/// never refused for this reason.
pub const MAX_CLIENT_CONTEXT_LEN: usize = 3583;
/// Longest `FunctionName` (a full ARN with qualifier)
pub const MAX_FUNCTION_NAME_LEN: usize = 256;
/// Longest bare function name inside any form
pub const MAX_BARE_NAME_LEN: usize = 64;
/// Longest `Qualifier`
pub const MAX_QUALIFIER_LEN: usize = 128;
/// Longest `TenantId`
pub const MAX_TENANT_ID_LEN: usize = 256;

/// `X-Amz-Invocation-Type` of `InvokeWithResponseStream`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InvocationType {
    /// Run the function and stream its response (the default)
    #[default]
    RequestResponse,
    /// Check parameters and permissions only; the service answers 204
    DryRun,
}

impl InvocationType {
    /// The header value
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RequestResponse => "RequestResponse",
            Self::DryRun => "DryRun",
        }
    }
}

/// `X-Amz-Log-Type`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LogType {
    /// No log (the default)
    #[default]
    None,
    /// The last 4 KB of the execution log, base64, in `InvokeComplete.LogResult`
    Tail,
}

impl LogType {
    /// The header value
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Tail => "Tail",
        }
    }
}

/// A parameter of the operation, as named in errors
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parameter {
    /// `FunctionName`
    FunctionName,
    /// `Qualifier`
    Qualifier,
    /// `ClientContext`
    ClientContext,
    /// `TenantId`
    TenantId,
    /// `Payload`
    Payload,
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FunctionName => "FunctionName",
            Self::Qualifier => "Qualifier",
            Self::ClientContext => "ClientContext",
            Self::TenantId => "TenantId",
            Self::Payload => "Payload",
        })
    }
}

/// Invalid parameters, found before anything is sent
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A required or non-empty parameter is empty
    Empty {
        /// Which parameter
        parameter: Parameter,
    },
    /// A parameter is longer than the model allows
    TooLong {
        /// Which parameter
        parameter: Parameter,
        /// Its length (for `ClientContext`: the base64 text)
        len: usize,
        /// The maximum
        max: usize,
    },
    /// A parameter does not match the model's pattern
    Pattern {
        /// Which parameter
        parameter: Parameter,
        /// The rejected value
        value: String,
        /// What the value must look like
        rule: &'static str,
    },
    /// `FunctionName` carries a `:qualifier` suffix that differs from `Qualifier`
    QualifierConflict {
        /// The suffix of `FunctionName`
        in_name: String,
        /// The `Qualifier` parameter
        qualifier: String,
    },
    /// The endpoint cannot hold the request URI
    Endpoint(EndpointError),
    /// A header value of the request holds bytes a header cannot carry
    HeaderValue {
        /// The header's name
        name: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty { parameter } => write!(f, "{parameter} must not be empty"),
            Self::TooLong {
                parameter,
                len,
                max,
            } => write!(f, "{parameter} is {len} bytes, over the maximum of {max}"),
            Self::Pattern {
                parameter,
                value,
                rule,
            } => write!(f, "{parameter} {value:?} does not match {rule}"),
            Self::QualifierConflict { in_name, qualifier } => write!(
                f,
                "FunctionName qualifier {in_name:?} conflicts with Qualifier {qualifier:?}"
            ),
            Self::Endpoint(e) => write!(f, "cannot build the request URI: {e}"),
            Self::HeaderValue { name } => write!(f, "the {name} header value is not valid"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Endpoint(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EndpointError> for BuildError {
    fn from(e: EndpointError) -> Self {
        Self::Endpoint(e)
    }
}

/// The input of `InvokeWithResponseStream`: all seven parameters
///
/// [api]: https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InvokeParams {
    function_name: String,
    payload: Bytes,
    invocation_type: Option<InvocationType>,
    log_type: Option<LogType>,
    client_context: Option<Bytes>,
    qualifier: Option<String>,
    tenant_id: Option<String>,
}

impl fmt::Debug for InvokeParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokeParams")
            .field("function_name", &self.function_name)
            .field("payload_len", &self.payload.len())
            .field("invocation_type", &self.invocation_type)
            .field("log_type", &self.log_type)
            .field(
                "client_context_len",
                &self.client_context.as_ref().map(Bytes::len),
            )
            .field("qualifier", &self.qualifier)
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

impl InvokeParams {
    /// Parameters for invoking `function_name` (name, partial ARN or full ARN, optionally
    /// with a `:qualifier`) with `payload` (the event, normally JSON; may be empty)
    pub fn new(function_name: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            function_name: function_name.into(),
            payload: payload.into(),
            ..Self::default()
        }
    }

    /// Sets `X-Amz-Invocation-Type`
    #[must_use]
    pub fn invocation_type(mut self, t: InvocationType) -> Self {
        self.invocation_type = Some(t);
        self
    }

    /// Sets `X-Amz-Log-Type`
    #[must_use]
    pub fn log_type(mut self, t: LogType) -> Self {
        self.log_type = Some(t);
        self
    }

    /// Sets the client context: the raw JSON (for example `{"custom":{"k":"v"}}`), sent
    /// base64-encoded in `X-Amz-Client-Context`
    #[must_use]
    pub fn client_context(mut self, json: impl Into<Bytes>) -> Self {
        self.client_context = Some(json.into());
        self
    }

    /// Sets `Qualifier`: a version, an alias, `$LATEST` or `$LATEST.PUBLISHED`
    #[must_use]
    pub fn qualifier(mut self, q: impl Into<String>) -> Self {
        self.qualifier = Some(q.into());
        self
    }

    /// Sets `X-Amz-Tenant-Id` (required by tenant-isolated functions)
    #[must_use]
    pub fn tenant_id(mut self, t: impl Into<String>) -> Self {
        self.tenant_id = Some(t.into());
        self
    }

    /// The function name as given
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// The payload
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The invocation type, if set
    pub fn get_invocation_type(&self) -> Option<InvocationType> {
        self.invocation_type
    }

    /// The log type, if set
    pub fn get_log_type(&self) -> Option<LogType> {
        self.log_type
    }

    /// The client context JSON, if set
    pub fn get_client_context(&self) -> Option<&Bytes> {
        self.client_context.as_ref()
    }

    /// The qualifier, if set
    pub fn get_qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }

    /// The tenant id, if set
    pub fn get_tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// The client context as sent: base64 of the JSON
    pub fn client_context_base64(&self) -> Option<String> {
        use base64::Engine as _;
        self.client_context
            .as_ref()
            .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
    }

    /// Checks every parameter against the model's rules
    ///
    /// # Errors
    ///
    /// The first rule broken, naming the parameter.
    pub fn validate(&self) -> Result<(), BuildError> {
        let in_name_qualifier = check_function_name(&self.function_name)?;
        if let Some(q) = &self.qualifier {
            check_qualifier(q)?;
            if let Some(n) = in_name_qualifier
                && n != q
            {
                return Err(BuildError::QualifierConflict {
                    in_name: n.to_owned(),
                    qualifier: q.clone(),
                });
            }
        }
        // the base64 length, counted without encoding (a huge context is not copied first)
        let b64_len = |n: usize| n.div_ceil(3).saturating_mul(4);
        if let Some(c) = &self.client_context
            && b64_len(c.len()) > MAX_CLIENT_CONTEXT_LEN
        {
            return Err(BuildError::TooLong {
                parameter: Parameter::ClientContext,
                len: b64_len(c.len()),
                max: MAX_CLIENT_CONTEXT_LEN,
            });
        }
        if let Some(t) = &self.tenant_id {
            check_tenant_id(t)?;
        }
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(BuildError::TooLong {
                parameter: Parameter::Payload,
                len: self.payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        Ok(())
    }
}

const FUNCTION_NAME_RULE: &str = "a function name, partial ARN or full ARN: \
     [arn:<partition>:lambda:<region>:<account>:|[<region>:][<account>:]][function:]<name>[:<qualifier>] \
     with <name> of [A-Za-z0-9-_.] and <qualifier> $LATEST, $LATEST.PUBLISHED or [A-Za-z0-9-_]";
const QUALIFIER_RULE: &str = "$LATEST, $LATEST.PUBLISHED or [A-Za-z0-9-_$]+";
const TENANT_ID_RULE: &str =
    "[A-Za-z0-9._:/=+@ -]+, not starting or ending with a space (HTTP trims header values)";

fn check_len(parameter: Parameter, v: &str, max: usize) -> Result<(), BuildError> {
    if v.is_empty() {
        return Err(BuildError::Empty { parameter });
    }
    if v.len() > max {
        return Err(BuildError::TooLong {
            parameter,
            len: v.len(),
            max,
        });
    }
    Ok(())
}

/// The parts of a `FunctionName` in any of its forms (name, partial ARN, full ARN)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionNameParts<'a> {
    /// The partition of a full ARN (`aws`, `aws-cn`, ...; empty in `arn::lambda:...`, which
    /// the model's pattern allows)
    pub partition: Option<&'a str>,
    /// The region, from a full ARN or a `<region>:` prefix
    pub region: Option<&'a str>,
    /// The 12-digit account id
    pub account: Option<&'a str>,
    /// The bare function name
    pub name: &'a str,
    /// The `:qualifier` suffix
    pub qualifier: Option<&'a str>,
}

/// Splits a `FunctionName` that matches the model's pattern into its parts
///
/// ```
/// use invoke_proto::parse_function_name;
/// let p = parse_function_name("arn:aws:lambda:us-east-1:123456789012:function:f:prod").unwrap();
/// assert_eq!((p.name, p.qualifier, p.region), ("f", Some("prod"), Some("us-east-1")));
/// assert_eq!(p.partition, Some("aws"));
/// assert_eq!(parse_function_name("us-east-1:f").unwrap().partition, None);
/// assert!(parse_function_name("not a name").is_none());
/// ```
pub fn parse_function_name(name: &str) -> Option<FunctionNameParts<'_>> {
    // no valid name has more than 8 parts:
    // `arn:<partition>:lambda:<region>:<account>:function:<name>:<qualifier>`
    let mut parts = [""; 8];
    let mut n = 0;
    for part in name.split(':') {
        *parts.get_mut(n)? = part;
        n += 1;
    }
    match_function_name(&parts[..n])
}

/// Checks `FunctionName`; returns its `:qualifier` suffix, if any
fn check_function_name(name: &str) -> Result<Option<&str>, BuildError> {
    check_len(Parameter::FunctionName, name, MAX_FUNCTION_NAME_LEN)?;
    let parts = parse_function_name(name).ok_or_else(|| BuildError::Pattern {
        parameter: Parameter::FunctionName,
        value: name.to_owned(),
        rule: FUNCTION_NAME_RULE,
    })?;
    if parts.name.len() > MAX_BARE_NAME_LEN {
        return Err(BuildError::TooLong {
            parameter: Parameter::FunctionName,
            len: parts.name.len(),
            max: MAX_BARE_NAME_LEN,
        });
    }
    Ok(parts.qualifier)
}

/// Full match of the model's `NamespacedFunctionName` pattern over `:`-separated parts
fn match_function_name<'a>(parts: &[&'a str]) -> Option<FunctionNameParts<'a>> {
    let with = |partition, region, account, (name, qualifier)| FunctionNameParts {
        partition,
        region,
        account,
        name,
        qualifier,
    };
    if parts.first() == Some(&"arn")
        && parts.len() >= 6
        && is_partition(parts[1])
        && parts[2] == "lambda"
        && is_region(parts[3])
        && is_account(parts[4])
        && let Some(t) = match_tail(&parts[5..])
    {
        // arn:<partition>:lambda:<region>:<account>: then the tail
        return Some(with(Some(parts[1]), Some(parts[3]), Some(parts[4]), t));
    }
    // else, as the regex's other branch does, a name that may well be `arn` itself
    // [<region>:][<account>:] then the tail; like the regex, the optional prefixes are tried
    // longest first
    let region = parts.len() > 1 && is_region(parts[0]);
    let mut starts = [(0, None, None); 4];
    let mut n = 0;
    let mut start = |s, region, account| {
        starts[n] = (s, region, account);
        n += 1;
    };
    if region && parts.len() > 2 && is_account(parts[1]) {
        start(2, Some(parts[0]), Some(parts[1]));
    }
    if region {
        start(1, Some(parts[0]), None);
    }
    if parts.len() > 1 && is_account(parts[0]) {
        start(1, None, Some(parts[0]));
    }
    start(0, None, None);
    starts[..n].iter().find_map(|&(s, region, account)| {
        match_tail(&parts[s..]).map(|t| with(None, region, account, t))
    })
}

/// `(function:)?<name>(:<qualifier>)?`
fn match_tail<'a>(tail: &[&'a str]) -> Option<(&'a str, Option<&'a str>)> {
    // `function:` is optional; the regex tries it first
    let without_prefix = tail.strip_prefix(&["function"][..]);
    without_prefix
        .into_iter()
        .chain([tail])
        .find_map(|rest| match *rest {
            [name] if is_name(name) => Some((name, None)),
            [name, qualifier] if is_name(name) && is_name_qualifier(qualifier) => {
                Some((name, Some(qualifier)))
            }
            _ => None,
        })
}

/// `[A-Za-z0-9-_.]+`, but not dots alone: `.` and `..` would be dot segments of the URL
/// path, which the signer and servers resolve away (no function can be named so)
fn is_name(s: &str) -> bool {
    s.bytes().any(|b| b != b'.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The qualifier part of a function name: `$LATEST`, `$LATEST.PUBLISHED` or
/// `[A-Za-z0-9-_]+`
fn is_name_qualifier(s: &str) -> bool {
    matches!(s, "$LATEST" | "$LATEST.PUBLISHED")
        || (!s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')))
}

fn is_partition(s: &str) -> bool {
    s.is_empty()
        || s.strip_prefix("aws")
            .is_some_and(|r| r.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-'))
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}`
fn is_region(region: &str) -> bool {
    let region = region.strip_prefix("eusc-").unwrap_or(region);
    let lower = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase());
    let country = |part: &str| part.len() == 2 && lower(part);
    let digit = |part: &str| part.len() == 1 && part.as_bytes()[0].is_ascii_digit();
    let special = |part: &str| {
        part == "gov"
            || part
                .strip_prefix("iso")
                .is_some_and(|rest| rest.is_empty() || (rest.len() == 1 && lower(rest)))
    };
    let parts: Vec<&str> = region.split('-').collect();
    match parts[..] {
        [cc, word, num] => country(cc) && lower(word) && digit(num),
        [cc, kind, word, num] => country(cc) && special(kind) && lower(word) && digit(num),
        _ => false,
    }
}

fn check_qualifier(q: &str) -> Result<(), BuildError> {
    check_len(Parameter::Qualifier, q, MAX_QUALIFIER_LEN)?;
    let ok = matches!(q, "$LATEST" | "$LATEST.PUBLISHED")
        || q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'$'));
    if ok {
        Ok(())
    } else {
        Err(BuildError::Pattern {
            parameter: Parameter::Qualifier,
            value: q.to_owned(),
            rule: QUALIFIER_RULE,
        })
    }
}

fn check_tenant_id(t: &str) -> Result<(), BuildError> {
    check_len(Parameter::TenantId, t, MAX_TENANT_ID_LEN)?;
    // spaces at either end would not arrive: HTTP and SigV4 trim header values
    let ok = !t.starts_with(' ')
        && !t.ends_with(' ')
        && t.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b'_' | b':' | b'/' | b'=' | b'+' | b'-' | b'@' | b' '
                )
        });
    if ok {
        Ok(())
    } else {
        Err(BuildError::Pattern {
            parameter: Parameter::TenantId,
            value: t.to_owned(),
            rule: TENANT_ID_RULE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_name_forms() {
        for ok in [
            "my-function",
            "my_fn.v2",
            "my-function:prod",
            "my-function:$LATEST",
            "my-function:$LATEST.PUBLISHED",
            "123456789012:function:my-function",
            "us-west-2:123456789012:function:my-function",
            "arn:aws:lambda:us-west-2:123456789012:function:my-function",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:3",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f",
            "arn:aws-iso-b:lambda:us-isob-east-1:123456789012:function:f",
            "arn:aws:lambda:eusc-de-east-1:123456789012:function:f",
            "function:f",
            "123456789012:f",
            "us-east-1:f:1",
            "arn:aws:lambda:us-east-1:123456789012:f",
            // a function may be called `arn`: the pattern's other branch matches it
            "arn",
            "arn:prod",
            "arn:$LATEST",
            "function:arn:1",
        ] {
            check_function_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "my function",
            "a:b:c:d",
            "my-function:a.b",
            "arn:aws:lambda:us-east-1:12345:function:f",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "arn:aws:lambda:useast1:123456789012:function:f",
            "arn:gcp:lambda:us-east-1:123456789012:function:f",
            "f:",
            ":f",
            "function:f:1:2",
            "arn:aws:lambda:us-west-2:123456789012:function:f:7:8",
            "arn:aws:lambda:us-west-2:123456789012:function:f:7:8:9:10",
            "é",
            // dot segments of the URL path, resolved away before the service sees them
            ".",
            "..",
            "...:prod",
            "arn:aws:lambda:us-east-1:123456789012:function:..",
        ] {
            assert!(check_function_name(bad).is_err(), "{bad}");
        }
        check_function_name("a.b").unwrap();
        check_function_name(".f").unwrap();
        assert_eq!(check_function_name("f:prod").unwrap(), Some("prod"));
        assert_eq!(check_function_name("arn:prod").unwrap(), Some("prod"));
        let p = parse_function_name("123456789012:f").unwrap();
        assert_eq!(
            (p.account, p.name, p.qualifier),
            (Some("123456789012"), "f", None)
        );
        let p = parse_function_name("us-west-2:123456789012:function:f:7").unwrap();
        assert_eq!(
            (p.region, p.account, p.name, p.qualifier),
            (Some("us-west-2"), Some("123456789012"), "f", Some("7"))
        );
        // the longest form: eight parts
        let p = parse_function_name("arn:aws:lambda:us-west-2:123456789012:function:f:7").unwrap();
        assert_eq!(
            (p.partition, p.region, p.account, p.name, p.qualifier),
            (
                Some("aws"),
                Some("us-west-2"),
                Some("123456789012"),
                "f",
                Some("7")
            )
        );
        let p = parse_function_name("arn::lambda:us-west-2:123456789012:function:f").unwrap();
        assert_eq!((p.partition, p.name), (Some(""), "f"));
        // a partial ARN names no partition
        let p = parse_function_name("us-west-2:123456789012:function:f").unwrap();
        assert_eq!(p.partition, None);
        let p = parse_function_name("function:f").unwrap();
        assert_eq!((p.name, p.qualifier), ("f", None));
        // a region-shaped first part is the region, as the model's regex tries that first
        // (not the function `us-west-2` with the qualifier `prod`)
        let p = parse_function_name("us-west-2:prod").unwrap();
        assert_eq!(
            (p.region, p.name, p.qualifier),
            (Some("us-west-2"), "prod", None)
        );
        assert!(matches!(
            check_function_name(&"n".repeat(65)),
            Err(BuildError::TooLong { max: 64, .. })
        ));
        assert!(matches!(
            check_function_name(&format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                "n".repeat(250)
            )),
            Err(BuildError::TooLong { max: 256, .. })
        ));
    }

    #[test]
    fn qualifier_and_tenant() {
        for ok in ["$LATEST", "$LATEST.PUBLISHED", "prod", "7", "my_alias-1"] {
            check_qualifier(ok).unwrap();
        }
        for bad in ["a.b", "", "x y"] {
            assert!(check_qualifier(bad).is_err(), "{bad}");
        }
        assert!(check_qualifier(&"q".repeat(129)).is_err());
        check_tenant_id("tenant-1 a/b=c+d@e.f:g_h").unwrap();
        check_tenant_id("a b").unwrap();
        assert!(check_tenant_id("tenant#1").is_err());
        // trimmed away on the wire: another tenant, or none
        for bad in [" acme", "acme ", " ", "   "] {
            let e = check_tenant_id(bad).unwrap_err();
            assert!(e.to_string().contains("space"), "{e}");
        }
        assert!(check_tenant_id("").is_err());
        assert!(check_tenant_id(&"t".repeat(257)).is_err());
    }

    #[test]
    fn whole_params() {
        InvokeParams::new("f", "{}").validate().unwrap();
        assert_eq!(
            InvokeParams::new("f:prod", "").qualifier("dev").validate(),
            Err(BuildError::QualifierConflict {
                in_name: "prod".into(),
                qualifier: "dev".into()
            })
        );
        InvokeParams::new("f:prod", "")
            .qualifier("prod")
            .validate()
            .unwrap();
        let big = vec![b'x'; MAX_PAYLOAD_LEN + 1];
        assert!(matches!(
            InvokeParams::new("f", big).validate(),
            Err(BuildError::TooLong {
                parameter: Parameter::Payload,
                ..
            })
        ));
        InvokeParams::new("f", vec![b'x'; MAX_PAYLOAD_LEN])
            .validate()
            .unwrap();
        // 2,685 bytes of JSON is 3,580 bytes of base64; 2,688 is 3,584
        InvokeParams::new("f", "")
            .client_context(vec![b'a'; 2685])
            .validate()
            .unwrap();
        assert!(matches!(
            InvokeParams::new("f", "")
                .client_context(vec![b'a'; 2688])
                .validate(),
            Err(BuildError::TooLong {
                parameter: Parameter::ClientContext,
                len: 3584,
                ..
            })
        ));
    }

    #[test]
    fn names_and_debug_hold_no_payload() {
        let names = [
            (Parameter::FunctionName, "FunctionName"),
            (Parameter::Qualifier, "Qualifier"),
            (Parameter::ClientContext, "ClientContext"),
            (Parameter::TenantId, "TenantId"),
            (Parameter::Payload, "Payload"),
        ];
        for (p, name) in names {
            assert_eq!(p.to_string(), name);
        }
        let params = InvokeParams::new("f", "{\"card\":\"4111\"}")
            .client_context("{\"custom\":{\"secret\":\"x\"}}")
            .log_type(LogType::Tail)
            .qualifier("prod")
            .tenant_id("acme");
        assert_eq!(params.function_name(), "f");
        assert_eq!(params.payload().len(), 15);
        assert_eq!(params.get_invocation_type(), None);
        assert_eq!(params.get_log_type(), Some(LogType::Tail));
        assert_eq!(params.get_client_context().map(Bytes::len), Some(25));
        assert_eq!(params.get_qualifier(), Some("prod"));
        assert_eq!(params.get_tenant_id(), Some("acme"));
        let shown = format!("{params:?}");
        assert_eq!(
            shown,
            "InvokeParams { function_name: \"f\", payload_len: 15, invocation_type: None, \
             log_type: Some(Tail), client_context_len: Some(25), qualifier: Some(\"prod\"), \
             tenant_id: Some(\"acme\") }"
        );
    }

    #[test]
    fn lengths_exactly_at_their_maximum_pass() {
        check_function_name(&"n".repeat(MAX_BARE_NAME_LEN)).unwrap();
        check_qualifier(&"q".repeat(MAX_QUALIFIER_LEN)).unwrap();
        check_tenant_id(&"t".repeat(MAX_TENANT_ID_LEN)).unwrap();
        // a whole ARN of exactly 256 bytes (a long partition), and one byte more
        let arn = |len: usize| {
            let (head, tail) = ("arn:aws", ":lambda:us-east-1:123456789012:function:f");
            format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
        };
        assert_eq!(arn(MAX_FUNCTION_NAME_LEN).len(), MAX_FUNCTION_NAME_LEN);
        check_function_name(&arn(MAX_FUNCTION_NAME_LEN)).unwrap();
        assert!(matches!(
            check_function_name(&arn(MAX_FUNCTION_NAME_LEN + 1)),
            Err(BuildError::TooLong {
                max: 256,
                len: 257,
                ..
            })
        ));
    }

    #[test]
    fn an_account_is_taken_only_after_a_region_or_first() {
        // `<name>:<account>:<x>` is no form of the pattern: the account needs a region
        // before it, or nothing
        assert!(parse_function_name("f:123456789012:g").is_none());
        let p = parse_function_name("us-east-1:123456789012:g").unwrap();
        assert_eq!(
            (p.region, p.account, p.name),
            (Some("us-east-1"), Some("123456789012"), "g")
        );
        let p = parse_function_name("123456789012:g").unwrap();
        assert_eq!(
            (p.region, p.account, p.name),
            (None, Some("123456789012"), "g")
        );
    }

    #[test]
    fn regions_follow_the_models_pattern_part_by_part() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "u1-east-1",
            "usa-east-1",
            "u-east-1",
            "us-East-1",
            "us--1",
            "us-east-11",
            "us-east-x",
            "us-east-",
            "US-gov-west-1",
            "us-gxv-west-1",
            "us-isobb-east-1",
            "us-iso1-east-1",
            "us-gov-West-1",
            "us-gov-west-12",
            "us-gov--1",
            "us-east",
            "us-gov-west-1-x",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
