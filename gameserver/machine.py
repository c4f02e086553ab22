"""The supervisor's view of the whole machine under ``--workers N``: who hosts what.

Routing rules (the contract between :mod:`gameserver.room` ids and the acceptor):

* a room id made by worker ``i`` is ``<game>-w<i>-<n>`` (:func:`worker_of_room`);
* a resume token issued by worker ``i`` running as process ``pid`` is ``w<i>.<pid>.<24
  URL-safe characters>`` (:func:`worker_of_token`, :func:`token_process`): a RESUME naming
  a process of worker ``i`` that is not the live one (it died; a restarted worker is a new
  process) is answered 4015: the room died with it;
* a room allocated by ``/matchmake`` on worker ``i`` is ``<game>-w<i>-m<hex>`` and its
  reservation token ``w<i>.<token>`` (:func:`worker_of_token` routes the HELLO);
* join by game name: the first room of the game with a free seat on a live worker (workers
  in index order, rooms in the order the worker reports them), else the **least loaded** live
  worker (fewest players, then fewest rooms, then lowest index), which creates the room
  (:meth:`MachineView.choose_for_game`).

Each worker reports its rooms over the control channel when they change (checked every 50 ms)
and at least every second. The view also counts the seats it handed out itself
(optimistically, keyed by the connection id of the handoff), so a burst of joins fills a room
instead of spreading one player per worker; each report says up to which handoff id the
worker has processed its joins (``applied``), and the seats handed out after that are
counted again on top of the report. The worker's own matchmaking has the last word (a player
sent to a room that just filled gets a new room on that worker).

:func:`merge_metrics` merges the workers' Prometheus texts into one exposition where every
sample carries a ``worker="i"`` label (one HELP/TYPE per metric family).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MachineView", "RoomEntry", "merge_metrics", "token_process", "worker_of_room",
           "worker_of_token"]

_ROOM_ID = re.compile(r"-w(\d{1,4})-(?:\d+|m[0-9a-f]+)\Z")  # m<hex>: /matchmake's
_TOKEN = re.compile(r"w(\d{1,4})\.(?:(\d{1,9})\.)?")  # URL-safe base64 has no "."


def worker_of_room(room_id: str) -> int | None:
    """The worker index a room id names, or ``None`` (not an id made under --workers)."""
    m = _ROOM_ID.search(room_id)
    return int(m.group(1)) if m else None


def worker_of_token(token: str) -> int | None:
    """The worker index a resume token names, or ``None``."""
    m = _TOKEN.match(token)
    return int(m.group(1)) if m else None


def token_process(token: str) -> int | None:
    """The worker process id a resume token names, or ``None`` (none: a reservation token,
    or not a --workers token)."""
    m = _TOKEN.match(token)
    return int(m.group(2)) if m and m.group(2) is not None else None


@dataclass
class RoomEntry:
    """One room as the supervisor believes it is (``virtual``: announced by us, not yet
    reported by the worker)."""

    id: str
    game: str
    players: int
    capacity: int
    tick: int = 0
    virtual: bool = False

    def info(self, worker: int) -> dict[str, object]:
        return {"id": self.id, "game": self.game, "players": self.players,
                "capacity": self.capacity, "tick": self.tick, "worker": worker}


@dataclass
class _Worker:
    up: bool = False
    rooms: list[RoomEntry] = field(default_factory=list)
    #: seats handed out by game name and not yet in a report: (handoff id, game)
    optimistic: list[tuple[int, str]] = field(default_factory=list)

    @property
    def players(self) -> int:
        return sum(r.players for r in self.rooms)


class MachineView:
    """Rooms and seats per worker; ``capacities`` maps a game name to its room capacity."""

    def __init__(self, workers: int, capacities: Mapping[str, int]) -> None:
        self.workers = [_Worker() for _ in range(workers)]
        self.capacities = dict(capacities)

    def set_up(self, worker: int, up: bool) -> None:
        w = self.workers[worker]
        w.up = up
        if not up:
            w.rooms = []  # a dead worker's rooms are gone
            w.optimistic = []

    def is_up(self, worker: int | None) -> bool:
        return worker is not None and 0 <= worker < len(self.workers) and \
            self.workers[worker].up

    def report(self, worker: int, rooms: Sequence[Any], applied: int | None = None) -> None:
        """Replace ``worker``'s rooms with its report (malformed entries skipped); the seats
        we handed out with a handoff id above ``applied`` are counted again on top of it
        (``None``: the report reflects them all)."""
        entries: list[RoomEntry] = []
        for r in rooms:
            if not isinstance(r, dict):
                continue
            try:
                entries.append(RoomEntry(str(r["id"]), str(r["game"]), int(r["players"]),
                                         int(r["capacity"]), int(r.get("tick", 0))))
            except (KeyError, TypeError, ValueError):
                continue
        w = self.workers[worker]
        w.rooms = entries
        w.optimistic = [] if applied is None else [o for o in w.optimistic if o[0] > applied]
        for _, game in w.optimistic:
            self._seat(w, game)

    def least_loaded(self) -> int | None:
        """The live worker with the fewest players (then rooms, then index), or ``None``."""
        best: tuple[int, int, int] | None = None
        for i, w in enumerate(self.workers):
            if w.up:
                key = (w.players, len(w.rooms), i)
                if best is None or key < best:
                    best = key
        return best[2] if best is not None else None

    def _free_room(self, w: _Worker, game: str) -> RoomEntry | None:
        for r in w.rooms:
            if r.game == game and r.players < r.capacity:
                return r
        return None

    def _seat(self, w: _Worker, game: str) -> None:
        """Count one seat of ``game`` on ``w``: a free one, else in an announced new room."""
        r = self._free_room(w, game)
        if r is not None:
            r.players += 1
        else:
            w.rooms.append(RoomEntry(f"?{game}", game, 1, self.capacities.get(game, 16),
                                     virtual=True))

    def holder(self, room_id: str) -> int | None:
        """The live worker whose last report lists ``room_id`` (a room keeps its id when a
        handover moves it to another worker), else None."""
        for i, w in enumerate(self.workers):
            if w.up and any(r.id == room_id and not r.virtual for r in w.rooms):
                return i
        return None

    def pick_for_game(self, game: str) -> int | None:
        """Where a seat of ``game`` goes (as :meth:`choose_for_game`), counting nothing."""
        for i, w in enumerate(self.workers):
            if w.up and self._free_room(w, game) is not None:
                return i
        return self.least_loaded()

    def reserved(self, worker: int | None, game: str) -> None:
        """Count a seat reserved on ``worker`` (``/matchmake``) until its next report, which
        counts it itself (the worker reports seats it holds as players)."""
        if worker is not None and self.is_up(worker):
            self._seat(self.workers[worker], game)

    def choose_for_game(self, game: str, handoff: int = 0) -> int | None:
        """Where a join by game name goes (see the module docstring); counts the seat under
        the handoff id ``handoff`` until a report covers it."""
        target = self.pick_for_game(game)
        if target is not None:
            w = self.workers[target]
            self._seat(w, game)
            w.optimistic.append((handoff, game))
        return target

    def rooms(self) -> list[dict[str, object]]:
        """Every reported room with its worker (virtual entries left out)."""
        return [r.info(i) for i, w in enumerate(self.workers) for r in w.rooms
                if not r.virtual]


def _with_label(line: str, label: str) -> str:
    """Insert ``label`` (``worker="0"``) as the first label of one sample line."""
    brace = line.find("{")
    space = line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        rest = line[brace + 1:]
        return f"{line[:brace]}{{{label}{'' if rest.startswith('}') else ','}{rest}"
    if space == -1:
        return line
    return f"{line[:space]}{{{label}}}{line[space:]}"


def merge_metrics(parts: Sequence[tuple[str, str]]) -> str:
    """Merge ``(worker label value, Prometheus text)`` pairs into one exposition.

    Families keep the order of first appearance; each gets one HELP and one TYPE line, then
    the samples of every worker, each with ``worker="<label>"`` added.
    """
    families: dict[str, list[Any]] = {}  # name -> [help line, type line, samples]

    def family(name: str) -> list[Any]:
        fam = families.get(name)
        if fam is None:
            fam = families[name] = [None, None, []]
        return fam

    for worker, text in parts:
        label = f'worker="{worker}"'
        current: list[Any] | None = None
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                bits = line.split(" ", 3)
                if len(bits) < 3:
                    continue
                current = family(bits[2])
                slot = 0 if bits[1] == "HELP" else 1
                if current[slot] is None:
                    current[slot] = line
                continue
            if line.startswith("#"):
                continue
            if current is None:
                name = line.split("{", 1)[0].split(" ", 1)[0]
                current = family(name)
            current[2].append(_with_label(line, label))
    out: list[str] = []
    for help_line, type_line, samples in families.values():
        if help_line:
            out.append(help_line)
        if type_line:
            out.append(type_line)
        out.extend(samples)
    return "\n".join(out) + "\n" if out else ""
