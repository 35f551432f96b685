//! The providers of the default chain, each a sans-IO state machine

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Uri};
use invoke_proto::Credentials;

use crate::config::{SharedConfig, parse_bool};
use crate::credentials::{
    Act, Call, CallResult, CredentialsError, Ctx, Exchange, Fail, HttpResponse, Input, Machine,
    OneCall, ProcessCommand, ProvidedCredentials, Session, misuse, parse_json_credentials,
};
use crate::imds::ImdsSettings;
use crate::profile::{ProfileSet, Section};
use crate::sha1::sha1_hex;
use crate::sso::{Sso, SsoFlow};
use crate::time::unix_millis;

/// Reads a small file through the caller's reader: `failed to read `PATH`: ERROR`
pub(crate) fn read_file(ctx: &Ctx<'_>, path: &str) -> Result<Vec<u8>, String> {
    ctx.fs
        .read(std::path::Path::new(path))
        .map_err(|e| format!("failed to read `{path}`: {e}"))
}

fn done(c: ProvidedCredentials) -> Act {
    Act::Done(Ok(c))
}

fn fail(e: CredentialsError) -> Act {
    Act::Done(Err(Fail::Error(e)))
}

/// Already-known credentials
pub(crate) struct Ready(pub(crate) Option<Result<ProvidedCredentials, Fail>>);

impl Machine for Ready {
    fn advance(&mut self, _: &Ctx<'_>, _: Option<Input>, _: SystemTime) -> Act {
        match self.0.take() {
            Some(outcome) => Act::Done(outcome),
            None => misuse(),
        }
    }
}

/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` (blank = unset)
pub(crate) fn from_env(shared: &SharedConfig) -> Result<ProvidedCredentials, Fail> {
    let env = &shared.env;
    match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            let token = env
                .get("AWS_SESSION_TOKEN")
                .or_else(|| env.get("AWS_SECURITY_TOKEN"));
            Ok(ProvidedCredentials::new(
                Credentials::new(id, secret, token.map(str::to_owned)),
                None,
                env.get("AWS_ACCOUNT_ID").map(str::to_owned),
                "environment",
            ))
        }
        (Some(_), None) => Err(Fail::NotConfigured(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
        )),
        (None, Some(_)) => Err(Fail::NotConfigured(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into(),
        )),
        (None, None) => Err(Fail::NotConfigured("AWS_ACCESS_KEY_ID is not set".into())),
    }
}

/// Where and how to reach STS or the SSO portal
#[derive(Debug, Clone)]
pub(crate) struct ServiceSettings {
    pub(crate) region: String,
    pub(crate) fips: bool,
    pub(crate) dual_stack: bool,
    pub(crate) custom: Option<crate::Sourced<String>>,
    pub(crate) max_attempts: u32,
}

impl ServiceSettings {
    /// STS or SSO settings from the shared config; `env_id`/`key` name the service's endpoint
    /// override (`STS`/`sts`, `SSO`/`sso`)
    pub(crate) fn from_shared(
        shared: &SharedConfig,
        region: Option<String>,
        env_id: &str,
        key: &str,
    ) -> Result<Self, CredentialsError> {
        let bad = |e: crate::ConfigError| CredentialsError::config("profile", e.to_string());
        let region = region
            .or_else(|| shared.client_region.clone())
            .or_else(|| {
                shared
                    .string_setting(&["AWS_REGION", "AWS_DEFAULT_REGION"], "region")
                    .map(|s| s.value)
            })
            .unwrap_or_else(|| "us-east-1".to_owned());
        let fips = shared
            .bool_setting(None, "AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint")
            .map_err(bad)?;
        let dual = shared
            .bool_setting(None, "AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint")
            .map_err(bad)?;
        let custom = shared.configured_endpoint(env_id, key).map_err(bad)?;
        let max_attempts = shared.attempts();
        Ok(Self {
            region,
            fips: fips.value,
            dual_stack: dual.value,
            custom,
            max_attempts,
        })
    }

    /// `https://{prefix}.{region}.{suffix}` (the FIPS form `{prefix}-fips`), or the custom URL
    pub(crate) fn base_uri(
        &self,
        prefix: &str,
        provider: &'static str,
    ) -> Result<String, CredentialsError> {
        if let Some(url) = &self.custom {
            // held to the rules of Lambda's own custom endpoint: http or https, a host, no
            // user info, query or fragment (a URL without a host would send no request)
            let endpoint = invoke_proto::resolve_endpoint(
                &invoke_proto::EndpointConfig::default().with_custom(url.value.clone()),
            )
            .map_err(|e| {
                CredentialsError::config(provider, format!("{e} (from {})", url.source))
            })?;
            return Ok(endpoint.to_string().trim_end_matches('/').to_owned());
        }
        let host = invoke_proto::regional_host(prefix, &self.region, self.fips, self.dual_stack)
            .map_err(|e| CredentialsError::config(provider, e.to_string()))?;
        Ok(format!("https://{host}"))
    }
}

