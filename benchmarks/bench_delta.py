"""Delta codec benchmark: encode / decode+apply time and bytes vs naive msgpack baselines.

Run from the repository root::

    python benchmarks/bench_delta.py            # full table (about a minute on 2 cores)
    python benchmarks/bench_delta.py --quick    # fewer runs

World: 5 fields (x, y float32 quantized 0.01 in -5000..5000, hp uint8, kind uint8,
owner player id), N entities spread over 2000 x 2000 units. Each tick a fraction of them
moves by a random walk at a few units per second at 30 Hz (speed 1-6 units/s, heading
drifting), so a step is about 3-20 quantization steps per axis; the others stand still.

Measured per (N, moving fraction), median over many ticks/runs, one core:
- ``snap``: ``World.snapshot()`` (quantize + gather, done once per tick by the server),
- ``enc``: ``encode_delta(prev, cur)`` (once per tick, bytes shared by every client),
- ``dec+apply``: ``Replica.apply(bytes)`` on a client; ``old dec``: the same replay on the
  original per-group Replica (test-only reference, tests/protocol/test_delta_reference.py),
- ``bytes`` of the delta message and bytes per moving entity,
- baselines measured in the same run: ``naive delta`` = msgpack of the moved entities as a
  list of ``{"id", "x", "y"}`` maps (what a hand-rolled server would send), and ``naive
  full`` = msgpack of the whole state as a list of dicts; ratios are baseline / ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from gameserver.schema import F, WorldSchema
from gameserver.world import World
from protocol.delta import Snapshot, encode_delta
from protocol.replica import Replica

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "protocol"))
from test_delta_reference import RefReplica  # the original per-group decoder, test-only

SCHEMA = WorldSchema(
    {
        "x": F.float32(quant=0.01, lo=-5000, hi=5000),
        "y": F.float32(quant=0.01, lo=-5000, hi=5000),
        "hp": F.uint8(default=100),
        "kind": F.uint8(),
        "owner": F.player(),
    }
)
TICK_HZ = 30.0


#: Clock for every measurement; ``--clock cpu`` (thread CPU time) resists a loaded machine.
CLOCK: Callable[[], int] = time.perf_counter_ns


def _median_us(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = CLOCK()
        fn()
        samples.append(CLOCK() - t0)
    return statistics.median(samples) / 1000.0


def _make_world(n: int, rng: np.random.Generator) -> World:
    w = World(SCHEMA, capacity=64)
    w.spawn(
        n,
        x=rng.uniform(-1000, 1000, n),
        y=rng.uniform(-1000, 1000, n),
        kind=rng.integers(0, 4, n),
        owner=rng.integers(0, 50, n),
    )
    w.commit()
    return w


def _ticks(n: int, frac: float, ticks: int, seed: int) -> tuple[list[Snapshot], int]:
    """Snapshots of ``ticks + 1`` consecutive ticks and the number of movers per tick."""
    rng = np.random.default_rng(seed)
    w = _make_world(n, rng)
    slots = w.alive_slots()
    movers = slots[rng.permutation(n)[: max(1, round(n * frac))]]
    speed = rng.uniform(1.0, 6.0, movers.shape[0])  # units per second
    heading = np.asarray(rng.uniform(0, 2 * np.pi, movers.shape[0]), dtype=np.float64)
    snaps = [w.snapshot()]
    for _ in range(ticks):
        heading += rng.normal(0, 0.3, heading.shape[0])
        step = speed / TICK_HZ
        w["x"][movers] += (np.cos(heading) * step).astype(np.float32)
        w["y"][movers] += (np.sin(heading) * step).astype(np.float32)
        w.commit()
        snaps.append(w.snapshot())
    return snaps, int(movers.shape[0])


def _naive_delta(prev: Snapshot, cur: Snapshot) -> bytes:
    """Baseline: changed entities as a list of {"id", "x", "y"} maps (per-entity Python)."""
    changed = np.flatnonzero(
        (prev.columns["x"] != cur.columns["x"]) | (prev.columns["y"] != cur.columns["y"])
    )
    ids = cur.ids[changed].tolist()
    xs = (cur.columns["x"][changed] * 0.01).tolist()
    ys = (cur.columns["y"][changed] * 0.01).tolist()
    return msgpack.packb(
        [{"id": i, "x": x, "y": y} for i, x, y in zip(ids, xs, ys)], use_single_float=True
    )


def _naive_full(cur: Snapshot) -> bytes:
    """Baseline: the whole state as a list of dicts (what a naive server sends each tick)."""
    cols = {k: v.tolist() for k, v in cur.columns.items()}
    cols["x"] = [v * 0.01 for v in cols["x"]]
    cols["y"] = [v * 0.01 for v in cols["y"]]
    names = list(cols)
    rows = zip(cur.ids.tolist(), *(cols[k] for k in names))
    return msgpack.packb(
        [{"id": r[0], **dict(zip(names, r[1:]))} for r in rows], use_single_float=True
    )


def bench(n: int, frac: float, quick: bool) -> dict[str, float]:
    ticks = 8 if n >= 100_000 else 20
    snaps, moving = _ticks(n, frac, ticks, seed=n + int(frac * 1000))
    runs = max(3, (30 if quick else 200) * 1000 // max(n, 1000) // max(1, int(frac * 10)))
    runs = min(runs, 60 if quick else 400)
    pairs = list(itertools.pairwise(snaps))
    payloads = [encode_delta(a, b, tick=i + 2, base_tick=i + 1) for i, (a, b) in enumerate(pairs)]
    sizes = [len(p) for p in payloads]

    enc_runs = max(1, runs // len(pairs))

    def enc_one(a: Snapshot, b: Snapshot) -> float:
        return _median_us(lambda: encode_delta(a, b, tick=2, base_tick=1), enc_runs)

    enc = statistics.median(enc_one(a, b) for a, b in pairs)

    # Decode + apply: replay the stream onto fresh replicas.
    def replay() -> list[float]:
        r = Replica(SCHEMA.wire)
        r.apply(encode_delta(None, snaps[0], tick=1))
        out = []
        for p in payloads:
            t0 = CLOCK()
            r.apply(p)
            out.append((CLOCK() - t0) / 1000.0)
        assert r.snapshot().equals(snaps[-1]), "replica diverged"
        return out

    dec = statistics.median([x for _ in range(max(1, enc_runs)) for x in replay()])

    # The same replay on the original per-group Replica (test-only reference), same run.
    def replay_old() -> list[float]:
        r = RefReplica(SCHEMA.wire)
        r.apply(encode_delta(None, snaps[0], tick=1))
        out = []
        for p in payloads:
            t0 = CLOCK()
            r.apply(p)
            out.append((CLOCK() - t0) / 1000.0)
        return out

    dec_old = statistics.median([x for _ in range(max(1, enc_runs)) for x in replay_old()])
    w = World(SCHEMA)
    w.spawn(n)
    w.commit()
    snap_us = _median_us(w.snapshot, max(3, runs // 4))
    nd_runs = max(3, min(runs // 4, 50))
    naive_delta_us = _median_us(lambda: _naive_delta(pairs[0][0], pairs[0][1]), nd_runs)
    naive_delta_b = statistics.median(len(_naive_delta(a, b)) for a, b in pairs)
    full_runs = 3 if n >= 100_000 else 9
    naive_full_us = _median_us(lambda: _naive_full(snaps[1]), full_runs)
    naive_full_b = len(_naive_full(snaps[1]))
    size = statistics.median(sizes)
    return {
        "n": n,
        "frac": frac,
        "moving": moving,
        "snap_us": snap_us,
        "enc_us": enc,
        "dec_us": dec,
        "dec_old_us": dec_old,
        "bytes": size,
        "bpm": size / moving,
        "naive_delta_us": naive_delta_us,
        "naive_delta_b": naive_delta_b,
        "naive_full_us": naive_full_us,
        "naive_full_b": naive_full_b,
        "full_snapshot_b": len(encode_delta(None, snaps[0], tick=1)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--fractions", default="0.01,0.1,1.0")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall = perf_counter; cpu = this thread's CPU time (use on a shared, loaded box)",
    )
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.thread_time_ns if args.clock == "cpu" else time.perf_counter_ns
    sizes = [int(s) for s in args.sizes.split(",")]
    fracs = [float(f) for f in args.fractions.split(",")]
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, msgpack "
        f"{'.'.join(map(str, msgpack.version))}, {os.cpu_count()} CPUs "
        f"(machine has 2 cores; single-threaded measurement), clock={args.clock}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    header = (
        f"{'N':>7} {'moving':>7} {'snap µs':>8} {'enc µs':>8} {'dec+apply µs':>12} {'old dec':>8} "
        f"{'bytes':>8} {'B/moving':>8} | {'naive Δ B':>9} {'size x':>7} {'naive Δ µs':>10} "
        f"{'time x':>7} | {'naive full B':>12} {'size x':>7} {'full µs':>8} {'time x':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for n in sizes:
        for frac in fracs:
            r = bench(n, frac, args.quick)
            rows.append(r)
            print(
                f"{n:>7} {frac * 100:>6.0f}% {r['snap_us']:>8.1f} {r['enc_us']:>8.1f} "
                f"{r['dec_us']:>12.1f} {r['dec_old_us']:>8.1f} "
                f"{r['bytes']:>8.0f} {r['bpm']:>8.2f} | "
                f"{r['naive_delta_b']:>9.0f} {r['naive_delta_b'] / r['bytes']:>6.1f}x "
                f"{r['naive_delta_us']:>10.1f} {r['naive_delta_us'] / r['enc_us']:>6.1f}x | "
                f"{r['naive_full_b']:>12.0f} {r['naive_full_b'] / r['bytes']:>6.0f}x "
                f"{r['naive_full_us']:>8.0f} {r['naive_full_us'] / r['enc_us']:>6.1f}x",
                flush=True,
            )
    print()
    print(
        "full snapshot (delta from the empty world) bytes: "
        + ", ".join(f"N={r['n']}: {r['full_snapshot_b']}" for r in rows if r["frac"] == fracs[0])
    )
    target = [r for r in rows if r["n"] == 10_000 and abs(r["frac"] - 0.1) < 1e-9]
    if target:
        t = target[0]
        print(
            f"target 10k entities / 10% moving: encode {t['enc_us']:.0f} µs (<= 1000 µs), "
            f"{t['bpm']:.2f} B per moving entity (<= 6 B)"
        )


if __name__ == "__main__":
    main()
