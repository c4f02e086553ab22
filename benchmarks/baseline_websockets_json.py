"""Baseline game server, written the way a Python developer would without this project.

The `websockets` library (asyncio API), a plain-Python simulation (lists of floats, no numpy),
and every tick the FULL state serialized once as JSON and broadcast to every client with
``websockets.broadcast`` (the library's recommended way: one encode, no per-client await).
Used by ``benchmarks/bench_server.py`` as the peer measured in the same run.

Protocol (deliberately naive): a client connects to ``ws://host:port/``, sends anything (or
nothing), and receives one text message per tick::

    {"tick": 123, "entities": [[id, x, y], ...]}

Stats: no HTTP, so the benchmark reads them from a line the server prints to stdout every
second: ``stats tick_p50=<s> tick_p99=<s> cpu_p50=<s> cpu_p99=<s> overruns=<n> ticks=<n>
clients=<n>`` (wall and thread-CPU time of step + JSON + broadcast, last 1000 ticks).

Run: ``python benchmarks/baseline_websockets_json.py --port 9001 --entities 1000 --rate 30``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import time
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve


class NaiveWorld:
    """E entities in lists; ``moving`` of them random-walk each tick (plain Python loop)."""

    def __init__(self, entities: int, moving: float, seed: int = 1) -> None:
        rnd = random.Random(seed)
        self.rnd = rnd
        self.ids = list(range(1, entities + 1))
        self.x = [rnd.uniform(0, 1000) for _ in range(entities)]
        self.y = [rnd.uniform(0, 1000) for _ in range(entities)]
        self.heading = [rnd.uniform(0, 2 * math.pi) for _ in range(entities)]
        self.moving = list(range(int(entities * moving)))

    def step(self, dt: float) -> None:
        x, y, h = self.x, self.y, self.heading
        for i in self.moving:
            h[i] += self.rnd.uniform(-0.3, 0.3)
            x[i] = min(1000.0, max(0.0, x[i] + math.cos(h[i]) * 50.0 * dt))
            y[i] = min(1000.0, max(0.0, y[i] + math.sin(h[i]) * 50.0 * dt))

    def state(self, tick: int) -> str:
        ents = [[i, round(a, 2), round(b, 2)] for i, a, b in zip(self.ids, self.x, self.y)]
        return json.dumps({"tick": tick, "entities": ents})


async def main(args: argparse.Namespace) -> None:
    clients: set[ServerConnection] = set()
    world = NaiveWorld(args.entities, args.moving)

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass
        finally:
            clients.discard(ws)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    works: list[float] = []
    cpus: list[float] = []
    overruns = 0
    ticks = 0
    period = 1.0 / args.rate
    async with serve(handler, args.host, args.port, max_size=2**16, compression=None,
                     ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"baseline: listening on ws://{args.host}:{port}/", flush=True)
        start = loop.time()
        last_stats = start
        while not stop.is_set():
            t0 = time.perf_counter()
            c0 = time.thread_time()
            ticks += 1
            world.step(period)
            broadcast(clients, world.state(ticks))
            work = time.perf_counter() - t0
            works.append(work)
            cpus.append(time.thread_time() - c0)
            if work > period:
                overruns += 1
            # Sleep to the next deadline (computed from the start: no drift).
            deadline = start + ticks * period
            now = loop.time()
            if now - last_stats >= 1.0:
                last_stats = now
                ws_sorted = sorted(works[-1000:])
                p50 = ws_sorted[len(ws_sorted) // 2]
                p99 = ws_sorted[min(len(ws_sorted) - 1, int(len(ws_sorted) * 0.99))]
                cs = sorted(cpus[-1000:])
                c50 = cs[len(cs) // 2]
                c99 = cs[min(len(cs) - 1, int(len(cs) * 0.99))]
                print(f"stats tick_p50={p50:.6f} tick_p99={p99:.6f} cpu_p50={c50:.6f} "
                      f"cpu_p99={c99:.6f} overruns={overruns} ticks={ticks} "
                      f"clients={len(clients)}", flush=True)
                del works[:-1000]
                del cpus[:-1000]
            if deadline > now:
                try:
                    await asyncio.wait_for(stop.wait(), deadline - now)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)


def parse(argv: Any = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--entities", type=int, default=1000)
    p.add_argument("--moving", type=float, default=0.1)
    p.add_argument("--rate", type=float, default=30.0)
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
