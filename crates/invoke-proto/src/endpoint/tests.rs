//! Endpoint resolution, partitions and URL parsing

use super::partitions::{PARTITIONS, matches_region_regex};
use super::*;

fn url(region: &str, fips: bool, dual_stack: bool) -> String {
    let config = EndpointConfig::default()
        .with_region(region)
        .with_fips(fips)
        .with_dual_stack(dual_stack);
    resolve_endpoint(&config).unwrap().to_string()
}

fn custom(url: &str) -> Result<Endpoint, EndpointError> {
    resolve_endpoint(&EndpointConfig::default().with_custom(url))
}

fn url_problem(url: &str) -> UrlProblem {
    match custom(url) {
        Err(EndpointError::InvalidUrl { problem, .. }) => problem,
        other => panic!("{url}: expected InvalidUrl, got {other:?}"),
    }
}

#[test]
fn protocol_md_table() {
    #[rustfmt::skip]
    let table = [
        ("us-east-1", false, false, "https://lambda.us-east-1.amazonaws.com"),
        ("us-east-1", true, false, "https://lambda-fips.us-east-1.amazonaws.com"),
        ("us-east-1", false, true, "https://lambda.us-east-1.api.aws"),
        ("us-east-1", true, true, "https://lambda-fips.us-east-1.api.aws"),
        ("cn-north-1", false, false, "https://lambda.cn-north-1.amazonaws.com.cn"),
        ("cn-north-1", false, true, "https://lambda.cn-north-1.api.amazonwebservices.com.cn"),
        ("cn-north-1", true, true, "https://lambda-fips.cn-north-1.api.amazonwebservices.com.cn"),
        ("us-gov-west-1", true, false, "https://lambda-fips.us-gov-west-1.amazonaws.com"),
        ("us-gov-east-1", false, true, "https://lambda.us-gov-east-1.api.aws"),
        ("us-iso-east-1", false, false, "https://lambda.us-iso-east-1.c2s.ic.gov"),
        ("us-isob-east-1", true, false, "https://lambda-fips.us-isob-east-1.sc2s.sgov.gov"),
    ];
    for (region, fips, dual_stack, want) in table {
        assert_eq!(
            url(region, fips, dual_stack),
            want,
            "{region} {fips} {dual_stack}"
        );
    }
    let ep = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("eu-west-1")
            .with_custom("https://example.com"),
    )
    .unwrap();
    assert_eq!(ep.to_string(), "https://example.com");
    assert_eq!(ep.region(), "eu-west-1");
    assert!(!ep.region_defaulted());
}

#[test]
fn region_endpoint_parts() {
    let ep = resolve_endpoint(&EndpointConfig::default().with_region("us-west-2")).unwrap();
    assert_eq!(ep.scheme(), Scheme::Https);
    assert_eq!(ep.host(), "lambda.us-west-2.amazonaws.com");
    assert_eq!(ep.port(), None);
    assert_eq!(ep.port_or_default(), 443);
    assert_eq!(ep.authority(), "lambda.us-west-2.amazonaws.com");
    assert_eq!(ep.path_prefix(), "");
    assert_eq!(ep.region(), "us-west-2");
    assert!(!ep.region_defaulted());
    assert_eq!(
        ep.uri_for("/2015-03-31/functions/f/response-streaming-invocations?Qualifier=1")
            .unwrap()
            .to_string(),
        "https://lambda.us-west-2.amazonaws.com/2015-03-31/functions/f/response-streaming-invocations?Qualifier=1"
    );
}

#[test]
fn partitions_by_list_regex_and_fallback() {
    let cases = [
        // explicit lists, including names the regexes do not match
        ("aws-global", "aws"),
        ("aws-cn-global", "aws-cn"),
        ("aws-us-gov-global", "aws-us-gov"),
        ("aws-iso-global", "aws-iso"),
        ("aws-iso-b-global", "aws-iso-b"),
        ("aws-iso-e-global", "aws-iso-e"),
        ("aws-iso-f-global", "aws-iso-f"),
        ("eusc-de-east-1", "aws-eusc"),
        // regexes
        ("mx-central-9", "aws"),
        ("us-gov-south-7", "aws-us-gov"),
        ("cn-south-2", "aws-cn"),
        ("us-iso-north-3", "aws-iso"),
        ("us-isob-west-2", "aws-iso-b"),
        ("eu-isoe-north-1", "aws-iso-e"),
        ("us-isof-west-5", "aws-iso-f"),
        ("eusc-de-west-2", "aws-eusc"),
        // nothing matches: botocore falls back to aws
        ("xx-foo-1", "aws"),
        ("eusc-fr-east-1", "aws"),
        ("us-east-1a", "aws"),
        ("us-east", "aws"),
        ("US-EAST-1", "aws"),
        ("cn-north-1-extra", "aws"),
        ("local", "aws"),
    ];
    for (region, want) in cases {
        assert_eq!(partition(region).id, want, "{region}");
    }
    // \w does not match '-': us-gov-west-1 is not an `aws` region
    assert!(!matches_region_regex(&PARTITIONS[0], "us-gov-west-1"));
    assert!(matches_region_regex(&PARTITIONS[0], "us-west_2-1"));
}

