"""WebSocket frames (RFC 6455 section 5): incremental parser and serializer.

:class:`FrameParser` is fed chunks of any size (one byte at a time works) and returns the
frames it completed, as plain tuples ``(opcode, payload, fin, rsv1)`` to keep the hot path
lean. It enforces every *frame-level* rule as soon as the header is complete, before any
payload is buffered:

* reserved bits without a negotiated extension, unknown opcodes, masking direction,
  non-minimal length encodings, a 64-bit length with its most significant bit set,
  control frames longer than 125 bytes or fragmented (all 1002);
* continuation rules: a continuation frame with no message in progress, or a new data frame
  while a fragmented message is in progress (1002);
* the frame size limit and the running message size (1009) - a header announcing 2 GiB fails
  at once, having buffered nothing.

Data frames whose payload is not complete yet are delivered in pieces (unmasked) as the bytes
arrive, so the connection can validate UTF-8 and enforce limits fail-fast: the first piece has
the frame's opcode, later pieces have opcode ``CONT``; ``fin`` is true only on the piece that
ends a message. Control frames (<= 125 bytes) are always delivered whole. Parsing stops after a
close frame: anything after it is ignored (RFC 6455 section 5.5.1).

The fast path handles a whole frame already in the buffer with integer ops and one slice.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from .errors import MessageTooBig, ProtocolError
from .masking import _REPEAT, _SMALL_WORDS, apply_mask
from .utf8 import decode

__all__ = [
    "BINARY",
    "CLOSE",
    "CONT",
    "PING",
    "PONG",
    "TEXT",
    "FrameParser",
    "ParsedFrame",
    "encode_close_payload",
    "encode_frame",
    "parse_close_payload",
    "prepare_binary_parts",
    "prepare_message",
]

CONT: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

#: ``(opcode, payload, fin, rsv1)``; ``fin`` is true on the piece that completes a message.
ParsedFrame = tuple[int, bytes, bool, bool]

_unpack_H = struct.Struct("!H").unpack_from
_unpack_Q = struct.Struct("!Q").unpack_from
_unpack_I = struct.Struct("!I").unpack_from
_from_bytes = int.from_bytes
_SMALL = _SMALL_WORDS * 4  # payloads up to this size are unmasked inline (big-int XOR)
_UNLIMITED = 1 << 64
_pack_BB = struct.Struct("!BB").pack
_pack_BBH = struct.Struct("!BBH").pack
_pack_BBQ = struct.Struct("!BBQ").pack


class FrameParser:
    """Incremental frame parser for one direction of one connection.

    ``expect_masked``: true on the server side (client frames MUST be masked, RFC 6455
    section 5.1), false on the client side (server frames MUST NOT be masked).
    ``allow_rsv1``: permessage-deflate was negotiated (RSV1 marks a compressed message).
    ``max_frame_size`` / ``max_message_size``: payload limits in bytes (``None``: unlimited);
    the message limit applies to the wire (possibly compressed) size of the data frames.

    After a violation :meth:`feed` returns the frames parsed before it and stores the error in
    :attr:`error`; later calls return nothing.
    """

    __slots__ = (
        "_buf",
        "_cur_fin",
        "_cur_opcode",
        "_mask",
        "_mask_off",
        "_msg_opcode",
        "_msg_size",
        "_remaining",
        "_rsv1_pending",
        "allow_rsv1",
        "closed",
        "error",
        "expect_masked",
        "max_frame_size",
        "max_message_size",
    )

    def __init__(
        self,
        *,
        expect_masked: bool,
        allow_rsv1: bool = False,
        max_frame_size: int | None = None,
        max_message_size: int | None = None,
    ) -> None:
        self.expect_masked = expect_masked
        self.allow_rsv1 = allow_rsv1
        self.max_frame_size = max_frame_size
        self.max_message_size = max_message_size
        self.error: ProtocolError | None = None
        self.closed = False  # a close frame was parsed: ignore everything after it
        self._buf = bytearray()
        self._msg_opcode = 0  # opcode of the fragmented message in progress, 0 if none
        self._msg_size = 0  # wire bytes of the message in progress
        self._remaining = 0  # payload bytes still to come for the frame being streamed
        self._cur_opcode = 0  # opcode of the next piece of the frame being streamed
        self._cur_fin = False  # FIN bit of the frame being streamed
        self._mask: bytes | None = None
        self._mask_off = 0
        self._rsv1_pending = False

    @property
    def buffered(self) -> int:
        """Bytes received but not parsed yet (bounded by the header size plus one chunk)."""
        return len(self._buf)

    @property
    def in_progress(self) -> bool:
        """True while a frame is incomplete (part of a header or payload received) or a
        fragmented message awaits its final fragment: what a frame deadline bounds."""
        return bool(self._buf) or self._remaining > 0 or self._msg_opcode != 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[ParsedFrame]:
        """Parse ``data`` (appended to what is buffered); return the frames / pieces completed."""
        out: list[ParsedFrame] = []
        if self.closed or self.error is not None:
            return out
        buf = self._buf
        buf += data
        try:
            pos = self._parse(buf, out)
        except ProtocolError as exc:
            self.error = exc
            buf.clear()
            return out
        if self.closed:
            buf.clear()
        elif pos:
            del buf[:pos]
        return out

    def _parse(self, buf: bytearray, out: list[ParsedFrame]) -> int:
        n = len(buf)
        pos = 0
        expect_masked = self.expect_masked
        max_frame = self.max_frame_size if self.max_frame_size is not None else _UNLIMITED
        max_msg = self.max_message_size if self.max_message_size is not None else _UNLIMITED
        with memoryview(buf) as mv:
            if self._remaining:
                pos = self._stream(mv, pos, n, out)
                if self._remaining:
                    return pos
            # Lengths up to `small` pass every size limit: the fast path needs no limit check.
            small = min(max_frame, max_msg, 125)
            while True:
                avail = n - pos
                if avail < 2:
                    return pos
                b0 = buf[pos]
                b1 = buf[pos + 1]
                length = b1 & 0x7F
                # Fast path (server side): a whole, final, masked text/binary frame of 1..125
                # bytes, no RSV bits, no fragmented message in progress.
                if (
                    (b0 == 0x82 or b0 == 0x81)
                    and expect_masked
                    and b1 & 0x80
                    and 0 < length <= small
                    and avail >= 6 + length
                    and not self._msg_opcode
                ):
                    start = pos + 6
                    end = start + length
                    w = (length + 3) >> 2
                    out.append(
                        (
                            b0 & 0x0F,
                            (
                                _from_bytes(mv[start:end])
                                ^ (_unpack_I(buf, pos + 2)[0] * _REPEAT[w])
                                >> (((w << 2) - length) << 3)
                            ).to_bytes(length),
                            True,
                            False,
                        )
                    )
                    pos = end
                    continue
                # Fast path (client side): the same for an unmasked frame from the server.
                if (
                    (b0 == 0x82 or b0 == 0x81)
                    and 0 < b1 <= small
                    and not expect_masked
                    and avail >= 2 + b1
                    and not self._msg_opcode
                ):
                    end = pos + 2 + b1
                    out.append((b0 & 0x0F, bytes(mv[pos + 2 : end]), True, False))
                    pos = end
                    continue
                opcode = b0 & 0x0F
                if b0 & 0x70 or (opcode > 2 and (opcode < 8 or opcode > 10)):
                    self._check_rsv_opcode(b0, opcode)
                hlen = 2
                if length >= 126:
                    if opcode >= 8:
                        raise ProtocolError("control frame payload longer than 125 bytes")
                    if length == 126:
                        if avail < 4:
                            return pos
                        length = _unpack_H(buf, pos + 2)[0]
                        hlen = 4
                        if length < 126:
                            raise ProtocolError("non-minimal 16-bit length encoding")
                    else:
                        if avail < 10:
                            return pos
                        length = _unpack_Q(buf, pos + 2)[0]
                        hlen = 10
                        if length >> 63:
                            raise ProtocolError("most significant bit of 64-bit length set")
                        if length < 65536:
                            raise ProtocolError("non-minimal 64-bit length encoding")
                if b1 & 0x80:
                    if not expect_masked:
                        raise ProtocolError("masked frame from server")
                    hlen += 4
                    if avail < hlen:
                        return pos
                    key = _unpack_I(buf, pos + hlen - 4)[0]
                elif expect_masked:
                    raise ProtocolError("unmasked frame from client")
                else:
                    key = -1
                fin = b0 & 0x80 != 0
                start = pos + hlen
                end = start + length
                # Header complete: enforce every rule before touching the payload.
                if opcode >= 8:
                    if not fin:
                        raise ProtocolError("fragmented control frame")
                    if end > n:
                        return pos  # control frames are tiny: wait for the whole frame
                    if key < 0:
                        payload = bytes(mv[start:end])
                    elif length:
                        w = (length + 3) >> 2
                        payload = (
                            _from_bytes(mv[start:end])
                            ^ (key * _REPEAT[w]) >> (((w << 2) - length) << 3)
                        ).to_bytes(length)
                    else:
                        payload = b""
                    out.append((opcode, payload, True, False))
                    pos = end
                    if opcode == CLOSE:
                        self.closed = True
                        return pos
                    continue
                if opcode:
                    if self._msg_opcode:
                        raise ProtocolError(
                            "new data frame while a fragmented message is in progress"
                        )
                    total = length
                    if not fin:
                        self._msg_opcode = opcode
                        self._msg_size = length
                else:
                    if not self._msg_opcode:
                        raise ProtocolError("continuation frame with no message in progress")
                    total = self._msg_size + length
                    self._msg_size = total
                    if fin:
                        self._msg_opcode = 0
                if length > max_frame:
                    raise MessageTooBig(
                        f"frame of {length} bytes exceeds the {max_frame} byte limit"
                    )
                if total > max_msg:
                    raise MessageTooBig(
                        f"message of {total}+ bytes exceeds the {max_msg} byte limit"
                    )
                rsv1 = b0 & 0x40 != 0
                if end <= n:  # fast path: the whole frame is buffered
                    if key < 0:
                        payload = bytes(mv[start:end])
                    elif 0 < length <= _SMALL:
                        w = (length + 3) >> 2
                        payload = (
                            _from_bytes(mv[start:end])
                            ^ (key * _REPEAT[w]) >> (((w << 2) - length) << 3)
                        ).to_bytes(length)
                    else:
                        payload = apply_mask(mv[start:end], key.to_bytes(4))
                    out.append((opcode, payload, fin, rsv1))
                    pos = end
                    continue
                # Stream the payload as it arrives.
                self._remaining = length
                self._cur_opcode = opcode
                self._cur_fin = fin
                self._mask = None if key < 0 else key.to_bytes(4)
                self._mask_off = 0
                self._rsv1_pending = rsv1
                return self._stream(mv, start, n, out)

    def _stream(self, mv: memoryview, pos: int, n: int, out: list[ParsedFrame]) -> int:
        """Deliver the buffered part of the frame being streamed; return the new position."""
        take = min(n - pos, self._remaining)
        if take <= 0:
            return pos
        end = pos + take
        mask = self._mask
        if mask is not None:
            off = self._mask_off
            if off:
                mask = mask[off:] + mask[:off]
            payload = apply_mask(mv[pos:end], mask)
            self._mask_off = (off + take) & 3
        else:
            payload = bytes(mv[pos:end])
        self._remaining -= take
        last = self._remaining == 0
        opcode = self._cur_opcode
        out.append((opcode, payload, last and self._cur_fin, opcode != CONT and self._rsv1_pending))
        self._cur_opcode = CONT
        return end

    def _check_rsv_opcode(self, b0: int, opcode: int) -> None:
        if b0 & 0x30:
            raise ProtocolError("reserved bit RSV2/RSV3 set without a negotiated extension")
        if b0 & 0x40:
            if not self.allow_rsv1:
                raise ProtocolError("reserved bit RSV1 set without a negotiated extension")
            if opcode >= 8:
                raise ProtocolError("RSV1 set on a control frame")
            if opcode == CONT:
                raise ProtocolError("RSV1 set on a continuation frame")
        if opcode > 2 and (opcode < 8 or opcode > 10):
            raise ProtocolError(f"unknown opcode {opcode:#x}")


def _header(opcode: int, length: int, fin: bool, masked: bool, rsv1: bool) -> bytes:
    """The frame header without the masking key (RFC 6455 section 5.2: 7-bit, 16-bit or
    64-bit payload length)."""
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    mbit = 0x80 if masked else 0
    if length < 126:
        return _pack_BB(b0, mbit | length)
    if length < 65536:
        return _pack_BBH(b0, mbit | 126, length)
    return _pack_BBQ(b0, mbit | 127, length)


def encode_frame(
    opcode: int,
    payload: bytes | bytearray | memoryview,
    *,
    fin: bool = True,
    mask: bytes | None = None,
    rsv1: bool = False,
) -> bytes:
    """Serialize one frame. ``mask`` (4 bytes) is required for client-to-server frames."""
    header = _header(opcode, len(payload), fin, mask is not None, rsv1)
    if mask is None:
        return b"".join((header, payload))
    return b"".join((header, mask, apply_mask(payload, mask)))


def prepare_message(data: bytes | bytearray | memoryview | str) -> bytes:
    """One complete unmasked server frame: text if ``data`` is a str, else binary.

    For broadcast: frame once, write the same bytes to every client. Uncompressed, which is
    legal even when permessage-deflate was negotiated (RFC 7692 section 6).
    """
    if isinstance(data, str):
        return encode_frame(TEXT, data.encode("utf-8"))
    return encode_frame(BINARY, data)


def prepare_binary_parts(parts: Sequence[bytes]) -> bytes:
    """:func:`prepare_message` of ``b"".join(parts)``, with one join instead of two (the
    payload is never copied twice): for messages assembled from shared pieces."""
    return b"".join((_header(BINARY, sum(map(len, parts)), True, False, False), *parts))


#: Close codes a peer may send (RFC 6455 section 7.4.1; 1012-1014 registered by IANA).
_VALID_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (1004/1005/1006/1015 may not)."""
    return code in _VALID_CLOSE_CODES or 3000 <= code <= 4999


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Decode a close frame's payload into ``(code, reason)``; 1005 when it carries no code.

    Raises :class:`ProtocolError` (1002) for a 1-byte payload or an invalid code, and
    :class:`~protocol.errors.InvalidPayload` (1007) for a reason that is not UTF-8.
    """
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise ProtocolError("close frame payload of 1 byte")
    code = _unpack_H(payload)[0]
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}")
    return code, decode(payload[2:])


def encode_close_payload(code: int, reason: str = "") -> bytes:
    """Close frame payload; ``code`` 1005 means "no status code" (empty payload)."""
    if code == 1005:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")
