"""The web client's node tests (``node --test clients/web/test/``), run from pytest.

Besides the shared vectors (protocol/vectors/*.json, read by the node tests directly), this
wrapper writes a cross-check fixture: random entity-state sequences (spawns, despawns, moves,
every wire dtype, quantized fields) encoded by the Python delta encoder, with the replica
state Python reaches after each delta. The JavaScript replica must reach the same state,
bit for bit. Skips (with the reason) when node or the npm packages are missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from protocol.delta import decode_delta, encode_delta
from protocol.replica import Replica
from protocol.wireschema import Snapshot, WireField, WireSchema

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "clients" / "web"

FIELDS = [
    WireField("x", "i32", 0.01, "float"),
    WireField("y", "i32", 0.01, "float"),
    WireField("kind", "u8", None, "int"),
    WireField("hp", "i16", None, "int"),
    WireField("owner", "u32", None, "player"),
    WireField("angle", "f32", None, "float"),
    WireField("mass", "f64", None, "float"),
    WireField("tilt", "i8", None, "int"),
    WireField("ammo", "u16", None, "int"),
    WireField("speed", "u8", 0.5, "float"),
]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the web client tests need node >= 18)")
    if not (WEB / "node_modules" / "@msgpack" / "msgpack").is_dir():
        pytest.skip("clients/web/node_modules missing: run `npm ci` in clients/web")
    return node


def _random_snapshot(rng: np.random.Generator, ids: np.ndarray, prev: Snapshot | None,
                     schema: WireSchema) -> Snapshot:
    cols: dict[str, np.ndarray] = {}
    n = ids.shape[0]
    for f in schema.fields:
        dt = f.np_dtype
        if dt.kind == "f":
            fresh = np.asarray(rng.normal(0, 1e3, n)).astype(dt)
        else:
            info = np.iinfo(dt)
            fresh = rng.integers(info.min, int(info.max) + 1, n, dtype=np.int64).astype(dt)
        if prev is not None and n:
            # keep most values, nudge some (small diffs), replace a few (raw)
            pos = np.searchsorted(prev.ids, ids)
            pos = np.minimum(pos, max(prev.ids.shape[0] - 1, 0))
            known = prev.ids.shape[0] > 0
            had = np.zeros(n, bool)
            if known:
                had = prev.ids[pos] == ids
            col = fresh.copy()
            col[had] = prev.columns[f.name][pos[had]]
            nudge = had & (rng.random(n) < 0.3)
            if dt.kind == "f":
                col[nudge] += dt.type(0.5)
            else:
                info = np.iinfo(dt)
                wide = col.astype(np.int64)
                wide[nudge] += rng.integers(-3, 4, int(nudge.sum()))
                col = np.clip(wide, info.min, info.max).astype(dt)
            fresh = col
        cols[f.name] = fresh
    return Snapshot(ids, cols)


def _sequence(seed: int, steps: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    schema = WireSchema(FIELDS)
    replica = Replica(schema)
    ids = np.unique(rng.integers(1, 5000, 40).astype(np.uint32))
    snap: Snapshot | None = None
    out: list[dict[str, Any]] = []
    tick = 100
    for step in range(steps):
        if step:
            keep = ids[rng.random(ids.shape[0]) > 0.1]
            born = rng.integers(1, 2**32 - 1, int(rng.integers(0, 6)), dtype=np.uint64)
            ids = np.unique(np.concatenate([keep, born.astype(np.uint32)]))
        cur = _random_snapshot(rng, ids, snap, schema)
        full = snap is None or step % 17 == 0
        data = encode_delta(None if full else snap, cur, tick=tick + 1, base_tick=tick)
        replica.apply(decode_delta(data))
        tick += 1
        out.append({
            "hex": data.hex(),
            "tick": tick,
            "ids": [int(i) for i in replica.ids],
            "columns": {k: [_jsonable(v) for v in c] for k, c in replica.columns.items()},
        })
        snap = cur
    return {"schema": schema.to_wire(), "steps": out}


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.floating):
        # exact: the float's bytes as hex, plus a readable value
        return {"f": float(v), "hex": v.tobytes().hex()}
    return int(v)


def _view_sequence(seed: int, steps: int) -> dict[str, Any]:
    """A random VIEW stream (interest management, SPEC.md section 11) for one client that
    offered "interest/2": a fixed set of movers (SAME pieces), cells that pause (stale rows),
    spawns and despawns (DELTA pieces), a view that moves (cells entered and left), skipped
    ticks (resets); the pieces chosen as gameserver/viewstream.py does, and the union state
    the Python ViewReplica reaches after each message."""
    from protocol.pieces import PieceEncoder, view_message
    from protocol.view import ViewReplica

    rng = np.random.default_rng(seed)
    schema = WireSchema([FIELDS[0], FIELDS[1], FIELDS[3], FIELDS[5]])  # x, y, hp, angle
    n = 300
    ids = np.sort(rng.choice(np.arange(1, 50000), n, replace=False)).astype(np.uint32)
    cols = {"x": rng.integers(0, 100000, n).astype(np.int32),
            "y": rng.integers(0, 100000, n).astype(np.int32),
            "hp": rng.integers(-100, 100, n).astype(np.int16),
            "angle": rng.normal(0, 1, n).astype(np.float32)}
    moving = rng.random(n) < 0.4
    enc = PieceEncoder(schema)
    view = ViewReplica(schema)
    held: set[int] = set()
    fresh: set[int] = set()
    last: int | None = None
    sub = {0, 1, 10, 11}
    out: list[dict[str, Any]] = []
    for t in range(1, steps + 1):
        cell = (np.minimum(cols["y"] // 20000, 4) * 10 + np.minimum(cols["x"] // 20000, 4))
        step = moving & (rng.random(100) >= 0.1)[cell]  # ~10% of the cells pause
        k = int(step.sum())
        cols["x"][step] = np.clip(cols["x"][step] + rng.integers(1, 300, k), 0, 99999)
        if t % 4 == 0:
            cols["angle"][step] += np.float32(0.25)  # another mask: SAME with a mask
        if t % 9 == 0:  # spawns and despawns
            keep = rng.random(ids.shape[0]) > 0.05
            born = np.setdiff1d(rng.choice(np.arange(1, 50000), 5, replace=False), ids[keep])
            ids = np.concatenate([ids[keep], born.astype(np.uint32)])
            order = np.argsort(ids)
            ids = ids[order]
            m = born.shape[0]
            for name, c in cols.items():
                cols[name] = np.concatenate([c[keep], np.zeros(m, c.dtype)])[order]
            moving = np.concatenate([moving[keep], np.ones(m, bool)])[order]
        cell = (np.minimum(cols["y"] // 20000, 4) * 10 + np.minimum(cols["x"] // 20000, 4))
        snap = Snapshot(ids.copy(), {k2: c.copy() for k2, c in cols.items()})
        pcs = enc.step(t, snap, np.arange(ids.shape[0]), cell.astype(np.int64))
        if rng.random() < 0.05:
            continue  # skipped: the next VIEW is a reset
        if rng.random() < 0.1:
            cx, cy = rng.integers(0, 4, 2)
            sub = {int(cy + j) * 10 + int(cx + i) for i in (0, 1) for j in (0, 1)}
        reset = pcs.base_tick is None or last != pcs.base_tick
        parts = []
        for c in sorted(sub):
            b = (pcs.full(c) if reset or c not in held else
                 pcs.delta(c) if c in fresh else pcs.same(c))
            if b is not None:
                parts.append(b)
        left = [] if reset else sorted(held - sub)
        fresh = set(sub) if reset else sub - held
        held, last = set(sub), t
        data = view_message(t, None if reset else pcs.base_tick, left, parts)
        view.apply(data)
        out.append({"hex": data.hex(), "tick": t, "ids": [int(i) for i in view.ids],
                    "columns": {k2: [_jsonable(v) for v in c]
                                for k2, c in view.columns.items()}})
    return {"schema": schema.to_wire(), "steps": out}


def test_node_suite(tmp_path: Path) -> None:
    node = _node()
    fixture = tmp_path / "delta_sequences.json"
    fixture.write_text(json.dumps([_sequence(seed, 60) for seed in (1, 2, 3)]))
    views = tmp_path / "view_sequences.json"
    seqs = [_view_sequence(seed, 120) for seed in (1, 2)]
    forms = [("same" if isinstance(pc[1], bytes) else "delta" if isinstance(pc[1], list)
              else "same_mask" if len(pc) == 3 else "moves")
             for q in seqs for st in q["steps"]
             for pc in msgpack.unpackb(bytes.fromhex(st["hex"]))[4:]]
    for kind in ("same", "same_mask", "moves", "delta"):  # every piece form is exercised
        assert forms.count(kind) >= 10, (kind, forms.count(kind))
    views.write_text(json.dumps(seqs))
    env = dict(os.environ, GAMESERVER_DELTA_FIXTURE=str(fixture),
               GAMESERVER_VIEW_FIXTURE=str(views), NODE_NO_WARNINGS="1")
    files = sorted(str(p.relative_to(WEB)) for p in (WEB / "test").glob("*.test.mjs"))
    assert len(files) >= 5, files
    proc = subprocess.run(
        [node, "--test", "--test-reporter=spec", *files],
        cwd=WEB, env=env, capture_output=True, text=True, timeout=120,
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"node --test failed:\n{tail}"
    out = proc.stdout
    assert "fixture: python delta sequences" in out, tail
    assert "fixture: python VIEW sequences" in out, tail
    for name in ("messages.json", "messages_invalid.json", "deltas.json", "deltas_invalid.json"):
        assert f"vectors: {name}" in out, f"the {name} vector test did not run:\n{tail}"
    assert re.search(r"\bskipped 0\b", out), f"some node tests were skipped:\n{tail}"
    assert re.search(r"\bfail 0\b", out), tail
