//! Invokes a function and copies its response stream to stdout as it arrives
//!
//! ```sh
//! lambda-stream serve --no-auth &   # or a real AWS account
//! AWS_ENDPOINT_URL=http://127.0.0.1:9001 AWS_REGION=us-east-1 \
//! AWS_ACCESS_KEY_ID=AKID AWS_SECRET_ACCESS_KEY=secret \
//!     cargo run -p invoke-tokio --example stream_to_stdout -- count '{"n":5,"size":10}'
//! ```
//!
//! Region, endpoint, retries, CA bundle, proxies and credentials are resolved as the AWS
//! SDKs do (environment, `~/.aws/config` and `~/.aws/credentials`, then container and
//! instance credentials). The function log (`LogType: Tail`) and any error go to stderr;
//! the exit status is 1 on an error, 2 on a function error.

use std::io::Write as _;
use std::process::ExitCode;

use invoke_proto::{Event, InvokeParams, LogType};
use invoke_tokio::{Client, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::from(1)
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let function = args
        .next()
        .ok_or("usage: stream_to_stdout FUNCTION [PAYLOAD]")?;
    let payload = args.next().unwrap_or_else(|| "{}".to_owned());
    let client = Client::from_env().await?;

    let params = InvokeParams::new(function, payload).log_type(LogType::Tail);
    let mut response = client.invoke(&params).await?;
    eprintln!(
        "request id {}, version {}, {} attempt(s)",
        response.request_id().unwrap_or("-"),
        response.executed_version().unwrap_or("-"),
        response.attempts()
    );
    // stdout writes are short and local: blocking them is fine here
    let mut stdout = std::io::stdout().lock();
    while let Some(event) = response.next_event().await {
        match event? {
            Event::PayloadChunk(bytes) => {
                stdout.write_all(&bytes)?;
                stdout.flush()?;
            }
            Event::InvokeComplete(done) => {
                if let Ok(Some(log)) = done.decoded_log() {
                    eprintln!("--- log tail ---\n{}", String::from_utf8_lossy(&log));
                }
                if done.is_error() {
                    eprintln!("{}", Error::Function(done));
                    return Ok(ExitCode::from(2));
                }
            }
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}
