//! `lambda-stream decode` run as a real process

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::{Headers, Message, encode_message};
use invoke_testkit::testdata;
use serde_json::Value;
use support::{OutputWatched as _, Watchdog, wait_watched};

mod support;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
}

/// `lambda-stream ARGS` with stdin, stdout and stderr piped, and the [`Watchdog`] over it (to
/// keep while the test uses the child)
fn spawn_piped(args: &[&str]) -> (Child, Watchdog) {
    let child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watchdog = Watchdog::watch(&child);
    (child, watchdog)
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let (mut child, _watchdog) = spawn_piped(args);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn event(event_type: &'static str, content_type: &'static str, payload: &'static [u8]) -> Message {
    let mut h = Headers::builder();
    h.push(":event-type", event_type).unwrap();
    h.push(":content-type", content_type).unwrap();
    h.push(":message-type", "event").unwrap();
    Message::new(h.build().unwrap(), Bytes::from_static(payload))
}

/// The sample stream `samples/hello.eventstream`: what Lambda sends for a function
/// that streams three pieces of text
fn sample() -> Bytes {
    let mut w = BytesMut::new();
    for m in [
        event("PayloadChunk", "application/octet-stream", b"Hello"),
        event("PayloadChunk", "application/octet-stream", b", streaming"),
        event("PayloadChunk", "application/octet-stream", b" world!\n"),
        event("InvokeComplete", "application/json", b"{}"),
    ] {
        encode_message(&m, &mut w).unwrap();
    }
    w.freeze()
}

#[test]
fn shipped_sample_is_current_and_decodes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/hello.eventstream");
    if std::env::var_os("UPDATE_SAMPLES").is_some() {
        std::fs::write(&path, sample()).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        sample(),
        "run with UPDATE_SAMPLES=1"
    );
    let out = bin().arg("decode").arg(&path).output_watched();
    assert!(out.status.success(), "{out:?}");
    let msgs = lines(&out);
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[0]["payload_base64"], B64.encode("Hello"));
    assert_eq!(msgs[3]["headers"][0]["value"], "InvokeComplete");
    assert_eq!(msgs[1]["offset"], 111);
    let out = bin()
        .args(["decode", "--payload"])
        .arg(&path)
        .output_watched();
    assert!(out.status.success());
    // the function's output only: InvokeComplete's payload is not part of it
    assert_eq!(out.stdout, b"Hello, streaming world!\n");
}

#[test]
fn payload_mode_names_failures_instead_of_writing_them() {
    let mut w = BytesMut::new();
    let mut h = Headers::builder();
    h.push(":exception-type", "ServiceException").unwrap();
    h.push(":content-type", "application/json").unwrap();
    h.push(":message-type", "exception").unwrap();
    let exception = Message::new(
        h.build().unwrap(),
        Bytes::from_static(b"{\"message\":\"x\"}"),
    );
    for m in [
        event("PayloadChunk", "application/octet-stream", b"part"),
        event(
            "InvokeComplete",
            "application/json",
            br#"{"ErrorCode":"Unhandled","ErrorDetails":"boom"}"#,
        ),
        exception,
    ] {
        encode_message(&m, &mut w).unwrap();
    }
    let out = run_stdin(&["decode", "--payload", "-"], &w);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"part");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exception (ServiceException)"), "{err}");
    assert!(
        err.contains("InvokeComplete with ErrorCode Unhandled"),
        "{err}"
    );
    // the JSON lines still show them whole
    let out = run_stdin(&["decode", "-"], &w);
    assert_eq!(lines(&out)[2]["headers"][0]["value"], "ServiceException");
}

/// An `InvokeComplete` whose payload does not parse (it may hide a function error) is named
/// on stderr, never taken for a successful end
#[test]
fn payload_mode_names_an_invoke_complete_that_does_not_parse() {
    for bad in [&br#"{"ErrorCode":"Unhandled""#[..], br#"["ErrorCode"]"#] {
        let mut w = BytesMut::new();
        for m in [
            event("PayloadChunk", "application/octet-stream", b"part"),
            Message::new(
                event("InvokeComplete", "application/json", b"").headers,
                Bytes::copy_from_slice(bad),
            ),
        ] {
            encode_message(&m, &mut w).unwrap();
        }
        let out = run_stdin(&["decode", "--payload", "-"], &w);
        assert_eq!(out.stdout, b"part");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("an InvokeComplete whose payload does not parse as one"),
            "{}: {err}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// `--payload` writes what the function wrote and nothing else: other events are named, not
/// written, nothing after the end counts, and a stream that stops before its end is an error
#[test]
fn payload_mode_writes_only_payload_chunks_of_a_stream_that_ended() {
    let mut w = BytesMut::new();
    for m in [
        event("PayloadChunk", "application/octet-stream", b"a"),
        event("Heartbeat", "application/json", b"{\"x\":1}"),
        event("PayloadChunk", "application/octet-stream", b"b"),
    ] {
        encode_message(&m, &mut w).unwrap();
    }
    let cut = w.clone().freeze();
    for m in [
        event("InvokeComplete", "application/json", b"{}"),
        event("PayloadChunk", "application/octet-stream", b"late"),
    ] {
        encode_message(&m, &mut w).unwrap();
    }
    let out = run_stdin(&["decode", "--payload"], &w);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"ab");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("an event of type Heartbeat"), "{err}");
    assert!(err.contains("comes after the stream's end"), "{err}");
    // the same without its end: the output so far, then exit 2
    let out = run_stdin(&["decode", "--payload"], &cut);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(out.stdout, b"ab");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without InvokeComplete"), "{err}");
    // as JSON lines every message is shown, and a stream need not end
    let out = run_stdin(&["decode"], &cut);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines(&out).len(), 3);
}

#[test]
fn official_vectors_print_their_json() {
    let Some(dir) = testdata("eventstream") else {
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        seen += 1;
        let expect: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let bin_path = path.with_extension("bin");
        let out = bin().arg("decode").arg(&bin_path).output_watched();
        let name = path.display();
        if expect["expect"] == "ok" {
            assert!(out.status.success(), "{name}: {out:?}");
            let msgs = lines(&out);
            assert_eq!(msgs.len(), 1, "{name}");
            assert_eq!(msgs[0]["headers"], expect["headers"], "{name}");
            assert_eq!(
                msgs[0]["payload_base64"], expect["payload_base64"],
                "{name}"
            );
            assert_eq!(msgs[0]["total_length"], expect["total_length"], "{name}");
            assert!(out.stderr.is_empty());
        } else {
            assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
            assert!(out.stdout.is_empty(), "{name}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(err.contains("at byte offset 0"), "{name}: {err}");
        }
    }
    assert_eq!(seen, 20);
}

#[test]
fn corrupt_stream_prints_messages_before_the_fault() {
    let good = sample();
    let mut bad = good.to_vec();
    let third = 111 + 117; // the first two messages are 111 and 117 bytes
    bad[third + 110] ^= 0x01; // a payload byte of the third message
    for args in [&["decode"][..], &["decode", "-"][..]] {
        let out = run_stdin(args, &bad);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let msgs = lines(&out);
        assert_eq!(msgs.len(), 2);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("byte offset {third}")) && err.contains("message_crc"),
            "{err}"
        );
    }
    let out = run_stdin(&["decode", "--payload"], &bad);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(out.stdout, b"Hello, streaming");
}

#[test]
fn truncated_stream_fails_with_offset() {
    let good = sample();
    let cut = &good[..good.len() - 3];
    let out = run_stdin(&["decode"], cut);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(lines(&out).len(), 3);
    let err = String::from_utf8(out.stderr).unwrap();
    let start = good.len() - 102;
    assert!(
        err.contains(&format!("byte offset {start}")) && err.contains("truncated"),
        "{err}"
    );
    // a clean end after a whole message is success, even an empty input
    assert!(run_stdin(&["decode"], b"").status.success());
    assert!(run_stdin(&["decode"], &good[..111]).status.success());
}

#[test]
fn missing_file_is_an_io_error() {
    let out = bin()
        .args(["decode", "/nonexistent/capture.bin"])
        .output_watched();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lambda-stream:"));
}

