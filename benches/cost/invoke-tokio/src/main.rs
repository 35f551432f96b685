//! Streams one invocation to stdout: `cost-invoke-tokio FUNCTION [ENDPOINT_URL]`
use invoke_tokio::invoke_proto::{Credentials, EndpointConfig, InvokeParams, resolve_endpoint};
use invoke_tokio::{Client, ProxyEnv};
use tokio::io::AsyncWriteExt as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
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
    let response = client.invoke(&InvokeParams::new(function, "{}")).await?;
    let mut out = tokio::io::stdout();
    tokio::io::copy(&mut response.into_async_read(), &mut out).await?;
    out.flush().await?;
    Ok(())
}
