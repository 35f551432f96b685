//! Explicit > environment > profile, for every client setting

use invoke_config::{Env, MemFs, Overrides, Platform, SharedConfig, Source};
use proptest::prelude::*;

const CONFIG: &str = "/home/.aws/config";

fn shared(env: &[(&str, &str)], config: &str) -> SharedConfig {
    let mut pairs = vec![("HOME", "/home")];
    pairs.extend_from_slice(env);
    SharedConfig::load_with(
        Env::from_pairs(pairs),
        &MemFs::new().with(CONFIG, config),
        Platform::Unix,
        None,
    )
}

/// Each source of the endpoint, on or off: the highest one present wins
#[test]
fn endpoint_precedence_table() {
    let profile = "[default]\nendpoint_url = http://profile\nservices = s\n";
    let services = "[services s]\nlambda =\n  endpoint_url = http://services\n";
    for mask in 0u32..64 {
        let on = |bit: u32| mask & (1 << bit) != 0;
        let mut env = Vec::new();
        if on(1) {
            env.push(("AWS_ENDPOINT_URL_LAMBDA", "http://env-lambda"));
        }
        if on(2) {
            env.push(("AWS_ENDPOINT_URL", "http://env-global"));
        }
        let mut config = String::from(if on(4) {
            profile
        } else {
            "[default]\nservices = s\n"
        });
        if on(3) {
            config.push_str(services);
        }
        if on(5) {
            env.push(("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"));
        }
        let mut overrides = Overrides::new();
        if on(0) {
            overrides = overrides.endpoint_url("http://explicit");
        }
        let got = shared(&env, &config)
            .resolve(&overrides)
            .unwrap()
            .endpoint_url;
        let want = if on(0) {
            Some("http://explicit")
        } else if on(5) {
            None
        } else if on(1) {
            Some("http://env-lambda")
        } else if on(2) {
            Some("http://env-global")
        } else if on(3) {
            Some("http://services")
        } else if on(4) {
            Some("http://profile")
        } else {
            None
        };
        assert_eq!(
            got.as_ref().map(|s| s.value.as_str()),
            want,
            "mask {mask:06b}"
        );
    }
}

