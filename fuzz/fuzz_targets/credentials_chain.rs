//! The default credentials chain, fed hostile configuration and hostile answers, ends without
//! a panic and never shows a secret
//!
//! Input, read with `arbitrary::Unstructured`: environment variables (names the chain reads,
//! values either telling ones or arbitrary text), the shared `config` and `credentials` files
//! (lines built from the keys profiles use, or arbitrary), the web identity token file, the
//! container authorization token file, two SSO token caches (with or without a refresh
//! grant), the current time; then, for every step the chain asks for, an answer: a transport
//! error or a response (a status, and a body shaped like what the provider asked expects: an
//! IMDS token, a role name, a JSON credentials document, an STS XML answer or error, an SSO
//! portal answer, an SSO OIDC `CreateToken` answer; or arbitrary bytes), or for a
//! `credential_process` its exit status and output. An SSO token cache the chain wrote back
//! must still be JSON with the token the answer gave.
//!
//! Secrets go only where secrets belong (secret keys, session tokens, bearer tokens and their
//! files), always as one of the distinctive `SECRETS` below.
//!
//! Checked: the chain reaches `Step::Done` within `MAX_STEPS` steps; no 12 characters of a
//! secret appear, at any step, in the `Debug` of the step, of the chain, of the configuration
//! or of a request's headers, nor at the end in the `Debug` of the credentials found or in the
//! `Debug` of the error and the `Display` of it and of each of its sources, unless the fuzzer
//! also wrote them somewhere that is not secret (a profile name, a file path, arbitrary bytes
//! of a body).
#![no_main]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arbitrary::{Result, Unstructured};
use invoke_config::bytes::Bytes;
use invoke_config::http::{HeaderMap, HeaderValue, StatusCode};
use invoke_config::{
    CredentialsChain, Env, MemFs, ProcessOutput, ProviderKind, SharedConfig, Step,
};
use libfuzzer_sys::fuzz_target;

/// Steps after which a chain that has not finished is taken to loop
const MAX_STEPS: usize = 2_000;

const HOME: &str = "/home/u";
const WEB_IDENTITY_FILE: &str = "/var/run/token";
const CONTAINER_TOKEN_FILE: &str = "/var/run/container-token";
/// `~/.aws/sso/cache/<sha1 of the session name or start URL>.json` for the `SSO_KEYS`
const SSO_KEYS: [(&str, &str); 2] = [
    ("s1", "640d87e741e6aa4c669a82a4cd304787960513ab"),
    (
        "https://d-123.awsapps.com/start",
        "2b829a45f04c9828cb45b7d092d8e4aa30818393",
    ),
];

/// Secret access keys, session tokens, bearer tokens, the IMDS token, an SSO refresh token and
/// client secret: each distinctive enough, and free of words, that finding any `WINDOW`
/// characters of one in a message means they were copied there
const SECRETS: [&str; 8] = [
    "Zq1AAAAwJalrXUtnFEMIK7MDENGbPxRfiCY",
    "Zq2BBBBIQoJb3JpZ2luX2VjEJr8xKq9Lm3",
    "Zq3CCCCeyJhbGciOiJSUzI1NiIsImtpZCI6",
    "Zq4DDDDbm90LWEtdG9rZW4x9QwErTyUv",
    "Zq5EEEEaoAAAAAGFyZWFsbG9uZ3Rva2Vu",
    "Zq6FFFFAQAEAqP3xVb7wKcNmY2sdJk==",
    "Zq7GGGGYXJuOmF3czpzc286cmVmcmVzaA",
    "Zq8HHHHc2VjcmV0LWNsaWVudC1vaWRj",
];

/// How many characters of a secret, anywhere in it, count as showing it: a message that
/// quotes part of a token leaks it too
const WINDOW: usize = 12;

const ENV_NAMES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_ENDPOINT_URL_SSO_OIDC",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
    "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_MAX_ATTEMPTS",
];

