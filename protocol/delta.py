"""Columnar delta codec: ``encode_delta(base, cur)``, ``decode_delta(bytes)``, ``parse_delta``.

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

The client side, :class:`protocol.replica.Replica`, applies deltas to a copy of the state
(the only decoder: the Python client and bots use it); :func:`parse_delta` here is its
general, precise path (and what :mod:`protocol.messages` decodes a DELTA with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .codes import DEFAULT_MAX_SIZE, DeltaError, MessageError, MsgType, unpack
from .wireschema import (
    DIFF_DTYPES,
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
    "Snapshot",
    "WireField",
    "WireSchema",
    "decode_delta",
    "encode_delta",
    "parse_delta",
    "unpack_delta",
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
    # cost(m) = sum of the widths of m's fields, as one popcount per distinct width (1-4)
    by_width: dict[int, int] = {}
    for f, w in enumerate(widths):
        by_width[w] = by_width.get(w, 0) | (1 << f)
    width_bits = list(by_width.items())
    masks = [m for m, _ in buckets]
    sizes = [int(rows.shape[0]) for _, rows in buckets]
    parts: list[list[np.ndarray]] = [[rows] for _, rows in buckets]
    alive = list(range(len(buckets)))
    settled: set[int] = set()  # groups that found no profitable partner (as they are now)
    while len(alive) > 1:
        a = -1
        for i in alive:  # the smallest unsettled group
            if i not in settled and (a < 0 or sizes[i] < sizes[a]):
                a = i
        if a < 0:
            break
        ma, na = masks[a], sizes[a]
        best, best_gain = -1, 0
        for b in alive:
            if b == a:
                continue
            mb = masks[b]
            # A GROUP's framing is about 11 + 6k msgpack bytes for k columns (group and IDLIST
            # arrays, mask, first row, gap code, bin headers; a [code, bin] per column), so
            # merging saves 11 + 6 x (columns the two share); it costs the values a's rows
            # carry for b's other fields, and b's rows for a's
            gain = 11 + 6 * (ma & mb).bit_count()
            only_b, only_a, nb = mb & ~ma, ma & ~mb, sizes[b]
            for w, bits in width_bits:
                gain -= w * (na * (only_b & bits).bit_count() + nb * (only_a & bits).bit_count())
            if gain > best_gain:
                best, best_gain = b, gain
        if best < 0:
            settled.add(a)
            continue
        masks[best] |= ma
        sizes[best] += na
        parts[best].extend(parts[a])
        settled.discard(best)  # it changed: it may now merge profitably itself
        alive.remove(a)
    out = []
    for i in sorted(alive, key=masks.__getitem__):
        p = parts[i]
        out.append((masks[i], p[0] if len(p) == 1 else np.sort(np.concatenate(p))))
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


def unpack_delta(data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE
                 ) -> Any:
    """The msgpack value of a DELTA message, bounded; a :class:`DeltaError` if it is not one."""
    try:
        return unpack(data, max_size=max_size)
    except DeltaError:
        raise
    except MessageError as exc:
        raise DeltaError(exc.message, exc.code) from None


def decode_delta(
    data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE
) -> Delta:
    """Decode a whole DELTA message; :class:`DeltaError` (a :class:`MessageError`) if malformed."""
    return parse_delta(unpack_delta(data, max_size=max_size))
