//! `Client::builder_from_config`: endpoint and region from the environment (or, with no
//! region configured, from instance metadata played by a loopback server), credentials from
//! the default chain (here the container provider, played by a loopback server) fetched
//! over hyper once for many concurrent invocations

mod support;

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use invoke_config::{Env, MemFs, Overrides, SharedConfig};
use invoke_proto::InvokeParams;
use invoke_tokio::{Client, ProxyEnv};
use tokio::io::AsyncReadExt as _;
use transport_suite::metadata::MetadataServer;
use transport_suite::{Harness, KEY, SECRET};

/// A container credentials endpoint on loopback that counts its requests
fn container_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&requests);
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { continue };
            support::read_request_head(&mut socket);
            count.fetch_add(1, Ordering::SeqCst);
            let body = format!(
                r#"{{"AccessKeyId":"{KEY}","SecretAccessKey":"{SECRET}","Token":"session-token","Expiration":"2100-01-01T00:00:00Z"}}"#
            );
            let _ = write!(
                socket,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}/credentials"), requests)
}

/// A current-thread runtime (for the configuration lookups, apart from the one a client
/// then runs on)
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A client configured from `env` alone (no shared files)
fn client_from(env: Env) -> Client {
    let fs = Arc::new(MemFs::new());
    let shared = SharedConfig::load(env, &*fs);
    current_thread()
        .block_on(Client::builder_from_config(&shared, &Overrides::new()))
        .expect("config")
        .file_reader(fs)
        .proxy_env(ProxyEnv::none())
        .build()
        .expect("client")
}

#[test]
fn credentials_from_the_default_chain_load_once() {
    let harness = Harness::start();
    let (uri, requests) = container_endpoint();
    let env = Env::from_pairs([
        ("HOME", "/nonexistent-home"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", harness.endpoint().to_string().as_str()),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_MAX_ATTEMPTS", "2"),
    ]);
    let client = client_from(env);
    let runtime = support::runtime();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let payload = format!(r#"{{"i":{i}}}"#);
                    let response = client
                        .invoke(&InvokeParams::new("echo", payload.clone()))
                        .await
                        .expect("signed with the container's credentials");
                    let mut echoed = String::new();
                    response
                        .into_async_read()
                        .read_to_string(&mut echoed)
                        .await
                        .expect("read");
                    assert_eq!(echoed, payload);
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        // what the client signs with, from its cache
        let shown = client.credentials().await.expect("credentials");
        let shown = shown.expect("a signing client");
        assert_eq!(shown.provider, "container");
        assert_eq!(shown.credentials.access_key_id(), KEY);
        assert_eq!(shown.credentials.session_token(), Some("session-token"));
    });
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "one load for 50 invocations and the look at them"
    );
}

#[test]
fn a_chain_without_credentials_is_a_credentials_error() {
    let harness = Harness::start();
    let env = Env::from_pairs([
        ("HOME", "/nonexistent-home"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", harness.endpoint().to_string().as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let client = client_from(env);
    let runtime = current_thread();
    let error = runtime
        .block_on(client.invoke(&InvokeParams::new("echo", "{}")))
        .expect_err("no credentials");
    assert!(
        matches!(error, invoke_tokio::Error::Credentials(_)),
        "{error:?}"
    );
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        source.as_deref().is_some_and(|s| s.contains("environment")),
        "{error}: {source:?}"
    );
}

#[test]
fn unsigned_requests_reach_an_endpoint_without_auth_only() {
    let runtime = support::runtime();
    let open = runtime
        .block_on(
            invoke_emulator::Emulator::builder()
                .builtins()
                .no_auth()
                .quiet()
                .start("127.0.0.1:0".parse().expect("addr")),
        )
        .expect("emulator");
    let harness = Harness::start();
    for (url, open_door) in [(open.url(), true), (harness.endpoint().to_string(), false)] {
        let env = Env::from_pairs([
            ("HOME", "/nonexistent-home"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", url.as_str()),
        ]);
        let shared = SharedConfig::load(env, &MemFs::new());
        let client = runtime
            .block_on(Client::builder_from_config(&shared, &Overrides::new()))
            .expect("config")
            .no_signing()
            .proxy_env(ProxyEnv::none())
            .build()
            .expect("client");
        let result = runtime.block_on(async {
            let mut payload = String::new();
            client
                .invoke(&InvokeParams::new("echo", "{}"))
                .await?
                .into_async_read()
                .read_to_string(&mut payload)
                .await
                .expect("read");
            Ok::<_, invoke_tokio::Error>(payload)
        });
        match result {
            Ok(payload) if open_door => assert_eq!(payload, "{}"),
            Err(e) if !open_door => {
                assert_eq!(e.service_error().and_then(|s| s.status), Some(403), "{e}");
            }
            other => panic!("open: {open_door}, {other:?}"),
        }
        // a call with credentials of its own is signed all the same, and goes through
        let signed = invoke_tokio::InvokeOptions::new()
            .credentials(invoke_proto::Credentials::new(KEY, SECRET, None));
        let payload = runtime.block_on(async {
            let mut payload = String::new();
            client
                .invoke_with(&InvokeParams::new("echo", "{}"), &signed)
                .await
                .expect("signed by the call")
                .into_async_read()
                .read_to_string(&mut payload)
                .await
                .expect("read");
            payload
        });
        assert_eq!(payload, "{}", "open: {open_door}");
    }
    runtime.block_on(open.shutdown());
}

#[test]
fn with_metadata_disabled_and_no_region_there_is_no_endpoint() {
    let server = MetadataServer::start();
    let env = Env::from_pairs([
        ("HOME", "/nonexistent-home"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url().as_str()),
    ]);
    let shared = SharedConfig::load(env, &MemFs::new());
    let error = current_thread()
        .block_on(Client::builder_from_config(&shared, &Overrides::new()))
        .expect_err("no region");
    assert!(
        matches!(error, invoke_tokio::Error::Endpoint(_)),
        "{error:?}"
    );
    assert!(
        server.requests().is_empty(),
        "metadata asked while disabled"
    );
}
