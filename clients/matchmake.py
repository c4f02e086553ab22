"""Seat reservations: ask a server's ``GET /matchmake?game=NAME`` where to play.

The answer (SPEC.md section 2, "Seat reservations") names the node to dial and holds one seat
for ``expires_in`` seconds; pass both to :class:`clients.GameClient`::

    seat = await matchmake("http://127.0.0.1:8000/", "arena")
    async with GameClient(seat.url, reservation=seat.reservation, name="ann") as client:
        ...

Works against a single server (its own seat book) and a cluster (any node answers for all).
The request runs in a worker thread (stdlib ``urllib``: no extra dependency) with a bounded
timeout; the body read is bounded too.
"""

from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from .errors import ClientError

__all__ = ["MatchmakeError", "Seat", "matchmake"]

#: Largest /matchmake answer read (bytes): the JSON is a few hundred bytes.
MAX_BODY = 64 * 1024


class MatchmakeError(ClientError):
    """``/matchmake`` refused (``status`` 400 / 404 / 503...) or could not be reached
    (``status`` None); ``code`` is the server's game error code when its body names one."""

    def __init__(self, message: str, *, status: int | None = None,
                 code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status


@dataclass(frozen=True, slots=True)
class Seat:
    """A held seat: dial ``url`` and send HELLO with ``reservation`` within ``expires_in`` s."""

    url: str
    room: str
    game: str
    node: str
    reservation: str
    expires_in: float


def matchmake_url(base: str, game: str) -> str:
    """``http(s)://host:port[/prefix]/`` + ``matchmake?game=NAME`` (a ws(s) base is mapped)."""
    if base.startswith("ws://"):
        base = "http://" + base[5:]
    elif base.startswith("wss://"):
        base = "https://" + base[6:]
    parts = urllib.parse.urlsplit(base)
    path = parts.path
    if path.endswith("/ws"):  # a game endpoint was given: its folder holds /matchmake
        path = path[: -len("ws")]
    if not path.endswith("/"):
        path += "/"
    query = urllib.parse.urlencode({"game": game})
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path + "matchmake", query, ""))


def _fetch(url: str, timeout: float, ctx: ssl_module.SSLContext | None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return int(resp.status), resp.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(MAX_BODY)


async def matchmake(base: str, game: str, *, timeout: float = 5.0,
                    ssl: ssl_module.SSLContext | None = None) -> Seat:
    """Reserve a seat in ``game`` through the server at ``base`` (its http(s) or ws(s) URL).

    Raises :class:`MatchmakeError` for a refusal (the server's status and message) or when
    the server cannot be reached within ``timeout`` seconds.
    """
    url = matchmake_url(base, game)
    try:
        status, body = await asyncio.wait_for(
            asyncio.to_thread(_fetch, url, timeout, ssl), timeout + 1.0)
    except (OSError, TimeoutError, urllib.error.URLError) as exc:
        raise MatchmakeError(f"cannot reach {url}: {exc}") from None
    try:
        obj: Any = json.loads(body)
    except ValueError:
        obj = None
    if status != 200:
        err = obj.get("error") if isinstance(obj, dict) else None
        code = obj.get("code") if isinstance(obj, dict) else None
        raise MatchmakeError(f"/matchmake answered {status}: {err or body[:200]!r}",
                             status=status, code=code if isinstance(code, int) else None)
    try:
        return Seat(url=str(obj["url"]), room=str(obj["room"]), game=str(obj["game"]),
                    node=str(obj.get("node") or ""), reservation=str(obj["reservation"]),
                    expires_in=float(obj["expires_in"]))
    except (KeyError, TypeError, ValueError):
        raise MatchmakeError(f"/matchmake answered an unexpected body: {body[:200]!r}",
                             status=status) from None
