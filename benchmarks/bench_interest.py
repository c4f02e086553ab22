"""Interest management benchmark: one large world, three ways of streaming it, in one run.

The world is ``examples/world.py``: 10,000 x 10,000 units, 10,000 entities (``--entities``),
10% of them moving (``--moving``), 30 Hz ticks and sends. C clients (``--clients``, default
1,000) join it, each with an avatar at a random spot and a 2,000 x 2,000 view (1/25 of the
field). Three rooms, measured one after the other in the same server process:

* ``interest``: ``World``, clients negotiate the ``"interest"`` extension: VIEW messages
  built from per-cell pieces encoded once per tick and shared;
* ``full`` (baseline a): ``WorldFull``, no interest management: one delta of the whole world
  per tick, the same bytes to every client;
* ``naive`` (baseline b): ``WorldNaive``, each client's visible set encoded separately
  (``encode_delta`` per client per tick; the fallback path for old clients).

Clients are lean raw ``asyncio.Protocol`` connections (``bench_server.Bot``) in ``--procs``
bot processes: they only parse frame headers and each message's type and tick, count bytes
and answer pings. The server runs in its own process; server and bots are pinned to
different cores when ``--pin`` (default: the server on CPU 0, the bots on CPU 1).

Per mode: server CPU per send tick (process user+sys time over the window / send ticks in
it), the server's own tick-CPU p50 (``gameserver_tick_cpu_recent_seconds``), encodes per send
tick (``gameserver_delta_encodes_total``: pieces for ``interest``, deltas otherwise), bytes
per client per second, and the share of send ticks every client received (min, mean).

Usage::

    python benchmarks/bench_interest.py            # 1,000 clients (heavy: ~2 minutes)
    python benchmarks/bench_interest.py --quick    # 200 clients, under a minute

The last line printed is one JSON object: ``bytes_ratio`` (bytes per client, full /
interest), ``cpu_vs_full`` (server CPU per tick, interest / full), ``cpu_vs_naive`` (naive /
interest), ``delivered`` (the lowest client's share of ticks, over the interest run), plus
every mode's figures. The in-process measurement (after the real clients; ``--inprocess-only``
runs it alone) also times ``interest-ref``, the interest room with the incremental per-tick
path off (``ViewStream.incremental = False``: memberships, sort and match from scratch every
tick; the same bytes): ``inprocess_incremental_vs_reference`` is their ratio, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

GAMES = {"interest": "world", "full": "world-full", "naive": "world-naive"}


def _make_bot(mode: str, port: int, game: str) -> Any:
    from bench_server import Bot, _mp_uint

    from protocol import messages as M

    class WorldBot(Bot):  # type: ignore[misc]
        """bench_server's lean bot, asking for the interest extension, counting VIEWs too."""

        hello_sent = False

        def send(self, payload: bytes, opcode: int = 2) -> None:
            if not self.hello_sent and opcode == 2:  # the base class's HELLO: ours instead
                self.hello_sent = True
                ext = ("interest", "interest/2") if game == "world" else ()
                payload = M.encode(M.Hello(game=game, name="bot", ext=ext))
            super().send(payload, opcode)

        def on_frame(self, opcode: int, buf: bytearray, start: int, ln: int) -> None:
            if opcode != 0x2:  # pings, closes: the base class
                super().on_frame(opcode, buf, start, ln)
                return
            head = buf[start] if ln else 0
            if head == 0xDC and ln > 3 and buf[start + 3] == 22:  # a VIEW of >= 16 elements
                if self.recording:
                    self.ticks.append(_mp_uint(buf, start + 4)[0])
                return
            t = buf[start + 1] if ln > 1 else 0
            if t == 22 and head != 0xDC:  # VIEW: [22, tick, ...] (fixarray)
                if self.recording:
                    self.ticks.append(_mp_uint(buf, start + 2)[0])
                return
            super().on_frame(opcode, buf, start, ln)

    return lambda: WorldBot("ours", "/ws", f"127.0.0.1:{port}", False, game)


