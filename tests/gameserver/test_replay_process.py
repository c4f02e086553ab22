"""End to end: `gameserver --record DIR` with Python clients, `gameserver replay --verify`,
then `gameserver replay --serve` watched by a Python client (pause, seek, speed)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from clients import GameClient
from gameserver.replay.format import ReplayReader, TickRun

URL_LINE = re.compile(r"gameserver: serving (.+?) at (http://\S+) \(ws at (ws://\S+)\)")


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "gameserver", *args, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = URL_LINE.search(line)
    if not m:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"no URL line: {line!r} {err}")
    return proc, m.group(3)


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=5)
    return err


async def play(ws_url: str) -> None:
    """Three players for ~2.5 s: inputs every tick-ish; one leaves half-way."""
    clients = [GameClient(ws_url, game="arena", name=f"p{i}", reconnect=False)
               for i in range(3)]
    for c in clients:
        await c.connect()
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < 2.5:
        k += 1
        for i, c in enumerate(clients):
            if c is clients[2] and k == 40:
                await c.close()
            if c is not clients[2] or k < 40:
                c.send_input(dx=((k + i) % 7 - 3) / 3, dy=((k * i) % 5 - 2) / 2,
                             boost=k % 9 == 0)
        await asyncio.sleep(1 / 30)
    for c in clients[:2]:
        await c.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec_dir = tmp_path_factory.mktemp("rec")
    proc, ws_url = start("--record", str(rec_dir), "--room-config", '{"critters": 80}',
                         "--seed", "99")
    try:
        asyncio.run(play(ws_url))
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    files = sorted(rec_dir.glob("*.gsreplay"))
    assert len(files) == 1, (files, err)
    assert "recording closed" in err and "reason=shutdown" in err
    return files[0]


def test_recorded_server_room_verifies(recorded: Path) -> None:
    with ReplayReader(recorded) as r:
        assert r.header.game == "arena" and r.header.config == {"critters": 80}
        assert r.header.raw["room"] == "arena-1"
        recs = list(r.records())
    calls = [c for x in recs if isinstance(x, TickRun) for c in x.calls]
    assert sum(c.kind == "j" for c in calls) == 3
    assert sum(c.kind == "i" for c in calls) > 60
    assert recs[-1]["reason"] == "shutdown"
    proc = subprocess.run([sys.executable, "-m", "gameserver", "replay", str(recorded),
                           "--verify"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = re.match(r"replay ok: arena version 0, (\d+) ticks \(([\d.]+) s at 30 Hz\), "
                 r"3 players", proc.stdout)
    assert m, proc.stdout
    assert int(m.group(1)) >= 45  # ~2.5 s of match at 30 Hz on a busy box


def test_tampered_server_recording_fails(recorded: Path, tmp_path: Path) -> None:
    from tests.gameserver.test_replay import rewrite

    target: dict[str, int] = {}

    def edit(obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("k") == "ticks" and not target:
            calls = obj["calls"]
            for i, c in enumerate(calls):
                # the arena applies a player's latest input of a tick: tamper with a last one
                later = [d for d in calls[i + 1:] if d[0] == c[0] and d[2] == c[2]]
                if c[1] == "i" and abs(c[4][0]) > 0.5 and not later:
                    c[4][0] = -c[4][0]
                    target["tick"] = c[0]
                    break
        return obj

    bad = tmp_path / "bad.gsreplay"
    rewrite(recorded, bad, edit)
    proc = subprocess.run([sys.executable, "-m", "gameserver", "replay", str(bad), "--verify"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (target, proc.stdout, proc.stderr)
    assert f"MISMATCH at tick {target['tick']}" in proc.stderr, proc.stderr


async def watch(ws_url: str, end: int) -> None:
    statuses: list[dict[str, Any]] = []
    kinds: list[str] = []

    def on_event(c: GameClient, ev: Any) -> None:
        kinds.append(ev.kind)
        if ev.kind == "replay":
            statuses.append(ev.data)

    client = GameClient(ws_url, game="replay", name="spectator", reconnect=False,
                        on_event=on_event)
    await client.connect()
    try:
        assert client.welcome.game == "replay"
        assert [f["n"] for f in client.welcome.inputs] == ["cmd", "speed", "tick"]
        assert client.world is not None and len(client.world.ids) >= 80  # the arena's world

        async def until(pred: Any, timeout: float = 10.0) -> dict[str, Any]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if statuses and pred(statuses[-1]):
                    return statuses[-1]
                await asyncio.sleep(0.02)
            raise AssertionError(f"timed out; last status {statuses[-1:]}")

        first = await until(lambda s: True)
        assert first["end"] == end and first["game"] == "arena"
        # playing at 1x: the recorded tick advances
        await until(lambda s: s["tick"] > first["tick"] + 5)
        # pause: the tick stops
        client.send_input(cmd=2, speed=1.0, tick=0)
        paused = await until(lambda s: s["paused"])
        await asyncio.sleep(0.6)
        assert statuses[-1]["tick"] == paused["tick"] and statuses[-1]["paused"]
        # seek back to tick 3 while paused: the status jumps there and stays
        client.send_input(cmd=3, speed=1.0, tick=3)
        await until(lambda s: s["tick"] == 3 and not s["seeking"])
        # speed 4x and play: advances about four recorded ticks per playback tick
        client.send_input(cmd=4, speed=4.0, tick=0)
        await until(lambda s: s["speed"] == 4.0)
        client.send_input(cmd=1, speed=4.0, tick=0)
        s0 = await until(lambda s: not s["paused"])
        t0 = time.monotonic()
        s1 = await until(lambda s: s["tick"] >= min(end, s0["tick"] + 24))
        rate = (s1["tick"] - s0["tick"]) / (time.monotonic() - t0)
        assert rate > 30 * 1.5, rate  # > 1.5x real time (4x nominal; a busy box is slower)
        # seek forward past the end: clamped, playback stops at the end
        client.send_input(cmd=3, speed=4.0, tick=10**6)
        await until(lambda s: s["tick"] == end)
        # the recorded game's broadcast events were forwarded (the players' "joined")
        assert "joined" in kinds, kinds[:20]
    finally:
        await client.close()


def test_serve_replay_to_python_client(recorded: Path) -> None:
    with ReplayReader(recorded) as r:
        end = next(x for x in r.records() if isinstance(x, dict))["tick"]
    proc, ws_url = start("replay", str(recorded), "--serve")
    try:
        asyncio.run(watch(ws_url, end))
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_serve_refuses_damaged_file(recorded: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gsreplay"
    cut.write_bytes(recorded.read_bytes()[:-100])
    proc = subprocess.run([sys.executable, "-m", "gameserver", "replay", str(cut), "--serve",
                           "--port", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "replay broken at tick" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_killed_server_loses_at_most_the_last_half_second(tmp_path: Path) -> None:
    """SIGKILL mid-match: the file reads as truncated at a tick close to the end of the match
    (runs are handed to the OS every 0.5 s of match), and every tick before it verifies."""
    proc, ws_url = start("--record", str(tmp_path), "--room-config", '{"critters": 30}')
    seen = 0
    try:
        async def main() -> int:
            c = GameClient(ws_url, game="arena", name="k", reconnect=False)
            await c.connect()
            t0 = time.monotonic()
            k = 0
            while time.monotonic() - t0 < 2.0:
                k += 1
                c.send_input(dx=(k % 5 - 2) / 2, dy=0.5, boost=False)
                await asyncio.sleep(1 / 30)
            await asyncio.sleep(0.3)
            tick = c.server_tick
            proc.kill()  # SIGKILL: no shutdown, no end record
            return int(tick)

        seen = asyncio.run(main())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    files = list(tmp_path.glob("*.gsreplay"))
    assert len(files) == 1
    out = subprocess.run([sys.executable, "-m", "gameserver", "replay", str(files[0]),
                          "--verify"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    m = re.search(r"stopped abruptly after tick (\d+)", out.stderr)
    assert m, out.stderr
    last = int(m.group(1))
    # at most 0.5 s (15 ticks) + the 0.3 s we waited + scheduling slack on a busy box
    assert seen - 45 <= last <= seen + 30, (seen, last)
