//! Copies one POST response body to stdout: `cost-ureq URL`
use std::io::Write as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).ok_or("usage: URL")?;
    let response = ureq::post(&url).send("{}")?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut response.into_body().into_reader(), &mut out)?;
    out.flush()?;
    Ok(())
}
