//! `lambda-stream decode`: a captured event stream to JSON lines or raw payload

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use invoke_proto::DecodeError;
use invoke_proto::bytes::BytesMut;
use invoke_proto::{HeaderValue, Message, MessageDecoder, format_uuid};
use serde_json::{Value, json};

/// Bytes asked of the input per read
const READ_CHUNK: usize = 256 * 1024;

/// Why decoding stopped early
enum Failure {
    Decode(DecodeError),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

pub(crate) fn run(file: Option<&Path>, payload_only: bool) -> ExitCode {
    let input: io::Result<Box<dyn Read>> = match file {
        None => Ok(Box::new(io::stdin().lock())),
        Some(p) if p == Path::new("-") => Ok(Box::new(io::stdin().lock())),
        Some(p) => File::open(p).map(|f| Box::new(f) as Box<dyn Read>),
    };
    let result = input.map_err(Failure::Io).and_then(|input| {
        decode(
            input,
            &mut BufWriter::new(io::stdout().lock()),
            payload_only,
        )
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Io(e)) => {
            eprintln!("lambda-stream: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Decode(e)) => {
            eprintln!(
                "lambda-stream: decode failed at byte offset {}: {} check: {e}",
                e.offset(),
                e.check()
            );
            ExitCode::from(2)
        }
    }
}

/// Streams `input` through the decoder, writing each message as soon as it is complete
fn decode(mut input: impl Read, out: &mut impl Write, payload_only: bool) -> Result<(), Failure> {
    let mut decoder = MessageDecoder::new();
    let mut buf = BytesMut::new();
    loop {
        buf.resize(READ_CHUNK, 0);
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        buf.truncate(n);
        decoder.feed(buf.split().freeze());
        loop {
            let offset = decoder.offset();
            match decoder.next_message() {
                Ok(Some(m)) => write_message(out, &m, offset, payload_only)?,
                Ok(None) => break,
                Err(e) => {
                    out.flush()?;
                    return Err(Failure::Decode(e));
                }
            }
        }
        // Show progress of slow streams as it happens
        out.flush()?;
    }
    out.flush()?;
    decoder.finish().map_err(Failure::Decode)
}

fn write_message(
    out: &mut impl Write,
    m: &Message,
    offset: u64,
    payload_only: bool,
) -> io::Result<()> {
    if payload_only {
        return out.write_all(&m.payload);
    }
    let headers: Vec<Value> = m
        .headers
        .iter()
        .map(|h| json!({"name": &*h.name, "type": h.value.type_name(), "value": json_value(&h.value)}))
        .collect();
    let line = json!({
        "offset": offset,
        "total_length": m.wire_len(),
        "headers_length": m.headers.as_wire().len(),
        "headers": headers,
        "payload_base64": B64.encode(&m.payload),
    });
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// A header value as the test-vector JSON writes it
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
