//! SSO: the AWS CLI's cached token (refreshed through SSO OIDC `CreateToken` when it is
//! about to expire, and written back), then the portal's `GetRoleCredentials`

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request};
use invoke_proto::{Credentials, json};

use crate::credentials::{
    Act, Call, CallResult, CredentialsError, Ctx, Exchange, Fail, HttpResponse, Input, Machine,
    OneCall, ProvidedCredentials, misuse, transient_status,
};
use crate::providers::{ServiceSettings, parse_uri, read_file};
use crate::time::{format_rfc3339, parse_rfc3339, unix_secs};

const P: &str = "sso";

/// A token is refreshed once it expires within this long, as the SDKs do
const REFRESH_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The longest token lifetime believed from `CreateToken` (its tokens live hours)
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// 9999-12-31T23:59:59.999Z in milliseconds since the Unix epoch
const LAST_MILLISECOND_OF_9999: u64 = 253_402_300_799_999;

/// The portal's `GetRoleCredentials` with the token [`SsoFlow`] chose (the cache's, or the
/// refresh's)
pub(crate) struct Sso {
    cache_file: Option<PathBuf>,
    session: String,
    profile: String,
    account_id: String,
    role_name: String,
    portal: ServiceSettings,
    /// The token to send, set by [`SsoFlow`] before the request is made
    token: Option<String>,
}

/// What a refresh needs, from the token cache
struct Grant {
    refresh_token: String,
    client_id: String,
    client_secret: String,
}

/// The cache file as read: the whole document (written back with a new token), the token
/// and what a refresh needs, if the file has it and the client registration still holds
struct Cached {
    path: String,
    doc: serde_json::Value,
    access_token: String,
    expires_at: SystemTime,
    grant: Option<Grant>,
}

impl Sso {
    pub(crate) fn new(
        cache_file: Option<PathBuf>,
        session: String,
        profile: String,
        account_id: String,
        role_name: String,
        portal: ServiceSettings,
    ) -> Self {
        Self {
            cache_file,
            session,
            profile,
            account_id,
            role_name,
            portal,
            token: None,
        }
    }

    /// Reads the token cache; `now` decides whether the client registration still holds
    fn load(&self, ctx: &Ctx<'_>, now: SystemTime) -> Result<Cached, CredentialsError> {
        let Some(path) = &self.cache_file else {
            return Err(CredentialsError::config(
                P,
                "no home folder to find the SSO token cache in (set HOME)",
            ));
        };
        let path = path.display().to_string();
        let raw = read_file(ctx, &path).map_err(|m| CredentialsError::load(P, m, false))?;
        let doc: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
            CredentialsError::load(P, format!("`{path}` is not valid JSON: {e}"), false)
        })?;
        let text = |key: &str| {
            doc.get(key)
                .and_then(serde_json::Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        let expires = text("expiresAt").and_then(|t| parse_rfc3339(&t));
        let (Some(access_token), Some(expires_at)) = (text("accessToken"), expires) else {
            return Err(CredentialsError::load(
                P,
                format!("`{path}` lacks `accessToken` or a valid `expiresAt`"),
                false,
            ));
        };
        let registered = text("registrationExpiresAt")
            .and_then(|t| parse_rfc3339(&t))
            .is_some_and(|t| t > now);
        let grant = match (text("refreshToken"), text("clientId"), text("clientSecret")) {
            (Some(refresh_token), Some(client_id), Some(client_secret)) if registered => {
                Some(Grant {
                    refresh_token,
                    client_id,
                    client_secret,
                })
            }
            _ => None,
        };
        Ok(Cached {
            path,
            doc,
            access_token,
            expires_at,
            grant,
        })
    }

    /// The error that asks for `aws sso login`
    fn login_required(&self, expired: SystemTime) -> CredentialsError {
        CredentialsError::SsoLoginRequired {
            session: self.session.clone(),
            login_args: if self.profile == "default" {
                String::new()
            } else {
                format!(" --profile {}", self.profile)
            },
            expired_unix: unix_secs(expired),
        }
    }
}

impl Exchange for Sso {
    const NAME: &'static str = "the SSO portal";

    fn request(&mut self, _: &Ctx<'_>, _: SystemTime) -> Result<Request<Bytes>, CredentialsError> {
        let token = self
            .token
            .take()
            .ok_or_else(|| CredentialsError::Usage("no SSO token chosen".into()))?;
        let base = self.portal.base_uri("portal.sso", P)?;
        let uri = parse_uri(
            &format!(
                "{base}/federation/credentials?account_id={}&role_name={}",
                crate::sts::form_encode(&self.account_id),
                crate::sts::form_encode(&self.role_name)
            ),
            P,
        )?;
        let mut value = http::HeaderValue::from_str(&token).map_err(|_| {
            CredentialsError::load(P, "the SSO access token is not a valid header value", false)
        })?;
        value.set_sensitive(true);
        Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header("x-amz-sso_bearer_token", value)
            .body(Bytes::new())
            .map_err(|e| CredentialsError::config(P, e.to_string()))
    }

