//! The SDK's end-to-end credential cases, replayed through the sans-IO chain
//!
//! Each case gives an environment, files and the HTTP traffic the SDK made. The chain runs
//! against an in-memory file system and a fixed clock; every request it makes is compared
//! with the recorded one (method, URI, the headers that carry meaning, the STS action) and
//! answered with the recorded response; the outcome must equal `test-case.json`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use invoke_config::{CredentialsChain, MemFs, Platform, ProviderKind, SharedConfig, Step};
use serde_json::Value;

/// Cases we cannot replay, with the reason (asserted by name below)
const SKIPPED: &[(&str, &str)] = &[];

/// 2021-09-21T17:41:25Z, when several of the cases were recorded
const NOW: u64 = 1_632_246_085;

struct Exchange {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    request_body: String,
    status: u16,
    response_headers: Vec<(String, String)>,
    response_body: Vec<u8>,
}

fn data(v: &Value) -> Vec<u8> {
    if let Some(s) = v.get("Utf8").and_then(Value::as_str) {
        return s.as_bytes().to_vec();
    }
    let b64 = v["Base64"].as_str().expect("Utf8 or Base64 data");
    base64_decode(b64)
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | A.iter().position(|a| *a == c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn pairs(headers: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, vs) in headers.as_object().unwrap() {
        for v in vs.as_array().unwrap() {
            out.push((k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()));
        }
    }
    out
}

fn traffic(path: &Path) -> Vec<Exchange> {
    let t = support::json(path);
    let mut order: Vec<u64> = Vec::new();
    let mut by_id: std::collections::HashMap<u64, Exchange> = std::collections::HashMap::new();
    for e in t["events"].as_array().unwrap() {
        let id = e["connection_id"].as_u64().unwrap();
        let x = by_id.entry(id).or_insert_with(|| {
            order.push(id);
            Exchange {
                method: String::new(),
                uri: String::new(),
                headers: Vec::new(),
                request_body: String::new(),
                status: 0,
                response_headers: Vec::new(),
                response_body: Vec::new(),
            }
        });
        let a = &e["action"];
        if let Some(r) = a.get("Request") {
            let r = &r["request"];
            r["method"].as_str().unwrap().clone_into(&mut x.method);
            r["uri"].as_str().unwrap().clone_into(&mut x.uri);
            x.headers = pairs(&r["headers"]);
        } else if let Some(r) = a.get("Response") {
            let ok = &r["response"]["Ok"];
            x.status = u16::try_from(ok["status"].as_u64().unwrap()).unwrap();
            x.response_headers = pairs(&ok["headers"]);
        } else if let Some(d) = a.get("Data") {
            let bytes = data(&d["data"]);
            if d["direction"] == "Request" {
                x.request_body.push_str(&String::from_utf8(bytes).unwrap());
            } else {
                x.response_body.extend_from_slice(&bytes);
            }
        }
    }
    order
        .into_iter()
        .map(|id| by_id.remove(&id).unwrap())
        .collect()
}

/// Scheme, host, port, path ("" = "/") and the set of query pairs
fn uri_key(uri: &str) -> (String, String, Option<u16>, String, BTreeSet<String>) {
    let u: http::Uri = uri
        .parse()
        .unwrap_or_else(|e| panic!("recorded URI {uri}: {e}"));
    let path = if u.path().is_empty() {
        "/".to_owned()
    } else {
        u.path().to_owned()
    };
    let query = u
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .collect();
    (
        u.scheme_str().unwrap_or("").to_owned(),
        u.host().unwrap_or("").to_owned(),
        u.port_u16(),
        path,
        query,
    )
}

/// Headers whose value must match the recording when the recording has them
const MEANINGFUL: [&str; 5] = [
    "x-aws-ec2-metadata-token",
    "x-aws-ec2-metadata-token-ttl-seconds",
    "x-amz-sso_bearer_token",
    "content-type",
    "accept",
];

fn form_value<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn access_key_of(authorization: &str) -> Option<&str> {
    authorization.split("Credential=").nth(1)?.split('/').next()
}

/// The access key id in a credentials answer (JSON or STS XML), if any
fn answered_key(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if let Some(rest) = text.split("<AccessKeyId>").nth(1) {
        return rest.split('<').next().map(str::to_owned);
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let v = v.get("roleCredentials").unwrap_or(&v);
    v.get("AccessKeyId")
        .or_else(|| v.get("accessKeyId"))?
        .as_str()
        .map(str::to_owned)
}

/// `signer`: the key a signed request must use, the one the chain's last answer handed out
/// (two recordings, ecs_assume_role and web_identity_token_source_profile, copied their STS
/// request from another case, so its recorded key and token belong to that case)
fn compare(
    req: &http::Request<Bytes>,
    want: &Exchange,
    signer: Option<&str>,
) -> Result<(), String> {
    if req.method().as_str() != want.method {
        return Err(format!(
            "method {} != recorded {}",
            req.method(),
            want.method
        ));
    }
    if uri_key(&req.uri().to_string()) != uri_key(&want.uri) {
        return Err(format!("URI {} != recorded {}", req.uri(), want.uri));
    }
    for name in MEANINGFUL {
        if let Some((_, v)) = want.headers.iter().find(|(k, _)| k == name) {
            let got = req.headers().get(name).and_then(|h| h.to_str().ok());
            if got != Some(v.as_str()) {
                return Err(format!("header {name}: {got:?} != recorded {v:?}"));
            }
        }
    }
    // Only present or absent, for the same reason as `signer`
    let token = req.headers().contains_key("x-amz-security-token");
    if token
        != want
            .headers
            .iter()
            .any(|(k, _)| k == "x-amz-security-token")
    {
        return Err(format!(
            "x-amz-security-token sent: {token}, recorded the opposite"
        ));
    }
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok());
    match want.headers.iter().find(|(k, _)| k == "authorization") {
        Some((_, v)) if v.starts_with("AWS4-HMAC-SHA256") => {
            let got = auth.and_then(access_key_of);
            let expected = signer.or_else(|| access_key_of(v));
            if got != expected {
                return Err(format!("signed with {got:?}, expected {expected:?}"));
            }
        }
        None if auth.is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")) => {
            return Err("signed, but the recorded request is not".into());
        }
        _ => {}
    }
    if !want.request_body.is_empty() {
        let got = std::str::from_utf8(req.body()).unwrap_or("");
        for key in ["Action", "Version"] {
            if form_value(got, key) != form_value(&want.request_body, key) {
                return Err(format!(
                    "body {key}: `{got}` vs recorded `{}`",
                    want.request_body
                ));
            }
        }
    }
    Ok(())
}

