//! Streams one invocation to stdout: `cost-aws-sdk-lambda FUNCTION [ENDPOINT_URL]`
use std::io::Write as _;

use aws_sdk_lambda::types::InvokeWithResponseStreamResponseEvent as Event;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let function = args.next().ok_or("usage: FUNCTION [ENDPOINT_URL]")?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = args.next() {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    let client = aws_sdk_lambda::Client::new(&config);
    let mut response = client
        .invoke_with_response_stream()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new("{}"))
        .send()
        .await?;
    let mut out = std::io::stdout().lock();
    while let Some(event) = response.event_stream.recv().await? {
        match event {
            Event::PayloadChunk(chunk) => {
                out.write_all(chunk.payload.as_ref().map_or(&[][..], |b| b.as_ref()))?
            }
            Event::InvokeComplete(c) if c.error_code.is_some() => {
                return Err(format!("{c:?}").into());
            }
            _ => {}
        }
    }
    out.flush()?;
    Ok(())
}
