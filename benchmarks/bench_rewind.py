"""Cost of lag compensation: the world history ring, side by side with history off.

For 1k / 10k / 100k critters in the example arena (10% moving, 16 players sending one input
per tick, 30 Hz), two rooms run in the same process on identical seeds and inputs, one with
the default 1 s of history (31 ticks at 30 Hz) and one with ``history=0``; their ticks are
timed interleaved (alternating which goes first), so both see the same machine load. It
reports:

* ``step off`` / ``step on``: median ``Simulation.step()`` time without / with history, and
  their ratio (the whole per-tick cost of keeping history, inside the step);
* ``record``: the history ring's fill alone (one copy per field + alive + generations),
  timed on a separate ring fed from the history-off room;
* memory: the ring's bytes, per entity and per entity per second of history;
* ``hits``: ``world.history.hits`` for one shot, and for 32 shots spread over 4 distinct past
  ticks (every critter a candidate, radius 1), median per call; ``found`` counts the shots
  that hit (each aims at a critter's recorded position, so nearly all should).

Run::

    python benchmarks/bench_rewind.py           # 1k, 10k, 100k
    python benchmarks/bench_rewind.py --quick   # fewer ticks (smoke run)

Single-threaded (one room = one core at most); the machine has 2 cores shared with other
work, so only the ratios are stable, not the absolute times.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.arena import CRITTER, Arena
from gameserver.history import WorldHistory, history_length
from gameserver.simulation import Simulation

PLAYERS = 16
HISTORY_S = 1.0


def _rooms(n: int, seed: int) -> tuple[Simulation, Simulation]:
    cfg = {"critters": n, "moving": 0.1, "orbs": 40, "hunters": 3, "size": 600.0}
    on = Simulation(Arena, seed=seed, config=cfg, history=HISTORY_S)
    off = Simulation(Arena, seed=seed, config=cfg, history=0)
    for sim in (on, off):
        for p in range(1, PLAYERS + 1):
            sim.join(p, f"p{p}")
    return on, off


def _inputs(sims: tuple[Simulation, ...], tick: int, rng: np.random.Generator) -> None:
    dxy = rng.uniform(-1, 1, (PLAYERS, 2))
    for sim in sims:
        for p in range(PLAYERS):
            sim.queue_input(p + 1, tick + 1, {"dx": float(dxy[p, 0]), "dy": float(dxy[p, 1]),
                                              "boost": False}, render_tick=sim.tick - 3)


def bench(n: int, ticks: int) -> dict[str, float]:
    on, off = _rooms(n, seed=11)
    rng = np.random.default_rng(3)
    rows = history_length(HISTORY_S, on.tick_rate)
    ring = WorldHistory(off.world, rows)  # the fill alone, fed from the history-off room
    for t in range(rows + 2):  # warm up: fill the ring once
        _inputs((on, off), t, rng)
        on.step()
        off.step()
        ring.record(off.tick)
    t_on: list[float] = []
    t_off: list[float] = []
    t_rec: list[float] = []
    for k in range(ticks):
        _inputs((on, off), rows + 2 + k, rng)
        pair = ((on, t_on), (off, t_off)) if k % 2 == 0 else ((off, t_off), (on, t_on))
        for sim, out in pair:
            t0 = time.perf_counter()
            sim.step()
            out.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ring.record(off.tick)
        t_rec.append(time.perf_counter() - t0)
    assert on.world.count == off.world.count  # same game, same inputs
    hist = on.history
    assert hist is not None
    entities = on.world.count
    # hits: 32 shots at entities' positions 2..5 ticks back, every critter a candidate
    w = on.world
    shots = 32
    ticks_back = on.tick - 2 - (np.arange(shots) % 4)
    pts = np.zeros((shots, 2))
    for j, t in enumerate(ticks_back.tolist()):
        past = w.at(t)
        crit = past.slots[past["kind"][past.slots] == CRITTER]
        s = crit[(j * 7919) % len(crit)]
        pts[j] = past["x"][s], past["y"][s]
    t_hits: list[float] = []
    t_one: list[float] = []
    found = 0
    for _ in range(max(5, ticks // 4)):
        t0 = time.perf_counter()
        h = hist.hits(pts, ticks_back, 1.0, where=lambda p: p["kind"] == CRITTER)
        t_hits.append(time.perf_counter() - t0)
        found = int((h.nearest(shots) != 0).sum())
        t0 = time.perf_counter()
        hist.hits(pts[:1], ticks_back[:1], 1.0, where=lambda p: p["kind"] == CRITTER)
        t_one.append(time.perf_counter() - t0)
    med = statistics.median
    return {
        "entities": entities, "capacity": w.capacity, "rows": rows,
        "step_off": med(t_off) * 1e6, "step_on": med(t_on) * 1e6,
        "ratio": med(t_on) / med(t_off), "record": med(t_rec) * 1e6,
        "bytes": hist.nbytes, "per_entity": hist.nbytes / entities,
        "per_entity_s": hist.nbytes / entities / HISTORY_S,
        "per_slot_tick": hist.nbytes / w.capacity / rows,
        "hits": med(t_hits) * 1e6, "hits_per_shot": med(t_hits) * 1e6 / shots,
        "found": found, "shots": shots, "one": med(t_one) * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer ticks (smoke run)")
    ap.add_argument("--sizes", default="1000,10000,100000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ticks = {1000: 400, 10000: 200, 100000: 60}
    print(f"# bench_rewind: {platform.python_version()} numpy {np.__version__}, "
          f"{os.cpu_count()} cpus (shared), arena 30 Hz, {PLAYERS} players, "
          f"history {HISTORY_S} s")
    print()
    print("| entities | capacity | rows | step off | step on | on/off | record | ring MiB "
          "| B/entity/s | B/slot/tick | hits 1 shot | hits 32 shots / 4 ticks | found |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        k = ticks.get(n, 100)
        r = bench(n, 20 if args.quick else k)
        print(f"| {r['entities']:,} | {r['capacity']:,} | {r['rows']} "
              f"| {r['step_off']:,.0f} us | {r['step_on']:,.0f} us | {r['ratio']:.3f}x "
              f"| {r['record']:,.0f} us | {r['bytes'] / 2**20:,.1f} "
              f"| {r['per_entity_s']:,.0f} | {r['per_slot_tick']:.1f} "
              f"| {r['one']:,.0f} us | {r['hits']:,.0f} us "
              f"| {r['found']}/{r['shots']} |", flush=True)


if __name__ == "__main__":
    main()
