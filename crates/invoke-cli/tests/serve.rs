//! `lambda-stream serve` run as a real process, invoked over loopback

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use invoke_proto::Credentials;
use invoke_proto::bytes::Bytes;
use invoke_proto::{EndpointConfig, resolve_endpoint};
use invoke_proto::{Event, InvokeParams, InvokeStream, build_request};
use invoke_proto::{SigningScope, sign};

mod support;
use support::{OutputWatched as _, Server, Watchdog};

fn serve(args: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-stream"));
    cmd.args(["serve", "--port", "0"])
        .args(args)
        .stderr(Stdio::piped());
    let mut server = Server::start(cmd);
    // the banner, to its last line (a bound, should that line never come)
    server.read_banner(30);
    let (url, rest) = (&server.url, &server.banner);
    assert!(
        rest.contains(&format!("AWS_ENDPOINT_URL_LAMBDA={url}")),
        "{rest}"
    );
    assert!(
        rest.contains("export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1\n")
            && rest.contains("AWS_ACCESS_KEY_ID="),
        "{rest}"
    );
    server
}

/// Writes `req` to `s` as HTTP/1.1, with `extra` (whole header lines) after its headers
fn write_request(s: &mut TcpStream, req: &http::Request<Bytes>, extra: &str) {
    let mut head = format!(
        "{} {} HTTP/1.1\r\n",
        req.method(),
        req.uri().path_and_query().unwrap()
    );
    for (n, v) in req.headers() {
        head.push_str(n.as_str());
        head.push_str(": ");
        head.push_str(v.to_str().unwrap());
        head.push_str("\r\n");
    }
    head.push_str(extra);
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(req.body()).unwrap();
}

/// Sends `req` over a fresh connection; returns the status line, headers and de-chunked body
fn send(url: &str, req: &http::Request<Bytes>) -> (u16, String, Vec<u8>) {
    let authority = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(authority).unwrap();
    // A hang guard, far above any answer these tests wait for
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write_request(&mut s, req, "connection: close\r\n");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    let mut body = &raw[split + 4..];
    let mut out = Vec::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        loop {
            let eol = body.windows(2).position(|w| w == b"\r\n").unwrap();
            let len = usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap().trim(), 16)
                .unwrap();
            body = &body[eol + 2..];
            if len == 0 {
                break;
            }
            out.extend_from_slice(&body[..len]);
            body = &body[len + 2..];
        }
    } else {
        out.extend_from_slice(body);
    }
    (status, head, out)
}

fn request(url: &str, params: &InvokeParams) -> http::Request<Bytes> {
    let ep = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(url),
    )
    .unwrap();
    build_request(params, &ep).unwrap()
}

fn events(body: Vec<u8>) -> Vec<Event> {
    let mut s = InvokeStream::new();
    s.feed(Bytes::from(body));
    let mut out = Vec::new();
    while let Some(e) = s.next_event().unwrap() {
        out.push(e);
    }
    s.finish().unwrap();
    out
}

#[test]
fn serves_builtins_and_checks_credentials() {
    let server = serve(&["--credentials", "AKIDTEST:test-secret"]);
    assert!(server.banner.contains("AWS_ACCESS_KEY_ID=AKIDTEST"));
    assert!(!server.banner.contains("test-secret"), "{}", server.banner);
    // every `export` line can be pasted as it is: the hidden secret is named in a comment
    assert!(
        server.banner.lines().all(|l| {
            let l = l.trim();
            !l.starts_with("export ") || !l.contains(['<', '>'])
        }) && server.banner.contains("# and AWS_SECRET_ACCESS_KEY"),
        "{}",
        server.banner
    );
    let params = InvokeParams::new("count", r#"{"n":3,"size":4}"#);
    let mut req = request(&server.url, &params);
    let creds = Credentials::new("AKIDTEST", "test-secret", None);
    sign(
        &mut req,
        &creds,
        &SigningScope::lambda("us-east-1"),
        SystemTime::now(),
    )
    .unwrap();
    let (status, _, body) = send(&server.url, &req);
    assert_eq!(status, 200);
    let got = events(body);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], Event::PayloadChunk(Bytes::from_static(b"abcd")));
    assert_eq!(got[2], Event::PayloadChunk(Bytes::from_static(b"ijkl")));
    assert!(matches!(&got[3], Event::InvokeComplete(c) if !c.is_error()));
    // wrong secret
    let mut req = request(&server.url, &params);
    let bad = Credentials::new("AKIDTEST", "other", None);
    sign(
        &mut req,
        &bad,
        &SigningScope::lambda("us-east-1"),
        SystemTime::now(),
    )
    .unwrap();
    let (status, head, _) = send(&server.url, &req);
    assert_eq!(status, 403);
    assert!(
        head.to_ascii_lowercase()
            .contains("x-amzn-errortype: invalidsignatureexception"),
        "{head}"
    );
}

