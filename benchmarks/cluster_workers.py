"""``--part workers``: ``gameserver --workers 1`` vs ``--workers 2`` on this 2-core machine,
side by side in one run (the two configurations interleaved, ``--rounds`` times):

1. **Capacity**: aggregate clients held at 30 Hz. Rooms of the bench game ``Drift``
   (``bench_server.py``) with 1,000 entities, ALL moving every tick, ``--room-size`` players
   each (joins by game name fill rooms; new rooms go to the least loaded worker). One bot
   process (the lean raw clients of ``bench_server.py``: frame headers and the tick number
   only, one INPUT per second each) adds ``--step`` clients at a time; after each step it
   settles, then records a ``--window``. A step **holds** when every client received >= 99%
   of the nominal send ticks in the window and at most 1% of all rooms' ticks overran
   (``gameserver_tick_overruns_total`` summed over the workers). The ramp stops after two
   failing steps; the result is the largest held client count. Nothing is pinned: server
   processes and the bot process share both cores (the bots' CPU is reported; it is what
   keeps 2 workers from having 2 whole cores). Server-side cost is reported too: CPU of the
   server processes (supervisor + workers) per held client.
2. **Join latency**: connect + HELLO -> WELCOME + first full snapshot, sequential joins,
   p50 / p99 (the supervisor's extra work: one pre-read and one ``sendmsg`` per connection).
3. **Per-message cost**: PING -> PONG round trip of a joined client, p50 / p99 (the data path
   after the handoff: the same as a single process, there is no proxy hop).

Run through ``benchmarks/bench_cluster.py``::

    python benchmarks/bench_cluster.py --part workers            # ~2-3 min
    python benchmarks/bench_cluster.py --part workers --rounds 2 --step 40 --nice -5

Prints a Markdown table per section; the recorded run is in ``benchmarks/RESULTS-cluster.md``.
The ramp's bot process is this file run as a script (``--ramp-bot``).
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
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

RATE = 30
NICE = 0


def _nice() -> None:
    if NICE:
        try:
            os.nice(NICE)  # negative needs root: approximates a quieter machine
        except OSError:
            pass


# --------------------------------------------------------------------------- servers

def start_server(workers: int, room_size: int, entities: int) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT}")
    cmd = [sys.executable, "-m", "gameserver", "serve", "bench_server:Drift", "--port", "0",
           "--workers", str(workers), "--tick-rate", str(RATE), "--send-rate", str(RATE),
           "--max-players", str(room_size), "--log-level", "WARNING",
           "--empty-room-ttl", "120",
           "--room-config", json.dumps({"entities": entities, "moving": 1.0})]
    return spawn(cmd, env, _nice)


def spawn(cmd: list[str], env: dict[str, str],
          preexec: Any = None) -> tuple[subprocess.Popen[str], int]:
    """Start a ``gameserver`` command line; (process, port) once it printed its URL."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT, preexec_fn=preexec)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r":(\d+)/", line)
    if not m:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"server did not start: {line!r} {err}")
    return proc, int(m.group(1))


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def scrape(port: int) -> dict[str, float]:
    from gameserver.metrics import parse_text

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return parse_text(r.read().decode())


