//! Behaviour of the chain, the cache and the process runner beyond the SDK's suites

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use invoke_config::{
    CredentialsCache, CredentialsChain, CredentialsError, Env, FileReader, MemFs, Platform,
    ProcessCommand, ProvideCredentials, ProvidedCredentials, ProviderKind, SharedConfig, Step,
    drive, run_process, run_process_until,
};
use invoke_proto::Credentials;

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-SECRETVALUE";
const TOKEN: &str = "IQoJb3JpZ2luX2VjSESSIONTOKENVALUE";
const NOW: u64 = 1_700_000_000;
/// A container endpoint's answer with temporary credentials (key `ASIA1`)
const CONTAINER_ANSWER: &str = r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2099-01-01T00:00:00Z"}"#;

/// Fails the test once a chain or a lookup has sent more than 100 requests, so that one
/// that retries for ever fails it instead of hanging it
fn within_bound(sent: usize) {
    assert!(sent <= 100, "still sending after 100 requests");
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

/// The shared config of `env` (with `HOME=/home`) and `fs`
fn shared_config(env: &[(&str, &str)], fs: &MemFs) -> SharedConfig {
    let mut pairs = vec![("HOME", "/home")];
    pairs.extend_from_slice(env);
    SharedConfig::load_with(Env::from_pairs(pairs), fs, Platform::Unix, None)
}

fn chain(env: &[(&str, &str)], fs: MemFs, providers: &[ProviderKind]) -> CredentialsChain {
    CredentialsChain::with_providers(&shared_config(env, &fs), Arc::new(fs), providers)
}

/// The error of a chain that must refuse before any request
fn refusal(env: &[(&str, &str)], fs: MemFs, providers: &[ProviderKind]) -> CredentialsError {
    let Step::Done(Err(e)) = chain(env, fs, providers).next_step(now()) else {
        panic!("{env:?}: a request was made")
    };
    e
}

fn creds(expiry: Option<SystemTime>) -> ProvidedCredentials {
    ProvidedCredentials::new(
        Credentials::new("AKIDEXAMPLE", SECRET, Some(TOKEN.into())),
        expiry,
        None,
        "test",
    )
}

fn assert_no_secret(text: &str) {
    for s in [
        SECRET,
        TOKEN,
        "a-cached-sso-token",
        "web-identity-jwt",
        "ecs-auth-token",
    ] {
        assert!(!text.contains(s), "secret {s} shown in: {text}");
    }
}

#[test]
fn not_found_names_every_provider_variable_and_file() {
    let e = refusal(
        &[("AWS_EC2_METADATA_DISABLED", "true")],
        MemFs::new().with("/home/.aws/config", "[profile dev]\n[profile ops]\n"),
        &ProviderKind::DEFAULT_CHAIN,
    );
    let CredentialsError::NotFound(nf) = &e else {
        panic!("{e:?}")
    };
    let providers: Vec<_> = nf.tried.iter().map(|t| t.provider).collect();
    assert_eq!(
        providers,
        [
            "environment",
            "profile",
            "web identity",
            "container",
            "imds"
        ]
    );
    let msg = e.to_string();
    for needle in [
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_EC2_METADATA_DISABLED is true",
        "/home/.aws/config",
        "/home/.aws/credentials",
        "profile `default` is not defined",
        "which define profiles `dev`, `ops`",
        "the credential provider was not enabled",
        "\n  files looked at: /home/.aws/config",
    ] {
        assert!(msg.contains(needle), "`{needle}` missing from:\n{msg}");
    }
}

#[test]
fn imds_unreachable_is_retried_then_skipped() {
    let mut c = chain(&[], MemFs::new(), &ProviderKind::DEFAULT_CHAIN);
    let mut attempts = Vec::new();
    let e = loop {
        match c.next_step(now()) {
            Step::Send(req) => {
                attempts.push(req.extensions().get::<invoke_config::Attempt>().unwrap().0);
                within_bound(attempts.len());
                assert_eq!(req.method(), http::Method::PUT);
                c.handle_transport_error(&"connection refused");
            }
            Step::Done(r) => break r.unwrap_err(),
            Step::Run(_) => panic!("no process"),
        }
    };
    assert_eq!(attempts, [1, 2, 3]);
    assert!(
        e.to_string()
            .contains("could not be reached: connection refused"),
        "{e}"
    );
}

#[test]
fn handing_back_out_of_order_is_an_error_not_a_panic() {
    let mut c = chain(&[], MemFs::new(), &[ProviderKind::Imds]);
    c.handle_response(StatusCode::OK, HeaderMap::new(), Bytes::new());
    let Step::Done(Err(CredentialsError::Usage(_))) = c.next_step(now()) else {
        panic!()
    };
    let mut c = chain(&[], MemFs::new(), &[ProviderKind::Imds]);
    let Step::Send(_) = c.next_step(now()) else {
        panic!()
    };
    let Step::Done(Err(CredentialsError::Usage(_))) = c.next_step(now()) else {
        panic!()
    };
}

#[test]
fn oversized_and_malformed_answers_are_errors() {
    let rel = [("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")];
    for body in [
        vec![b'x'; invoke_config::MAX_RESPONSE_BODY + 1],
        b"{".to_vec(),
        b"{}".to_vec(),
        vec![0xff; 10],
    ] {
        let mut c = chain(&rel, MemFs::new(), &[ProviderKind::Container]);
        let mut sends = 0;
        let r = drive(&mut c, now, |_req| {
            sends += 1;
            within_bound(sends);
            Ok::<_, String>((StatusCode::OK, HeaderMap::new(), Bytes::from(body.clone())))
        });
        assert!(r.is_err(), "{} bytes accepted", body.len());
    }
    // an answer of exactly the limit is read
    let mut body = CONTAINER_ANSWER.as_bytes().to_vec();
    body.resize(invoke_config::MAX_RESPONSE_BODY, b' ');
    let mut c = chain(&rel, MemFs::new(), &[ProviderKind::Container]);
    let r = drive(&mut c, now, |_req| {
        Ok::<_, String>((StatusCode::OK, HeaderMap::new(), Bytes::from(body.clone())))
    });
    assert_eq!(r.unwrap().credentials.access_key_id(), "ASIA1");
}

#[test]
fn expired_sso_token_asks_for_aws_sso_login() {
    let config = "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n\
                  [sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://corp.awsapps.com/start\n";
    let name = format!("/home/.aws/sso/cache/{}.json", sha1_of("corp"));
    let fs = MemFs::new().with("/home/.aws/config", config).with(
        name,
        r#"{"accessToken": "a-cached-sso-token", "expiresAt": "2023-01-01T00:00:00Z"}"#,
    );
    let mut c = chain(&[("AWS_PROFILE", "dev")], fs, &ProviderKind::DEFAULT_CHAIN);
    let Step::Done(Err(e)) = c.next_step(now()) else {
        panic!("no request expected")
    };
    let msg = e.to_string();
    assert!(
        matches!(e, CredentialsError::SsoLoginRequired { .. }),
        "{e:?}"
    );
    assert!(msg.contains("aws sso login --profile dev"), "{msg}");
    assert_no_secret(&msg);
    assert_no_secret(&format!("{e:?}"));
}

/// An `sso-session` profile whose cached token expires at `expires_at` and holds a refresh
/// grant registered until `registered`; the chain, its file system and the cache path
fn sso_refresh_setup(
    env: &[(&str, &str)],
    expires_at: &str,
    registered: &str,
    legacy: bool,
) -> (CredentialsChain, Arc<MemFs>, String) {
    let config = if legacy {
        "[profile dev]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\
         sso_account_id = 111122223333\nsso_role_name = Admin\n"
    } else {
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n\
         [sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://corp.awsapps.com/start\n"
    };
    let key = if legacy {
        "https://corp.awsapps.com/start"
    } else {
        "corp"
    };
    let name = format!("/home/.aws/sso/cache/{}.json", sha1_of(key));
    let cache = format!(
        r#"{{"accessToken": "a-cached-sso-token", "expiresAt": "{expires_at}", "refreshToken": "sso-refresh-token", "clientId": "sso-client-id", "clientSecret": "sso-client-secret", "registrationExpiresAt": "{registered}", "region": "eu-west-1", "startUrl": "https://corp.awsapps.com/start"}}"#
    );
    let fs = Arc::new(
        MemFs::new()
            .with("/home/.aws/config", config)
            .with(name.clone(), cache),
    );
    let mut pairs = vec![("AWS_PROFILE", "dev")];
    pairs.extend_from_slice(env);
    let shared = shared_config(&pairs, &fs);
    let chain = CredentialsChain::with_providers(
        &shared,
        Arc::clone(&fs) as Arc<dyn FileReader>,
        &ProviderKind::DEFAULT_CHAIN,
    );
    (chain, fs, name)
}

/// A request seen: method, URI, SSO token header, body
type Seen = (String, String, String, String);

/// Runs `chain`, answering `CreateToken` with `oidc` and the portal with role credentials;
/// the result and each request
fn drive_sso(
    chain: &mut CredentialsChain,
    oidc: (StatusCode, &str),
) -> (Result<ProvidedCredentials, CredentialsError>, Vec<Seen>) {
    drive_sso_or_fail(chain, Some(oidc))
}

/// As [`drive_sso`]; `None`: `CreateToken` fails in the transport
fn drive_sso_or_fail(
    chain: &mut CredentialsChain,
    oidc: Option<(StatusCode, &str)>,
) -> (Result<ProvidedCredentials, CredentialsError>, Vec<Seen>) {
    drive_sso_at(chain, oidc, now())
}

/// As [`drive_sso_or_fail`], with the clock at `at`
fn drive_sso_at(
    chain: &mut CredentialsChain,
    oidc: Option<(StatusCode, &str)>,
    at: SystemTime,
) -> (Result<ProvidedCredentials, CredentialsError>, Vec<Seen>) {
    let mut seen = Vec::new();
    let portal = r#"{"roleCredentials":{"accessKeyId":"ASIASSO","secretAccessKey":"ssosecret","sessionToken":"ssotoken","expiration":1700003600000}}"#;
    let result = drive(
        chain,
        || at,
        |req| {
            let token = req
                .headers()
                .get("x-amz-sso_bearer_token")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = String::from_utf8(req.body().to_vec()).unwrap();
            seen.push((req.method().to_string(), req.uri().to_string(), token, body));
            within_bound(seen.len());
            let answer = if req.uri().path() == "/token" {
                let Some(oidc) = oidc else {
                    return Err("connection refused".to_owned());
                };
                (oidc.0, Bytes::from(oidc.1.to_owned()))
            } else {
                (StatusCode::OK, Bytes::from_static(portal.as_bytes()))
            };
            Ok::<_, String>((answer.0, HeaderMap::new(), answer.1))
        },
    );
    (result, seen)
}

const NEW_TOKEN: &str = r#"{"accessToken":"a-new-sso-token","expiresIn":28800,"refreshToken":"a-new-refresh-token","tokenType":"Bearer"}"#;

#[test]
fn an_sso_token_about_to_expire_is_refreshed_and_written_back() {
    // 2023-11-14T22:14:20Z is NOW + 60 s: within the 5 minutes before expiry
    let (mut c, fs, name) =
        sso_refresh_setup(&[], "2023-11-14T22:14:20Z", "2099-01-01T00:00:00Z", false);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    let creds = result.unwrap();
    assert_eq!(creds.credentials.access_key_id(), "ASIASSO");
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (method, uri, _, body) = &seen[0];
    assert_eq!(
        (method.as_str(), uri.as_str()),
        ("POST", "https://oidc.eu-west-1.amazonaws.com/token")
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "clientId": "sso-client-id",
            "clientSecret": "sso-client-secret",
            "grantType": "refresh_token",
            "refreshToken": "sso-refresh-token",
        })
    );
    assert_eq!(
        seen[1].2, "a-new-sso-token",
        "the portal gets the new token"
    );
    // written back: the new token, its expiry, the new refresh token; the rest kept
    let cache: serde_json::Value = serde_json::from_slice(&fs.contents(&name).unwrap()).unwrap();
    assert_eq!(cache["accessToken"], "a-new-sso-token");
    assert_eq!(cache["expiresAt"], "2023-11-15T06:13:20Z", "NOW + 28,800 s");
    assert_eq!(cache["refreshToken"], "a-new-refresh-token");
    assert_eq!(cache["clientSecret"], "sso-client-secret");
    assert_eq!(cache["startUrl"], "https://corp.awsapps.com/start");

    // the endpoint override of SSO OIDC is honoured
    let (mut c, _, _) = sso_refresh_setup(
        &[("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:4321")],
        "2023-11-14T22:14:20Z",
        "2099-01-01T00:00:00Z",
        false,
    );
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    result.unwrap();
    assert_eq!(seen[0].1, "http://127.0.0.1:4321/token");
}

