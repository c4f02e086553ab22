"""permessage-deflate (RFC 7692): negotiation, codec, limits and frame rules."""

from __future__ import annotations

import os
import random
import zlib

import pytest

from protocol.connection import Connection, Side, State
from protocol.deflate import (
    DeflateConfig,
    DeflateParams,
    Deflater,
    Inflater,
    accept_response,
    client_offer,
    negotiate,
    parse_extensions,
)
from protocol.errors import MessageTooBig
from protocol.events import BinaryMessage, Ping, ProtocolFailure, TextMessage
from protocol.frames import BINARY, CONT, PING, TEXT, FrameParser, encode_frame

MASK = b"\x11\x22\x33\x44"


def send(conn: Connection, msg: str | bytes) -> None:
    if isinstance(msg, str):
        conn.send_text(msg)
    else:
        conn.send_binary(msg)


def offers(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    return parse_extensions([value])


def negotiated(value: str, config: DeflateConfig | None = None) -> tuple[DeflateParams, str] | None:
    return negotiate(offers(value), config or DeflateConfig())


def test_parse_extensions_grammar() -> None:
    assert parse_extensions(
        ['permessage-deflate; client_max_window_bits="10", x-foo', "bar;a=1;b"]
    ) == [
        ("permessage-deflate", [("client_max_window_bits", "10")]),
        ("x-foo", []),
        ("bar", [("a", "1"), ("b", None)]),
    ]
    for bad in ["permessage-deflate; =1", "a b", 'x; y="unterminated']:
        with pytest.raises(ValueError):
            parse_extensions([bad])


def test_server_accepts_plain_offer() -> None:
    result = negotiated("permessage-deflate")
    assert result == (DeflateParams(), "permessage-deflate")


def test_server_params() -> None:
    result = negotiated(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=10; client_max_window_bits=9"
    )
    assert result is not None
    params, value = result
    assert value == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=9"
    )
    assert params == DeflateParams(True, True, 10, 9)


def test_client_max_window_bits_without_value() -> None:
    result = negotiated(
        "permessage-deflate; client_max_window_bits", DeflateConfig(client_max_window_bits=11)
    )
    assert result is not None and result[1] == "permessage-deflate; client_max_window_bits=11"
    assert result[0].client_max_window_bits == 11
    # without the client's permission the server may not limit the client's window
    result = negotiated("permessage-deflate", DeflateConfig(client_max_window_bits=11))
    assert result is not None and result[1] == "permessage-deflate"


def test_server_config_imposes_its_limits() -> None:
    config = DeflateConfig(server_no_context_takeover=True, server_max_window_bits=12)
    result = negotiated("permessage-deflate; server_max_window_bits=14", config)
    assert result is not None
    assert result[1] == "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"


@pytest.mark.parametrize(
    "value",
    [
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; unknown",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_no_context_takeover=yes",
        "x-other",
    ],
)
def test_server_declines_invalid_offers(value: str) -> None:
    assert negotiated(value) is None


def test_server_takes_first_acceptable_offer() -> None:
    result = negotiate(
        parse_extensions(
            [
                "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=9, "
                "permessage-deflate"
            ]
        ),
        DeflateConfig(),
    )
    assert result is not None and result[1] == "permessage-deflate; server_max_window_bits=9"


def test_client_offer_and_response_checks() -> None:
    config = DeflateConfig(server_max_window_bits=10)
    assert (
        client_offer(config)
        == "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
    )
    params = accept_response(
        [("server_max_window_bits", "9"), ("client_max_window_bits", "12")], config
    )
    assert (params.server_max_window_bits, params.client_max_window_bits) == (9, 12)
    with pytest.raises(ValueError):
        accept_response([], config)  # server ignored our server_max_window_bits
    with pytest.raises(ValueError):
        accept_response([("server_max_window_bits", "11")], config)
    with pytest.raises(ValueError):
        accept_response(
            [("client_max_window_bits", "10")], DeflateConfig(client_max_window_bits=None)
        )


def test_window_bits_8_works_both_ways() -> None:
    params = DeflateParams(server_max_window_bits=8, client_max_window_bits=8)
    assert_round_trip(params, [os.urandom(300) * 5, b"abc" * 1000])


def test_deflater_strips_tail_and_inflater_restores() -> None:
    d = Deflater(15, False, 6, 8)
    data = b"hello hello hello hello"
    compressed = d.compress(data)
    assert not compressed.endswith(b"\x00\x00\xff\xff")
    assert Inflater(False).feed(compressed, True, 1000) == data


