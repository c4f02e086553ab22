"""SAME pieces (SPEC.md section 11, extension ``"interest/2"``): the encoder sends them only
when the rows repeat, the decoder applies them only on the rows it applied at exactly the
VIEW's base tick, and a random stream with skips, resets, cells entered and left, paused
cells, spawns and despawns keeps every client's view equal to its channels, old-form clients
never receiving a SAME piece."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest

from protocol.codes import DeltaError
from protocol.pieces import PieceEncoder, Pieces, view_message
from protocol.view import ViewReplica
from protocol.wireschema import Snapshot, WireField, WireSchema

schema = WireSchema([WireField("x", "i32", 0.01), WireField("y", "i32", 0.01),
                     WireField("hp", "u8")])
CELL = 10000


def form(piece: bytes) -> str:
    """'same' / 'same_mask' / 'moves' / 'delta' of one encoded piece."""
    obj = msgpack.unpackb(piece, raw=False)
    if len(obj) == 2 and isinstance(obj[1], bytes):
        return "same"
    if isinstance(obj[1], int):
        return "same_mask" if len(obj) == 3 else "moves"
    return "delta"


def cells(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.minimum(y // CELL, 9) * 10 + np.minimum(x // CELL, 9)).astype(np.int64)


class Client:
    """What the server keeps per viewer (subscription, fresh channels, last tick sent)
    and the client's ViewReplica; ``same``: negotiated ``"interest/2"``."""

    def __init__(self, same: bool) -> None:
        self.same = same
        self.view = ViewReplica(schema)
        self.sub: set[int] = set()
        self.fresh: set[int] = set()
        self.last: int | None = None
        self.forms: dict[str, int] = {}

    def send(self, t: int, pcs: Pieces, sub: set[int]) -> None:
        """The server's choice of pieces (gameserver/viewstream.py ``_view``)."""
        reset = pcs.base_tick is None or self.last != pcs.base_tick
        parts: list[bytes] = []
        for c in sorted(sub):
            if reset or c not in self.sub:
                b = pcs.full(c)
            elif self.same and c not in self.fresh:
                b = pcs.same(c)
            else:
                b = pcs.delta(c)
            if b is not None:
                parts.append(b)
                k = form(b)
                self.forms[k] = self.forms.get(k, 0) + 1
        left = [] if reset else sorted(self.sub - sub)
        self.fresh = set(sub) if reset else sub - self.sub
        self.view.apply(view_message(t, None if reset else pcs.base_tick, left, parts))
        self.sub, self.last = set(sub), t