#[test]
fn every_partition_suffix() {
    #[rustfmt::skip]
    let table = [
        ("eusc-de-east-1", false, false, "https://lambda.eusc-de-east-1.amazonaws.eu"),
        ("eusc-de-east-1", true, true, "https://lambda-fips.eusc-de-east-1.api.amazonwebservices.eu"),
        ("us-iso-east-1", false, true, "https://lambda.us-iso-east-1.api.aws.ic.gov"),
        ("us-isob-east-1", false, true, "https://lambda.us-isob-east-1.api.aws.scloud"),
        ("eu-isoe-west-1", false, false, "https://lambda.eu-isoe-west-1.cloud.adc-e.uk"),
        ("eu-isoe-west-1", true, true, "https://lambda-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk"),
        ("us-isof-south-1", false, false, "https://lambda.us-isof-south-1.csp.hci.ic.gov"),
        ("us-isof-south-1", false, true, "https://lambda.us-isof-south-1.api.aws.hci.ic.gov"),
        ("xx-foo-1", true, false, "https://lambda-fips.xx-foo-1.amazonaws.com"),
    ];
    for (region, fips, dual_stack, want) in table {
        assert_eq!(
            url(region, fips, dual_stack),
            want,
            "{region} {fips} {dual_stack}"
        );
    }
}

#[test]
fn rule_set_errors() {
    let err = |c: EndpointConfig| resolve_endpoint(&c).unwrap_err();
    let base = EndpointConfig::default().with_custom("https://example.com");
    assert_eq!(
        err(base.clone().with_fips(true)),
        EndpointError::FipsWithCustomEndpoint
    );
    // FIPS is checked before dual-stack
    assert_eq!(
        err(base.clone().with_fips(true).with_dual_stack(true)),
        EndpointError::FipsWithCustomEndpoint
    );
    assert_eq!(
        err(base.with_dual_stack(true)).to_string(),
        "Invalid Configuration: Dualstack and custom endpoint are not supported"
    );
    // the configuration errors come before the URL is looked at
    assert_eq!(
        err(EndpointConfig::default()
            .with_custom("not a url")
            .with_fips(true)),
        EndpointError::FipsWithCustomEndpoint
    );
    assert_eq!(
        err(EndpointConfig::default()).to_string(),
        "Invalid Configuration: Missing Region"
    );
    assert_eq!(
        err(EndpointConfig::default()
            .with_fips(true)
            .with_dual_stack(true)),
        EndpointError::MissingRegion
    );
}

#[test]
fn invalid_regions() {
    for region in [
        "",
        "-us-east-1",
        "us-east-1-",
        "us east 1",
        "us-east-1/x",
        "us_east_1",
        "us-east-1.",
        "us-east-1\n",
        "ü-east-1",
        &"a".repeat(64),
    ] {
        for with_custom in [false, true] {
            let mut config = EndpointConfig::default().with_region(region);
            if with_custom {
                config = config.with_custom("http://localhost:9001");
            }
            assert_eq!(
                resolve_endpoint(&config),
                Err(EndpointError::InvalidRegion {
                    region: region.to_owned()
                }),
                "{region:?}"
            );
        }
    }
    assert_eq!(
        url(&"a".repeat(63), false, false),
        format!("https://lambda.{}.amazonaws.com", "a".repeat(63))
    );
    assert_eq!(url("7", false, false), "https://lambda.7.amazonaws.com");
}

/// The authority (the `Host` header and the URI's) for ports of every digit count, and IPv6
#[test]
fn authority_of_every_port_width() {
    for port in [1u16, 9, 10, 99, 100, 8443, 9001, 10000, 65535] {
        let ep = custom(&format!("http://h.example:{port}")).unwrap();
        assert_eq!(ep.authority(), format!("h.example:{port}"));
        let uri = ep.uri_for("/p").unwrap();
        assert_eq!(
            uri.authority().unwrap().as_str(),
            format!("h.example:{port}")
        );
        assert_eq!(uri.port_u16(), Some(port));
    }
    let ep = custom("http://[::1]:8080").unwrap();
    assert_eq!(ep.authority(), "[::1]:8080");
    assert_eq!(ep.uri_for("/p").unwrap().to_string(), "http://[::1]:8080/p");
}

