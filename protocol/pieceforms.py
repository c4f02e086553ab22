"""Wire forms the VIEW pieces are made of (SPEC.md section 11), split from
:mod:`protocol.pieces` by concept: IDLISTs (per-channel runs of ascending uints, gap
codes), the 4-bit column code ids of MOVES / SAME values, per-row field change masks,
the VIEW message head. Pure helpers over numpy arrays and bytes; no per-tick state.
"""

from __future__ import annotations

import functools
from typing import Any

import msgpack
import numpy as np

from .codes import MsgType
from .wireschema import DIFF_DTYPES, WIRE_DTYPES, Snapshot

__all__ = ["CODE_IDS", "view_message"]


_GAP_CODES = (("u8", 0xFF, np.dtype("<u1")), ("u16", 0xFFFF, np.dtype("<u2")),
              ("u32", 0xFFFFFFFF, np.dtype("<u4")))
_GAP_LIMITS = np.array([limit for _, limit, _ in _GAP_CODES], np.int64)
_GAP_WIDTHS = [dt.itemsize for _, _, dt in _GAP_CODES]
_DIFFS = [(code, int(np.iinfo(dt).min), int(np.iinfo(dt).max), dt)
          for code, dt in DIFF_DTYPES.items()]
#: Column code ids of the compact MOVES piece (SPEC.md section 11): 4-bit nibbles.
CODE_IDS: tuple[str, ...] = ("u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64",
                             "d8", "d16", "d32")
_CODE_ID = {c: i for i, c in enumerate(CODE_IDS)}
#: bytes per value of every column code (wire dtypes and difference codes)
_CODE_WIDTH = {**{c: dt.itemsize for c, dt in WIRE_DTYPES.items()},
               **{c: dt.itemsize for c, dt in DIFF_DTYPES.items()}}
@functools.lru_cache(maxsize=4096)
def _mask_fields(mask: int) -> tuple[int, ...]:
    """The field indices of a group mask, ascending (memoized, bounded)."""
    return tuple(f for f in range(mask.bit_length()) if mask >> f & 1)


@functools.lru_cache(maxsize=4096)
def _nibbles(codes: tuple[str, ...]) -> bytes:
    """Code ids two per byte, the first column in the low nibble of the first byte
    (memoized, bounded)."""
    ids = [_CODE_ID[c] for c in codes] + [0]
    return bytes(ids[k] | ids[k + 1] << 4 for k in range(0, len(codes), 2))


def _comparable(col: np.ndarray) -> np.ndarray:
    """Floats compare by bits (NaN == NaN); ints as they are (as the delta encoder does)."""
    if col.dtype.kind == "f":
        return col.view(np.uint32 if col.dtype.itemsize == 4 else np.uint64)
    return col


def _row_masks(prev: Snapshot, cur: Snapshot, names: list[str]) -> np.ndarray:
    """Per snapshot row (the same entities in both), bit ``f`` set when field ``f`` differs
    (uint8 / uint16 / uint32, the narrowest that holds every field: cheap to gather)."""
    n = cur.ids.shape[0]
    nf = len(names)
    dt = np.dtype(np.uint8 if nf <= 8 else np.uint16 if nf <= 16 else np.uint32)
    masks = np.zeros(n, dt)
    ne = np.empty(n, bool)
    bit = np.empty(n, dt)
    for f, name in enumerate(names):
        a, b = prev.columns[name], cur.columns[name]
        if _same_bytes(a, b):  # one memcmp: most fields of most ticks do not change
            continue
        np.not_equal(_comparable(a), _comparable(b), out=ne)
        if f == 0:
            masks[:] = ne
        else:
            np.left_shift(ne, f, out=bit, dtype=dt)
            masks |= bit
    return masks


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equal 1-D arrays (floats by bits, as :func:`_comparable`)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.tobytes() == b.tobytes()  # two copies and a memcmp: cheaper than a ufunc


