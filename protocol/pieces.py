"""Per-channel pieces of the VIEW stream (SPEC.md section 11), encoded once per tick for all.

Interest management splits the world into *channels* (a grid cell, a team, the global
entities). Every send tick :class:`PieceEncoder` takes the world's snapshot and the channel of
every (entity, channel) membership and produces, for every channel a client may need:

* a **delta piece** ``[channel, DELTA, gone]``: the channel's change since the previous send
  tick, ``DELTA`` exactly as in SPEC.md section 5 but over the channel's own entities (rows
  index the channel's sorted ids); ``gone`` (IDLIST or nil) lists those of the DELTA's
  despawned ids that left the *world* (the others moved to another channel);
* a **full piece** ``[channel, DELTA with base_tick nil, nil]``: the channel's whole state.
* when a channel's change is moves only (no despawn, no spawn, row gaps < 256), its delta
  piece takes the compact **MOVES** form ``[channel, mask, first row, gaps, values]``
  (``values``: 4-bit column code ids, then the columns' bytes): ~9 bytes of framing instead
  of a whole DELTA's ~40, the difference between ~470 and ~290 bytes per client and tick in
  the benchmark world;
* when that MOVES piece has the rows (first row and gaps) of the channel's MOVES piece of the
  previous send tick (the common case: the same entities keep moving), the **SAME** form
  ``[channel, values]`` (or ``[channel, mask, values]`` when the mask changed) drops the rows
  for viewers that applied that previous piece (:meth:`Pieces.same`; extension
  ``"interest/2"``): ~13 bytes less per changed cell.

All are msgpack bytes, built lazily on first use and then shared by every client (the
server concatenates them into each client's VIEW message without re-encoding).

The encoder is vectorized over all channels at once: one stable sort by channel, one
``searchsorted`` match against the previous tick's arrangement, per-field comparisons, and
``reduceat`` for every per-channel minimum / maximum / mask. The only Python loop runs over
*channels that changed* (slicing precomputed byte blobs and one ``msgpack.packb`` each), never
over entities. Pieces use one GROUP per channel (its mask is the union of the fields any of
its rows changed; unchanged values then travel as a 0 difference) and the field's own dtype
for raw values: simpler than :func:`protocol.delta.encode_delta`, and every decoder of
section 5 applies them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from .codes import MsgType
from .delta import _raw_col
from .wireschema import DIFF_DTYPES, WIRE_DTYPES, Snapshot, WireSchema

__all__ = ["CODE_IDS", "PieceEncoder", "Pieces", "view_message"]

_DELTA = int(MsgType.DELTA)
_MISSING: Any = object()
_GAP_CODES = (("u8", 0xFF, np.dtype("<u1")), ("u16", 0xFFFF, np.dtype("<u2")),
              ("u32", 0xFFFFFFFF, np.dtype("<u4")))
_DIFFS = [(code, int(np.iinfo(dt).min), int(np.iinfo(dt).max), dt)
          for code, dt in DIFF_DTYPES.items()]
#: Column code ids of the compact MOVES piece (SPEC.md section 11): 4-bit nibbles.
CODE_IDS: tuple[str, ...] = ("u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64",
                             "d8", "d16", "d32")
_CODE_ID = {c: i for i, c in enumerate(CODE_IDS)}
#: bytes per value of every column code (wire dtypes and difference codes)
_CODE_WIDTH = {**{c: dt.itemsize for c, dt in WIRE_DTYPES.items()},
               **{c: dt.itemsize for c, dt in DIFF_DTYPES.items()}}
#: memo: the field indices of a group mask, the nibbles of a tuple of codes (both small)
_MASK_FIELDS: dict[int, tuple[int, ...]] = {}
_NIBBLES: dict[tuple[str, ...], bytes] = {}


def _nibbles(codes: list[str]) -> bytes:
    """Code ids two per byte, the first column in the low nibble of the first byte."""
    ids = [_CODE_ID[c] for c in codes] + [0]
    return bytes(ids[k] | ids[k + 1] << 4 for k in range(0, len(codes), 2))


def _comparable(col: np.ndarray) -> np.ndarray:
    """Floats compare by bits (NaN == NaN); ints as they are (as the delta encoder does)."""
    if col.dtype.kind == "f":
        return col.view(np.uint32 if col.dtype.itemsize == 4 else np.uint64)
    return col


class _Runs:
    """A list of uints split into per-channel runs, each strictly ascending, as IDLISTs.

    ``chan`` (sorted) is each value's channel. ``idlist(c)`` is channel ``c``'s IDLIST
    (``[first, code, gaps]``), the gap bytes sliced from one blob per gap width.
    """

    __slots__ = ("_blobs", "_firsts", "_gaps", "_maxgap", "bounds")

    def __init__(self, values: np.ndarray, chan: np.ndarray) -> None:
        n = values.shape[0]
        self.bounds: dict[int, tuple[int, int, int]] = {}
        self._blobs: dict[str, bytes] = {}
        if n == 0:
            self._gaps = np.zeros(0, np.int64)
            self._firsts: list[int] = []
            self._maxgap: list[int] = []
            return
        v = values.astype(np.int64)
        starts = np.flatnonzero(np.concatenate(([True], chan[1:] != chan[:-1])))
        ends = np.append(starts[1:], n)
        gaps = np.zeros(n, np.int64)
        gaps[:-1] = v[1:] - v[:-1]
        gaps[ends - 1] = 0  # no gap across a run boundary
        self._gaps = gaps
        self._maxgap = np.maximum.reduceat(gaps, starts).tolist()
        self._firsts = v[starts].tolist()
        # one C-level dict build (channel -> (start, end, run index)), not a Python loop
        self.bounds = dict(zip(chan[starts].tolist(),
                               zip(starts.tolist(), ends.tolist(), range(len(starts)))))

    def idlist(self, c: int) -> list[Any] | None:
        b = self.bounds.get(c)
        if b is None:
            return None
        s, e, i = b
        top = self._maxgap[i]
        for code, limit, dt in _GAP_CODES:
            if top <= limit:
                blob = self._blobs.get(code)
                if blob is None:
                    blob = self._blobs[code] = self._gaps.astype(dt).tobytes()
                w = dt.itemsize
                return [self._firsts[i], code, blob[s * w:(e - 1) * w]]
        raise ValueError("gap does not fit u32")


@dataclass(eq=False)
class _State:
    """One tick's arrangement: memberships sorted by (channel, id)."""

    tick: int
    keys: np.ndarray           # int64 channel << 32 | id, ascending
    ids: np.ndarray            # uint32
    chan: np.ndarray           # int64, ascending
    cols: list[np.ndarray]     # wire values per field, same order
    runs: _Runs                # ids per channel
    world_ids: np.ndarray      # every id in the world this tick (sorted)
    rows: np.ndarray | None = None   # the memberships' snapshot rows, as given (unsorted)
    order: np.ndarray | None = None  # sorted position k holds membership order[k]
    cstart: np.ndarray | None = None  # each membership's channel start (set by the diff)
    #: channel -> (first row, u8 gaps, mask, values) of each MOVES piece built for this tick
    #: (the next tick's SAME pieces compare their rows with these)
    moves: dict[int, tuple[int, bytes, int, bytes]] = field(default_factory=dict)


