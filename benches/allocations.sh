#!/usr/bin/env bash
# What each client of the transport bench asks of the allocator per call, counted rather than
# timed: the bench built with `--features count-allocations` (a counting global allocator;
# only the client's thread is counted, where every client does all its work), every workload,
# a few calls each (the counts barely move from call to call), then a table of the medians:
# blocks allocated, bytes, and the most bytes held at one time.
#
#   benches/allocations.sh          # about a minute once built; TRANSPORT_ONLY narrows it
#
# The counts go to target/criterion/transport-allocations.json; the release bench's
# transport.json is left alone (the counting build's times are not the release's).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TRANSPORT_SAMPLES=${TRANSPORT_SAMPLES:-3} TRANSPORT_TTFE_CALLS=${TRANSPORT_TTFE_CALLS:-50} \
    cargo bench --quiet -p invoke-benches --bench transport --features count-allocations > /dev/null
python3 "$here/report.py" --allocations
