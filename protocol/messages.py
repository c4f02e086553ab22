"""Game message codec: one frozen dataclass per message, ``encode(msg)``, ``decode(data)``.

Layouts are SPEC.md sections 2-3. Every message is a msgpack array ``[type, body]`` (a DELTA
is ``[17, ...]``, decoded by :mod:`protocol.delta` into a :class:`~protocol.delta.Delta`).

Decoding is strict and safe for hostile bytes: the size is bounded before parsing, msgpack
runs with length limits and ``strict_map_key``, ext types are refused, every required key is
type- and range-checked, nesting is bounded, and *anything* wrong raises
:class:`MessageError` (``.code`` is the :class:`ErrorCode` to put in the ERROR answer) and
nothing else. Unknown body keys and extra trailing array elements are ignored (SPEC.md
section 1, growth rules). :func:`decode_client` / :func:`decode_server` additionally refuse
the other direction's types (``UNKNOWN_TYPE``); ``decode_client`` enforces the 4 KiB limit
for messages coming from clients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

from .codes import (
    DEFAULT_MAX_SIZE,
    MAX_CLIENT_MESSAGE,
    CloseCode,
    DeltaError,
    ErrorCode,
    MessageError,
    MsgType,
    unpack,
)
from .delta import Delta, parse_delta
from .wireschema import WireSchema

__all__ = [
    "CLIENT_TYPES",
    "DEFAULT_MAX_SIZE",
    "INTEREST2_EXT",
    "INTEREST_EXT",
    "MAX_CLIENT_MESSAGE",
    "PROTOCOL_VERSION",
    "SERVER_TYPES",
    "SUBPROTOCOL",
    "Camera",
    "CloseCode",
    "ControlMessage",
    "Delta",
    "DeltaError",
    "Error",
    "ErrorCode",
    "Event",
    "Hello",
    "Input",
    "InputAck",
    "Leave",
    "Message",
    "MessageError",
    "MsgType",
    "Ping",
    "Pong",
    "Resume",
    "View",
    "Welcome",
    "decode",
    "decode_client",
    "decode_server",
    "encode",
]

#: The protocol version this module speaks (HELLO/RESUME/WELCOME ``"v"``).
PROTOCOL_VERSION = 1
#: The optional extension for interest-managed VIEW messages (SPEC.md section 11), and its
#: version step: the client also decodes SAME pieces; offering it implies ``"interest"``,
#: and WELCOME then echoes both.
INTEREST_EXT = "interest"
INTEREST2_EXT = "interest/2"
#: The WebSocket subprotocol (``Sec-WebSocket-Protocol``) naming this protocol version: a
#: client offers it, the server selects it when offered (SPEC.md section 1).
SUBPROTOCOL = "gameserver.v1"
_U32 = 0xFFFFFFFF
_U63 = 2**63 - 1
_MAX_STR = 256
_MAX_TOKEN = 2048
_MAX_INPUT_KEYS = 64
_MAX_INPUT_ARRAY = 256
_MAX_EVENT_DEPTH = 32
_CONTAINERS = (list, dict)  # what msgpack.unpackb builds for arrays and maps


# ---------------------------------------------------------------------------- C -> S
@dataclass(frozen=True, slots=True)
class Hello:
    """HELLO (1): first message; ``v`` protocol version, optional game/room/token/name."""

    TYPE: ClassVar[MsgType] = MsgType.HELLO
    v: int = PROTOCOL_VERSION
    game: str | None = None
    room: str | None = None
    token: str | None = None
    name: str | None = None
    #: a seat reservation from ``GET /matchmake`` (cluster / matchmaking; SPEC.md section 2)
    reservation: str | None = None
    #: optional extensions the client speaks (SPEC.md section 11: "interest", "interest/2")
    ext: tuple[str, ...] = ()
    #: join as a spectator (no entity, no inputs; camera by CAMERA)
    spectate: bool = False
    #: spectator: player id whose entity the camera follows (0 / None: free camera)
    follow: int | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """RESUME (2): reattach to a dropped session with the WELCOME ``resume`` token."""

    TYPE: ClassVar[MsgType] = MsgType.RESUME
    token: str
    v: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Input:
    """INPUT (3): ``seq`` (uint32, 1, 2, 3...) and ``data`` (input field -> scalar / flat list).

    ``rt`` (optional uint < 2**63, SPEC.md section 2): the server tick the client was
    rendering when it produced the input (lag compensation); ``None`` when not sent.
    """

    TYPE: ClassVar[MsgType] = MsgType.INPUT
    seq: int
    data: dict[str, Any] = field(default_factory=dict)
    rt: int | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """PING (4): ``t`` the client's clock (any number), echoed by PONG."""

    TYPE: ClassVar[MsgType] = MsgType.PING
    t: int | float = 0


