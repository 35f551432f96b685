#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the shared event-stream vectors, at run time.
#
# The vectors live outside the repository and are not vendored (style.md §2 rule 14): they are
# read from $INVOKE_TESTDATA if set, else from ../shared/testdata beside the checkout. The
# corpus is never committed (.gitignore lists fuzz/corpus). Missing vectors are a warning, and
# the fuzzers then start from an empty corpus, except under CI=true, where they are an error.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz_dir")"
testdata="${INVOKE_TESTDATA:-$root/../shared/testdata}"
src="$testdata/eventstream"
targets=(decode_oneshot decode_chunked roundtrip differential)

# invoke_stream reads `[n] [spec; n] [body...]` (see its header): every body goes in whole,
# byte by byte, and in 5 / 135 / 12 byte chunks
stream_corpus="$fuzz_dir/corpus/invoke_stream"
mkdir -p "$stream_corpus"
chunkings() { # <body file> <corpus dir>
  local name
  name="$(basename "$1" .bin)"
  { printf '\x00'; cat "$1"; } >"$2/$name.whole"
  { printf '\x01\x01'; cat "$1"; } >"$2/$name.bytewise"
  { printf '\x03\x05\x87\x0c'; cat "$1"; } >"$2/$name.mixed"
}

# Lambda response bodies (protocol.md §4.7, §4.8), made here: the vectors hold none
if command -v python3 >/dev/null; then
  bodies="$(mktemp -d)"
  python3 - "$bodies" <<'PY'
import struct, sys, zlib

def message(headers, payload=b""):
    """One event-stream message; every header a string (type 7)"""
    block = b"".join(
        bytes([len(n)]) + n.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
        for n, v in headers
    )
    prelude = struct.pack(">II", 16 + len(block) + len(payload), len(block))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + block + payload
    return head + struct.pack(">I", zlib.crc32(head))

def event(kind, content_type, payload):
    headers = [(":event-type", kind), (":content-type", content_type), (":message-type", "event")]
    return message(headers, payload)

def chunk(data):
    return event("PayloadChunk", "application/octet-stream", data)

def complete(payload=b"{}"):
    return event("InvokeComplete", "application/json", payload)

# the examples of protocol.md §4.7 and §4.8, byte for byte
assert len(chunk(b"Hello")) == 111 and chunk(b"Hello")[-4:].hex() == "e8263d64"
assert len(complete()) == 102 and complete()[-4:].hex() == "7006d467"

failed = b'{"ErrorCode":"Unhandled","ErrorDetails":"x","LogResult":"aGk="}'
tail = b'{"LogResult":"U1RBUlQgUmVxdWVzdElkOiAxIFZlcnNpb246ICRMQVRFU1QKRU5EIFJlcXVlc3RJZDogMQo="}'
bodies = {
    "hello": chunk(b"Hello") + complete(),
    "three_chunks_unhandled": chunk(b"Hello, ") + chunk(b"world!\n") + chunk(b"") + complete(failed),
    "log_tail": chunk(b'{"statusCode":200}') + complete(tail),
    "complete_only": complete(),
    "complete_nulls": complete(b'{"ErrorCode":null,"ErrorDetails":null,"LogResult":null,"X":1}'),
    "binary_chunk": chunk(bytes(range(256)) * 2) + complete(),
    "bytes_after_complete": chunk(b"a") + complete() + chunk(b"ignored") + b"\0\0",
    "unknown_event": event("Progress", "application/json", b'{"p":1}') + chunk(b"a") + complete(),
    "exception": chunk(b"partial") + message(
        [(":exception-type", "ServiceException"), (":content-type", "application/json"),
         (":message-type", "exception")], b'{"message":"boom"}'),
    "error": message(
        [(":error-code", "InternalError"), (":error-message", "oops"), (":message-type", "error")]),
    "cut_short": chunk(b"Hello"),
    # two identical header blocks after a chunk, then junk: what finish() keeps must be
    # classified afresh (a bug once made the first InvokeComplete a PayloadChunk)
    "repeated_ends_then_junk": chunk(b"a") + complete() + complete() + bytes(12),
}
for name, body in bodies.items():
    with open(f"{sys.argv[1]}/lambda_{name}.bin", "wb") as f:
        f.write(body)
PY
  for b in "$bodies"/*.bin; do
    chunkings "$b" "$stream_corpus"
  done
  rm -rf "$bodies"
elif [ "${CI:-}" = "true" ]; then
  echo "seed.sh: python3 is needed to write the invoke_stream seeds" >&2
  exit 1
else
  echo "seed.sh: WARNING: no python3; invoke_stream gets no Lambda response bodies" >&2
fi

shopt -s nullglob
bins=("$src"/*.bin)
if [ ${#bins[@]} -eq 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "seed.sh: no event-stream vectors at $src (set INVOKE_TESTDATA)" >&2
    exit 1
  fi
  echo "seed.sh: WARNING: no event-stream vectors at $src (set INVOKE_TESTDATA); corpus not seeded" >&2
  exit 0
fi

for t in "${targets[@]}"; do
  mkdir -p "$fuzz_dir/corpus/$t"
  cp "${bins[@]}" "$fuzz_dir/corpus/$t/"
done

# One stream of every vector that is expected to decode, back to back
stream="$fuzz_dir/corpus/decode_oneshot/stream_of_valid_vectors.bin"
: >"$stream"
for b in "${bins[@]}"; do
  if grep -q '"expect": *"ok"' "${b%.bin}.json" 2>/dev/null; then
    cat "$b" >>"$stream"
  fi
done
cp "$stream" "$fuzz_dir/corpus/differential/"

# decode_chunked reads `[n] [spec; n] [stream...]` (see its header): give every vector, and the
# stream, as one chunk, byte by byte, and in 5 / 7-undrained / 12 byte chunks
for b in "${bins[@]}" "$stream"; do
  chunkings "$b" "$fuzz_dir/corpus/decode_chunked"
  chunkings "$b" "$stream_corpus"
done

echo "seed.sh: seeded ${targets[*]} invoke_stream from $src (${#bins[@]} vectors)"
