"""permessage-deflate (RFC 7692): extension header parsing, negotiation, per-message codec.

Negotiation (RFC 7692 section 7.1):

* :class:`DeflateConfig` is what we offer (client) or are willing to accept (server).
* Server: :func:`negotiate` picks the *first acceptable* permessage-deflate offer; an offer
  with a duplicate, unknown or malformed parameter is declined (the next one is tried).
  Returns the negotiated :class:`DeflateParams` and the response header value.
* Client: :func:`client_offer` builds the offer; :func:`accept_response` checks the server's
  answer against it and raises :class:`ValueError` if anything is wrong (the handshake fails).

Window bits: zlib cannot compress with a 256-byte window (``wbits=8`` raises). When 8 is
negotiated for *our* compressor we use 9: zlib never emits distances beyond
``window - 262`` bytes, i.e. 250 < 256 for wbits 9, so the stream stays valid for a peer that
decodes with a 256-byte window (this is also what zlib itself does for ``wbits=8``). Our
decompressor always uses a 32 KiB window, which decodes any smaller window too.

Codec (section 7.2): :class:`Deflater` compresses one message with ``Z_SYNC_FLUSH`` and strips
the trailing ``00 00 ff ff``; :class:`Inflater` decompresses the pieces of a message as they
arrive and appends that tail at the end. Its output is bounded (``max_length``), so a deflate
bomb fails with 1009 as soon as the output passes the message limit, at no cost.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from .errors import MessageTooBig, ProtocolError

__all__ = [
    "EXTENSION_NAME",
    "DeflateConfig",
    "DeflateParams",
    "Deflater",
    "Inflater",
    "accept_response",
    "client_offer",
    "negotiate",
    "parse_extensions",
]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"

Params = list[tuple[str, str | None]]


@dataclass(frozen=True, slots=True)
class DeflateConfig:
    """Our permessage-deflate settings: the offer (client) or the acceptance policy (server).

    ``*_no_context_takeover``: request / impose resetting the compression context between
    messages. ``server_max_window_bits``: 8..15 or ``None`` (no limit). ``client_max_window_bits``:
    8..15, ``None`` (don't mention), or ``True`` (client only: offer the parameter without a
    value, i.e. "I can limit my window if you ask"). ``level`` / ``mem_level``: zlib settings of
    our compressor (level 1 by default: 4x faster than 6 on text, ~1.5x the size; CPU per
    tick matters more to a game server than the last bytes). ``min_size``: messages shorter
    than this many bytes are sent uncompressed (RFC 7692 section 6 allows it; compressing tiny
    messages costs CPU and saves nothing).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | bool | None = True
    level: int = 1
    mem_level: int = 5
    min_size: int = 64

    def __post_init__(self) -> None:
        if self.server_max_window_bits is not None and not 8 <= self.server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be between 8 and 15")
        cmwb = self.client_max_window_bits
        if cmwb is not None and not isinstance(cmwb, bool) and not 8 <= cmwb <= 15:
            raise ValueError("client_max_window_bits must be between 8 and 15")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated permessage-deflate parameters (plus our local compression settings)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    level: int = 1
    mem_level: int = 5
    min_size: int = 64


# --- Sec-WebSocket-Extensions header grammar (RFC 6455 section 9.1) -----------------------

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*(?:=\s*({_TOKEN}|{_QUOTED}))?\s*")
_NAME_RE = re.compile(rf"\s*({_TOKEN})\s*")


def parse_extensions(values: list[str]) -> list[tuple[str, Params]]:
    """Parse ``Sec-WebSocket-Extensions`` header values into ``[(name, [(param, value)])]``.

    Quoted values are unquoted. Raises :class:`ValueError` on a malformed header.
    """
    result: list[tuple[str, Params]] = []
    for value in values:
        pos = 0
        n = len(value)
        while pos < n:
            m = _NAME_RE.match(value, pos)
            if m is None:
                if value[pos:].strip(" \t,") == "":
                    break
                raise ValueError(f"malformed extension at {value[pos:]!r}")
            name = m.group(1)
            pos = m.end()
            params: Params = []
            while pos < n and value[pos] == ";":
                pm = _PARAM_RE.match(value, pos + 1)
                if pm is None:
                    raise ValueError(f"malformed extension parameter at {value[pos:]!r}")
                raw = pm.group(2)
                if raw is not None and raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                params.append((pm.group(1).lower(), raw))
                pos = pm.end()
            result.append((name.lower(), params))
            if pos < n:
                if value[pos] != ",":
                    raise ValueError(f"malformed extension list at {value[pos:]!r}")
                pos += 1
    return result