def _subscription(rng: np.random.Generator) -> set[int]:
    cx, cy = rng.integers(0, 8), rng.integers(0, 8)
    return {j * 10 + i for i in range(cx, cx + 3) for j in range(cy, cy + 3)} | {1000}


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_random_stream_with_same_pieces(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    ids = np.sort(rng.choice(np.arange(1, 100000), n, replace=False)).astype(np.uint32)
    x = rng.integers(0, 100000, n).astype(np.int32)
    y = rng.integers(0, 100000, n).astype(np.int32)
    hp = rng.integers(0, 255, n).astype(np.uint8)
    moving = rng.random(n) < 0.3  # a fixed set of movers: their rows repeat tick after tick
    enc = PieceEncoder(schema)
    clients = [Client(same=k % 3 != 0) for k in range(9)]
    subs = [_subscription(rng) for _ in clients]
    for t in range(1, 240):
        # movers step (never 0 in x, so each changes every tick), except those of ~15% of
        # the cells this tick (a cell unchanged at some tick: stale rows at the next)
        paused = rng.random(100) < 0.15
        step = moving & ~paused[cells(x, y)]
        k = int(step.sum())
        dx = rng.integers(1, 60, k) * rng.choice([-1, 1], k)
        x[step] = np.clip(x[step] + dx, 0, 99999)
        y[step] = np.clip(y[step] + rng.integers(-60, 60, k), 0, 99999)
        if t % 5 == 0:  # sometimes another field changes too: a SAME piece with a mask
            hp[step] += 1
        if t % 17 == 0:  # despawn 5%, spawn up to 10 (DELTA pieces, rows change)
            keep = rng.random(ids.shape[0]) > 0.05
            ids, x, y, hp, moving = ids[keep], x[keep], y[keep], hp[keep], moving[keep]
            new = np.setdiff1d(rng.choice(np.arange(1, 100000), 10, replace=False), ids)
            m = new.shape[0]
            ids = np.concatenate([ids, new.astype(np.uint32)])
            order = np.argsort(ids)
            ids = ids[order]
            x = np.concatenate([x, rng.integers(0, 100000, m).astype(np.int32)])[order]
            y = np.concatenate([y, rng.integers(0, 100000, m).astype(np.int32)])[order]
            hp = np.concatenate([hp, np.zeros(m, np.uint8)])[order]
            moving = np.concatenate([moving, np.ones(m, bool)])[order]
        snap = Snapshot(ids.copy(), {"x": x.copy(), "y": y.copy(), "hp": hp.copy()})
        tm = np.flatnonzero(hp > 200)  # a second, team-like channel 1000
        rows = np.concatenate([np.arange(ids.shape[0]), tm])
        ch = np.concatenate([cells(x, y), np.full(tm.shape[0], 1000)])
        pcs = enc.step(t, snap, rows, ch)
        for i, cl in enumerate(clients):
            if rng.random() < 0.05:
                continue  # skipped (backpressure): its next VIEW is a reset
            if rng.random() < 0.08:
                subs[i] = _subscription(rng)  # the view moves: cells entered and left
            cl.send(t, pcs, subs[i])
            sel = np.isin(cells(x, y), list(cl.sub)) | (hp > 200)
            assert np.array_equal(cl.view.ids, ids[sel]), (t, i)
            assert np.array_equal(cl.view.columns["x"], x[sel])
            assert np.array_equal(cl.view.columns["y"], y[sel])
            assert np.array_equal(cl.view.columns["hp"], hp[sel])
        assert pcs.encodes <= 3 * len(pcs.channels()) + 3
    for cl in clients:
        if cl.same:
            assert cl.forms.get("same", 0) > 100 and cl.forms.get("same_mask", 0) > 10
            assert cl.forms["same"] + cl.forms["same_mask"] > cl.forms.get("moves", 0)
        else:  # an "interest" client without "interest/2" never gets one
            assert "same" not in cl.forms and "same_mask" not in cl.forms
            assert cl.forms.get("moves", 0) > 100


def _step(enc: PieceEncoder, t: int, x: list[int], hp: list[int]) -> Pieces:
    ids = np.arange(1, len(x) + 1, dtype=np.uint32)
    snap = Snapshot(ids, {"x": np.array(x, np.int32), "y": np.zeros(len(x), np.int32),
                          "hp": np.array(hp, np.uint8)})
    return enc.step(t, snap, np.arange(len(x)), np.zeros(len(x), np.int64))


def test_encoder_sends_same_only_when_the_rows_repeat() -> None:
    enc = PieceEncoder(schema)
    x, hp = [0] * 6, [0] * 6
    forms = []
    script: list[tuple[list[int], list[int]]] = [
        ([1, 3], []),      # 2: MOVES (the previous tick had none)
        ([1, 3], []),      # 3: the same rows and mask: [channel, values]
        ([1, 3], [1]),     # 4: the same rows, hp too: [channel, mask, values]
        ([1, 3], []),      # 5: the same rows, the mask back to x: [channel, mask, values]
        ([1, 2, 3], []),   # 6: other rows: MOVES again
        ([], []),          # 7: no change: no piece at all
        ([1, 2, 3], []),   # 8: the previous tick had no MOVES: MOVES
        ([1, 2, 3], []),   # 9: SAME
    ]
    p = _step(enc, 1, x, hp)
    assert p.same(0) is None  # no previous tick
    for t, (mv, hit) in enumerate(script, start=2):
        for r in mv:
            x[r] += 7
        for r in hit:
            hp[r] += 1
        p = _step(enc, t, x, hp)
        s, d = p.same(0), p.delta(0)
        if d is None:
            assert s is None
            forms.append(None)
            continue
        assert p.same(0) is s  # built once, shared
        forms.append(form(s) if s is not d else "long:" + form(d))
        if s is not d:
            assert len(s) < len(d)
    assert forms == ["long:moves", "same", "same_mask", "same_mask", "long:moves", None,
                     "long:moves", "same"]


def _warm() -> tuple[PieceEncoder, ViewReplica, list[int], list[int]]:
    """A view of channel 0 that applied MOVES at tick 2 (rows 1 and 3)."""
    enc = PieceEncoder(schema)
    view = ViewReplica(schema)
    x, hp = [0] * 6, [0] * 6
    p = _step(enc, 1, x, hp)
    view.apply(view_message(1, None, None, [p.full(0) or b""]))
    x[1] += 5
    x[3] += 5
    p = _step(enc, 2, x, hp)
    view.apply(view_message(2, 1, None, [p.delta(0) or b""]))
    return enc, view, x, hp


def _state(v: ViewReplica) -> Any:
    return (v.tick, v.ids.tolist(), {k: c.tolist() for k, c in v.columns.items()},
            sorted(v.channels))


def test_decoder_refuses_same_without_the_rows_of_the_base_tick() -> None:
    enc, view, x, hp = _warm()
    x[1] += 5
    x[3] += 5
    p = _step(enc, 3, x, hp)
    same = p.same(0)
    assert same is not None and form(same) == "same"
    # a view that entered channel 0 at tick 2 (a full piece: no rows remembered)
    late = ViewReplica(schema)
    late.apply(view_message(2, None, None, [_full_at(2, [0, 5, 0, 5, 0, 0])]))
    before = _state(late)
    with pytest.raises(DeltaError, match="SAME"):
        late.apply(view_message(3, 2, None, [same]))
    assert _state(late) == before
    late.apply(view_message(3, 2, None, [p.delta(0) or b""]))  # the long form applies
    assert late.columns["x"].tolist() == x
    # refused and nothing changed: a reset VIEW, the channel left in the same VIEW, a
    # 4-element piece, values too short, a mask with a column the values do not have
    bad = [view_message(3, None, None, [same]),
           view_message(3, 2, [0], [same]),
           msgpack.packb([22, 3, 2, None, [0, 1, 0, b""]], use_bin_type=True),
           msgpack.packb([22, 3, 2, None, [0, b"\x08\x05"]], use_bin_type=True),
           msgpack.packb([22, 3, 2, None, [0, 5, b"\x08\x05\x05"]], use_bin_type=True),
           msgpack.packb([22, 3, 2, None, [0, "x"]], use_bin_type=True)]
    before = _state(view)
    for msg in bad:
        with pytest.raises(DeltaError):
            view.apply(msg)
        assert _state(view) == before
    view.apply(view_message(3, 2, None, [same]))
    assert view.columns["x"].tolist() == x
    # the channel does not change at tick 4: at tick 5 its remembered rows (tick 3) are stale
    view.apply(view_message(4, 3, None, []))
    stale = msgpack.packb([0, b"\x08\x05\x05"], use_bin_type=True)
    with pytest.raises(DeltaError, match="SAME"):
        view.apply(view_message(5, 4, None, [stale]))
    # after a DELTA piece (a spawn) the rows are forgotten too
    enc2, v2, x2, _ = _warm()
    p = enc2.step(3, Snapshot(np.arange(1, 8, dtype=np.uint32),
                              {"x": np.array([*x2, 0], np.int32),
                               "y": np.zeros(7, np.int32), "hp": np.zeros(7, np.uint8)}),
                  np.arange(7), np.zeros(7, np.int64))
    v2.apply(view_message(3, 2, None, [p.delta(0) or b""]))
    assert len(v2) == 7
    with pytest.raises(DeltaError, match="SAME"):
        v2.apply(view_message(4, 3, None, [msgpack.packb([0, b"\x08\x05\x05"],
                                                         use_bin_type=True)]))


def _full_at(t: int, x: list[int]) -> bytes:
    enc = PieceEncoder(schema)
    p = _step(enc, t, x, [0] * len(x))
    b = p.full(0)
    assert b is not None
    return b


def test_spec_quotes_the_same_pieces_of_the_vectors() -> None:
    """SPEC.md section 11 quotes the SAME pieces of views.json steps 5 and 6 byte for byte."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = (root / "protocol" / "SPEC.md").read_text()
    seq = json.loads((root / "protocol" / "vectors" / "views.json").read_text())["vectors"][0]
    for k, want in ((4, "same"), (5, "same_mask")):
        (piece,) = msgpack.unpackb(bytes.fromhex(seq["steps"][k]["hex"]), raw=False)[4:]
        raw = msgpack.packb(piece, use_bin_type=True)
        assert form(raw) == want
        assert "`" + " ".join(f"{b:02x}" for b in raw) + "`" in spec


def test_a_refused_view_leaves_every_channel_as_it_was() -> None:
    """A VIEW naming one channel twice, refused at its second piece: the channel's state is
    the one before the VIEW (undone newest first), so the good VIEW still applies after."""
    enc, view, x, hp = _warm()
    x[1] += 5
    p = _step(enc, 3, x, hp)
    d = p.delta(0)
    assert d is not None
    chan_before = (view.channels[0].tick, view.channels[0].columns["x"].tolist())
    with pytest.raises(DeltaError):
        view.apply(view_message(3, 2, None, [d, d]))  # 2nd: the base no longer matches
    assert (view.channels[0].tick, view.channels[0].columns["x"].tolist()) == chan_before
    view.apply(view_message(3, 2, None, [d]))
    assert view.columns["x"].tolist() == x
