"""Game-layer numbers and errors shared by :mod:`protocol.messages` and :mod:`protocol.delta`.

The numbers are frozen by ``docs/ARCHITECTURE.md`` and specified in ``protocol/SPEC.md``
section 7: add new members, never renumber. This module also holds the one hardened msgpack
entry point (:func:`unpack`) so every decoder applies the same limits to a peer's bytes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import msgpack

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_CLIENT_MESSAGE",
    "CloseCode",
    "DeltaError",
    "ErrorCode",
    "MessageError",
    "MsgType",
    "unpack",
]

#: Largest game message a server accepts from a client (bytes; SPEC.md section 1).
MAX_CLIENT_MESSAGE = 4096
#: Default bound for any game message (a full snapshot of a big world is a few MiB).
DEFAULT_MAX_SIZE = 16 * 2**20


class MsgType(IntEnum):
    """Game message types (first element of every message array)."""

    HELLO = 1
    RESUME = 2
    INPUT = 3
    PING = 4
    LEAVE = 5
    CAMERA = 6
    WELCOME = 16
    DELTA = 17
    INPUT_ACK = 18
    EVENT = 19
    ERROR = 20
    PONG = 21
    VIEW = 22


class CloseCode(IntEnum):
    """WebSocket close codes used by the game layer (RFC 6455 section 7.4.2: 4000-4999 private)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_MISUSE = 4000
    UNAUTHORIZED = 4001
    ROOM_FULL = 4002
    UNKNOWN_ROOM = 4003
    VERSION_MISMATCH = 4004
    RESUME_FAILED = 4005
    REJECTED = 4006
    INPUT_FLOOD = 4008
    TOO_SLOW = 4009
    GAME_CRASHED = 4010
    REPLACED = 4011
    HELLO_TIMEOUT = 4012
    REDIRECT = 4013
    MOVED = 4014
    WORKER_RESTARTED = 4015
    RESERVATION_INVALID = 4017
    CLUSTER_UNAVAILABLE = 4018
    JOIN_RATE_LIMITED = 4020
    SPECTATORS_FULL = 4025


class ErrorCode(IntEnum):
    """Codes carried by the ERROR message; join failures reuse the close code numbers."""

    MALFORMED = 1
    UNKNOWN_TYPE = 2
    INVALID_INPUT = 3
    RATE_LIMITED = 4
    TOO_LARGE = 5
    BAD_STATE = 6
    SPECTATOR_INPUT = 7
    NOT_SPECTATING = 8
    UNAUTHORIZED = 4001
    ROOM_FULL = 4002
    UNKNOWN_ROOM = 4003
    VERSION_MISMATCH = 4004
    RESUME_FAILED = 4005
    REJECTED = 4006
    REDIRECT = 4013
    MOVED = 4014
    RESERVATION_INVALID = 4017
    CLUSTER_UNAVAILABLE = 4018
    JOIN_RATE_LIMITED = 4020
    SPECTATORS_FULL = 4025


class MessageError(Exception):
    """A malformed game message: the PEER's fault. ``code`` is the :class:`ErrorCode` to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.message!r})"


class DeltaError(MessageError):
    """A delta that cannot be decoded or does not apply to the replica (it is left untouched)."""

    def __init__(self, message: str, code: int = ErrorCode.MALFORMED) -> None:
        super().__init__(code, message)


def unpack(data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """Decode one msgpack value from a peer, bounded; raise :class:`MessageError` on anything bad.

    Limits: the whole buffer (``max_size``, else ``TOO_LARGE``), every str/bin/array/map by the
    same bound, str keys only, no ext types, no trailing bytes. msgpack's C unpacker bounds
    nesting depth itself (it raises, and we convert) so hostile nesting cannot blow the stack.
    """
    size = len(data)
    if size > max_size:
        raise MessageError(ErrorCode.TOO_LARGE, f"message of {size} bytes exceeds {max_size}")
    if size == 0:
        raise MessageError(ErrorCode.MALFORMED, "empty message")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            timestamp=0,
            ext_hook=_refuse_ext,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=max_size,
            max_map_len=max_size // 2,
            max_ext_len=0,
        )
    except MessageError:
        raise
    except Exception as exc:  # any msgpack failure on a peer's bytes is the peer's fault
        detail = f"{type(exc).__name__}: {exc}"
        raise MessageError(ErrorCode.MALFORMED, f"not a valid msgpack value ({detail})") from None


def _refuse_ext(code: int, data: bytes) -> Any:
    raise MessageError(ErrorCode.MALFORMED, f"msgpack ext type {code} is not used by the protocol")
