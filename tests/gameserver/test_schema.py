"""World schema declaration: wire dtype choice, quantization, and refusal messages."""

from __future__ import annotations

import numpy as np
import pytest

from gameserver.schema import RESERVED_NAMES, F, SchemaError, WorldSchema


def test_wire_dtypes_and_kinds() -> None:
    s = WorldSchema(
        {
            "x": F.float32(quant=0.01, lo=-5000, hi=5000),
            "angle": F.float32(quant=0.01, lo=-4, hi=4),
            "speed": F.float32(quant=0.5, lo=0, hi=100),
            "far": F.float32(quant=0.01),
            "raw": F.float32(),
            "big": F.float64(),
            "hp": F.uint8(default=100),
            "team": F.int8(),
            "score": F.int32(),
            "owner": F.player(),
            "target": F.entity(),
            "shield": F.bool_(),
        }
    )
    wire = {f.name: (f.dtype, f.quant, f.kind) for f in s.wire.fields}
    assert wire["x"] == ("i32", 0.01, "float")
    assert wire["angle"] == ("i16", 0.01, "float")
    assert wire["speed"] == ("u8", 0.5, "float")  # 0..200 steps, non-negative
    assert wire["far"] == ("i32", 0.01, "float")
    assert wire["raw"] == ("f32", None, "float")
    assert wire["big"] == ("f64", None, "float")
    assert wire["hp"] == ("u8", None, "int")
    assert wire["team"] == ("i8", None, "int")
    assert wire["owner"] == ("u32", None, "player")
    assert wire["target"] == ("u32", None, "entity")
    assert wire["shield"] == ("u8", None, "bool")
    assert s.names[0] == "x" and s["x"].index == 0 and s["shield"].index == 11
    assert s.wire.to_wire()["fields"][0] == {"n": "x", "t": "i32", "q": 0.01, "k": "float"}


def test_quantize_clamps_rounds_and_maps_nan() -> None:
    f = WorldSchema({"a": F.float32(quant=0.01, lo=-4, hi=4)})["a"]
    v = np.array([0.004, 0.006, -0.016, 3.999, 1e9, -1e9, np.nan, np.inf], np.float32)
    w = f.to_wire(v)
    assert w.dtype == np.int16
    assert w.tolist() == [0, 1, -2, 400, 400, -400, 0, 400]
    assert np.allclose(f.from_wire(w), [0, 0.01, -0.02, 4, 4, -4, 0, 4])


def test_nan_clamps_into_a_range_without_zero() -> None:
    f = WorldSchema({"a": F.float32(quant=0.5, lo=1, hi=5, default=1.0)})["a"]
    w = f.to_wire(np.array([np.nan, 3.0, -np.inf], np.float32))
    assert w.dtype == np.uint8 and w.tolist() == [2, 6, 2]


def test_default_range_is_float32_resolution() -> None:
    f = WorldSchema({"x": F.float32(quant=0.01)})["x"]
    assert (f.qlo, f.qhi) == (-(2**24), 2**24)
    g = WorldSchema({"x": F.float64(quant=0.01)})["x"]
    assert (g.qlo, g.qhi) == (-(2**31), 2**31 - 1)


def test_explicit_wire_width() -> None:
    f = WorldSchema({"x": F.float32(quant=0.1, lo=-1000, hi=1000, wire="i16")})["x"]
    assert f.wire == "i16"
    f2 = WorldSchema({"x": F.float32(quant=0.1, lo=0, hi=10, wire="i32")})["x"]
    assert f2.wire == "i32"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        (
            {"x": F.float32(quant=0.01, lo=-5000, hi=5000, wire="i16")},
            "'x': quantization overflows",
        ),
        ({"x": F.float64(quant=1e-6, lo=-1e9, hi=1e9)}, "'x': quantization overflows"),
        ({"x": F.float32(quant=0.001, lo=-1e6, hi=1e6)}, "'x': quant 0.001"),
        ({"x": F.float32(quant=0.0)}, "'x': quant must be > 0"),
        ({"x": F.float32(quant=float("nan"))}, "'x': quant must be finite"),
        ({"x": F.float32(quant=0.1, lo=5, hi=1)}, "'x': lo 5.0 must be < hi"),
        ({"x": F.float32(quant=0.1, lo=5)}, "'x': give both lo and hi"),
        ({"x": F.float32(lo=0, hi=1)}, "'x': lo/hi need quant"),
        ({"x": F.float32(quant=0.1, wire="f32")}, "'x': a quantized float needs an integer"),
        ({"x": F.float32(quant=0.1, lo=0, hi=1, default=5.0)}, "'x': default 5.0"),
        ({"hp": F.uint8(default=256)}, "'hp': default 256"),
        ({"hp": F.int8(default=-129)}, "'hp': default -129"),
        ({"t": F.of("int64")}, "'t': unknown dtype 'int64'"),
        ({"t": F.of("complex64")}, "'t': unknown dtype"),
        ({"t": "float16"}, "'t': unknown dtype 'float16'"),
        ({"t": 42}, "'t': declare it with F."),
        ({"hp": F.of("uint8", quant=0.1)}, "'hp': quant/lo/hi/wire apply"),
        ({"id": F.uint8()}, "'id': name is reserved"),
        ({"n": F.uint8()}, "'n': name is reserved"),
        ({"alive": F.uint8()}, "'alive': name is reserved"),
        ({"2x": F.uint8()}, "'2x': name must be an ASCII identifier"),
        ({"x y": F.uint8()}, "'x y': name must be"),
        ({"é": F.uint8()}, "'é': name must be"),
        ({"class": F.uint8()}, "'class': name must not be a Python keyword"),
        ({"_x": F.uint8()}, "'_x': name must not be"),
        ([("a", F.uint8()), ("a", F.int8())], "'a': declared twice"),
        ({f"f{i}": F.uint8() for i in range(33)}, "'f32' is one too many"),
    ],
)
def test_refused_with_field_named(fields: object, needle: str) -> None:
    with pytest.raises(SchemaError) as info:
        WorldSchema(fields)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_reserved_names_cover_spawn_kwarg() -> None:
    assert "n" in RESERVED_NAMES and "id" in RESERVED_NAMES


def test_thirty_two_fields_allowed_and_dtype_strings() -> None:
    s = WorldSchema({f"f{i}": "uint8" for i in range(32)})
    assert len(s) == 32 and s.wire.fields[31].dtype == "u8"
    s2 = WorldSchema({"a": np.float32, "b": "int16", "c": "bool"})
    assert [f.dtype for f in s2.wire.fields] == ["f32", "i16", "u8"]
