"""Per-view streaming for a room whose game declares :class:`gameserver.interest.Interest`.

Called by :meth:`gameserver.room.Room._send` once per send tick with the world snapshot and
the players whose sockets can take a message. Contract (SPEC.md section 11):

* every entity's channels (grid cell, team, global) are computed vectorized and the
  :class:`protocol.pieces.PieceEncoder` builds each needed channel's piece ONCE per tick:
  a delta piece (change since the previous send tick) for clients that saw the channel then,
  a full piece for clients that newly see it or need a reset; the same bytes go to all;
* each viewer's visible cells (a rectangle, with hysteresis: :meth:`Grid.rects`) come from
  its entity's position (players) or its camera (spectators); the VIEW message is the
  concatenation of its pieces plus the channels it stopped seeing (``left``); viewers with
  the same subscription and state share the whole framed message;
* a viewer whose last message is not the previous send tick (skipped for backpressure,
  resumed, new) gets a reset VIEW: ``base_tick`` nil and full pieces for its whole view;
* a viewer that negotiated ``"interest/2"`` (``Player.vsame``) gets SAME pieces
  (:meth:`protocol.pieces.Pieces.same`) for the channels whose previous piece it applied:
  held at the previous send tick and not sent as a full piece then (``Player.vfresh``, the
  channels of its last VIEW's full pieces); other viewers never get one;
* a client that did not negotiate the ``"interest"`` extension (and every client when
  ``Interest.naive`` is set) gets plain DELTAs of exactly its visible set, encoded per
  client against the visible set it was last sent (the fallback; it never sees more);
* ``Game.interest_extra(player)`` (if the game overrides it) adds a per-player channel.

Work per tick: one vectorized pass over the entities, Python over *changed channels*
(one ``msgpack.packb`` each) and over viewers (a few dict lookups and one ``bytes.join``
per distinct message), never over entities per viewer.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from gameserver.interest import EXTRA_CHANNEL, Grid, Interest
from protocol.codes import MsgType
from protocol.delta import encode_delta
from protocol.frames import prepare_binary_parts, prepare_message
from protocol.pieceforms import _array_header, _idlist_of, view_message
from protocol.pieces import PieceEncoder, Pieces
from protocol.wireschema import Snapshot, WireSchema

if TYPE_CHECKING:
    from gameserver.room import Player, Room

__all__ = ["MAX_TEAM", "ViewStream"]

#: Team ids are 1..MAX_TEAM (0: none); other values of the team field make no team channel.
MAX_TEAM = 65535
_VIEW = int(MsgType.VIEW)
_SIM = attrgetter("sim")
_VIEW_ATTR = attrgetter("view")
_ENTITY = attrgetter("entity")
_VRECT = attrgetter("vrect")
_NO_VIEW = (float("nan"), float("nan"))


class ViewStream:
    """The interest-managed stream of one room (see the module docstring)."""

    def __init__(self, room: Room, interest: Interest, schema: WireSchema) -> None:
        self.room = room
        self.interest = interest
        self.grid = Grid(interest)
        self.schema = schema
        self.encoder = PieceEncoder(schema)
        self.names = list(schema.names)
        fx, fy = schema[interest.x], schema[interest.y]
        self._qx = fx.quant or 1.0
        self._qy = fy.quant or 1.0
        self._team = interest.team
        self._everyone = interest.everyone
        game = room.sim.game
        self._extra = (type(game).interest_extra is not _base_extra())
        self.last: Pieces | None = None
        #: pieces encoded in the last send tick (the call-count tests read it)
        self.last_encodes = 0
        self.last_messages = 0
        self.legacy_encodes = 0
        self._chan_cache: dict[Any, tuple[int, ...]] = {}
        #: last send tick's memberships: (ids, x, y, global col, team col, rows, channels,
        #: each row's grid membership index or -1 / None: the identity); read-only arrays
        self._mcache: tuple[Any, ...] | None = None
        #: last _player_rects call's (rectangles, centres, alive, result list)
        self._rcache: tuple[np.ndarray, np.ndarray, np.ndarray, list[int]] | None = None
        #: False: memberships and pieces from scratch every tick (the reference path that
        #: tests and the benchmark compare the incremental one with; the same bytes)
        self.incremental = True

    # ------------------------------------------------------------------ channels
    def _memberships(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Every (snapshot row, channel) membership: the grid cell of each entity (global
        ones instead in the global channel) and its team channel; rows ascend per channel.

        Incremental: with the same entities and global / team fields as last send tick,
        the rows are last tick's array and only the grid memberships of rows whose
        position changed get their cell recomputed (elementwise: the same values); when no
        cell changed the channels are last tick's array too (cheap for the encoder)."""
        cols = snap.columns
        xs, ys = cols[self.interest.x], cols[self.interest.y]
        glob = cols[self._everyone] if self._everyone is not None else None
        team = cols[self._team] if self._team is not None else None
        m = self._mcache if self.incremental else None
        if (m is not None and np.array_equal(m[0], snap.ids)
                and (glob is None or np.array_equal(glob, m[3]))
                and (team is None or np.array_equal(team, m[4]))):
            _, px, py, _, _, prows, pchan, pgpos = m
            moved = np.flatnonzero((xs != px) | (ys != py))
            chan = pchan
            if moved.shape[0]:
                if pgpos is not None:  # global entities have no cell
                    at = pgpos[moved]
                    keep = at >= 0
                    moved, at = moved[keep], at[keep]
                else:
                    at = moved
                cell = self.grid.cell_of(xs[moved] * self._qx, ys[moved] * self._qy)
                if not np.array_equal(cell, pchan[at]):
                    chan = pchan.copy()
                    chan[at] = cell
            self._mcache = (snap.ids, xs, ys, glob, team, prows, chan, pgpos)
            return prows, chan
        cell = self.grid.cell_of(xs * self._qx, ys * self._qy)
        n = snap.ids.shape[0]
        rows_parts: list[np.ndarray] = []
        chan_parts: list[np.ndarray] = []
        gpos: np.ndarray | None = None
        if glob is not None:
            isg = glob != 0
            grid_rows = np.flatnonzero(~isg)
            rows_parts.append(grid_rows)
            chan_parts.append(cell[grid_rows])
            g = np.flatnonzero(isg)
            rows_parts.append(g)
            chan_parts.append(np.full(g.shape[0], self.grid.global_channel, np.int64))
            gpos = np.full(n, -1, np.intp)
            gpos[grid_rows] = np.arange(grid_rows.shape[0])
        else:
            rows_parts.append(np.arange(n))
            chan_parts.append(cell)
        if team is not None:
            t = team.astype(np.int64)
            tr = np.flatnonzero((t > 0) & (t <= MAX_TEAM))
            rows_parts.append(tr)
            chan_parts.append(self.grid.ncells + t[tr])
        if len(rows_parts) == 1:
            rows, chan = rows_parts[0], chan_parts[0]
        else:
            rows, chan = np.concatenate(rows_parts), np.concatenate(chan_parts)
        self._mcache = (snap.ids, xs, ys, glob, team, rows, chan, gpos)
        return rows, chan

    # ------------------------------------------------------------------ views
    def _rects(self, snap: Snapshot, viewers: list[Player]) -> list[int]:
        """Every viewer's new visible cell rectangle as a code (``Grid.code``; -1: none),
        vectorized: centres gathered once, hysteresis over all viewers at once."""
        n = len(viewers)
        if n == 0:
            return []
        # the common case: only players (a spectator's ``sim`` is None: AttributeError),
        # gathered with C-level attrgetter maps rather than a Python loop per viewer
        sims = list(map(_SIM, viewers))
        try:
            views = list(map(_VIEW_ATTR, sims))
            common = True
        except AttributeError:
            common = False
        if common and self.incremental and views.count(None) == n:
            return self._player_rects(snap, viewers, sims)
        cam = np.full((n, 4), np.nan)
        has_cam = np.zeros(n, bool)
        if common:  # None (no avatar) becomes NaN, then 0
            ents = _entity_ids(sims, n)
            if views.count(None) != n:  # per-player view sizes; None: the default (NaN)
                cam[:, 2:] = np.array([_NO_VIEW if v is None else v for v in views],
                                      np.float64).reshape(n, 2)
        else:
            ents = np.zeros(n, np.int64)
            room_players = self.room.players
            for i, p in enumerate(viewers):
                sp = p.sim
                if sp is not None:  # a player: its own entity, its view size
                    if sp.entity:
                        ents[i] = sp.entity
                    if sp.view is not None:
                        cam[i, 2:] = sp.view
                    continue
                if p.follow is not None:
                    f = room_players.get(p.follow)
                    fe = _entity(f) if f is not None else None
                    if fe is not None:
                        ents[i] = fe
                    elif p.camera is not None:
                        has_cam[i] = True
                        cam[i] = p.camera
                    if p.camera is not None:
                        cam[i, 2:] = p.camera[2:]
                elif p.camera is not None:
                    has_cam[i] = True
                    cam[i] = p.camera
                elif p.entity:
                    ents[i] = p.entity
        ids = snap.ids
        cols = snap.columns
        if ids.shape[0]:
            pos, ok = _alive(ids, ents)  # (not alive: its centre is NaN below)
            ex = cols[self.interest.x][pos] * self._qx
            ey = cols[self.interest.y][pos] * self._qy
        else:
            ok = np.zeros(n, bool)
            ex = ey = np.zeros(n)
        if common:  # no cameras
            cx = np.where(ok, ex, np.nan)
            cy = np.where(ok, ey, np.nan)
        else:
            cx = np.where(has_cam, cam[:, 0], np.where(ok, ex, np.nan))
            cy = np.where(has_cam, cam[:, 1], np.where(ok, ey, np.nan))
            ok |= has_cam
        cx, cy, w, h = self.grid.clamp_view(cx, cy, cam[:, 2], cam[:, 3], self.grid.max_view)
        old = np.fromiter(map(_VRECT, viewers), np.int64, n)
        new = self.grid.rects(cx, cy, w, h, old)
        new[~ok] = -1
        out: list[int] = new.tolist()
        return out

    def _player_rects(self, snap: Snapshot, viewers: list[Player], sims: list[Any]) -> list[int]:
        """:meth:`_rects` for the common case: players only, all with the default view
        size. A viewer without a live avatar gets -1 whatever its (unused) centre."""
        n = len(viewers)
        ids = snap.ids
        if ids.shape[0] == 0:
            return [-1] * n
        pos, ok = _alive(ids, _entity_ids(sims, n))
        cols = snap.columns
        ctr = np.empty((2, n))
        np.multiply(cols[self.interest.x][pos], self._qx, out=ctr[0])
        np.multiply(cols[self.interest.y][pos], self._qy, out=ctr[1])
        grid = self.grid
        grid.clamp_centres(ctr, nan_to_lo=True)
        old = np.fromiter(map(_VRECT, viewers), np.int64, n)
        # the rectangles are a pure elementwise function of (centre, old rectangle, alive):
        # when all three are last call's (every avatar stood still and got its frame:
        # its old rectangle is the one computed then) so is the result
        rc = self._rcache
        if (rc is not None and rc[0].shape[0] == n and np.array_equal(rc[0], old)
                and np.array_equal(rc[1], ctr) and np.array_equal(rc[2], ok)):
            out: list[int] = rc[3]
            return out
        new = grid.rects_of(ctr, grid.default_size, old)
        new[~ok] = -1
        out = new.tolist()
        self._rcache = (new, ctr, ok, out)
        return out

    def _chans(self, code: int, team: int) -> tuple[int, ...]:
        """The channels of rectangle ``code`` plus global and team channels: one shared
        tuple per (rectangle, team) (bounded cache)."""
        key = (code, team)
        got = self._chan_cache.get(key)
        if got is None:
            out = [] if code < 0 else list(self.grid.cells_of_code(code))
            if self._everyone is not None:
                out.append(self.grid.global_channel)
            if team > 0:
                out.append(self.grid.ncells + team)
            if len(self._chan_cache) >= 65536:
                self._chan_cache.clear()
            got = self._chan_cache[key] = tuple(out)
        return got

    # ------------------------------------------------------------------ sending
    def send(self, tick: int, snap: Snapshot, viewers: list[Player]) -> tuple[int, int]:
        """Write this tick's VIEW / DELTA to every viewer; returns (bytes, messages)."""
        rows, chan = self._memberships(snap)
        self.encoder.incremental = self.incremental
        pieces = self.encoder.step(tick, snap, rows, chan)
        self.legacy_encodes = 0
        self.last = pieces
        codes = self._rects(snap, viewers)
        base = pieces.base_tick
        shared: dict[Any, bytes] = {}
        out_bytes = out_msgs = 0
        naive = self.interest.naive
        fast = base is not None and not self._extra and not naive
        teams = self._team is not None
        cache = self._chan_cache
        # The steady state (same channels as last tick, up to date) costs per viewer one
        # comparison, one dict lookup and the write: its frame is built once per distinct
        # rectangle (``steady``: key -> channels, then the frame), after the loop, from the
        # pieces of every changed channel those frames hold, built in one pass
        # (Pieces.many), behind a VIEW head shared by all steady frames of the tick
        # (``left`` is nil for them). ``steady2``: the same for viewers of "interest/2"
        # that applied every channel's previous piece (none was a full piece): SAME pieces
        # where the rows repeat (Pieces.same).
        steady: dict[Any, Any] = {}
        steady2: dict[Any, Any] = {}
        # Steady viewers' writes are deferred to one tight loop after every frame is built:
        # interleaving the socket writes (kernel work) with the frame building costs the
        # live server ~10% more CPU at 200 clients (bench_interest --quick, 4 paired runs).
        pending: list[tuple[Player, Any, dict[Any, Any], Any]] = []
        append = pending.append
        for p, code in zip(viewers, codes, strict=True):
            ws = p.ws
            if ws is None:
                continue
            if teams:
                team = p.team
                if not 0 <= team <= MAX_TEAM:
                    team = 0
                skey: Any = (code, team)
            else:
                team = 0
                skey = code
            if (fast and p.vrect == code and p.last_sent == base and p.interest
                    and (chans := p.vchans) is not None
                    and (not teams or chans is cache.get(skey))):
                table = steady2 if p.vsame and not p.vfresh else steady
                table[skey] = chans
                append((p, ws, table, skey))
                continue
            else:
                chans = cache.get((code, team)) or self._chans(code, team)
                if naive or not p.interest:
                    frame = self._legacy(p, tick, snap, chans, pieces, shared)
                else:
                    frame = self._view(p, tick, base, chans, pieces, snap, shared)
            if ws.write_prepared(frame):
                p.last_sent = tick
                p.vrect = code
                p.vchans = chans
                out_bytes += len(frame)
                out_msgs += 1
            else:
                p.vchans = None
        if pending:
            head = msgpack.packb([_VIEW, tick, base, None], use_bin_type=True)[1:]
            for table, is2 in ((steady, False), (steady2, True)):
                if table:
                    pm = pieces.many(set().union(*table.values()), is2)
                    for k, chans in table.items():
                        table[k] = _steady_frame(head, [pm[c] for c in chans if c in pm])
        for p, ws, table, skey in pending:
            frame = table[skey]
            if ws.write_prepared(frame):  # vrect and vchans stay as they are
                p.last_sent = tick
                p.vfresh = ()
                out_bytes += len(frame)
                out_msgs += 1
            else:
                p.vchans = None
        self.last_encodes = pieces.encodes + self.legacy_encodes
        self.room.metrics.encodes.inc(pieces.encodes)
        self.last_messages = len(shared) + len(steady) + len(steady2)
        return out_bytes, out_msgs

    def _view(self, p: Player, tick: int, base: int | None, chans: tuple[int, ...],
              pieces: Pieces, snap: Snapshot, shared: dict[Any, bytes]) -> bytes:
        old = p.vchans
        reset = old is None or base is None or p.last_sent != base
        extra = self._extra_piece(p, tick, snap, reset)
        # SAME pieces ("interest/2") only for channels whose previous piece this viewer
        # applied: held at ``base`` and not sent as a full piece then (``p.vfresh``)
        same = p.vsame and not reset
        fresh = p.vfresh
        if reset:
            key: Any = ("r", chans)
            p.vfresh = chans
        elif old == chans:
            key = ("s", chans, fresh) if same else ("s", chans)
            p.vfresh = ()
        else:
            key = None
        if extra is None and key is not None:
            frame = shared.get(key)
            if frame is not None:
                return frame
        parts: list[bytes] = []
        left: list[int] | None = None
        if reset:
            parts = [b for b in map(pieces.full, chans) if b is not None]
            mbase = None
        elif old is chans:  # steady: the changed channels' delta (or SAME) pieces
            changed = pieces.changed
            delta = pieces.delta
            if same:
                sget = pieces.same
                parts = [b for c in chans if c in changed
                         and (b := delta(c) if c in fresh else sget(c)) is not None]
            else:
                parts = [b for c in chans if c in changed and (b := delta(c)) is not None]
            mbase = base
        else:
            assert old is not None
            oldset = set(old)
            changed = pieces.changed
            for c in chans:
                if c in oldset:
                    if c not in changed:
                        b = None
                    elif same and c not in fresh:
                        b = pieces.same(c)
                    else:
                        b = pieces.delta(c)
                else:
                    b = pieces.full(c)
                if b is not None:
                    parts.append(b)
            newset = set(chans)
            left = [c for c in old if c not in newset]
            mbase = base
            p.vfresh = tuple(c for c in chans if c not in oldset)
        if extra is not None:
            parts.append(extra)
        frame = prepare_message(view_message(tick, mbase, left, parts))
        if extra is None and key is not None:
            shared[key] = frame
        return frame

    def _extra_rows(self, p: Player, snap: Snapshot) -> np.ndarray | None:
        """Rows of ``snap`` that ``Game.interest_extra`` adds for ``p`` (None: no hook)."""
        if not self._extra or p.spectator:
            return None
        game = self.room.sim.game
        sp = game.players.get(p.player_id)
        want = game.interest_extra(sp) if sp is not None else None
        if want is None:
            return np.zeros(0, np.intp)
        a = np.asarray(want)
        n = snap.ids.shape[0]
        if a.dtype == bool:
            return np.flatnonzero(a[:n])
        w = np.unique(a.astype(np.int64))
        pos = np.searchsorted(snap.ids, w)
        ok = pos < n
        ok[ok] = snap.ids[pos[ok]] == w[ok]
        return pos[ok]

    def _extra_piece(self, p: Player, tick: int, snap: Snapshot, reset: bool) -> bytes | None:
        """The per-player channel of ``Game.interest_extra`` (None when there is none)."""
        sel = self._extra_rows(p, snap)
        if sel is None:
            return None
        cur = Snapshot(snap.ids[sel], {n: c[sel] for n, c in snap.columns.items()})
        prev = None if reset else p.extra_sent
        p.extra_sent = cur
        if prev is None and cur.ids.shape[0] == 0:
            return None
        body = encode_delta(prev, cur, tick=tick,
                            base_tick=p.last_sent if prev is not None else None)
        self.room.metrics.encodes.inc()
        gone = None
        if prev is not None:
            dead = np.setdiff1d(prev.ids, snap.ids, assume_unique=True)
            if dead.shape[0]:
                gone = _idlist_of(dead.tolist())
        return b"".join((b"\x93", msgpack.packb(EXTRA_CHANNEL), body,
                         msgpack.packb(gone, use_bin_type=True)))

    def _legacy(self, p: Player, tick: int, snap: Snapshot, chans: tuple[int, ...],
                pieces: Pieces, shared: dict[Any, bytes]) -> bytes:
        """Plain DELTA of exactly the viewer's visible set (per client; the fallback)."""
        base = p.legacy_sent if p.last_sent == p.legacy_tick else None
        extra = self._extra_rows(p, snap)
        key = (chans, p.legacy_chans or (), p.legacy_tick if base else None)
        parts = [pieces.rows(c) for c in chans]
        if extra is not None and extra.shape[0]:
            parts.append((snap.ids[extra], [snap.columns[n][extra] for n in self.names]))
        nonempty = [pr for pr in parts if pr[0].shape[0]]
        if not nonempty:
            ids = snap.ids[:0]
            cols = [snap.columns[n][:0] for n in self.names]
        elif len(nonempty) == 1:
            ids, cols = nonempty[0]
        else:
            allids = np.concatenate([pr[0] for pr in nonempty])
            ids, first = np.unique(allids, return_index=True)
            cols = [np.concatenate([pr[1][f] for pr in nonempty])[first]
                    for f in range(len(self.names))]
        cur = Snapshot(ids, dict(zip(self.names, cols, strict=True)))
        sharable = not self.interest.naive and extra is None
        frame = shared.get(key) if sharable else None
        if frame is None:
            payload = encode_delta(base, cur, tick=tick,
                                   base_tick=p.legacy_tick if base is not None else None)
            frame = prepare_message(payload)
            self.room.metrics.encodes.inc()
            self.legacy_encodes += 1
            if sharable:
                shared[key] = frame
        p.legacy_sent = cur
        p.legacy_tick = tick
        p.legacy_chans = chans
        return frame


