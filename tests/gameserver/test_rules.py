"""The rules API: Game class checks, Player, Reject, and the events API (send targets)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gameserver.rules import F, Game, GameEvent, I, InputSchema, Player, Reject, check_game_class
from gameserver.simulation import Simulation


class Chat(Game):
    name = "chat"
    fields = {"x": F.float32(quant=0.5, lo=0, hi=100)}
    inputs = InputSchema({"go": I.bool_()})
    max_players = 4


def test_check_game_class_accepts_a_good_game() -> None:
    check_game_class(Chat)


@pytest.mark.parametrize(
    ("attrs", "exc"),
    [
        ({"name": ""}, ValueError),
        ({"name": 3}, ValueError),
        ({"inputs": {"go": I.bool_()}}, TypeError),
        ({"fields": [("x", F.uint8())]}, TypeError),
        ({"max_players": 0}, ValueError),
        ({"tick_rate": 241}, ValueError),
        ({"tick_rate": 20, "send_rate": 30}, ValueError),
        ({"capacity": 0}, ValueError),
        ({"__init__": lambda self: None}, TypeError),
    ],
)
def test_check_game_class_refuses(attrs: dict[str, Any], exc: type[Exception]) -> None:
    bad = type("Bad", (Chat,), attrs)
    with pytest.raises(exc):
        check_game_class(bad)
    with pytest.raises(exc):
        Simulation(bad, seed=0)


def test_not_a_game() -> None:
    with pytest.raises(TypeError):
        check_game_class(int)  # type: ignore[arg-type]


def test_reject_carries_reason() -> None:
    r = Reject("no spectators")
    assert r.reason == "no spectators"
    assert str(r) == "no spectators"
    assert Reject().reason


def test_player_fields() -> None:
    p = Player(5, "ann")
    assert p.entity is None
    assert p.data == {}
    p.data["score"] = 3
    assert Player(6, "bob").data == {}  # not shared
    assert "ann" in repr(p)


def _game() -> Chat:
    sim = Simulation(Chat, seed=1)
    sim.join(1, "a")
    sim.join(2, "b")
    return sim.game  # type: ignore[return-value]


def test_send_targets() -> None:
    g = _game()
    a, b = g.players[1], g.players[2]
    g.send("chat", {"m": "hi"})
    g.send("died", None, to=a)
    g.send("score", 3, to=2)
    g.send("team", [1], to=[a, b])
    g.send("team", [2], to=(p for p in (1, 2)))
    g.send("np", 0, to=np.uint32(2))  # type: ignore[arg-type]
    g.send("nobody", 0, to=[])  # empty target list: nothing queued
    assert g._outbox == [
        GameEvent("chat", {"m": "hi"}, None),
        GameEvent("died", None, (1,)),
        GameEvent("score", 3, (2,)),
        GameEvent("team", [1], (1, 2)),
        GameEvent("team", [2], (1, 2)),
        GameEvent("np", 0, (2,)),
    ]


def test_send_refuses_bad_kind_and_targets() -> None:
    g = _game()
    for kind in ("", 5, "k" * 65):
        with pytest.raises(ValueError):
            g.send(kind, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        g.send("x", None, to=True)
    with pytest.raises(TypeError):
        g.send("x", None, to=["ann"])  # type: ignore[list-item]
    assert g._outbox == []


def test_send_is_bounded() -> None:
    g = _game()
    g._max_events = 3
    for _ in range(3):
        g.send("e")
    with pytest.raises(OverflowError):
        g.send("e")


def test_default_on_leave_despawns_the_avatar() -> None:
    class Avatars(Chat):
        def on_join(self, player: Player, hello: Any) -> None:
            player.entity = int(self.world.spawn(1, x=10.0)[0])

    sim = Simulation(Avatars, seed=0)
    p = sim.join(3, "c")
    sim.step()
    assert sim.world.count == 1
    assert p.entity is not None
    sim.leave(3, "leave")
    sim.step()
    assert sim.world.count == 0


def _doc_blocks() -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "RULES.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_rules_md_worked_example_runs() -> None:
    blocks = _doc_blocks()
    assert len(blocks) == 3  # the Orbs game, driving it, the lag compensation example
    ns: dict[str, Any] = {"__name__": "rules_md_example"}
    exec(compile(blocks[0], "docs/RULES.md#1", "exec"), ns)
    exec(compile(blocks[1], "docs/RULES.md#2", "exec"), ns)  # has its own asserts
    sim = ns["sim"]
    game = sim.game
    # Drive ann across the field and through some orbs: scores and events follow.
    w = sim.world
    slots = w.alive_slots()
    orbs = slots[w["kind"][slots] == ns["ORB"]]
    w["x"][orbs[:3]] = 40.0
    w["y"][orbs[:3]] = 25.0
    for _ in range(120):
        sim.step()
    ann = sim.players[1]
    s = int(w.slots_of([ann.entity])[0])
    assert w["x"][s] == pytest.approx(ns["SIZE"])
    assert w["score"][s] >= 3
    assert any(e.kind == "score" and e.to == (1,) for e in sim.drain_events())
    assert game.held == {1: (1.0, 0.0)}
    with pytest.raises(Reject, match="name"):
        sim.join(2, "")


def test_rules_md_lag_compensation_example_runs() -> None:
    """docs/RULES.md section 11: the hitscan example, with its own asserts (hit with rt,
    miss without)."""
    (block,) = [b for b in _doc_blocks() if "class Duel" in b]
    ns: dict[str, Any] = {"__name__": "rules_md_duel"}
    exec(compile(block, "docs/RULES.md#duel", "exec"), ns)
    sim = ns["sim"]
    assert sim.tick == 22 and sim.clamped_render_ticks == 0
    assert sim.world["hp"][sim.world.slots_of([ns["runner"].entity])[0]] == 2
