//! Differential test of the SigV4 signer against the official `aws-sigv4` crate
//!
//! Random Lambda-like requests (function names and ARNs percent-encoded in the path, an
//! optional `Qualifier`, `x-amz-*` headers, random bodies, times and credentials, with and
//! without a session token) are signed by both, `aws-sigv4` with its default
//! `SigningSettings` (what the Rust SDK uses for Lambda); the `Authorization`,
//! `X-Amz-Date` and `X-Amz-Security-Token` headers must be identical.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use invoke_proto::Credentials;
use invoke_proto::bytes::Bytes;
use invoke_proto::{SigningScope, sign};
use invoke_testkit::aws_signer::{identity, sign_with_aws};
use proptest::prelude::*;

/// Percent-encodes everything but the RFC 3986 unreserved characters
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

fn region() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "us-east-1",
        "us-west-2",
        "eu-central-1",
        "ap-southeast-2",
        "cn-north-1",
        "us-gov-west-1",
    ])
    .prop_map(str::to_owned)
}

fn qualifier() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("$LATEST".to_owned()),
        Just("$LATEST.PUBLISHED".to_owned()),
        "[1-9][0-9]{0,3}",
        "[a-zA-Z][a-zA-Z0-9_-]{0,20}",
    ]
}

/// A `FunctionName` as users give it, and occasionally arbitrary text
fn function_name() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z0-9_-]{1,40}";
    prop_oneof![
        3 => name.prop_map(String::from),
        2 => (name, qualifier()).prop_map(|(n, q)| format!("{n}:{q}")),
        1 => ("[0-9]{12}", name).prop_map(|(a, n)| format!("{a}:function:{n}")),
        3 => (region(), "[0-9]{12}", name, prop::option::of(qualifier()))
            .prop_map(|(r, a, n, q)| match q {
                Some(q) => format!("arn:aws:lambda:{r}:{a}:function:{n}:{q}"),
                None => format!("arn:aws:lambda:{r}:{a}:function:{n}"),
            }),
        1 => ".{1,12}",
    ]
}

/// Where the request goes: the URI base and, sometimes, an explicit `Host` header
fn endpoint() -> impl Strategy<Value = (String, Option<String>)> {
    prop_oneof![
        region().prop_map(|r| (format!("https://lambda.{r}.amazonaws.com"), None)),
        region().prop_map(|r| (format!("https://lambda.{r}.amazonaws.com:443"), None)),
        (1024u16..65535).prop_map(|p| (format!("http://localhost:{p}"), None)),
        (1024u16..65535).prop_map(|p| (format!("http://127.0.0.1:{p}"), None)),
        region().prop_map(|r| (
            "https://10.0.0.1".to_owned(),
            Some(format!("lambda.{r}.amazonaws.com"))
        )),
    ]
}

/// Optional headers: (name as sent, value)
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        prop::option::of(prop::sample::select(vec![
            "RequestResponse",
            "DryRun",
            "Event",
        ])),
        prop::option::of(prop::sample::select(vec!["None", "Tail"])),
        prop::option::of("[A-Za-z0-9+/]{4,60}={0,2}"),
        // the TenantId pattern allows spaces: runs and ends are trimmed when signing
        prop::option::of("[a-zA-Z0-9._:/=+@ -]{1,40}"),
        prop::option::of(prop::sample::select(vec![
            "application/octet-stream",
            "application/json",
            "application/x-amz-json-1.1",
        ])),
        prop::option::of("[ -~]{1,40}"),
        prop::collection::vec(
            (
                "x-amz-meta-[a-z]{1,8}|X-Custom-[A-Za-z]{1,8}",
                "[!-~][ -~]{0,30}",
            ),
            // up to 12, so that some requests sign more headers than the signer keeps on
            // the stack (16)
            0..12,
        ),
    )
        .prop_map(|(it, lt, cc, tenant, ct, ua, extra)| {
            let mut out = Vec::new();
            if let Some(v) = it {
                out.push(("X-Amz-Invocation-Type".to_owned(), v.to_owned()));
            }
            if let Some(v) = lt {
                out.push(("X-Amz-Log-Type".to_owned(), v.to_owned()));
            }
            if let Some(v) = cc {
                out.push(("X-Amz-Client-Context".to_owned(), v));
            }
            if let Some(v) = tenant {
                out.push(("X-Amz-Tenant-Id".to_owned(), v));
            }
            if let Some(v) = ct {
                out.push(("Content-Type".to_owned(), v.to_owned()));
            }
            if let Some(v) = ua {
                // never signed by either
                out.push(("User-Agent".to_owned(), v.clone()));
                out.push(("X-Amz-User-Agent".to_owned(), v));
            }
            out.extend(extra);
            out
        })
}

