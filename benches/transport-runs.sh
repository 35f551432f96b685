#!/usr/bin/env bash
# The transport bench several times back to back, then the issues' goal ratios of every run side
# by side (single runs swing by about 0.1 on a 2-core machine; the README quotes such ranges).
#
#   benches/transport-runs.sh [RUNS]      # default 3; about half a minute each, on a quiet machine
#
# Each run's JSON stays as target/criterion/transport-run-<k>.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${1:-3}
out="$here/../target/criterion"
cargo bench --quiet -p invoke-benches --bench transport --no-run
files=()
for k in $(seq "$runs"); do
    cargo bench --quiet -p invoke-benches --bench transport > /dev/null
    cp "$out/transport.json" "$out/transport-run-$k.json"
    files+=("$out/transport-run-$k.json")
done
python3 "$here/report.py" --runs "${files[@]}"
