"""``protocol.replica.Replica`` (batched over groups) == a simple reference, bit for bit.

The reference (:class:`RefReplica`) is the original straightforward implementation of SPEC.md
section 5: per group, per column, ``np.iinfo`` range checks, no batching. It lives here, not
in the package. Random delta chains (steady state, churn, mixed codes, overlapping groups)
and malformed deltas must give the same replica state / the same accept-or-reject verdict.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import protocol.delta as delta_mod
import protocol.replica as replica_mod
from protocol.codes import DeltaError
from protocol.delta import (
    Column,
    Delta,
    Snapshot,
    WireField,
    WireSchema,
    decode_delta,
    encode_delta,
)
from protocol.replica import Replica


def _field_values(field: WireField, col: Column, what: str) -> np.ndarray:
    """A raw column converted to the field's wire dtype, range-checked."""
    if field.is_float:
        if col.code != field.dtype:
            raise DeltaError(f"{what}: field {field.name!r} is {field.dtype}, got {col.code}")
        return col.values
    if col.code in ("f32", "f64"):
        raise DeltaError(f"{what}: integer field {field.name!r} got a {col.code} column")
    _check_range(field, col.values, what)
    return col.values.astype(field.np_dtype)


def _check_range(field: WireField, values: np.ndarray, what: str) -> None:
    if values.shape[0] == 0:
        return
    info = np.iinfo(field.np_dtype)
    lo, hi = int(values.min()), int(values.max())
    if lo < info.min or hi > info.max:
        raise DeltaError(
            f"{what}: values {lo}..{hi} out of range for {field.name!r} ({field.dtype})"
        )


class RefReplica:
    """The pre-batching Replica (per group, per column), test-only.

    ``tick`` is None until a full snapshot arrives. ``ids`` (uint32, ascending) and
    ``columns`` (name -> wire-value array, same order) are replaced, never mutated in place,
    by :meth:`apply` (so arrays a caller holds stay a consistent older state).
    """

    def __init__(self, schema: WireSchema) -> None:
        self.schema = schema
        self.tick: int | None = None
        self.ids: np.ndarray = np.zeros(0, np.uint32)
        self.columns: dict[str, np.ndarray] = {
            f.name: np.zeros(0, f.np_dtype) for f in schema.fields
        }

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def values(self, name: str) -> np.ndarray:
        """The field's real values: ``wire * quant`` (float64) if quantized, else the column."""
        f = self.schema[name]
        col = self.columns[name]
        return col.astype(np.float64) * f.quant if f.quant is not None else col

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

    def apply(self, delta: Delta | bytes | bytearray | memoryview) -> None:
        """Apply one delta (SPEC.md section 5 steps); atomic.

        Raises :class:`DeltaError` (state unchanged) if it does not apply: wrong base tick,
        unknown despawned id, spawned id already present, wrong column count/codes, rows out
        of range, values out of a field's range, count mismatch.
        """
        d = delta if isinstance(delta, Delta) else decode_delta(delta)
        fields = self.schema.fields
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
                _field_values(f, c, "spawned") for f, c in zip(fields, d.spawned, strict=True)
            ]
            ids = np.insert(ids, at, d.spawned_ids)
            cols = {f.name: np.insert(cols[f.name], at, v) for f, v in zip(fields, new_vals)}
        # 4. count
        if ids.shape[0] != d.count:
            raise DeltaError(f"delta says {d.count} entities, applying it gives {ids.shape[0]}")
        # 5. groups (on copies: a column still shared with self is copied on first write)
        copied: set[str] = (
            set(cols)
            if cols is not self.columns and (d.full or d.despawned.shape[0] or ns)
            else set()
        )
        for gi, g in enumerate(d.groups):
            if g.mask >> nf:
                raise DeltaError(f"group {gi}: mask {g.mask:#x} names fields beyond {nf}")
            if g.rows.shape[0] and g.rows[-1] >= d.count:
                raise DeltaError(f"group {gi}: row {int(g.rows[-1])} >= count {d.count}")
            bits = [f for f in range(nf) if g.mask >> f & 1]
            for f, col in zip(bits, g.columns, strict=True):
                field = fields[f]
                what = f"group {gi} field {field.name!r}"
                if col.diff:
                    if field.is_float:
                        raise DeltaError(f"{what}: difference column on a float field")
                    new = cols[field.name][g.rows].astype(np.int64) + col.values
                    _check_range(field, new, what)
                    vals = new.astype(field.np_dtype)
                else:
                    vals = _field_values(field, col, what)
                if field.name not in copied:
                    cols[field.name] = cols[field.name].copy()
                    copied.add(field.name)
                cols[field.name][g.rows] = vals
        # 6. commit
        self.ids, self.columns, self.tick = ids, cols, d.tick

    @staticmethod
    def _find(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(ids, wanted)
        ok = pos < ids.shape[0]
        ok[ok] = ids[pos[ok]] == wanted[ok]
        return np.where(ok, pos, -1)


# ------------------------------------------------------------------------------ tests
SCHEMA = WireSchema([
    WireField("x", "i32", 0.01), WireField("y", "u16", 0.01), WireField("a", "i8", 0.05),
    WireField("kind", "u8"), WireField("hp", "u8"), WireField("owner", "u32"),
    WireField("f", "f32"), WireField("g", "f64"),
])


def _columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "x": rng.integers(-100000, 100000, n).astype(np.int32),
        "y": rng.integers(0, 65535, n).astype(np.uint16),
        "a": rng.integers(-128, 127, n).astype(np.int8),
        "kind": rng.integers(0, 4, n).astype(np.uint8),
        "hp": rng.integers(0, 255, n).astype(np.uint8),
        "owner": rng.integers(0, 2**32 - 1, n, dtype=np.uint64).astype(np.uint32),
        "f": rng.standard_normal(n).astype(np.float32),
        "g": rng.standard_normal(n),
    }