class _Runs:
    """A list of uints split into per-channel runs, each strictly ascending, as IDLISTs.

    ``chan`` (sorted) is each value's channel; ``bounds`` maps a channel to ``(start, end,
    run index)``, ``starts`` are the runs' first indices. ``idlist(c)`` is channel ``c``'s
    IDLIST (``[first, code, gaps]``), the gap bytes sliced from one blob per gap width; the
    gaps are computed on the first ``idlist`` call (a tick that sends no full piece never
    needs those of the whole arrangement). ``values`` is kept: not modified afterwards.
    """

    __slots__ = ("_blobs", "_code", "_ends", "_firsts", "_gaps", "_values", "bounds", "starts")

    def __init__(self, values: np.ndarray, chan: np.ndarray) -> None:
        n = values.shape[0]
        self._blobs: dict[int, bytes] = {}
        self._values = values
        self._gaps: np.ndarray | None = None
        self._firsts: list[int] = []
        self._code: list[int] = []
        if n == 0:
            self.bounds: dict[int, tuple[int, int, int]] = {}
            self.starts = self._ends = np.zeros(0, np.intp)
            return
        starts = np.flatnonzero(np.concatenate(((True,), chan[1:] != chan[:-1])))
        ends = np.concatenate((starts[1:], (n,)))
        self.starts = starts
        self._ends = ends
        # one C-level dict build (channel -> (start, end, run index)), not a Python loop
        self.bounds = dict(zip(chan[starts].tolist(),
                               zip(starts.tolist(), ends.tolist(), range(len(starts)))))

    def _gaps_of(self) -> np.ndarray:
        gaps = self._gaps
        if gaps is None:
            v = self._values.astype(np.int64)
            n = v.shape[0]
            gaps = np.zeros(n, np.int64)
            if n:
                gaps[:-1] = v[1:] - v[:-1]
                gaps[self._ends - 1] = 0  # no gap across a run boundary
                top = np.maximum.reduceat(gaps, self.starts)
                if int(top.max()) > _GAP_CODES[-1][1]:
                    raise ValueError("gap does not fit u32")
                # each run's gap code: the first (narrowest) whose limit holds its widest gap
                self._code = np.searchsorted(_GAP_LIMITS, top).tolist()
                self._firsts = v[self.starts].tolist()
            self._gaps = gaps
        return gaps

    def u8_layout(self) -> tuple[list[int], list[int], bytes]:
        """Each run's gap code index (0: u8) and first value, and the u8 gap blob: a run
        ``(s, e)`` of code 0 has the IDLIST ``[first, "u8", blob[s:e - 1]]`` (for callers
        slicing many runs in one loop, as :meth:`idlist` would one by one)."""
        if self._gaps is None:
            self._gaps_of()
        blob = self._blobs.get(0)
        if blob is None:
            assert self._gaps is not None
            blob = self._blobs[0] = self._gaps.astype(_GAP_CODES[0][2]).tobytes()
        return self._code, self._firsts, blob

    def idlist(self, c: int) -> list[Any] | None:
        b = self.bounds.get(c)
        if b is None:
            return None
        s, e, i = b
        if self._gaps is None:
            self._gaps_of()
        k = self._code[i]
        blob = self._blobs.get(k)
        if blob is None:
            assert self._gaps is not None
            blob = self._blobs[k] = self._gaps.astype(_GAP_CODES[k][2]).tobytes()
        w = _GAP_WIDTHS[k]
        return [self._firsts[i], _GAP_CODES[k][0], blob[s * w:(e - 1) * w]]


def _isin(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``sorted_keys`` (ascending, distinct): one search."""
    pos = np.searchsorted(sorted_keys, values)
    hit = pos < sorted_keys.shape[0]
    hit[hit] = sorted_keys[pos[hit]] == values[hit]
    return hit


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def view_message(tick: int, base_tick: int | None, left: list[int] | None,
                 pieces: list[bytes]) -> bytes:
    """One client's VIEW message: ``[22, tick, base_tick, left, PIECE...]`` where the pieces
    are already-encoded msgpack values, concatenated as they are (shared, not re-encoded).
    ``left`` (channel ids, any order) is sent as an IDLIST (nil when empty)."""
    head = msgpack.packb(
        [int(MsgType.VIEW), tick, base_tick,
         _idlist_of(sorted(set(left))) if left else None], use_bin_type=True)
    return b"".join((_array_header(4 + len(pieces)), head[1:], *pieces))


def _idlist_of(values: list[int]) -> list[Any]:
    """A small sorted list of distinct uints as an IDLIST (per-client data: no numpy)."""
    if len(values) == 1:
        return [values[0], "u8", b""]
    gaps = np.diff(np.asarray(values, np.int64))
    top = int(gaps.max())
    for code, limit, dt in _GAP_CODES:
        if top <= limit:
            return [values[0], code, gaps.astype(dt).tobytes()]
    raise ValueError("gap does not fit u32")
