//! What the client logs through `tracing` about credential exchanges (the invocation's
//! spans are a case of the shared suite, `transport-suite`)

use invoke_blocking::Client;
use invoke_proto::InvokeParams;
use transport_suite::Harness;

#[test]
fn credential_exchanges_are_traced_without_their_secrets() {
    use invoke_blocking::{Overrides, SharedConfig};
    use invoke_config::{Env, MemFs};
    use transport_suite::metadata::{self, MetadataServer};

    let server = MetadataServer::start();
    let (key, secret) = metadata::CONTAINER_KEY;
    let harness = Harness::start_accepting(key, secret);
    let env = Env::from_pairs([
        ("HOME", "/home/none".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL_LAMBDA", harness.endpoint().to_string()),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}{}", server.url(), metadata::CONTAINER_PATH),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            metadata::CONTAINER_TOKEN.to_owned(),
        ),
    ]);
    let client =
        Client::from_config(&SharedConfig::load(env, &MemFs::new()), &Overrides::new()).unwrap();
    let recorder = transport_suite::trace::Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        client
            .invoke(&InvokeParams::new("echo", "{}"))
            .unwrap()
            .for_each(|e| assert!(e.is_ok()));
    });
    let text = recorder.text();
    assert!(
        text.contains(r#"span credentials_request method=GET host="127.0.0.1""#)
            && text.contains(metadata::CONTAINER_PATH)
            && text.contains("status=200"),
        "{text}"
    );
    for leak in [secret, metadata::CONTAINER_TOKEN, "token-of-"] {
        assert!(!text.contains(leak), "{leak} leaked into:\n{text}");
    }
}