def test_inflater_bounds_output_deflate_bomb() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(bytes(50 * 2**20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(data) < 100_000
    with pytest.raises(MessageTooBig):
        Inflater(False).feed(data[:-4], True, 1 << 20)


def pair(params: DeflateParams, **kw: int) -> tuple[Connection, Connection]:
    return Connection(Side.CLIENT, deflate=params, **kw), Connection(
        Side.SERVER, deflate=params, **kw
    )


def assert_round_trip(params: DeflateParams, messages: list[bytes | str]) -> None:
    client, server = pair(params)
    for msg in messages * 2:  # twice: exercises context takeover
        expected = TextMessage(msg) if isinstance(msg, str) else BinaryMessage(msg)
        send(client, msg)
        assert server.receive_data(client.data_to_send()) == [expected]
        send(server, msg)
        assert client.receive_data(server.data_to_send()) == [expected]


@pytest.mark.parametrize(
    "params",
    [
        DeflateParams(min_size=0),
        DeflateParams(True, True, 9, 9, min_size=0),
        DeflateParams(server_no_context_takeover=True, min_size=100),
        DeflateParams(client_no_context_takeover=True, level=1, mem_level=9, min_size=0),
    ],
)
def test_round_trip(params: DeflateParams) -> None:
    assert_round_trip(params, ["", "x", "héllo " * 500, b"", bytes(100_000), os.urandom(5000)])


def test_compressed_frames_have_rsv1_small_ones_do_not() -> None:
    _client, server = pair(DeflateParams(min_size=64))
    server.send_text("a" * 100)
    server.send_text("tiny")
    frames = FrameParser(expect_masked=False, allow_rsv1=True).feed(server.data_to_send())
    assert [f[3] for f in frames] == [True, False]
    assert frames[1][1] == b"tiny"


def test_fragmented_compressed_message_with_control_frame() -> None:
    d = Deflater(15, False, 6, 8)
    text = ("fragmented " * 200).encode()
    compressed = d.compress(text)
    third = len(compressed) // 3
    data = (
        encode_frame(TEXT, compressed[:third], fin=False, mask=MASK, rsv1=True)
        + encode_frame(PING, b"x", mask=MASK)
        + encode_frame(CONT, compressed[third : 2 * third], fin=False, mask=MASK)
        + encode_frame(CONT, compressed[2 * third :], mask=MASK)
    )
    server = Connection(Side.SERVER, deflate=DeflateParams())
    assert server.receive_data(data) == [Ping(b"x"), TextMessage(text.decode())]


def test_decompressed_size_limit_1009() -> None:
    server = Connection(Side.SERVER, deflate=DeflateParams(), max_message_size=1000)
    compressed = Deflater(15, False, 6, 8).compress(bytes(5000))
    assert len(compressed) < 1000
    events = server.receive_data(encode_frame(BINARY, compressed, mask=MASK, rsv1=True))
    assert events == [ProtocolFailure(1009, "decompressed message exceeds the size limit")]
    assert server.state is State.CLOSING


def test_invalid_utf8_inside_compressed_text_1007() -> None:
    server = Connection(Side.SERVER, deflate=DeflateParams())
    compressed = Deflater(15, False, 6, 8).compress(b"ok \xff not ok")
    events = server.receive_data(encode_frame(TEXT, compressed, mask=MASK, rsv1=True))
    assert isinstance(events[-1], ProtocolFailure) and events[-1].code == 1007


def test_corrupt_compressed_data_fails() -> None:
    server = Connection(Side.SERVER, deflate=DeflateParams())
    events = server.receive_data(encode_frame(BINARY, b"\xff\xff\xff\xff", mask=MASK, rsv1=True))
    assert isinstance(events[-1], ProtocolFailure) and events[-1].code == 1002


def test_rsv1_on_control_or_continuation_fails_1002() -> None:
    for data in (
        encode_frame(PING, b"", mask=MASK, rsv1=True),
        encode_frame(BINARY, b"", fin=False, mask=MASK)
        + encode_frame(CONT, b"", mask=MASK, rsv1=True),
    ):
        server = Connection(Side.SERVER, deflate=DeflateParams())
        events = server.receive_data(data)
        assert isinstance(events[-1], ProtocolFailure) and events[-1].code == 1002


def test_uncompressed_messages_still_accepted_with_deflate() -> None:
    server = Connection(Side.SERVER, deflate=DeflateParams())
    assert server.receive_data(encode_frame(TEXT, b"plain", mask=MASK)) == [TextMessage("plain")]


def test_window_8_output_decodes_with_a_256_byte_window() -> None:
    """With 8 negotiated we compress with wbits 9; a strict 256-byte-window peer decodes it."""
    rng = random.Random(7)
    words = [rng.randbytes(rng.randint(3, 12)) for _ in range(60)]
    data = b"".join(rng.choice(words) for _ in range(20000))
    compressed = Deflater(8, False, 9, 9).compress(data)
    assert zlib.decompressobj(-8).decompress(compressed + b"\x00\x00\xff\xff") == data