def _evolve(rng: np.random.Generator, snap: Snapshot, churn: bool) -> Snapshot:
    ids = snap.ids
    cols = {k: v.copy() for k, v in snap.columns.items()}
    n = ids.shape[0]
    fresh = _columns(rng, n)
    for name, frac in (("x", 0.3), ("y", 0.2), ("a", 0.2), ("kind", 0.05), ("hp", 0.1),
                       ("owner", 0.02), ("f", 0.1), ("g", 0.05)):
        sel = rng.random(n) < frac
        if name == "x":  # small moves: difference columns
            cols[name][sel] = (cols[name][sel].astype(np.int64)
                               + rng.integers(-300, 300, int(sel.sum()))).astype(np.int32)
        else:
            cols[name][sel] = fresh[name][sel]
    if churn:
        keep = rng.random(n) > 0.05
        ids, cols = ids[keep], {k: v[keep] for k, v in cols.items()}
        new = np.setdiff1d(rng.integers(1, 2**20, 6).astype(np.uint32), snap.ids)
        add = _columns(rng, new.shape[0])
        order = np.argsort(np.concatenate([ids, new]), kind="stable")
        ids = np.concatenate([ids, new])[order]
        cols = {k: np.concatenate([cols[k], add[k]])[order] for k in cols}
    return Snapshot(ids, cols)


def _same(a: Replica, b: RefReplica) -> None:
    assert a.tick == b.tick
    assert a.ids.dtype == b.ids.dtype and a.ids.tobytes() == b.ids.tobytes()
    for f in SCHEMA.fields:
        x, y = a.columns[f.name], b.columns[f.name]
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f.name


