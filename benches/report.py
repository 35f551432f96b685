#!/usr/bin/env python3
"""Print the README tables from the results of `cargo bench -p invoke-benches` (decode, emulator).

Throughput in MiB/s and messages/s, with ratios taken within the same run. The decode bench
writes its medians to target/criterion/decode-streams.json; the emulator bench is criterion's."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def seconds(group, bench):
    est = json.loads((root / group / bench / "new" / "estimates.json").read_text())
    return est["mean"]["point_estimate"] / 1e9


decode = root / "decode-streams.json"
if decode.exists():
    print(
        "| payload | feed | InvokeStream MiB/s | msgs/s | MessageDecoder msgs/s | InvokeStream / MessageDecoder"
        " | smithy msgs/s | InvokeStream / smithy | crc32fast MiB/s | InvokeStream / crc32fast |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = json.loads(decode.read_text())
    for group, m in sorted(results.items(), key=lambda kv: -kv[1]["messages"]):
        t = m["median_seconds"]
        mib = m["bytes"] / 2**20
        msgs = m["messages"] / 1e6
        crc = t["crc32fast_one_buffer"]
        for feed, label in (("one_buffer", "one buffer"), ("1500B_chunks", "1,500 B chunks")):
            ours = t[f"invoke_stream_{feed}"]
            codec = t[f"message_decoder_{feed}"]
            smithy = t[f"smithy_{feed}"]
            print(
                f"| {group.removeprefix('decode_')} | {label} | {mib / ours:,.0f} | {msgs / ours:,.2f} M"
                f" | {msgs / codec:,.2f} M | {codec / ours:.2f} x"
                f" | {msgs / smithy:,.2f} M | {smithy / ours:.2f} x"
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
