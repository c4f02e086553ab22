"""``--part workers-redis``: ``--workers 2`` vs ``--workers 2 --redis URL``, side by side.

What a machine pays on the join path for being a cluster of worker nodes, in ONE run (the
two configurations interleaved ``--rounds`` times, on the same private ``redis-server``):

1. **HELLO by game name**: connect + HELLO -> WELCOME, p50 / p99 ms, sequential joins. The
   supervisor routes it from its own view in both configurations (no Redis on that path);
   the worker's token write is asynchronous.
2. **RESUME**: a joined player's socket is aborted, then connect + RESUME -> WELCOME, p50 /
   p99 ms. With ``--redis`` the supervisor looks the token up in Redis first (one round trip:
   ``GET gs:tok:<token>``, :mod:`gameserver.supervisor_cluster`) to find the worker that
   holds it now (after a handover the token's ``w<i>.`` prefix names the old worker).
3. **The supervisor's Redis round trips** per HELLO and per RESUME (its
   ``gameserver_redis_round_trips_total{worker="supervisor"}``) and their mean latency
   (``gameserver_redis_round_trip_seconds`` sum / count).

Run::

    python benchmarks/bench_cluster.py --part workers-redis           # ~1 min
    python benchmarks/bench_cluster.py --part workers-redis --joins 200 --rounds 3

The game is ``bench_server:Drift`` with 100 entities (the join path is measured, not a game).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cluster_workers import scrape, spawn, stop  # noqa: E402


def _start(redis_url: str | None) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT}")
    cmd = [sys.executable, "-m", "gameserver", "serve", "bench_server:Drift", "--port", "0",
           "--workers", "2", "--max-players", "8", "--log-level", "WARNING",
           "--empty-room-ttl", "120", "--room-config",
           json.dumps({"entities": 100, "moving": 1.0})]
    if redis_url is not None:
        cmd += ["--redis", redis_url]
    return spawn(cmd, env)


def _supervisor_redis(port: int) -> tuple[float, float, float]:
    """(round trips, latency sum s, latency count) of the supervisor's own link."""
    m = scrape(port)
    trips = sum(v for k, v in m.items()
                if k.startswith('gameserver_redis_round_trips_total{worker="supervisor"'))
    s = m.get('gameserver_redis_round_trip_seconds_sum{worker="supervisor"}', 0.0)
    n = m.get('gameserver_redis_round_trip_seconds_count{worker="supervisor"}', 0.0)
    return trips, s, n


def _q(xs: list[float]) -> tuple[float, float]:
    return statistics.median(xs), statistics.quantiles(xs, n=100)[98]


async def _measure(port: int, joins: int) -> dict[str, Any]:
    from protocol import messages as M
    from protocol.aio import connect

    url = f"ws://127.0.0.1:{port}/ws"

    async def welcome(ws: Any) -> Any:
        while True:
            m = M.decode_server(await asyncio.wait_for(ws.recv(), 10))
            if isinstance(m, M.Welcome | M.Error):
                assert isinstance(m, M.Welcome), m
                return m

    hello_ms: list[float] = []
    seated: list[tuple[Any, str]] = []
    before = await asyncio.to_thread(_supervisor_redis, port)
    for i in range(joins):
        t0 = time.perf_counter()
        ws = await asyncio.wait_for(connect(url), 10)
        await ws.send(M.encode(M.Hello(game="drift", name=f"j{i}")))
        w = await welcome(ws)
        hello_ms.append((time.perf_counter() - t0) * 1e3)
        seated.append((ws, w.resume))
    await asyncio.sleep(1.5)  # the workers' token writes are in Redis (asynchronous)
    mid = await asyncio.to_thread(_supervisor_redis, port)  # (HELLOs: before -> mid)
    resume_ms: list[float] = []
    again: list[Any] = []
    for ws, token in seated:
        ws._transport.abort()  # dropped: the player waits in its resume grace
        t0 = time.perf_counter()
        ws2 = await asyncio.wait_for(connect(url), 10)
        await ws2.send(M.encode(M.Resume(token=token)))
        await welcome(ws2)
        resume_ms.append((time.perf_counter() - t0) * 1e3)
        again.append(ws2)
    after = await asyncio.to_thread(_supervisor_redis, port)
    for ws2 in again:
        ws2._transport.abort()
    h50, h99 = _q(hello_ms)
    r50, r99 = _q(resume_ms)
    n = after[2] - mid[2]
    return {"hello_p50_ms": h50, "hello_p99_ms": h99, "resume_p50_ms": r50,
            "resume_p99_ms": r99,
            "trips_per_hello": (mid[0] - before[0]) / joins,
            "trips_per_resume": (after[0] - mid[0]) / joins,
            "lookup_mean_ms": (after[1] - mid[1]) / n * 1e3 if n else None}


def part_workers_redis(args: argparse.Namespace) -> dict[str, Any]:
    """``--part workers-redis`` (see the module docstring)."""
    from redis_server import start_redis

    from protocol.aio.loop import run

    joins = int(getattr(args, "joins", None) or 100)
    rounds = int(getattr(args, "rounds", None) or 1)
    print(f"machine: {os.cpu_count()} cores, shared with other work; load average "
          f"{os.getloadavg()[0]:.1f}; {joins} joins + {joins} resumes per variant, "
          f"{rounds} round(s), interleaved", flush=True)
    rs = start_redis()
    out: list[dict[str, Any]] = []
    try:
        for rnd in range(1, rounds + 1):
            for label, url in (("--workers 2", None), ("--workers 2 --redis", rs.url)):
                proc, port = _start(url)
                try:
                    res: dict[str, Any] = run(_measure(port, joins))
                finally:
                    stop(proc)
                out.append(res | {"round": rnd, "config": label})
                print(f"  round {rnd} {label}: done", flush=True)
    finally:
        rs.stop()
    print("\n| round | configuration | HELLO -> WELCOME p50 ms | p99 ms | RESUME -> WELCOME "
          "p50 ms | p99 ms | supervisor Redis round trips / HELLO | / RESUME | mean lookup "
          "ms |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in out:
        look = r["lookup_mean_ms"]
        print(f"| {r['round']} | {r['config']} | {r['hello_p50_ms']:.2f} | "
              f"{r['hello_p99_ms']:.2f} | {r['resume_p50_ms']:.2f} | {r['resume_p99_ms']:.2f} "
              f"| {r['trips_per_hello']:.2f} | {r['trips_per_resume']:.2f} | "
              f"{'-' if look is None else f'{look:.3f}'} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return {"runs": out}
