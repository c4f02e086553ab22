"""The handover blob's encoding: msgpack plus two extension types.

* ext 1, a numpy array: ``msgpack([dtype.str, shape, raw bytes])`` (C order, the dtype string
  carries the byte order, e.g. ``"<f4"``), so world columns move as raw bytes, never as lists;
* ext 2, an integer outside msgpack's 64-bit range (numpy's PCG64 state is 128-bit): its
  decimal string.

Numpy scalars become Python scalars and tuples become lists. :func:`unpack_blob` refuses
anything that is not a well-formed blob with :class:`BlobError` (Redis is ours, but a blob can
be truncated, from another version, or garbage: a clear error, never a traceback deep inside).
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

__all__ = ["BlobError", "pack_blob", "unpack_blob"]

_EXT_ARRAY = 1
_EXT_BIGINT = 2
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1
#: Largest blob accepted (a 16M-entity world is far below it).
MAX_BLOB = 1 << 31


class BlobError(ValueError):
    """A handover blob that cannot be decoded (truncated, foreign, garbage)."""


def _prep(v: Any, depth: int = 0) -> Any:
    """Big ints to ext 2 (msgpack raises for them before calling ``default``)."""
    if depth > 64:
        raise ValueError("handover state nested deeper than 64 levels")
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if _I64_MIN <= v <= _U64_MAX:
            return v
        return msgpack.ExtType(_EXT_BIGINT, str(v).encode())
    if isinstance(v, dict):
        return {k: _prep(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_prep(x, depth + 1) for x in v]
    return v


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"cannot hand over a numpy array of dtype {obj.dtype}")
        a = np.ascontiguousarray(obj)
        body = msgpack.packb([a.dtype.str, list(a.shape), a.tobytes()], use_bin_type=True)
        return msgpack.ExtType(_EXT_ARRAY, body)
    if isinstance(obj, np.generic):
        return _prep(obj.item())
    raise TypeError(f"cannot hand over a value of type {type(obj).__name__}")


def _ext(code: int, data: bytes) -> Any:
    if code == _EXT_ARRAY:
        dtype, shape, raw = msgpack.unpackb(data, raw=False)
        dt = np.dtype(dtype)
        if dt.kind not in "biuf":
            raise BlobError(f"array of dtype {dt} in a handover blob")
        arr = np.frombuffer(raw, dtype=dt).reshape(shape)
        return arr.copy()  # writable, owns its memory
    if code == _EXT_BIGINT:
        return int(data.decode())
    raise BlobError(f"unknown extension type {code} in a handover blob")


def pack_blob(obj: Any) -> bytes:
    """Encode ``obj`` (see the module docstring); ``TypeError`` for an unsupported value."""
    out = msgpack.packb(_prep(obj), default=_default, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def unpack_blob(data: bytes) -> Any:
    """Decode a blob made by :func:`pack_blob`; :class:`BlobError` if it is not one."""
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) > MAX_BLOB:
        raise BlobError("a handover blob must be bytes (at most 2 GiB)")
    try:
        return msgpack.unpackb(data, raw=False, ext_hook=_ext, strict_map_key=False)
    except BlobError:
        raise
    except Exception as exc:  # msgpack's and numpy's errors for garbage are many
        raise BlobError(f"undecodable handover blob: {exc}") from None