/// Peak resident memory of a running process, in KiB
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn one_gib_in_bounded_memory() {
    // 1 GiB of 1 MiB PayloadChunks, piped in; the decoder must never hold more than a
    // message or two and the current read
    let mut h = Headers::builder();
    h.push(":event-type", "PayloadChunk").unwrap();
    h.push(":message-type", "event").unwrap();
    let chunk = Message::new(h.build().unwrap(), vec![b'x'; 1024 * 1024])
        .to_bytes()
        .unwrap();
    let mut child = bin()
        .args(["decode", "--payload"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _watchdog = Watchdog::watch(&child);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..1024 {
        stdin.write_all(&chunk).unwrap();
    }
    let mut end = BytesMut::new();
    encode_message(
        &event("InvokeComplete", "application/json", b"{}"),
        &mut end,
    )
    .unwrap();
    stdin.write_all(&end).unwrap();
    let peak = peak_rss_kib(pid);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(peak < 48 * 1024, "peak RSS {peak} KiB after 1 GiB");
}

#[test]
fn closed_stdout_exits_quietly_with_status_0() {
    // `lambda-stream decode capture | head -c 0`: the reader is gone before the first write
    for args in [&["decode"][..], &["decode", "--payload"][..]] {
        let (mut child, _watchdog) = spawn_piped(args);
        drop(child.stdout.take());
        let mut stdin = child.stdin.take().unwrap();
        // The child may exit before it read everything; a write error here is expected
        let _ = stdin.write_all(&sample());
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    }
}

/// `lambda-stream decode ARGS` run by `sh` with `redirect` applied (such as `>&-`, which
/// closes the descriptor: `Stdio::null()` would open /dev/null instead)
fn run_redirected(args: &[&str], redirect: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec \"$0\" decode \"$@\" {redirect}"))
        .arg(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(args)
        .output_watched()
}

#[test]
fn closed_stdout_or_stdin_is_an_io_error() {
    let dir = std::env::temp_dir().join(format!("decode-closed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("capture.bin");
    std::fs::write(&capture, sample()).unwrap();
    let capture = capture.to_str().unwrap();
    for (args, redirect, what) in [
        (&[capture][..], ">&-", "stdout is closed"),
        (&[capture, "--payload"][..], ">&-", "stdout is closed"),
        (&[][..], "<&-", "stdin is closed"),
        (&["-"][..], "<&-", "stdin is closed"),
    ] {
        let out = run_redirected(args, redirect);
        assert_eq!(out.status.code(), Some(1), "{args:?} {redirect}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("lambda-stream: ") && err.contains(what) && err.lines().count() == 1,
            "{args:?} {redirect}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    // stdin is not read when a file is named
    let out = run_redirected(&[capture], "<&-");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines(&out).len(), 4);
    // /dev/null opened as a shell does is an ordinary output and an ordinary empty input
    for redirect in [">/dev/null", "</dev/null"] {
        let out = run_redirected(&[], redirect);
        assert!(out.status.success(), "{redirect}: {out:?}");
        assert!(out.stderr.is_empty(), "{redirect}: {out:?}");
    }
    // a write that fails
    if Path::new("/dev/full").exists() {
        let out = run_redirected(&[capture], ">/dev/full");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn payload_base64_is_written_in_pieces_that_join() {
    // around the 12 KiB pieces the encoder works in, and sizes that are not a multiple of 3
    let sizes = [0, 1, 2, 3, 4, 12_287, 12_288, 12_289, 24_577, 300_001];
    let mut wire = BytesMut::new();
    let mut payloads = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let payload: Vec<u8> = (0..size).map(|j| (j * 31 + i) as u8).collect();
        let mut h = Headers::builder();
        h.push(":event-type", "PayloadChunk").unwrap();
        encode_message(
            &Message::new(h.build().unwrap(), payload.clone()),
            &mut wire,
        )
        .unwrap();
        payloads.push(payload);
    }
    let out = run_stdin(&["decode"], &wire);
    assert!(out.status.success(), "{out:?}");
    let msgs = lines(&out);
    assert_eq!(msgs.len(), sizes.len());
    for (m, payload) in msgs.iter().zip(&payloads) {
        assert_eq!(
            m["payload_base64"],
            B64.encode(payload),
            "{} bytes",
            payload.len()
        );
    }
}

/// Runs `lambda-stream ARGS` on `input` piped in, keeping stdin open (the process alive)
/// until `done` says the output is all there; the output and the peak resident memory
/// (KiB) at that point
fn output_and_peak_rss(
    args: &[&str],
    input: Bytes,
    done: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, u64) {
    // output that never matches `done` fails the test instead of hanging it: the process is
    // killed, which ends its output
    let (mut child, _watchdog) = spawn_piped(args);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (measured, wait_measured) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).unwrap();
        let _ = wait_measured.recv();
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0; 256 * 1024];
    while !done(&out) {
        let n = stdout.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "{args:?}: output ended after {} bytes (killed by the watchdog?): {:?}",
            out.len(),
            String::from_utf8_lossy(&out[out.len().saturating_sub(200)..])
        );
        out.extend_from_slice(&buf[..n]);
    }
    let peak = peak_rss_kib(pid);
    measured.send(()).unwrap();
    writer.join().unwrap();
    stdout.read_to_end(&mut out).unwrap();
    let rest = child.wait_with_output().unwrap();
    assert!(rest.status.success(), "{args:?}: {rest:?}");
    (out, peak)
}

#[test]
fn a_largest_message_needs_one_message_of_memory() {
    // a 24 MiB message (within the default limit): the JSON line holds 32 MiB of base64, which
    // must be streamed rather than built (it was, twice: 94 MB resident in a release build)
    const MESSAGE: usize = 24 * 1024 * 1024;
    let mut h = Headers::builder();
    h.push(":event-type", "PayloadChunk").unwrap();
    h.push(":message-type", "event").unwrap();
    let headers = h.build().unwrap();
    let payload_len = MESSAGE - 16 - headers.as_wire().len();
    let payload = b"0123456789abcdefghijklmnopqrstuvwxyz".repeat(payload_len / 36 + 1)
        [..payload_len]
        .to_vec();
    let big = Message::new(headers, payload.clone()).to_bytes().unwrap();
    assert_eq!(big.len(), MESSAGE);
    // `--payload` wants the stream's end too
    let mut ended = BytesMut::from(&big[..]);
    encode_message(
        &event("InvokeComplete", "application/json", b"{}"),
        &mut ended,
    )
    .unwrap();
    let ended = ended.freeze();
    let small = sample();

    // what the process needs for itself: the same runs on the four small messages
    let (_, base_json) = output_and_peak_rss(&["decode"], small.clone(), |out| {
        // four lines, each ended
        out.split(|&b| b == b'\n').count() == 5
    });
    let (_, base_payload) = output_and_peak_rss(&["decode", "--payload"], small, |out| {
        out.ends_with(b" world!\n")
    });

    let (out, json) = output_and_peak_rss(&["decode"], big.clone(), |out| out.ends_with(b"\n"));
    let line: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line["total_length"], MESSAGE);
    assert_eq!(
        B64.decode(line["payload_base64"].as_str().unwrap())
            .unwrap(),
        payload
    );
    let (out, raw) = output_and_peak_rss(&["decode", "--payload"], ended, |out| {
        out.len() == payload_len
    });
    assert!(out == payload);

    // the message itself plus slack (the read buffer, the output buffer, allocator rounding)
    let bound = (MESSAGE + 4 * 1024 * 1024) as u64 / 1024;
    for (mode, peak, base) in [("json", json, base_json), ("--payload", raw, base_payload)] {
        eprintln!("{mode}: peak {peak} KiB, {base} KiB on a small input");
        assert!(
            peak.saturating_sub(base) < bound,
            "{mode}: peak {peak} KiB, {base} KiB for a small input, bound {bound} KiB above it"
        );
    }
}

/// A pipe whose reader is already gone: every write to it fails with `BrokenPipe`
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn a_closed_stderr_is_not_a_panic() {
    // the error message cannot be written: the status is still the error's, not a panic's 101
    let child = bin()
        .args(["decode", "/no/such/capture.bin"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .spawn()
        .unwrap();
    let out = wait_watched(child);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn completions_to_a_closed_pipe_are_not_a_panic() {
    let child = bin()
        .args(["completions", "bash"])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_watched(child);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = bin().args(["completions", "bash"]).output_watched();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("lambda-stream"));
}

/// A read that fails (of a directory named as the capture) is an IO error, never tried
/// again
#[test]
fn a_failing_read_is_an_io_error() {
    let dir = std::env::temp_dir();
    let out = bin()
        .args(["decode", dir.to_str().unwrap()])
        .output_watched();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("lambda-stream: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// A usage error exits with 3, as `invoke --help` documents, except for `decode` and `serve`,
/// which keep their 2
#[test]
fn usage_errors_exit_with_the_status_of_their_command() {
    for (args, status) in [
        (&["decode", "--no-such-option"][..], 2),
        (&["decode", "a", "b"][..], 2),
        (&["serve", "--no-such-option"][..], 2),
        (&["invoke"][..], 3),
        (&["completions", "tcsh"][..], 3),
        (&["no-such-command"][..], 3),
    ] {
        let out = bin().args(args).output_watched();
        assert_eq!(out.status.code(), Some(status), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn completions_that_cannot_be_written_are_an_error() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" completions bash >/dev/full")
        .arg(env!("CARGO_BIN_EXE_lambda-stream"))
        .output_watched();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot write the completion script"), "{err}");
}
