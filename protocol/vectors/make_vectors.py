"""Generate the language-neutral test vectors in this directory (SPEC.md section 9).

Run from the repository root: ``python protocol/vectors/make_vectors.py`` (rewrites the JSON
files); ``tests/protocol/test_vectors.py`` checks the committed files equal a fresh
:func:`build` so they cannot go stale. Data is built arithmetically (no RNG), so the output
is identical on every machine.

Files:

- ``messages.json``: control messages: ``hex`` (the encoded bytes) and ``value`` (the msgpack
  value as JSON: the array ``[type, body]``).
- ``messages_invalid.json``: bytes a receiver must refuse, with the ERROR code (1 malformed,
  2 unknown type).
- ``deltas.json``: DELTA cases: ``schema`` (the WELCOME schema map), ``base`` (null or
  ``{"tick", "ids", "columns"}``: the replica state before), ``hex`` (the DELTA message),
  ``decoded`` (its elements with bins expanded to numbers), ``expected`` (``tick``, ``ids``,
  ``columns`` of wire values, and ``values``: real values, ``wire * q`` for quantized fields).
- ``deltas_invalid.json``: a base state and DELTA bytes that must NOT apply (the replica must
  stay exactly as it was), with the reason.
- ``messages_lenient.json``: bytes an encoder would not produce (another msgpack width, a
  float32, an unknown key, a trailing element) that every receiver must accept: ``hex``,
  ``value`` (the msgpack value as JSON) and ``description``.
- ``inputs.json``: INPUT ``d`` maps checked against a WELCOME ``inputs`` schema: accepted
  (``accepted`` true, ``normalized``: the values the game sees) or refused with ERROR 3.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import delta as delta_mod
from protocol.delta import (
    Delta,
    DeltaError,
    Snapshot,
    WireField,
    WireSchema,
    decode_delta,
    encode_delta,
)
from protocol.messages import (
    Camera,
    ControlMessage,
    Error,
    ErrorCode,
    Event,
    Hello,
    Input,
    InputAck,
    Leave,
    Ping,
    Pong,
    Resume,
    Welcome,
    decode,
    encode,
)
from protocol.pieces import PieceEncoder, view_message
from protocol.replica import Replica
from protocol.view import ViewReplica

HERE = Path(__file__).resolve().parent
FORMAT = 1

POS = WireSchema(
    [
        WireField("x", "i32", 0.01, "float"),
        WireField("y", "i32", 0.01, "float"),
        WireField("hp", "u8", None, "int"),
        WireField("owner", "u32", None, "player"),
    ]
)
MIXED = WireSchema(
    [
        WireField("a", "i16", 0.5, "float"),
        WireField("n", "i32", None, "int"),
        WireField("f", "f32", None, "float"),
        WireField("d", "f64", None, "float"),
        WireField("on", "u8", None, "bool"),
        WireField("t", "i8", None, "int"),
    ]
)


def _snap(schema: WireSchema, ids: list[int], **cols: list[Any]) -> Snapshot:
    return Snapshot(
        np.array(ids, np.uint32),
        {f.name: np.array(cols[f.name], f.np_dtype) for f in schema.fields},
    )


def _ids(slots: list[int], gen: int = 1) -> list[int]:
    return [s << 8 | gen for s in slots]


def _state_json(schema: WireSchema, snap: Snapshot, tick: int) -> dict[str, Any]:
    return {
        "tick": tick,
        "ids": snap.ids.tolist(),
        "columns": {k: v.tolist() for k, v in snap.columns.items()},
    }


def _expected(schema: WireSchema, r: Replica) -> dict[str, Any]:
    out = _state_json(schema, r.snapshot(), r.tick or 0)
    out["values"] = {f.name: r.values(f.name).tolist() for f in schema.fields}
    return out


def _decoded(d: Delta) -> dict[str, Any]:
    def col(c: Any) -> dict[str, Any]:
        return {"code": c.code, "values": c.values.tolist()}

    return {
        "tick": d.tick,
        "base_tick": d.base_tick,
        "count": d.count,
        "despawned": d.despawned.tolist(),
        "spawned_ids": d.spawned_ids.tolist(),
        "spawned": [col(c) for c in d.spawned],
        "groups": [
            {"mask": g.mask, "rows": g.rows.tolist(), "columns": [col(c) for c in g.columns]}
            for g in d.groups
        ],
    }


def _delta_case(
    name: str,
    description: str,
    schema: WireSchema,
    base: Snapshot | None,
    base_tick: int,
    data: bytes,
) -> dict[str, Any]:
    r = Replica(schema)
    if base is not None:
        r.apply(encode_delta(None, base, tick=base_tick))
    d = decode_delta(data)
    r.apply(d)
    return {
        "name": name,
        "description": description,
        "schema": schema.to_wire(),
        "base": None if base is None else _state_json(schema, base, base_tick),
        "hex": data.hex(),
        "decoded": _decoded(d),
        "expected": _expected(schema, r),
    }


def _pos_world() -> Snapshot:
    return _snap(
        POS,
        _ids([0, 1, 2, 3, 5]),
        x=[0, 150, -2000, 123456, 99],
        y=[0, -150, 700, 5, -99],
        hp=[100, 100, 50, 1, 255],
        owner=[0, 1, 2, 0, 3],
    )


def _raw(*elems: Any) -> bytes:
    return msgpack.packb([17, *elems], use_bin_type=True)


def delta_vectors() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    w0 = _pos_world()
    out.append(
        _delta_case(
            "full_snapshot",
            "A full snapshot (base_tick nil) of 5 entities; ids gap-coded u16 (slot << 8 | 1).",
            POS,
            None,
            0,
            encode_delta(None, w0, tick=10),
        )
    )
    out.append(
        _delta_case(
            "full_snapshot_empty",
            "A full snapshot of an empty world: count 0, spawned nil.",
            POS,
            None,
            0,
            encode_delta(
                None, Snapshot(w0.ids[:0], {k: v[:0] for k, v in w0.columns.items()}), tick=1
            ),
        )
    )
    w1 = _snap(
        POS,
        _ids([0, 1, 2, 3, 5]),
        x=[3, 150, -2012, 123456, 99],
        y=[-4, -150, 709, 5, -99],
        hp=[100, 100, 50, 1, 255],
        owner=[0, 1, 2, 0, 3],
    )
    out.append(
        _delta_case(
            "move_xy",
            "Rows 0 and 2 move (x and y, quantized 0.01): one group, mask 3, d8 differences.",
            POS,
            w0,
            10,
            encode_delta(w0, w1, tick=11, base_tick=10),
        )
    )
    out.append(
        _delta_case(
            "no_change",
            "Nothing changed: groups is an empty array; only the tick advances.",
            POS,
            w1,
            11,
            encode_delta(w1, w1, tick=12, base_tick=11),
        )
    )
    w2 = _snap(
        POS,
        [*_ids([0, 2, 3]), 4 << 8 | 1, 1 << 8 | 2, 9 << 8 | 1],
        x=[3, -2012, 123456, 1, 2, 3],
        y=[-4, 709, 5, 4, 5, 6],
        hp=[100, 50, 0, 100, 100, 100],
        owner=[0, 2, 0, 7, 7, 7],
    )
    w2s = _snap(POS, sorted(w2.ids.tolist()), **_sorted_cols(w2))
    out.append(
        _delta_case(
            "spawn_despawn",
            "Despawn ids 257 and 1281; spawn 3 (one reusing slot 1 with generation 2: id 258); "
            "row 3 (id 769) hp 1 -> 0 as raw u8. Groups address rows after despawn+spawn.",
            POS,
            w1,
            11,
            encode_delta(w1, w2s, tick=13, base_tick=11),
        )
    )
    w3 = _snap(
        POS,
        w2s.ids.tolist(),
        x=[
            c + (d if i in (0, 4) else 0)
            for i, (c, d) in enumerate(zip(w2s.columns["x"].tolist(), [1, 0, 0, 0, -1, 0]))
        ],
        y=[c + (2 if i == 0 else 0) for i, c in enumerate(w2s.columns["y"].tolist())],
        hp=[c - (30 if i in (1, 5) else 0) for i, c in enumerate(w2s.columns["hp"].tolist())],
        owner=[c if i != 2 else 70000 for i, c in enumerate(w2s.columns["owner"].tolist())],
    )
    out.append(
        _delta_case(
            "multiple_groups",
            "Four change sets: x+y (row 0), x only (row 4), hp only (rows 1, 5), owner (row 2): "
            "one group per distinct field mask (the encoder with its size-driven merging off).",
            POS,
            w2s,
            13,
            _unmerged(w2s, w3, tick=14, base_tick=13),
        )
    )
    out.append(
        _delta_case(
            "merged_groups",
            "The same change as multiple_groups as the encoder sends it: groups merged where "
            "that is smaller, so unchanged fields of a merged row carry a 0 difference or "
            "their current raw value.",
            POS,
            w2s,
            13,
            encode_delta(w2s, w3, tick=14, base_tick=13),
        )
    )
    # Id gap widths u8 / u16 / u32.
    for code, ids in (
        ("u8", [1, 2, 3, 200]),
        ("u16", [5, 300, 70000]),
        ("u32", [1, 2**31, 2**32 - 1]),
    ):
        snap = _snap(
            POS, ids, x=[1] * len(ids), y=[-1] * len(ids), hp=[9] * len(ids), owner=[0] * len(ids)
        )
        out.append(
            _delta_case(
                f"id_gaps_{code}",
                f"Full snapshot whose id gaps need {code}.",
                POS,
                None,
                0,
                encode_delta(None, snap, tick=2),
            )
        )
    # Value widths and codes with the MIXED schema.
    m0 = _snap(
        MIXED,
        [1, 2, 3, 4, 5],
        a=[10000, -10, 20, 3000, -16000],
        n=[0, 1000, 100000, -5, 7],
        f=[0.5, -1.25, 3.0, 1e10, -0.0],
        d=[0.1, 2.5, -1e300, 0.0, 1.0],
        on=[0, 1, 0, 1, 0],
        t=[-128, 0, 127, 5, -5],
    )
    out.append(
        _delta_case(
            "mixed_full",
            "Full snapshot with i16 quantized (q 0.5), i32, f32, f64, bool and i8 fields; raw "
            "columns use the smallest code holding the values (e.g. i8 for small i32 values).",
            MIXED,
            None,
            0,
            encode_delta(None, m0, tick=100),
        )
    )
    m1 = _snap(
        MIXED,
        [1, 2, 3, 4, 5],
        a=[10001, -10, 20, 3100, -16000],
        n=[100, 1000, 101000, -5, 7],
        f=[0.75, -1.25, 3.0, 1e10, -0.0],
        d=[0.1, 2.5, -1e300, 0.0, 2.0],
        on=[0, 1, 0, 1, 0],
        t=[-128, 0, 127, 5, -5],
    )
    out.append(
        _delta_case(
            "value_widths",
            "Changed values: a by +1 and +100 (d8 beats raw u16), n 0 -> 100 (raw u8 beats d8 tie) "
            "and +1000 (d16 beats raw u32), f32 and f64 raw (one group per change set: the "
            "encoder with its size-driven merging off).",
            MIXED,
            m0,
            100,
            _unmerged(m0, m1, tick=101, base_tick=100),
        )
    )
    out.append(
        _delta_case(
            "handcrafted_codes",
            "Hand-built (the Python encoder would pick other codes): d32 and raw u16 on an i32 "
            "field, i16 raw on an i8 field, u32 raw on a bool field, a u16 row list: every "
            "decoder must accept any legal code.",
            MIXED,
            m0,
            100,
            _raw(
                101,
                100,
                5,
                None,
                None,
                [
                    [2, [0, "u8", b"\x04"], [["d32", np.array([-7, 70000], "<i4").tobytes()]]],
                    [2, [1, "u8", b""], [["u16", np.array([65535], "<u2").tobytes()]]],
                    [32, [2, "u8", b"\x01"], [["i16", np.array([-3, 3], "<i2").tobytes()]]],
                    [16, [3, "u16", b""], [["u32", np.array([0], "<u4").tobytes()]]],
                ],
            ),
        )
    )
    out.append(
        _delta_case(
            "trailing_elements",
            "Hand-built: an extra element after the 7 of the DELTA, after a GROUP's 3, after an "
            "IDLIST's 3 and after a COL's 2: all ignored (SPEC.md section 1, rule 3). The COL "
            "list itself is not such an array: it holds exactly one COL per mask bit.",
            POS,
            w0,
            10,
            _raw(11, 10, 5, None, None,
                 [[3, [0, "u8", b"\x02", "later"],
                   [["d8", b"\x03\xf4", "later"], ["d8", b"\xfc\x09"]], "later"]],
                 "later"),
        )
    )
    out.append(
        _delta_case(
            "trailing_elements_spawn",
            "Hand-built: spawned = [IDLIST, COLS, extra] with an extra element in the IDLIST "
            "and in a COL too: ignored. COLS holds exactly one COL per schema field.",
            POS,
            w0,
            10,
            _raw(12, 10, 6, None,
                 [[1025, "u8", b"", 0], [["i8", b"\x07", 0], ["i8", b"\x08"], ["u8", b"\x09"],
                                         ["u8", b"\x00"]], "later"],
                 []),
        )
    )
    return out


def _sorted_cols(s: Snapshot) -> dict[str, list[Any]]:
    order = np.argsort(s.ids, kind="stable")
    return {k: v[order].tolist() for k, v in s.columns.items()}


def invalid_delta_vectors() -> list[dict[str, Any]]:
    base = _pos_world()
    good = encode_delta(
        base,
        _snap(
            POS,
            base.ids.tolist(),
            x=[1, 150, -2000, 123456, 99],
            y=[0, -150, 700, 5, -99],
            hp=[100, 100, 50, 1, 255],
            owner=[0, 1, 2, 0, 3],
        ),
        tick=11,
        base_tick=10,
    )
    cases = [
        (
            "wrong_base_tick",
            "base_tick 9 but the replica is at tick 10",
            _raw(11, 9, 5, None, None, []),
        ),
        ("truncated", "the last byte of a valid delta is missing", good[:-1]),
        ("trailing_bytes", "a valid delta followed by an extra byte", good + b"\x00"),
        (
            "despawn_unknown",
            "despawns id 1025 (slot 4), which the replica does not have",
            _raw(11, 10, 4, [1025, "u8", b""], None, []),
        ),
        (
            "spawn_existing",
            "spawns id 1 which is already present",
            _raw(11, 10, 6, None, [[1, "u8", b""], [["u8", b"\x00"]] * 4], []),
        ),
        (
            "count_mismatch",
            "count says 6 but the state has 5 entities",
            _raw(11, 10, 6, None, None, []),
        ),
        (
            "zero_gap",
            "row list with a zero gap (not strictly ascending)",
            _raw(11, 10, 5, None, None, [[4, [0, "u8", b"\x00"], [["u8", b"\x01\x02"]]]]),
        ),
        (
            "row_out_of_range",
            "row 5 of 5 entities",
            _raw(11, 10, 5, None, None, [[4, [5, "u8", b""], [["u8", b"\x01"]]]]),
        ),
        (
            "length_mismatch",
            "2 rows but 1 value",
            _raw(11, 10, 5, None, None, [[4, [0, "u8", b"\x01"], [["u8", b"\x01"]]]]),
        ),
        (
            "bin_not_multiple",
            "a d16 column of 3 bytes",
            _raw(11, 10, 5, None, None, [[1, [0, "u8", b""], [["d16", b"\x01\x00\x00"]]]]),
        ),
        (
            "value_out_of_range",
            "raw 256 (u16 code) for a u8 field",
            _raw(11, 10, 5, None, None, [[4, [0, "u8", b""], [["u16", b"\x00\x01"]]]]),
        ),
        (
            "diff_overflow",
            "hp 255 + 1 overflows u8",
            _raw(11, 10, 5, None, None, [[4, [4, "u8", b""], [["d8", b"\x01"]]]]),
        ),
        (
            "mask_beyond_fields",
            "mask bit 4 with 4 fields",
            _raw(11, 10, 5, None, None, [[16, [0, "u8", b""], [["u8", b"\x01"]]]]),
        ),
        (
            "unknown_code",
            "column code 'x8'",
            _raw(11, 10, 5, None, None, [[4, [0, "u8", b""], [["x8", b"\x01"]]]]),
        ),
        (
            "extra_group_column",
            "3 COLs in a group whose mask has 2 bits (the COL list is exact, not growable)",
            _raw(11, 10, 5, None, None,
                 [[3, [0, "u8", b""], [["d8", b"\x01"], ["d8", b"\x01"], ["d8", b"\x01"]]]]),
        ),
        (
            "extra_spawned_column",
            "5 spawned COLs for a schema of 4 fields",
            _raw(11, 10, 6, None, [[1025, "u8", b""], [["u8", b"\x00"]] * 5], []),
        ),
        (
            "missing_spawned_column",
            "3 spawned COLs for a schema of 4 fields",
            _raw(11, 10, 6, None, [[1025, "u8", b""], [["u8", b"\x00"]] * 3], []),
        ),
        (
            "float_code_on_int",
            "an f32 column for the i32 field x",
            _raw(11, 10, 5, None, None, [[1, [0, "u8", b""], [["f32", b"\0\0\0\0"]]]]),
        ),
    ]
    out = []
    for name, why, data in cases:
        r = Replica(POS)
        r.apply(encode_delta(None, base, tick=10))
        try:
            r.apply(data)
        except DeltaError:
            pass
        else:
            raise AssertionError(f"invalid vector {name} applied")
        out.append(
            {
                "name": name,
                "description": why,
                "schema": POS.to_wire(),
                "base": _state_json(POS, base, 10),
                "hex": data.hex(),
            }
        )
    return out


def message_vectors() -> list[dict[str, Any]]:
    msgs: list[tuple[str, ControlMessage]] = [
        ("hello", Hello(game="arena", name="bob")),
        ("hello_minimal", Hello()),
        ("resume", Resume("r-123")),
        ("input", Input(7, {"dx": -1.0, "dy": 0.5, "fire": True})),
        ("input_render_tick", Input(8, {"fire": True}, rt=1234)),
        ("input_render_tick_big", Input(9, {}, rt=2**40 + 5)),
        ("ping", Ping(1234.5)),
        ("leave", Leave()),
        (
            "welcome",
            Welcome(
                42,
                "r1",
                "arena",
                100,
                30,
                30,
                POS,
                [{"n": "dx", "t": "f32", "lo": -1, "hi": 1}, {"n": "fire", "t": "bool"}],
                "resume-token",
                10.0,
                entity=1 << 8 | 1,
            ),
        ),
        ("input_ack", InputAck(7, 101)),
        ("event", Event("hit", {"by": 257, "dmg": 10, "at": [1.5, -2.0]})),
        ("error", Error(ErrorCode.INVALID_INPUT, "dx out of range")),
        ("pong", Pong(1234.5, 101)),
        # SPEC.md section 2 clarifications
        ("ping_int", Ping(1234)),
        ("input_ints_for_float_and_bool", Input(1, {"dx": 1, "fire": 1})),
        ("input_seq_max", Input(2**32 - 1, {"dx": 0.5})),
        ("input_flat_array", Input(3, {"path": [1, 2.5, True, None, "a"]})),
        ("hello_name_256_code_points", Hello(game="arena", name="\U0001F600" * 256)),
        ("event_depth_32", Event("deep", _nested(32))),
        ("hello_reservation", Hello(name="bob", reservation="q2V3Jx0aLrW9fTnA8mKc4sYd")),
        ("error_redirect", Error(ErrorCode.REDIRECT, "the room is on another node",
                                 url="ws://10.0.0.7:8000/ws")),
        ("hello_interest", Hello(game="world", name="ann", ext=("interest",))),
        ("hello_spectator", Hello(game="world", spectate=True, follow=42, ext=("interest",))),
        ("camera", Camera(x=5000.0, y=2500.5, w=2000, h=1500)),
        ("camera_follow", Camera(x=0, y=0, follow=42)),
        (
            "welcome_interest",
            Welcome(43, "r1", "world", 100, 30, 30, POS, [], "tok", 10.0, ext=("interest",),
                    spectator=True, view={"cell": 1000.0, "grid": [10, 10]}),
        ),
        ("error_moved", Error(ErrorCode.MOVED, "room arena-1 moved to another node",
                              url="ws://10.0.0.2:8000/ws")),
    ]
    return [
        {"name": name, "hex": encode(m).hex(), "value": msgpack.unpackb(encode(m))}
        for name, m in msgs
    ]


def _nested(depth: int) -> Any:
    """``depth`` arrays nested in each other around the int 1 (``[[1]]`` is depth 2)."""
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


def lenient_message_vectors() -> list[dict[str, Any]]:
    """Valid bytes an encoder would not produce; every receiver must accept them."""
    hello = bytes.fromhex("92") + b"\x01"
    cases = [
        ("ping_float32", "PING t as a msgpack float 32 (0xca): any float width is accepted",
         bytes.fromhex("9204" "81" "a174" "ca3fc00000")),
        ("hello_wide_int", "HELLO v as a uint32 (0xce 00000001): any int width that holds it",
         hello + bytes.fromhex("81" "a176" "ce00000001")),
        ("hello_map16_str8", "HELLO body as a map16 and name as a str8: any map / str width",
         hello + bytes.fromhex("de0002" "a176" "01" "a46e616d65" "d903626f62")),
        ("hello_unknown_key", "HELLO with a key the server does not know: ignored",
         msgpack.packb([1, {"v": 1, "name": "bob", "later": [1, 2]}])),
        ("hello_trailing_element", "[type, body, extra]: trailing array elements are ignored",
         msgpack.packb([1, {"v": 1}, "later", 2])),
        ("hello_nil_room", "HELLO room nil: the same as absent (the server picks a room)",
         msgpack.packb([1, {"v": 1, "game": "arena", "room": None}])),
        ("input_ack_uint64_tick", "INPUT_ACK with t as a uint64 (0xcf)",
         bytes.fromhex("9212" "82" "a173" "07" "a174" "cf0000000000000065")),
    ]
    out = []
    for name, why, data in cases:
        decode(data)  # must be accepted
        out.append({"name": name, "description": why, "hex": data.hex(),
                    "value": msgpack.unpackb(data)})
    return out


def input_vectors() -> list[dict[str, Any]]:
    """INPUT ``d`` maps against one schema: accepted (with the values the game sees) or not."""
    from gameserver.inputs import I, InputError, InputSchema

    schema = InputSchema({"dx": I.float32(-1, 1), "fire": I.bool_(), "slot": I.uint8(0, 9)})
    wire = schema.to_wire()
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("all_fields", "every field once, each of its type", {"dx": -0.5, "fire": True,
                                                               "slot": 3}),
        ("int_for_f32", "an int is accepted for an f32 field (converted)", {"dx": 1, "fire":
                                                                            False, "slot": 0}),
        ("zero_one_for_bool", "0 and 1 are accepted for a bool field", {"dx": 0.0, "fire": 1,
                                                                        "slot": 9}),
        ("bounds_inclusive", "lo and hi are inclusive", {"dx": -1.0, "fire": 0, "slot": 9}),
        ("f32_out_of_range", "1.5 is outside [-1, 1]", {"dx": 1.5, "fire": True, "slot": 0}),
        ("bool_for_f32", "a bool is not a number", {"dx": True, "fire": True, "slot": 0}),
        ("float_for_int", "an integer field takes ints only, not 2.0",
         {"dx": 0.0, "fire": True, "slot": 2.0}),
        ("two_for_bool", "a bool field takes true/false/0/1 only", {"dx": 0.0, "fire": 2,
                                                                    "slot": 0}),
        ("missing_field", "every field of the schema is required", {"dx": 0.0, "fire": True}),
        ("unknown_field", "a key the schema does not declare",
         {"dx": 0.0, "fire": True, "slot": 0, "jump": True}),
        ("string_value", "a str for a number field", {"dx": "0.5", "fire": True, "slot": 0}),
    ]
    out: list[dict[str, Any]] = []
    for name, why, d in cases:
        vec: dict[str, Any] = {"name": name, "description": why, "inputs": wire, "d": d}
        try:
            values = schema.validate(d)
        except InputError:
            vec.update(accepted=False, error_code=int(ErrorCode.INVALID_INPUT))
        else:
            vec.update(accepted=True, normalized=dict(zip(schema, values)))
        out.append(vec)
    return out


def invalid_message_vectors() -> list[dict[str, Any]]:
    def p(*v: Any) -> bytes:
        return msgpack.packb(list(v), use_bin_type=True)

    cases = [
        ("not_msgpack", "0xc1 is never valid msgpack", b"\xc1", 1),
        ("not_array", "a map at the top level", msgpack.packb({"t": 1}), 1),
        ("trailing_bytes", "a PING followed by an extra byte", p(4, {"t": 1}) + b"\x00", 1),
        ("body_not_map", "PING with an array body", p(4, [1]), 1),
        ("int_key", "map with an integer key", b"\x92\x04\x81\x01\x02", 1),
        ("ext_type", "an ext value", b"\x92\x04\x81\xa1t\xd4\x05\x00", 1),
        ("hello_no_version", "HELLO without v", p(1, {"name": "x"}), 1),
        ("hello_reservation_not_str", "HELLO reservation must be a str",
         p(1, {"v": 1, "reservation": 5}), 1),
        ("input_seq_zero", "INPUT seq starts at 1", p(3, {"s": 0, "d": {}}), 1),
        ("input_nested", "INPUT value nested two levels", p(3, {"s": 1, "d": {"a": {"b": 1}}}), 1),
        ("input_rt_negative", "INPUT rt is a uint", p(3, {"s": 1, "d": {}, "rt": -1}), 1),
        ("input_rt_float", "INPUT rt is not a float", p(3, {"s": 1, "d": {}, "rt": 5.0}), 1),
        ("input_rt_str", "INPUT rt is a uint, not a str", p(3, {"s": 1, "d": {}, "rt": "5"}), 1),
        ("input_rt_bool", "INPUT rt is a uint, not a bool", p(3, {"s": 1, "d": {}, "rt": True}), 1),
        ("unknown_type", "type 9 does not exist", p(9, {}), 2),
        # SPEC.md section 2 clarifications
        ("input_seq_too_big", "INPUT s 2**32 is not a uint32", p(3, {"s": 2**32, "d": {}}), 1),
        ("input_seq_negative", "INPUT s -1", p(3, {"s": -1, "d": {}}), 1),
        ("input_seq_float", "INPUT s 1.0: an integral float is not an int",
         p(3, {"s": 1.0, "d": {}}), 1),
        ("input_array_nested", "INPUT array value holding an array",
         p(3, {"s": 1, "d": {"a": [[1]]}}), 1),
        ("input_str_257_code_points", "INPUT str value of 257 code points",
         p(3, {"s": 1, "d": {"a": "x" * 257}}), 1),
        ("input_65_keys", "INPUT d with 65 keys", p(3, {"s": 1, "d": {f"k{i}": 0 for i in
                                                                      range(65)}}), 1),
        ("hello_name_257_code_points", "HELLO name of 257 code points (514 UTF-8 bytes)",
         p(1, {"v": 1, "name": "\u00e9" * 257}), 1),
        ("hello_name_257_astral", "HELLO name of 257 code points outside the BMP (1028 "
         "UTF-8 bytes, 514 UTF-16 units): counted as 257", p(1, {"v": 1, "name":
                                                                  "\U0001F600" * 257}), 1),
        ("event_depth_33", "EVENT d nested 33 containers deep", p(19, {"k": "deep",
                                                                       "d": _nested(33)}), 1),
        ("ping_t_not_a_number", "PING t a str", p(4, {"t": "now"}), 1),
        ("invalid_utf8", "a str holding invalid UTF-8 (0xff)",
         bytes.fromhex("9201" "82" "a176" "01" "a46e616d65" "a1ff"), 1),
        ("camera_not_number", "CAMERA x must be a number", p(6, {"x": "left", "y": 0}), 1),
    ]
    return [{"name": n, "description": d, "hex": b.hex(), "error_code": c} for n, d, b, c in cases]


def _view_state(v: ViewReplica) -> dict[str, Any]:
    return {
        "tick": v.tick,
        "ids": v.ids.tolist(),
        "columns": {k: c.tolist() for k, c in v.columns.items()},
        "channels": sorted(v.channels),
        "entered": v.entered.tolist(),
        "left_view": v.left_view.tolist(),
        "despawned": v.despawned.tolist(),
    }


def view_vectors() -> list[dict[str, Any]]:
    """One sequence: reset, steady deltas, a cell entered and one left, an entity moving
    between visible cells, one leaving the view, one despawned, a MOVES piece, then SAME
    pieces (extension "interest/2": the rows of the previous MOVES, with and without a new
    mask) and a tick that leaves them stale; then bad messages."""
    schema = POS
    enc = PieceEncoder(schema)
    view = ViewReplica(schema)
    a, b, c, d, e, f = _ids([1, 2, 3, 4, 5, 6])
    steps: list[dict[str, Any]] = []
    # the server's per-viewer state (gameserver/viewstream.py): channels held, and those sent
    # as full pieces in the last VIEW (no SAME piece for them in the next one)
    held: set[int] = set()
    fresh: set[int] = set()

    def world(tick: int, rows: list[tuple[int, int, int, int]], chans: list[int],
              want: list[int], reset: bool, left: list[int], desc: str,
              base: int | None) -> None:
        nonlocal held, fresh
        rows = sorted(rows)
        ids = [r[0] for r in rows]
        snap = _snap(schema, ids, x=[r[1] for r in rows], y=[r[2] for r in rows],
                     hp=[r[3] for r in rows], owner=[0] * len(rows), t=[0] * len(rows))
        order = {i: k for k, i in enumerate(ids)}
        pcs = enc.step(tick, snap, np.array([order[r[0]] for r in rows]),
                       np.array(chans, np.int64))
        parts = []
        for ch in want:
            if reset or ch not in held:
                piece = pcs.full(ch)
            elif ch in fresh:
                piece = pcs.delta(ch)
            else:
                piece = pcs.same(ch)  # SAME when the rows repeat, else the delta piece
            if piece is not None:
                parts.append(piece)
        fresh = set(want) if reset else set(want) - held
        held = set(want)
        data = view_message(tick, None if reset else base, left, parts)
        view.apply(data)
        steps.append({"description": desc, "hex": data.hex(), "expected": _view_state(view)})

    # tick 10: reset; channels 0 and 1 visible, channel 2 not
    world(10, [(a, 100, 100, 50), (b, 900, 100, 60), (c, 1500, 100, 70), (d, 2500, 0, 80)],
          [0, 0, 1, 2], [0, 1], True, [], "reset: full pieces of channels 0 and 1", None)
    # tick 11: a moves (delta), b moves from channel 0 to 1 (stays in view), c moves to
    # channel 2 (left view), d unchanged
    world(11, [(a, 103, 96, 50), (b, 1100, 100, 60), (c, 2100, 100, 70), (d, 2500, 0, 80)],
          [0, 1, 2, 2], [0, 1], False, [], "moves: within, between visible, out of view", 10)
    # tick 12: b despawns (in view: "despawned"); channel 2 enters the view (full piece: c
    # and d enter), channel 0 leaves it (a: "left view")
    world(12, [(a, 103, 96, 50), (c, 2100, 100, 70), (d, 2500, 0, 80)],
          [0, 2, 2], [1, 2], False, [0], "despawn, a channel entered and one left", 11)
    # tick 13: only moves (c and d in channel 2): the compact MOVES piece
    world(13, [(a, 103, 96, 50), (c, 2110, 95, 70), (d, 2497, 3, 80)],
          [0, 2, 2], [1, 2], False, [], "moves only: a MOVES piece", 12)
    # tick 14: c and d move again (x and y): the rows and mask of tick 13: [2, values]
    world(14, [(a, 103, 96, 50), (c, 2115, 97, 70), (d, 2490, 4, 80)],
          [0, 2, 2], [1, 2], False, [], "the same rows and mask: a SAME piece", 13)
    # tick 15: c and d move in x only: the same rows, another mask: [2, 1, values]
    world(15, [(a, 103, 96, 50), (c, 2116, 97, 70), (d, 2489, 4, 80)],
          [0, 2, 2], [1, 2], False, [], "the same rows, x only: a SAME piece with a mask", 14)
    # tick 16: f spawns in channel 1 (a DELTA piece); channel 2 does not change (no piece:
    # its rows, remembered at tick 15, are stale for a VIEW on base 16)
    world(16, [(a, 103, 96, 50), (c, 2116, 97, 70), (d, 2489, 4, 80), (f, 1200, 100, 90)],
          [0, 2, 2, 1], [1, 2], False, [], "a spawn; channel 2 unchanged", 15)
    out = [{"name": "view_sequence", "description": view_vectors.__doc__,
            "schema": schema.to_wire(), "steps": steps}]
    # invalid: each must raise and leave the view as after the sequence above (tick 16)
    bad_base = view_message(17, 15, None, [])

    def v17(*pieces: Any) -> bytes:
        return msgpack.packb([22, 17, 16, None, *pieces], use_bin_type=True)

    bad_piece = v17([2, [17, 18, 16, 2, None, None, []], None])
    not_view = msgpack.packb([17, 17, 16, 0, None, None, []])
    unknown_despawn = v17([2, [17, 17, 16, 1, [e, "u8", b""], None, []], None])
    moves_unheld = v17([7, 3, 0, b"", b"\x88\x01\x01"])
    moves_short = v17([2, 3, 0, b"\x01", b"\x88\x01\x01"])
    same_stale = v17([2, b"\x88\x01\x01\x01\x01"])
    same_after_delta = v17([1, b"\x88\x01\x01"])
    same_unheld = v17([7, 1, b"\x08\x01"])
    four = v17([2, 1, 0, b"\x08\x01\x01"])
    out.append({"name": "view_invalid", "description":
                "after view_sequence, each of these must fail and leave the view unchanged",
                "schema": schema.to_wire(),
                "steps": [{"description": dsc, "hex": h.hex(), "error": True} for dsc, h in (
                    ("base_tick does not match the view's tick", bad_base),
                    ("a piece's DELTA tick is not the VIEW's tick", bad_piece),
                    ("not a VIEW", not_view),
                    ("despawns an id the channel does not hold", unknown_despawn),
                    ("MOVES for a channel the view does not hold", moves_unheld),
                    ("MOVES values shorter than 2 rows x 2 d8 columns", moves_short),
                    ("SAME on rows remembered at tick 15, VIEW base 16 (stale)", same_stale),
                    ("SAME for a channel whose last piece was a DELTA", same_after_delta),
                    ("SAME with a mask for a channel the view does not hold", same_unheld),
                    ("an int second element and 4 elements (neither MOVES nor SAME)", four))]})
    return out


def _unmerged(base: Snapshot, cur: Snapshot, *, tick: int, base_tick: int) -> bytes:
    """``encode_delta`` with one group per distinct change mask (no size-driven merging)."""
    keep = delta_mod._merge_small
    delta_mod._merge_small = lambda buckets, widths: buckets
    try:
        return encode_delta(base, cur, tick=tick, base_tick=base_tick)
    finally:
        delta_mod._merge_small = keep


def build() -> dict[str, str]:
    """File name -> JSON text (deterministic)."""
    files = {
        "messages.json": (
            "Control messages: hex bytes and the decoded msgpack value.",
            message_vectors(),
        ),
        "messages_invalid.json": (
            "Bytes a receiver must refuse, with the ERROR code.",
            invalid_message_vectors(),
        ),
        "deltas.json": (
            "DELTA messages: schema, base state, bytes, decoded form, state after.",
            delta_vectors(),
        ),
        "views.json": (
            "VIEW message sequences (SPEC.md section 11): apply each step in order to one view.",
            view_vectors(),
        ),
        "deltas_invalid.json": (
            "DELTA messages that must not apply; the replica must stay unchanged.",
            invalid_delta_vectors(),
        ),
        "messages_lenient.json": (
            "Valid bytes an encoder would not produce: every receiver must accept them.",
            lenient_message_vectors(),
        ),
        "inputs.json": (
            "INPUT d maps against a WELCOME inputs schema: accepted or ERROR 3.",
            input_vectors(),
        ),
    }
    return {
        name: json.dumps(
            {"format": FORMAT, "spec": "protocol/SPEC.md", "description": desc, "vectors": vecs},
            indent=1,
            allow_nan=False,
        )
        + "\n"
        for name, (desc, vecs) in files.items()
    }


def main() -> None:
    for name, text in build().items():
        (HERE / name).write_text(text)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
