"""Replay files in-process: record a simulation, verify it, tamper with it, damage it, seek.

The recording here drives a :class:`Simulation` of the arena directly (joins, leaves, random
inputs); the end-to-end test through a real server process is test_replay_process.py.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from examples.arena import Arena
from gameserver.inputs import I, InputSchema
from gameserver.replay import format as fmt
from gameserver.replay.format import ReplayCorrupt, ReplayIncompatible, ReplayReader, TickRun
from gameserver.replay.player import Mismatch, Playback, main, verify
from gameserver.replay.recorder import Recorder
from gameserver.rules import F, Game
from gameserver.simulation import Simulation

TICKS = 120


def record(path: Path, *, ticks: int = TICKS, cls: type[Any] = Arena,
           keyframe_seconds: float = 1.0) -> list[int]:
    """Record a small arena match to ``path``; returns the live state hash of every tick."""
    sim = Simulation(cls, seed=7, config={"critters": 60, "orbs": 10}, tick_rate=30)
    rec = Recorder(sim, cls, path, send_rate=15, keyframe_seconds=keyframe_seconds)
    rng = np.random.default_rng(3)
    seqs: dict[int, int] = {}
    hashes = []
    for t in range(ticks):
        if t == 2:
            sim.join(11, "ann", {"v": 1, "name": "ann"})
            seqs[11] = 0
        if t == 5:
            sim.join(12, "bob", {"v": 1, "name": "bob"})
            seqs[12] = 0
        if t == 80:
            sim.leave(11, "leave")
            del seqs[11]
        for p in list(seqs):
            seqs[p] += 1
            sim.queue_input(p, seqs[p], {"dx": float(rng.uniform(-1, 1)),
                                         "dy": float(rng.uniform(-1, 1)),
                                         "boost": bool(rng.random() < 0.2)})
        sim.step()
        rec.after_tick()
        hashes.append(fmt.state_hash(sim.world))
    sim.leave(12, "shutdown")  # a trailing call after the last tick (as a shutdown does)
    rec.close("test")
    return hashes


@pytest.fixture
def replay_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.gsreplay"
    record(path)
    return path


def rewrite(src: Path, dst: Path, edit: Any) -> None:
    """Copy a replay record by record through ``edit(payload) -> payload`` (valid CRCs)."""
    import msgpack

    data = src.read_bytes()
    out = bytearray(fmt.MAGIC)
    off = len(fmt.MAGIC)
    while off < len(data):
        n = int.from_bytes(data[off:off + 4], "big")
        obj = msgpack.unpackb(data[off + 8:off + 8 + n], raw=False, strict_map_key=False)
        out += fmt.frame(edit(obj))
        off += 8 + n
    dst.write_bytes(bytes(out))


def test_verify_ok_and_summary(replay_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = verify(replay_file)
    assert result.ticks == TICKS and result.players == 2 and result.reason == "test"
    assert result.keyframes == TICKS // 30 + 1  # every second, plus tick 0
    assert main([str(replay_file), "--verify"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("replay ok: arena version 0, 120 ticks (4.0 s at 30 Hz), 2 players")


def test_header_and_records(replay_file: Path) -> None:
    with ReplayReader(replay_file) as r:
        h = r.header
        assert (h.game, h.game_class, h.seed, h.tick_rate) == ("arena", "examples.arena:Arena",
                                                                 7, 30)
        assert h.config == {"critters": 60, "orbs": 10} and h.raw["send_rate"] == 15
        assert [f["n"] for f in h.schema["fields"]][:2] == ["x", "y"]
        assert h.input_names() == list(Arena.inputs) and h.input_names()[:3] == [
            "dx", "dy", "boost"]
        recs = list(r.records())
    runs = [x for x in recs if isinstance(x, TickRun)]
    assert runs[0].first == 1 and runs[-1].last == TICKS
    assert all(b.first == a.last + 1 for a, b in itertools.pairwise(runs))
    assert max(x.last - x.first + 1 for x in runs) <= 15  # flushed every 0.5 s of match
    calls = [c for x in runs for c in x.calls]
    assert [c.kind for c in calls if c.kind != "i"] == ["j", "j", "l"]
    assert recs[-1]["k"] == "end" and [c.kind for c in recs[-1]["calls"]] == ["l"]


def test_hashes_are_the_live_ones(tmp_path: Path) -> None:
    path = tmp_path / "h.gsreplay"
    live = record(path)
    with ReplayReader(path) as r:
        stored = [int(h) for x in r.records() if isinstance(x, TickRun) for h in x.hashes]
    assert stored == live
    assert len(set(live)) > TICKS // 2  # the world changes, so does the hash


def test_tampered_input_names_its_tick(replay_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    target: dict[str, int] = {}

    def edit(obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("k") == "ticks" and obj["from"] > 40 and not target:
            for c in obj["calls"]:
                if c[1] == "i" and abs(c[4][0]) > 0.3:
                    c[4][0] = -c[4][0]  # flip dx: the player moves the other way
                    target["tick"] = c[0]
                    break
        return obj

    bad = tmp_path / "tampered.gsreplay"
    rewrite(replay_file, bad, edit)
    with pytest.raises(Mismatch) as e:
        verify(bad)
    assert e.value.tick == target["tick"]
    assert main([str(bad), "--verify"]) == 1
    err = capsys.readouterr().err
    assert f"MISMATCH at tick {target['tick']}" in err and "Traceback" not in err


def test_tampered_keyframe_detected(replay_file: Path, tmp_path: Path) -> None:
    def edit(obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("k") == "key" and obj["tick"] == 60:
            hp = bytearray(obj["cols"]["hp"])
            hp[0] ^= 1
            obj["cols"]["hp"] = bytes(hp)
        return obj

    bad = tmp_path / "key.gsreplay"
    rewrite(replay_file, bad, edit)
    with pytest.raises(Mismatch, match="tick 60: keyframe field 'hp'"):
        verify(bad)


@pytest.mark.parametrize("frac", [0.0005, 0.01, 0.3, 0.5, 0.77, 0.999])
def test_truncated_file_names_the_tick(replay_file: Path, tmp_path: Path, frac: float,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = replay_file.read_bytes()
    cut = tmp_path / "cut.gsreplay"
    cut.write_bytes(data[: int(len(data) * frac)])
    with pytest.raises(ReplayCorrupt) as e:
        verify(cut)
    assert 0 <= e.value.tick <= TICKS + 1
    assert main([str(cut), "--verify"]) == 1
    err = capsys.readouterr().err
    assert f"broken at tick {e.value.tick}" in err and "Traceback" not in err


def test_truncated_at_record_boundary(replay_file: Path, tmp_path: Path) -> None:
    """A file cut cleanly after a record (the recording process died) says where it ends."""
    with ReplayReader(replay_file) as r:
        offsets = []
        for x in r.records():
            if isinstance(x, TickRun) and x.last == 60:
                offsets.append(r.offset)
    cut = tmp_path / "cut.gsreplay"
    cut.write_bytes(replay_file.read_bytes()[: offsets[0]])
    with pytest.raises(ReplayCorrupt, match="stopped abruptly after tick 60") as e:
        verify(cut)
    assert e.value.tick == 61


def test_flipped_bytes_are_caught(replay_file: Path, tmp_path: Path) -> None:
    data = replay_file.read_bytes()
    rng = np.random.default_rng(0)
    for off in [9, 20, *rng.integers(30, len(data), 25).tolist()]:
        bad = bytearray(data)
        bad[off] ^= 0x5A
        path = tmp_path / "flip.gsreplay"
        path.write_bytes(bytes(bad))
        with pytest.raises(ReplayCorrupt) as e:
            verify(path)
        assert 0 <= e.value.tick <= TICKS + 1, off


def test_not_a_replay_and_missing_file(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.gsreplay"
    junk.write_bytes(b"hello world, not a replay")
    assert main([str(junk), "--verify"]) == 1
    assert main([str(tmp_path / "nope.gsreplay"), "--verify"]) == 1
    err = capsys.readouterr().err
    assert "not a gameserver replay file" in err and "cannot open replay" in err


class ArenaV2(Arena):
    version = "2"


class ArenaFire(Arena):
    inputs = InputSchema({**Arena.inputs.fields, "fire": I.bool_()})


def test_incompatible_replays_exit_2(replay_file: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # another game version
    assert main([str(replay_file), "--verify", "--game", f"{__name__}:ArenaV2"]) == 2
    assert "recorded with arena version '0', this arena is version '2'" in capsys.readouterr().err
    # another file format version
    other = tmp_path / "v9.gsreplay"
    rewrite(replay_file, other, lambda o: {**o, "format": 9} if o.get("k") == "header" else o)
    with pytest.raises(ReplayIncompatible, match="file format version 9"):
        verify(other)
    assert main([str(other), "--verify"]) == 2
    # another entity schema
    schema = tmp_path / "schema.gsreplay"

    def drop_field(o: dict[str, Any]) -> dict[str, Any]:
        if o.get("k") == "header":
            o["schema"]["fields"] = o["schema"]["fields"][:-1]
        return o

    rewrite(replay_file, schema, drop_field)
    assert main([str(schema), "--verify"]) == 2
    assert "entity schema of arena changed" in capsys.readouterr().err
    # a game class that does not import
    gone = tmp_path / "gone.gsreplay"
    rewrite(replay_file, gone,
            lambda o: {**o, "game_class": "nosuch.module:Game"} if o.get("k") == "header" else o)
    assert main([str(gone), "--verify"]) == 2
    assert "cannot load the recorded game class 'nosuch.module:Game'" in capsys.readouterr().err
    # another input schema
    assert main([str(replay_file), "--verify", "--game", f"{__name__}:ArenaFire"]) == 2
    assert "input schema of arena changed" in capsys.readouterr().err


def test_cli_subprocess_never_tracebacks(replay_file: Path, tmp_path: Path) -> None:
    data = replay_file.read_bytes()
    cut = tmp_path / "cut.gsreplay"
    cut.write_bytes(data[: len(data) // 2])
    for path, code in ((replay_file, 0), (cut, 1)):
        proc = subprocess.run([sys.executable, "-m", "gameserver", "replay", str(path),
                               "--verify"], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ))
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
    assert "replay broken at tick" in proc.stderr


def test_playback_seek_matches_recorded_hashes(tmp_path: Path) -> None:
    path = tmp_path / "p.gsreplay"
    live = record(path)
    pb = Playback(path)
    try:
        for _ in range(100):
            assert pb.step()
        assert fmt.state_hash(pb.sim.world) == live[99]
        assert sorted(pb.checkpoints) == [0, 30, 60, 90]
        for target in (45, 10, 0, 118, 61):
            pb.seek(target)
            for _ in range(1000):
                if pb.target is None:
                    break
                pb.advance()
            assert pb.tick == target
            if target:
                assert fmt.state_hash(pb.sim.world) == live[target - 1]
        pb.seek(10_000)  # clamped to the end
        while pb.target is not None:
            pb.advance()
        assert pb.tick == TICKS and not pb.step()
        pb.seek(20)
        pb.set_speed(2.0)
        while pb.target is not None:
            pb.advance()
        assert pb.advance() == 2 and pb.tick == 22
        pb.set_speed(0.25)
        assert sum(pb.advance() for _ in range(8)) == 2
        pb.paused = True
        assert pb.advance() == 0 and pb.tick == 24
    finally:
        pb.close()


def test_recorder_keeps_render_tick_and_replays_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The lag-compensation contract: LogEntry.render_tick recorded, passed back on replay."""
    sim = Simulation(Arena, seed=1, config={"critters": 5}, tick_rate=30)
    rec = Recorder(sim, Arena, tmp_path / "r.gsreplay", send_rate=15)
    values = Arena.inputs.validate({"dx": 0.5, "dy": 0.0, "boost": False})
    rec._sink(SimpleNamespace(tick=1, kind="input", player=3, seq=1,  # type: ignore[arg-type]
                              data=dict(zip(Arena.inputs, values)), render_tick=42))
    sim.join(3, "c", {})
    assert [(c.kind, c.data, c.render_tick) for c in rec.calls_pending()] == [
        ("i", list(values), 42), ("j", ["c", {}], None)]
    rec.close()
    from gameserver.replay import player

    seen: list[Any] = []

    def queue_input(self: Simulation, pid: int, seq: int, data: Any, **kw: Any) -> bool:
        seen.append(kw)
        return True

    monkeypatch.setattr(Simulation, "queue_input", queue_input)
    header = ReplayReader(tmp_path / "r.gsreplay").header
    resim = player.Resimulation(header, Arena)
    resim.apply(fmt.Call(1, "i", 3, 1, [0.5, 0.0, False], 42))
    resim.apply(fmt.Call(1, "i", 3, 2, [0.5, 0.0, False], None))
    assert seen == [{"render_tick": 42}, {}]