pub(crate) fn parse_uri(s: &str, provider: &'static str) -> Result<Uri, CredentialsError> {
    s.parse::<Uri>()
        .map_err(|e| CredentialsError::config(provider, format!("invalid URI `{s}`: {e}")))
}

/// A role to assume with STS `AssumeRole`
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    pub(crate) role_arn: String,
    pub(crate) session_name: Option<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) duration_seconds: Option<String>,
}

/// STS `AssumeRole`, signed with the source credentials
pub(crate) struct AssumeRole {
    hop: Hop,
    source: ProvidedCredentials,
    sts: ServiceSettings,
}

impl AssumeRole {
    pub(crate) fn new(hop: Hop, source: ProvidedCredentials, sts: ServiceSettings) -> Self {
        Self { hop, source, sts }
    }
}

impl Exchange for AssumeRole {
    const NAME: &'static str = "STS AssumeRole";

    fn retryable(r: &HttpResponse) -> bool {
        crate::sts::retryable_answer(r)
    }

    fn parse(&self, r: &HttpResponse) -> Result<ProvidedCredentials, CredentialsError> {
        sts_outcome("AssumeRole", r, "profile")
    }

    fn request(
        &mut self,
        _: &Ctx<'_>,
        now: SystemTime,
    ) -> Result<Request<Bytes>, CredentialsError> {
        let session = self
            .hop
            .session_name
            .clone()
            .unwrap_or_else(|| format!("assume-role-from-profile-{}", unix_millis(now)));
        let mut params = vec![
            ("RoleArn", self.hop.role_arn.as_str()),
            ("RoleSessionName", session.as_str()),
        ];
        if let Some(id) = &self.hop.external_id {
            params.push(("ExternalId", id));
        }
        if let Some(d) = &self.hop.duration_seconds {
            params.push(("DurationSeconds", d));
        }
        let body = crate::sts::form("AssumeRole", &params);
        let uri = parse_uri(
            &format!("{}/", self.sts.base_uri("sts", "profile")?),
            "profile",
        )?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
            .map_err(|e| CredentialsError::config("profile", e.to_string()))?;
        let scope = invoke_proto::SigningScope::new(self.sts.region.clone(), "sts");
        invoke_proto::sign(&mut req, &self.source.credentials, &scope, now).map_err(|e| {
            CredentialsError::load(
                "profile",
                format!("could not sign the STS request: {e}"),
                false,
            )
        })?;
        Ok(req)
    }
}

fn sts_outcome(
    action: &str,
    r: &HttpResponse,
    provider: &'static str,
) -> Result<ProvidedCredentials, CredentialsError> {
    if r.status.is_success() {
        crate::sts::parse_success(action, &r.body, provider)
    } else {
        Err(crate::sts::parse_error(
            action,
            r.status.as_u16(),
            &r.body,
            provider,
        ))
    }
}

/// STS `AssumeRoleWithWebIdentity` with a token read from a file (unsigned)
pub(crate) struct WebIdentity {
    pub(crate) token_file: String,
    pub(crate) role_arn: String,
    pub(crate) session_name: Option<String>,
    pub(crate) sts: ServiceSettings,
    pub(crate) provider: &'static str,
}

impl Exchange for WebIdentity {
    const NAME: &'static str = "STS AssumeRoleWithWebIdentity";

    fn retryable(r: &HttpResponse) -> bool {
        crate::sts::retryable_answer(r)
    }

    fn parse(&self, r: &HttpResponse) -> Result<ProvidedCredentials, CredentialsError> {
        sts_outcome("AssumeRoleWithWebIdentity", r, self.provider)
    }

