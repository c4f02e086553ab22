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
  events collected since its last send tick; per player also the extensions its HELLO
  negotiated (``interest``, ``vsame``: a RESUME keeps them, SPEC.md section 11), so an
  interest client goes on receiving VIEW messages on the new node;
* spectators (optional key ``"spectators"``): id, name, token, backlog, extensions, camera
  and follow, so a spectator RESUMEs its seat like a player.

* the lag-compensation history (:meth:`gameserver.history.WorldHistory.export`: the held
  ticks x the columns up to the highest alive slot, as numpy bytes; optional key
  ``"history"``, so a node of the previous build ignores it and a blob without it restores
  with the history starting over at the restored tick), so ``world.at`` / ``history.hits``
  answer for a render tick from before the move exactly as on the old node.

The simulation half (world, tick, RNG, game state, game players, inputs, history) is
:mod:`gameserver.handover.simstate`, shared with the replay player; the blob adds the room's
players (tokens, seqs, backlogs), acks and events, and ``"replay"``: the sender's replay file
name (``--record``), which the receiver's own new file links (:func:`start_room`).

Not carried: the snapshot ring and every per-socket field (a client gets a full snapshot
after its RESUME), the input log (a ``--record`` receiver starts a new file from the restored
state), timers.

On the new node (:func:`restore_room`): ``on_create`` does not run (``Game.load`` does), no
``on_join`` runs, every player waits in its resume grace (``resume_grace`` from now) with its
token registered through ``RoomManager.remember`` (the cluster's token index picks it up), and
the manager hands out player ids above the restored ones.
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections import deque
from typing import Any, Final

import numpy as np

from gameserver.handover.codec import BlobError, pack_blob, unpack_blob
from gameserver.handover.simstate import (
    RestoreError,
    load_simulation,
    need,
    pairs,
    simulation_state,
)
from gameserver.manager import RoomManager
from gameserver.replay.recorder import PendingState
from gameserver.room import Player, Room, _close_soon, _start_recording

__all__ = ["BLOB_VERSION", "RestoreError", "install_room", "prepare_room", "restore_room",
           "serialize_room", "start_room", "uninstall_room"]

log = logging.getLogger(__name__)

BLOB_VERSION: Final[int] = 1

#: prepared room -> the replay file its sender was recording (``"replay"`` in the blob), for
#: the ``continues`` link of the file this node starts (``--record``) in :func:`start_room`
_CONTINUES: weakref.WeakKeyDictionary[Room, str | None] = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------ serialize

def serialize_room(room: Room) -> bytes:
    """The room's state as one blob (see the module docstring). Call it between ticks on a
    room that no longer ticks (the transfer freezes it first); it does not change the room."""
    sim = room.sim
    st = simulation_state(sim)
    players = []
    for entry in st["players"]:
        rp = room.players.get(entry["id"])
        players.append({
            **entry,
            "token": rp.resume_token if rp is not None else None,
            "last_seq": rp.last_seq if rp is not None else 0,
            "backlog": list(rp.backlog) if rp is not None else [],
            # what HELLO negotiated (a RESUME keeps it: SPEC.md section 11)
            "interest": rp.interest if rp is not None else False,
            "vsame": rp.vsame if rp is not None else False,
        })
    # spectators are not game players (no sim entry): their seats travel on their own
    spectators = [{"id": sp.player_id, "name": sp.name, "token": sp.resume_token,
                   "backlog": list(sp.backlog), "interest": sp.interest, "vsame": sp.vsame,
                   "camera": list(sp.camera) if sp.camera is not None else None,
                   "follow": sp.follow}
                  for sp in room.players.values() if sp.spectator]
    state = {
        "v": BLOB_VERSION,
        "room": room.id, "game": room.game, "seed": room.seed,
        "tick_rate": room.tick_rate, "send_rate": room.send_rate, "capacity": room.capacity,
        **st,
        "players": players,
        "spectators": spectators,  # optional: a blob without it restores no spectator
        "room_acks": [[p, s, t] for p, (s, t) in room.acks.items()],
        "events": [[data, list(to) if to is not None else None] for data, to in room.events],
        # optional: the sender's replay file (--record), linked by the receiver's new file
        "replay": room.recorder.path.name if room.recorder is not None else None,
    }
    return pack_blob(state)


# -------------------------------------------------------------------------------- restore

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
    room_id = need(st, "room", str)
    game_name = need(st, "game", str)
    cls = manager.games.get(game_name)
    if cls is None:
        raise RestoreError(f"game {game_name!r} of room {room_id} is not served here")
    if room_id in manager.rooms:
        raise RestoreError(f"room {room_id} already exists on this node")
    try:
        room = Room(manager, room_id, game_name, cls, seed=need(st, "seed", int), create=False)
    except Exception as exc:
        raise RestoreError(f"room {room_id}: cannot build the game: {exc!r}") from None
    if room.tick_rate != st.get("tick_rate"):
        log.warning("handover: tick rate differs room=%s blob=%s here=%d",
                    room_id, st.get("tick_rate"), room.tick_rate)
    load_simulation(room.sim, st, what=f"room {room_id}")
    for entry in need(st, "players", list):
        pid = need(entry, "id", int)
        name = need(entry, "name", str)
        entity = entry.get("entity")
        token = entry.get("token")
        if not isinstance(token, str):
            continue  # in the game but not seated (should not happen): no socket to resume
        backlog = deque(b for b in need(entry, "backlog", list) if isinstance(b, bytes))
        p = room.players[pid] = Player(pid, name, room, token, entity=entity, ws=None,
                                       last_seq=int(entry.get("last_seq", 0)),
                                       backlog=backlog,
                                       backlog_bytes=sum(len(b) for b in backlog))
        _negotiated(p, entry)
    for entry in need(st, "spectators", list) if "spectators" in st else []:
        _restore_spectator(room, entry)
    for pid, s, t in pairs(st.get("room_acks"), "room acks", 3):
        room.acks[pid] = (s, t)
    room.events = [(bytes(d), tuple(to) if to is not None else None)
                   for d, to in need(st, "events", list)]
    replay = st.get("replay")
    _CONTINUES[room] = replay if isinstance(replay, str) else None
    return room


def _negotiated(p: Player, entry: dict[str, Any]) -> None:
    """The extensions HELLO negotiated (a RESUME keeps them): VIEW / SAME pieces."""
    p.interest = entry.get("interest") is True and p.room.view_stream is not None
    p.vsame = p.interest and entry.get("vsame") is True


def _restore_spectator(room: Room, entry: Any) -> None:
    """Seat one spectator of the blob (in its resume grace, like the players)."""
    if not isinstance(entry, dict):
        raise RestoreError("handover blob: a spectator is not a map")
    pid = need(entry, "id", int)
    token = need(entry, "token", str)
    if pid in room.players or not 0 < pid <= 0xFFFFFFFF:
        raise RestoreError(f"handover blob: spectator id {pid} is taken or out of range")
    backlog = deque(b for b in need(entry, "backlog", list) if isinstance(b, bytes))
    sp = room.players[pid] = Player(pid, need(entry, "name", str), room, token, ws=None,
                                    backlog=backlog,
                                    backlog_bytes=sum(len(b) for b in backlog))
    sp.spectator = True
    _negotiated(sp, entry)
    follow, camera = entry.get("follow"), entry.get("camera")
    sp.follow = follow if isinstance(follow, int) and follow > 0 else None
    if isinstance(camera, list) and len(camera) == 4 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in camera):
        sp.camera = (float(camera[0]), float(camera[1]), float(camera[2]), float(camera[3]))
    room.spectators += 1


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
    if manager.config.record_dir is not None and room.recorder is None:
        _record(room)
    room.start()
    manager.metrics.rooms.set(len(manager.rooms))
    manager.metrics.players.set(manager.player_count())
    log.info("room restored from handover room=%s game=%s tick=%d players=%d entities=%d",
             room.id, room.game, room.tick, len(room.players), room.sim.world.count)