@dataclass(frozen=True, slots=True)
class Leave:
    """LEAVE (5): the player leaves; the server closes with 1000."""

    TYPE: ClassVar[MsgType] = MsgType.LEAVE


@dataclass(frozen=True, slots=True)
class Camera:
    """CAMERA (6): a spectator's view: centre ``x``, ``y``, optional size ``w``, ``h`` (world
    units, clamped by the server), or ``follow`` a player id (0 / None: free camera)."""

    TYPE: ClassVar[MsgType] = MsgType.CAMERA
    x: int | float = 0
    y: int | float = 0
    w: int | float | None = None
    h: int | float | None = None
    follow: int | None = None


# ---------------------------------------------------------------------------- S -> C
@dataclass(frozen=True, slots=True)
class Welcome:
    """WELCOME (16): join accepted; everything a client needs to decode the stream."""

    TYPE: ClassVar[MsgType] = MsgType.WELCOME
    player: int
    room: str
    game: str
    tick: int
    tick_rate: float
    send_rate: float
    schema: WireSchema
    inputs: list[dict[str, Any]] = field(default_factory=list)
    resume: str = ""
    resume_grace: float = 0.0
    entity: int | None = None
    v: int = PROTOCOL_VERSION
    #: extensions the server agreed to (SPEC.md section 11); () when none
    ext: tuple[str, ...] = ()
    #: True when this client is a spectator
    spectator: bool = False
    #: interest grid description (``Grid.info()``) when the room has interest management
    view: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class InputAck:
    """INPUT_ACK (18): ``seq`` last applied input, ``tick`` the tick it was applied in."""

    TYPE: ClassVar[MsgType] = MsgType.INPUT_ACK
    seq: int
    tick: int


@dataclass(frozen=True, slots=True)
class Event:
    """EVENT (19): a game event, ``kind`` and any msgpack ``data``."""

    TYPE: ClassVar[MsgType] = MsgType.EVENT
    kind: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class Error:
    """ERROR (20): ``code`` (:class:`ErrorCode`) and a human-readable ``message``; ``url``
    (cluster: 4013 REDIRECT / 4014 MOVED, SPEC.md section 7) the node to dial instead."""

    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: int
    message: str = ""
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """PONG (21): ``t`` echoed from PING, ``st`` the server tick."""

    TYPE: ClassVar[MsgType] = MsgType.PONG
    t: int | float
    st: int


@dataclass(frozen=True, slots=True)
class View:
    """VIEW (22): an interest-managed state update (SPEC.md section 11), still unpacked:
    ``raw`` is the msgpack array; :class:`protocol.view.ViewReplica` validates and applies it."""

    TYPE: ClassVar[MsgType] = MsgType.VIEW
    tick: int
    raw: list[Any]


ControlMessage = (Hello | Resume | Input | Ping | Leave | Camera | Welcome | InputAck | Event
                  | Error | Pong)
Message = ControlMessage | Delta | View