    fn request(
        &mut self,
        ctx: &Ctx<'_>,
        now: SystemTime,
    ) -> Result<Request<Bytes>, CredentialsError> {
        let token = read_file(ctx, &self.token_file)
            .map_err(|m| CredentialsError::load(self.provider, m, false))?;
        let token = String::from_utf8(token).map_err(|_| {
            CredentialsError::load(
                self.provider,
                format!("`{}` is not UTF-8", self.token_file),
                false,
            )
        })?;
        let session = self
            .session_name
            .clone()
            .unwrap_or_else(|| format!("web-identity-token-{}", unix_millis(now)));
        let body = crate::sts::form(
            "AssumeRoleWithWebIdentity",
            &[
                ("RoleArn", &self.role_arn),
                ("RoleSessionName", &session),
                ("WebIdentityToken", token.trim()),
            ],
        );
        let uri = parse_uri(
            &format!("{}/", self.sts.base_uri("sts", self.provider)?),
            self.provider,
        )?;
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
            .map_err(|e| CredentialsError::config(self.provider, e.to_string()))
    }
}

/// Web identity from `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`
pub(crate) fn web_identity_env(shared: &SharedConfig) -> Result<Box<dyn Machine>, Fail> {
    let env = &shared.env;
    let (Some(file), Some(role)) = (
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.get("AWS_ROLE_ARN"),
    ) else {
        return Err(Fail::NotConfigured(
            "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not both set".into(),
        ));
    };
    let sts = ServiceSettings::from_shared(shared, None, "STS", "sts")?;
    let attempts = sts.max_attempts;
    Ok(Box::new(OneCall::new(
        WebIdentity {
            token_file: file.to_owned(),
            role_arn: role.to_owned(),
            session_name: env.get("AWS_ROLE_SESSION_NAME").map(str::to_owned),
            sts,
            provider: "web identity",
        },
        "web identity",
        attempts,
    )))
}

/// `credential_process`: the caller runs the command, this parses its output
pub(crate) struct Process {
    pub(crate) command: String,
    pub(crate) account_id: Option<String>,
    pub(crate) started: bool,
}

/// How long a `credential_process` may run
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
/// The most bytes kept from each output stream of a `credential_process`
pub const PROCESS_MAX_OUTPUT: usize = 64 * 1024;

impl Machine for Process {
    fn advance(&mut self, _: &Ctx<'_>, input: Option<Input>, _: SystemTime) -> Act {
        const P: &str = "credential_process";
        if !self.started {
            self.started = true;
            return Act::Run(ProcessCommand {
                command: self.command.clone(),
                timeout: PROCESS_TIMEOUT,
                max_output: PROCESS_MAX_OUTPUT,
            });
        }
        let out = match input {
            Some(Input::Process(Ok(out))) => out,
            Some(Input::Process(Err(e))) => {
                return fail(CredentialsError::load(
                    P,
                    format!(
                        "Error retrieving credentials: could not run the external process: {e}"
                    ),
                    false,
                ));
            }
            _ => return misuse(),
        };
        if !out.success {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr: String = stderr.trim().chars().take(1024).collect();
            return fail(CredentialsError::load(
                P,
                format!(
                    "Error retrieving credentials: external process exited with code {}; stderr: {stderr}",
                    out.status
                ),
                false,
            ));
        }
        let parsed = parse_json_credentials(&out.stdout, P, &["SessionToken"], Session::Optional)
            .and_then(|c| {
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
                match v.get("Version").and_then(serde_json::Value::as_i64) {
                    Some(1) => Ok(c),
                    _ => Err("`Version` must be 1".to_owned()),
                }
            });
        match parsed {
            Ok(mut c) => {
                if c.account_id.is_none() {
                    c.account_id.clone_from(&self.account_id);
                }
                done(c)
            }
            Err(m) => fail(CredentialsError::load(
                P,
                format!(
                    "Error retrieving credentials from external process, could not parse response: {m}"
                ),
                false,
            )),
        }
    }
}