#[test]
fn ignore_switch_in_profile_and_false_values() {
    let config =
        "[default]\nendpoint_url = http://profile\nignore_configured_endpoint_urls = true\n";
    let c = shared(&[("AWS_ENDPOINT_URL", "http://env")], config)
        .resolve(&Overrides::new())
        .unwrap();
    assert_eq!(c.endpoint_url, None);
    // the environment's `false` beats the profile's `true`
    let c = shared(
        &[
            ("AWS_ENDPOINT_URL", "http://env"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"),
        ],
        config,
    )
    .resolve(&Overrides::new())
    .unwrap();
    assert_eq!(c.endpoint_url.unwrap().value, "http://env");
}

proptest! {
    /// Region: explicit > AWS_REGION > AWS_DEFAULT_REGION > profile, for any subset
    #[test]
    fn region_precedence(explicit in any::<bool>(), region in any::<bool>(), default_region in any::<bool>(), profile in any::<bool>()) {
        let mut env = Vec::new();
        if region { env.push(("AWS_REGION", "env-region-1")); }
        if default_region { env.push(("AWS_DEFAULT_REGION", "env-default-1")); }
        let config = if profile { "[default]\nregion = profile-region-1\n" } else { "" };
        let mut o = Overrides::new();
        if explicit { o = o.region("explicit-1"); }
        let got = shared(&env, config).resolve(&o).unwrap().region;
        let want = if explicit { Some(("explicit-1", Source::Explicit)) }
            else if region { Some(("env-region-1", Source::Env("AWS_REGION"))) }
            else if default_region { Some(("env-default-1", Source::Env("AWS_DEFAULT_REGION"))) }
            else if profile { Some(("profile-region-1", Source::Profile { profile: "default".into(), key: "region" })) }
            else { None };
        prop_assert_eq!(got.map(|s| (s.value, s.source)), want.map(|(v, s)| (v.to_owned(), s)));
    }

    /// FIPS and dual-stack: explicit > env > profile, each value honoured (false too)
    #[test]
    fn fips_dual_stack_precedence(
        explicit in proptest::option::of(any::<bool>()),
        env in proptest::option::of(any::<bool>()),
        profile in proptest::option::of(any::<bool>()),
        dual in any::<bool>(),
    ) {
        let (var, key) = if dual {
            ("AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint")
        } else {
            ("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint")
        };
        let env_value = env.map(|b| if b { "TRUE" } else { "false" });
        let mut env_pairs = Vec::new();
        if let Some(v) = env_value { env_pairs.push((var, v)); }
        let config = profile.map_or(String::new(), |b| format!("[default]\n{key} = {b}\n"));
        let mut o = Overrides::new();
        if let Some(b) = explicit { o = if dual { o.use_dual_stack(b) } else { o.use_fips(b) }; }
        let c = shared(&env_pairs, &config).resolve(&o).unwrap();
        let got = if dual { c.use_dual_stack.value } else { c.use_fips.value };
        prop_assert_eq!(got, explicit.or(env).or(profile).unwrap_or(false));
        let ec = c.endpoint_config();
        prop_assert_eq!(if dual { ec.use_dual_stack } else { ec.use_fips }, got);
    }
}

#[test]
fn retry_and_ca_bundle() {
    let config =
        "[default]\nmax_attempts = 5\nretry_mode = adaptive\nca_bundle = /etc/profile.pem\n";
    let c = shared(&[], config).resolve(&Overrides::new()).unwrap();
    assert_eq!(c.max_attempts.value, 5);
    assert_eq!(c.retry_mode.value, invoke_config::RetryMode::Adaptive);
    assert_eq!(
        c.ca_bundle.unwrap().value,
        std::path::PathBuf::from("/etc/profile.pem")
    );
    let c = shared(
        &[
            ("AWS_MAX_ATTEMPTS", "2"),
            ("AWS_RETRY_MODE", "legacy"),
            ("AWS_CA_BUNDLE", "/env.pem"),
        ],
        config,
    )
    .resolve(&Overrides::new())
    .unwrap();
    assert_eq!(c.max_attempts.value, 2);
    assert_eq!(c.retry_mode.value, invoke_config::RetryMode::Legacy);
    assert_eq!(
        c.ca_bundle.unwrap().value,
        std::path::PathBuf::from("/env.pem")
    );
    let c = shared(&[], "")
        .resolve(&Overrides::new().max_attempts(7))
        .unwrap();
    assert_eq!(
        (c.max_attempts.value, c.max_attempts.source),
        (7, Source::Explicit)
    );
    for bad in ["0", "x", "-1"] {
        let e = shared(&[("AWS_MAX_ATTEMPTS", bad)], "")
            .resolve(&Overrides::new())
            .unwrap_err();
        assert!(e.to_string().contains("AWS_MAX_ATTEMPTS"), "{e}");
    }
    let e = shared(&[("AWS_USE_FIPS_ENDPOINT", "maybe")], "")
        .resolve(&Overrides::new())
        .unwrap_err();
    assert!(e.to_string().contains("`maybe`"), "{e}");
}

#[test]
fn invalid_file_is_an_error_naming_the_file_and_line() {
    let e = shared(&[], "[default]\n= us-east-1\n")
        .resolve(&Overrides::new())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("could not parse profile file `/home/.aws/config`") && msg.contains("line 2"),
        "{msg}"
    );
}

#[test]
fn resolved_config_feeds_endpoint_resolution() {
    let config = "[profile local]\nregion = us-west-2\nservices = emu\n[services emu]\nlambda =\n  endpoint_url = http://127.0.0.1:9001\n";
    let c = shared(&[("AWS_PROFILE", "local")], config)
        .resolve(&Overrides::new())
        .unwrap();
    let e = invoke_proto::resolve_endpoint(&c.endpoint_config()).unwrap();
    assert_eq!(e.to_string(), "http://127.0.0.1:9001");
    assert_eq!(e.region(), "us-west-2");
    let c = shared(
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
        ],
        "",
    )
    .resolve(&Overrides::new())
    .unwrap();
    let e = invoke_proto::resolve_endpoint(&c.endpoint_config()).unwrap();
    assert_eq!(e.to_string(), "https://lambda-fips.eu-west-1.amazonaws.com");
}

