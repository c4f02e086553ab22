"""Plain-HTTP routes served on the game port (next to the ``/ws`` WebSocket endpoint).

The WebSocket server (:func:`protocol.aio.serve`) calls our ``process_request`` hook for every
request; :class:`Router` answers it with an :class:`HttpReply` or ``None`` (``None`` = "this is
the WebSocket endpoint: go on with the upgrade").

Routes (all ``GET``; ``HEAD`` is answered like ``GET``: the same head, ``Content-Length``
included, never a body; the body is dropped by :mod:`protocol.aio.server` for every HEAD):

* ``/ws``       the game WebSocket endpoint; a non-upgrade request gets 426 Upgrade Required.
* ``/healthz``  liveness: ``200 ok`` (text) whenever the event loop answers (also while
  draining: a blocked loop fails the probe by its timeout).
* ``/readyz``   readiness: ``200 ready`` while the server accepts players; ``503`` while
  draining / shutting down or at ``max_connections``.
* ``/metrics``  Prometheus text format 0.0.4 (see :mod:`gameserver.metrics`).
* ``/rooms``    JSON ``[{"id", "game", "players", "capacity"}, ...]``;
  ``/rooms?scope=cluster`` (with ``--redis``): every live room of the cluster, each with its
  ``node``, ``url``, ``worker`` and ``reserved`` seats (503 while Redis is unavailable).
* ``/matchmake?game=NAME``  JSON ``{url, room, game, node, reservation, expires_in}``: a seat
  reservation (see :mod:`gameserver.cluster.seats`); GET only (it changes state).
* anything else: a static file under the web client folder (``/`` -> ``index.html``);
  404 when missing.

With a path prefix (``--path-prefix /game``) every route lives under it (``/game/ws``,
``/game/healthz``, ``/game/`` the demo; ``/game`` redirects to ``/game/``); other paths get
404, except bare ``/healthz`` and ``/readyz``, kept for probes that talk to the process
directly (a container's HEALTHCHECK).

Any other method gets 405 with ``Allow: GET, HEAD``. The static file resolver refuses
directory traversal: the percent-decoded path may not contain ``..`` segments, backslashes or
NUL; no segment may start with a dot (``.git``, ``.env``) or be ``node_modules``, and
the resolved real path (symlinks followed) must stay inside the root; otherwise 404
(we do not tell an attacker which rule fired). Files over :data:`MAX_STATIC_BYTES` are not
served (bounded memory); read files are cached by (path, mtime, size), the cache is bounded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

__all__ = ["CONTENT_TYPES", "MAX_STATIC_BYTES", "HttpReply", "Router", "StaticFiles"]

log = logging.getLogger(__name__)

#: Content types by file suffix (lowercase). ``.js``/``.mjs`` are ``text/javascript`` (RFC 9239).
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".ts": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Largest static file served (bytes); larger files get 404 and a log line.
MAX_STATIC_BYTES = 8 * 2**20
#: Path segments never served (dev-tree folders next to the shipped files).
HIDDEN = frozenset({"node_modules", "__pycache__"})
#: Most files kept in the static cache.
MAX_CACHED_FILES = 256


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A plain HTTP answer, independent of the protocol layer's ``Response`` type."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())


def _text(status: int, message: str) -> HttpReply:
    return HttpReply(status, (message + "\n").encode())


class StaticFiles:
    """Safe read-only file serving from one root folder.

    ``lookup(url_path)`` returns the file's bytes and content type, or ``None`` (missing,
    a directory without ``index.html``, outside the root, too big).
    """

    def __init__(self, root: Path | str | None) -> None:
        self.root: Path | None = Path(root).resolve() if root is not None else None
        self._cache: dict[Path, tuple[float, int, bytes]] = {}

    def resolve(self, url_path: str) -> Path | None:
        """Map a URL path (still percent-encoded, no query) to a file under the root."""
        if self.root is None:
            return None
        path = unquote(url_path, errors="strict") if "%" in url_path else url_path
        if "\x00" in path or "\\" in path or not path.startswith("/"):
            return None
        parts = [p for p in path.split("/") if p]
        if any(p.startswith(".") or p in HIDDEN for p in parts):
            return None  # no traversal (not even a harmless-looking one), no dotfiles
        candidate = self.root.joinpath(*parts) if parts else self.root
        try:
            # Every component resolved (symlinks followed), then checked against the root:
            # a link to a file or a directory outside the root is refused, and so is a
            # directory's index.html that is itself such a link.
            real = candidate.resolve(strict=True)
            if real.is_dir():
                real = (real / "index.html").resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self.root):
            return None  # a symlink pointing outside the root
        return real if real.is_file() else None

    def lookup(self, url_path: str) -> tuple[bytes, str] | None:
        try:
            real = self.resolve(url_path)
        except UnicodeDecodeError:
            return None
        if real is None:
            return None
        try:
            # O_NOFOLLOW: the checked real path is what we open, even if its last component
            # was swapped for a symlink since (no time-of-check / time-of-use gap there).
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_size > MAX_STATIC_BYTES:
                    log.info("static file too large, not served path=%s size=%d",
                             real, st.st_size)
                    return None
                cached = self._cache.get(real)
                if (cached is not None and cached[0] == st.st_mtime
                        and cached[1] == st.st_size):
                    return cached[2], CONTENT_TYPES.get(real.suffix.lower(),
                                                        DEFAULT_CONTENT_TYPE)
                data = f.read(MAX_STATIC_BYTES + 1)
                if len(data) > MAX_STATIC_BYTES:
                    return None
                if len(self._cache) >= MAX_CACHED_FILES:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[real] = (st.st_mtime, st.st_size, data)
        except OSError:
            return None
        ctype = CONTENT_TYPES.get(real.suffix.lower(), DEFAULT_CONTENT_TYPE)
        return data, ctype


class Router:
    """Dispatches plain HTTP requests; see the module docstring for the routes.

    ``metrics`` returns the Prometheus text, ``rooms`` the JSON-able room list,
    ``healthy`` whether the process is alive (``/healthz``; 503 otherwise) and ``ready``
    whether it accepts players (``/readyz``; 503 otherwise; default: ``healthy``).
    ``prefix`` is the path prefix ("" or e.g. "/game", no trailing slash).
    """

    def __init__(self, *, static_root: Path | str | None, metrics: Callable[[], str],
                 rooms: Callable[[], Sequence[dict[str, object]]],
                 healthy: Callable[[], bool] = lambda: True, ws_path: str = "/ws",
                 ready: Callable[[], bool] | None = None, prefix: str = "") -> None:
        self.static = StaticFiles(static_root)
        self._metrics = metrics
        self._rooms = rooms
        self._healthy = healthy
        self.ws_path = ws_path
        self._ready = ready if ready is not None else healthy
        self.prefix = prefix.rstrip("/")
        #: routes that wait on the cluster; set by the server (None: not served)
        self.matchmake: Callable[[str], Awaitable[HttpReply]] | None = None
        self.cluster_rooms: Callable[[], Awaitable[HttpReply]] | None = None

    def route_async(self, method: str, target: str) -> Awaitable[HttpReply] | None:
        """The GET routes that may wait on Redis (``/matchmake``, ``/rooms?scope=cluster``):
        an awaitable reply, or ``None`` for every other request (then :meth:`route`)."""
        if method != "GET":
            return None
        path, _, query = target.split("#", 1)[0].partition("?")
        if self.prefix:  # under --path-prefix these live at /prefix/matchmake, /prefix/rooms
            stripped = self._strip_prefix(path)
            if stripped is None:
                return None
            path = stripped
        if path == "/matchmake" and self.matchmake is not None:
            return self.matchmake(target)
        if path == "/rooms" and "scope=cluster" in query.split("&") \
                and self.cluster_rooms is not None:
            return self.cluster_rooms()
        return None

    def route(self, method: str, target: str, *, upgrade: bool) -> HttpReply | None:
        """Answer one request, or ``None`` to let the WebSocket upgrade proceed on ``/ws``."""
        path = target.split("?", 1)[0].split("#", 1)[0] or "/"
        if self.prefix:
            stripped = self._strip_prefix(path)
            if stripped is None:
                if path == self.prefix and method in ("GET", "HEAD"):
                    return HttpReply(308, b"", headers=(("Location", self.prefix + "/"),))
                if path not in ("/healthz", "/readyz"):
                    return HttpReply(404) if method == "HEAD" else _text(404, "not found")
            else:
                path = stripped
        if path == self.ws_path:
            if upgrade and method == "GET":
                return None
            return HttpReply(426, b"WebSocket endpoint: upgrade required\n",
                             headers=(("Upgrade", "websocket"),
                                      ("Sec-WebSocket-Version", "13")))
        if method not in ("GET", "HEAD"):
            return HttpReply(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        # HEAD gets the GET reply: the WebSocket layer sends its head only (no body, the
        # GET's Content-Length), on every route including /ws's 426 and the 404s.
        return self._get(path)

    def _strip_prefix(self, path: str) -> str | None:
        """``/game/x`` -> ``/x`` under prefix ``/game``; ``None`` if outside the prefix."""
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix):]
        return None

    def _get(self, path: str) -> HttpReply:
        if path == "/healthz":
            return _text(200, "ok") if self._healthy() else _text(503, "unhealthy")
        if path == "/readyz":
            return (_text(200, "ready") if self._ready()
                    else HttpReply(503, b"not ready\n", headers=(("Retry-After", "5"),)))
        if path == "/metrics":
            from gameserver.metrics import CONTENT_TYPE

            return HttpReply(200, self._metrics().encode(), CONTENT_TYPE)
        if path == "/matchmake":  # HEAD (GET goes through route_async): it would reserve
            return HttpReply(405, b"GET only\n", headers=(("Allow", "GET"),))
        if path == "/rooms":
            body = json.dumps(list(self._rooms()), separators=(",", ":")).encode()
            return HttpReply(200, body, "application/json",
                             (("Cache-Control", "no-store"),))
        found = self.static.lookup(path)
        if found is None:
            return _text(404, "not found")
        data, ctype = found
        return HttpReply(200, data, ctype, (("Cache-Control", "no-cache"),))


def default_static_root() -> Path | None:
    """The installed browser client folder (``clients/web``), or ``None`` if absent."""
    try:
        import clients
    except ImportError:  # pragma: no cover - clients is part of the distribution
        return None
    root = Path(os.path.dirname(clients.__file__)) / "web"
    return root if root.is_dir() else None
