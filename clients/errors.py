"""Exceptions raised by the Python client SDK (:mod:`clients.client`).

Whose fault each class means is in its name and docstring:

* :class:`JoinRejected` and subclasses: the server refused to let us in (a decision, not a
  bug). Mapped from the ERROR message sent just before the close and/or the WebSocket close
  code (docs/ARCHITECTURE.md, "close codes"): 4001 :class:`Unauthorized`, 4002
  :class:`RoomFull`, 4003 :class:`UnknownRoom`, 4004 :class:`VersionMismatch`, 4005
  :class:`ResumeRejected`, 4006 :class:`Rejected` (the game's ``on_join`` raised ``Reject``;
  ``.reason`` carries the game's text), 4017 :class:`ReservationInvalid` (a forged, expired
  or used seat reservation), 4025 :class:`SpectatorsFull`.
* :class:`ServerProtocolError`: the server sent something that is not our protocol (garbage
  bytes, a malformed game message, a delta that does not apply). Not retried: reconnecting to a
  server that speaks something else would only repeat the failure.
* :class:`ConnectTimeout`, :class:`ServerStalled`, :class:`ConnectionLost`: transport trouble.
  These are retried by the client's reconnect logic; they surface only when reconnecting is off,
  impossible (no resume token yet) or the bounded attempts are exhausted.
* :class:`WorkerRestarted` (a :class:`ConnectionLost`): close 4015, the server worker holding
  our room died; the client rejoined by HELLO with backoff and every attempt failed.
* :class:`Disconnected`: the server closed the session on purpose with a code that must not be
  retried (kicked for flooding, too slow, session replaced, room crashed...).
* :class:`RedirectLoop`: the cluster sent us on (4013 REDIRECT / 4014 MOVED) more than
  :data:`MAX_HOPS` times in a row without a WELCOME (a misconfigured cluster). Not retried.
* :class:`ClientClosed`: our misuse: the client was used after :meth:`GameClient.close`.
"""

from __future__ import annotations

__all__ = [
    "MAX_HOPS",
    "ClientClosed",
    "ClientError",
    "ConnectTimeout",
    "ConnectionLost",
    "Disconnected",
    "JoinRejected",
    "RedirectLoop",
    "Rejected",
    "ReservationInvalid",
    "ResumeRejected",
    "RoomFull",
    "ServerProtocolError",
    "ServerStalled",
    "SpectatorsFull",
    "Unauthorized",
    "UnknownRoom",
    "VersionMismatch",
    "WorkerRestarted",
    "join_error",
]


class ClientError(Exception):
    """Base class of every error raised by :mod:`clients`.

    ``code`` is the WebSocket close code or game error code involved, when there is one.
    """

    code: int | None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class JoinRejected(ClientError):
    """The server refused the join (or the resume). ``reason`` is the server's text."""

    default_code: int | None = None

    def __init__(self, reason: str = "", *, code: int | None = None) -> None:
        self.reason = reason
        c = code if code is not None else self.default_code
        label = type(self).__name__
        text = f"join rejected by the server ({label}, code {c})"
        if reason:
            text += f": {reason}"
        super().__init__(text, code=c)


class Unauthorized(JoinRejected):
    """4001: the server's auth hook refused our token."""

    default_code = 4001


class RoomFull(JoinRejected):
    """4002: the room has ``max_players`` players already."""

    default_code = 4002


class UnknownRoom(JoinRejected):
    """4003: no such room id or game name on this server."""

    default_code = 4003


class VersionMismatch(JoinRejected):
    """4004: the server does not speak our protocol version."""

    default_code = 4004


class ResumeRejected(JoinRejected):
    """4005: the resume token is invalid or its grace period expired."""

    default_code = 4005


class Rejected(JoinRejected):
    """4006: the game's ``on_join`` hook raised ``Reject(reason)``; ``reason`` is its text."""

    default_code = 4006


class ReservationInvalid(JoinRejected):
    """4017: the HELLO's seat reservation is unknown, expired, already used or for another
    room (ask ``/matchmake`` again)."""

    default_code = 4017


class SpectatorsFull(JoinRejected):
    """4025: the room admits no (more) spectators."""

    default_code = 4025


_JOIN_ERRORS: dict[int, type[JoinRejected]] = {
    4001: Unauthorized,
    4002: RoomFull,
    4003: UnknownRoom,
    4004: VersionMismatch,
    4005: ResumeRejected,
    4006: Rejected,
    4017: ReservationInvalid,
    4025: SpectatorsFull,
}


def join_error(code: int | None, reason: str = "") -> JoinRejected | None:
    """The :class:`JoinRejected` subclass for a close / ERROR code, or None if not a join code."""
    if code is None:
        return None
    cls = _JOIN_ERRORS.get(int(code))
    return cls(reason, code=int(code)) if cls is not None else None


class ServerProtocolError(ClientError):
    """The server violated the game protocol or RFC 6455 (its fault). Never retried."""


class ConnectTimeout(ClientError):
    """No WebSocket, WELCOME or first snapshot within the configured timeout."""


class ServerStalled(ClientError):
    """The server sent nothing for longer than the stall timeout on an open connection."""


class ConnectionLost(ClientError):
    """The connection dropped and could not be resumed (attempts exhausted or no token)."""


class WorkerRestarted(ConnectionLost):
    """4015 WORKER_RESTARTED (SPEC.md section 7): the worker process holding our room died,
    and joining again by HELLO failed ``backoff.max_attempts`` times in a row (``.code`` is
    the last failure's code, 4015 when the server kept closing with it)."""


class Disconnected(ClientError):
    """The server closed the session on purpose with a non-retryable code (``.code``)."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message, code=code)
        self.reason = reason


#: Redirects / moves followed in a row without a WELCOME before :class:`RedirectLoop`
#: (SPEC.md section 7).
MAX_HOPS = 3


class RedirectLoop(ClientError):
    """More than :data:`MAX_HOPS` redirects (4013) / moves (4014) without a WELCOME; ``urls``
    are the nodes we were sent to, in order."""

    def __init__(self, message: str, *, code: int | None = None,
                 urls: tuple[str, ...] = ()) -> None:
        super().__init__(message, code=code)
        self.urls = urls


class ClientClosed(ClientError):
    """Our misuse: the client was used after it was closed."""
