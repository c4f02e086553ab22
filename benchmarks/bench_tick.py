"""Tick cost of the example arena: does one room hold 60 Hz with thousands of entities?

For 1k / 10k / 100k entities (critters; ``--moving`` of them moving, default 10%) and
``--players`` players each sending one input per tick, it measures:

* ``on_tick``: the game's vectorized rules alone (median and p99, microseconds);
* ``step``: the whole ``Simulation.step()`` (input batch, on_tick, world commit);
* ``snapshot``: ``World.snapshot()`` (the delta encoder's input, once per send tick);
* the peer: the same critter rules (wander, bounce, flee the nearest player) written as a
  plain per-entity Python loop, timed on identical data, and the speed-up over it.

The last column is ``step`` as a share of the 16.7 ms budget of a 60 Hz tick. Run::

    python benchmarks/bench_tick.py            # 1k, 10k, 100k
    python benchmarks/bench_tick.py --quick    # fewer ticks (smoke run)

The machine has 2 cores; this is single-threaded (one room = one core at most).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.arena import CRITTER, CRITTER_SPEED, FLEE_SPEED, RESTING, SENSE, TURN_SIGMA, Arena
from gameserver.inputs import InputBatch
from gameserver.simulation import Simulation

BUDGET_60HZ_US = 1e6 / 60


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def naive_critters(
    xs: list[float], ys: list[float], angs: list[float], moving: list[bool],
    players: list[tuple[float, float]], size: float, dt: float, rnd: random.Random,
) -> None:
    """The arena's critter rules as a per-entity Python loop (the peer, for comparison)."""
    sigma = TURN_SIGMA * math.sqrt(dt)
    for i in range(len(xs)):
        x, y = xs[i], ys[i]
        near, best = -1, SENSE * SENSE
        for j, (px, py) in enumerate(players):
            d = (x - px) ** 2 + (y - py) ** 2
            if d <= best:
                near, best = j, d
        if not moving[i]:
            continue
        a = angs[i] + rnd.gauss(0.0, sigma)
        speed = CRITTER_SPEED
        if near >= 0:
            px, py = players[near]
            a = math.atan2(y - py, x - px)
            speed = FLEE_SPEED
        x += math.cos(a) * speed * dt
        y += math.sin(a) * speed * dt
        if x < 0 or x > size:
            a = math.pi - a
        if y < 0 or y > size:
            a = -a
        angs[i] = (a + math.pi) % (2 * math.pi) - math.pi
        xs[i] = min(max(x, 0.0), size)
        ys[i] = min(max(y, 0.0), size)


def bench(entities: int, *, moving: float, players: int, ticks: int, naive_ticks: int,
          seed: int = 1) -> dict[str, Any]:
    size = 100.0 if entities <= 2000 else 300.0 if entities <= 20000 else 600.0
    config = {"critters": entities, "moving": moving, "orbs": 0, "hunters": 0, "size": size}
    sim = Simulation(Arena, seed=seed, config=config)
    for pid in range(1, players + 1):
        sim.join(pid, f"p{pid}")
    game = sim.game
    inner = game.on_tick
    tick_times: list[float] = []

    def timed(tick: int, dt: float, inputs: InputBatch) -> None:
        t0 = time.perf_counter()
        inner(tick, dt, inputs)
        tick_times.append(time.perf_counter() - t0)

    game.on_tick = timed  # type: ignore[method-assign]
    rng = np.random.default_rng(seed)
    step_times: list[float] = []
    snap_times: list[float] = []
    for t in range(ticks):
        for pid in range(1, players + 1):
            dx, dy = rng.uniform(-1, 1, 2)
            sim.queue_input(pid, t + 1, {"dx": float(dx), "dy": float(dy), "boost": False})
        r = sim.step()
        step_times.append(r.work)
        sim.drain_events()
        t0 = time.perf_counter()
        sim.world.snapshot()
        snap_times.append(time.perf_counter() - t0)
    # The peer: identical critter data, plain Python loop.
    w = sim.world
    slots = w.alive_slots()
    cs = slots[w["kind"][slots] == CRITTER]
    xs, ys, angs = w["x"][cs].tolist(), w["y"][cs].tolist(), w["angle"][cs].tolist()
    mov = (w["state"][cs] != RESTING).tolist()
    psl = w.slots_of(game._pents)  # type: ignore[attr-defined]
    pl = list(zip(w["x"][psl].tolist(), w["y"][psl].tolist()))
    rnd = random.Random(seed)
    naive: list[float] = []
    for _ in range(naive_ticks):
        t0 = time.perf_counter()
        naive_critters(xs, ys, angs, mov, pl, size, sim.dt, rnd)
        naive.append(time.perf_counter() - t0)
    us = 1e6
    return {
        "entities": w.count,
        "moving": int(sum(mov)),
        "on_tick_med": statistics.median(tick_times) * us,
        "on_tick_p99": _pct(tick_times, 99) * us,
        "step_med": statistics.median(step_times) * us,
        "step_p99": _pct(step_times, 99) * us,
        "snap_med": statistics.median(snap_times) * us,
        "naive_med": statistics.median(naive) * us,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="entity counts, comma-separated")
    ap.add_argument("--moving", type=float, default=0.1, help="fraction of critters moving")
    ap.add_argument("--players", type=int, default=16)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="30 ticks per size")
    args = ap.parse_args(argv)
    ticks = 30 if args.quick else args.ticks
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# arena tick cost: python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, {args.players} players, moving {args.moving:.0%}, "
          f"{ticks} ticks per size")
    print(f"{'entities':>9} {'moving':>7} {'on_tick med':>12} {'p99':>9} {'step med':>9} "
          f"{'p99':>9} {'snapshot':>9} {'py loop':>10} {'speedup':>8} {'60Hz use':>9}")
    for n in sizes:
        naive_ticks = max(2, min(20, 200_000 // max(n, 1)))
        r = bench(n, moving=args.moving, players=args.players, ticks=ticks,
                  naive_ticks=naive_ticks)
        print(f"{r['entities']:>9} {r['moving']:>7} {r['on_tick_med']:>10.0f}us "
              f"{r['on_tick_p99']:>7.0f}us {r['step_med']:>7.0f}us {r['step_p99']:>7.0f}us "
              f"{r['snap_med']:>7.0f}us {r['naive_med']:>8.0f}us "
              f"{r['naive_med'] / r['on_tick_med']:>7.1f}x "
              f"{r['step_med'] / BUDGET_60HZ_US:>8.1%}")
    print("(py loop: the same critter rules as a per-entity Python loop; speedup = py loop / "
          "on_tick median, although on_tick also moves players, orbs and handles inputs)")


if __name__ == "__main__":
    main()
