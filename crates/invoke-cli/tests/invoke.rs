//! `lambda-stream invoke` and `demo` run as real processes against the emulator on loopback

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use invoke_emulator::{
    Builder, Emulator, Faults, FunctionConfig, FunctionError, HandlerFuture, Invocation,
    ResponseStream,
};
use invoke_proto::bytes::{Bytes, BytesMut};
use support::{OutputWatched as _, Watchdog, bin, empty_home};
use tokio::sync::Semaphore;

mod support;

const KEY: &str = "AKIDCLITEST";
const SECRET: &str = "cli-test-secret";

/// An emulator in this process (on its own runtime), checking signatures with `KEY`
struct Lambda {
    runtime: tokio::runtime::Runtime,
    emulator: Option<Emulator>,
    url: String,
}

impl Drop for Lambda {
    fn drop(&mut self) {
        if let Some(e) = self.emulator.take() {
            self.runtime.block_on(e.shutdown());
        }
    }
}

fn lambda(configure: impl FnOnce(Builder) -> Builder) -> Lambda {
    serving(configure(Emulator::builder().builtins().quiet()).credentials(KEY, SECRET))
}

/// An emulator in this process, as `builder` says
fn serving(builder: Builder) -> Lambda {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emulator = runtime
        .block_on(builder.start("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let url = emulator.url();
    Lambda {
        runtime,
        emulator: Some(emulator),
        url,
    }
}

/// An emulator hosting `handler` as `name` with the faults of `spec` on every invocation
fn faulty(name: &str, handler: impl invoke_emulator::Handler, spec: &str) -> Lambda {
    let config = FunctionConfig {
        faults: Faults::parse(spec).unwrap(),
        ..FunctionConfig::default()
    };
    lambda(|b| b.function_with(name, handler, config))
}

/// `invoke` against `url` with the test's keys and region
fn invoke(url: &str, args: &[&str]) -> Command {
    let mut c = bin();
    c.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .arg("invoke")
        .args(args)
        .args(["--endpoint-url", url]);
    c
}

/// Runs `c` to its end with `stdin` as its input, under a [`Watchdog`]
fn run(mut c: Command, stdin: &[u8]) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _watchdog = Watchdog::watch(&child);
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Starts `c` with its stdout and stderr piped; returns the child, its stdout and the
/// [`Watchdog`] over it (to keep while the test uses the child)
fn spawn(mut c: Command) -> (Child, ChildStdout, Watchdog) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let watchdog = Watchdog::watch(&child);
    (child, stdout, watchdog)
}

/// All of a child's stderr
fn stderr_text(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Byte `i` of a `count` stream
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A handler that waits for the test to open `gate` (one permit per wait); it fails after a
/// minute so that a broken client makes the test fail instead of hang
async fn wait(gate: &Semaphore) -> Result<(), FunctionError> {
    match tokio::time::timeout(Duration::from_secs(60), gate.acquire()).await {
        Ok(Ok(permit)) => {
            permit.forget();
            Ok(())
        }
        _ => Err(FunctionError::new("GateTimeout", "the test never opened")),
    }
}

/// A function that writes `chunks` in order, waiting for a permit of `gate` before each one
/// after the first; it sends on `done` whether every wait was answered
fn gated(
    chunks: &'static [&'static str],
    gate: &Arc<Semaphore>,
) -> (
    impl Fn(Invocation, ResponseStream) -> HandlerFuture + Send + Sync + 'static,
    std::sync::mpsc::Receiver<bool>,
) {
    let (done_tx, done) = std::sync::mpsc::channel();
    let done_tx = Arc::new(std::sync::Mutex::new(done_tx));
    let gate = Arc::clone(gate);
    let handler = move |_: Invocation, out: ResponseStream| -> HandlerFuture {
        let (gate, done_tx) = (Arc::clone(&gate), Arc::clone(&done_tx));
        Box::pin(async move {
            let mut answered = true;
            for (i, chunk) in chunks.iter().enumerate() {
                if i > 0 {
                    answered &= wait(&gate).await.is_ok();
                }
                out.write(*chunk).await;
            }
            let _ = done_tx.lock().unwrap().send(answered);
            Ok(())
        })
    };
    (handler, done)
}

/// Run in a Lambda function (`AWS_LAMBDA_FUNCTION_NAME` set), `invoke` sends the trace of
/// the invocation being handled (`_X_AMZN_TRACE_ID`) as `X-Amzn-Trace-Id`, as the AWS SDKs
/// do; elsewhere it sends none, whatever `_X_AMZN_TRACE_ID` says
#[test]
fn in_a_lambda_function_its_trace_goes_on() {
    let l = lambda(|b| {
        b.function("trace", |inv: Invocation, out: ResponseStream| async move {
            out.write(inv.trace_id.unwrap_or_else(|| "none".to_owned()))
                .await;
            Ok::<(), FunctionError>(())
        })
    });
    let id = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    for (function_name, sent) in [(Some("caller"), id), (None, "none")] {
        let mut c = invoke(&l.url, &["trace"]);
        c.env("_X_AMZN_TRACE_ID", id);
        if let Some(name) = function_name {
            c.env("AWS_LAMBDA_FUNCTION_NAME", name);
        }
        let o = run(c, b"");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            sent,
            "{function_name:?}"
        );
    }
}

