"""Events returned by :meth:`protocol.connection.Connection.receive_data` / ``receive_eof``.

Small frozen dataclasses (with slots), in the spirit of h11 / wsproto. Every event derives
from :class:`Event`.

* :class:`TextMessage`, :class:`BinaryMessage`: one complete (reassembled, decompressed)
  message.
* :class:`Ping`: the peer pinged; the matching pong is *already* queued in the outbox.
* :class:`Pong`: the peer ponged (solicited or not).
* :class:`CloseReceived`: the peer sent a close frame; our echo (if owed) is already queued.
  ``code`` is 1005 when the peer's close frame carried no status code.
* :class:`ConnectionLost`: a *subclass* of :class:`CloseReceived` with ``code`` 1006, returned
  by ``receive_eof()`` when the transport ended without a completed close handshake
  (RFC 6455 section 7.1.5). Code that handles ``CloseReceived`` handles it too.
* :class:`ProtocolFailure`: the peer violated the protocol; a close frame carrying ``code``
  is already queued; flush it and close the transport (``should_close_transport()``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "ConnectionLost",
    "Event",
    "Ping",
    "Pong",
    "ProtocolFailure",
    "TextMessage",
]


class Event:
    """Base class of all connection events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class TextMessage(Event):
    """A complete text message (valid UTF-8, decoded)."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage(Event):
    """A complete binary message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping(Event):
    """A ping from the peer; the pong with the same payload is already in the outbox."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong(Event):
    """A pong from the peer (answers our ping, or unsolicited: both are legal)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived(Event):
    """The peer closed (RFC 6455 section 5.5.1); ``code`` 1005 means "no status code"."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionLost(CloseReceived):
    """The transport ended without a close handshake: abnormal closure, ``code`` = 1006."""

    code: int = 1006
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolFailure(Event):
    """The peer violated the protocol; a close frame with ``code`` is in the outbox."""

    code: int
    reason: str
