"""Columnar delta codec: ``encode_delta(base, cur)``, ``decode_delta(bytes)``, ``Replica.apply``.

The layout is SPEC.md section 5 (the source of truth)::

    [17, tick, base_tick | nil, count, despawned | nil, [IDLIST, [COL...]] | nil, [GROUP...]]
    IDLIST = [first, "u8"|"u16"|"u32", gaps bin]      strictly ascending, gap-coded
    COL    = [code, bin]   raw "u8".."i32","f32","f64" or difference "d8","d16","d32"
    GROUP  = [mask, ROWLIST, [COL per set bit]]        rows index the post-apply sorted ids

The encoder is vectorized (numpy; the only Python loops run over fields and field groups,
never over entities): entities present in both snapshots are compared column by column
(wire values, so quantized floats compare after quantization and raw floats by their bits);
each changed entity gets a bit mask of its changed fields; entities with the same mask form
one group sharing one row list (x and y of a moving entity share it); then groups are merged
wherever that makes the message smaller (a few rows that changed only one field join a bigger
group, carrying 0 differences or current values for the rest; see ``_merge_small``). Values
travel as differences from the base when that is narrower than the raw values, in the
smallest width.
A full snapshot (``base=None``) is a delta from the empty world with ``base_tick`` nil.

:class:`Replica` is the client side (the only decoder: the Python client and bots use it):
it applies deltas atomically (validate and build the new state first, then swap), raising
:class:`DeltaError` and keeping its state on any problem. Applying is batched over field
groups (one cumsum decodes every group's row list; each field gets one gather /
scatter per column code), so its cost is a fixed number of numpy calls per field, not per
group and column.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

import msgpack
import numpy as np

from .codes import DEFAULT_MAX_SIZE, DeltaError, MessageError, MsgType, unpack
from .wireschema import (
    DIFF_DTYPES,
    FLOAT_CODES,
    MAX_FIELDS,
    WIRE_DTYPES,
    Snapshot,
    WireField,
    WireSchema,
)

__all__ = [
    "MAX_GROUPS",
    "Column",
    "Delta",
    "DeltaError",
    "Group",
    "Replica",
    "Snapshot",
    "WireField",
    "WireSchema",
    "decode_delta",
    "encode_delta",
    "parse_delta",
]

#: Most field groups the encoder emits; rarer change masks are merged into one group whose
#: mask is their union (unchanged fields then carry their current value / a zero difference).
MAX_GROUPS = 16
_BINCOUNT_LIMIT = 1 << 16
_U32 = 0xFFFFFFFF
_ID_CODES = (("u8", 0xFF), ("u16", 0xFFFF), ("u32", _U32))
# Raw integer codes in order of preference (width, then unsigned first).
_RAW_INT = [
    (code, int(np.iinfo(WIRE_DTYPES[code]).min), int(np.iinfo(WIRE_DTYPES[code]).max))
    for code in ("u8", "i8", "u16", "i16", "u32", "i32")
]
_DIFF = [(code, int(np.iinfo(dt).min), int(np.iinfo(dt).max)) for code, dt in DIFF_DTYPES.items()]
_WIDTH = {code: dt.itemsize for code, dt in (WIRE_DTYPES | DIFF_DTYPES).items()}
_INT_CODE = {dt: code for code, dt in WIRE_DTYPES.items() if dt.kind in "iu"}


# ---------------------------------------------------------------------------- decoded form
@dataclass(frozen=True, slots=True, eq=False)
class Column:
    """One decoded COL: ``code`` as on the wire, ``values`` (read-only numpy view), ``diff``."""

    code: str
    values: np.ndarray

    @property
    def diff(self) -> bool:
        return self.code in DIFF_DTYPES


@dataclass(frozen=True, slots=True, eq=False)
class Group:
    """One decoded GROUP: field ``mask``, ``rows`` (int64, ascending), one column per set bit."""

    mask: int
    rows: np.ndarray
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Delta:
    """A decoded DELTA message (structure checked; semantics checked by :meth:`Replica.apply`)."""

    tick: int
    base_tick: int | None
    count: int
    despawned: np.ndarray
    spawned_ids: np.ndarray
    spawned: tuple[Column, ...]
    groups: tuple[Group, ...]

    @property
    def full(self) -> bool:
        """True for a full snapshot (applies to the empty world)."""
        return self.base_tick is None


# ---------------------------------------------------------------------------- encoding
def _idlist(values: np.ndarray) -> list[Any] | None:
    """Strictly ascending non-negative ints -> IDLIST (nil when empty)."""
    n = values.shape[0]
    if n == 0:
        return None
    first = int(values[0])
    if n == 1:
        return [first, "u8", b""]
    gaps = np.diff(values.astype(np.int64))
    top = int(gaps.max())
    for code, limit in _ID_CODES:
        if top <= limit:
            return [first, code, gaps.astype(WIRE_DTYPES[code]).tobytes()]
    raise ValueError(f"gap {top} does not fit u32 (ids must be uint32)")


def _raw_code(lo: int, hi: int, own: np.dtype[Any] | None = None) -> str:
    """Smallest raw integer code holding lo..hi; the field's ``own`` dtype when that is as
    small (an i8 field's 0..9 goes as i8, not u8: a decoder then skips the range check)."""
    for code, cmin, cmax in _RAW_INT:
        if cmin <= lo and hi <= cmax:
            if own is not None and own.itemsize <= _WIDTH[code]:
                own_code = _INT_CODE.get(own)
                if own_code is not None:
                    return own_code
            return code
    raise ValueError(f"values {lo}..{hi} fit no 32-bit wire integer")


def _raw_col(values: np.ndarray) -> list[Any]:
    """Raw COL in the smallest integer code holding the values (floats: their own code)."""
    if values.dtype.kind == "f":
        code = "f32" if values.dtype.itemsize == 4 else "f64"
        return [code, values.astype(WIRE_DTYPES[code], copy=False).tobytes()]
    if values.shape[0] == 0:
        return ["u8", b""]
    code = _raw_code(int(values.min()), int(values.max()), values.dtype)
    return [code, values.astype(WIRE_DTYPES[code], copy=False).tobytes()]


def _changed_col(new: np.ndarray, old: np.ndarray) -> list[Any]:
    """COL for changed values: differences from ``old`` when narrower than raw, else raw."""
    if new.dtype.kind == "f":
        return _raw_col(new)
    raw_code = _raw_code(int(new.min()), int(new.max()), new.dtype)
    d = new.astype(np.int64) - old.astype(np.int64)
    dlo, dhi = int(d.min()), int(d.max())
    for code, cmin, cmax in _DIFF:
        if cmin <= dlo and dhi <= cmax:
            if _WIDTH[code] < _WIDTH[raw_code]:
                return [code, d.astype(DIFF_DTYPES[code]).tobytes()]
            break
    return [raw_code, new.astype(WIRE_DTYPES[raw_code], copy=False).tobytes()]


def _comparable(col: np.ndarray) -> np.ndarray:
    """Floats compare by bits (NaN == NaN, -0.0 != 0.0); ints as they are."""
    if col.dtype.kind == "f":
        return col.view(np.uint32 if col.dtype.itemsize == 4 else np.uint64)
    return col


def _check_snapshot(snap: Snapshot, what: str) -> None:
    n = snap.ids.shape[0]
    if snap.ids.ndim != 1 or any(c.shape != (n,) for c in snap.columns.values()):
        raise ValueError(f"{what} snapshot: ids and every column must be 1-D of equal length")
    if len(snap.columns) > MAX_FIELDS:
        raise ValueError(f"{what} snapshot has more than {MAX_FIELDS} fields")


def encode_delta(
    base: Snapshot | None, cur: Snapshot, *, tick: int, base_tick: int | None = None
) -> bytes:
    """Encode the DELTA message turning ``base`` (at ``base_tick``) into ``cur`` (at ``tick``).

    ``base=None`` encodes a full snapshot (``base_tick`` is then ignored and sent as nil);
    with a ``base``, ``base_tick`` (the tick ``base`` is from) is required.
    Both snapshots must have the same field names, order and dtypes, and ids strictly
    ascending (as ``World.snapshot()`` guarantees); violating that is our misuse
    (``ValueError``), not checked entity by entity.
    """
    _check_snapshot(cur, "current")
    names = list(cur.columns)
    count = cur.ids.shape[0]
    if base is None:
        spawned = None
        if count:
            spawned = [_idlist(cur.ids), [_raw_col(cur.columns[k]) for k in names]]
        return msgpack.packb(
            [int(MsgType.DELTA), int(tick), None, count, None, spawned, []], use_bin_type=True
        )
    if base_tick is None:
        raise ValueError("encode_delta with a base snapshot needs base_tick (the base's tick)")
    _check_snapshot(base, "base")
    if list(base.columns) != names or any(
        base.columns[k].dtype != cur.columns[k].dtype for k in names
    ):
        raise ValueError("base and current snapshots have different fields or dtypes")

    bids, cids = base.ids, cur.ids
    if bids.shape == cids.shape and np.array_equal(bids, cids):
        despawned = spawned = None
        cur_rows: np.ndarray | None = None  # common entity i is row i in both
        base_rows: np.ndarray | None = None
    else:
        # Both id arrays are sorted: membership by binary search.
        pos = np.searchsorted(bids, cids)
        in_base = pos < bids.shape[0]
        in_base[in_base] = bids[pos[in_base]] == cids[in_base]
        bpos = np.searchsorted(cids, bids)
        in_cur = bpos < count
        in_cur[in_cur] = cids[bpos[in_cur]] == bids[in_cur]
        despawned = _idlist(bids[~in_cur])
        new_rows = np.flatnonzero(~in_base)
        spawned = None
        if new_rows.shape[0]:
            spawned = [
                _idlist(cids[new_rows]),
                [_raw_col(cur.columns[k][new_rows]) for k in names],
            ]
        cur_rows = np.flatnonzero(in_base)
        base_rows = pos[cur_rows]

    groups = _encode_groups(base, cur, names, cur_rows, base_rows)
    msg = [int(MsgType.DELTA), int(tick), int(base_tick), count, despawned, spawned, groups]
    return msgpack.packb(msg, use_bin_type=True)


def _encode_groups(
    base: Snapshot,
    cur: Snapshot,
    names: list[str],
    cur_rows: np.ndarray | None,
    base_rows: np.ndarray | None,
) -> list[Any]:
    if not names:
        return []
    # Per common entity, which fields changed (loop over fields, never over entities).
    olds: list[np.ndarray] = []
    news: list[np.ndarray] = []
    changed: list[np.ndarray] = []
    for k in names:
        old, new = base.columns[k], cur.columns[k]
        if cur_rows is not None and base_rows is not None:
            old, new = old[base_rows], new[cur_rows]
        olds.append(old)
        news.append(new)
        changed.append(_comparable(old) != _comparable(new))
    anyc = changed[0].copy()
    for c in changed[1:]:
        anyc |= c
    idx = np.flatnonzero(anyc)
    if idx.shape[0] == 0:
        return []
    # Bit mask of changed fields, for the changed entities only.
    masks = np.zeros(idx.shape[0], np.uint32)
    for f, c in enumerate(changed):
        bits = c[idx].astype(np.uint32)
        if f:
            bits <<= np.uint32(f)
        masks |= bits
    lo, hi = int(masks.min()), int(masks.max())
    if lo == hi:
        buckets: list[tuple[int, np.ndarray]] = [(lo, idx)]
    else:
        buckets = _merge_small(_bucket(idx, masks, hi),
                               [news[f].dtype.itemsize for f in range(len(names))])
    out: list[Any] = []
    for m, members in buckets:
        rows = members if cur_rows is None else cur_rows[members]
        cols = [
            _changed_col(news[f][members], olds[f][members])
            for f in range(len(names))
            if m >> f & 1
        ]
        out.append([m, _idlist(rows), cols])
    return out


def _group_overhead(mask: int) -> int:
    """msgpack bytes a GROUP costs beyond its row gaps and values (section 5 framing):
    the group and IDLIST arrays, mask, first row, gap code, bin headers, one [code, bin]
    per column (the first row and mask taken at their usual 1 to 3 bytes)."""
    return 11 + 6 * mask.bit_count()


def _merge_small(buckets: list[tuple[int, np.ndarray]],
                 widths: list[int]) -> list[tuple[int, np.ndarray]]:
    """Merge groups into others where that makes the message smaller.

    A group of ``n`` rows merged into a group ``G`` saves one group's framing but carries
    the fields of ``G`` it lacks for its ``n`` rows (and ``G``'s rows carry the fields it
    lacks), at about ``widths[f]`` bytes a value (the field's wire width, an upper bound:
    an unchanged value travels as a 0 difference or its current raw value). Greedy, from
    the smallest group: a handful of 1-5 row groups (an entity that only turned, one that
    moved along one axis) fold into the big moving group. Fewer groups also means fewer
    steps for every decoder. Python over groups only (at most MAX_GROUPS), never entities.
    """
    if len(buckets) < 2:
        return buckets
    # live groups: [mask, rows, [member arrays]]
    live: list[list[Any]] = [[m, int(rows.shape[0]), [rows]] for m, rows in buckets]
    done: set[int] = set()  # positions in ``live`` that found no profitable partner

    def cost(m: int) -> int:
        return sum(widths[f] for f in range(len(widths)) if m >> f & 1)

    while len(live) > 1:
        cand = [i for i in range(len(live)) if id(live[i]) not in done]
        if not cand:
            break
        a = min(cand, key=lambda i: live[i][1])
        ma, na = live[a][0], live[a][1]
        best, best_gain = -1, 0
        for b, (mb, nb, _) in enumerate(live):
            if b == a:
                continue
            union = ma | mb
            gain = (_group_overhead(ma) + _group_overhead(mb) - _group_overhead(union)
                    - na * cost(union & ~ma) - nb * cost(union & ~mb))
            if gain > best_gain:
                best, best_gain = b, gain
        if best < 0:
            done.add(id(live[a]))
            continue
        grp = live[best]
        grp[0] |= ma
        grp[1] += na
        grp[2].extend(live[a][2])
        done.discard(id(grp))  # it changed: may now merge profitably itself
        del live[a]
    out = []
    for m, _, parts in sorted(live, key=lambda g: g[0]):
        out.append((m, parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))))
    return out


