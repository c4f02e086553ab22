"""Byte vectors from RFC 6455 section 5.7 and the section 1.3 handshake example."""

from __future__ import annotations

import pytest

from protocol.connection import Connection, Side
from protocol.events import BinaryMessage, Ping, Pong, TextMessage
from protocol.frames import BINARY, PING, PONG, TEXT, FrameParser, encode_frame
from protocol.handshake import accept_key

MASK = bytes.fromhex("37fa213d")
UNMASKED_HELLO = bytes.fromhex("810548656c6c6f")
MASKED_HELLO = bytes.fromhex("818537fa213d7f9f4d5158")
FRAGMENTED = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
UNMASKED_PING = bytes.fromhex("890548656c6c6f")
MASKED_PONG = bytes.fromhex("8a8537fa213d7f9f4d5158")


def test_handshake_key_example_section_1_3() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_single_frame_unmasked_text() -> None:
    assert encode_frame(TEXT, b"Hello") == UNMASKED_HELLO
    client = Connection(Side.CLIENT)
    assert client.receive_data(UNMASKED_HELLO) == [TextMessage("Hello")]


def test_single_frame_masked_text() -> None:
    assert encode_frame(TEXT, b"Hello", mask=MASK) == MASKED_HELLO
    server = Connection(Side.SERVER)
    assert server.receive_data(MASKED_HELLO) == [TextMessage("Hello")]


def test_fragmented_unmasked_text() -> None:
    assert encode_frame(TEXT, b"Hel", fin=False) + encode_frame(0, b"lo") == FRAGMENTED
    client = Connection(Side.CLIENT)
    assert client.receive_data(FRAGMENTED[:5]) == []
    assert client.receive_data(FRAGMENTED[5:]) == [TextMessage("Hello")]


def test_unmasked_ping_and_masked_pong() -> None:
    assert encode_frame(PING, b"Hello") == UNMASKED_PING
    assert encode_frame(PONG, b"Hello", mask=MASK) == MASKED_PONG
    client = Connection(Side.CLIENT)
    assert client.receive_data(UNMASKED_PING) == [Ping(b"Hello")]
    pong = client.data_to_send()  # the automatic pong, masked with a random key
    assert pong[0] == 0x8A and pong[1] == 0x85
    server = Connection(Side.SERVER)
    assert server.receive_data(pong) == [Pong(b"Hello")]
    assert server.receive_data(MASKED_PONG) == [Pong(b"Hello")]


@pytest.mark.parametrize(
    ("size", "header"),
    [(256, bytes.fromhex("827e0100")), (65536, bytes.fromhex("827f0000000000010000"))],
)
def test_binary_length_headers(size: int, header: bytes) -> None:
    payload = bytes(range(256)) * (size // 256)
    frame = encode_frame(BINARY, payload)
    assert frame[: len(header)] == header
    assert len(frame) == len(header) + size
    parser = FrameParser(expect_masked=False)
    assert parser.feed(frame) == [(BINARY, payload, True, False)]
    client = Connection(Side.CLIENT)
    assert client.receive_data(frame) == [BinaryMessage(payload)]