CLIENT_TYPES = frozenset(
    {MsgType.HELLO, MsgType.RESUME, MsgType.INPUT, MsgType.PING, MsgType.LEAVE, MsgType.CAMERA}
)
SERVER_TYPES = frozenset(
    {
        MsgType.WELCOME,
        MsgType.DELTA,
        MsgType.INPUT_ACK,
        MsgType.EVENT,
        MsgType.ERROR,
        MsgType.PONG,
        MsgType.VIEW,
    }
)


# ---------------------------------------------------------------------------- encoding
def _body(msg: Any) -> dict[str, Any]:
    if isinstance(msg, Hello):
        body: dict[str, Any] = {"v": msg.v}
        for k in ("game", "room", "token", "name", "reservation"):
            if getattr(msg, k) is not None:
                body[k] = getattr(msg, k)
        if msg.ext:
            body["ext"] = list(msg.ext)
        if msg.spectate:
            body["spectate"] = True
        if msg.follow:
            body["follow"] = msg.follow
        return body
    if isinstance(msg, Resume):
        return {"v": msg.v, "token": msg.token}
    if isinstance(msg, Input):
        if msg.rt is None:
            return {"s": msg.seq, "d": msg.data}
        return {"s": msg.seq, "d": msg.data, "rt": msg.rt}
    if isinstance(msg, Ping):
        return {"t": msg.t}
    if isinstance(msg, Leave):
        return {}
    if isinstance(msg, Camera):
        cam: dict[str, Any] = {"x": msg.x, "y": msg.y}
        for k in ("w", "h", "follow"):
            if getattr(msg, k) is not None:
                cam[k] = getattr(msg, k)
        return cam
    if isinstance(msg, Welcome):
        body = {"v": msg.v, "player": msg.player}
        if msg.entity is not None:
            body["entity"] = msg.entity
        body.update(
            room=msg.room,
            game=msg.game,
            tick=msg.tick,
            tick_rate=msg.tick_rate,
            send_rate=msg.send_rate,
            schema=msg.schema.to_wire(),
            inputs=msg.inputs,
            resume=msg.resume,
            resume_grace=msg.resume_grace,
        )
        if msg.ext:
            body["ext"] = list(msg.ext)
        if msg.spectator:
            body["spectator"] = True
        if msg.view is not None:
            body["view"] = msg.view
        return body
    if isinstance(msg, InputAck):
        return {"s": msg.seq, "t": msg.tick}
    if isinstance(msg, Event):
        return {"k": msg.kind, "d": msg.data}
    if isinstance(msg, Error):
        if msg.url is not None:
            return {"c": int(msg.code), "m": msg.message, "url": msg.url}
        return {"c": int(msg.code), "m": msg.message}
    if isinstance(msg, Pong):
        return {"t": msg.t, "st": msg.st}
    raise TypeError(
        f"cannot encode {type(msg).__name__}: deltas are built with protocol.delta.encode_delta"
    )


def encode(msg: ControlMessage) -> bytes:
    """Encode a control message to the bytes of one WebSocket binary message."""
    body = _body(msg)  # TypeError for a non-message (our misuse)
    return msgpack.packb([int(msg.TYPE), body], use_bin_type=True)


# ---------------------------------------------------------------------------- decoding
def _bad(message: str) -> MessageError:
    return MessageError(ErrorCode.MALFORMED, message)


def _uint(body: dict[str, Any], key: str, limit: int = _U32, *, what: str) -> int:
    v = body.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
        raise _bad(f"{what}: {key!r} must be a uint <= {limit}, got {_short(v)}")
    return v


def _num(body: dict[str, Any], key: str, *, what: str) -> int | float:
    v = body.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise _bad(f"{what}: {key!r} must be a number, got {_short(v)}")
    return v


def _str(body: dict[str, Any], key: str, limit: int = _MAX_STR, *, what: str) -> str:
    v = body.get(key)
    if not isinstance(v, str) or len(v) > limit:
        raise _bad(f"{what}: {key!r} must be a str of at most {limit} chars, got {_short(v)}")
    return v


