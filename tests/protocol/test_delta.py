"""Delta codec: exact replication under random worlds and mutations, widths, atomic failures."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameserver.schema import F, WorldSchema
from gameserver.world import World
from protocol import delta as delta_mod
from protocol.codes import DeltaError, MessageError
from protocol.delta import MAX_GROUPS, Snapshot, decode_delta, encode_delta
from protocol.replica import Replica

SCHEMA = WorldSchema(
    {
        "x": F.float32(quant=0.01, lo=-5000, hi=5000),  # i32
        "y": F.float32(quant=0.01, lo=-300, hi=300),  # i16
        "hp": F.uint8(default=100),
        "team": F.int8(),
        "owner": F.player(),
        "score": F.int32(),
        "raw": F.float32(),
        "big": F.float64(),
        "on": F.bool_(),
    }
)
NAMES = SCHEMA.names


def _state(r: Replica) -> Snapshot:
    return r.snapshot()


def _replicate(prev: Snapshot | None, cur: Snapshot, replica: Replica, tick: int) -> bytes:
    data = encode_delta(prev, cur, tick=tick, base_tick=tick - 1)
    replica.apply(decode_delta(data))
    assert replica.snapshot().equals(cur)
    assert replica.tick == tick
    return data


# ---------------------------------------------------------------- property: random worlds
mutation = st.one_of(
    st.tuples(st.just("spawn"), st.integers(0, 40), st.integers(0, 2**31)),
    st.tuples(st.just("despawn"), st.integers(0, 60), st.integers(0, 2**31)),
    st.tuples(
        st.just("move"),
        st.sampled_from([0.001, 0.05, 1.0, 30.0, 400.0, 9000.0]),
        st.integers(0, 2**31),
    ),
    st.tuples(st.just("field"), st.sampled_from(NAMES), st.integers(0, 2**31)),
)
program = st.lists(st.lists(mutation, max_size=6), min_size=1, max_size=8)


def _mutate(w: World, rng: np.random.Generator, op: tuple[str, object, int]) -> None:
    kind, arg, _ = op
    slots = w.alive_slots()
    if kind == "spawn":
        n = int(arg)  # type: ignore[call-overload]
        w.spawn(
            n,
            x=rng.uniform(-6000, 6000, n),
            y=rng.uniform(-400, 400, n),
            hp=rng.integers(0, 256, n),
            raw=rng.normal(0, 1e6, n).astype(np.float32),
        )
    elif kind == "despawn" and slots.shape[0]:
        k = min(int(arg), slots.shape[0])  # type: ignore[call-overload]
        w.despawn(w.id_of(rng.choice(slots, k, replace=False)))
    elif kind == "move" and slots.shape[0]:
        sel = slots[rng.random(slots.shape[0]) < 0.3]
        step = float(arg)  # type: ignore[arg-type]
        w["x"][sel] += rng.normal(0, step, sel.shape[0]).astype(np.float32)
        w["y"][sel] += rng.normal(0, step, sel.shape[0]).astype(np.float32)
    elif kind == "field" and slots.shape[0]:
        name = str(arg)
        sel = slots[rng.random(slots.shape[0]) < 0.5]
        col = w[name]
        if col.dtype.kind == "f":
            vals = rng.normal(0, 10.0 ** rng.integers(0, 9), sel.shape[0])
            if rng.random() < 0.2:
                vals[: sel.shape[0] // 2] = np.nan
            col[sel] = vals.astype(col.dtype)
        elif col.dtype == np.bool_:
            col[sel] = rng.random(sel.shape[0]) < 0.5
        else:
            info = np.iinfo(col.dtype)
            span = int(rng.choice([2, 200, 70000, 2**40]))
            base = col[sel].astype(np.int64) + rng.integers(-span, span, sel.shape[0])
            col[sel] = np.clip(base, info.min, info.max).astype(col.dtype)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program, st.integers(0, 2**32 - 1), st.integers(1, 64))
def test_delta_chain_replicates_exactly(
    ticks: list[list[tuple[str, object, int]]], seed: int, capacity: int
) -> None:
    rng = np.random.default_rng(seed)
    w = World(SCHEMA, capacity=capacity)
    snaps = [w.snapshot()]
    replica = Replica(SCHEMA.wire)
    replica.apply(encode_delta(None, snaps[0], tick=1))
    assert replica.snapshot().equals(snaps[0])
    for tick, muts in enumerate(ticks, start=2):
        for m in muts:
            _mutate(w, rng, m)
        w.commit()
        cur = w.snapshot()
        _replicate(snaps[-1], cur, replica, tick)
        snaps.append(cur)
    # Any base to any later state (skipped ticks), and a full snapshot of each, also replicate.
    for i in range(len(snaps)):
        for j in range(i, len(snaps)):
            r = Replica(SCHEMA.wire)
            r.apply(encode_delta(None, snaps[i], tick=10 + i))
            r.apply(encode_delta(snaps[i], snaps[j], tick=100 + j, base_tick=10 + i))
            assert r.snapshot().equals(snaps[j])


@pytest.mark.parametrize("nfields", [0, 1, 32])
def test_schema_sizes_round_trip(nfields: int) -> None:
    schema = WorldSchema({f"f{i}": F.int16() for i in range(nfields)})
    w = World(schema)
    ids = w.spawn(50)
    w.commit()
    a = w.snapshot()
    rng = np.random.default_rng(nfields)
    for name in schema.names:
        w[name][rng.choice(50, 7)] += 3
    w.despawn(ids[:5])
    w.spawn(2)
    w.commit()
    b = w.snapshot()
    r = Replica(schema.wire)
    r.apply(encode_delta(None, a, tick=1))
    r.apply(encode_delta(a, b, tick=2, base_tick=1))
    assert r.snapshot().equals(b)


# ---------------------------------------------------------------- layout and widths
def _snap(ids: list[int], **cols: np.ndarray) -> Snapshot:
    return Snapshot(np.array(ids, np.uint32), dict(cols))


def test_full_snapshot_layout() -> None:
    s = _snap([256 | 1, 512 | 1], v=np.array([1, -1000], np.int32))
    msg = msgpack.unpackb(encode_delta(None, s, tick=7))
    assert msg == [
        17,
        7,
        None,
        2,
        None,
        [[257, "u16", b"\x00\x01"], [["i16", b"\x01\x00\x18\xfc"]]],
        [],
    ]
    empty = msgpack.unpackb(encode_delta(None, _snap([], v=np.zeros(0, np.int32)), tick=1))
    assert empty == [17, 1, None, 0, None, None, []]


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ([100000, 7], [100005, 0], "d8"),
        ([100000, 7], [100300, 0], "d16"),
        ([0, 7], [5, 0], "u8"),  # raw as narrow as the difference: raw wins the tie
        ([0, 0], [300, -7], "i16"),
        ([100000, 0], [200000, -7], "i32"),  # d32 is never narrower than raw
        # difference too wide for d32; raw as wide as the field: its own code (i32, not u32)
        ([1000000, 0], [1000001, 2**31 - 1], "i32"),
    ],
)
def test_changed_value_widths(old: list[int], new: list[int], code: str) -> None:
    a = _snap([1, 2], v=np.array(old, np.int32))
    b = _snap([1, 2], v=np.array(new, np.int32))
    msg = msgpack.unpackb(encode_delta(a, b, tick=2, base_tick=1))
    assert msg[6][0][2][0][0] == code


def test_raw_chosen_when_narrower_than_diff() -> None:
    a = _snap([1, 2], v=np.array([0, 255], np.uint8))
    b = _snap([1, 2], v=np.array([255, 0], np.uint8))  # diffs need d16, raw needs u8
    msg = msgpack.unpackb(encode_delta(a, b, tick=2, base_tick=1))
    assert msg[6][0][2][0] == ["u8", b"\xff\x00"]


@pytest.mark.parametrize(
    ("ids", "code"), [([1, 2, 300], "u16"), ([5, 6, 7], "u8"), ([1, 2**31], "u32")]
)
def test_id_gap_widths(ids: list[int], code: str) -> None:
    s = _snap(ids, v=np.zeros(len(ids), np.uint8))
    msg = msgpack.unpackb(encode_delta(None, s, tick=1))
    assert msg[5][0][0] == ids[0] and msg[5][0][1] == code


def test_x_y_moving_together_share_one_group() -> None:
    n = 1000
    ids = (np.arange(n, dtype=np.uint32) << 8) | 1
    x = np.arange(n, dtype=np.int32) * 100
    a = Snapshot(ids, {"x": x, "y": x.copy(), "hp": np.full(n, 9, np.uint8)})
    moved = np.arange(0, n, 10)
    x2, y2 = x.copy(), x.copy()
    x2[moved] += 7
    y2[moved] -= 12
    b = Snapshot(ids, {"x": x2, "y": y2, "hp": a.columns["hp"]})
    data = encode_delta(a, b, tick=2, base_tick=1)
    msg = msgpack.unpackb(data)
    assert len(msg[6]) == 1 and msg[6][0][0] == 0b11
    assert [c[0] for c in msg[6][0][2]] == ["d8", "d8"]
    assert len(data) <= 3 * len(moved) + 40


def test_many_distinct_masks_are_merged() -> None:
    n, nf = 600, 10
    rng = np.random.default_rng(3)
    cols = {f"f{i}": rng.integers(0, 100, n).astype(np.int16) for i in range(nf)}
    ids = np.arange(1, n + 1, dtype=np.uint32)
    a = Snapshot(ids, cols)
    new = {k: v.copy() for k, v in cols.items()}
    for k in new:
        new[k][rng.random(n) < 0.4] += 1
    b = Snapshot(ids, new)
    msg = msgpack.unpackb(encode_delta(a, b, tick=2, base_tick=1))
    assert len(msg[6]) <= MAX_GROUPS
    # the rare-mask cap on its own (before the size-driven merging)
    masks = np.array([int(g[0]) for g in msg[6]])
    assert len(delta_mod._bucket(np.arange(n), rng.integers(1, 1 << nf, n).astype(np.uint32),
                                 (1 << nf) - 1)) == MAX_GROUPS
    assert (masks > 0).all()
    schema = WorldSchema({k: F.int16() for k in cols})
    r = Replica(schema.wire)
    r.apply(encode_delta(None, a, tick=1))
    r.apply(encode_delta(a, b, tick=2, base_tick=1))
    assert r.snapshot().equals(b)


def test_small_groups_fold_into_the_moving_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few entities that changed only x, only y, or only the angle would each cost a
    group's framing: merged into the big x/y/angle group the message is smaller, and it
    still applies to exactly the new state."""
    n = 1000
    ids = np.arange(1, n + 1, dtype=np.uint32)
    rng = np.random.default_rng(5)
    x = rng.integers(1000, 60000, n).astype(np.uint16)
    a = Snapshot(ids, {"x": x, "y": x.copy(), "angle": np.zeros(n, np.int8),
                       "hp": np.full(n, 9, np.uint8)})
    new = {k: v.copy() for k, v in a.columns.items()}
    moving = np.arange(0, n, 10)
    new["x"][moving] += 3
    new["y"][moving] -= 2
    new["angle"][moving] = 7
    new["x"][[5, 15]] += 1  # x only
    new["y"][[25]] += 1  # y only
    new["angle"][[35, 45, 55]] = -3  # angle only
    new["hp"][[65]] = 3  # hp only: on the 100 moving rows it would cost more than a group
    b = Snapshot(ids, new)
    merged = encode_delta(a, b, tick=2, base_tick=1)
    monkeypatch.setattr(delta_mod, "_merge_small", lambda buckets, widths: buckets)
    exact = encode_delta(a, b, tick=2, base_tick=1)
    monkeypatch.undo()
    gm, ge = msgpack.unpackb(merged)[6], msgpack.unpackb(exact)[6]
    assert len(ge) == 5 and len(gm) == 2
    assert 0b0111 in [g[0] for g in gm]  # hp never joins the 100-row moving group
    assert len(merged) < len(exact)
    schema = WorldSchema({"x": F.uint16(), "y": F.uint16(), "angle": F.int8(),
                          "hp": F.uint8()})
    for data in (merged, exact):
        r = Replica(schema.wire)
        r.apply(encode_delta(None, a, tick=1))
        r.apply(data)
        assert r.snapshot().equals(b)


