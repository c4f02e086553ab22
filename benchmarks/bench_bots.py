"""How many bots can one process drive, decoding every delta, at 30 Hz with 1,000 entities?

Setup: the real game server runs in its own process (``--serve`` mode of this script: the
arena example with ``--entities`` critters of which ``--moving`` are moving, tick and send
rate 30 Hz, one room for everybody). For each N in ``--counts`` one bot process is started
with ``python -m clients.bots URL --count N --procs 1`` (every bot a full GameClient: its own
WebSocket, msgpack decode and ``Replica.apply`` of every delta); after ``--duration`` seconds
its JSON report gives, for that N:

* no-gap share (the share of ticks received): deltas / (deltas + send ticks the server
  skipped for that bot); recv/time: deltas / (connected seconds x send rate), which can read
  a little above 100% when the server's tick clock catches up after a stall;
* bot CPU (steady state: the second half of the run, after the connect ramp): CPU seconds of
  the bot process (its own ``time.process_time``) per wall second, and CPU microseconds per
  delta received (the whole per-delta cost: WebSocket, decode, apply, stats). The capacity
  estimate "bots/core" = 1e6 / (us per delta x send rate) is what one fully available core
  could drive; unlike the wall-clock columns it does not depend on the machine's load;
* steady recv: deltas per second received in the steady window / (N x send rate);
* tick age (see clients/bots/report.py: delay beyond the fastest delivery): p99 over the
  whole run ("run", which includes the connect ramp's backlog: 500 joins, each a spawn every
  bot applies), and p50 / p99 over the steady window;
* server CPU over the whole run (psutil, from outside).

A row "keeps up" when no bot failed, and in the steady window the bots received >= 99% of
the deltas the server streams (N x send rate per second) with a p99 tick age < 100 ms (wall
clock: sensitive to whatever else runs on the machine).

Machine: 2 CPU cores. The server and the bot process share them (one core each at best),
and anything else running on the machine competes with both.

Usage::

    python benchmarks/bench_bots.py                       # counts 50,100,200,300,500
    python benchmarks/bench_bots.py --counts 100,500 --duration 15 --input-every 3
    python benchmarks/bench_bots.py --serve --port 8765   # just the benchmark server
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- server
def serve(port: int, entities: int, moving: float, tick_rate: float, send_rate: float) -> None:
    """Run the benchmark server (blocking): arena with a fixed world size, one big room."""
    from examples.arena import Arena
    from gameserver.config import ServerConfig
    from gameserver.server import run_server

    n_orbs, n_hunters = 0, 0

    class BenchArena(Arena):
        name = "arena"
        max_players = 5000

        def on_create(self, config: dict[str, Any]) -> None:
            super().on_create({**config, "critters": entities - n_orbs - n_hunters,
                               "moving": moving, "orbs": n_orbs, "hunters": n_hunters,
                               "size": 600.0})

    cfg = ServerConfig(games={"arena": BenchArena}, host="127.0.0.1", port=port,
                       tick_rate=tick_rate, send_rate=send_rate, max_players=5000,
                       max_connections=20000, empty_room_ttl=30.0, seed=1)
    import logging

    logging.basicConfig(level=logging.WARNING)
    sys.exit(run_server(cfg))


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", "--port", "0",
           "--entities", str(args.entities), "--moving", str(args.moving),
           "--tick-rate", str(args.tick_rate), "--send-rate", str(args.send_rate)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"ws://[^\s)]+", line)
    if not m:
        proc.kill()
        raise SystemExit(f"benchmark server did not start: {line!r}")
    return proc, m.group(0)


# ------------------------------------------------------------------------------- bots
def run_bots(url: str, n: int, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    import psutil

    server = psutil.Process(server_pid)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "clients.bots", url, "--count", str(n), "--procs", "1",
               "--duration", str(args.duration), "--behavior", args.behavior,
               "--input-every", str(args.input_every), "--ramp", str(args.ramp),
               "--json", str(out), "--quiet"]
        s0 = server.cpu_times()
        t0 = time.monotonic()
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)),
                             timeout=args.duration + 120)
        wall = time.monotonic() - t0
        s1 = server.cpu_times()
        if not out.exists():
            raise SystemExit(f"bot run N={n} wrote no report:\n{res.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(out.read_text())
    report["server_cpu_pct"] = 100.0 * ((s1.user - s0.user) + (s1.system - s0.system)) / wall
    report["bot_cpu_pct"] = 100.0 * report["cpu_seconds"] / max(report["duration_s"], 1e-9)
    report["wall_s"] = wall
    return report


# ------------------------------------------------------------- decode micro-benchmark
def decode_bench(url: str, n_msgs: int = 300, rounds: int = 5) -> str:
    """Capture real deltas from the server, then time (thread CPU) decode + apply, old vs new:
    old = the original per-group, per-column Replica (kept as the test-only reference in
    tests/protocol/test_delta_reference.py), new = the client's path, ``WorldView.apply_wire``
    (``protocol.replica.Replica``, batched over groups)."""
    import asyncio

    import msgpack

    from clients.world import WorldView
    from protocol import messages as M
    from protocol.aio import connect

    async def capture() -> list[bytes]:
        ws = await connect(url)
        await ws.send(M.encode(M.Hello(game="arena", name=f"decode-bench-{os.urandom(3).hex()}")))
        out: list[bytes] = []
        while len(out) < n_msgs + 2:
            data = await ws.recv()
            assert isinstance(data, bytes)
            out.append(data)
        await ws.close()
        return out

    msgs = asyncio.run(capture())
    welcome = M.decode_server(msgs[0])
    assert isinstance(welcome, M.Welcome)
    full = next(m for m in msgs if m[1] == 0x11 and msgpack.unpackb(m)[2] is None)
    deltas = [m for m in msgs[msgs.index(full) + 1:] if m[1] == 0x11]
    groups = sum(len(msgpack.unpackb(m)[6]) for m in deltas) / len(deltas)
    size = sum(len(m) for m in deltas) / len(deltas)

    sys.path.insert(0, str(ROOT / "tests" / "protocol"))
    from test_delta_reference import RefReplica

    def timed(new: bool) -> float:
        best = float("inf")
        for _ in range(rounds):
            w = WorldView(welcome.schema)
            w.apply_wire(full)
            ref = RefReplica(welcome.schema)
            ref.apply(full)
            t0 = time.thread_time()
            for m in deltas:
                if new:
                    w.apply_wire(m)
                else:
                    ref.apply(m)
            best = min(best, (time.thread_time() - t0) / len(deltas) * 1e6)
            if not new:  # both end in the same state: the comparison is fair
                for m in deltas:
                    w.apply_wire(m)
                assert all(ref.columns[k].tobytes() == w.columns[k].tobytes() for k in w.columns)
        return best

    new, old = timed(True), timed(False)
    return (f"# decode+apply of {len(deltas)} real deltas ({size:.0f} B, {groups:.1f} groups avg;"
            f" thread CPU, best of {rounds}): old per-group Replica {old:.1f} us,"
            f" new batched Replica (WorldView.apply_wire) {new:.1f} us -> {old / new:.2f}x")


def fmt_row(n: int, r: dict[str, Any], send_rate: float) -> str:
    age = r["tick_age_ms"]
    rs = r.get("received_share")
    gs = r.get("tick_share")
    st = r.get("steady") or {}
    us = st.get("cpu_us_per_delta")
    cap = 1e6 / (us * send_rate) if us else 0.0
    # steady state (second half of the run, after the connect ramp): every delta the server
    # streamed arrives (>= 99% of N x send rate) and p99 tick age stays under 100 ms
    sage = st.get("tick_age_ms") or age
    share = (st.get("deltas_per_s") or 0.0) / (n * send_rate)
    ok = share >= 0.99 and (sage["p99"] or 1e9) < 100 and r["failures"] == 0
    return (f"| {n:5d} | {r['connects']:5d} | {r['failures']:4d} | "
            f"{(rs or 0) * 100:8.2f}% | {(gs or 0) * 100:6.2f}% | {share * 100:6.1f}% | "
            f"{st.get('cpu_pct', 0.0):6.1f}% | {us or 0:7.1f} | {cap:7.0f} | "
            f"{r['server_cpu_pct']:6.1f}% | {age['p99'] or 0:8.1f} | "
            f"{sage['p50'] or 0:8.1f} | {sage['p99'] or 0:8.1f} | {'yes' if ok else 'no'} |")


HEADER = ("|     N | conn. | fail | recv/time |  no-gap | steady recv | bot CPU | us/delta "
          "| bots/core | srv CPU | age p99 (run) | age p50 | age p99 | keeps up |\n"
          "|------:|------:|-----:|----------:|--------:|------------:|--------:|---------:"
          "|----------:|--------:|--------------:|--------:|--------:|:--------:|")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", action="store_true", help="run only the benchmark server")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--entities", type=int, default=1000)
    p.add_argument("--moving", type=float, default=0.1)
    p.add_argument("--tick-rate", type=float, default=30.0)
    p.add_argument("--send-rate", type=float, default=30.0)
    p.add_argument("--counts", default="50,100,200,300,500")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--behavior", default="idle")
    p.add_argument("--input-every", type=int, default=0)
    p.add_argument("--ramp", type=float, default=250.0)
    p.add_argument("--json", type=Path, default=None, help="write all reports to FILE")
    p.add_argument("--no-decode", dest="decode", action="store_false",
                   help="skip the decode+apply micro-benchmark")
    args = p.parse_args(argv)
    if args.serve:
        serve(args.port, args.entities, args.moving, args.tick_rate, args.send_rate)
        return 0
    counts = [int(x) for x in args.counts.split(",") if x]
    print(f"# bench_bots: {args.entities} entities ({args.moving:.0%} moving), "
          f"tick {args.tick_rate:g} Hz, send {args.send_rate:g} Hz, behaviour {args.behavior}, "
          f"input every {args.input_every} ticks, {args.duration:g} s per run")
    print(f"# machine: {os.cpu_count()} CPU cores; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# python {sys.version.split()[0]}, bots on "
          f"{'uvloop' if _have_uvloop() else 'asyncio'}")
    results: dict[str, Any] = {}
    if args.decode:
        proc, url = start_server(args)
        try:
            time.sleep(1.0)
            print(decode_bench(url))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(HEADER)
    sys.stdout.flush()
    for n in counts:
        proc, url = start_server(args)  # a fresh server (and room) per N
        try:
            time.sleep(1.0)
            r = run_bots(url, n, args, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        r.pop("per_bot_detail", None)
        results[str(n)] = r
        print(fmt_row(n, r, args.send_rate))
        sys.stdout.flush()
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


def _have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return os.environ.get("GAMESERVER_NO_UVLOOP", "") in ("", "0")


if __name__ == "__main__":
    sys.exit(main())
