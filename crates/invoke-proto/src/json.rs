//! A small JSON writer for the few places that write JSON back out: an `InvokeComplete`
//! field of an unexpected type kept as its text, and `invoke-config`'s SSO token cache and
//! `CreateToken` body
//!
//! Not `serde_json`'s serializer: that one formats floats with a crate and tables of its own,
//! about 40 KB in every client's binary for JSON that is, in practice, strings. Output is
//! compact, with object keys in the order of `serde_json::Map` (sorted), as
//! `serde_json::to_string` writes it; a float is written by Rust's shortest round-trip form,
//! which reads back as the same number.

use std::fmt::Write as _;

use serde_json::Value;

/// `value` as compact JSON text
pub fn to_text(value: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, value);
    out
}

/// Appends `value` as compact JSON text
pub fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => write!(out, "{u}"),
                (_, Some(i), _) => write!(out, "{i}"),
                // finite: serde_json holds no NaN or infinity
                (_, _, Some(f)) => write!(out, "{f:?}"),
                _ => write!(out, "null"),
            };
        }
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, key);
                out.push(':');
                push_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string: quoted, with `"`, `\` and control characters escaped
pub fn push_string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (at, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..0x20 => None,
            _ => continue,
        };
        out.push_str(&s[plain..at]);
        match escape {
            Some(escape) => out.push_str(escape),
            None => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        plain = at + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_writes() {
        let docs = [
            r#"{"b": [1, -2, 18446744073709551615, -9223372036854775808, 1.5, 0.1, -0.0],
                "a": {"z": null, "y": true, "x": false}, "s": "q\" b\\ t\t n\n r\r \u0001 \u001f \u007f é ☃ 𝄞", "": ""}"#,
            "[]",
            "{}",
            r#""""#,
            "12.0",
        ];
        for doc in docs {
            let v: Value = serde_json::from_str(doc).unwrap();
            let ours = to_text(&v);
            assert_eq!(ours, serde_json::to_string(&v).unwrap(), "{doc}");
            assert_eq!(serde_json::from_str::<Value>(&ours).unwrap(), v);
        }
        // floats with an exponent differ in form only (serde_json writes `1e+300`): the
        // text reads back as the same number (by Rust's parser: serde_json's own is not
        // exact without its `float_roundtrip` feature)
        for f in [
            1e300,
            -2.5e-300,
            1.234_567_890_123_456_8e20,
            5e-324,
            f64::MAX,
        ] {
            let text = to_text(&Value::from(f));
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                f.to_bits(),
                "{text}"
            );
        }
    }
}