#[test]
fn faults_and_concurrency_from_the_command_line() {
    let server = serve(&[
        "--no-auth",
        "--fault",
        "echo=corrupt-crc",
        "--concurrency",
        "count=0",
        "--fault",
        "fail=throttle=1",
    ]);
    let fail = InvokeParams::new("fail", r#"{"after":0}"#);
    let (status, _, _) = send(&server.url, &request(&server.url, &fail));
    assert_eq!(status, 429, "the first request is throttled");
    let (status, _, _) = send(&server.url, &request(&server.url, &fail));
    assert_eq!(status, 200, "then served");
    let (status, _, body) = send(
        &server.url,
        &request(&server.url, &InvokeParams::new("echo", "{}")),
    );
    assert_eq!(status, 200);
    let mut s = InvokeStream::new();
    s.feed(Bytes::from(body));
    assert!(
        s.next_event().is_err(),
        "the CRC of the first chunk is corrupt"
    );
    let (status, head, _) = send(
        &server.url,
        &request(&server.url, &InvokeParams::new("count", "{}")),
    );
    assert_eq!(status, 429, "{head}");
    assert!(usage_error(&["--fault", "nope=stall"]).contains("no function named"));
}

#[test]
fn a_timeout_too_small_for_a_nanosecond_is_a_usage_error() {
    let err = usage_error(&["--header-timeout", "1e-20"]);
    assert!(err.contains("above 0"), "{err}");
    let err = usage_error(&["--timeout", "1e-20"]);
    assert!(err.contains("above 0"), "{err}");
}

#[test]
fn out_of_range_concurrency_is_a_usage_error() {
    // one past tokio's largest semaphore (usize::MAX >> 3), and past usize itself
    for n in ["2305843009213693952", "18446744073709551616", "-1", "two"] {
        let err = usage_error(&["--concurrency", &format!("echo={n}")]);
        assert!(
            err.contains("--concurrency") && err.contains("2305843009213693951"),
            "{n}: {err}"
        );
        assert!(!err.contains("panicked"), "{n}: {err}");
    }
}

/// A NAME=VALUE option with either side empty (or a blank command) is a usage error
#[test]
fn a_pair_with_an_empty_side_is_a_usage_error() {
    for (args, want) in [
        (&["--function", "f="][..], "--function takes NAME=COMMAND"),
        (&["--function", "f=  "], "--function takes NAME=COMMAND"),
        (&["--function", "=./a"], "--function takes NAME=COMMAND"),
        (
            &["--function", "f=./a", "--handler", "f="],
            "--handler takes NAME=VALUE",
        ),
        (
            &["--function", "f=./a", "--task-root", "=/tmp"],
            "--task-root takes NAME=VALUE",
        ),
    ] {
        let err = usage_error(args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `--credentials` with an empty key or secret is a usage error, the secret not shown
#[test]
fn credentials_with_an_empty_side_are_a_usage_error() {
    for pair in ["AKIDTEST:", ":hidden-secret", "no-colon"] {
        let err = usage_error(&["--credentials", pair]);
        assert!(
            err.contains("--credentials takes KEY:SECRET"),
            "{pair}: {err}"
        );
        assert!(!err.contains("hidden-secret"), "{err}");
    }
}

/// The banner names every function once: the built-ins, then the process functions (one
/// of the same name as a built-in replaces it)
#[test]
fn the_banner_names_each_function_once() {
    let server = serve(&[
        "--no-auth",
        "--function",
        "hello=./bootstrap",
        "--function",
        "echo=./bootstrap",
    ]);
    assert!(
        server
            .banner
            .contains("functions: echo, count, fail, hello ("),
        "{}",
        server.banner
    );
}

#[test]
fn a_function_given_twice_is_a_usage_error() {
    let err = usage_error(&["--function", "f=./a", "--function", "f=./b"]);
    assert!(err.contains("\"f\" is given twice"), "{err}");
}

#[test]
fn a_region_no_client_could_use_is_a_usage_error() {
    for region in ["", "us east 1", "-us-east-1", "eu/west", &"a".repeat(64)] {
        // `=` so that clap takes `-us-east-1` as the value
        let err = usage_error(&[&format!("--region={region}")]);
        assert!(
            err.contains("--region") && err.contains("invalid region"),
            "{region:?}: {err}"
        );
    }
}

/// `serve` with `args` exits with status 2 (usage error) at once; its stderr. A `serve` that
/// starts serving instead fails the test (killed after 20 s) rather than hanging it.
fn usage_error(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // stderr ends when the process does
    std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send(err);
    });
    let Ok(err) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve {args:?} is still running after 20 s: no usage error");
    };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{args:?}: {err}");
    err
}

/// Whether `program` runs (`--version`); prints a skip notice when not, and fails under CI
fn available(program: &str) -> bool {
    if Command::new(program).arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{program} is needed under CI"
    );
    eprintln!("SKIPPED: {program} not found");
    false
}

