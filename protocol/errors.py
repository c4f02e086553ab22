"""Exception hierarchy of the WebSocket core.

Whose fault is in the class name:

* :class:`ProtocolError` and subclasses: the *peer* violated RFC 6455 / RFC 7692. Each carries
  the close code that goes on the wire (RFC 6455 section 7.4.1). :class:`~protocol.connection.
  Connection` never lets these escape ``receive_data``; it turns them into a
  :class:`~protocol.events.ProtocolFailure` event and queues the close frame.
* :class:`HandshakeError`: the peer's opening handshake was malformed or refused. Carries the
  HTTP status, extra headers and a short plain-text body saying what was wrong.
* :class:`InvalidState`: *our* misuse of the API (sending after close, ...). A bug, not the peer.
* :class:`ConnectionClosed`: raised by the asyncio adapter once the connection is closed.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConnectionClosed",
    "HandshakeError",
    "InvalidPayload",
    "InvalidState",
    "MessageTooBig",
    "ProtocolError",
    "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of every error raised by :mod:`protocol`."""


class ProtocolError(WebSocketError):
    """The peer violated RFC 6455 / RFC 7692; ``code`` is the close code to send (1002)."""

    code: int = 1002

    def __init__(self, reason: str = "protocol error", code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason!r})"


class InvalidPayload(ProtocolError):
    """Invalid UTF-8 in a text message or a close reason (close code 1007, RFC 6455 8.1)."""

    code = 1007


class MessageTooBig(ProtocolError):
    """A frame or message exceeds the configured limit (close code 1009)."""

    code = 1009


class HandshakeError(WebSocketError):
    """The opening handshake failed.

    Server side: the peer's request was malformed or refused; answer with ``status``
    (400, 403, 426, 431...), ``headers`` and the plain-text ``body``. Client side: the server's
    response was not an acceptable ``101`` (``status`` is the response's status, 0 if the
    response could not be parsed).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.headers: list[tuple[str, str]] = list(headers)
        self.body: bytes = message.encode("utf-8") + b"\n"


class InvalidState(WebSocketError):
    """Our own misuse of the connection (e.g. sending after the close handshake started)."""


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` / ``reason`` are the close code and reason.

    Raised by the asyncio adapter's ``recv()`` / ``send()``. ``code`` is 1006 when the
    transport was lost without a close frame (RFC 6455 section 7.1.5).
    """

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason
