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
chunked="$fuzz_dir/corpus/decode_chunked"
for b in "${bins[@]}" "$stream"; do
  name="$(basename "$b" .bin)"
  { printf '\x00'; cat "$b"; } >"$chunked/$name.whole"
  { printf '\x01\x01'; cat "$b"; } >"$chunked/$name.bytewise"
  { printf '\x03\x05\x87\x0c'; cat "$b"; } >"$chunked/$name.mixed"
done

echo "seed.sh: seeded ${targets[*]} from $src (${#bins[@]} vectors)"
