"""The client's replicated world: :class:`protocol.replica.Replica` with a friendlier face.

:class:`WorldView` owns one :class:`~protocol.replica.Replica` built from WELCOME's schema and
adds what game code and bots want:

* ``world["x"]`` the field's *real* values as a numpy array (``wire * quant`` as float64 for a
  quantized field, the wire column itself otherwise), with the server schema's field names;
  computed at most once per tick (cached until the next delta);
* ``world.ids`` (uint32, ascending), ``world.tick``, ``len(world)``;
* ``rows_of(ids)`` / ``row_of(id)`` (``np.searchsorted``), ``entity(id) -> dict``;
* ``float_fields``: the fields whose real values are floats (interpolate those).

Arrays returned are never mutated afterwards (the replica replaces them on each delta), so a
caller may keep them as an older, consistent state; do not write into them.

Decoding and applying is :meth:`protocol.replica.Replica.apply` (batched over field groups,
atomic); :meth:`WorldView.apply_wire` hands it the raw message bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from protocol.codes import DEFAULT_MAX_SIZE, unpack
from protocol.delta import Delta, WireSchema
from protocol.replica import Replica
from protocol.view import ViewReplica

__all__ = ["WorldView"]


class WorldView:
    """Replicated entity state of one room, updated atomically by :meth:`apply`."""

    __slots__ = ("_cache", "float_fields", "names", "replica", "schema", "view")

    def __init__(self, schema: WireSchema, *, view: bool = False) -> None:
        self.schema = schema
        self.replica = Replica(schema)
        #: interest management negotiated: the state is the union of a ViewReplica's channels
        self.view: ViewReplica | None = ViewReplica(schema) if view else None
        self.names: tuple[str, ...] = schema.names
        self.float_fields: frozenset[str] = frozenset(
            f.name for f in schema.fields if f.quant is not None or f.is_float
        )
        self._cache: dict[str, np.ndarray] = {}

    @property
    def ready(self) -> bool:
        """True once a full snapshot was applied."""
        return self.replica.tick is not None

    @property
    def tick(self) -> int:
        """The tick of the current state (0 before the first snapshot)."""
        t = self.replica.tick
        return 0 if t is None else t

    @property
    def is_view(self) -> bool:
        """True when the server streams VIEW messages (the ``"interest"`` extension)."""
        return self.view is not None

    @property
    def entered(self) -> np.ndarray:
        """Ids that came into view (with full state) in the last update (VIEW streams)."""
        return self.view.entered if self.view is not None else self.replica.ids[:0]

    @property
    def left_view(self) -> np.ndarray:
        """Ids that left the view (still in the world, elsewhere) in the last update."""
        return self.view.left_view if self.view is not None else self.replica.ids[:0]

    @property
    def despawned(self) -> np.ndarray:
        """Ids destroyed in the world (while in view) in the last update (VIEW streams)."""
        return self.view.despawned if self.view is not None else self.replica.ids[:0]

    def apply_view(self, obj: Any) -> bool:
        """Apply one unpacked VIEW atomically (``DeltaError`` on failure); True for a reset.
        The world's arrays then show the union of the visible channels."""
        assert self.view is not None, "VIEW without the interest extension"
        reset = self.view.apply_unpacked(obj)
        r = self.replica
        r.ids, r.columns, r.tick = self.view.ids, self.view.columns, self.view.tick
        if self._cache:
            self._cache = {}
        return reset

    @property
    def ids(self) -> np.ndarray:
        """Entity ids, uint32, strictly ascending (row ``r`` is ``ids[r]``)."""
        return self.replica.ids

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """Wire values per field (quantized ints for quantized floats)."""
        return self.replica.columns

    def __len__(self) -> int:
        return int(self.replica.ids.shape[0])

    def __contains__(self, entity_id: object) -> bool:
        if not isinstance(entity_id, int | np.integer):
            return False
        return self.row_of(int(entity_id)) is not None

    def __getitem__(self, name: str) -> np.ndarray:
        """Real values of field ``name`` (float64 when quantized), one per row."""
        v = self._cache.get(name)
        if v is None:
            v = self._cache[name] = self.replica.values(name)
        return v

    def apply(self, delta: Delta) -> None:
        """Apply one delta atomically (raises ``DeltaError``, state unchanged, on failure)."""
        self.replica.apply(delta)
        if self._cache:
            self._cache = {}

    def apply_wire(
        self, data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE
    ) -> bool:
        """Decode and apply one DELTA message (whole bytes); returns True for a full snapshot.

        Raises :class:`~protocol.codes.DeltaError` (replica unchanged) when it is malformed
        or does not apply, :class:`~protocol.codes.MessageError` when it is not msgpack.
        """
        full = self.replica.apply_unpacked(unpack(data, max_size=max_size))
        if self._cache:
            self._cache = {}
        return full

    def values(self) -> dict[str, np.ndarray]:
        """Every field's real values (the dict is new; the arrays are shared)."""
        return {n: self[n] for n in self.names}

    def rows_of(self, ids: Any) -> np.ndarray:
        """Row of each id (intp), -1 where absent."""
        return self.replica.row_of(ids)

    def row_of(self, entity_id: int) -> int | None:
        """Row of one entity id, or None if it is not in the world."""
        ids = self.replica.ids
        r = int(np.searchsorted(ids, entity_id))
        if r < ids.shape[0] and int(ids[r]) == entity_id:
            return r
        return None

    def entity(self, entity_id: int) -> dict[str, Any] | None:
        """Real field values of one entity as Python scalars, or None if absent."""
        r = self.row_of(entity_id)
        if r is None:
            return None
        return {n: self[n][r].item() for n in self.names}