def total(m: dict[str, float], name: str) -> float:
    """Sum of a metric over its worker labels (or the unlabelled single-process value)."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def cpu_of(pids: list[Any]) -> float:
    s = 0.0
    for p in pids:
        try:
            t = p.cpu_times()
            s += t.user + t.system
        except Exception:  # a process that just exited
            pass
    return s


# --------------------------------------------------------------------------- ramp bots

async def ramp_bots(args: argparse.Namespace) -> None:
    """Bot process: add ``step`` clients, settle, record a window, report, wait for "go"."""
    from bench_server import Bot

    loop = asyncio.get_running_loop()
    bots: list[Bot] = []
    ports = [int(x) for x in str(args.port).split(",")]
    sem = asyncio.Semaphore(32)

    async def one() -> None:
        async with sem:
            port = ports[len(bots) % len(ports)]  # separate servers: clients alternate
            bot = Bot("ours", "/ws", f"127.0.0.1:{port}", False, "drift")
            await loop.create_connection(lambda: bot, "127.0.0.1", port)
            await asyncio.wait_for(bot.opened, 30)
            bots.append(bot)

    async def inputs() -> None:
        k = 0
        while True:
            await asyncio.sleep(1.0 / max(1, len(bots)))
            if bots:
                bots[k % len(bots)].input()
            k += 1

    feeder = loop.create_task(inputs())
    while len(bots) < args.max_clients:
        n = args.start if not bots else args.step
        try:
            await asyncio.gather(*(one() for _ in range(n)))
        except (OSError, ConnectionError, TimeoutError) as exc:
            print("result " + json.dumps({"clients": len(bots), "error": str(exc)}), flush=True)
            break
        await asyncio.sleep(args.settle)
        for b in bots:
            b.ticks = []
        print(f"window-start {len(bots)}", flush=True)
        for b in bots:
            b.recording = True
        w0 = time.monotonic()
        await asyncio.sleep(args.window)
        for b in bots:
            b.recording = False
        wall = time.monotonic() - w0
        expected = max(1, round(RATE * wall) - 1)
        shares = [min(1.0, len(set(b.ticks)) / expected) for b in bots]
        print("result " + json.dumps({
            "clients": len(bots), "wall": wall, "closed": sum(b.closed for b in bots),
            "share_min": min(shares), "share_mean": statistics.mean(shares)}), flush=True)
        if (await loop.run_in_executor(None, sys.stdin.readline)).strip() != "go":
            break
    feeder.cancel()
    for b in bots:
        if b.transport is not None:
            b.transport.abort()


def scrape_all(ports: list[int]) -> dict[str, float]:
    """Metrics of several separate servers, keys prefixed so ``total()`` sums them."""
    out: dict[str, float] = {}
    for i, port in enumerate(ports):
        for k, v in scrape(port).items():
            name, brace, rest = k.partition("{")
            out[f'{name}{{server="{i}"{"," if brace and rest != "}" else ""}'
                f'{rest if brace else "}"}'] = v
    return out


def capacity(workers: int, args: argparse.Namespace, separate: int = 1) -> dict[str, Any]:
    """One ramp against ``--workers workers``, or (``separate`` > 1) against that many
    independent single-process servers on their own ports (the control: what two busy
    processes cost on this machine without any supervisor or handoff)."""
    import psutil

    t_start = time.monotonic()
    servers = [start_server(workers, args.room_size, args.entities) for _ in range(separate)]
    ports = [p for _, p in servers]
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT}")
    bots = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--ramp-bot", "--port",
         ",".join(map(str, ports)),
         "--step", str(args.step), "--start", str(args.start),
         "--max-clients", str(args.max_clients),
         "--settle", str(args.settle), "--window", str(args.window)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        preexec_fn=_nice)
    assert bots.stdout is not None and bots.stdin is not None
    sprocs = [psutil.Process(s.pid) for s, _ in servers]
    bproc = psutil.Process(bots.pid)

    def server_procs() -> list[Any]:
        return [x for sp in sprocs for x in (sp, *sp.children(recursive=True))]
    steps: list[dict[str, Any]] = []
    fails = sfails = 0
    m0: dict[str, float] = {}
    c0 = b0 = w0 = 0.0
    try:
        for ln in bots.stdout:
            if ln.startswith("window-start"):
                procs = server_procs()
                m0 = scrape_all(ports)
                c0, b0, w0 = cpu_of(procs), cpu_of([bproc]), time.monotonic()
            elif ln.startswith("result "):
                r = json.loads(ln[7:])
                if "error" in r:
                    steps.append(r)
                    break
                procs = server_procs()
                wall = time.monotonic() - w0
                m1 = scrape_all(ports)
                ticks = total(m1, "gameserver_ticks_total") - total(m0, "gameserver_ticks_total")
                over = (total(m1, "gameserver_tick_overruns_total")
                        - total(m0, "gameserver_tick_overruns_total"))
                r["rooms"] = int(total(m1, "gameserver_rooms"))
                r["overrun_share"] = over / max(1.0, ticks)
                r["skips"] = int(total(m1, "gameserver_slow_client_skips_total")
                                 - total(m0, "gameserver_slow_client_skips_total"))
                r["server_ok"] = bool(r["overrun_share"] <= 0.01 and r["skips"] == 0
                                      and not r["closed"])
                r["server_cpu"] = (cpu_of(procs) - c0) / wall
                q = [v for k, v in m1.items()
                     if k.startswith("gameserver_tick_cpu_recent_seconds")
                     and 'quantile="0.5"' in k]
                r["room_tick_cpu_p50_ms"] = statistics.mean(q) * 1e3 if q else None
                r["bot_cpu"] = (cpu_of([bproc]) - b0) / wall
                r["holds"] = bool(r["share_min"] >= 0.99 and r["overrun_share"] <= 0.01
                                  and not r["closed"])
                steps.append(r)
                print(f"  [{time.monotonic() - t_start:5.1f}s] workers={workers} "
                      f"clients={r['clients']:5} rooms={r['rooms']:3} "
                      f"ticks min {r['share_min'] * 100:5.1f}% overruns "
                      f"{r['overrun_share'] * 100:4.1f}% skips {r['skips']} server CPU "
                      f"{r['server_cpu']:.2f} bots CPU {r['bot_cpu']:.2f} "
                      f"{'holds' if r['holds'] else 'FAILS'} "
                      f"(server side {'ok' if r['server_ok'] else 'FAILS'})", flush=True)
                fails = 0 if r["holds"] else fails + 1
                sfails = 0 if r["server_ok"] else sfails + 1
                go = fails < 3 and sfails < 2 and r["clients"] + args.step <= args.max_clients
                bots.stdin.write("go\n" if go else "stop\n")
                bots.stdin.flush()
                if not go:
                    break
    finally:
        with_bots = bots.poll() is None
        if with_bots:
            bots.stdin.close()
            try:
                bots.wait(timeout=20)
            except subprocess.TimeoutExpired:
                bots.kill()
                bots.wait()
        for s, _ in servers:
            stop(s)
    print(f"  [{time.monotonic() - t_start:5.1f}s] done", flush=True)
    held = [s for s in steps if s.get("holds")]
    best = max(held, key=lambda s: s["clients"]) if held else None
    ok = [s for s in steps if s.get("server_ok")]
    top = max(ok, key=lambda s: s["clients"]) if ok else None
    return {"workers": workers, "separate": separate, "steps": steps,
            "held": best["clients"] if best else 0,
            "server_cpu_at_held": best["server_cpu"] if best else None,
            "bot_cpu_at_held": best["bot_cpu"] if best else None,
            "server_ok_clients": top["clients"] if top else 0}


# --------------------------------------------------------------------------- latency

async def latencies(port: int, joins: int, pings: int) -> dict[str, float]:
    from protocol import messages as M
    from protocol.aio import connect

    url = f"ws://127.0.0.1:{port}/ws"
    join_ms: list[float] = []
    welcome_ms: list[float] = []
    for i in range(joins):  # each join's socket is closed at once (nobody would read it)
        t0 = time.perf_counter()
        ws = await asyncio.wait_for(connect(url), 10)
        await ws.send(M.encode(M.Hello(game="drift", name=f"lat{i}")))
        w = M.decode_server(await asyncio.wait_for(ws.recv(), 10))  # WELCOME
        assert isinstance(w, M.Welcome), w
        welcome_ms.append((time.perf_counter() - t0) * 1e3)
        await asyncio.wait_for(ws.recv(), 10)  # the full snapshot (at the room's next tick)
        join_ms.append((time.perf_counter() - t0) * 1e3)
        await ws.close()
    # PING -> PONG on a joined socket whose deltas a reader task consumes.
    ws = await connect(url)
    await ws.send(M.encode(M.Hello(game="drift", name="pinger")))
    pongs: asyncio.Queue[float] = asyncio.Queue()

    async def reader() -> None:
        while True:
            msg = M.decode_server(await ws.recv())
            if isinstance(msg, M.Pong):
                pongs.put_nowait(time.perf_counter())
    task = asyncio.get_running_loop().create_task(reader())
    rtt: list[float] = []
    for _ in range(pings):
        t0 = time.perf_counter()
        await ws.send(M.encode(M.Ping(t0)))
        t1 = await asyncio.wait_for(pongs.get(), 10)
        rtt.append((t1 - t0) * 1e3)
        await asyncio.sleep(0.04)  # 25/s: under the server's message rate limit (45/s)
    task.cancel()
    await ws.close()
    q = statistics.quantiles
    return {"welcome_p50_ms": statistics.median(welcome_ms),
            "welcome_p99_ms": q(welcome_ms, n=100)[98],
            "join_p50_ms": statistics.median(join_ms), "join_p99_ms": q(join_ms, n=100)[98],
            "ping_p50_ms": statistics.median(rtt), "ping_p99_ms": q(rtt, n=100)[98]}


def latency(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    from protocol.aio.loop import run

    server, port = start_server(workers, 8, args.entities)
    try:
        out: dict[str, Any] = run(latencies(port, args.joins, args.pings))
    finally:
        stop(server)
    out["workers"] = workers
    return out


# --------------------------------------------------------------------------- parts

#: Defaults of this part's options (bench_cluster.py may define fewer of them).
DEFAULTS: dict[str, Any] = {"rounds": 1, "room_size": 8, "entities": 1000, "start": 96,
                            "step": 48, "max_clients": 1600, "settle": 2.0, "window": 5.0,
                            "joins": 100, "pings": 100, "nice": 0}


CONFIGS: tuple[tuple[str, int, int], ...] = (
    ("--workers 1", 1, 1), ("--workers 2", 2, 1), ("2 separate single processes", 1, 2))


def part_workers(args: argparse.Namespace) -> dict[str, Any]:
    """``--part workers`` (see the module docstring)."""
    global NICE
    for k, v in DEFAULTS.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    NICE = args.nice
    print(f"machine: {os.cpu_count()} cores, shared with other work; load average "
          f"{os.getloadavg()[0]:.1f}. Nothing pinned: server processes and the bot process "
          f"share both cores. Rooms: {args.entities:,} entities all moving, "
          f"{args.room_size} players each, {RATE} Hz; nice {args.nice}.", flush=True)
    caps: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for label, w, sep in CONFIGS:
            print(f"capacity round {rnd + 1}, {label}:", flush=True)
            caps.append(capacity(w, args, sep) | {"round": rnd + 1, "config": label})
    lats = []
    for rnd in range(args.rounds):
        for w in (1, 2):
            lats.append(latency(w, args) | {"round": rnd + 1})
    nan = float("nan")
    print("\n| round | configuration | clients held at 30 Hz (bots saw >= 99% of ticks) | "
          "ratio to --workers 1 | server CPU (cores) there | bots CPU (cores) there | "
          "largest load the server kept up with (no overrun, no skip) |\n"
          "|---:|---|---:|---:|---:|---:|---:|")
    for rnd in range(1, args.rounds + 1):
        one = next(c for c in caps if c["round"] == rnd and c["config"] == CONFIGS[0][0])
        for c in (x for x in caps if x["round"] == rnd):
            ratio = c["held"] / one["held"] if one["held"] else nan
            print(f"| {rnd} | {c['config']} | {c['held']:,} | {ratio:.2f} | "
                  f"{c['server_cpu_at_held'] or 0:.2f} | {c['bot_cpu_at_held'] or 0:.2f} | "
                  f"{c['server_ok_clients']:,} |")
    # Server-side cost at EQUAL loads: server CPU (all its processes) per client, at every
    # step all configurations kept up with (no overrun, no skipped client).
    print("\n| round | clients | server CPU per client (ms/s): --workers 1 | --workers 2 | "
          "2 separate | cost ratio workers 2 / 1 | separate / 1 | room tick CPU p50 (ms): "
          "--workers 1 | --workers 2 | 2 separate |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios: list[float] = []
    control: list[float] = []
    for rnd in range(1, args.rounds + 1):
        runs = [next(c for c in caps if c["round"] == rnd and c["config"] == label)
                for label, _, _ in CONFIGS]
        oks = [{s["clients"]: s for s in r["steps"] if s.get("server_ok")} for r in runs]
        for n in sorted(set(oks[0]) & set(oks[1]) & set(oks[2])):
            s1, s2, s3 = (o[n] for o in oks)
            c1, c2, c3 = (s["server_cpu"] / n for s in (s1, s2, s3))
            ratios.append(c2 / c1)
            control.append(c3 / c1)
            print(f"| {rnd} | {n:,} | {c1 * 1e3:.2f} | {c2 * 1e3:.2f} | {c3 * 1e3:.2f} | "
                  f"{c2 / c1:.2f} | {c3 / c1:.2f} | "
                  + " | ".join(f"{s.get('room_tick_cpu_p50_ms') or nan:.2f}"
                               for s in (s1, s2, s3)) + " |")
    model = 2 / statistics.median(ratios) if ratios else nan
    print(f"\nmodel (each worker given a whole core): 2 workers hold {model:.2f}x the clients "
          f"of 1 (2 / median cost ratio over {len(ratios)} equal-load steps); two separate "
          f"single processes: cost ratio median "
          f"{statistics.median(control) if control else nan:.2f}")
    print("\n| round | workers | connect -> WELCOME p50 ms | p99 ms | -> first snapshot p50 ms "
          "| p99 ms | PING RTT p50 ms | p99 ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in lats:
        print(f"| {r['round']} | {r['workers']} | {r['welcome_p50_ms']:.2f} | "
              f"{r['welcome_p99_ms']:.2f} | {r['join_p50_ms']:.2f} | "
              f"{r['join_p99_ms']:.2f} | {r['ping_p50_ms']:.3f} | {r['ping_p99_ms']:.3f} |")
    return {"capacity": caps, "latency": lats, "cost_ratios": ratios,
            "control_ratios": control, "model_ratio": model}


def main() -> None:
    """The ramp's bot process (internal): ``cluster_workers.py --ramp-bot --port P ...``."""
    p = argparse.ArgumentParser(description=argparse.SUPPRESS)
    p.add_argument("--ramp-bot", action="store_true")
    p.add_argument("--port", required=True, help="port[,port...]")
    p.add_argument("--start", type=int, default=96)
    p.add_argument("--step", type=int, default=48)
    p.add_argument("--max-clients", type=int, default=1600)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--window", type=float, default=5.0)
    args = p.parse_args()
    from protocol.aio.loop import run

    run(ramp_bots(args))


if __name__ == "__main__":
    main()
