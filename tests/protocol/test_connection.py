"""Connection state machine: bytes in, events out, close codes, outbox, limits."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest

from protocol.connection import Connection, Side, State
from protocol.errors import InvalidState
from protocol.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionLost,
    Ping,
    Pong,
    ProtocolFailure,
    TextMessage,
)
from protocol.frames import BINARY, CLOSE, CONT, PING, PONG, TEXT, FrameParser, encode_frame

MASK = b"\x0f\x1e\x2d\x3c"


def cf(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client (masked) frame."""
    return encode_frame(opcode, payload, fin=fin, mask=MASK, rsv1=rsv1)


def sent_frames(conn: Connection) -> list[tuple[int, bytes, bool, bool]]:
    """Parse what ``conn`` (a server) queued for the client."""
    return FrameParser(expect_masked=conn.side is Side.CLIENT).feed(conn.data_to_send())


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def assert_failed(conn: Connection, events: Sequence[object], code: int) -> None:
    assert isinstance(events[-1], ProtocolFailure) and events[-1].code == code
    frames = sent_frames(conn)
    assert frames[-1][0] == CLOSE and struct.unpack("!H", frames[-1][1][:2])[0] == code
    assert conn.state is State.CLOSING
    assert conn.should_close_transport()
    assert conn.close_code == code
    # nothing is processed afterwards
    assert conn.receive_data(cf(TEXT, b"late")) == []


def test_text_and_binary_messages() -> None:
    server = Connection(Side.SERVER)
    events = server.receive_data(cf(TEXT, "héllo".encode()) + cf(BINARY, b"\x00\xff"))
    assert events == [TextMessage("héllo"), BinaryMessage(b"\x00\xff")]
    assert server.data_to_send() == b""


def test_fragmented_message_with_interleaved_ping() -> None:
    server = Connection(Side.SERVER)
    data = (
        cf(TEXT, b"ab", fin=False) + cf(PING, b"hb") + cf(CONT, b"cd", fin=False) + cf(CONT, b"e")
    )
    events = server.receive_data(data)
    assert events == [Ping(b"hb"), TextMessage("abcde")]
    assert sent_frames(server) == [(PONG, b"hb", True, False)]


def test_ping_answered_with_same_payload_and_unsolicited_pong_ok() -> None:
    client = Connection(Side.CLIENT)
    assert client.receive_data(encode_frame(PING, b"123")) == [Ping(b"123")]
    assert client.receive_data(encode_frame(PONG, b"unsolicited")) == [Pong(b"unsolicited")]
    assert sent_frames(client) == [(PONG, b"123", True, False)]


def test_peer_initiated_close_is_echoed() -> None:
    server = Connection(Side.SERVER)
    events = server.receive_data(cf(CLOSE, close_payload(4002, b"room full")))
    assert events == [CloseReceived(4002, "room full")]
    assert server.state is State.CLOSED
    assert sent_frames(server) == [(CLOSE, close_payload(4002), True, False)]
    assert server.should_close_transport()
    assert (server.close_code, server.close_reason) == (4002, "room full")


def test_close_without_code_echoed_with_1000() -> None:
    server = Connection(Side.SERVER)
    assert server.receive_data(cf(CLOSE)) == [CloseReceived(1005, "")]
    assert sent_frames(server) == [(CLOSE, close_payload(1000), True, False)]


def test_bytes_after_close_are_ignored() -> None:
    server = Connection(Side.SERVER)
    events = server.receive_data(cf(CLOSE, close_payload(1000)) + b"\x00garbage" + cf(TEXT, b"x"))
    assert events == [CloseReceived(1000, "")]
    assert server.receive_data(cf(TEXT, b"more")) == []


def test_we_initiate_close() -> None:
    server = Connection(Side.SERVER)
    server.send_close(1001, "shutting down")
    assert server.state is State.CLOSING
    assert sent_frames(server) == [(CLOSE, close_payload(1001, b"shutting down"), True, False)]
    assert not server.should_close_transport()
    # data still arriving while closing is delivered; pings are not answered any more
    assert server.receive_data(cf(TEXT, b"x") + cf(PING)) == [TextMessage("x"), Ping(b"")]
    assert server.data_to_send() == b""
    assert server.receive_data(cf(CLOSE, close_payload(1001))) == [CloseReceived(1001, "")]
    assert server.state is State.CLOSED
    assert server.data_to_send() == b""  # no second close
    assert server.should_close_transport()


def test_client_waits_for_server_to_close_tcp() -> None:
    client = Connection(Side.CLIENT)
    client.send_close()
    client.data_to_send()
    assert client.receive_data(encode_frame(CLOSE, close_payload(1000))) == [
        CloseReceived(1000, "")
    ]
    assert client.state is State.CLOSED
    assert not client.should_close_transport()  # RFC 6455 7.1.1: the server closes first
    assert client.receive_eof() == []
    assert client.should_close_transport()


def test_send_after_close_is_our_misuse() -> None:
    server = Connection(Side.SERVER)
    server.send_close()
    with pytest.raises(InvalidState):
        server.send_text("x")
    with pytest.raises(InvalidState):
        server.send_binary(b"x")
    with pytest.raises(InvalidState):
        server.send_ping()
    server.send_close()  # idempotent
    assert len(sent_frames(server)) == 1


def test_send_close_rejects_invalid_arguments() -> None:
    conn = Connection(Side.SERVER)
    with pytest.raises(ValueError):
        conn.send_close(1006)
    with pytest.raises(ValueError):
        conn.send_close(1000, "x" * 124)
    with pytest.raises(ValueError):
        conn.send_ping(bytes(126))