def _opt_str(body: dict[str, Any], key: str, limit: int = _MAX_STR, *, what: str) -> str | None:
    if body.get(key) is None:
        return None
    return _str(body, key, limit, what=what)


def _opt_uint(body: dict[str, Any], key: str, *, what: str) -> int | None:
    if body.get(key) is None:
        return None
    return _uint(body, key, what=what)


def _ext(body: dict[str, Any], what: str) -> tuple[str, ...]:
    """The optional ``"ext"`` array of extension names (<= 16 short str; else malformed)."""
    v = body.get("ext")
    if v is None:
        return ()
    if not isinstance(v, list) or len(v) > 16 or not all(
            isinstance(x, str) and len(x) <= 64 for x in v):
        raise _bad(f"{what}: 'ext' must be an array of at most 16 short str")
    return tuple(v)


def _short(v: Any) -> str:
    r = repr(v) if not isinstance(v, dict | list | bytes) else type(v).__name__
    return r if len(r) <= 40 else r[:37] + "..."


def _scalar(v: Any) -> bool:
    if v is None or isinstance(v, bool | int | float):
        return True
    return isinstance(v, str) and len(v) <= _MAX_STR


def _input_data(d: Any) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise _bad("INPUT: 'd' must be a map")
    if len(d) > _MAX_INPUT_KEYS:
        raise _bad(f"INPUT: more than {_MAX_INPUT_KEYS} keys")
    for k, v in d.items():
        if not isinstance(k, str) or len(k) > _MAX_STR:
            raise _bad("INPUT: keys must be short str")
        if _scalar(v):
            continue
        if isinstance(v, list) and len(v) <= _MAX_INPUT_ARRAY and all(_scalar(x) for x in v):
            continue
        raise _bad(f"INPUT: value of {k!r} must be a scalar or a flat array of scalars")
    return d