@pytest.fixture(params=["batched", "one-by-one"])
def batch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test twice: as is, and with every delta counted as "big" (groups written one by
    one, the path taken above ``_BATCH_ROWS`` rows)."""
    if request.param == "one-by-one":
        monkeypatch.setattr(replica_mod, "_BATCH_ROWS", 0)
    return str(request.param)


@pytest.mark.parametrize("seed", range(8))
def test_batched_replica_matches_reference(seed: int, batch_mode: str) -> None:
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(1, 2**20, 400).astype(np.uint32))
    snap = Snapshot(ids, _columns(rng, ids.shape[0]))
    rep, ref = Replica(SCHEMA), RefReplica(SCHEMA)
    msg = encode_delta(None, snap, tick=1)
    assert rep.apply(msg) is True
    ref.apply(msg)
    _same(rep, ref)
    for tick in range(2, 30):
        cur = _evolve(rng, snap, churn=tick % 4 == 0)
        msg = encode_delta(snap, cur, tick=tick, base_tick=tick - 1)
        # bytes (steady-state fast path when possible) and a parsed Delta (general path)
        assert rep.apply(msg) is False
        ref.apply(msg)
        _same(rep, ref)
        other = Replica(SCHEMA)
        other.apply(encode_delta(None, snap, tick=tick - 1))
        other.apply(decode_delta(msg))
        _same(other, ref)
        snap = cur


def _groups_msg(groups: list[Any], *, tick: int = 2, base: int = 1, count: int = 4) -> bytes:
    return msgpack.packb([17, tick, base, count, None, None, groups])


SMALL = WireSchema([WireField("x", "i16"), WireField("k", "u8"), WireField("f", "f32")])
_D8 = np.array([1, 1], np.int8).tobytes()
HANDMADE = [
    _groups_msg([[1, [0, "u8", b"\x01"], [["d8", _D8]]]], base=5),            # wrong base
    _groups_msg([[1, [0, "u8", b"\x01"], [["d8", _D8]]]], count=5),           # count
    _groups_msg([[1, [3, "u8", b"\x01"], [["d8", _D8]]]]),                    # row 4 >= 4
    _groups_msg([[1, [0, "u8", b"\x00"], [["d8", _D8]]]]),                    # zero gap
    _groups_msg([[1, [0, "u8", b"\x01"], [["d8", b"\x01"]]]]),               # length
    _groups_msg([[8, [0, "u8", b"\x01"], [["d8", _D8]]]]),                    # mask bit 3
    _groups_msg([[1, [0, "u8", b"\x01"], [["q8", _D8]]]]),                    # unknown code
    _groups_msg([[2, [0, "u8", b"\x01"], [["u16", b"\x00\x01\x00\x01"]]]]),  # 256 in u8
    _groups_msg([[1, [0, "u8", b"\x01"], [["d16", b"\xff\x7f\xff\x7f"]]]]),  # overflow
    _groups_msg([[4, [0, "u8", b"\x01"], [["d8", _D8]]]]),                    # diff on float
    _groups_msg([[4, [0, "u8", b"\x01"], [["f64", b"\x00" * 16]]]]),         # f64 on f32
    _groups_msg([[1, [0, "u8", b"\x01"], [["f32", b"\x00" * 8]]]]),          # float on int
    _groups_msg([[1, [0, "u8", b"\x01"], [["d8", _D8]]], [1, [3, "u8", b""], [["u8", b"\x05"]]],
                 [2, [0, "u16", b"\x01"], [["u8", b"\x01\x01"]]]], count=3),
    # valid: mixed gap widths, raw + diff codes on one field
    _groups_msg([
        [1, [0, "u8", b"\x01"], [["d8", np.array([5, -5], np.int8).tobytes()]]],
        [1, [2, "u16", b"\x01\x00"], [["i16", np.array([-7, 7], np.int16).tobytes()]]],
        [2, [1, "u32", b"\x02\x00\x00\x00"], [["u8", b"\x09\x08"]]],
    ]),
    # valid: overlapping groups apply in order (differences add up)
    _groups_msg([[1, [0, "u8", b""], [["d8", b"\x01"]]], [1, [0, "u8", b""], [["d8", b"\x02"]]],
                 [3, [0, "u8", b"\x01"], [["d8", _D8], ["u8", b"\x07\x07"]]]]),
    # valid: overlapping groups, a raw value then a difference on the same row
    _groups_msg([[1, [1, "u8", b"\x01"], [["i16", b"\x10\x00\x20\x00"]]],
                 [1, [2, "u8", b""], [["d8", b"\xfe"]]]]),
    _groups_msg([]),  # empty
    _groups_msg([[1, [0, "u8", b"\x01"], [["d8", _D8]], "extra"]]),  # extra element
    _groups_msg([[2, [0, "u8", b""], [["d8", b"\xfe"]]]]),               # 1 - 2 < 0 in u8
    _groups_msg([[2, [1, "u8", b""], [["d8", b"\x7f"]]],
                 [2, [1, "u8", b""], [["d8", b"\x7f"]]]]),  # overlapping: 2+127+127 > 255
    _groups_msg([[1, [0, "u8", b"\x01"], [["d8", _D8]]], [2, [0, "u8", b"\x00"],
                 [["u8", b"\x01\x01"]]]]),                                   # zero gap, 2 groups
]

VALID = {13, 14, 15, 16, 17}


def _small() -> tuple[Replica, RefReplica]:
    snap = Snapshot(np.array([1, 2, 3, 4], np.uint32),
                    {"x": np.array([0, 10, 20, 30], np.int16),
                     "k": np.array([1, 2, 3, 4], np.uint8), "f": np.zeros(4, np.float32)})
    full = encode_delta(None, snap, tick=1)
    a, b = Replica(SMALL), RefReplica(SMALL)
    a.apply(full)
    b.apply(full)
    return a, b


def _same_verdict(msg: bytes, valid: bool) -> None:
    """The batched Replica and the reference agree on ``msg`` (applied to the SMALL state):
    both apply it to the same state, or both refuse it and the batched one is untouched."""
    a, b = _small()
    before = {k: v.tobytes() for k, v in a.columns.items()}
    ids_before = a.ids.tobytes()
    ref_err = None
    try:
        b.apply(msg)
    except DeltaError as exc:
        ref_err = exc
    assert (ref_err is None) == valid, ref_err
    if ref_err is not None:
        with pytest.raises(DeltaError):
            a.apply(msg)
        assert a.tick == 1 and a.ids.tobytes() == ids_before
        assert {k: v.tobytes() for k, v in a.columns.items()} == before
    else:
        a.apply(msg)
        assert a.tick == b.tick == 2 and a.ids.tobytes() == b.ids.tobytes()
        for k in a.columns:
            assert a.columns[k].tobytes() == b.columns[k].tobytes(), k


@pytest.mark.parametrize("i", range(len(HANDMADE)))
def test_handmade_deltas_same_verdict_as_reference(i: int, batch_mode: str) -> None:
    _same_verdict(HANDMADE[i], i in VALID)


def test_columns_held_by_caller_are_never_mutated() -> None:
    a, _ = _small()
    held = {k: (v, v.tobytes()) for k, v in a.columns.items()}
    a.apply(HANDMADE[13])
    for k, (arr, data) in held.items():
        assert arr.tobytes() == data, k
    assert a.columns["x"].tolist() == [5, 5, -7, 7]


# ---- despawn / spawn straight from the msgpack objects (Replica._churn) vs the reference.
# The SMALL state has ids 1, 2, 3, 4 with x 0/10/20/30 (i16), k 1..4 (u8), f 0.0 (f32).
def _churn_msg(desp: Any, spawn: Any, count: int, groups: list[Any] | None = None) -> bytes:
    return msgpack.packb([17, 2, 1, count, desp, spawn, groups or []])


_CODE_DTYPES = {**delta_mod.WIRE_DTYPES, **delta_mod.DIFF_DTYPES}


def _spawned(ids: list[int], x: list[int], k: list[int], *, xcode: str = "i16",
             kcode: str = "u8") -> list[Any]:
    n = len(ids)
    gaps = np.diff(np.array(ids, np.int64)).astype(np.uint8).tobytes()
    return [[ids[0], "u8", gaps], [
        [xcode, np.array(x, _CODE_DTYPES[xcode]).tobytes()],
        [kcode, np.array(k, _CODE_DTYPES[kcode]).tobytes()],
        ["f32", np.full(n, 1.5, np.float32).tobytes()]]]


CHURN = [
    # valid
    _churn_msg([2, "u8", b""], None, 3),                                      # despawn one
    _churn_msg([1, "u8", b"\x01\x01\x01"], None, 0),                          # despawn all
    _churn_msg(None, _spawned([0, 7], [-5, 70], [9, 8]), 6),                  # spawn, both ends
    _churn_msg([2, "u8", b"\x01"], _spawned([2, 9], [1, 2], [3, 4]), 4),      # id 2 dies, is reborn
    _churn_msg([1, "u8", b"\x02"], _spawned([5], [50], [5], xcode="u8"), 3,   # + groups on the
               [[3, [0, "u8", b"\x02"], [["d8", b"\x01\x01"], ["u8", b"\x07\x07"]]]]),  # new rows
    _churn_msg([4, "u8", b""], _spawned([6], [1], [1]), 4,
               [[1, [3, "u8", b""], [["d8", b"\x05"]]]]),                     # diff on a newborn
    # invalid: the replica must stay as it was
    _churn_msg([5, "u8", b""], None, 3),                                      # unknown id
    _churn_msg([2, "u8", b"\x00"], None, 2),                                  # zero gap
    _churn_msg([2, "u8", b""], None, 4),                                      # count
    _churn_msg(None, _spawned([3], [1], [1]), 5),                             # id 3 present
    _churn_msg(None, _spawned([5], [1], [1]), 4),                             # count
    _churn_msg(None, _spawned([5], [1], [300], kcode="u16"), 5),              # 300 in a u8 field
    _churn_msg(None, _spawned([5], [1], [1], kcode="d8"), 5),                 # diff when spawning
    _churn_msg(None, [[5, "u8", b""], [["i16", b"\x01\x00"], ["u8", b"\x01"]]], 5),  # 2 of 3 cols
    _churn_msg(None, [[5, "u8", b""], [["i16", b"\x01"], ["u8", b"\x01"],
                                       ["f32", b"\x00" * 4]]], 5),            # odd bytes
    _churn_msg(None, _spawned([5], [1], [1]), 5,
               [[1, [5, "u8", b""], [["d8", b"\x01"]]]]),                     # row 5 >= 5
    _churn_msg([2, "u8", b""], None, 3, [[2, [0, "u8", b""], [["d8", b"\xff"]]]]),  # 1 - 1 ok,
    _churn_msg([2, "u8", b""], None, 3, [[2, [0, "u8", b""], [["d8", b"\xfe"]]]]),  # 1 - 2 < 0
]
CHURN_VALID = {0, 1, 2, 3, 4, 5, 16}


@pytest.mark.parametrize("i", range(len(CHURN)))
def test_churn_deltas_same_verdict_as_reference(i: int, batch_mode: str) -> None:
    _same_verdict(CHURN[i], i in CHURN_VALID)


def test_churn_deltas_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Despawns and spawns no longer send a delta through parse_delta (games churn entities
    every few ticks; the general path costs several times more)."""
    def boom(obj: object) -> None:
        raise AssertionError("general path used")

    for i in sorted(CHURN_VALID):
        a, b = _small()  # (the full snapshot itself goes the general way)
        monkeypatch.setattr(replica_mod, "parse_delta", boom)
        a.apply(CHURN[i])
        monkeypatch.undo()
        b.apply(CHURN[i])
        assert a.ids.tobytes() == b.ids.tobytes()
        assert all(a.columns[k].tobytes() == b.columns[k].tobytes() for k in a.columns)


