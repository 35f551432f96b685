//! The emulator driven by the official AWS SDKs for Python (boto3) and JavaScript (v3)
//!
//! Each test starts an emulator on a loopback port per SDK, with SigV4 checked against one
//! access key, and runs the SDK in a child process (`peers/peer.py`, `peers/peer.cjs`): one
//! invocation, with what the SDK delivered written back as JSON lines as it happens. The
//! SDKs are pinned in `peers/` and installed into `target/sdk-peers` by
//! `.ci/sdk-peers.sh` (or wherever `INVOKE_SDK_PEERS` points). Without them the tests say
//! so and pass, except under `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use base64::Engine as _;
use invoke_emulator::{Emulator, FunctionError, Invocation, ResponseStream};
use invoke_interop::{
    decode_log, gated, guarded, runs, sdk_peers_dir, skip, start_signed, tls_emulator,
    with_shared_functions,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::Semaphore;

const KEY: &str = "AKIDPEERS";
const SECRET: &str = "peers-secret-key";
/// Most of a peer's stderr kept for a failure's message
const STDERR_KEPT: u64 = 64 * 1024;

/// An official SDK, run as a child process
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// boto3, the AWS SDK for Python
    Boto3,
    /// The AWS SDK for JavaScript v3 (`@aws-sdk/client-lambda`)
    JsV3,
}

impl Peer {
    const ALL: [Self; 2] = [Self::Boto3, Self::JsV3];

