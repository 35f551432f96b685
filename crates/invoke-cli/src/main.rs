//! `lambda-stream`: call, serve and decode AWS Lambda response streams
//!
//! ```text
//! lambda-stream                                  # the demo: a streaming call, no AWS account
//! lambda-stream invoke my-function --payload '{}' # payload bytes to stdout as they arrive
//! lambda-stream serve --port 9001                # a local Lambda endpoint
//! lambda-stream decode capture.bin               # one JSON object per message
//! lambda-stream completions bash > /etc/bash_completion.d/lambda-stream
//! ```
//!
//! `invoke` and `demo` use the blocking transport (`invoke-blocking`, over ureq): a CLI
//! writes to a blocking stdout and needs no async runtime for its client.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// `eprintln!` without its panic: a message for a stderr that is gone (a closed pipe, a full
/// disk) is dropped, and the command ends with the status it was going to have
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` without its panic (see [`say!`])
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stderr(), $($arg)*);
    }};
}

mod decode;
mod demo;
mod invoke;
mod serve;
mod status;

use invoke::Exit;

/// Call, serve and decode AWS Lambda response streams (InvokeWithResponseStream)
///
/// Without a command, runs `demo`.
#[derive(Debug, Parser)]
#[command(
    name = "lambda-stream",
    version,
    about = "Call, serve and decode AWS Lambda response streams (InvokeWithResponseStream); \
             without a command, runs `demo`",
    after_help = "\
Examples:
  lambda-stream                                    # the demo: streaming, locally, no AWS account
  lambda-stream invoke my-function --payload '{}'  # a real function; payload bytes to stdout
  lambda-stream serve --no-auth                    # a local Lambda endpoint for any SDK
  lambda-stream decode capture.bin                 # inspect a captured response body

Exit status of invoke and demo: 0 success, 1 function error, 2 service, network or protocol
error, 3 usage or configuration error (see `lambda-stream invoke --help`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Invoke a function and write its payload to stdout as it streams in
    ///
    /// Options resolve as the AWS CLI resolves them: explicit options win over environment
    /// variables (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_LAMBDA, AWS_MAX_ATTEMPTS, ...),
    /// which win over the profile in ~/.aws/config and ~/.aws/credentials; credentials come
    /// from the default chain (environment, profile, web identity, container, EC2 instance
    /// metadata). Chunks are written as they arrive (those that arrive together in one
    /// write), and stdout is flushed whenever the client waits for more; when the reader of
    /// stdout goes away (`| head`), the invocation ends quietly and the connection is closed.
    /// Diagnostics go to stderr: the executed version, the log tail (--log-type Tail), a
    /// function error with its type and details, a service error with its type, message and
    /// request id, or how many bytes arrived before the stream was cut. On a terminal, a
    /// live status line shows bytes, chunks, rate and time to first byte.
    Invoke(Box<invoke::InvokeArgs>),
    /// Watch a streaming invocation end to end, locally, with no AWS account (the default)
    ///
    /// Starts the emulator in this process on a free loopback port, invokes its `count`
    /// function through the same client as `invoke` (signed, the signature checked), shows
    /// each chunk as it arrives with its timing, then InvokeComplete and the numbers, and the
    /// commands that do the same against `lambda-stream serve` and against AWS.
    Demo(demo::DemoArgs),
    /// Decode a captured `application/vnd.amazon.eventstream` body
    ///
    /// Writes one JSON object per message to stdout (`headers` as a list of
    /// `{name,type,value}` in wire order, `payload_base64`, plus `offset`, `total_length` and
    /// `headers_length`). Exit status: 0 when the input ended cleanly after a whole message,
    /// 2 on a corrupt or truncated stream (after printing every message before the fault),
    /// 1 on an IO error.
    #[command(after_help = "\
Examples:
  lambda-stream decode capture.bin
  lambda-stream decode --payload - < capture.bin > payload.out")]
    Decode {
        /// The captured stream; `-` or nothing reads standard input
        file: Option<PathBuf>,
        /// Write only the raw payload bytes of the events, back to back: a Lambda stream's
        /// PayloadChunks, without InvokeComplete; a function error's InvokeComplete and an
        /// exception or error message are named on stderr instead (the exit status stays 0:
        /// the stream decoded)
        #[arg(long)]
        payload: bool,
    },
    /// Run a local Lambda endpoint that serves InvokeWithResponseStream
    ///
    /// Hosts the built-in functions echo, count and fail; prints the endpoint URL and the
    /// AWS_* variables to use, logs one line per invocation, stops on Ctrl-C.
    #[command(after_help = "\
Examples:
  lambda-stream serve --no-auth                       # then: invoke --no-sign-request
  lambda-stream serve --credentials AKIDTEST:secret   # only this key pair is accepted
  lambda-stream serve --fault count=close-after=100   # test a client against a cut stream
  lambda-stream serve --clock-ahead 600               # test a client whose clock is behind
  lambda-stream serve --function hello=./bootstrap    # a real function via the Runtime API
  lambda-stream serve --function js='npx aws-lambda-ric index.handler' --task-root js=./code")]
    Serve(Box<serve::ServeArgs>),
    /// Print a shell completion script
    #[command(after_help = "\
Examples:
  lambda-stream completions bash > ~/.local/share/bash-completion/completions/lambda-stream
  lambda-stream completions zsh > ~/.zfunc/_lambda-stream
  lambda-stream completions fish > ~/.config/fish/completions/lambda-stream.fish")]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// Shells `completions` writes scripts for
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return ExitCode::SUCCESS; // --help, --version
            }
            // usage errors exit 3, as `invoke --help` documents; `serve` and `decode` keep
            // their status 2
            let command = std::env::args_os().nth(1);
            return match command.as_ref().and_then(|c| c.to_str()) {
                Some("serve" | "decode") => ExitCode::from(2),
                _ => Exit::Usage.into(),
            };
        }
    };
    match cli.command {
        None => demo::run(&demo::DemoArgs::default()),
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::Invoke(args)) => invoke::run(&args),
        Some(Command::Decode { file, payload }) => decode::run(file.as_deref(), payload),
        Some(Command::Serve(args)) => serve::run(*args),
        Some(Command::Completions { shell }) => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            // into memory first: `generate` panics on a write error
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lambda-stream", &mut script);
            let mut out = io::stdout().lock();
            match io::Write::write_all(&mut out, &script).and_then(|()| io::Write::flush(&mut out))
            {
                Ok(()) => ExitCode::SUCCESS,
                // the reader took what it wanted
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    say!("lambda-stream: cannot write the completion script: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
