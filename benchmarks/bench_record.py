"""Recording cost: a room's tick work with ``--record`` on vs off, interleaved in one run.

Two identical arena rooms (same seed, same config ``{"critters": N}``, same players and
inputs) run side by side, tick for tick, alternating which one goes first: one records to a
replay file (:class:`gameserver.replay.recorder.Recorder`, as ``--record DIR`` does), the
other does not. A tick's work is what the server's room measures as tick work
(``gameserver_tick_work_seconds``): ``Simulation.step()``, the recorder's ``after_tick``
(state hash, runs and keyframes handed to the writer thread), and on send ticks (15 of
30 Hz) the snapshot and one delta encode. Inputs arrive between ticks (in the server: when
the session reads them); their cost with and without the log sink is measured apart, per
input. Reported for each N:

* tick wall time (``perf_counter``) and thread CPU time (``thread_time``), mean and median,
  off and on, and the ratio on / off (the overhead);
* the recorder's own work (``after_tick``, timed directly: less noisy than the difference);
* CPU of the writer thread per tick (process CPU minus this thread's);
* ``queue_input`` CPU per input, off and on;
* bytes of replay file per second of match, and how much of it keyframes are.

Run (from the repository root)::

    python benchmarks/bench_record.py                 # 1,000 and 10,000 entities
    python benchmarks/bench_record.py --ticks 300 --entities 1000
    python benchmarks/bench_record.py --restore      # --record on a handover's receiver

The machine has 2 cores shared with other work: compare the ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.arena import Arena
from gameserver.replay.recorder import Recorder
from gameserver.simulation import Simulation
from protocol.delta import encode_delta


def _room(entities: int, players: int, seed: int) -> Simulation:
    sim = Simulation(Arena, seed=seed, config={"critters": entities}, tick_rate=30)
    return sim


def bench(entities: int, *, players: int, ticks: int, keyframe_s: float, threaded: bool,
          seed: int = 1) -> dict[str, Any]:
    off = _room(entities, players, seed)
    on = _room(entities, players, seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench_record_"))
    rec = Recorder(on, Arena, tmp / "bench.gsreplay", send_rate=15,
                   keyframe_seconds=keyframe_s, threaded=threaded)
    for sim in (off, on):
        for pid in range(1, players + 1):
            sim.join(pid, f"p{pid}", {"v": 1, "name": f"p{pid}"})
    rng = np.random.default_rng(seed)
    times: dict[str, dict[str, list[float]]] = {
        k: {"wall": [], "cpu": []} for k in ("off", "on")}
    rec_wall: list[float] = []
    qtimes = {"off": 0, "on": 0}
    prev: dict[str, Any] = {"off": None, "on": None}
    warm = 30
    p0 = t0 = 0.0
    for t in range(ticks + warm):
        if t == warm:
            p0, t0 = time.process_time(), time.thread_time()
        inputs = [(pid, {"dx": float(dx), "dy": float(dy), "boost": bool(b)})
                  for pid, dx, dy, b in zip(range(1, players + 1),
                                            rng.uniform(-1, 1, players),
                                            rng.uniform(-1, 1, players),
                                            rng.random(players) < 0.1)]
        order = ("off", "on") if t % 2 == 0 else ("on", "off")
        for name in order:
            sim = off if name == "off" else on
            q0 = time.thread_time_ns()
            for pid, data in inputs:
                sim.queue_input(pid, t + 1, data)
            q1 = time.thread_time_ns()
            if t >= warm:
                qtimes[name] += q1 - q0
            w0, c0 = time.perf_counter(), time.thread_time()
            sim.step()
            if name == "on":
                r0 = time.perf_counter()
                rec.after_tick()
                rr = time.perf_counter() - r0
            sim.drain_events()
            if sim.tick % 2 == 0:  # send tick (send rate 15 of 30 Hz)
                snap = sim.world.snapshot()
                base = prev[name]
                encode_delta(base, snap, tick=sim.tick, base_tick=sim.tick - 2 if base else 0)
                prev[name] = snap
            w1, c1 = time.perf_counter(), time.thread_time()
            if t >= warm:
                times[name]["wall"].append(w1 - w0)
                times[name]["cpu"].append(c1 - c0)
                if name == "on":
                    rec_wall.append(rr)
    rec.close("bench")
    # CPU of other threads of this process (the replay writer thread) while measuring
    writer_cpu = (time.process_time() - p0) - (time.thread_time() - t0)
    size = rec.path.stat().st_size
    key_bytes = 0
    from gameserver.replay.format import Keyframe, ReplayReader

    with ReplayReader(rec.path) as r:
        n_keys = sum(isinstance(x, Keyframe) for x in r.records())
    # a keyframe's size: ids + storage columns of every alive entity (+ framing)
    per_entity = 4 + sum(np.dtype(f.storage).itemsize
                         for f in on.world.schema.fields.values())
    key_bytes = n_keys * per_entity * on.world.count
    seconds = on.tick / 30
    rec.path.unlink()
    tmp.rmdir()

    def stats(xs: list[float]) -> tuple[float, float]:
        return statistics.fmean(xs) * 1e6, statistics.median(xs) * 1e6

    out: dict[str, Any] = {"entities": on.world.count, "players": players, "ticks": ticks}
    for name in ("off", "on"):
        for clock in ("wall", "cpu"):
            out[f"{name}_{clock}_mean"], out[f"{name}_{clock}_median"] = stats(
                times[name][clock])
    out["rec_mean"], out["rec_median"] = stats(rec_wall)
    out["writer_cpu"] = max(0.0, writer_cpu) / ticks * 1e6
    out["input_off"] = qtimes["off"] / (ticks * players) / 1e3
    out["input_on"] = qtimes["on"] / (ticks * players) / 1e3
    out["bytes_per_s"] = size / seconds
    out["key_share"] = key_bytes / size if size else 0.0
    out["file_bytes"] = size
    out["seconds"] = seconds
    return out


def bench_restore(entities: int, *, players: int, reps: int, seed: int = 1) -> dict[str, Any]:
    """What ``--record`` adds on the receiver of a handover, on the event loop (inside the
    players' pause), beside the restore itself (unpack the blob + ``load_simulation`` on a
    fresh ``Simulation(create=False)``): starting the continuation file as
    ``handover.state.start_room`` does (copy the state, hash, open the file, queue the
    ``restore`` record; the writer thread packs it) and, for comparison, packing the state
    on the loop. The three alternate ``reps`` times in one run. Seconds, medians."""
    import copy

    from gameserver.handover.codec import pack_blob, unpack_blob
    from gameserver.handover.simstate import load_simulation, simulation_state
    from gameserver.replay.recorder import PendingState

    src = _room(entities, players, seed)
    for pid in range(1, players + 1):
        src.join(pid, f"p{pid}")
    for _ in range(30):
        src.step()
    blob = pack_blob(simulation_state(src))
    tmp = Path(tempfile.mkdtemp(prefix="bench_restore_"))
    out: dict[str, list[float]] = {"restore": [], "record": [], "packed": []}
    for i in range(reps):
        for how in ("record", "packed") if i % 2 else ("packed", "record"):
            t0 = time.perf_counter()
            sim = Simulation(Arena, seed=seed, config={"critters": entities}, tick_rate=30,
                             create=False)
            load_simulation(sim, unpack_blob(blob))
            t1 = time.perf_counter()
            path = tmp / f"{how}{i}.gsreplay"
            if how == "packed":
                rec = Recorder(sim, Arena, path, send_rate=15,
                               restored=pack_blob(simulation_state(sim)))
            else:
                st = copy.deepcopy(simulation_state(sim))
                rec = Recorder(sim, Arena, path, send_rate=15,
                               restored=PendingState(lambda st=st: pack_blob(st), len(blob)))
            t2 = time.perf_counter()
            out["restore"].append(t1 - t0)
            out[how].append(t2 - t1)
            rec.close()
    shutil.rmtree(tmp, ignore_errors=True)  # the replay files of every repetition
    return {"entities": entities, "blob": len(blob),
            **{k: statistics.median(v) for k, v in out.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entities", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--players", type=int, default=16)
    ap.add_argument("--ticks", type=int, default=900, help="measured ticks per room (30 Hz)")
    ap.add_argument("--keyframe", type=float, default=10.0, help="seconds between keyframes")
    ap.add_argument("--inline", action="store_true",
                    help="no writer thread: hash, pack and write on the tick")
    ap.add_argument("--restore", action="store_true",
                    help="instead: the cost of recording a room restored from a handover")
    ns = ap.parse_args()
    if ns.restore:
        print(f"# bench_record --restore: Python {platform.python_version()}, numpy "
              f"{np.__version__}, {ns.players} players, median of 16 alternated runs; "
              "2-core machine shared with other work")
        print("  entities | blob KB | restore ms | + start recording ms (on the loop) | ratio"
              " | packing on the loop instead: ms, ratio")
        for n in ns.entities:
            r = bench_restore(n, players=ns.players, reps=16)
            print(f"  {n:>8} | {r['blob'] / 1024:7.0f} | {1000 * r['restore']:10.2f} | "
                  f"{1000 * r['record']:34.2f} | {r['record'] / r['restore']:5.2f} | "
                  f"{1000 * r['packed']:7.2f}, {r['packed'] / r['restore']:5.2f}", flush=True)
        return
    print(f"# bench_record: Python {platform.python_version()}, numpy {np.__version__}, "
          f"{ns.players} players sending every tick, keyframe every {ns.keyframe:g} s, "
          f"{ns.ticks} ticks, {'inline' if ns.inline else 'writer thread'}; "
          "2-core machine shared with other work")
    print("  entities | tick wall µs mean/median off -> on  ratio | tick CPU µs mean off -> on"
          "  ratio | after_tick µs mean/median | writer thread CPU µs/tick"
          " | input CPU µs off -> on | replay B/s (keyframes)")
    for n in ns.entities:
        r = bench(n, players=ns.players, ticks=ns.ticks, keyframe_s=ns.keyframe,
                  threaded=not ns.inline)
        wr = r["on_wall_mean"] / r["off_wall_mean"]
        wmr = r["on_wall_median"] / r["off_wall_median"]
        cr = r["on_cpu_mean"] / r["off_cpu_mean"]
        print(f"  {r['entities']:>8} | {r['off_wall_mean']:7.0f}/{r['off_wall_median']:5.0f} -> "
              f"{r['on_wall_mean']:7.0f}/{r['on_wall_median']:5.0f}  {wr:5.3f} ({wmr:5.3f} med)"
              f" | {r['off_cpu_mean']:7.0f} -> {r['on_cpu_mean']:7.0f}  {cr:5.3f}"
              f" | {r['rec_mean']:6.1f}/{r['rec_median']:6.1f} "
              f"({100 * r['rec_mean'] / r['off_wall_mean']:.1f}% of off)"
              f" | {r['writer_cpu']:6.1f}"
              f" | {r['input_off']:4.1f} -> {r['input_on']:4.1f}"
              f" | {r['bytes_per_s']:9.0f} ({100 * r['key_share']:.0f}%)", flush=True)


if __name__ == "__main__":
    main()
