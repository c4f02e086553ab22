"""XOR masking of frame payloads (RFC 6455 section 5.3), fast for every size.

Two implementations, picked by payload size (crossover measured by
``benchmarks/bench_masking.py`` on the target machine):

* small payloads: one big-integer XOR (``int.from_bytes`` / ``int.to_bytes``), which runs in C
  with no per-byte Python work and no numpy call overhead;
* medium payloads (>= ``NUMPY_THRESHOLD``): one numpy ``uint8`` XOR with the key tiled to the
  payload length;
* large payloads (>= ``WIDE_THRESHOLD``): numpy, XOR-ing the payload viewed as ``uint64`` with
  the 4-byte key tiled to 8 bytes, and the (< 8 byte) tail with the integer trick.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NUMPY_THRESHOLD", "apply_mask"]
# (_REPEAT and _SMALL_WORDS are shared with frames.py, which inlines the small-payload path.)

#: payloads at least this long (bytes) are masked with numpy; below, the integer trick wins.
NUMPY_THRESHOLD = 1024
#: from this size on, numpy XORs uint64 words (fewer, wider operations) instead of bytes.
WIDE_THRESHOLD = 16384

_u8 = np.uint8
_u64 = np.uint64


#: _REPEAT[w] * key32 tiles a 32-bit key over w words (one multiplication, in C).
_SMALL_WORDS = 64
_REPEAT = [sum(1 << (32 * i) for i in range(w)) for w in range(_SMALL_WORDS + 1)]
_from_bytes = int.from_bytes


def _mask_int(data: bytes | bytearray | memoryview, mask: bytes, n: int) -> bytes:
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """Return ``data`` XOR-ed with the 4-byte ``mask`` repeated (masking == unmasking).

    ``mask`` must be exactly 4 bytes; the first payload byte is XOR-ed with ``mask[0]``.
    """
    n = len(data)
    if n <= _SMALL_WORDS * 4:
        if n == 0:
            return b""
        # Big-endian: the key tiled over whole words, shifted right to drop the excess bytes
        # at its end, lines up mask[0] with the first payload byte.
        w = (n + 3) >> 2
        key = (_from_bytes(mask) * _REPEAT[w]) >> (((w << 2) - n) << 3)
        return (_from_bytes(data) ^ key).to_bytes(n)
    if n < NUMPY_THRESHOLD:
        return _mask_int(data, mask, n)
    if n < WIDE_THRESHOLD:
        # one uint8 XOR against the key tiled to n bytes: least numpy call overhead
        tiled = np.frombuffer(mask * ((n >> 2) + 1), dtype=_u8, count=n)
        return (np.frombuffer(data, dtype=_u8) ^ tiled).tobytes()
    # large: 8 bytes per element; n8 is a multiple of 4, so the tail starts at mask[0] again
    n8 = n & ~7
    body = (np.frombuffer(data, dtype=_u64, count=n8 >> 3) ^ _key64(mask)).tobytes()
    if n8 == n:
        return body
    return body + _mask_int(memoryview(data)[n8:], mask, n - n8)


def _key64(mask: bytes) -> np.uint64:
    return np.frombuffer(mask * 2, dtype=_u64)[0]
