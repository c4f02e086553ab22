"""The client's replicated world: :class:`protocol.delta.Replica` with a friendlier face.

:class:`WorldView` owns one :class:`~protocol.delta.Replica` built from WELCOME's schema and
adds what game code and bots want:

* ``world["x"]`` the field's *real* values as a numpy array (``wire * quant`` as float64 for a
  quantized field, the wire column itself otherwise), with the server schema's field names;
  computed at most once per tick (cached until the next delta);
* ``world.ids`` (uint32, ascending), ``world.tick``, ``len(world)``;
* ``rows_of(ids)`` / ``row_of(id)`` (``np.searchsorted``), ``entity(id) -> dict``;
* ``float_fields``: the fields whose real values are floats (interpolate those).

Arrays returned are never mutated afterwards (the replica replaces them on each delta), so a
caller may keep them as an older, consistent state; do not write into them.

Fast path (:meth:`WorldView.apply_wire`): the steady-state delta (a base tick, field groups,
no spawn / despawn) is decoded and applied **batched over all groups**: one segmented cumsum
decodes every group's row list, and each field is updated with one gather / scatter over the
rows of every group touching it (``protocol.delta.Replica.apply`` does that per group and per
column, which costs ~10 numpy calls per column: a 6-group arena delta took ~4x longer).
It validates exactly what SPEC.md section 5 requires (base tick, count, row range, strictly
ascending rows, column codes and lengths, value ranges) and is atomic: new column arrays are
built first and swapped in at the end, so a :class:`DeltaError` leaves the replica untouched.
Anything else (full snapshots, spawns, despawns, overlapping groups, extra elements) goes
through :func:`protocol.delta.parse_delta` + :meth:`Replica.apply`. The shared test vectors
run through both paths (tests/clients/test_client_vectors.py, test_world_fastpath.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from protocol.codes import DEFAULT_MAX_SIZE, DeltaError, unpack
from protocol.delta import Delta, Replica, WireSchema, parse_delta
from protocol.wireschema import DIFF_DTYPES, WIRE_DTYPES

__all__ = ["WorldView"]


class WorldView:
    """Replicated entity state of one room, updated atomically by :meth:`apply`."""

    __slots__ = ("_bounds", "_cache", "_nf", "float_fields", "names", "replica", "schema")

    def __init__(self, schema: WireSchema) -> None:
        self.schema = schema
        self.replica = Replica(schema)
        self.names: tuple[str, ...] = schema.names
        self.float_fields: frozenset[str] = frozenset(
            f.name for f in schema.fields if f.quant is not None or f.is_float
        )
        self._cache: dict[str, np.ndarray] = {}
        self._nf = len(schema.fields)
        # per field: (lo, hi) of its integer dtype, or None for a float field
        self._bounds: list[tuple[int, int] | None] = []
        for f in schema.fields:
            if f.is_float:
                self._bounds.append(None)
            else:
                info = np.iinfo(f.np_dtype)
                self._bounds.append((int(info.min), int(info.max)))

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
        obj = unpack(data, max_size=max_size)
        if (
            type(obj) is list and len(obj) == 7 and obj[0] == 17 and obj[4] is None
            and obj[5] is None and obj[2] is not None and type(obj[6]) is list
            and self.replica.tick is not None
        ):
            done = self._apply_groups(obj)
            if done:
                return False
        delta = parse_delta(obj)
        self.apply(delta)
        return delta.base_tick is None

    def _apply_groups(self, obj: list[Any]) -> bool:
        """The batched fast path; False to fall back (overlapping groups, odd shapes)."""
        _, tick, base, count, _, _, groups = obj
        rep = self.replica
        if type(tick) is not int or tick < 0 or type(base) is not int or type(count) is not int:
            raise DeltaError("DELTA tick / base_tick / count must be uints")
        if base != rep.tick:
            raise DeltaError(f"delta from tick {base} does not apply to replica at tick {rep.tick}")
        n_ent = rep.ids.shape[0]
        if count != n_ent:
            raise DeltaError(f"delta says {count} entities, applying it gives {n_ent}")
        if not groups:
            rep.tick = tick
            if self._cache:
                self._cache = {}
            return True
        nf = self._nf
        # pass 1 (Python, per group): structure; collect row lists and per-field columns
        firsts: list[int] = []
        lens: list[int] = []
        gap_parts: list[tuple[int, str, bytes]] = []  # (group, code, bin) for n > 1
        gap_bufs: list[bytes] = []  # every group's gap bin, in order
        per_field: list[list[tuple[int, str, bytes]] | None] = [None] * nf
        for gi, grp in enumerate(groups):
            if type(grp) is not list or len(grp) != 3:
                return False  # extra trailing elements etc.: the general path decides
            mask, rl, cols = grp
            if type(mask) is not int or not 0 < mask <= 0xFFFFFFFF:
                raise DeltaError(f"group {gi}: mask must be a non-zero uint32")
            if mask >> nf:
                raise DeltaError(f"group {gi}: mask {mask:#x} names fields beyond {nf}")
            if type(rl) is not list or len(rl) != 3 or type(cols) is not list:
                return False
            first, code, gaps = rl
            if type(first) is not int or not 0 <= first <= 0xFFFFFFFF:
                raise DeltaError(f"group {gi} rows: first value must be a uint32")
            width = _ID_WIDTH.get(code) if type(code) is str else None
            if width is None or type(gaps) is not bytes or len(gaps) % width:
                raise DeltaError(f"group {gi} rows: bad gap code / bin")
            n = 1 + len(gaps) // width
            firsts.append(first)
            lens.append(n)
            gap_bufs.append(gaps)
            if n > 1:
                gap_parts.append((gi, code, gaps))
            if len(cols) != mask.bit_count():
                raise DeltaError(f"group {gi}: {len(cols)} columns for {mask.bit_count()} bits")
            f = 0
            m = mask
            for col in cols:
                while not m & 1:
                    m >>= 1
                    f += 1
                if type(col) is not list or len(col) != 2:
                    return False
                ccode, cdata = col
                dt = _COL_DTYPES.get(ccode) if type(ccode) is str else None
                if dt is None or type(cdata) is not bytes:
                    raise DeltaError(f"group {gi}: unknown column code {ccode!r}")
                if len(cdata) != n * dt.itemsize:
                    raise DeltaError(f"group {gi}: column length does not match {n} rows")
                lst = per_field[f]
                if lst is None:
                    lst = per_field[f] = []
                lst.append((gi, ccode, cdata))
                m >>= 1
                f += 1
        # pass 2 (numpy): every group's rows with one segmented cumsum. steps holds, per
        # group, [first, gap, gap, ...]; rows = cumsum(steps) - (cumsum before the group).
        total = sum(lens)
        starts_l = [0] * len(lens)
        acc = 0
        for i, n in enumerate(lens):
            starts_l[i] = acc
            acc += n
        codes = {c for _, c, _ in gap_parts}
        if len(codes) == 1:
            # one gap width (the usual case): a placeholder gap of 1 before each group's
            # gaps, so one frombuffer yields every step; firsts are written over them below
            (code,) = codes
            one = _ONE[code]
            steps = np.frombuffer(one + one.join(gap_bufs), _ID_DTYPES[code]).astype(np.int64)
        else:
            steps = np.ones(total, np.int64)
            for gi, code, gaps in gap_parts:
                s0 = starts_l[gi]
                steps[s0 + 1:s0 + lens[gi]] = np.frombuffer(gaps, _ID_DTYPES[code])
        if gap_parts and not _all(steps):
            raise DeltaError("row list not strictly ascending (zero gap)")
        starts = np.array(starts_l, np.intp)
        steps[starts] = firsts
        csum = _accumulate(steps)
        rows = csum - (csum[starts] - steps[starts]).repeat(lens)
        if _max(rows) >= count:
            raise DeltaError(f"a group row is >= count {count}")
        if len(lens) > 1 and _max(np.bincount(rows, minlength=count)) > 1:
            return False  # groups overlap: apply them in order on the general path
        # pass 3: per field, one gather / scatter over the rows of every group touching it
        bounds = self._bounds
        fields = self.schema.fields
        cols_now = rep.columns
        new_cols: dict[str, np.ndarray] = {}
        lens_l = lens
        for f, entries in enumerate(per_field):
            if entries is None:
                continue
            field = fields[f]
            col = cols_now[field.name].copy()
            b = bounds[f]
            if len(entries) == 1:
                gi, ccode, cdata = entries[0]
                s0 = starts_l[gi]
                _update(col, field, b, ccode, rows[s0:s0 + lens_l[gi]],
                        np.frombuffer(cdata, _COL_DTYPES[ccode]))
            else:
                by_code: dict[str, tuple[list[np.ndarray], list[bytes]]] = {}
                for gi, ccode, cdata in entries:
                    r, v = by_code.setdefault(ccode, ([], []))
                    s0 = starts_l[gi]
                    r.append(rows[s0:s0 + lens_l[gi]])
                    v.append(cdata)
                for ccode, (rparts, vparts) in by_code.items():
                    idx = rparts[0] if len(rparts) == 1 else np.concatenate(rparts)
                    vals = np.frombuffer(b"".join(vparts), _COL_DTYPES[ccode])
                    _update(col, field, b, ccode, idx, vals)
            new_cols[field.name] = col
        # commit (atomic: nothing above touched the replica)
        merged = dict(cols_now)
        merged.update(new_cols)
        rep.columns = merged
        rep.tick = tick
        if self._cache:
            self._cache = {}
        return True

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


def _update(col: np.ndarray, field: Any, b: tuple[int, int] | None, ccode: str,
            idx: np.ndarray, vals: np.ndarray) -> None:
    """Write one column's values (raw or difference) at rows ``idx`` of ``col`` (a private
    copy), validating codes and ranges (SPEC.md section 5, step 5)."""
    if ccode in DIFF_DTYPES:
        if b is None:
            raise DeltaError(f"field {field.name!r}: difference column on a float")
        new = np.add(col[idx], vals, dtype=np.int64)
        if _min(new) < b[0] or _max(new) > b[1]:
            raise DeltaError(f"field {field.name!r}: value out of range")
        col[idx] = new
    elif b is None:
        if ccode != field.dtype:
            raise DeltaError(f"field {field.name!r} is {field.dtype}, got {ccode}")
        col[idx] = vals
    else:
        if ccode in _FLOAT_CODES:
            raise DeltaError(f"integer field {field.name!r} got a {ccode} column")
        lo, hi = _CODE_RANGE[ccode]
        if (lo < b[0] or hi > b[1]) and (_min(vals) < b[0] or _max(vals) > b[1]):
            raise DeltaError(f"field {field.name!r}: value out of range")
        col[idx] = vals


# ufunc methods called directly: ndarray.min()/max()/all() and np.cumsum go through Python
# wrappers that cost about a microsecond each, and the fast path makes ~15 such calls a delta
_min = np.minimum.reduce
_max = np.maximum.reduce
_all = np.logical_and.reduce
_accumulate = np.add.accumulate

_ID_WIDTH = {"u8": 1, "u16": 2, "u32": 4}
_ID_DTYPES = {c: WIRE_DTYPES[c] for c in _ID_WIDTH}
_ONE = {c: np.ones(1, WIRE_DTYPES[c]).tobytes() for c in _ID_WIDTH}
_COL_DTYPES = {**WIRE_DTYPES, **DIFF_DTYPES}
_FLOAT_CODES = frozenset({"f32", "f64"})
_CODE_RANGE = {
    c: (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
    for c, dt in WIRE_DTYPES.items() if c not in _FLOAT_CODES
}
