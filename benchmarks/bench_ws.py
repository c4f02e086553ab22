"""WebSocket benchmark: our stack vs the websockets, picows and aiohttp servers, same run.

    python benchmarks/bench_ws.py                 # all three benchmarks, every server
    python benchmarks/bench_ws.py --only echo --duration 5
    python benchmarks/bench_ws.py --only broadcast,memory --impls ours,websockets

Every server runs in its own process on uvloop (pinned to CPU 0 when possible); the load
generator runs in another process (pinned to CPU 1). The machine has 2 cores, so server and
clients share them; absolute numbers are noisy, ratios within one run are what matter.

1. **echo**: messages/s through one connection with 64 messages in flight, 64 B and 1 KiB
   binary messages, best of ``--repeat`` interleaved runs. The client is a raw-socket load
   generator (pre-built masked frames, byte counting: almost no Python per message, so the
   server is the bottleneck) driving each server identically; ``--echo-client picows`` uses
   a picows client instead.
2. **broadcast**: server CPU (``time.process_time`` around the call, summed over many rounds)
   to send one 300 B message to 1,000 connected clients (a raw-socket reader process), against
   the floor: ``transport.write`` of the same pre-framed bytes to the same transports.
   ``ours`` is ``protocol.aio.broadcast`` (frames once, then ``transport.write`` per open
   socket); ``websockets`` is ``websockets.asyncio.server.broadcast``; ``picows`` is
   ``WSTransport.send`` per client (frames per client, in C).
3. **memory**: RSS growth per idle connection (2,000 raw clients, handshake done, each
   server's default settings, its handler waiting for a message).

Results are printed as tables (see ``benchmarks/RESULTS-ws.md`` for a recorded run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IMPLS = ["ours", "websockets", "picows", "aiohttp"]
BROADCAST_IMPLS = ["ours", "websockets", "picows"]  # aiohttp has no synchronous send


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _pin(cpu: int) -> None:
    try:
        if len(os.sched_getaffinity(0)) >= 2:
            os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _read_command() -> str:
    loop = asyncio.get_running_loop()
    return (await loop.run_in_executor(None, sys.stdin.readline)).strip()


# ------------------------------------------------------------------------------- servers
#
# Each server function starts its library's echo server on 127.0.0.1:0 and returns
# (port, connections() -> list of per-connection handles, broadcast(handles, msg),
#  floor_write(handles, frame)).


async def _server_ours() -> tuple[int, Callable[[], list[Any]], Any, Any]:
    from protocol.aio import WebSocket, broadcast, serve

    async def echo(ws: WebSocket) -> None:
        async for msg in ws:
            await ws.send(msg)

    server = await serve(echo, "127.0.0.1", 0, backlog=4096)

    def floor(conns: list[Any], frame: bytes) -> None:
        for ws in conns:
            ws._transport.write(frame)

    return server.port, lambda: list(server.connections), broadcast, floor


async def _server_websockets() -> tuple[int, Callable[[], list[Any]], Any, Any]:
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    conns: set[ServerConnection] = set()

    async def echo(ws: ServerConnection) -> None:
        conns.add(ws)
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:
            pass
        finally:
            conns.discard(ws)

    server = await serve(echo, "127.0.0.1", 0, compression=None, backlog=4096)
    port = next(iter(server.sockets)).getsockname()[1]

    def floor(cs: list[Any], frame: bytes) -> None:
        for ws in cs:
            ws.transport.write(frame)

    return port, lambda: list(conns), broadcast, floor


async def _server_picows() -> tuple[int, Callable[[], list[Any]], Any, Any]:
    from picows import (
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        ws_create_server,
    )

    transports: set[WSTransport] = set()

    class Echo(WSListener):
        def on_ws_connected(self, transport: WSTransport) -> None:
            transports.add(transport)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            transports.discard(transport)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif frame.msg_type in (WSMsgType.BINARY, WSMsgType.TEXT):
                transport.send(frame.msg_type, frame.get_payload_as_bytes())

    def factory(_req: WSUpgradeRequest) -> WSListener:
        return Echo()

    server = await ws_create_server(factory, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]

    def bcast(ts: list[Any], msg: bytes) -> int:
        for t in ts:
            t.send(WSMsgType.BINARY, msg)
        return len(ts)

    def floor(ts: list[Any], frame: bytes) -> None:
        for t in ts:
            t.underlying_transport.write(frame)

    return port, lambda: list(transports), bcast, floor


async def _server_aiohttp() -> tuple[int, Callable[[], list[Any]], Any, Any]:
    from aiohttp import WSMsgType, web

    conns: set[web.WebSocketResponse] = set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        conns.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
        finally:
            conns.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    return port, lambda: list(conns), None, None


SERVERS = {
    "ours": _server_ours,
    "websockets": _server_websockets,
    "picows": _server_picows,
    "aiohttp": _server_aiohttp,
}


async def server_main(impl: str, mode: str, n: int, rounds: int) -> None:
    """Subprocess: run ``impl``'s server; answer the orchestrator's commands on stdin."""
    gc.collect()
    port, connections, bcast, floor = await SERVERS[impl]()
    await asyncio.sleep(0.1)
    gc.collect()
    rss0 = _rss()
    _emit({"port": port})
    while True:
        cmd = await _read_command()
        if cmd in ("", "quit"):
            return
        if cmd == "wait":  # wait until n connections are established
            deadline = time.monotonic() + 60
            while len(connections()) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # let handlers reach their first await
            gc.collect()
            _emit({"connections": len(connections()), "rss_delta": _rss() - rss0})
        elif cmd == "broadcast":
            _emit(await _measure_broadcast(connections(), bcast, floor, rounds))


async def _measure_broadcast(conns: list[Any], bcast: Any, floor: Any, rounds: int) -> Any:
    from protocol.frames import prepare_message

    msg = bytes(range(256)) + bytes(44)  # 300 B
    frame = prepare_message(msg)
    pt = time.process_time
    totals = {"floor": 0.0, "impl": 0.0}
    sent = 0

    async def settle() -> None:
        # Let the reader process drain the kernel buffers: every write below then goes
        # straight to send(2), like in a real tick (no user-space buffering anywhere).
        await asyncio.sleep(0.004)

    for r in range(rounds + 5):
        for which in ("floor", "impl") if r % 2 == 0 else ("impl", "floor"):
            await settle()
            t0 = pt()
            if which == "floor":
                floor(conns, frame)
            else:
                res = bcast(conns, msg)
                sent = res if isinstance(res, int) else len(conns)
            dt = pt() - t0
            if r >= 5:  # warm-up rounds are not counted
                totals[which] += dt
    return {
        "clients": len(conns),
        "sent": sent,
        "floor_us": totals["floor"] / rounds * 1e6,
        "impl_us": totals["impl"] / rounds * 1e6,
    }


# ------------------------------------------------------------------------------- clients


async def idle_clients_main(port: int, n: int) -> None:
    """Subprocess: open ``n`` raw WebSocket connections that read and discard everything."""
    loop = asyncio.get_running_loop()
    request = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )

    class Reader(asyncio.Protocol):
        def __init__(self) -> None:
            self.head = b""
            self.upgraded = loop.create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport.write(request)  # type: ignore[attr-defined]

        def data_received(self, data: bytes) -> None:
            if not self.upgraded.done():
                self.head += data
                if b"\r\n\r\n" in self.head:
                    ok = self.head.startswith(b"HTTP/1.1 101")
                    self.upgraded.set_result(ok)

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.upgraded.done():
                self.upgraded.set_result(False)

    transports: list[asyncio.Transport] = []
    for i in range(0, n, 100):
        batch = [
            await loop.create_connection(Reader, "127.0.0.1", port)
            for _ in range(min(100, n - i))
        ]
        oks = await asyncio.gather(*(p.upgraded for _, p in batch))
        if not all(oks):
            raise SystemExit("handshake failed")
        transports.extend(t for t, _ in batch)
    _emit({"connected": len(transports)})
    await _read_command()  # until the orchestrator says stop (or closes stdin)
    for t in transports:
        t.abort()


def _masked_frame(payload: bytes) -> bytes:
    """One masked binary client frame (RFC 6455 5.2), fixed mask: fine for a load test."""
    mask = b"\x37\xfa\x21\x3d"
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    else:
        head = bytes([0x82, 0x80 | 126]) + n.to_bytes(2, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


async def raw_echo_client_main(port: int, size: int, inflight: int, duration: float) -> None:
    """Subprocess: raw-socket client with ``inflight`` messages of ``size`` bytes in flight.

    Almost no Python per message: it pre-builds the masked frames, counts echoed bytes
    (every echo has the same length) and refills the window with one ``write`` per read.
    """
    loop = asyncio.get_running_loop()
    frame = _masked_frame(os.urandom(size))
    window = frame * inflight
    echo_len = size + (2 if size < 126 else 4)
    done = loop.create_future()
    request = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    perf = time.perf_counter

    class Driver(asyncio.Protocol):
        def __init__(self) -> None:
            self.head = b""
            self.upgraded = False
            self.rx = 0
            self.received = 0  # whole echoes
            self.sent = 0
            self.t_start = self.t_end = 0.0
            self.n_start = self.n_end = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.transport.write(request)

        def data_received(self, data: bytes) -> None:
            if not self.upgraded:
                self.head += data
                if b"\r\n\r\n" not in self.head:
                    return
                self.upgraded = True
                data = self.head.split(b"\r\n\r\n", 1)[1]
                self.t_start = perf() + 0.5
                self.t_end = self.t_start + duration
                self.transport.write(window)
                self.sent = inflight
            self.rx += len(data)
            n = self.rx // echo_len
            new = n - self.received
            self.received = n
            now = perf()
            if not self.n_start and now >= self.t_start:
                self.n_start = n
            if now < self.t_end:
                while new > 0:
                    k = min(new, inflight)
                    self.transport.write(window[: k * len(frame)])
                    self.sent += k
                    new -= k
            else:
                if not self.n_end:
                    self.n_end = n
                if n >= self.sent and not done.done():
                    done.set_result(None)

    transport, driver = await loop.create_connection(Driver, "127.0.0.1", port)
    await asyncio.wait_for(done, duration + 30)
    transport.abort()
    _emit({"msgs_per_s": (driver.n_end - driver.n_start) / duration})


async def echo_client_main(port: int, size: int, inflight: int, duration: float) -> None:
    """Subprocess: picows client, ``inflight`` binary messages of ``size`` bytes in flight;
    prints messages/s measured over ``duration`` seconds after a 0.5 s warm-up."""
    from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    payload = os.urandom(size)
    done = asyncio.get_running_loop().create_future()
    perf = time.perf_counter

    class Client(WSListener):
        def __init__(self) -> None:
            self.count = 0
            self.pending = 0
            self.t_start = 0.0
            self.t_end = 0.0
            self.measured = 0

        def on_ws_connected(self, transport: WSTransport) -> None:
            now = perf()
            self.t_start = now + 0.5
            self.t_end = self.t_start + duration
            for _ in range(inflight):
                transport.send(WSMsgType.BINARY, payload)
            self.pending = inflight

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != WSMsgType.BINARY:
                return
            if frame.payload_size != size:
                raise RuntimeError("echo mismatch")
            now = perf()
            self.pending -= 1
            if self.t_start <= now < self.t_end:
                self.measured += 1
            if now < self.t_end:
                transport.send(WSMsgType.BINARY, payload)
                self.pending += 1
            elif self.pending == 0 and not done.done():
                done.set_result(None)

    transport, client = await ws_connect(Client, f"ws://127.0.0.1:{port}/")
    await asyncio.wait_for(done, duration + 30)
    transport.send_close(WSCloseCode.OK)
    transport.disconnect()
    assert isinstance(client, Client)
    _emit({"msgs_per_s": client.measured / duration})


# --------------------------------------------------------------------------- orchestrator


class Proc:
    """A benchmark subprocess speaking JSON lines on stdout and commands on stdin."""

    def __init__(self, *args: str, cpu: int) -> None:
        self.p = subprocess.Popen(
            [sys.executable, __file__, *args, "--cpu", str(cpu)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )

    def read(self, timeout: float = 120) -> Any:
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"subprocess {self.p.args!r} exited: {self.p.wait(timeout)}")
        return json.loads(line)

    def send(self, cmd: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def stop(self) -> None:
        try:
            self.send("quit")
            self.p.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


def bench_echo(
    impls: list[str], duration: float, echo_client: str, repeat: int
) -> dict[str, dict[int, float]]:
    """messages/s per (impl, size): the best of ``repeat`` runs, runs interleaved across
    servers so a burst of background load does not hit one server only."""
    out: dict[str, dict[int, float]] = {impl: {64: 0.0, 1024: 0.0} for impl in impls}
    for rep in range(repeat):
        for impl in impls:
            for size in (64, 1024):
                server = Proc("_server", impl, "echo", cpu=0)
                try:
                    port = server.read()["port"]
                    client = Proc(
                        f"_{echo_client}_echo_client", str(port), str(size), "64",
                        str(duration), cpu=1,
                    )
                    rate = client.read(duration + 60)["msgs_per_s"]
                    client.stop()
                finally:
                    server.stop()
                out[impl][size] = max(out[impl][size], rate)
                print(f"  echo run {rep + 1} {impl:>10} {size:>5} B: {rate:>10,.0f} msg/s",
                      flush=True)
    return out


def bench_clients(mode: str, impls: list[str], n: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for impl in impls:
        server = Proc("_server", impl, mode, "--n", str(n), "--rounds", str(rounds), cpu=0)
        clients: Proc | None = None
        try:
            port = server.read()["port"]
            clients = Proc("_idle_clients", str(port), str(n), cpu=1)
            clients.read(120)
            server.send("wait")
            info = server.read()
            if mode == "broadcast":
                server.send("broadcast")
                info.update(server.read(300))
            out[impl] = info
        finally:
            if clients is not None:
                clients.stop()
            server.stop()
        print(f"  {mode} {impl:>10}: {out[impl]}", flush=True)
    return out


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="echo,broadcast,memory")
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--duration", type=float, default=3.0, help="echo seconds per point")
    p.add_argument(
        "--echo-client", choices=["raw", "picows"], default="raw",
        help="echo load generator: raw socket (pre-built frames, byte counting) or picows",
    )
    p.add_argument("--repeat", type=int, default=3, help="echo runs per point (best kept)")
    p.add_argument("--clients", type=int, default=1000, help="broadcast fan-out")
    p.add_argument("--rounds", type=int, default=300, help="broadcasts measured per impl")
    p.add_argument("--idle", type=int, default=2000, help="idle connections (memory)")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    impls = args.impls.split(",")
    print(f"bench_ws: python {sys.version.split()[0]}, uvloop, {os.cpu_count()} CPU cores "
          f"(server pinned to CPU 0, load generator to CPU 1: they share the machine)")
    if "echo" in only:
        print(f"echo: one connection, 64 binary messages in flight, {args.echo_client} client, "
              f"best of {args.repeat} runs of {args.duration:g} s")
        echo = bench_echo(impls, args.duration, args.echo_client, args.repeat)
        rows = [["server", "64 B msg/s", "vs websockets", "1 KiB msg/s", "vs websockets"]]
        ref = echo.get("websockets")
        for impl in impls:
            r = echo[impl]
            rows.append([
                impl,
                f"{r[64]:,.0f}", f"{r[64] / ref[64]:.2f}x" if ref else "-",
                f"{r[1024]:,.0f}", f"{r[1024] / ref[1024]:.2f}x" if ref else "-",
            ])
        print(_table(rows))
    if "broadcast" in only:
        b_impls = [i for i in impls if i in BROADCAST_IMPLS]
        print(f"broadcast: 300 B to {args.clients} clients, {args.rounds} rounds, server CPU")
        res = bench_clients("broadcast", b_impls, args.clients, args.rounds)
        rows = [["server", "clients", "CPU/broadcast us", "per client us",
                 "floor us (transport.write)", "ratio vs floor"]]
        for impl in b_impls:
            r = res[impl]
            rows.append([
                impl, str(r["sent"]), f"{r['impl_us']:,.0f}",
                f"{r['impl_us'] / max(1, r['clients']):.2f}", f"{r['floor_us']:,.0f}",
                f"{r['impl_us'] / r['floor_us']:.2f}x",
            ])
        print(_table(rows))
    if "memory" in only:
        print(f"memory: {args.idle} idle connections, RSS growth of the server process")
        res = bench_clients("memory", impls, args.idle, 0)
        rows = [["server", "connections", "RSS delta MiB", "per connection KiB"]]
        for impl in impls:
            r = res[impl]
            rows.append([
                impl, str(r["connections"]), f"{r['rss_delta'] / 2**20:.1f}",
                f"{r['rss_delta'] / max(1, r['connections']) / 1024:.2f}",
            ])
        print(_table(rows))
    return 0


def _sub(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("role")
    p.add_argument("rest", nargs="*")
    p.add_argument("--cpu", type=int, default=0)
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--rounds", type=int, default=0)
    a = p.parse_args(argv)
    _pin(a.cpu)
    _raise_nofile()
    import uvloop

    if a.role == "_server":
        impl, mode = a.rest
        uvloop.run(server_main(impl, mode, a.n, a.rounds))
    elif a.role == "_idle_clients":
        port, n = a.rest
        uvloop.run(idle_clients_main(int(port), int(n)))
    elif a.role == "_picows_echo_client":
        port, size, inflight, duration = a.rest
        uvloop.run(echo_client_main(int(port), int(size), int(inflight), float(duration)))
    elif a.role == "_raw_echo_client":
        port, size, inflight, duration = a.rest
        uvloop.run(raw_echo_client_main(int(port), int(size), int(inflight), float(duration)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        _sub(sys.argv[1:])
    else:
        sys.exit(main())
