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


def test_node_suite(tmp_path: Path) -> None:
    node = _node()
    fixture = tmp_path / "delta_sequences.json"
    fixture.write_text(json.dumps([_sequence(seed, 60) for seed in (1, 2, 3)]))
    env = dict(os.environ, GAMESERVER_DELTA_FIXTURE=str(fixture), NODE_NO_WARNINGS="1")
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
    for name in ("messages.json", "messages_invalid.json", "deltas.json", "deltas_invalid.json"):
        assert f"vectors: {name}" in out, f"the {name} vector test did not run:\n{tail}"
    assert re.search(r"\bskipped 0\b", out), f"some node tests were skipped:\n{tail}"
    assert re.search(r"\bfail 0\b", out), tail
