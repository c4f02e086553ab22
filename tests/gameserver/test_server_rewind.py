"""INPUT ``rt`` through a real server: passed to the game, clamped, counted, malformed refused."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from gameserver.config import ConfigError, ServerConfig
from gameserver.inputs import I, InputBatch, InputSchema
from gameserver.metrics import parse_text
from gameserver.rules import Game, Player
from gameserver.schema import F
from protocol import messages as M
from protocol.codes import ErrorCode

CLAMPED = "gameserver_render_tick_clamped_total"


class Probe(Game):
    """Echoes every input's (seq, render_tick, tick) back to its sender as an event."""

    name = "probe"
    fields = {"x": F.float32()}
    inputs = InputSchema({"a": I.uint8()})
    tick_rate = 30
    send_rate = 30
    history = 0.5  # 16 rows at 30 Hz

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        player.entity = int(self.world.spawn(1)[0])

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        for pid, seq, rt in zip(inputs.player.tolist(), inputs.seq.tolist(),
                                inputs.render_tick.tolist()):  # a loop over inputs (a test)
            self.send("rt", [seq, rt, tick], to=pid)


def _clamped(h: Any) -> float:
    return parse_text(h.server.metrics.render()).get(CLAMPED, -1.0)


def test_render_tick_reaches_the_game_clamped_and_counted(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(games={"probe": Probe}) as h:
            c = await h.join(game="probe", name="p")
            await c.until(lambda: c.replica is not None and c.replica.tick >= 25)
            assert _clamped(h) == 0
            seen = c.replica.tick
            sent = {1: seen - 2, 2: 10**12, 3: 0, 4: None}
            for seq, rt in sent.items():
                await c.send(M.Input(seq, {"a": 1}, rt=rt))
            await c.until(lambda: sum(e.kind == "rt" for e in c.events) == 4)
            got = {e.data[0]: (e.data[1], e.data[2]) for e in c.events if e.kind == "rt"}
            rt1, _ = got[1]
            assert rt1 == seen - 2  # inside the window: unchanged
            rt2, tick2 = got[2]
            assert rt2 == tick2 - 1  # from the future: the latest committed tick
            rt3, tick3 = got[3]
            assert rt3 == tick3 - 16 > 0  # far past: the oldest tick held (16 rows)
            rt4, tick4 = got[4]
            assert rt4 == tick4 - 1  # no rt: no compensation
            assert _clamped(h) == 2
            assert not c.errors
            # Not a uint: malformed (ERROR 1), the input is not applied, nothing is counted.
            for bad in (-1, "7", 1.5, True):  # 4 < the 5 bad messages tolerated
                await c.ws.send(msgpack.packb([3, {"s": 9, "d": {"a": 1}, "rt": bad}]))
            await c.until(lambda: len(c.errors) >= 1)
            assert all(e.code == ErrorCode.MALFORMED for e in c.errors)
            assert "'rt'" in c.errors[0].message
            await c.send(M.Input(5, {"a": 1}, rt=seen))  # the connection still works
            await c.until(lambda: any(e.kind == "rt" and e.data[0] == 5 for e in c.events))
            assert not any(e.kind == "rt" and e.data[0] == 9 for e in c.events)
            assert _clamped(h) == 2

    kit.run(main())


def test_history_off_by_server_config_ignores_rt(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(games={"probe": Probe}, history=0) as h:
            c = await h.join(game="probe", name="p")
            await c.until(lambda: c.replica is not None and c.replica.tick >= 3)
            await c.send(M.Input(1, {"a": 1}, rt=0))
            await c.until(lambda: any(e.kind == "rt" for e in c.events))
            (ev,) = [e for e in c.events if e.kind == "rt"]
            assert ev.data[1] == ev.data[2] - 1
            assert _clamped(h) == 0

    kit.run(main())


def test_server_config_history_is_checked() -> None:
    for bad in (-0.5, 10.5):
        with pytest.raises(ConfigError, match="history"):
            ServerConfig(games={"probe": Probe}, history=bad).check()
    assert ServerConfig(games={"probe": Probe}, history=0).check().history == 0
