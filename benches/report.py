#!/usr/bin/env python3
"""Print the README tables from the results of `cargo bench -p invoke-benches` (decode, emulator,
transport; sign is criterion's own report) and of `benches/cost.sh`, whichever are present.

Throughput in MiB/s and messages/s, with ratios taken within the same run. The decode bench
writes its medians to target/criterion/decode-streams.json; the emulator bench is criterion's."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def goal_labels(raw):
    """The issues' three goals for a client measured against its raw client `raw`"""
    return (
        (f"64 KiB: CPU per MiB vs {raw}", "at most 1.1 x"),
        ("256 B: msgs/s vs aws-sdk-lambda", "at least 4 x"),
        (f"time to first event vs {raw} (median)", "at most 1.15 x"),
    )


def goal_ratios(t, ours, raw):
    """The three goal ratios of `ours` in one transport run `t`, None if a workload lacks it"""

    def row(workload, client):
        return t.get(workload, {}).get("clients", {}).get(client)

    if not all(row(w, c) for w in ("w64KiB", "w256B", "ttfe16B") for c in (ours, raw, "aws-sdk-lambda")):
        return None
    return (
        row("w64KiB", ours)["cpu_ms_per_mib"] / row("w64KiB", raw)["cpu_ms_per_mib"],
        row("w256B", ours)["msgs_per_s"] / row("w256B", "aws-sdk-lambda")["msgs_per_s"],
        row("ttfe16B", ours)["ttfe_median_us"] / row("ttfe16B", raw)["ttfe_median_us"],
    )


CLIENTS = (("invoke-blocking", "raw ureq"), ("invoke-tokio", "raw hyper"))


def host_parts(t):
    """The CPU a transport run ran on and its CRC-32 speed, as text (`None` for runs from
    before the bench recorded its host)"""
    h = t.get("host")
    if not h:
        return None
    cpu = f"{h['cpu']} (family {h['family']}, model {h['model']}, L2 {h['l2_per_core']} per core)"
    crc = (
        f"CRC-32 by {h['crc_kernel']} at {h['crc32fast_gib_per_s']:.1f} GiB/s over 64 KiB in cache"
        f" ({1000 / (1024 * h['crc32fast_gib_per_s']):.3f} ms per MiB)"
    )
    return cpu, crc