def _window_bits(value: str | None) -> int:
    if value is None or not value.isdigit() or not 8 <= int(value) <= 15 or value[0] == "0":
        raise ValueError(f"invalid max_window_bits value {value!r}")
    return int(value)


def _read_params(params: Params) -> dict[str, str | None]:
    """Validate names, duplicates and value syntax; return them as a dict."""
    seen: dict[str, str | None] = {}
    for name, value in params:
        if name in seen:
            raise ValueError(f"duplicate parameter {name}")
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value")
        elif name == "server_max_window_bits":
            _window_bits(value)
        elif name == "client_max_window_bits":
            if value is not None:
                _window_bits(value)
        else:
            raise ValueError(f"unknown parameter {name}")
        seen[name] = value
    return seen


def _format(params: Params) -> str:
    return "; ".join([EXTENSION_NAME] + [k if v is None else f"{k}={v}" for k, v in params])


# --- server side ----------------------------------------------------------------------------


def _accept_offer(params: Params, config: DeflateConfig) -> tuple[DeflateParams, str] | None:
    try:
        offer = _read_params(params)
    except ValueError:
        return None
    snct = config.server_no_context_takeover or "server_no_context_takeover" in offer
    cnct = config.client_no_context_takeover or "client_no_context_takeover" in offer
    # server_max_window_bits: the client's value is a hard limit on our window.
    smwb: int | None = None
    if "server_max_window_bits" in offer:
        smwb = _window_bits(offer["server_max_window_bits"])
    own = config.server_max_window_bits
    if own is not None:
        smwb = own if smwb is None else min(smwb, own)
    # client_max_window_bits: we may only send it if the client offered it.
    cmwb: int | None = None
    if "client_max_window_bits" in offer:
        cvalue = offer["client_max_window_bits"]
        limit = config.client_max_window_bits
        if isinstance(limit, bool):
            limit = None
        if cvalue is not None:
            cmwb = _window_bits(cvalue) if limit is None else min(_window_bits(cvalue), limit)
        else:
            cmwb = limit
    resp: Params = []
    if snct:
        resp.append(("server_no_context_takeover", None))
    if cnct:
        resp.append(("client_no_context_takeover", None))
    if smwb is not None:
        resp.append(("server_max_window_bits", str(smwb)))
    if cmwb is not None:
        resp.append(("client_max_window_bits", str(cmwb)))
    negotiated = DeflateParams(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=smwb or 15,
        client_max_window_bits=cmwb or 15,
        level=config.level,
        mem_level=config.mem_level,
        min_size=config.min_size,
    )
    return negotiated, _format(resp)


def negotiate(
    offers: list[tuple[str, Params]], config: DeflateConfig
) -> tuple[DeflateParams, str] | None:
    """Server: accept the first acceptable permessage-deflate offer, or ``None``.

    Returns the negotiated params and the ``Sec-WebSocket-Extensions`` response value.
    """
    for name, params in offers:
        if name == EXTENSION_NAME:
            accepted = _accept_offer(params, config)
            if accepted is not None:
                return accepted
    return None


# --- client side ----------------------------------------------------------------------------


def client_offer(config: DeflateConfig) -> str:
    """Client: the ``Sec-WebSocket-Extensions`` value offering permessage-deflate."""
    params: Params = []
    if config.server_no_context_takeover:
        params.append(("server_no_context_takeover", None))
    if config.client_no_context_takeover:
        params.append(("client_no_context_takeover", None))
    if config.server_max_window_bits is not None:
        params.append(("server_max_window_bits", str(config.server_max_window_bits)))
    if config.client_max_window_bits is True:
        params.append(("client_max_window_bits", None))
    elif config.client_max_window_bits is not None and config.client_max_window_bits is not False:
        params.append(("client_max_window_bits", str(config.client_max_window_bits)))
    return _format(params)


