//! The official `aws-sigv4` signer, applied as the Rust SDK applies it

use std::time::SystemTime;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
pub use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;

/// The SDK identity for a key pair and optional session token
pub fn identity(access_key: &str, secret: &str, token: Option<String>) -> Identity {
    AwsCredentials::new(access_key, secret, token, None, "invoke-testkit").into()
}

/// Signs `req` for Lambda in `region` at `now` with `aws-sigv4` and its default settings:
/// `SignableRequest::new`, `sign`, `apply_to_request_http1x`, as the Rust SDK does for every
/// attempt
///
/// # Panics
///
/// If a header value is not UTF-8 or `aws-sigv4` refuses the request.
pub fn sign_with_aws(
    req: &mut http::Request<Bytes>,
    identity: &Identity,
    region: &str,
    now: SystemTime,
) {
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("lambda")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .expect("complete signing params")
        .into();
    let uri = req.uri().to_string();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        req.headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().expect("utf-8 header value"))),
        SignableBody::Bytes(req.body()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params)
        .expect("aws-sigv4 signs it")
        .into_parts();
    instructions.apply_to_request_http1x(req);
}
