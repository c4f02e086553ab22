"""WorldView.apply_wire (Replica's steady-state path straight from msgpack) == the parsed
general path (``Replica.apply(decode_delta(...))``), bit for bit; errors leave the world as it was.
tests/protocol/test_delta_reference.py compares both against the simple reference."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import protocol.replica as replica_mod
from clients.world import WorldView
from protocol.codes import DeltaError
from protocol.delta import Snapshot, WireField, WireSchema, decode_delta, encode_delta
from protocol.replica import Replica

SCHEMA = WireSchema([
    WireField("x", "i32", 0.01), WireField("y", "u16", 0.01), WireField("a", "i8", 0.05),
    WireField("kind", "u8"), WireField("hp", "u8"), WireField("owner", "u32"),
    WireField("f", "f32"), WireField("g", "f64"),
])


def random_snapshot(rng: np.random.Generator, ids: np.ndarray) -> dict[str, np.ndarray]:
    n = (int(ids.shape[0]),)
    return {
        "x": np.asarray(rng.integers(-100000, 100000, n), np.int32),
        "y": np.asarray(rng.integers(0, 65535, n), np.uint16),
        "a": np.asarray(rng.integers(-128, 127, n), np.int8),
        "kind": np.asarray(rng.integers(0, 4, n), np.uint8),
        "hp": np.asarray(rng.integers(0, 255, n), np.uint8),
        "owner": np.asarray(rng.integers(0, 2**32 - 1, n, dtype=np.uint64), np.uint32),
        "f": np.asarray(rng.standard_normal(n), np.float32),
        "g": np.asarray(rng.standard_normal(n), np.float64),
    }


def evolve(rng: np.random.Generator, snap: Snapshot, *, churn: bool) -> Snapshot:
    ids = snap.ids
    cols = {k: v.copy() for k, v in snap.columns.items()}
    n = ids.shape[0]
    if n:
        for name, frac in (("x", 0.3), ("y", 0.3), ("a", 0.2), ("kind", 0.05), ("hp", 0.1),
                           ("owner", 0.02), ("f", 0.1), ("g", 0.05)):
            sel = np.asarray(rng.random((n,))) < frac
            k = int(sel.sum())
            c = cols[name]
            if name in ("f", "g"):
                c[sel] = rng.standard_normal(k).astype(c.dtype)
            elif name == "x":
                c[sel] = (c[sel].astype(np.int64) + rng.integers(-300, 300, k)).clip(
                    -100000, 100000).astype(c.dtype)
            else:
                info = np.iinfo(c.dtype)
                lo, hi = max(int(info.min), -(2**31)), min(int(info.max), 2**31 - 1)
                c[sel] = rng.integers(lo, hi, k, endpoint=True).astype(c.dtype)
    if churn:
        keep = rng.random(n) > 0.05
        ids = ids[keep]
        cols = {k: v[keep] for k, v in cols.items()}
        new = np.setdiff1d(
            (rng.integers(1, 5000, 8).astype(np.uint32) << 8) | 1, snap.ids)
        new = np.unique(new)
        fresh = random_snapshot(rng, new)
        order = np.argsort(np.concatenate([ids, new]), kind="stable")
        ids = np.concatenate([ids, new])[order]
        cols = {k: np.concatenate([cols[k], fresh[k]])[order] for k in cols}
    return Snapshot(ids, cols)


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_matches_replica(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = np.unique((rng.integers(1, 5000, 300).astype(np.uint32) << 8) | 1)
    snap = Snapshot(ids, random_snapshot(rng, ids))
    fast = WorldView(SCHEMA)
    ref = Replica(SCHEMA)
    msg = encode_delta(None, snap, tick=1)
    assert fast.apply_wire(msg) is True
    ref.apply(msg)
    for tick in range(2, 40):
        cur = evolve(rng, snap, churn=tick % 5 == 0)
        msg = encode_delta(snap, cur, tick=tick, base_tick=tick - 1)
        assert fast.apply_wire(msg) is False
        ref.apply(decode_delta(msg))
        assert fast.tick == ref.tick == tick
        assert np.array_equal(fast.ids, ref.ids)
        for f in SCHEMA.fields:
            a, b = fast.columns[f.name], ref.columns[f.name]
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (tick, f.name)
        snap = cur


def test_fast_path_is_taken_for_group_only_deltas(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    ids = np.arange(1, 201, dtype=np.uint32) << 8
    snap = Snapshot(ids, random_snapshot(rng, ids))
    w = WorldView(SCHEMA)
    w.apply_wire(encode_delta(None, snap, tick=1))
    cur = evolve(rng, snap, churn=False)
    msg = encode_delta(snap, cur, tick=2, base_tick=1)
    assert len(msgpack.unpackb(msg)[6]) > 1  # several groups

    def boom(obj: object) -> None:
        raise AssertionError("general path used")

    monkeypatch.setattr(replica_mod, "parse_delta", boom)
    w.apply_wire(msg)
    assert w.tick == 2 and w.columns["x"].tobytes() == cur.columns["x"].tobytes()


def _group_delta(groups: list[object], *, tick: int = 2, base: int = 1, count: int = 4) -> bytes:
    return msgpack.packb([17, tick, base, count, None, None, groups])


def test_fast_path_errors_leave_world_unchanged() -> None:
    schema = WireSchema([WireField("x", "i16"), WireField("k", "u8"), WireField("f", "f32")])
    w = WorldView(schema)
    ids = np.array([1, 2, 3, 4], np.uint32)
    snap = Snapshot(ids, {"x": np.array([0, 10, 20, 30], np.int16),
                          "k": np.array([1, 2, 3, 4], np.uint8),
                          "f": np.zeros(4, np.float32)})
    w.apply_wire(encode_delta(None, snap, tick=1))
    before = {k: v.copy() for k, v in w.columns.items()}
    d8 = np.array([1, 1], np.int8).tobytes()
    bad = [
        _group_delta([[1, [0, "u8", b"\x01"], [["d8", d8]]]], base=5),          # wrong base
        _group_delta([[1, [0, "u8", b"\x01"], [["d8", d8]]]], count=5),         # count
        _group_delta([[1, [3, "u8", b"\x01"], [["d8", d8]]]]),                  # row 4 >= 4
        _group_delta([[1, [0, "u8", b"\x00"], [["d8", d8]]]]),                  # zero gap
        _group_delta([[1, [0, "u8", b"\x01"], [["d8", b"\x01"]]]]),             # length
        _group_delta([[8, [0, "u8", b"\x01"], [["d8", d8]]]]),                  # mask bit 3
        _group_delta([[1, [0, "u8", b"\x01"], [["q8", d8]]]]),                  # unknown code
        _group_delta([[2, [0, "u8", b"\x01"], [["u16", b"\x00\x01\x00\x01"]]]]),  # 256 in u8
        _group_delta([[1, [0, "u8", b"\x01"], [["d16", b"\xff\x7f\xff\x7f"]]]]),  # overflow
        _group_delta([[4, [0, "u8", b"\x01"], [["d8", d8]]]]),                  # diff on float
        _group_delta([[4, [0, "u8", b"\x01"], [["f64", b"\x00" * 16]]]]),       # f64 on f32
        _group_delta([[1, [0, "u8", b"\x01"], [["f32", b"\x00" * 8]]]]),        # float on int
        _group_delta([[1, [0, "u8", b"\x01"], [["d8", d8]]], [1, [3, "u8", b""], [["u8", b"\x05"]]],
                      [2, [0, "u16", b"\x01"], [["u8", b"\x01\x01"]]]], count=3),
    ]
    for i, msg in enumerate(bad):
        with pytest.raises(DeltaError):
            w.apply_wire(msg)
        assert w.tick == 1, i
        for k, v in before.items():
            assert w.columns[k].tobytes() == v.tobytes(), (i, k)
    # a valid one with mixed gap widths and raw + diff codes on one field
    ok = _group_delta([
        [1, [0, "u8", b"\x01"], [["d8", np.array([5, -5], np.int8).tobytes()]]],
        [1, [2, "u16", b"\x01\x00"], [["i16", np.array([-7, 7], np.int16).tobytes()]]],
        [2, [1, "u32", b"\x02\x00\x00\x00"], [["u8", b"\x09\x08"]]],
    ])
    w.apply_wire(ok)
    assert w.tick == 2
    assert w.columns["x"].tolist() == [5, 5, -7, 7]
    assert w.columns["k"].tolist() == [1, 9, 3, 8]
    # overlapping groups: applied in order (diffs add up)
    ov = _group_delta([[1, [0, "u8", b""], [["d8", b"\x01"]]],
                       [1, [0, "u8", b""], [["d8", b"\x02"]]]], tick=3, base=2)
    w.apply_wire(ov)
    assert w.tick == 3 and w.columns["x"][0] == 8
