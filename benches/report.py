#!/usr/bin/env python3
"""Print the README tables from criterion's results of `cargo bench -p invoke-benches` (decode, emulator).

Throughput in MiB/s and messages/s, with ratios taken within the same run."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
meta = json.loads((root / "decode-streams.json").read_text())


def seconds(group, bench):
    est = json.loads((root / group / bench / "new" / "estimates.json").read_text())
    return est["mean"]["point_estimate"] / 1e9


rows = []
print("| payload | feed | invoke-proto MiB/s | msgs/s | smithy MiB/s | msgs/s | vs smithy | crc32fast MiB/s | vs crc32fast |")
print("|---|---|---|---|---|---|---|---|---|")
for group, m in sorted(meta.items(), key=lambda kv: -kv[1]["messages"]):
    crc = seconds(group, "crc32fast_hash")
    for feed, label in (("one_buffer", "one buffer"), ("1500B_chunks", "1,500 B chunks")):
        ours = seconds(group, f"invoke_proto_{feed}")
        theirs = seconds(group, f"smithy_{feed}")
        mib = m["bytes"] / 2**20
        print(
            f"| {group.removeprefix('decode_')} | {label} | {mib / ours:,.0f} | {m['messages'] / ours / 1e6:,.2f} M"
            f" | {mib / theirs:,.0f} | {m['messages'] / theirs / 1e6:,.2f} M | {theirs / ours:.2f} x"
            f" | {mib / crc:,.0f} | {crc / ours:.2f} x |"
        )

emu = root / "emulator-streams.json"
if emu.exists():
    print()
    print("| chunks | emulator MiB/s | msgs/s | minimal hyper MiB/s | msgs/s | ratio | TTFB emulator | TTFB minimal |")
    print("|---|---|---|---|---|---|---|---|")
    for group, m in json.loads(emu.read_text()).items():
        e = seconds(group, "emulator")
        h = seconds(group, "minimal_hyper")
        mib = m["bytes"] / 2**20
        print(
            f"| {group.removeprefix('stream_')} | {mib / e:,.0f} | {m['messages'] / e / 1e6:,.2f} M | {mib / h:,.0f}"
            f" | {m['messages'] / h / 1e6:,.2f} M | {h / e:.2f} x | {m['ttfb_emulator_us']} µs | {m['ttfb_minimal_us']} µs |"
        )
sys.exit(0)
