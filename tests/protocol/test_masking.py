"""Masking is XOR with the repeated 4-byte key, on every path (int trick, numpy, tails)."""

from __future__ import annotations

import os

import pytest

from protocol.masking import NUMPY_THRESHOLD, apply_mask


def reference(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


SIZES = sorted(
    {
        0,
        1,
        2,
        3,
        4,
        5,
        7,
        8,
        9,
        63,
        64,
        65,
        255,
        256,
        257,
        1023,
        NUMPY_THRESHOLD - 1,
        NUMPY_THRESHOLD,
        NUMPY_THRESHOLD + 1,
        NUMPY_THRESHOLD + 7,
        65536 + 5,
    }
)


@pytest.mark.parametrize("size", SIZES)
def test_matches_reference(size: int) -> None:
    data = os.urandom(size)
    mask = os.urandom(4)
    expected = reference(data, mask)
    assert apply_mask(data, mask) == expected
    assert apply_mask(bytearray(data), mask) == expected
    # unaligned memoryview slices (the parser passes these)
    assert apply_mask(memoryview(b"abc" + data)[3:], mask) == expected
    assert apply_mask(expected, mask) == data


def test_zero_and_ff_masks() -> None:
    data = bytes(range(256)) * 20
    assert apply_mask(data, b"\x00\x00\x00\x00") == data
    assert apply_mask(data, b"\xff\xff\xff\xff") == bytes(b ^ 0xFF for b in data)
    assert apply_mask(b"\x00" * 5, b"\x80\x00\x00\x01") == b"\x80\x00\x00\x01\x80"
