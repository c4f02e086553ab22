"""The client side of interest management: :class:`ViewReplica` applies VIEW messages.

A VIEW message (SPEC.md section 11) carries the pieces of the channels (grid cells, teams,
global entities) a client sees::

    [22, tick, base_tick | nil, left | nil, PIECE, PIECE, ...]
    PIECE = [channel, DELTA, gone | nil] | [channel, mask, first, gaps, values]  (MOVES)
          | [channel, values] | [channel, mask, values]                           (SAME)

A SAME piece (extension ``"interest/2"``) is a MOVES piece without its rows: it reuses the
rows (and, in its 2-element form, the mask) of the MOVES / SAME piece this view applied to
the channel at exactly the VIEW's ``base_tick``; anything else is refused (DeltaError).

:class:`ViewReplica` keeps one :class:`protocol.replica.Replica` per channel (each PIECE's
DELTA applies to its channel's replica exactly as SPEC.md section 5 says) and presents their
union: ``ids`` (sorted, deduplicated: an entity may be in its cell and in its team channel)
and ``columns``. After each message, :attr:`entered`, :attr:`left_view` and :attr:`despawned`
say which ids came into view (with full state), left the view (still in the world,
elsewhere) and were destroyed: the distinction the ``gone`` lists carry.

Applying is atomic: on any problem a :class:`DeltaError` is raised and every channel is left
as it was (the client then resynchronizes, e.g. RESUME, which starts with a reset VIEW).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .codes import DEFAULT_MAX_SIZE, DeltaError, MsgType
from .delta import _parse_idlist, unpack_delta
from .pieces import CODE_IDS
from .replica import Replica
from .wireschema import DIFF_DTYPES, WIRE_DTYPES, Snapshot, WireSchema

__all__ = ["VIEW", "ViewReplica", "moves_delta"]

VIEW = int(MsgType.VIEW)
_MAX_TICK = 2**63 - 1
_EMPTY = np.zeros(0, np.uint32)
_WIDTH = {c: dt.itemsize for c, dt in (WIRE_DTYPES | DIFF_DTYPES).items()}


class ViewReplica:
    """A client's view: per-channel replicas and their union (see the module docstring).

    ``tick`` is None until the first (reset) VIEW. ``ids`` / ``columns`` are the union, new
    arrays after every message (never mutated afterwards).
    """

    def __init__(self, schema: WireSchema) -> None:
        self.schema = schema
        self.tick: int | None = None
        self.channels: dict[int, Replica] = {}
        #: channel -> (tick, first row, u8 gaps, mask) of the last MOVES / SAME piece
        #: applied to it: the rows a SAME piece of the next VIEW stands on
        self._rows: dict[int, tuple[int, int, bytes, int]] = {}
        self.ids: np.ndarray = _EMPTY
        self.columns: dict[str, np.ndarray] = {
            f.name: np.zeros(0, f.np_dtype) for f in schema.fields
        }
        self.entered: np.ndarray = _EMPTY
        self.left_view: np.ndarray = _EMPTY
        self.despawned: np.ndarray = _EMPTY

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def values(self, name: str) -> np.ndarray:
        """The union's real values of field ``name`` (``wire * quant`` when quantized)."""
        f = self.schema[name]
        col = self.columns[name]
        return col * f.quant if f.quant is not None else col

    def snapshot(self) -> Snapshot:
        return Snapshot(self.ids, dict(self.columns))

    def apply(self, data: bytes | bytearray | memoryview, *,
              max_size: int = DEFAULT_MAX_SIZE) -> bool:
        """Decode and apply one VIEW message; True if it was a reset (full view)."""
        return self.apply_unpacked(unpack_delta(data, max_size=max_size))

    def apply_unpacked(self, obj: Any) -> bool:
        """Apply an unpacked VIEW array atomically; True for a reset. :class:`DeltaError`
        (nothing changed) if it is malformed or does not apply to this view."""
        if type(obj) is not list or len(obj) < 4 or obj[0] != VIEW:
            raise DeltaError("VIEW must be an array [22, tick, base_tick, left, PIECE...]")
        tick, base, left = obj[1], obj[2], obj[3]
        if type(tick) is not int or not 0 <= tick <= _MAX_TICK:
            raise DeltaError("VIEW tick must be a uint")
        reset = base is None
        if not reset:
            if type(base) is not int or self.tick is None or base != self.tick:
                raise DeltaError(f"VIEW base_tick {base!r} does not match the view's tick "
                                 f"{self.tick!r}")
        old = self.channels
        chans: dict[int, Replica] = {} if reset else dict(old)
        rows: dict[int, tuple[int, int, bytes, int]] = {} if reset else dict(self._rows)
        if left is not None:
            for c in _parse_idlist(left, "VIEW left").tolist():
                chans.pop(c, None)
                rows.pop(c, None)
        saved: list[tuple[Replica, Any]] = []
        gone_parts: list[np.ndarray] = []
        try:
            for i, piece in enumerate(obj[4:]):
                if type(piece) is not list or len(piece) < 2:
                    raise DeltaError(f"VIEW piece {i}: must be [channel, DELTA, gone] or MOVES")
                c = piece[0]
                if type(c) is not int or not 0 <= c <= 0xFFFFFFFF:
                    raise DeltaError(f"VIEW piece {i}: channel must be a uint32")
                second = piece[1]
                if type(second) is int or type(second) is bytes:  # MOVES or SAME
                    held = chans.get(c)
                    if reset or held is None:
                        raise DeltaError(f"VIEW piece {i}: MOVES for channel {c}, which the "
                                         "view does not hold")
                    if type(second) is int and len(piece) != 3:
                        # MOVES: [channel, mask, first row, gaps, values]
                        delta = moves_delta(piece, tick, base, len(held), i)
                        rows[c] = (tick, piece[2], piece[3], second)
                    else:  # SAME: [channel, values] | [channel, mask, values]
                        rec = rows.get(c)
                        if rec is None or rec[0] != base:
                            raise DeltaError(
                                f"VIEW piece {i}: SAME for channel {c}, whose last MOVES rows "
                                f"are not those of tick {base}")
                        if type(second) is int:
                            mask, vals = second, piece[2]
                        else:
                            mask, vals = rec[3], second
                        delta = moves_delta([c, mask, rec[1], rec[2], vals], tick, base,
                                            len(held), i)
                        rows[c] = (tick, rec[1], rec[2], mask)
                    gone = None
                elif len(piece) < 3:
                    raise DeltaError(f"VIEW piece {i}: must be [channel, DELTA, gone]")
                else:
                    delta, gone = second, piece[2]
                    rows.pop(c, None)
                if type(delta) is not list or len(delta) < 7:
                    raise DeltaError(f"VIEW piece {i}: DELTA must be a 7-element array")
                if delta[1] != tick:
                    raise DeltaError(f"VIEW piece {i}: DELTA tick is not the VIEW's tick")
                rep = chans.get(c)
                if delta[2] is None:
                    rep = Replica(self.schema)
                elif rep is None:
                    # a channel that was empty at the base tick (or newly entered empty)
                    rep = Replica(self.schema)
                    rep.tick = delta[2]
                else:
                    saved.append((rep, (rep.tick, rep.ids, rep.columns)))
                rep.apply_unpacked(delta)
                chans[c] = rep
                if gone is not None:
                    gone_parts.append(_parse_idlist(gone, f"VIEW piece {i} gone")
                                      .astype(np.uint32))
        except (DeltaError, TypeError, ValueError, KeyError, IndexError) as exc:
            # newest first: a channel named twice goes back to its state before the VIEW
            for rep, (t, ids, cols) in reversed(saved):
                rep.tick, rep.ids, rep.columns = t, ids, cols
            if isinstance(exc, DeltaError):
                raise
            raise DeltaError(f"VIEW malformed: {exc}") from None
        for rep in chans.values():
            rep.tick = tick
        self.channels = chans
        self._rows = rows
        self.tick = tick
        self._union(gone_parts)
        return reset

    def _union(self, gone_parts: list[np.ndarray]) -> None:
        before = self.ids
        reps = [r for r in self.channels.values() if r.ids.shape[0]]
        if not reps:
            ids = _EMPTY
            cols = {f.name: np.zeros(0, f.np_dtype) for f in self.schema.fields}
        elif len(reps) == 1:
            ids, cols = reps[0].ids, dict(reps[0].columns)
        else:
            allids = np.concatenate([r.ids for r in reps])
            ids, first = np.unique(allids, return_index=True)
            cols = {n: np.concatenate([r.columns[n] for r in reps])[first]
                    for n in self.columns}
        self.ids, self.columns = ids, cols
        self.entered = np.setdiff1d(ids, before, assume_unique=True)
        out = np.setdiff1d(before, ids, assume_unique=True)
        if gone_parts and out.shape[0]:
            gone = np.concatenate(gone_parts)
            dead = np.isin(out, gone)
            self.despawned = out[dead]
            self.left_view = out[~dead]
        else:
            self.despawned = _EMPTY
            self.left_view = out


