//! The opt-in TLS listener: a client that trusts the generated CA streams over https, one that
//! does not gets a certificate error

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use invoke_emulator::Emulator;
use invoke_proto::{Event, InvokeParams, InvokeStream};
use support::{body_of, request};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{CertificateError, ClientConfig, RootCertStore};

async fn start(builder: invoke_emulator::Builder) -> Emulator {
    builder
        .builtins()
        .no_auth()
        .quiet()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn connector(roots: RootCertStore) -> TlsConnector {
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The roots in a PEM file, as `AWS_CA_BUNDLE` names one
fn roots_from(path: &std::path::Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// `count` streamed over https with `connector`; the events, or the handshake error
async fn count_over_tls(
    emu: &Emulator,
    connector: &TlsConnector,
    host: &'static str,
) -> std::io::Result<Vec<Event>> {
    let tcp = TcpStream::connect(emu.addr()).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from(host).unwrap(), tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = request(emu, &InvokeParams::new("count", r#"{"n":3,"size":5}"#));
    let resp = sender.send_request(req.map(Full::new)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = body_of(resp.into_body()).await;
    let mut s = InvokeStream::new();
    s.feed(body);
    let mut events = Vec::new();
    while let Some(e) = s.next_event().unwrap() {
        events.push(e);
    }
    s.finish().unwrap();
    Ok(events)
}

#[tokio::test]
async fn streams_over_https_to_a_client_that_trusts_the_ca() {
    let emu = start(Emulator::builder().tls()).await;
    assert!(emu.url().starts_with("https://127.0.0.1:"), "{}", emu.url());
    let path = emu.ca_pem_path().unwrap().to_owned();
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(Some(pem.as_str()), emu.ca_pem());
    let trusting = connector(roots_from(&path));
    for host in ["127.0.0.1", "localhost"] {
        let events = count_over_tls(&emu, &trusting, host).await.unwrap();
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[0], Event::PayloadChunk(Bytes::from_static(b"abcde")));
        assert_eq!(events[1], Event::PayloadChunk(Bytes::from_static(b"fghij")));
        assert!(matches!(&events[3], Event::InvokeComplete(c) if !c.is_error()));
    }
    // a name the certificate does not cover is refused even with the CA trusted
    let err = count_over_tls(&emu, &trusting, "example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(
            certificate_error(&err),
            Some(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{err:?}"
    );
    // the temporary CA file goes with the emulator
    emu.shutdown().await;
    assert!(!path.exists(), "{}", path.display());
}

/// Another loopback address is named by the certificate too
#[tokio::test]
async fn the_certificate_names_the_address_bound() {
    let builder = || Emulator::builder().builtins().no_auth().quiet().tls();
    let emu = builder()
        .start("127.0.0.2:0".parse().unwrap())
        .await
        .unwrap();
    assert!(emu.url().starts_with("https://127.0.0.2:"), "{}", emu.url());
    let trusting = connector(roots_from(emu.ca_pem_path().unwrap()));
    let events = count_over_tls(&emu, &trusting, "127.0.0.2").await.unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_client_without_the_ca_gets_a_certificate_error() {
    let dir = std::env::temp_dir().join(format!("invoke-emulator-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    let emu = start(Emulator::builder().tls_ca_file(&ca_file)).await;
    assert_eq!(emu.ca_pem_path(), Some(ca_file.as_path()));
    let err = count_over_tls(&emu, &connector(RootCertStore::empty()), "127.0.0.1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            certificate_error(&err),
            Some(CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
    // a CA generated by another emulator is no better
    let other = start(Emulator::builder().tls()).await;
    let err = count_over_tls(
        &emu,
        &connector(roots_from(other.ca_pem_path().unwrap())),
        "127.0.0.1",
    )
    .await
    .unwrap_err();
    assert!(certificate_error(&err).is_some(), "{err:?}");
    // a file the caller chose stays after the stop
    emu.shutdown().await;
    assert!(ca_file.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

fn certificate_error(e: &std::io::Error) -> Option<&CertificateError> {
    match e.get_ref()?.downcast_ref()? {
        tokio_rustls::rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    }
}
