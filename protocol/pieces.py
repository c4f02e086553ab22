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
server concatenates them into each client's VIEW message without re-encoding);
:meth:`Pieces.many` builds those of many channels in one pass (the server's steady frames).
The wire forms' helpers (IDLIST runs, column codes, row masks) are in
:mod:`protocol.pieceforms`.

The encoder is vectorized over all channels at once: the memberships sorted by (channel,
id), matched against the previous tick's arrangement, per-field comparisons, and ``reduceat``
for every per-channel minimum / maximum / mask. It is incremental in the common case (the
same entities and memberships as the previous send tick, a few of them in another channel):
the previous arrangement is patched for the moved memberships instead of re-sorted, and the
fields are compared per snapshot row with no gather of whole columns (a full sort and a
``searchsorted`` match otherwise; ``PieceEncoder(incremental=False)`` always, the same
bytes). The only Python loop runs over *channels that changed* (slicing precomputed byte
blobs and one ``msgpack.packb`` each), never over entities. Pieces use one GROUP per channel
(its mask is the union of the fields any of its rows changed; unchanged values then travel as
a 0 difference) and the field's own dtype for raw values: simpler than
:func:`protocol.delta.encode_delta`, and every decoder of section 5 applies them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgpack
import numpy as np

from .codes import MsgType
from .delta import _raw_col
from .pieceforms import (
    _CODE_WIDTH,
    _DIFFS,
    CODE_IDS,
    _comparable,
    _isin,
    _mask_fields,
    _nibbles,
    _row_masks,
    _Runs,
    view_message,
)
from .wireschema import DIFF_DTYPES, WIRE_DTYPES, Snapshot, WireSchema

__all__ = ["CODE_IDS", "PieceEncoder", "Pieces", "view_message"]

_DELTA = int(MsgType.DELTA)
_MISSING: Any = object()

class _State:
    """One tick's arrangement: memberships sorted by (channel, id).

    ``rows`` / ``chan_in`` are the memberships as given to :meth:`PieceEncoder.step`;
    sorted position ``k`` holds snapshot row ``r[k]``, id ``ids[k]``, channel ``chan[k]``,
    key ``keys[k] = chan << 32 | id`` (ascending, distinct). The wire columns in sorted
    order (``cols``) are gathered on first use: the steady path reads values at the few
    changed rows only (``col_at``). ``moved`` (set by ``step``) is not None when this tick
    has the same entities and memberships (rows) as the previous one: the memberships
    (input indices) whose channel changed, each under a key the previous tick did not
    hold; ``added`` / ``removed`` are then their sorted positions now / last tick
    (ascending): ``Pieces._diff``'s fast path. ``moves``: channel -> (first row, u8 gaps,
    mask, values) of each MOVES piece built for this tick (the next tick's SAME pieces
    compare their rows with these).
    """

    __slots__ = ("_cols", "added", "chan", "chan_in", "ids", "keys", "moved", "moves", "names",
                 "r", "removed", "rows", "runs", "snap", "tick", "world_ids")

    def __init__(self, tick: int, snap: Snapshot, names: list[str], rows: np.ndarray,
                 chan_in: np.ndarray, r: np.ndarray, keys: np.ndarray, ids: np.ndarray,
                 chan: np.ndarray, runs: _Runs) -> None:
        self.tick = tick
        self.snap = snap
        self.names = names
        self.world_ids = snap.ids  # every id in the world this tick (sorted)
        self.rows = rows
        self.chan_in = chan_in
        self.r = r
        self.keys = keys            # int64 channel << 32 | id, ascending
        self.ids = ids              # uint32
        self.chan = chan            # int64, ascending
        self.runs = runs            # ids per channel
        self.moved: np.ndarray | None = None
        self.added = self.removed = _NONE
        self._cols: list[np.ndarray] | None = None
        self.moves: dict[int, tuple[int, bytes, int, bytes]] = {}

    @property
    def cols(self) -> list[np.ndarray]:
        """Wire values per field in sorted order (gathered once, on first use)."""
        if self._cols is None:
            cols = self.snap.columns
            self._cols = [cols[n][self.r] for n in self.names]
        return self._cols

    def col_at(self, f: int, pos: np.ndarray) -> np.ndarray:
        """Field ``f``'s wire values at sorted positions ``pos``."""
        return self.snap.columns[self.names[f]][self.r[pos]]


_NONE = np.zeros(0, np.intp)
_NONE.flags.writeable = False


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
        self._pack = msgpack.Packer(use_bin_type=True).pack  # packb without a Packer a call
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
        return self.many((c,), False).get(c)

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
        if c not in self.changed:
            self._same[c] = None
            return None
        return self.many((c,), True).get(c)

    def many(self, chans: Iterable[int], same: bool) -> dict[int, bytes]:
        """The non-None :meth:`same` (``same``) or :meth:`delta` pieces of the *changed*
        channels among ``chans`` (any iterable; the others are skipped), built in one pass:
        byte for byte and count for count what the single lookups give (they share the
        memo: a piece is built once per tick whichever way it is asked for)."""
        out: dict[int, bytes] = {}
        d = self._delta
        if d is None:
            return out
        want = self.changed.intersection(chans)
        memo = self._same if same else d
        todo = []
        for c in want:
            b = memo.get(c)
            if b is None:
                todo.append(c)
            else:
                out[c] = b
        if not todo:
            return out
        pack = self._pack
        long: list[int] = []
        if same:
            prev = self._prev
            assert prev is not None
            was_of = prev.moves
            mv = self._moves_many([c for c in todo if c in was_of])
            for c in todo:
                now = mv.get(c) if c in was_of else None
                if now is not None:
                    was = was_of[c]
                    if now[0] == was[0] and now[1] == was[1]:
                        # (the long MOVES piece is not built unless some viewer needs it)
                        out[c] = memo[c] = pack([c, now[3]] if now[2] == was[2]
                                                else [c, now[2], now[3]])
                        self.encodes += 1
                        continue
                long.append(c)
            if not long:
                return out
        else:
            long = todo
        mv = self._moves_many(long)
        for c in long:
            b = d.get(c)
            if b is None:
                m = mv.get(c)
                # the compact MOVES piece: [channel, mask, first row, u8 gaps, values]: ~9
                # bytes of framing instead of a whole DELTA's ~40
                b = d[c] = (pack([c, m[2], m[0], m[1], m[3]]) if m is not None
                            else self._build_delta(c))
                self.encodes += 1
            out[c] = b
            if same:
                memo[c] = b
        return out

    def _diff(self, prev: _State, cur: _State) -> None:
        """Vectorized: memberships added / removed / changed, grouped by channel.

        Fast path (``cur.moved`` set: same entities and rows as ``prev``): the fields are
        compared per snapshot row (no gathers), the moved memberships are the removed and
        added ones. Otherwise memberships are matched by key (``searchsorted``)."""
        nf = len(cur.names)
        moved = cur.moved
        if moved is not None:
            em = _row_masks(prev.snap, cur.snap, cur.names)  # per snapshot row
            masks = em[cur.r]  # per current membership, sorted
            added, removed = cur.added, cur.removed
            if moved.shape[0]:
                masks[added] = 0  # an added membership is not a changed one
                chg = np.flatnonzero(masks)
                # the others kept their keys and their relative order: the j-th kept
                # membership sits at j + (#added before it) now and at
                # j + (#removed before it) last tick
                j = chg - np.searchsorted(added, chg)
                chg_prev = j + np.searchsorted(removed - np.arange(removed.shape[0]), j,
                                               "right")
            else:
                chg = np.flatnonzero(masks)
                chg_prev = chg
            chg_masks = masks[chg].astype(np.uint32)
        else:
            pk, ck = prev.keys, cur.keys
            np_, nc = pk.shape[0], ck.shape[0]
            pos = np.searchsorted(pk, ck)
            in_prev = pos < np_
            in_prev[in_prev] = pk[pos[in_prev]] == ck[in_prev]
            bpos = np.searchsorted(ck, pk)
            in_cur = bpos < nc
            in_cur[in_cur] = ck[bpos[in_cur]] == pk[in_cur]
            removed = np.flatnonzero(~in_cur)
            added = np.flatnonzero(~in_prev)
            common = np.flatnonzero(in_prev)
            pcommon = pos[common]
            masks = np.zeros(common.shape[0], np.uint32)
            for f in range(nf):
                ne = _comparable(prev.cols[f][pcommon]) != _comparable(cur.cols[f][common])
                masks |= ne.astype(np.uint32) << np.uint32(f)
            sel = np.flatnonzero(masks)
            chg = common[sel]            # cur indices of changed memberships (ascending)
            chg_prev = pcommon[sel]
            chg_masks = masks[sel]
        # removed memberships: per channel, and which of them left the world
        r_ids = prev.ids[removed]
        r_chan = prev.chan[removed]
        gone = ~_isin(r_ids, cur.world_ids)
        self._removed = _Runs(r_ids, r_chan)
        self._gone = _Runs(r_ids[gone], r_chan[gone])
        self._added_idx = added
        self._added = _Runs(cur.ids[added], cur.chan[added])
        # changed rows: row index within the channel = index - channel start
        starts = cur.runs.starts
        rows = chg - starts[np.searchsorted(starts, chg, "right") - 1]
        cch = cur.chan[chg]
        self._chg_rows = _Runs(rows, cch)
        self._chg_masks = chg_masks
        self._chg = chg
        self._chg_prev = chg_prev
        # per changed channel: union mask and per-field diff ranges (fields that changed
        # somewhere; the others are in no channel's mask)
        ranges: list[tuple[np.ndarray, np.ndarray] | None] = [None] * nf
        diffs: list[np.ndarray | None] = [None] * nf
        self._chg_new: list[np.ndarray | None] = [None] * nf
        self._chg_codes: list[list[str]] = [[] for _ in range(nf)]
        if chg.shape[0]:
            st = np.flatnonzero(np.concatenate(([True], cch[1:] != cch[:-1])))
            self._chg_union = np.bitwise_or.reduceat(chg_masks, st).tolist()
            used = int(np.bitwise_or.reduce(chg_masks))  # fields changed anywhere
            for f in range(nf):
                if not used >> f & 1:
                    continue
                new = self._chg_new[f] = cur.col_at(f, chg)
                if new.dtype.kind != "f":
                    d = new.astype(np.int64) - prev.col_at(f, chg_prev).astype(np.int64)
                    diffs[f] = d
                    ranges[f] = (np.minimum.reduceat(d, st), np.maximum.reduceat(d, st))
                self._chg_codes[f] = self._pick_codes(f, ranges[f], len(st))
        else:
            self._chg_union = []
        self._chg_ranges = ranges
        self._chg_diffs = diffs
        self._chg_blobs: dict[tuple[int, str], bytes] = {}
        self.changed = frozenset(self._removed.bounds) | frozenset(self._added.bounds) | \
            frozenset(self._chg_rows.bounds)
        self._delta = {}

    def _pick_codes(self, f: int, r: tuple[np.ndarray, np.ndarray] | None,
                    n: int) -> list[str]:
        """Per changed channel, field ``f``'s column code: its own dtype, or the smallest
        difference code that holds the channel's diff range ``r`` (per-channel minima and
        maxima) when that is narrower (the choice ``encode_delta`` makes), chosen for all
        channels at once."""
        own = self._enc.codes[f]
        if r is None:
            return [own] * n
        lo, hi = r
        neg_mins, maxs = self._enc.diff_bounds[f]
        # the narrowest difference code (nested ranges, narrowest first) holding both ends;
        # past the narrower ones: the field's own code (last name)
        pick = np.maximum(np.searchsorted(neg_mins, -lo), np.searchsorted(maxs, hi))
        out: list[str] = self._enc.diff_names[f][pick].tolist()
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
                new = self._chg_new[f]
                assert new is not None
                blob = new.tobytes()
            self._chg_blobs[key] = blob
        return blob

    def _group(self, c: int, gb: tuple[int, int, int]) -> tuple[int, list[Any], list[Any]]:
        """Channel ``c``'s GROUP of changed rows (``gb``: its ``_chg_rows`` run): mask,
        ROWLIST, COLS."""
        s, e, i = gb
        mask = self._chg_union[i]
        cols: list[Any] = []
        picked = self._chg_codes
        fields = _mask_fields(mask)
        for f in fields:
            code = picked[f][i]
            w = _CODE_WIDTH[code]
            cols.append([code, self._col_blob(f, code)[s * w:e * w]])
        rows = self._chg_rows.idlist(c)
        assert rows is not None
        return mask, rows, cols

    def _moves_many(self, chans: list[int]) -> dict[int, tuple[int, bytes, int, bytes] | None]:
        """Each channel's MOVES content this tick, ``(first row, u8 gaps, mask, values)``,
        or None when its change is not moves only with row gaps < 256 (memoized in the
        returned dict; also kept in the tick's state for the next tick's SAME pieces). One
        loop over ``chans`` with everything bound locally (it runs for every changed
        channel a viewer sees, every tick); the column layout of ``values`` (code ids,
        blobs, widths) is looked up once per distinct (mask, codes)."""
        mv = self._mv
        rb = self._chg_rows.bounds
        todo = [c for c in chans if c not in mv]
        if not todo or not rb:
            for c in todo:
                mv[c] = None
            return mv
        gone_b, new_b = self._removed.bounds, self._added.bounds
        kcode, firsts, gaps = self._chg_rows.u8_layout()
        union, picked = self._chg_union, self._chg_codes
        used = [f for f, p in enumerate(picked) if p]
        # every run's codes of the fields changed anywhere (C-level zip); a run's mask
        # picks its own fields out of them
        run_codes = list(zip(*[picked[f] for f in used], strict=True))
        layouts: dict[tuple[int, tuple[str, ...]], tuple[bytes, list[tuple[bytes, int]]]] = {}
        keep = self._cur.moves
        for c in todo:
            rec = None
            gb = rb.get(c)
            if gb is not None and c not in gone_b and c not in new_b:
                s, e, i = gb
                if kcode[i] == 0:  # u8 row gaps
                    mask = union[i]
                    lk = (mask, run_codes[i])
                    lay = layouts.get(lk)
                    if lay is None:
                        lay = layouts[lk] = self._layout(mask, dict(zip(used, lk[1],
                                                                        strict=True)))
                    # values = the columns' code ids (nibbles) then their values
                    parts = [lay[0]]
                    for blob, w in lay[1]:
                        parts.append(blob[s * w:e * w])
                    rec = keep[c] = (firsts[i], gaps[s:e - 1], mask, b"".join(parts))
            mv[c] = rec
        return mv

    def _layout(self, mask: int, codes: dict[int, str]) -> tuple[bytes, list[tuple[bytes, int]]]:
        """The nibbles and (blob, width) per column of MOVES values with group ``mask`` and
        per-field ``codes`` (fields in ``mask`` only)."""
        fields = _mask_fields(mask)
        picked = tuple([codes[f] for f in fields])
        nib = _nibbles(picked)
        return nib, [(self._col_blob(f, code), _CODE_WIDTH[code])
                     for f, code in zip(fields, picked, strict=True)]

    def _build_delta(self, c: int) -> bytes:
        """Channel ``c``'s whole DELTA piece (its change is not a MOVES one)."""
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
            spawn = [self._added.idlist(c),
                     [_raw_col(cur.col_at(f, idx)) for f in range(len(cur.names))]]
        groups: list[Any] = []
        gb = self._chg_rows.bounds.get(c)
        if gb is not None:
            groups.append(list(self._group(c, gb)))
        delta = [_DELTA, cur.tick, self.base_tick, count, desp, spawn, groups]
        return self._pack([c, delta, self._gone.idlist(c)])


class PieceEncoder:
    """Keeps the previous send tick's arrangement; :meth:`step` gives this tick's :class:`Pieces`.

    ``schema`` fixes field order and dtypes (the world snapshot's). :meth:`reset` forgets the
    previous tick (every client then needs full pieces). ``incremental=False`` sorts and
    matches every membership every tick (the reference the incremental path is tested and
    benchmarked against; the same bytes).
    """

    def __init__(self, schema: WireSchema, incremental: bool = True) -> None:
        self.incremental = incremental
        self.codes = [f.dtype for f in schema.fields]
        self.widths = [WIRE_DTYPES[c].itemsize for c in self.codes]
        self.names = list(schema.names)
        # per field: the difference codes narrower than its own, (min, max) and names
        # (own code last), smallest first (for Pieces._pick_codes)
        self.diff_bounds: list[tuple[np.ndarray, np.ndarray]] = []
        self.diff_names: list[np.ndarray] = []
        for code, width in zip(self.codes, self.widths, strict=True):
            narrower = sorted((d for d in _DIFFS if d[3].itemsize < width),
                              key=lambda d: d[3].itemsize)
            self.diff_bounds.append((np.array([-d[1] for d in narrower], np.int64),
                                     np.array([d[2] for d in narrower], np.int64)))
            self.diff_names.append(np.array([d[0] for d in narrower] + [code], dtype=object))
        self._prev: _State | None = None

    def reset(self) -> None:
        self._prev = None

    def step(self, tick: int, snap: Snapshot, rows: np.ndarray, chan: np.ndarray) -> Pieces:
        """This tick's pieces: ``rows`` index ``snap`` (one entry per membership), ``chan``
        the channel (uint32 range) of each; an entity may appear in several channels, but
        not twice in one. ``rows`` ascend within each channel's block (so ids ascend per
        channel); ``snap``'s arrays, ``rows`` and ``chan`` are not modified afterwards (the
        next step compares against them; server snapshots are fresh copies).

        Incremental: when the entities and ``rows`` are those of the previous step, only
        the memberships whose channel changed are re-placed in the previous arrangement
        (:meth:`_patch`; a full sort when more than 1/8 moved) and the field comparison
        runs over snapshot rows, without gathering every column (:meth:`Pieces._diff`).
        The pieces are byte for byte those of the full sort (tests/protocol/
        test_pieces_incremental.py checks it against ``incremental=False``)."""
        prev = self._prev
        n = chan.shape[0]
        cur: _State | None = None
        moved: np.ndarray | None = None
        if (self.incremental and prev is not None and prev.rows.shape[0] == n
                and np.array_equal(prev.world_ids, snap.ids)
                and (rows is prev.rows or np.array_equal(prev.rows, rows))):
            moved = _NONE if chan is prev.chan_in else np.flatnonzero(chan != prev.chan_in)
            if moved.shape[0] == 0:  # the same arrangement: everything but the values
                cur = _State(tick, snap, self.names, rows, chan, prev.r, prev.keys, prev.ids,
                             prev.chan, prev.runs)
            else:
                mid = snap.ids[rows[moved]].astype(np.int64)
                nk = (chan[moved].astype(np.int64) << 32) | mid
                if _isin(nk, prev.keys).any():
                    moved = None  # a membership took another's old key: the generic diff
                else:
                    ok = (prev.chan_in[moved].astype(np.int64) << 32) | mid
                    removed = np.sort(np.searchsorted(prev.keys, ok))
                    if moved.shape[0] * 8 <= n:
                        cur = self._patch(tick, snap, rows, chan, prev, moved, nk, removed)
                    else:
                        cur = self._sort(tick, snap, rows, chan, prev)
                        cur.added = np.sort(np.searchsorted(cur.keys, nk))
                    cur.removed = removed
        if cur is None:
            cur = self._sort(tick, snap, rows, chan, prev)
        cur.moved = moved
        pieces = Pieces(self, cur, prev)
        self._prev = cur
        return pieces

    def _sort(self, tick: int, snap: Snapshot, rows: np.ndarray, chan: np.ndarray,
              prev: _State | None) -> _State:
        """The arrangement from scratch: a stable sort of the memberships by channel."""
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
        if (prev is not None and prev.keys.shape[0] == keys.shape[0]
                and np.array_equal(prev.keys, keys)):
            runs = prev.runs  # the same arrangement: the same runs (and their IDLIST blobs)
        else:
            runs = _Runs(ids, ch)
        return _State(tick, snap, self.names, rows, chan, r, keys, ids, ch, runs)

    def _patch(self, tick: int, snap: Snapshot, rows: np.ndarray, chan: np.ndarray,
               prev: _State, moved: np.ndarray, nk: np.ndarray, removed: np.ndarray) -> _State:
        """The previous arrangement with the ``moved`` memberships (at sorted positions
        ``removed`` last tick; keys now ``nk``, none held last tick) taken out and inserted
        at their new keys: a few O(n) masked copies, no sort of all memberships. Sorting by
        key is the stable sort by channel (ids ascend per channel: see :meth:`step`)."""
        s = np.argsort(nk)
        nk = nk[s]
        n = prev.keys.shape[0]
        keep = np.ones(n, bool)
        keep[removed] = False
        kept = prev.keys[keep]
        added = np.searchsorted(kept, nk) + np.arange(nk.shape[0])  # final positions
        slot = np.ones(n, bool)
        slot[added] = False
        keys = np.empty(n, np.int64)
        keys[slot] = kept
        keys[added] = nk
        r = np.empty(n, prev.r.dtype)
        r[slot] = prev.r[keep]
        r[added] = rows[moved[s]]
        ch = keys >> 32
        ids = snap.ids[r]
        cur = _State(tick, snap, self.names, rows, chan, r, keys, ids, ch, _Runs(ids, ch))
        cur.added = added
        return cur
