//! Streams one invocation to stdout: `cost-invoke-blocking FUNCTION [ENDPOINT_URL]`
use std::io::Write as _;

use invoke_blocking::invoke_proto::{Credentials, EndpointConfig, InvokeParams, resolve_endpoint};
use invoke_blocking::{Client, ProxyEnv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let function = args.next().ok_or("usage: FUNCTION [ENDPOINT_URL]")?;
    let mut config = EndpointConfig::default().with_region("us-east-1");
    if let Some(url) = args.next() {
        config = config.with_custom(url);
    }
    let key = std::env::var("AWS_ACCESS_KEY_ID")?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")?;
    let client = Client::builder(resolve_endpoint(&config)?)
        .credentials(Credentials::new(
            key,
            secret,
            std::env::var("AWS_SESSION_TOKEN").ok(),
        ))
        .proxy_env(ProxyEnv::from_process())
        .build()?;
    let mut out = std::io::stdout().lock();
    std::io::copy(
        &mut client
            .invoke(&InvokeParams::new(function, "{}"))?
            .into_reader(),
        &mut out,
    )?;
    out.flush()?;
    Ok(())
}