@pytest.mark.parametrize("threaded", [False, True])
def test_recorder_disk_error_does_not_raise(tmp_path: Path, threaded: bool) -> None:
    sim = Simulation(Arena, seed=1, config={"critters": 5}, tick_rate=30)
    rec = Recorder(sim, Arena, tmp_path / "e.gsreplay", send_rate=15, flush_seconds=0.1,
                   threaded=threaded)

    def boom(payload: Any) -> int:
        raise OSError(28, "No space left on device")

    rec.writer.write = boom  # type: ignore[method-assign]
    for _ in range(10):
        sim.step()
        rec.after_tick()  # must not raise
    rec.close()
    assert rec.failed and rec.closed
    with pytest.raises(ReplayCorrupt, match="stopped abruptly after tick 0"):
        verify(tmp_path / "e.gsreplay")


def test_close_between_flushes_keeps_trailing_calls_apart(tmp_path: Path) -> None:
    """Closing mid-run: the run's calls stay in it, the calls after the last tick go to end."""
    path = tmp_path / "odd.gsreplay"
    record(path, ticks=113)
    result = verify(path)
    assert result.ticks == 113
    with ReplayReader(path) as r:
        end = next(x for x in r.records() if isinstance(x, dict))
    assert [(c.tick, c.kind) for c in end["calls"]] == [(114, "l")]