#[test]
fn an_sso_token_is_refreshed_only_when_it_can_and_must_be() {
    let fresh = "2099-01-01T00:00:00Z";
    let soon = "2023-11-14T22:14:20Z";
    let expired = "2023-11-14T22:00:00Z";
    let refused = (StatusCode::BAD_REQUEST, r#"{"error":"invalid_grant"}"#);
    // far from expiry: no refresh
    let (mut c, _, _) = sso_refresh_setup(&[], fresh, fresh, false);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    result.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].2, "a-cached-sso-token");
    // a refused refresh of a token still valid: the old token serves
    let (mut c, fs, name) = sso_refresh_setup(&[], soon, fresh, false);
    let before = fs.contents(&name);
    let (result, seen) = drive_sso(&mut c, refused);
    result.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].2, "a-cached-sso-token");
    assert_eq!(fs.contents(&name), before, "nothing written");
    // a token that expired and cannot be refreshed: `aws sso login`
    let (mut c, _, _) = sso_refresh_setup(&[], expired, fresh, false);
    let (result, seen) = drive_sso(&mut c, refused);
    let e = result.unwrap_err();
    assert!(
        matches!(e, CredentialsError::SsoLoginRequired { .. }),
        "{e:?}"
    );
    assert_eq!(seen.len(), 1, "one CreateToken, no portal call: {seen:?}");
    assert_no_secret(&format!("{e} {e:?}"));
    for secret in ["sso-refresh-token", "sso-client-secret"] {
        assert!(!format!("{e} {e:?}").contains(secret));
    }
    // ... but an expired token is refreshed when it can be
    let (mut c, _, _) = sso_refresh_setup(&[], expired, fresh, false);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    result.unwrap();
    assert_eq!(seen[1].2, "a-new-sso-token");
    // an expired client registration cannot refresh
    let (mut c, _, _) = sso_refresh_setup(&[], expired, expired, false);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    assert!(matches!(
        result,
        Err(CredentialsError::SsoLoginRequired { .. })
    ));
    assert!(seen.is_empty(), "{seen:?}");
    // a legacy profile is never refreshed, as in the SDKs
    let (mut c, _, _) = sso_refresh_setup(&[], soon, fresh, true);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    result.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].2, "a-cached-sso-token");
    // an answer without a token, or with a lifetime of 0: not a refresh
    for answer in [
        r#"{"expiresIn":3600}"#,
        r#"{"accessToken":"x","expiresIn":0}"#,
    ] {
        let (mut c, _, _) = sso_refresh_setup(&[], soon, fresh, false);
        let (result, seen) = drive_sso(&mut c, (StatusCode::OK, answer));
        result.unwrap();
        assert_eq!(seen[1].2, "a-cached-sso-token", "{answer}");
    }
}

