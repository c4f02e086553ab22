"""PieceEncoder + view_message + ViewReplica: a client subscribed to a changing set of
channels always holds exactly the entities of those channels (random world, moves across
cells, despawns, spawns, a team-like second channel, resets)."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.codes import DeltaError
from protocol.pieces import PieceEncoder, view_message
from protocol.view import ViewReplica
from protocol.wireschema import Snapshot, WireField, WireSchema

schema = WireSchema([WireField("x", "i32", 0.01), WireField("y", "i32", 0.01),
                     WireField("hp", "u8")])
cell = 10000


def chans(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.minimum(y // cell, 9) * 10 + np.minimum(x // cell, 9)).astype(np.int64)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_view_matches_subscribed_channels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    ids = np.sort(rng.choice(np.arange(1, 100000), n, replace=False)).astype(np.uint32)
    x = rng.integers(0, 100000, n).astype(np.int32)
    y = rng.integers(0, 100000, n).astype(np.int32)
    hp = rng.integers(0, 255, n).astype(np.uint8)
    enc = PieceEncoder(schema)
    view = ViewReplica(schema)
    sub: set[int] = set()
    base: int | None = None
    encodes = 0
    for t in range(1, 200):
        m = rng.random(ids.shape[0]) < 0.2
        x[m] = np.clip(x[m] + rng.integers(-3000, 3000, m.sum()), 0, 99999)
        y[m] = np.clip(y[m] + rng.integers(-3000, 3000, m.sum()), 0, 99999)
        hp[rng.random(ids.shape[0]) < 0.05] += 1
        if t % 7 == 0:  # despawn 10%, spawn up to 20
            keep = rng.random(ids.shape[0]) > 0.1
            ids, x, y, hp = ids[keep], x[keep], y[keep], hp[keep]
            new = np.setdiff1d(rng.choice(np.arange(1, 100000), 20, replace=False), ids)
            k = new.shape[0]
            ids = np.concatenate([ids, new.astype(np.uint32)])
            order = np.argsort(ids)
            ids = ids[order]
            x = np.concatenate([x, rng.integers(0, 100000, k).astype(np.int32)])[order]
            y = np.concatenate([y, rng.integers(0, 100000, k).astype(np.int32)])[order]
            hp = np.concatenate([hp, np.zeros(k, np.uint8)])[order]
        snap = Snapshot(ids.copy(), {"x": x.copy(), "y": y.copy(), "hp": hp.copy()})
        tm = np.flatnonzero(hp > 200)  # a second, team-like channel 1000
        rows = np.concatenate([np.arange(ids.shape[0]), tm])
        ch = np.concatenate([chans(x, y), np.full(tm.shape[0], 1000)])
        pcs = enc.step(t, snap, rows, ch)
        cx, cy = rng.integers(0, 8), rng.integers(0, 8)
        new_sub = {j * 10 + i for i in range(cx, cx + 3) for j in range(cy, cy + 3)} | {1000}
        if t % 3:
            new_sub = sub or new_sub
        reset = t % 50 == 1 or base is None
        pieces = []
        for c in sorted(new_sub):
            b = pcs.full(c) if reset or c not in sub else pcs.delta(c)
            if b is not None:
                pieces.append(b)
        left = [] if reset else sorted(sub - new_sub)
        view.apply(view_message(t, None if reset else base, left, pieces))
        sub, base = new_sub, t
        sel = np.isin(chans(x, y), list(sub)) | (hp > 200)
        assert np.array_equal(view.ids, ids[sel]), t
        assert np.array_equal(view.columns["x"], x[sel])
        assert np.array_equal(view.columns["hp"], hp[sel])
        encodes += pcs.encodes
        assert pcs.encodes <= 2 * len(pcs.channels()) + 2
    assert encodes > 0


def test_despawn_versus_left_view_and_atomic_failure() -> None:
    enc = PieceEncoder(schema)
    view = ViewReplica(schema)
    ids = np.array([5, 6, 7], np.uint32)
    snap = Snapshot(ids, {"x": np.array([1, 1, 1], np.int32), "y": np.array([1, 1, 1], np.int32),
                          "hp": np.array([1, 2, 3], np.uint8)})
    rows, ch = np.arange(3), np.array([0, 0, 1])
    p = enc.step(1, snap, rows, ch)
    view.apply(view_message(1, None, None, [b for b in (p.full(0), p.full(1)) if b]))
    assert view.ids.tolist() == [5, 6, 7] and view.entered.tolist() == [5, 6, 7]
    # 5 despawns; 6 moves to channel 2 (not subscribed); 7 stays
    snap2 = Snapshot(np.array([6, 7], np.uint32), {"x": np.array([1, 1], np.int32),
                     "y": np.array([1, 1], np.int32), "hp": np.array([2, 3], np.uint8)})
    p2 = enc.step(2, snap2, np.arange(2), np.array([2, 1]))
    msg = view_message(2, 1, None, [b for b in (p2.delta(0), p2.delta(1)) if b])
    before = (view.tick, view.ids)
    with pytest.raises(DeltaError):
        view.apply(view_message(2, 0, None, []))  # wrong base: nothing changes
    assert (view.tick, view.ids) == before
    view.apply(msg)
    assert view.despawned.tolist() == [5] and view.left_view.tolist() == [6]
    assert view.ids.tolist() == [7]


def test_moves_pieces_with_float_and_wide_fields() -> None:
    """MOVES pieces carry raw f32 / f64 values and d16 differences exactly."""
    fschema = WireSchema([WireField("x", "f32"), WireField("y", "f64"), WireField("a", "i16")])
    enc = PieceEncoder(fschema)
    view = ViewReplica(fschema)
    rng = np.random.default_rng(0)
    ids = np.arange(1, 51, dtype=np.uint32)
    x = rng.random(50).astype(np.float32)
    y = rng.random(50)
    a = np.zeros(50, np.int16)
    base: int | None = None
    kinds: set[str] = set()
    for t in range(1, 20):
        x[::3] += np.float32(0.01)
        y[1::4] -= 0.5
        a[::5] += 300  # a d16 difference
        snap = Snapshot(ids, {"x": x.copy(), "y": y.copy(), "a": a.copy()})
        p = enc.step(t, snap, np.arange(50), (ids % 3).astype(np.int64))
        pieces = [b for c in range(3)
                  if (b := p.full(c) if base is None else p.delta(c)) is not None]
        kinds.update("moves" if b[0] == 0x95 else "delta" for b in pieces)  # array of 5 / 3
        view.apply(view_message(t, base, None, pieces))
        base = t
        assert np.array_equal(view.ids, ids)
        for name, col in (("x", x), ("y", y), ("a", a)):
            assert np.array_equal(view.columns[name], col), (t, name)
    assert kinds == {"moves", "delta"}  # the first tick is full pieces, then MOVES
