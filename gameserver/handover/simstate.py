"""A simulation's whole state as a plain map, and back (no room, no sockets, no I/O).

:func:`simulation_state` / :func:`load_simulation` are the simulation half of a handover
blob (:mod:`gameserver.handover.state` adds the room's players, tokens and event frames) and
the ``"restore"`` record of a replay file that continues a handed-over room
(:mod:`gameserver.replay`, docs/REPLAY.md section 3): the replay player rebuilds the
simulation from the same map exactly as the receiving node did, so both tick on identically.

The map's keys (they are top-level keys of the blob, format version 1, unchanged):
``tick``; ``sim`` (acks and their ticks, last accepted seq per player, the queued inputs with
their render ticks, counters, the room config); ``world`` (every full-capacity column, the
generation / alive / taken / dying masks, the free-slot stack, pending spawns / despawns);
``rng`` (``bit_generator.state``); ``game_state`` (:meth:`gameserver.rules.Game.save`);
``outbox`` (events queued and not yet drained); ``players`` (id, name, entity, data, joined
tick, in join order); ``history`` (:meth:`gameserver.history.WorldHistory.export`, or None).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import numpy as np

from gameserver.history import WorldHistory
from gameserver.rules import GameEvent
from gameserver.rules import Player as GamePlayer

__all__ = ["RestoreError", "load_simulation", "simulation_state"]

log = logging.getLogger(__name__)

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


def simulation_state(sim: Any) -> dict[str, Any]:
    """The state of ``sim`` (a :class:`gameserver.simulation.Simulation` between two ticks)
    as a map of plain values and numpy arrays (see the module docstring); the arrays are the
    simulation's own (pack it before the simulation ticks again). Runs ``Game.save``."""
    game = sim.game
    n = sim._n
    return {
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
        "players": [{"id": gp.id, "name": gp.name, "entity": gp.entity, "data": gp.data,
                     "joined": gp.joined_tick} for gp in game.players.values()],
        "history": sim.history.export() if sim.history is not None else None,
    }


# -------------------------------------------------------------------------------- restore

def need(d: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    """``d[key]`` if it is a ``kind``, else :class:`RestoreError` naming the key."""
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, kind):
        raise RestoreError(f"handover blob: {key!r} missing or of the wrong type")
    return v


def pairs(v: Any, what: str, width: int = 2) -> list[list[int]]:
    """``v`` as a list of ``width``-int lists, else :class:`RestoreError`."""
    if not isinstance(v, list) or not all(
            isinstance(x, list) and len(x) == width and all(isinstance(i, int) for i in x)
            for x in v):
        raise RestoreError(f"handover blob: {what} malformed")
    return v


def _load_world(world: Any, st: dict[str, Any]) -> None:
    cap = need(st, "cap", int)
    cols = need(st, "cols", dict)
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
    free = need(st, "free", np.ndarray).astype(np.int64)
    spawned = [np.asarray(a, np.intp) for a in need(st, "spawned", list)]
    despawned = [np.asarray(a, np.intp) for a in need(st, "despawned", list)]
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


def _load_inputs(sim: Any, sim_st: dict[str, Any]) -> None:
    sim.config.clear()
    sim.config.update(need(sim_st, "config", dict))
    sim.acks.update({p: s for p, s in pairs(sim_st.get("acks"), "acks")})
    sim.ack_ticks.update({p: t for p, t in pairs(sim_st.get("ack_ticks"), "ack_ticks")})
    sim._last_seq.update({p: s for p, s in pairs(sim_st.get("last_seq"), "last_seq")})
    q_player = need(sim_st, "q_player", np.ndarray)
    q_seq = need(sim_st, "q_seq", np.ndarray)
    q_cols = need(sim_st, "q_cols", list)
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


def load_simulation(sim: Any, st: dict[str, Any], *, what: str = "room") -> None:
    """Put the state ``st`` (:func:`simulation_state`, or a whole handover blob) into ``sim``,
    a Simulation of the same game built with ``create=False`` (``on_create`` did not run).

    The lag-compensation history gets a fresh ring of ``sim``'s own length, filled with the
    window in ``st`` when there is one (else it starts over at the restored tick). Runs
    ``Game.load`` last. Raises :class:`RestoreError` (``what`` names the room in messages);
    ``sim`` is then unusable.
    """
    tick = need(st, "tick", int)
    sim_st = need(st, "sim", dict)
    game = sim.game
    _load_world(sim.world, need(st, "world", dict))
    sim.tick = tick
    game.tick = tick
    if sim.history is not None:
        sim.history = WorldHistory(sim.world, sim.history.length)
        sim.world.history = sim.history
        hist = st.get("history")
        if hist is None:
            sim.history.record(tick)
        else:
            try:
                sim.history.load(hist, tick)
            except ValueError as exc:
                raise RestoreError(f"{what}: {exc}") from None
    _load_inputs(sim, sim_st)
    try:
        game.rng.bit_generator.state = need(st, "rng", dict)
    except (TypeError, ValueError) as exc:
        raise RestoreError(f"RNG state not restorable: {exc}") from None
    game._outbox = [GameEvent(str(k), d, tuple(to) if to is not None else None)
                    for k, d, to in need(st, "outbox", list)]
    for entry in need(st, "players", list):
        pid = need(entry, "id", int)
        game.players[pid] = GamePlayer(pid, need(entry, "name", str), entry.get("entity"),
                                       dict(entry.get("data") or {}),
                                       int(entry.get("joined", 0)))
    try:
        game.load(st.get("game_state"))
    except Exception as exc:
        raise RestoreError(f"{what}: Game.load raised {exc!r}") from None
