"""Replaying a recording: re-simulation, ``--verify``, the seekable playback, the CLI.

* :class:`Resimulation` rebuilds the room from the header (game class, seed, config, tick
  rate, max players) and re-issues the recorded calls before each tick, exactly as the live
  room did (the simulation is deterministic from seed + call log).
* :func:`verify` re-simulates a whole file and checks every per-tick state hash and every
  keyframe; the first tick that differs is reported (:class:`Mismatch`).
* :class:`Playback` drives a re-simulation for spectators: play, pause, speed, seek. A seek
  backwards restores the nearest earlier *checkpoint* (an in-memory copy of the whole
  simulation taken when playback passed a keyframe tick; the file's keyframes hold the world
  but not the game's private Python state, so they cannot restart a simulation by
  themselves) and then re-simulates forward, at most ``seek_budget`` seconds of work per call.

``gameserver replay FILE --verify`` exits 0 when every tick matches, 1 naming the first tick
that differs or where the file breaks, 2 for an incompatible replay; ``--serve`` streams it
(:mod:`gameserver.replay.serve`). Messages are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gameserver.config import ConfigError, load_game_class
from gameserver.inputs import InputError
from gameserver.replay.format import (
    INPUT,
    JOIN,
    Call,
    Header,
    Keyframe,
    ReplayCorrupt,
    ReplayError,
    ReplayIncompatible,
    ReplayReader,
    Restore,
    TickRun,
    check_compatible,
    state_hash,
)
from gameserver.rules import GameEvent, Reject
from gameserver.simulation import GameError, Simulation

__all__ = ["Mismatch", "Playback", "Resimulation", "VerifyResult", "main", "resolve_game",
           "verify"]


class Mismatch(ReplayError):
    """Re-simulation diverged from the recording at ``tick`` (exit status 1)."""

    exit_code = 1

    def __init__(self, tick: int, what: str) -> None:
        super().__init__(f"replay MISMATCH at tick {tick}: {what}")
        self.tick = tick


def resolve_game(header: Header, spec: str | type[Any] | None = None) -> type[Any]:
    """The game class to replay ``header`` with (``spec``, a ``"module:Class"`` or a class,
    overrides the recorded class).

    Raises :class:`ReplayIncompatible` if it cannot be imported or does not match.
    """
    if isinstance(spec, type):
        check_compatible(header, spec)
        return spec
    where = spec or header.game_class
    try:
        cls = load_game_class(where)
    except ConfigError as exc:
        raise ReplayIncompatible(f"cannot load the recorded game class {where!r}: {exc} "
                                 "(pass --game MODULE:Class)") from None
    check_compatible(header, cls)
    return cls


class Resimulation:
    """A fresh simulation of the recorded room; :meth:`apply` re-issues one recorded call.

    ``restore`` (a continuation file's ``"restore"`` record): the simulation is built without
    ``on_create`` and gets the restored state, as the receiving node of the handover built
    it (:func:`gameserver.handover.simstate.load_simulation`); :class:`Mismatch` if the
    state does not load or its hash is not the recorded one.
    """

    def __init__(self, header: Header, game_cls: type[Any],
                 restore: Restore | None = None) -> None:
        cls = game_cls
        if header.max_players != cls.max_players:
            # As the live room did for --max-players (the game may read the class attribute).
            cls = type(cls.__name__, (cls,), {"max_players": header.max_players,
                                              "__module__": cls.__module__})
        self.header = header
        self.names = header.input_names()
        kw: dict[str, Any] = {}
        history = header.raw.get("history")
        if history is not None:  # the room's lag-compensation window, if the operator set it
            kw["history"] = history
        self.sim = Simulation(cls, seed=header.seed, config=header.config,
                              tick_rate=header.tick_rate, max_players=header.max_players,
                              create=restore is None, **kw)
        self.players: set[int] = set()
        if restore is not None:
            self._restore(restore)

    def _restore(self, rec: Restore) -> None:
        # imported here: gameserver.handover's package imports the server side (rooms)
        from gameserver.handover.codec import BlobError, unpack_blob
        from gameserver.handover.simstate import RestoreError, load_simulation

        try:
            st = unpack_blob(rec.state)
            if not isinstance(st, dict) or st.get("tick") != rec.tick:
                raise RestoreError("the restore record's state is not of its tick")
            load_simulation(self.sim, st, what="replay")
        except (BlobError, RestoreError) as exc:
            raise Mismatch(rec.tick, f"the restored state does not load: {exc}") from None
        if state_hash(self.sim.world) != rec.hash:
            raise Mismatch(rec.tick, "restored state hash differs")
        self.players.update(self.sim.players)

    def apply(self, call: Call) -> None:
        """Re-issue ``call`` (before tick ``call.tick``); raises :class:`Mismatch` if refused."""
        sim = self.sim
        try:
            if call.kind == INPUT:
                data = dict(zip(self.names, call.data))
                if call.render_tick is None:
                    ok = sim.queue_input(call.player, call.seq, data)
                else:  # lag compensation's keyword (recorded only by builds that have it)
                    queue: Any = sim.queue_input
                    ok = queue(call.player, call.seq, data, render_tick=call.render_tick)
                if not ok:
                    raise Mismatch(call.tick, f"recorded input seq {call.seq} of player "
                                   f"{call.player} was not accepted on replay")
            elif call.kind == JOIN:
                name, hello = call.data
                try:
                    sim.join(call.player, name, hello)
                    self.players.add(call.player)
                except Reject:
                    pass  # refused live too (the log keeps refused joins)
            else:
                sim.leave(call.player, call.data)
        except (InputError, KeyError, ValueError, TypeError) as exc:
            raise Mismatch(call.tick, f"recorded {call.kind!r} call of player {call.player} "
                           f"refused on replay: {exc}") from None

    def step(self) -> list[GameEvent]:
        """Run the next tick; return the game events it sent (drained, so they never pile up
        against the game's pending-event bound as they would in an undrained simulation)."""
        self.sim.step()
        return self.sim.drain_events()

    def check_keyframe(self, key: Keyframe) -> None:
        """Compare the world with a recorded keyframe; :class:`Mismatch` names what differs."""
        world = self.sim.world
        slots = world.alive_slots()
        ids = world.id_of(slots)
        if ids.shape != key.ids.shape or not np.array_equal(ids, key.ids):
            raise Mismatch(key.tick, f"keyframe entity ids differ ({key.ids.shape[0]} recorded,"
                           f" {ids.shape[0]} re-simulated)")
        cols = world.columns()
        for name, rec in key.columns.items():
            mine = np.take(cols[name], slots)
            if mine.tobytes() != rec.tobytes():
                n = int(np.count_nonzero(mine.view(np.uint8) != rec.view(np.uint8)))
                raise Mismatch(key.tick, f"keyframe field {name!r} differs ({n} bytes)")


class VerifyResult:
    """What :func:`verify` checked: ticks, players, keyframes, duration (s), end reason."""

    def __init__(self, header: Header, ticks: int, players: int, keyframes: int,
                 reason: str, *, start: int = 0) -> None:
        self.header = header
        self.start = start  # the restored tick of a continuation file, else 0
        self.ticks = ticks
        self.players = players
        self.keyframes = keyframes
        self.reason = reason

    @property
    def duration(self) -> float:
        return self.ticks / self.header.tick_rate

    def summary(self) -> str:
        h = self.header
        cont = h.raw.get("continues")
        link = (f" continuing room {cont.get('room')} from tick {self.start}"
                if isinstance(cont, dict) else "")
        return (f"replay ok{link}: {h.game} version {h.game_version}, {self.ticks} ticks "
                f"({self.duration:.1f} s at {h.tick_rate} Hz), {self.players} players, "
                f"{self.keyframes} keyframes and {self.ticks} state hashes match "
                f"(ended: {self.reason}{' reproduced' if self.reason == 'crash' else ''})")


def verify(path: Path | str, game: str | type[Any] | None = None) -> VerifyResult:
    """Re-simulate ``path`` and check every tick's hash and every keyframe.

    Raises :class:`Mismatch`, :class:`ReplayCorrupt` or :class:`ReplayIncompatible`.
    """
    with ReplayReader(path) as reader:
        header = reader.header
        cls = resolve_game(header, game)
        try:
            resim = Resimulation(header, cls, reader.restore)
        except GameError as exc:
            raise Mismatch(0, f"the game code raised in on_create on replay: {exc.original!r}"
                           ) from None
        sim = resim.sim
        keyframes = 0
        try:
            for rec in reader.records():
                if isinstance(rec, TickRun):
                    calls = rec.calls
                    i = 0
                    for k, tick in enumerate(range(rec.first, rec.last + 1)):
                        while i < len(calls) and calls[i].tick == tick:
                            resim.apply(calls[i])
                            i += 1
                        resim.step()
                        h = state_hash(sim.world)
                        want = int(rec.hashes[k])
                        if h != want:
                            raise Mismatch(tick, f"state hash differs (recorded {want:#018x}, "
                                           f"re-simulated {h:#018x})")
                elif isinstance(rec, Keyframe):
                    if state_hash(sim.world) != rec.hash:
                        raise Mismatch(rec.tick, "keyframe state hash differs")
                    resim.check_keyframe(rec)
                    keyframes += 1
                else:
                    reason = str(rec.get("reason", "?"))
                    _verify_end(resim, rec["calls"], crashed=reason == "crash")
                    return VerifyResult(header, rec["tick"] - reader.start,
                                        len(resim.players), keyframes, reason,
                                        start=reader.start)
        except GameError as exc:
            raise Mismatch(exc.tick, f"the game code raised on replay: {exc.original!r}"
                           ) from None
    raise ReplayCorrupt("no end record", tick=sim.tick + 1, offset=reader.offset)


def _verify_end(resim: Resimulation, calls: list[Call], *, crashed: bool) -> None:
    """Re-issue the calls after the last tick; a recorded crash must crash again."""
    sim = resim.sim
    try:
        for call in calls:
            resim.apply(call)
        if crashed:
            resim.step()  # the tick the live room crashed in
    except GameError as exc:
        if not crashed:
            raise Mismatch(exc.tick, f"the game code raised on replay: {exc.original!r}"
                           ) from None
        return
    if crashed:
        raise Mismatch(sim.tick, "the recorded room crashed here, the replay did not")


class Playback:
    """A seekable re-simulation of one file, for spectators (see the module docstring).

    The file is scanned once when opened (every record checked: a damaged file raises
    :class:`ReplayCorrupt` here); then the calls of a run of ticks are re-read from the file
    when needed (a few runs cached), so memory does not grow with the match length, except
    for the checkpoints: at most ``max_checkpoints`` copies of the simulation (thinned to
    every other one when full).
    """

    def __init__(self, path: Path | str, game: str | type[Any] | None = None, *,
                 max_checkpoints: int = 32, seek_budget: float = 0.02) -> None:
        self.reader = ReplayReader(path)
        try:
            self.header = self.reader.header
            self.game_cls = resolve_game(self.header, game)
            self._firsts: list[int] = []
            self._offsets: list[int] = []
            self.start = self.reader.start
            self.keyframes: set[int] = {self.start}
            end: dict[str, Any] = {}
            for rec in self.reader.records():
                if isinstance(rec, TickRun):
                    self._firsts.append(rec.first)
                    self._offsets.append(self.reader.record_offset)
                elif isinstance(rec, Keyframe):
                    self.keyframes.add(rec.tick)
                else:
                    end = rec
            self.end = int(end.get("tick", self.start))
        except BaseException:
            self.reader.close()
            raise
        self._cache: OrderedDict[int, dict[int, list[Call]]] = OrderedDict()
        self.max_checkpoints = max(2, max_checkpoints)
        self.seek_budget = seek_budget
        self.resim = Resimulation(self.header, self.game_cls, self.reader.restore)
        self.checkpoints: dict[int, Simulation] = {self.start: copy.deepcopy(self.resim.sim)}
        self.paused = False
        self.speed = 1.0
        self.target: int | None = None
        self._acc = 0.0
        #: the recorded game's broadcast events of the ticks played (bounded: oldest dropped)
        self.events: deque[GameEvent] = deque(maxlen=256)

    def close(self) -> None:
        self.reader.close()

    @property
    def sim(self) -> Simulation:
        return self.resim.sim

    @property
    def tick(self) -> int:
        """The recorded tick whose state the world shows."""
        return int(self.resim.sim.tick)

    def _calls(self, tick: int) -> list[Call]:
        i = bisect.bisect_right(self._firsts, tick) - 1
        if i < 0:
            return []
        first = self._firsts[i]
        by_tick = self._cache.get(first)
        if by_tick is None:
            run = self.reader.run_at(self._offsets[i], first)
            by_tick = {}
            for c in run.calls:
                by_tick.setdefault(c.tick, []).append(c)
            self._cache[first] = by_tick
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return by_tick.get(tick, [])

    def step(self) -> bool:
        """Re-simulate one more tick; False at the end of the recording."""
        if self.tick >= self.end:
            return False
        for call in self._calls(self.tick + 1):
            self.resim.apply(call)
        events = self.resim.step()
        if self.target is None:  # not while seeking: a seek would replay a flood of them
            self.events.extend(ev for ev in events if ev.to is None)
        t = self.tick
        if t in self.keyframes and t not in self.checkpoints:
            self.checkpoints[t] = copy.deepcopy(self.resim.sim)
            if len(self.checkpoints) > self.max_checkpoints:
                keep = sorted(self.checkpoints)[::2]  # the first tick always stays
                self.checkpoints = {k: self.checkpoints[k] for k in keep}
        return True

    def seek(self, tick: int) -> None:
        """Go to recorded tick ``tick`` (clamped to start..end): the state after that tick."""
        tick = max(self.start, min(int(tick), self.end))
        if tick < self.tick:
            base = max(k for k in self.checkpoints if k <= tick)
            self.resim.sim = copy.deepcopy(self.checkpoints[base])
        self.target = tick if tick != self.tick else None

    def set_speed(self, speed: float) -> None:
        self.speed = float(min(8.0, max(0.25, speed)))

    def advance(self) -> int:
        """One playback tick: continue a seek (within the budget) or play ``speed`` ticks.

        Returns how many recorded ticks were simulated.
        """
        n = 0
        if self.target is not None:
            deadline = time.perf_counter() + self.seek_budget
            while self.tick < self.target and self.step():
                n += 1
                if time.perf_counter() > deadline:
                    break
            if self.tick >= self.target:
                self.target = None
            return n
        if self.paused or self.tick >= self.end:
            return 0
        self._acc += self.speed
        todo = int(self._acc)
        self._acc -= todo
        for _ in range(todo):
            if not self.step():
                break
            n += 1
        return n

    def status(self) -> dict[str, Any]:
        """The ``"replay"`` EVENT body (SPEC-free: game-level event, docs/REPLAY.md)."""
        return {"tick": self.tick, "start": self.start, "end": self.end, "paused": self.paused,
                "speed": self.speed, "seeking": self.target is not None,
                "game": self.header.game, "version": self.header.game_version,
                "tick_rate": self.header.tick_rate}


# ---------------------------------------------------------------------------------- CLI


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="gameserver replay",
        description="Check or stream a replay file written by `gameserver --record DIR`.")
    p.add_argument("file", type=Path, metavar="FILE")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--verify", action="store_true",
                      help="re-simulate and check every tick (exit 0 ok, 1 mismatch or "
                           "damaged file, 2 incompatible)")
    mode.add_argument("--serve", action="store_true",
                      help="stream the match to spectators (HELLO game 'replay')")
    p.add_argument("--game", default=None, metavar="MODULE:Class",
                   help="game class to replay with (default: the recorded one)")
    p.add_argument("--host", default="127.0.0.1", help="--serve: interface (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="--serve: TCP port (default 8000)")
    p.add_argument("--static-root", type=Path, default=None, metavar="DIR",
                   help="--serve: folder served over HTTP (default: the web client)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p.parse_args(list(argv))


def main(argv: Sequence[str]) -> int:
    """``gameserver replay ...``; returns the exit status (0, 1 or 2)."""
    ns = _parse(argv)
    try:
        if ns.verify:
            result = verify(ns.file, ns.game)
            print(result.summary(), flush=True)
            return 0
        from gameserver.cli import configure_logging
        from gameserver.replay.serve import run_replay_server

        configure_logging(ns.log_level)
        return run_replay_server(ns.file, game=ns.game, host=ns.host, port=ns.port,
                                 static_root=ns.static_root)
    except ReplayError as exc:
        print(f"gameserver replay: {exc.message}", file=sys.stderr, flush=True)
        return exc.exit_code
    except Exception as exc:  # a bug of ours or of the game: still one line, not a traceback
        print(f"gameserver replay: failed on {ns.file}: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        return 1
