//! Opt-in https: a certificate authority and a server certificate generated at start, served
//! with rustls on the `ring` provider

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Where the CA certificate goes
#[derive(Debug, Clone)]
pub(crate) enum CaFile {
    /// A new file in the temporary directory, removed when the emulator stops
    Temporary,
    /// This path, created or replaced, left in place
    At(PathBuf),
}

/// The CA certificate of a TLS emulator, as PEM, and the file holding it
#[derive(Debug)]
pub(crate) struct Ca {
    pub(crate) pem: String,
    pub(crate) path: PathBuf,
    /// The file is the emulator's own, removed on drop
    temporary: bool,
}

impl Drop for Ca {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("cannot set up TLS: {e}"))
}

/// A fresh CA, a server certificate it signs for `localhost`, `127.0.0.1`, `::1` and `ip`,
/// the acceptor serving that certificate, and the CA written to `file`
pub(crate) fn setup(ip: IpAddr, file: &CaFile) -> io::Result<(TlsAcceptor, Ca)> {
    let (acceptor, pem) = loopback_tls(ip)?;
    let (path, temporary) = match file {
        CaFile::At(path) => {
            std::fs::write(path, &pem).map_err(|e| ca_file_error(path, &e))?;
            (path.clone(), false)
        }
        CaFile::Temporary => (write_temporary(&pem)?, true),
    };
    let ca = Ca {
        pem,
        path,
        temporary,
    };
    Ok((acceptor, ca))
}

/// A TLS acceptor (rustls, `ring` provider) for a local server, with a certificate authority
/// generated for it: the server certificate it signs names `localhost`, `127.0.0.1`, `::1`,
/// and `ip` (any other loopback address too) unless it is unspecified; returns the acceptor and the CA
/// certificate as PEM, for clients to trust
///
/// The emulator's [`tls`](crate::Builder::tls) listener uses it; so can other test peers
/// (a proxy reached over https, for example).
///
/// ```
/// let (_acceptor, ca_pem) = invoke_emulator::loopback_tls([127, 0, 0, 1].into()).unwrap();
/// assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
/// ```
///
/// # Errors
///
/// The keys or certificates could not be made.
pub fn loopback_tls(ip: IpAddr) -> io::Result<(TlsAcceptor, String)> {
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("lambda-stream emulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(other)?)
        .map_err(other)?;

    let mut leaf_params = CertificateParams::new(server_names(ip)).map_err(other)?;
    leaf_params.distinguished_name = name("localhost");
    let leaf_key = KeyPair::generate().map_err(other)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(other)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .map_err(other)?;
    Ok((TlsAcceptor::from(Arc::new(config)), ca.pem()))
}

/// The names the server certificate holds: `localhost`, `127.0.0.1`, `::1`, and the address
/// bound (another loopback one, such as 127.0.0.2, included) unless it is unspecified
fn server_names(ip: IpAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
    ];
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    names
}

/// A failed write of the CA file, naming the file
fn ca_file_error(path: &Path, e: &io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot write the CA certificate to {}: {e}", path.display()),
    )
}

fn name(common_name: &str) -> DistinguishedName {
    let mut n = DistinguishedName::new();
    n.push(DnType::CommonName, common_name);
    n
}

/// Writes `pem` to a new file in the temporary directory (never through an existing one)
fn write_temporary(pem: &str) -> io::Result<PathBuf> {
    write_new(&std::env::temp_dir(), pem, || {
        format!(
            "invoke-emulator-ca-{}-{}.pem",
            std::process::id(),
            crate::ids::random_hex(12)
        )
    })
}

/// Writes `pem` to a new file in `dir`, under the first of (at most 8) names from `name`
/// that no file has
fn write_new(dir: &Path, pem: &str, mut name: impl FnMut() -> String) -> io::Result<PathBuf> {
    for _ in 0..8 {
        let path = dir.join(name());
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return write_all(f, &path, pem).map(|()| path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ca_file_error(&path, &e)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for the CA file in the temporary directory",
    ))
}

fn write_all(mut f: File, path: &Path, pem: &str) -> io::Result<()> {
    f.write_all(pem.as_bytes()).map_err(|e| {
        let _ = std::fs::remove_file(path);
        ca_file_error(path, &e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_certificate_names_loopback_and_the_address_bound() {
        let names = |ip: &str| server_names(ip.parse().unwrap());
        let loopback = ["localhost", "127.0.0.1", "::1"];
        for ip in ["127.0.0.1", "::1", "0.0.0.0", "::"] {
            assert_eq!(names(ip), loopback, "{ip}");
        }
        assert_eq!(
            names("127.0.0.2"),
            ["localhost", "127.0.0.1", "::1", "127.0.0.2"]
        );
    }

    #[test]
    fn the_ca_certificate_is_named() {
        use base64::Engine as _;
        let (_, pem) = loopback_tls(Ipv4Addr::LOCALHOST.into()).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let cn = b"lambda-stream emulator CA";
        assert!(der.windows(cn.len()).any(|w| w == cn));
    }

    /// A directory of its own under the temporary one, removed on drop
    struct Dir(PathBuf);

    impl Dir {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "invoke-emulator-tls-{test}-{}-{}",
                std::process::id(),
                crate::ids::random_hex(8)
            ));
            std::fs::create_dir(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_taken_name_is_passed_over_and_never_written_through() {
        let dir = Dir::new("taken");
        std::fs::write(dir.0.join("a.pem"), "theirs").unwrap();
        let mut names = ["a.pem", "b.pem"].into_iter();
        let path = write_new(&dir.0, "ours", || names.next().unwrap().to_owned()).unwrap();
        assert_eq!(path, dir.0.join("b.pem"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "ours");
        assert_eq!(
            std::fs::read_to_string(dir.0.join("a.pem")).unwrap(),
            "theirs"
        );
        // every name taken: an error after 8 tries
        let mut tries = 0;
        let e = write_new(&dir.0, "ours", || {
            tries += 1;
            "a.pem".to_owned()
        })
        .unwrap_err();
        assert_eq!((e.kind(), tries), (io::ErrorKind::AlreadyExists, 8));
        assert!(e.to_string().contains("no free name"), "{e}");
    }

    #[test]
    fn any_other_failure_ends_at_once_naming_the_file() {
        let dir = Dir::new("missing");
        let missing = dir.0.join("missing");
        let mut tries = 0;
        let e = write_new(&missing, "ours", || {
            tries += 1;
            "ca.pem".to_owned()
        })
        .unwrap_err();
        assert_eq!((e.kind(), tries), (io::ErrorKind::NotFound, 1));
        let shown = e.to_string();
        assert!(
            shown.contains(&missing.join("ca.pem").display().to_string()),
            "{shown}"
        );
    }
}