def _check_depth(value: Any, limit: int, what: str) -> None:
    """Raise unless ``value`` nests at most ``limit`` containers deep (no recursion on a
    peer's data). Level by level, carrying only the containers: scalars, the bulk of a
    payload, cost one type test each inside a comprehension."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        if depth >= limit:
            raise _bad(f"{what}: nested deeper than {limit}")
        depth += 1
        nxt: list[Any] = []
        for v in level:
            items = v.values() if type(v) is dict else v
            nxt += [x for x in items if type(x) in _CONTAINERS]
        level = nxt


def _inputs(v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list) or not all(
        isinstance(x, dict) and isinstance(x.get("n"), str) and isinstance(x.get("t"), str)
        for x in v
    ):
        raise _bad("WELCOME: 'inputs' must be an array of {'n': str, 't': str, ...} maps")
    _check_depth(v, 3, "WELCOME inputs")
    return v


def _control(t: MsgType, body: dict[str, Any]) -> Message:
    w = t.name
    if t is MsgType.HELLO:
        return Hello(
            v=_uint(body, "v", what=w),
            game=_opt_str(body, "game", what=w),
            room=_opt_str(body, "room", what=w),
            token=_opt_str(body, "token", _MAX_TOKEN, what=w),
            name=_opt_str(body, "name", what=w),
            reservation=_opt_str(body, "reservation", what=w),
            ext=_ext(body, w),
            spectate=body.get("spectate") is True,
            follow=_opt_uint(body, "follow", what=w),
        )
    if t is MsgType.RESUME:
        return Resume(token=_str(body, "token", _MAX_TOKEN, what=w), v=_uint(body, "v", what=w))
    if t is MsgType.INPUT:
        seq = _uint(body, "s", what=w)
        if seq == 0:
            raise _bad("INPUT: 's' starts at 1")
        rt = None if body.get("rt") is None else _uint(body, "rt", _U63, what=w)
        return Input(seq=seq, data=_input_data(body.get("d")), rt=rt)
    if t is MsgType.PING:
        return Ping(t=_num(body, "t", what=w))
    if t is MsgType.LEAVE:
        return Leave()
    if t is MsgType.CAMERA:
        size = [None if body.get(k) is None else _num(body, k, what=w) for k in ("w", "h")]
        return Camera(x=_num(body, "x", what=w), y=_num(body, "y", what=w), w=size[0],
                      h=size[1], follow=_opt_uint(body, "follow", what=w))
    if t is MsgType.WELCOME:
        entity = body.get("entity")
        if entity is not None:
            entity = _uint(body, "entity", what=w)
        rates = [_num(body, k, what=w) for k in ("tick_rate", "send_rate", "resume_grace")]
        if not all(math.isfinite(r) and r >= 0 for r in rates):
            raise _bad("WELCOME: rates and resume_grace must be finite and >= 0")
        return Welcome(
            player=_uint(body, "player", what=w),
            room=_str(body, "room", what=w),
            game=_str(body, "game", what=w),
            tick=_uint(body, "tick", _U63, what=w),
            tick_rate=rates[0],
            send_rate=rates[1],
            schema=WireSchema.from_wire(body.get("schema")),
            inputs=_inputs(body.get("inputs")),
            resume=_str(body, "resume", _MAX_TOKEN, what=w),
            resume_grace=rates[2],
            entity=entity,
            v=_uint(body, "v", what=w),
            ext=_ext(body, w),
            spectator=body.get("spectator") is True,
            view=body.get("view") if isinstance(body.get("view"), dict) else None,
        )
    if t is MsgType.INPUT_ACK:
        return InputAck(seq=_uint(body, "s", what=w), tick=_uint(body, "t", _U63, what=w))
    if t is MsgType.EVENT:
        data = body.get("d")
        _check_depth(data, _MAX_EVENT_DEPTH, "EVENT 'd'")
        return Event(kind=_str(body, "k", what=w), data=data)
    if t is MsgType.ERROR:
        return Error(code=_uint(body, "c", what=w), message=_str(body, "m", 4096, what=w),
                     url=_opt_str(body, "url", 2048, what=w))
    if t is MsgType.PONG:
        return Pong(t=_num(body, "t", what=w), st=_uint(body, "st", _U63, what=w))
    raise MessageError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {int(t)}")  # unreachable


def _decode(data: Any, max_size: int, allowed: frozenset[MsgType] | None) -> Message:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _bad(f"game messages are binary, got {type(data).__name__}")
    obj = unpack(data, max_size=max_size)
    if not isinstance(obj, list) or not obj:
        raise _bad("a game message must be a non-empty msgpack array")
    raw_type = obj[0]
    if not isinstance(raw_type, int) or isinstance(raw_type, bool):
        raise _bad("message type must be an integer")
    try:
        t = MsgType(raw_type)
    except ValueError:
        raise MessageError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {raw_type}") from None
    if allowed is not None and t not in allowed:
        raise MessageError(ErrorCode.UNKNOWN_TYPE, f"{t.name} is not sent in this direction")
    if t is MsgType.DELTA:
        return parse_delta(obj)
    if t is MsgType.VIEW:
        if len(obj) < 4 or not isinstance(obj[1], int) or isinstance(obj[1], bool) \
                or not 0 <= obj[1] <= _U63:
            raise _bad("VIEW must be [22, tick, base_tick, left, PIECE...]")
        return View(obj[1], obj)
    if len(obj) < 2 or not isinstance(obj[1], dict):
        raise _bad(f"{t.name}: body must be a msgpack map")
    return _control(t, obj[1])


def decode(data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    """Decode any game message; raise :class:`MessageError` (only) for anything malformed."""
    return _decode(data, max_size, None)


def decode_client(data: bytes | bytearray | memoryview) -> Message:
    """Server side: decode a C->S message (<= 4 KiB, C->S types only)."""
    return _decode(data, MAX_CLIENT_MESSAGE, CLIENT_TYPES)


def decode_server(
    data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE
) -> Message:
    """Client side: decode a S->C message (S->C types only)."""
    return _decode(data, max_size, SERVER_TYPES)