def accept_response(params: Params, config: DeflateConfig) -> DeflateParams:
    """Client: check the server's permessage-deflate response against our offer.

    Raises :class:`ValueError` if the server answered with a duplicate / unknown / malformed
    parameter or one our offer does not allow (RFC 7692 section 7.1).
    """
    resp = _read_params(params)
    snct = "server_no_context_takeover" in resp
    if config.server_no_context_takeover and not snct:
        raise ValueError("server ignored server_no_context_takeover")
    cnct = config.client_no_context_takeover or "client_no_context_takeover" in resp
    smwb = 15
    if "server_max_window_bits" in resp:
        smwb = _window_bits(resp["server_max_window_bits"])
        if config.server_max_window_bits is not None and smwb > config.server_max_window_bits:
            raise ValueError("server_max_window_bits larger than offered")
    elif config.server_max_window_bits is not None:
        raise ValueError("server ignored server_max_window_bits")
    offered = config.client_max_window_bits
    cmwb = 15
    if "client_max_window_bits" in resp:
        if offered is None or offered is False:
            raise ValueError("client_max_window_bits in response but not offered")
        value = resp["client_max_window_bits"]
        if value is None:
            raise ValueError("client_max_window_bits in a response needs a value")
        cmwb = _window_bits(value)
        if offered is not True and cmwb > offered:
            raise ValueError("client_max_window_bits larger than offered")
    elif offered is not None and not isinstance(offered, bool):
        cmwb = offered
    return DeflateParams(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=smwb,
        client_max_window_bits=cmwb,
        level=config.level,
        mem_level=config.mem_level,
        min_size=config.min_size,
    )


# --- codec ----------------------------------------------------------------------------------


class Deflater:
    """Compresses our outgoing messages (RFC 7692 section 7.2.1)."""

    __slots__ = ("_compressor", "_level", "_mem_level", "_no_context_takeover", "_wbits")

    def __init__(self, window_bits: int, no_context_takeover: bool, level: int, mem_level: int):
        # 8 is impossible for zlib's compressor; 9 stays within a 256-byte window (see module doc)
        self._wbits = -max(window_bits, 9)
        self._level = level
        self._mem_level = mem_level
        self._no_context_takeover = no_context_takeover
        self._compressor = self._new()

    def _new(self) -> zlib._Compress:
        return zlib.compressobj(self._level, zlib.DEFLATED, self._wbits, self._mem_level)

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        """Compress one whole message; the result goes in frames with RSV1 on the first."""
        c = self._compressor
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(_TAIL):
            out = out[:-4]
        if self._no_context_takeover:
            self._compressor = self._new()
        return out


class Inflater:
    """Decompresses the peer's compressed messages piece by piece, with bounded output."""

    __slots__ = ("_decompressor", "_no_context_takeover")

    def __init__(self, no_context_takeover: bool) -> None:
        self._no_context_takeover = no_context_takeover
        self._decompressor = zlib.decompressobj(-15)

    def feed(self, data: bytes, final: bool, limit: int) -> bytes:
        """Decompress the next piece of a message; ``final`` ends the message.

        ``limit`` is how many more bytes of output the message may have; raises
        :class:`MessageTooBig` (1009) as soon as the output would exceed it and
        :class:`ProtocolError` (1002) for corrupt compressed data.
        """
        d = self._decompressor
        try:
            out = d.decompress(data, limit + 1) if data else b""
            if len(out) > limit:
                raise MessageTooBig("decompressed message exceeds the size limit")
            if final:
                if not d.eof:
                    more = d.decompress(_TAIL, limit + 1 - len(out))
                    if len(out) + len(more) > limit:
                        raise MessageTooBig("decompressed message exceeds the limit")
                    out += more
                if self._no_context_takeover or d.eof:
                    self._decompressor = zlib.decompressobj(-15)
        except zlib.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}") from None
        return out