async def run_bots(args: argparse.Namespace) -> None:
    """Bot process main: connect, warm up, record a window, print one JSON result line."""
    loop = asyncio.get_running_loop()
    bots: list[Any] = []
    sem = asyncio.Semaphore(32)
    factory = _make_bot(args.mode, args.port, GAMES[args.mode])

    failed = 0

    async def one() -> None:
        nonlocal failed
        async with sem:
            bot = factory()
            try:
                await loop.create_connection(lambda: bot, "127.0.0.1", args.port)
                await asyncio.wait_for(bot.opened, 30)
            except (OSError, ConnectionError, TimeoutError):
                failed += 1  # an overloaded server (the naive mode) does not admit everyone
                if bot.transport is not None:
                    bot.transport.abort()
                return
            bots.append(bot)

    await asyncio.gather(*(one() for _ in range(args.clients)))
    print(f"connected {len(bots)} failed {failed}", flush=True)
    await asyncio.sleep(args.warmup)
    print("window-start", flush=True)
    for b in bots:
        b.recording = True
    w0 = time.monotonic()
    await asyncio.sleep(args.duration)
    for b in bots:
        b.recording = False
    wall = time.monotonic() - w0
    print("window-end", flush=True)
    expected = max(1, round(30 * wall) - 1)
    shares = [min(1.0, len(set(b.ticks)) / expected) for b in bots]
    print("result " + json.dumps({
        "clients": len(bots), "failed": failed, "closed": sum(b.closed for b in bots),
        "bytes": sum(b.bytes for b in bots), "wall": wall,
        "ticks": sum(len(set(b.ticks)) for b in bots),
        "share_min": min(shares) if shares else 0.0,
        "share_mean": statistics.mean(shares) if shares else 0.0}), flush=True)
    for b in bots:
        if b.transport is not None:
            b.transport.abort()


def _scrape(port: int) -> dict[str, float]:
    import urllib.request

    from gameserver.metrics import parse_text

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return parse_text(r.read().decode())


def _pin(cpu: int | None) -> Any:
    def fn() -> None:
        if cpu is not None:
            try:
                os.sched_setaffinity(0, {cpu})
            except (AttributeError, OSError):  # pragma: no cover - not Linux
                pass
    return fn


def run_mode(mode: str, port: int, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """One mode's window: bot processes join its room; server CPU and metrics over it."""
    import psutil

    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT}")
    per = [args.clients // args.procs + (i < args.clients % args.procs)
           for i in range(args.procs)]
    bots = [subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--bot", "--mode", mode, "--port",
         str(port), "--clients", str(n), "--warmup", str(args.warmup), "--duration",
         str(args.duration)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        preexec_fn=_pin(1 if args.pin else None)) for n in per if n]
    proc = psutil.Process(server_pid)
    results: list[dict[str, Any]] = []
    out: dict[str, Any] = {"mode": mode}
    try:
        streams = [b.stdout for b in bots]
        assert all(s is not None for s in streams)
        # window start: when the first bot process starts recording (they start together)
        starts = 0
        for s in streams:
            for ln in s:  # type: ignore[union-attr]
                if ln.startswith("window-start"):
                    starts += 1
                    break
        cpu0 = proc.cpu_times()
        m0 = _scrape(port)
        w0 = time.monotonic()
        for s in streams:
            for ln in s:  # type: ignore[union-attr]
                if ln.startswith("window-end"):
                    break
        cpu1 = proc.cpu_times()
        m1 = _scrape(port)
        wall = time.monotonic() - w0
        for s in streams:
            for ln in s:  # type: ignore[union-attr]
                if ln.startswith("result "):
                    results.append(json.loads(ln[7:]))
        for b in bots:
            b.wait(timeout=60)
    finally:
        for b in bots:
            if b.poll() is None:
                b.kill()
                b.wait(timeout=10)
    sends = max(1.0, m1["gameserver_send_ticks_total"] - m0["gameserver_send_ticks_total"])
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    clients = sum(r["clients"] for r in results)
    out.update(
        clients=clients,
        closed=sum(r["closed"] for r in results),
        failed_joins=sum(r.get("failed", 0) for r in results),
        server_cpu_ms_per_tick=cpu / sends * 1e3,
        server_cpu_share=cpu / wall,
        tick_cpu_p50_ms=m1['gameserver_tick_cpu_recent_seconds{quantile="0.5"}'] * 1e3,
        encodes_per_tick=(m1["gameserver_delta_encodes_total"]
                          - m0["gameserver_delta_encodes_total"]) / sends,
        send_ticks_per_s=sends / wall,
        bytes_per_client_s=sum(r["bytes"] / r["wall"] for r in results) / max(1, clients),
        # per tick actually received: not distorted when a loaded box delivers fewer ticks
        bytes_per_client_tick=(sum(r["bytes"] for r in results)
                               / max(1, sum(r.get("ticks", 0) for r in results))),
        delivered_min=min((r["share_min"] for r in results), default=0.0),
        delivered_mean=(sum(r["share_mean"] * r["clients"] for r in results)
                        / max(1, clients)),
    )
    return out