/// Values that lead somewhere: profile names, paths, URIs, ARNs, regions, switches
const VALUES: &[&str] = &[
    "",
    "default",
    "a",
    "b",
    "AKIDEXAMPLE",
    "us-east-1",
    "cn-north-1",
    "us-gov-west-1",
    "true",
    "false",
    "regional",
    "legacy",
    "IPv6",
    "IPv4",
    "0",
    "1",
    "3",
    "900",
    "43200",
    "-5",
    "99999999999999999999",
    "arn:aws:iam::123456789012:role/r",
    "arn:aws:iam::123456789012:mfa/u",
    "/v2/credentials/x",
    "http://127.0.0.1:8080/creds",
    "http://169.254.170.23/v1/credentials",
    "https://localhost/creds",
    "http://[fd00:ec2::23]/creds",
    "http://example.com/creds",
    "http://169.254.169.254",
    "http://[fd00:ec2::254]",
    "http://127.0.0.1:1338",
    "https://sts.example.com",
    "not a uri",
    "~/token",
    "/home/u/.aws/config",
    "/home/u/.aws/credentials",
    WEB_IDENTITY_FILE,
    CONTAINER_TOKEN_FILE,
    "s1",
    "https://d-123.awsapps.com/start",
    "Environment",
    "Ec2InstanceMetadata",
    "EcsContainer",
    "printf '{\"Version\":1}'",
    "aws-vault export --format=json x",
];

const PROFILE_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_account_id",
    "role_arn",
    "source_profile",
    "credential_source",
    "role_session_name",
    "external_id",
    "mfa_serial",
    "duration_seconds",
    "web_identity_token_file",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_account_id",
    "sso_role_name",
    "sso_registration_scopes",
    "region",
    "sts_regional_endpoints",
    "endpoint_url",
    "services",
    "use_fips_endpoint",
    "use_dualstack_endpoint",
    "ec2_metadata_service_endpoint",
    "ec2_metadata_service_endpoint_mode",
    "ec2_metadata_v1_disabled",
    "metadata_service_num_attempts",
    "max_attempts",
];

/// Whole configurations of each kind the chain knows, for the random lines to build on
const SCENARIOS: &[&str] = &[
    "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = Zq1AAAAwJalrXUtnFEMIK7MDENGbPxRfiCY\naws_session_token = Zq2BBBBIQoJb3JpZ2luX2VjEJr8xKq9Lm3\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = a\n[profile a]\nrole_arn = arn:aws:iam::123456789012:role/r2\nsource_profile = b\nexternal_id = x\n[profile b]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = Zq1AAAAwJalrXUtnFEMIK7MDENGbPxRfiCY\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = a\n[profile a]\nrole_arn = arn:aws:iam::123456789012:role/r2\nsource_profile = default\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\ncredential_source = Environment\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\ncredential_source = Ec2InstanceMetadata\nregion = us-west-2\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\ncredential_source = EcsContainer\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nweb_identity_token_file = /var/run/token\nrole_session_name = s\n",
    "[default]\ncredential_process = aws-vault export --format=json x\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = a\n[profile a]\ncredential_process = p\n",
    "[default]\nsso_start_url = https://d-123.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = r\n",
    "[default]\nsso_session = s1\nsso_account_id = 123456789012\nsso_role_name = r\n[sso-session s1]\nsso_start_url = https://d-123.awsapps.com/start\nsso_region = eu-west-1\n",
    "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = a\n[profile a]\nsso_session = s1\nsso_account_id = 123456789012\nsso_role_name = r\n[sso-session s1]\nsso_start_url = https://d-123.awsapps.com/start\nsso_region = us-east-1\n",
];

/// Keys whose values are secrets
const SECRET_KEYS: &[&str] = &["aws_secret_access_key", "aws_session_token"];

const SECTIONS: &[&str] = &[
    "[default]",
    "[profile default]",
    "[profile a]",
    "[profile b]",
    "[a]",
    "[b]",
    "[sso-session s1]",
    "[services svc]",
    "[profile a ]",
    "[ profile  b ]",
    "[profile]",
    "[",
];

/// Times for `Expiration` fields and cached tokens
const TIMES: &[&str] = &[
    "2024-01-15T12:00:00Z",
    // within the 5 minutes before expiry of the first clock below: a refresh is due
    "2024-01-15T12:03:00Z",
    "2099-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2024-01-15T12:00:00.123456+01:00",
    "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "yesterday",
    "",
];

/// What the fuzzer wrote outside secret places, to excuse a secret it copied there itself
#[derive(Default)]
struct Plain(String);