/// The base of a profile's credentials
enum Base {
    Static(ProvidedCredentials),
    Process {
        command: String,
        account_id: Option<String>,
    },
    WebIdentity {
        token_file: String,
        role_arn: String,
        session_name: Option<String>,
    },
    Sso(Box<SsoFlow>),
    Named(&'static str),
}

/// What a profile resolves to: a base and the roles to assume on top, innermost first
struct Plan {
    base: Base,
    hops: Vec<Hop>,
}

fn static_keys(p: &Section) -> Result<Option<ProvidedCredentials>, CredentialsError> {
    let Some(id) = p.get_nonempty("aws_access_key_id") else {
        return Ok(None);
    };
    let Some(secret) = p.get_nonempty("aws_secret_access_key") else {
        return Err(CredentialsError::config(
            "profile",
            format!(
                "profile `{}` has aws_access_key_id but no aws_secret_access_key",
                p.name()
            ),
        ));
    };
    Ok(Some(ProvidedCredentials::new(
        Credentials::new(
            id.trim(),
            secret.trim(),
            p.get_nonempty("aws_session_token")
                .map(|t| t.trim().to_owned()),
        ),
        None,
        p.get_nonempty("aws_account_id")
            .map(|a| a.trim().to_owned()),
        "profile",
    )))
}

fn nonempty(p: &Section, key: &str) -> Option<String> {
    p.get_nonempty(key).map(|v| v.trim().to_owned())
}

/// The SDKs' profile resolution: `role_arn` (with `web_identity_token_file`, `source_profile`
/// or `credential_source`), SSO, `credential_process`, static keys
/// Where a profile with `role_arn` takes its source credentials from
enum RoleStep {
    /// A base right here
    Base(Base),
    /// Another profile
    Source(String),
}

/// Pushes the role of `p` (unless it is a web identity role, which is the base itself)
fn role_step(
    p: &Section,
    role_arn: String,
    hops: &mut Vec<Hop>,
) -> Result<RoleStep, CredentialsError> {
    let name = p.name();
    let cfg = |m: String| CredentialsError::config("profile", m);
    if let Some(token_file) = nonempty(p, "web_identity_token_file") {
        return Ok(RoleStep::Base(Base::WebIdentity {
            token_file,
            role_arn,
            session_name: nonempty(p, "role_session_name"),
        }));
    }
    hops.push(Hop {
        role_arn,
        session_name: nonempty(p, "role_session_name"),
        external_id: nonempty(p, "external_id"),
        duration_seconds: nonempty(p, "duration_seconds"),
    });
    match (
        nonempty(p, "source_profile"),
        nonempty(p, "credential_source"),
    ) {
        (Some(_), Some(_)) => Err(cfg(format!(
            "profile `{name}` sets both source_profile and credential_source"
        ))),
        (Some(source), None) if source == name => match static_keys(p)? {
            Some(c) => Ok(RoleStep::Base(Base::Static(c))),
            None => Err(cfg(format!(
                "profile `{name}` is its own source_profile but has no static keys"
            ))),
        },
        (Some(source), None) => Ok(RoleStep::Source(source)),
        (None, Some(source)) => match source.as_str() {
            "Environment" => Ok(RoleStep::Base(Base::Named("environment"))),
            "Ec2InstanceMetadata" => Ok(RoleStep::Base(Base::Named("imds"))),
            "EcsContainer" => Ok(RoleStep::Base(Base::Named("container"))),
            other => Err(cfg(format!(
                "profile `{name}`: credential_source `{other}` is not one of Environment, Ec2InstanceMetadata, EcsContainer"
            ))),
        },
        (None, None) => Err(cfg(format!(
            "profile `{name}` has role_arn but neither source_profile nor credential_source"
        ))),
    }
}

fn plan(
    shared: &SharedConfig,
    set: &ProfileSet,
    start: &str,
) -> Result<Option<Plan>, CredentialsError> {
    let cfg = |m: String| CredentialsError::config("profile", m);
    let mut hops = Vec::new();
    let mut visited: Vec<String> = Vec::new();
    let mut name = start.to_owned();
    loop {
        let first = visited.is_empty();
        let Some(p) = set.profile(&name) else {
            if first {
                return Ok(None);
            }
            return Err(cfg(format!(
                "profile `{name}` is named as source_profile but does not exist"
            )));
        };
        if visited.contains(&name) {
            return Err(cfg(format!(
                "source_profile forms a cycle: {} -> {name}",
                visited.join(" -> ")
            )));
        }
        visited.push(name.clone());
        if !first && let Some(c) = static_keys(p)? {
            return Ok(Some(Plan {
                base: Base::Static(c),
                hops,
            }));
        }
        if let Some(role_arn) = nonempty(p, "role_arn") {
            match role_step(p, role_arn, &mut hops)? {
                RoleStep::Base(base) => return Ok(Some(Plan { base, hops })),
                RoleStep::Source(source) => {
                    name = source;
                    continue;
                }
            }
        }
        if let Some(sso) = sso_base(shared, set, p)? {
            return Ok(Some(Plan { base: sso, hops }));
        }
        if nonempty(p, "web_identity_token_file").is_some() {
            return Err(cfg(format!(
                "profile `{name}`: `web_identity_token_file` was specified but `role_arn` was missing"
            )));
        }
        if let Some(command) = nonempty(p, "credential_process") {
            let base = Base::Process {
                command,
                account_id: nonempty(p, "aws_account_id"),
            };
            return Ok(Some(Plan { base, hops }));
        }
        if let Some(c) = static_keys(p)? {
            return Ok(Some(Plan {
                base: Base::Static(c),
                hops,
            }));
        }
        if first {
            return Ok(None);
        }
        return Err(cfg(format!(
            "profile `{name}` is named as source_profile but has no credentials"
        )));
    }
}

fn sso_base(
    shared: &SharedConfig,
    set: &ProfileSet,
    p: &Section,
) -> Result<Option<Base>, CredentialsError> {
    let cfg = |m: String| CredentialsError::config("sso", m);
    let keys = [
        "sso_session",
        "sso_start_url",
        "sso_region",
        "sso_account_id",
        "sso_role_name",
    ];
    if !keys.iter().any(|k| p.get_nonempty(k).is_some()) {
        return Ok(None);
    }
    let name = p.name();
    let (session_key, start_url, region) = if let Some(session) = nonempty(p, "sso_session") {
        let Some(s) = set.sso_session(&session) else {
            return Err(cfg(format!(
                "profile `{name}` names sso_session `{session}`, which has no [sso-session {session}] section"
            )));
        };
        let region = nonempty(s, "sso_region")
            .ok_or_else(|| cfg(format!("[sso-session {session}] has no sso_region")))?;
        let url = nonempty(s, "sso_start_url")
            .ok_or_else(|| cfg(format!("[sso-session {session}] has no sso_start_url")))?;
        if nonempty(p, "sso_account_id").is_none() || nonempty(p, "sso_role_name").is_none() {
            return Err(cfg(format!(
                "profile `{name}` has no sso_account_id or sso_role_name: the selected profile will resolve an access token instead of credentials"
            )));
        }
        (session, url, region)
    } else {
        let mut missing = Vec::new();
        for k in [
            "sso_start_url",
            "sso_region",
            "sso_account_id",
            "sso_role_name",
        ] {
            if p.get_nonempty(k).is_none() {
                missing.push(k);
            }
        }
        if !missing.is_empty() {
            return Err(cfg(format!(
                "profile `{name}` uses SSO but lacks {}",
                missing.join(", ")
            )));
        }
        let url = nonempty(p, "sso_start_url").unwrap_or_default();
        (
            url.clone(),
            url,
            nonempty(p, "sso_region").unwrap_or_default(),
        )
    };
    let _ = start_url;
    let cache_file = shared.locations.in_home(
        shared.platform,
        &[
            ".aws",
            "sso",
            "cache",
            &format!("{}.json", sha1_hex(session_key.as_bytes())),
        ],
    );
    let portal = ServiceSettings::from_shared(shared, Some(region.clone()), "SSO", "sso")?;
    // only a session's token can be refreshed (a legacy cache holds no refresh token)
    let oidc = if nonempty(p, "sso_session").is_some() {
        Some(ServiceSettings::from_shared(
            shared,
            Some(region),
            "SSO_OIDC",
            "sso_oidc",
        )?)
    } else {
        None
    };
    let sso = Sso::new(
        cache_file,
        format!("`{session_key}`"),
        shared.profile_name.clone(),
        nonempty(p, "sso_account_id").unwrap_or_default(),
        nonempty(p, "sso_role_name").unwrap_or_default(),
        portal,
    );
    Ok(Some(Base::Sso(Box::new(SsoFlow::new(sso, oidc)))))
}

/// The active profile's credentials, with its role chain
pub(crate) struct ProfileMachine {
    base: Box<dyn Machine>,
    named: Option<&'static str>,
    base_done: bool,
    hops: VecDeque<Hop>,
    hop: Option<OneCall<AssumeRole>>,
    sts: ServiceSettings,
    profile: String,
}

/// The profile provider, or why it is not configured
pub(crate) fn profile_provider(
    shared: &SharedConfig,
    named: &dyn Fn(&'static str) -> Result<Box<dyn Machine>, Fail>,
) -> Result<Box<dyn Machine>, Fail> {
    let set = match &shared.profiles {
        Ok(set) => set,
        Err(e) => return Err(CredentialsError::config("profile", e.to_string()).into()),
    };
    let name = shared.profile_name.clone();
    let Some(plan) = plan(shared, set, &name)? else {
        let looked: Vec<_> = shared
            .files
            .iter()
            .map(|(p, _)| format!("`{}`", p.display()))
            .collect();
        let looked = if looked.is_empty() {
            "no shared files (no home folder)".to_owned()
        } else {
            looked.join(" and ")
        };
        if set.profile(&name).is_none() && name != "default" {
            // a profile asked for by name that is not there is a mistake, not a reason to
            // go on to the machine's role (the SDKs stop here too)
            return Err(CredentialsError::config(
                "profile",
                format!("profile `{name}` is not defined (looked in {looked})"),
            )
            .into());
        }
        return Err(Fail::NotConfigured(if set.profile(&name).is_some() {
            format!("profile `{name}` has no credentials (looked in {looked})")
        } else {
            let names: Vec<_> = set
                .profiles()
                .take(10)
                .map(|p| format!("`{}`", p.name()))
                .collect();
            let defined = if names.is_empty() {
                "no profiles".to_owned()
            } else {
                format!("profiles {}", names.join(", "))
            };
            format!("profile `{name}` is not defined (looked in {looked}, which define {defined})")
        }));
    };
    let sts = ServiceSettings::from_shared(shared, None, "STS", "sts")?;
    let sts_attempts = sts.max_attempts;
    let (base, named_src): (Box<dyn Machine>, _) = match plan.base {
        Base::Static(c) => (Box::new(Ready(Some(Ok(c)))), None),
        Base::Process {
            command,
            account_id,
        } => (
            Box::new(Process {
                command,
                account_id,
                started: false,
            }),
            None,
        ),
        Base::WebIdentity {
            token_file,
            role_arn,
            session_name,
        } => (
            Box::new(OneCall::new(
                WebIdentity {
                    token_file,
                    role_arn,
                    session_name,
                    sts: sts.clone(),
                    provider: "profile",
                },
                "profile",
                sts_attempts,
            )),
            None,
        ),
        Base::Sso(sso) => (sso, None),
        Base::Named(n) => match named(n) {
            Ok(m) => (m, Some(n)),
            Err(Fail::NotConfigured(reason)) => {
                return Err(not_enabled_source(&name, n, &reason).into());
            }
            Err(e) => return Err(e),
        },
    };
    let mut hops: VecDeque<Hop> = plan.hops.into();
    hops.make_contiguous().reverse();
    Ok(Box::new(ProfileMachine {
        base,
        named: named_src,
        base_done: false,
        hops,
        hop: None,
        sts,
        profile: name,
    }))
}

fn not_enabled_source(profile: &str, source: &str, reason: &str) -> CredentialsError {
    CredentialsError::config(
        "profile",
        format!(
            "profile `{profile}` takes its source credentials from {source}, but the credential provider was not enabled: {reason}"
        ),
    )
}

impl Machine for ProfileMachine {
    fn advance(&mut self, ctx: &Ctx<'_>, mut input: Option<Input>, now: SystemTime) -> Act {
        loop {
            let act = match (&mut self.hop, self.base_done) {
                (Some(hop), _) => hop.advance(ctx, input.take(), now),
                (None, false) => self.base.advance(ctx, input.take(), now),
                (None, true) => return misuse(),
            };
            match act {
                Act::Done(Ok(mut c)) => {
                    self.base_done = true;
                    if let Some(hop) = self.hops.pop_front() {
                        let attempts = self.sts.max_attempts;
                        let role = AssumeRole::new(hop, c, self.sts.clone());
                        self.hop = Some(OneCall::new(role, "profile", attempts));
                    } else {
                        c.provider = "profile";
                        return done(c);
                    }
                }
                Act::Done(Err(Fail::NotConfigured(reason))) => {
                    let source = self.named.unwrap_or("its source");
                    return fail(not_enabled_source(&self.profile, source, &reason));
                }
                other => return other,
            }
        }
    }
}

/// The container endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`)
pub(crate) struct Container {
    uri: Uri,
    token: Option<Result<String, String>>,
    token_file: Option<String>,
}

/// The URI the container provider would call, checked as the SDKs check it
///
/// # Errors
///
/// `Ok(Err(reason))` when neither variable is set; `Err` for a URI that is not allowed.
pub fn container_uri(env: &crate::Env) -> Result<Result<Uri, String>, CredentialsError> {
    const P: &str = "container";
    if let Some(rel) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        // a path: anything else would change the host it is appended to
        // (`.example.com/x` makes `169.254.170.2.example.com`)
        if !rel.starts_with('/') {
            return Err(CredentialsError::config(
                P,
                format!("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI `{rel}` does not start with `/`"),
            ));
        }
        return parse_uri(&format!("http://169.254.170.2{rel}"), P).map(Ok);
    }
    let Some(full) = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
        return Ok(Err(
            "No environment variables were set to configure ECS provider (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI)".into(),
        ));
    };
    let uri = parse_uri(full, P)?;
    let Some(host) = uri.host() else {
        return Err(CredentialsError::config(
            P,
            format!("invalid URI `{full}`: URI did not specify a host"),
        ));
    };
    match uri.scheme_str() {
        Some("https") => Ok(Ok(uri)),
        Some("http") if container_host_allowed(host) => Ok(Ok(uri)),
        Some("http") => Err(CredentialsError::config(
            P,
            format!(
                "`{full}`: plain http is only allowed to loopback addresses and the ECS/EKS link-local addresses, not `{host}`"
            ),
        )),
        _ => Err(CredentialsError::config(
            P,
            format!("`{full}`: the scheme must be http or https"),
        )),
    }
}