def _bucket(idx: np.ndarray, masks: np.ndarray, hi: int) -> list[tuple[int, np.ndarray]]:
    """Group entity indices by identical mask, groups in ascending mask order.

    Keeps the MAX_GROUPS - 1 most common masks and merges the rest into one group under the
    union of their masks. Members stay ascending. Costs O(groups * n): distinct masks are
    found with a bincount (no sort) when masks are small, which is the common case.
    """
    if hi < _BINCOUNT_LIMIT:
        counts = np.bincount(masks, minlength=hi + 1)
        uniq = np.flatnonzero(counts)
        counts = counts[uniq]
    else:
        uniq, counts = np.unique(masks, return_counts=True)
    if uniq.shape[0] <= MAX_GROUPS:
        return [(int(m), idx[masks == m]) for m in uniq]
    keep = np.sort(uniq[np.argsort(-counts, kind="stable")[: MAX_GROUPS - 1]])
    out = [(int(m), idx[masks == m]) for m in keep]
    merged = uniq[~np.isin(uniq, keep)]
    out.append((int(np.bitwise_or.reduce(merged)), idx[~np.isin(masks, keep)]))
    return out


# ---------------------------------------------------------------------------- decoding
def _is_uint(v: Any, limit: int = _U32) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= limit


def _parse_idlist(obj: Any, what: str) -> np.ndarray:
    if not isinstance(obj, list) or len(obj) < 3:
        raise DeltaError(f"{what}: IDLIST must be an array [first, code, gaps]")
    first, code, gaps = obj[0], obj[1], obj[2]
    if not _is_uint(first):
        raise DeltaError(f"{what}: first value must be a uint32")
    if code not in ("u8", "u16", "u32") or not isinstance(gaps, bytes):
        raise DeltaError(f"{what}: gap code must be u8/u16/u32 with a bin")
    dt = WIRE_DTYPES[code]
    if len(gaps) % dt.itemsize:
        raise DeltaError(f"{what}: {len(gaps)} gap bytes is not a multiple of {code}")
    g = np.frombuffer(gaps, dt)
    out = np.empty(g.shape[0] + 1, np.int64)
    out[0] = first
    if g.shape[0]:
        if not g.all():
            raise DeltaError(f"{what}: values not strictly ascending (zero gap)")
        np.cumsum(g, out=out[1:], dtype=np.int64)
        out[1:] += first
        if out[-1] > _U32:
            raise DeltaError(f"{what}: value {int(out[-1])} exceeds uint32")
    return out