/// A function in Python speaking the Lambda Runtime API with the standard library only: it
/// polls `/next` (the event in `event`, the request id in `rid`), runs `handler` (Python
/// lines indented by four spaces that set `body`) and posts `body` as the response
fn python_function(handler: &str) -> String {
    format!(
        r#"
import http.client, json, os, sys
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    c = http.client.HTTPConnection(api)
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    event = r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
{handler}
    c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body=body)
    c.getresponse().read()
"#
    )
}

/// Answers `hello ` and the event, after printing a line
const PY_HELLO: &str = r#"    print("handling", rid, flush=True)
    body = b"hello " + event"#;

#[test]
fn real_function_process() {
    if !available("python3") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("lambda-stream-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("function.py");
    std::fs::write(&script, python_function(PY_HELLO)).unwrap();
    let spec = format!("py=python3 {}", script.display());
    let server = serve(&["--no-auth", "--function", &spec]);
    let params = InvokeParams::new("py", r#"{"k":1}"#).log_type(invoke_proto::LogType::Tail);
    let (status, _, body) = send(&server.url, &request(&server.url, &params));
    assert_eq!(status, 200);
    let got = events(body);
    assert_eq!(
        got[0],
        Event::PayloadChunk(Bytes::from_static(br#"hello {"k":1}"#))
    );
    let Event::InvokeComplete(c) = got.last().unwrap() else {
        panic!("{got:?}")
    };
    let log = String::from_utf8(c.decoded_log().unwrap().unwrap()).unwrap();
    assert!(log.contains("handling"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_clock_ahead_refuses_this_clocks_signatures_and_invoke_corrects_for_it() {
    let server = serve(&[
        "--credentials",
        "AKIDTEST:test-secret",
        "--clock-ahead",
        "3600",
    ]);
    assert!(
        server
            .banner
            .contains("clock: 3600 s ahead of this machine's"),
        "{}",
        server.banner
    );
    let (creds, scope) = (
        Credentials::new("AKIDTEST", "test-secret", None),
        SigningScope::lambda("us-east-1"),
    );
    let params = InvokeParams::new("echo", r#"{"skew":1}"#);
    let now = SystemTime::now();
    let mut req = request(&server.url, &params);
    sign(&mut req, &creds, &scope, now).unwrap();
    let (status, head, body) = send(&server.url, &req);
    assert_eq!(status, 403, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-amzn-errortype: invalidsignatureexception"),
        "{head}"
    );
    assert!(
        String::from_utf8_lossy(&body).contains("Signature expired"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // the response's Date is on the endpoint's clock (to the second it has)
    let date = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("date").then(|| v.trim())
        })
        .and_then(invoke_proto::parse_http_date)
        .unwrap_or_else(|| panic!("no Date: {head}"));
    let ahead = date.duration_since(now).unwrap_or_default();
    assert!(
        ahead >= Duration::from_secs(3599) && ahead < Duration::from_secs(2 * 3600),
        "{ahead:?}"
    );
    // signed on the endpoint's clock, the same request is served
    let mut req = request(&server.url, &params);
    sign(&mut req, &creds, &scope, now + Duration::from_secs(3600)).unwrap();
    let (status, _, body) = send(&server.url, &req);
    assert_eq!(status, 200);
    assert_eq!(
        events(body)[0],
        Event::PayloadChunk(Bytes::from_static(br#"{"skew":1}"#))
    );
    // `lambda-stream invoke`, signing on this machine's clock, is refused once and retries
    // on the clock the refusal's Date gave it
    let out = support::bin()
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .args(["invoke", "echo", "--quiet", "--payload", r#"{"skew":2}"#])
        .args(["--endpoint-url", &server.url, "--region", "us-east-1"])
        .output_watched();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, br#"{"skew":2}"#);
}

#[test]
fn no_auth_and_clean_stop_on_ctrl_c() {
    let mut server = serve(&["--no-auth"]);
    let (status, _, body) = send(
        &server.url,
        &request(&server.url, &InvokeParams::new("echo", r#"{"x":1}"#)),
    );
    assert_eq!(status, 200);
    assert_eq!(
        events(body)[0],
        Event::PayloadChunk(Bytes::from_static(br#"{"x":1}"#))
    );
    // one log line per invocation on stderr
    let ok = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = server.child.wait().unwrap();
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(
        err.contains("InvokeWithResponseStream echo -> 200"),
        "{err}"
    );
    assert!(err.contains("stopping"), "{err}");
}

/// `curl` (OpenSSL, an independent TLS client) posting `params` to `url`; its exit status and
/// the response body
fn curl(url: &str, params: &InvokeParams, ca: Option<&str>) -> (Option<i32>, Vec<u8>) {
    let req = request(url, params);
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--fail", "--data-binary", "@-"])
        .args(["-H", "content-type: application/octet-stream"])
        .arg(format!("{url}{}", req.uri().path_and_query().unwrap()));
    if let Some(ca) = ca {
        cmd.args(["--cacert", ca]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _watchdog = Watchdog::watch(&child);
    child.stdin.take().unwrap().write_all(req.body()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), out.stdout)
}

#[test]
fn tls_with_the_ca_bundle_to_export() {
    if !available("curl") {
        return;
    }
    let mut server = serve(&["--no-auth", "--tls"]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = server
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("export AWS_CA_BUNDLE="))
        .unwrap_or_else(|| panic!("no AWS_CA_BUNDLE in {}", server.banner))
        .to_owned();
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    // the same file for Node.js, whose AWS SDK reads no AWS_CA_BUNDLE
    let node = format!("export NODE_EXTRA_CA_CERTS={ca}  # Node.js");
    assert!(server.banner.contains(&node), "{}", server.banner);
    assert!(
        server.banner.contains("the Rust SDK reads neither"),
        "{}",
        server.banner
    );
    let params = InvokeParams::new("count", r#"{"n":2,"size":3}"#);
    let (status, body) = curl(&server.url, &params, Some(&ca));
    assert_eq!(status, Some(0));
    let got = events(body);
    assert_eq!(got[0], Event::PayloadChunk(Bytes::from_static(b"abc")));
    assert_eq!(got[1], Event::PayloadChunk(Bytes::from_static(b"def")));
    // without the CA: curl's "SSL certificate problem" (60)
    let (status, _) = curl(&server.url, &params, None);
    assert_eq!(status, Some(60));
    // the temporary CA file is removed on a clean stop
    let ok = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(server.child.wait().unwrap().success());
    assert!(!std::path::Path::new(&ca).exists(), "{ca}");
}

#[test]
fn ca_file_requires_tls_and_a_writable_path() {
    assert!(usage_error(&["--ca-file", "/tmp/x.pem"]).contains("--tls"));
    let missing = std::env::temp_dir()
        .join(format!("lambda-stream-no-such-dir-{}", std::process::id()))
        .join("ca.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(["serve", "--port", "0", "--tls", "--ca-file"])
        .arg(&missing)
        .output_watched();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write the CA certificate to") && err.contains("no-such-dir"),
        "{err}"
    );
}

#[test]
fn banner_suggests_the_aws_cli_v2_for_streaming() {
    // the banner, up to its last line
    let rest = serve(&["--no-auth"]).banner.clone();
    // the v1 CLI has no invoke-with-response-stream (and no --cli-binary-format)
    let line = rest
        .lines()
        .find(|l| l.contains("invoke-with-response-stream"))
        .unwrap_or_else(|| panic!("no CLI example in {rest}"));
    assert!(line.contains("AWS CLI v2"), "{line}");
    assert!(
        line.contains("--cli-binary-format raw-in-base64-out"),
        "{line}"
    );
}

#[test]
fn event_invoke_is_accepted_and_its_outcome_logged() {
    let mut server = serve(&["--no-auth"]);
    let stderr = BufReader::new(server.child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut req = request(&server.url, &InvokeParams::new("fail", r#"{"after":2}"#));
    *req.uri_mut() = "/2015-03-31/functions/fail/invocations".parse().unwrap();
    req.headers_mut()
        .insert("x-amz-invocation-type", "Event".parse().unwrap());
    let (status, head, body) = send(&server.url, &req);
    assert_eq!(status, 202, "{head}");
    assert!(body.is_empty(), "{body:?}");
    // the function ran in the background: its end is logged (a hang guard, not a timing check)
    let logged = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the Event invocation is logged");
        if line.contains("Invoke (Event) fail") {
            break line;
        }
    };
    assert!(
        logged.contains("-> 202") && logged.contains("12 payload bytes discarded"),
        "{logged}"
    );
    assert!(logged.contains("function error Error"), "{logged}");
}

/// Answers its `_HANDLER`, `LAMBDA_TASK_ROOT` and working directory
const PY_ENV: &str = r#"    body = json.dumps({"handler": os.environ.get("_HANDLER"),
                       "task_root": os.environ.get("LAMBDA_TASK_ROOT"), "cwd": os.getcwd()})"#;

#[test]
fn handler_and_task_root_per_function() {
    if !available("python3") {
        return;
    }
    let base = std::env::temp_dir().join(format!("lambda-stream-task-root-{}", std::process::id()));
    let code = base.join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("env.py"), python_function(PY_ENV)).unwrap();
    // serve runs in `base`; the task roots are given relative to it, and `env.py` is found
    // only in the task root
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-stream"));
    cmd.current_dir(&base)
        .args(["serve", "--port", "0", "--no-auth"])
        .args(["--function", "rie=python3 -u env.py index.handler"])
        .args(["--task-root", "rie=code"])
        .args(["--function", "set=python3 -u env.py index.handler"])
        .args(["--task-root", "set=./code/", "--handler", "set=app.main"])
        .stderr(Stdio::null());
    let server = Server::start(cmd);
    let canonical = code.canonicalize().unwrap();
    for (name, handler) in [("rie", "index.handler"), ("set", "app.main")] {
        let (status, head, body) = send(
            &server.url,
            &request(&server.url, &InvokeParams::new(name, "{}")),
        );
        assert_eq!(status, 200, "{head}");
        let Event::PayloadChunk(json) = &events(body)[0] else {
            panic!("{name}: no payload")
        };
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(v["handler"], handler, "{name}: {v}");
        let root = std::path::Path::new(v["task_root"].as_str().unwrap());
        assert!(root.is_absolute(), "{name}: {v}");
        assert_eq!(root.canonicalize().unwrap(), canonical, "{name}: {v}");
        let cwd = std::path::Path::new(v["cwd"].as_str().unwrap());
        assert_eq!(cwd.canonicalize().unwrap(), canonical, "{name}: {v}");
    }
    drop(server);
    // usage errors: a name that is no --function, a directory that does not exist
    let err = usage_error(&["--handler", "echo=x.y"]);
    assert!(err.contains("--handler") && err.contains("echo"), "{err}");
    let missing = base.join("missing");
    let err = usage_error(&[
        "--function",
        "f=./bootstrap",
        "--task-root",
        &format!("f={}", missing.display()),
    ]);
    assert!(
        err.contains("--task-root") && err.contains("missing"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// The error type and message in the final event of a streamed invocation
fn function_error(body: Vec<u8>) -> (String, String) {
    let got = events(body);
    let Some(Event::InvokeComplete(c)) = got.last() else {
        panic!("{got:?}")
    };
    let d: serde_json::Value = serde_json::from_str(c.error_details.as_deref().unwrap()).unwrap();
    (
        d["errorType"].as_str().unwrap().to_owned(),
        d["errorMessage"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn timeouts_from_the_command_line() {
    let server = serve(&[
        "--no-auth",
        "--function",
        "np=sleep 1000",
        "--init-timeout",
        "np=0.5",
        "--timeout",
        "count=1",
    ]);
    // A process that never polls /next: the init timeout answers, not the function timeout
    let (status, _, body) = send(
        &server.url,
        &request(&server.url, &InvokeParams::new("np", "{}")),
    );
    assert_eq!(status, 200);
    let (t, m) = function_error(body);
    assert_eq!(t, "Sandbox.Timedout");
    assert!(m.contains("init timed out after 0.50 seconds"), "{m}");
    // count waits 3 s between its writes; its timeout is 1 s
    let slow = InvokeParams::new("count", r#"{"n":2,"size":1,"delay_ms":3000}"#);
    let (status, _, body) = send(&server.url, &request(&server.url, &slow));
    assert_eq!(status, 200);
    let (t, m) = function_error(body);
    assert_eq!(t, "Sandbox.Timedout");
    assert!(m.contains("Task timed out after 1.00 seconds"), "{m}");

    for (args, want) in [
        (&["--timeout", "901"][..], "at most 900"),
        (&["--timeout", "echo=0"], "above 0"),
        (&["--timeout", "echo=soon"], "--timeout"),
        (&["--timeout", "nope=3"], "no function named"),
        (&["--init-timeout", "echo=1"], "not a process function"),
        (&["--init-timeout", "inf"], "--init-timeout"),
    ] {
        let err = usage_error(args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Prints `MIB` MiB of 100-byte lines, then answers `done`
const PY_FLOOD: &str = r#"    block = (b"y" * 99 + b"\n") * 10486
    for _ in range(MIB):
        sys.stdout.buffer.write(block)
    sys.stdout.buffer.flush()
    body = b"done""#;

#[test]
fn a_flood_of_output_is_echoed_within_bounds() {
    const MIB: u64 = 16;
    // What the emulator echoes per process at most: a burst, then a rate
    const BURST: u64 = 256 * 1024;
    const RATE: u64 = 64 * 1024;
    if !available("python3") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("lambda-stream-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("flood.py");
    std::fs::write(
        &script,
        python_function(&PY_FLOOD.replace("MIB", &MIB.to_string())),
    )
    .unwrap();
    let spec = format!("spam=python3 {}", script.display());
    for quiet in [false, true] {
        let started = std::time::Instant::now();
        let mut args = vec!["--no-auth", "--function", &spec];
        if quiet {
            args.push("--quiet");
        }
        let mut server = serve(&args);
        let mut stderr = server.child.stderr.take().unwrap();
        let counter = std::thread::spawn(move || {
            let mut all = Vec::new();
            stderr.read_to_end(&mut all).unwrap();
            all
        });
        let params = InvokeParams::new("spam", "{}").log_type(invoke_proto::LogType::Tail);
        let (status, _, body) = send(&server.url, &request(&server.url, &params));
        assert_eq!(status, 200);
        let got = events(body);
        let Some(Event::InvokeComplete(c)) = got.last() else {
            panic!("{got:?}")
        };
        assert!(!c.is_error(), "{c:?}");
        // The log tail is the last 4 KiB of the flood, whatever was echoed, then the
        // service's END and REPORT lines
        let tail = String::from_utf8(c.decoded_log().unwrap().unwrap()).unwrap();
        assert_eq!(tail.len(), 4096);
        assert!(tail.contains("yyyy\nEND RequestId: "), "{tail:?}");
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap();
        // a clean stop: what is queued for stderr (the note above) is written first
        let ok = Command::new("kill")
            .args(["-INT", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let _ = server.child.wait();
        let err = counter.join().unwrap();
        // Bytes of the flood's lines on serve's stderr
        let echoed: u64 = err
            .split(|b| *b == b'\n')
            .filter(|l| l.starts_with(b"yyyy"))
            .map(|l| l.len() as u64 + 1)
            .sum();
        if quiet {
            assert_eq!(echoed, 0, "--quiet echoes nothing");
        } else {
            let bound = BURST + RATE * elapsed_ms / 1000;
            assert!(
                echoed <= bound,
                "{echoed} bytes echoed in {elapsed_ms} ms, over {bound}"
            );
            let text = String::from_utf8_lossy(&err);
            assert!(
                text.contains("lambda-stream: function spam: ")
                    && text.contains(" bytes of output not echoed"),
                "{}",
                &text[text.len().saturating_sub(2000)..]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The process group of process `pid`, and whether it is a zombie, from `/proc/PID/stat`
#[cfg(target_os = "linux")]
fn proc_stat(pid: u32) -> Option<(u32, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state, parent, process group
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((pgrp, state == "Z"))
}

/// Live (not zombie) processes, with their process group, whose file descriptor 3 is `path`;
/// not this one, whose reading end of the FIFO may get descriptor 3 too when it is free
#[cfg(target_os = "linux")]
fn holders_of(path: &std::path::Path) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id()
            && std::fs::read_link(format!("/proc/{pid}/fd/3")).is_ok_and(|l| l == path)
            && let Some((pgrp, false)) = proc_stat(pid)
        {
            out.push((pid, pgrp));
        }
    }
    out
}

/// Live processes in process group `pgrp`
#[cfg(target_os = "linux")]
fn group_members(pgrp: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| proc_stat(*pid) == Some((pgrp, false)))
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn stopping_or_killing_serve_kills_the_function_process_group() {
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = std::env::temp_dir().join(format!("lambda-stream-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for signal in ["TERM", "KILL"] {
        let fifo = dir.join(format!("alive-{signal}"));
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // The function never polls /next; the shell and both sleeps hold the FIFO open, and
        // it says so once the first sleep is started
        let spec = format!(
            "orph=sh -c 'exec 3>{}; sleep 1000 & echo started >&3; sleep 1000'",
            fifo.display()
        );
        let mut server = serve(&["--no-auth", "--function", &spec, "--init-timeout", "600"]);
        let url = server.url.clone();
        let client = std::thread::spawn(move || {
            let authority = url.trim_start_matches("http://").to_owned();
            let req = request(&url, &InvokeParams::new("orph", "{}"));
            let mut s = TcpStream::connect(authority).unwrap();
            write_request(&mut s, &req, "");
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
        let (tx, opened) = mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let mut f = BufReader::new(std::fs::File::open(&path).unwrap());
            let mut line = String::new();
            f.read_line(&mut line).unwrap();
            tx.send(()).unwrap();
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            tx.send(()).unwrap();
        });
        opened
            .recv_timeout(Duration::from_secs(30))
            .expect("the function started");
        let holders = holders_of(&fifo);
        assert!(holders.len() >= 2, "sh and sleeps: {holders:?}");
        let pgrp = holders[0].1;
        assert!(holders.iter().all(|(_, g)| *g == pgrp), "{holders:?}");
        let serve_group = proc_stat(server.child.id()).unwrap().0;
        assert_ne!(
            pgrp, serve_group,
            "the function has a process group of its own"
        );

        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        server.child.wait().unwrap();
        // The FIFO reaches its end once every process holding it is gone
        opened
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("SIG{signal}: processes left: {:?}", holders_of(&fifo)));
        // A killed process closes its files before it turns zombie: the group may still show
        // one on its way out for a moment (a hang guard, not a timing check)
        let guard = std::time::Instant::now() + Duration::from_secs(30);
        while !group_members(pgrp).is_empty() && std::time::Instant::now() < guard {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(group_members(pgrp), Vec::<u32>::new(), "after SIG{signal}");
        client.join().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stderr nobody reads (its pipe full) holds up neither the function's output nor the
/// server: the flood's echo waits in a bounded queue, and what does not fit is dropped
#[test]
fn a_stderr_nobody_reads_does_not_stop_the_server() {
    if !available("python3") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("lambda-stream-unread-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("flood.py");
    std::fs::write(&script, python_function(&PY_FLOOD.replace("MIB", "4"))).unwrap();
    let spec = format!("spam=python3 {}", script.display());
    // stderr is a pipe this test holds and never reads: it fills at 64 KiB, well under
    // what the flood's echo burst writes
    let server = serve(&["--no-auth", "--timeout", "20", "--function", &spec]);
    for _ in 0..2 {
        let (status, _, body) = send(
            &server.url,
            &request(&server.url, &InvokeParams::new("spam", "{}")),
        );
        assert_eq!(status, 200);
        let got = events(body);
        let Some(Event::InvokeComplete(c)) = got.last() else {
            panic!("{got:?}")
        };
        assert!(
            !c.is_error(),
            "the function's output was not held up: {c:?}"
        );
        let (status, _, body) = send(
            &server.url,
            &request(&server.url, &InvokeParams::new("echo", "{}")),
        );
        assert_eq!(status, 200);
        assert_eq!(
            events(body)[0],
            Event::PayloadChunk(Bytes::from_static(b"{}"))
        );
    }
    // Ctrl-C still stops it cleanly: its own "stopping" line does not wait for a reader
    // either, and the wait for the queue is bounded
    let mut server = server;
    let ok = Command::new("kill")
        .args(["-INT", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let asked = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        // a hang guard, not a timing assertion
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(30),
            "serve did not stop on SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
