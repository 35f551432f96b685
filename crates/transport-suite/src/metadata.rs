//! A loopback server playing the credential endpoints: the container endpoint (ECS / EKS),
//! EC2 instance metadata (IMDSv2), STS (`AssumeRole`, `AssumeRoleWithWebIdentity`) and the
//! SSO portal (`GetRoleCredentials`)
//!
//! Each endpoint hands out its own access key (the emulator of a case accepts only that one,
//! proving the client signed with what it fetched) and checks what a real one would:
//! the container authorization token, the IMDSv2 session token on every metadata read, the
//! `AssumeRole` request signed by the source profile's key, the web identity token, the SSO
//! access token.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Key and secret the container endpoint hands out
pub const CONTAINER_KEY: (&str, &str) = ("ASIACONTAINERSUITE", "container-secret");
/// Key and secret instance metadata hands out
pub const IMDS_KEY: (&str, &str) = ("ASIAIMDSSUITE", "imds-secret");
/// Key and secret STS `AssumeRole` hands out
pub const ASSUME_ROLE_KEY: (&str, &str) = ("ASIAASSUMEROLESUITE", "assume-role-secret");
/// Key and secret STS `AssumeRoleWithWebIdentity` hands out
pub const WEB_IDENTITY_KEY: (&str, &str) = ("ASIAWEBIDENTITYSUITE", "web-identity-secret");
/// Key and secret the SSO portal hands out
pub const SSO_KEY: (&str, &str) = ("ASIASSOSUITE", "sso-secret");
/// The SSO access token of the token cache, which the portal requires
pub const SSO_TOKEN: &str = "suite-sso-access-token";
/// The refresh grant of the token cache (refresh token, client id, client secret), which SSO
/// OIDC `CreateToken` requires
pub const SSO_GRANT: (&str, &str, &str) =
    ("suite-refresh-token", "suite-client", "suite-client-secret");
/// The access token `CreateToken` hands out for [`SSO_GRANT`] (the portal takes it too)
pub const SSO_REFRESHED_TOKEN: &str = "suite-refreshed-sso-token";
/// The SSO session name, and the token cache file it is found in
/// (`~/.aws/sso/cache/` + the SHA-1 of the session name + `.json`)
pub const SSO_SESSION: (&str, &str) = ("suite", "5cd55651e2c67e68ca5c7be384e0561b3e8e9c40.json");
/// The path and query of the SSO portal's `GetRoleCredentials` the suite's profile asks
pub const SSO_PATH: &str = "/federation/credentials?account_id=123456789012&role_name=SuiteRole";
/// The static key of the source profile that signs `AssumeRole` (the emulator refuses it)
pub const SOURCE_KEY: (&str, &str) = ("AKIDSOURCEPROFILE", "source-secret");
/// The container endpoint's path
pub const CONTAINER_PATH: &str = "/v1/container-credentials";
/// The authorization token the container endpoint requires
pub const CONTAINER_TOKEN: &str = "suite-container-token";
/// The container endpoint's path whose answer is the container credentials padded with
/// spaces to the size in bytes that follows it (`/v1/padded-credentials/65536`)
pub const PADDED_PATH: &str = "/v1/padded-credentials/";
/// The web identity token STS requires
pub const WEB_TOKEN: &str = "suite-web-identity-token";
/// The IAM role of the instance
pub const IMDS_ROLE: &str = "suite-instance-role";
/// The region of the instance (`/latest/meta-data/placement/region`)
pub const IMDS_REGION: &str = "eu-central-2";