#[test]
fn custom_with_port() {
    let ep = custom("http://127.0.0.1:9001").unwrap();
    assert_eq!(ep.scheme(), Scheme::Http);
    assert_eq!(ep.host(), "127.0.0.1");
    assert_eq!(ep.port(), Some(9001));
    assert_eq!(ep.port_or_default(), 9001);
    assert_eq!(ep.authority(), "127.0.0.1:9001");
    assert_eq!(ep.path_prefix(), "");
    assert_eq!(ep.region(), DEFAULT_SIGNING_REGION);
    assert!(ep.region_defaulted());
    assert_eq!(ep.to_string(), "http://127.0.0.1:9001");
    assert_eq!(
        ep.uri_for("/2015-03-31/functions/f/response-streaming-invocations")
            .unwrap()
            .to_string(),
        "http://127.0.0.1:9001/2015-03-31/functions/f/response-streaming-invocations"
    );
    assert_eq!(
        ep.uri_for("").unwrap().to_string(),
        "http://127.0.0.1:9001/"
    );
    assert_eq!(
        ep.uri_for("?a=b").unwrap().to_string(),
        "http://127.0.0.1:9001/?a=b"
    );
    let ep = custom("http://localhost").unwrap();
    assert_eq!(ep.port(), None);
    assert_eq!(ep.port_or_default(), 80);
}

#[test]
fn custom_with_path_prefix() {
    let ep = custom("https://example.com/prefix").unwrap();
    assert_eq!(ep.scheme(), Scheme::Https);
    assert_eq!(ep.host(), "example.com");
    assert_eq!(ep.port(), None);
    assert_eq!(ep.path_prefix(), "/prefix");
    assert_eq!(ep.to_string(), "https://example.com/prefix");
    let cases = [
        (
            "/2015-03-31/functions/f/invocations",
            "/prefix/2015-03-31/functions/f/invocations",
        ),
        ("/a?b=c", "/prefix/a?b=c"),
        ("/", "/prefix"),
        ("", "/prefix"),
        ("?x=1", "/prefix?x=1"),
    ];
    for (path, want) in cases {
        let uri = ep.uri_for(path).unwrap();
        assert_eq!(
            uri.to_string(),
            format!("https://example.com{want}"),
            "{path}"
        );
    }
    let ep = custom("https://example.com/prefix/").unwrap();
    assert_eq!(ep.path_prefix(), "/prefix/");
    assert_eq!(ep.to_string(), "https://example.com/prefix/");
    assert_eq!(
        ep.uri_for("/a").unwrap().to_string(),
        "https://example.com/prefix/a"
    );
    assert_eq!(
        ep.uri_for("/").unwrap().to_string(),
        "https://example.com/prefix/"
    );
    let ep = custom("https://example.com/").unwrap();
    assert_eq!(ep.path_prefix(), "/");
    assert_eq!(
        ep.uri_for("/a").unwrap().to_string(),
        "https://example.com/a"
    );
    let ep = custom("https://example.com:8443/a/b").unwrap();
    assert_eq!(ep.authority(), "example.com:8443");
    assert_eq!(
        ep.uri_for("/c").unwrap().to_string(),
        "https://example.com:8443/a/b/c"
    );
}

#[test]
fn custom_hosts() {
    let ep = custom("http://[::1]:9001/x").unwrap();
    assert_eq!(ep.host(), "[::1]");
    assert_eq!(ep.port(), Some(9001));
    assert_eq!(ep.to_string(), "http://[::1]:9001/x");
    assert_eq!(
        ep.uri_for("/y").unwrap().to_string(),
        "http://[::1]:9001/x/y"
    );
    let ep = custom("HTTPS://Lambda.Example_Host.internal").unwrap();
    assert_eq!(ep.scheme(), Scheme::Https);
    assert_eq!(ep.host(), "Lambda.Example_Host.internal");
    assert_eq!(ep.to_string(), "https://Lambda.Example_Host.internal");
    assert_eq!(custom("http://h:65535").unwrap().port(), Some(65535));
    assert_eq!(custom("http://h:0080").unwrap().port(), Some(80));
    let v6 = custom("http://[::1]").unwrap();
    assert_eq!((v6.host(), v6.port()), ("[::1]", None));
    assert_eq!(custom("http://[::1]:9001").unwrap().port(), Some(9001));
}

