//! Signing key derivation and the final signature (protocol.md §5.2 steps 3 and 4)

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A derived SigV4 signing key (`kSigning`), wiped on drop
pub(crate) type SigningKey = Zeroizing<[u8; 32]>;

/// HMAC-SHA256 of `data` under `key`
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SHA-256 of `data`
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Appends the lower-case hex of `bytes`
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

/// Lower-case hex of `bytes`
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// `kSigning` for `secret` on the scope date `yyyymmdd` in `region` for `service`
///
/// `kDate = HMAC("AWS4" + secret, date)`, `kRegion = HMAC(kDate, region)`,
/// `kService = HMAC(kRegion, service)`, `kSigning = HMAC(kService, "aws4_request")`.
pub(crate) fn signing_key(secret: &str, yyyymmdd: &str, region: &str, service: &str) -> SigningKey {
    let mut first = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    first.extend_from_slice(b"AWS4");
    first.extend_from_slice(secret.as_bytes());
    let k_date = Zeroizing::new(hmac(&first, yyyymmdd.as_bytes()));
    let k_region = Zeroizing::new(hmac(&*k_date, region.as_bytes()));
    let k_service = Zeroizing::new(hmac(&*k_region, service.as_bytes()));
    Zeroizing::new(hmac(&*k_service, b"aws4_request"))
}

/// The signature: lower-case hex of `HMAC(kSigning, string_to_sign)`
pub(crate) fn signature(key: &SigningKey, string_to_sign: &str) -> String {
    hex(&hmac(&**key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::{hex, sha256, signature, signing_key};

    #[test]
    fn empty_payload_hash() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The key and signature of protocol.md §5.5
    #[test]
    fn protocol_example_key_and_signature() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20240115",
            "us-east-1",
            "lambda",
        );
        assert_eq!(
            hex(&*key),
            "a6f54bc6c0e238bafd7f38af4142a8c0e883a3af6a1fbf5a3fca31714813530a"
        );
        let sts = "AWS4-HMAC-SHA256\n20240115T120000Z\n20240115/us-east-1/lambda/aws4_request\n\
                   03cf12776a5b9f01c986c829e75b3c31760481ff6252420c9c7c015798c74d13";
        assert_eq!(
            signature(&key, sts),
            "4a079fafc764010137cb578d64e5d4450a28b09ac40dd6a61d4e50aa275cadb3"
        );
    }
}
