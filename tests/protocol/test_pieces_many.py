"""``Pieces.many`` (the batched builder the server's steady frames use) against the single
lookups ``Pieces.same`` / ``Pieces.delta``: the same bytes, the same encode counts, whichever
order and mix of the two ways a tick's pieces are asked for (they share one memo)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from protocol.pieces import PieceEncoder, Pieces
from protocol.wireschema import Snapshot, WireField, WireSchema

schema = WireSchema([WireField("x", "i32", 0.01), WireField("y", "i32", 0.01),
                     WireField("hp", "u8")])
CELL = 10000
TEAM = 1000


def cells(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.minimum(y // CELL, 9) * 10 + np.minimum(x // CELL, 9)).astype(np.int64)


def _stream(seed: int, ticks: int) -> list[tuple[int, Snapshot, np.ndarray, np.ndarray]]:
    """A world of fixed movers (SAME pieces), with paused cells, field changes (masks),
    despawns / spawns (DELTA pieces) and a team channel."""
    rng = np.random.default_rng(seed)
    n = 500
    ids = np.sort(rng.choice(np.arange(1, 100000), n, replace=False)).astype(np.uint32)
    x = rng.integers(0, 100000, n).astype(np.int32)
    y = rng.integers(0, 100000, n).astype(np.int32)
    hp = rng.integers(0, 255, n).astype(np.uint8)
    moving = rng.random(n) < 0.3
    out = []
    for t in range(1, ticks):
        paused = rng.random(100) < 0.15
        step = moving & ~paused[cells(x, y)]
        k = int(step.sum())
        x[step] = np.clip(x[step] + rng.integers(1, 60, k) * rng.choice([-1, 1], k), 0, 99999)
        # sometimes a long jump: a row gap >= 256 in the target cell (no MOVES piece)
        if t % 7 == 0:
            x[step] = np.clip(x[step] + rng.integers(-30000, 30000, k), 0, 99999)
        if t % 5 == 0:
            hp[step] += 1
        if t % 11 == 0:
            keep = rng.random(ids.shape[0]) > 0.05
            ids, x, y, hp, moving = ids[keep], x[keep], y[keep], hp[keep], moving[keep]
        snap = Snapshot(ids.copy(), {"x": x.copy(), "y": y.copy(), "hp": hp.copy()})
        tm = np.flatnonzero(hp > 200)
        rows = np.concatenate([np.arange(ids.shape[0]), tm])
        ch = np.concatenate([cells(x, y), np.full(tm.shape[0], TEAM)])
        out.append((t, snap, rows, ch))
    return out


ALL = [*range(100), TEAM, TEAM + 1]


@pytest.mark.parametrize("seed", range(4))
def test_many_matches_single_lookups(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    a, b = PieceEncoder(schema), PieceEncoder(schema)
    forms = set()
    prev_moves: dict[int, list[object]] = {}
    for t, snap, rows, ch in _stream(seed, 60):
        pa: Pieces = a.step(t, snap, rows, ch)
        pb: Pieces = b.step(t, snap, rows, ch)
        # b: some single lookups first (either kind), then batches of random subsets
        for c in rng.choice(ALL, 10):
            assert (pb.same(int(c)) if rng.random() < 0.5 else pb.delta(int(c))) is not None \
                or int(c) not in pb.changed
        got: dict[bool, dict[int, bytes]] = {True: {}, False: {}}
        for _ in range(3):
            kind = bool(rng.random() < 0.6)
            sub = [int(c) for c in rng.choice(ALL, 40)]
            m = pb.many(sub, kind)
            assert set(m) == {c for c in sub if c in pb.changed}
            got[kind].update(m)
        for kind, m in got.items():
            for c, piece in m.items():
                ref = pa.same(c) if kind else pa.delta(c)
                assert piece == ref, (t, c, kind)
                forms.add((kind, piece[0] & 0x0F))
        # everything the single lookups of a give, b gives too (memo shared both ways)
        for c in ALL:
            assert pb.same(c) == pa.same(c)
            assert pb.delta(c) == pa.delta(c)
            assert pb.many([c], True).get(c) == pa.same(c)
        assert pa.encodes == pb.encodes
        # an independent reference for the SAME form, from the MOVES pieces of this tick and
        # the previous one ([c, mask, first row, gaps, values]; SPEC.md section 11)
        moves = {}
        for c in ALL:
            d = pa.delta(c)
            if d is None:
                assert pa.same(c) is None
                continue
            obj = msgpack.unpackb(d, raw=False)
            if len(obj) == 5:
                moves[c] = obj
            was = prev_moves.get(c)
            if len(obj) == 5 and was is not None and obj[2:4] == was[2:4]:
                want = [c, obj[4]] if obj[1] == was[1] else [c, obj[1], obj[4]]
                assert pb.same(c) == msgpack.packb(want, use_bin_type=True), (t, c)
            else:
                assert pb.same(c) == d, (t, c)
        prev_moves = moves
        n = pb.encodes
        pb.many(ALL, True)
        pb.many(ALL, False)
        assert pb.encodes == n  # nothing built twice
    # SAME ([c, values]: 2 items), SAME with a mask (3) and MOVES (5) pieces were among them
    assert {(True, 2), (True, 3), (False, 5)} <= forms


def test_many_before_any_previous_tick() -> None:
    enc = PieceEncoder(schema)
    t, snap, rows, ch = _stream(9, 3)[0]
    pcs = enc.step(t, snap, rows, ch)
    assert pcs.many(ALL, True) == {} and pcs.many(ALL, False) == {}
    assert pcs.encodes == 0
