"""A room's whole state as bytes, and back: :func:`serialize_room` / :func:`restore_room`.

Pure (no sockets, no Redis): a room frozen between two ticks is turned into one blob
(:mod:`gameserver.handover.codec`), and a blob becomes a started :class:`~gameserver.room.Room`
with the same room id on another :class:`~gameserver.manager.RoomManager`.

What the blob carries (format version :data:`BLOB_VERSION`):

* the world's internals (:class:`gameserver.world.World`): every full-capacity column, the
  generation, alive / taken / dying masks, the free-slot stack and pending spawns / despawns,
  so entity ids, generations and the slot handed out next are identical;
* the tick (the restored room resumes at ``tick + 1``: no tick number is ever reused), the
  RNG (``bit_generator.state``, so ``game.rng`` continues the same stream), the game's own
  state through :meth:`gameserver.rules.Game.save`, events the game queued and not yet drained;
* inputs: the last applied seq and its tick per player (``Simulation.acks`` / ``ack_ticks``),
  the last accepted seq per player, and the inputs queued for the next tick (with their
  render ticks);
* players in join order: id, name, entity, ``Player.data``, joined tick, resume token, last
  accepted seq, and the event frames held for them (their backlog, in order), plus the room's
  events collected since its last send tick.

* the lag-compensation history (:meth:`gameserver.history.WorldHistory.export`: the held
  ticks x the columns up to the highest alive slot, as numpy bytes; optional key
  ``"history"``, so a node of the previous build ignores it and a blob without it restores
  with the history starting over at the restored tick), so ``world.at`` / ``history.hits``
  answer for a render tick from before the move exactly as on the old node.

Not carried: the snapshot ring and every per-socket field (a client gets a full snapshot
after its RESUME), the input log (recording starts over), timers.

On the new node (:func:`restore_room`): ``on_create`` does not run (``Game.load`` does), no
``on_join`` runs, every player waits in its resume grace (``resume_grace`` from now) with its
token registered through ``RoomManager.remember`` (the cluster's token index picks it up), and
the manager hands out player ids above the restored ones.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Final

import numpy as np

from gameserver.handover.codec import BlobError, pack_blob, unpack_blob
from gameserver.history import WorldHistory
from gameserver.manager import RoomManager
from gameserver.room import Player, Room, _close_soon
from gameserver.rules import GameEvent
from gameserver.rules import Player as GamePlayer

__all__ = ["BLOB_VERSION", "RestoreError", "install_room", "prepare_room", "restore_room",
           "serialize_room", "start_room", "uninstall_room"]

log = logging.getLogger(__name__)

BLOB_VERSION: Final[int] = 1
_WORLD_MASKS: Final = ("_gen", "_alive", "_taken", "_dying")


class RestoreError(ValueError):
    """A blob that cannot become a room here: garbage, another format version, an unknown
    game, a schema that changed, or a room id already present on this node."""


# ------------------------------------------------------------------------------ serialize

def _world_state(world: Any) -> dict[str, Any]:
    return {
        "cap": world._cap,
        "cols": dict(world._cols),
        **{k: getattr(world, k) for k in _WORLD_MASKS},
        "free": world._free[: world._nfree],
        "spawned": list(world._spawned),
        "despawned": list(world._despawned),
    }


def serialize_room(room: Room) -> bytes:
    """The room's state as one blob (see the module docstring). Call it between ticks on a
    room that no longer ticks (the transfer freezes it first); it does not change the room."""
    sim = room.sim
    game = sim.game
    n = sim._n
    players = []
    for gp in game.players.values():
        rp = room.players.get(gp.id)
        players.append({
            "id": gp.id, "name": gp.name, "entity": gp.entity, "data": gp.data,
            "joined": gp.joined_tick,
            "token": rp.resume_token if rp is not None else None,
            "last_seq": rp.last_seq if rp is not None else 0,
            "backlog": list(rp.backlog) if rp is not None else [],
        })
    state = {
        "v": BLOB_VERSION,
        "room": room.id, "game": room.game, "seed": room.seed,
        "tick_rate": room.tick_rate, "send_rate": room.send_rate, "capacity": room.capacity,
        "tick": sim.tick,
        "sim": {
            "acks": [[p, s] for p, s in sim.acks.items()],
            "ack_ticks": [[p, t] for p, t in sim.ack_ticks.items()],
            "last_seq": [[p, s] for p, s in sim._last_seq.items()],
            "q_player": sim._q_player[:n], "q_seq": sim._q_seq[:n], "q_rt": sim._q_rt[:n],
            "clamped": sim.clamped_render_ticks,
            "q_cols": [c[:n] for c in sim._q_cols],
            "dropped": sim.dropped_inputs, "stale": sim.stale_inputs,
            "invalid": sim.invalid_inputs, "config": sim.config,
        },
        "world": _world_state(sim.world),
        "rng": game.rng.bit_generator.state,
        "game_state": game.save(),
        "outbox": [[e.kind, e.data, list(e.to) if e.to is not None else None]
                   for e in game._outbox],
        "players": players,
        "history": sim.history.export() if sim.history is not None else None,
        "room_acks": [[p, s, t] for p, (s, t) in room.acks.items()],
        "events": [[data, list(to) if to is not None else None] for data, to in room.events],
    }
    return pack_blob(state)


# -------------------------------------------------------------------------------- restore

def _need(d: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, kind):
        raise RestoreError(f"handover blob: {key!r} missing or of the wrong type")
    return v


def _load_world(world: Any, st: dict[str, Any]) -> None:
    cap = _need(st, "cap", int)
    cols = _need(st, "cols", dict)
    fields = world.schema.fields
    if set(cols) != set(fields):
        raise RestoreError(f"the game's entity fields changed: blob has {sorted(cols)}, "
                           f"this node's game has {sorted(fields)}")
    new_cols: dict[str, np.ndarray] = {}
    for name, f in fields.items():
        col = cols[name]
        if not isinstance(col, np.ndarray) or col.shape != (cap,) \
                or col.dtype != np.dtype(f.storage):
            raise RestoreError(f"field {name!r}: column of the wrong dtype or length")
        new_cols[name] = col
    masks = {}
    for k in _WORLD_MASKS:
        arr = st.get(k)
        if not isinstance(arr, np.ndarray) or arr.shape != (cap,):
            raise RestoreError(f"world {k}: wrong shape")
        masks[k] = arr
    free = _need(st, "free", np.ndarray).astype(np.int64)
    spawned = [np.asarray(a, np.intp) for a in _need(st, "spawned", list)]
    despawned = [np.asarray(a, np.intp) for a in _need(st, "despawned", list)]
    for a in (free, *spawned, *despawned):
        if a.ndim != 1 or (a.shape[0] and (a.min() < 0 or a.max() >= cap)):
            raise RestoreError("world slot list out of range")
    world._cap = cap
    world._cols = new_cols
    for k, arr in masks.items():
        setattr(world, k, arr.astype(getattr(world, k).dtype, copy=False))
    world._free = np.ascontiguousarray(free)
    world._nfree = int(free.shape[0])
    world._spawned = spawned
    world._despawned = despawned
    world._alive_slots = None


def _pairs(v: Any, what: str, width: int = 2) -> list[list[int]]:
    if not isinstance(v, list) or not all(
            isinstance(x, list) and len(x) == width and all(isinstance(i, int) for i in x)
            for x in v):
        raise RestoreError(f"handover blob: {what} malformed")
    return v


def prepare_room(manager: RoomManager, blob: bytes) -> Room:
    """Build the room of ``blob`` on ``manager`` without registering or starting it.

    The room is not in ``manager.rooms``, no token is known and nothing ticks:
    :func:`install_room` does that (the transfer installs only once its claim is confirmed).
    Raises :class:`RestoreError` (nothing is changed on ``manager``).
    """
    try:
        st = unpack_blob(blob)
    except BlobError as exc:
        raise RestoreError(str(exc)) from None
    if not isinstance(st, dict) or st.get("v") != BLOB_VERSION:
        raise RestoreError(f"not a version-{BLOB_VERSION} handover blob")
    room_id = _need(st, "room", str)
    game_name = _need(st, "game", str)
    cls = manager.games.get(game_name)
    if cls is None:
        raise RestoreError(f"game {game_name!r} of room {room_id} is not served here")
    if room_id in manager.rooms:
        raise RestoreError(f"room {room_id} already exists on this node")
    tick = _need(st, "tick", int)
    sim_st = _need(st, "sim", dict)
    try:
        room = Room(manager, room_id, game_name, cls, seed=_need(st, "seed", int), create=False)
    except Exception as exc:
        raise RestoreError(f"room {room_id}: cannot build the game: {exc!r}") from None
    if room.tick_rate != st.get("tick_rate"):
        log.warning("handover: tick rate differs room=%s blob=%s here=%d",
                    room_id, st.get("tick_rate"), room.tick_rate)
    sim = room.sim
    game = sim.game
    _load_world(sim.world, _need(st, "world", dict))
    sim.tick = tick
    game.tick = tick
    if sim.history is not None:
        # a fresh ring of this node's length over the restored world, filled with the old
        # node's window when the blob has one (else it starts over at ``tick``)
        sim.history = WorldHistory(sim.world, sim.history.length)
        sim.world.history = sim.history
        hist = st.get("history")
        if hist is None:
            sim.history.record(tick)
        else:
            try:
                sim.history.load(hist, tick)
            except ValueError as exc:
                raise RestoreError(f"room {room_id}: {exc}") from None
    sim.config.clear()
    sim.config.update(_need(sim_st, "config", dict))
    sim.acks.update({p: s for p, s in _pairs(sim_st.get("acks"), "acks")})
    sim.ack_ticks.update({p: t for p, t in _pairs(sim_st.get("ack_ticks"), "ack_ticks")})
    sim._last_seq.update({p: s for p, s in _pairs(sim_st.get("last_seq"), "last_seq")})
    q_player = _need(sim_st, "q_player", np.ndarray)
    q_seq = _need(sim_st, "q_seq", np.ndarray)
    q_cols = _need(sim_st, "q_cols", list)
    n = int(q_player.shape[0])
    if n > sim._cap or q_seq.shape != (n,) or len(q_cols) != len(sim._q_cols) \
            or any(not isinstance(c, np.ndarray) or c.shape != (n,) for c in q_cols):
        raise RestoreError("queued inputs malformed (or the input schema changed)")
    q_rt = sim_st.get("q_rt")
    if not isinstance(q_rt, np.ndarray) or q_rt.shape != (n,):
        raise RestoreError("queued inputs: render ticks malformed")
    sim._q_player[:n] = q_player
    sim._q_seq[:n] = q_seq
    # a queued input's render tick from before this node's window would be outside it
    # (HistoryError in world.at), so it is clamped into it (a no-op when the window came along)
    sim._q_rt[:n] = np.maximum(q_rt, sim.history.oldest) if sim.history is not None else q_rt
    sim.clamped_render_ticks = int(sim_st.get("clamped", 0))
    for dst, src in zip(sim._q_cols, q_cols):
        dst[:n] = src
    sim._n = n
    sim._queued_by = {}
    for pid in q_player.tolist():
        sim._queued_by[pid] = sim._queued_by.get(pid, 0) + 1
    sim.dropped_inputs = int(sim_st.get("dropped", 0))
    sim.stale_inputs = int(sim_st.get("stale", 0))
    sim.invalid_inputs = int(sim_st.get("invalid", 0))
    try:
        game.rng.bit_generator.state = _need(st, "rng", dict)
    except (TypeError, ValueError) as exc:
        raise RestoreError(f"RNG state not restorable: {exc}") from None
    game._outbox = [GameEvent(str(k), d, tuple(to) if to is not None else None)
                    for k, d, to in _need(st, "outbox", list)]
    for entry in _need(st, "players", list):
        pid = _need(entry, "id", int)
        name = _need(entry, "name", str)
        entity = entry.get("entity")
        token = entry.get("token")
        game.players[pid] = GamePlayer(pid, name, entity, dict(entry.get("data") or {}),
                                       int(entry.get("joined", 0)))
        if not isinstance(token, str):
            continue  # in the game but not seated (should not happen): no socket to resume
        backlog = deque(b for b in _need(entry, "backlog", list) if isinstance(b, bytes))
        room.players[pid] = Player(pid, name, room, token, entity=entity, ws=None,
                                   last_seq=int(entry.get("last_seq", 0)), backlog=backlog,
                                   backlog_bytes=sum(len(b) for b in backlog))
    for pid, s, t in _pairs(st.get("room_acks"), "room acks", 3):
        room.acks[pid] = (s, t)
    room.events = [(bytes(d), tuple(to) if to is not None else None)
                   for d, to in _need(st, "events", list)]
    try:
        game.load(st.get("game_state"))
    except Exception as exc:
        raise RestoreError(f"room {room_id}: Game.load raised {exc!r}") from None
    return room


def install_room(manager: RoomManager, room: Room, *, start: bool = True) -> None:
    """Register a prepared room on its manager and (``start``) start it ticking at
    ``tick + 1``. Every player waits in its resume grace; tokens go through
    ``manager.remember``. ``start=False`` leaves it frozen: :func:`start_room` or
    :func:`uninstall_room` follow."""
    if room.id in manager.rooms:
        raise RestoreError(f"room {room.id} already exists on this node")
    manager.rooms[room.id] = room
    manager.reserve_player_ids(room.players)
    for p in room.players.values():
        manager.remember(p)
    if start:
        start_room(room)


def start_room(room: Room) -> None:
    """Start the resume graces and the ticks of an installed room."""
    manager = room.manager
    grace = manager.config.resume_grace
    loop = room._loop
    for p in room.players.values():
        if p.grace is None and p.ws is None:
            p.grace = loop.call_later(grace, room._grace_expired, p)
    room.start()
    manager.metrics.rooms.set(len(manager.rooms))
    manager.metrics.players.set(manager.player_count())
    log.info("room restored from handover room=%s game=%s tick=%d players=%d entities=%d",
             room.id, room.game, room.tick, len(room.players), room.sim.world.count)


def uninstall_room(manager: RoomManager, room: Room) -> None:
    """Undo :func:`install_room` of a room that never started (its sender gave it up)."""
    for p in room.players.values():
        p.gone = True
        if p.ws is not None:  # nobody should have our URL yet, but never leave one hanging
            _close_soon(manager.tasks, p.ws, 1001, "room handover abandoned")
        manager.forget(p)
    room.closed = True
    manager.remove_room(room)


def restore_room(manager: RoomManager, blob: bytes) -> Room:
    """:func:`prepare_room` then :func:`install_room`: a started room with the same id."""
    room = prepare_room(manager, blob)
    install_room(manager, room)
    return room
