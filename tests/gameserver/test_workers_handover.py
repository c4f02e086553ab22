"""``--handover`` with ``--workers 2``: SIGTERM to a machine hands every worker's rooms over.

Two real machines on one test Redis, each ``gameserver serve test_handover:Beat --workers 2
--redis URL --handover`` (rooms of 3, so the players fill rooms on both workers of A).
SIGTERM to A's supervisor: its workers stop receiving first (no room goes to a sibling that
is stopping too), then each hands its rooms over; B's workers restore them; every player
gets 4014 MOVED with B's URL and RESUMEs there through B's supervisor (a token ``w<i>.``
from A names a worker of A: B's supervisor finds the holder in the directory). The
assertions of test_handover.py hold: same player id, entity and room id, ticks strictly
increasing, every beat once, every input applied exactly once; the bots follow too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from test_handover import Player_, drive, until
from test_workers import alive

from gameserver.machine import worker_of_room

HERE = Path(__file__).parent
URL_LINE = re.compile(r"gameserver: serving .+? at (http://\S+) \(ws at (ws://\S+)\)")


class Machine:
    """One ``--workers 2 --redis --handover`` supervisor serving test_handover:Beat."""

    def __init__(self, redis_url: str, log: Path) -> None:
        env = dict(os.environ,
                   PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        self.log = log
        with log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gameserver", "serve", "test_handover:Beat",
                 "--workers", "2", "--port", "0", "--redis", redis_url, "--handover",
                 "--max-players", "3", "--seed", "5"],
                stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = URL_LINE.search(line)
        if not m:
            self.kill()
            raise AssertionError(f"no URL line: {line!r} {log.read_text()}")
        self.http, self.url = m.group(1), m.group(2)
        self.children = _children(self.proc.pid)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def rooms(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.http + "rooms", timeout=5) as r:
            rooms: list[dict[str, Any]] = json.loads(r.read())
        return rooms

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.children |= _children(self.proc.pid)  # restarted workers too
            self.proc.kill()
            self.proc.wait(10)
        for pid in self.children:  # never leave a worker behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            out.update(int(x) for x in
                       Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return out


@contextlib.contextmanager
def machines(redis_url: str, tmp: Path) -> Iterator[tuple[Machine, Machine]]:
    made: list[Machine] = []
    try:
        made.append(Machine(redis_url, tmp / "a.log"))
        made.append(Machine(redis_url, tmp / "b.log"))
        yield made[0], made[1]
    finally:
        for m in made:
            m.kill()


def test_sigterm_hands_every_workers_rooms_over(redis_url: str, tmp_path: Path) -> None:
    with machines(redis_url, tmp_path) as (a, b):
        report = Path(tempfile.mkdtemp()) / "bots.json"
        bots = subprocess.Popen(  # a bot swarm (GameClients) on A too, moved with the rooms
            [sys.executable, "-m", "clients.bots", a.url, "--count", "3", "--game", "beat",
             "--duration", "10", "--json", str(report), "--quiet", "--input-every", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        async def main() -> None:
            players = [Player_(a.url, f"p{i}") for i in range(5)]
            for p in players:
                await p.client.connect()
            before = [(p.client.player, p.client.entity, p.client.room) for p in players]
            # rooms of 3 on the machine: both workers hold players
            assert {worker_of_room(str(x[2])) for x in before} == {0, 1}, before
            try:
                await drive(players, 1.0)
                end = time.monotonic() + 30
                while sum(int(r["players"]) for r in await asyncio.to_thread(a.rooms)) < 8:
                    assert time.monotonic() < end, "the bots did not join"
                    await drive(players, 0.2)
                last_on_a = [p.ticks[-1] for p in players]
                a.proc.send_signal(signal.SIGTERM)
                await drive(players, 2.0)  # inputs keep coming while the rooms move
                await until(lambda: all(p.client.url == b.url and p.client.connected
                                        for p in players), 20, "every client on machine b")
                await drive(players, 1.5)
                await until(lambda: all(p.client.acked_seq >= p.sent[-1] for p in players),
                            10, "acks of the last inputs")
                await until(lambda: all(set(p.sent) <= set(p.applied) for p in players), 10,
                            "applied reports of the last inputs")
                on_b = {r["id"]: r for r in await asyncio.to_thread(b.rooms)}
            finally:
                for p in players:
                    await p.client.close()
            for p, (pid, ent, rid), last in zip(players, before, last_on_a):
                c = p.client
                assert (c.player, c.entity, c.room) == (pid, ent, rid)
                assert c.stats.redirects == 1 and c.error is None
                assert rid in on_b and on_b[rid]["players"] >= 1, (rid, on_b)
                assert all(x < y for x, y in itertools.pairwise(p.ticks)), p.ticks
                assert any(t > last for t in p.ticks)
                assert p.beats == list(range(p.beats[0], p.beats[0] + len(p.beats))), p.beats
                assert sorted(p.applied) == sorted(set(p.applied)), "an input applied twice"
                assert set(p.sent) == set(p.applied), (set(p.sent) ^ set(p.applied))
                assert len(p.sent) > 50

        try:
            asyncio.run(asyncio.wait_for(main(), 90))
            _, bot_err = bots.communicate(timeout=60)
        finally:
            if bots.poll() is None:
                bots.kill()
                bots.wait()
        assert a.proc.wait(30) == 0
        text = a.text()
        assert text.count("room handed over") >= 2, text
        assert "room lost" not in text and "Traceback" not in text, text
        assert "Traceback" not in b.text()
        assert not any(alive(pid) for pid in a.children)
        rep = json.loads(report.read_text())
        assert rep["failures"] == 0 and rep["connects"] == 3, (rep, bot_err)
        assert all(x["reconnects"] == 1 for x in rep["per_bot_detail"]), rep["per_bot_detail"]


def test_sighup_rolls_the_workers_through_redis(redis_url: str, tmp_path: Path) -> None:
    """SIGHUP: worker 0 hands its rooms to worker 1 and is started again (a new node), then
    worker 1 hands everything to the new worker 0 and is started again. Players of worker 0
    move twice, of worker 1 once, always back through the same supervisor port; nothing is
    lost or doubled, and the machine keeps serving new joins."""
    a = Machine(redis_url, tmp_path / "a.log")
    try:
        old = {int(x): int(y) for x, y in
               re.findall(r"worker ready worker=(\d+) pid=(\d+)", a.text())}

        async def main() -> None:
            players = [Player_(a.url, f"r{i}") for i in range(4)]
            for p in players:
                await p.client.connect()
            before = [(p.client.player, p.client.entity, p.client.room) for p in players]
            assert [worker_of_room(str(x[2])) for x in before] == [0, 0, 0, 1], before
            try:
                await drive(players, 1.0)
                a.proc.send_signal(signal.SIGHUP)
                end = time.monotonic() + 40
                while "rolling restart finished" not in a.text():
                    assert time.monotonic() < end, a.text()
                    await drive(players, 0.2)
                await until(lambda: all(p.client.connected for p in players), 10,
                            "every client back")
                await drive(players, 1.5)
                await until(lambda: all(p.client.acked_seq >= p.sent[-1] for p in players),
                            10, "acks of the last inputs")
                await until(lambda: all(set(p.sent) <= set(p.applied) for p in players), 10,
                            "applied reports of the last inputs")
                rooms = {r["id"]: r["worker"] for r in await asyncio.to_thread(a.rooms)}
                late = Player_(a.url, "late")  # the machine still takes new players
                await late.client.connect()
                await late.client.close()
            finally:
                for p in players:
                    await p.client.close()
            for i, (p, (pid, ent, rid)) in enumerate(zip(players, before)):
                c = p.client
                assert (c.player, c.entity, c.room, c.url) == (pid, ent, rid, a.url)
                assert c.error is None
                assert c.stats.redirects == (2 if i < 3 else 1), (i, c.stats.redirects)
                assert rooms.get(rid) == 0, rooms  # all on the new worker 0 in the end
                assert all(x < y for x, y in itertools.pairwise(p.ticks)), p.ticks
                assert p.beats == list(range(p.beats[0], p.beats[0] + len(p.beats))), p.beats
                assert sorted(p.applied) == sorted(set(p.applied)), "an input applied twice"
                assert set(p.sent) == set(p.applied), (set(p.sent) ^ set(p.applied))

        asyncio.run(asyncio.wait_for(main(), 90))
        text = a.text()
        new = {int(x): int(y) for x, y in
               re.findall(r"worker ready worker=(\d+) pid=(\d+)", text)}
        assert set(new) == {0, 1} and all(new[i] != old[i] for i in (0, 1)), (old, new)
        assert "rolling restart finished restarted=2" in text
        assert "room lost" not in text and "Traceback" not in text, text
        assert "closing them with 4015" not in text, text
    finally:
        a.kill()


def test_browser_client_rides_a_rolling_restart(redis_url: str, tmp_path: Path) -> None:
    """The shipped browser bundle (in node) through SIGHUP: its room moves worker 0 ->
    worker 1 -> the new worker 0, each time 4014 with the URL it is already on; it RESUMEs
    through the supervisor both times: same player, entity and room, nothing lost or doubled."""
    import shutil

    import pytest

    node_exe = shutil.which("node")
    if node_exe is None:
        pytest.skip("node is not installed")
    bundle = HERE.parents[1] / "clients" / "web" / "dist" / "gameclient.js"
    a = Machine(redis_url, tmp_path / "a.log")
    probe = None
    try:
        probe = subprocess.Popen(
            [node_exe, "--experimental-websocket", "--no-warnings",
             str(HERE / "web_handover_probe.mjs"), bundle.as_uri(), a.url, "9000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert probe.stdout is not None
        first = probe.stdout.readline()
        if "ready" not in first:
            probe.kill()
            _, err = probe.communicate(timeout=10)
            if "WebSocket" in err and "not defined" in err:
                pytest.skip("this node has no WebSocket (needs node >= 20.10)")
            raise AssertionError(f"probe did not join: {first!r} {err!r}")
        time.sleep(1.0)
        a.proc.send_signal(signal.SIGHUP)
        out, err = probe.communicate(timeout=40)
    finally:
        if probe is not None and probe.poll() is None:
            probe.kill()
            probe.wait()
        text = a.text()
        a.kill()
    assert "rolling restart finished restarted=2" in text, text
    seen = json.loads(out.strip().splitlines()[-1])
    w = seen["welcomes"]
    assert len(w) == 3 and seen["fatal"] is None, (seen, err)
    assert len({(x["player"], x["entity"], x["room"], x["url"]) for x in w}) == 1, w
    assert worker_of_room(w[0]["room"]) == 0
    assert seen["redirects"] == 2 and seen["closes"].count(4014) == 2, seen["closes"]
    ticks, beats = seen["ticks"], seen["beats"]
    assert all(x < y for x, y in itertools.pairwise(ticks))
    assert beats == list(range(beats[0], beats[0] + len(beats)))
    assert sorted(seen["applied"]) == sorted(set(seen["applied"]))
    assert set(seen["sent"]) == set(seen["applied"]) and len(seen["sent"]) > 50
