//! Invokes a function and copies its response stream to stdout as it arrives
//!
//! ```sh
//! lambda-stream serve &   # or a real AWS account
//! AWS_ENDPOINT_URL=http://127.0.0.1:9001 AWS_REGION=us-east-1 \
//! AWS_ACCESS_KEY_ID=AKID AWS_SECRET_ACCESS_KEY=secret \
//!     cargo run -p invoke-blocking --example stream_to_stdout -- count '{"n":5,"size":10}'
//! ```
//!
//! The client is configured as the AWS SDKs and CLI are: region, endpoint, retries,
//! `AWS_CA_BUNDLE`, proxies and credentials (environment, profiles, SSO, web identity,
//! container, instance metadata) from the environment and `~/.aws`.
//!
//! The function log (`LogType: Tail`) and any error go to stderr; the exit status is 1 on
//! an error, 2 on a function error.

use std::io::Write as _;
use std::process::ExitCode;

use invoke_blocking::{Client, Error};
use invoke_proto::{Event, InvokeParams, LogType};

fn main() -> ExitCode {
    match run() {
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

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let function = args
        .next()
        .ok_or("usage: stream_to_stdout FUNCTION [PAYLOAD]")?;
    let payload = args.next().unwrap_or_else(|| "{}".to_owned());
    let client = Client::from_env()?;

    let params = InvokeParams::new(function, payload).log_type(LogType::Tail);
    let response = client.invoke(&params)?;
    eprintln!(
        "request id {}, version {}, {} attempt(s)",
        response.request_id().unwrap_or("-"),
        response.executed_version().unwrap_or("-"),
        response.attempts()
    );
    let mut stdout = std::io::stdout().lock();
    for event in response {
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