class CrashyArena(Arena):
    """Raises in on_tick once the player "doom" has been in the room for 20 ticks."""

    def on_tick(self, tick: int, dt: float, inputs: Any) -> None:
        super().on_tick(tick, dt, inputs)
        for p in self.players.values():
            if p.name == "doom" and tick - p.joined_tick > 20:
                raise RuntimeError("boom")


def test_recorded_crash_is_reproduced(tmp_path: Path) -> None:
    """A room whose game crashed: the file ends cleanly (reason crash) and verify reproduces
    the crash in the same tick; a replay that does not crash there is a mismatch."""
    from gameserver.simulation import GameError

    path = tmp_path / "crash.gsreplay"
    sim = Simulation(CrashyArena, seed=2, config={"critters": 20}, tick_rate=30)
    rec = Recorder(sim, CrashyArena, path, send_rate=15)
    for _ in range(7):
        sim.step()
        rec.after_tick()
    sim.join(5, "doom", {})
    with pytest.raises(GameError):
        for _ in range(100):
            sim.step()
            rec.after_tick()
    crash_tick = sim.tick
    rec.close("crash")  # as Room.crash -> Room._stop("crash") does
    result = verify(path, f"{__name__}:CrashyArena")
    assert result.reason == "crash" and result.ticks == crash_tick - 1
    assert "ended: crash reproduced" in result.summary()
    with pytest.raises(Mismatch, match=f"tick {crash_tick}: the recorded room crashed here"):
        verify(path, f"{__name__}:NoCrashArena")


