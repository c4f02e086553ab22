"""World: a structure-of-arrays entity store with stable, generation-tagged ids.

Ids (SPEC.md section 4): ``id = slot << 8 | generation`` as uint32. ``slot`` (24 bits, up to
16,777,215 entities) indexes the column arrays; ``generation`` (1..255, never 0) is bumped
every time a slot is handed out, so a stale id does not resolve to the slot's next occupant
(``slots_of`` gives -1) until the generation wraps after 255 reuses of that slot. Id 0 is
never an entity ("none" in reference fields). Ids do not depend on the capacity: growth
(amortized doubling) keeps every id and every slot.

Tick boundary: :meth:`World.spawn` hands out ids and slots at once (game code may write the
new rows right away), but the entities only become *alive* (``alive_slots()``, ``ids``,
``count``, ``snapshot()``) at :meth:`World.commit`. :meth:`World.despawn` takes effect at
commit too (until then the entity stays alive and resolvable); its slot is reused only after
the commit. Despawning an entity spawned in the same tick cancels it.

Columns: ``world[name]`` is the full-capacity, writable storage array of a field (index it
with slots). **A column array is replaced when the capacity grows** (a spawn may grow it):
re-read ``world[name]`` after spawning instead of keeping an old reference. Rows of free
slots hold garbage; only slots from ``alive_slots()`` / ``slots_of()`` are meaningful.

Everything is vectorized: no per-entity Python loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from protocol.wireschema import Snapshot

from .history import HistoryError, PastWorld, WorldHistory
from .schema import WorldSchema

__all__ = ["GEN_BITS", "MAX_CAPACITY", "World", "WorldFull"]

GEN_BITS = 8
_GEN_MASK = (1 << GEN_BITS) - 1
#: Slots are 24 bits wide.
MAX_CAPACITY = 1 << (32 - GEN_BITS)


class WorldFull(RuntimeError):
    """More than :data:`MAX_CAPACITY` entities would exist (our misuse, not a peer's)."""


class World:
    """Entity storage for one room. See the module docstring for the id and tick contracts."""

    def __init__(self, schema: WorldSchema, capacity: int = 64) -> None:
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity must be in 1..{MAX_CAPACITY}, not {capacity}")
        self.schema = schema
        self._cap = int(capacity)
        self._cols: dict[str, np.ndarray] = {
            name: np.zeros(capacity, f.storage) for name, f in schema.fields.items()
        }
        self._gen = np.zeros(capacity, np.uint32)  # generation of the slot's current occupant
        self._alive = np.zeros(capacity, np.bool_)  # committed alive
        self._taken = np.zeros(capacity, np.bool_)  # handed out (pending, alive or dying)
        self._dying = np.zeros(capacity, np.bool_)  # despawn pending until commit
        # Free slots as a stack, sorted descending so pops hand out the lowest slot first
        # (dense, low ids keep delta row/id gaps small).
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
        self._nfree = capacity
        self._spawned: list[np.ndarray] = []
        self._despawned: list[np.ndarray] = []
        self._alive_slots: np.ndarray | None = np.zeros(0, np.intp)
        #: The room's :class:`~gameserver.history.WorldHistory` (lag compensation), set by the
        #: Simulation when the game keeps history (``Game.history`` seconds > 0), else None.
        self.history: WorldHistory | None = None

    # ------------------------------------------------------------------ properties
    @property
    def capacity(self) -> int:
        """Slots currently allocated in every column (grows by doubling; never shrinks)."""
        return self._cap

    @property
    def count(self) -> int:
        """Number of committed alive entities."""
        return int(self.alive_slots().shape[0])

    @property
    def alive(self) -> np.ndarray:
        """Read-only bool mask over slots: committed alive."""
        view = self._alive.view()
        view.flags.writeable = False
        return view

    @property
    def ids(self) -> np.ndarray:
        """Ids of the committed alive entities, ascending (uint32, order of ``alive_slots``)."""
        return self.id_of(self.alive_slots())

    @property
    def generation(self) -> np.ndarray:
        """Read-only uint32 generation per slot (of its current occupant; 0: never used)."""
        view = self._gen.view()
        view.flags.writeable = False
        return view

    @property
    def pending(self) -> int:
        """Spawns plus despawns waiting for the next commit."""
        return sum(len(a) for a in self._spawned) + sum(len(a) for a in self._despawned)

    def __getitem__(self, name: str) -> np.ndarray:
        """The full-capacity writable column of ``name`` (replaced when capacity grows)."""
        return self._cols[name]

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def columns(self) -> dict[str, np.ndarray]:
        """All full-capacity columns by name (same caveat as ``world[name]``)."""
        return dict(self._cols)

    # ------------------------------------------------------------------ ids
    def id_of(self, slots: Any) -> np.ndarray:
        """The current ids of ``slots`` (uint32); meaningful for taken slots only."""
        s = np.asarray(slots, dtype=np.intp)
        return (s.astype(np.uint32) << GEN_BITS) | np.take(self._gen, s)

    def slots_of(self, ids: Any) -> np.ndarray:
        """Slots (intp) of ``ids``; -1 for a stale, despawned-and-committed or foreign id.

        Ids spawned this tick already resolve; ids despawned this tick resolve until commit.
        """
        a = np.asarray(ids)
        if a.dtype.kind not in "ui":
            a = a.astype(np.int64)
        a = a.astype(np.int64, copy=False)
        slot = a >> GEN_BITS
        gen = a & _GEN_MASK
        ok = (a >= 0) & (a <= 0xFFFFFFFF) & (slot < self._cap) & (gen != 0)
        s = np.where(ok, slot, 0)
        ok &= self._taken[s] & (self._gen[s] == gen)
        return np.where(ok, s, -1).astype(np.intp)

    def is_alive(self, ids: Any) -> np.ndarray:
        """Bool per id: resolves to a committed alive entity."""
        s = self.slots_of(ids)
        return (s >= 0) & self._alive[np.maximum(s, 0)]

    # ------------------------------------------------------------------ mutation
    def spawn(self, n: int = 1, **values: Any) -> np.ndarray:
        """Hand out ``n`` new entities; return their ids (uint32, ascending slot order).

        ``values`` set fields (a scalar for all, or an array of length ``n``); other fields get
        their declared default. The rows are writable at once (``world[name][slots_of(ids)]``)
        but the entities become alive at :meth:`commit`.
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"spawn n must be >= 0, not {n}")
        unknown = set(values) - set(self._cols)
        if unknown:
            raise TypeError(f"spawn() got unknown field(s): {', '.join(sorted(unknown))}")
        if n == 0:
            return np.zeros(0, np.uint32)
        if n > self._nfree:
            self._grow(self._cap - self._nfree + n)
        top = self._nfree
        slots = self._free[top - n : top][::-1].astype(np.intp)  # ascending
        self._nfree = top - n
        gen = self._gen[slots] % _GEN_MASK + 1  # 1..255, skipping 0
        self._gen[slots] = gen
        self._taken[slots] = True
        for name, f in self.schema.fields.items():
            col = self._cols[name]
            if name in values:
                v = np.asarray(values[name])
                if v.ndim > 1 or (v.ndim == 1 and v.shape[0] != n):
                    raise ValueError(f"spawn {name}: need a scalar or {n} values, got {v.shape}")
                col[slots] = v
            else:
                col[slots] = f.default
        self._spawned.append(slots)
        return (slots.astype(np.uint32) << GEN_BITS) | gen

    def despawn(self, ids: Any) -> int:
        """Schedule ``ids`` for removal at the next commit; stale/unknown ids are ignored.

        Returns how many entities were newly scheduled.
        """
        slots = self.slots_of(np.atleast_1d(np.asarray(ids)))
        slots = slots[slots >= 0]
        slots = np.unique(slots[~self._dying[slots]])
        if slots.shape[0]:
            self._dying[slots] = True
            self._despawned.append(slots)
        return int(slots.shape[0])

    def commit(self) -> None:
        """Tick boundary: pending spawns become alive, pending despawns are removed.

        Despawned slots return to the free list (reused lowest first, with a new generation).
        """
        if not self._spawned and not self._despawned:
            return
        if self._spawned:
            born = np.concatenate(self._spawned)
            self._alive[born] = True
            self._spawned.clear()
        if self._despawned:
            dead = np.concatenate(self._despawned)
            self._despawned.clear()
            self._alive[dead] = False
            self._taken[dead] = False
            self._dying[dead] = False
            # Keep the stack sorted descending; two sorted runs merge in ~linear time.
            merged = np.concatenate([self._free[: self._nfree], dead.astype(np.int64)])
            merged = np.sort(merged, kind="stable")[::-1]
            self._free = np.ascontiguousarray(merged)
            self._nfree = merged.shape[0]
        self._alive_slots = None

    def _grow(self, needed: int) -> None:
        if needed > MAX_CAPACITY:
            raise WorldFull(f"{needed} entities exceed the {MAX_CAPACITY} slots of a world")
        old = self._cap
        cap = min(max(old * 2, needed), MAX_CAPACITY)
        for name, col in self._cols.items():
            new = np.zeros(cap, col.dtype)
            new[:old] = col
            self._cols[name] = new
        for attr in ("_gen", "_alive", "_taken", "_dying"):
            arr = getattr(self, attr)
            new = np.zeros(cap, arr.dtype)
            new[:old] = arr
            setattr(self, attr, new)
        # New slots are all higher than existing ones: they go below the stack's top part.
        fresh = np.arange(cap - 1, old - 1, -1, dtype=np.int64)
        self._free = np.concatenate([fresh, self._free[: self._nfree]])
        self._nfree = self._free.shape[0]
        self._cap = cap

    # ------------------------------------------------------------------ reading
    def at(self, tick: int) -> PastWorld:
        """The committed state of a recent ``tick``, read-only (lag compensation).

        ``world.at(t)["x"]`` is the full-capacity column at tick ``t`` (``writeable=False``),
        with ``.ids`` / ``.alive`` / ``.slots`` / ``.slots_of()`` of that tick; see
        :class:`gameserver.history.PastWorld`. Raises :class:`~gameserver.history.HistoryError`
        when the game keeps no history or ``tick`` is outside it (``world.history.oldest ..
        world.history.newest``; inside ``on_tick(T)`` the newest is ``T - 1``).
        """
        if self.history is None:
            raise HistoryError("this world keeps no history (set Game.history > 0 seconds)")
        return self.history.at(tick)

    def alive_slots(self) -> np.ndarray:
        """Slots of committed alive entities, ascending (intp; cached until the next commit).

        Ascending slots are also ascending ids (the slot is the id's high bits).
        """
        if self._alive_slots is None:
            self._alive_slots = np.flatnonzero(self._alive)
        return self._alive_slots

    def snapshot(self) -> Snapshot:
        """The committed state in wire form: ids ascending, columns of wire values (copies)."""
        slots = self.alive_slots()
        n = slots.shape[0]
        if n == 0 or int(slots[-1]) == n - 1:
            # No holes: slots are exactly 0..n-1, so slices (views) replace gathers.
            ids = (np.arange(n, dtype=np.uint32) << GEN_BITS) | self._gen[:n]
            cols = {name: f.to_wire(self._cols[name][:n]) for name, f in self.schema.fields.items()}
        else:
            ids = self.id_of(slots)
            cols = {
                name: f.to_wire(np.take(self._cols[name], slots), fresh=True)
                for name, f in self.schema.fields.items()
            }
        return Snapshot(ids, cols)

    def __repr__(self) -> str:
        return f"World(count={self.count}, capacity={self._cap}, pending={self.pending})"