def test_abrupt_eof_is_1006() -> None:
    server = Connection(Side.SERVER)
    assert server.receive_data(cf(TEXT, b"a", fin=False)) == []
    events = server.receive_eof()
    assert events == [ConnectionLost()]
    assert isinstance(events[0], CloseReceived) and events[0].code == 1006
    assert server.close_code == 1006 and server.state is State.CLOSED
    assert server.receive_eof() == []
    assert server.receive_data(cf(TEXT, b"x")) == []


def test_client_masks_and_server_does_not() -> None:
    client, server = Connection(Side.CLIENT), Connection(Side.SERVER)
    client.send_binary(b"abc")
    wire = client.data_to_send()
    assert wire[1] & 0x80
    assert server.receive_data(wire) == [BinaryMessage(b"abc")]
    server.send_text("ok")
    wire = server.data_to_send()
    assert wire == b"\x81\x02ok"
    assert client.receive_data(wire) == [TextMessage("ok")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (encode_frame(TEXT, b"unmasked"), 1002),
        (cf(TEXT, b"x", rsv1=True), 1002),
        (cf(0x3), 1002),
        (cf(CONT, b"x"), 1002),
        (cf(TEXT, b"a", fin=False) + cf(BINARY, b"b"), 1002),
        (cf(PING, bytes(126)), 1002),
        (cf(PING, fin=False), 1002),
        (cf(CLOSE, b"\x03"), 1002),
        (cf(CLOSE, close_payload(1005)), 1002),
        (cf(CLOSE, close_payload(1006)), 1002),
        (cf(CLOSE, close_payload(1004)), 1002),
        (cf(CLOSE, close_payload(1015)), 1002),
        (cf(CLOSE, close_payload(999)), 1002),
        (cf(CLOSE, close_payload(5000)), 1002),
        (cf(CLOSE, close_payload(1000, b"\xff")), 1007),
        (cf(TEXT, b"\xff"), 1007),
        (cf(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), 1007),
        (cf(TEXT, b"a", fin=False) + cf(CONT, b"\xc0\xaf"), 1007),
    ],
)
def test_violations_fail_with_code(data: bytes, code: int) -> None:
    server = Connection(Side.SERVER)
    assert_failed(server, server.receive_data(data), code)


def test_messages_before_a_violation_are_delivered() -> None:
    server = Connection(Side.SERVER)
    events = server.receive_data(cf(TEXT, b"ok") + encode_frame(TEXT, b"bad"))
    assert events[0] == TextMessage("ok")
    assert_failed(server, events, 1002)


def test_utf8_fails_fast_in_first_fragment() -> None:
    """Autobahn 6.4.1 style: the invalid sequence fails before the final fragment arrives."""
    server = Connection(Side.SERVER)
    first = cf(TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80", fin=False)
    assert_failed(server, server.receive_data(first), 1007)


def test_utf8_fails_fast_inside_one_streamed_frame() -> None:
    """Autobahn 6.4.3 style: one frame, sent in chunks; fail at the chunk with the bad byte."""
    server = Connection(Side.SERVER)
    frame = cf(TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited")
    head = 6 + len("κόσμε".encode())
    assert server.receive_data(frame[: head + 1]) == []  # F4 alone could still be valid
    assert_failed(server, server.receive_data(frame[head + 1 : head + 2]), 1007)  # F4 90: not


def test_utf8_surrogate_prefix_fails_before_third_byte() -> None:
    server = Connection(Side.SERVER)
    frame = cf(TEXT, b"ab\xed\xa0\x80")
    assert_failed(server, server.receive_data(frame[:-1]), 1007)


def test_utf8_split_across_fragments_is_fine() -> None:
    server = Connection(Side.SERVER)
    data = "€".encode()
    events = server.receive_data(cf(TEXT, data[:1], fin=False) + cf(CONT, data[1:]))
    assert events == [TextMessage("€")]


def test_incomplete_utf8_at_message_end_fails_1007() -> None:
    server = Connection(Side.SERVER)
    events = server.receive_data(cf(TEXT, b"a", fin=False) + cf(CONT, b"\xe2\x82"))
    assert_failed(server, events, 1007)


def test_message_limit_from_header_before_buffering() -> None:
    server = Connection(Side.SERVER, max_message_size=1 << 20)
    header = struct.pack("!BBQ", 0x82, 0x80 | 127, 2 * 2**30) + MASK
    assert_failed(server, server.receive_data(header), 1009)


def test_message_limit_on_fragments() -> None:
    server = Connection(Side.SERVER, max_message_size=8)
    assert server.receive_data(cf(BINARY, bytes(8))) == [BinaryMessage(bytes(8))]
    data = cf(BINARY, bytes(5), fin=False) + cf(CONT, bytes(4))
    assert_failed(server, server.receive_data(data), 1009)


def test_frame_limit() -> None:
    server = Connection(Side.SERVER, max_frame_size=4)
    data = cf(BINARY, bytes(4), fin=False) + cf(CONT, bytes(4))
    assert server.receive_data(data) == [BinaryMessage(bytes(8))]
    assert_failed(server, server.receive_data(cf(BINARY, bytes(5))), 1009)


def test_large_message_streamed_in_small_chunks() -> None:
    server = Connection(Side.SERVER)
    payload = bytes(range(256)) * 1000
    data = cf(BINARY, payload[:100_000], fin=False) + cf(CONT, payload[100_000:])
    events = []
    for i in range(0, len(data), 4096):
        events += server.receive_data(data[i : i + 4096])
    assert events == [BinaryMessage(payload)]


def test_data_to_send_preserves_order() -> None:
    server = Connection(Side.SERVER)
    server.send_text("1")
    server.receive_data(cf(PING, b"p"))
    server.send_binary(b"2")
    assert [(op, p) for op, p, _, _ in sent_frames(server)] == [
        (TEXT, b"1"),
        (PONG, b"p"),
        (BINARY, b"2"),
    ]
