//! Signing key derivation and the final signature (steps 3 and 4 of the signing process)

use std::sync::Mutex;

use zeroize::Zeroizing;

#[cfg(not(any(feature = "rustcrypto", feature = "ring")))]
compile_error!(
    "invoke-proto needs a SHA-256 backend: enable the `rustcrypto` or the `ring` feature"
);

/// A derived SigV4 signing key (`kSigning`), wiped on drop
pub(crate) type SigningKey = Zeroizing<[u8; 32]>;

/// HMAC-SHA256 under one key, with the key's two padded blocks already hashed: each MAC
/// then costs only the blocks of its message plus one
///
/// Like the derived key it comes from, this state can sign for its scope; it is kept only in
/// the [`KeyCache`] next to that key (neither backend wipes it when dropped).
#[derive(Clone)]
pub(crate) struct MacKey(
    #[cfg(feature = "ring")] ring::hmac::Key,
    #[cfg(all(feature = "rustcrypto", not(feature = "ring")))] hmac::Hmac<sha2::Sha256>,
);

impl MacKey {
    /// The HMAC-SHA256 state for `key`
    #[cfg(feature = "ring")]
    pub(crate) fn new(key: &[u8]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key))
    }

    /// The HMAC-SHA256 state for `key`
    #[cfg(all(feature = "rustcrypto", not(feature = "ring")))]
    pub(crate) fn new(key: &[u8]) -> Self {
        use hmac::KeyInit;
        Self(
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
                .expect("hmac accepts keys of any length"),
        )
    }

    /// HMAC-SHA256 of `data`
    #[cfg(feature = "ring")]
    pub(crate) fn sign(&self, data: &[u8]) -> [u8; 32] {
        to_array(ring::hmac::sign(&self.0, data).as_ref())
    }

    /// HMAC-SHA256 of `data`
    #[cfg(all(feature = "rustcrypto", not(feature = "ring")))]
    pub(crate) fn sign(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac = self.0.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// HMAC-SHA256 of `data` under `key`
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    MacKey::new(key).sign(data)
}

/// SHA-256 of `data` (RustCrypto backend)
#[cfg(all(feature = "rustcrypto", not(feature = "ring")))]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// SHA-256 of `data` (ring backend)
#[cfg(feature = "ring")]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    to_array(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// The 32 bytes of a SHA-256 sized output
#[cfg(feature = "ring")]
fn to_array(out: &[u8]) -> [u8; 32] {
    let mut a = [0; 32];
    a.copy_from_slice(out);
    a
}

/// Lower-case hex of a SHA-256 hash, without allocating
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 64];
    for (i, &b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// Appends the lower-case hex of `bytes`
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for chunk in bytes.chunks(32) {
        let mut digits = [0; 64];
        for (pair, &b) in digits.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        out.push_str(std::str::from_utf8(&digits[..2 * chunk.len()]).expect("hex digits"));
    }
}

/// Lower-case hex of `bytes`
#[cfg(test)]
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

/// The last signing key derived from one secret, for the scope it belongs to
///
/// A key only depends on the secret, the scope date, the region and the service, so one
/// derivation (four HMACs) serves every request of a day. Lives in
/// [`Credentials`](crate::Credentials), whose secret never changes. The key is kept as its
/// HMAC state ([`MacKey`]), so a signature does not hash the padded key again.
#[derive(Default)]
pub(crate) struct KeyCache(Mutex<Option<CachedKey>>);

struct CachedKey {
    date: [u8; 8],
    region: String,
    service: String,
    key: MacKey,
}

impl KeyCache {
    /// The HMAC state of [`signing_key`], derived again only when the scope differs from
    /// the last call's
    pub(crate) fn get(&self, secret: &str, yyyymmdd: &str, region: &str, service: &str) -> MacKey {
        let matches = |c: &CachedKey| {
            c.date.as_slice() == yyyymmdd.as_bytes() && c.region == region && c.service == service
        };
        // a poisoned lock only means another thread panicked mid-update: skip the cache
        if let Ok(cached) = self.0.lock()
            && let Some(c) = cached.as_ref().filter(|c| matches(c))
        {
            return c.key.clone();
        }
        let key = MacKey::new(&*signing_key(secret, yyyymmdd, region, service));
        if let (Ok(mut cached), Ok(date)) = (self.0.lock(), yyyymmdd.as_bytes().try_into()) {
            match cached.as_mut() {
                // reuse the strings' allocations when only the date moved on
                Some(c) if c.region == region && c.service == service => {
                    c.date = date;
                    c.key = key.clone();
                }
                _ => {
                    *cached = Some(CachedKey {
                        date,
                        region: region.to_owned(),
                        service: service.to_owned(),
                        key: key.clone(),
                    });
                }
            }
        }
        key
    }
}

/// The signature: lower-case hex of `HMAC(kSigning, string_to_sign)`
pub(crate) fn signature(key: &MacKey, string_to_sign: &str) -> [u8; 64] {
    hex32(&key.sign(string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::{KeyCache, MacKey, hex, hex32, sha256, signature, signing_key};

    #[test]
    fn empty_payload_hash() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(hex32(&sha256(b"")).as_slice(), hex(&sha256(b"")).as_bytes());
    }

    #[test]
    fn cache_returns_the_key_of_the_asked_scope() {
        let cache = KeyCache::default();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        for (date, region, service) in [
            ("20240115", "us-east-1", "lambda"),
            ("20240115", "us-east-1", "lambda"),
            ("20240116", "us-east-1", "lambda"),
            // one part of the scope moves, then back: a cache that kept the old names with
            // the new key would answer the way back with the wrong key
            ("20240116", "eu-west-1", "lambda"),
            ("20240116", "us-east-1", "lambda"),
            ("20240116", "us-east-1", "service"),
            ("20240116", "us-east-1", "lambda"),
            ("20240116", "eu-west-1", "service"),
            ("20240115", "us-east-1", "lambda"),
        ] {
            assert_eq!(
                cache.get(secret, date, region, service).sign(b"data"),
                MacKey::new(&*signing_key(secret, date, region, service)).sign(b"data"),
                "{date} {region} {service}"
            );
        }
    }

    /// The key and signature of the request in `sigv4::tests`
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
            signature(&MacKey::new(&*key), sts).as_slice(),
            b"4a079fafc764010137cb578d64e5d4450a28b09ac40dd6a61d4e50aa275cadb3"
        );
    }
}
