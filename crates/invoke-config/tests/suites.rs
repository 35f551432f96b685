//! The SDK's own suites: profile parser, file locations

mod support;

use std::collections::BTreeMap;

use invoke_config::profile::{FileKind, ProfileSet};
use invoke_config::{Env, FileLocations, Platform};
use serde_json::Value;

fn sections<'a>(it: impl Iterator<Item = &'a invoke_config::profile::Section>) -> Value {
    let mut out = serde_json::Map::new();
    for s in it {
        let props: BTreeMap<_, _> = s.properties().collect();
        out.insert(s.name().to_owned(), serde_json::to_value(props).unwrap());
    }
    Value::Object(out)
}

#[test]
fn profile_parser_suite() {
    let Some(path) = support::testdata("config/profile-parser-tests.json") else {
        return;
    };
    let suite = support::json(&path);
    let cases = suite["tests"].as_array().unwrap();
    assert_eq!(cases.len(), 65);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let input = &case["input"];
        let mut files = Vec::new();
        if let Some(t) = input["configFile"].as_str() {
            files.push((FileKind::Config, "config", t));
        }
        if let Some(t) = input["credentialsFile"].as_str() {
            files.push((FileKind::Credentials, "credentials", t));
        }
        let got = ProfileSet::parse(&files);
        let out = &case["output"];
        match (got, out.get("errorContaining")) {
            (Err(e), Some(want)) => {
                if !e.to_string().contains(want.as_str().unwrap()) {
                    failures.push(format!("{name}: error `{e}` lacks {want}"));
                }
            }
            (Ok(set), None) => {
                let want = &out["config"];
                let profiles = sections(set.profiles());
                if profiles != want["profiles"] {
                    failures.push(format!(
                        "{name}: profiles {profiles} != {}",
                        want["profiles"]
                    ));
                }
                if let Some(w) = want.get("sso_sessions") {
                    let got = sections(set.sso_sessions());
                    if &got != w {
                        failures.push(format!("{name}: sso_sessions {got} != {w}"));
                    }
                }
            }
            (Ok(set), Some(want)) => {
                failures.push(format!("{name}: parsed {set:?}, want error {want}"));
            }
            (Err(e), None) => failures.push(format!("{name}: unexpected error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "profile-parser-tests: {} of {} cases pass",
        cases.len(),
        cases.len()
    );
}

#[test]
fn file_location_suite() {
    let Some(path) = support::testdata("config/file-location-tests.json") else {
        return;
    };
    let suite = support::json(&path);
    let cases = suite["tests"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let env = Env::from_pairs(support::string_pairs(&case["environment"]));
        let platform = match case["platform"].as_str().unwrap() {
            "windows" => Platform::Windows,
            "linux" | "macos" => Platform::Unix,
            other => panic!("{name}: unknown platform {other}"),
        };
        let loc = FileLocations::from_env(&env, platform);
        let shown =
            |p: &Option<std::path::PathBuf>| p.as_ref().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            shown(&loc.config),
            case["configLocation"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            shown(&loc.credentials),
            case["credentialsLocation"].as_str().unwrap(),
            "{name}"
        );
        if let Some(p) = case["profile"].as_str() {
            assert_eq!(loc.profile, p, "{name}");
        }
    }
    println!("file-location-tests: {} cases pass", cases.len());
}

/// The cases of a suite whose file holds `{"tests": [...]}`
fn suite_cases(sub: &str) -> Option<Vec<Value>> {
    let suite = support::json(&support::testdata(sub)?);
    let cases = suite["tests"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "{sub} has no cases");
    Some(cases)
}

/// `got` against `{"Ok": text}` or `{<err_key>: text the error contains}`
fn check(name: &str, got: Result<String, String>, result: &Value, err_key: &str) {
    match (got, result.get("Ok"), result.get(err_key)) {
        (Ok(got), Some(want), _) => assert_eq!(got, want.as_str().unwrap(), "{name}"),
        (Err(e), _, Some(want)) => assert!(e.contains(want.as_str().unwrap()), "{name}: {e}"),
        (got, ..) => panic!("{name}: got {got:?}, want {result}"),
    }
}

#[test]
fn ecs_suite() {
    let Some(cases) = suite_cases("config/ecs-tests.json") else {
        return;
    };
    for case in &cases {
        let env = Env::from_pairs(support::string_pairs(&case["env"]));
        let got = match invoke_config::container_uri(&env) {
            Ok(Ok(uri)) => Ok(uri.to_string()),
            Ok(Err(not_configured)) => Err(not_configured),
            Err(e) => Err(e.to_string()),
        };
        check(
            case["docs"].as_str().unwrap(),
            got,
            &case["result"],
            "ErrorContains",
        );
    }
    println!("ecs-tests: {} cases pass", cases.len());
}

#[test]
fn imds_endpoint_suite() {
    let Some(cases) = suite_cases("config/imds-endpoint-tests.json") else {
        return;
    };
    for case in &cases {
        let env = Env::from_pairs(support::string_pairs(&case["env"]));
        let mut fs = invoke_config::MemFs::new();
        for (path, text) in support::string_pairs(&case["fs"]) {
            fs.insert(path, text);
        }
        let shared = invoke_config::SharedConfig::load_with(env, &fs, Platform::Unix, None);
        let mode = case
            .get("mode_override")
            .map(|m| invoke_config::ImdsMode::parse(m.as_str().unwrap()).unwrap());
        let endpoint = case.get("endpoint_override").and_then(Value::as_str);
        let got = invoke_config::ImdsSettings::resolve(&shared, endpoint, mode)
            .map(|s| s.url("/latest/api/token"))
            .map_err(|e| e.to_string());
        check(case["docs"].as_str().unwrap(), got, &case["result"], "Err");
    }
    println!("imds-endpoint-tests: {} cases pass", cases.len());
}
