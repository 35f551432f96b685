//! The retry modes against a throttling function: what the `adaptive` mode's client-side rate
//! limiter changes
//!
//! An in-process emulator hosts `slow` (answers after 25 ms) with a concurrency of 4: past
//! four invocations at once it answers 429 `TooManyRequestsException`, as Lambda does past a
//! function's reserved concurrency. 16 threads share one `invoke-blocking` client and invoke
//! it 25 times each, back to back; first with the `standard` retry mode (3 attempts), then
//! with a fresh client in the `adaptive` mode (3 attempts, the rate limiter), and again, in
//! turn. For each: invocations that succeeded and failed, the 429s the client met (every
//! attempt but a success's last), and the wall time.
//!
//! `cargo bench -p invoke-benches --bench adaptive`. `ADAPTIVE_ROUNDS` sets the rounds
//! (default 2). Real time: the figures vary from run to run.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use invoke_blocking::{Client, Error};
use invoke_emulator::{Emulator, FunctionConfig, Invocation, ResponseStream};
use invoke_proto::{InvokeParams, RetryConfig};

const THREADS: usize = 16;
const CALLS: usize = 25;
const CONCURRENCY: usize = 4;
const WORK: Duration = Duration::from_millis(25);

#[derive(Default)]
struct Tally {
    ok: AtomicU32,
    failed: AtomicU32,
    throttles: AtomicU32,
}

fn run(client: &Client) -> (Tally, Duration) {
    let tally = Tally::default();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..CALLS {
                    match client.invoke(&InvokeParams::new("slow", "{}")) {
                        Ok(response) => {
                            let attempts = response.attempts();
                            let payload: Vec<_> = response.map(Result::unwrap).collect();
                            assert!(!payload.is_empty());
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            tally.throttles.fetch_add(attempts - 1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            assert!(matches!(e, Error::Service { .. }), "{e}");
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            let attempts = e.attempts().unwrap_or(1);
                            tally.throttles.fetch_add(attempts, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    (tally, start.elapsed())
}

fn main() {
    let rounds: usize = std::env::var("ADAPTIVE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = FunctionConfig {
        concurrency: Some(CONCURRENCY),
        ..FunctionConfig::default()
    };
    let emulator = runtime.block_on(async {
        Emulator::builder()
            .no_auth()
            .quiet()
            .function_with(
                "slow",
                |_: Invocation, out: ResponseStream| async move {
                    tokio::time::sleep(WORK).await;
                    out.write("done").await;
                    Ok(())
                },
                config,
            )
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    let endpoint = invoke_proto::resolve_endpoint(
        &invoke_proto::EndpointConfig::default().with_custom(emulator.url()),
    )
    .unwrap();
    println!(
        "{THREADS} threads x {CALLS} invocations of a function that answers after {} ms, \
         {CONCURRENCY} at once at most (429 past that), 3 attempts each",
        WORK.as_millis()
    );
    println!(
        "{:<10} {:>6} {:>8} {:>8} {:>12} {:>8} {:>8}",
        "mode", "ok", "failed", "429s", "429s per ok", "wall s", "ok/s"
    );
    for _ in 0..rounds {
        for adaptive in [false, true] {
            let mut builder = Client::builder(endpoint.clone())
                .no_signing()
                .retry(RetryConfig::default().with_max_attempts(3));
            if adaptive {
                builder = builder.adaptive_retry();
            }
            let client = builder.build().unwrap();
            let (t, wall) = run(&client);
            let ok = t.ok.load(Ordering::Relaxed);
            let throttles = t.throttles.load(Ordering::Relaxed);
            println!(
                "{:<10} {ok:>6} {:>8} {throttles:>8} {:>12.2} {:>8.2} {:>8.1}",
                if adaptive { "adaptive" } else { "standard" },
                t.failed.load(Ordering::Relaxed),
                f64::from(throttles) / f64::from(ok.max(1)),
                wall.as_secs_f64(),
                f64::from(ok) / wall.as_secs_f64(),
            );
        }
    }
}
