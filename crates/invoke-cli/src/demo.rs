//! `lambda-stream demo`: a streaming invocation end to end, with no AWS account

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use invoke_blocking::{Client, ProxyEnv};
use invoke_emulator::{Emulator, FunctionConfig, count};
use invoke_proto::{
    Credentials, EndpointConfig, InvokeComplete, InvokeParams, LogType, resolve_endpoint,
};

use crate::invoke::{
    Exit, Outcome, Sink, describe, drive, failure_exit, human_bytes, human_duration,
};

/// The key pair the in-process emulator accepts, so that signing is verified
const DEMO_KEY: &str = "AKIDLAMBDASTREAMDEMO";
const DEMO_SECRET: &str = "lambda-stream-demo-secret";

/// Options of `demo`
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  lambda-stream demo                   # 12 chunks, 250 ms apart
  lambda-stream demo --chunks 40 --delay-ms 50")]
pub(crate) struct DemoArgs {
    /// Chunks the function writes
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    chunks: u64,
    /// Milliseconds between two chunks
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    delay_ms: u64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            chunks: 12,
            delay_ms: 250,
        }
    }
}

/// Prints each chunk as it arrives, with its time and size
struct DemoSink<W>(W);

impl<W: Write> Sink for DemoSink<W> {
    fn chunk(&mut self, bytes: &[u8], offset: u64, at: Duration) -> io::Result<()> {
        writeln!(
            self.0,
            "  {:>9}  chunk at byte {offset:>4}  {:>6}  {}",
            format!("+{}", human_duration(at)),
            human_bytes(bytes.len() as u64),
            String::from_utf8_lossy(bytes).escape_debug()
        )
    }

    fn complete(&mut self, c: &InvokeComplete, at: Duration) -> io::Result<()> {
        let how = if c.is_error() {
            format!(
                "function error {}: {}",
                c.error_code.as_deref().unwrap_or_default(),
                c.error_details.as_deref().unwrap_or_default()
            )
        } else {
            "success".to_owned()
        };
        writeln!(
            self.0,
            "  {:>9}  InvokeComplete: {how}",
            format!("+{}", human_duration(at))
        )?;
        if let Some(log) = c.decoded_log().ok().flatten() {
            for line in String::from_utf8_lossy(&log).lines() {
                writeln!(self.0, "             log: {line}")?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// How long the demo's function may take: the service's longest timeout (the demo's
/// endpoint gives its function that much), less a margin for starting and reporting
const LONGEST: Duration = FunctionConfig::MAX_TIMEOUT.saturating_sub(Duration::from_secs(10));

pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    // the function waits between chunks, not before the first
    let takes = Duration::from_millis(args.delay_ms.saturating_mul(args.chunks.saturating_sub(1)));
    if takes > LONGEST {
        say!(
            "lambda-stream demo: {} chunks {} ms apart take {}, longer than a function may run \
             ({} here); fewer chunks or a shorter delay",
            args.chunks,
            args.delay_ms,
            human_duration(takes),
            human_duration(LONGEST)
        );
        return Exit::Usage.into();
    }
    match demo(args) {
        Ok(exit) => exit.into(),
        Err(message) => {
            say!("lambda-stream demo: {message}");
            Exit::Failed.into()
        }
    }
}

fn demo(args: &DemoArgs) -> Result<Exit, String> {
    // The emulator runs on the runtime's worker threads; the client on this one, blocking
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let emulator = runtime
        .block_on(
            Emulator::builder()
                .builtins()
                // as long as the service allows (the default is 5 minutes)
                .function_arc(
                    "count",
                    Arc::new(count),
                    FunctionConfig {
                        timeout: FunctionConfig::MAX_TIMEOUT,
                        ..FunctionConfig::default()
                    },
                )
                .credentials(DEMO_KEY, DEMO_SECRET)
                .quiet()
                .start(([127, 0, 0, 1], 0).into()),
        )
        .map_err(|e| format!("cannot start the local endpoint: {e}"))?;
    let url = emulator.url();
    let endpoint = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(url.clone()),
    )
    .map_err(|e| e.to_string())?;
    let client = Client::builder(endpoint)
        .credentials(Credentials::new(DEMO_KEY, DEMO_SECRET, None))
        .proxy_env(ProxyEnv::none())
        .build()
        .map_err(|e| e.to_string())?;
    let payload = format!(
        r#"{{"n":{},"size":26,"delay_ms":{}}}"#,
        args.chunks, args.delay_ms
    );
    let params = InvokeParams::new("count", payload.clone()).log_type(LogType::Tail);

    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "lambda-stream demo: a local Lambda endpoint (the emulator) is serving on {url}\n\
         invoking its function `count` with {payload}: {} chunks, {} ms apart,\n\
         through the same client as `lambda-stream invoke` (ureq, SigV4 checked by the endpoint)\n",
        args.chunks, args.delay_ms
    );
    let run = drive(&client, &params, &mut DemoSink(&mut out), false);
    runtime.block_on(emulator.shutdown());

    let exit = match &run.outcome {
        Outcome::Complete(c) if !c.is_error() => Exit::Success,
        Outcome::Complete(_) => Exit::Function,
        Outcome::Closed => return Ok(Exit::Success),
        Outcome::Output(e) => return Err(format!("cannot write the output: {e}")),
        Outcome::DryRun => Exit::Failed,
        Outcome::Failed(e) => {
            say!("lambda-stream demo: {}", describe(e));
            failure_exit(e)
        }
    };
    let t = &run.tally;
    let _ = writeln!(
        out,
        "\nexecuted version {}, request id {}\ntime to first byte {} · {} chunks · {} bytes · {} in all\n",
        run.executed_version.as_deref().unwrap_or("unknown"),
        run.request_id.as_deref().unwrap_or("none"),
        t.first_byte.map_or_else(|| "-".to_owned(), human_duration),
        t.chunks,
        t.bytes,
        human_duration(t.elapsed),
    );
    let _ = writeln!(
        out,
        "Do the same against a local endpoint in another terminal:\n  \
         lambda-stream serve --no-auth\n  \
         lambda-stream invoke count --payload '{payload}' --endpoint-url http://127.0.0.1:9001 \
         --region us-east-1 --no-sign-request\n\
         And against AWS, with your credentials and a function of yours that streams its response:\n  \
         lambda-stream invoke my-function --payload '{{}}' --region us-east-1 --log-type Tail"
    );
    Ok(exit)
}
