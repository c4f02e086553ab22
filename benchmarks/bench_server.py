"""Game server benchmark: our server vs a websockets + JSON baseline, measured in the same run.

Setup (the machine has 2 cores): the server process is pinned to CPU 0, the bot process to
CPU 1. One room holds E entities, 10% of them moving (heading random walk at 50 units/s, the
same motion in both servers), and C clients. Tick rate = send rate (30 or 60 Hz). Each
configuration runs ``--warmup`` seconds after every client joined, then is measured for
``--duration`` seconds.

Bots are lean on purpose (one Python process must absorb C x rate messages per second): a
raw ``asyncio.Protocol`` per client does the opening handshake, then only parses frame
headers, the message type and the tick number of every message (msgpack header for ours, the
``{"tick": N`` prefix of the JSON baseline), answers pings, and sends one INPUT per second.
``--verify`` of the clients (default 10) additionally decode EVERY delta with
``protocol.replica.Replica`` (ours) or ``json.loads`` (baseline), and for ours the run fails if
any delta does not apply.

Reported per configuration:

* server tick work time p50 / p99 (ms): ours from its own ``/metrics``
  (``gameserver_tick_work_recent_seconds``, the last 512 ticks: simulation + snapshot +
  encode + writes), the baseline from the stats line it prints (step + json + broadcast);
* overruns during the window (ticks whose work exceeded the period, plus skipped ticks);
* server CPU (fraction of one core, psutil on the server pid, over the window);
* bytes received per client per second (WebSocket frames, from the bots' sockets);
* share of send ticks each client received (min and mean over clients): distinct ticks seen
  in the window / (nominal rate x window) (a catch-up delta counts as ONE tick received);
* holds: every client received >= 99% of the send ticks and <= 1% of the ticks overran.

Usage::

    python benchmarks/bench_server.py                 # the full matrix (~5 min)
    python benchmarks/bench_server.py --quick         # 1,000 entities, 30 Hz only
    python benchmarks/bench_server.py --entities 1000 --clients 1000 --rates 30

Writes ``benchmarks/results-server.json`` and, with ``--plots``, the PNG plots used in
``benchmarks/REPORT-server.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from gameserver.inputs import I, InputBatch, InputSchema  # noqa: E402
from gameserver.rules import Game  # noqa: E402
from gameserver.schema import F  # noqa: E402

# --------------------------------------------------------------------------- bench game


class Drift(Game):
    """E entities; a fraction drift (heading random walk, 50 units/s) in a 1000 x 1000 box.

    Room config: ``{"entities": int, "moving": float}``. Players have no avatar (E is exact);
    their inputs are validated, queued and acknowledged but do not move anything.
    """

    name = "drift"
    fields = {"x": F.float32(quant=0.01, lo=0, hi=1000), "y": F.float32(quant=0.01, lo=0, hi=1000)}
    inputs = InputSchema({"dx": I.float32(-1, 1)})
    max_players = 65535
    tick_rate = 30
    send_rate = 30
    capacity = 1024

    def on_create(self, config: dict[str, Any]) -> None:
        n = int(config.get("entities", 1000))
        m = int(n * float(config.get("moving", 0.1)))
        rng = self.rng
        ids = self.world.spawn(n, x=rng.uniform(0, 1000, n), y=rng.uniform(0, 1000, n))
        self.movers = ids[:m]
        self.heading = rng.uniform(0, 2 * np.pi, m)

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        slots = self.world.slots_of(self.movers)
        h = self.heading
        h += self.rng.uniform(-0.3, 0.3, len(h))
        x = self.world["x"]
        y = self.world["y"]
        x[slots] = np.clip(x[slots] + np.cos(h) * (50.0 * dt), 0.0, 1000.0)
        y[slots] = np.clip(y[slots] + np.sin(h) * (50.0 * dt), 0.0, 1000.0)


# --------------------------------------------------------------------------- lean bots

_TICK_JSON = re.compile(rb'\{"tick": ?(\d+)')


def _mp_uint(b: bytes | bytearray | memoryview, i: int) -> tuple[int, int]:
    """Read a msgpack uint at ``i``: (value, next index)."""
    c = b[i]
    if c < 0x80:
        return c, i + 1
    if c == 0xCC:
        return b[i + 1], i + 2
    if c == 0xCD:
        return struct.unpack_from(">H", b, i + 1)[0], i + 3
    if c == 0xCE:
        return struct.unpack_from(">I", b, i + 1)[0], i + 5
    if c == 0xCF:
        return struct.unpack_from(">Q", b, i + 1)[0], i + 9
    raise ValueError(f"not a msgpack uint: {c:#x}")


class Bot(asyncio.Protocol):
    """One lean client connection (see the module docstring)."""

    def __init__(self, mode: str, path: str, host: str, verify: bool, game: str) -> None:
        self.mode = mode  # "ours" or "baseline"
        self.path = path
        self.host = host
        self.verify = verify
        self.game = game
        self.buf = bytearray()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.handshaken = False
        self.bytes = 0
        self.ticks: list[int] = []
        self.recording = False
        self.replica: Any = None
        self.apply_errors = 0
        self.decoded = 0
        self.seq = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        tr.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode())

    def send(self, payload: bytes, opcode: int = 2) -> None:
        from protocol.frames import encode_frame

        if self.transport is not None and not self.closed:
            self.transport.write(encode_frame(opcode, payload, mask=os.urandom(4)))

    def data_received(self, data: bytes) -> None:
        if self.recording:
            self.bytes += len(data)
        buf = self.buf
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(buf[:40]).decode()))
                return
            del buf[: end + 4]
            self.handshaken = True
            if self.mode == "ours":
                from protocol import messages as M

                self.send(M.encode(M.Hello(game=self.game, name="bot")))
            else:
                self.opened.set_result(None)
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            ln = buf[pos + 1] & 0x7F
            hdr = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                hdr = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = struct.unpack_from(">Q", buf, pos + 2)[0]
                hdr = 10
            if n - pos < hdr + ln:
                break
            start = pos + hdr
            self.on_frame(b0 & 0x0F, buf, start, ln)
            pos = start + ln
        if pos:
            del buf[:pos]

    def on_frame(self, opcode: int, buf: bytearray, start: int, ln: int) -> None:
        if opcode == 0x9:  # ping -> pong (RFC 6455 5.5.3)
            self.send(bytes(buf[start:start + ln]), 0xA)
            return
        if opcode == 0x8:
            self.closed = True
            return
        if self.mode == "baseline":
            m = _TICK_JSON.match(buf, start)
            if m and self.recording:
                self.ticks.append(int(m.group(1)))
            if self.verify and self.recording:
                json.loads(bytes(buf[start:start + ln]))
                self.decoded += 1
            return
        t = buf[start + 1] if ln > 1 else 0
        if t == 17:  # DELTA: [17, tick, base_tick, ...]
            if self.recording:
                self.ticks.append(_mp_uint(buf, start + 2)[0])
            if self.replica is not None:
                from protocol.delta import DeltaError, decode_delta

                try:
                    self.replica.apply(decode_delta(bytes(buf[start:start + ln])))
                    self.decoded += 1
                except DeltaError:
                    self.apply_errors += 1
        elif t == 16:  # WELCOME
            if self.verify:
                from protocol import messages as M
                from protocol.replica import Replica

                w = M.decode_server(bytes(buf[start:start + ln]))
                assert isinstance(w, M.Welcome)
                self.replica = Replica(w.schema)
            if not self.opened.done():
                self.opened.set_result(None)
        elif t == 20 and not self.opened.done():
            self.opened.set_exception(ConnectionError("join refused"))

    def input(self) -> None:
        if self.mode == "ours":
            from protocol import messages as M

            self.seq += 1
            self.send(M.encode(M.Input(self.seq, {"dx": 0.5})))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("connection lost"))


async def run_bots(args: argparse.Namespace) -> None:
    """Bot process main: connect, warm up, record a window, print one JSON result line."""
    loop = asyncio.get_running_loop()
    path = "/ws" if args.mode == "ours" else "/"
    bots: list[Bot] = []
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with sem:
            bot = Bot(args.mode, path, f"127.0.0.1:{args.port}", i < args.verify, "drift")
            await loop.create_connection(lambda: bot, "127.0.0.1", args.port)
            await asyncio.wait_for(bot.opened, 30)
            bots.append(bot)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.clients)))
    print(f"connected {len(bots)} in {time.monotonic() - t0:.1f}s", flush=True)

    async def inputs() -> None:
        k = 0
        while True:
            await asyncio.sleep(1.0 / max(1, len(bots)))
            bots[k % len(bots)].input()
            k += 1

    feeder = loop.create_task(inputs())
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
    feeder.cancel()
    # Share of send ticks: distinct ticks received in the window over the ticks a server
    # keeping its nominal rate sends in it (rate x wall). A server that falls behind either
    # skips ticks (ours: bounded catch-up) or stretches them (the baseline): both count.
    expected = max(1, round(args.rate * wall) - 1)
    produced = [len(set(b.ticks)) for b in bots]
    shares = [min(1.0, n / expected) for n in produced]
    lasts = [b.ticks[-1] - b.ticks[0] for b in bots if b.ticks]
    result = {
        "clients": len(bots),
        "closed": sum(b.closed for b in bots),
        "wall": wall,
        "bytes_per_client_s": statistics.mean(b.bytes for b in bots) / wall,
        "share_min": min(shares) if shares else 0.0,
        "share_mean": statistics.mean(shares) if shares else 0.0,
        "share_p01": float(np.percentile(shares, 1)) if shares else 0.0,
        "expected_ticks": expected,
        "server_ticks_per_s": (max(lasts) + 1) / wall if lasts else 0.0,
        "verified_decodes": sum(b.decoded for b in bots),
        "apply_errors": sum(b.apply_errors for b in bots),
    }
    print("result " + json.dumps(result), flush=True)
    for b in bots:
        if b.transport is not None:
            b.transport.abort()


# --------------------------------------------------------------------------- orchestration


PIN = True
NICE = 0
REALTIME = False


def _pin(cpu: int) -> Any:
    def fn() -> None:
        if NICE:
            try:
                os.nice(NICE)  # negative: needs root; approximates a dedicated core
            except OSError:
                pass
        if REALTIME:
            try:  # SCHED_FIFO: other (normal) processes cannot preempt us on our core;
                # the kernel's RT throttling still leaves them 5% of it.
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            except (AttributeError, OSError):
                pass
        if not PIN:
            return
        try:
            os.sched_setaffinity(0, {cpu})
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            pass
    return fn


def _scrape(port: int) -> dict[str, float]:
    import urllib.request

    from gameserver.metrics import parse_text

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return parse_text(r.read().decode())


def run_config(kind: str, entities: int, clients: int, rate: int,
               args: argparse.Namespace) -> dict[str, Any]:
    """Start one server (ours or baseline) and one bot process; return the measurements."""
    import psutil

    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT}")
    if kind == "ours":
        cmd = [sys.executable, "-m", "gameserver", "serve", "bench_server:Drift", "--port", "0",
               "--tick-rate", str(rate), "--send-rate", str(rate),
               "--max-players", str(clients + 10), "--log-level", "WARNING",
               "--room-config", json.dumps({"entities": entities, "moving": 0.1})]
    else:
        cmd = [sys.executable, str(HERE / "baseline_websockets_json.py"), "--port", "0",
               "--entities", str(entities), "--moving", "0.1", "--rate", str(rate)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, preexec_fn=_pin(0), cwd=ROOT)
    assert server.stdout is not None
    line = server.stdout.readline()
    m = re.search(r":(\d+)/", line)
    if not m:
        server.kill()
        err = server.stderr.read() if server.stderr else ""
        raise RuntimeError(f"{kind} server did not start: {line!r} {err}")
    port = int(m.group(1))
    stats_lines: list[str] = []
    if kind == "baseline":
        import threading

        def drain() -> None:
            assert server.stdout is not None
            for ln in server.stdout:
                stats_lines.append(ln)
        threading.Thread(target=drain, daemon=True).start()
    bots = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--bot", "--mode", kind, "--port",
         str(port), "--clients", str(clients), "--warmup", str(args.warmup), "--duration",
         str(args.duration), "--verify", str(args.verify), "--rate", str(rate)],
        stdout=subprocess.PIPE, text=True, env=env, preexec_fn=_pin(1), cwd=ROOT)
    assert bots.stdout is not None
    proc = psutil.Process(server.pid)
    bproc = psutil.Process(bots.pid)
    bcpu0: Any = None
    out: dict[str, Any] = {"server": kind, "entities": entities, "clients": clients,
                           "rate": rate}
    cpu0 = m0 = None
    w0 = 0.0
    try:
        for ln in bots.stdout:
            if ln.startswith("window-start"):
                cpu0 = proc.cpu_times()
                bcpu0 = bproc.cpu_times()
                w0 = time.monotonic()
                m0 = _scrape(port) if kind == "ours" else None
            elif ln.startswith("window-end"):
                cpu1 = proc.cpu_times()
                bcpu1 = bproc.cpu_times()
                wall = time.monotonic() - w0
                out["bot_cpu"] = ((bcpu1.user + bcpu1.system)
                                  - (bcpu0.user + bcpu0.system)) / wall
                assert cpu0 is not None
                out["cpu"] = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / wall
                if kind == "ours":
                    m1 = _scrape(port)
                    assert m0 is not None
                    out["p50_ms"] = m1['gameserver_tick_work_recent_seconds{quantile="0.5"}'] * 1e3
                    out["p99_ms"] = m1['gameserver_tick_work_recent_seconds{quantile="0.99"}'] * 1e3
                    q = "gameserver_tick_cpu_recent_seconds"
                    out["cpu_p50_ms"] = m1[q + '{quantile="0.5"}'] * 1e3
                    out["cpu_p99_ms"] = m1[q + '{quantile="0.99"}'] * 1e3
                    out["overruns"] = int(m1["gameserver_tick_overruns_total"]
                                          - m0["gameserver_tick_overruns_total"])
                    enc = "gameserver_delta_encodes_total"
                    snd = "gameserver_send_ticks_total"
                    out["encodes_per_send"] = (m1[enc] - m0[enc]) / max(1.0, m1[snd] - m0[snd])
                    out["skips"] = int(m1["gameserver_slow_client_skips_total"]
                                       - m0["gameserver_slow_client_skips_total"])
                else:
                    stats = [s for s in stats_lines if s.startswith("stats")]
                    vals = dict(kv.split("=") for kv in stats[-1].split()[1:]) if stats else {}
                    first = dict(kv.split("=") for kv in stats[0].split()[1:]) if stats else {}
                    out["p50_ms"] = float(vals.get("tick_p50", "nan")) * 1e3
                    out["p99_ms"] = float(vals.get("tick_p99", "nan")) * 1e3
                    out["cpu_p50_ms"] = float(vals.get("cpu_p50", "nan")) * 1e3
                    out["cpu_p99_ms"] = float(vals.get("cpu_p99", "nan")) * 1e3
                    out["overruns"] = int(vals.get("overruns", 0)) - int(first.get("overruns", 0))
            elif ln.startswith("result "):
                out.update(json.loads(ln[7:]))
            elif ln.startswith("connected"):
                out["connect"] = ln.strip()
        bots.wait(timeout=30)
    finally:
        for p in (bots, server):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (bots, server):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    # "Holds": every client got >= 99% of the nominal send ticks, and at most 1% of the
    # window's ticks overran (a stray late wakeup on a shared machine is not a failure).
    window_ticks = rate * out.get("wall", args.duration)
    out["holds"] = bool(out.get("share_min", 0) >= 0.99
                        and out.get("overruns", window_ticks) <= 0.01 * window_ticks)
    return out


def fmt_row(r: dict[str, Any]) -> str:
    return (f"| {r['server']:8} | {r['entities']:6,} | {r['clients']:5,} | {r['rate']:3} | "
            f"{r.get('p50_ms', math.nan):7.2f} | {r.get('p99_ms', math.nan):7.2f} | "
            f"{r.get('cpu_p50_ms', math.nan):6.2f} | {r.get('cpu_p99_ms', math.nan):6.2f} | "
            f"{r.get('overruns', -1):5} | {r.get('cpu', math.nan) * 100:5.0f}% | "
            f"{r.get('bytes_per_client_s', 0) / 1024:9.1f} | {r.get('share_min', 0) * 100:6.1f}% "
            f"| {r.get('share_mean', 0) * 100:6.1f}% | {r.get('server_ticks_per_s', 0):5.1f} "
            f"| {r.get('bot_cpu', math.nan) * 100:4.0f}% | {'yes' if r.get('holds') else 'NO'} |")


HEADER = ("| server   | entities | clients | Hz | tick p50 ms | tick p99 ms | CPU/tick p50 ms "
          "| CPU/tick p99 ms | overruns | "
          "server CPU | KiB/client/s | ticks recv min | mean | ticks/s seen | bot CPU | holds |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")


def plots(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, key, title in ((axes[0], "p50_ms", "wall time per tick, p50"),
                           (axes[1], "cpu_p50_ms", "thread CPU per tick, p50")):
        for kind, marker, style in (("ours", "o", "-"), ("baseline", "s", "--")):
            for rate in sorted({r["rate"] for r in results}):
                for ents in sorted({r["entities"] for r in results}):
                    pts = sorted((r["clients"], r.get(key, math.nan)) for r in results
                                 if r["server"] == kind and r["rate"] == rate
                                 and r["entities"] == ents)
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker,
                                linestyle=style, label=f"{kind} E={ents:,} {rate} Hz")
        for rate in sorted({r["rate"] for r in results}):
            ax.axhline(1e3 / rate, color="grey", linewidth=0.8, linestyle=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clients in the room")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("ms (dotted: tick period at 30 / 60 Hz)")
    axes[1].legend(fontsize=7)
    fig.suptitle("Server tick work vs clients (2 cores: server on CPU 0, bots on CPU 1)")
    fig.tight_layout()
    fig.savefig(HERE / "server_tick_vs_clients.png", dpi=110)

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, marker in (("ours", "o"), ("baseline", "s")):
        for rate in sorted({r["rate"] for r in results}):
            pts = sorted((r["entities"], r.get("bytes_per_client_s", 0) / 1024) for r in results
                         if r["server"] == kind and r["rate"] == rate and r["clients"] == 100)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker,
                        label=f"{kind} {rate} Hz")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("entities (10% moving)")
    ax.set_ylabel("KiB per client per second")
    ax.set_title("Bandwidth per client vs entities (100 clients)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "server_bytes_vs_entities.png", dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description="game server benchmark (see the module docstring)")
    p.add_argument("--bot", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="ours", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--rate", type=int, default=30, help=argparse.SUPPRESS)
    p.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--baseline-clients", type=int, nargs="+", default=None,
                   help="client counts for the baseline (default: --clients)")
    p.add_argument("--entities", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--rates", type=int, nargs="+", default=[30, 60])
    p.add_argument("--servers", nargs="+", default=["ours", "baseline"])
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--verify", type=int, default=10)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--plots", action="store_true")
    p.add_argument("--nice", type=int, default=0,
                   help="nice increment for server and bots (e.g. -10 on a shared machine)")
    p.add_argument("--realtime", action="store_true",
                   help="run server and bots SCHED_FIFO (root): a dedicated core on a busy box")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the server to CPU 0 and the bots to CPU 1")
    p.add_argument("--out", type=Path, default=HERE / "results-server.json")
    p.add_argument("--plots-from", type=Path, default=None,
                   help="only redraw the plots from a results JSON file")
    args = p.parse_args()
    if args.plots_from is not None:
        plots(json.loads(args.plots_from.read_text()))
        return
    if args.bot:
        args.clients = args.clients[0] if isinstance(args.clients, list) else args.clients
        from protocol.aio.loop import run

        run(run_bots(args))
        return
    global PIN, NICE, REALTIME
    PIN = not args.no_pin
    NICE = args.nice
    REALTIME = args.realtime
    if args.quick:
        args.entities, args.rates = [1000], [30]
    print(f"machine: {os.cpu_count()} cores; server pinned to CPU 0, bots to CPU 1 "
          f"(pinning {'on' if PIN else 'off'}, nice {NICE}, SCHED_FIFO {REALTIME}); "
          f"warmup {args.warmup}s, window {args.duration}s; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print(HEADER, flush=True)
    results = []
    for rate in args.rates:
        for ents in args.entities:
            for clients in sorted(set(args.clients) | set(args.baseline_clients or ())):
                for kind in args.servers:
                    counts = args.clients if kind == "ours" else (args.baseline_clients
                                                                  or args.clients)
                    if clients not in counts:
                        continue
                    r = run_config(kind, ents, clients, rate, args)
                    results.append(r)
                    print(fmt_row(r), flush=True)
    args.out.write_text(json.dumps(results, indent=1))
    if args.plots:
        plots(results)


if __name__ == "__main__":
    main()