fn container_host_allowed(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            ip.is_loopback()
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 2)
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 23)
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip
                    == "fd00:ec2::23"
                        .parse::<std::net::Ipv6Addr>()
                        .expect("valid address")
        }
        Err(_) => false,
    }
}

pub(crate) fn container(
    shared: &SharedConfig,
    max_attempts: u32,
) -> Result<Box<dyn Machine>, Fail> {
    let env = &shared.env;
    let uri = match container_uri(env)? {
        Ok(uri) => uri,
        Err(reason) => return Err(Fail::NotConfigured(reason)),
    };
    Ok(Box::new(OneCall::new(
        Container {
            uri,
            token: env
                .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                .map(|t| Ok(t.to_owned())),
            token_file: env
                .get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .map(str::to_owned),
        },
        "container",
        max_attempts,
    )))
}

impl Exchange for Container {
    const NAME: &'static str = "the container endpoint";

    fn parse(&self, r: &HttpResponse) -> Result<ProvidedCredentials, CredentialsError> {
        const P: &str = "container";
        if !r.status.is_success() {
            return Err(CredentialsError::load(
                P,
                format!("the container endpoint returned HTTP {}", r.status.as_u16()),
                r.status.is_server_error(),
            ));
        }
        parse_json_credentials(&r.body, P, &["Token"], Session::Required)
            .map_err(|m| CredentialsError::load(P, m, false))
    }

