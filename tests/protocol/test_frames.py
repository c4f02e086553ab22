"""Frame parser: every frame-level rule, with its close code; serializer and close payloads."""

from __future__ import annotations

import struct

import pytest

from protocol.errors import InvalidPayload, MessageTooBig, ProtocolError
from protocol.frames import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    FrameParser,
    ParsedFrame,
    encode_close_payload,
    encode_frame,
    is_valid_close_code,
    parse_close_payload,
    prepare_message,
)

MASK = b"\x01\x02\x03\x04"


def server_parser(**kw: int | bool | None) -> FrameParser:
    return FrameParser(expect_masked=True, **kw)  # type: ignore[arg-type]


def feed_all(parser: FrameParser, data: bytes, step: int | None = None) -> list[ParsedFrame]:
    out: list[ParsedFrame] = []
    if step is None:
        return parser.feed(data)
    for i in range(0, len(data), step):
        out.extend(parser.feed(data[i : i + step]))
    return out


def merged(frames: list[ParsedFrame]) -> list[tuple[int, bytes, bool]]:
    """Join streamed pieces back into (opcode, payload, fin) per frame-start."""
    result: list[tuple[int, bytes, bool]] = []
    for opcode, payload, fin, _ in frames:
        if opcode == CONT and result and not result[-1][2] and result[-1][0] != -1:
            op, data, _ = result[-1]
            result[-1] = (op, data + payload, fin)
        else:
            result.append((opcode, payload, fin))
    return result


def failure(parser: FrameParser, data: bytes) -> ProtocolError:
    parser.feed(data)
    assert parser.error is not None
    return parser.error


@pytest.mark.parametrize("step", [None, 1, 2, 3, 7])
def test_masked_frames_any_chunking(step: int | None) -> None:
    data = (
        encode_frame(TEXT, b"Hello", mask=MASK)
        + encode_frame(BINARY, bytes(300), mask=MASK)
        + encode_frame(PING, b"p", mask=MASK)
        + encode_frame(BINARY, bytes(range(256)) * 300, mask=MASK)
    )
    frames = feed_all(server_parser(), data, step)
    assert merged(frames) == [
        (TEXT, b"Hello", True),
        (BINARY, bytes(300), True),
        (PING, b"p", True),
        (BINARY, bytes(range(256)) * 300, True),
    ]


def test_streamed_pieces_unmask_with_rotating_key() -> None:
    payload = bytes(range(200))
    frame = encode_frame(BINARY, payload, mask=b"\xaa\xbb\xcc\xdd")
    parser = server_parser()
    pieces = [parser.feed(frame[:9]), parser.feed(frame[9:12]), parser.feed(frame[12:])]
    assert pieces[0] == [(BINARY, payload[:1], False, False)]
    assert pieces[1] == [(CONT, payload[1:4], False, False)]
    assert pieces[2] == [(CONT, payload[4:], True, False)]


def test_unmasked_frame_from_client_fails_1002() -> None:
    assert failure(server_parser(), encode_frame(TEXT, b"hi")).code == 1002


def test_masked_frame_from_server_fails_1002() -> None:
    parser = FrameParser(expect_masked=False)
    assert failure(parser, encode_frame(TEXT, b"hi", mask=MASK)).code == 1002


@pytest.mark.parametrize("bits", [0x40, 0x20, 0x10, 0x70])
def test_reserved_bits_without_extension_fail_1002(bits: int) -> None:
    frame = bytearray(encode_frame(TEXT, b"hi", mask=MASK))
    frame[0] |= bits
    assert failure(server_parser(), bytes(frame)).code == 1002


def test_rsv1_with_deflate_allowed_on_first_frame_only() -> None:
    parser = server_parser(allow_rsv1=True)
    first = encode_frame(TEXT, b"a", fin=False, mask=MASK, rsv1=True)
    assert parser.feed(first) == [(TEXT, b"a", False, True)]
    cont = encode_frame(CONT, b"b", mask=MASK, rsv1=True)
    assert failure(parser, cont).code == 1002
    parser = server_parser(allow_rsv1=True)
    assert failure(parser, encode_frame(PING, b"", mask=MASK, rsv1=True)).code == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes_fail_1002(opcode: int) -> None:
    assert failure(server_parser(), encode_frame(opcode, b"", mask=MASK)).code == 1002


def test_non_minimal_16_bit_length_fails_1002() -> None:
    frame = struct.pack("!BBH", 0x82, 0x80 | 126, 125) + MASK + bytes(125)
    assert failure(server_parser(), frame).code == 1002


def test_non_minimal_64_bit_length_fails_1002() -> None:
    frame = struct.pack("!BBQ", 0x82, 0x80 | 127, 65535) + MASK
    assert failure(server_parser(), frame).code == 1002


def test_64_bit_length_with_msb_set_fails_1002() -> None:
    frame = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 63) + MASK
    assert failure(server_parser(), frame).code == 1002


def test_control_frame_over_125_bytes_fails_1002() -> None:
    frame = struct.pack("!BBH", 0x89, 0x80 | 126, 126) + MASK + bytes(126)
    assert failure(server_parser(), frame).code == 1002


def test_fragmented_control_frame_fails_1002() -> None:
    assert failure(server_parser(), encode_frame(PING, b"", fin=False, mask=MASK)).code == 1002


def test_continuation_without_message_fails_1002() -> None:
    assert failure(server_parser(), encode_frame(CONT, b"x", mask=MASK)).code == 1002