class Pieces:
    """One tick's pieces; ``delta(c)`` / ``full(c)`` / ``same(c)`` are msgpack bytes or None,
    built once.

    ``delta(c)`` is None when channel ``c`` did not change since the previous send tick
    (nothing to send) or there is no previous tick; ``full(c)`` is None for an empty channel.
    ``encodes`` counts the pieces built (the call-count tests and metrics read it).
    """

    def __init__(self, enc: PieceEncoder, cur: _State, prev: _State | None) -> None:
        self.tick = cur.tick
        self.base_tick = prev.tick if prev is not None else None
        self._enc = enc
        self._cur = cur
        self._prev = prev
        self._full: dict[int, bytes | None] = {}
        self._delta: dict[int, bytes | None] | None = None
        self._same: dict[int, bytes | None] = {}
        self._mv: dict[int, tuple[int, bytes, int, bytes] | None] = {}
        self._full_blobs: list[bytes] | None = None
        self.encodes = 0
        self.changed: frozenset[int] = frozenset()
        if prev is not None:
            self._diff(prev, cur)

    def channels(self) -> dict[int, tuple[int, int]]:
        """Non-empty channels this tick -> (start, end) of their memberships."""
        return {c: (b[0], b[1]) for c, b in self._cur.runs.bounds.items()}

    def count(self, c: int) -> int:
        b = self._cur.runs.bounds.get(c)
        return 0 if b is None else b[1] - b[0]

    def rows(self, c: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Channel ``c``'s current ids and wire columns (views; for the per-client fallback)."""
        cur = self._cur
        b = cur.runs.bounds.get(c)
        if b is None:
            return cur.ids[:0], [col[:0] for col in cur.cols]
        s, e = b[0], b[1]
        return cur.ids[s:e], [col[s:e] for col in cur.cols]

    # ------------------------------------------------------------------ full pieces
    def full(self, c: int) -> bytes | None:
        if c in self._full:
            return self._full[c]
        cur = self._cur
        b = cur.runs.bounds.get(c)
        out: bytes | None = None
        if b is not None:
            s, e = b[0], b[1]
            if self._full_blobs is None:
                self._full_blobs = [col.tobytes() for col in cur.cols]
            codes = self._enc.codes
            widths = self._enc.widths
            cols = [[codes[f], blob[s * widths[f]:e * widths[f]]]
                    for f, blob in enumerate(self._full_blobs)]
            delta = [_DELTA, cur.tick, None, e - s, None, [cur.runs.idlist(c), cols], []]
            out = msgpack.packb([c, delta, None], use_bin_type=True)
            self.encodes += 1
        self._full[c] = out
        return out

    # ------------------------------------------------------------------ delta pieces
    def delta(self, c: int) -> bytes | None:
        d = self._delta
        if d is None:
            return None
        out = d.get(c)
        if out is not None or c not in self.changed:
            return out
        out = self._build_delta(c)
        d[c] = out
        self.encodes += 1
        return out

    def same(self, c: int) -> bytes | None:
        """Channel ``c``'s piece for a viewer that applied its delta piece of the previous
        send tick (``base_tick``): the SAME form (SPEC.md section 11, extension
        ``"interest/2"``) when this tick's change is a MOVES piece whose rows are those of
        the previous tick's MOVES piece of ``c``, else :meth:`delta` (the same bytes).

        ``[channel, values]`` when the mask is the previous one too, else ``[channel, mask,
        values]``; ``values`` exactly as in the MOVES piece. Built once per tick (shared)."""
        out = self._same.get(c, _MISSING)
        if out is not _MISSING:
            return out
        prev = self._prev
        was = prev.moves.get(c) if prev is not None and c in self.changed else None
        now = self._moves(c) if was is not None else None
        if now is not None and was is not None and now[0] == was[0] and now[1] == was[1]:
            # (the long MOVES piece is not built unless some viewer needs it)
            body: list[Any] = [c, now[3]] if now[2] == was[2] else [c, now[2], now[3]]
            out = msgpack.packb(body, use_bin_type=True)
            self.encodes += 1
        else:
            out = self.delta(c)
        self._same[c] = out
        return out

    def _diff(self, prev: _State, cur: _State) -> None:
        """Vectorized: memberships added / removed / changed, grouped by channel."""
        pk, ck = prev.keys, cur.keys
        np_, nc = pk.shape[0], ck.shape[0]
        aligned = cur.runs is prev.runs  # step() found the same (channel, id) arrangement
        if aligned:  # nothing changed channel: rows align
            pos = np.arange(nc)
            in_prev = np.ones(nc, bool)
            in_cur = in_prev
        elif (np_ == nc and prev.order is not None and cur.order is not None
              and prev.rows is not None and cur.rows is not None
              and np.array_equal(prev.world_ids, cur.world_ids)
              and np.array_equal(prev.rows, cur.rows)):
            # The same entities with the same memberships, a few in another channel now:
            # membership i sits at sorted position inv[i] in each tick (no search needed).
            inv_prev = np.empty(nc, np.intp)
            inv_prev[prev.order] = np.arange(nc)
            stay_cur = pk[inv_prev[cur.order]] == ck  # same (channel, id) as before
            pos = inv_prev[cur.order]
            in_prev = stay_cur
            inv_cur = np.empty(nc, np.intp)
            inv_cur[cur.order] = np.arange(nc)
            in_cur = stay_cur[inv_cur[prev.order]]
        else:
            pos = np.searchsorted(pk, ck)
            in_prev = pos < np_
            in_prev[in_prev] = pk[pos[in_prev]] == ck[in_prev]
            bpos = np.searchsorted(ck, pk)
            in_cur = bpos < nc
            in_cur[in_cur] = ck[bpos[in_cur]] == pk[in_cur]
        removed = np.flatnonzero(~in_cur)
        added = np.flatnonzero(~in_prev)
        common = pos if aligned else np.flatnonzero(in_prev)
        pcommon = pos if aligned else pos[common]
        nf = len(cur.cols)
        masks = np.zeros(common.shape[0], np.uint32)
        for f in range(nf):
            if aligned:  # no gathers: the columns line up row for row
                ne = _comparable(prev.cols[f]) != _comparable(cur.cols[f])
            else:
                ne = _comparable(prev.cols[f][pcommon]) != _comparable(cur.cols[f][common])
            masks |= ne.astype(np.uint32) << np.uint32(f)
        sel = np.flatnonzero(masks)
        chg = common[sel]            # cur indices of changed memberships (ascending)
        chg_prev = pcommon[sel]
        chg_masks = masks[sel]
        # removed memberships: per channel, and which of them left the world
        r_ids = prev.ids[removed]
        r_chan = prev.chan[removed]
        wid = cur.world_ids
        wpos = np.searchsorted(wid, r_ids)
        alive = wpos < wid.shape[0]
        alive[alive] = wid[wpos[alive]] == r_ids[alive]
        gone = ~alive
        self._removed = _Runs(r_ids, r_chan)
        self._gone = _Runs(r_ids[gone], r_chan[gone])
        self._added_idx = added
        self._added = _Runs(cur.ids[added], cur.chan[added])
        # changed rows: row index within the channel = index - channel start
        if aligned and prev.cstart is not None:
            cstart = prev.cstart
        else:
            cstart = np.zeros(nc, np.int64)
            if nc:
                bnd = np.flatnonzero(np.concatenate(([True], cur.chan[1:] != cur.chan[:-1])))
                cstart = np.repeat(bnd, np.diff(np.append(bnd, nc)))
        cur.cstart = cstart
        rows = chg - cstart[chg]
        cch = cur.chan[chg]
        self._chg_rows = _Runs(rows, cch)
        self._chg_masks = chg_masks
        self._chg = chg
        self._chg_prev = chg_prev
        # per changed channel: union mask and per-field diff ranges
        if chg.shape[0]:
            st = np.flatnonzero(np.concatenate(([True], cch[1:] != cch[:-1])))
            self._chg_union = np.bitwise_or.reduceat(chg_masks, st).tolist()
            ranges: list[tuple[list[int], list[int]] | None] = []
            diffs: list[np.ndarray | None] = []
            for f in range(nf):
                new = cur.cols[f][chg]
                if new.dtype.kind == "f":
                    ranges.append(None)
                    diffs.append(None)
                    continue
                d = new.astype(np.int64) - prev.cols[f][chg_prev].astype(np.int64)
                diffs.append(d)
                ranges.append((np.minimum.reduceat(d, st).tolist(),
                               np.maximum.reduceat(d, st).tolist()))
            self._chg_ranges = ranges
            self._chg_diffs = diffs
            used = int(np.bitwise_or.reduce(chg_masks))  # fields changed anywhere
            self._chg_codes = [self._pick_codes(f, r, len(st)) if used >> f & 1 else []
                               for f, r in enumerate(ranges)]
        else:
            self._chg_union = []
            self._chg_ranges = []
            self._chg_diffs = []
            self._chg_codes = []
        self._chg_blobs: dict[tuple[int, str], bytes] = {}
        self.changed = frozenset(self._removed.bounds) | frozenset(self._added.bounds) | \
            frozenset(self._chg_rows.bounds)
        self._delta = {}

    def _pick_codes(self, f: int, r: tuple[list[int], list[int]] | None, n: int) -> list[str]:
        """Per changed channel, field ``f``'s column code: its own dtype, or the smallest
        difference code that holds the channel's diff range when that is narrower (the
        choice ``encode_delta`` makes), chosen for all channels at once."""
        own = self._enc.codes[f]
        if r is None:
            return [own] * n
        lo, hi = np.asarray(r[0]), np.asarray(r[1])
        width = self._enc.widths[f]
        names = np.array([d[0] for d in _DIFFS] + [own], dtype=object)
        pick = np.full(n, len(_DIFFS), np.intp)  # default: the field's own code
        for k in range(len(_DIFFS) - 1, -1, -1):  # the first (smallest) that fits wins
            _, dmin, dmax, dt = _DIFFS[k]
            if dt.itemsize < width:
                pick[(lo >= dmin) & (hi <= dmax)] = k
        out: list[str] = names[pick].tolist()
        return out

    def _col_blob(self, f: int, code: str) -> bytes:
        key = (f, code)
        blob = self._chg_blobs.get(key)
        if blob is None:
            if code in DIFF_DTYPES:
                d = self._chg_diffs[f]
                assert d is not None
                blob = d.astype(DIFF_DTYPES[code]).tobytes()
            else:
                blob = self._cur.cols[f][self._chg].tobytes()
            self._chg_blobs[key] = blob
        return blob

    def _group(self, c: int, gb: tuple[int, int, int]) -> tuple[int, list[Any], list[Any]]:
        """Channel ``c``'s GROUP of changed rows (``gb``: its ``_chg_rows`` run): mask,
        ROWLIST, COLS."""
        s, e, i = gb
        mask = self._chg_union[i]
        cols: list[Any] = []
        picked = self._chg_codes
        fields = _MASK_FIELDS.get(mask)
        if fields is None:
            fields = _MASK_FIELDS[mask] = tuple(f for f in range(64) if mask >> f & 1)
        for f in fields:
            code = picked[f][i]
            w = _CODE_WIDTH[code]
            cols.append([code, self._col_blob(f, code)[s * w:e * w]])
        rows = self._chg_rows.idlist(c)
        assert rows is not None
        return mask, rows, cols

    def _moves(self, c: int) -> tuple[int, bytes, int, bytes] | None:
        """Channel ``c``'s MOVES content this tick, ``(first row, u8 gaps, mask, values)``,
        or None when its change is not moves only with row gaps < 256 (memoized; also kept
        in the tick's state for the next tick's SAME pieces)."""
        mv = self._mv
        if c in mv:
            return mv[c]
        rec = None
        gb = self._chg_rows.bounds.get(c)
        if gb is not None and c not in self._removed.bounds and c not in self._added.bounds:
            mask, rows, cols = self._group(c, gb)
            if rows[1] == "u8":
                # values = the columns' code ids (nibbles) then their values
                ncodes = tuple([code for code, _ in cols])
                nib = _NIBBLES.get(ncodes)
                if nib is None:
                    nib = _NIBBLES[ncodes] = _nibbles(list(ncodes))
                values = b"".join([nib, *[data for _, data in cols]])
                rec = (rows[0], rows[2], mask, values)
                self._cur.moves[c] = rec
        mv[c] = rec
        return rec

    def _build_delta(self, c: int) -> bytes:
        mv = self._moves(c)
        if mv is not None:
            # the compact MOVES piece: [channel, mask, first row, u8 gaps, values]: ~9 bytes
            # of framing instead of a whole DELTA's ~40
            return msgpack.packb([c, mv[2], mv[0], mv[1], mv[3]], use_bin_type=True)
        cur = self._cur
        b = cur.runs.bounds.get(c)
        count = 0 if b is None else b[1] - b[0]
        desp = self._removed.idlist(c)
        spawn = None
        ab = self._added.bounds.get(c)
        if ab is not None:
            s, e = ab[0], ab[1]
            idx = self._added_idx[s:e]
            # raw values in the smallest code that holds them (as encode_delta does)
            spawn = [self._added.idlist(c), [_raw_col(col[idx]) for col in cur.cols]]
        groups: list[Any] = []
        gb = self._chg_rows.bounds.get(c)
        if gb is not None:
            groups.append(list(self._group(c, gb)))
        delta = [_DELTA, cur.tick, self.base_tick, count, desp, spawn, groups]
        return msgpack.packb([c, delta, self._gone.idlist(c)], use_bin_type=True)


class PieceEncoder:
    """Keeps the previous send tick's arrangement; :meth:`step` gives this tick's :class:`Pieces`.

    ``schema`` fixes field order and dtypes (the world snapshot's). :meth:`reset` forgets the
    previous tick (every client then needs full pieces).
    """

    def __init__(self, schema: WireSchema) -> None:
        self.codes = [f.dtype for f in schema.fields]
        self.widths = [WIRE_DTYPES[c].itemsize for c in self.codes]
        self.names = list(schema.names)
        self._prev: _State | None = None

    def reset(self) -> None:
        self._prev = None

    def step(self, tick: int, snap: Snapshot, rows: np.ndarray, chan: np.ndarray) -> Pieces:
        """This tick's pieces: ``rows`` index ``snap`` (one entry per membership), ``chan``
        the channel (uint32 range) of each; an entity may appear in several channels."""
        # channels fit 16 bits in the common case: numpy's stable sort is then a radix sort
        small = chan.shape[0] and int(chan.max()) < 65536 and int(chan.min()) >= 0
        order = np.argsort(chan.astype(np.uint16) if small else chan, kind="stable")
        r = rows[order]
        ch = chan[order].astype(np.int64)
        ids = snap.ids[r]
        # stable sort by channel of rows in ascending id order keeps ids ascending per channel
        # only if ``rows`` ascend within each channel's block: callers build them that way
        # int64 keys (channel < 2**31): numpy searches them about twice as fast as uint64
        keys = (ch << 32) | ids.astype(np.int64)
        cols = [snap.columns[n][r] for n in self.names]
        prev = self._prev
        if (prev is not None and prev.keys.shape[0] == keys.shape[0]
                and np.array_equal(prev.keys, keys)):
            runs = prev.runs  # the same arrangement: the same runs (and their IDLIST blobs)
        else:
            runs = _Runs(ids, ch)
        cur = _State(tick, keys, ids, ch, cols, runs, snap.ids, rows, order)
        pieces = Pieces(self, cur, self._prev)
        self._prev = cur
        return pieces


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
