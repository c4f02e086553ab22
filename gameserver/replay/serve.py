"""``gameserver replay FILE --serve``: stream a recorded match to spectators.

The normal server runs with one game, ``"replay"`` (:class:`PlaybackGame`): a spectator sends
HELLO ``{"game": "replay"}`` and gets WELCOME (the recorded game's entity schema, the playback
input schema below), a full snapshot and deltas, exactly as in a live room. The room is a
:class:`ReplayRoom`, whose simulation is a :class:`PlaybackSimulation`: its world *is* the
world of a :class:`gameserver.replay.player.Playback` re-simulating the recording, so the
room's usual snapshot / delta / send path streams it unchanged. Wire ticks keep increasing
(one per playback tick) even when the recorded tick jumps back after a seek: clients' delta
baselines stay valid.

Playback controls are ordinary INPUT messages against this input schema (all three fields
are required, as for any game; fields a command does not use are ignored):

=========  ==========================  ================================================
field      type                        meaning
=========  ==========================  ================================================
``cmd``    uint8 0..4                  0 none, 1 play, 2 pause, 3 seek to ``tick``,
                                       4 set ``speed``
``speed``  float32 0.25..8             playback speed (recorded ticks per playback tick)
``tick``   uint32                      seek target (recorded tick; clamped to the end)
=========  ==========================  ================================================

Every spectator of a room shares its playback (the controls act on the room). The recorded
game's broadcast events (``to`` everyone: a scoreboard, "joined"...) of the ticks played are
forwarded as they were sent (not those of a seek's fast re-simulation); events the game sent
to particular players are not. Play at the end restarts from the first tick (0, or the
restored tick of a file that continues a handed-over room). The room sends the game event
``"replay"`` with :meth:`Playback.status` (``tick``, ``start``, ``end``, ``paused``,
``speed``, ``seeking``, ``game``, ``version``, ``tick_rate``) to every spectator when it
joins, whenever a control changes something, and four times a second.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from gameserver.config import ServerConfig
from gameserver.inputs import I, InputBatch, InputSchema
from gameserver.manager import RoomManager
from gameserver.replay.player import Playback
from gameserver.room import Room
from gameserver.rules import Game, Player
from gameserver.simulation import Simulation, TickResult

__all__ = ["CMD_NONE", "CMD_PAUSE", "CMD_PLAY", "CMD_SEEK", "CMD_SPEED", "PLAYBACK_INPUTS",
           "PlaybackGame", "PlaybackSimulation", "ReplayRoom", "playback_game",
           "run_replay_server"]

log = logging.getLogger(__name__)

CMD_NONE, CMD_PLAY, CMD_PAUSE, CMD_SEEK, CMD_SPEED = range(5)
PLAYBACK_INPUTS = InputSchema({"cmd": I.uint8(0, 4), "speed": I.float32(0.25, 8.0),
                               "tick": I.uint32()})


class PlaybackGame(Game):
    """The spectators' game: controls in, the recording's world out (module docstring).

    A subclass per replay file (:func:`playback_game`) sets ``fields`` (the recorded game's),
    the rates and ``replay_file`` / ``replay_game``. Spectators get no entity.
    """

    name = "replay"
    inputs = PLAYBACK_INPUTS
    max_players = 64
    capacity = 1
    history = 0  # no lag-compensation ring for the spectators' own (empty) world
    replay_file: ClassVar[str] = ""
    replay_game: ClassVar[str | None] = None
    playback: Playback

    def on_create(self, config: dict[str, Any]) -> None:
        self._last: dict[str, Any] | None = None
        self._force = False

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        self._force = True  # the newcomer needs the status at once

    def on_leave(self, player: Player, reason: str) -> None:
        """Spectators own no entity."""

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        pb = self.playback
        if len(inputs):
            for cmd, speed, target in zip(inputs["cmd"].tolist(), inputs["speed"].tolist(),
                                          inputs["tick"].tolist()):
                if cmd == CMD_PLAY:
                    if pb.tick >= pb.end:
                        pb.seek(0)  # play at the end: watch again from the start
                    pb.paused = False
                elif cmd == CMD_PAUSE:
                    pb.paused = True
                elif cmd == CMD_SEEK:
                    pb.seek(int(target))
                elif cmd == CMD_SPEED:
                    pb.set_speed(float(speed))
        pb.advance()
        while pb.events:  # the recorded game's broadcast events (scoreboard, joined...)
            ev = pb.events.popleft()
            self.send(ev.kind, ev.data)
        status = pb.status()
        last = self._last
        changed = last is None or any(status[k] != last[k] for k in
                                      ("paused", "speed", "seeking", "end"))
        if changed or self._force or tick % max(1, self.tick_rate // 4) == 0 or (
                last is not None and status["tick"] < last["tick"]):
            self.send("replay", status)
            self._force = False
        self._last = status


def playback_game(path: Path | str, game: str | None, recorded: type[Any],
                  tick_rate: int, send_rate: int) -> type[PlaybackGame]:
    """A :class:`PlaybackGame` subclass for one file (recorded fields and rates)."""
    attrs = {"fields": dict(recorded.fields), "tick_rate": tick_rate,
             "send_rate": min(send_rate, tick_rate), "replay_file": str(path),
             "replay_game": game, "__module__": __name__, "room_class": ReplayRoom}
    return type("Replay", (PlaybackGame,), attrs)


class PlaybackSimulation(Simulation):
    """A simulation of :class:`PlaybackGame` whose ``world`` is the playback's world."""

    def __init__(self, game_cls: type[PlaybackGame], playback: Playback, **kw: Any) -> None:
        super().__init__(game_cls, **kw)
        self.playback = playback
        self.game.playback = playback  # type: ignore[attr-defined]
        self.world = playback.sim.world

    def step(self) -> TickResult:
        res = super().step()  # PlaybackGame.on_tick: controls, then advance the playback
        self.world = self.playback.sim.world  # a seek back swaps in a restored simulation
        return res


class ReplayRoom(Room):
    """A room whose simulation plays a recording back (:class:`PlaybackSimulation`)."""

    def __init__(self, manager: RoomManager, room_id: str, game: str, game_cls: type[Any],
                 *, seed: int) -> None:
        super().__init__(manager, room_id, game, game_cls, seed=seed)
        playback = Playback(game_cls.replay_file, game_cls.replay_game)
        self.sim = PlaybackSimulation(game_cls, playback, seed=seed, tick_rate=self.tick_rate,
                                      max_players=self.capacity)
        self.wire_schema = self.sim.world.schema.wire

    def _stop(self, reason: str = "closed") -> None:
        super()._stop(reason)
        sim = self.sim
        if isinstance(sim, PlaybackSimulation):
            sim.playback.close()


def run_replay_server(path: Path | str, *, game: str | None = None, host: str = "127.0.0.1",
                      port: int = 8000, static_root: Path | None = None) -> int:
    """Check the file (ReplayError if damaged / incompatible), then serve it until a signal."""
    from gameserver.server import run_server

    pb = Playback(path, game)  # scans and checks every record before anything listens
    try:
        header = pb.header
        cls = playback_game(path, game, pb.game_cls, header.tick_rate, header.send_rate)
        ticks = pb.end
    finally:
        pb.close()
    log.info("serving replay file=%s game=%s version=%s ticks=%d", path, header.game,
             header.game_version, ticks)
    config = ServerConfig(games={"replay": cls}, host=host, port=port, static_root=static_root,
                          empty_room_ttl=5.0)
    return run_server(config)