def _steady_frame(head: bytes, parts: list[bytes]) -> bytes:
    """The binary WebSocket frame of a steady VIEW: ``[22, tick, base, nil, PIECE...]``
    from the tick's shared ``head`` (everything after the array header) and the pieces."""
    return prepare_binary_parts((_array_header(4 + len(parts)), head, *parts))


def _entity_ids(sims: list[Any], n: int) -> np.ndarray:
    """The players' ``entity`` (int64; None, no avatar, is 0): one C-level pass when every
    player has one, else a second pass that maps None to 0."""
    try:
        return np.fromiter(map(_ENTITY, sims), np.int64, n)
    except TypeError:
        return np.array([e or 0 for e in map(_ENTITY, sims)], np.int64)


def _alive(ids: np.ndarray, ents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row in the snapshot, alive) of each entity id of ``ents`` in the sorted, non-empty
    ``ids``; 0 (no entity) is never alive. A dead entity's row is a valid, unrelated one."""
    pos = np.searchsorted(ids, ents)
    np.minimum(pos, ids.shape[0] - 1, out=pos)
    ok = ids[pos] == ents
    ok &= ents > 0
    return pos, ok


def _entity(p: Player) -> int | None:
    """The live avatar entity of ``p`` (the game may change ``player.entity`` any time)."""
    e = getattr(p.sim, "entity", None) if p.sim is not None else p.entity
    return int(e) if e else None


def _base_extra() -> Any:
    from gameserver.rules import Game
    return Game.interest_extra