def _idlist_bytes(ids: list[int]) -> list[Any]:
    gaps = [b - a for a, b in itertools.pairwise(ids)]
    return [ids[0], "u8", bytes(g & 0xFF for g in gaps)]


_SPAWN_CODES = {"x": ["i16", "u8", "i8", "u16", "i32", "d8", "f32"], "k": ["u8", "u16", "i8"],
                "f": ["f32", "f64"]}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_despawn_spawn_deltas_same_verdict_as_reference(data: st.DataObject) -> None:
    """Despawn / spawn deltas around the SMALL state (ids 1-4), valid and not: unknown ids,
    duplicates, ids still present, wrong counts, codes that do not fit, short columns, rows
    past the end. The fast path must reach the reference decoder's verdict and state."""
    draw = data.draw
    desp = draw(st.none() | st.lists(st.integers(1, 4) | st.integers(0, 6), min_size=1,
                                     max_size=4).map(sorted))
    born = draw(st.none() | st.lists(st.integers(5, 12) | st.integers(0, 12), min_size=1,
                                     max_size=4).map(sorted))
    spawn: Any = None
    n_after = 4 - len(set(desp or [])) + len(born or [])
    if born is not None:
        cols = []
        for name in ("x", "k", "f"):
            code = draw(st.sampled_from(_SPAWN_CODES[name][:1]) | st.sampled_from(
                _SPAWN_CODES[name]))
            dt = _CODE_DTYPES[code]
            count = len(born) + draw(st.sampled_from([0] * 12 + [1, -1]))
            if dt.kind == "f":
                vals = np.array(draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=count,
                                              max_size=count)), dt)
            else:
                info = np.iinfo(dt)
                lo, hi = max(int(info.min), -60), min(int(info.max), 300)
                vals = np.array(draw(st.lists(st.integers(lo, hi), min_size=count,
                                              max_size=count)), dt)
            cols.append([code, vals.tobytes()])
        spawn = [_idlist_bytes(born), cols]
    count = n_after + draw(st.sampled_from([0] * 12 + [1, -1]))
    groups = draw(st.sampled_from([[], [[1, [0, "u8", b""], [["d8", b"\x01"]]]],
                                   [[2, [max(count - 1, 0), "u8", b""], [["u8", b"\x07"]]]],
                                   [[1, [count, "u8", b""], [["d8", b"\x01"]]]]]))
    msg = _churn_msg(None if desp is None else _idlist_bytes(desp), spawn, count, groups)
    _, ref = _small()
    try:
        ref.apply(msg)
        valid = True
    except DeltaError:
        valid = False
    event(f"valid: {valid}")
    _same_verdict(msg, valid)
