//! https: a TLS terminator on loopback (a self-signed certificate made at start, written to
//! a PEM file) in front of the emulator; trusted through the CA bundle, refused without it,
//! and reached through an HTTP proxy's `CONNECT` tunnel

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use invoke_proto::{Credentials, InvokeParams, TransportFailure};
use invoke_proto::{EndpointConfig, resolve_endpoint};
use invoke_tokio::{Client, ClientBuilder, ProxyEnv};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use transport_suite::proxy::Tinyproxy;
use transport_suite::{Harness, KEY, SECRET};

/// A TLS listener forwarding to `target`, and the PEM file of its certificate
async fn tls_terminator(target: SocketAddr) -> (SocketAddr, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let pem = std::env::temp_dir().join(format!(
        "invoke-tokio-tls-{}-{}.pem",
        std::process::id(),
        target.port()
    ));
    std::fs::write(&pem, cert.cert.pem()).expect("write the CA bundle");
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (addr, pem)
}

fn builder(addr: SocketAddr) -> ClientBuilder {
    let endpoint = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(format!("https://{addr}")),
    )
    .expect("endpoint");
    Client::builder(endpoint).credentials(Credentials::new(KEY, SECRET, None))
}

async fn payload(client: &Client) -> Result<Vec<u8>, invoke_tokio::Error> {
    let response = client
        .invoke(&InvokeParams::new("count", r#"{"n":100,"size":100}"#))
        .await?;
    let mut bytes = Vec::new();
    response
        .into_async_read()
        .read_to_end(&mut bytes)
        .await
        .expect("read");
    Ok(bytes)
}

fn expected() -> Vec<u8> {
    (0..100 * 100_usize)
        .map(|i| b'a' + (i % 26) as u8)
        .collect()
}

#[test]
fn https_with_the_ca_bundle_and_a_clear_error_without() {
    let harness = Harness::start();
    support::runtime().block_on(async {
        let (addr, pem) = tls_terminator(harness.address()).await;
        let trusted = builder(addr)
            .ca_bundle(&pem)
            .proxy_env(ProxyEnv::none())
            .build()
            .expect("client");
        assert!(payload(&trusted).await.expect("https") == expected());

        let untrusted = builder(addr)
            .proxy_env(ProxyEnv::none())
            .build()
            .expect("client");
        let e = payload(&untrusted).await.expect_err("an unknown issuer");
        assert_eq!(e.transport_failure(), Some(TransportFailure::Tls), "{e}");
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        assert!(message.contains("certificate"), "{message}");
        assert_eq!(e.attempts(), Some(1), "a certificate error is not retried");
        let _ = std::fs::remove_file(pem);
    });
}

#[test]
fn https_through_a_connect_tunnel() {
    let Some(mut proxy) = Tinyproxy::start() else {
        return;
    };
    let harness = Harness::start();
    let addr = support::runtime().block_on(async {
        let (addr, pem) = tls_terminator(harness.address()).await;
        let client = builder(addr)
            .ca_bundle(&pem)
            .proxy_env(ProxyEnv::from_vars([("HTTPS_PROXY", proxy.url())]))
            .build()
            .expect("client");
        assert!(payload(&client).await.expect("https via CONNECT") == expected());
        let _ = std::fs::remove_file(pem);
        addr
    });
    assert!(
        proxy.wait_for_request(&format!("CONNECT {addr}")),
        "the tunnel went through the proxy; its log:\n{}",
        proxy.log()
    );
}
