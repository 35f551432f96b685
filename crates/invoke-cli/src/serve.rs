//! `lambda-stream serve`: run the local Lambda endpoint

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use std::collections::HashMap;

use invoke_emulator::{BUILTINS, Emulator, Faults, FunctionConfig, builtin};

/// Options of `serve`
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Port to listen on (0 picks a free one)
    #[arg(long, default_value_t = 9001)]
    port: u16,
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Only accept requests signed with this key pair (repeatable); without it any
    /// well-formed SigV4 signature is accepted
    #[arg(long = "credentials", value_name = "KEY:SECRET")]
    credentials: Vec<String>,
    /// Accept unsigned requests
    #[arg(long, conflicts_with = "credentials")]
    no_auth: bool,
    /// Region reported in ARNs and suggested to clients
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Inject faults into every invocation of a function, e.g. `echo=corrupt-crc` or
    /// `count=delay-ms=100,close-after=500` (see the emulator's fault table; repeatable)
    #[arg(long = "fault", value_name = "NAME=SPEC")]
    faults: Vec<String>,
    /// Limit a function's concurrent invocations; more get 429 TooManyRequestsException
    /// (repeatable)
    #[arg(long = "concurrency", value_name = "NAME=N")]
    concurrency: Vec<String>,
    /// Do not log one line per invocation
    #[arg(long, short)]
    quiet: bool,
}

/// Per-function settings from `--fault` and `--concurrency`
fn function_configs(args: &ServeArgs) -> Result<HashMap<String, FunctionConfig>, String> {
    let mut configs: HashMap<String, FunctionConfig> = HashMap::new();
    for f in &args.faults {
        let (name, spec) = f
            .split_once('=')
            .ok_or_else(|| format!("--fault takes NAME=SPEC, got {f:?}"))?;
        let faults = Faults::parse(spec).map_err(|e| format!("--fault {f:?}: {e}"))?;
        let c = configs.entry(name.to_owned()).or_default();
        c.faults = c.faults.merge(&faults);
    }
    for f in &args.concurrency {
        let (name, n) = f
            .split_once('=')
            .ok_or_else(|| format!("--concurrency takes NAME=N, got {f:?}"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("--concurrency {f:?}: N must be a whole number"))?;
        configs.entry(name.to_owned()).or_default().concurrency = Some(n);
    }
    if let Some(unknown) = configs.keys().find(|n| !BUILTINS.contains(&n.as_str())) {
        return Err(format!(
            "no function named {unknown:?} (functions: {})",
            BUILTINS.join(", ")
        ));
    }
    Ok(configs)
}

pub(crate) fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lambda-stream: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> ExitCode {
    let configs = match function_configs(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lambda-stream: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Emulator::builder().builtins().region(args.region.clone());
    for (name, config) in configs {
        if let Some(handler) = builtin(&name) {
            builder = builder.function_arc(name, handler, config);
        }
    }
    let mut shown_key = None;
    for pair in &args.credentials {
        let Some((key, secret)) = pair
            .split_once(':')
            .filter(|(k, s)| !k.is_empty() && !s.is_empty())
        else {
            eprintln!(
                "lambda-stream: --credentials takes KEY:SECRET, got {:?}",
                redact(pair)
            );
            return ExitCode::from(2);
        };
        shown_key.get_or_insert((key.to_owned(), secret.to_owned()));
        builder = builder.credentials(key, secret);
    }
    if args.no_auth {
        builder = builder.no_auth();
    }
    if args.quiet {
        builder = builder.quiet();
    }
    let emulator = match builder.start(SocketAddr::new(args.bind, args.port)).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "lambda-stream: cannot listen on {}:{}: {e}",
                args.bind, args.port
            );
            return ExitCode::from(1);
        }
    };
    let url = emulator.url();
    let (key, secret) =
        shown_key.unwrap_or_else(|| ("AKIDLOCAL".to_owned(), "local-secret".to_owned()));
    let auth = if args.no_auth {
        "unsigned requests accepted"
    } else if args.credentials.is_empty() {
        "any SigV4 signature accepted"
    } else {
        "only the given credentials accepted"
    };
    println!("lambda-stream emulator listening on {url}");
    println!("functions: {} ({auth})", BUILTINS.join(", "));
    println!();
    println!("Point an AWS SDK or the AWS CLI at it:");
    println!("  export AWS_ENDPOINT_URL_LAMBDA={url}");
    println!("  export AWS_REGION={}", args.region);
    println!("  export AWS_ACCESS_KEY_ID={key}");
    println!("  export AWS_SECRET_ACCESS_KEY={secret}");
    println!(
        "SDK settings: endpoint URL {url}, region {}, static credentials as above",
        args.region
    );
    println!("  Rust: aws_config::defaults(BehaviorVersion::latest()).endpoint_url(\"{url}\")");
    println!("  Python: boto3.client(\"lambda\", endpoint_url=\"{url}\")");
    println!(
        "Try: aws lambda invoke-with-response-stream --function-name echo --payload '{{\"hi\":1}}' --cli-binary-format raw-in-base64-out out.bin"
    );
    println!("Stop with Ctrl-C.");
    let _ = std::io::stdout().flush();
    match tokio::signal::ctrl_c().await {
        Ok(()) => eprintln!("lambda-stream: stopping (functions still running are abandoned)"),
        Err(e) => eprintln!("lambda-stream: cannot wait for Ctrl-C ({e}); stopping"),
    }
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// The key of a KEY:SECRET pair with the secret hidden
fn redact(pair: &str) -> String {
    match pair.split_once(':') {
        Some((k, _)) => format!("{k}:<redacted>"),
        None => "<redacted>".to_owned(),
    }
}
