//! Every case of botocore's Lambda `endpoint-tests-1.json` against [`invoke_proto::endpoint`]
//!
//! The file is read at test time from `../shared/testdata/models/lambda/2015-03-31` (or
//! `$INVOKE_TESTDATA`); nothing is copied into the repository.

use invoke_proto::{EndpointConfig, resolve_endpoint};
use invoke_testkit::testdata;
use serde_json::Value;

/// The parameters `EndpointConfig` can express
const KNOWN_PARAMS: [&str; 4] = ["Region", "UseFIPS", "UseDualStack", "Endpoint"];

/// Cases skipped on purpose, by `documentation`, with the reason
///
/// Empty: at botocore 1.43.67 every one of the 71 cases uses only `Region`, `UseFIPS`,
/// `UseDualStack` and `Endpoint` (the last case, "Missing region", has no parameters at all and
/// relies on the defaults), and expects either a URL with no properties or headers, or an error.
/// A case using anything else must be listed here with its reason, or the test fails.
const SKIPPED: &[(&str, &str)] = &[];

/// How many cases must run; a change to the vectors or to `SKIPPED` must update this
const EXPECTED_RUN: usize = 71;

fn config_for(doc: &str, params: &serde_json::Map<String, Value>) -> EndpointConfig {
    let string = |key: &str| {
        params.get(key).map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{doc}: {key} is not a string: {v}"))
                .to_owned()
        })
    };
    let flag = |key: &str| {
        params.get(key).is_some_and(|v| {
            v.as_bool()
                .unwrap_or_else(|| panic!("{doc}: {key} is not a bool: {v}"))
        })
    };
    EndpointConfig {
        region: string("Region"),
        use_fips: flag("UseFIPS"),
        use_dual_stack: flag("UseDualStack"),
        custom: string("Endpoint"),
    }
}

#[test]
fn lambda_endpoint_rule_tests() {
    let Some(dir) = testdata("models/lambda/2015-03-31") else {
        return;
    };
    let path = dir.join("endpoint-tests-1.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let file: Value = serde_json::from_str(&text).expect("endpoint-tests-1.json is JSON");
    let cases = file["testCases"].as_array().expect("testCases array");

    let empty = serde_json::Map::new();
    let (mut run, mut skipped) = (0, Vec::new());
    for case in cases {
        let doc = case["documentation"].as_str().expect("documentation");
        if let Some((_, reason)) = SKIPPED.iter().find(|(name, _)| *name == doc) {
            eprintln!("skipped endpoint case {doc:?}: {reason}");
            skipped.push(doc);
            continue;
        }
        let params = case
            .get("params")
            .map_or(&empty, |p| p.as_object().expect("params object"));
        let unknown: Vec<_> = params
            .keys()
            .filter(|k| !KNOWN_PARAMS.contains(&k.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{doc}: parameters {unknown:?} are not supported; list the case in SKIPPED with the reason"
        );
        let config = config_for(doc, params);
        let got = resolve_endpoint(&config);
        let expect = &case["expect"];
        if let Some(endpoint) = expect.get("endpoint") {
            for extra in ["properties", "headers"] {
                if let Some(v) = endpoint.get(extra) {
                    assert!(
                        v.as_object().is_some_and(serde_json::Map::is_empty),
                        "{doc}: expected {extra} {v} are not modelled"
                    );
                }
            }
            let want = endpoint["url"].as_str().expect("endpoint.url");
            match got {
                Ok(ep) => assert_eq!(ep.to_string(), want, "{doc}"),
                Err(e) => panic!("{doc}: expected {want}, got error {e}"),
            }
        } else {
            let want = expect["error"].as_str().expect("expect.error or endpoint");
            match got {
                Ok(ep) => panic!("{doc}: expected error {want:?}, got {ep}"),
                Err(e) => assert_eq!(e.to_string(), want, "{doc}"),
            }
        }
        run += 1;
    }
    assert_eq!(
        skipped.len(),
        SKIPPED.len(),
        "SKIPPED names a case that is gone"
    );
    assert_eq!(run + skipped.len(), cases.len());
    assert_eq!(run, EXPECTED_RUN, "number of endpoint cases run");
    eprintln!("endpoint cases: {run} run, {} skipped", skipped.len());
}