def _parse_col(obj: Any, what: str) -> Column:
    if not isinstance(obj, list) or len(obj) < 2:
        raise DeltaError(f"{what}: COL must be an array [code, bin]")
    code, data = obj[0], obj[1]
    if not isinstance(code, str) or not isinstance(data, bytes):
        raise DeltaError(f"{what}: COL needs a str code and a bin")
    dt = WIRE_DTYPES.get(code) or DIFF_DTYPES.get(code)
    if dt is None:
        raise DeltaError(f"{what}: unknown column code {code!r}")
    if len(data) % dt.itemsize:
        raise DeltaError(f"{what}: {len(data)} bytes is not a multiple of {code}")
    return Column(code, np.frombuffer(data, dt))


def parse_delta(obj: Any) -> Delta:
    """Check the structure of an unpacked DELTA array and decode its bins (no schema needed)."""
    if not isinstance(obj, list) or len(obj) < 7 or obj[0] != MsgType.DELTA:
        raise DeltaError("DELTA must be an array [17, tick, base_tick, count, desp, spawn, groups]")
    _, tick, base_tick, count, desp, spawn, groups = obj[:7]
    if not _is_uint(tick, 2**63 - 1):
        raise DeltaError("DELTA tick must be a uint")
    if base_tick is not None and not _is_uint(base_tick, 2**63 - 1):
        raise DeltaError("DELTA base_tick must be a uint or nil")
    if not _is_uint(count):
        raise DeltaError("DELTA count must be a uint32")
    despawned = np.zeros(0, np.uint32)
    if desp is not None:
        despawned = _parse_idlist(desp, "despawned").astype(np.uint32)
    spawned_ids = np.zeros(0, np.uint32)
    spawned: tuple[Column, ...] = ()
    if spawn is not None:
        if not isinstance(spawn, list) or len(spawn) < 2 or not isinstance(spawn[1], list):
            raise DeltaError("spawned must be [IDLIST, [COL...]]")
        spawned_ids = _parse_idlist(spawn[0], "spawned").astype(np.uint32)
        spawned = tuple(_parse_col(c, f"spawned column {i}") for i, c in enumerate(spawn[1]))
        for i, c in enumerate(spawned):
            if c.diff or c.values.shape[0] != spawned_ids.shape[0]:
                raise DeltaError(
                    f"spawned column {i}: {c.values.shape[0]} raw values expected "
                    f"{spawned_ids.shape[0]} ({c.code})"
                )
    if not isinstance(groups, list):
        raise DeltaError("groups must be an array")
    parsed: list[Group] = []
    for gi, grp in enumerate(groups):
        if not isinstance(grp, list) or len(grp) < 3 or not isinstance(grp[2], list):
            raise DeltaError(f"group {gi}: must be [mask, ROWLIST, [COL...]]")
        mask = grp[0]
        if not _is_uint(mask) or mask == 0:
            raise DeltaError(f"group {gi}: mask must be a non-zero uint32")
        rows = _parse_idlist(grp[1], f"group {gi} rows")
        cols = tuple(_parse_col(c, f"group {gi} column {i}") for i, c in enumerate(grp[2]))
        if len(cols) != mask.bit_count():
            raise DeltaError(f"group {gi}: {len(cols)} columns for {mask.bit_count()} mask bits")
        for i, c in enumerate(cols):
            if c.values.shape[0] != rows.shape[0]:
                raise DeltaError(
                    f"group {gi} column {i}: {c.values.shape[0]} values for {rows.shape[0]} rows"
                )
        parsed.append(Group(mask, rows, cols))
    return Delta(int(tick), base_tick, count, despawned, spawned_ids, spawned, tuple(parsed))