    fn request(
        &mut self,
        ctx: &Ctx<'_>,
        _: SystemTime,
    ) -> Result<Request<Bytes>, CredentialsError> {
        const P: &str = "container";
        let token = match &self.token_file {
            Some(file) => Some(
                read_file(ctx, file)
                    .and_then(|b| {
                        String::from_utf8(b).map_err(|_| format!("`{file}` is not UTF-8"))
                    })
                    .map_err(|m| CredentialsError::load(P, m, false))?,
            ),
            None => self
                .token
                .take()
                .transpose()
                .map_err(|m| CredentialsError::load(P, m, false))?,
        };
        let mut b = Request::builder()
            .method(Method::GET)
            .uri(self.uri.clone())
            .header("accept", "application/json");
        if let Some(t) = token {
            let mut v = http::HeaderValue::from_str(t.trim()).map_err(|_| {
                CredentialsError::config(P, "the authorization token is not a valid header value")
            })?;
            v.set_sensitive(true);
            b = b.header("authorization", v);
        }
        b.body(Bytes::new())
            .map_err(|e| CredentialsError::config(P, e.to_string()))
    }
}

/// EC2 instance metadata, IMDSv2
pub(crate) struct Imds {
    settings: ImdsSettings,
    state: ImdsState,
    token: Option<http::HeaderValue>,
    call: Option<Call>,
}

