"""HTTP/1.1 heads and the RFC 6455 section 4 opening handshake (server and client side).

Server side: :func:`parse_request` consumes a request head from a buffer fed in any chunking
(it is also used for plain HTTP requests such as ``GET /healthz``, so it does not require the
upgrade headers); :func:`accept` validates a WebSocket upgrade (RFC 6455 section 4.2.1) and
returns the ``101`` response; :func:`http_response` builds any other answer. Refusals raise
:class:`~protocol.errors.HandshakeError` carrying the HTTP status, headers and a short plain-text
body: 400 malformed / missing headers, 426 (with ``Sec-WebSocket-Version: 13``) for a wrong
version, 403 for an Origin not in the allow-list, 431 for a head too large or with too many
header lines.

Client side: :func:`client_request`, :func:`parse_response`, :func:`check_response`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

from . import deflate as _deflate
from .deflate import DeflateConfig, DeflateParams
from .errors import HandshakeError

__all__ = [
    "GUID",
    "Headers",
    "Negotiated",
    "Request",
    "Response",
    "accept",
    "accept_key",
    "check_response",
    "client_request",
    "error_response",
    "http_response",
    "is_upgrade",
    "new_key",
    "parse_request",
    "parse_response",
]

#: RFC 6455 section 1.3
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE_RE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/(\d)\.(\d)")
_STATUS_LINE_RE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")
_FORBIDDEN_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@functools.lru_cache(maxsize=128)
def _field_pattern(name: str) -> re.Pattern[str]:
    """Matches the values of field ``name`` (any case) in a :class:`Headers` block."""
    return re.compile(rf"^{re.escape(name)}\0(.*)$", re.IGNORECASE | re.MULTILINE)


class Headers:
    """Case-insensitive multi-map of header fields, keeping their order.

    ``get(name)`` returns the first value (or ``default``), ``get_all(name)`` every value,
    iteration yields ``(name, value)`` pairs as received. Every connection keeps its request
    for its lifetime, so the fields are stored as ONE string (``name NUL value LF`` per field,
    ~0.4 KiB for a browser's upgrade request instead of ~2 KiB of tuples and strings); lookups
    scan it (a request has ~10 fields).
    """

    __slots__ = ("_block",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._block = ""
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a field. Raises :class:`ValueError` for a NUL, CR or LF in it."""
        if "\0" in name or "\n" in name or "\r" in name or ":" in name:
            raise ValueError(f"invalid header name {name!r}")
        if "\0" in value or "\n" in value or "\r" in value:
            raise ValueError(f"invalid header value for {name}")
        self._block += f"{name}\0{value}\n"

    def _pairs(self) -> list[tuple[str, str]]:
        out = []
        for line in self._block.split("\n")[:-1]:
            name, _, value = line.partition("\0")
            out.append((name, value))
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of ``name`` (case-insensitive), or ``default``."""
        values = self.get_all(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (empty list if absent)."""
        return _field_pattern(name.lower()).findall(self._block)

    def tokens(self, name: str) -> list[str]:
        """Comma-separated tokens over every value of ``name``, stripped and lower-cased."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(t.strip().lower() for t in value.split(",") if t.strip())
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs())

    def __len__(self) -> int:
        return self._block.count("\n")

    def __repr__(self) -> str:
        return f"Headers({self._pairs()!r})"


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed HTTP request head. ``path`` / ``query`` split ``target`` at the first ``?``."""

    method: str
    target: str
    path: str
    query: str
    headers: Headers
    version: str = "1.1"


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response head (``body`` is empty as parsed: the head only)."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the opening handshake agreed on."""

    subprotocol: str | None = None
    deflate: DeflateParams | None = None
    extensions: list[str] = field(default_factory=list)


# --- HTTP head parsing -----------------------------------------------------------------------


def _take_head(buf: bytearray, max_size: int) -> bytes | None:
    """Remove and return the head (without the blank line) once complete, else ``None``."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        # Fail early on a bare LF (it could otherwise end the head and we'd wait forever).
        if buf.count(b"\n") != buf.count(b"\r\n"):
            raise HandshakeError(400, "bare LF in request head: lines must end with CRLF")
        if len(buf) > max_size:
            raise HandshakeError(431, f"request head larger than {max_size} bytes")
        return None
    if end + 4 > max_size:
        raise HandshakeError(431, f"request head larger than {max_size} bytes")
    head = bytes(buf[:end])
    del buf[: end + 4]
    return head


def _parse_fields(lines: list[bytes], max_headers: int, status: int) -> Headers:
    if len(lines) > max_headers:
        raise HandshakeError(431, f"more than {max_headers} header fields")
    parts: list[str] = []
    for line in lines:
        if not line:
            raise HandshakeError(status, "empty header line")
        if line[0] in b" \t":
            raise HandshakeError(status, "obsolete line folding in header fields")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN_RE.fullmatch(name):
            raise HandshakeError(status, f"malformed header line {line[:80]!r}")
        value = value.strip(b" \t")
        if b"\n" in value or _FORBIDDEN_VALUE_RE.search(value):
            raise HandshakeError(status, f"invalid character in header {name.decode()}")
        parts.append(f"{name.decode('ascii')}\0{value.decode('latin-1')}\n")
    headers = Headers()
    headers._block = "".join(parts)  # validated above: no NUL, CR or LF inside
    return headers


def parse_request(
    buf: bytearray, *, max_size: int = 16384, max_headers: int = 128
) -> Request | None:
    """Consume one request head from ``buf``; ``None`` while it is incomplete.

    Bytes after the head (a body, or frames pipelined after an upgrade) stay in ``buf``.
    Raises :class:`HandshakeError`: 400 for a malformed head (bad request line, bare LF or
    CR, obsolete line folding, bad header name), 431 for a head over ``max_size`` bytes or with
    more than ``max_headers`` fields.
    """
    head = _take_head(buf, max_size)
    if head is None:
        return None
    if b"\n" in head.replace(b"\r\n", b"") or b"\r" in head.replace(b"\r\n", b""):
        raise HandshakeError(400, "bare CR or LF in request head")
    lines = head.split(b"\r\n")
    m = _REQUEST_LINE_RE.fullmatch(lines[0])
    if m is None:
        raise HandshakeError(400, "malformed request line")
    headers = _parse_fields(lines[1:], max_headers, 400)
    target = m.group(2).decode("latin-1")
    path, _, query = target.partition("?")
    return Request(
        method=m.group(1).decode("ascii"),
        target=target,
        path=path,
        query=query,
        headers=headers,
        version=f"{m.group(3).decode()}.{m.group(4).decode()}",
    )


def parse_response(
    buf: bytearray, *, max_size: int = 16384, max_headers: int = 128
) -> Response | None:
    """Client: consume the server's response head from ``buf``; ``None`` while incomplete.

    Raises :class:`HandshakeError` (status 0) if the head is malformed or too large.
    """
    try:
        head = _take_head(buf, max_size)
    except HandshakeError as exc:
        raise HandshakeError(0, f"invalid response from server: {exc.message}") from None
    if head is None:
        return None
    lines = head.split(b"\r\n")
    m = _STATUS_LINE_RE.fullmatch(lines[0])
    if m is None:
        raise HandshakeError(0, f"malformed status line {lines[0][:80]!r}")
    try:
        headers = _parse_fields(lines[1:], max_headers, 0)
    except HandshakeError as exc:
        raise HandshakeError(0, f"invalid response from server: {exc.message}") from None
    return Response(
        status=int(m.group(3)),
        reason=(m.group(4) or b"").decode("latin-1"),
        headers=headers,
    )


# --- server side -----------------------------------------------------------------------------


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key() -> str:
    """A fresh random ``Sec-WebSocket-Key`` (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def is_upgrade(req: Request) -> bool:
    """Whether ``req`` asks for a WebSocket upgrade (``Upgrade: websocket`` present).

    Only a routing hint: :func:`accept` does the full validation.
    """
    return "websocket" in req.headers.tokens("Upgrade")


def _key_is_valid(key: str) -> bool:
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


def accept(
    req: Request,
    *,
    subprotocols: Sequence[str] = (),
    origins: Collection[str | None] | None = None,
    deflate: DeflateConfig | bool | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> tuple[bytes, Negotiated]:
    """Validate an upgrade request (RFC 6455 section 4.2.1); return the 101 response bytes.

    ``subprotocols``: the ones we support; the first of the *client's* offered list that we
    support is selected (none selected if there is no overlap). ``origins``: allow-list of
    ``Origin`` values (include ``None`` to allow requests without an Origin); ``None`` allows
    any. ``deflate``: permessage-deflate policy (``True`` = defaults; off when ``None``/False).

    Raises :class:`HandshakeError` with 400 (not GET / not HTTP/1.1 / missing or malformed
    Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version, Sec-WebSocket-Extensions),
    426 with ``Sec-WebSocket-Version: 13`` for another version, 403 for a refused Origin.
    """
    h = req.headers
    if req.method != "GET":
        raise HandshakeError(400, f"WebSocket handshake must use GET, not {req.method}")
    if req.version != "1.1":
        raise HandshakeError(400, f"WebSocket handshake needs HTTP/1.1, not HTTP/{req.version}")
    if len(h.get_all("Host")) != 1 or not (h.get("Host") or "").strip():
        raise HandshakeError(400, "missing or duplicate Host header")
    if "websocket" not in h.tokens("Upgrade"):
        raise HandshakeError(400, "missing or invalid Upgrade header (expected websocket)")
    if "upgrade" not in h.tokens("Connection"):
        raise HandshakeError(400, "missing or invalid Connection header (expected Upgrade)")
    keys = h.get_all("Sec-WebSocket-Key")
    if len(keys) != 1 or not _key_is_valid(keys[0]):
        raise HandshakeError(400, "missing or invalid Sec-WebSocket-Key (16 bytes, base64)")
    versions = h.get_all("Sec-WebSocket-Version")
    if not versions:
        raise HandshakeError(400, "missing Sec-WebSocket-Version header")
    if versions != ["13"]:
        raise HandshakeError(
            426,
            f"unsupported Sec-WebSocket-Version {', '.join(versions)}: this server speaks 13",
            headers=[("Sec-WebSocket-Version", "13")],
        )
    if origins is not None and h.get("Origin") not in origins:
        raise HandshakeError(403, f"origin {h.get('Origin')!r} is not allowed")

    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(keys[0])}",
    ]
    subprotocol = None
    if subprotocols:
        for offered in _raw_tokens(h, "Sec-WebSocket-Protocol"):
            if offered in subprotocols:
                subprotocol = offered
                break
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    params: DeflateParams | None = None
    extensions: list[str] = []
    if deflate:
        config = DeflateConfig() if deflate is True else deflate
        try:
            offers = _deflate.parse_extensions(h.get_all("Sec-WebSocket-Extensions"))
        except ValueError as exc:
            raise HandshakeError(400, f"malformed Sec-WebSocket-Extensions: {exc}") from None
        result = _deflate.negotiate(offers, config)
        if result is not None:
            params, value = result
            extensions.append(value)
            lines.append(f"Sec-WebSocket-Extensions: {value}")
    for name, value in extra_headers:
        lines.append(f"{name}: {value}")
    response = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return response, Negotiated(subprotocol, params, extensions)


def _raw_tokens(h: Headers, name: str) -> list[str]:
    out: list[str] = []
    for value in h.get_all(name):
        out.extend(t.strip() for t in value.split(",") if t.strip())
    return out


def http_response(
    status: int,
    body: bytes = b"",
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A complete HTTP/1.1 response with ``Content-Length`` and ``Connection: close``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    extra = list(headers)
    names = {n.lower() for n, _ in extra}
    if "content-type" not in names and body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    if "connection" not in names:
        lines.append("Connection: close")
    lines.extend(f"{n}: {v}" for n, v in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def error_response(exc: HandshakeError) -> bytes:
    """The HTTP response answering a refused handshake (status, headers, plain-text body)."""
    return http_response(exc.status, exc.body, headers=exc.headers)


# --- client side -----------------------------------------------------------------------------


def client_request(
    host: str,
    target: str,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    origin: str | None = None,
    deflate: DeflateConfig | bool | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The client's upgrade request head (RFC 6455 section 4.1). ``host`` may include a port."""
    lines = [
        f"GET {target or '/'} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    if deflate:
        config = DeflateConfig() if deflate is True else deflate
        lines.append(f"Sec-WebSocket-Extensions: {_deflate.client_offer(config)}")
    for name, value in extra_headers:
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def check_response(
    resp: Response,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    deflate: DeflateConfig | bool | None = None,
) -> Negotiated:
    """Client: check the server's answer to our upgrade request (RFC 6455 section 4.1).

    Raises :class:`HandshakeError` (with the response's status) unless it is a 101 with
    ``Upgrade: websocket``, ``Connection: upgrade``, the right ``Sec-WebSocket-Accept``, a
    subprotocol we offered (or none) and only extensions we offered with valid parameters.
    """
    h = resp.headers
    s = resp.status
    if s != 101:
        raise HandshakeError(s, f"server refused the upgrade: {s} {resp.reason}")
    if "websocket" not in h.tokens("Upgrade"):
        raise HandshakeError(s, "missing or invalid Upgrade header in response")
    if "upgrade" not in h.tokens("Connection"):
        raise HandshakeError(s, "missing or invalid Connection header in response")
    if h.get_all("Sec-WebSocket-Accept") != [accept_key(key)]:
        raise HandshakeError(s, "wrong or missing Sec-WebSocket-Accept")
    protocols = _raw_tokens(h, "Sec-WebSocket-Protocol")
    subprotocol = None
    if protocols:
        if len(protocols) != 1 or protocols[0] not in subprotocols:
            raise HandshakeError(s, f"server selected a subprotocol we did not offer: {protocols}")
        subprotocol = protocols[0]
    try:
        exts = _deflate.parse_extensions(h.get_all("Sec-WebSocket-Extensions"))
    except ValueError as exc:
        raise HandshakeError(s, f"malformed Sec-WebSocket-Extensions: {exc}") from None
    params: DeflateParams | None = None
    values: list[str] = []
    for name, ext_params in exts:
        if name != _deflate.EXTENSION_NAME or not deflate or params is not None:
            raise HandshakeError(s, f"server accepted an extension we did not offer: {name}")
        config = DeflateConfig() if deflate is True else deflate
        try:
            params = _deflate.accept_response(ext_params, config)
        except ValueError as exc:
            raise HandshakeError(s, f"invalid permessage-deflate response: {exc}") from None
        values.extend(h.get_all("Sec-WebSocket-Extensions"))
    return Negotiated(subprotocol, params, values)