def moves_delta(piece: list[Any], tick: int, base: Any, count: int, i: int) -> list[Any]:
    """The section 5 DELTA a MOVES piece stands for (SPEC.md section 11): one GROUP, no
    despawns or spawns, on the channel's state at the VIEW's base tick."""
    if (len(piece) < 5 or type(piece[1]) is not int or not 0 < piece[1] <= 0xFFFFFFFF
            or type(piece[2]) is not int or type(piece[3]) is not bytes
            or type(piece[4]) is not bytes):
        raise DeltaError(f"VIEW piece {i}: MOVES must be [channel, mask, first, gaps, values]")
    mask, gaps, values = piece[1], piece[3], piece[4]
    k = mask.bit_count()
    n = len(gaps) + 1
    head = (k + 1) // 2
    cols = []
    pos = head
    for j in range(k):
        cid = values[j // 2] >> (4 * (j % 2)) & 0xF if j // 2 < len(values) else 99
        if cid >= len(CODE_IDS):
            raise DeltaError(f"VIEW piece {i}: MOVES column {j} has no valid code id")
        code = CODE_IDS[cid]
        w = _WIDTH[code] * n
        if pos + w > len(values):
            raise DeltaError(f"VIEW piece {i}: MOVES values too short for {n} rows")
        cols.append([code, values[pos:pos + w]])
        pos += w
    if pos != len(values):
        raise DeltaError(f"VIEW piece {i}: MOVES values have {len(values) - pos} extra bytes")
    return [17, tick, base, count, None, None, [[mask, [piece[2], "u8", gaps], cols]]]