def test_nan_and_negative_zero_are_changes() -> None:
    a = _snap([1, 2], v=np.array([0.0, 1.0], np.float32))
    b = _snap([1, 2], v=np.array([-0.0, np.nan], np.float32))
    schema = WorldSchema({"v": F.float32()})
    r = Replica(schema.wire)
    r.apply(encode_delta(None, a, tick=1))
    r.apply(encode_delta(a, b, tick=2, base_tick=1))
    assert r.snapshot().equals(b)
    assert encode_delta(b, b, tick=3, base_tick=2)[-1:] == b"\x90"  # no groups


def test_encoder_refuses_mismatched_snapshots() -> None:
    a = _snap([1], v=np.zeros(1, np.int32))
    with pytest.raises(ValueError):
        encode_delta(a, _snap([1], w=np.zeros(1, np.int32)), tick=2, base_tick=1)
    with pytest.raises(ValueError):
        encode_delta(a, _snap([1], v=np.zeros(1, np.int16)), tick=2, base_tick=1)
    with pytest.raises(ValueError):
        encode_delta(None, _snap([1, 2], v=np.zeros(1, np.int32)), tick=1)
    with pytest.raises(ValueError, match="base_tick"):
        encode_delta(a, a, tick=2)


# ---------------------------------------------------------------- atomic failures
SMALL = WorldSchema({"x": F.int16(), "hp": F.uint8(), "f": F.float32()})


