#!/usr/bin/env bash
# Fuzz smoke run: builds the cargo-fuzz targets in fuzz/ once, then runs each for
# $FUZZ_SECONDS seconds (default 30) from a corpus seeded with the shared vectors.
# Exits non-zero if any target finds a crash (or fails to build). Needs a nightly toolchain;
# without one it says so and exits 0. Crashing inputs are kept in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(decode_oneshot decode_chunked roundtrip differential response_head invoke_stream invoke_driver request_parse credentials_chain)
seconds="${FUZZ_SECONDS:-30}"
case "$seconds" in
  '' | *[!0-9]* | 0)
    echo "fuzz.sh: FUZZ_SECONDS must be a positive whole number of seconds, got '$seconds'" >&2
    exit 2
    ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz smoke run SKIPPED: no nightly toolchain present (cargo +nightly --version failed); cargo-fuzz needs nightly"
  exit 0
fi
cargo +nightly --version

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  # a known release: a new one cannot break this step unannounced
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
cargo +nightly fuzz --version

bash fuzz/seed.sh

# One build for all targets; `fuzz run` below reuses it (same default flags)
cargo +nightly fuzz build

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
for t in "${targets[@]}"; do
  echo
  echo "==> fuzz $t for ${seconds}s"
  if cargo +nightly fuzz run "$t" -- -max_total_time="$seconds" -print_final_stats=1 \
    >"$logs/$t.log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
  fi
  # libFuzzer is chatty: show the end of the run (the whole log on failure)
  if [ "$status" = ok ]; then tail -n 12 "$logs/$t.log"; else cat "$logs/$t.log"; fi
  execs="$(awk '/stat::number_of_executed_units/ {print $2}' "$logs/$t.log")"
  rate="$(awk '/stat::average_exec_per_sec/ {print $2}' "$logs/$t.log")"
  printf '%s\n' "$t: $status, ${execs:-?} runs, ${rate:-?} exec/s" >>"$logs/summary"
done

echo
echo "==> fuzz summary (${seconds}s per target)"
cat "$logs/summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke run FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
echo "fuzz smoke run passed"
