#!/usr/bin/env python3
"""One call's share of the cachegrind counts that benches/footprint.sh took: for each client, the
counts of its run of 300 calls less those of its run of 100, over 200. With two clients, also
the functions whose L1 instruction misses differ most between them.

    footprint.py "client=run-100.out" "client=run-300.out" ...
"""
import collections
import sys

CALLS_ADDED = 200


def load(path):
    """Event names, and each function's counts summed over its lines"""
    events, counts, function = None, {}, None
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("fn="):
            function = line[3:].strip()
        elif line[:1].isdigit():
            # a line's counts, the trailing zeros left out
            values = [int(v) for v in line.split()[1:]]
            sums = counts.setdefault(function, [0] * len(events))
            for i, v in enumerate(values):
                sums[i] += v
    return events, counts


def per_call(few, many):
    events, a = load(few)
    _, b = load(many)
    zero = [0] * len(events)
    return events, {
        f: [(y - x) / CALLS_ADDED for x, y in zip(a.get(f, zero), b.get(f, zero))]
        for f in set(a) | set(b)
    }


def main(args):
    runs = collections.defaultdict(list)
    for arg in args:
        client, path = arg.split("=", 1)
        runs[client].append(path)
    clients = {}
    for client, (few, many) in runs.items():
        events, functions = per_call(few, many)
        clients[client] = functions
    col = {e: i for i, e in enumerate(events)}
    first = next(iter(clients))

    def total(client, event):
        return sum(v[col[event]] for v in clients[client].values())

    for client in clients:
        if total(client, "I1mr") <= 0:
            sys.exit(f"no calls counted for {client!r}: a client of the transport bench by that name?")

    print("Per call to the first event (ttfe16B; server side included, the same for every client)\n")
    print(f"| client | instructions | L1i misses | x {first} |")
    print("|---|---|---|---|")
    for client in clients:
        misses = total(client, "I1mr")
        print(
            f"| {client} | {total(client, 'Ir'):,.0f} | {misses:,.0f} "
            f"| {misses / total(first, 'I1mr'):.2f} |"
        )
    if len(clients) == 2:
        a, b = clients.values()
        names = list(clients)
        zero = [0] * len(events)
        i = col["I1mr"]
        diff = {f: a.get(f, zero)[i] - b.get(f, zero)[i] for f in set(a) | set(b)}
        ranked = sorted(diff, key=lambda f: -diff[f])
        print(f"\nL1i misses per call by function: {names[0]} | {names[1]} | difference\n")
        for f in ranked[:30] + ["..."] + ranked[-10:]:
            if f == "...":
                print("...")
                continue
            print(f"{a.get(f, zero)[i]:7.1f} {b.get(f, zero)[i]:7.1f} {diff[f]:+7.1f}  {f[:140]}")


if __name__ == "__main__":
    main(sys.argv[1:])
