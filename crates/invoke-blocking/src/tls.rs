//! TLS: rustls on the `ring` provider, the system's trust store and configured CA bundles

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::error::Error;

/// The system's trust store as `rustls-native-certs` reads it, once per process
///
/// Unreadable entries are skipped (and logged at debug); an empty store only means that
/// https endpoints need a CA bundle.
fn system_roots() -> Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "system trust store: entry skipped");
        }
        if found.certs.is_empty() {
            tracing::warn!("the system trust store has no certificate; https needs a CA bundle");
        }
        Arc::new(
            found
                .certs
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect(),
        )
    }))
}

/// The certificates of a PEM bundle; each must be usable as a trust anchor
fn read_bundle(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let bad = |reason: String| Error::CaBundle {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    let mut check = RootCertStore::empty();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| bad(format!("not valid PEM: {e}")))? {
            check
                .add(CertificateDer::from(c.der()))
                .map_err(|e| bad(format!("certificate {}: {e}", certs.len() + 1)))?;
            certs.push(c.to_owned());
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

/// The TLS settings of every agent of this crate: `ring`, the system's roots and the
/// certificates of `bundles`
pub(crate) fn config(bundles: &[PathBuf]) -> Result<TlsConfig, Error> {
    let system = system_roots();
    let mut roots: Vec<Certificate<'static>> = Vec::with_capacity(system.len());
    roots.extend(system.iter().cloned());
    for path in bundles {
        roots.extend(read_bundle(path)?);
    }
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "invoke-blocking-tls-{}-{name}.pem",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn a_bad_bundle_is_an_error_naming_the_file() {
        let missing = std::env::temp_dir().join("invoke-blocking-no-such-bundle.pem");
        let empty = temp("empty", b"hello\n");
        let garbage = temp(
            "garbage",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        for path in [&missing, &empty, &garbage] {
            let e = config(std::slice::from_ref(path)).unwrap_err();
            assert!(matches!(e, Error::CaBundle { .. }), "{e:?}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        let _ = std::fs::remove_file(empty);
        let _ = std::fs::remove_file(garbage);
    }
}
