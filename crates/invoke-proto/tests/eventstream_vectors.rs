//! Every official event-stream vector in `../shared/testdata/eventstream/`, fed whole, split at
//! every point, and byte by byte

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use invoke_proto::DecodeError;
use invoke_proto::bytes::Bytes;
use invoke_proto::{HeaderValue, Message, format_uuid};
use invoke_testkit::{decode_at, testdata};
use serde_json::{Value, json};

/// The JSON form of a header value used by the vectors
fn json_value(v: &HeaderValue) -> Value {
    match v {
        HeaderValue::Bool(b) => json!(b),
        HeaderValue::Byte(x) => json!(x),
        HeaderValue::Short(x) => json!(x),
        HeaderValue::Int(x) => json!(x),
        HeaderValue::Long(x) | HeaderValue::Timestamp(x) => json!(x),
        HeaderValue::ByteArray(b) => json!(B64.encode(b)),
        HeaderValue::String(s) => json!(&**s),
        HeaderValue::Uuid(u) => json!(format_uuid(u)),
    }
}

/// The vector classes (`failing_checks`) an error of ours belongs to
fn class(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::PreludeCrc { .. } => "prelude_crc",
        DecodeError::MessageCrc { .. } => "message_crc",
        DecodeError::Length { .. }
        | DecodeError::Truncated { .. }
        | DecodeError::LimitExceeded { .. } => "length",
        _ => "header",
    }
}

fn check_positive(name: &str, bin: &Bytes, expect: &Value, got: &[Message]) {
    assert_eq!(got.len(), 1, "{name}: one message");
    let m = &got[0];
    assert_eq!(
        m.wire_len(),
        expect["total_length"].as_u64().unwrap(),
        "{name}"
    );
    assert_eq!(
        m.headers.as_wire().len() as u64,
        expect["headers_length"].as_u64().unwrap(),
        "{name}"
    );
    let crc = |at: usize| u64::from(u32::from_be_bytes(bin[at..at + 4].try_into().unwrap()));
    assert_eq!(crc(8), expect["prelude_crc"].as_u64().unwrap(), "{name}");
    assert_eq!(
        crc(bin.len() - 4),
        expect["message_crc"].as_u64().unwrap(),
        "{name}"
    );
    let headers: Vec<Value> = m
        .headers
        .iter()
        .map(|h| json!({"name": &*h.name, "type": h.value.type_name(), "value": json_value(&h.value)}))
        .collect();
    assert_eq!(Value::Array(headers), expect["headers"], "{name}: headers");
    assert_eq!(
        B64.encode(&m.payload),
        expect["payload_base64"].as_str().unwrap(),
        "{name}: payload"
    );
}

fn run_vector(dir: &Path, name: &str) {
    let bin = Bytes::from(std::fs::read(dir.join(format!("{name}.bin"))).unwrap());
    let expect: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let ok = expect["expect"] == "ok";
    // cut points: none (whole), each single split, every byte
    let mut feeds: Vec<Vec<usize>> = vec![vec![]];
    feeds.extend((1..bin.len()).map(|split| vec![split]));
    feeds.push((1..bin.len()).collect());
    let (_, whole) = decode_at(&bin, &[]);
    for cuts in &feeds {
        let (msgs, end) = decode_at(&bin, cuts);
        let how = format!("{name} fed as {} chunks", cuts.len() + 1);
        if ok {
            end.unwrap_or_else(|e| panic!("{how}: {e}"));
            check_positive(&how, &bin, &expect, &msgs);
        } else {
            let err = end.expect_err(&how);
            let checks: Vec<&str> = expect["failing_checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert!(
                checks.contains(&class(&err)),
                "{how}: {err} not in {checks:?}"
            );
            assert!(msgs.is_empty(), "{how}: no message from a bad frame");
            // However the bytes are cut, the same check fails at the same place
            assert_eq!(Err(err), whole.clone(), "{how}");
        }
    }
}

#[test]
fn every_vector_at_every_split_point() {
    let Some(dir) = testdata("eventstream") else {
        return;
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "json")
                .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 20, "the README lists 20 vectors");
    for name in &names {
        run_vector(&dir, name);
    }
}
