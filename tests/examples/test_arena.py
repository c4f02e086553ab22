"""The example arena: determinism (replay from seed + input log), rules, events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from examples.arena import CRITTER, HUNTER, ORB, PLAYER, PLAYER_SPEED, RESTING, Arena
from gameserver.rules import GameEvent, Reject
from gameserver.simulation import GameError, Simulation, replay

STILL = {"dx": 0.0, "dy": 0.0, "boost": False}


def _kinds(sim: Simulation) -> dict[int, int]:
    kinds = sim.world.snapshot().columns["kind"]
    return {k: int((kinds == k).sum()) for k in (PLAYER, CRITTER, ORB, HUNTER)}


def _slot(sim: Simulation, entity: int | None) -> int:
    assert entity is not None
    return int(sim.world.slots_of([entity])[0])


def test_population_from_config() -> None:
    sim = Simulation(Arena, seed=1, config={"critters": 50, "orbs": 7, "hunters": 2})
    sim.join(1, "ann")
    sim.step()
    assert _kinds(sim) == {PLAYER: 1, CRITTER: 50, ORB: 7, HUNTER: 2}
    snap = sim.world.snapshot()
    assert snap.columns["x"].max() <= 100 * 100  # 0.01 quantization within the arena


@pytest.mark.parametrize(
    "config",
    [{"critters": -1}, {"critters": "many"}, {"moving": 1.5}, {"size": 0}, {"size": 601},
     {"orbs": True}],
)
def test_bad_config_is_a_game_error(config: dict[str, Any]) -> None:
    with pytest.raises(GameError) as info:
        Simulation(Arena, seed=0, config=config)
    assert isinstance(info.value.original, ValueError)


def test_moving_fraction_is_kept_without_players() -> None:
    sim = Simulation(Arena, seed=5, config={"critters": 1000, "moving": 0.1, "hunters": 0})
    for _ in range(60):
        sim.step()
        snap = sim.world.snapshot()
        crit = snap.columns["kind"] == CRITTER
        assert int((snap.columns["state"][crit] != RESTING).sum()) == 100


def test_resting_critters_do_not_move() -> None:
    sim = Simulation(Arena, seed=5, config={"critters": 500, "moving": 0.1, "hunters": 0})
    before = sim.world.snapshot()
    sim.step()
    after = sim.world.snapshot()
    bx, ax = before.columns["x"], after.columns["x"]
    moved = (bx != ax) | (before.columns["y"] != after.columns["y"])
    assert np.array_equal(before.ids, after.ids)
    # Roughly the moving tenth changed (plus/minus the few that started or stopped).
    assert 30 <= int(moved.sum()) <= 60


def test_player_moves_with_held_input_and_boost() -> None:
    sim = Simulation(Arena, seed=2, config={"critters": 0, "orbs": 0, "hunters": 0})
    p = sim.join(1, "ann")
    sim.step()
    s = _slot(sim, p.entity)
    x0, y0 = float(sim.world["x"][s]), float(sim.world["y"][s])
    sim.world["x"][s] = 50.0
    sim.world["y"][s] = 50.0
    sim.queue_input(1, 1, {"dx": 1.0, "dy": 0.0, "boost": False})
    sim.step()
    step = PLAYER_SPEED * sim.dt
    assert sim.world["x"][s] == pytest.approx(50.0 + step, rel=1e-5)
    sim.step()  # no new input: the last one is held
    assert sim.world["x"][s] == pytest.approx(50.0 + 2 * step, rel=1e-5)
    # Diagonal input is normalized (no faster diagonally); boost multiplies speed.
    sim.queue_input(1, 2, {"dx": 1.0, "dy": 1.0, "boost": True})
    sim.step()
    moved = np.hypot(sim.world["x"][s] - (50.0 + 2 * step), sim.world["y"][s] - 50.0)
    assert moved == pytest.approx(step * 1.8, rel=1e-4)
    assert sim.world["state"][s] == 3
    # Bounds clamp.
    sim.queue_input(1, 3, {"dx": -1.0, "dy": 0.0, "boost": False})
    for _ in range(200):
        sim.step()
    assert sim.world["x"][s] == 0.0
    assert (x0, y0) != (0.0, 0.0)


def test_orb_pickup_scores_and_respawns() -> None:
    sim = Simulation(Arena, seed=3, config={"critters": 0, "orbs": 5, "hunters": 0})
    a = sim.join(1, "ann")
    sim.join(2, "bob")
    sim.step()
    sim.drain_events()
    w = sim.world
    s = _slot(sim, a.entity)
    orb = w.alive_slots()[w["kind"][w.alive_slots()] == ORB][0]
    w["x"][orb], w["y"][orb] = w["x"][s], w["y"][s]
    sim.step()
    assert w["score"][s] == 1
    assert _kinds(sim)[ORB] == 5
    events = sim.drain_events()
    assert GameEvent("pickup", {"what": "orb", "points": 1, "score": 1}, (1,)) in events


def test_catching_a_critter() -> None:
    sim = Simulation(Arena, seed=4, config={"critters": 3, "moving": 0.0, "orbs": 0, "hunters": 0})
    a = sim.join(1, "ann")
    sim.step()
    w = sim.world
    s = _slot(sim, a.entity)
    crit = w.alive_slots()[w["kind"][w.alive_slots()] == CRITTER][0]
    w["x"][crit], w["y"][crit] = w["x"][s], w["y"][s]
    for _ in range(10):  # 10 ticks of contact x 10 hp
        sim.step()
    assert w["score"][s] == 5
    assert _kinds(sim)[CRITTER] == 3  # a new one appeared
    kinds = [(e.kind, e.to) for e in sim.drain_events()]
    assert ("pickup", (1,)) in kinds


def test_hunter_bite_kills_and_respawns() -> None:
    sim = Simulation(Arena, seed=6, config={"critters": 0, "orbs": 0, "hunters": 1})
    a = sim.join(1, "ann")
    b = sim.join(2, "bob")
    sim.step()
    sim.drain_events()
    w = sim.world
    s = _slot(sim, a.entity)
    w["x"][s], w["y"][s] = 50.0, 50.0
    w["x"][_slot(sim, b.entity)] = 5.0
    w["y"][_slot(sim, b.entity)] = 5.0
    w["hp"][s] = 1
    w["score"][s] = 9
    hunter = w.alive_slots()[w["kind"][w.alive_slots()] == HUNTER][0]
    w["x"][hunter], w["y"][hunter] = 50.5, 50.0
    sim.step()
    assert w["hp"][s] == 100
    assert w["score"][s] == 4
    died = [e for e in sim.drain_events() if e.kind == "died"]
    assert died == [GameEvent("died", {"score": 4}, (1,))]  # only the victim is told


def test_join_reject_leave_and_scoreboard() -> None:
    sim = Simulation(Arena, seed=7, config={"critters": 10})
    a = sim.join(1, "ann")
    with pytest.raises(Reject, match="taken"):
        sim.join(2, "ann")
    sim.join(2, "bob")
    events = sim.drain_events()
    assert events[0] == GameEvent("arena", {"size": 100.0, "kinds": {
        "player": 0, "critter": 1, "orb": 2, "hunter": 3}}, (1,))
    assert GameEvent("joined", {"player": 2, "name": "bob"}, None) in events
    for _ in range(2 * Arena.tick_rate):
        sim.step()
    boards = [e for e in sim.drain_events() if e.kind == "scoreboard"]
    assert len(boards) == 1 and boards[0].to is None
    assert sorted(r[0] for r in boards[0].data) == [1, 2]
    sim.leave(1, "leave")
    sim.step()
    assert a.entity is not None and not sim.world.is_alive([a.entity])[0]
    assert GameEvent("left", {"player": 1, "name": "ann"}, None) in sim.drain_events()
    for _ in range(2 * Arena.tick_rate):
        sim.step()
    boards = [e for e in sim.drain_events() if e.kind == "scoreboard"]
    assert [r[0] for r in boards[-1].data] == [2]


def _storage(sim: Simulation) -> bytes:
    w = sim.world
    slots = w.alive_slots()
    return b"".join(w[name][slots].tobytes() for name in w)


def _play(
    seed: int, ticks: int
) -> tuple[Simulation, list[Any], list[list[GameEvent]], list[bytes]]:
    """Three players join, leave and rejoin at random, sending random inputs."""
    rng = np.random.default_rng(seed + 1000)
    sim = Simulation(Arena, seed=seed, config={"critters": 200, "moving": 0.5, "orbs": 30,
                                               "hunters": 4, "size": 40.0}, record=1_000_000)
    seqs = {1: 0, 2: 0, 3: 0}
    snaps, events, raw = [], [], []
    for _ in range(ticks):
        for pid in (1, 2, 3):
            r = rng.random()
            if pid not in sim.players:
                if r < 0.1:
                    sim.join(pid, f"p{pid}", {"name": f"p{pid}"})
                    seqs[pid] = 0
            elif r < 0.01:
                sim.leave(pid, "leave")
            else:
                for _ in range(int(rng.integers(0, 3))):  # 0-2 inputs per tick
                    seqs[pid] += 1
                    dx, dy = rng.uniform(-1, 1, 2)
                    sim.queue_input(pid, seqs[pid], {"dx": float(dx), "dy": float(dy),
                                                     "boost": bool(rng.random() < 0.3)})
        sim.step()
        snaps.append(sim.world.snapshot())
        events.append(sim.drain_events())
        raw.append(_storage(sim))
    return sim, snaps, events, raw


def test_replay_is_bit_identical() -> None:
    sim, snaps, events, raw = _play(seed=11, ticks=300)
    assert sim.log_complete
    kinds = {e.kind for e in sim.input_log}
    assert kinds == {"join", "leave", "input"}
    n = 0
    for (rsim, res), snap, evs in zip(
        replay(Arena, sim.input_log, seed=sim.seed, config=sim.config, until=sim.tick),
        snaps, events, strict=True,
    ):
        got = rsim.world.snapshot()
        assert got.ids.tobytes() == snap.ids.tobytes(), res.tick
        for name, col in snap.columns.items():
            assert got.columns[name].tobytes() == col.tobytes(), (res.tick, name)
        # The full-precision storage matches too, not only the quantized wire values.
        assert _storage(rsim) == raw[n], res.tick
        assert rsim.drain_events() == evs
        n += 1
    assert n == 300
    # Something actually happened (the comparison could have failed).
    assert any(e.kind == "pickup" for evs in events for e in evs)
    assert len({s.columns["x"].tobytes() for s in snaps}) == 300


def test_different_seed_diverges() -> None:
    _, a, _, _ = _play(seed=1, ticks=20)
    _, b, _, _ = _play(seed=2, ticks=20)
    assert a[-1].columns["x"].tobytes() != b[-1].columns["x"].tobytes()


def _zap_setup(seed: int = 3) -> tuple[Simulation, int, int]:
    """One fleeing critter in the middle of the arena, one player 5 units east of it."""
    sim = Simulation(Arena, seed=seed,
                     config={"critters": 1, "moving": 1.0, "orbs": 0, "hunters": 0})
    p = sim.join(1, "ann")
    sim.step()
    w = sim.world
    (crit,) = w.ids[w["kind"][w.alive_slots()] == CRITTER].tolist()
    cs, ps = _slot(sim, crit), _slot(sim, p.entity)
    w["x"][cs], w["y"][cs] = 50.0, 50.0
    w["x"][ps], w["y"][ps] = 55.0, 50.0
    return sim, crit, _slot(sim, p.entity)


@pytest.mark.parametrize("compensated", [True, False])
def test_zap_hits_the_fleeing_critter_seen_150ms_ago(compensated: bool) -> None:
    """The player's screen shows the world of 5 ticks (167 ms at 30 Hz: interpolation delay
    plus latency) ago; it aims at the critter drawn there. Judged at that tick (``rt``) the zap
    hits; judged against the present (no ``rt``) the fleeing critter is long gone."""
    sim, crit, _ = _zap_setup()
    w = sim.world
    seen_at: dict[int, tuple[float, float]] = {}
    for _ in range(10):
        sim.step()
        cs = _slot(sim, crit)
        seen_at[sim.tick] = (float(w["x"][cs]), float(w["y"][cs]))
    seen = sim.tick - 5
    ax, ay = seen_at[seen]
    now = seen_at[sim.tick]
    assert np.hypot(now[0] - ax, now[1] - ay) > 1.3  # it fled well beyond ZAP_RADIUS (1.0)
    sim.drain_events()
    shot = {**STILL, "fire": True, "ax": ax, "ay": ay}
    assert sim.queue_input(1, 1, shot, render_tick=seen if compensated else None)
    sim.step()
    zaps = [e.data for e in sim.drain_events() if e.kind == "zaps"]
    assert len(zaps) == 1 and len(zaps[0]) == 1
    pid, zx, zy, hit = zaps[0][0]
    assert pid == 1 and (zx, zy) == (round(ax, 2), round(ay, 2))
    hp = int(w["hp"][_slot(sim, crit)])
    if compensated:
        assert hit == crit and hp == 50
    else:
        assert hit == 0 and hp == 100
    assert sim.clamped_render_ticks == 0


def test_zap_cooldown_range_and_catch() -> None:
    sim, crit, ps = _zap_setup(seed=4)
    w = sim.world
    seq = 0

    def fire(ax: float, ay: float) -> list[Any]:
        nonlocal seq
        seq += 1
        cs = _slot(sim, crit)
        w["x"][cs], w["y"][cs], w["angle"][cs] = 50.0, 50.0, 0.0
        sim.step()  # the critter moves a little; aim where the latest tick shows it
        cs = _slot(sim, crit)
        assert sim.queue_input(1, seq, {**STILL, "fire": True, "ax": ax or float(w["x"][cs]),
                                        "ay": ay or float(w["y"][cs])})
        sim.drain_events()
        sim.step()
        return [e.data for e in sim.drain_events() if e.kind == "zaps"]

    assert fire(0, 0)[0][0][3] == crit  # hit: 50 hp
    assert fire(0, 0) == []  # cooldown (0.25 s = 8 ticks at 30 Hz): no zap at all
    for _ in range(8):
        sim.step()
    w["x"][ps] = 99.0  # 49 units away: out of ZAP_RANGE (40)
    assert fire(0, 0) == []
    w["x"][ps] = 55.0
    score0 = int(w["score"][ps])
    zaps = fire(0, 0)
    assert zaps[0][0][3] == crit  # second hit: caught
    assert int(w["score"][ps]) == score0 + 5
    sim.step()
    assert not w.is_alive([crit])[0]
    assert _kinds(sim)[CRITTER] == 1  # a new critter appeared