impl Plain {
    fn text<'a>(&mut self, s: &'a str) -> &'a str {
        self.push(s);
        s
    }

    fn bytes<'a>(&mut self, b: &'a [u8]) -> &'a [u8] {
        self.push(&String::from_utf8_lossy(b));
        b
    }

    /// Keeps `s` as written and as `Debug` shows it: its escapes (a NUL shown as `\0`, say)
    /// may complete a piece of a secret
    fn push(&mut self, s: &str) {
        self.0.push_str(s);
        self.0.push('\n');
        let _ = writeln!(self.0, "{s:?}");
    }

    /// The pieces of secrets that are fair to look for: every `WINDOW` characters of each
    /// secret, but those the fuzzer also wrote in plain
    fn unexcused(&self) -> impl Iterator<Item = &'static str> + '_ {
        SECRETS
            .into_iter()
            .flat_map(|s| (0..=s.len() - WINDOW).map(move |i| &s[i..i + WINDOW]))
            .filter(|w| !self.0.contains(w))
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = run(Unstructured::new(data));
});

fn run(mut u: Unstructured<'_>) -> Result<()> {
    let mut plain = Plain::default();
    let mut vars = vec![("HOME".to_owned(), HOME.to_owned())];
    for _ in 0..u.int_in_range(0..=10u8)? {
        let name = *u.choose(ENV_NAMES)?;
        let value =
            if matches!(name, "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN") && u.ratio(3, 4)? {
                u.choose(&SECRETS[..2])?.to_string()
            } else if name == "AWS_CONTAINER_AUTHORIZATION_TOKEN" && u.ratio(3, 4)? {
                SECRETS[3].to_owned()
            } else {
                plain.text(text(&mut u)?).to_owned()
            };
        vars.push((name.to_owned(), value));
    }
    let env = Env::from_pairs(vars);

    let mut fs = MemFs::new();
    fs.insert(
        format!("{HOME}/.aws/config"),
        profile_file(&mut u, &mut plain)?,
    );
    if u.ratio(1, 2)? {
        fs.insert(
            format!("{HOME}/.aws/credentials"),
            profile_file(&mut u, &mut plain)?,
        );
    }
    fs.insert(WEB_IDENTITY_FILE, secret_or_plain(&mut u, &mut plain, 2)?);
    fs.insert(
        CONTAINER_TOKEN_FILE,
        secret_or_plain(&mut u, &mut plain, 3)?,
    );
    for (_, sha1) in SSO_KEYS {
        if u.ratio(3, 4)? {
            let cache = sso_cache(&mut u, &mut plain)?;
            fs.insert(format!("{HOME}/.aws/sso/cache/{sha1}.json"), cache);
        }
    }
    let before: Vec<Option<Vec<u8>>> = SSO_KEYS
        .iter()
        .map(|(_, sha1)| fs.contents(format!("{HOME}/.aws/sso/cache/{sha1}.json")))
        .collect();
    let fs = Arc::new(fs);

    let mut shared = SharedConfig::load(env, &*fs);
    if u.ratio(1, 4)? {
        let mut providers = Vec::new();
        for kind in ProviderKind::DEFAULT_CHAIN {
            if u.arbitrary()? {
                providers.push(kind);
            }
        }
        shared = shared.with_credential_providers(&providers);
    }
    let now = SystemTime::UNIX_EPOCH
        + Duration::from_secs(*u.choose(&[1_705_320_000u64, 0, 4_102_444_800, 253_402_300_799])?);

    check(&[format!("{shared:?}")], &plain);
    let mut chain = CredentialsChain::new(&shared, Arc::clone(&fs) as _);
    for _ in 0..MAX_STEPS {
        let step = chain.next_step(now);
        let mut shown = vec![format!("{step:?}"), format!("{chain:?}")];
        match step {
            Step::Done(result) => {
                match &result {
                    Ok(found) => shown.push(format!("{found:?}")),
                    Err(e) => {
                        shown.push(format!("{e:?}"));
                        let mut source: Option<&dyn std::error::Error> = Some(e);
                        while let Some(e) = source {
                            shown.push(e.to_string());
                            source = e.source();
                        }
                    }
                }
                check(&shown, &plain);
                check_sso_caches(&fs, &before);
                return Ok(());
            }
            Step::Send(req) => {
                shown.push(format!("{:?}", req.headers()));
                check(&shown, &plain);
                let uri = req.uri().to_string();
                // STS and SSO OIDC (`/token`) are the providers that POST
                let oidc = req.uri().path() == "/token";
                let sts = req.method() == invoke_config::http::Method::POST && !oidc;
                if u.ratio(1, 8)? {
                    chain.handle_transport_error(&"connection refused");
                } else {
                    let (status, headers, body) = answer(&mut u, &mut plain, &uri, sts)?;
                    chain.handle_response(status, headers, body);
                }
            }
            Step::Run(_) => {
                check(&shown, &plain);
                let output = if u.ratio(1, 8)? {
                    Err(plain.text(text(&mut u)?).to_owned())
                } else {
                    Ok(ProcessOutput {
                        success: u.ratio(7, 8)?,
                        status: "exit status: 0".to_owned(),
                        stdout: credentials_json(&mut u, &mut plain, Case::Process)?,
                        stderr: plain.bytes(u.arbitrary::<&[u8]>()?).to_vec(),
                    })
                };
                chain.handle_process_output(output);
            }
        }
    }
    panic!("the chain did not finish in {MAX_STEPS} steps");
}

