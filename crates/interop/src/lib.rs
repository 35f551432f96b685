//! Interop tests of the emulator against independent official peers
//!
//! The tests in `tests/` drive the emulator with the official AWS SDK for Rust
//! (`aws-sdk-lambda`, `sdk.rs`), with boto3 and the AWS SDK for JavaScript v3 in child
//! processes (`sdk_peers.rs`; the scripts and pins in `peers/`, installed by
//! `.ci/sdk-peers.sh`), and run a function built on the official `lambda_runtime` crate
//! (`src/bin/stream_fn.rs`) behind it. Nothing here is published: the crate only exists so
//! that `cargo test -p invoke-interop` builds those peers, which the default `cargo test`
//! never compiles.
//!
//! Every wait in those tests goes through [`guarded`], so that a regression that holds a
//! stream open fails the test instead of hanging CI:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let two = invoke_interop::guarded("adding", async { 1 + 1 }).await;
//! assert_eq!(two, 2);
//! # });
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::Semaphore;

/// Where `.ci/sdk-peers.sh` installs the official SDK peers (boto3, botocore, the AWS SDK
/// for JavaScript v3): `INVOKE_SDK_PEERS` (a relative path from the workspace's root) or
/// `target/sdk-peers`
#[must_use]
pub fn sdk_peers_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join(std::env::var_os("INVOKE_SDK_PEERS").unwrap_or("target/sdk-peers".into()))
}

/// Whether `program --version` runs and succeeds
#[must_use]
pub fn runs(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Says why a test cannot run (it then passes), except under `CI=true`, where it fails
///
/// # Panics
///
/// Under `CI=true`, with `why`.
pub fn skip(why: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("SKIPPED: {why}");
}

/// How long any one wait of an interop test may take: a guard against hanging CI, not a
/// timing assertion
pub const GUARD: Duration = Duration::from_secs(60);

/// The output of `f`; panics (failing the test) if it takes longer than [`GUARD`]
///
/// # Panics
///
/// When `f` takes longer than [`GUARD`], naming `what`.
pub async fn guarded<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {GUARD:?}"))
}

/// The function's own lines of a base64 `LogResult` (with `LogType` `Tail`), after checking
/// the `START`, `END` and `REPORT` lines the service writes around them
///
/// # Panics
///
/// When `log` is `None`, not base64 of UTF-8 text, or lacks those lines.
#[must_use]
pub fn decode_log(log: Option<&str>) -> String {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(log.expect("LogResult with LogType Tail"))
        .unwrap();
    let log = String::from_utf8(raw).unwrap();
    let lines: Vec<&str> = log.split_inclusive('\n').collect();
    let n = lines.len();
    assert!(n >= 3, "{log:?}");
    assert!(lines[0].starts_with("START RequestId: "), "{log:?}");
    assert!(lines[n - 2].starts_with("END RequestId: "), "{log:?}");
    assert!(lines[n - 1].starts_with("REPORT RequestId: "), "{log:?}");
    lines[1..n - 2].concat()
}

/// An emulator of the built-in functions on https, on a loopback port, with a CA made at
/// start (its file for clients to trust: [`ca_pem_path`](invoke_emulator::Emulator::ca_pem_path)),
/// accepting only `key` and `secret`
///
/// # Panics
///
/// When the emulator cannot start.
pub async fn tls_emulator(key: &str, secret: &str) -> invoke_emulator::Emulator {
    start_signed(
        invoke_emulator::Emulator::builder().builtins().tls(),
        key,
        secret,
    )
    .await
}

/// `builder`'s emulator started quietly on a loopback port, accepting only requests signed
/// with `key` and `secret`
///
/// # Panics
///
/// When the emulator cannot start.
pub async fn start_signed(
    builder: invoke_emulator::Builder,
    key: &str,
    secret: &str,
) -> invoke_emulator::Emulator {
    builder
        .credentials(key, secret)
        .quiet()
        .start("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the emulator starts")
}

/// `builder` with the functions both SDK test files invoke:
/// - the built-ins (`echo`, `count`, `fail`);
/// - `versioned` (echo, with version `1` and alias `prod`);
/// - `whoami` (writes back as JSON what it saw of the request: ARN, client context, tenant
///   id, payload);
/// - `throttled` (`count`, its first two requests answered 429);
/// - `count` a further four times, each with a fault on every invocation: `exceptional`
///   (`exception`), `corrupt` (`corrupt-crc`), `cut` (`close-after=200`, within the second
///   message of small chunks) and `ended` (`end-early`)
///
/// # Panics
///
/// Never: the names and fault specs are fixed.
#[must_use]
pub fn with_shared_functions(builder: invoke_emulator::Builder) -> invoke_emulator::Builder {
    let count = || invoke_emulator::builtin("count").expect("the built-in count");
    let mut builder = builder
        .builtins()
        .function_arc(
            "versioned",
            invoke_emulator::builtin("echo").expect("the built-in echo"),
            invoke_emulator::FunctionConfig {
                qualifiers: vec!["1".to_owned(), "prod".to_owned()],
                ..invoke_emulator::FunctionConfig::default()
            },
        )
        .function("whoami", whoami)
        .function_arc(
            "throttled",
            count(),
            invoke_emulator::FunctionConfig {
                throttle_next: 2,
                ..invoke_emulator::FunctionConfig::default()
            },
        );
    let faulty = [
        ("exceptional", "exception"),
        ("corrupt", "corrupt-crc"),
        ("cut", "close-after=200"),
        ("ended", "end-early"),
    ];
    for (name, faults) in faulty {
        let config = invoke_emulator::FunctionConfig {
            faults: invoke_emulator::Faults::parse(faults).expect("a fault spec"),
            ..invoke_emulator::FunctionConfig::default()
        };
        builder = builder.function_arc(name, count(), config);
    }
    builder
}

/// Writes back as JSON what the function saw of the request
async fn whoami(
    inv: invoke_emulator::Invocation,
    out: invoke_emulator::ResponseStream,
) -> Result<(), invoke_emulator::FunctionError> {
    let seen = serde_json::json!({
        "arn": inv.invoked_function_arn,
        "client_context": inv.client_context,
        "tenant_id": inv.tenant_id,
        "payload": String::from_utf8_lossy(&inv.payload),
    });
    out.write(seen.to_string()).await;
    Ok(())
}

/// A function that writes `first`, waits for a permit of `gate` (taken for good), then
/// writes `second`: a test that sees `first` before it adds the permit knows the write
/// reached it while the function ran
pub fn gated(gate: &Arc<Semaphore>) -> impl invoke_emulator::Handler {
    let gate = Arc::clone(gate);
    move |_: invoke_emulator::Invocation, out: invoke_emulator::ResponseStream| {
        let gate = Arc::clone(&gate);
        async move {
            out.write("first").await;
            gate.acquire().await.expect("the gate stays open").forget();
            out.write("second").await;
            Ok::<(), invoke_emulator::FunctionError>(())
        }
    }
}