const IMDS_TOKEN: &str = "suite-imds-session-token";
const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
const EXPIRATION: &str = "2099-01-01T00:00:00Z";
/// Longest request head or body accepted
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request the server received
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET`, `PUT`, `POST`
    pub method: String,
    /// Path and query
    pub path: String,
    /// The request target as sent: the path (origin form), or the whole URL (absolute
    /// form, to a proxy)
    pub target: String,
    /// Headers, names in lower case
    pub headers: HashMap<String, String>,
    /// The body as text
    pub body: String,
}

/// The running server; it stops accepting when dropped
#[derive(Debug)]
pub struct MetadataServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl MetadataServer {
    /// Listens on 127.0.0.1, port 0
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::clone(&received);
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let _ = serve(stream, &log);
                });
            }
        });
        Self {
            addr,
            received,
            stop,
        }
    }

    /// Where it listens
    pub fn address(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// `(method, path)` of every request received so far
    pub fn requests(&self) -> Vec<(String, String)> {
        self.received()
            .into_iter()
            .map(|r| (r.method, r.path))
            .collect()
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wakes the accepting thread, which then sees the flag
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request, answers it and closes the connection
fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let request = match read_request(&stream) {
        Ok(r) => r,
        Err(Unread::Closed) => return Ok(()),
        Err(Unread::BadLine) => return respond(stream, 400, "text/plain", "bad request line"),
        Err(Unread::TooLarge) => return respond(stream, 413, "text/plain", "too large"),
        Err(Unread::Io(e)) => return Err(e),
    };
    if let Ok(mut l) = log.lock() {
        l.push(request.clone());
    }
    let (status, content_type, body) = answer(&request);
    respond(stream, status, content_type, &body)
}

/// Why [`read_request`] has no request
#[derive(Debug)]
pub enum Unread {
    /// The peer closed the connection within the head
    Closed,
    /// No method and path in the request line
    BadLine,
    /// A body over [`MAX_REQUEST`] bytes
    TooLarge,
    /// Reading failed
    Io(std::io::Error),
}

impl From<std::io::Error> for Unread {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// One HTTP/1.1 request from `stream`: its head, then `Content-Length` bytes of body (head
/// and body each at most [`MAX_REQUEST`] bytes)
///
/// # Errors
///
/// [`Unread`]: the peer closed within the head, a bad request line, a body over the limit,
/// or a failed read
pub fn read_request(stream: &TcpStream) -> Result<Received, Unread> {
    let mut reader = BufReader::new(stream.try_clone()?).take(MAX_REQUEST as u64);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(Unread::BadLine);
    };
    let target = path.to_owned();
    // a request relayed by a proxy names its target in absolute form
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => path,
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(Unread::Closed);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return Err(Unread::TooLarge);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Received {
        method,
        path,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(
    mut stream: TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn json_credentials((key, secret): (&str, &str)) -> String {
    format!(
        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{secret}","Token":"token-of-{key}","Expiration":"{EXPIRATION}"}}"#
    )
}

fn sts_credentials(action: &str, (key, secret): (&str, &str)) -> String {
    format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
         <Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>\
         <SessionToken>token-of-{key}</SessionToken><Expiration>{EXPIRATION}</Expiration>\
         </Credentials></{action}Result><ResponseMetadata><RequestId>suite</RequestId>\
         </ResponseMetadata></{action}Response>"
    )
}

fn sts_error(code: &str) -> (u16, &'static str, String) {
    (
        403,
        "text/xml",
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>refused by the suite</Message></Error><RequestId>suite</RequestId></ErrorResponse>"
        ),
    )
}

/// The value of `key` in a form body (values here need no decoding)
fn form_value<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// SSO OIDC `CreateToken`: a JSON body with the refresh grant of [`SSO_GRANT`]
fn create_token(r: &Received) -> (u16, &'static str, String) {
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let (refresh, client, secret) = SSO_GRANT;
    let granted = r.headers.get("content-type").map(String::as_str) == Some("application/json")
        && body["grantType"] == "refresh_token"
        && body["refreshToken"] == refresh
        && body["clientId"] == client
        && body["clientSecret"] == secret;
    if granted {
        let answer = serde_json::json!({
            "accessToken": SSO_REFRESHED_TOKEN,
            "expiresIn": 3600,
            "refreshToken": "suite-next-refresh-token",
            "tokenType": "Bearer",
        });
        (200, "application/json", answer.to_string())
    } else {
        (
            400,
            "application/json",
            r#"{"error":"invalid_grant"}"#.into(),
        )
    }
}

fn answer(r: &Received) -> (u16, &'static str, String) {
    let header = |name: &str| r.headers.get(name).map(String::as_str);
    let imds_token_ok = header("x-aws-ec2-metadata-token") == Some(IMDS_TOKEN);
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", CONTAINER_PATH) if header("authorization") == Some(CONTAINER_TOKEN) => {
            (200, "application/json", json_credentials(CONTAINER_KEY))
        }
        ("GET", CONTAINER_PATH) => (401, "text/plain", "no or wrong authorization".into()),
        ("GET", path)
            if path.starts_with(PADDED_PATH)
                && header("authorization") == Some(CONTAINER_TOKEN) =>
        {
            let size: usize = path[PADDED_PATH.len()..].parse().unwrap_or_default();
            let mut body = json_credentials(CONTAINER_KEY);
            let pad = size.saturating_sub(body.len());
            body.extend(std::iter::repeat_n(' ', pad));
            (200, "application/json", body)
        }
        ("PUT", "/latest/api/token")
            if header("x-aws-ec2-metadata-token-ttl-seconds").is_some() =>
        {
            (200, "text/plain", IMDS_TOKEN.into())
        }
        ("GET", path) if path.starts_with("/latest/") && !imds_token_ok => {
            (401, "text/plain", "IMDSv2 token missing".into())
        }
        ("GET", ROLES) => (200, "text/plain", IMDS_ROLE.into()),
        ("GET", "/latest/meta-data/placement/region") => (200, "text/plain", IMDS_REGION.into()),
        ("GET", path) if path.strip_prefix(ROLES) == Some(IMDS_ROLE) => {
            (200, "application/json", json_credentials(IMDS_KEY))
        }
        ("POST", "/token") => create_token(r),
        ("GET", SSO_PATH)
            if matches!(
                header("x-amz-sso_bearer_token"),
                Some(SSO_TOKEN | SSO_REFRESHED_TOKEN)
            ) =>
        {
            (
                200,
                "application/json",
                format!(
                    r#"{{"roleCredentials":{{"accessKeyId":"{}","secretAccessKey":"{}","sessionToken":"token-of-sso","expiration":4070908800000}}}}"#,
                    SSO_KEY.0, SSO_KEY.1
                ),
            )
        }
        ("GET", SSO_PATH) => (401, "application/json", r#"{"message":"bad token"}"#.into()),
        ("POST", "/") => match form_value(&r.body, "Action") {
            Some("AssumeRole") => {
                let signed_by_source = header("authorization").is_some_and(|a| {
                    a.contains(&format!("Credential={}/", SOURCE_KEY.0))
                        && a.contains("/sts/aws4_request")
                });
                if signed_by_source {
                    (
                        200,
                        "text/xml",
                        sts_credentials("AssumeRole", ASSUME_ROLE_KEY),
                    )
                } else {
                    sts_error("InvalidClientTokenId")
                }
            }
            Some("AssumeRoleWithWebIdentity") => {
                if form_value(&r.body, "WebIdentityToken") == Some(WEB_TOKEN) {
                    (
                        200,
                        "text/xml",
                        sts_credentials("AssumeRoleWithWebIdentity", WEB_IDENTITY_KEY),
                    )
                } else {
                    sts_error("InvalidIdentityToken")
                }
            }
            _ => sts_error("InvalidAction"),
        },
        _ => (404, "text/plain", "not found".into()),
    }
}
