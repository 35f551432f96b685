#!/usr/bin/env bash
# The code each client runs to its first event, counted rather than timed: the transport bench's
# ttfe16B workload under cachegrind, one client at a time, at two call counts; the difference
# divided by the calls it adds is one call's share, free of the set-up (runtimes, clients,
# warm-up). Per call: instructions, and the L1 instruction-cache misses at this CPU's L1
# geometry (64 KiB, 4-way), which is about the distinct code a call runs: it does not fit the
# L1 (raw hyper's call, server included, runs about 90 KiB), so each call fetches that code
# again from L2 or beyond. The same build gives the same misses within about 1 % on a quiet
# or a busy machine, where the time to first event moves with the VM.
#
#   benches/footprint.sh                          # the first-event clients, one table
#   benches/footprint.sh "invoke-tokio" "raw hyper+proto"   # and the functions that differ
#
# Needs valgrind. Under valgrind the CPU shows no SHA extensions: ring hashes with its AVX code
# (60 lines a signed call; its SHA-NI code is shorter), the same for every client that signs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../target/footprint"
mkdir -p "$out"
command -v valgrind > /dev/null || { echo "footprint.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo bench --quiet -p invoke-benches --bench transport --no-run
bin=$(cargo bench --quiet -p invoke-benches --bench transport --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "transport" and m.get("executable"):
        print(m["executable"])')
if [ "$#" -gt 0 ]; then
    clients=("$@")
else
    clients=("raw hyper" "raw hyper+crc" "raw hyper+sign" "raw hyper+proto" "invoke-tokio" "raw ureq" "invoke-blocking" "aws-sdk-lambda")
fi
files=()
for client in "${clients[@]}"; do
    for calls in 100 300; do
        file="$out/$(echo "$client" | tr ' +' '__')-$calls.out"
        TRANSPORT_ONLY="$client" TRANSPORT_WORKLOAD=ttfe16B TRANSPORT_TTFE_CALLS=$calls \
            valgrind --tool=cachegrind --cache-sim=yes --I1=65536,4,64 --D1=32768,8,64 \
            --LL=524288,16,64 --cachegrind-out-file="$file" "$bin" --bench > "$out/last.log" 2>&1 ||
            { cat "$out/last.log" >&2; exit 1; }
        files+=("$client=$file")
    done
done
python3 "$here/footprint.py" "${files[@]}"
