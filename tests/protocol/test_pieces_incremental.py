"""The incremental PieceEncoder.step (patched arrangement, per-row comparison) gives exactly
the pieces of the reference step (``incremental=False``: full sort, key matching) over many
random ticks: entities moving between cells (few, none, many), spawns, despawns, a second
team-like channel joined and left, memberships swapping channels, float fields with NaN."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.pieces import PieceEncoder, Pieces
from protocol.wireschema import Snapshot, WireField, WireSchema

schema = WireSchema([WireField("x", "i32", 0.01), WireField("y", "i32", 0.01),
                     WireField("hp", "u8"), WireField("f", "f32"), WireField("z", "i16")])
CELL = 10000
TEAM = 1000  # the team-like channel: entities with hp > 200


def cells(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.minimum(y // CELL, 9) * 10 + np.minimum(x // CELL, 9)).astype(np.int64)


def same(a: Pieces, b: Pieces) -> None:
    """Every observable of the two tick's pieces is equal (bytes, channels, rows)."""
    assert a.tick == b.tick and a.base_tick == b.base_tick
    assert a.changed == b.changed
    assert a.channels() == b.channels()
    for c in sorted(set(range(100)) | {TEAM, TEAM + 1}):
        assert a.delta(c) == b.delta(c), (a.tick, c)
        assert a.full(c) == b.full(c), (a.tick, c)
        assert a.count(c) == b.count(c)
        ia, ca = a.rows(c)
        ib, cb = b.rows(c)
        assert ia.tobytes() == ib.tobytes()
        assert [x.tobytes() for x in ca] == [x.tobytes() for x in cb]
    assert a.encodes == b.encodes


@pytest.mark.parametrize("seed", range(6))
def test_incremental_step_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    ids = np.sort(rng.choice(np.arange(1, 100000), n, replace=False)).astype(np.uint32)
    x = rng.integers(0, 100000, n).astype(np.int32)
    y = rng.integers(0, 100000, n).astype(np.int32)
    hp = rng.integers(0, 255, n).astype(np.uint8)
    fl = rng.random(n).astype(np.float32)
    z = np.zeros(n, np.int16)
    inc, ref = PieceEncoder(schema), PieceEncoder(schema, incremental=False)
    paths: set[str] = set()
    for t in range(1, 160):
        kind = rng.integers(0, 6)
        if kind == 0:  # values only, nobody changes cell
            m = rng.random(ids.shape[0]) < 0.3
            z[m] += rng.integers(-500, 500, m.sum()).astype(np.int16)
            fl[m & (rng.random(ids.shape[0]) < 0.1)] = np.nan
        elif kind in (1, 2):  # a few small moves (some cross a cell border)
            m = rng.random(ids.shape[0]) < 0.1
            x[m] = np.clip(x[m] + rng.integers(-800, 800, m.sum()), 0, 99999)
            y[m] = np.clip(y[m] + rng.integers(-800, 800, m.sum()), 0, 99999)
        elif kind == 3:  # many jump anywhere (more than 1/8 change cell)
            m = rng.random(ids.shape[0]) < 0.4
            x[m] = rng.integers(0, 100000, m.sum())
            y[m] = rng.integers(0, 100000, m.sum())
        elif kind == 4:  # team membership changes (rows change), a few hp flips
            k = rng.random(ids.shape[0]) < 0.05
            hp[k] = np.where(hp[k] > 200, 10, 250).astype(np.uint8)
        else:  # despawn some, spawn some
            keep = rng.random(ids.shape[0]) > 0.05
            ids, x, y, hp, fl, z = ids[keep], x[keep], y[keep], hp[keep], fl[keep], z[keep]
            new = np.setdiff1d(rng.choice(np.arange(1, 100000), 15, replace=False), ids)
            k = new.shape[0]
            ids = np.concatenate([ids, new.astype(np.uint32)])
            order = np.argsort(ids)
            ids = ids[order]
            x = np.concatenate([x, rng.integers(0, 100000, k).astype(np.int32)])[order]
            y = np.concatenate([y, rng.integers(0, 100000, k).astype(np.int32)])[order]
            hp = np.concatenate([hp, np.zeros(k, np.uint8)])[order]
            fl = np.concatenate([fl, np.ones(k, np.float32)])[order]
            z = np.concatenate([z, np.zeros(k, np.int16)])[order]
        snap = Snapshot(ids.copy(), {"x": x.copy(), "y": y.copy(), "hp": hp.copy(),
                                     "f": fl.copy(), "z": z.copy()})
        tm = np.flatnonzero(hp > 200)
        rows = np.concatenate([np.arange(ids.shape[0]), tm])
        ch = np.concatenate([cells(x, y), np.full(tm.shape[0], TEAM)])
        if t % 23 == 0:  # the team channel of odd-id members moves to TEAM + 1
            ch[ids.shape[0]:] += (ids[tm] & 1).astype(np.int64)
        a, b = inc.step(t, snap, rows, ch), ref.step(t, snap, rows, ch)
        same(a, b)
        st = inc._prev
        assert st is not None
        if st.moved is None:
            paths.add("generic")
        elif st.moved.shape[0] == 0:
            paths.add("same")
        elif st.moved.shape[0] * 8 <= rows.shape[0]:
            paths.add("patch")
        else:
            paths.add("sorted-fast")
        if t % 41 == 0:
            inc.reset()
            ref.reset()
    assert paths == {"generic", "same", "patch", "sorted-fast"}


def test_swapped_memberships_take_the_generic_path() -> None:
    """An entity's two memberships exchange channels: the same keys as before, nothing
    added or removed (key matching says so); the incremental step must agree, and take its
    fast path again once no key is reused."""
    s1 = WireSchema([WireField("v", "u16")])
    ids = np.array([3, 9], np.uint32)
    rows = np.array([0, 0, 1, 1])  # two memberships per entity, rows ascending per channel
    inc, ref = PieceEncoder(s1), PieceEncoder(s1, incremental=False)
    moved = []
    for t, (ch, v) in enumerate([([0, 1, 0, 1], [1, 2]), ([1, 0, 1, 0], [1, 5]),
                                 ([1, 0, 0, 1], [7, 5]), ([1, 0, 0, 1], [7, 6]),
                                 ([2, 0, 0, 1], [7, 6])], 1):
        snap = Snapshot(ids.copy(), {"v": np.array(v, np.uint16)})
        chan = np.array(ch, np.int64)
        a, b = inc.step(t, snap, rows, chan), ref.step(t, snap, rows, chan)
        assert a.changed == b.changed
        for c in (0, 1, 2):
            assert a.delta(c) == b.delta(c) and a.full(c) == b.full(c), (t, c)
        assert inc._prev is not None
        m = inc._prev.moved
        moved.append(None if m is None else m.tolist())
    assert moved == [None, None, None, [], [0]]