#[test]
fn sso_refresh_boundaries_are_the_sdks() {
    let fresh = "2099-01-01T00:00:00Z";
    let refused = (StatusCode::BAD_REQUEST, r#"{"error":"invalid_grant"}"#);
    // NOW is 2023-11-14T22:13:20Z: a token expiring exactly 5 minutes later is refreshed, one
    // a second later is not
    for (expires, refreshed) in [
        ("2023-11-14T22:18:20Z", true),
        ("2023-11-14T22:18:21Z", false),
    ] {
        let (mut c, _, _) = sso_refresh_setup(&[], expires, fresh, false);
        let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
        result.unwrap();
        assert_eq!(
            seen.len(),
            if refreshed { 2 } else { 1 },
            "{expires}: {seen:?}"
        );
    }
    // a client registration that ends exactly now no longer holds: no refresh, and the
    // cached token (still valid) serves
    let (mut c, _, _) =
        sso_refresh_setup(&[], "2023-11-14T22:14:20Z", "2023-11-14T22:13:20Z", false);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    result.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].2, "a-cached-sso-token");
    // a token that expires exactly now, refused a refresh: expired, so `aws sso login`
    let (mut c, _, _) = sso_refresh_setup(&[], "2023-11-14T22:13:20Z", fresh, false);
    let (result, seen) = drive_sso(&mut c, refused);
    assert!(
        matches!(result, Err(CredentialsError::SsoLoginRequired { .. })),
        "{result:?}"
    );
    assert_eq!(seen.len(), 1, "{seen:?}");
    // a new token's lifetime is believed up to 366 days, not a second more
    for (lifetime, believed) in [(366 * 24 * 3600, true), (366 * 24 * 3600 + 1, false)] {
        let (mut c, fs, name) = sso_refresh_setup(&[], "2023-11-14T22:14:20Z", fresh, false);
        let answer = format!(r#"{{"accessToken":"a-new-sso-token","expiresIn":{lifetime}}}"#);
        let (result, seen) = drive_sso(&mut c, (StatusCode::OK, &answer));
        result.unwrap();
        let want = if believed {
            "a-new-sso-token"
        } else {
            "a-cached-sso-token"
        };
        assert_eq!(seen[1].2, want, "{lifetime}");
        let cache: serde_json::Value =
            serde_json::from_slice(&fs.contents(&name).unwrap()).unwrap();
        assert_eq!(cache["accessToken"], want, "{lifetime}");
    }
    // near the end of year 9999 a new token's expiry stops at its last second, a time the
    // cache can hold
    let (mut c, fs, name) =
        sso_refresh_setup(&[], "9999-12-31T20:01:00Z", "9999-12-31T23:00:00Z", false);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_286_400); // 9999-12-31T20:00:00Z
    let (result, seen) = drive_sso_at(&mut c, Some((StatusCode::OK, NEW_TOKEN)), at);
    result.unwrap();
    assert_eq!(seen[1].2, "a-new-sso-token");
    let cache: serde_json::Value = serde_json::from_slice(&fs.contents(&name).unwrap()).unwrap();
    assert_eq!(cache["expiresAt"], "9999-12-31T23:59:59Z");
}

#[test]
fn a_busy_sso_portal_is_asked_once_and_its_error_is_retryable() {
    // one attempt, as the Rust SDK makes; a server error or throttling is an error a later
    // load may cure, a refusal is not
    let fresh = "2099-01-01T00:00:00Z";
    for (status, retryable) in [
        (StatusCode::TOO_MANY_REQUESTS, true),
        (StatusCode::SERVICE_UNAVAILABLE, true),
        (StatusCode::FORBIDDEN, false),
        (StatusCode::NOT_FOUND, false),
    ] {
        let (mut c, _, _) = sso_refresh_setup(&[], fresh, fresh, false);
        let mut calls = 0;
        let e = drive(&mut c, now, |_req| {
            calls += 1;
            Ok::<_, String>((status, HeaderMap::new(), Bytes::new()))
        })
        .unwrap_err();
        assert_eq!(calls, 1, "{status}");
        assert_eq!(e.is_retryable(), retryable, "{status}: {e}");
        assert!(e.to_string().contains(status.as_str()), "{e}");
    }
}