#[test]
fn payload_reaches_stdout_byte_exact_for_echo_and_count() {
    let l = lambda(|b| b);
    let event = format!(r#"{{"data":"{}"}}"#, "x".repeat(10_000));
    let o = run(invoke(&l.url, &["echo", "--payload", &event]), b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, event.as_bytes());
    assert!(
        stderr(&o).contains("executed version $LATEST"),
        "{}",
        stderr(&o)
    );

    let o = run(
        invoke(&l.url, &["count", "--payload", r#"{"n":300,"size":1000}"#]),
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, pattern(300_000));
    assert!(
        stderr(&o).contains("300000 bytes in 300 chunks"),
        "{}",
        stderr(&o)
    );
}

/// Peak resident set of a live process, from /proc
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_hundred_mib_stream_with_bounded_memory() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 1600; // 100 MiB
    let gate = Arc::new(Semaphore::new(0));
    let g = Arc::clone(&gate);
    let l = lambda(move |b| {
        b.function("big", move |_: Invocation, out: ResponseStream| {
            let g = Arc::clone(&g);
            async move {
                let period: Bytes = pattern(CHUNK + 26).into();
                for k in 0..CHUNKS {
                    let start = (k * CHUNK) % 26;
                    out.write(period.slice(start..start + CHUNK)).await;
                }
                // InvokeComplete only once the test has measured the live process
                wait(&g).await
            }
        })
    });
    let (mut child, mut stdout, _watchdog) = spawn(invoke(&l.url, &["big"]));
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0usize;
    while total < CHUNK * CHUNKS {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "stdout ended after {total} bytes");
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, b'a' + ((total + i) % 26) as u8, "byte {}", total + i);
        }
        total += n;
    }
    let peak = vm_hwm_kib(child.id()).expect("VmHWM of the running CLI");
    gate.add_permits(1);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let status = child.wait().unwrap();
    let err = stderr_text(&mut child);
    assert_eq!(status.code(), Some(0), "{err}");
    eprintln!(
        "peak RSS of `lambda-stream invoke` streaming 100 MiB to a pipe: {peak} KiB ({} MiB)",
        peak / 1024
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB is over 64 MiB");
}

#[test]
fn the_first_chunk_reaches_stdout_while_the_function_runs() {
    let gate = Arc::new(Semaphore::new(0));
    let (handler, done) = gated(&["first\n", "second\n"], &gate);
    let l = lambda(move |b| b.function("gated", handler));
    let (mut child, mut stdout, _watchdog) = spawn(invoke(&l.url, &["gated"]));
    let mut first = [0; 6];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"first\n");
    // the function is still blocked on the gate: the chunk came through live
    gate.add_permits(1);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"second\n");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(done.recv().unwrap());
}