#[test]
fn invalid_urls() {
    let cases = [
        ("", UrlProblem::MissingScheme),
        ("example.com", UrlProblem::MissingScheme),
        ("localhost:9001", UrlProblem::MissingScheme),
        ("://example.com", UrlProblem::MissingScheme),
        (
            "ftp://example.com",
            UrlProblem::UnsupportedScheme {
                scheme: "ftp".into(),
            },
        ),
        (
            "httpx://example.com",
            UrlProblem::UnsupportedScheme {
                scheme: "httpx".into(),
            },
        ),
        ("https://", UrlProblem::MissingHost),
        ("https:///path", UrlProblem::MissingHost),
        ("https://:443", UrlProblem::MissingHost),
        ("https://example.com?x=1", UrlProblem::Query),
        ("https://example.com/p?x=1", UrlProblem::Query),
        ("https://example.com#frag", UrlProblem::Fragment),
        ("https://example.com/p#", UrlProblem::Fragment),
        ("https://user:pw@example.com", UrlProblem::UserInfo),
        ("https://example.com:", UrlProblem::InvalidPort),
        ("https://example.com:65536", UrlProblem::InvalidPort),
        ("https://example.com:-1", UrlProblem::InvalidPort),
        ("https://example.com:80a", UrlProblem::InvalidPort),
        ("https://example.com:1:2", UrlProblem::InvalidPort),
        ("https://example.com:+80", UrlProblem::InvalidPort),
        ("https://ex!ample.com", UrlProblem::InvalidHost),
        ("https://ex~ample.com", UrlProblem::InvalidHost),
        ("https://exa mple.com", UrlProblem::InvalidHost),
        ("https://exämple.com", UrlProblem::InvalidHost),
        ("https://::1", UrlProblem::MissingHost),
        ("https://[::1", UrlProblem::InvalidHost),
        ("https://[]", UrlProblem::InvalidHost),
        ("https://[zz::1]", UrlProblem::InvalidHost),
        ("https://[::1]x", UrlProblem::InvalidHost),
        ("https://[::1]:", UrlProblem::InvalidPort),
        ("https://example.com/a b", UrlProblem::InvalidPath),
        ("https://example.com/ä", UrlProblem::InvalidPath),
        (
            " https://example.com",
            UrlProblem::UnsupportedScheme {
                scheme: " https".into(),
            },
        ),
        ("https://example.com ", UrlProblem::InvalidHost),
    ];
    for (url, want) in cases {
        assert_eq!(url_problem(url), want, "{url:?}");
    }
    let err = custom("ftp://example.com").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid endpoint url "ftp://example.com": unsupported scheme "ftp", expected http or https"#
    );
}

#[test]
fn invalid_request_paths() {
    let ep = custom("https://example.com/prefix").unwrap();
    for path in ["relative", "/a b", "/a#b", "/\u{e4}", "*", "/a\n"] {
        assert_eq!(
            ep.uri_for(path),
            Err(EndpointError::InvalidRequestPath {
                path_and_query: path.to_owned()
            }),
            "{path:?}"
        );
    }
}

#[test]
fn signing_scope_is_lambda_in_the_endpoint_region() {
    let fips = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-gov-west-1")
            .with_fips(true),
    )
    .unwrap();
    assert_eq!(
        fips.signing_scope(),
        SigningScope::new("us-gov-west-1", "lambda")
    );
    let local = custom("http://127.0.0.1:9001").unwrap();
    assert_eq!(local.signing_scope(), SigningScope::lambda("us-east-1"));
}

#[test]
fn credentials_in_urls_are_redacted() {
    assert_eq!(
        redact_url("http://u:p%40ss@proxy:3128"),
        "http://***@proxy:3128"
    );
    assert_eq!(redact_url("u:pass@proxy:3128/x"), "***@proxy:3128/x");
    // an unencoded `/` in the password: still hidden (a path with `@` is hidden too)
    assert_eq!(
        redact_url("http://user:pa/ss@proxy:3128"),
        "http://***@proxy:3128"
    );
    assert_eq!(redact_url("http://proxy:3128/a@b"), "http://***@b");
    assert_eq!(redact_url("http://proxy:3128"), "http://proxy:3128");
    // an endpoint URL with user info is refused without showing the password
    let e = custom("https://user:s3cret@lambda.example.com").unwrap_err();
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    assert_eq!(
        url_problem("https://user:s3cret@lambda.example.com"),
        UrlProblem::UserInfo
    );
}