#[test]
fn an_sso_refresh_that_fails_for_want_of_a_server_is_not_a_login_prompt() {
    let fresh = "2099-01-01T00:00:00Z";
    let soon = "2023-11-14T22:14:20Z";
    let expired = "2023-11-14T22:00:00Z";
    let busy = (StatusCode::INTERNAL_SERVER_ERROR, "{}");
    // a server error: retried as the configuration says (3 attempts), then the old token
    // serves while it is valid
    let (mut c, _, _) = sso_refresh_setup(&[], soon, fresh, false);
    let (result, seen) = drive_sso(&mut c, busy);
    result.unwrap();
    let posts = seen.iter().filter(|s| s.0 == "POST").count();
    assert_eq!((posts, seen.len()), (3, 4), "{seen:?}");
    assert_eq!(seen[3].2, "a-cached-sso-token");
    // an expired token: the server's error, worth retrying later; not `aws sso login`
    for oidc in [Some(busy), None] {
        let (mut c, _, _) = sso_refresh_setup(&[], expired, fresh, false);
        let (result, seen) = drive_sso_or_fail(&mut c, oidc);
        let e = result.unwrap_err();
        assert!(
            !matches!(e, CredentialsError::SsoLoginRequired { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("SSO OIDC"), "{e}");
        assert!(e.is_retryable(), "{e:?}");
        assert!(seen.iter().all(|s| s.0 == "POST"), "{seen:?}");
    }
    // no request can be made (an endpoint override with a query): the old token serves while
    // valid, else the configuration error
    let bad = [("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:4321/?x=1")];
    let (mut c, _, _) = sso_refresh_setup(&bad, soon, fresh, false);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    result.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (mut c, _, _) = sso_refresh_setup(&bad, expired, fresh, false);
    let (result, seen) = drive_sso(&mut c, (StatusCode::OK, NEW_TOKEN));
    let e = result.unwrap_err();
    assert!(matches!(e, CredentialsError::InvalidConfig { .. }), "{e:?}");
    assert!(seen.is_empty(), "{seen:?}");
}

#[test]
fn a_refreshed_sso_token_serves_even_when_it_cannot_be_written() {
    /// Reads a `MemFs`, writes nothing (the trait's default)
    struct ReadOnly(MemFs);
    impl FileReader for ReadOnly {
        fn read(&self, path: &std::path::Path) -> std::io::Result<Vec<u8>> {
            self.0.read(path)
        }
    }
    let (_, fs, name) =
        sso_refresh_setup(&[], "2023-11-14T22:14:20Z", "2099-01-01T00:00:00Z", false);
    let before = fs.contents(&name);
    let read_only = Arc::new(ReadOnly((*fs).clone()));
    let shared = shared_config(&[("AWS_PROFILE", "dev")], &fs);
    let mut c = CredentialsChain::with_providers(
        &shared,
        read_only as Arc<dyn FileReader>,
        &ProviderKind::DEFAULT_CHAIN,
    );
    // an answer without a refresh token
    let (result, seen) = drive_sso(
        &mut c,
        (
            StatusCode::OK,
            r#"{"accessToken":"a-new-sso-token","expiresIn":3600}"#,
        ),
    );
    result.unwrap();
    assert_eq!(seen[1].2, "a-new-sso-token");
    assert_eq!(fs.contents(&name), before);
    // written, an answer without a refresh token keeps the old one
    let (mut c, fs, name) =
        sso_refresh_setup(&[], "2023-11-14T22:14:20Z", "2099-01-01T00:00:00Z", false);
    let (result, _) = drive_sso(
        &mut c,
        (
            StatusCode::OK,
            r#"{"accessToken":"a-new-sso-token","expiresIn":3600}"#,
        ),
    );
    result.unwrap();
    let cache: serde_json::Value = serde_json::from_slice(&fs.contents(&name).unwrap()).unwrap();
    assert_eq!(cache["accessToken"], "a-new-sso-token");
    assert_eq!(cache["refreshToken"], "sso-refresh-token");
}

#[test]
fn a_token_cache_changed_during_the_refresh_is_not_overwritten() {
    let (mut c, fs, name) =
        sso_refresh_setup(&[], "2023-11-14T22:14:20Z", "2099-01-01T00:00:00Z", false);
    let Step::Send(req) = c.next_step(now()) else {
        panic!("CreateToken expected")
    };
    assert_eq!(req.uri().path(), "/token");
    // meanwhile `aws sso login` writes a new session
    let login = br#"{"accessToken": "from-a-new-login", "expiresAt": "2099-01-01T00:00:00Z"}"#;
    fs.write(std::path::Path::new(&name), login).unwrap();
    c.handle_response(
        StatusCode::OK,
        HeaderMap::new(),
        Bytes::from_static(NEW_TOKEN.as_bytes()),
    );
    let Step::Send(req) = c.next_step(now()) else {
        panic!("the portal call expected")
    };
    assert_eq!(req.headers()["x-amz-sso_bearer_token"], "a-new-sso-token");
    assert_eq!(
        fs.contents(&name).as_deref(),
        Some(&login[..]),
        "left as the login wrote it"
    );
}

/// The cache file name the AWS CLI uses (SHA-1 hex), computed independently of the crate
fn sha1_of(s: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | sha1sum"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_owned()
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let c = creds(None);
    assert_no_secret(&format!("{c:?} {c:#?}"));
    let env = Env::from_pairs([
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
    ]);
    assert_no_secret(&format!("{env:?}"));
    let fs = MemFs::new()
        .with("/home/.aws/credentials", format!("[default]\naws_access_key_id = AKID\naws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n"))
        .with("/token", "web-identity-jwt");
    assert_no_secret(&format!("{fs:?}"));
    let shared = shared_config(&[], &fs);
    assert_no_secret(&format!("{shared:?} {:?}", shared.active_profile()));

    // requests that carry tokens: web identity (body), SSO, container and IMDS (headers)
    let mut c = chain(
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ],
        fs.clone(),
        &[ProviderKind::WebIdentity],
    );
    let step = c.next_step(now());
    assert!(matches!(step, Step::Send(_)));
    assert_no_secret(&format!("{step:?} {c:?}"));
    let mut c = chain(
        &[
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token"),
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c"),
        ],
        MemFs::new(),
        &[ProviderKind::Container],
    );
    let Step::Send(req) = c.next_step(now()) else {
        panic!()
    };
    assert_eq!(req.headers()["authorization"], "ecs-auth-token");
    assert_no_secret(&format!("{:?}", req.headers()));
    // an error answer that echoes secrets in no field we show
    c.handle_response(
        StatusCode::FORBIDDEN,
        HeaderMap::new(),
        Bytes::from(format!("{{\"SecretAccessKey\":\"{SECRET}\"}}")),
    );
    let Step::Done(Err(e)) = c.next_step(now()) else {
        panic!()
    };
    assert_no_secret(&format!("{e} {e:?}"));

    // a process whose stdout holds secrets but fails
    let out = invoke_config::ProcessOutput {
        success: false,
        status: "exit status: 3".into(),
        stdout: SECRET.as_bytes().to_vec(),
        stderr: b"token expired, log in again".to_vec(),
    };
    assert_no_secret(&format!("{out:?}"));
    let fs = MemFs::new().with(
        "/home/.aws/config",
        "[default]\ncredential_process = my-helper\n",
    );
    let mut c = chain(&[], fs, &[ProviderKind::Profile]);
    let Step::Run(cmd) = c.next_step(now()) else {
        panic!()
    };
    assert_eq!(cmd.command, "my-helper");
    c.handle_process_output(Ok(out));
    let Step::Done(Err(e)) = c.next_step(now()) else {
        panic!()
    };
    let msg = e.to_string();
    assert!(
        msg.contains("exit status: 3") && msg.contains("token expired, log in again"),
        "{msg}"
    );
    assert_no_secret(&format!("{msg} {e:?}"));

    // arguments of a credential_process may be secrets: Debug shows the program only
    let fs = MemFs::new().with(
        "/home/.aws/config",
        format!("[default]\ncredential_process = my-helper --token {TOKEN}\n"),
    );
    let shared = shared_config(&[], &fs);
    assert_no_secret(&format!("{shared:?} {:?}", shared.active_profile()));
    let mut c = chain(&[], fs, &[ProviderKind::Profile]);
    let step = c.next_step(now());
    let Step::Run(cmd) = &step else { panic!() };
    assert!(cmd.command.ends_with(TOKEN), "the command itself is whole");
    let shown = format!("{step:?} {c:?}");
    assert_no_secret(&shown);
    assert!(shown.contains("my-helper"), "{shown}");

    let cache = CredentialsCache::new(creds(None), now);
    cache.provide_credentials().unwrap();
    assert_no_secret(&format!("{cache:?}"));
}

#[test]
fn a_profile_named_but_not_defined_stops_the_chain() {
    // AWS_PROFILE with a typo on a machine with a role: not the machine's role, as in the SDKs
    let e = refusal(
        &[("AWS_PROFILE", "prod-typo")],
        MemFs::new().with("/home/.aws/config", "[profile prod]\nregion = eu-west-1\n"),
        &ProviderKind::DEFAULT_CHAIN,
    );
    assert!(matches!(e, CredentialsError::InvalidConfig { .. }), "{e:?}");
    assert!(
        e.to_string().contains("profile `prod-typo` is not defined"),
        "{e}"
    );
}

#[test]
fn container_answers_without_a_session_are_refused() {
    for body in [
        r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t"}"#,
        r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"s","Expiration":"2099-01-01T00:00:00Z"}"#,
    ] {
        let mut c = chain(
            &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c")],
            MemFs::new(),
            &[ProviderKind::Container],
        );
        let Step::Send(_) = c.next_step(now()) else {
            panic!()
        };
        c.handle_response(StatusCode::OK, HeaderMap::new(), Bytes::from(body));
        let Step::Done(Err(e)) = c.next_step(now()) else {
            panic!("{body}: credentials without an expiry or token accepted")
        };
        let msg = e.to_string();
        assert!(
            msg.contains("no Expiration") || msg.contains("no Token"),
            "{msg}"
        );
    }
}

/// A container endpoint that answers 500 or 429 is asked again (the same request, the next
/// attempt); a 4xx other than 429 is final
#[test]
fn container_server_errors_and_throttling_are_retried() {
    let env = [("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c")];
    for transient in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let mut c = chain(&env, MemFs::new(), &[ProviderKind::Container]);
        let mut attempts = Vec::new();
        let got = loop {
            match c.next_step(now()) {
                Step::Send(req) => {
                    let n = req.extensions().get::<invoke_config::Attempt>().unwrap().0;
                    attempts.push(n);
                    let (status, body) = if n == 1 {
                        (transient, "busy")
                    } else {
                        (StatusCode::OK, CONTAINER_ANSWER)
                    };
                    c.handle_response(status, HeaderMap::new(), Bytes::from(body));
                }
                Step::Done(r) => break r,
                Step::Run(_) => panic!("no process"),
            }
        };
        assert_eq!(attempts, [1, 2], "{transient}");
        assert_eq!(got.unwrap().credentials.access_key_id(), "ASIA1");
    }
    let mut c = chain(&env, MemFs::new(), &[ProviderKind::Container]);
    let Step::Send(_) = c.next_step(now()) else {
        panic!()
    };
    c.handle_response(StatusCode::FORBIDDEN, HeaderMap::new(), Bytes::from("no"));
    assert!(matches!(c.next_step(now()), Step::Done(Err(_))));
}

#[test]
fn sts_goes_to_the_region_the_client_resolved() {
    let fs = MemFs::new().with(
        "/home/.aws/config",
        "[default]\nrole_arn = arn:aws-cn:iam::123456789012:role/r\nsource_profile = base\n\
         [profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = basesecret\n",
    );
    let shared = shared_config(&[("AWS_REGION", "us-west-2")], &fs);
    for (client_region, host) in [
        (None, "sts.us-west-2.amazonaws.com"),
        (Some("cn-north-1"), "sts.cn-north-1.amazonaws.com.cn"),
    ] {
        let shared = shared
            .clone()
            .with_client_region(client_region.map(str::to_owned));
        let mut c = CredentialsChain::with_providers(
            &shared,
            Arc::new(fs.clone()),
            &[ProviderKind::Profile],
        );
        let Step::Send(req) = c.next_step(now()) else {
            panic!()
        };
        assert_eq!(req.uri().host(), Some(host), "{client_region:?}");
    }
}

#[test]
fn a_refresh_buffer_past_the_clock_does_not_panic() {
    let expiring = creds(Some(now() + Duration::from_secs(3600)));
    let cache = CredentialsCache::new(move || Ok(expiring.clone()), now).with_buffer(Duration::MAX);
    // nothing that expires is ever fresh: every call loads
    cache.provide_credentials().unwrap();
    cache.provide_credentials().unwrap();
}

