//! Clients built from `invoke-config` (an in-memory environment and files), against the
//! emulator on loopback

use std::io::Read as _;
use std::sync::Arc;

use invoke_blocking::{
    Client, CredentialsCache, CredentialsError, Error, Overrides, ProvideCredentials,
    ProvidedCredentials, SharedConfig,
};
use invoke_config::{Env, MemFs, RetryMode};
use invoke_emulator::Emulator;
use invoke_proto::{Credentials, InvokeParams};
use transport_suite::{Harness, KEY, SECRET};

fn shared(vars: &[(&str, &str)], config: &str) -> SharedConfig {
    let mut pairs = vec![
        ("HOME", "/home/test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    pairs.extend_from_slice(vars);
    let fs = MemFs::new().with("/home/test/.aws/config", config);
    SharedConfig::load(Env::from_pairs(pairs), &fs)
}

/// The profile's region, `max_attempts` and the environment's keys: suite case
/// `endpoint_region_and_attempts_come_from_the_config`; here what the suite cannot see
#[test]
fn overrides_win_over_the_profile_and_the_keys_name_their_provider() {
    // the emulator in the profile's region: it refuses signatures scoped to another one
    let h = Harness::start_in_region("eu-west-3");
    let url = h.endpoint().to_string();
    let shared = shared(
        &[
            ("AWS_ENDPOINT_URL_LAMBDA", &url),
            ("AWS_ACCESS_KEY_ID", KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
        "[default]\nregion = eu-west-3\nmax_attempts = 2\n",
    );
    let client = Client::from_config(&shared, &Overrides::new()).unwrap();
    let found = client.credentials().unwrap().expect("signs");
    assert_eq!(found.provider, "environment");
    // An explicit override wins over the profile, whatever the retry mode
    let client = Client::from_config(
        &shared,
        &Overrides::new()
            .max_attempts(1)
            .retry_mode(RetryMode::Adaptive),
    )
    .unwrap();
    let e = client
        .invoke(&InvokeParams::new("streamer-throttle", "{}"))
        .unwrap_err();
    assert_eq!(e.attempts(), Some(1), "{e}");
}

#[test]
fn credentials_are_looked_up_when_first_needed() {
    let h = Harness::start();
    let url = h.endpoint().to_string();
    // No credentials anywhere: building works, invoking says what was tried
    let shared = shared(
        &[("AWS_ENDPOINT_URL", &url), ("AWS_REGION", "us-east-1")],
        "",
    );
    let client = Client::from_config(&shared, &Overrides::new()).unwrap();
    let e = client.invoke(&InvokeParams::new("echo", "{}")).unwrap_err();
    let Error::Credentials(source) = &e else {
        panic!("{e:?}")
    };
    let text = source.to_string();
    assert!(
        text.contains("environment") && text.contains("imds"),
        "{text}"
    );
}

#[test]
fn settings_errors_are_typed() {
    let e = Client::from_config(&shared(&[], ""), &Overrides::new()).unwrap_err();
    assert!(matches!(e, Error::Endpoint(_)), "no region: {e:?}");
    let e = Client::from_config(
        &shared(&[("AWS_MAX_ATTEMPTS", "zero")], ""),
        &Overrides::new(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Settings(_)), "{e:?}");
    assert!(e.to_string().contains("AWS_MAX_ATTEMPTS"), "{e}");
    let bundle = "/nonexistent/invoke-blocking-ca.pem";
    let e = Client::from_config(
        &shared(
            &[("AWS_REGION", "us-east-1"), ("AWS_CA_BUNDLE", bundle)],
            "",
        ),
        &Overrides::new(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::CaBundle { .. }), "{e:?}");
    assert!(e.to_string().contains(bundle), "{e}");
}

#[test]
fn no_signing_reaches_an_endpoint_without_auth_only() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let open = runtime
        .block_on(
            Emulator::builder()
                .builtins()
                .no_auth()
                .quiet()
                .start("127.0.0.1:0".parse().unwrap()),
        )
        .unwrap();
    let unsigned = |url: &str| {
        let shared = shared(
            &[("AWS_ENDPOINT_URL", url), ("AWS_REGION", "us-east-1")],
            "",
        );
        Client::builder_from_config(&shared, &Overrides::new())
            .unwrap()
            .no_signing()
            .build()
            .unwrap()
    };
    let client = unsigned(&open.url());
    assert!(client.credentials().unwrap().is_none());
    let mut payload = String::new();
    client
        .invoke(&InvokeParams::new("echo", "{}"))
        .unwrap()
        .into_reader()
        .read_to_string(&mut payload)
        .unwrap();
    assert_eq!(payload, "{}");

    let h = Harness::start();
    let client = unsigned(&h.endpoint().to_string());
    let e = client.invoke(&InvokeParams::new("echo", "{}")).unwrap_err();
    let service = e.service_error().expect("a service error");
    assert_eq!(service.status, Some(403), "{e}");
    // a call with credentials of its own is signed all the same
    let signed =
        invoke_blocking::InvokeOptions::new().credentials(Credentials::new(KEY, SECRET, None));
    let mut payload = String::new();
    client
        .invoke_with(&InvokeParams::new("echo", "{}"), &signed)
        .unwrap()
        .into_reader()
        .read_to_string(&mut payload)
        .unwrap();
    assert_eq!(payload, "{}");
    runtime.block_on(open.shutdown());
}

/// A source of the suite's key that counts how often it is asked
fn counting_source(
    calls: &Arc<std::sync::atomic::AtomicU32>,
) -> impl Fn() -> Result<ProvidedCredentials, CredentialsError> + Send + Sync + 'static {
    let calls = Arc::clone(calls);
    move || {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(ProvidedCredentials::new(
            Credentials::new(KEY, SECRET, None),
            None,
            None,
            "mine",
        ))
    }
}

/// Invokes `echo` twice with `source`
fn invoke_twice(h: &Harness, source: impl ProvideCredentials + 'static) {
    let client = Client::builder(h.endpoint())
        .credentials_provider(source)
        .proxy_env(invoke_blocking::ProxyEnv::none())
        .build()
        .unwrap();
    for _ in 0..2 {
        let o = client.invoke(&InvokeParams::new("echo", "{}")).unwrap();
        assert!(o.last().is_some_and(|e| e.is_ok()));
    }
}

#[test]
fn a_custom_source_signs_every_attempt() {
    use std::sync::atomic::{AtomicU32, Ordering};

    let h = Harness::start();
    let calls = Arc::new(AtomicU32::new(0));
    invoke_twice(&h, counting_source(&calls));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "asked once per attempt");

    // Behind a cache it is asked once
    let calls = Arc::new(AtomicU32::new(0));
    let cache = CredentialsCache::new(counting_source(&calls), std::time::SystemTime::now);
    invoke_twice(&h, cache);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A provider of the caller's that blocks past the overall timeout cannot be interrupted,
/// but the call then fails with the deadline, sending nothing (doc of `credentials_provider`)
#[test]
fn a_provider_returning_after_the_deadline_fails_the_call_with_it() {
    use std::time::Duration;
    let h = Harness::start();
    let client = Client::builder(h.endpoint())
        .credentials_provider(|| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(ProvidedCredentials::new(
                Credentials::new(KEY, SECRET, None),
                None,
                None,
                "slow",
            ))
        })
        .timeouts(invoke_blocking::Timeouts::default().with_overall(Duration::from_millis(100)))
        .build()
        .unwrap();
    let e = client
        .invoke(&InvokeParams::new("streamer", "{}"))
        .unwrap_err();
    assert_eq!(
        e.transport_failure(),
        Some(invoke_proto::TransportFailure::Deadline),
        "{e}"
    );
    assert_eq!(h.invocations(), 0, "nothing was sent");
}

/// Two calls share one credentials load that hangs (a `credential_process` waiting for the
/// test): the call that came second waits for the first's load no longer than its own
/// deadline, and fails with it while the load goes on; the first call signs with what the
/// load returns once the command answers
#[cfg(unix)]
#[test]
fn a_call_waiting_for_another_calls_load_gives_up_at_its_own_deadline() {
    use std::sync::mpsc;
    use std::time::Duration;

    use invoke_blocking::InvokeOptions;
    use invoke_proto::TransportFailure;

    let h = Harness::start_in_region("eu-west-3");
    let url = h.endpoint().to_string();
    let dir = std::env::temp_dir().join(format!("invoke-blocking-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // the command says it started through one pipe, then waits for its answer on the other
    let (started, answer) = (dir.join("started"), dir.join("answer"));
    for fifo in [&started, &answer] {
        let _ = std::fs::remove_file(fifo);
        let made = std::process::Command::new("mkfifo").arg(fifo).status();
        assert!(made.unwrap().success(), "mkfifo {}", fifo.display());
    }
    let config = format!(
        "[default]\nregion = eu-west-3\ncredential_process = echo > \"{}\"; cat \"{}\"\n",
        started.display(),
        answer.display()
    );
    let client = Client::from_config(
        &shared(&[("AWS_ENDPOINT_URL_LAMBDA", &url)], &config),
        &Overrides::new(),
    )
    .unwrap();
    let echo = InvokeParams::new("echo", "{}");
    let call = |timeout: Duration| {
        let (client, echo) = (client.clone(), echo.clone());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let options = InvokeOptions::new().timeout(timeout);
            let result = client
                .invoke_with(&echo, &options)
                .and_then(invoke_blocking::Response::collect_payload);
            let _ = tx.send(result.map(|c| c.payload).map_err(|e| e.transport_failure()));
        });
        rx
    };
    let first = call(Duration::from_secs(60));
    let read_started = {
        let started = started.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(std::fs::read(started).is_ok()));
        rx
    };
    assert_eq!(
        read_started.recv_timeout(Duration::from_secs(30)),
        Ok(true),
        "the first call's load started its command"
    );
    let second = call(Duration::from_millis(300)).recv_timeout(Duration::from_secs(30));
    // the command's answer, written also when the second call waited for the load (the
    // test then ends)
    let answer_json =
        format!(r#"{{"Version":1,"AccessKeyId":"{KEY}","SecretAccessKey":"{SECRET}"}}"#);
    std::fs::write(&answer, answer_json).unwrap();
    assert_eq!(
        second.expect("the second call ended before the first call's load"),
        Err(Some(TransportFailure::Deadline))
    );
    let first = first
        .recv_timeout(Duration::from_secs(30))
        .expect("the first call ended");
    assert_eq!(first.expect("the first call signs").as_ref(), b"{}");
    let _ = std::fs::remove_dir_all(&dir);
}
