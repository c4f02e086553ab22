"""The sans-I/O WebSocket connection state machine (RFC 6455 sections 5-7, RFC 7692).

Bytes in, events out; no I/O. The transport adapter feeds received bytes to
:meth:`Connection.receive_data`, writes :meth:`Connection.data_to_send` to the socket, and closes
the socket when :meth:`Connection.should_close_transport` says so.

States: ``OPEN`` -> ``CLOSING`` (we sent a close frame and wait for the peer's, or the peer
violated the protocol and we are failing the connection) -> ``CLOSED`` (close frames exchanged,
or the transport ended). When the peer closes first, our echo is queued at once and the state
goes straight to ``CLOSED``.

Guarantees:

* ``receive_data`` never raises because of the peer's bytes. A violation queues a close frame
  with the RFC code, moves to ``CLOSING`` and returns :class:`~protocol.events.ProtocolFailure`;
  everything received afterwards is ignored.
* Pongs for the peer's pings and the echo of the peer's close frame are queued automatically.
* Nothing after a close frame is processed (RFC 6455 section 5.5.1).
* Limits are enforced from frame headers before payloads are buffered, and on decompressed
  output as it is produced (1009).
* The server closes TCP first (RFC 6455 section 7.1.1): ``should_close_transport()`` is true
  on the server once the close handshake completes; on the client only after a failure or EOF
  (a client adapter should still close after a timeout if the server never does).
"""

from __future__ import annotations

import enum
import logging
import os

from .deflate import DeflateParams, Deflater, Inflater
from .errors import InvalidState, ProtocolError
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionLost,
    Event,
    Ping,
    Pong,
    ProtocolFailure,
    TextMessage,
)
from .frames import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    FrameParser,
    encode_close_payload,
    encode_frame,
    is_valid_close_code,
    parse_close_payload,
)
from .utf8 import Utf8Validator, decode

__all__ = ["Connection", "Side", "State"]

log = logging.getLogger(__name__)


