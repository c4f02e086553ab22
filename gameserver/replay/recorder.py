"""Recording one room to a replay file, with bounded memory, incrementally, off the tick.

:class:`Recorder` attaches to a :class:`gameserver.simulation.Simulation` as its log sink and
is told after every tick (:meth:`Recorder.after_tick`, called by the room right after
``Simulation.step()``). The work is split in two:

* on the tick (the event loop's thread): keep the calls (the sink), compute the state hash
  (``format.state_hash``: one concatenation and one integer dot product, ~20 µs at 1k
  entities, ~90 µs at 10k), every ``flush_ticks`` ticks (default ~0.5 s of match) hand the
  run of ticks over, every ``keyframe_every`` ticks gather a keyframe;
* on the process's one writer thread (:class:`_Writer`, shared by every recording room):
  pack the records (msgpack), CRC and write them, handing each record to the OS at once (no
  fsync: a crashed *process* loses at most the run not yet handed over, ~0.5 s; a crashed
  machine what the OS had not written back).

Memory is bounded: at most one run of calls and hashes per room on the tick side, and at
most ``MAX_INFLIGHT`` bytes of records queued for the writer thread (a full queue makes
``after_tick`` wait: backpressure, never unbounded growth). :meth:`Recorder.close` writes the
end record and waits (bounded) until the file is complete.

Errors never reach the room: an ``OSError`` (disk full...) is logged once at ERROR and stops
this room's recording (the file then has no end record and reads as truncated there).
``threaded=False`` does everything on the caller's thread (tests, benchmarks).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from gameserver.replay.format import (
    CONTINUED_FORMAT,
    INPUT,
    JOIN,
    LEAVE,
    Call,
    ReplayWriter,
    make_header,
    state_hash,
    take_keyframe,
)
from gameserver.simulation import LogEntry, Simulation

__all__ = ["MAX_INFLIGHT", "PendingState", "Recorder", "replay_path"]

log = logging.getLogger(__name__)

#: Bytes of records queued for the writer thread, all rooms together.
MAX_INFLIGHT: Final = 64 * 2**20
#: Seconds :meth:`Recorder.close` waits for the writer to finish the file.
CLOSE_TIMEOUT: Final = 10.0

_KINDS = {"join": JOIN, "leave": LEAVE, "input": INPUT}
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


@dataclass(frozen=True, slots=True)
class PendingState:
    """A ``"restore"`` record's state packed on the writer thread, off the event loop (a
    big world with its lag-compensation window is MBs to pack): ``pack()`` returns the
    bytes and must not read anything the room goes on changing (give it a copy); ``size``
    is its approximate size in bytes (counted against :data:`MAX_INFLIGHT`)."""

    pack: Callable[[], bytes]
    size: int


class _File:
    """The writer-thread side of one recording: packs, frames and writes its records."""

    def __init__(self, writer: ReplayWriter) -> None:
        self.writer = writer
        self.failed: BaseException | None = None
        self.done = threading.Event()

    def handle(self, op: str, payload: dict[str, Any]) -> None:
        """``op`` ``"write"`` a record, or ``"end"``: write it (if any), close the file."""
        if self.failed is None and payload:
            try:
                state = payload.get("state")
                if isinstance(state, PendingState):
                    payload = {**payload, "state": state.pack()}
                self.writer.write(payload)
            except Exception as exc:
                self.failed = exc
                log.error("recording failed, stopped path=%s error=%r", self.writer.path, exc)
        if op == "end" or self.failed is not None:
            try:
                self.writer.close()  # idempotent
            except OSError:
                pass
        if op == "end":
            self.done.set()


class _Writer:
    """The process's replay writer thread: a FIFO of (file, op, arg), bounded in bytes."""

    _instance: _Writer | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.q: queue.SimpleQueue[tuple[_File, str, Any, int]] = queue.SimpleQueue()
        self.cond = threading.Condition()
        self.inflight = 0
        self.thread = threading.Thread(target=self._run, name="replay-writer", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _Writer:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = _Writer()
            return cls._instance

    def put(self, f: _File, op: str, arg: Any, size: int) -> None:
        with self.cond:
            while self.inflight > 0 and self.inflight + size > MAX_INFLIGHT:
                self.cond.wait(1.0)  # backpressure: the writer drains, then we go on
            self.inflight += size
        self.q.put((f, op, arg, size))

    def _run(self) -> None:
        while True:
            f, op, arg, size = self.q.get()
            f.handle(op, arg)
            with self.cond:
                self.inflight -= size
                self.cond.notify_all()


class Recorder:
    """Streams one simulation's calls, per-tick hashes and keyframes to a replay file.

    ``sim`` is the room's simulation, just created (tick 0: the keyframe of tick 0 is written
    at once), or, with ``restored`` (the packed :func:`gameserver.handover.simstate.
    simulation_state` of ``sim``, or a :class:`PendingState` packing a copy of it on the
    writer thread; a room just restored from a handover, not yet ticked), at
    any tick T: the file is then a continuation (``CONTINUED_FORMAT``) whose first record is
    ``"restore"`` (tick T, that state, its state hash) and whose ticks start at T + 1;
    ``game_cls`` its game class; ``send_rate`` goes into the header (for playback);
    ``keyframe_seconds`` / ``flush_seconds`` are in seconds of match time; ``max_calls``
    also ends a run early. ``extra`` adds header fields (the room id). Construction raises
    ``OSError`` if the file cannot be created (the caller logs it and records nothing).
    """

    def __init__(self, sim: Simulation, game_cls: type[Any], path: Path, *, send_rate: int,
                 keyframe_seconds: float = 10.0, flush_seconds: float = 0.5,
                 max_calls: int = 8192, extra: Mapping[str, Any] | None = None,
                 threaded: bool = True, restored: bytes | PendingState | None = None,
                 ) -> None:
        if sim.tick != 0 and restored is None:
            raise ValueError("a recording starts with a fresh simulation (tick 0)")
        start = int(sim.tick)
        rate = sim.tick_rate
        self.sim = sim
        self.keyframe_every = max(1, round(keyframe_seconds * rate))
        self.flush_ticks = max(1, round(flush_seconds * rate))
        self.max_calls = max(1, max_calls)
        header = make_header(game_cls, seed=sim.seed, config=sim.config, tick_rate=rate,
                             send_rate=send_rate, max_players=sim.max_players,
                             keyframe_every=self.keyframe_every, created=time.time(),
                             **dict(extra or {}))
        if restored is not None:
            header["format"] = CONTINUED_FORMAT
            header["start_tick"] = start
        self.writer = ReplayWriter(path, header)
        self.path = path
        self._file = _File(self.writer)
        self._thread = _Writer.get() if threaded else None
        self._names = tuple(game_cls.inputs)
        self._calls: list[tuple[Any, ...]] = []
        self._hashes = np.zeros(self.flush_ticks, "<u8")
        self._first = start + 1  # first tick of the pending run
        self._n = 0  # ticks in the pending run
        self.closed = False
        if restored is None:
            self._put("write", take_keyframe(sim.world, 0))
        else:
            state = restored if isinstance(restored, PendingState) else bytes(restored)
            self._put("write", {"k": "restore", "tick": start, "state": state,
                                "hash": state_hash(sim.world)})
        sim.set_log_sink(self._sink)

    @property
    def failed(self) -> bool:
        return self._file.failed is not None

    def _put(self, op: str, payload: dict[str, Any]) -> None:
        if self._thread is None:
            self._file.handle(op, payload)
            return
        if payload.get("k") == "key":
            size = len(payload["ids"]) + sum(len(b) for b in payload["cols"].values())
        elif payload.get("k") == "restore":
            state = payload["state"]
            size = state.size if isinstance(state, PendingState) else len(state)
        else:  # a run: ~48 bytes a call once packed, 8 a hash
            size = 64 + 48 * len(payload.get("calls", ())) + len(payload.get("hashes", b""))
        self._thread.put(self._file, op, payload, size)

    # -------------------------------------------------------------------------- feeding

    def _sink(self, entry: LogEntry) -> None:
        """Log sink: keep the call (inputs as values in schema order) for the pending run."""
        kind = entry.kind
        data = entry.data
        if kind == "input":
            data = [data[n] for n in self._names]
        elif kind == "join":
            data = [data[0], data[1]]
        self._calls.append((entry.tick, _KINDS[kind], entry.player, entry.seq, data,
                            getattr(entry, "render_tick", None)))

    def after_tick(self) -> None:
        """Record the tick just completed; hand over a run / keyframe when due. Never raises."""
        if self.closed:
            return
        if self._file.failed is not None:
            self._stop_feeding()
            return
        try:
            sim = self.sim
            tick = sim.tick
            if tick != self._first + self._n:
                raise RuntimeError(f"tick {tick} skipped the recorder (expected "
                                   f"{self._first + self._n})")
            h = state_hash(sim.world)
            self._hashes[self._n] = h
            self._n += 1
            key = tick % self.keyframe_every == 0
            if key or self._n >= self.flush_ticks or len(self._calls) >= self.max_calls:
                self._flush()
                if key:
                    payload = take_keyframe(sim.world, tick, with_hash=False)
                    payload["hash"] = h
                    self._put("write", payload)
        except Exception as exc:  # never harm the room; the file reads as truncated here
            log.error("recording failed, stopped path=%s tick=%d error=%r",
                      self.path, self.sim.tick, exc)
            self._file.failed = exc
            self._stop_feeding()

    def _flush(self) -> None:
        if not self._n:
            return
        last = self._first + self._n - 1
        calls, self._calls = self._calls, []
        self._put("write", {"k": "ticks", "from": self._first, "to": last, "calls": calls,
                            "hashes": self._hashes[: self._n].tobytes()})
        self._first = last + 1
        self._n = 0

    def _stop_feeding(self) -> None:
        self.closed = True
        self.sim.set_log_sink(None)
        self._calls = []
        self._put("end", {})  # lets close() return; the failed file is left as it is

    def close(self, reason: str = "closed") -> None:
        """Write the pending ticks and the end record; wait until the file is complete.

        Idempotent; bounded by ``CLOSE_TIMEOUT`` seconds (a hung disk is logged).
        """
        if self._file.done.is_set():
            return
        if not self.closed:
            self.closed = True
            self.sim.set_log_sink(None)
            # the last tick recorded: sim.tick unless the game crashed inside the next step
            last = self._first + self._n - 1
            # calls after the last tick (a shutdown's leaves) go in the end record
            trailing = [c for c in self._calls if c[0] > last]
            self._calls = [c for c in self._calls if c[0] <= last]
            self._flush()
            self._put("end", {"k": "end", "tick": last, "reason": reason, "calls": trailing,
                              "closed": time.time()})
        if not self._file.done.wait(CLOSE_TIMEOUT):
            log.error("recording not finished in time path=%s", self.path)
            return
        if self._file.failed is None:
            log.info("recording closed path=%s ticks=%d bytes=%d reason=%s",
                     self.path, self.sim.tick, self.writer.bytes, reason)

    def calls_pending(self) -> list[Call]:
        """The buffered calls (tests and diagnostics)."""
        return [Call(*c) for c in self._calls]
