#!/usr/bin/env bash
# Cost to a user, measured the same way for every client: distinct crates in the normal
# dependency tree, clean release build time (-j2, a fresh target dir outside the repo) and the
# stripped size of a minimal example binary (benches/cost/<name>, each its own workspace).
#
#   benches/cost.sh [name...]      # default: every crate under benches/cost
#
# Prints a Markdown table and writes target/criterion/cost.json for benches/report.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jobs=${COST_JOBS:-2}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for d in "$here"/cost/*/; do names+=("$(basename "$d")"); done
fi
out="$here/../target/criterion"
mkdir -p "$out"
json="{"
echo "| client | crates | clean release build (-j$jobs) | stripped binary |"
echo "|---|---|---|---|"
for name in "${names[@]}"; do
    manifest="$here/cost/$name/Cargo.toml"
    # the committed lock: the tree measured is the one in the repository
    cargo fetch --quiet --locked --manifest-path "$manifest"
    # distinct name+version pairs, the example itself excluded
    crates=$(cargo tree --quiet --offline -e normal --prefix none --manifest-path "$manifest" \
        | sed 's/ (\*)$//; s/ (proc-macro)$//' | awk '{print $1, $2}' | sort -u | grep -vc '^cost-')
    target=$(mktemp -d /tmp/cost-target.XXXXXX)
    start=$(date +%s.%N)
    cargo build --quiet --offline --release -j "$jobs" --manifest-path "$manifest" --target-dir "$target"
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc)
    bin="$target/release/cost-$name"
    strip -o "$target/stripped" "$bin"
    bytes=$(stat -c %s "$target/stripped")
    rm -rf "$target"
    printf '| %s | %d | %.0f s | %.2f MiB |\n' "$name" "$crates" "$secs" "$(echo "$bytes / 1048576" | bc -l)"
    json="$json\"$name\": {\"crates\": $crates, \"build_s\": $secs, \"stripped_bytes\": $bytes, \"jobs\": $jobs},"
done
echo "${json%,}}" > "$out/cost.json"
