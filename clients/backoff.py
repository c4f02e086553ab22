"""Reconnect policy of the Python client: backoff delays and which drops are retried.

* :class:`Backoff`: exponential backoff with full jitter, bounded attempts (the delays
  between RESUME attempts, and between first-connect attempts with ``retry_connect``);
* :func:`close_drop`: a WebSocket close code (RFC 6455 section 7.4; the game's 4000-4999
  codes in SPEC.md) mapped to the client error it means and whether resuming makes sense;
* :class:`Drop`: the internal signal "this connection is gone" carrying that decision (and,
  for 4013 REDIRECT / 4014 MOVED, the URL of the node to dial instead).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from .errors import (
    ClientError,
    ConnectionLost,
    Disconnected,
    ServerProtocolError,
    join_error,
)

__all__ = ["FATAL_CLOSE_CODES", "PROTOCOL_CLOSE_CODES", "REDIRECT_CODES", "Backoff", "Drop",
           "close_drop", "redirect_url"]

#: Close codes after which resuming is pointless or forbidden (the server meant it).
FATAL_CLOSE_CODES = frozenset({1000, 1001, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4008,
                               4010, 4011, 4012})
#: Close codes meaning the server saw our peer violate RFC 6455 / sent undecodable frames.
PROTOCOL_CLOSE_CODES = frozenset({1002, 1003, 1007, 1009})


class Backoff:
    """Exponential backoff with full jitter ("AWS architecture blog" style), bounded attempts.

    Delay before retry ``n`` (0-based) is uniform in ``[0, min(cap, base * factor**n)]``
    (``jitter=True``) or exactly that bound (``jitter=False``). Iterating yields at most
    ``max_attempts`` delays. ``rng`` makes it reproducible in tests.
    """

    def __init__(
        self,
        *,
        base: float = 0.1,
        factor: float = 2.0,
        cap: float = 5.0,
        max_attempts: int = 6,
        jitter: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        if base < 0 or factor < 1 or cap < 0 or max_attempts < 0:
            raise ValueError("Backoff needs base >= 0, factor >= 1, cap >= 0, max_attempts >= 0")
        self.base, self.factor, self.cap = base, factor, cap
        self.max_attempts = max_attempts
        self.jitter = jitter
        self.rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        """The delay (seconds) before retry number ``attempt`` (0-based)."""
        bound = min(self.cap, self.base * self.factor ** min(attempt, 64))
        return self.rng.uniform(0.0, bound) if self.jitter else bound

    def __iter__(self) -> Iterator[float]:
        for n in range(self.max_attempts):
            yield self.delay(n)


class Drop(Exception):
    """Internal: the current connection is gone; ``error`` says why and ``retry`` whether a
    RESUME may follow (the supervisor decides, see :meth:`GameClient._run`)."""

    def __init__(self, error: ClientError, *, retry: bool, redirect: str | None = None,
                 moved: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry = retry
        #: 4013 / 4014: the ``ws://`` / ``wss://`` URL to follow (SPEC.md section 7)
        self.redirect = redirect
        #: 4014: the room moved (RESUME there and re-send unacknowledged inputs)
        self.moved = moved


#: 4013 REDIRECT / 4014 MOVED (cluster; SPEC.md section 7)
REDIRECT_CODES = frozenset({4013, 4014})


def redirect_url(reason: str, last_error_url: str | None) -> str | None:
    """The URL a 4013 / 4014 points to: the ERROR's ``url``, else the close reason when it
    is a ``ws://`` / ``wss://`` URL (a long URL only fits the ERROR), else None."""
    for url in (last_error_url, reason):
        if url and url.startswith(("ws://", "wss://")):
            return url
    return None


def close_drop(code: int | None, reason: str, last_error_text: str = "",
               last_error_url: str | None = None) -> Drop:
    """Map a WebSocket close (the server's code, or ours for its violation) to a :class:`Drop`.

    ``last_error_text`` is the text of the last game ERROR message, which usually names a
    refusal just before the close. Refusals (4001-4006, 4017, 4025), RFC 6455 failures and
    intentional closes are final; 4013 / 4014 carry the URL to follow (``Drop.redirect``);
    anything else (1006, 1011, 4009...) is retried with RESUME.
    """
    if code in REDIRECT_CODES:
        url = redirect_url(reason, last_error_url)
        what = "redirected" if code == 4013 else "room moved"
        if url is None:
            return Drop(ServerProtocolError(
                f"server closed with {code} ({what}) but gave no ws:// URL to follow",
                code=code), retry=False)
        return Drop(ConnectionLost(f"{what} to {url} (close {code})", code=code),
                    retry=True, redirect=url, moved=code == 4014)
    err = join_error(code, reason)
    if err is not None:
        # the ERROR message usually came first with the same code; prefer its text
        if last_error_text and not reason:
            err = type(err)(last_error_text, code=code)
        return Drop(err, retry=False)
    if code in PROTOCOL_CLOSE_CODES:
        return Drop(ServerProtocolError(
            f"WebSocket protocol failure (close {code}): {reason or 'no reason'}",
            code=code), retry=False)
    if code in FATAL_CLOSE_CODES:
        what = reason or last_error_text or "no reason given"
        return Drop(Disconnected(f"server closed the session (code {code}): {what}",
                                 code=code, reason=reason), retry=False)
    return Drop(ConnectionLost(f"connection dropped (close {code}): {reason or 'none'}",
                               code=code), retry=True)