proptest! {
    /// Any text: a parse result or a typed error with a line inside the text, never a panic
    #[test]
    fn parser_never_panics(text in "([\\[\\] =#;\\t\\r\\na-z]|profile |sso-session |services ){0,200}") {
        use invoke_config::profile::{FileKind, ProfileSet};
        for kind in [FileKind::Config, FileKind::Credentials] {
            if let Err(e) = ProfileSet::parse(&[(kind, "f", &text)]) {
                prop_assert!(e.line >= 1 && e.line <= text.split('\n').count());
            }
        }
    }

    /// Hostile answers to every request of the chain end in a result, never a panic
    #[test]
    fn chain_survives_any_answers(
        answers in proptest::collection::vec((100u16..600, proptest::collection::vec(any::<u8>(), 0..200)), 0..12),
    ) {
        use invoke_config::{CredentialsChain, ProviderKind, Step};
        let config = "[default]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Ec2InstanceMetadata\n";
        let fs = MemFs::new().with(CONFIG, config);
        let shared = SharedConfig::load_with(Env::from_pairs([("HOME", "/home")]), &fs, Platform::Unix, None);
        let mut chain = CredentialsChain::with_providers(&shared, std::sync::Arc::new(fs), &ProviderKind::DEFAULT_CHAIN);
        let mut answers = answers.into_iter();
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for _ in 0..40 {
            match chain.next_step(now) {
                Step::Send(_) => match answers.next() {
                    Some((status, body)) => chain.handle_response(
                        http::StatusCode::from_u16(status).unwrap(),
                        http::HeaderMap::new(),
                        body.into(),
                    ),
                    None => chain.handle_transport_error(&"timed out"),
                },
                Step::Run(_) => prop_assert!(false, "no process configured"),
                Step::Done(_) => return Ok(()),
            }
        }
        prop_assert!(false, "the chain did not finish within 40 steps");
    }
}

#[test]
fn retry_mode_by_name_and_explicit_settings_win() {
    use invoke_config::RetryMode;
    for (text, want) in [
        ("standard", RetryMode::Standard),
        (" Standard ", RetryMode::Standard),
        ("LEGACY", RetryMode::Legacy),
        ("adaptive", RetryMode::Adaptive),
    ] {
        assert_eq!(RetryMode::parse(text), Some(want), "{text}");
    }
    assert_eq!(RetryMode::parse("standard-ish"), None);
    // a mode named in the profile is the profile's, over the default
    let c = shared(&[], "[default]\nretry_mode = standard\n")
        .resolve(&Overrides::new())
        .unwrap();
    assert_eq!(c.retry_mode.value, RetryMode::Standard);
    assert!(
        matches!(
            &c.retry_mode.source,
            Source::Profile {
                key: "retry_mode",
                ..
            }
        ),
        "{:?}",
        c.retry_mode.source
    );
    let c = shared(&[], "").resolve(&Overrides::new()).unwrap();
    assert_eq!(
        (c.retry_mode.value, c.retry_mode.source),
        (RetryMode::Standard, Source::Default)
    );
    let e = shared(&[("AWS_RETRY_MODE", "eager")], "")
        .resolve(&Overrides::new())
        .unwrap_err();
    assert!(
        e.to_string().contains("`eager`") && e.to_string().contains("AWS_RETRY_MODE"),
        "{e}"
    );
    // explicit settings win over the environment and the profile
    let c = shared(
        &[("AWS_RETRY_MODE", "legacy"), ("AWS_CA_BUNDLE", "/env.pem")],
        "[default]\nretry_mode = adaptive\nca_bundle = /profile.pem\n",
    )
    .resolve(
        &Overrides::new()
            .retry_mode(RetryMode::Adaptive)
            .ca_bundle("/explicit.pem"),
    )
    .unwrap();
    assert_eq!(
        (c.retry_mode.value, c.retry_mode.source),
        (RetryMode::Adaptive, Source::Explicit)
    );
    let ca = c.ca_bundle.unwrap();
    assert_eq!(
        (ca.value, ca.source),
        (std::path::PathBuf::from("/explicit.pem"), Source::Explicit)
    );
}