#[test]
fn cache_loads_once_for_concurrent_callers() {
    let loads = Arc::new(AtomicU32::new(0));
    let l = loads.clone();
    let cache = Arc::new(CredentialsCache::new(
        move || {
            l.fetch_add(1, Ordering::SeqCst);
            Ok(creds(None))
        },
        now,
    ));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache
                    .provide_credentials()
                    .unwrap()
                    .credentials
                    .access_key_id()
                    .to_owned()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "AKIDEXAMPLE");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn cache_refreshes_five_minutes_before_expiry_and_does_not_keep_errors() {
    let clock = Arc::new(AtomicU64::new(NOW));
    let loads = Arc::new(AtomicU32::new(0));
    let expiry = now() + Duration::from_secs(3600);
    let (l, fail_next) = (loads.clone(), Arc::new(AtomicU32::new(0)));
    let f = fail_next.clone();
    let c = clock.clone();
    let cache = CredentialsCache::new(
        move || {
            l.fetch_add(1, Ordering::SeqCst);
            if f.swap(0, Ordering::SeqCst) == 1 {
                return Err(CredentialsError::Usage("source down".into()));
            }
            Ok(creds(Some(expiry)))
        },
        move || SystemTime::UNIX_EPOCH + Duration::from_secs(c.load(Ordering::SeqCst)),
    );
    cache.provide_credentials().unwrap();
    clock.store(NOW + 3600 - 301, Ordering::SeqCst);
    cache.provide_credentials().unwrap();
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "still fresh 5 min 1 s before expiry"
    );
    clock.store(NOW + 3600 - 299, Ordering::SeqCst);
    fail_next.store(1, Ordering::SeqCst);
    assert!(cache.provide_credentials().is_err());
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "reloaded inside the buffer"
    );
    cache.provide_credentials().unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 3, "the error was not cached");
    cache.invalidate();
    cache.provide_credentials().unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 4);
}

#[test]
fn custom_sources_plug_in_as_trait_objects() {
    let sources: Vec<Box<dyn ProvideCredentials>> = vec![
        Box::new(creds(None)),
        Box::new(|| Ok(creds(None))),
        Box::new(CredentialsCache::new(creds(None), now)),
    ];
    for s in &sources {
        assert_eq!(
            s.provide_credentials()
                .unwrap()
                .credentials
                .secret_access_key(),
            SECRET
        );
    }
}

#[test]
fn process_runner_reports_failure_bounds_output_and_kills_on_timeout() {
    let cmd = |command: &str, timeout_ms, max_output| ProcessCommand {
        command: command.into(),
        timeout: Duration::from_millis(timeout_ms),
        max_output,
    };
    let out = run_process(&cmd("echo out; echo err >&2; exit 4", 10_000, 1024)).unwrap();
    assert!(!out.success);
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert!(out.status.contains('4'), "{}", out.status);
    let out = run_process(&cmd("head -c 100000 /dev/zero", 10_000, 1000)).unwrap();
    assert!(out.success);
    assert_eq!(out.stdout.len(), 1000);
    // a process left in the background holds stdout open after the command exited: what
    // the command wrote is kept
    let out = run_process(&cmd("sleep 3 & echo '{\"Version\": 1}'", 10_000, 1024)).unwrap();
    assert!(out.success);
    assert_eq!(out.stdout, b"{\"Version\": 1}\n");
    // the shell and its child are killed together: the marker file is never written
    let marker = std::env::temp_dir().join(format!("invoke-config-kill-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let script = format!("sleep 2 && touch {} ; sleep 30", marker.display());
    let e = run_process(&cmd(&format!("sh -c '{script}' & wait"), 50, 1024)).unwrap_err();
    assert!(e.contains("killed"), "{e}");
    // the group is gone, so nothing is left to write the marker
    let ps = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo args | grep -c '[t]ouch {}'",
            marker.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ps.stdout).trim(),
        "0",
        "a child of the command survived"
    );
}

