//! `lambda-stream`: decode, invoke and serve AWS Lambda response streams
//!
//! ```text
//! lambda-stream decode capture.bin          # one JSON object per message
//! lambda-stream decode --payload - < cap    # only the payload bytes
//! lambda-stream serve --port 9001           # a local Lambda endpoint
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod decode;
mod serve;

/// Tools for AWS Lambda response streaming (`InvokeWithResponseStream`)
#[derive(Debug, Parser)]
#[command(name = "lambda-stream", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a captured `application/vnd.amazon.eventstream` body
    ///
    /// Writes one JSON object per message to stdout (`headers` as a list of
    /// `{name,type,value}` in wire order, `payload_base64`, plus `offset`, `total_length` and
    /// `headers_length`). Exit status: 0 when the input ended cleanly after a whole message,
    /// 2 on a corrupt or truncated stream (after printing every message before the fault),
    /// 1 on an IO error.
    Decode {
        /// The captured stream; `-` or nothing reads standard input
        file: Option<PathBuf>,
        /// Write only the raw payload bytes of each message, back to back
        #[arg(long)]
        payload: bool,
    },
    /// Run a local Lambda endpoint that serves InvokeWithResponseStream
    ///
    /// Hosts the built-in functions echo, count and fail; prints the endpoint URL and the
    /// AWS_* variables to use, logs one line per invocation, stops on Ctrl-C.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { file, payload } => decode::run(file.as_deref(), payload),
        Command::Serve(args) => serve::run(args),
    }
}