def _base_replica() -> tuple[Replica, Snapshot]:
    s = Snapshot(
        np.array([10, 20, 30], np.uint32),
        {
            "x": np.array([1, 2, 3], np.int16),
            "hp": np.array([250, 5, 6], np.uint8),
            "f": np.array([0.5, 1.5, 2.5], np.float32),
        },
    )
    r = Replica(SMALL.wire)
    r.apply(encode_delta(None, s, tick=5))
    return r, s


def _raw(*elems: object) -> bytes:
    return msgpack.packb([17, *elems], use_bin_type=True)


BAD = {
    "wrong base tick": _raw(6, 4, 3, None, None, []),
    "despawn unknown": _raw(6, 5, 2, [11, "u8", b""], None, []),
    "spawn existing": _raw(
        6,
        5,
        4,
        None,
        [[20, "u8", b""], [["i8", b"\x01"], ["u8", b"\x01"], ["f32", b"\0\0\0\0"]]],
        [],
    ),
    "spawn column count": _raw(6, 5, 4, None, [[21, "u8", b""], [["i8", b"\x01"]]], []),
    "spawn float code": _raw(
        6, 5, 4, None, [[21, "u8", b""], [["i8", b"\x01"], ["u8", b"\x01"], ["f64", b"\0" * 8]]], []
    ),
    "count mismatch": _raw(6, 5, 4, None, None, []),
    "row out of range": _raw(6, 5, 3, None, None, [[1, [3, "u8", b""], [["d8", b"\x01"]]]]),
    "mask beyond fields": _raw(6, 5, 3, None, None, [[8, [0, "u8", b""], [["d8", b"\x01"]]]]),
    "raw out of range": _raw(6, 5, 3, None, None, [[2, [0, "u8", b""], [["u16", b"\x00\x01"]]]]),
    "diff overflow": _raw(6, 5, 3, None, None, [[2, [0, "u8", b""], [["d8", b"\x10"]]]]),
    "diff on float": _raw(6, 5, 3, None, None, [[4, [0, "u8", b""], [["d8", b"\x10"]]]]),
    "int column on float": _raw(6, 5, 3, None, None, [[4, [0, "u8", b""], [["i8", b"\x10"]]]]),
    "float column on int": _raw(6, 5, 3, None, None, [[1, [0, "u8", b""], [["f32", b"\0" * 4]]]]),
    # Structural problems (found by decode_delta already):
    "zero gap": _raw(6, 5, 3, None, None, [[1, [0, "u8", b"\x00"], [["d8", b"\x01\x01"]]]]),
    "length mismatch": _raw(6, 5, 3, None, None, [[1, [0, "u8", b"\x01"], [["d8", b"\x01"]]]]),
    "bin not multiple": _raw(6, 5, 3, None, None, [[1, [0, "u8", b""], [["d16", b"\x01"]]]]),
    "unknown code": _raw(6, 5, 3, None, None, [[1, [0, "u8", b""], [["q8", b"\x01"]]]]),
    "bad gap code": _raw(6, 5, 3, None, None, [[1, [0, "i8", b""], [["d8", b"\x01"]]]]),
    "mask zero": _raw(6, 5, 3, None, None, [[0, [0, "u8", b""], []]]),
    "columns vs mask": _raw(6, 5, 3, None, None, [[3, [0, "u8", b""], [["d8", b"\x01"]]]]),
    "id over u32": _raw(6, 5, 3, [2**32 - 1, "u8", b"\x01"], None, []),
    "short array": _raw(6, 5, 3, None, None),
    "tick not int": _raw("6", 5, 3, None, None, []),
    "base tick negative": _raw(6, -1, 3, None, None, []),
    "groups not array": _raw(6, 5, 3, None, None, {}),
    "not msgpack": b"\xc1",
    "not delta type": msgpack.packb([18, 6, 5, 3, None, None, []]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_delta_raises_and_leaves_replica_untouched(name: str) -> None:
    r, s = _base_replica()
    ids, cols = r.ids, dict(r.columns)
    with pytest.raises(DeltaError):
        r.apply(BAD[name])
    assert r.tick == 5 and r.ids is ids and r.snapshot().equals(s)
    assert all(r.columns[k] is cols[k] for k in cols)


def test_good_handcrafted_delta_applies() -> None:
    r, _ = _base_replica()
    # despawn 20, spawn 25 (x=-1, hp=7, f=0.0), then row 0 (id 10) x += 16 and row 2 hp = 9
    data = _raw(
        6,
        5,
        3,
        [20, "u8", b""],
        [[25, "u8", b""], [["i8", b"\xff"], ["u8", b"\x07"], ["f32", b"\0\0\0\0"]]],
        [[1, [0, "u8", b""], [["d8", b"\x10"]]], [2, [2, "u8", b""], [["u8", b"\x09"]]]],
    )
    r.apply(data)
    assert r.tick == 6 and r.ids.tolist() == [10, 25, 30]
    assert r.columns["x"].tolist() == [17, -1, 3] and r.columns["x"].dtype == np.int16
    assert r.columns["hp"].tolist() == [250, 7, 9]


def test_truncated_deltas_never_apply() -> None:
    r, s = _base_replica()
    w = World(SMALL)
    w.spawn(3, x=[1, 2, 3])
    w.commit()
    data = encode_delta(None, w.snapshot(), tick=9)
    for cut in range(len(data)):
        with pytest.raises(DeltaError):
            r.apply(data[:cut])
        assert r.tick == 5 and r.snapshot().equals(s)


def test_first_delta_must_be_full() -> None:
    r = Replica(SMALL.wire)
    with pytest.raises(DeltaError, match="does not apply"):
        r.apply(_raw(1, 0, 0, None, None, []))
    assert r.tick is None


def test_values_dequantize() -> None:
    w = World(SCHEMA)
    w.spawn(2, x=[1.234, -5.6789], y=[299.999, -1000.0])
    w.commit()
    r = Replica(SCHEMA.wire)
    r.apply(encode_delta(None, w.snapshot(), tick=1))
    assert np.allclose(r.values("x"), [1.23, -5.68])
    assert np.allclose(r.values("y"), [300.0, -300.0])  # clamped into the declared range
    assert r.values("hp").dtype == np.uint8
    assert r.row_of([int(r.ids[1]), 12345]).tolist() == [1, -1]


# ---------------------------------------------------------------- hostile bytes
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_delta_error(data: bytes) -> None:
    r, _ = _base_replica()
    try:
        r.apply(data)
    except DeltaError:
        pass
    assert isinstance(DeltaError("x"), MessageError)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_deltas_apply_atomically_or_fail(data: st.DataObject) -> None:
    r, s = _base_replica()
    w = World(SMALL)
    ids = w.spawn(5, x=[1, 2, 3, 4, 5])
    w.commit()
    a = w.snapshot()
    w["x"][:5] += np.array([1, 300, 0, -2, 0], np.int16)
    w.despawn(ids[2])
    w.spawn(1, hp=3)
    w.commit()
    good = bytearray(encode_delta(a, w.snapshot(), tick=6, base_tick=5))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(good) - 1))
        good[i] = data.draw(st.integers(0, 255))
    try:
        r.apply(bytes(good))
    except DeltaError:
        assert r.tick == 5 and r.snapshot().equals(s)
    else:
        assert (np.diff(r.ids.astype(np.int64)) > 0).all()
        assert all(c.shape == r.ids.shape for c in r.columns.values())