class NoCrashArena(Arena):
    name = "arena"


def test_record_dir_must_exist(tmp_path: Path) -> None:
    from gameserver.config import ConfigError, ServerConfig

    with pytest.raises(ConfigError, match="is not a directory"):
        ServerConfig(games={"arena": Arena}, record_dir=tmp_path / "nope").check()
    ServerConfig(games={"arena": Arena}, record_dir=tmp_path).check()


def test_pending_calls_bounded_by_max_calls(tmp_path: Path) -> None:
    """A flood of calls ends a run early: the recorder never holds more than max_calls."""
    sim = Simulation(Arena, seed=1, config={"critters": 5}, tick_rate=30)
    rec = Recorder(sim, Arena, tmp_path / "b.gsreplay", send_rate=15, max_calls=40,
                   threaded=False)
    for p in range(1, 9):
        sim.join(p, f"p{p}", {})
    seq = 0
    for _ in range(40):
        for _ in range(3):
            seq += 1
            for p in range(1, 9):
                sim.queue_input(p, seq, {"dx": 0.1, "dy": 0.0, "boost": False})
        sim.step()
        rec.after_tick()
        assert len(rec.calls_pending()) < 40
    rec.close()
    assert verify(tmp_path / "b.gsreplay").ticks == 40
    with ReplayReader(tmp_path / "b.gsreplay") as r:
        runs = [x for x in r.records() if isinstance(x, TickRun)]
    assert max(len(x.calls) for x in runs) <= 40 + 24 and len(runs) >= 20


