"""Incremental UTF-8 validation fails on the first impossible byte."""

from __future__ import annotations

import pytest

from protocol.errors import InvalidPayload
from protocol.utf8 import Utf8Validator, decode


def first_failure(chunks: list[bytes]) -> int | None:
    """Index of the chunk whose feed raised, or None."""
    v = Utf8Validator()
    for i, chunk in enumerate(chunks):
        try:
            v.feed(chunk, final=i == len(chunks) - 1)
        except InvalidPayload as exc:
            assert exc.code == 1007
            return i
    return None


def test_valid_text_split_anywhere() -> None:
    data = "κόσμε €𝄞 ascii".encode()
    for cut in range(len(data) + 1):
        v = Utf8Validator()
        assert v.feed(data[:cut]) + v.feed(data[cut:], final=True) == "κόσμε €𝄞 ascii"


@pytest.mark.parametrize(
    ("chunks", "index"),
    [
        ([b"ok", b"\xff", b"more"], 1),
        ([b"\xf4", b"\x90", b"\x80\x80"], 1),  # above U+10FFFF
        ([b"\xe0", b"\x80", b"\x80"], 1),  # overlong
        ([b"\xc0", b"\xaf"], 0),  # C0 can never start a valid sequence
        ([b"\xed", b"\xa0", b"\x80"], 1),  # surrogate, caught before its third byte
        ([b"\xf5"], 0),
        ([b"\xe2\x82", b""], 1),  # truncated at the end of the message
    ],
)
def test_fails_fast(chunks: list[bytes], index: int) -> None:
    assert first_failure(chunks) == index


def test_reset_forgets_pending_bytes() -> None:
    v = Utf8Validator()
    v.feed(b"\xe2\x82")
    v.reset()
    assert v.feed(b"abc", final=True) == "abc"


def test_decode() -> None:
    assert decode(b"h\xc3\xa9") == "hé"
    with pytest.raises(InvalidPayload):
        decode(b"\xed\xa0\x80")
