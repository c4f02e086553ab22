"""The language-neutral vectors in protocol/vectors/: Python decodes each exactly, and the
generator reproduces the committed files byte for byte (so they cannot go stale)."""

from __future__ import annotations

import importlib.util
import json
import math
import struct
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from protocol.delta import WireSchema, decode_delta
from protocol.messages import DeltaError, Input, MessageError, decode, encode
from protocol.replica import Replica

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


@pytest.mark.parametrize("vec", _load("messages_lenient.json"), ids=lambda v: v["name"])
def test_lenient_message_vector(vec: dict[str, Any]) -> None:
    """Bytes our encoder would not write (other widths, float32, extra keys / elements) are
    accepted, and mean what their msgpack value says."""
    data = bytes.fromhex(vec["hex"])
    assert msgpack.unpackb(data) == vec["value"]
    msg = decode(data)
    body = vec["value"][1]
    canonical = decode(encode(msg))  # type: ignore[arg-type]
    assert canonical == msg
    assert encode(msg) != data  # not what an encoder writes (else it belongs in messages.json)
    for key, attr in (("t", "t"), ("v", "v"), ("name", "name"), ("room", "room"), ("s", "seq")):
        if key in body and hasattr(msg, attr) and type(msg).__name__ != "InputAck":
            assert getattr(msg, attr) == body[key], key


@pytest.mark.parametrize("vec", _load("inputs.json"), ids=lambda v: v["name"])
def test_input_vector(vec: dict[str, Any]) -> None:
    """INPUT d maps against a WELCOME inputs schema (SPEC.md section 2, INPUT)."""
    from gameserver.inputs import InputError, InputSchema

    schema = InputSchema.from_wire(vec["inputs"])
    if vec["accepted"]:
        values = schema.validate(vec["d"])
        assert dict(zip(schema, values)) == vec["normalized"]
        assert [type(v) for v in values] == [type(v) for v in vec["normalized"].values()]
    else:
        assert vec["error_code"] == 3
        with pytest.raises(InputError):
            schema.validate(vec["d"])


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


# ------------------------------------------------------------------ an independent decoder
# A second, deliberately naive implementation written from SPEC.md section 5 alone (plain
# Python + struct, no numpy, no protocol.delta): if it agrees with every vector, the spec
# text is complete enough to implement from.
_FMT = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "f32": "f",
        "f64": "d", "d8": "b", "d16": "h", "d32": "i"}  # fmt: skip
_RANGE = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i16": (-32768, 32767),
          "u32": (0, 2**32 - 1), "i32": (-(2**31), 2**31 - 1)}  # fmt: skip


class _Bad(Exception):
    pass


def _unpack_bin(code: str, data: bytes) -> list[Any]:
    if code not in _FMT or not isinstance(data, bytes):
        raise _Bad(code)
    width = struct.calcsize("<" + _FMT[code])
    if len(data) % width:
        raise _Bad("length")
    return list(struct.unpack(f"<{len(data) // width}{_FMT[code]}", data))


def _spec_idlist(obj: Any) -> list[int]:
    first, code, gaps = obj[0], obj[1], obj[2]
    if code not in ("u8", "u16", "u32") or not isinstance(first, int) or first < 0:
        raise _Bad("idlist")
    out = [first]
    for g in _unpack_bin(code, gaps):
        if g < 1:
            raise _Bad("gap")
        out.append(out[-1] + g)
    if out[-1] > 2**32 - 1:
        raise _Bad("u32")
    return out