def _record(room: Room) -> None:
    """``--record`` on this node: a new replay file for the restored room, starting with a
    ``"restore"`` record of its whole simulation state at the restored tick (the replay
    player rebuilds it as :func:`prepare_room` did) and linking the sender's file
    (``continues``: room, from_tick, file). Never raises (a failure records nothing)."""
    try:
        # a copy (the room ticks on), packed on the replay writer thread: a big world with
        # its lag-compensation window is MBs of msgpack, kept out of the players' pause
        st = copy.deepcopy(simulation_state(room.sim))
    except Exception as exc:  # the game's save(): the room runs on, unrecorded
        log.error("cannot record restored room=%s error=%r", room.id, exc)
        return
    state = PendingState(lambda: pack_blob(st), _nbytes(st))
    continues = {"room": room.id, "from_tick": room.tick, "file": _CONTINUES.get(room)}
    room.recorder = _start_recording(room, room.sim.game_cls, restored=state,
                                     extra={"continues": continues})


def _nbytes(v: Any) -> int:
    """Approximate packed size of a state: its arrays' bytes (the rest is small)."""
    if isinstance(v, np.ndarray):
        return int(v.nbytes)
    if isinstance(v, dict):
        return sum(_nbytes(x) for x in v.values())
    if isinstance(v, list | tuple):
        return sum(_nbytes(x) for x in v)
    return 8


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