#[derive(Debug, Clone)]
struct Case {
    uri: String,
    host: Option<String>,
    headers: Vec<(String, String)>,
    content_length: bool,
    body: Vec<u8>,
    region: String,
    secs: u64,
    nanos: u32,
    akid: String,
    secret: String,
    token: Option<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            endpoint(),
            prop::sample::select(vec![
                "/2021-11-15/functions/{}/response-streaming-invocations",
                "/2015-03-31/functions/{}/invocations",
                "/prefix/./x/../2021-11-15/functions/{}/response-streaming-invocations",
            ]),
            function_name(),
            prop::option::of(qualifier()),
        ),
        headers(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..1500),
        (region(), 0u64..4_102_444_800, 0u32..1_000_000_000),
        (
            "(AKIA|ASIA)[A-Z0-9]{16}",
            "[A-Za-z0-9+/]{40}",
            prop::option::of("[A-Za-z0-9+/=]{16,300}"),
        ),
    )
        .prop_map(
            |(
                ((base, host), path, name, qualifier),
                headers,
                content_length,
                body,
                (region, secs, nanos),
                (akid, secret, token),
            )| {
                let mut uri = base + &path.replace("{}", &encode(&name));
                if let Some(q) = qualifier {
                    uri.push_str("?Qualifier=");
                    uri.push_str(&encode(&q));
                }
                Case {
                    uri,
                    host,
                    headers,
                    content_length,
                    body,
                    region,
                    secs,
                    nanos,
                    akid,
                    secret,
                    token,
                }
            },
        )
}

fn request(case: &Case) -> http::Request<Bytes> {
    let mut b = http::Request::post(&case.uri);
    if let Some(host) = &case.host {
        b = b.header("Host", host);
    }
    for (name, value) in &case.headers {
        b = b.header(name, value);
    }
    if case.content_length {
        b = b.header("Content-Length", case.body.len());
    }
    b.body(Bytes::from(case.body.clone())).unwrap()
}

fn signed_by_aws(case: &Case, now: SystemTime) -> http::Request<Bytes> {
    let mut req = request(case);
    let id = identity(&case.akid, &case.secret, case.token.clone());
    sign_with_aws(&mut req, &id, &case.region, now);
    req
}

fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).map(|v| v.to_str().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn same_authorization_as_aws_sigv4(case in case()) {
        let now = UNIX_EPOCH + Duration::new(case.secs, case.nanos);
        let expected = signed_by_aws(&case, now);

        let mut ours = request(&case);
        let creds = Credentials::new(&case.akid, &case.secret, case.token.clone());
        sign(&mut ours, &creds, &SigningScope::lambda(&case.region), now).unwrap();

        for name in ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"] {
            prop_assert_eq!(header(&ours, name), header(&expected, name), "{}", name);
        }
        prop_assert!(header(&ours, "authorization").is_some());

        // signing the signed request again (a retry) gives the same headers
        let before = ours.headers().clone();
        sign(&mut ours, &creds, &SigningScope::lambda(&case.region), now).unwrap();
        prop_assert_eq!(ours.headers(), &before);

        // the same credentials a day later and back: the cached signing key follows the date
        for later in [now + Duration::from_secs(86_400), now] {
            let expected = signed_by_aws(&case, later);
            sign(&mut ours, &creds, &SigningScope::lambda(&case.region), later).unwrap();
            prop_assert_eq!(header(&ours, "authorization"), header(&expected, "authorization"));
        }
    }
}