def _spec_apply(schema: dict[str, Any], state: dict[str, Any] | None, data: bytes) -> dict:
    fields = schema["fields"]
    msg = msgpack.unpackb(data, raw=False)  # raises on trailing bytes / truncation
    if not isinstance(msg, list) or len(msg) < 7 or msg[0] != 17:
        raise _Bad("shape")
    _, tick, base_tick, count, desp, spawn, groups = msg[:7]
    if base_tick is None:
        ids: list[int] = []
        cols: dict[str, list[Any]] = {f["n"]: [] for f in fields}
    else:
        if state is None or base_tick != state["tick"]:
            raise _Bad("base tick")
        ids = list(state["ids"])
        cols = {k: list(v) for k, v in state["columns"].items()}
    rows = {i: {k: cols[k][r] for k in cols} for r, i in enumerate(ids)}
    for i in _spec_idlist(desp) if desp is not None else []:
        if i not in rows:
            raise _Bad("unknown id")
        del rows[i]
    if spawn is not None:
        new_ids = _spec_idlist(spawn[0])
        if len(spawn[1]) != len(fields):
            raise _Bad("spawn columns")
        values = [_unpack_bin(c[0], c[1]) for c in spawn[1]]
        for j, i in enumerate(new_ids):
            if i in rows:
                raise _Bad("exists")
            rows[i] = {}
            for f, col in zip(fields, values):
                if len(col) != len(new_ids):
                    raise _Bad("spawn length")
                rows[i][f["n"]] = col[j]
    order = sorted(rows)
    if len(order) != count:
        raise _Bad("count")
    out = {f["n"]: [rows[i][f["n"]] for i in order] for f in fields}
    for group in groups:
        mask, rowlist, gcols = group[:3]  # extra trailing elements are ignored (rule 3)
        if mask == 0 or mask >> len(fields):
            raise _Bad("mask")
        rs = _spec_idlist(rowlist)
        bits = [b for b in range(len(fields)) if mask >> b & 1]
        if len(bits) != len(gcols):
            raise _Bad("columns")
        for b, (code, raw, *_later) in zip(bits, gcols):
            f = fields[b]
            vals = _unpack_bin(code, raw)
            if len(vals) != len(rs) or any(r >= count for r in rs):
                raise _Bad("rows")
            is_float = f["t"] in ("f32", "f64")
            if is_float != (code in ("f32", "f64")) or (is_float and code != f["t"]):
                raise _Bad("float code")
            for r, v in zip(rs, vals):
                out[f["n"]][r] = out[f["n"]][r] + v if code.startswith("d") else v
    for f in fields:
        if f["t"] in _RANGE:
            lo, hi = _RANGE[f["t"]]
            if any(not lo <= v <= hi for v in out[f["n"]]):
                raise _Bad("range")
    return {"tick": tick, "ids": order, "columns": out}


@pytest.mark.parametrize("vec", _load("deltas.json"), ids=lambda v: v["name"])
def test_independent_decoder_agrees(vec: dict[str, Any]) -> None:
    got = _spec_apply(vec["schema"], vec["base"], bytes.fromhex(vec["hex"]))
    exp = vec["expected"]
    assert got["tick"] == exp["tick"] and got["ids"] == exp["ids"]
    for name, col in exp["columns"].items():
        assert _same(got["columns"][name], col), name
    for f in vec["schema"]["fields"]:
        if f.get("q") is not None:
            assert _same([v * f["q"] for v in got["columns"][f["n"]]], exp["values"][f["n"]])


@pytest.mark.parametrize("vec", _load("deltas_invalid.json"), ids=lambda v: v["name"])
def test_independent_decoder_refuses(vec: dict[str, Any]) -> None:
    with pytest.raises((_Bad, ValueError)):  # msgpack.ExtraData is a ValueError
        _spec_apply(vec["schema"], vec["base"], bytes.fromhex(vec["hex"]))


def test_spec_input_render_tick_example_matches_vector() -> None:
    """SPEC.md section 2 quotes the INPUT-with-rt vector's bytes; they must not drift."""
    spec = (Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md").read_text()
    (vec,) = [v for v in _load("messages.json") if v["name"] == "input_render_tick"]
    spaced = " ".join(vec["hex"][i:i + 2] for i in range(0, len(vec["hex"]), 2))
    assert f"`{spaced}`" in spec
    msg = decode(bytes.fromhex(vec["hex"]))
    assert isinstance(msg, Input) and msg.rt == 1234 and msg.seq == 8
def _view_state(v: Any) -> dict[str, Any]:
    return {"tick": v.tick, "ids": v.ids.tolist(),
            "columns": {k: c.tolist() for k, c in v.columns.items()},
            "channels": sorted(v.channels), "entered": v.entered.tolist(),
            "left_view": v.left_view.tolist(), "despawned": v.despawned.tolist()}


def test_view_vectors() -> None:
    """views.json: a VIEW sequence applies step by step to the expected union and
    enter / left view / despawned sets; the invalid ones fail and change nothing."""
    from protocol.view import ViewReplica

    seq, bad = _load("views.json")
    view = ViewReplica(WireSchema.from_wire(seq["schema"]))
    forms: set[str] = set()
    for step in seq["steps"]:
        data = bytes.fromhex(step["hex"])
        for piece in msgpack.unpackb(data)[4:]:  # the sequence uses every piece form
            forms.add("same" if isinstance(piece[1], bytes) else
                      "delta" if isinstance(piece[1], list) else
                      "same_mask" if len(piece) == 3 else "moves")
        view.apply(data)
        assert _view_state(view) == step["expected"], step["description"]
    assert forms == {"delta", "moves", "same", "same_mask"}
    after = _view_state(view)
    for step in bad["steps"]:
        with pytest.raises(MessageError):
            view.apply(bytes.fromhex(step["hex"]))
        assert _view_state(view) == after, step["description"]