def test_writer_queue_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the writer thread is stuck, handing a run over waits once the byte bound is hit
    (backpressure) instead of queueing without end; it goes on when the writer resumes."""
    import threading

    from gameserver.replay import recorder as R

    monkeypatch.setattr(R, "MAX_INFLIGHT", 4096)
    gate = threading.Event()
    writer = R._Writer()  # a private writer thread for this test
    monkeypatch.setattr(R._Writer, "get", classmethod(lambda cls: writer))
    sim = Simulation(Arena, seed=1, config={"critters": 200}, tick_rate=30)
    rec = Recorder(sim, Arena, tmp_path / "q.gsreplay", send_rate=15, flush_seconds=1 / 30,
                   keyframe_seconds=1 / 30)  # a run and a keyframe (~4.5 KB) every tick
    real = rec._file.handle

    def slow(op: str, payload: Any) -> None:
        gate.wait(10)
        real(op, payload)

    rec._file.handle = slow  # type: ignore[method-assign]
    done = threading.Event()

    def ticks() -> None:
        for _ in range(5):
            sim.step()
            rec.after_tick()
        done.set()

    t = threading.Thread(target=ticks)
    t.start()
    assert not done.wait(0.5), "the recorder queued past its bound"
    assert writer.inflight <= 4096 + 8192
    gate.set()
    assert done.wait(10)
    t.join(10)
    rec.close()
    assert verify(tmp_path / "q.gsreplay").keyframes == 6


def test_cli_record_option_both_forms(tmp_path: Path) -> None:
    from gameserver.cli import build_config, parse_args

    for argv in (["--record", str(tmp_path)],
                 ["serve", "examples.arena:Arena", "--record", str(tmp_path)]):
        cfg = build_config(parse_args(argv))
        assert cfg.record_dir == tmp_path
    assert build_config(parse_args([])).record_dir is None


def test_bad_room_config_in_header_is_a_mismatch(replay_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A header whose config makes on_create raise: a one-line failure at tick 0."""
    bad = tmp_path / "cfg.gsreplay"
    rewrite(replay_file, bad,
            lambda o: {**o, "config": {"critters": -5}} if o.get("k") == "header" else o)
    assert main([str(bad), "--verify"]) == 1
    err = capsys.readouterr().err
    assert "MISMATCH at tick 0: the game code raised in on_create" in err
    assert "Traceback" not in err


def test_mutated_payloads_with_valid_crcs_fail_cleanly(tmp_path: Path) -> None:
    """Random byte changes inside records whose CRC is then fixed up (what a buggy writer or
    a forger produces): verify ends with a ReplayError (mismatch, corrupt or incompatible),
    never any other exception."""
    import random
    import zlib

    from gameserver.replay.format import ReplayError

    src = tmp_path / "m.gsreplay"
    record(src, ticks=45)
    data = src.read_bytes()
    recs, off = [], len(fmt.MAGIC)
    while off < len(data):
        n = int.from_bytes(data[off:off + 4], "big")
        recs.append(data[off + 8:off + 8 + n])
        off += 8 + n
    rng = random.Random(7)
    outcomes: dict[str, int] = {}
    for _ in range(150):
        mutated = list(recs)
        k = rng.randrange(len(mutated))
        b = bytearray(mutated[k])
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        mutated[k] = bytes(b)
        out = bytearray(fmt.MAGIC)
        for r in mutated:
            out += len(r).to_bytes(4, "big") + zlib.crc32(r).to_bytes(4, "big") + r
        path = tmp_path / "f.gsreplay"
        path.write_bytes(bytes(out))
        try:
            verify(path)
            name = "ok"
        except ReplayError as exc:
            name = type(exc).__name__
        outcomes[name] = outcomes.get(name, 0) + 1
    assert outcomes.get("Mismatch", 0) > 10 and outcomes.get("ReplayCorrupt", 0) > 10, outcomes


class Chatty(Game):
    """Sends two broadcast events every tick: more than a simulation may hold undrained."""

    name = "chatty"
    fields = {"x": F.float32()}

    def on_tick(self, tick: int, dt: float, inputs: Any) -> None:
        self.send("a", tick)
        self.send("b", None)


def test_replay_drains_game_events(tmp_path: Path) -> None:
    """10,002 events over 5,001 ticks: past the game's 10,000 pending events, so replay must
    drain them every tick as the room does; the playback keeps the broadcast ones (bounded)."""
    path = tmp_path / "chatty.gsreplay"
    sim = Simulation(Chatty, seed=1, tick_rate=60)
    rec = Recorder(sim, Chatty, path, send_rate=60, keyframe_seconds=30, threaded=False)
    for _ in range(5001):
        sim.step()
        rec.after_tick()
        sim.drain_events()
    rec.close()
    assert verify(path, Chatty).ticks == 5001
    pb = Playback(path, Chatty)
    try:
        for _ in range(300):
            pb.step()
        assert len(pb.events) == 256 and pb.events[-1].data is None
        assert pb.events[-2].kind == "a" and pb.events[-2].data == 300
    finally:
        pb.close()