# ---------------------------------------------------------------- no per-entity Python loops
def _python_calls(fn: Callable[[], object]) -> int:
    """Python-level function calls made by ``fn`` (C calls excluded): a deterministic
    stand-in for "no per-entity Python loop" that does not depend on timing."""
    calls = 0

    def prof(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def _moving_world(n: int) -> tuple[World, Snapshot, Snapshot]:
    w = World(SCHEMA)
    rng = np.random.default_rng(n)
    ids = w.spawn(n, x=rng.uniform(-100, 100, n), hp=rng.integers(0, 255, n))
    w.commit()
    a = w.snapshot()
    slots = w.alive_slots()
    w["x"][slots] += 0.5
    w["y"][slots[::2]] -= 0.25
    w["hp"][slots[::3]] += 1
    w.despawn(ids[: n // 10])
    w.spawn(n // 10, x=1.0)
    w.commit()
    return w, a, w.snapshot()


def test_work_per_call_does_not_grow_with_entities() -> None:
    counts = []
    for n in (200, 20_000):
        w, a, b = _moving_world(n)
        data = encode_delta(a, b, tick=2, base_tick=1)
        r = Replica(SCHEMA.wire)
        r.apply(encode_delta(None, a, tick=1))
        counts.append(
            (
                _python_calls(w.snapshot),
                _python_calls(partial(encode_delta, a, b, tick=2, base_tick=1)),
                _python_calls(partial(r.apply, data)),
            )
        )
        assert r.snapshot().equals(b)
    # equal up to the decoder's switch from batched to group-by-group writes for big groups
    # (a constant, not per entity)
    (s0, e0, a0), (s1, e1, a1) = counts
    assert (s0, e0) == (s1, e1) and abs(a0 - a1) <= 8, counts


_codes = st.sampled_from(
    ["u8", "u16", "u32", "i8", "i16", "i32", "f32", "f64", "d8", "d16", "d32", "x"]
)
_bins = st.binary(max_size=12)
_idlists = st.none() | st.lists(st.integers(-1, 2**33) | _codes | _bins, max_size=4)
_cols = st.lists(st.lists(_codes | _bins | st.integers(0, 3), max_size=3), max_size=4)
_groups = st.lists(st.lists(st.integers(-1, 2**33) | _idlists | _cols, max_size=4), max_size=3)


@settings(max_examples=400, deadline=None)
@given(
    st.integers(-1, 2**64 - 1) | st.none(),
    st.integers(-1, 8) | st.none(),
    st.integers(-1, 8),
    _idlists,
    st.none() | st.lists(_idlists | _cols, max_size=3),
    _groups | st.none(),
)
def test_structured_garbage_deltas(
    tick: object, base: object, count: object, desp: object, spawn: object, groups: object
) -> None:
    r, s = _base_replica()
    data = msgpack.packb([17, tick, base, count, desp, spawn, groups], use_bin_type=True)
    try:
        r.apply(data)
    except DeltaError:
        assert r.tick == 5 and r.snapshot().equals(s)
    else:
        assert all(c.shape == r.ids.shape for c in r.columns.values())


_field_specs = st.one_of(
    st.builds(
        lambda q, lo, span: F.float32(quant=q, lo=lo, hi=lo + span, default=lo),
        st.sampled_from([0.01, 0.1, 0.5, 1.0, 0.25]),
        st.integers(-3000, 3000),
        st.integers(1, 4000),
    ),
    st.sampled_from(
        [F.float32(), F.float64(), F.uint8(), F.int8(), F.uint16(), F.int16(), F.uint32(),
         F.int32(), F.bool_(), F.player(), F.float64(quant=0.001)]
    ),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_field_specs, min_size=1, max_size=8),
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.floats(0, 1)), max_size=6),
)
def test_random_schemas_replicate(
    specs: list[object], seed: int, steps: list[tuple[int, int, float]]
) -> None:
    schema = WorldSchema({f"f{i}": s for i, s in enumerate(specs)})
    rng = np.random.default_rng(seed)
    w = World(schema, capacity=4)
    r = Replica(schema.wire)
    prev = w.snapshot()
    r.apply(encode_delta(None, prev, tick=1))
    for tick, (nspawn, ndespawn, p) in enumerate(steps, start=2):
        slots = w.alive_slots()
        if slots.shape[0]:
            w.despawn(w.id_of(rng.choice(slots, min(ndespawn, slots.shape[0]), replace=False)))
        w.spawn(nspawn)
        for name, f in schema.fields.items():
            col = w[name]
            sel = np.flatnonzero(rng.random(col.shape[0]) < p)
            if f.storage.kind == "f":
                col[sel] = rng.normal(0, 10.0 ** rng.integers(-2, 6), sel.shape[0])
            elif f.storage.kind == "b":
                col[sel] = rng.random(sel.shape[0]) < 0.5
            else:
                info = np.iinfo(f.storage)
                col[sel] = rng.integers(info.min, int(info.max) + 1, sel.shape[0])
        w.commit()
        cur = w.snapshot()
        r.apply(encode_delta(prev, cur, tick=tick, base_tick=tick - 1))
        assert r.snapshot().equals(cur)
        prev = cur


def _estimate(groups: list[tuple[int, np.ndarray]], widths: list[int]) -> int:
    """The merge's own byte model: framing 11 + 6k per group, width x rows per column."""
    total = 0
    for m, rows in groups:
        fields = [f for f in range(len(widths)) if m >> f & 1]
        total += 11 + 6 * len(fields) + rows.shape[0] * sum(widths[f] for f in fields)
    return total


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.data())
def test_merge_small_partitions_rows_and_never_grows(nf: int, data: st.DataObject) -> None:
    widths = data.draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=nf, max_size=nf))
    masks = data.draw(st.lists(st.integers(1, (1 << nf) - 1), min_size=1, max_size=MAX_GROUPS,
                               unique=True))
    sizes = data.draw(st.lists(st.integers(1, 40), min_size=len(masks), max_size=len(masks)))
    rows = np.random.default_rng(len(masks)).permutation(sum(sizes))
    buckets, at = [], 0
    for m, n in zip(masks, sizes):
        buckets.append((m, np.sort(rows[at:at + n])))
        at += n
    out = delta_mod._merge_small(buckets, widths)
    assert 1 <= len(out) <= len(buckets)
    assert [m for m, _ in out] == sorted(m for m, _ in out)
    got = np.concatenate([r for _, r in out])
    assert np.array_equal(np.sort(got), np.arange(sum(sizes)))  # each row exactly once
    for _, r in out:
        assert np.all(np.diff(r) > 0)  # ascending, as a ROWLIST needs
    for m, r in buckets:  # every group lands whole in one group carrying its fields
        homes = [om for om, orows in out if np.isin(r, orows).all()]
        assert len(homes) == 1 and homes[0] & m == m
    assert _estimate(out, widths) <= _estimate(buckets, widths)