#[test]
fn a_stopped_process_is_killed_or_never_started() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cmd = |command: String| ProcessCommand {
        command,
        timeout: Duration::from_secs(60),
        max_output: 1024,
    };
    let marker = std::env::temp_dir().join(format!("invoke-config-stop-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    // stopped before it starts: not started at all
    let stop = AtomicBool::new(true);
    let e = run_process_until(&cmd(format!("touch '{}'", marker.display())), &stop).unwrap_err();
    assert!(e.contains("stopped"), "{e}");
    assert!(!marker.exists(), "the command ran");
    // stopped once it runs: killed then, not at its 60 s limit (a hang guard bounds the wait)
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let (tx, rx) = std::sync::mpsc::channel();
    let started = format!("touch '{}'; exec sleep 120", marker.display());
    std::thread::spawn(move || {
        let _ = tx.send(run_process_until(&cmd(started), &flag));
    });
    let by = std::time::Instant::now() + Duration::from_secs(30);
    while !marker.exists() && std::time::Instant::now() < by {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(marker.exists(), "the command did not start");
    let _ = std::fs::remove_file(&marker);
    stop.store(true, Ordering::Relaxed);
    let e = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("stopped before its limit")
        .unwrap_err();
    assert!(e.contains("stopped"), "{e}");
}

#[test]
fn profile_role_chain_errors_are_clear() {
    for (config, want) in [
        (
            "[default]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = default\n",
            "cycle",
        ),
        (
            "[default]\nrole_arn = arn:aws:iam::1:role/a\n",
            "neither source_profile nor credential_source",
        ),
        (
            "[default]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Moon\n",
            "credential_source `Moon`",
        ),
        (
            "[default]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = nope\n",
            "`nope` is named as source_profile but does not exist",
        ),
        (
            "[default]\naws_access_key_id = AKID\n",
            "no aws_secret_access_key",
        ),
        (
            "[default]\nsso_start_url = https://x\n",
            "lacks sso_region, sso_account_id, sso_role_name",
        ),
    ] {
        let fs = MemFs::new().with("/home/.aws/config", config);
        let mut c = chain(&[], fs, &ProviderKind::DEFAULT_CHAIN);
        let Step::Done(Err(e)) = c.next_step(now()) else {
            panic!("{config}")
        };
        assert!(e.to_string().contains(want), "{config}: {e}");
    }
}

#[test]
fn assume_role_signs_with_the_source_keys_and_parses_the_answer() {
    let config = "[default]\nregion = eu-central-1\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\nexternal_id = ext-1\n\
                  [profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = basesecret\n";
    let fs = MemFs::new().with("/home/.aws/config", config);
    let mut c = chain(&[], fs, &ProviderKind::DEFAULT_CHAIN);
    let answer = "<AssumeRoleResponse><AssumeRoleResult><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn></AssumedRoleUser>\
        <Credentials><AccessKeyId>ASIANEW</AccessKeyId><SecretAccessKey>newsecret</SecretAccessKey><SessionToken>newtoken</SessionToken>\
        <Expiration>2023-11-14T23:13:20Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";
    let r = drive(&mut c, now, |req| {
        assert_eq!(req.uri(), "https://sts.eu-central-1.amazonaws.com/");
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.contains("Credential=AKIDBASE/20231114/eu-central-1/sts/aws4_request"),
            "{auth}"
        );
        let body = std::str::from_utf8(req.body()).unwrap();
        assert!(
            body.contains("ExternalId=ext-1")
                && body.contains("RoleSessionName=assume-role-from-profile-1700000000000"),
            "{body}"
        );
        Ok::<_, String>((StatusCode::OK, HeaderMap::new(), Bytes::from(answer)))
    })
    .unwrap();
    assert_eq!(r.credentials.access_key_id(), "ASIANEW");
    assert_eq!(r.account_id.as_deref(), Some("123456789012"));
    assert_eq!(r.expiry, Some(now() + Duration::from_secs(3600)));
    assert_eq!(r.provider, "profile");
}

#[test]
fn endpoint_overrides_and_container_paths_must_name_where_to_go() {
    let fs = || MemFs::new().with("/home/.aws/config", ASSUME_ROLE_CONFIG);
    // an STS endpoint URL is held to the rules of Lambda's: a URL without a host would send
    // a request to nowhere
    for bad in ["/no/host", "sts.example.com", "ftp://h", "http://user@h"] {
        let e = refusal(
            &[("AWS_ENDPOINT_URL_STS", bad)],
            fs(),
            &ProviderKind::DEFAULT_CHAIN,
        );
        assert!(e.to_string().contains("invalid endpoint url"), "{bad}: {e}");
        assert!(
            e.to_string()
                .contains("(from environment variable AWS_ENDPOINT_URL_STS)"),
            "{bad}: {e}"
        );
    }
    // user info is refused without its password showing
    let e = refusal(
        &[("AWS_ENDPOINT_URL", "https://me:s3cret@sts.example.com")],
        fs(),
        &ProviderKind::DEFAULT_CHAIN,
    );
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    assert!(e.to_string().contains("user info"), "{e}");
    for (good, want) in [
        ("http://127.0.0.1:4566/", "http://127.0.0.1:4566/"),
        (
            "https://sts.example.com/prefix",
            "https://sts.example.com/prefix/",
        ),
        ("http://[::1]:8080", "http://[::1]:8080/"),
    ] {
        let mut c = chain(
            &[("AWS_ENDPOINT_URL_STS", good)],
            fs(),
            &ProviderKind::DEFAULT_CHAIN,
        );
        let Step::Send(req) = c.next_step(now()) else {
            panic!("{good}: no request")
        };
        assert_eq!(req.uri(), want);
    }
    // a relative container URI is a path: appended to the ECS address, anything else would
    // name another host
    for bad in ["creds", ".example.com/creds", ":8080/creds"] {
        let env = [("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", bad)];
        let e = refusal(&env, MemFs::new(), &[ProviderKind::Container]);
        assert!(
            e.to_string().contains("does not start with `/`"),
            "{bad}: {e}"
        );
    }
}

/// Runs an IMDS region lookup to its end, `on_send` answering each request it makes
fn run_region_lookup(
    lookup: &mut invoke_config::ImdsRegion,
    mut on_send: impl FnMut(http::Request<Bytes>, &mut invoke_config::ImdsRegion),
) -> Result<String, String> {
    let mut sent = 0;
    loop {
        match lookup.next_step() {
            invoke_config::RegionStep::Send(req) => {
                sent += 1;
                within_bound(sent);
                on_send(req, lookup);
            }
            invoke_config::RegionStep::Done(r) => return r,
        }
    }
}

#[test]
fn imds_region_lookup() {
    use invoke_config::{ImdsRegion, RegionStep};
    let shared = |env: &[(&str, &str)]| {
        SharedConfig::load_with(
            Env::from_pairs(env.iter().copied()),
            &MemFs::new(),
            Platform::Unix,
            None,
        )
    };
    let mut off = ImdsRegion::new(&shared(&[("AWS_EC2_METADATA_DISABLED", "TRUE")]));
    assert!(matches!(off.next_step(), RegionStep::Done(Err(e)) if e.contains("DISABLED")));
    let shown = format!("{off:?}");
    assert!(
        shown.starts_with("ImdsRegion") && shown.contains("DISABLED"),
        "{shown}"
    );
    // an endpoint needs a scheme and a host
    for endpoint in ["169.254.169.254", "/latest"] {
        let mut bad = ImdsRegion::new(&shared(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)]));
        assert!(
            matches!(bad.next_step(), RegionStep::Done(Err(e)) if e.contains("scheme and a host")),
            "{endpoint}"
        );
    }

    // a 503 is retried; the token goes along; the answer is trimmed
    let mut lookup = ImdsRegion::new(&shared(&[(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "IPv6",
    )]));
    let mut seen = Vec::new();
    let mut answers = [(503, ""), (200, "tok"), (200, "ap-southeast-2\n")].into_iter();
    let region = run_region_lookup(&mut lookup, |req, lookup| {
        seen.push(format!(
            "{} {} {:?}",
            req.method(),
            req.uri(),
            req.headers().get("x-aws-ec2-metadata-token")
        ));
        let (status, body) = answers.next().unwrap();
        lookup.handle_response(
            StatusCode::from_u16(status).unwrap(),
            HeaderMap::new(),
            Bytes::from(body),
        );
    });
    assert_eq!(region.as_deref(), Ok("ap-southeast-2"));
    assert_eq!(seen[0], "PUT http://[fd00:ec2::254]/latest/api/token None");
    assert_eq!(seen[1], seen[0]);
    assert_eq!(
        seen[2],
        "GET http://[fd00:ec2::254]/latest/meta-data/placement/region Some(Sensitive)"
    );

    let mut refused = ImdsRegion::new(&shared(&[]));
    let RegionStep::Send(_) = refused.next_step() else {
        panic!()
    };
    refused.handle_response(StatusCode::FORBIDDEN, HeaderMap::new(), Bytes::new());
    assert!(matches!(refused.next_step(), RegionStep::Done(Err(e)) if e.contains("403")));

    // an unreachable endpoint is tried again, then given up with the transport's error
    let mut unreachable = ImdsRegion::new(&shared(&[]));
    let mut sends = 0;
    let e = run_region_lookup(&mut unreachable, |_, lookup| {
        sends += 1;
        lookup.handle_transport_error(&"connection refused");
    })
    .unwrap_err();
    assert!(sends > 1, "{sends}");
    assert!(e.contains("connection refused"), "{e}");

    // a region answer that is blank or too long to be a region is no region
    for bad in ["  ", &"x".repeat(65)] {
        let mut lookup = ImdsRegion::new(&shared(&[]));
        let mut answers = ["tok", bad].into_iter();
        let r = run_region_lookup(&mut lookup, |_, lookup| {
            let body = answers.next().unwrap().to_owned();
            lookup.handle_response(StatusCode::OK, HeaderMap::new(), Bytes::from(body));
        });
        assert!(r.is_err(), "{bad:?}: {r:?}");
    }
}

/// The access key id `provider` gives
fn key_of(provider: &dyn ProvideCredentials) -> String {
    let provided = provider.provide_credentials().unwrap();
    provided.credentials.access_key_id().to_owned()
}