if sys.argv[1:2] == ["--allocations"]:
    # benches/allocations.sh: what each client's call asks of the allocator, per workload
    a = json.loads((root / "transport-allocations.json").read_text())
    columns = [w for w in ("ttfe16B", "w256B", "w64KiB") if w in a]
    title = {
        "ttfe16B": "one 16 B chunk",
        "w256B": "64 MiB in 256 B chunks",
        "w64KiB": "256 MiB in 64 KiB chunks",
    }
    print("| client | " + " | ".join(f"{title[w]}: blocks, bytes (most held)" for w in columns) + " |")
    print("|---|" + "---|" * len(columns))
    clients = list(a[columns[0]]["clients"]) if columns else []

    def size(n):
        return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} KiB"

    for name in clients:
        cells = []
        for w in columns:
            r = a[w]["clients"].get(name, {}).get("allocations")
            cells.append(
                "-" if r is None
                else f"{r['blocks_median']:,}, {size(r['bytes_median'])} ({size(r['peak_bytes_median'])})"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    sys.exit(0)

if sys.argv[1:2] == ["--runs"]:
    # benches/transport-runs.sh: the goal ratios of several transport runs side by side
    runs = [json.loads(pathlib.Path(f).read_text()) for f in sys.argv[2:]]
    print("| goal | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " |")
    print("|---|" + "---|" * len(runs))
    for ours, raw in CLIENTS:
        per_run = [goal_ratios(t, ours, raw) for t in runs]
        for k, (label, goal) in enumerate(goal_labels(raw)):
            cells = " | ".join("-" if r is None else f"{r[k]:.2f} x" for r in per_run)
            print(f"| {ours}, {label}, {goal} | {cells} |")
    def measure(workload, key):
        """A client's figure `key` of `workload` in a run, or None"""
        return lambda t, c: t.get(workload, {}).get("clients", {}).get(c, {}).get(key)

    cpu = measure("w64KiB", "cpu_ms_per_mib")
    ttfe = measure("ttfe16B", "ttfe_median_us")

    def ratio_row(label, of, what, num, den):
        """A row of num's figure `of` (`what`) against den's, run by run, if every run has both"""
        if all(of(t, num) and of(t, den) for t in runs):
            cells = " | ".join(f"{of(t, num) / of(t, den):.2f} x" for t in runs)
            print(f"| {label}, {what} vs {den} | {cells} |")

    cpu64 = (cpu, "64 KiB: CPU per MiB")
    first = (ttfe, "time to first event")
    # the floor of the 64 KiB goal: raw hyper plus a CRC-32 over every byte, in the same run
    ratio_row("(floor) raw hyper+crc", *cpu64, "raw hyper+crc", "raw hyper")
    ratio_row("(floor) invoke-tokio", *cpu64, "invoke-tokio", "raw hyper+crc")
    # all that a correct client must do, on raw hyper: the protocol's floor
    ratio_row("(floor) raw hyper+proto", *cpu64, "raw hyper+proto", "raw hyper")
    ratio_row("(floor) invoke-tokio", *cpu64, "invoke-tokio", "raw hyper+proto")
    # raw hyper driving its connection within the call (as invoke-tokio does), same run
    ratio_row("(inline) raw hyper inline", *cpu64, "raw hyper inline", "raw hyper")
    # the floors of the first-event goal, against raw hyper+crc (which checks 0.2 KiB more
    # than raw hyper there): diagnostic rows all three, so measured in the same rounds,
    # after the interleaved ones. Raw hyper signing its requests; raw hyper doing all that
    # a correct client must (signing, the head, decoding with the CRCs).
    ratio_row("(floor) raw hyper+sign", *first, "raw hyper+sign", "raw hyper+crc")
    ratio_row("(floor) raw hyper+proto", *first, "raw hyper+proto", "raw hyper+crc")
    # the CPU when it is the first or differs from the run before, then each run's CRC speed
    last_cpu = None
    for i, parts in enumerate(host_parts(t) for t in runs):
        if parts is None:
            continue
        cpu, crc = parts
        if cpu != last_cpu:
            print(f"\nHost (run {i + 1}): {cpu}; {crc}")
            last_cpu = cpu
        else:
            print(f"Run {i + 1}: {crc}")
    sys.exit(0)


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

transport = root / "transport.json"
if transport.exists():
    t = json.loads(transport.read_text())

    def row(workload, client):
        return t.get(workload, {}).get("clients", {}).get(client)

    for workload in ("w64KiB", "w256B"):
        if workload not in t:
            continue
        w = t[workload]
        print()
        print(f"{workload.removeprefix('w')} chunks, {w['payload_bytes'] / 2**20:.0f} MiB payload, median of {w['calls']} calls:")
        print()
        print("| client | MiB/s | msgs/s | client CPU ms/MiB |")
        print("|---|---|---|---|")
        for name, r in w["clients"].items():
            print(f"| {name} | {r['mib_per_s']:,.0f} | {r['msgs_per_s'] / 1e6:,.2f} M | {r['cpu_ms_per_mib']:.3f} |")
    if "ttfe16B" in t:
        print()
        print(f"Time to first event (one 16 B chunk, warm connection, {t['ttfe16B']['calls']} calls):")
        print()
        # a warm connection: a client that reconnected during the calls shows it here
        print("| client | median | p90 | connections opened |")
        print("|---|---|---|---|")
        for name, r in t["ttfe16B"]["clients"].items():
            print(
                f"| {name} | {r['ttfe_median_us']:.0f} µs | {r['ttfe_p90_us']:.0f} µs"
                f" | {r.get('connections_opened', '?')} |"
            )

    def ratios(ours, raw):
        goals = goal_ratios(t, ours, raw)
        if goals is None:
            return
        print()
        print(f"| {ours} | measured | goal |")
        print("|---|---|---|")
        for (label, goal), value in zip(goal_labels(raw), goals):
            print(f"| {label} | {value:.2f} x | {goal} |")

    for ours, raw in CLIENTS:
        ratios(ours, raw)
    host = host_parts(t)
    if host:
        print()
        print("Host: {}; {}.".format(*host))
    if row("w64KiB", "aws-sdk-lambda") and row("w64KiB", "raw hyper"):
        sdk_cpu = row("w64KiB", "aws-sdk-lambda")["cpu_ms_per_mib"] / row("w64KiB", "raw hyper")["cpu_ms_per_mib"]
        print()
        print(f"aws-sdk-lambda against raw hyper: {sdk_cpu:.2f} x the CPU per MiB at 64 KiB (issue baseline 1.36 x).")

cost = root / "cost.json"
if cost.exists():
    c = json.loads(cost.read_text())
    print()
    jobs = next((r.get("jobs") for r in c.values() if r.get("jobs")), "?")
    print(f"| client | distinct crates | clean release build (-j{jobs}) | stripped binary |")
    print("|---|---|---|---|")
    for name, r in c.items():
        print(f"| {name} | {r['crates']} | {float(r['build_s']):.0f} s | {r['stripped_bytes'] / 2**20:.2f} MiB |")
    sdk = c.get("aws-sdk-lambda")
    for ours in ("invoke-blocking", "invoke-tokio"):
        if sdk and ours in c:
            r = c[ours]
            print(
                f"\n{ours} against aws-sdk-lambda + aws-config: {r['crates'] / sdk['crates']:.2f} x the crates,"
                f" {float(r['build_s']) / float(sdk['build_s']):.2f} x the build time."
            )
sys.exit(0)