#[test]
fn shared_config_shows_its_inputs_and_what_came_of_each_file() {
    use invoke_config::config::FileStatus;
    use std::path::{Path, PathBuf};

    /// A config file that cannot be read for a reason other than its absence
    struct Denied(MemFs);
    impl invoke_config::FileReader for Denied {
        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            if path == Path::new(CONFIG) {
                return Err(std::io::ErrorKind::PermissionDenied.into());
            }
            self.0.read(path)
        }
    }

    let text = "[profile ops]\nregion = eu-west-1\n";
    let loaded = shared(&[("AWS_PROFILE", "ops")], text);
    assert_eq!(loaded.env().get("AWS_PROFILE"), Some("ops"));
    assert_eq!(loaded.profile_name(), "ops");
    let profiles = loaded.profiles().unwrap();
    assert_eq!(
        profiles.profile("ops").and_then(|p| p.get("region")),
        Some("eu-west-1")
    );
    assert_eq!(
        loaded.files(),
        [
            (PathBuf::from(CONFIG), FileStatus::Read(text.len())),
            (PathBuf::from("/home/.aws/credentials"), FileStatus::Missing),
        ]
    );
    // an explicit profile name wins over AWS_PROFILE
    let env = Env::from_pairs([("HOME", "/home"), ("AWS_PROFILE", "ops")]);
    let fs = MemFs::new().with(CONFIG, text);
    let named = SharedConfig::load_with(env.clone(), &fs, Platform::Unix, Some("dev"));
    assert_eq!(named.profile_name(), "dev");

    // a file that does not parse: failed, and the error says where
    let failed = shared(&[], "[profile ops]\n= x\n");
    assert_eq!(failed.files()[0].1, FileStatus::Failed);
    assert!(
        failed
            .profiles()
            .unwrap_err()
            .to_string()
            .contains("line 2")
    );

    // a file that cannot be read is skipped (taken as empty), saying why; only a missing one
    // is missing
    let skipped = SharedConfig::load_with(env, &Denied(fs), Platform::Unix, None);
    let FileStatus::Skipped(why) = &skipped.files()[0].1 else {
        panic!("{:?}", skipped.files())
    };
    assert!(
        why.contains(CONFIG) && why.contains("permission denied"),
        "{why}"
    );
    assert_eq!(skipped.files()[1].1, FileStatus::Missing);
    assert!(skipped.profiles().unwrap().is_empty());
}

/// The app id: explicit > `AWS_SDK_UA_APP_ID` > profile `sdk_ua_app_id` > the older
/// `sdk-ua-app-id`; one with a character a `User-Agent` token cannot hold is refused,
/// naming where it came from
#[test]
fn app_id_precedence_and_validity() {
    let both = "[default]\nsdk_ua_app_id = profile-app\nsdk-ua-app-id = legacy-app\n";
    let profile = |key: &'static str| Source::Profile {
        profile: "default".into(),
        key,
    };
    for (env, config, overrides, expected) in [
        (&[][..], "", Overrides::new(), None),
        (
            &[][..],
            "[default]\nsdk-ua-app-id = legacy-app\n",
            Overrides::new(),
            Some(("legacy-app", profile("sdk-ua-app-id"))),
        ),
        (
            &[][..],
            both,
            Overrides::new(),
            Some(("profile-app", profile("sdk_ua_app_id"))),
        ),
        (
            &[("AWS_SDK_UA_APP_ID", "env-app")][..],
            both,
            Overrides::new(),
            Some(("env-app", Source::Env("AWS_SDK_UA_APP_ID"))),
        ),
        // blank is unset, as for every variable
        (
            &[("AWS_SDK_UA_APP_ID", " ")][..],
            both,
            Overrides::new(),
            Some(("profile-app", profile("sdk_ua_app_id"))),
        ),
        (
            &[("AWS_SDK_UA_APP_ID", "env-app")][..],
            both,
            Overrides::new().app_id("code-app"),
            Some(("code-app", Source::Explicit)),
        ),
    ] {
        let c = shared(env, config).resolve(&overrides).unwrap();
        let got = c.app_id.map(|id| (id.value, id.source));
        let expected = expected.map(|(value, source)| (value.to_owned(), source));
        assert_eq!(got, expected, "{env:?} {config:?}");
    }
    for (env, config, overrides, origin) in [
        (
            &[("AWS_SDK_UA_APP_ID", "my app")][..],
            "",
            Overrides::new(),
            "AWS_SDK_UA_APP_ID",
        ),
        (
            &[][..],
            "[default]\nsdk_ua_app_id = a/b\n",
            Overrides::new(),
            "sdk_ua_app_id",
        ),
        (
            &[][..],
            "",
            Overrides::new().app_id("é"),
            "explicit setting",
        ),
        (&[][..], "", Overrides::new().app_id(""), "explicit setting"),
    ] {
        let e = shared(env, config).resolve(&overrides).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains(origin) && shown.contains("no spaces"),
            "{shown}"
        );
    }
}

/// A Lambda function's environment is known by `AWS_LAMBDA_FUNCTION_NAME` (the clients then
/// send the function's trace); blank is unset, as for every variable
#[test]
fn in_lambda_follows_the_function_name_variable() {
    for (env, expected) in [
        (&[][..], false),
        (&[("AWS_LAMBDA_FUNCTION_NAME", "my-function")][..], true),
        (&[("AWS_LAMBDA_FUNCTION_NAME", " ")][..], false),
        (
            &[(
                "_X_AMZN_TRACE_ID",
                "Root=1-5759e988-bd862e3fe1be46a994272793",
            )][..],
            false,
        ),
    ] {
        assert_eq!(shared(env, "").in_lambda(), expected, "{env:?}");
    }
}