#[test]
fn payload_from_stdin_and_from_a_file() {
    let l = lambda(|b| b);
    let event = br#"{"from":"stdin"}"#;
    let o = run(invoke(&l.url, &["echo", "--payload", "-"]), event);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, event);

    let path =
        std::env::temp_dir().join(format!("lambda-stream-event-{}.json", std::process::id()));
    std::fs::write(&path, br#"{"from":"file"}"#).unwrap();
    // `@PATH`, and the AWS CLI's `file://PATH` and `fileb://PATH`
    for prefix in ["@", "file://", "fileb://"] {
        let arg = format!("{prefix}{}", path.display());
        let o = run(invoke(&l.url, &["echo", "--payload", &arg]), b"");
        assert_eq!(o.status.code(), Some(0), "{prefix}: {}", stderr(&o));
        assert_eq!(o.stdout, br#"{"from":"file"}"#, "{prefix}");
    }
    // `file://~/…`, expanded as the AWS CLI does
    let home = std::env::temp_dir().join(format!("lambda-stream-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(&path, home.join("event.json")).unwrap();
    let mut c = invoke(&l.url, &["echo", "--payload", "file://~/event.json"]);
    c.env("HOME", &home);
    let o = run(c, b"");
    let _ = std::fs::remove_dir_all(&home);
    assert_eq!(o.status.code(), Some(0), "~: {}", stderr(&o));
    assert_eq!(o.stdout, br#"{"from":"file"}"#);
    let _ = std::fs::remove_file(&path);

    let o = run(
        invoke(&l.url, &["echo", "--payload", "@/no/such/file"]),
        b"",
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("/no/such/file"), "{}", stderr(&o));
}

/// `--cli-binary-format base64`, AWS CLI v2's default, takes text and `file://` as base64;
/// `fileb://` and standard input stay bytes, and `raw-in-base64-out` takes text as it is
#[test]
fn a_base64_payload_as_aws_cli_v2_takes_it() {
    let l = lambda(|b| b);
    let dir = std::env::temp_dir().join(format!("lambda-stream-b64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("event.b64");
    // line breaks, as `base64` writes them
    std::fs::write(&text, "eyJmcm9tIjoi\nZmlsZSJ9\n").unwrap();
    let bytes = dir.join("event.json");
    std::fs::write(&bytes, br#"{"from":"fileb"}"#).unwrap();
    let file = format!("file://{}", text.display());
    let fileb = format!("fileb://{}", bytes.display());
    for (payload, format, stdin, expected) in [
        ("eyJoaSI6MX0=", "base64", &b""[..], &br#"{"hi":1}"#[..]),
        (&file, "base64", b"", br#"{"from":"file"}"#),
        (&fileb, "base64", b"", br#"{"from":"fileb"}"#),
        (
            "-",
            "base64",
            br#"{"from":"stdin"}"#,
            br#"{"from":"stdin"}"#,
        ),
        (r#"{"hi":1}"#, "raw-in-base64-out", b"", br#"{"hi":1}"#),
    ] {
        let args = ["echo", "--payload", payload, "--cli-binary-format", format];
        let o = run(invoke(&l.url, &args), stdin);
        assert_eq!(o.status.code(), Some(0), "{payload}: {}", stderr(&o));
        assert_eq!(o.stdout, expected, "{payload} {format}");
    }

    // JSON is not base64: refused before anything is sent
    let args = [
        "echo",
        "--payload",
        r#"{"hi":1}"#,
        "--cli-binary-format",
        "base64",
    ];
    let o = run(invoke(&l.url, &args), b"");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).contains("--payload is not base64"),
        "{}",
        stderr(&o)
    );

    // the limit holds for the decoded bytes
    let max = invoke_proto::MAX_PAYLOAD_LEN;
    for (len, status) in [(max, 0), (max + 1, 3)] {
        use base64::Engine as _;
        let json = format!("\"{}\"", "7".repeat(len - 2));
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        // in lines of 76 characters, as `base64` writes them: longer than the bare text
        let lines: Vec<&[u8]> = encoded.as_bytes().chunks(76).collect();
        std::fs::write(&text, lines.join(&b'\n')).unwrap();
        let args = [
            "echo",
            "--payload",
            &file,
            "--cli-binary-format",
            "base64",
            "-q",
        ];
        let o = run(invoke(&l.url, &args), b"");
        assert_eq!(o.status.code(), Some(status), "{len}: {}", stderr(&o));
        assert_eq!(o.stdout.len(), if status == 0 { len } else { 0 });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_function_error_exits_1_after_its_output() {
    let l = lambda(|b| b);
    let o = run(
        invoke(
            &l.url,
            &["fail", "--payload", r#"{"after":2}"#, "--log-type", "Tail"],
        ),
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(o.stdout, b"chunk\nchunk\n");
    let err = stderr(&o);
    assert!(err.contains("function error Unhandled"), "{err}");
    assert!(err.contains(r#""errorType":"Error""#), "{err}");
    assert!(
        err.contains("fail: failing on purpose"),
        "the log tail: {err}"
    );
}

/// The log tail is the function's text: its control characters (an escape sequence that
/// retitles the terminal) are shown escaped, as the function error's texts are
#[test]
fn the_log_tail_reaches_the_terminal_escaped() {
    let l = lambda(|b| {
        b.function("noisy", |inv: Invocation, out: ResponseStream| async move {
            let _ = inv;
            out.log("before \u{1b}]0;retitled\u{7} after");
            out.write(Bytes::from_static(b"ok")).await;
            Ok(())
        })
    });
    let o = run(invoke(&l.url, &["noisy", "--log-type", "Tail"]), b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"ok");
    let err = stderr(&o);
    assert!(
        err.contains(r"before \u{1b}]0;retitled\u{7} after"),
        "the log tail, escaped: {err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "a raw escape reached stderr: {err:?}"
    );
}

#[test]
fn service_errors_exit_2_with_type_message_and_request_id() {
    let l = lambda(|b| b);
    let o = run(invoke(&l.url, &["nope", "--payload", "{}"]), b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    assert!(err.contains("request id"), "{err}");
    assert!(o.stdout.is_empty());

    // throttled, and one attempt allowed (the option wins over AWS_MAX_ATTEMPTS)
    let busy = faulty("busy", invoke_emulator::echo, "throttle");
    let mut c = invoke(
        &busy.url,
        &["busy", "--payload", "{}", "--max-attempts", "1"],
    );
    c.env("AWS_MAX_ATTEMPTS", "5");
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("TooManyRequestsException"), "{err}");
    assert!(err.contains("after 1 attempt"), "{err}");
}

#[test]
fn a_truncated_stream_exits_2_and_keeps_what_arrived() {
    let l = faulty("cut", invoke_emulator::count, "close-after=500");
    let o = run(
        invoke(&l.url, &["cut", "--payload", r#"{"n":20,"size":100}"#]),
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        !o.stdout.is_empty(),
        "the chunks before the cut are written"
    );
    assert!(o.stdout.len() < 2000);
    assert_eq!(o.stdout, pattern(o.stdout.len()));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{} payload bytes", o.stdout.len())),
        "{err}"
    );
    assert!(err.contains("cut"), "{err}");

    // --output events ends with the error
    let o = run(
        invoke(
            &l.url,
            &[
                "cut",
                "--payload",
                r#"{"n":20,"size":100}"#,
                "--output",
                "events",
            ],
        ),
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "Error", "{out}");
    assert!(out.contains(r#""event":"PayloadChunk""#), "{out}");
}

/// A body that ends cleanly before `InvokeComplete` is a cut stream too: exit 2, what
/// arrived kept, and the reason named
#[test]
fn a_stream_that_ends_without_invoke_complete_exits_2() {
    let l = faulty("ended", invoke_emulator::count, "end-early");
    let o = run(
        invoke(&l.url, &["ended", "--payload", r#"{"n":20,"size":100}"#]),
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(o.stdout, pattern(100), "the first chunk is written");
    let err = stderr(&o);
    assert!(
        err.contains("the stream ended without InvokeComplete"),
        "{err}"
    );
}

/// A server that answers one request with a stream whose body is `body`
fn server_once(body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut request = vec![0; length];
        reader.read_exact(&mut request).unwrap();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\n\
             x-amz-executed-version: $LATEST\r\nx-amzn-requestid: req-1\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let mut stream = stream;
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
    });
    (url, handle)
}

/// A server that answers one request with a well-formed stream lacking `InvokeComplete`
fn server_without_invoke_complete() -> (String, std::thread::JoinHandle<()>) {
    let mut frame = BytesMut::new();
    invoke_proto::encode_payload_chunk(b"hello", &mut frame).unwrap();
    server_once(frame.to_vec())
}

/// An event message of `event_type` with `payload`
fn event(event_type: &'static str, payload: &[u8]) -> Vec<u8> {
    let mut h = invoke_proto::Headers::builder();
    h.push(":event-type", event_type).unwrap();
    h.push(":message-type", "event").unwrap();
    let m = invoke_proto::Message::new(h.build().unwrap(), Bytes::copy_from_slice(payload));
    let mut out = BytesMut::new();
    invoke_proto::encode_message(&m, &mut out).unwrap();
    out.to_vec()
}

/// An event of a type this client does not know is passed over (and shown by `--output
/// events`); a log tail without a final line break gets one before the closing `---`
#[test]
fn unknown_events_are_passed_over_and_a_log_tail_is_closed_on_its_own_line() {
    let log = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"last line, no break",
    );
    let complete = format!(r#"{{"LogResult":"{log}"}}"#);
    let mut body = event("PayloadChunk", b"hello");
    body.extend(event("Mystery", b"?"));
    body.extend(event("InvokeComplete", complete.as_bytes()));
    let (url, server) = server_once(body.clone());
    let o = run(invoke(&url, &["f"]), b"");
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"hello");
    let err = stderr(&o);
    assert!(
        err.starts_with("--- log tail ---\nlast line, no break\n---\n"),
        "{err}"
    );
    let (url, server) = server_once(body);
    let o = run(invoke(&url, &["f", "--output", "events"]), b"");
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["ResponseHead", "PayloadChunk", "Mystery", "InvokeComplete"]
    );
    assert_eq!(lines[2]["known"], false);
    // `t_ms` is the time the summary reports, in milliseconds (its rounding aside: to
    // 0.1 ms, or to 0.01 s from a second on)
    let err = stderr(&o);
    let (_, after) = err.split_once("first byte after ").expect(&err);
    let (value, unit) = after.split_once(' ').unwrap();
    let value: f64 = value.parse().unwrap();
    let (summary_ms, rounding) = if unit.starts_with("ms") {
        (value, 0.05)
    } else {
        (value * 1e3, 5.0)
    };
    let t_ms = lines[1]["t_ms"].as_f64().unwrap();
    assert!(
        (t_ms - summary_ms).abs() <= rounding + 0.001,
        "t_ms {t_ms} against the summary's {summary_ms}: {err}"
    );
}

/// "The stream was cut" follows an error after the response began, even before any chunk,
/// and never one before it (a refused connection)
#[test]
fn the_stream_is_said_to_be_cut_only_once_it_began() {
    let (url, server) = server_once(Vec::new());
    let o = run(invoke(&url, &["f", "--max-attempts", "1"]), b"");
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the stream was cut: 0 payload bytes in 0 chunks arrived"),
        "{}",
        stderr(&o)
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = run(invoke(&url, &["f", "--max-attempts", "1"]), b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("stream was cut"), "{}", stderr(&o));
}

/// `--output events` writes each event's line as it happens: the test opens the gate for
/// the second chunk only once it has read the first chunk's line
#[test]
fn event_lines_are_written_as_they_happen() {
    let gate = Arc::new(Semaphore::new(0));
    let (handler, done) = gated(&["first", "second"], &gate);
    let l = lambda(|b| b.function("gated", handler));
    let mut c = invoke(&l.url, &["gated", "--output", "events"]);
    c.stdin(Stdio::null());
    let (mut child, stdout, _watchdog) = spawn(c);
    let mut lines = BufReader::new(stdout).lines();
    // the function gives up after a minute, and the stream with it: never a hang
    loop {
        let line = lines.next().expect("a PayloadChunk line").unwrap();
        if line.contains(r#""event":"PayloadChunk""#) {
            break;
        }
    }
    gate.add_permits(1);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        child.wait().unwrap().success(),
        "{}",
        stderr_text(&mut child)
    );
    assert!(done.recv().unwrap(), "the gate was opened");
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(rest[1].contains(r#""event":"InvokeComplete""#), "{rest:?}");
}

#[test]
fn a_stream_without_invoke_complete_exits_2() {
    let (url, server) = server_without_invoke_complete();
    let o = run(invoke(&url, &["f", "--max-attempts", "1"]), b"");
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(o.stdout, b"hello");
    let err = stderr(&o);
    assert!(err.contains("without InvokeComplete"), "{err}");
    assert!(err.contains("5 payload bytes in 1 chunk arrived"), "{err}");
}

#[test]
fn a_closed_stdout_ends_the_invocation_quietly() {
    /// Lines the function can write, one per permit after the first
    const LINES: usize = 64;
    let lines: &'static [&'static str] = Box::leak(
        (0..LINES)
            .map(|i| &*Box::leak(format!("line {i}\n").into_boxed_str()))
            .collect::<Vec<&'static str>>()
            .into_boxed_slice(),
    );
    let gate = Arc::new(Semaphore::new(0));
    let (handler, done) = gated(lines, &gate);
    let l = lambda(move |b| b.function("endless", handler));
    let (mut child, mut stdout, _watchdog) = spawn(invoke(&l.url, &["endless"]));
    let mut first = [0; 7];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"line 0\n");
    drop(stdout); // like `| head -1`
    let mut stderr = child.stderr.take().unwrap();
    let (exited_tx, exited) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = exited_tx.send(());
        status
    });
    // One more line at a time until the CLI is gone: the first write into the closed pipe
    // ends it. (One at a time, not all at once: a pipe end that a process spawned by
    // another test still held for a moment would take a write, and the CLI waits for more.)
    let mut released = 0;
    while exited.recv_timeout(Duration::from_millis(100)).is_err() {
        assert!(released < LINES - 1, "the CLI read the whole stream");
        gate.add_permits(1);
        released += 1;
    }
    let status = waiter.join().unwrap().unwrap();
    gate.add_permits(LINES); // only now may the function end
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "quiet: {err:?}");
    // the CLI exited while the function was still streaming (it was never read to the end)
    assert!(released < LINES - 1, "{released} lines released");
    let answered = done.recv_timeout(Duration::from_secs(180)).unwrap();
    assert!(answered, "the function gave up waiting");
}

#[test]
fn output_events_shows_the_stream_shape() {
    let l = lambda(|b| b);
    let o = run(
        invoke(
            &l.url,
            &[
                "count",
                "--payload",
                r#"{"n":3,"size":4}"#,
                "--output",
                "events",
                "--log-type",
                "Tail",
            ],
        ),
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0]["event"], "ResponseHead");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["executed_version"], "$LATEST");
    for (i, line) in lines[1..4].iter().enumerate() {
        assert_eq!(line["event"], "PayloadChunk");
        assert_eq!(line["offset"], i * 4);
        assert_eq!(line["size"], 4);
        assert!(line["t_ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(lines[4]["event"], "InvokeComplete");
    assert!(lines[4]["error_code"].is_null());
    assert!(
        lines[4]["log"]
            .as_str()
            .unwrap()
            .contains("count: 3 chunks of 4 bytes"),
        "{:?}",
        lines[4]
    );
}

#[test]
fn requests_are_signed_with_the_configured_credentials() {
    let l = lambda(|b| b);
    // the emulator accepts only KEY/SECRET: success above proves the signature; a wrong
    // secret is refused
    let refused = |c: Command| {
        let o = run(c, b"");
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("InvalidSignatureException"),
            "{}",
            stderr(&o)
        );
    };
    let mut c = invoke(&l.url, &["echo", "--payload", "{}"]);
    c.env("AWS_SECRET_ACCESS_KEY", "wrong");
    refused(c);
    // the same keys from a profile
    let dir = std::env::temp_dir().join(format!("lambda-stream-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("credentials"),
        format!("[ci]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    // the region too: with keys, the emulator refuses a signature scoped to another region
    std::fs::write(
        dir.join("config"),
        "[profile ci]\nregion = us-east-1\n[profile other]\n",
    )
    .unwrap();
    // `invoke` with the shared files above and nothing else
    let with_files = || {
        let mut c = bin();
        c.env("AWS_CONFIG_FILE", dir.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
            .args(["invoke", "echo", "--payload", "{}"])
            .args(["--endpoint-url", &l.url]);
        c
    };
    let profile_cmd = |profile: &str| {
        let mut c = with_files();
        c.args(["--profile", profile]);
        c
    };
    let o = run(profile_cmd("ci"), b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"{}");
    // keys in the environment (another account's) lose to --profile, as in the AWS CLI...
    let mut c = profile_cmd("ci");
    c.env("AWS_ACCESS_KEY_ID", "AKIDOTHERACCOUNT")
        .env("AWS_SECRET_ACCESS_KEY", "other-secret");
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"{}");
    // ...but win over AWS_PROFILE
    let mut c = with_files();
    c.env("AWS_PROFILE", "ci")
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", "wrong");
    refused(c);
    let o = run(profile_cmd("nope"), b"");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("`nope` could not be found"), "{err}");
    assert!(err.contains("ci, other"), "the profiles that exist: {err}");
}

/// An unknown profile with no profile defined: the files looked at, and what chose it
#[test]
fn an_unknown_profile_without_any_names_the_files_and_the_chooser() {
    let mut c = bin();
    c.env("AWS_PROFILE", "nope")
        .args(["invoke", "echo", "--region", "us-east-1"]);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    let config = empty_home().join(".aws").join("config");
    let want = format!(
        "the config profile `nope` could not be found; no profile is defined in {} (missing)",
        config.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(
        err.trim_end()
            .ends_with("(missing); AWS_PROFILE chose it: pick another or unset it"),
        "{err}"
    );
}

#[test]
fn no_sign_request_against_an_endpoint_without_auth() {
    let open = serving(Emulator::builder().builtins().no_auth().quiet());
    let mut c = bin();
    c.args([
        "invoke",
        "echo",
        "--payload",
        r#"{"a":1}"#,
        "--no-sign-request",
    ])
    .args(["--region", "us-east-1", "--endpoint-url", &open.url]);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, br#"{"a":1}"#);

    // truly unsigned: an endpoint that checks signatures refuses it
    let l = lambda(|b| b);
    let o = run(invoke(&l.url, &["echo", "--no-sign-request"]), b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("MissingAuthenticationTokenException"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn https_with_the_ca_bundle_from_aws_ca_bundle() {
    let l = lambda(Builder::tls);
    assert!(l.url.starts_with("https://"), "{}", l.url);
    let ca = l
        .emulator
        .as_ref()
        .unwrap()
        .ca_pem_path()
        .unwrap()
        .to_owned();
    let mut c = invoke(&l.url, &["echo", "--payload", r#"{"tls":true}"#]);
    c.env("AWS_CA_BUNDLE", &ca);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, br#"{"tls":true}"#);
    // without it the certificate is not trusted
    let o = run(invoke(&l.url, &["echo", "--max-attempts", "1"]), b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).to_lowercase().contains("certificate"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn configuration_errors_exit_3_and_name_the_fix() {
    // no region
    let mut c = bin();
    c.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .args(["invoke", "echo"]);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains("no region")
            && err.contains("AWS_REGION")
            && err.contains("AWS_DEFAULT_REGION"),
        "{err}"
    );
    assert!(err.contains(".aws/config (missing)"), "{err}");

    // no credentials: each provider and why
    let mut c = bin();
    c.args(["invoke", "echo", "--region", "us-east-1"])
        .args(["--endpoint-url", "http://127.0.0.1:9"]);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("no AWS credentials found"), "{err}");
    for provider in ["environment", "profile", "container", "imds"] {
        assert!(err.contains(&format!("- {provider}")), "{provider}: {err}");
    }
    assert!(err.contains("--no-sign-request"), "{err}");

    // clap's own usage errors
    let o = run(
        {
            let mut c = bin();
            c.args(["invoke", "--no-such-option"]);
            c
        },
        b"",
    );
    assert_eq!(o.status.code(), Some(3));
    let o = run(
        {
            let mut c = bin();
            c.args(["invoke", "echo", "--output", "xml"]);
            c
        },
        b"",
    );
    assert_eq!(o.status.code(), Some(3));
    let o = run(
        {
            let mut c = bin();
            c.arg("no-such-command");
            c
        },
        b"",
    );
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn an_unreachable_credentials_endpoint_exits_2() {
    // the container endpoint is configured but refuses connections: a network failure, not
    // a configuration error
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = bin();
    c.env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("http://127.0.0.1:{port}/credentials"),
    )
    .env("AWS_MAX_ATTEMPTS", "1")
    .args(["invoke", "echo", "--region", "us-east-1"])
    .args(["--endpoint-url", "http://127.0.0.1:9"]);
    let o = run(c, b"");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("container"), "{err}");
    assert!(!err.contains("--no-sign-request"), "{err}");
}

#[test]
fn connection_refused_exits_2() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let o = run(invoke(&url, &["echo", "--max-attempts", "1"]), b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&o)
    );
}

/// A payload of exactly the service's limit is sent whole; one byte more is refused before
/// anything is sent, from standard input or a file alike
#[test]
fn a_payload_may_be_as_large_as_the_limit() {
    let l = lambda(|b| {
        b.function("size", |inv: Invocation, out: ResponseStream| async move {
            out.write(inv.payload.len().to_string()).await;
            Ok::<(), FunctionError>(())
        })
    });
    let max = invoke_proto::MAX_PAYLOAD_LEN;
    let json = |len: usize| format!("\"{}\"", "a".repeat(len - 2)).into_bytes();
    let o = run(invoke(&l.url, &["size", "--payload", "-"]), &json(max));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, max.to_string().as_bytes());
    let o = run(invoke(&l.url, &["size", "--payload", "-"]), &json(max + 1));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let limit = format!("over the {max}-byte limit");
    assert!(stderr(&o).contains(&limit), "{}", stderr(&o));
    let file = std::env::temp_dir().join(format!("cli-payload-over-{}.json", std::process::id()));
    std::fs::write(&file, json(max + 1)).unwrap();
    let arg = format!("@{}", file.display());
    let o = run(invoke(&l.url, &["size", "--payload", &arg]), b"");
    std::fs::remove_file(&file).unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(&limit), "{}", stderr(&o));
}

#[test]
fn dry_run_writes_nothing() {
    let l = lambda(|b| b);
    let o = run(
        invoke(&l.url, &["echo", "--payload", "{}", "--dry-run"]),
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("dry run passed"), "{}", stderr(&o));
}

#[test]
fn the_status_line_only_when_asked_or_on_a_terminal() {
    let l = lambda(|b| b);
    let payload = r#"{"n":5,"size":10}"#;
    // stderr is a pipe here: no status line
    let o = run(invoke(&l.url, &["count", "--payload", payload]), b"");
    assert_eq!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains('\x1b'), "{:?}", stderr(&o));
    // forced on: drawn, then cleared before the summary
    let o = run(
        invoke(
            &l.url,
            &["count", "--payload", payload, "--status-line", "always"],
        ),
        b"",
    );
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(err.starts_with("\r\x1b[2K"), "{err:?}");
    let (status, summary) = err.rsplit_once("\r\x1b[2K").unwrap();
    assert!(status.contains("waiting for the response"), "{err:?}");
    assert!(
        summary.starts_with("lambda-stream: executed version"),
        "{err:?}"
    );
    // --quiet: nothing at all on success
    let o = run(
        invoke(&l.url, &["count", "--payload", payload, "--quiet"]),
        b"",
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty(), "{:?}", stderr(&o));
    assert_eq!(o.stdout, pattern(50));
}

/// The status line shows what has arrived while the function is silent: the test opens the
/// gate for the second chunk only once the line counts the first
#[test]
fn the_status_line_counts_what_has_arrived() {
    let gate = Arc::new(Semaphore::new(0));
    let (handler, done) = gated(&["first", "second"], &gate);
    let l = lambda(|b| b.function("gated", handler));
    let mut c = invoke(&l.url, &["gated", "--status-line", "always"]);
    c.stdin(Stdio::null());
    let (mut child, mut stdout, _watchdog) = spawn(c);
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // the function gives up after a minute, and the stream with it: never a hang
    while !String::from_utf8_lossy(&seen).contains("5 B · 1 chunk · ") {
        let n = err.read(&mut buf).unwrap();
        // the line's last drawings: it is redrawn every 100 ms
        let last = &seen[seen.len().saturating_sub(300)..];
        assert!(n > 0, "ended first: {:?}", String::from_utf8_lossy(last));
        seen.extend_from_slice(&buf[..n]);
    }
    gate.add_permits(1);
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).unwrap();
    err.read_to_end(&mut seen).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(done.recv().unwrap(), "the gate was opened");
    assert_eq!(out, b"firstsecond");
    let seen = String::from_utf8(seen).unwrap();
    assert!(seen.contains("5 B · 1 chunk · "), "{seen:?}");
    assert!(seen.contains(" · first byte "), "{seen:?}");
}

/// A shell word for `arg`, single-quoted
#[cfg(target_os = "linux")]
fn shell_quote(arg: &std::ffi::OsStr) -> String {
    format!("'{}'", arg.to_str().unwrap().replace('\'', r"'\''"))
}

#[test]
#[cfg(target_os = "linux")] // util-linux `script`; BSD's takes other options
fn on_a_terminal_the_status_line_never_covers_the_payload() {
    // `script` (util-linux) runs the command on a pseudo-terminal
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no `script` (util-linux): .ci/run installs it"
        );
        eprintln!("skipped: no `script` (util-linux) to make a pseudo-terminal");
        return;
    }
    let l = lambda(|b| b);
    let c = invoke(&l.url, &["count", "--payload", r#"{"n":5,"size":10}"#]);
    let line: Vec<String> = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(shell_quote)
        .collect();
    let on_a_terminal = |redirect: &str| {
        let mut script = Command::new("script");
        script
            .arg("-qec")
            .arg(format!("{} {redirect}", line.join(" ")))
            .arg("/dev/null")
            .env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                script.env(k, v);
            }
        }
        script.output_watched()
    };
    // stdout and stderr on the same terminal: no status line, which would overwrite the
    // payload
    let o = on_a_terminal("");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("abcdefghij"), "{shown:?}");
    assert!(!shown.contains("\x1b[2K"), "{shown:?}");
    // the payload to a file, stderr on the terminal: the status line is drawn there
    let file = std::env::temp_dir().join(format!("lambda-stream-pty-{}", std::process::id()));
    let o = on_a_terminal(&format!("> {}", shell_quote(file.as_os_str())));
    let written = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(written, pattern(50));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("\x1b[2K"), "{shown:?}");
}

#[test]
fn demo_streams_several_chunks_and_prints_the_next_commands() {
    let mut c = bin();
    c.args(["demo", "--chunks", "4", "--delay-ms", "20"]);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.matches("chunk at byte").count(), 4, "{out}");
    assert!(out.contains("InvokeComplete: success"), "{out}");
    assert!(out.contains("time to first byte"), "{out}");
    assert!(out.contains("4 chunks · 104 bytes"), "{out}");
    assert!(out.contains("lambda-stream serve --no-auth"), "{out}");
    assert!(out.contains("lambda-stream invoke my-function"), "{out}");
}

/// A demo longer than a function may run (15 minutes) is refused before it starts, instead
/// of ending in the function's timeout
#[test]
fn a_demo_longer_than_a_function_may_run_is_a_usage_error() {
    let mut c = bin();
    c.args(["demo", "--chunks", "100", "--delay-ms", "10000"]);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        stderr(&o).contains("longer than a function may run"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn demo_is_the_default_command() {
    let o = run(bin(), b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.matches("chunk at byte").count() > 1, "{out}");
}

#[test]
fn completions_and_help() {
    for shell in ["bash", "zsh", "fish"] {
        let mut c = bin();
        c.args(["completions", shell]);
        let o = run(c, b"");
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(
            script.contains("lambda-stream") && script.contains("invoke"),
            "{shell}"
        );
    }
    let mut c = bin();
    c.args(["invoke", "--help"]);
    let o = run(c, b"");
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8(o.stdout).unwrap();
    assert!(
        help.contains("Exit status:") && help.contains("Examples:"),
        "{help}"
    );
    for cmd in ["demo", "serve", "decode", "completions"] {
        let mut c = bin();
        c.args([cmd, "--help"]);
        let o = run(c, b"");
        assert!(
            String::from_utf8(o.stdout).unwrap().contains("Examples:"),
            "{cmd}"
        );
    }
}

#[test]
fn every_parameter_reaches_the_function() {
    let l = lambda(|b| {
        b.function_with(
            "inspect",
            |inv: Invocation, out: ResponseStream| async move {
                let seen = serde_json::json!({
                    "arn": inv.invoked_function_arn,
                    "client_context": inv.client_context,
                    "tenant_id": inv.tenant_id,
                    "payload": String::from_utf8_lossy(&inv.payload),
                });
                out.write(seen.to_string()).await;
                Ok::<(), FunctionError>(())
            },
            FunctionConfig {
                qualifiers: vec!["prod".to_owned()],
                ..FunctionConfig::default()
            },
        )
    });
    let context = r#"{"custom":{"app":"cli-test"}}"#;
    let seen = |extra: &[&str]| {
        let mut args = vec!["inspect", "--payload", r#"{"k":1}"#, "--qualifier", "prod"];
        args.extend_from_slice(extra);
        let o = run(invoke(&l.url, &args), b"");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let v = seen(&["--client-context", context, "--tenant-id", "tenant-1"]);
    assert!(
        v["arn"]
            .as_str()
            .unwrap()
            .ends_with(":function:inspect:prod"),
        "{v}"
    );
    assert_eq!(v["client_context"], context);
    assert_eq!(v["tenant_id"], "tenant-1");
    assert_eq!(v["payload"], r#"{"k":1}"#);
    let b64 = "eyJjdXN0b20iOnsiYXBwIjoiY2xpLXRlc3QifX0="; // base64 of `context`
    let v = seen(&["--client-context-base64", b64]);
    assert_eq!(v["client_context"], context);
    assert!(v["tenant_id"].is_null());
    // base64 where JSON is expected (the AWS CLI's `--client-context` takes base64)
    let o = run(invoke(&l.url, &["inspect", "--client-context", b64]), b"");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--client-context-base64"),
        "{}",
        stderr(&o)
    );
}

/// Sends SIGINT to `child` (Ctrl-C) and waits for it to end
#[cfg(unix)]
fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    child.wait().unwrap()
}

#[cfg(unix)]
#[test]
fn ctrl_c_says_the_function_runs_on() {
    let gate = Arc::new(Semaphore::new(0));
    let (handler, _done) = gated(&["one\n", "two\n"], &gate);
    let l = lambda(move |b| b.function("slow", handler));
    let (mut child, mut stdout, _watchdog) = spawn(invoke(&l.url, &["slow"]));
    let mut one = [0; 4];
    stdout.read_exact(&mut one).unwrap();
    let status = interrupt(&mut child);
    gate.add_permits(1);
    let err = stderr_text(&mut child);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("the function runs on to its end"), "{err}");
}

/// `invoke echo` (to nothing that listens) with a config in `dir` (made) whose default
/// profile's credentials come from `command`
#[cfg(unix)]
fn invoke_with_credential_process(dir: &std::path::Path, command: &str) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config"),
        format!("[default]\nregion = us-east-1\ncredential_process = {command}\n"),
    )
    .unwrap();
    let mut c = bin();
    c.env("AWS_CONFIG_FILE", dir.join("config")).args([
        "invoke",
        "echo",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ]);
    c
}

/// A credential provider's text quoted in an error (here a `credential_process`'s stderr)
/// reaches the terminal with its control characters escaped
#[cfg(unix)]
#[test]
fn credential_errors_show_control_characters_escaped() {
    let dir = std::env::temp_dir().join(format!("lambda-stream-cperr-{}", std::process::id()));
    let c = invoke_with_credential_process(&dir, "printf '\\033]0;owned\\007' >&2; exit 1");
    let o = run(c, b"");
    let _ = std::fs::remove_dir_all(&dir);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("]0;owned"),
        "the command's stderr is quoted: {err}"
    );
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
}

/// Ctrl-C while a `credential_process` runs (one waiting for a login, say) kills it: in its
/// own process group, the terminal's signal does not reach it
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_kills_a_running_credential_process() {
    let dir = std::env::temp_dir().join(format!("lambda-stream-cp-{}", std::process::id()));
    let pid_file = dir.join("pid");
    let c = invoke_with_credential_process(
        &dir,
        &format!(
            "sleep 120 & echo $! > \"{0}.new\" && mv \"{0}.new\" \"{0}\"; wait",
            pid_file.display()
        ),
    );
    let (mut child, _stdout, _watchdog) = spawn(c);
    // the command's `sleep`, once it started (the file appears whole, by a rename)
    let started = Instant::now();
    let sleeper: u32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            break text.trim().parse().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the credential_process never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = interrupt(&mut child);
    let err = stderr_text(&mut child);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted before the function was invoked"),
        "{err}"
    );
    // gone, or a zombie left to whoever adopted it
    let alive = || {
        std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
            .ok()
            .and_then(|stat| Some(stat[stat.rfind(')')? + 2..].starts_with('Z')))
            .is_some_and(|zombie| !zombie)
    };
    // SIGKILL was sent before the CLI exited; the process ends when next scheduled
    let killed = Instant::now();
    while alive() && killed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !alive(),
        "the credential_process's sleep {sleeper} outlived the CLI: {}",
        std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default()
    );
}

#[test]
fn timeout_bounds_the_whole_invocation() {
    // the function writes one chunk and then holds: the invocation is over its overall limit
    // well before the read timeout (an AWS CLI spelling, as is the connect timeout's) would
    // end the stall, which bounds this test if the limit were not applied
    let gate = Arc::new(Semaphore::new(0));
    let (handler, _done) = gated(&["one\n", "two\n"], &gate);
    let l = lambda(move |b| b.function("held", handler));
    let o = run(
        invoke(
            &l.url,
            &[
                "held",
                "--timeout",
                "0.5",
                "--cli-read-timeout",
                "10",
                "--cli-connect-timeout",
                "5",
            ],
        ),
        b"",
    );
    gate.add_permits(1);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(o.stdout, b"one\n", "the chunk before the limit is kept");
    let err = stderr(&o);
    assert!(err.contains("deadline passed"), "{err}");
    // a bad value is a usage error, and so is one too small to be a nanosecond (not a
    // deadline of zero)
    for bad in ["--timeout=-1", "--timeout=1e-20"] {
        let o = run(invoke(&l.url, &["held", bad]), b"");
        assert_eq!(o.status.code(), Some(3), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--timeout"), "{}", stderr(&o));
    }
}

#[test]
fn read_timeout_ends_a_stalled_stream() {
    let l = faulty("stuck", invoke_emulator::echo, "stall");
    let o = run(
        invoke(
            &l.url,
            &["stuck", "--payload", r#"{"a":1}"#, "--read-timeout", "0.3"],
        ),
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        o.stdout, br#"{"a":1}"#,
        "the chunk before the stall is kept"
    );
    let err = stderr(&o);
    assert!(
        err.contains("timeout") || err.contains("timed out"),
        "{err}"
    );
    assert!(err.contains("7 payload bytes in 1 chunk arrived"), "{err}");
}

/// `lambda-stream invoke f >&-`: the payload would vanish into the /dev/null the Rust runtime
/// puts in the closed descriptor's place; refused before anything is invoked (nothing
/// listens at the endpoint, which would be exit 2)
#[test]
fn a_closed_stdout_is_refused_before_invoking() {
    let out = with_closed("stdout", &["invoke", "echo"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("stdout is closed"), "{err}");
}

/// `lambda-stream invoke f --payload - <&-`: the payload would be read as empty from that
/// /dev/null; refused the same way
#[test]
fn a_closed_stdin_for_the_payload_is_refused_before_invoking() {
    let out = with_closed("stdin", &["invoke", "echo", "--payload", "-"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("standard input, which is closed"), "{err}");
}

/// The CLI with `args`, its `stream` ("stdin" or "stdout") closed, against an endpoint where
/// nothing listens (invoking would be exit 2)
fn with_closed(stream: &str, args: &[&str]) -> Output {
    let redirect = if stream == "stdin" { "<&-" } else { ">&-" };
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec \"$0\" \"$@\" {redirect}"))
        .arg(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(args)
        .args(["--endpoint-url", "http://127.0.0.1:9"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", empty_home())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .output_watched()
}