/// Fails if an SSO token cache was written back but is no longer JSON with a token
fn check_sso_caches(fs: &MemFs, before: &[Option<Vec<u8>>]) {
    for ((_, sha1), before) in SSO_KEYS.iter().zip(before) {
        let now = fs.contents(format!("{HOME}/.aws/sso/cache/{sha1}.json"));
        if now == *before {
            continue;
        }
        let text = String::from_utf8(now.expect("a cache is never removed")).expect("UTF-8");
        assert!(
            text.starts_with('{') && text.contains(&format!(r#""accessToken":"{}""#, SECRETS[4])),
            "a written cache without the new token: {text}"
        );
        let expires = text
            .split_once(r#""expiresAt":""#)
            .map(|(_, rest)| &rest[..rest.find('"').unwrap_or(0)]);
        // four-digit years: what the chain itself can read back
        assert!(
            expires.is_some_and(|e| e.len() == 20 && e.as_bytes()[4] == b'-' && e.ends_with('Z')),
            "{text}"
        );
    }
}

/// Fails if a secret the fuzzer kept in secret places was shown
fn check(shown: &[String], plain: &Plain) {
    for secret in plain.unexcused() {
        for s in shown {
            assert!(!s.contains(secret), "secret {secret} shown in: {s}");
        }
    }
}

fn text<'a>(u: &mut Unstructured<'a>) -> Result<&'a str> {
    if u.ratio(3, 4)? {
        u.choose(VALUES).copied()
    } else {
        u.arbitrary()
    }
}

/// The secret `SECRETS[index]` most of the time, else arbitrary plain text
fn secret_or_plain(u: &mut Unstructured<'_>, plain: &mut Plain, index: usize) -> Result<Vec<u8>> {
    Ok(if u.ratio(3, 4)? {
        let mut s = SECRETS[index].to_owned();
        if u.arbitrary()? {
            s.push('\n');
        }
        s.into_bytes()
    } else {
        plain.bytes(u.arbitrary::<&[u8]>()?).to_vec()
    })
}

/// A shared file: section headers and `key = value` lines of the keys profiles use, a few
/// sub-properties, comments, or arbitrary lines
fn profile_file(u: &mut Unstructured<'_>, plain: &mut Plain) -> Result<Vec<u8>> {
    let mut out = String::new();
    if u.ratio(1, 2)? {
        out.push_str(u.choose(SCENARIOS)?);
    }
    for _ in 0..u.int_in_range(0..=24u8)? {
        match u.int_in_range(0..=9u8)? {
            0 | 1 => out.push_str(u.choose(SECTIONS)?),
            2 => out.push_str(plain.text(u.arbitrary()?)),
            3 => out.push_str("# comment ; not a value"),
            4 => {
                out.push_str("  ");
                out.push_str(u.choose(PROFILE_KEYS)?);
                out.push_str(" = ");
                out.push_str(plain.text(text(u)?));
            }
            _ => {
                let key = *u.choose(PROFILE_KEYS)?;
                out.push_str(key);
                out.push_str(if u.arbitrary()? { " = " } else { "=" });
                if SECRET_KEYS.contains(&key) && u.ratio(3, 4)? {
                    out.push_str(u.choose(&SECRETS[..2])?);
                } else {
                    out.push_str(plain.text(text(u)?));
                }
            }
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// An SSO token cache file
fn sso_cache(u: &mut Unstructured<'_>, plain: &mut Plain) -> Result<Vec<u8>> {
    if u.ratio(1, 8)? {
        return Ok(plain.bytes(u.arbitrary::<&[u8]>()?).to_vec());
    }
    let token = if u.ratio(7, 8)? {
        SECRETS[4]
    } else {
        plain.text(text(u)?)
    };
    let refreshable = u.ratio(1, 2)?;
    // a refresh is due at the first clock of `run` (expired, or within 5 minutes of it)
    let expires = if refreshable && u.ratio(3, 4)? {
        *u.choose(&["2024-01-15T12:03:00Z", "2024-01-15T11:00:00Z"])?
    } else {
        *u.choose(TIMES)?
    };
    let grant = if refreshable {
        let refresh = if u.ratio(7, 8)? {
            SECRETS[6]
        } else {
            plain.text(text(u)?)
        };
        let registered = if u.ratio(3, 4)? {
            "2099-01-01T00:00:00Z"
        } else {
            *u.choose(TIMES)?
        };
        format!(
            r#","refreshToken":"{refresh}","clientId":"client-1","clientSecret":"{}","registrationExpiresAt":"{registered}""#,
            SECRETS[7]
        )
    } else {
        String::new()
    };
    Ok(format!(
        r#"{{"startUrl":"https://d-123.awsapps.com/start","region":"us-east-1","accessToken":"{token}","expiresAt":"{expires}"{grant}}}"#
    )
    .into_bytes())
}

/// An SSO OIDC `CreateToken` answer, its fields kept, dropped or spoiled at random
fn create_token_json(u: &mut Unstructured<'_>, plain: &mut Plain) -> Result<Vec<u8>> {
    let mut fields = Vec::new();
    if u.ratio(7, 8)? {
        fields.push(format!(r#""accessToken":"{}""#, SECRETS[4]));
    }
    if u.ratio(7, 8)? {
        let lifetime = if u.ratio(3, 4)? {
            "3600"
        } else {
            *u.choose(&["0", "-1", "1.5", "99999999999", "\"x\""])?
        };
        fields.push(format!(r#""expiresIn":{lifetime}"#));
    }
    if u.ratio(1, 2)? {
        fields.push(format!(r#""refreshToken":"{}""#, SECRETS[6]));
    }
    if u.ratio(1, 8)? {
        fields.push(format!(
            r#""tokenType":"{}""#,
            plain.text(text(u)?).escape_default()
        ));
    }
    Ok(format!("{{{}}}", fields.join(",")).into_bytes())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    /// IMDS and container endpoints: `AccessKeyId`, `Token`
    Metadata,
    /// `credential_process`: `Version`, `AccessKeyId`, `SessionToken`
    Process,
    /// The SSO portal: `roleCredentials`, camel case, expiration in milliseconds
    Sso,
}

/// A JSON credentials document in the shape `case` expects, its fields kept, dropped or
/// spoiled at random; or arbitrary bytes
fn credentials_json(u: &mut Unstructured<'_>, plain: &mut Plain, case: Case) -> Result<Vec<u8>> {
    if u.ratio(1, 8)? {
        return Ok(plain.bytes(u.arbitrary::<&[u8]>()?).to_vec());
    }
    let mut fields: Vec<String> = Vec::new();
    let mut field = |u: &mut Unstructured<'_>, name: &str, value: String| -> Result<()> {
        if u.ratio(7, 8)? {
            fields.push(format!("\"{name}\":{value}"));
        }
        Ok(())
    };
    let quoted = |s: &str| format!("\"{s}\"");
    let id = json_string(plain.text(text(u)?));
    let secret = quoted(SECRETS[0]);
    let token = quoted(SECRETS[1]);
    let expiry = quoted(u.choose(TIMES)?);
    match case {
        Case::Metadata => {
            let code = quoted(u.choose(&["Success", "Failure", ""])?);
            field(u, "Code", code)?;
            field(u, "Type", quoted("AWS-HMAC"))?;
            field(u, "AccessKeyId", id)?;
            field(u, "SecretAccessKey", secret)?;
            field(u, "Token", token)?;
            field(u, "Expiration", expiry)?;
            field(u, "AccountId", quoted("123456789012"))?;
        }
        Case::Process => {
            let version = u.choose(&["1", "2", "\"1\"", "null"])?.to_string();
            field(u, "Version", version)?;
            field(u, "AccessKeyId", id)?;
            field(u, "SecretAccessKey", secret)?;
            field(u, "SessionToken", token)?;
            field(u, "Expiration", expiry)?;
        }
        Case::Sso => {
            let millis = *u.choose(&[
                "1705320000000",
                "4102444800000",
                "253402300800000",
                "18446744073709551615",
                "-1",
                "1.5",
                "\"soon\"",
            ])?;
            let inner = format!(
                r#"{{"accessKeyId":{id},"secretAccessKey":{secret},"sessionToken":{token},"expiration":{millis}}}"#
            );
            field(u, "roleCredentials", inner)?;
        }
    }
    if u.ratio(1, 8)? {
        // a spoiled document: cut short
        let doc = format!("{{{}}}", fields.join(","));
        let cut = u.int_in_range(0..=doc.len())?;
        return Ok(doc.as_bytes()[..cut].to_vec());
    }
    Ok(format!("{{{}}}", fields.join(",")).into_bytes())
}

/// `s` as a JSON string
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as XML text
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An STS answer: credentials, or an error document
fn sts_xml(u: &mut Unstructured<'_>, plain: &mut Plain) -> Result<Vec<u8>> {
    if u.ratio(1, 4)? {
        let code = *u.choose(&[
            "AccessDenied",
            "Throttling",
            "IDPCommunicationError",
            "InvalidIdentityToken",
            "ExpiredTokenException",
        ])?;
        let message = xml_text(plain.text(text(u)?));
        return Ok(format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        )
        .into_bytes());
    }
    let action = *u.choose(&["AssumeRole", "AssumeRoleWithWebIdentity"])?;
    let mut parts = Vec::new();
    let id = xml_text(plain.text(text(u)?));
    for (name, value) in [
        ("AccessKeyId", id.as_str()),
        ("SecretAccessKey", SECRETS[0]),
        ("SessionToken", SECRETS[1]),
        ("Expiration", u.choose(TIMES)?),
    ] {
        if u.ratio(7, 8)? {
            parts.push(format!("<{name}>{value}</{name}>"));
        }
    }
    Ok(format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
         <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn></AssumedRoleUser>\
         <Credentials>{}</Credentials></{action}Result></{action}Response>",
        parts.join("")
    )
    .into_bytes())
}

/// A response to a request for `uri`: usually of the shape its provider expects
fn answer(
    u: &mut Unstructured<'_>,
    plain: &mut Plain,
    uri: &str,
    sts: bool,
) -> Result<(StatusCode, HeaderMap, Bytes)> {
    let status = if u.ratio(3, 4)? {
        StatusCode::OK
    } else {
        let code = *u.choose(&[400u16, 401, 403, 404, 405, 429, 500, 503, 504, 302, 204])?;
        StatusCode::from_u16(code).expect("valid status")
    };
    let mut headers = HeaderMap::new();
    if u.ratio(1, 4)? {
        let ttl = *u.choose(&["21600", "0", "-1", "x", "99999999999"])?;
        headers.insert(
            "x-aws-ec2-metadata-token-ttl-seconds",
            HeaderValue::from_static(ttl),
        );
    }
    let body = if u.ratio(1, 8)? {
        plain.bytes(u.arbitrary::<&[u8]>()?).to_vec()
    } else if uri.contains("/latest/api/token") {
        // the IMDS session token: a secret, sent back in a header
        if u.ratio(7, 8)? {
            SECRETS[5].as_bytes().to_vec()
        } else {
            plain
                .bytes(u.choose(&[&b""[..], b"\xff\xfe", b"a\nb"])?)
                .to_vec()
        }
    } else if uri.ends_with("/security-credentials/")
        || uri.ends_with("/security-credentials-extended/")
    {
        plain
            .bytes(u.choose(&[&b"my-role"[..], b"", b"a/b", b"r\nr2"])?)
            .to_vec()
    } else if uri.contains("federation/credentials") {
        credentials_json(u, plain, Case::Sso)?
    } else if uri.ends_with("/token") {
        create_token_json(u, plain)?
    } else if sts {
        sts_xml(u, plain)?
    } else {
        credentials_json(u, plain, Case::Metadata)?
    };
    Ok((status, headers, Bytes::from(body)))
}
