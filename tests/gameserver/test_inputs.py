"""Input schema declaration, validation, wire form, and InputBatch helpers."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver.inputs import I, InputBatch, InputError, InputField, InputSchema

SCHEMA = InputSchema(
    {
        "dx": I.float32(-1, 1),
        "dy": I.float32(-1, 1),
        "fire": I.bool_(),
        "weapon": I.uint8(max=3),
        "aim": I.int32(-180, 180),
    }
)
GOOD = {"dx": 0.5, "dy": -1, "fire": True, "weapon": 3, "aim": -180}


def test_validate_accepts_good_input_in_declaration_order() -> None:
    assert SCHEMA.validate(GOOD) == (0.5, -1.0, True, 3, -180)
    assert SCHEMA.validate({**GOOD, "fire": 0})[2] is False  # 0/1 accepted for bool


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"dx": 1.0001}, "dx"),
        ({"dx": math.nan}, "dx"),
        ({"dy": math.inf}, "dy"),
        ({"dy": -math.inf}, "dy"),
        ({"dx": "0.5"}, "dx"),
        ({"dx": True}, "dx"),
        ({"dx": None}, "dx"),
        ({"fire": 2}, "fire"),
        ({"fire": "yes"}, "fire"),
        ({"weapon": 4}, "weapon"),
        ({"weapon": -1}, "weapon"),
        ({"weapon": 1.0}, "weapon"),
        ({"weapon": False}, "weapon"),
        ({"aim": 181}, "aim"),
        ({"aim": 2**40}, "aim"),
    ],
)
def test_validate_rejects_bad_values_naming_the_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        SCHEMA.validate({**GOOD, **patch})
    assert info.value.field == field
    assert field in str(info.value)


def test_validate_rejects_unknown_missing_and_non_maps() -> None:
    with pytest.raises(InputError) as info:
        SCHEMA.validate({**GOOD, "jump": True})
    assert info.value.field == "jump"
    missing = dict(GOOD)
    del missing["aim"]
    with pytest.raises(InputError) as info:
        SCHEMA.validate(missing)
    assert info.value.field == "aim"
    # Same size, one renamed: reported as unknown.
    renamed = dict(missing, Aim=0)
    with pytest.raises(InputError, match="unknown"):
        SCHEMA.validate(renamed)
    for body in ([1, 2], None, "dx", 3):
        with pytest.raises(InputError, match="map") as info:
            SCHEMA.validate(body)
        assert info.value.field is None
    odd_key: dict[object, object] = {k: v for k, v in GOOD.items()}
    odd_key[1] = 2
    with pytest.raises(InputError):
        SCHEMA.validate(odd_key)


def test_declaration_errors() -> None:
    with pytest.raises(ValueError):
        I.float32(1, -1)
    with pytest.raises(ValueError):
        I.float32(-math.inf, 1)
    with pytest.raises(ValueError):
        I.uint8(max=256)
    with pytest.raises(ValueError):
        I.int8(-200, 0)
    with pytest.raises(ValueError):
        InputField("complex64", 0, 1)
    with pytest.raises(ValueError):
        InputField("bool", 0, 1)
    with pytest.raises(ValueError):
        InputSchema({"not an identifier": I.bool_()})
    with pytest.raises(TypeError):
        InputSchema({"dx": "float32"})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        InputSchema({f"f{i}": I.bool_() for i in range(65)})


def test_to_wire_exact_form_and_round_trip() -> None:
    wire = SCHEMA.to_wire()
    assert wire == [
        {"n": "dx", "t": "f32", "lo": -1.0, "hi": 1.0},
        {"n": "dy", "t": "f32", "lo": -1.0, "hi": 1.0},
        {"n": "fire", "t": "bool"},
        {"n": "weapon", "t": "u8", "lo": 0, "hi": 3},
        {"n": "aim", "t": "i32", "lo": -180, "hi": 180},
    ]
    assert isinstance(wire[0]["lo"], float)
    back = msgpack.unpackb(msgpack.packb(wire))
    again = InputSchema.from_wire(back)
    assert again.to_wire() == wire
    assert list(again) == list(SCHEMA)
    with pytest.raises(ValueError):
        InputSchema.from_wire({"dx": 1})
    with pytest.raises(ValueError):
        InputSchema.from_wire([{"n": "dx", "t": "c64"}])


def _batch(players: list[int], fire: list[bool], dx: list[float]) -> InputBatch:
    n = len(players)
    return InputBatch(
        np.array(players, np.uint32),
        np.arange(1, n + 1, dtype=np.uint32),
        {"fire": np.array(fire, np.bool_), "dx": np.array(dx, np.float32)},
    )


def test_batch_latest_any_sum_count() -> None:
    b = _batch([7, 3, 7, 9, 3, 7], [False, True, False, False, False, False],
               [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert len(b) == 6
    assert list(b.players()) == [3, 7, 9]
    latest = b.latest()
    assert list(latest.player) == [3, 7, 9]
    assert list(latest.seq) == [5, 6, 4]
    assert np.allclose(latest["dx"], [0.5, 0.6, 0.4])
    assert list(b.last_rows()) == [4, 5, 3]
    assert list(b.any("fire")) == [True, False, False]  # a press between ticks is not lost
    assert np.allclose(b.sum("dx"), [0.7, 1.0, 0.4])
    assert list(b.count()) == [2, 3, 1]
    assert b.fields == ("fire", "dx")
    with pytest.raises(KeyError, match="jump"):
        b["jump"]


def test_empty_batch() -> None:
    b = InputBatch.empty(SCHEMA)
    assert len(b) == 0
    assert len(b.latest()) == 0
    assert b["weapon"].dtype == np.uint8
    assert b["fire"].dtype == np.bool_
    assert len(b.any("fire")) == 0
    assert len(b.sum("dx")) == 0
    with pytest.raises(ValueError):
        InputBatch(np.zeros(2, np.uint32), np.zeros(1, np.uint32), {})


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["dx", "dy", "fire", "weapon", "aim", "zz"]), _scalars))
def test_validate_never_lets_a_bad_value_through(data: dict[str, object]) -> None:
    try:
        values = SCHEMA.validate(data)
    except InputError as exc:
        assert exc.field is None or exc.field in data or exc.field in SCHEMA
        return
    assert set(data) == set(SCHEMA)
    dx, dy, fire, weapon, aim = values
    for f in (dx, dy):
        assert isinstance(f, float) and math.isfinite(f) and -1 <= f <= 1
    assert isinstance(fire, bool)
    assert type(weapon) is int and 0 <= weapon <= 3
    assert type(aim) is int and -180 <= aim <= 180
    # Whatever passes fits its batch dtype without wrapping.
    assert np.array([weapon], np.uint8)[0] == weapon


def test_optional_fields_take_their_default() -> None:
    schema = InputSchema({"dx": I.float32(-1, 1), "fire": I.bool_(default=False),
                          "ax": I.float32(0, 100, default=0), "w": I.uint8(max=3, default=2)})
    assert schema.validate({"dx": 0.5}) == (0.5, False, 0.0, 2)
    assert schema.validate({"dx": 0.5, "fire": 1, "w": 3}) == (0.5, True, 0.0, 3)
    assert isinstance(schema.validate({"dx": 0})[2], float)  # the default was normalized
    with pytest.raises(InputError, match="missing input field 'dx'") as info:
        schema.validate({"fire": True})
    assert info.value.field == "dx"
    with pytest.raises(InputError, match="unknown input field 'zz'"):
        schema.validate({"dx": 0.0, "zz": 1})
    with pytest.raises(InputError, match="outside"):
        schema.validate({"dx": 0.0, "w": 4})
    wire = schema.to_wire()
    assert wire[1] == {"n": "fire", "t": "bool", "def": False}
    assert wire[3] == {"n": "w", "t": "u8", "lo": 0, "hi": 3, "def": 2}
    assert "def" not in wire[0]
    again = InputSchema.from_wire(wire)
    assert again.validate({"dx": 1}) == (1.0, False, 0.0, 2)
    for bad in (lambda: I.uint8(max=3, default=4), lambda: I.bool_(default=2),  # type: ignore
                lambda: I.float32(0, 1, default=float("nan"))):
        with pytest.raises(ValueError, match="default"):
            bad()