    fn parse(&self, r: &HttpResponse) -> Result<ProvidedCredentials, CredentialsError> {
        if !r.status.is_success() {
            return Err(CredentialsError::load(
                P,
                format!("SSO GetRoleCredentials returned HTTP {}", r.status.as_u16()),
                r.status.is_server_error() || r.status.as_u16() == 429,
            ));
        }
        let bad =
            |m: String| CredentialsError::load(P, format!("SSO GetRoleCredentials: {m}"), false);
        let v: serde_json::Value =
            serde_json::from_slice(&r.body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let rc = &v["roleCredentials"];
        let get = |k: &str| {
            rc.get(k)
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(id), Some(secret)) = (get("accessKeyId"), get("secretAccessKey")) else {
            return Err(bad("the answer lacks accessKeyId or secretAccessKey".into()));
        };
        // without an expiration, temporary credentials would be kept for good: as aws-config
        // (which reads a missing one as 0), they are taken as expired, used for the call that
        // loaded them and loaded again for the next
        let expiry = match rc.get("expiration") {
            None | Some(serde_json::Value::Null) => SystemTime::UNIX_EPOCH,
            Some(value) => {
                let Some(ms) = value.as_u64() else {
                    return Err(bad(format!(
                        "the expiration {} is not a time",
                        json::to_text(value)
                    )));
                };
                // past year 9999 (as RFC 3339 times elsewhere) is no time a portal means, and
                // could overflow a platform's clock
                Some(ms)
                    .filter(|ms| *ms <= LAST_MILLISECOND_OF_9999)
                    .and_then(|ms| SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
                    .ok_or_else(|| bad(format!("the expiration {ms} is out of range")))?
            }
        };
        Ok(ProvidedCredentials::new(
            Credentials::new(id, secret, get("sessionToken").map(str::to_owned)),
            Some(expiry),
            Some(self.account_id.clone()),
            P,
        ))
    }
}

/// Where the flow is
enum State {
    Start,
    /// `CreateToken` sent, with the cache as read
    Refreshing(Box<(Call, Cached)>),
    /// The portal's call, in [`OneCall`]
    Portal,
}

/// The SSO provider: for an `sso-session` (whose cache holds a refresh token), a token that
/// expires within 5 minutes is first refreshed with SSO OIDC `CreateToken` and written back
/// to the cache; a refresh that fails leaves the old token, if it has not expired yet. A
/// legacy profile (`sso_start_url` in the profile itself) is never refreshed, as in the SDKs.
pub(crate) struct SsoFlow {
    portal: OneCall<Sso>,
    /// SSO OIDC, for an `sso-session`
    oidc: Option<ServiceSettings>,
    state: State,
}

impl SsoFlow {
    pub(crate) fn new(sso: Sso, oidc: Option<ServiceSettings>) -> Self {
        // one attempt, as the Rust SDK makes (its recorded `sso_server_error` case asks once)
        Self {
            portal: OneCall::new(sso, P, 1),
            oidc,
            state: State::Start,
        }
    }

    /// Reads the token cache: a token about to expire is refreshed first when it can be
    /// (an `sso-session` with a refresh grant), an expired one that cannot be asks for
    /// `aws sso login`, else the portal is asked with it
    fn start(&mut self, ctx: &Ctx<'_>, now: SystemTime) -> Act {
        let cached = match self.portal.exchange_mut().load(ctx, now) {
            Ok(cached) => cached,
            Err(e) => return Act::Done(Err(Fail::Error(e))),
        };
        let expires_soon = now
            .checked_add(REFRESH_WINDOW)
            .is_none_or(|soon| cached.expires_at <= soon);
        let refresh = self.oidc.as_ref().zip(cached.grant.as_ref());
        match refresh {
            Some((oidc, grant)) if expires_soon => match create_token(oidc, grant) {
                Ok(req) => {
                    let mut call = Call::classified(req, oidc.max_attempts, transient_status);
                    let act = call.send();
                    self.state = State::Refreshing(Box::new((call, cached)));
                    act
                }
                Err(e) => self.refreshed(ctx, cached, Refresh::Failed(e), now),
            },
            _ if cached.expires_at <= now => {
                let e = self.portal.exchange_mut().login_required(cached.expires_at);
                Act::Done(Err(Fail::Error(e)))
            }
            _ => self.portal_call(ctx, cached.access_token, now),
        }
    }

    /// What the refresh came to: the token to go on with, or the load's error
    fn refreshed(
        &mut self,
        ctx: &Ctx<'_>,
        cached: Cached,
        refresh: Refresh,
        now: SystemTime,
    ) -> Act {
        let e = match refresh {
            Refresh::Token(new) => {
                let mut doc = cached.doc;
                if let Some(fields) = doc.as_object_mut() {
                    fields.insert("accessToken".into(), new.access_token.clone().into());
                    if let Some(at) = format_rfc3339(new.expires_at) {
                        fields.insert("expiresAt".into(), at.into());
                    }
                    if let Some(refresh) = new.refresh_token {
                        fields.insert("refreshToken".into(), refresh.into());
                    }
                }
                // best effort, as a cache: the new token serves this load either way. Not over
                // a cache that changed meanwhile (an `aws sso login`, another refresh): its
                // token is at least as new, and its registration may be
                let path = std::path::Path::new(&cached.path);
                let unchanged = ctx
                    .fs
                    .read(path)
                    .ok()
                    .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
                    .is_some_and(|on_disk| on_disk["accessToken"] == cached.access_token.as_str());
                if unchanged {
                    let _ = ctx.fs.write(path, json::to_text(&doc).as_bytes());
                }
                return self.portal_call(ctx, new.access_token, now);
            }
            // not refreshed, but the token still serves
            _ if cached.expires_at > now => {
                return self.portal_call(ctx, cached.access_token, now);
            }
            Refresh::Refused => self.portal.exchange_mut().login_required(cached.expires_at),
            Refresh::Failed(e) => e,
        };
        Act::Done(Err(Fail::Error(e)))
    }

    fn portal_call(&mut self, ctx: &Ctx<'_>, token: String, now: SystemTime) -> Act {
        self.portal.exchange_mut().token = Some(token);
        self.state = State::Portal;
        self.portal.advance(ctx, None, now)
    }
}

impl Machine for SsoFlow {
    fn advance(&mut self, ctx: &Ctx<'_>, input: Option<Input>, now: SystemTime) -> Act {
        match std::mem::replace(&mut self.state, State::Portal) {
            State::Start if input.is_none() => self.start(ctx, now),
            State::Start => misuse(),
            State::Refreshing(mut refreshing) => match refreshing.0.on_input(input) {
                CallResult::Retry(act) => {
                    self.state = State::Refreshing(refreshing);
                    act
                }
                CallResult::Response(r) => {
                    let outcome = refresh_outcome(&r, now);
                    self.refreshed(ctx, refreshing.1, outcome, now)
                }
                CallResult::Unreachable(why) => {
                    let e = CredentialsError::load(
                        P,
                        format!("could not reach SSO OIDC to refresh the token: {why}"),
                        true,
                    );
                    self.refreshed(ctx, refreshing.1, Refresh::Failed(e), now)
                }
                CallResult::Misuse => misuse(),
            },
            State::Portal => self.portal.advance(ctx, input, now),
        }
    }
}

/// SSO OIDC `CreateToken` with the refresh grant: `POST /token`, a JSON body
fn create_token(oidc: &ServiceSettings, grant: &Grant) -> Result<Request<Bytes>, CredentialsError> {
    let base = oidc.base_uri("oidc", P)?;
    let uri = parse_uri(&format!("{base}/token"), P)?;
    let mut body = String::from("{\"clientId\":");
    json::push_string(&mut body, &grant.client_id);
    body.push_str(",\"clientSecret\":");
    json::push_string(&mut body, &grant.client_secret);
    body.push_str(",\"grantType\":\"refresh_token\",\"refreshToken\":");
    json::push_string(&mut body, &grant.refresh_token);
    body.push('}');
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
        .map_err(|e| CredentialsError::config(P, e.to_string()))
}

/// A token from `CreateToken`
struct NewToken {
    access_token: String,
    expires_at: SystemTime,
    refresh_token: Option<String>,
}

/// What a refresh came to
enum Refresh {
    Token(NewToken),
    /// Refused (a client error) or answered without a usable token: `aws sso login` helps
    Refused,
    /// Not done (SSO OIDC unreachable, a server error, or no request to make): this error
    Failed(CredentialsError),
}

/// The outcome of `CreateToken`'s answer `r`
fn refresh_outcome(r: &HttpResponse, now: SystemTime) -> Refresh {
    if transient_status(r) {
        return Refresh::Failed(CredentialsError::load(
            P,
            format!(
                "SSO OIDC CreateToken returned HTTP {} (the token was not refreshed)",
                r.status.as_u16()
            ),
            true,
        ));
    }
    parse_create_token(r, now).map_or(Refresh::Refused, Refresh::Token)
}

/// `CreateToken`'s answer, if it is a success with a token and a sane lifetime
fn parse_create_token(r: &HttpResponse, now: SystemTime) -> Option<NewToken> {
    if !r.status.is_success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    let text = |key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let lifetime = v
        .get("expiresIn")
        .and_then(serde_json::Value::as_u64)
        .map(Duration::from_secs)
        .filter(|d| !d.is_zero() && *d <= MAX_TOKEN_LIFETIME)?;
    // no later than the last second of year 9999: a time the cache can hold and read back
    let last = SystemTime::UNIX_EPOCH + Duration::from_millis(LAST_MILLISECOND_OF_9999 - 999);
    Some(NewToken {
        access_token: text("accessToken")?,
        expires_at: now.checked_add(lifetime)?.min(last),
        refresh_token: text("refreshToken"),
    })
}