def decode_delta(
    data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE
) -> Delta:
    """Decode a whole DELTA message; :class:`DeltaError` (a :class:`MessageError`) if malformed."""
    try:
        obj = unpack(data, max_size=max_size)
    except DeltaError:
        raise
    except MessageError as exc:
        raise DeltaError(exc.message, exc.code) from None
    return parse_delta(obj)


# ---------------------------------------------------------------------------- replica
# ufunc methods called directly: ndarray.min()/max()/all() and np.cumsum go through Python
# wrappers costing about a microsecond each, and a steady-state delta makes ~15 such calls.
_min = np.minimum.reduce
_max = np.maximum.reduce
_any = np.logical_or.reduce
_all = np.logical_and.reduce
_accumulate = np.add.accumulate
_count_nonzero = np.count_nonzero

_COL_DTYPES = {**WIRE_DTYPES, **DIFF_DTYPES}
_FLOAT_CODES = frozenset(FLOAT_CODES)
#: Value range of each raw integer code (a column whose code fits the field skips the check).
_CODE_RANGE = {c: (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
               for c, dt in {**WIRE_DTYPES, **DIFF_DTYPES}.items() if dt.kind in "iu"}
_MAX_TICK = 2**63 - 1
#: Above this many rows in a delta's groups, fields are updated group by group.
_BATCH_ROWS = 4096

_ITEMSIZE = {c: dt.itemsize for c, dt in _COL_DTYPES.items()}
# row-list gap codes by slot (width = 1 << slot)
_ID_SLOT = {"u8": 0, "u16": 1, "u32": 2}
_ID_BY_SLOT = (WIRE_DTYPES["u8"], WIRE_DTYPES["u16"], WIRE_DTYPES["u32"])
_ONE_BY_SLOT = tuple(np.ones(1, dt).tobytes() for dt in _ID_BY_SLOT)
# memoryview formats of the u16 / u32 gap codes: native only, so they read the wire's
# little-endian gaps right only on a little-endian host (elsewhere numpy sums them)
_MV_FORMAT: tuple[Literal["B"], Literal["H"], Literal["I"]] = ("B", "H", "I")
_LITTLE = sys.byteorder == "little" and memoryview(b"\0\0\0\0").cast("I").itemsize == 4


def _fast_idlist(obj: Any) -> np.ndarray | None:
    """An IDLIST's values (int64, strictly ascending, <= uint32 max), None if malformed."""
    first, code, gaps = obj  # ValueError / TypeError for another shape (callers catch)
    if type(first) is not int or not 0 <= first <= _U32 or type(gaps) is not bytes:
        return None
    slot = _ID_SLOT[code]  # KeyError for another code
    if len(gaps) % (1 << slot):
        return None
    if not gaps:
        return np.array([first], np.int64)
    steps = np.frombuffer(_ONE_BY_SLOT[slot] + gaps, _ID_BY_SLOT[slot]).astype(np.int64)
    if not _all(steps):
        return None  # a zero gap
    steps[0] = first
    out: np.ndarray = _accumulate(steps)
    return out if out[-1] <= _U32 else None


def _raw_values(field: WireField, b: tuple[int, int] | None, code: str, vals: np.ndarray,
                what: str) -> np.ndarray:
    """Raw column values checked against the field (code and range; SPEC.md section 5)."""
    if b is None:
        if code != field.dtype:
            raise DeltaError(f"{what}: field {field.name!r} is {field.dtype}, got {code}")
        return vals
    if code in _FLOAT_CODES:
        raise DeltaError(f"{what}: integer field {field.name!r} got a {code} column")
    if code in DIFF_DTYPES:
        raise DeltaError(f"{what}: difference column where raw values are required")
    lo, hi = _CODE_RANGE[code]
    # only the bound the code's range can cross is checked (u8 values on an i8 field: max)
    if vals.shape[0] and (
        (lo < b[0] and _min(vals) < b[0]) or (hi > b[1] and _max(vals) > b[1])
    ):
        raise DeltaError(f"{what}: values out of range for {field.name!r} ({field.dtype})")
    return vals


class Replica:
    """A client's copy of the entity state, kept in sync by applying deltas.

    ``tick`` is None until a full snapshot arrives. ``ids`` (uint32, ascending) and
    ``columns`` (name -> wire-value array, same order) are replaced, never mutated in place,
    by :meth:`apply` (so arrays a caller holds stay a consistent older state).

    Applying is batched over field groups: every group's row list is decoded by one
    cumsum, and each field is updated with one gather / scatter over the rows of
    all groups touching it (per distinct column code), so a delta costs a fixed number of
    numpy calls per *field*, not per group and column. Validation is complete (SPEC.md
    section 5) and happens before anything is written: new column arrays are built first
    and swapped in at the end.
    """

    def __init__(self, schema: WireSchema) -> None:
        self.schema = schema
        self.tick: int | None = None
        self.ids: np.ndarray = np.zeros(0, np.uint32)
        self.columns: dict[str, np.ndarray] = {
            f.name: np.zeros(0, f.np_dtype) for f in schema.fields
        }
        self._fields: tuple[WireField, ...] = tuple(schema.fields)
        # per field: (lo, hi) of its integer dtype, or None for a raw float field
        self._bounds: tuple[tuple[int, int] | None, ...] = tuple(
            None if f.is_float else _CODE_RANGE[f.dtype] for f in schema.fields
        )
        self._bits_of: dict[int, tuple[int, ...]] = {}  # group mask -> its field indices

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def values(self, name: str) -> np.ndarray:
        """The field's real values: ``wire * quant`` (float64) if quantized, else the column."""
        f = self.schema[name]
        col = self.columns[name]
        return col * f.quant if f.quant is not None else col

    def snapshot(self) -> Snapshot:
        """The current state as a :class:`Snapshot` (shares the arrays)."""
        return Snapshot(self.ids, dict(self.columns))

    def row_of(self, ids: Any) -> np.ndarray:
        """Row index (intp) of each id, -1 when absent."""
        a = np.asarray(ids, np.int64)
        pos = np.searchsorted(self.ids, a)
        ok = pos < self.ids.shape[0]
        ok[ok] = self.ids[pos[ok]] == a[ok]
        return np.where(ok, pos, -1).astype(np.intp)

    def apply(
        self, delta: Delta | bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE
    ) -> bool:
        """Apply one delta (SPEC.md section 5 steps) atomically; True if it was a full snapshot.

        Raises :class:`DeltaError` (state unchanged) if it is malformed or does not apply:
        wrong base tick, unknown despawned id, spawned id already present, wrong column
        count/codes, rows out of range, values out of a field's range, count mismatch.
        """
        if isinstance(delta, Delta):
            return self._apply_parsed(delta)
        try:
            obj = unpack(delta, max_size=max_size)
        except DeltaError:
            raise
        except MessageError as exc:
            raise DeltaError(exc.message, exc.code) from None
        return self.apply_unpacked(obj)

    def apply_unpacked(self, obj: Any) -> bool:
        """:meth:`apply` for an already unpacked DELTA message (the msgpack array).

        The steady-state shape (a base tick, field groups, no spawn / despawn) is validated
        and applied straight from the msgpack objects; anything else goes through
        :func:`parse_delta`. Same contract as :meth:`apply`.
        """
        if (
            type(obj) is list and len(obj) == 7 and obj[0] == 17 and obj[2] is not None
            and type(obj[6]) is list and self.tick is not None and self._apply_steady(obj)
        ):
            return False
        return self._apply_parsed(parse_delta(obj))

    # ------------------------------------------------------------------ internals
    def _apply_steady(self, obj: list[Any]) -> bool:
        """An incremental delta straight from the msgpack objects; True once applied.

        Handles field groups and, with :meth:`_churn`, despawns and spawns (entities dying
        and appearing every few ticks is the norm in a game). False (nothing changed) for
        anything unusual or wrong in its structure: the general path (:func:`parse_delta` +
        :meth:`_apply_parsed`) then applies it or raises the precise :class:`DeltaError`, so
        this path checks cheaply and never has to explain. Value errors (ranges, codes vs
        fields) raise :class:`DeltaError` before any write.
        """
        _, tick, base, count, desp, spawn, groups = obj
        if (
            type(tick) is not int or not 0 <= tick <= _MAX_TICK or type(base) is not int
            or base != self.tick or type(count) is not int
        ):
            return False
        try:
            if desp is None and spawn is None:
                if count != self.ids.shape[0]:
                    return False
                if not groups:
                    self.tick = tick
                    return True
                new_cols = self._steady_groups(groups, count)
                if new_cols is None:
                    return False
                # commit (atomic: nothing above touched the replica)
                merged = dict(self.columns)
                merged.update(new_cols)
                self.columns = merged
                self.tick = tick
                return True
            churned = self._churn(desp, spawn, count)
            if churned is None:
                return False
            ids, cols = churned
            if groups:
                written = self._steady_groups(groups, count, cols)
                if written is None:
                    return False
                cols.update(written)
        except (TypeError, ValueError, KeyError, IndexError):
            return False  # a malformed element (wrong shape / type / code): general path
        self.ids, self.columns, self.tick = ids, cols, tick
        return True

    def _churn(self, desp: Any, spawn: Any, count: int
               ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """Steps 2-4 (despawn, spawn, count) into new arrays; None when anything is off.

        One gather per field builds the new state: the kept rows and the spawned values,
        merged in id order, are indices into ``concatenate((old column, spawned values))``.
        A despawn of an unknown id, a spawn of a present one, a count mismatch or any
        malformed element returns None (the general path names the problem); spawned values
        out of a field's range raise :class:`DeltaError`. The replica is not touched.
        """
        ids = self.ids
        n = ids.shape[0]
        src: np.ndarray | None = None  # output row -> row of the old state (before spawns)
        if desp is not None:
            gone = _fast_idlist(desp)
            if gone is None or gone.shape[0] > n:
                return None
            pos = np.searchsorted(ids, gone)
            if pos[-1] >= n or not _all(ids[pos] == gone):
                return None  # an unknown id
            keep = np.ones(n, np.bool_)
            keep[pos] = False
            src = np.flatnonzero(keep)
        rest = ids if src is None else ids[src]
        if spawn is None:
            if count != rest.shape[0] or src is None:
                return None
            return rest, {name: col[src] for name, col in self.columns.items()}
        born, spawned = spawn  # ValueError (caught by the caller) unless [IDLIST, [COL...]]
        new_ids = _fast_idlist(born)
        fields = self._fields
        if new_ids is None or type(spawned) is not list or len(spawned) != len(fields):
            return None
        ns = new_ids.shape[0]
        m = rest.shape[0]
        if count != m + ns:
            return None
        at = np.searchsorted(rest, new_ids)
        if m and _any(rest[np.minimum(at, m - 1)] == new_ids):
            return None  # a spawned id already present
        # output rows of the spawned entities (``at`` counts the kept rows before each one);
        # every other output row takes the next kept row, in order
        dst = at + np.arange(ns)
        take = np.empty(m + ns, np.intp)
        others = np.ones(m + ns, np.bool_)
        others[dst] = False
        take[others] = np.arange(n) if src is None else src
        take[dst] = np.arange(n, n + ns)
        cols: dict[str, np.ndarray] = {}
        for field, b, (code, data) in zip(fields, self._bounds, spawned):
            if type(code) is not str or type(data) is not bytes:
                return None
            dt = WIRE_DTYPES.get(code)
            if dt is None or len(data) != ns * dt.itemsize:
                return None
            vals = _raw_values(field, b, code, np.frombuffer(data, dt), "spawned")
            old = self.columns[field.name]
            cols[field.name] = np.concatenate((old, vals), dtype=old.dtype,
                                              casting="unsafe")[take]
        return np.concatenate((ids, new_ids), dtype=np.uint32, casting="unsafe")[take], cols

    def _steady_groups(self, groups: list[Any], count: int,
                       fresh_cols: dict[str, np.ndarray] | None = None
                       ) -> dict[str, np.ndarray] | None:
        """Validate and write the groups of a steady-state delta into new column arrays
        (returned; the replica is untouched), or into ``fresh_cols`` (new arrays of the
        state after despawns and spawns, written in place); None for a malformed structure."""
        nf = len(self._fields)
        bits_of = self._bits_of
        itemsize = _ITEMSIZE
        # pass 1 (Python, per group): structure; collect row lists and per-field columns.
        # Row lists are laid out by gap code (u8 groups, then u16, then u32: usually one or
        # two codes), so one frombuffer per code yields every group's gaps.
        bufs: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
        heads: tuple[list[int], list[int], list[int]] = ([], [], [])  # firsts per code
        lasts: tuple[list[int], list[int], list[int]] = ([], [], [])  # last rows per code
        sizes: tuple[list[int], list[int], list[int]] = ([], [], [])  # row counts per code
        where: list[tuple[int, int]] = []  # group -> (code slot, index in that slot)
        per_field: list[list[tuple[int, str, Any]] | None] = [None] * nf
        multi = False
        for gi, (mask, (first, code, gaps), cols) in enumerate(groups):
            if type(mask) is not int:
                return None
            bits = bits_of.get(mask)
            if bits is None:
                if not 0 < mask <= _U32 or mask >> nf:
                    return None
                bits = tuple(f for f in range(nf) if mask >> f & 1)
                if len(bits_of) < 1024:
                    bits_of[mask] = bits
            if type(first) is not int or not 0 <= first <= _U32 or type(gaps) is not bytes:
                return None
            slot = _ID_SLOT[code]
            lg = len(gaps)
            if lg % (1 << slot) or type(cols) is not list or len(cols) != len(bits):
                return None
            n = 1 + (lg >> slot)
            lst_b = bufs[slot]
            where.append((slot, len(lst_b)))
            lst_b.append(gaps)
            heads[slot].append(first)
            # the group's last row = first + sum of its gaps (Python sums the few bytes faster
            # than numpy could; the gaps are little-endian, the memoryview native)
            lasts[slot].append(first + (
                sum(gaps) if not slot else sum(memoryview(gaps).cast(_MV_FORMAT[slot]))
                if _LITTLE else int(np.frombuffer(gaps, _ID_BY_SLOT[slot]).sum(dtype=np.int64))))
            sizes[slot].append(n)
            for f, (ccode, cdata) in zip(bits, cols):
                if type(cdata) is not bytes or len(cdata) != n * itemsize[ccode]:
                    return None
                lst = per_field[f]
                if lst is None:
                    per_field[f] = [(gi, ccode, cdata)]
                else:
                    lst.append((gi, ccode, cdata))
                    multi = True
        # pass 2 (numpy): every group's rows with one cumsum. steps holds, per group,
        # [step to its first row, gap, gap, ...] (a placeholder gap of 1 where that step goes,
        # so the zero-gap check sees only real gaps); the step to group i's first row is
        # first[i] - last[i - 1] (the previous group's last row), so one cumsum gives rows.
        frombuffer = np.frombuffer
        parts = [frombuffer(_ONE_BY_SLOT[s] + _ONE_BY_SLOT[s].join(bufs[s]), _ID_BY_SLOT[s])
                 for s in (0, 1, 2) if bufs[s]]
        steps = parts[0].astype(np.int64) if len(parts) == 1 else np.concatenate(
            parts, dtype=np.int64)
        firsts = heads[0] + heads[1] + heads[2]
        lens = sizes[0] + sizes[1] + sizes[2]
        ng = len(lens)
        total = steps.shape[0]
        big = total > _BATCH_ROWS  # big groups: written one by one, no concatenation
        if big and total > ng and not _all(steps):
            return None  # a zero gap (checked on the gaps, before the firsts go in)
        if ng == 1:
            steps[0] = firsts[0]
            rows = _accumulate(steps)
            grows = [rows]
        else:
            last_l = lasts[0] + lasts[1] + lasts[2]
            starts_l = [0] * ng
            acc = 0
            prev = 0
            for i, n in enumerate(lens):
                starts_l[i] = acc
                steps[acc] = firsts[i] - prev
                prev = last_l[i]
                acc += n
            rows = _accumulate(steps)
            base = (0, len(sizes[0]), len(sizes[0]) + len(sizes[1]))
            grows = []
            for slot, k in where:
                i = base[slot] + k
                s = starts_l[i]
                grows.append(rows[s:s + lens[i]])
        if big:
            if _max(rows) >= count:
                return None
            return self._write_fields(per_field, grows, True, fresh=fresh_cols is not None,
                                      raw=True, cols=fresh_cols)
        # Small groups: one histogram checks the rows. Longer than ``count`` means a row >=
        # count; a row seen twice is a zero gap (malformed) or groups overlapping (legal).
        seen = np.bincount(rows, minlength=count)
        if seen.shape[0] > count:
            return None
        one_by_one = False
        if _count_nonzero(seen) != total:  # some row seen twice
            for r in grows:
                if r.shape[0] > 1 and not _all(r[1:] != r[:-1]):
                    return None  # a zero gap: rows not strictly ascending
            one_by_one = True  # overlapping groups apply in order (differences add up)
        # ``rows`` holds the groups laid out by gap code; in group order too when the codes
        # never go down (the usual case), so a field every group touches reuses it whole
        in_order = True
        prev_slot = 0
        for slot, _ in where:
            if slot < prev_slot:
                in_order = False
                break
            prev_slot = slot
        return self._write_fields(per_field, grows, multi and one_by_one,
                                  fresh=fresh_cols is not None, raw=True, cols=fresh_cols,
                                  all_rows=rows if in_order else None)

    def _write_fields(self, per_field: list[list[tuple[int, str, Any]] | None],
                      grows: list[np.ndarray], one_by_one: bool, *, fresh: bool, raw: bool,
                      cols: dict[str, np.ndarray] | None = None,
                      all_rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Step 5 for every field touched: new arrays (copies unless ``fresh``) with the
        groups' values written (``raw``: values are the COL bins, else numpy arrays); per
        field one gather / scatter per distinct code, or, ``one_by_one`` (groups overlap, or
        are big), each group in order (differences then add up). ``all_rows``, if given, is
        every group's rows concatenated in group order. Raises DeltaError."""
        src = self.columns if cols is None else cols
        fields, bounds = self._fields, self._bounds
        frombuffer = np.frombuffer
        out: dict[str, np.ndarray] = {}
        # concatenated rows per tuple of groups: x, y and angle of the same groups share one
        joined: dict[tuple[int, ...], np.ndarray] = {}
        if all_rows is not None:
            joined[tuple(range(len(grows)))] = all_rows
        for f, entries in enumerate(per_field):
            if entries is None:
                continue
            field = fields[f]
            name = field.name
            old = src[name]
            col = old if fresh else old.copy()
            b = bounds[f]
            # the buckets to write, in order: (code, rows, values)
            buckets: list[tuple[str, np.ndarray, Any]]
            if len(entries) == 1:
                gi, code, vals = entries[0]
                buckets = [(code, grows[gi], vals)]
            elif one_by_one:
                buckets = []
                for gi, code, vals in entries:
                    buckets.append((code, grows[gi], vals))
            else:
                code0 = entries[0][1]
                rparts: list[np.ndarray] = []
                vparts: list[Any] = []
                gis: list[int] = []
                for gi, code, vals in entries:
                    if code != code0:
                        break
                    rparts.append(grows[gi])
                    vparts.append(vals)
                    gis.append(gi)
                if len(rparts) == len(entries):  # one code (the usual case)
                    key = tuple(gis)
                    idx = joined.get(key)
                    if idx is None:
                        idx = joined[key] = np.concatenate(rparts)
                    buckets = [(code0, idx,
                                b"".join(vparts) if raw else np.concatenate(vparts))]
                else:
                    by_code: dict[str, tuple[list[np.ndarray], list[Any]]] = {}
                    for gi, code, vals in entries:
                        parts = by_code.get(code)
                        if parts is None:
                            by_code[code] = ([grows[gi]], [vals])
                        else:
                            parts[0].append(grows[gi])
                            parts[1].append(vals)
                    buckets = []
                    for code, (rs, vs) in by_code.items():
                        buckets.append((
                            code, rs[0] if len(rs) == 1 else np.concatenate(rs),
                            vs[0] if len(vs) == 1 else b"".join(vs) if raw else np.concatenate(vs)))
            if b is None:  # raw float field: codes must match, any value goes
                for code, idx, vals in buckets:
                    if code != field.dtype:
                        raise DeltaError(f"field {name!r} is {field.dtype}, got {code}")
                    col[idx] = frombuffer(vals, _COL_DTYPES[code]) if raw else vals
                out[name] = col
                continue
            # integer field: values checked against its range (SPEC.md section 5)
            for code, idx, vals in buckets:
                arr: np.ndarray = frombuffer(vals, _COL_DTYPES[code]) if raw else vals
                if code in DIFF_DTYPES:
                    # range check with one reduction: new - lo viewed as unsigned is <= span
                    # exactly when lo <= new <= hi (a negative difference wraps to huge)
                    lo = b[0]
                    if lo:
                        new = np.add(col[idx], arr, dtype=np.int64)
                        bad = new.shape[0] and _max((new - lo).view(np.uint64)) > b[1] - lo
                    else:  # unsigned field: the sum modulo 2**64 is that unsigned view
                        new = np.add(col[idx], arr, dtype=np.uint64, casting="unsafe")
                        bad = new.shape[0] and _max(new) > b[1]
                    if bad:
                        raise DeltaError(f"field {name!r}: value out of range ({field.dtype})")
                    # a cast, then a same-dtype scatter: about half a casting scatter's cost
                    col[idx] = new.astype(col.dtype)
                elif code == field.dtype:  # the field's own code: every value fits
                    col[idx] = arr
                else:
                    arr = _raw_values(field, b, code, arr, "group")
                    col[idx] = arr.astype(col.dtype)
            out[name] = col
        return out

    def _apply_parsed(self, d: Delta) -> bool:
        """The general path: any delta that :func:`parse_delta` accepted."""
        fields, bounds = self._fields, self._bounds
        nf = len(fields)
        # 1. base
        if d.base_tick is None:
            ids = np.zeros(0, np.uint32)
            cols = {f.name: np.zeros(0, f.np_dtype) for f in fields}
        else:
            if self.tick is None or d.base_tick != self.tick:
                raise DeltaError(
                    f"delta from tick {d.base_tick} does not apply to replica at tick {self.tick}"
                )
            ids, cols = self.ids, dict(self.columns)
        # 2. despawn
        if d.despawned.shape[0]:
            pos = self._find(ids, d.despawned)
            if (pos < 0).any():
                bad = int(d.despawned[np.argmax(pos < 0)])
                raise DeltaError(f"despawn of unknown entity id {bad}")
            keep = np.ones(ids.shape[0], np.bool_)
            keep[pos] = False
            ids = ids[keep]
            cols = {k: c[keep] for k, c in cols.items()}
        # 3. spawn
        ns = d.spawned_ids.shape[0]
        if ns:
            if len(d.spawned) != nf:
                raise DeltaError(f"spawned has {len(d.spawned)} columns, schema has {nf} fields")
            if (self._find(ids, d.spawned_ids) >= 0).any():
                raise DeltaError("spawned id already present")
            at = np.searchsorted(ids, d.spawned_ids)
            new_vals = [
                _raw_values(f, b, c.code, c.values, "spawned")
                for f, b, c in zip(fields, bounds, d.spawned, strict=True)
            ]
            ids = np.insert(ids, at, d.spawned_ids)
            cols = {f.name: np.insert(cols[f.name], at, v.astype(f.np_dtype, copy=False))
                    for f, v in zip(fields, new_vals)}
        # 4. count
        if ids.shape[0] != d.count:
            raise DeltaError(f"delta says {d.count} entities, applying it gives {ids.shape[0]}")
        # 5. groups, batched per field (on copies while a column is still shared with self)
        if d.groups:
            per_field: list[list[tuple[int, str, Any]] | None] = [None] * nf
            grows: list[np.ndarray] = []
            multi = False
            for gi, g in enumerate(d.groups):
                if g.mask >> nf:
                    raise DeltaError(f"group {gi}: mask {g.mask:#x} names fields beyond {nf}")
                if g.rows.shape[0] and g.rows[-1] >= d.count:
                    raise DeltaError(f"group {gi}: row {int(g.rows[-1])} >= count {d.count}")
                grows.append(g.rows)
                bits = [f for f in range(nf) if g.mask >> f & 1]
                for f, col in zip(bits, g.columns, strict=True):
                    lst = per_field[f]
                    if lst is None:
                        per_field[f] = [(gi, col.code, col.values)]
                    else:
                        lst.append((gi, col.code, col.values))
                        multi = True
            total = sum(r.shape[0] for r in grows)
            overlap = multi and (total > _BATCH_ROWS or _max(
                np.bincount(np.concatenate(grows), minlength=d.count)) > 1)
            fresh = bool(d.full or d.despawned.shape[0] or ns)
            cols.update(self._write_fields(per_field, grows, overlap, fresh=fresh, raw=False,
                                           cols=cols))
        # 6. commit
        self.ids, self.columns, self.tick = ids, cols, d.tick
        return d.full

    @staticmethod
    def _find(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(ids, wanted)
        ok = pos < ids.shape[0]
        ok[ok] = ids[pos[ok]] == wanted[ok]
        return np.where(ok, pos, -1)
