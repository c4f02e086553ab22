"""World history: the last few ticks of every entity column, for lag compensation.

A player aims at what it sees: the world of about 100 ms ago (its interpolation delay plus
the network latency). To judge a shot fairly, the server checks it against the world *as the
shooter saw it*. :class:`WorldHistory` keeps that past: a ring of ``length`` committed world
states, one row per tick, stored as numpy columns.

Storage (all preallocated, numpy): per entity field a ring array of shape
``(length, capacity)`` in the field's storage dtype, plus per tick the alive mask
``(length, capacity)`` bool and the slot generations ``(length, capacity)`` uint8 (ids are
``slot << 8 | generation``, SPEC.md section 4, so ids are rebuilt from them), and the tick
number each row holds. When the world's capacity grows, the ring grows with it (the new slots
are dead in the older rows). Memory: ``length * capacity * (sum of field itemsizes + 2)``
bytes; docs/RULES.md section 11 gives the measured numbers.

Filling: :meth:`WorldHistory.record` runs once per tick after ``world.commit()`` (the
Simulation calls it; tick 0 is the state after ``on_create``). It is one vectorized copy per
field of the slots ``0 .. highest alive slot`` (no per-entity loop), one copy of the alive
mask and one of the generations. Row ``tick % length`` holds ``tick``.

Reading (inside ``on_tick`` of tick ``T``, the window is ``T - length .. T - 1``):
:meth:`WorldHistory.at` gives a :class:`PastWorld`, read-only columns (``writeable=False``) of
one recorded tick with its ids and alive mask; :meth:`WorldHistory.hits` answers "which
entities were within ``radius`` of these points at those ticks" for many shots at once
(vectorized per distinct tick). A tick outside the window raises :class:`HistoryError`
(the game's mistake: the input batch's ``render_tick`` values are always inside it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from gameserver.world import World

__all__ = ["MAX_HISTORY_SECONDS", "HistoryError", "Hits", "PastWorld", "WorldHistory",
           "history_length"]

#: Upper bound of a room's history (seconds): the ring's memory is bounded by it.
MAX_HISTORY_SECONDS: Final[float] = 10.0
_GEN_BITS: Final[int] = 8
#: Shots x candidate entities compared at once by :meth:`WorldHistory.hits` (bounds memory:
#: a few float64 matrices of this many elements, 32 MiB each at most).
_MAX_PAIRS: Final[int] = 1 << 22


#: Cells of the pruning grid of :meth:`WorldHistory.hits` (a bool table, 4 MiB at most).
_MAX_CELLS: Final[int] = 1 << 22


def _candidates(cols: Sequence[npt.NDArray[Any]], spos: npt.NDArray[np.float64], cell: float
                ) -> npt.NDArray[np.intp]:
    """Rows of the coordinate columns ``cols`` (entities) that may lie within ``cell`` of some
    point of ``spos`` ``(n, len(cols))``.

    A grid of ``cell``-sided squares over the first two coordinates (one if there is only
    one, or if two would need more than ``_MAX_CELLS`` cells): the cells around each point
    are marked in a bool table spanning the points' bounding box, and each entity looks its
    own cell up (a few vectorized passes over the entities, no sort). Conservative: every
    entity within ``cell`` of a point is kept; the caller does the exact test.
    """
    m = cols[0].shape[0]
    use = min(2, len(cols))
    big = 2.0**40
    pc = np.clip(np.floor(spos[:, :use] * (1.0 / cell)), -big, big)
    lo = pc.min(axis=0) - 1
    size = pc.max(axis=0) + 2 - lo
    if use == 2 and size[0] * size[1] > _MAX_CELLS:
        use, pc, lo, size = 1, pc[:, :1], lo[:1], size[:1]
    if float(np.prod(size)) > _MAX_CELLS:
        return np.arange(m, dtype=np.intp)  # points spread too far apart for a table: all
    # flat cell index: c0 * size1 + c1 (one coordinate: c0)
    stride = np.array([size[1], 1.0]) if use == 2 else np.ones(1)
    table = np.zeros(int(np.prod(size)), np.bool_)
    offs = np.array(list(np.ndindex(*([3] * use))), dtype=np.float64) - 1.0  # 3 or 9
    marks = ((pc - lo)[:, None, :] + offs[None, :, :]) @ stride
    table[marks.reshape(-1).astype(np.intp)] = True
    inv = np.float64(1.0 / cell)  # a float64 scalar: float32 columns are computed in float64
    flat = np.floor(cols[0] * inv) - lo[0]
    inside = (flat >= 0) & (flat < size[0])
    if use == 2:
        c1 = np.floor(cols[1] * inv) - lo[1]
        inside &= (c1 >= 0) & (c1 < size[1])
        flat = flat * size[1] + c1
    rows = np.flatnonzero(inside)
    hit = table[flat[rows].astype(np.intp)]
    out: npt.NDArray[np.intp] = rows[hit]
    return out


class HistoryError(LookupError):
    """A tick outside the recorded window, or history is off (the game code's mistake)."""


def history_length(seconds: float, tick_rate: int) -> int:
    """Ring rows for ``seconds`` of history at ``tick_rate`` Hz: ``ceil(seconds * rate) + 1``
    (so the oldest row is ``seconds`` older than the newest), 0 when ``seconds`` is 0.

    Raises ``ValueError`` outside ``0 <= seconds <= MAX_HISTORY_SECONDS``.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not (
        0 <= seconds <= MAX_HISTORY_SECONDS
    ):
        raise ValueError(
            f"history must be a number of seconds in 0..{MAX_HISTORY_SECONDS}, got {seconds!r}"
        )
    if seconds == 0:
        return 0
    return math.ceil(seconds * tick_rate - 1e-9) + 1


class Hits(NamedTuple):
    """(shot, entity) pairs found by :meth:`WorldHistory.hits`, sorted by shot then distance.

    ``shot`` (intp) indexes the query's points; ``entity`` (uint32) the id of an entity within
    the radius at that shot's tick; ``dist`` (float64) its distance to the point (world units).
    """

    shot: npt.NDArray[np.intp]
    entity: npt.NDArray[np.uint32]
    dist: npt.NDArray[np.float64]

    def nearest(self, n: int) -> npt.NDArray[np.uint32]:
        """Per shot (``n`` shots), the id of the closest entity hit, 0 for a miss."""
        out = np.zeros(n, np.uint32)
        if len(self.shot):
            shots, first = np.unique(self.shot, return_index=True)
            out[shots] = self.entity[first]
        return out


def _frozen(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    v = a.view()
    v.flags.writeable = False
    return v


class PastWorld:
    """One recorded tick, read-only: ``past["x"]`` is the full-capacity column at that tick.

    Index columns by **slot**, like ``world[name]``; only alive slots are meaningful.
    ``tick``; ``alive`` (bool mask over slots); ``slots`` (alive slots, ascending); ``ids``
    (their ids, uint32, ascending); ``count``; ``slots_of(ids)`` (-1 for an id that was not
    alive at that tick). Every array is a read-only view (``writeable=False``) into the ring:
    it stays valid until the ring row is overwritten, ``length`` ticks later.
    """

    __slots__ = ("_cols", "_gen", "_slots", "alive", "tick")

    def __init__(self, tick: int, cols: dict[str, npt.NDArray[Any]],
                 alive: npt.NDArray[np.bool_], gen: npt.NDArray[np.uint8]) -> None:
        self.tick = tick
        self._cols = cols
        self.alive = alive
        self._gen = gen
        self._slots: npt.NDArray[np.intp] | None = None

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        try:
            return self._cols[name]
        except KeyError:
            raise KeyError(f"no entity field {name!r} (declared: {list(self._cols)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    @property
    def slots(self) -> npt.NDArray[np.intp]:
        """Slots of the entities alive at this tick, ascending (cached)."""
        if self._slots is None:
            self._slots = _frozen(np.flatnonzero(self.alive))
        return self._slots

    @property
    def ids(self) -> npt.NDArray[np.uint32]:
        """Ids of the entities alive at this tick, ascending (order of :attr:`slots`)."""
        return self.id_of(self.slots)

    @property
    def count(self) -> int:
        return int(self.slots.shape[0])

    def id_of(self, slots: Any) -> npt.NDArray[np.uint32]:
        """The ids the ``slots`` had at this tick (meaningful for alive slots only)."""
        s = np.asarray(slots, dtype=np.intp)
        gen = np.take(self._gen, s).astype(np.uint32)
        out: npt.NDArray[np.uint32] = (s.astype(np.uint32) << np.uint32(_GEN_BITS)) | gen
        return out

    def slots_of(self, ids: Any) -> npt.NDArray[np.intp]:
        """Slots of ``ids`` at this tick; -1 for an id not alive then (stale, unborn, foreign)."""
        a = np.asarray(ids)
        a = a.astype(np.int64) if a.dtype.kind not in "ui" else a.astype(np.int64, copy=False)
        slot = a >> _GEN_BITS
        cap = self.alive.shape[0]
        ok = (a > 0) & (a <= 0xFFFFFFFF) & (slot < cap)
        s = np.where(ok, slot, 0)
        ok &= self.alive[s] & (self._gen[s] == (a & 0xFF))
        return np.where(ok, s, -1).astype(np.intp)

    def __repr__(self) -> str:
        return f"<PastWorld tick={self.tick} count={self.count}>"


class WorldHistory:
    """A ring of the last ``length`` committed states of ``world`` (see the module docstring).

    ``length`` >= 1 rows. Attributes: ``length``, ``newest`` (last recorded tick, -1 before
    the first record), ``oldest`` (oldest tick still held), ``nbytes`` (ring memory).
    """

    def __init__(self, world: World, length: int) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"history length must be an int >= 1, got {length!r}")
        self.world = world
        self.length = length
        self._cap = world.capacity
        self._fields = {name: f.storage for name, f in world.schema.fields.items()}
        self._cols: dict[str, npt.NDArray[Any]] = {
            name: np.zeros((length, self._cap), dt) for name, dt in self._fields.items()
        }
        self._alive = np.zeros((length, self._cap), np.bool_)
        self._gen = np.zeros((length, self._cap), np.uint8)
        self._ticks = np.full(length, -1, np.int64)  # the tick each row holds (-1: none)
        self._hw = np.zeros(length, np.int64)  # per row: 1 + its highest alive slot
        self.newest = -1
        self._filled = 0  # consecutive ticks recorded, up to length

    # ------------------------------------------------------------------ window
    @property
    def oldest(self) -> int:
        """The oldest tick still held (-1 before the first record)."""
        if self.newest < 0:
            return -1
        return self.newest - self._filled + 1

    @property
    def nbytes(self) -> int:
        """Bytes held by the ring arrays."""
        return int(sum(c.nbytes for c in self._cols.values()) + self._alive.nbytes
                   + self._gen.nbytes + self._ticks.nbytes)

    def __contains__(self, tick: object) -> bool:
        return isinstance(tick, int | np.integer) and self.oldest <= int(tick) <= self.newest \
            and self.newest >= 0

    def clamp(self, ticks: Any) -> npt.NDArray[np.int64]:
        """``ticks`` (int array-like) clamped into ``oldest .. newest`` (int64)."""
        return np.clip(np.asarray(ticks, dtype=np.int64), self.oldest, self.newest)

    # ------------------------------------------------------------------ filling
    def record(self, tick: int) -> None:
        """Store the world's committed state as ``tick``; one vectorized copy per field.

        Ticks are recorded in increasing order; a gap (a tick not recorded) restarts the
        window at ``tick``. Call after ``world.commit()``.
        """
        w = self.world
        if tick <= self.newest:
            raise ValueError(f"tick {tick} recorded after tick {self.newest}")
        if w.capacity > self._cap:
            self._grow(w.capacity)
        row = tick % self.length
        slots = w.alive_slots()
        hw = int(slots[-1]) + 1 if slots.shape[0] else 0  # rows above the top alive slot are dead
        for name, ring in self._cols.items():
            ring[row, :hw] = w[name][:hw]
        alive = self._alive[row]
        alive[:hw] = w.alive[:hw]
        old_hw = int(self._hw[row])
        if old_hw > hw:  # what this row held above the new high-water mark is dead now
            alive[hw:old_hw] = False
        self._gen[row, :hw] = w.generation[:hw]
        self._ticks[row] = tick
        self._hw[row] = hw
        self._filled = min(self._filled + 1, self.length) if tick == self.newest + 1 else 1
        self.newest = tick

    def _grow(self, cap: int) -> None:
        old = self._cap
        for name, ring in self._cols.items():
            new = np.zeros((self.length, cap), ring.dtype)
            new[:, :old] = ring
            self._cols[name] = new
        alive = np.zeros((self.length, cap), np.bool_)
        alive[:, :old] = self._alive
        self._alive = alive
        gen = np.zeros((self.length, cap), np.uint8)
        gen[:, :old] = self._gen
        self._gen = gen
        self._cap = cap

    # ------------------------------------------------------------------ handover
    def export(self) -> dict[str, Any]:
        """The held window as numpy arrays (for a room's handover blob, bounded: the held
        rows x the columns up to the highest alive slot any of them had).

        ``{"ticks": (n,) int64 oldest..newest, "hw": (n,) int64, "cols": {field: (n, hw)},
        "alive": (n, hw) bool, "gen": (n, hw) uint8}``; ``n`` is 0 before the first record.
        Copies (fancy indexing): the ring may go on being filled.
        """
        if self.newest < 0:
            ticks = np.zeros(0, np.int64)
        else:
            ticks = np.arange(self.oldest, self.newest + 1, dtype=np.int64)
        rows = ticks % self.length
        hws = self._hw[rows]
        hw = int(hws.max()) if hws.shape[0] else 0
        return {"ticks": ticks, "hw": hws,
                "cols": {name: ring[rows, :hw] for name, ring in self._cols.items()},
                "alive": self._alive[rows, :hw], "gen": self._gen[rows, :hw]}

    def load(self, state: Any, newest: int) -> None:
        """Fill this (fresh) ring from :meth:`export` of another node's ring, so ``at`` and
        ``hits`` answer as there for every tick both windows hold (the newest ``length``
        rows of it are kept if this ring is shorter). ``newest`` must be the last exported
        tick (the restored world's tick). Raises ``ValueError`` (nothing loaded) for a
        malformed state: other fields, dtypes or shapes, ticks not consecutive."""
        if not isinstance(state, dict):
            raise ValueError("history state must be a map")
        ticks, hws = state.get("ticks"), state.get("hw")
        cols, alive, gen = state.get("cols"), state.get("alive"), state.get("gen")
        if not (isinstance(ticks, np.ndarray) and isinstance(hws, np.ndarray)
                and isinstance(alive, np.ndarray) and isinstance(gen, np.ndarray)
                and isinstance(cols, dict)):
            raise ValueError("history state: arrays missing")
        n = int(ticks.shape[0])
        if ticks.ndim != 1 or ticks.dtype.kind not in "iu" or hws.shape != (n,) or n == 0:
            raise ValueError("history state: ticks malformed")
        if int(ticks[-1]) != newest or (n > 1 and not np.all(np.diff(ticks) == 1)) \
                or int(ticks[0]) < 0:
            raise ValueError(f"history state: ticks {ticks[0]}..{ticks[-1]} do not end at "
                             f"{newest} or are not consecutive")
        hw = int(alive.shape[1]) if alive.ndim == 2 else -1
        if alive.shape != (n, hw) or alive.dtype != np.bool_ or gen.shape != (n, hw) \
                or gen.dtype != np.uint8 or hw > self._cap or hws.min() < 0 \
                or hws.max() > hw:
            raise ValueError("history state: alive / generation rows malformed")
        if set(cols) != set(self._fields):
            raise ValueError("history state: entity fields differ")
        for name, dt in self._fields.items():
            c = cols[name]
            if not isinstance(c, np.ndarray) or c.shape != (n, hw) or c.dtype != np.dtype(dt):
                raise ValueError(f"history state: field {name!r} of the wrong dtype or shape")
        keep = slice(max(0, n - self.length), n)
        t = ticks[keep].astype(np.int64)
        rows = t % self.length
        for name, ring in self._cols.items():
            ring[rows, :hw] = cols[name][keep]
        self._alive[rows, :hw] = alive[keep]
        self._gen[rows, :hw] = gen[keep]
        self._ticks[rows] = t
        self._hw[rows] = hws[keep]
        self.newest = newest
        self._filled = int(t.shape[0])

    # ------------------------------------------------------------------ reading
    def at(self, tick: int) -> PastWorld:
        """The read-only state of ``tick``; :class:`HistoryError` outside the window."""
        t = int(tick)
        if self.newest < 0 or not self.oldest <= t <= self.newest:
            raise HistoryError(
                f"tick {t} is not in the world history (holds {self.oldest}..{self.newest})"
            )
        row = t % self.length
        assert self._ticks[row] == t
        cols = {name: _frozen(ring[row]) for name, ring in self._cols.items()}
        return PastWorld(t, cols, _frozen(self._alive[row]), _frozen(self._gen[row]))

    def hits(
        self,
        points: Any,
        ticks: Any,
        radius: float | Any,
        *,
        fields: Sequence[str] = ("x", "y"),
        exclude: Any = None,
        where: Callable[[PastWorld], npt.NDArray[np.bool_]] | None = None,
    ) -> Hits:
        """Every (shot, entity) with the entity within ``radius`` of the shot's point at the
        shot's tick, for ``n`` shots at once.

        ``points``: shape ``(n, len(fields))`` (world units, e.g. the aimed-at ``x, y``);
        ``ticks``: ``(n,)`` ints, each inside the window (e.g. ``inputs.render_tick``);
        ``radius``: a scalar or ``(n,)`` (inclusive); ``fields``: the position columns
        (``("x", "y", "z")`` for 3D); ``exclude``: ``(n,)`` entity ids (0: none) a shot never
        hits, typically the shooter's avatar; ``where(past) -> bool mask over slots``: which
        entities may be hit at that tick (e.g. ``lambda p: p["kind"] != ORB``), called once
        per distinct tick. Vectorized: one broadcast distance matrix per distinct tick (in
        chunks of shots bounding memory), no per-entity loop. Returns :class:`Hits` sorted by
        shot, then distance.
        """
        fields = tuple(fields)
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 1 and len(fields) == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[1] != len(fields):
            raise ValueError(f"points must have shape (n, {len(fields)}), got {pts.shape}")
        n = pts.shape[0]
        tk = np.asarray(ticks, dtype=np.int64).reshape(-1)
        if tk.shape[0] != n:
            raise ValueError(f"{n} points but {tk.shape[0]} ticks")
        r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,))
        r2 = r * r
        excl = None if exclude is None else np.broadcast_to(
            np.asarray(exclude, dtype=np.int64), (n,))
        for name in fields:
            if name not in self._cols:
                raise KeyError(f"no entity field {name!r}")
        shots: list[npt.NDArray[np.intp]] = []
        ents: list[npt.NDArray[np.uint32]] = []
        dists: list[npt.NDArray[np.float64]] = []
        uticks, inverse = np.unique(tk, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(uticks) + 1))
        for k, t in enumerate(uticks.tolist()):  # a loop over distinct ticks (<= length)
            past = self.at(t)
            group = order[bounds[k]:bounds[k + 1]]
            hw = int(self._hw[t % self.length])  # slots above it were all dead at tick t
            # Grid pruning over the raw columns: only entities in the cells (side = the
            # largest radius) next to a shot's cell can be within its radius; then alive /
            # where, then the exact test on those few.
            cols = [past[f][:hw] for f in fields]
            slots = _candidates(cols, pts[group], max(float(r[group].max()), 1e-6))
            slots = slots[past.alive[slots]]
            if where is not None and slots.shape[0]:
                slots = slots[np.asarray(where(past), dtype=np.bool_)[slots]]
            m = slots.shape[0]
            if m == 0:
                continue
            epos = np.stack([c[slots].astype(np.float64) for c in cols], axis=1)
            eids = past.id_of(slots)
            step = max(1, _MAX_PAIRS // m)
            for c0 in range(0, group.shape[0], step):  # chunks of shots, bounded memory
                g = group[c0:c0 + step]
                d2 = np.zeros((g.shape[0], m))
                for f in range(len(fields)):  # one broadcast per coordinate
                    d = pts[g, f][:, None] - epos[None, :, f]
                    d2 += d * d
                si, ei = np.nonzero(d2 <= r2[g][:, None])
                ids = eids[ei]
                if excl is not None:
                    keep = ids.astype(np.int64) != excl[g[si]]
                    si, ei, ids = si[keep], ei[keep], ids[keep]
                shots.append(g[si].astype(np.intp))
                ents.append(ids)
                dists.append(np.sqrt(d2[si, ei]))
        if not shots:
            return Hits(np.zeros(0, np.intp), np.zeros(0, np.uint32), np.zeros(0, np.float64))
        shot = np.concatenate(shots)
        ent = np.concatenate(ents)
        dist = np.concatenate(dists)
        srt = np.lexsort((ent, dist, shot))  # by shot, then distance, then id (deterministic)
        return Hits(shot[srt], ent[srt], dist[srt])

    def __repr__(self) -> str:
        return (f"<WorldHistory {self.oldest}..{self.newest} of {self.length} ticks, "
                f"capacity {self._cap}, {self.nbytes} bytes>")
