"""Rolling deploy end to end: two real ``gameserver`` processes on one test Redis.

1. SIGTERM the node holding a room (``--handover``): every Python client ends up on the other
   node with the same player id, entity and room id; tick numbers strictly increase across
   the move; the game's numbered events arrive each exactly once; every input the clients
   sent is applied exactly once (the game reports what it applied); the room keeps ticking.
2. SIGKILL a node (no handover): its players are told promptly (connection lost, no hang)
   and can join again on the other node.
3. The shipped browser bundle (node, its WebSocket) follows the same move on its own.

The game is :class:`Beat` below (the server processes import this module by name).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clients import errors as E
from clients.client import Backoff, GameClient, GameEvent, TickUpdate
from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player

HERE = Path(__file__).parent
URL_LINE = re.compile(r"gameserver: serving .+? at http://\S+ \(ws at (ws://\S+)\)")


class Beat(Game):
    """Every tick: a room-wide numbered ``beat`` event; per player, an ``applied`` event
    listing the input seqs applied in that tick; 50 drifting entities plus one per player."""

    name = "beat"
    fields = {"x": F.float32(quant=0.01, lo=-100000, hi=100000), "owner": F.player()}
    inputs = InputSchema({"dx": I.float32(-1, 1)})
    max_players = 16
    tick_rate = 30
    send_rate = 30

    def on_create(self, config: dict[str, Any]) -> None:
        self.beat = 0
        self.applied: dict[str, int] = {}
        self.world.spawn(50, x=self.rng.uniform(0, 100, 50))

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        player.entity = int(self.world.spawn(1, x=0.0, owner=player.id)[0])

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w = self.world
        slots = w.alive_slots()
        w["x"][slots] += self.rng.normal(0, 0.1, slots.shape[0]).astype(np.float32)
        per: dict[int, list[int]] = {}
        for pid, seq, dx in zip(inputs.player.tolist(), inputs.seq.tolist(),
                                inputs["dx"].tolist()):
            per.setdefault(pid, []).append(seq)
            key = str(pid)
            self.applied[key] = self.applied.get(key, 0) + 1
            p = self.players.get(pid)
            if p is not None and p.entity is not None:
                w["x"][w.slots_of([p.entity])] += dx
        for pid, seqs in per.items():
            if pid in self.players:
                self.send("applied", {"s": seqs, "t": tick}, to=pid)
        self.beat += 1
        self.send("beat", {"n": self.beat, "t": tick})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One ``python -m gameserver serve test_handover:Beat ... --handover`` process."""

    def __init__(self, redis_url: str, *extra: str) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        env = dict(os.environ,
                   PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gameserver", "serve", "test_handover:Beat",
             "--port", str(self.port), "--redis", redis_url, "--public-url", self.url,
             "--handover", "--seed", "5", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = URL_LINE.search(line)
        if not m:
            self.kill()
            raise AssertionError(f"no URL line: {line!r} {self.proc.stderr.read()!r}")
        assert m.group(1) == self.url
        self.err = ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(Exception):
            _, self.err = self.proc.communicate(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; return the exit status (stderr kept in ``err``)."""
        self.proc.send_signal(signal.SIGTERM)
        _, self.err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode


@pytest.fixture
def nodes(redis_url: str) -> Iterator[list[Node]]:
    made: list[Node] = []
    try:
        made.append(Node(redis_url))
        made.append(Node(redis_url))
        yield made
    finally:
        for n in made:
            n.kill()


class Player_:
    """A GameClient plus what it saw: ticks, beats, applied seqs, inputs really sent."""

    def __init__(self, url: str, name: str, room: str | None = None) -> None:
        self.ticks: list[int] = []
        self.beats: list[int] = []
        self.applied: list[int] = []
        self.sent: list[int] = []
        self.client = GameClient(url, game="beat", room=room, name=name,
                                 on_tick=self._tick, on_event=self._event,
                                 backoff=Backoff(base=0.05, cap=0.3, max_attempts=4))

    def _tick(self, c: GameClient, u: TickUpdate) -> None:
        self.ticks.append(u.tick)

    def _event(self, c: GameClient, e: GameEvent) -> None:
        if e.kind == "beat":
            self.beats.append(int(e.data["n"]))
        elif e.kind == "applied":
            self.applied.extend(int(s) for s in e.data["s"])

    def send(self) -> None:
        c = self.client
        if not c.connected:
            return
        seq = c.send_input(dx=random.uniform(-1, 1))
        if c.pending_inputs and c.pending_inputs[-1][0] == seq:
            self.sent.append(seq)  # written to the socket (else dropped while moving)


async def drive(players: list[Player_], seconds: float) -> None:
    """Every player sends an input about every tick for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for p in players:
            p.send()
        await asyncio.sleep(1 / 30)


async def until(cond: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def room_players(node: Node, room: str | None) -> int:
    """Players in ``room`` on ``node`` (its ``/rooms``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/rooms", timeout=5) as resp:
        rooms = json.loads(resp.read())
    return sum(int(r["players"]) for r in rooms if r["id"] == room)


def test_sigterm_hands_the_room_over_with_nothing_lost(nodes: list[Node]) -> None:
    a, b = nodes

    report = Path(tempfile.mkdtemp()) / "bots.json"
    bots = subprocess.Popen(  # the bot swarm (GameClients) in the same room, moved too
        [sys.executable, "-m", "clients.bots", a.url, "--count", "3", "--game", "beat",
         "--duration", "12", "--json", str(report), "--quiet", "--input-every", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    async def main() -> None:
        players = [Player_(a.url, f"p{i}") for i in range(4)]
        await players[0].client.connect()
        room = players[0].client.room
        for p in players[1:]:
            p.client.room_id = room
            await p.client.connect()
        before = [(p.client.player, p.client.entity, p.client.room) for p in players]
        assert len({x[0] for x in before}) == 4 and all(x[2] == room for x in before)
        try:
            await drive(players, 1.5)
            # the bots are in the room too before the move (their process starts slowly)
            end = time.monotonic() + 30
            while room_players(a, room) < 7:
                assert time.monotonic() < end, "the bots did not join"
                await drive(players, 0.2)
            last_on_a = [p.ticks[-1] for p in players]
            stopper = asyncio.get_running_loop().run_in_executor(None, a.stop)
            await drive(players, 3.0)  # inputs keep coming while the room moves
            assert await asyncio.wait_for(stopper, 40) == 0, a.err
            await until(lambda: all(p.client.url == b.url and p.client.connected
                                    for p in players), 20, "every client on node b")
            await drive(players, 1.5)
            # everything sent has been acknowledged (applied) by now
            await until(lambda: all(p.client.acked_seq >= p.sent[-1] for p in players), 10,
                        "acks of the last inputs")
            await until(lambda: all(set(p.sent) <= set(p.applied) for p in players), 10,
                        "applied reports of the last inputs")
        finally:
            for p in players:
                await p.client.close()
        assert "room handed over" in a.err, a.err
        assert "Traceback" not in a.err, a.err
        for p, (pid, ent, rid), last in zip(players, before, last_on_a):
            c = p.client
            assert (c.player, c.entity, c.room) == (pid, ent, rid)
            assert c.stats.redirects == 1 and c.error is None
            # ticks strictly increasing across the move: no tick number reused
            assert all(x < y for x, y in itertools.pairwise(p.ticks)), p.ticks
            assert any(t > last for t in p.ticks)
            # events: every beat once, in order, none missing around the move
            assert p.beats == list(range(p.beats[0], p.beats[0] + len(p.beats))), p.beats
            # inputs: each one sent was applied exactly once
            assert sorted(p.applied) == sorted(set(p.applied)), "an input applied twice"
            assert set(p.sent) == set(p.applied), (set(p.sent) ^ set(p.applied))
            assert len(p.sent) > 100
        # the room kept ticking on b well past where a stopped
        assert max(p.ticks[-1] for p in players) > max(last_on_a) + 30

    try:
        asyncio.run(asyncio.wait_for(main(), 120))
        _, bot_err = bots.communicate(timeout=60)
    finally:
        if bots.poll() is None:
            bots.kill()
            bots.wait()
    rep = json.loads(report.read_text())
    assert rep["failures"] == 0 and rep["connects"] == 3, (rep, bot_err)
    # each bot followed the move and stayed connected (but for the pause) the whole run
    assert all(b["reconnects"] == 1 and b["connected_s"] > 0.5 * rep["duration_s"]
               for b in rep["per_bot_detail"]), rep["per_bot_detail"]
    assert rep["reconnects"] >= 3 and rep["errors"] == 0, rep


def test_sigkill_players_told_promptly_and_can_join_again(nodes: list[Node]) -> None:
    a, b = nodes

    async def main() -> None:
        players = [Player_(b.url, f"k{i}") for i in range(3)]
        for p in players:
            await p.client.connect()
        await drive(players, 0.5)
        t0 = time.monotonic()
        b.kill()  # SIGKILL: no handover, the kernel resets the connections
        for p in players:
            with pytest.raises(E.ConnectionLost):
                await asyncio.wait_for(p.client.wait_closed(), 15)
        assert time.monotonic() - t0 < 15
        # they can play again on the surviving node
        again = [Player_(a.url, f"k{i}") for i in range(3)]
        try:
            for p in again:
                await p.client.connect()
            await drive(again, 0.5)
            assert all(p.client.connected and p.ticks for p in again)
        finally:
            for p in again + players:
                await p.client.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_browser_client_follows_the_move(nodes: list[Node]) -> None:
    """The shipped browser bundle (in node, its WebSocket) keeps playing across the move."""
    node_exe = shutil.which("node")
    if node_exe is None:
        pytest.skip("node is not installed")
    bundle = HERE.parents[1] / "clients" / "web" / "dist" / "gameclient.js"
    probe = subprocess.Popen(
        [node_exe, "--experimental-websocket", "--no-warnings",
         str(HERE / "web_handover_probe.mjs"), bundle.as_uri(), nodes[0].url, "5000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert probe.stdout is not None
        first = probe.stdout.readline()
        if "ready" not in first:
            probe.kill()
            out, err = probe.communicate(timeout=10)
            if "WebSocket" in err and "not defined" in err:
                pytest.skip("this node has no WebSocket (needs node >= 20.10)")
            raise AssertionError(f"probe did not join: {first!r} {err!r}")
        time.sleep(1.5)
        assert nodes[0].stop() == 0, nodes[0].err
        out, err = probe.communicate(timeout=30)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    seen = json.loads(out.strip().splitlines()[-1])
    w = seen["welcomes"]
    assert len(w) == 2 and seen["fatal"] is None, seen
    assert (w[0]["player"], w[0]["entity"], w[0]["room"]) == \
        (w[1]["player"], w[1]["entity"], w[1]["room"])
    assert w[1]["url"] == nodes[1].url and seen["redirects"] == 1
    assert 4014 in seen["closes"]
    ticks, beats = seen["ticks"], seen["beats"]
    assert all(x < y for x, y in itertools.pairwise(ticks))
    assert beats == list(range(beats[0], beats[0] + len(beats)))
    assert sorted(seen["applied"]) == sorted(set(seen["applied"]))
    assert set(seen["sent"]) == set(seen["applied"]) and len(seen["sent"]) > 50
