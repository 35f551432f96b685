//! Real function processes behind the emulator's Lambda Runtime API
//!
//! The functions are small Python scripts (standard library only) written at test time; they
//! talk to `AWS_LAMBDA_RUNTIME_API` like a runtime client does. Without `python3` the tests
//! print SKIPPED and pass, except under `CI=true` where they fail.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use invoke_emulator::{Builder, Emulator, FunctionConfig, ProcessFunction};
use invoke_proto::{
    Event, InvokeComplete, InvokeParams, LogType, ResponseHead, StreamError, parse_response_head,
};
use serde_json::{Value, json};
use support::{body_of, guarded, request, send};

/// The function: a loop over `/next`, with the behaviour chosen by the event's `op`
const FUNCTION: &str = r#"
import base64, http.client, json, os, socket, sys, time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.split(":")
BASE = "/2018-06-01/runtime"

def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(HOST, int(PORT))
    c.request(method, path if path.startswith("/2020") else BASE + path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data

def respond(rid, body, headers=None):
    r, data = call("POST", "/invocation/%s/response" % rid, body, headers)
    return r.status, data

def stream(rid, chunks, content_type=None, trailers=b"", mode="streaming", gate=None):
    # hand-written chunked request, so that chunk boundaries and trailers are ours
    s = socket.create_connection((HOST, int(PORT)))
    head = "POST %s/invocation/%s/response HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n" % (BASE, rid, API)
    if mode:
        head += "Lambda-Runtime-Function-Response-Mode: %s\r\n" % mode
    if content_type:
        head += "Content-Type: %s\r\n" % content_type
    head += "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
    s.sendall(head.encode())
    try:
        for i, c in enumerate(chunks):
            if i == 1 and gate:
                while not os.path.exists(gate):
                    time.sleep(0.01)
            s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
        s.sendall(b"0\r\n" + trailers + b"\r\n")
    except OSError:
        pass  # the server may answer early (a bad request) and close
    resp = b""
    try:
        while b"\r\n\r\n" not in resp:
            more = s.recv(4096)
            if not more:
                break
            resp += more
    except OSError:
        pass
    s.close()
    return resp

reported = {}
seen = []
if len(sys.argv) > 1 and sys.argv[1] == "init_error":
    print("failing init", flush=True)
    r, _ = call("POST", "/init/error",
                json.dumps({"errorType": "Runtime.ImportModuleError", "errorMessage": "no module named nope"}),
                {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
    sys.exit(1)

# a slow start, before the first /next
time.sleep(float(os.environ.get("INIT_SLEEP", "0")))
while True:
    r, payload = call("GET", "/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    seen.append(rid)
    ev = json.loads(payload)
    op = ev.get("op")
    if op == "buffered":
        print("log: buffered for", rid, flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        respond(rid, json.dumps({"echo": ev, "pid": os.getpid()}), {"Content-Type": "application/json"})
    elif op == "env":
        keys = ["AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
                "AWS_REGION", "AWS_DEFAULT_REGION", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "EXTRA", "FROM_SHELL"]
        heads = {k.lower(): v for k, v in r.getheaders()}
        respond(rid, json.dumps({"env": {k: os.environ.get(k) for k in keys}, "headers": heads,
                                 "cwd": os.getcwd(), "pid": os.getpid()}))
    elif op == "stream":
        stream(rid, [b"chunk-1\n", b"chunk-2\n", b"chunk-3\n"], "text/plain; charset=utf-8", gate=ev["gate"],
               mode=ev.get("mode", "streaming"))
    elif op == "error":
        r2, data = call("POST", "/invocation/%s/error" % rid,
                        json.dumps({"errorType": "MyError", "errorMessage": "boom", "stackTrace": []}),
                        {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        reported["error_ack"] = [r2.status, json.loads(data)]
    elif op == "error_cut":
        # an error document that ends before its Content-Length
        s = socket.create_connection((HOST, int(PORT)))
        s.sendall(("POST %s/invocation/%s/error HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n"
                   "Lambda-Runtime-Function-Error-Type: Cut\r\n\r\n" % (BASE, rid, API)).encode() + b"0123456789")
        s.shutdown(socket.SHUT_WR)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    elif op == "ack":
        st, body = respond(rid, b"fine")
        reported["ack"] = [st, json.loads(body)]
    elif op == "late_all":
        # a late report for every earlier invocation of this process
        statuses = [respond(x, b"late")[0] for x in seen[:-1]]
        respond(rid, json.dumps({"statuses": statuses}))
    elif op == "trailers":
        body = base64.b64encode(json.dumps({"errorType": "StreamFail", "errorMessage": "mid-stream"}).encode())
        stream(rid, [b"partial"], "application/octet-stream",
               trailers=b"Lambda-Runtime-Function-Error-Type: Function.StreamFail\r\nLambda-Runtime-Function-Error-Body: " + body + b"\r\n",
               mode=None)
    elif op == "error_raw":
        # any error report: the type header (repeated), a body built from parts
        headers = {}
        if ev.get("type") is not None:
            headers["Lambda-Runtime-Function-Error-Type"] = ev["type"] * ev.get("times", 1)
        body = (ev.get("body", "") + ev.get("fill", "") * ev.get("fill_times", 0) + ev.get("tail", "")).encode()
        try:
            r2, data = call("POST", "/invocation/%s/error" % rid, body, headers)
            print("error report answered", r2.status, data[:200], flush=True)
        except OSError as e:
            print("error report cut:", e, flush=True)
    elif op == "trailers_doc":
        body = base64.b64encode(ev["doc"].encode())
        t = (ev.get("type", "Function.StreamFail") * ev.get("times", 1)).encode()
        stream(rid, [b"partial"], "application/octet-stream",
               trailers=b"Lambda-Runtime-Function-Error-Type: " + t + b"\r\nLambda-Runtime-Function-Error-Body: " + body + b"\r\n",
               mode=None)
    elif op == "long_content_type":
        resp = stream(rid, [b"never"], "text/" + "a" * ev["len"])
        print("long content type answered", resp.split(b"\r\n")[0], flush=True)
    elif op == "rust_error":
        err = base64.b64encode(b"stream broke")
        t = (ev.get("type", "Runtime.StreamError") * ev.get("times", 1)).encode()
        lines = [b"Lambda-Runtime-Function-Error-Type: " + t + b"\r\n",
                 b"Lambda-Runtime-Function-Error-Body: " + err + b"\r\n"]
        ct = "application/vnd.awslambda.http-integration-response"
        if ev.get("joined"):
            stream(rid, [b"data-1" + b"".join(lines)], ct)
        else:
            stream(rid, [b"data-1"] + lines, ct)
    elif op == "die_mid_stream":
        s = socket.create_connection((HOST, int(PORT)))
        s.sendall(("POST %s/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
                   "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % (BASE, rid, API)).encode() + b"5\r\nhello\r\n")
        while not os.path.exists(ev["gate"]):
            time.sleep(0.01)
        os._exit(5)
    elif op == "big_exit":
        # 1 MiB streamed, then exit at once without waiting for the answer
        s = socket.create_connection((HOST, int(PORT)))
        s.sendall(("POST %s/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
                   "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % (BASE, rid, API)).encode())
        data = bytes(i % 251 for i in range(1 << 20))
        for i in range(0, len(data), 65536):
            c = data[i:i + 65536]
            s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        os._exit(0)
    elif op == "hang":
        # a first chunk, then nothing
        s = socket.create_connection((HOST, int(PORT)))
        s.sendall(("POST %s/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
                   "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % (BASE, rid, API)).encode() + b"7\r\nstarted\r\n")
        time.sleep(3600)
    elif op == "flood":
        out = sys.stdout.buffer
        for i in range(ev["lines"]):
            out.write(b"line %d\n" % i)
        out.flush()
        respond(rid, json.dumps({"pid": os.getpid()}))
    elif op == "deadline":
        left = int(r.getheader("Lambda-Runtime-Deadline-Ms")) - int(time.time() * 1000)
        respond(rid, json.dumps({"left_ms": left}))
    elif op == "exit":
        print("about to exit", flush=True)
        sys.exit(3)
    elif op == "respond_after_exit":
        # the answer comes from a child of this process once this process has exited
        parent = os.getpid()
        if os.fork() == 0:
            while os.getppid() == parent:
                time.sleep(0.005)
            respond(rid, json.dumps({"from": "child"}))
            os._exit(0)
        os._exit(4)
    elif op == "buffered_size":
        try:
            st, body = respond(rid, b"x" * ev["n"])
            reported["buffered"] = [st, json.loads(body)]
        except OSError as e:
            reported["buffered"] = str(e)
    elif op == "pause":
        time.sleep(ev["s"])
        respond(rid, json.dumps({"pid": os.getpid()}))
    elif op == "then_stall":
        # answers, then never asks for its next invocation
        respond(rid, json.dumps({"pid": os.getpid()}))
        time.sleep(3600)
    elif op == "sleep":
        print("sleeping", flush=True)
        time.sleep(60)
    elif op == "states":
        # a wrong id, a bad response mode, then (next invocation) a late second report
        st, body = respond("not-a-request-id", b"x")
        reported["wrong"] = [st, json.loads(body)]
        try:
            st, body = respond("not-a-request-id", b"x" * (4 << 20))
            reported["wrong_big"] = [st, json.loads(body)]
        except OSError as e:
            reported["wrong_big"] = str(e)
        resp = stream(rid, [b"never"], mode="bogus")
        reported["mode"] = resp.split(b"\r\n")[0].decode()
        st, body = respond(rid, b"late")
        reported["second"] = [st, json.loads(body)]
    elif op == "report":
        respond(rid, json.dumps(dict(reported, pid=os.getpid())))
    elif op == "late_init_error":
        r2, body = call("POST", "/init/error", b"x" * 100000, {"Lambda-Runtime-Function-Error-Type": "Late"})
        respond(rid, json.dumps({"status": r2.status, "body": json.loads(body)}))
    elif op == "extension":
        r2, body = call("POST", "/2020-01-01/extension/register", b"", {"Lambda-Extension-Name": "x"})
        respond(rid, json.dumps({"status": r2.status, "id": r2.getheader("Lambda-Extension-Identifier")}))
    elif op == "barrier":
        open(os.path.join(ev["dir"], "arrived-%d" % os.getpid()), "w").close()
        while len([f for f in os.listdir(ev["dir"]) if f.startswith("arrived-")]) < ev["n"]:
            time.sleep(0.01)
        respond(rid, json.dumps({"pid": os.getpid()}))
    else:
        respond(rid, json.dumps({"pid": os.getpid()}))
"#;

/// A scratch directory holding the function script
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "invoke-emulator-rt-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("function.py"), FUNCTION).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The command line running the function script
    fn command(&self, args: &str) -> String {
        format!("python3 -u {} {args}", self.path("function.py").display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the tests can run; prints SKIPPED (and fails under `CI=true`) without python3
fn have_python(test: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is required for {test} under CI"
        );
        eprintln!("SKIPPED {test}: python3 is not available");
    }
    ok
}

async fn start(builder: Builder) -> Emulator {
    builder
        .no_auth()
        .quiet()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The outcome of one streamed invocation as a client sees it
#[derive(Debug)]
struct Outcome {
    content_type: String,
    chunks: Vec<Bytes>,
    complete: InvokeComplete,
}

impl Outcome {
    fn body(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body()).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// `(errorType, errorMessage)` of a failed invocation
    fn error(&self) -> (String, String) {
        assert_eq!(
            self.complete.error_code.as_deref(),
            Some("Unhandled"),
            "{self:?}"
        );
        let d: Value =
            serde_json::from_str(self.complete.error_details.as_deref().unwrap()).unwrap();
        (
            d["errorType"].as_str().unwrap().to_owned(),
            d["errorMessage"].as_str().unwrap().to_owned(),
        )
    }

    fn log(&self) -> String {
        String::from_utf8(self.complete.decoded_log().unwrap().unwrap()).unwrap()
    }
}

/// Reads a whole event stream; `on_chunk` sees each `PayloadChunk` as it arrives
async fn read_stream(resp: http::Response<Incoming>, mut on_chunk: impl FnMut(&Bytes)) -> Outcome {
    let (parts, mut body) = resp.into_parts();
    let content_type = parts.headers["content-type"].to_str().unwrap().to_owned();
    let ResponseHead::Stream(head) = parse_response_head(parts.status, &parts.headers).unwrap()
    else {
        panic!("not a stream: {parts:?}");
    };
    let mut s = head.into_stream();
    let mut chunks = vec![];
    loop {
        match s.next_event() {
            Ok(Some(Event::PayloadChunk(c))) => {
                on_chunk(&c);
                chunks.push(c);
            }
            Ok(Some(Event::InvokeComplete(complete))) => {
                return Outcome {
                    content_type,
                    chunks,
                    complete,
                };
            }
            Ok(Some(e)) => panic!("unexpected event {e:?}"),
            Ok(None) => {
                let Some(Ok(frame)) = body.frame().await else {
                    let e: Option<StreamError> = s.finish().err();
                    panic!("the stream ended without InvokeComplete: {e:?}");
                };
                if let Ok(d) = frame.into_data() {
                    s.feed(d);
                }
            }
            Err(e) => panic!("stream error {e:?}"),
        }
    }
}

async fn invoke(emu: &Emulator, function: &str, event: &Value) -> Outcome {
    let p = InvokeParams::new(function, event.to_string()).log_type(LogType::Tail);
    let resp = send(emu, request(emu, &p)).await;
    guarded("the invocation finished", read_stream(resp, |_| {})).await
}

/// A buffered `Invoke` of `function`: the response head and the whole body
async fn invoke_buffered(
    emu: &Emulator,
    function: &str,
    event: &Value,
) -> (http::response::Parts, Bytes) {
    let mut req = request(emu, &InvokeParams::new(function, event.to_string()));
    *req.uri_mut() = format!("{}/2015-03-31/functions/{function}/invocations", emu.url())
        .parse()
        .unwrap();
    let (parts, body) = send(emu, req).await.into_parts();
    (parts, body_of(body).await)
}

fn config() -> FunctionConfig {
    FunctionConfig {
        timeout: Duration::from_secs(60),
        ..FunctionConfig::default()
    }
}

#[tokio::test]
async fn buffered_response_env_and_next_headers() {
    if !have_python("buffered_response_env_and_next_headers") {
        return;
    }
    let dir = Scratch::new();
    let function = ProcessFunction::new("py", dir.command(""))
        .env("EXTRA", "extra-value")
        .memory_size(256)
        .working_dir(&dir.0);
    let emu = start(Emulator::builder().process_function_with(function, config())).await;

    let o = invoke(&emu, "py", &json!({"op": "buffered", "n": 1})).await;
    assert!(!o.complete.is_error(), "{o:?}");
    assert_eq!(o.content_type, "application/json");
    let v = o.json();
    assert_eq!(v["echo"], json!({"op": "buffered", "n": 1}));
    // LogType Tail carries what the script printed, stdout and stderr
    let log = o.log();
    assert!(log.contains("log: buffered for "), "{log:?}");
    assert!(log.contains("to stderr\n"), "{log:?}");
    let pid = v["pid"].clone();

    // the same process serves the next invocation
    let p = InvokeParams::new("py", json!({"op": "env"}).to_string())
        .client_context(r#"{"custom": {"k": "v"}}"#)
        .tenant_id("tenant-7");
    let o = read_stream(send(&emu, request(&emu, &p)).await, |_| {}).await;
    let v = o.json();
    assert_eq!(v["pid"], pid, "the process is reused");
    let env = &v["env"];
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "py");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/py");
    assert!(env["AWS_LAMBDA_LOG_STREAM_NAME"].is_string());
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    // the RIE's convention: the command's last argument
    assert_eq!(
        env["_HANDLER"].as_str(),
        dir.path("function.py").to_str(),
        "{env}"
    );
    assert!(env["AWS_ACCESS_KEY_ID"].is_string() && env["AWS_SECRET_ACCESS_KEY"].is_string());
    assert_eq!(env["EXTRA"], "extra-value");
    let root = Path::new(env["LAMBDA_TASK_ROOT"].as_str().unwrap());
    assert_eq!(root.canonicalize().unwrap(), dir.0.canonicalize().unwrap());
    let h = &v["headers"];
    assert!(h["lambda-runtime-aws-request-id"].is_string());
    let deadline: u128 = h["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(deadline > 1_600_000_000_000);
    assert_eq!(
        h["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:py"
    );
    assert!(
        h["lambda-runtime-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    assert_eq!(
        h["lambda-runtime-client-context"],
        r#"{"custom":{"k":"v"}}"#
    );
    assert_eq!(h["lambda-runtime-aws-tenant-id"], "tenant-7");
    assert_eq!(h["content-type"], "application/json");
    // the caller's trace header is passed on, as the RIE does
    let traced = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let mut req = request(
        &emu,
        &InvokeParams::new("py", json!({"op": "env"}).to_string()),
    );
    req.headers_mut()
        .insert("x-amzn-trace-id", http::HeaderValue::from_static(traced));
    let o = read_stream(send(&emu, req).await, |_| {}).await;
    assert_eq!(o.json()["headers"]["lambda-runtime-trace-id"], traced);

    // the extensions API accepts a registration
    let o = invoke(&emu, "py", &json!({"op": "extension"})).await;
    let v = o.json();
    assert_eq!(v["status"], 200);
    assert!(v["id"].is_string());

    // the buffered Invoke route serves process functions too
    let mut req = request(
        &emu,
        &InvokeParams::new("py", json!({"op": "buffered"}).to_string()),
    );
    *req.uri_mut() = format!("{}/2015-03-31/functions/py/invocations", emu.url())
        .parse()
        .unwrap();
    let resp = send(&emu, req).await;
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().contains_key("x-amz-function-error"));
    let body = body_of(resp.into_body()).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["pid"], pid);
    emu.shutdown().await;
}

#[tokio::test]
async fn streaming_chunks_arrive_as_they_are_sent() {
    if !have_python("streaming_chunks_arrive_as_they_are_sent") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    // with the mode header, and chunked without it (as aws-lambda-go streams)
    for (k, mode) in [json!("streaming"), Value::Null].into_iter().enumerate() {
        let gate = dir.path(&format!("gate-{k}"));
        let event = json!({"op": "stream", "gate": gate.to_str().unwrap(), "mode": mode});
        let p = InvokeParams::new("py", event.to_string());
        let resp = send(&emu, request(&emu, &p)).await;
        let mut seen = 0;
        // The script sends chunk 2 only once the gate file exists, which the client creates
        // after seeing chunk 1: chunk 1 must have been streamed on its own
        let o = tokio::time::timeout(
            Duration::from_secs(60),
            read_stream(resp, |c| {
                seen += 1;
                if seen == 1 {
                    assert_eq!(&c[..], b"chunk-1\n");
                    std::fs::write(&gate, b"").unwrap();
                }
            }),
        )
        .await
        .unwrap();
        assert!(!o.complete.is_error(), "{mode}: {o:?}");
        assert_eq!(o.content_type, "text/plain; charset=utf-8");
        assert_eq!(o.body(), b"chunk-1\nchunk-2\nchunk-3\n");
        assert_eq!(o.chunks.len(), 3);
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn function_errors() {
    if !have_python("function_errors") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;

    // /error
    let o = invoke(&emu, "py", &json!({"op": "error"})).await;
    assert!(o.chunks.is_empty());
    assert_eq!(o.error(), ("MyError".into(), "boom".into()));
    assert!(o.log().ends_with(" ms\t\n"), "no Status: {o:?}");
    // a document cut short still fails the invocation, with its type
    let (t, m) = invoke(&emu, "py", &json!({"op": "error_cut"}))
        .await
        .error();
    assert_eq!(t, "Cut");
    assert!(m.starts_with("The error document was cut short: "), "{m}");
    // both kinds of report are acknowledged as the RIE does
    invoke(&emu, "py", &json!({"op": "ack"})).await;
    let v = invoke(&emu, "py", &json!({"op": "report"})).await.json();
    for key in ["error_ack", "ack"] {
        assert_eq!(v[key], json!([202, {"status": "OK"}]), "{key}: {v}");
    }
    // an error the runtime reports, even of a `Runtime.` type, is not the runtime failing
    let doc = r#"{"errorType":"Runtime.MarshalError","errorMessage":"cannot marshal"}"#;
    let o = invoke(&emu, "py", &json!({"op": "error_raw", "body": doc})).await;
    assert_eq!(o.error().0, "Runtime.MarshalError");
    assert!(o.log().ends_with(" ms\t\n"), "no Status: {o:?}");

    // trailers after a streamed body (chunked, no mode header: as aws-lambda-go sends it)
    let o = invoke(&emu, "py", &json!({"op": "trailers"})).await;
    assert_eq!(o.body(), b"partial");
    assert_eq!(o.error(), ("StreamFail".into(), "mid-stream".into()));

    // lambda_runtime's error lines as the final body bytes, in their own chunks or not
    for joined in [false, true] {
        let o = invoke(&emu, "py", &json!({"op": "rust_error", "joined": joined})).await;
        assert_eq!(
            o.content_type,
            "application/vnd.awslambda.http-integration-response"
        );
        assert_eq!(o.body(), b"data-1", "joined: {joined}");
        assert_eq!(
            o.error(),
            ("Runtime.StreamError".into(), "stream broke".into())
        );
    }

    // a wrong id, a bad mode header (the invocation fails), then a late second report
    let o = invoke(&emu, "py", &json!({"op": "states"})).await;
    let (t, _) = o.error();
    assert_eq!(t, "Runtime.InvalidResponseModeHeader");
    let o = invoke(&emu, "py", &json!({"op": "report"})).await;
    let v = o.json();
    assert_eq!(v["wrong"][0], 400);
    assert_eq!(v["wrong"][1]["errorType"], "InvalidRequestID");
    assert!(v["wrong"][1]["errorMessage"].is_string());
    // a large body sent with a refused report is read, so the runtime gets the answer
    assert_eq!(v["wrong_big"][0], 400, "{v}");
    assert!(
        v["mode"].as_str().unwrap().starts_with("HTTP/1.1 400"),
        "{v}"
    );
    assert_eq!(v["second"][0], 403);
    assert_eq!(v["second"][1]["errorType"], "InvalidStateTransition");
    // an /init/error once the process polled /next is refused (its document unread), and
    // the invocation goes on
    let o = invoke(&emu, "py", &json!({"op": "late_init_error"})).await;
    let v = o.json();
    assert_eq!(v["status"], 403, "{v}");
    assert_eq!(v["body"]["errorType"], "InvalidStateTransition", "{v}");

    // after all that the process still serves
    let o = invoke(&emu, "py", &json!({"op": "buffered"})).await;
    assert!(!o.complete.is_error(), "{o:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn init_error_fails_the_invocation() {
    if !have_python("init_error_fails_the_invocation") {
        return;
    }
    let dir = Scratch::new();
    let emu =
        start(Emulator::builder().process_function("py", dir.command("init_error"), config()))
            .await;
    for _ in 0..2 {
        let o = invoke(&emu, "py", &json!({})).await;
        assert_eq!(
            o.error(),
            (
                "Runtime.ImportModuleError".into(),
                "no module named nope".into()
            )
        );
        assert!(o.log().contains("failing init"), "{o:?}");
        // the init error document as the runtime sent it (Python's json.dumps spacing)
        assert_eq!(
            o.complete.error_details.as_deref(),
            Some(
                r#"{"errorType": "Runtime.ImportModuleError", "errorMessage": "no module named nope"}"#
            )
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn exit_and_timeout_replace_the_process() {
    if !have_python("exit_and_timeout_replace_the_process") {
        return;
    }
    let dir = Scratch::new();
    let cfg = FunctionConfig {
        timeout: Duration::from_secs(3),
        ..FunctionConfig::default()
    };
    let emu = start(Emulator::builder().process_function("py", dir.command(""), cfg)).await;
    let cold = invoke(&emu, "py", &json!({})).await;
    let pid = cold.json()["pid"].clone();
    // the invocation that started the process reports its initialization
    assert!(init_duration(&cold.log()).is_some(), "{cold:?}");

    let o = invoke(&emu, "py", &json!({"op": "exit"})).await;
    assert_eq!(init_duration(&o.log()), None, "a warm start: {o:?}");
    let (t, m) = o.error();
    assert_eq!(t, "Runtime.ExitError");
    assert!(
        m.starts_with("RequestId: ")
            && m.ends_with("Error: Runtime exited with error: exit status 3"),
        "{m}"
    );
    assert!(o.log().contains("about to exit"), "{o:?}");
    assert!(
        o.log()
            .ends_with("\tStatus: error\tError Type: Runtime.ExitError\t\n"),
        "{o:?}"
    );
    let replaced = invoke(&emu, "py", &json!({})).await;
    let pid2 = replaced.json()["pid"].clone();
    assert_ne!(pid, pid2, "a crashed process is replaced");
    assert!(init_duration(&replaced.log()).is_some(), "{replaced:?}");

    let o = invoke(&emu, "py", &json!({"op": "sleep"})).await;
    let (t, m) = o.error();
    assert_eq!(t, "Sandbox.Timedout");
    assert!(m.contains("Task timed out after 3.00 seconds"), "{m}");
    assert!(o.log().ends_with(" ms\tStatus: timeout\t\n"), "{o:?}");
    assert!(
        o.log()
            .contains(" Task timed out after 3.00 seconds\nEND RequestId: "),
        "{o:?}"
    );
    let pid3 = invoke(&emu, "py", &json!({})).await.json()["pid"].clone();
    assert_ne!(pid2, pid3, "a timed-out process is replaced");
    emu.shutdown().await;
}

/// The function timeout runs from when `/next` hands the invocation out: a process whose
/// start takes longer than the timeout still runs its invocation (the init timeout bounds the
/// start), and `Lambda-Runtime-Deadline-Ms` counts from then
#[tokio::test]
async fn a_slow_start_does_not_eat_the_function_timeout() {
    if !have_python("a_slow_start_does_not_eat_the_function_timeout") {
        return;
    }
    let dir = Scratch::new();
    let function = ProcessFunction::new("py", dir.command("")).env("INIT_SLEEP", "1.5");
    let cfg = FunctionConfig {
        timeout: Duration::from_secs(1),
        ..FunctionConfig::default()
    };
    let emu = start(Emulator::builder().process_function_with(function, cfg)).await;
    let o = invoke(&emu, "py", &json!({"op": "deadline"})).await;
    assert!(!o.complete.is_error(), "{o:?}");
    let left = o.json()["left_ms"].as_i64().unwrap();
    assert!(left > 0 && left <= 1000, "{left} ms left at /next");
    let init = init_duration(&o.log()).expect("a cold start");
    assert!(init >= 1500.0, "{init} ms");
    emu.shutdown().await;
}

/// A process that answered and then never asks `/next` for the next invocation: that
/// invocation times out (its time runs from the offer to a running process), and the
/// process is replaced
#[tokio::test]
async fn a_reused_process_that_never_asks_for_its_invocation_times_out() {
    if !have_python("a_reused_process_that_never_asks_for_its_invocation_times_out") {
        return;
    }
    let dir = Scratch::new();
    let cfg = FunctionConfig {
        timeout: Duration::from_secs(1),
        ..FunctionConfig::default()
    };
    let emu = start(Emulator::builder().process_function("py", dir.command(""), cfg)).await;
    let first = invoke(&emu, "py", &json!({"op": "then_stall"})).await;
    let pid = first.json()["pid"].clone();
    let o = guarded(
        "the function timeout ended the invocation",
        invoke(&emu, "py", &json!({})),
    )
    .await;
    let (t, m) = o.error();
    assert_eq!(t, "Sandbox.Timedout");
    assert!(m.contains("Task timed out after 1.00 seconds"), "{m}");
    let again = invoke(&emu, "py", &json!({})).await;
    assert_ne!(pid, again.json()["pid"], "the stalled process is replaced");
    emu.shutdown().await;
}

/// The `Init Duration` of the `REPORT` line in `log`, if it has one; checks that `Billed
/// Duration` covers it and `Duration` both
fn init_duration(log: &str) -> Option<f64> {
    let report = log
        .lines()
        .find_map(|l| l.strip_prefix("REPORT RequestId: "))
        .unwrap_or_else(|| panic!("no REPORT line: {log:?}"));
    let field = |name: &str| {
        report
            .split('\t')
            .find_map(|f| f.strip_prefix(name)?.strip_suffix(" ms"))
            .map(|v| v.parse::<f64>().unwrap())
    };
    let init = field("Init Duration: ");
    let duration = field("Duration: ").unwrap();
    let billed = field("Billed Duration: ").unwrap();
    // the printed figures are rounded to 0.01 ms
    assert!(
        billed + 0.02 >= duration + init.unwrap_or_default(),
        "{report:?}"
    );
    init
}

#[tokio::test]
async fn shell_command_lines() {
    if !have_python("shell_command_lines") {
        return;
    }
    let dir = Scratch::new();
    let line = format!("FROM_SHELL=yes {}", dir.command(""));
    let f = ProcessFunction::new("sh", &line);
    assert_eq!(f.argv(), ["/bin/sh", "-c", line.as_str()]);
    assert_eq!(
        ProcessFunction::new("p", "python3 -u x.py --a=b").argv(),
        ["python3", "-u", "x.py", "--a=b"]
    );
    // an existing file is run as it is, spaces and all
    let spaced = dir.path("my function");
    std::fs::write(&spaced, "").unwrap();
    let spaced = spaced.to_str().unwrap();
    assert_eq!(ProcessFunction::new("p", spaced).argv(), [spaced]);
    let emu = start(Emulator::builder().process_function_with(f, config())).await;
    let o = invoke(&emu, "sh", &json!({"op": "env"})).await;
    assert_eq!(o.json()["env"]["FROM_SHELL"], "yes");
    emu.shutdown().await;
}

#[tokio::test]
async fn two_concurrent_invocations_two_processes() {
    if !have_python("two_concurrent_invocations_two_processes") {
        return;
    }
    let dir = Scratch::new();
    let barrier = dir.path("barrier");
    std::fs::create_dir_all(&barrier).unwrap();
    let cfg = FunctionConfig {
        concurrency: Some(2),
        ..config()
    };
    let emu = start(Emulator::builder().process_function("py", dir.command(""), cfg)).await;
    // Each invocation waits until both are inside a process: this only completes if two
    // processes serve them at the same time
    let event = json!({"op": "barrier", "dir": barrier.to_str().unwrap(), "n": 2});
    let (a, b) = tokio::join!(invoke(&emu, "py", &event), invoke(&emu, "py", &event));
    assert!(
        !a.complete.is_error() && !b.complete.is_error(),
        "{a:?} {b:?}"
    );
    assert_ne!(a.json()["pid"], b.json()["pid"]);
    // a third at the same time is over the limit: the server answers 429 for it
    emu.shutdown().await;
}

#[tokio::test]
async fn crash_mid_stream_and_client_disconnect() {
    if !have_python("crash_mid_stream_and_client_disconnect") {
        return;
    }
    let dir = Scratch::new();
    // One process, no server-side limit: a second invocation waits for the first to end
    let function = ProcessFunction::new("py", dir.command("")).max_processes(1);
    let emu = start(Emulator::builder().process_function_with(function, config())).await;

    // The process dies after streaming "hello"
    let gate = dir.path("die");
    let event = json!({"op": "die_mid_stream", "gate": gate.to_str().unwrap()});
    let p = InvokeParams::new("py", event.to_string());
    let resp = send(&emu, request(&emu, &p)).await;
    let o = read_stream(resp, |_| std::fs::write(&gate, b"").unwrap()).await;
    assert_eq!(o.body(), b"hello");
    let (t, m) = o.error();
    // The exit is normally seen within a second of the broken body; under heavy load the
    // broken body may be all there is to report
    assert!(
        t == "Runtime.ExitError" && m.ends_with("exit status 5")
            || t == "Runtime.TruncatedResponse",
        "{t}: {m}"
    );

    // A client that goes away after the first chunk abandons the invocation: its process is
    // replaced
    let pid = invoke(&emu, "py", &json!({})).await.json()["pid"].clone();
    let gate = dir.path("gate");
    let event = json!({"op": "stream", "gate": gate.to_str().unwrap()});
    let p = InvokeParams::new("py", event.to_string());
    let resp = send(&emu, request(&emu, &p)).await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    // The gate never opens: only the abandonment frees the one process slot
    let again = invoke(&emu, "py", &json!({})).await;
    assert!(!again.complete.is_error(), "{again:?}");
    assert_ne!(again.json()["pid"], pid, "the process was replaced");
    emu.shutdown().await;
}

#[tokio::test]
async fn streamed_response_then_exit_arrives_whole() {
    if !have_python("streamed_response_then_exit_arrives_whole") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    let want: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8).collect();
    // The runtime writes 1 MiB and exits without waiting for the answer: every byte must
    // arrive, and a complete response is a success whatever the exit
    for round in 0..20 {
        let o = invoke(&emu, "py", &json!({"op": "big_exit"})).await;
        let body = o.body();
        assert_eq!(body.len(), want.len(), "round {round}: {:?}", o.complete);
        assert!(body == want, "round {round}: the bytes differ");
        assert!(!o.complete.is_error(), "round {round}: {:?}", o.complete);
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_response_that_arrives_just_after_the_exit_is_a_success() {
    if !have_python("a_response_that_arrives_just_after_the_exit_is_a_success") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    // The response is sent only after the process has exited (by a child it left behind):
    // within the exit grace it is the invocation's outcome, not `Runtime.ExitError`
    for round in 0..3 {
        let o = invoke(&emu, "py", &json!({"op": "respond_after_exit"})).await;
        assert!(!o.complete.is_error(), "round {round}: {o:?}");
        assert_eq!(o.json(), json!({"from": "child"}), "round {round}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_buffered_response_may_be_6_mib_and_no_more() {
    const LIMIT: usize = 6 * 1024 * 1024;
    if !have_python("a_buffered_response_may_be_6_mib_and_no_more") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    let o = invoke(&emu, "py", &json!({"op": "buffered_size", "n": LIMIT})).await;
    assert!(!o.complete.is_error(), "{:?}", o.complete);
    assert_eq!(o.body(), vec![b'x'; LIMIT]);
    let pid = invoke(&emu, "py", &json!({})).await.json()["pid"].clone();
    let o = invoke(&emu, "py", &json!({"op": "buffered_size", "n": LIMIT + 1})).await;
    let (t, m) = o.error();
    assert_eq!(t, "Function.ResponseSizeTooLarge");
    assert!(m.contains("(6291456 bytes)"), "{m}");
    // the runtime is answered 413, and the process that sent it serves on
    let v = invoke(&emu, "py", &json!({"op": "report"})).await.json();
    assert_eq!(v["buffered"][0], 413, "{v}");
    assert_eq!(
        v["buffered"][1]["errorType"], "RequestEntityTooLarge",
        "{v}"
    );
    assert_eq!(v["pid"], pid);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_first_invocation_may_outlast_the_init_timeout() {
    if !have_python("a_first_invocation_may_outlast_the_init_timeout") {
        return;
    }
    let dir = Scratch::new();
    // the init timeout bounds the start, up to the first `/next`, not the invocation
    let function = ProcessFunction::new("py", dir.command("")).init_timeout(Duration::from_secs(2));
    let emu = start(Emulator::builder().process_function_with(function, config())).await;
    let o = invoke(&emu, "py", &json!({"op": "pause", "s": 3})).await;
    assert!(!o.complete.is_error(), "{:?}", o.complete);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_late_report_is_told_from_a_wrong_id_for_64_invocations() {
    if !have_python("a_late_report_is_told_from_a_wrong_id_for_64_invocations") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    let first = invoke(&emu, "py", &json!({})).await.json()["pid"].clone();
    for _ in 0..64 {
        invoke(&emu, "py", &json!({})).await;
    }
    // the 66th invocation reports late for the 65 before it, all served by one process:
    // the oldest is forgotten (a wrong id, 400), the last 64 are remembered (403)
    let v = invoke(&emu, "py", &json!({"op": "late_all"})).await.json();
    let statuses = v["statuses"].as_array().unwrap();
    let mut want = vec![json!(400)];
    want.extend(std::iter::repeat_n(json!(403), 64));
    assert_eq!(statuses, &want, "{v}");
    assert_eq!(invoke(&emu, "py", &json!({})).await.json()["pid"], first);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_replaced_process_s_runtime_api_is_closed() {
    if !have_python("a_replaced_process_s_runtime_api_is_closed") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    let api = |o: &Outcome| {
        o.json()["env"]["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let old = api(&invoke(&emu, "py", &json!({"op": "env"})).await);
    let o = invoke(&emu, "py", &json!({"op": "exit"})).await;
    assert_eq!(o.error().0, "Runtime.ExitError");
    // the next invocation runs on a new process with a Runtime API of its own; the old one
    // no longer accepts connections
    let new = api(&invoke(&emu, "py", &json!({"op": "env"})).await);
    assert_ne!(old, new);
    let refused = tokio::net::TcpStream::connect(&old).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "{old}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_region_is_the_invoked_arn_s_unless_set() {
    if !have_python("the_region_is_the_invoked_arn_s_unless_set") {
        return;
    }
    let dir = Scratch::new();
    let set = ProcessFunction::new("set", dir.command("")).region("ap-south-1");
    let emu = start(
        Emulator::builder()
            .region("eu-west-2")
            .process_function("py", dir.command(""), config())
            .process_function_with(set, config()),
    )
    .await;
    for (name, region) in [("py", "eu-west-2"), ("set", "ap-south-1")] {
        let env = invoke(&emu, name, &json!({"op": "env"})).await.json()["env"].clone();
        assert_eq!(env["AWS_REGION"], region, "{name}: {env}");
        assert_eq!(env["AWS_DEFAULT_REGION"], region, "{name}: {env}");
    }
    emu.shutdown().await;
}

/// A FIFO at `path`, and a thread that reads it to its end: the end comes once every
/// process holding it for writing is gone
fn fifo_watch(path: &Path) -> std::sync::mpsc::Receiver<usize> {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        use std::io::Read as _;
        // Blocks until the function opens it for writing
        let mut f = std::fs::File::open(&path).unwrap();
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        let _ = tx.send(buf.len());
    });
    rx
}

#[tokio::test]
async fn a_process_that_never_polls_times_out_and_its_group_is_killed() {
    let dir = Scratch::new();
    let fifo = dir.path("alive");
    let ended = fifo_watch(&fifo);
    // The shell and both sleeps hold the FIFO open: it ends only when all three are gone
    let line = format!("exec 3>{}; sleep 1000 & sleep 1000", fifo.display());
    let function = ProcessFunction::new("np", line).init_timeout(Duration::from_millis(500));
    let emu = start(Emulator::builder().process_function_with(function, config())).await;
    let p = InvokeParams::new("np", "{}");
    let resp = send(&emu, request(&emu, &p)).await;
    let o = guarded(
        "the init timeout ended the invocation",
        read_stream(resp, |_| {}),
    )
    .await;
    let (t, m) = o.error();
    assert_eq!(t, "Sandbox.Timedout");
    assert!(m.contains("init timed out after 0.50 seconds"), "{m}");
    let ended = tokio::task::spawn_blocking(move || ended.recv_timeout(Duration::from_secs(30)));
    assert!(
        ended.await.unwrap().is_ok(),
        "processes of the replaced function's group are still alive"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn abandoned_invocations_free_their_processes() {
    if !have_python("abandoned_invocations_free_their_processes") {
        return;
    }
    let dir = Scratch::new();
    // Two processes, no server-side limit: a third invocation waits for one
    let function = ProcessFunction::new("py", dir.command("")).max_processes(2);
    let cfg = FunctionConfig {
        timeout: Duration::from_secs(600),
        ..FunctionConfig::default()
    };
    let emu = start(Emulator::builder().process_function_with(function, cfg)).await;
    // Two clients see their process start, then go away; it would hang for an hour
    for _ in 0..2 {
        let p = InvokeParams::new("py", json!({"op": "hang"}).to_string());
        let resp = send(&emu, request(&emu, &p)).await;
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        drop(body);
    }
    // A third sends its request and goes away while it waits for a process
    {
        use tokio::io::AsyncWriteExt as _;
        let req = request(
            &emu,
            &InvokeParams::new("py", json!({"op": "hang"}).to_string()),
        );
        let mut raw = format!("POST {} HTTP/1.1\r\n", req.uri().path());
        for (n, v) in req.headers() {
            raw.push_str(n.as_str());
            raw.push_str(": ");
            raw.push_str(v.to_str().unwrap());
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        let mut s = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        s.write_all(req.body()).await.unwrap();
    }
    // The slots are free again: the next invocation is served
    let p = InvokeParams::new("py", json!({}).to_string());
    let o = guarded("an invocation after abandoned ones is served", async {
        read_stream(send(&emu, request(&emu, &p)).await, |_| {}).await
    })
    .await;
    assert!(!o.complete.is_error(), "{o:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_output_keeps_the_last_4_kib() {
    if !have_python("a_flood_of_output_keeps_the_last_4_kib") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    let o = invoke(&emu, "py", &json!({"op": "flood", "lines": 20000})).await;
    assert!(!o.complete.is_error(), "{o:?}");
    let log = o.log();
    assert_eq!(log.len(), 4096, "{log:?}");
    // the function's last lines, then the service's END and REPORT
    assert!(
        log.contains("line 19998\nline 19999\nEND RequestId: "),
        "{log:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn runtime_supplied_headers_are_bounded() {
    if !have_python("runtime_supplied_headers_are_bounded") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    // A 100 KB Lambda-Runtime-Function-Error-Type on /error, with a text body (so that the
    // header names the type)
    let event = json!({"op": "error_raw", "type": "T", "times": 100_000, "body": "plain failure"});
    let o = invoke(&emu, "py", &event).await;
    let (t, m) = o.error();
    assert!(t.len() <= 256 && t.starts_with("TTTT"), "{} bytes", t.len());
    assert_eq!(m, "plain failure");
    assert!(o.complete.error_details.as_ref().unwrap().len() < 1024);
    let (parts, body) = invoke_buffered(&emu, "py", &event).await;
    assert_eq!(parts.headers["x-amz-function-error"], "Unhandled");
    assert!(body.len() < 1024, "{} bytes", body.len());
    // the same in lambda_runtime's in-body error lines
    let event = json!({"op": "rust_error", "type": "R", "times": 100_000});
    let (t, m) = invoke(&emu, "py", &event).await.error();
    assert!(t.len() <= 256 && t.starts_with("RRRR"), "{} bytes", t.len());
    assert_eq!(m, "stream broke");
    // and in real trailers (hyper takes at most 16 KiB of them)
    let doc = "not json";
    let event = json!({"op": "trailers_doc", "doc": doc, "type": "G", "times": 10_000});
    let (t, m) = invoke(&emu, "py", &event).await.error();
    assert!(t.len() <= 256 && t.starts_with("GGGG"), "{} bytes", t.len());
    assert_eq!(m, doc);
    // a type that is not ASCII (a class name's non-ASCII bytes) still fails the invocation
    let event = json!({"op": "trailers_doc", "doc": doc, "type": "ÜberError"});
    let (t, m) = invoke(&emu, "py", &event).await.error();
    assert!(t.ends_with("berError"), "{t}");
    assert_eq!(m, doc);
    // A Content-Type of 1 KiB is passed on; a 100 KB one is refused, not passed on
    let o = invoke(
        &emu,
        "py",
        &json!({"op": "long_content_type", "len": 1024 - "text/".len()}),
    )
    .await;
    assert_eq!(o.content_type.len(), 1024);
    let o = invoke(
        &emu,
        "py",
        &json!({"op": "long_content_type", "len": 100_000}),
    )
    .await;
    assert!(
        o.content_type.len() < 1024,
        "{} bytes",
        o.content_type.len()
    );
    let (t, m) = o.error();
    assert_eq!(t, "Runtime.InvalidResponseContentType", "{m}");
    // (What the runtime was answered is not asserted from its log: it prints that line after
    // the refusal, which has already ended the invocation, so the line may miss its tail.)
    // the process still serves
    let o = invoke(&emu, "py", &json!({"op": "buffered"})).await;
    assert!(!o.complete.is_error(), "{o:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn error_documents_are_kept_whole() {
    if !have_python("error_documents_are_kept_whole") {
        return;
    }
    let dir = Scratch::new();
    let emu = start(Emulator::builder().process_function("py", dir.command(""), config())).await;
    // As a Python runtime sends it: stackTrace and fields of its own, pretty-printed
    let doc = "{\n  \"errorType\": \"ValueError\",\n  \"errorMessage\": \"bad value\",\n  \
               \"stackTrace\": [\"  File \\\"/var/task/app.py\\\", line 3, in handler\\n\"],\n  \
               \"requestId\": \"r-1\",\n  \"cause\": {\"errorType\": \"KeyError\", \"trace\": [1, 2.5, null]}\n}";
    serde_json::from_str::<Value>(doc).unwrap();
    let event = json!({"op": "error_raw", "type": "Unhandled", "body": doc});
    let o = invoke(&emu, "py", &event).await;
    assert_eq!(o.complete.error_code.as_deref(), Some("Unhandled"));
    assert_eq!(o.complete.error_details.as_deref(), Some(doc), "as sent");
    let (parts, body) = invoke_buffered(&emu, "py", &event).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["x-amz-function-error"], "Unhandled");
    assert_eq!(std::str::from_utf8(&body).unwrap(), doc, "as sent");
    // As Node and Go send it mid-stream: base64 in the error trailers
    let node = r#"{"errorType":"TypeError","errorMessage":"x is not a function","trace":["TypeError: x is not a function","    at Runtime.handler (/var/task/index.mjs:3:9)"]}"#;
    let o = invoke(&emu, "py", &json!({"op": "trailers_doc", "doc": node})).await;
    assert_eq!(o.body(), b"partial");
    assert_eq!(o.complete.error_details.as_deref(), Some(node));
    // Not JSON: wrapped as {errorType (the header's), errorMessage (the text)}, valid JSON
    let bad = r#"{"errorType": "Oops", "errorMessage": "cut"#;
    let event = json!({"op": "error_raw", "type": "Function.Bad", "body": bad});
    for details in [
        invoke(&emu, "py", &event)
            .await
            .complete
            .error_details
            .unwrap(),
        String::from_utf8(invoke_buffered(&emu, "py", &event).await.1.to_vec()).unwrap(),
    ] {
        let v: Value = serde_json::from_str(&details).unwrap();
        assert_eq!(v, json!({"errorType": "Function.Bad", "errorMessage": bad}));
    }
    let event = json!({"op": "error_raw", "body": ""});
    let (t, m) = invoke(&emu, "py", &event).await.error();
    assert_eq!((t.as_str(), m.as_str()), ("Runtime.Unknown", ""));
    // Larger than the 1 MiB bound: a short valid document naming the problem
    let event = json!({
        "op": "error_raw", "type": "Big",
        "body": r#"{"errorType":"Big","errorMessage":""#, "fill": "x", "fill_times": 2 << 20,
        "tail": r#""}"#,
    });
    let o = invoke(&emu, "py", &event).await;
    let details = o.complete.error_details.clone().unwrap();
    assert!(details.len() < 1024, "{} bytes", details.len());
    let (t, m) = o.error();
    assert_eq!(t, "Big");
    assert!(m.contains("1048576 bytes"), "{m}");
    let (_, body) = invoke_buffered(&emu, "py", &event).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["errorType"],
        "Big"
    );
    // the process still serves
    let o = invoke(&emu, "py", &json!({"op": "buffered"})).await;
    assert!(!o.complete.is_error(), "{o:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn handler_and_task_root_follow_the_runtime_interface_emulator() {
    if !have_python("handler_and_task_root_follow_the_runtime_interface_emulator") {
        return;
    }
    let dir = Scratch::new();
    // `function.py` is found only if the process runs in the task root
    let rie_style =
        ProcessFunction::new("py", "python3 -u function.py index.handler").working_dir(&dir.0);
    let set = ProcessFunction::new("set", "python3 -u function.py index.handler")
        .working_dir(&dir.0)
        .handler("app.main");
    let shell =
        ProcessFunction::new("sh", "FROM_SHELL=yes python3 -u function.py").working_dir(&dir.0);
    let emu = start(
        Emulator::builder()
            .process_function_with(rie_style, config())
            .process_function_with(set, config())
            .process_function_with(shell, config()),
    )
    .await;
    let canonical = dir.0.canonicalize().unwrap();
    for (name, handler) in [
        ("py", Some("index.handler")),
        ("set", Some("app.main")),
        ("sh", None),
    ] {
        let v = invoke(&emu, name, &json!({"op": "env"})).await.json();
        let env = &v["env"];
        assert_eq!(env["_HANDLER"].as_str(), handler, "{name}: {env}");
        let root = Path::new(env["LAMBDA_TASK_ROOT"].as_str().unwrap());
        assert!(root.is_absolute(), "{name}: {root:?}");
        assert_eq!(root.canonicalize().unwrap(), canonical, "{name}");
        let cwd = Path::new(v["cwd"].as_str().unwrap());
        assert_eq!(cwd.canonicalize().unwrap(), canonical, "{name}");
    }
    emu.shutdown().await;
}