#[test]
fn chain_provider_behind_a_cache_is_what_transports_plug_in() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<CredentialsChain>();
    assert_send_sync::<CredentialsCache>();
    assert_send_sync::<
        invoke_config::ChainProvider<
            fn(http::Request<Bytes>) -> Result<(StatusCode, HeaderMap, Bytes), String>,
        >,
    >();

    let env = Env::from_pairs([
        ("HOME", "/home"),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9/creds",
        ),
    ]);
    let fs: Arc<dyn invoke_config::FileReader> = Arc::new(MemFs::new());
    let shared = SharedConfig::load(env, &*fs);
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let send = move |req: http::Request<Bytes>| {
        c.fetch_add(1, Ordering::SeqCst);
        assert_eq!(req.uri(), "http://127.0.0.1:9/creds");
        Ok::<_, std::io::Error>((
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from(CONTAINER_ANSWER),
        ))
    };
    let provider: Arc<dyn ProvideCredentials> = Arc::new(CredentialsCache::new(
        invoke_config::ChainProvider::new(shared, fs, send, now),
        now,
    ));
    for _ in 0..3 {
        assert_eq!(key_of(&*provider), "ASIA1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

const ASSUME_ROLE_CONFIG: &str = "[default]\nregion = eu-central-1\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n\
                  [profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = basesecret\n";

const ASSUME_ROLE_ANSWER: &str = "<AssumeRoleResponse><AssumeRoleResult>\
    <Credentials><AccessKeyId>ASIANEW</AccessKeyId><SecretAccessKey>newsecret</SecretAccessKey><SessionToken>newtoken</SessionToken>\
    <Expiration>2023-11-14T23:13:20Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";

fn sts_error(code: &str) -> Bytes {
    Bytes::from(format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"
    ))
}

#[test]
fn sts_throttling_is_retried_though_its_status_is_400() {
    for code in ["Throttling", "IDPCommunicationError"] {
        let fs = MemFs::new().with("/home/.aws/config", ASSUME_ROLE_CONFIG);
        let mut c = chain(&[], fs, &ProviderKind::DEFAULT_CHAIN);
        let mut calls = 0;
        let r = drive(&mut c, now, |_req| {
            calls += 1;
            Ok::<_, String>(if calls == 1 {
                (StatusCode::BAD_REQUEST, HeaderMap::new(), sts_error(code))
            } else {
                (
                    StatusCode::OK,
                    HeaderMap::new(),
                    Bytes::from(ASSUME_ROLE_ANSWER),
                )
            })
        })
        .unwrap();
        assert_eq!(calls, 2, "{code}");
        assert_eq!(r.credentials.access_key_id(), "ASIANEW");
    }
    // other 400s are final at once, and not retryable
    let fs = MemFs::new().with("/home/.aws/config", ASSUME_ROLE_CONFIG);
    let mut c = chain(&[], fs, &ProviderKind::DEFAULT_CHAIN);
    let mut calls = 0;
    let e = drive(&mut c, now, |_req| {
        calls += 1;
        Ok::<_, String>((
            StatusCode::BAD_REQUEST,
            HeaderMap::new(),
            sts_error("ValidationError"),
        ))
    })
    .unwrap_err();
    assert_eq!(calls, 1);
    assert!(!e.is_retryable(), "{e}");
}

#[test]
fn a_huge_max_attempts_does_not_make_providers_ask_forever() {
    let mut c = chain(
        &[("AWS_MAX_ATTEMPTS", "4294967295")],
        MemFs::new(),
        &[ProviderKind::Imds],
    );
    let mut attempts = 0;
    loop {
        match c.next_step(now()) {
            Step::Send(_) => {
                attempts += 1;
                within_bound(attempts);
                c.handle_transport_error(&"connection refused");
            }
            Step::Done(r) => {
                assert!(r.is_err());
                break;
            }
            Step::Run(_) => panic!("no process"),
        }
    }
    assert_eq!(attempts, 5);
}

#[test]
fn sso_portal_answers_once_and_a_huge_expiration_is_an_error() {
    let config = "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n\
                  [sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://corp.awsapps.com/start\n";
    let name = format!("/home/.aws/sso/cache/{}.json", sha1_of("corp"));
    let fs = || {
        MemFs::new().with("/home/.aws/config", config).with(
            name.clone(),
            r#"{"accessToken": "a-cached-sso-token", "expiresAt": "2099-01-01T00:00:00Z"}"#,
        )
    };
    let answer = |expiration: u64| {
        Bytes::from(format!(
            r#"{{"roleCredentials":{{"accessKeyId":"ASIASSO","secretAccessKey":"ssosecret","sessionToken":"ssotoken","expiration":{expiration}}}}}"#
        ))
    };
    let mut c = chain(
        &[("AWS_PROFILE", "dev")],
        fs(),
        &ProviderKind::DEFAULT_CHAIN,
    );
    let r = drive(&mut c, now, |_req| {
        Ok::<_, String>((StatusCode::OK, HeaderMap::new(), answer(1_700_003_600_000)))
    })
    .unwrap();
    assert_eq!(r.credentials.access_key_id(), "ASIASSO");
    assert_eq!(r.expiry, Some(now() + Duration::from_secs(3600)));

    let mut c = chain(
        &[("AWS_PROFILE", "dev")],
        fs(),
        &ProviderKind::DEFAULT_CHAIN,
    );
    let e = drive(&mut c, now, |_req| {
        Ok::<_, String>((StatusCode::OK, HeaderMap::new(), answer(u64::MAX)))
    })
    .unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    assert_no_secret(&e.to_string());

    // no expiration: taken as expired (loaded again next time), never kept for good; one
    // that is no number of milliseconds is an error
    for (expiration, expect) in [
        ("", Ok(Some(SystemTime::UNIX_EPOCH))),
        (r#","expiration":null"#, Ok(Some(SystemTime::UNIX_EPOCH))),
        (r#","expiration":"2099-01-01T00:00:00Z""#, Err("not a time")),
        (r#","expiration":-1"#, Err("not a time")),
        (r#","expiration":1.5e12"#, Err("not a time")),
    ] {
        let mut c = chain(
            &[("AWS_PROFILE", "dev")],
            fs(),
            &ProviderKind::DEFAULT_CHAIN,
        );
        let body = format!(
            r#"{{"roleCredentials":{{"accessKeyId":"ASIASSO","secretAccessKey":"ssosecret","sessionToken":"ssotoken"{expiration}}}}}"#
        );
        let got = drive(&mut c, now, |_req| {
            Ok::<_, String>((StatusCode::OK, HeaderMap::new(), Bytes::from(body.clone())))
        });
        match (got, expect) {
            (Ok(r), Ok(expiry)) => assert_eq!(r.expiry, expiry, "{expiration}"),
            (Err(e), Err(text)) => {
                assert!(e.to_string().contains(text), "{expiration}: {e}");
                assert_no_secret(&e.to_string());
            }
            (got, _) => panic!("{expiration}: {got:?}"),
        }
    }
}

#[test]
fn a_chain_without_the_environment_provider_takes_the_profile_keys() {
    // what `lambda-stream invoke --profile` builds: keys exported for another account must
    // not win over the profile asked for
    let env = Env::from_pairs([
        ("HOME", "/home"),
        ("AWS_ACCESS_KEY_ID", "AKIDFROMENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
    ]);
    let fs = MemFs::new().with(
        "/home/.aws/credentials",
        "[ops]\naws_access_key_id = AKIDFROMPROFILE\naws_secret_access_key = profile-secret\n",
    );
    let shared = SharedConfig::load_with(env, &fs, Platform::Unix, Some("ops"));
    let fs = Arc::new(fs);
    let key = |shared: &SharedConfig| {
        let mut c = CredentialsChain::new(shared, Arc::clone(&fs) as _);
        let Step::Done(Ok(p)) = c.next_step(now()) else {
            panic!("static keys need no IO")
        };
        p.credentials.access_key_id().to_owned()
    };
    // the default chain (the SDKs' order, and the CLI with AWS_PROFILE): the environment first
    assert_eq!(key(&shared), "AKIDFROMENV");
    let without_env = shared.with_credential_providers(&ProviderKind::DEFAULT_CHAIN[1..]);
    assert_eq!(key(&without_env), "AKIDFROMPROFILE");
    // and when the profile has no keys, the chain names only the providers it asked
    let empty = SharedConfig::load_with(
        Env::from_pairs([("HOME", "/home"), ("AWS_ACCESS_KEY_ID", "AKIDFROMENV")]),
        &MemFs::new(),
        Platform::Unix,
        Some("ops"),
    )
    .with_credential_providers(&[ProviderKind::Profile]);
    let mut c = CredentialsChain::new(&empty, Arc::new(MemFs::new()));
    let Step::Done(Err(e)) = c.next_step(now()) else {
        panic!("no IO expected")
    };
    assert!(!e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
}

#[test]
fn an_unreadable_shared_file_is_taken_as_empty_as_the_sdks_do() {
    // a config file that is not UTF-8 beside a good credentials file: the profile's keys
    // still sign, the region comes from the environment, and the file says why it was skipped
    let fs = MemFs::new()
        .with("/home/.aws/config", b"[default]\nregion = \xff\n".to_vec())
        .with(
            "/home/.aws/credentials",
            format!(
                "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = {SECRET}\n"
            ),
        );
    let shared = shared_config(&[("AWS_REGION", "eu-west-1")], &fs);
    assert!(
        matches!(&shared.files()[0].1, invoke_config::config::FileStatus::Skipped(why) if why.contains("UTF-8")),
        "{:?}",
        shared.files()
    );
    let config = shared
        .resolve(&invoke_config::Overrides::new())
        .expect("the rest of the configuration resolves");
    assert_eq!(config.region.map(|r| r.value).as_deref(), Some("eu-west-1"));
    let mut c = chain(&[], fs, &ProviderKind::DEFAULT_CHAIN);
    let r = drive(&mut c, now, |_req| {
        Err::<(StatusCode, HeaderMap, Bytes), _>("no request".to_owned())
    })
    .expect("the profile's keys");
    assert_eq!(r.credentials.access_key_id(), "AKIDPROFILE");

    // both files unreadable: the chain goes on to the container endpoint
    let fs = MemFs::new()
        .with("/home/.aws/config", b"\xff".to_vec())
        .with("/home/.aws/credentials", b"\xfe".to_vec());
    let mut c = chain(
        &[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")],
        fs,
        &ProviderKind::DEFAULT_CHAIN,
    );
    let Step::Send(request) = c.next_step(now()) else {
        panic!("no request to the container endpoint")
    };
    assert_eq!(request.uri().host(), Some("169.254.170.2"));
}

#[test]
fn web_identity_retries_sts_throttling_too() {
    let fs = MemFs::new().with("/token", "web-identity-jwt");
    let mut c = chain(
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ],
        fs,
        &[ProviderKind::WebIdentity],
    );
    let mut calls = 0;
    let r = drive(&mut c, now, |_req| {
        calls += 1;
        Ok::<_, String>(if calls == 1 {
            (
                StatusCode::BAD_REQUEST,
                HeaderMap::new(),
                sts_error("IDPCommunicationError"),
            )
        } else {
            (
                StatusCode::OK,
                HeaderMap::new(),
                Bytes::from(ASSUME_ROLE_ANSWER),
            )
        })
    })
    .unwrap();
    assert_eq!(calls, 2);
    assert_eq!(r.credentials.access_key_id(), "ASIANEW");
}

#[test]
fn credential_process_runs_bounded_and_a_failed_start_is_an_error() {
    let fs = MemFs::new().with(
        "/home/.aws/config",
        "[default]\ncredential_process = my-helper --flag\n",
    );
    let mut c = chain(&[], fs, &[ProviderKind::Profile]);
    let Step::Run(cmd) = c.next_step(now()) else {
        panic!("no process asked for")
    };
    assert_eq!(
        (cmd.timeout, cmd.max_output),
        (Duration::from_secs(60), 64 * 1024)
    );
    assert_eq!(
        (
            invoke_config::PROCESS_TIMEOUT,
            invoke_config::PROCESS_MAX_OUTPUT
        ),
        (Duration::from_secs(60), 65_536)
    );
    c.handle_process_output(Err("No such file or directory".to_owned()));
    let Step::Done(Err(e)) = c.next_step(now()) else {
        panic!("the chain went on")
    };
    assert!(
        e.to_string()
            .contains("could not run the external process: No such file or directory"),
        "{e}"
    );
    assert!(!e.is_retryable());
}

/// The `AssumeRole` of a profile chain: the access key that signed it, and the result
fn assume_role(config: &str) -> (Vec<String>, Result<ProvidedCredentials, CredentialsError>) {
    let fs = MemFs::new().with("/home/.aws/config", config);
    let mut c = chain(&[], fs, &[ProviderKind::Profile]);
    let mut signers = Vec::new();
    let r = drive(&mut c, now, |req| {
        let auth = req.headers()["authorization"].to_str().unwrap();
        let key = auth.split("Credential=").nth(1).unwrap().split('/').next();
        signers.push(key.unwrap().to_owned());
        Ok::<_, String>((
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from(ASSUME_ROLE_ANSWER),
        ))
    });
    (signers, r)
}

#[test]
fn a_role_profile_assumes_its_role_with_its_sources_keys() {
    // its own source: its static keys sign the AssumeRole
    let (signers, r) = assume_role(
        "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = default\n\
         aws_access_key_id = AKIDSELF\naws_secret_access_key = s\n",
    );
    assert_eq!(signers, ["AKIDSELF"]);
    assert_eq!(r.unwrap().credentials.access_key_id(), "ASIANEW");
    // a role profile's own static keys are not its credentials: the role is
    let (signers, r) = assume_role(
        "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n\
         aws_access_key_id = AKIDFIRST\naws_secret_access_key = s\n\
         [profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = b\n",
    );
    assert_eq!(signers, ["AKIDBASE"]);
    assert_eq!(r.unwrap().credentials.access_key_id(), "ASIANEW");
}

#[test]
fn an_sso_profile_needs_both_account_and_role() {
    for missing in ["sso_account_id", "sso_role_name"] {
        let mut profile = String::from("[default]\nsso_session = corp\n");
        for line in ["sso_account_id = 111122223333\n", "sso_role_name = Admin\n"] {
            if !line.starts_with(missing) {
                profile.push_str(line);
            }
        }
        profile.push_str(
            "[sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://corp.awsapps.com/start\n",
        );
        let e = refusal(
            &[],
            MemFs::new().with("/home/.aws/config", profile),
            &[ProviderKind::Profile],
        );
        assert!(
            e.to_string()
                .contains("has no sso_account_id or sso_role_name"),
            "{missing}: {e}"
        );
    }
}

#[test]
fn container_endpoints_over_plain_http_must_be_local() {
    let uri = |full: &str| {
        invoke_config::container_uri(&Env::from_pairs([(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            full,
        )]))
    };
    for allowed in [
        "http://127.0.0.2:8080/creds",
        "http://[::1]:8080/creds",
        "http://LOCALHOST/creds",
        "http://169.254.170.23/v1/credentials",
        "https://creds.example.com/c",
    ] {
        assert!(matches!(uri(allowed), Ok(Ok(_))), "{allowed}");
    }
    for refused in [
        "http://creds.example.com/c",
        "http://192.168.1.10/c",
        "http://169.254.169.254/c",
        "http://[fd00:ec2::24]/c",
    ] {
        let e = uri(refused).unwrap_err();
        assert!(
            e.to_string()
                .contains("plain http is only allowed to loopback addresses"),
            "{refused}: {e}"
        );
    }
    let e = uri("ftp://localhost/c").unwrap_err();
    assert!(
        e.to_string().contains("the scheme must be http or https"),
        "{e}"
    );
}

#[test]
fn an_imds_step_refused_by_a_server_error_is_retryable_and_by_a_client_error_not() {
    // the token, the role list, then the credentials: each failing in turn
    for failing in 0..3 {
        for (status, retryable) in [
            (StatusCode::INTERNAL_SERVER_ERROR, true),
            (StatusCode::BAD_REQUEST, false),
        ] {
            let mut c = chain(&[], MemFs::new(), &[ProviderKind::Imds]);
            let e = drive(&mut c, now, |req| {
                let step = match req.uri().path() {
                    "/latest/api/token" => 0,
                    "/latest/meta-data/iam/security-credentials/" => 1,
                    _ => 2,
                };
                let answer = match step {
                    _ if step == failing => (status, Bytes::new()),
                    0 => (StatusCode::OK, Bytes::from_static(b"imds-token")),
                    _ => (StatusCode::OK, Bytes::from_static(b"my-role")),
                };
                Ok::<_, String>((answer.0, HeaderMap::new(), answer.1))
            })
            .unwrap_err();
            assert_eq!(e.is_retryable(), retryable, "step {failing}, {status}: {e}");
        }
    }
}

/// A chain and a chain provider show their profile in `Debug`, and never the credentials,
/// before or after loading them
#[test]
fn chains_debug_their_profile_and_no_secret() {
    let config = format!(
        "[profile ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n"
    );
    let fs = MemFs::new().with("/home/.aws/config", config);
    let mut c = chain(
        &[("AWS_PROFILE", "ops")],
        fs.clone(),
        &ProviderKind::DEFAULT_CHAIN,
    );
    let before = format!("{c:?}");
    let Step::Done(Ok(loaded)) = c.next_step(now()) else {
        panic!("static profile keys need no request")
    };
    assert_eq!(loaded.credentials.access_key_id(), "AKIDOPS");
    for shown in [before, format!("{c:?}")] {
        assert!(
            shown.starts_with("CredentialsChain") && shown.contains("\"ops\""),
            "{shown}"
        );
        assert_no_secret(&shown);
    }

    let shared = shared_config(&[("AWS_PROFILE", "ops")], &fs);
    let send = |_: http::Request<Bytes>| -> Result<(StatusCode, HeaderMap, Bytes), String> {
        panic!("static profile keys need no request")
    };
    let provider = invoke_config::ChainProvider::new(shared, Arc::new(fs), send, now);
    assert_eq!(key_of(&provider), "AKIDOPS");
    let shown = format!("{provider:?}");
    assert!(
        shown.starts_with("ChainProvider") && shown.contains("\"ops\""),
        "{shown}"
    );
    assert_no_secret(&shown);
}
