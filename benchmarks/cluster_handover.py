"""Cluster benchmark part ``handover`` (``python benchmarks/bench_cluster.py --part handover``,
which runs this module's :func:`main` with the rest of the command line).

A rolling deploy of one big room. Two ``gameserver`` processes (A and
B, ``--redis`` on a private ``redis-server``, A with ``--handover``) serve :class:`BigRoom`
(``--entities`` entities, 10,000 by default, ``--moving`` of them moving each tick, 30 Hz);
``--players`` light clients (200: ``clients.GameClient``, which follows 4014 on its own) in
``--procs`` separate processes join A's room and send one input every ``--input-every``
ticks. After the joins settle, A gets SIGTERM: it hands the room to B through Redis and its
players RESUME on B. Measured:

* the pause each player sees: the longest gap between two consecutive received ticks (client
  clock) in the window from 1 s before SIGTERM to the end of the run, p50 / p99 / max over
  players; beside it the same statistic over an equally long steady window before SIGTERM
  (what a player sees without a handover: the reference);
* bytes through Redis during the handover (``INFO stats`` net input + output of the Redis
  server, before / after) and the blob size A logged;
* lost or doubled events (the room numbers a broadcast event per tick: every player's
  sequence must be gapless) and inputs (the game reports every applied input seq to its
  player: sent == applied, each once), players that did not keep id / entity / room.

Machine: 2 cores shared by Redis, both servers, the client processes, and (on this box)
other engineers' work; the result file says so.

Usage::

    python benchmarks/bench_cluster.py --part handover [--players 200 --entities 10000]
    python benchmarks/bench_cluster.py --part handover --json out.json
    python benchmarks/cluster_handover.py [...]         # the same, directly
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player  # noqa: E402

URL_LINE = re.compile(r"gameserver: serving .+? at http://\S+ \(ws at (ws://\S+)\)")


# ------------------------------------------------------------------------------ the game

class BigRoom(Game):
    """``entities`` entities (room config), ``moving`` share of them drifting every tick, one
    avatar per player; a numbered broadcast ``beat`` event per tick and, per player, an
    ``applied`` event with the input seqs applied in the tick."""

    name = "big"
    fields = {"x": F.float32(quant=0.01, lo=-100000, hi=100000),
              "y": F.float32(quant=0.01, lo=-100000, hi=100000), "owner": F.player()}
    inputs = InputSchema({"dx": I.float32(-1, 1)})
    max_players = 256
    tick_rate = 30
    send_rate = 30
    capacity = 16384

    def on_create(self, config: dict[str, Any]) -> None:
        n = int(config.get("entities", 10_000))
        self.moving = float(config.get("moving", 0.1))
        self.beat = 0
        self.world.spawn(n, x=self.rng.uniform(0, 1000, n), y=self.rng.uniform(0, 1000, n))

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        player.entity = int(self.world.spawn(1, x=0.0, y=0.0, owner=player.id)[0])

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w = self.world
        slots = w.alive_slots()
        k = int(slots.shape[0] * self.moving)
        if k:
            pick = slots[self.rng.integers(0, slots.shape[0], k)]
            w["x"][pick] += self.rng.normal(0, 0.5, k).astype(np.float32)
        per: dict[int, list[int]] = {}
        for pid, seq in zip(inputs.player.tolist(), inputs.seq.tolist()):
            per.setdefault(pid, []).append(seq)
        for pid, seqs in per.items():
            if pid in self.players:
                self.send("applied", seqs, to=pid)
        self.beat += 1
        self.send("beat", self.beat)


# ---------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--loglevel", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def start_node(redis_url: str, room_config: dict[str, Any], log: Path,
               handover: bool) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT}")
    args = [sys.executable, "-m", "gameserver", "serve", "cluster_handover:BigRoom", "--port",
            str(port), "--redis", redis_url, "--public-url", url, "--seed", "3",
            "--room-config", json.dumps(room_config), "--resume-grace", "30"]
    if handover:
        args.append("--handover")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
                            env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not URL_LINE.search(line):
        proc.kill()
        raise RuntimeError(f"node did not start: {line!r} {log.read_text()[-2000:]}")
    return proc, url


def redis_net_bytes(redis_url: str) -> int:
    import redis

    r = redis.Redis.from_url(redis_url)
    try:
        info = r.info("stats")
        return int(info["total_net_input_bytes"]) + int(info["total_net_output_bytes"])
    finally:
        r.close()


# ----------------------------------------------------------------------- client process

async def _clients(url: str, n: int, seconds: float, input_every: int, tag: str,
                   ready: Path) -> list[dict[str, Any]]:
    """``n`` GameClients in this process; returns what each saw (see :func:`part_handover`)."""
    from clients.client import Backoff, GameClient, GameEvent, TickUpdate

    recs: list[dict[str, Any]] = []
    clients: list[GameClient] = []
    for i in range(n):
        rec: dict[str, Any] = {"ticks": [], "times": [], "beats": [], "applied": [],
                               "sent": []}

        def on_tick(c: GameClient, u: TickUpdate, rec: dict[str, Any] = rec) -> None:
            rec["ticks"].append(u.tick)
            rec["times"].append(u.received_at)

        def on_event(c: GameClient, e: GameEvent, rec: dict[str, Any] = rec) -> None:
            if e.kind == "beat":
                rec["beats"].append(int(e.data))
            elif e.kind == "applied":
                rec["applied"].extend(int(s) for s in e.data)

        recs.append(rec)
        clients.append(GameClient(url, game="big", name=f"{tag}-{i}", on_tick=on_tick,
                                  on_event=on_event, connect_timeout=60, stall_timeout=20,
                                  retry_connect=True,
                                  backoff=Backoff(base=0.05, cap=0.5, max_attempts=8)))
    # join in small concurrent batches (each join is a full 10k-entity snapshot)
    for lo in range(0, n, 10):
        await asyncio.gather(*(c.connect() for c in clients[lo:lo + 10]))
        ready.with_suffix(".progress").write_text(str(lo + 10))
    for c, rec in zip(clients, recs):
        rec["before"] = [c.player, c.entity, c.room]
    ready.write_text("ready")
    stop = asyncio.Event()  # SIGINT from the parent: stop sending, report
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    end = time.monotonic() + seconds
    k = 0
    rng = random.Random(tag)
    while time.monotonic() < end and not stop.is_set():
        k += 1
        for i, c in enumerate(clients):
            if (k + i) % input_every == 0 and c.connected:
                seq = c.send_input(dx=rng.uniform(-1, 1))
                if c.pending_inputs and c.pending_inputs[-1][0] == seq:
                    recs[i]["sent"].append(seq)
        await asyncio.sleep(1 / 30)
    # let the last inputs be applied and reported
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
            set(r["sent"]) <= set(r["applied"]) for r in recs):
        await asyncio.sleep(0.05)
    for c, rec in zip(clients, recs):
        rec["after"] = [c.player, c.entity, c.room]
        rec["url"] = c.url
        rec["error"] = repr(c.error) if c.error else None
        rec["redirects"] = c.stats.redirects
        rec["resent"] = c.stats.inputs_resent
    await asyncio.gather(*(asyncio.wait_for(c.close(), 5) for c in clients),
                         return_exceptions=True)
    return recs


class RawPlayer:
    """A light client on the bare wire (protocol.aio + msgpack, no replica): it reads the
    tick of each DELTA from its header, follows ERROR/close 4014 by RESUMEing at the url and
    re-sending its unacknowledged inputs (SPEC.md section 7), and records what it saw."""

    def __init__(self, url: str, name: str, rec: dict[str, Any],
                 fallback: str | None = None) -> None:
        self.url = url
        #: baseline (a plain restart): on 1001 join ``fallback`` again as a new player
        self.fallback = fallback
        self.name = name
        self.rec = rec
        self.ws: Any = None
        self.token: str | None = None
        self.seq = 0
        self.acked = 0
        self.pending: dict[int, dict[str, float]] = {}
        self.moved_to: str | None = None
        self.joined = asyncio.Event()
        self.redirects = 0
        self.resent = 0
        self.error: str | None = None
        self.player: int | None = None
        self.entity: int | None = None
        self.room: str | None = None

    async def _open(self, hello: bytes) -> None:
        from protocol.aio import connect

        self.ws = await connect(self.url, ping_interval=None, open_timeout=60,
                                max_message_size=64 * 2**20)
        self.ws.send_nowait(hello)

    async def run(self) -> None:
        """Join, then receive in the WebSocket's callback mode (no task switch per message,
        as GameClient) until the connection ends for good."""
        from protocol import messages as M

        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._open(M.encode(M.Hello(game="big", name=self.name)))
        self.ws.set_message_handler(self._on_message, on_close=self._on_close)
        await self._done

    def _on_close(self, exc: Any) -> None:
        self.rec.setdefault("t_close", time.monotonic())
        if exc.code in (4013, 4014) and self.moved_to and self.token:
            self.url, self.moved_to = self.moved_to, None
            self.redirects += 1
            self.joined.clear()
            asyncio.get_running_loop().create_task(self._follow())
            return
        if exc.code == 1001 and self.fallback:
            self.url, self.fallback = self.fallback, None
            self.joined.clear()
            self.token = None  # a new player: nothing of the old session survives
            asyncio.get_running_loop().create_task(self._follow(rejoin=True))
            return
        if exc.code != 1000:
            self.error = f"closed {exc.code} {exc.reason}"
        if not self._done.done():
            self._done.set_result(None)

    async def _follow(self, rejoin: bool = False) -> None:
        from protocol import messages as M

        try:
            if rejoin:
                self.rec["t_welcome_pending"] = True
                await self._open(M.encode(M.Hello(game="big", name=self.name)))
            else:
                assert self.token is not None
                await self._open(M.encode(M.Resume(self.token)))
            self.ws.set_message_handler(self._on_message, on_close=self._on_close)
        except Exception as exc:
            self.error = f"could not follow the move: {exc!r}"
            if not self._done.done():
                self._done.set_result(None)

    def _on_message(self, data: str | bytes) -> None:
        import msgpack

        from protocol import messages as M

        now = time.monotonic()
        rec = self.rec
        obj = msgpack.unpackb(data, raw=False)
        t = obj[0]
        if t == 17:
            rec["ticks"].append(obj[1])
            rec["times"].append(now)
        elif t == 19:
            body = obj[1]
            if body["k"] == "beat":
                rec["beats"].append(int(body["d"]))
            elif body["k"] == "applied":
                rec["applied"].extend(int(x) for x in body["d"])
        elif t == 18:
            self.acked = max(self.acked, int(obj[1]["s"]))
            for s in [s for s in self.pending if s <= self.acked]:
                del self.pending[s]
        elif t == 16:
            body = obj[1]
            resumed = self.token is not None
            if resumed or rec.pop("t_welcome_pending", False):
                rec["t_welcome"] = now
            self.token = body["resume"]
            self.player, self.entity, self.room = body["player"], body.get("entity"), \
                body["room"]
            if resumed:  # after a move: what the old node had not acknowledged
                for s in sorted(self.pending):
                    self.ws.send_nowait(M.encode(M.Input(s, self.pending[s])))
                    self.resent += 1
            self.joined.set()
        elif t == 20 and obj[1].get("c") in (4013, 4014):
            self.moved_to = obj[1].get("url")

    def send_input(self, dx: float) -> None:
        from protocol import messages as M

        ws = self.ws
        if ws is None or not ws.open or not self.joined.is_set():
            return
        self.seq += 1
        data = {"dx": dx}
        ws.send_nowait(M.encode(M.Input(self.seq, data)))
        self.pending[self.seq] = data
        self.rec["sent"].append(self.seq)


async def _raw_clients(url: str, n: int, seconds: float, input_every: int, tag: str,
                       ready: Path, fallback: str | None = None) -> list[dict[str, Any]]:
    """Like :func:`_clients` with :class:`RawPlayer` connections."""
    recs: list[dict[str, Any]] = [{"ticks": [], "times": [], "beats": [], "applied": [],
                                   "sent": []} for _ in range(n)]
    players = [RawPlayer(url, f"{tag}-{i}", r, fallback) for i, r in enumerate(recs)]
    tasks = []
    for lo in range(0, n, 10):
        for p in players[lo:lo + 10]:
            tasks.append(asyncio.ensure_future(p.run()))
        await asyncio.wait_for(asyncio.gather(*(p.joined.wait() for p in players[lo:lo + 10])),
                               120)
    for p, r in zip(players, recs):
        r["before"] = [p.player, p.entity, p.room]
    ready.write_text("ready")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    end = time.monotonic() + seconds
    k = 0
    rng = random.Random(tag)
    while time.monotonic() < end and not stop.is_set():
        k += 1
        for i, p in enumerate(players):
            if (k + i) % input_every == 0:
                p.send_input(rng.uniform(-1, 1))
        await asyncio.sleep(1 / 30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
            set(r["sent"]) <= set(r["applied"]) for r in recs):
        await asyncio.sleep(0.05)
    for p, r in zip(players, recs):
        r["after"] = [p.player, p.entity, p.room]
        r["url"] = p.url
        r["error"] = p.error
        r["redirects"] = p.redirects
        r["resent"] = p.resent
    await asyncio.gather(*(asyncio.wait_for(p.ws.close(), 3) for p in players),
                         return_exceptions=True)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return recs


def client_main(args: argparse.Namespace) -> None:
    from protocol.aio.loop import run

    if args.clients == "raw":
        recs = run(_raw_clients(args.url, args.count, args.seconds, args.input_every,
                                args.tag, Path(args.ready), args.fallback))
    else:
        recs = run(_clients(args.url, args.count, args.seconds, args.input_every, args.tag,
                            Path(args.ready)))
    Path(args.out).write_text(json.dumps(recs))


# ------------------------------------------------------------------------ part handover

def _longest_gap(times: list[float], ticks: list[int], lo: float, hi: float) -> float:
    """Longest gap (s) between consecutive received ticks whose later one is in [lo, hi]."""
    t = np.asarray(times)
    if t.shape[0] < 2:
        return float("inf")
    gaps = np.diff(t)
    sel = (t[1:] >= lo) & (t[1:] <= hi)
    return float(gaps[sel].max()) if sel.any() else float("inf")


def part_handover(args: argparse.Namespace) -> dict[str, Any]:
    if args.baseline and args.clients != "raw":
        raise SystemExit("--baseline needs --clients raw (GameClient stops on 1001)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-handover-"))
    procs: list[subprocess.Popen[Any]] = []
    redis_proc, redis_url = start_redis()
    try:
        cfg = {"entities": args.entities, "moving": args.moving}
        a, url_a = start_node(redis_url, cfg, tmp / "a.log", handover=not args.baseline)
        procs.append(a)
        b, url_b = start_node(redis_url, cfg, tmp / "b.log", handover=True)
        procs.append(b)
        per = [args.players // args.procs + (1 if i < args.players % args.procs else 0)
               for i in range(args.procs)]
        total = args.settle + args.after
        readies = []
        for i, n in enumerate(per):
            ready = tmp / f"ready{i}"
            readies.append(ready)
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--client", "--url", url_a, "--count", str(n),
                 "--seconds", str(total + 60), "--input-every", str(args.input_every),
                 "--tag", f"c{i}", "--ready", str(ready), "--out", str(tmp / f"out{i}.json"),
                 "--clients", args.clients,
                 *(["--fallback", url_b] if args.baseline else [])],
                env=dict(os.environ, PYTHONPATH=f"{ROOT}")))
        t_join = time.monotonic()
        deadline = t_join + 300
        while not all(r.exists() for r in readies):
            dead = [p.args[:3] for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a process exited before the clients joined: {dead}")
            if time.monotonic() > deadline:
                raise RuntimeError("clients did not join within 300 s")
            time.sleep(0.1)
        join_s = time.monotonic() - t_join
        time.sleep(args.settle)
        net0 = redis_net_bytes(redis_url)
        t_term = time.monotonic()
        a.send_signal(signal.SIGTERM)
        a.wait(timeout=60)
        t_done = time.monotonic()
        time.sleep(args.after)
        net1 = redis_net_bytes(redis_url)
        # stop the clients early (they sleep out their duration otherwise)
        for p in procs[2:]:
            p.send_signal(signal.SIGINT)
        recs: list[dict[str, Any]] = []
        for i, p in enumerate(procs[2:]):
            p.wait(timeout=60)
            out = tmp / f"out{i}.json"
            if out.exists():
                recs.extend(json.loads(out.read_text()))
        log_a = (tmp / "a.log").read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        redis_proc.kill()
        redis_proc.wait()
    m = re.search(r"room handed over .*?players=(\d+) bytes=(\d+) seconds=([\d.]+)", log_a)
    window = args.after + 1.0
    pauses, steady = [], []
    lost_events = doubled_events = lost_inputs = doubled_inputs = moved_wrong = 0
    for r in recs:
        pauses.append(_longest_gap(r["times"], r["ticks"], t_term - 1.0, t_term + args.after))
        steady.append(_longest_gap(r["times"], r["ticks"], t_term - 1.0 - window, t_term - 1.0))
        beats = r["beats"]
        if beats:
            lost_events += (beats[-1] - beats[0] + 1) - len(set(beats))
            doubled_events += len(beats) - len(set(beats))
        sent, applied = set(r["sent"]), r["applied"]
        lost_inputs += len(sent - set(applied))
        doubled_inputs += len(applied) - len(set(applied))
        if r["before"] != r["after"] or r["url"] != url_b or r["error"]:
            moved_wrong += 1
    # where the pause goes (raw clients record it): SIGTERM -> 4014 close seen, close ->
    # WELCOME on the new node, WELCOME -> first tick there
    phases: dict[str, list[float]] = {"to_close": [], "reconnect": [], "to_first_tick": []}
    for r in recs:
        if "t_close" in r and "t_welcome" in r:
            phases["to_close"].append(r["t_close"] - t_term)
            phases["reconnect"].append(r["t_welcome"] - r["t_close"])
            later = [t for t in r["times"] if t >= r["t_welcome"]]
            if later:
                phases["to_first_tick"].append(later[0] - r["t_welcome"])
    breakdown = {k: {"p50": float(np.percentile(v, 50)) * 1000,
                     "p99": float(np.percentile(v, 99)) * 1000} for k, v in phases.items() if v}
    p = np.asarray(pauses) * 1000
    s = np.asarray(steady) * 1000
    result = {
        "part": "handover" if not args.baseline else "handover-baseline",
        "clients": args.clients, "players": len(recs),
        "entities": args.entities,
        "moving": args.moving, "input_every": args.input_every,
        "pause_ms": {"p50": float(np.percentile(p, 50)), "p99": float(np.percentile(p, 99)),
                     "max": float(p.max())} if len(p) else None,
        "steady_gap_ms": {"p50": float(np.percentile(s, 50)),
                          "p99": float(np.percentile(s, 99)),
                          "max": float(s.max())} if len(s) else None,
        "sigterm_to_exit_s": t_done - t_term, "join_s": join_s,
        "redis_bytes": net1 - net0,
        "blob_bytes": int(m.group(2)) if m else None,
        "server_handover_s": float(m.group(3)) if m else None,
        "lost_events": lost_events, "doubled_events": doubled_events,
        "lost_inputs": lost_inputs, "doubled_inputs": doubled_inputs,
        "inputs_sent": sum(len(r["sent"]) for r in recs),
        "inputs_resent": sum(r["resent"] for r in recs),
        "players_not_moved_intact": moved_wrong,
        "breakdown_ms": breakdown,
    }
    if args.baseline:  # a new room on B: its events and seqs start over, nothing carries
        for k in ("lost_events", "doubled_events", "lost_inputs", "doubled_inputs"):
            result[k] = None
    if result["pause_ms"] and result["steady_gap_ms"]:
        result["pause_ratio_p99"] = result["pause_ms"]["p99"] / result["steady_gap_ms"]["p99"]
    return result


def print_handover(r: dict[str, Any]) -> None:
    pm, sm = r["pause_ms"], r["steady_gap_ms"]
    print(f"{r['part']}: {r['players']} {r['clients']} players, {r['entities']} entities, "
          f"{r['moving']:.0%} moving")
    if pm and sm:
        print(f"  pause (longest tick gap around the handover): p50 {pm['p50']:.0f} ms, "
              f"p99 {pm['p99']:.0f} ms, max {pm['max']:.0f} ms")
        print(f"  steady window (no handover):                  p50 {sm['p50']:.0f} ms, "
              f"p99 {sm['p99']:.0f} ms, max {sm['max']:.0f} ms")
    print(f"  bytes through Redis {r['redis_bytes']:,} (blob {r['blob_bytes']}), server "
          f"handover {r['server_handover_s']} s, SIGTERM to exit {r['sigterm_to_exit_s']:.2f} s")
    for k, v in r.get("breakdown_ms", {}).items():
        print(f"  {k:14s} p50 {v['p50']:.0f} ms, p99 {v['p99']:.0f} ms")
    print(f"  events lost {r['lost_events']} doubled {r['doubled_events']}; inputs sent "
          f"{r['inputs_sent']} lost {r['lost_inputs']} doubled {r['doubled_inputs']} "
          f"(re-sent {r['inputs_resent']}); players not intact {r['players_not_moved_intact']}")


PARTS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]],
                       Callable[[dict[str, Any]], None]]] = {
    "handover": (part_handover, print_handover),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=sorted(PARTS), default="handover")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    # handover
    ap.add_argument("--players", type=int, default=200)
    ap.add_argument("--entities", type=int, default=10_000)
    ap.add_argument("--moving", type=float, default=0.1, help="share moving per tick")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--baseline", action="store_true",
                    help="the reference: node A without --handover (a plain restart: 1001, "
                         "raw clients join node B again as new players, state lost)")
    ap.add_argument("--fallback", help=argparse.SUPPRESS)
    ap.add_argument("--clients", choices=("raw", "sdk"), default="raw",
                    help="raw: bare-wire light clients (tick from the DELTA header); sdk: "
                         "clients.GameClient (full replica decode, follows 4014 itself)")
    ap.add_argument("--input-every", type=int, default=3, help="ticks between inputs")
    ap.add_argument("--settle", type=float, default=10.0,
                    help="s of play before SIGTERM (the steady window is its last after + 1 s)")
    ap.add_argument("--after", type=float, default=6.0, help="s measured after SIGTERM")
    # internal: one client process
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--tag", help=argparse.SUPPRESS)
    ap.add_argument("--ready", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        client_main(args)
        return
    run, show = PARTS[args.part]
    result = run(args)
    show(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
