//! `lambda-stream decode`: a captured event stream to JSON lines or raw payload

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use invoke_proto::DecodeError;
use invoke_proto::bytes::BytesMut;
use invoke_proto::{
    Event, EventDecoder, HeaderValue, Message, MessageDecoder, StreamError, format_uuid,
};
use serde_json::{Value, json};

use crate::invoke::terminal_safe;

/// Bytes asked of the input per read
const READ_CHUNK: usize = 256 * 1024;

/// Payload bytes base64-encoded at a time (a multiple of 3, so the pieces join without
/// padding in between)
const B64_PIECE: usize = 12 * 1024;

/// Room for one encoded piece
const B64_PIECE_OUT: usize = B64_PIECE / 3 * 4;

/// Capacity of the buffer in front of stdout: several encoded pieces
const OUT_BUFFER: usize = 4 * B64_PIECE_OUT;

/// Why decoding stopped early
enum Failure {
    Decode(DecodeError),
    Io(io::Error),
    /// `--payload`: the input ended cleanly, but before the stream did (no `InvokeComplete`,
    /// exception or error message)
    NoEnd {
        /// The input's length
        bytes: u64,
    },
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

pub(crate) fn run(file: Option<&Path>, payload_only: bool) -> ExitCode {
    let from_stdin = file.is_none_or(|p| p == Path::new("-"));
    // Checked before anything is opened or written: a closed descriptor is not an error
    // the reads and writes below would report
    for (closed, name, advice) in [
        (
            was_closed(&io::stdout(), Stream::Out),
            "stdout",
            "to discard the output, redirect it to /dev/null",
        ),
        (
            from_stdin && was_closed(&io::stdin(), Stream::In),
            "stdin",
            "name a FILE or redirect stdin",
        ),
    ] {
        if closed {
            say!(
                "lambda-stream: {name} is closed (a descriptor closed at start reads as \
                 /dev/null opened read-write); {advice}"
            );
            return ExitCode::from(1);
        }
    }
    let input: io::Result<Box<dyn Read>> = match file {
        Some(p) if !from_stdin => File::open(p).map(|f| Box::new(f) as Box<dyn Read>),
        _ => Ok(Box::new(io::stdin().lock())),
    };
    let result = input.map_err(Failure::Io).and_then(|input| {
        decode(
            input,
            &mut BufWriter::with_capacity(OUT_BUFFER, io::stdout().lock()),
            payload_only,
        )
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Io(e)) => {
            say!("lambda-stream: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Decode(e)) => {
            say!(
                "lambda-stream: decode failed at byte offset {}: {} check: {e}",
                e.offset(),
                e.check()
            );
            ExitCode::from(2)
        }
        Err(Failure::NoEnd { bytes }) => {
            say!(
                "lambda-stream: the stream ended after {bytes} bytes without InvokeComplete: \
                 the function's output may be cut short"
            );
            ExitCode::from(2)
        }
    }
}

/// Streams `input` through the decoder, writing each message as soon as it is complete
fn decode(mut input: impl Read, out: &mut impl Write, payload_only: bool) -> Result<(), Failure> {
    let mut decoder = MessageDecoder::new();
    // `--payload`: whether the Lambda stream ended (its `InvokeComplete`, an exception or
    // an error message)
    let mut ended = false;
    let mut events = EventDecoder::new();
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
                Ok(Some(m)) if payload_only => {
                    write_payload(out, &m, offset, &mut events, &mut ended)?;
                }
                Ok(Some(m)) => write_message(out, &m, offset)?,
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
    decoder.finish().map_err(Failure::Decode)?;
    if payload_only && !ended {
        return Err(Failure::NoEnd {
            bytes: decoder.offset(),
        });
    }
    Ok(())
}

/// `--payload`: a `PayloadChunk`'s payload to `out`; anything else is named on stderr
/// (after the output before it, on a terminal shared with stderr), except the successful
/// end; nothing is written once the stream `ended`
fn write_payload(
    out: &mut impl Write,
    m: &Message,
    offset: u64,
    events: &mut EventDecoder,
    ended: &mut bool,
) -> io::Result<()> {
    let part = lambda_part(events, m);
    if *ended {
        out.flush()?;
        say!(
            "lambda-stream: the message at byte offset {offset} ({}) comes after the stream's \
             end; its payload is left out",
            part.what()
        );
        return Ok(());
    }
    match part {
        Part::Chunk => return out.write_all(&m.payload),
        Part::End => {}
        Part::Failure(ref what) | Part::Other(ref what) => {
            out.flush()?;
            say!(
                "lambda-stream: the message at byte offset {offset} is {what}; its payload is left out"
            );
        }
    }
    *ended = matches!(part, Part::End | Part::Failure(_));
    Ok(())
}

fn write_message(out: &mut impl Write, m: &Message, offset: u64) -> io::Result<()> {
    // The keys in serde_json's (sorted) order, as a `Value` of the whole line wrote them;
    // the payload's base64 is streamed, never held whole (a 24 MiB payload is 32 MiB of it)
    let headers: Vec<Value> = m
        .headers
        .iter()
        .map(|h| json!({"name": &*h.name, "type": h.value.type_name(), "value": json_value(&h.value)}))
        .collect();
    out.write_all(b"{\"headers\":")?;
    serde_json::to_writer(&mut *out, &headers)?;
    write!(
        out,
        ",\"headers_length\":{},\"offset\":{offset},\"payload_base64\":\"",
        m.headers.as_wire().len()
    )?;
    write_base64(out, &m.payload)?;
    writeln!(out, "\",\"total_length\":{}}}", m.wire_len())
}

/// What a message of a Lambda stream is, for `--payload`
enum Part {
    /// A `PayloadChunk`: the function's output
    Chunk,
    /// The successful `InvokeComplete`
    End,
    /// A function error's `InvokeComplete`, an exception or an error message (each ends
    /// the stream): what it is
    Failure(String),
    /// Any other message (an event of another type): what it is
    Other(String),
}

impl Part {
    fn what(&self) -> &str {
        match self {
            Self::Chunk => "a PayloadChunk",
            Self::End => "an InvokeComplete",
            Self::Failure(what) | Self::Other(what) => what,
        }
    }
}

/// What `m` is in a Lambda stream, as `invoke-proto`'s [`EventDecoder`] classifies it (names
/// from the input shown with control characters escaped). A failure is named, not ended on:
/// the decoder goes on to the next message
fn lambda_part(events: &mut EventDecoder, m: &Message) -> Part {
    let shown = |text: &str, none: &str| {
        if text.is_empty() {
            none.to_owned()
        } else {
            terminal_safe(text).into_owned()
        }
    };
    let function_error =
        |code: &str| Part::Failure(format!("InvokeComplete with ErrorCode {}", shown(code, "")));
    match events.decode_message(m.clone()) {
        Ok(Event::PayloadChunk(_)) => Part::Chunk,
        Ok(Event::InvokeComplete(c)) => c.error_code.as_deref().map_or(Part::End, function_error),
        Ok(Event::Unknown { event_type, .. }) => Part::Other(format!(
            "an event of type {}, not PayloadChunk",
            shown(&event_type, "(none)")
        )),
        Err(StreamError::Exception(e)) => Part::Failure(format!(
            "an exception ({})",
            shown(&e.code, "no :exception-type")
        )),
        Err(StreamError::Error { code, .. }) => {
            Part::Failure(format!("an error ({})", shown(&code, "no :error-code")))
        }
        // a payload that is not a JSON object is named as that, never taken for a
        // successful end (it may hide a function error)
        Err(StreamError::InvalidInvokeComplete { .. }) => {
            Part::Failure("an InvokeComplete whose payload does not parse as one".to_owned())
        }
        Err(StreamError::MissingEventType { .. }) => {
            Part::Other("an event of type (none), not PayloadChunk".to_owned())
        }
        Err(StreamError::UnknownMessageType { message_type, .. }) => {
            Part::Other(format!("a message of type {}", shown(&message_type, "")))
        }
        Err(StreamError::MissingMessageType { .. }) => {
            Part::Other("a message without :message-type".to_owned())
        }
        // kinds `invoke-proto` may add later
        Ok(_) | Err(_) => Part::Other("a message this decoder does not know".to_owned()),
    }
}

/// Writes the base64 of `bytes` (no character of which needs escaping in JSON) in pieces
fn write_base64(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let mut encoded = [0u8; B64_PIECE_OUT];
    for piece in bytes.chunks(B64_PIECE) {
        let n = B64
            .encode_slice(piece, &mut encoded)
            .expect("a piece's base64 fits its buffer");
        out.write_all(&encoded[..n])?;
    }
    Ok(())
}

/// Which way a standard stream goes
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    In,
    Out,
}

/// Whether the standard stream `fd` was closed when the process started
///
/// The Rust runtime opens /dev/null read-write in the place of a closed descriptor 0, 1 or 2
/// before `main`: writes to a closed stdout would vanish and a closed stdin would read as an
/// empty input. A shell's `>/dev/null` or `</dev/null` opens it one way only, so /dev/null
/// open both ways is taken for a closed descriptor (and so is one that is not open at all).
/// Probing the other direction of /dev/null has no effect.
#[cfg(unix)]
pub(crate) fn was_closed(fd: &impl std::os::fd::AsFd, stream: Stream) -> bool {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let Ok(fd) = fd.as_fd().try_clone_to_owned() else {
        return true;
    };
    let file = File::from(fd);
    let (Ok(meta), Ok(null)) = (file.metadata(), std::fs::metadata("/dev/null")) else {
        return false;
    };
    if !meta.file_type().is_char_device() || meta.rdev() != null.rdev() {
        return false;
    }
    match stream {
        Stream::Out => (&file).read(&mut [0u8; 1]).is_ok(),
        Stream::In => (&file).write(&[0u8]).is_ok(),
    }
}

#[cfg(not(unix))]
pub(crate) fn was_closed<T>(_: &T, _: Stream) -> bool {
    false
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