def inprocess(clients: int, room_config: dict[str, Any], ticks: int) -> dict[str, Any]:
    """Server work alone, in this process: a room of each mode with ``clients`` fake sockets
    (writes are free), CPU time (``thread_time``) of ``Room._send`` per send tick. It isolates
    the encode / assembly work from socket writes, bots and the machine's other load."""
    import numpy as np

    from examples.world import World, WorldFull, WorldNaive
    from gameserver.config import ServerConfig
    from gameserver.manager import RoomManager
    from gameserver.metrics import ServerMetrics

    class FakeSocket:
        open = True
        closed = False
        buffered_bytes = 0

        def __init__(self) -> None:
            self.bytes = 0

        def write_prepared(self, frame: bytes) -> bool:
            self.bytes += len(frame)
            return True

        def send_nowait(self, data: bytes) -> None:
            pass

    async def one(cls: type[Any], n_ticks: int, incremental: bool = True) -> dict[str, float]:
        cfg = ServerConfig(games={"w": cls}, seed=11, max_players=clients + 10,
                           room_config=room_config).check()
        metrics = ServerMetrics()
        room = RoomManager(cfg, metrics).create_room("w")
        assert room._timer is not None
        room._timer.cancel()
        if room.view_stream is not None:
            room.view_stream.incremental = incremental
        socks = [FakeSocket() for _ in range(clients)]
        for i, ws in enumerate(socks):
            p = room.join(ws, {}, f"b{i}", interest=True)  # type: ignore[arg-type]
            p.vsame = True  # the Python and browser clients offer "interest/2"
        for _ in range(3):
            room.sim.step()
            room._send()
        b0, e0 = sum(w.bytes for w in socks), metrics.encodes.value
        cpu: list[float] = []
        for _ in range(n_ticks):
            room.sim.step()
            t = time.thread_time()
            room._send()
            cpu.append(time.thread_time() - t)
        return {"send_cpu_ms": float(np.median(cpu)) * 1e3,
                "encodes_per_tick": (metrics.encodes.value - e0) / n_ticks,
                "bytes_per_client_tick": (sum(w.bytes for w in socks) - b0) / clients / n_ticks}

    out: dict[str, Any] = {}
    # "interest-ref": the interest room with ViewStream.incremental off (memberships, sort
    # and match of every membership from scratch each tick: the same bytes), side by side
    for mode, cls, inc in (("full", WorldFull, True), ("interest", World, True),
                           ("interest-ref", World, False), ("naive", WorldNaive, True)):
        out[mode] = asyncio.run(one(cls, ticks if mode != "naive" else max(2, ticks // 10),
                                    inc))
        r = out[mode]
        print(f"in-process {mode:12} clients={clients} send CPU/tick={r['send_cpu_ms']:.2f}ms "
              f"encodes/tick={r['encodes_per_tick']:.1f} "
              f"bytes/client/tick={r['bytes_per_client_tick']:.0f}", flush=True)
    return out


def _room_config(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {"entities": args.entities, "moving": args.moving}
    if args.view:
        cfg["view"] = [args.view, args.view]
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--entities", type=int, default=10_000)
    ap.add_argument("--moving", type=float, default=0.1)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--modes", default="full,interest,naive")
    ap.add_argument("--view", type=float, default=0.0,
                    help="every player's view side in units (0: the game's 2,000)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the modes this many times, interleaved (medians reported)")
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument("--quick", action="store_true", help="200 clients, short windows")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--inprocess-ticks", type=int, default=30,
                    help="ticks of the in-process measurement (0: skip it)")
    ap.add_argument("--inprocess-only", action="store_true",
                    help="only the in-process measurement (no server, no bots)")
    ap.add_argument("--bot", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="interest", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bot:
        from protocol.aio.loop import run

        run(run_bots(args))
        return
    if args.quick:
        args.clients, args.warmup, args.duration = min(args.clients, 200), 2.0, 3.0
        args.inprocess_ticks = min(args.inprocess_ticks, 15)
    if args.inprocess_only:
        _summarize(args, {}, {})
        return
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT}")
    cmd = [sys.executable, "-m", "gameserver", "serve", "examples.world:World",
           "examples.world:WorldFull", "examples.world:WorldNaive", "--port", "0",
           "--max-players", str(args.clients + 10), "--log-level", "WARNING",
           "--empty-room-ttl", "0.5", "--resume-grace", "0.5", "--seed", "11", "--room-config",
           json.dumps(_room_config(args))]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=ROOT, preexec_fn=_pin(0 if args.pin else None))
    results: dict[str, dict[str, Any]] = {}
    per_round: dict[str, list[dict[str, Any]]] = {}
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        m = re.search(r":(\d+)/", line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(m.group(1))
        for rnd in range(args.rounds):
            for mode in args.modes.split(","):
                r = run_mode(mode, port, server.pid, args)
                per_round.setdefault(mode, []).append(r)
                _print_mode(f"{mode}#{rnd + 1}" if args.rounds > 1 else mode, r)
                time.sleep(2.0)  # players leave (resume grace), the room is disposed (ttl)
        results = {mode: _combine(rs) for mode, rs in per_round.items()}
        if args.rounds > 1:
            for mode, r in results.items():
                _print_mode(f"{mode}(med)", r)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    _summarize(args, results, per_round)


def _print_mode(label: str, r: dict[str, Any]) -> None:
    print(f"{label:12} clients={r['clients']} cpu/tick={r['server_cpu_ms_per_tick']:.2f}ms "
                  f"(server {r['server_cpu_share'] * 100:.0f}% of a core) "
                  f"tick_cpu_p50={r['tick_cpu_p50_ms']:.2f}ms "
                  f"encodes/tick={r['encodes_per_tick']:.1f} "
                  f"bytes/client/s={r['bytes_per_client_s']:,.0f} "
                  f"delivered min={r['delivered_min']:.3f} mean={r['delivered_mean']:.3f}",
                  flush=True)


def _combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One mode over its rounds: the median of every figure, but the worst delivery."""
    out: dict[str, Any] = dict(rounds[0])
    for k, v in rounds[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = statistics.median(r[k] for r in rounds)
    out["delivered_min"] = min(r["delivered_min"] for r in rounds)
    out["rounds"] = len(rounds)
    return out


def _summarize(args: argparse.Namespace, results: dict[str, dict[str, Any]],
               per_round: dict[str, list[dict[str, Any]]]) -> None:
    summary: dict[str, Any] = {"clients": args.clients, "entities": args.entities,
                               "moving": args.moving, "rounds": args.rounds,
                               "view": args.view or 2000.0,
                               "modes": results}
    if "full" in per_round and "interest" in per_round:
        # the ratio of each round (its modes ran back to back), then their median
        summary["cpu_vs_full_rounds"] = [
            round(o["server_cpu_ms_per_tick"] / f["server_cpu_ms_per_tick"], 3)
            for f, o in zip(per_round["full"], per_round["interest"], strict=False)]
        summary["bytes_ratio_per_tick_rounds"] = [
            round(f["bytes_per_client_tick"] / max(1.0, o["bytes_per_client_tick"]), 3)
            for f, o in zip(per_round["full"], per_round["interest"], strict=False)]
    if args.inprocess_ticks:
        ip = inprocess(args.clients, _room_config(args), args.inprocess_ticks)
        summary["inprocess"] = ip
        summary["inprocess_cpu_vs_full"] = (ip["interest"]["send_cpu_ms"]
                                            / ip["full"]["send_cpu_ms"])
        summary["inprocess_cpu_vs_naive"] = (ip["naive"]["send_cpu_ms"]
                                              / ip["interest"]["send_cpu_ms"])
        summary["inprocess_incremental_vs_reference"] = (ip["interest"]["send_cpu_ms"]
                                                         / ip["interest-ref"]["send_cpu_ms"])
    full, ours, naive = (results.get(k) for k in ("full", "interest", "naive"))
    if ours is not None:
        summary["delivered"] = ours["delivered_min"]
        if full is not None:
            summary["bytes_ratio"] = full["bytes_per_client_s"] / max(1.0,
                                                                      ours["bytes_per_client_s"])
            summary["bytes_ratio_per_tick"] = (full["bytes_per_client_tick"]
                                               / max(1.0, ours["bytes_per_client_tick"]))
            summary["cpu_vs_full"] = (statistics.median(summary["cpu_vs_full_rounds"])
                                      if args.rounds > 1 else
                                      ours["server_cpu_ms_per_tick"]
                                      / full["server_cpu_ms_per_tick"])
        if naive is not None:
            summary["cpu_vs_naive"] = (naive["server_cpu_ms_per_tick"]
                                       / ours["server_cpu_ms_per_tick"])
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