class Side(enum.Enum):
    """Which end of the connection we are."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    """Connection state (RFC 6455 section 4 / 7)."""

    OPEN = 1
    CLOSING = 2
    CLOSED = 3


_urandom = os.urandom
# Headers of unmasked final frames with a 7-bit length, indexed by payload length.
_TEXT_HEADERS = [bytes((0x81, n)) for n in range(126)]
_BINARY_HEADERS = [bytes((0x82, n)) for n in range(126)]


class Connection:
    """One WebSocket connection after a successful opening handshake.

    ``max_message_size``: largest message (bytes, after decompression) we accept; larger fails
    with 1009. ``max_frame_size``: largest single frame payload (``None``: only the message
    limit applies). ``deflate``: the negotiated permessage-deflate params, or ``None``.
    """

    def __init__(
        self,
        side: Side,
        *,
        max_message_size: int | None = 16 * 2**20,
        max_frame_size: int | None = None,
        deflate: DeflateParams | None = None,
    ) -> None:
        self.side = side
        self.state = State.OPEN
        self.max_message_size = max_message_size
        self.deflate = deflate
        self.close_code: int | None = None
        self.close_reason = ""
        self._client = side is Side.CLIENT
        self._parser = FrameParser(
            expect_masked=not self._client,
            allow_rsv1=deflate is not None,
            max_frame_size=max_frame_size,
            max_message_size=max_message_size,
        )
        self._outbox: list[bytes] = []
        self._close_sent = False
        self._close_received = False
        self._failed = False
        self._eof = False
        # message being reassembled
        self._msg_opcode = 0
        self._parts: list[bytes] = []
        self._text_parts: list[str] = []
        self._compressed = False
        self._msg_size = 0
        self._utf8 = Utf8Validator()
        # permessage-deflate codec, per direction (RFC 7692 section 7.1), created on first use:
        # ~25 KiB of zlib state per direction that a server broadcasting pre-framed
        # uncompressed messages never needs.
        self._deflater: Deflater | None = None
        self._inflater: Inflater | None = None
        self._min_compress = 1 << 62
        if deflate is not None:
            self._min_compress = deflate.min_size
        # Server frames shorter than this are framed inline: unmasked, uncompressed, 7-bit length.
        self._fast_send = 0 if self._client else min(126, self._min_compress)

    # --- receiving ---------------------------------------------------------------------------

    @property
    def receiving_partial(self) -> bool:
        """True while the peer is in the middle of a frame or of a fragmented message."""
        p = self._parser  # inlined FrameParser.in_progress: this runs per received chunk
        return bool(self._msg_opcode or p._buf or p._remaining or p._msg_opcode)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Process bytes from the peer; return the events they complete. Never raises for them.

        After a close frame, a failure or EOF, further data is ignored (returns ``[]``).
        """
        if self._close_received or self._failed or self._eof:
            return []
        parser = self._parser
        frames = parser.feed(data)
        events: list[Event] = []
        try:
            for opcode, payload, fin, rsv1 in frames:
                if opcode == TEXT and fin and not rsv1:
                    events.append(TextMessage(decode(payload)))
                elif opcode == BINARY and fin and not rsv1:
                    events.append(BinaryMessage(payload))
                elif opcode <= 2:
                    event = self._data_piece(opcode, payload, fin, rsv1)
                    if event is not None:
                        events.append(event)
                elif opcode == PING:
                    if not self._close_sent:
                        self._outbox.append(self._frame(PONG, payload))
                    events.append(Ping(payload))
                elif opcode == PONG:
                    events.append(Pong(payload))
                else:  # CLOSE: the parser stops after it
                    events.append(self._on_close(payload))
                    break
            else:
                if parser.error is not None:
                    raise parser.error
        except ProtocolError as exc:
            events.append(self._fail(exc))
        return events

    def _data_piece(self, opcode: int, payload: bytes, fin: bool, rsv1: bool) -> Event | None:
        """A piece of a fragmented, streamed or compressed message; the event if it completes."""
        if opcode != CONT:
            self._msg_opcode = opcode
            self._compressed = rsv1
            self._msg_size = 0
            self._parts = []
            self._text_parts = []
            if opcode == TEXT:
                self._utf8.reset()
        if self._compressed:
            inflater = self._inflater
            if inflater is None:
                inflater = self._inflater = self._new_inflater()
            limit = self.max_message_size
            remaining = (1 << 62) if limit is None else limit - self._msg_size
            payload = inflater.feed(payload, fin, remaining)
            self._msg_size += len(payload)
        if self._msg_opcode == TEXT:
            self._text_parts.append(self._utf8.feed(payload, fin))
            if fin:
                self._msg_opcode = 0
                text = "".join(self._text_parts)
                self._text_parts = []
                return TextMessage(text)
            return None
        self._parts.append(payload)
        if fin:
            self._msg_opcode = 0
            data = b"".join(self._parts)
            self._parts = []
            return BinaryMessage(data)
        return None

    def _on_close(self, payload: bytes) -> CloseReceived:
        code, reason = parse_close_payload(payload)  # may raise ProtocolError / InvalidPayload
        self._close_received = True
        if not self._close_sent:
            # Echo the peer's code (RFC 6455 section 5.5.1); 1000 if it sent none.
            self._outbox.append(
                self._frame(CLOSE, encode_close_payload(1000 if code == 1005 else code))
            )
            self._close_sent = True
        self.state = State.CLOSED
        self.close_code = code
        self.close_reason = reason
        self._parts = []
        self._text_parts = []
        return CloseReceived(code, reason)

    def _fail(self, exc: ProtocolError) -> ProtocolFailure:
        """Fail the WebSocket connection (RFC 6455 section 7.1.7)."""
        # DEBUG: the adapter reports the ProtocolFailure event (one INFO line per peer mistake)
        log.debug(
            "websocket %s: peer violated the protocol: %d %s", self.side.value, exc.code, exc.reason
        )
        if not self._close_sent:
            reason = exc.reason.encode("utf-8")[:123].decode("utf-8", "ignore")
            self._outbox.append(self._frame(CLOSE, encode_close_payload(exc.code, reason)))
            self._close_sent = True
        self._failed = True
        if self.state is State.OPEN:
            self.state = State.CLOSING
        self.close_code = exc.code
        self.close_reason = exc.reason
        self._parts = []
        self._text_parts = []
        return ProtocolFailure(exc.code, exc.reason)

    def receive_eof(self) -> list[Event]:
        """The transport ended. Returns ``[ConnectionLost()]`` (code 1006) if that was abrupt.

        Abrupt means before the close handshake completed and without a protocol failure
        (already reported as :class:`~protocol.events.ProtocolFailure`).
        """
        if self._eof:
            return []
        self._eof = True
        previous = self.state
        self.state = State.CLOSED
        if previous is State.CLOSED or self._failed:
            return []
        self.close_code = 1006
        self.close_reason = ""
        return [ConnectionLost()]

    # --- sending -----------------------------------------------------------------------------

    def _new_deflater(self) -> Deflater:
        d = self.deflate
        assert d is not None  # only called when deflate was negotiated
        if self._client:
            bits, no_takeover = d.client_max_window_bits, d.client_no_context_takeover
        else:
            bits, no_takeover = d.server_max_window_bits, d.server_no_context_takeover
        return Deflater(bits, no_takeover, d.level, d.mem_level)

    def _new_inflater(self) -> Inflater:
        d = self.deflate
        assert d is not None  # the parser refuses RSV1 unless deflate was negotiated
        peer = d.server_no_context_takeover if self._client else d.client_no_context_takeover
        return Inflater(peer)

    def _frame(self, opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
        return encode_frame(opcode, payload, mask=_urandom(4) if self._client else None, rsv1=rsv1)

    def _send_message(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send a message: connection is {self.state.name}")
        if len(payload) >= self._min_compress:  # deflate negotiated (else the limit is 2**62)
            deflater = self._deflater
            if deflater is None:
                deflater = self._deflater = self._new_deflater()
            self._outbox.append(self._frame(opcode, deflater.compress(payload), True))
        else:
            self._outbox.append(
                encode_frame(opcode, payload, mask=_urandom(4) if self._client else None)
            )

    def send_text(self, data: str) -> None:
        """Queue a text message. Raises :class:`InvalidState` unless the state is ``OPEN``."""
        payload = data.encode("utf-8")
        if len(payload) < self._fast_send and self.state is State.OPEN:
            self._outbox.append(_TEXT_HEADERS[len(payload)] + payload)
        else:
            self._send_message(TEXT, payload)

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Queue a binary message. Raises :class:`InvalidState` unless the state is ``OPEN``."""
        if len(data) < self._fast_send and self.state is State.OPEN:
            self._outbox.append(_BINARY_HEADERS[len(data)] + data)
        else:
            self._send_message(BINARY, data)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a ping (payload at most 125 bytes, else :class:`ValueError`)."""
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot ping: connection is {self.state.name}")
        if len(payload) > 125:
            raise ValueError("ping payload longer than 125 bytes")
        self._outbox.append(self._frame(PING, bytes(payload)))

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited pong (a heartbeat; RFC 6455 section 5.5.3)."""
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot pong: connection is {self.state.name}")
        if len(payload) > 125:
            raise ValueError("pong payload longer than 125 bytes")
        self._outbox.append(self._frame(PONG, bytes(payload)))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (``OPEN`` -> ``CLOSING``); a no-op in any other state.

        ``code`` 1005 sends a close frame without a status code. Raises :class:`ValueError`
        for a code that may not be sent or a reason over 123 UTF-8 bytes (our misuse).
        """
        if code != 1005 and not is_valid_close_code(code):
            raise ValueError(f"close code {code} may not be sent")
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("close reason longer than 123 UTF-8 bytes")
        if self.state is not State.OPEN or self._close_sent:
            return
        self._outbox.append(self._frame(CLOSE, encode_close_payload(code, reason)))
        self._close_sent = True
        self.state = State.CLOSING

    def data_to_send(self) -> bytes:
        """Drain the outbox: our messages, owed pongs and the close echo, in order."""
        out = self._outbox
        if not out:
            return b""
        if len(out) == 1:
            data = out[0]
        else:
            data = b"".join(out)
        out.clear()
        return data

    def should_close_transport(self) -> bool:
        """True when the transport should be closed now (after flushing ``data_to_send``).

        Server: once the close handshake completed. Both sides: after a protocol failure or EOF.
        """
        if self._failed or self._eof:
            return True
        return self.state is State.CLOSED and not self._client

    @property
    def close_sent(self) -> bool:
        """Whether we queued a close frame (ours, an echo, or a failure's)."""
        return self._close_sent

    @property
    def close_received(self) -> bool:
        """Whether the peer's close frame was received."""
        return self._close_received