enum ImdsState {
    Token,
    Role,
    Credentials,
}

pub(crate) fn imds(shared: &SharedConfig) -> Result<Box<dyn Machine>, Fail> {
    if shared
        .env
        .get("AWS_EC2_METADATA_DISABLED")
        .and_then(parse_bool)
        == Some(true)
    {
        return Err(Fail::NotConfigured(
            "AWS_EC2_METADATA_DISABLED is true".into(),
        ));
    }
    let settings = ImdsSettings::resolve(shared, None, None)
        .map_err(|e| CredentialsError::config("imds", e.to_string()))?;
    Ok(Box::new(Imds {
        settings,
        state: ImdsState::Token,
        token: None,
        call: None,
    }))
}

impl Imds {
    fn request(&self, path: &str) -> Result<Request<Bytes>, CredentialsError> {
        crate::imds::request(&self.settings, self.token.as_ref(), path)
            .map_err(|m| CredentialsError::config("imds", m))
    }

    fn start(&mut self, path: &str) -> Act {
        match self.request(path) {
            Ok(req) => self
                .call
                .insert(Call::new(req, self.settings.max_attempts))
                .send(),
            Err(e) => fail(e),
        }
    }
}

impl Machine for Imds {
    fn advance(&mut self, _: &Ctx<'_>, input: Option<Input>, _: SystemTime) -> Act {
        const P: &str = "imds";
        const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
        let Some(call) = &mut self.call else {
            return self.start("/latest/api/token");
        };
        let r = match call.on_input(input) {
            CallResult::Retry(act) => return act,
            CallResult::Response(r) => r,
            CallResult::Unreachable(e) => {
                return Act::Done(Err(Fail::NotConfigured(format!(
                    "instance metadata at {} could not be reached: {e}",
                    self.settings.endpoint
                ))));
            }
            CallResult::Misuse => return misuse(),
        };
        let status = r.status.as_u16();
        let text = String::from_utf8_lossy(&r.body).trim().to_owned();
        match self.state {
            ImdsState::Token => match status {
                200 => match http::HeaderValue::from_str(&text) {
                    Ok(mut v) => {
                        v.set_sensitive(true);
                        self.token = Some(v);
                        self.state = ImdsState::Role;
                        self.start(ROLES)
                    }
                    Err(_) => fail(CredentialsError::load(
                        P,
                        "IMDS returned a token that is not a valid header value",
                        false,
                    )),
                },
                403 => fail(CredentialsError::load(
                    P,
                    "request forbidden: IMDS is disabled or has been disallowed by permissions (HTTP 403 on the token request)",
                    false,
                )),
                _ => fail(CredentialsError::load(
                    P,
                    format!("IMDS token request failed with HTTP {status}"),
                    status >= 500,
                )),
            },
            ImdsState::Role => match status {
                200 => match text.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
                    Some(role) => {
                        let path = format!("{ROLES}{role}");
                        self.state = ImdsState::Credentials;
                        self.start(&path)
                    }
                    None => Act::Done(Err(Fail::NotConfigured(
                        "the instance has no IAM role (empty role list)".into(),
                    ))),
                },
                404 => Act::Done(Err(Fail::NotConfigured(
                    "the instance has no IAM role attached (HTTP 404 for the role list)".into(),
                ))),
                _ => fail(CredentialsError::load(
                    P,
                    format!("IMDS role list failed with HTTP {status}"),
                    status >= 500,
                )),
            },
            ImdsState::Credentials => {
                if status != 200 {
                    return fail(CredentialsError::load(
                        P,
                        format!("IMDS credentials request failed with HTTP {status}"),
                        status >= 500,
                    ));
                }
                let code = serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| v.get("Code").and_then(|c| c.as_str().map(str::to_owned)));
                if let Some(code) = code.filter(|c| c != "Success") {
                    return fail(CredentialsError::load(
                        P,
                        format!("IMDS credentials have Code `{code}`"),
                        false,
                    ));
                }
                match parse_json_credentials(&r.body, P, &["Token"], Session::Required) {
                    Ok(c) => done(c),
                    Err(m) => fail(CredentialsError::load(P, m, false)),
                }
            }
        }
    }
}
