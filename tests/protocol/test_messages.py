"""Game message codec: round trips, exact bytes, strict refusal of malformed input, fuzzing."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.delta import Delta, Snapshot, WireField, WireSchema, encode_delta
from protocol.messages import (
    MAX_CLIENT_MESSAGE,
    CloseCode,
    ControlMessage,
    Error,
    ErrorCode,
    Event,
    Hello,
    Input,
    InputAck,
    Leave,
    MessageError,
    MsgType,
    Ping,
    Pong,
    Resume,
    Welcome,
    decode,
    decode_client,
    decode_server,
    encode,
)

SCHEMA = WireSchema([WireField("x", "i32", 0.01, "float"), WireField("hp", "u8", None, "int")])
MESSAGES = [
    Hello(),
    Hello(game="arena", room="r1", token="t" * 300, name="bob"),
    Resume("tok"),
    Input(1, {}),
    Input(2**32 - 1, {"dx": -1.5, "fire": True, "aim": [1, 2.5, None], "say": "hi", "n": None}),
    Input(3, {"fire": True}, rt=0),
    Input(4, {}, rt=2**63 - 1),
    Ping(0),
    Ping(123.25),
    Leave(),
    Welcome(
        7, "r1", "arena", 10, 30.0, 15, SCHEMA, [{"n": "dx", "t": "f32", "lo": -1}], "res", 30.0
    ),
    Welcome(7, "r1", "arena", 0, 60, 20, WireSchema([]), [], "", 0, entity=257),
    InputAck(3, 9),
    Event("boom", {"at": [1, 2], "who": None, "deep": [[[[1]]]]}),
    Event("bin", b"\x00\x01"),
    Error(ErrorCode.INVALID_INPUT, "bad input"),
    Error(CloseCode.ROOM_FULL, "room full"),
    Pong(1.5, 99),
]


def test_numbers_are_frozen() -> None:
    assert [int(t) for t in MsgType] == [1, 2, 3, 4, 5, 6, 16, 17, 18, 19, 20, 21, 22]
    assert CloseCode.PROTOCOL_MISUSE == 4000 and CloseCode.HELLO_TIMEOUT == 4012
    assert CloseCode.INPUT_FLOOD == 4008 and CloseCode.REPLACED == 4011
    assert [int(c) for c in ErrorCode][:6] == [1, 2, 3, 4, 5, 6]
    assert ErrorCode.REJECTED == CloseCode.REJECTED == 4006


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: ControlMessage) -> None:
    data = encode(msg)
    assert msgpack.unpackb(data)[0] == msg.TYPE
    assert decode(data) == msg


def test_exact_bytes() -> None:
    assert encode(Hello(name="bob")).hex() == "920182a17601a46e616d65a3626f62"
    assert encode(Leave()).hex() == "920580"
    assert encode(InputAck(3, 9)).hex() == "921282a17303a17409"
    assert encode(Ping(1)).hex() == "920481a17401"


def test_unknown_keys_and_trailing_elements_ignored() -> None:
    data = msgpack.packb([1, {"v": 1, "name": "a", "future": [1, {"x": 2}]}, "extra"])
    assert decode(data) == Hello(name="a")
    assert decode(msgpack.packb([4, {"t": 5, "zz": 1}])) == Ping(5)


def test_delta_decodes_to_delta() -> None:
    snap = Snapshot(np.array([1, 2], np.uint32), {"x": np.array([5, 6], np.int32)})
    d = decode(encode_delta(None, snap, tick=3))
    assert isinstance(d, Delta) and d.full and d.tick == 3 and d.count == 2
    assert d.spawned_ids.tolist() == [1, 2]
    assert isinstance(decode_server(encode_delta(None, snap, tick=3)), Delta)


def test_direction_and_size() -> None:
    with pytest.raises(MessageError) as info:
        decode_client(encode(Pong(1, 2)))
    assert info.value.code == ErrorCode.UNKNOWN_TYPE
    with pytest.raises(MessageError) as info:
        decode_server(encode(Hello()))
    assert info.value.code == ErrorCode.UNKNOWN_TYPE
    big = encode(Input(1, {"k": "x" * 200, **{f"a{i}": 1.5 for i in range(60)}}))
    assert len(big) < MAX_CLIENT_MESSAGE and decode_client(big).seq == 1  # type: ignore[union-attr]
    huge = msgpack.packb([3, {"s": 1, "d": {"k": "x" * 5000}}])
    with pytest.raises(MessageError) as info:
        decode_client(huge)
    assert info.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(MessageError) as info:
        decode(b"\x92\x04\x80", max_size=2)
    assert info.value.code == ErrorCode.TOO_LARGE


def _nest(depth: int) -> object:
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


def _p(*v: object) -> bytes:
    return msgpack.packb(list(v), use_bin_type=True)


MALFORMED = {
    "empty": b"",
    "not msgpack": b"\xc1",
    "trailing bytes": _p(4, {"t": 1}) + b"\x00",
    "not an array": msgpack.packb({"t": 1}),
    "empty array": msgpack.packb([]),
    "type is str": _p("4", {"t": 1}),
    "type is bool": _p(True, {"t": 1}),
    "body not a map": _p(4, [1]),
    "no body": _p(4),
    "int map key": b"\x92\x04\x81\x01\x02",
    "ext type": b"\x92\x04\x81\xa1t\xd4\x05\x00",
    "timestamp ext": b"\x92\x04\x81\xa1t\xd6\xff\x00\x00\x00\x00",
    "bad utf8": b"\x92\x04\x81\xa1t\xa2\xff\xfe",
    "hello without v": _p(1, {"name": "x"}),
    "hello v negative": _p(1, {"v": -1}),
    "hello name int": _p(1, {"v": 1, "name": 5}),
    "hello name too long": _p(1, {"v": 1, "name": "x" * 300}),
    "resume no token": _p(2, {"v": 1}),
    "input seq 0": _p(3, {"s": 0, "d": {}}),
    "input seq over u32": _p(3, {"s": 2**32, "d": {}}),
    "input seq float": _p(3, {"s": 1.0, "d": {}}),
    "input d missing": _p(3, {"s": 1}),
    "input d nested map": _p(3, {"s": 1, "d": {"a": {"b": 1}}}),
    "input d nested array": _p(3, {"s": 1, "d": {"a": [[1]]}}),
    "input d bin": _p(3, {"s": 1, "d": {"a": b"x"}}),
    "input too many keys": _p(3, {"s": 1, "d": {f"k{i}": 1 for i in range(65)}}),
    "ping t str": _p(4, {"t": "now"}),
    "ping t bool": _p(4, {"t": True}),
    "pong no st": _p(21, {"t": 1}),
    "error c str": _p(20, {"c": "1", "m": ""}),
    "ack s neg": _p(18, {"s": -1, "t": 1}),
    "event k int": _p(19, {"k": 1, "d": None}),
    "event too deep": _p(19, {"k": "a", "d": _nest(40)}),
    "welcome bad schema": _p(
        16,
        {
            "v": 1,
            "player": 1,
            "room": "r",
            "game": "g",
            "tick": 0,
            "tick_rate": 30,
            "send_rate": 30,
            "inputs": [],
            "resume": "",
            "resume_grace": 0,
            "schema": {"fields": [{"n": "x", "t": "i64"}]},
        },
    ),
    "welcome negative rate": _p(
        16,
        {
            "v": 1,
            "player": 1,
            "room": "r",
            "game": "g",
            "tick": 0,
            "tick_rate": -30,
            "send_rate": 30,
            "inputs": [],
            "resume": "",
            "resume_grace": 0,
            "schema": {"fields": []},
        },
    ),
    "delta short": _p(17, 1, None),
    "deep nesting": b"\x91" * 100000,
    "huge declared array": b"\xdd\xff\xff\xff\xff",
    "huge declared str": b"\x92\x04\x81\xa1t\xdb\xff\xff\xff\xff",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_refused(name: str) -> None:
    with pytest.raises(MessageError) as info:
        decode(MALFORMED[name])
    assert info.value.code == ErrorCode.MALFORMED


def test_unknown_type() -> None:
    for t in (0, 7, 15, 23, 2**40, -3):
        with pytest.raises(MessageError) as info:
            decode(_p(t, {}))
        assert info.value.code == ErrorCode.UNKNOWN_TYPE


def test_text_is_refused() -> None:
    with pytest.raises(MessageError):
        decode("[1, {}]")  # type: ignore[arg-type]


def test_encode_refuses_non_messages() -> None:
    with pytest.raises(TypeError):
        encode(object())  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_message_or_message_error(data: bytes) -> None:
    try:
        decode(data)
    except MessageError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TYPE, ErrorCode.TOO_LARGE)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 25), msgpack_values, st.lists(msgpack_values, max_size=7))
def test_structured_garbage_gives_message_or_message_error(
    t: int, body: object, rest: list[object]
) -> None:
    for shape in ([t, body], [t, *rest]):
        try:
            decode(msgpack.packb(shape, use_bin_type=True))
        except MessageError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MESSAGES), st.data())
def test_mutated_valid_messages(msg: object, data: st.DataObject) -> None:
    raw = bytearray(encode(msg))  # type: ignore[arg-type]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(raw))
    except MessageError:
        pass


def test_input_render_tick_optional_and_checked() -> None:
    def raw(body: dict[str, object]) -> bytes:
        return msgpack.packb([3, body])

    assert decode(raw({"s": 1, "d": {}})).rt is None  # type: ignore[union-attr]
    assert decode(raw({"s": 1, "d": {}, "rt": None})).rt is None  # type: ignore[union-attr]
    assert decode(raw({"s": 1, "d": {}, "rt": 77})).rt == 77  # type: ignore[union-attr]
    assert b"rt" not in encode(Input(1, {}))  # not sent when not given
    for bad in (-1, 2**63, 1.0, "1", True, [1], {}):
        with pytest.raises(MessageError) as info:
            decode(raw({"s": 1, "d": {}, "rt": bad}))
        assert info.value.code == ErrorCode.MALFORMED and "'rt'" in str(info.value)
