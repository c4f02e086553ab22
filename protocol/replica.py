"""The client's copy of the entity state: :class:`Replica`, kept in sync by applying deltas.

:class:`Replica` is the only decoder (the Python client, the bots and the server's tests use
it). It applies deltas atomically (validate and build the new state first, then swap),
raising :class:`~protocol.codes.DeltaError` and keeping its state on any problem. Two paths:

* the fast path, straight from the msgpack objects, for every incremental delta (field
  groups, despawns, spawns): batched over field groups (one cumsum decodes every group's row
  list; each field gets one gather / scatter per column code), so its cost is a fixed number
  of numpy calls per field, not per group and column; despawns and spawns are one gather per
  field. It returns "not mine" for anything unusual, never explaining;
* the general path, :func:`protocol.delta.parse_delta` then :meth:`Replica._apply_parsed`:
  full snapshots, odd shapes, and the precise error for a delta that does not apply.

The wire layout is SPEC.md section 5; the encoder is :func:`protocol.delta.encode_delta`.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

from .codes import DEFAULT_MAX_SIZE, DeltaError
from .delta import Delta, parse_delta, unpack_delta
from .wireschema import (
    DIFF_DTYPES,
    FLOAT_CODES,
    WIRE_DTYPES,
    Snapshot,
    WireField,
    WireSchema,
)

__all__ = ["Replica"]

_U32 = 0xFFFFFFFF
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
        return self.apply_unpacked(unpack_delta(delta, max_size=max_size))

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
            pos = ids.searchsorted(gone)  # (methods: no Python wrapper, ~1 us each less)
            if pos[-1] >= n or not _all(ids[pos] == gone):
                return None  # an unknown id
            keep = np.empty(n, np.bool_)
            keep.fill(True)
            keep[pos] = False
            src = keep.nonzero()[0]
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
        at = rest.searchsorted(new_ids)
        if m and _any(rest[np.minimum(at, m - 1)] == new_ids):
            return None  # a spawned id already present
        # output rows of the spawned entities (``at`` counts the kept rows before each one);
        # every other output row takes the next kept row, in order
        dst = at + np.arange(ns)
        take = np.empty(m + ns, np.intp)
        others = np.empty(m + ns, np.bool_)
        others.fill(True)
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
