"""Recording one room to a replay file, with bounded memory, incrementally.

:class:`Recorder` attaches to a :class:`gameserver.simulation.Simulation` as its log sink and
is told after every tick (:meth:`Recorder.after_tick`, called by the room right after
``Simulation.step()``). Per tick it computes the state hash (``format.state_hash``, tens of
microseconds) and keeps the calls; every ``flush_ticks`` ticks (default: ~0.5 s of match) or
when ``max_calls`` calls are buffered it writes one ``"ticks"`` record, and every
``keyframe_every`` ticks a keyframe. So a crashed process loses at most the last ~0.5 s, and
memory holds at most one flush interval of calls and hashes.

Writes are small buffered appends handed to the OS at each record (no fsync). Errors never
reach the room: an ``OSError`` (disk full...) is logged once at ERROR and stops this room's
recording (the file then has no end record and reads as truncated at that tick).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gameserver.replay.format import (
    INPUT,
    JOIN,
    Call,
    ReplayWriter,
    make_header,
    state_hash,
    take_keyframe,
)
from gameserver.simulation import LogEntry, Simulation

__all__ = ["Recorder", "replay_path"]

log = logging.getLogger(__name__)

_KINDS = {"join": JOIN, "leave": "l", "input": INPUT}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def replay_path(directory: Path, room_id: str, *, now: float | None = None) -> Path:
    """A new file name in ``directory`` for ``room_id``: ``<room>-<UTC time>.gsreplay``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    base = f"{_UNSAFE.sub('_', room_id)[:80]}-{stamp}"
    path = directory / f"{base}.gsreplay"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{base}-{n}.gsreplay"
    return path


class Recorder:
    """Streams one simulation's calls, per-tick hashes and keyframes to a replay file.

    ``sim`` is the room's simulation, just created (tick 0: the keyframe of tick 0 is written
    at once); ``game_cls`` its game class; ``send_rate`` goes into the header (for playback);
    ``keyframe_seconds`` / ``flush_seconds`` are in seconds of match time. Construction raises
    ``OSError`` if the file cannot be created (the caller logs it and records nothing).
    """

    def __init__(self, sim: Simulation, game_cls: type[Any], path: Path, *, send_rate: int,
                 keyframe_seconds: float = 10.0, flush_seconds: float = 0.5,
                 max_calls: int = 8192, extra: Mapping[str, Any] | None = None) -> None:
        if sim.tick != 0:
            raise ValueError("a recording starts with a fresh simulation (tick 0)")
        rate = sim.tick_rate
        self.sim = sim
        self.keyframe_every = max(1, round(keyframe_seconds * rate))
        self.flush_ticks = max(1, round(flush_seconds * rate))
        self.max_calls = max(1, max_calls)
        header = make_header(game_cls, seed=sim.seed, config=sim.config, tick_rate=rate,
                             send_rate=send_rate, max_players=sim.max_players,
                             keyframe_every=self.keyframe_every, created=time.time(),
                             **dict(extra or {}))
        self.writer = ReplayWriter(path, header)
        self.path = path
        self._names = tuple(game_cls.inputs)
        self._calls: list[list[Any]] = []
        self._hashes = np.zeros(self.flush_ticks, np.uint64)
        self._first = 1  # first tick of the pending run
        self._n = 0  # ticks in the pending run
        self.ticks = 0
        self.failed = False
        self.closed = False
        self._write(take_keyframe(sim.world, 0))
        sim.set_log_sink(self._sink)

    # -------------------------------------------------------------------------- feeding

    def _sink(self, entry: LogEntry) -> None:
        """Log sink: keep the call (inputs as values in schema order) for the pending run."""
        data = entry.data
        if entry.kind == "input":
            data = [data[n] for n in self._names]
        elif entry.kind == "join":
            data = [data[0], data[1]]
        self._calls.append([entry.tick, _KINDS[entry.kind], entry.player, entry.seq, data,
                            getattr(entry, "render_tick", None)])

    def after_tick(self) -> None:
        """Record the tick just completed (its hash); flush / keyframe when due. Never raises."""
        if self.closed:
            return
        try:
            sim = self.sim
            tick = sim.tick
            self._hashes[self._n] = state_hash(sim.world)
            self._n += 1
            self.ticks = tick
            key = tick % self.keyframe_every == 0
            if key or self._n >= self.flush_ticks or len(self._calls) >= self.max_calls:
                self._flush()
                if key:
                    self._write(take_keyframe(sim.world, tick))
        except Exception as exc:  # never harm the room; the file reads as truncated here
            self._fail(exc)

    def _flush(self) -> None:
        if not self._n:
            return
        last = self._first + self._n - 1
        calls, self._calls = self._calls, []
        self._write({"k": "ticks", "from": self._first, "to": last, "calls": calls,
                     "hashes": self._hashes[: self._n].astype("<u8").tobytes()})
        self._first = last + 1
        self._n = 0

    def _write(self, payload: dict[str, Any]) -> None:
        if not self.failed:
            self.writer.write(payload)

    def _fail(self, exc: BaseException) -> None:
        if not self.failed:
            log.error("recording failed, stopped path=%s tick=%d error=%r",
                      self.path, self.sim.tick, exc)
        self.failed = True
        self.closed = True
        self.sim.set_log_sink(None)
        self._calls = []
        try:
            self.writer.close()
        except OSError:
            pass

    def close(self, reason: str = "closed") -> None:
        """Write the pending ticks and the end record, close the file (idempotent)."""
        if self.closed:
            return
        try:
            self.sim.set_log_sink(None)
            last = self.sim.tick
            # calls after the last tick (a shutdown's leaves) go in the end record
            trailing = [c for c in self._calls if c[0] > last]
            self._calls = [c for c in self._calls if c[0] <= last]
            self._flush()
            self._write({"k": "end", "tick": self.sim.tick, "reason": reason,
                         "calls": trailing, "closed": time.time()})
            self.writer.close()
            self.closed = True
            log.info("recording closed path=%s ticks=%d bytes=%d reason=%s",
                     self.path, self.sim.tick, self.writer.bytes, reason)
        except Exception as exc:
            self._fail(exc)

    def calls_pending(self) -> list[Call]:
        """The buffered calls (tests and diagnostics)."""
        return [Call(*c) for c in self._calls]