fn mem_fs(dir: &Path) -> MemFs {
    let mut fs = MemFs::new();
    let root = dir.join("fs");
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).unwrap();
                fs.insert(Path::new("/").join(rel), std::fs::read(&p).unwrap());
            }
        }
    }
    fs
}

fn run_case(dir: &Path, providers: &[ProviderKind]) -> Result<(), String> {
    let env = invoke_config::Env::from_pairs(support::string_pairs(&support::json(
        &dir.join("env.json"),
    )));
    let fs = mem_fs(dir);
    let shared = SharedConfig::load_with(env, &fs, Platform::Unix, None);
    let mut chain = CredentialsChain::with_providers(&shared, Arc::new(fs), providers);
    let mut recorded = traffic(&dir.join("http-traffic.json")).into_iter();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    let mut signer: Option<String> = None;
    let result = loop {
        match chain.next_step(now) {
            Step::Send(req) => {
                let Some(want) = recorded.next() else {
                    return Err(format!("unexpected request {} {}", req.method(), req.uri()));
                };
                compare(&req, &want, signer.as_deref())?;
                if let Some(k) = answered_key(&want.response_body) {
                    signer = Some(k);
                }
                let mut headers = HeaderMap::new();
                for (k, v) in &want.response_headers {
                    headers.append(
                        HeaderName::from_bytes(k.as_bytes()).unwrap(),
                        HeaderValue::from_str(v).unwrap(),
                    );
                }
                chain.handle_response(
                    StatusCode::from_u16(want.status).unwrap(),
                    headers,
                    Bytes::from(want.response_body),
                );
            }
            Step::Run(cmd) => chain.handle_process_output(invoke_config::run_process(&cmd)),
            Step::Done(r) => break r,
        }
    };
    if let Some(left) = recorded.next() {
        return Err(format!(
            "recorded request never made: {} {}",
            left.method, left.uri
        ));
    }
    let expected = &support::json(&dir.join("test-case.json"))["result"];
    match (result, expected.get("Ok"), expected.get("ErrorContains")) {
        (Ok(c), Some(want), _) => {
            let s = |k: &str| want.get(k).and_then(Value::as_str);
            let checks = [
                (
                    "access_key_id",
                    Some(c.credentials.access_key_id()),
                    s("access_key_id"),
                ),
                (
                    "secret_access_key",
                    Some(c.credentials.secret_access_key()),
                    s("secret_access_key"),
                ),
                (
                    "session_token",
                    c.credentials.session_token(),
                    s("session_token"),
                ),
                ("account_id", c.account_id.as_deref(), s("account_id")),
            ];
            for (name, got, want) in checks {
                if got != want {
                    return Err(format!("{name}: got {got:?}, want {want:?}"));
                }
            }
            let expiry = c
                .expiry
                .map(|e| e.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs());
            if expiry != want.get("expiry").and_then(Value::as_u64) {
                return Err(format!(
                    "expiry: got {expiry:?}, want {:?}",
                    want.get("expiry")
                ));
            }
            Ok(())
        }
        (Err(e), _, Some(text)) => {
            let text = text.as_str().unwrap();
            if e.to_string().contains(text) {
                Ok(())
            } else {
                Err(format!("error `{e}` does not contain `{text}`"))
            }
        }
        (Ok(c), None, _) => Err(format!(
            "got credentials from {}, want {expected}",
            c.provider
        )),
        (Err(e), ..) => Err(format!("got error `{e}`, want {expected}")),
    }
}

fn run_suite(sub: &str, providers: &[ProviderKind]) {
    let Some(root) = support::testdata(sub) else {
        return;
    };
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    println!("{sub}:");
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        if let Some((_, why)) = SKIPPED.iter().find(|(n, _)| *n == name) {
            println!("  SKIP {name}: {why}");
            skipped.push(name);
            continue;
        }
        match run_case(dir, providers) {
            Ok(()) => println!("  pass {name}"),
            Err(e) => {
                println!("  FAIL {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    println!(
        "{sub}: {} of {} cases pass, {} skipped",
        dirs.len() - failures.len() - skipped.len(),
        dirs.len(),
        skipped.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn default_credential_provider_chain_cases() {
    run_suite(
        "config/default-credential-provider-chain",
        &ProviderKind::DEFAULT_CHAIN,
    );
}

#[test]
fn profile_provider_cases() {
    run_suite("config/profile-provider", &[ProviderKind::Profile]);
}

#[test]
fn skip_list_is_explicit() {
    let names: Vec<_> = SKIPPED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, Vec::<&str>::new());
}