def test_new_data_frame_during_fragmented_message_fails_1002() -> None:
    data = encode_frame(TEXT, b"a", fin=False, mask=MASK) + encode_frame(TEXT, b"b", mask=MASK)
    assert failure(server_parser(), data).code == 1002


def test_control_frames_interleaved_between_fragments() -> None:
    data = (
        encode_frame(TEXT, b"a", fin=False, mask=MASK)
        + encode_frame(PING, b"1", mask=MASK)
        + encode_frame(CONT, b"b", fin=False, mask=MASK)
        + encode_frame(PONG, b"2", mask=MASK)
        + encode_frame(CONT, b"c", mask=MASK)
    )
    assert server_parser().feed(data) == [
        (TEXT, b"a", False, False),
        (PING, b"1", True, False),
        (CONT, b"b", False, False),
        (PONG, b"2", True, False),
        (CONT, b"c", True, False),
    ]


def test_huge_frame_header_fails_1009_before_any_payload() -> None:
    parser = server_parser(max_message_size=1 << 20)
    header = struct.pack("!BBQ", 0x82, 0x80 | 127, 2 * 2**30) + MASK
    assert parser.feed(header) == []
    assert isinstance(parser.error, MessageTooBig) and parser.error.code == 1009
    assert parser.buffered == 0


def test_frame_size_limit_1009() -> None:
    parser = server_parser(max_frame_size=100)
    assert parser.feed(encode_frame(BINARY, bytes(100), mask=MASK))
    assert failure(parser, encode_frame(BINARY, bytes(101), mask=MASK)[:6]).code == 1009


def test_message_limit_checked_per_fragment_header() -> None:
    parser = server_parser(max_message_size=10)
    ok = parser.feed(encode_frame(TEXT, b"12345", fin=False, mask=MASK))
    assert ok == [(TEXT, b"12345", False, False)]
    assert parser.feed(encode_frame(CONT, b"12345", fin=False, mask=MASK))
    # the next fragment's header alone pushes the total over: fails before its payload
    assert failure(parser, encode_frame(CONT, b"1", mask=MASK)[:6]).code == 1009


def test_frames_before_a_violation_are_returned() -> None:
    parser = server_parser()
    data = encode_frame(TEXT, b"ok", mask=MASK) + encode_frame(TEXT, b"bad")
    assert parser.feed(data) == [(TEXT, b"ok", True, False)]
    assert parser.error is not None
    assert parser.feed(encode_frame(TEXT, b"more", mask=MASK)) == []


def test_nothing_parsed_after_close_frame() -> None:
    parser = server_parser()
    data = encode_frame(CLOSE, b"\x03\xe8", mask=MASK) + b"\xff\xff garbage"
    assert parser.feed(data) == [(CLOSE, b"\x03\xe8", True, False)]
    assert parser.error is None and parser.closed
    assert parser.feed(encode_frame(TEXT, b"x", mask=MASK)) == []


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_encode_frame_length_boundaries(size: int) -> None:
    payload = bytes(size)
    frame = encode_frame(BINARY, payload)
    expected_header = 2 if size < 126 else 4 if size < 65536 else 10
    assert len(frame) == expected_header + size
    assert FrameParser(expect_masked=False).feed(frame) == [(BINARY, payload, True, False)]


def test_prepare_message() -> None:
    assert prepare_message("Hello") == bytes.fromhex("810548656c6c6f")
    assert prepare_message(b"\x00\x01") == b"\x82\x02\x00\x01"


def test_close_payloads() -> None:
    assert parse_close_payload(b"") == (1005, "")
    assert parse_close_payload(encode_close_payload(1000, "bye")) == (1000, "bye")
    assert parse_close_payload(encode_close_payload(4999, "é")) == (4999, "é")
    assert encode_close_payload(1005) == b""
    with pytest.raises(ProtocolError) as one_byte:
        parse_close_payload(b"\x03")
    assert one_byte.value.code == 1002
    with pytest.raises(InvalidPayload) as bad_reason:
        parse_close_payload(b"\x03\xe8\xff")
    assert bad_reason.value.code == 1007


@pytest.mark.parametrize(
    "code",
    [
        1000,
        1001,
        1002,
        1003,
        1007,
        1008,
        1009,
        1010,
        1011,
        1012,
        1013,
        1014,
        3000,
        3999,
        4000,
        4999,
    ],
)
def test_valid_close_codes(code: int) -> None:
    assert is_valid_close_code(code)
    assert parse_close_payload(struct.pack("!H", code)) == (code, "")


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
def test_invalid_close_codes_fail_1002(code: int) -> None:
    assert not is_valid_close_code(code)
    with pytest.raises(ProtocolError) as exc:
        parse_close_payload(struct.pack("!H", code))
    assert exc.value.code == 1002


def test_prepare_binary_parts_is_prepare_message_of_the_join() -> None:
    """One join of header and parts, the same bytes as framing the joined payload, on both
    sides of the 7-bit / 16-bit / 64-bit length boundaries (RFC 6455 section 5.2)."""
    from protocol.frames import prepare_binary_parts, prepare_message

    for n in (0, 1, 125, 126, 65535, 65536, 70000):
        parts = [b"\x01" * (n // 3), b"", b"\x02" * (n - n // 3)]
        assert prepare_binary_parts(parts) == prepare_message(b"".join(parts)), n
