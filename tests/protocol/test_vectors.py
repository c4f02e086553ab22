"""The language-neutral vectors in protocol/vectors/: Python decodes each exactly, and the
generator reproduces the committed files byte for byte (so they cannot go stale)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from protocol.delta import Replica, WireSchema, decode_delta
from protocol.messages import DeltaError, MessageError, decode, encode

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"


def _load(name: str) -> list[dict[str, Any]]:
    data = json.loads((VECTORS / name).read_text())
    assert data["format"] == 1
    vectors: list[dict[str, Any]] = data["vectors"]
    return vectors


def _replica(vec: dict[str, Any]) -> Replica:
    """A replica set from the JSON base state directly (not via our own encoder)."""
    schema = WireSchema.from_wire(vec["schema"])
    r = Replica(schema)
    base = vec["base"]
    if base is not None:
        r.tick = base["tick"]
        r.ids = np.array(base["ids"], np.uint32)
        r.columns = {f.name: np.array(base["columns"][f.name], f.np_dtype) for f in schema.fields}
    return r


def _same(a: list[Any], b: list[Any]) -> bool:
    """Exact equality, including the sign of zero for floats."""
    return len(a) == len(b) and all(
        x == y and math.copysign(1, x) == math.copysign(1, y) for x, y in zip(a, b)
    )


def test_generator_reproduces_committed_files() -> None:
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    built: dict[str, str] = mod.build()
    assert sorted(built) == sorted(p.name for p in VECTORS.glob("*.json"))
    for name, text in built.items():
        assert (VECTORS / name).read_text() == text, f"{name} is stale: run make_vectors.py"


@pytest.mark.parametrize("vec", _load("deltas.json"), ids=lambda v: v["name"])
def test_delta_vector(vec: dict[str, Any]) -> None:
    data = bytes.fromhex(vec["hex"])
    d = decode_delta(data)
    dec = vec["decoded"]
    assert (d.tick, d.base_tick, d.count) == (dec["tick"], dec["base_tick"], dec["count"])
    assert d.despawned.tolist() == dec["despawned"]
    assert d.spawned_ids.tolist() == dec["spawned_ids"]
    assert [(c.code, c.values.tolist()) for c in d.spawned] == [
        (c["code"], c["values"]) for c in dec["spawned"]
    ]
    assert [
        (g.mask, g.rows.tolist(), [(c.code, c.values.tolist()) for c in g.columns])
        for g in d.groups
    ] == [
        (g["mask"], g["rows"], [(c["code"], c["values"]) for c in g["columns"]])
        for g in dec["groups"]
    ]
    r = _replica(vec)
    r.apply(data)
    exp = vec["expected"]
    assert r.tick == exp["tick"]
    assert r.ids.tolist() == exp["ids"]
    for f in r.schema.fields:
        assert r.columns[f.name].dtype == f.np_dtype
        assert _same(r.columns[f.name].tolist(), exp["columns"][f.name]), f.name
        assert _same(r.values(f.name).tolist(), exp["values"][f.name]), f.name


@pytest.mark.parametrize("vec", _load("deltas_invalid.json"), ids=lambda v: v["name"])
def test_invalid_delta_vector(vec: dict[str, Any]) -> None:
    r = _replica(vec)
    before = r.snapshot()
    with pytest.raises(DeltaError):
        r.apply(bytes.fromhex(vec["hex"]))
    assert r.tick == vec["base"]["tick"] and r.snapshot().equals(before)


@pytest.mark.parametrize("vec", _load("messages.json"), ids=lambda v: v["name"])
def test_message_vector(vec: dict[str, Any]) -> None:
    data = bytes.fromhex(vec["hex"])
    assert msgpack.unpackb(data) == vec["value"]
    msg = decode(data)
    assert encode(msg) == data  # type: ignore[arg-type]


@pytest.mark.parametrize("vec", _load("messages_invalid.json"), ids=lambda v: v["name"])
def test_invalid_message_vector(vec: dict[str, Any]) -> None:
    with pytest.raises(MessageError) as info:
        decode(bytes.fromhex(vec["hex"]))
    assert info.value.code == vec["error_code"]


def _leading_hex(line: str) -> str:
    """The hex byte tokens a walk-through line starts with (the rest is commentary)."""
    out = []
    for tok in line.split():
        if len(tok) != 2 or any(c not in "0123456789abcdef" for c in tok):
            break
        out.append(tok)
    return "".join(out)


def test_spec_walkthrough_matches_vectors() -> None:
    """SPEC.md section 9 quotes vector bytes; they must not drift from the generated files."""
    spec = (VECTORS.parent / "SPEC.md").read_text()
    full = spec.split("Full hex: `", 1)[1].split("`", 1)[0]
    vecs = {v["name"]: v for v in _load("deltas.json")}
    assert bytes.fromhex(full) == bytes.fromhex(vecs["full_snapshot"]["hex"])
    move = spec.split("### 9.2", 1)[1].split("```", 2)[1]
    move_hex = "".join(_leading_hex(line) for line in move.splitlines())
    assert bytes.fromhex(move_hex) == bytes.fromhex(vecs["move_xy"]["hex"])