    /// The command that runs this peer's script, with a clean environment: no profile,
    /// proxy, CA bundle or endpoint of the machine's reaches the SDK
    fn command(self, installed: &Path) -> Command {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
        let (program, script, path_var, path) = match self {
            Self::Boto3 => ("python3", "peer.py", "PYTHONPATH", installed.join("python")),
            Self::JsV3 => (
                "node",
                "peer.cjs",
                "NODE_PATH",
                installed.join("node").join("node_modules"),
            ),
        };
        let mut command = Command::new(program);
        command
            .arg(scripts.join(script))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(path_var, path)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// Where the peers are installed, if they are (and `python3` and `node` run): as in
/// `.ci/sdk-peers.sh`, `INVOKE_SDK_PEERS` (a relative path from the workspace's root) or
/// `target/sdk-peers`
fn installed() -> Option<PathBuf> {
    let dir = sdk_peers_dir();
    let present = dir.join("python/boto3").is_dir()
        && dir
            .join("node/node_modules/@aws-sdk/client-lambda")
            .is_dir()
        && runs("python3")
        && runs("node");
    if present {
        return Some(dir);
    }
    skip(&format!(
        "the official SDK peers (boto3, AWS SDK for JavaScript v3) are not installed in {} \
         or python3/node do not run: run .ci/sdk-peers.sh",
        dir.display()
    ));
    None
}

/// An emulator with the functions of [`with_shared_functions`], `length` (writes its
/// payload's length) and `gated` (writes, waits for `gate`, writes again), accepting only
/// [`KEY`]/[`SECRET`]
async fn emulator(gate: &Arc<Semaphore>) -> Emulator {
    let builder = with_shared_functions(Emulator::builder())
        .function(
            "length",
            |inv: Invocation, out: ResponseStream| async move {
                out.write(inv.payload.len().to_string()).await;
                Ok::<(), FunctionError>(())
            },
        )
        .function("gated", gated(gate));
    start_signed(builder, KEY, SECRET).await
}

/// One invocation for a peer to make: `op` is `stream` (`InvokeWithResponseStream`) or
/// `invoke` (the buffered `Invoke`); the API's own parameters go in `params` under their
/// names in the API (`Qualifier`, `LogType`, `InvocationType`, `ClientContext`, `TenantId`)
struct Case {
    op: &'static str,
    /// The SDK finds the endpoint, region and keys in the environment, as
    /// `lambda-stream serve` tells users to export them, instead of in its client's settings
    from_env: bool,
    /// More environment variables for the peer
    env: Vec<(&'static str, String)>,
    function: &'static str,
    payload: String,
    secret: &'static str,
    max_attempts: u32,
    /// How many times the peer makes the invocation, one after another through one client
    repeat: u32,
    params: Value,
}

impl Case {
    /// A streaming invocation of `function` with `payload`, signed right, no retries
    fn stream(function: &'static str, payload: impl Into<String>) -> Self {
        Self {
            op: "stream",
            from_env: false,
            env: Vec::new(),
            function,
            payload: payload.into(),
            secret: SECRET,
            max_attempts: 1,
            repeat: 1,
            params: json!({}),
        }
    }

    /// The same with `params` (the API's own names)
    fn with(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// As JSON for the peer's standard input
    fn to_json(&self, endpoint: &str) -> String {
        let mut case = json!({
            "endpoint": endpoint,
            "key": KEY,
            "secret": self.secret,
            "op": self.op,
            "function": self.function,
            "payload": self.payload,
            "max_attempts": self.max_attempts,
            "repeat": self.repeat,
            "from_env": self.from_env,
        });
        if let (Some(case), Some(params)) = (case.as_object_mut(), self.params.as_object()) {
            case.extend(params.clone());
        }
        case.to_string()
    }
}

/// What a peer delivered, in its order
#[derive(Debug, Default)]
struct Seen {
    /// The lines' kinds in order: `head`, `chunk`, `complete`, `other`, `end`, `buffered`,
    /// `error`
    order: Vec<String>,
    head: Option<Value>,
    chunks: Vec<Vec<u8>>,
    complete: Option<Value>,
    error: Option<Value>,
    buffered: Option<Value>,
}

impl Seen {
    /// The chunks' bytes, joined
    fn bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// The stream's kinds without its chunks (`head`, `complete`, `end`...)
    fn outline(&self) -> Vec<&str> {
        self.order
            .iter()
            .map(String::as_str)
            .filter(|k| *k != "chunk")
            .collect()
    }

    /// Takes one line of the peer's output, a JSON object of one member: its kind
    fn take(&mut self, line: Value) {
        let Value::Object(members) = line else {
            panic!("not a peer's line: {line}");
        };
        let Some((kind, value)) = members.into_iter().next() else {
            panic!("an empty line from a peer");
        };
        match kind.as_str() {
            "head" => self.head = Some(value),
            "chunk" => self.chunks.push(
                base64::engine::general_purpose::STANDARD
                    .decode(value.as_str().unwrap())
                    .unwrap(),
            ),
            "complete" => self.complete = Some(value),
            "error" => self.error = Some(value),
            "buffered" => self.buffered = Some(value),
            "end" | "other" => {}
            other => panic!("an unknown kind of line {other:?}: {value}"),
        }
        self.order.push(kind);
    }
}

/// One peer's side of a test: its emulator's URL, and the gate of its `gated` function
struct Setup {
    peer: Peer,
    installed: PathBuf,
    url: String,
    gate: Arc<Semaphore>,
}

/// A peer running one case
struct Run {
    peer: Peer,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    seen: Seen,
}

impl Run {
    fn start(setup: &Setup, case: &Case) -> Self {
        let peer = setup.peer;
        let mut command = peer.command(&setup.installed);
        if case.from_env {
            command
                .env("AWS_ENDPOINT_URL_LAMBDA", &setup.url)
                // as `serve`'s banner exports them: boto3 reads only the second, the
                // JavaScript SDK only the first
                .env("AWS_REGION", "us-east-1")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", KEY)
                .env("AWS_SECRET_ACCESS_KEY", case.secret);
        }
        command.envs(case.env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{peer:?} did not start: {e}"));
        // the case on stdin (a payload of megabytes is over what one argument may hold);
        // the peer reads it whole before anything else
        let mut stdin = child.stdin.take().unwrap();
        let input = case.to_json(&setup.url);
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut kept = Vec::new();
            let _ = stderr.take(STDERR_KEPT).read_to_end(&mut kept).await;
            String::from_utf8_lossy(&kept).into_owned()
        });
        Self {
            peer,
            child,
            lines: BufReader::new(stdout).lines(),
            stderr,
            seen: Seen::default(),
        }
    }

    /// The next line's kind, once taken into `seen`; `None` at the end of the output
    async fn next(&mut self) -> Option<String> {
        let line = guarded("a peer's next line", self.lines.next_line())
            .await
            .unwrap()?;
        let value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{:?} wrote {line:?}: {e}", self.peer));
        self.seen.take(value);
        self.seen.order.last().cloned()
    }

    /// Everything the peer delivered, once it exited successfully
    async fn finish(mut self) -> Seen {
        while self.next().await.is_some() {}
        let status = guarded("a peer's exit", self.child.wait()).await.unwrap();
        let stderr = self.stderr.await.unwrap();
        assert!(
            status.success(),
            "{:?} failed ({status}): {stderr}",
            self.peer
        );
        self.seen
    }
}

/// Runs `test` for every peer, each with its own emulator, both at once
async fn each_peer<F, Fut>(test: F)
where
    F: Fn(Setup) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(installed) = installed() else {
        return;
    };
    let [a, b] = Peer::ALL.map(|peer| {
        let installed = installed.clone();
        let test = &test;
        async move {
            let gate = Arc::new(Semaphore::new(0));
            let emu = emulator(&gate).await;
            let url = emu.url();
            test(Setup {
                peer,
                installed,
                url,
                gate,
            })
            .await;
            emu.shutdown().await;
        }
    });
    tokio::join!(a, b);
}

/// What the peer delivered for `case`
async fn run(setup: &Setup, case: &Case) -> Seen {
    Run::start(setup, case).finish().await
}

/// A small `count` (3 chunks of 5 bytes) with the SDK configured by the environment alone,
/// as `serve`'s banner exports it
fn small_count_from_env() -> Case {
    Case {
        from_env: true,
        ..Case::stream("count", r#"{"n":3,"size":5}"#)
    }
}

/// That small `count` arrived whole
#[track_caller]
fn assert_small_count(seen: &Seen, peer: Peer) {
    assert_eq!(
        seen.outline(),
        ["head", "complete", "end"],
        "{seen:?} ({peer:?})"
    );
    assert_eq!(seen.bytes(), b"abcdefghijklmno", "{peer:?}");
}

/// The first `len` bytes `count` writes: the alphabet, over and over
fn alphabet(len: usize) -> Vec<u8> {
    (b'a'..=b'z').cycle().take(len).collect()
}

#[tokio::test]
async fn count_streams_every_byte_in_order() {
    each_peer(|s| async move {
        let peer = s.peer;
        let case = Case::stream("count", r#"{"n":40,"size":1000,"delay_ms":2}"#);
        let seen = run(&s, &case).await;
        assert_eq!(seen.outline(), ["head", "complete", "end"], "{peer:?}");
        let head = seen.head.as_ref().unwrap();
        assert_eq!(head["status"], 200, "{peer:?}");
        assert_eq!(head["executed_version"], "$LATEST", "{peer:?}");
        assert_eq!(head["content_type"], "application/octet-stream", "{peer:?}");
        assert_eq!(head["attempts"], 1, "{peer:?}");
        let id = head["request_id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 36, "a request id: {head} ({peer:?})");
        assert_eq!(seen.bytes(), alphabet(40_000), "{peer:?}");
        assert!(seen.chunks.iter().all(|c| c.len() == 1000), "{peer:?}");
        assert_eq!(
            seen.complete,
            Some(json!({"error_code": null, "error_details": null, "log_result": null})),
            "{peer:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_variables_serve_prints_are_all_an_sdk_needs() {
    each_peer(|s| async move {
        let peer = s.peer;
        assert_small_count(&run(&s, &small_count_from_env()).await, peer);
        // and the key pair comes from there too: a wrong secret is refused
        let case = Case {
            from_env: true,
            secret: "not-the-secret",
            ..Case::stream("count", "{}")
        };
        let error = run(&s, &case).await.error.unwrap();
        assert_eq!(
            error["code"], "InvalidSignatureException",
            "{error} ({peer:?})"
        );
    })
    .await;
}

#[tokio::test]
async fn https_with_the_ca_files_the_banner_exports() {
    each_peer(|s| async move {
        let peer = s.peer;
        let emu = tls_emulator(KEY, SECRET).await;
        let ca = emu.ca_pem_path().unwrap().display().to_string();
        let tls = Setup {
            url: emu.url(),
            ..s
        };
        assert!(tls.url.starts_with("https://"), "{}", tls.url);
        // as `serve --tls` prints them: boto3 reads AWS_CA_BUNDLE, Node.js its own variable
        let case = Case {
            env: vec![("AWS_CA_BUNDLE", ca.clone()), ("NODE_EXTRA_CA_CERTS", ca)],
            ..small_count_from_env()
        };
        assert_small_count(&run(&tls, &case).await, peer);
        // without them the SDK does not trust the emulator
        let seen = run(&tls, &small_count_from_env()).await;
        assert_eq!(seen.outline(), ["error"], "{seen:?} ({peer:?})");
        let message = seen.error.unwrap()["message"].to_string().to_lowercase();
        assert!(message.contains("certificate"), "{message} ({peer:?})");
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn payloads_up_to_the_limits_both_ways() {
    each_peer(|s| async move {
        let peer = s.peer;
        // the request payload: 6 MiB is taken, one byte more refused before the function runs
        // (a JSON string, as Lambda wants JSON)
        let most = invoke_proto::MAX_PAYLOAD_LEN;
        let text = |len: usize| format!("\"{}\"", "x".repeat(len - 2));
        let seen = run(&s, &Case::stream("length", text(most))).await;
        assert_eq!(
            seen.bytes(),
            most.to_string().as_bytes(),
            "{seen:?} ({peer:?})"
        );
        let seen = run(&s, &Case::stream("length", text(most + 1))).await;
        let error = seen.error.unwrap();
        assert_eq!(error["status"], 413, "{error} ({peer:?})");
        assert_eq!(
            error["code"], "RequestTooLargeException",
            "{error} ({peer:?})"
        );
        // a 20 MiB response, in 64 KiB chunks
        let seen = run(&s, &Case::stream("count", r#"{"n":320,"size":65536}"#)).await;
        assert_eq!(seen.outline(), ["head", "complete", "end"], "{peer:?}");
        assert_eq!(seen.chunks.len(), 320, "{peer:?}");
        assert!(seen.bytes() == alphabet(320 * 65536), "{peer:?}");
    })
    .await;
}

#[tokio::test]
async fn one_client_streams_again_and_again() {
    each_peer(|s| async move {
        let peer = s.peer;
        // five streams one after another through one SDK client, which keeps its
        // connections for the next: each whole, none mixed with another
        let case = Case {
            repeat: 5,
            ..Case::stream("count", r#"{"n":40,"size":1000}"#)
        };
        let seen = run(&s, &case).await;
        let once = ["head", "complete", "end"];
        assert_eq!(seen.outline(), once.repeat(5), "{peer:?}");
        assert_eq!(seen.chunks.len(), 5 * 40, "{peer:?}");
        assert_eq!(seen.bytes(), alphabet(40_000).repeat(5), "{peer:?}");
    })
    .await;
}

#[tokio::test]
async fn each_chunk_reaches_the_sdk_while_the_function_runs() {
    each_peer(|s| async move {
        let peer = s.peer;
        let mut run = Run::start(&s, &Case::stream("gated", "{}"));
        assert_eq!(run.next().await.as_deref(), Some("head"), "{peer:?}");
        // the function waits for the gate after its first write: that write has reached
        // the SDK's caller before the function could go on
        assert_eq!(run.next().await.as_deref(), Some("chunk"), "{peer:?}");
        assert_eq!(run.seen.bytes(), b"first", "{peer:?}");
        s.gate.add_permits(1);
        let seen = run.finish().await;
        assert_eq!(seen.bytes(), b"firstsecond", "{peer:?}");
        assert_eq!(seen.outline(), ["head", "complete", "end"], "{peer:?}");
    })
    .await;
}

#[tokio::test]
async fn a_function_error_arrives_in_invoke_complete() {
    each_peer(|s| async move {
        let peer = s.peer;
        let case = Case::stream("fail", r#"{"after":3}"#).with(json!({"LogType": "Tail"}));
        let seen = run(&s, &case).await;
        // the HTTP status stays 200: the error comes in the stream
        assert_eq!(seen.head.as_ref().unwrap()["status"], 200, "{peer:?}");
        assert_eq!(seen.bytes(), b"chunk\nchunk\nchunk\n", "{peer:?}");
        assert_eq!(seen.outline(), ["head", "complete", "end"], "{peer:?}");
        let complete = seen.complete.unwrap();
        assert_eq!(complete["error_code"], "Unhandled", "{peer:?}");
        let details: Value =
            serde_json::from_str(complete["error_details"].as_str().unwrap()).unwrap();
        assert_eq!(
            details,
            json!({"errorType": "Error", "errorMessage": "failed after 3 chunks"}),
            "{peer:?}"
        );
        assert_eq!(
            decode_log(complete["log_result"].as_str()),
            "fail: failing on purpose\n",
            "{peer:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn service_errors_are_the_sdks_own_errors() {
    each_peer(|s| async move {
        let peer = s.peer;
        let cases = [
            (Case::stream("nope", "{}"), 404, "ResourceNotFoundException"),
            (
                Case::stream("versioned", "{}").with(json!({"Qualifier": "staging"})),
                404,
                "ResourceNotFoundException",
            ),
            (
                Case {
                    secret: "not-the-secret",
                    ..Case::stream("echo", "{}")
                },
                403,
                "InvalidSignatureException",
            ),
            (
                Case::stream("whoami", "{}").with(json!({"ClientContext": "not base64!"})),
                400,
                "InvalidRequestContentException",
            ),
            // no retries: the first 429 is the answer
            (
                Case::stream("throttled", "{}"),
                429,
                "TooManyRequestsException",
            ),
        ];
        for (case, status, code) in cases {
            let seen = run(&s, &case).await;
            assert_eq!(seen.outline(), ["error"], "{} ({peer:?})", case.function);
            let error = seen.error.unwrap();
            assert_eq!(error["stage"], "send", "{peer:?}");
            assert_eq!(error["status"], status, "{error} ({peer:?})");
            assert_eq!(error["code"], code, "{error} ({peer:?})");
            let message = error["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{error} ({peer:?})");
        }
    })
    .await;
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    each_peer(|s| async move {
        let peer = s.peer;
        // the function's first two requests get 429 (with Retry-After: 1); the SDK's
        // standard retries make the third
        let case = Case {
            max_attempts: 3,
            ..Case::stream("throttled", r#"{"n":2,"size":5}"#)
        };
        let seen = run(&s, &case).await;
        assert_eq!(seen.outline(), ["head", "complete", "end"], "{peer:?}");
        assert_eq!(seen.head.as_ref().unwrap()["attempts"], 3, "{peer:?}");
        assert_eq!(seen.bytes(), b"abcdefghij", "{peer:?}");
    })
    .await;
}

#[tokio::test]
async fn faults_mid_stream_fail_the_sdks_stream() {
    each_peer(|s| async move {
        let peer = s.peer;
        // an exception message after the first chunk: the SDK raises the service's error
        let seen = run(&s, &Case::stream("exceptional", r#"{"n":3,"size":4}"#)).await;
        assert_eq!(seen.outline(), ["head", "error"], "{seen:?} ({peer:?})");
        assert_eq!(seen.bytes(), b"abcd", "{peer:?}");
        let error = seen.error.unwrap();
        assert_eq!(error["stage"], "stream", "{peer:?}");
        // Lambda's event union models no exception, so each SDK shows it its own way: the
        // JavaScript SDK by its `:exception-type`, with the body as the message; botocore
        // looks for the `:error-code` and `:error-message` headers of an `error` message
        // instead, and raises an `EventStreamError` with neither
        match peer {
            Peer::JsV3 => {
                assert_eq!(error["code"], "ServiceException", "{error}");
                let message = error["message"].as_str().unwrap_or_default();
                assert!(message.contains("injected fault"), "{error}");
            }
            Peer::Boto3 => {
                assert_eq!(error["class"], "EventStreamError", "{error}");
                assert_eq!(error["code"], "", "{error}");
                assert_eq!(error["message"], "", "{error}");
            }
        }
        // the first chunk's message CRC is wrong: the SDK delivers nothing of it. The
        // JavaScript SDK reads the stream's first message before `send` resolves, so there
        // the error comes from `send`
        let seen = run(&s, &Case::stream("corrupt", r#"{"n":3,"size":4}"#)).await;
        let (outline, stage) = match peer {
            Peer::Boto3 => (&["head", "error"][..], "stream"),
            Peer::JsV3 => (&["error"][..], "send"),
        };
        assert_eq!(seen.outline(), outline, "{seen:?} ({peer:?})");
        assert!(seen.chunks.is_empty(), "{peer:?}");
        let error = seen.error.unwrap();
        assert_eq!(error["stage"], stage, "{peer:?}");
        let message = error["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            message.contains("checksum") || message.contains("crc"),
            "{error} ({peer:?})"
        );
    })
    .await;
}

#[tokio::test]
async fn a_cut_stream_is_an_error_in_the_sdk() {
    each_peer(|s| async move {
        let peer = s.peer;
        // the connection closes after 200 body bytes, within the second of 20 messages
        let seen = run(&s, &Case::stream("cut", r#"{"n":20,"size":40}"#)).await;
        // both SDKs raise an error where the body ends too soon (never a clean end)
        assert_eq!(seen.outline(), ["head", "error"], "{seen:?} ({peer:?})");
        assert_eq!(seen.error.as_ref().unwrap()["stage"], "stream", "{peer:?}");
        assert!(!seen.chunks.is_empty(), "{peer:?}");
        assert!(seen.bytes().len() < 800, "{peer:?}");
        assert_eq!(seen.bytes(), alphabet(seen.bytes().len()), "{peer:?}");
    })
    .await;
}

#[tokio::test]
async fn a_clean_end_without_invoke_complete_is_no_error_to_the_sdks() {
    each_peer(|s| async move {
        let peer = s.peer;
        // the body ends cleanly after the first of 20 chunks, with no InvokeComplete: both
        // SDKs end their iteration as after a whole stream, with no error. Only the missing
        // InvokeComplete tells it from one (lambda-stream's clients fail it:
        // MissingInvokeComplete)
        let seen = run(&s, &Case::stream("ended", r#"{"n":20,"size":40}"#)).await;
        assert_eq!(seen.outline(), ["head", "end"], "{seen:?} ({peer:?})");
        assert_eq!(seen.bytes(), alphabet(40), "{peer:?}");
    })
    .await;
}

#[tokio::test]
async fn dry_run_answers_204_with_no_events() {
    each_peer(|s| async move {
        let peer = s.peer;
        let case = Case::stream("count", "{}").with(json!({"InvocationType": "DryRun"}));
        let seen = run(&s, &case).await;
        assert_eq!(seen.outline(), ["head", "end"], "{peer:?}");
        assert_eq!(seen.head.unwrap()["status"], 204, "{peer:?}");
    })
    .await;
}

#[tokio::test]
async fn the_request_reaches_the_function_as_sent() {
    each_peer(|s| async move {
        let peer = s.peer;
        for (qualifier, executed) in [("1", "1"), ("prod", "$LATEST")] {
            let case =
                Case::stream("versioned", r#"{"q":1}"#).with(json!({"Qualifier": qualifier}));
            let seen = run(&s, &case).await;
            assert_eq!(
                seen.head.as_ref().unwrap()["executed_version"],
                executed,
                "{peer:?}"
            );
            assert_eq!(seen.bytes(), br#"{"q":1}"#, "{peer:?}");
        }
        // the function named by its ARN, whole or partial, as the SDKs' own checks allow
        for (name, executed) in [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:versioned:1",
                "1",
            ),
            ("123456789012:function:versioned", "$LATEST"),
        ] {
            let seen = run(&s, &Case::stream(name, r#"{"q":2}"#)).await;
            assert_eq!(seen.bytes(), br#"{"q":2}"#, "{name}: {seen:?} ({peer:?})");
            let head = seen.head.unwrap();
            assert_eq!(head["executed_version"], executed, "{name} ({peer:?})");
        }
        let context = r#"{"custom":{"k":"v"},"env":{"locale":"en"}}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(context);
        let case = Case::stream("whoami", r#"{"hello":"world"}"#).with(json!({
            "Qualifier": "$LATEST",
            "ClientContext": encoded,
            "TenantId": "tenant-7",
        }));
        let seen = run(&s, &case).await;
        let whoami: Value = serde_json::from_slice(&seen.bytes()).unwrap();
        assert_eq!(
            whoami,
            json!({
                "arn": "arn:aws:lambda:us-east-1:123456789012:function:whoami:$LATEST",
                "client_context": context,
                "tenant_id": "tenant-7",
                "payload": r#"{"hello":"world"}"#,
            }),
            "{peer:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_buffered_invoke_answers_too() {
    each_peer(|s| async move {
        let peer = s.peer;
        let echo = Case {
            op: "invoke",
            ..Case::stream("echo", r#"{"data":"buffered"}"#).with(json!({"LogType": "Tail"}))
        };
        let seen = run(&s, &echo).await;
        let answer = seen.buffered.unwrap();
        assert_eq!(answer["status"], 200, "{peer:?}");
        assert_eq!(answer["function_error"], Value::Null, "{peer:?}");
        assert_eq!(answer["executed_version"], "$LATEST", "{peer:?}");
        let payload = base64::engine::general_purpose::STANDARD
            .decode(answer["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(payload, br#"{"data":"buffered"}"#, "{peer:?}");
        assert_eq!(
            decode_log(answer["log_result"].as_str()),
            "echo: 19 bytes\n",
            "{peer:?}"
        );
        let fail = Case {
            op: "invoke",
            ..Case::stream("fail", r#"{"after":2}"#)
        };
        let answer = run(&s, &fail).await.buffered.unwrap();
        assert_eq!(answer["status"], 200, "{peer:?}");
        assert_eq!(answer["function_error"], "Unhandled", "{peer:?}");
        let payload = base64::engine::general_purpose::STANDARD
            .decode(answer["payload"].as_str().unwrap())
            .unwrap();
        let body: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(body["errorType"], "Error", "{peer:?}");
        // an asynchronous invocation is accepted (202), a dry run answered (204), both
        // without a payload
        for (kind, status) in [("Event", 202), ("DryRun", 204)] {
            let case = Case {
                op: "invoke",
                ..Case::stream("echo", "{}").with(json!({"InvocationType": kind}))
            };
            let answer = run(&s, &case).await.buffered.unwrap();
            assert_eq!(answer["status"], status, "{kind} ({peer:?})");
            assert_eq!(answer["payload"], "", "{kind} ({peer:?})");
        }
    })
    .await;
}
