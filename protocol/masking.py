"""XOR masking of frame payloads (RFC 6455 section 5.3), fast for every size.

Two implementations, picked by payload size (crossover measured by
``benchmarks/bench_masking.py`` on the target machine):

* small payloads: one big-integer XOR (``int.from_bytes`` / ``int.to_bytes``), which runs in C
  with no per-byte Python work and no numpy call overhead;
* large payloads: numpy, XOR-ing the payload viewed as ``uint64`` with the 4-byte key tiled to
  8 bytes, and the (< 8 byte) tail with the integer trick.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NUMPY_THRESHOLD", "apply_mask"]

#: payloads at least this long (bytes) are masked with numpy; below, the integer trick wins.
NUMPY_THRESHOLD = 2048

_u8 = np.uint8
_u64 = np.uint64


def _mask_int(data: bytes | bytearray | memoryview, mask: bytes, n: int) -> bytes:
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """Return ``data`` XOR-ed with the 4-byte ``mask`` repeated (masking == unmasking).

    ``mask`` must be exactly 4 bytes; the first payload byte is XOR-ed with ``mask[0]``.
    """
    n = len(data)
    if n < NUMPY_THRESHOLD:
        if n == 0:
            return b""
        return _mask_int(data, mask, n)
    n8 = n & ~7
    out = np.empty(n, dtype=_u8)
    key = np.frombuffer(mask * 2, dtype=_u64)
    np.bitwise_xor(np.frombuffer(data, dtype=_u64, count=n8 >> 3), key, out=out[:n8].view(_u64))
    if n8 != n:
        # n8 is a multiple of 4, so the tail starts at mask[0] again.
        out[n8:] = np.frombuffer(_mask_int(memoryview(data)[n8:], mask, n - n8), dtype=_u8)
    return out.tobytes()
