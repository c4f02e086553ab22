"""World history (lag compensation): the ring, PastWorld, hits(), render-tick clamping."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from gameserver.history import HistoryError, WorldHistory, history_length
from gameserver.inputs import InputBatch
from gameserver.rules import F, Game, I, InputSchema, Player
from gameserver.schema import WorldSchema
from gameserver.simulation import Simulation, replay
from gameserver.world import World

SCHEMA = WorldSchema({"x": F.float32(), "y": F.float32(), "hp": F.uint8(default=7)})


def _world(cap: int = 4) -> World:
    return World(SCHEMA, capacity=cap)


def test_history_length() -> None:
    assert history_length(0, 30) == 0
    assert history_length(1.0, 30) == 31  # newest - oldest spans a full second
    assert history_length(0.5, 20) == 11
    assert history_length(0.01, 20) == 2
    for bad in (-1, 11, True, "1", float("nan")):
        with pytest.raises(ValueError):
            history_length(bad, 30)  # type: ignore[arg-type]


def test_ring_records_and_reads_back_read_only() -> None:
    w = _world()
    h = WorldHistory(w, 3)
    ids = w.spawn(2, x=[1.0, 2.0], y=0.0)
    w.commit()
    h.record(0)
    s = w.slots_of(ids)
    for t in (1, 2, 3, 4):
        w["x"][s] += 10.0
        w.commit()
        h.record(t)
    assert (h.oldest, h.newest) == (2, 4)
    assert 2 in h and 4 in h and 1 not in h and 5 not in h
    p2 = h.at(2)
    assert p2.tick == 2
    np.testing.assert_array_equal(p2["x"][p2.slots], [21.0, 22.0])
    np.testing.assert_array_equal(h.at(4)["x"][s], [41.0, 42.0])
    np.testing.assert_array_equal(p2.ids, ids)
    assert p2.count == 2 and p2["hp"][s].tolist() == [7, 7]
    for arr in (p2["x"], p2.alive, p2.slots):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 0
    # the world itself is untouched by reading, and the ring is a copy, not a view of it
    w["x"][s] = -1.0
    np.testing.assert_array_equal(h.at(4)["x"][s], [41.0, 42.0])
    for bad in (1, 5, -1):
        with pytest.raises(HistoryError, match=r"holds 2\.\.4"):
            h.at(bad)
    np.testing.assert_array_equal(h.clamp([0, 3, 9]), [2, 3, 4])
    with pytest.raises(ValueError):
        h.record(4)  # not increasing


def test_gap_restarts_the_window() -> None:
    w = _world()
    h = WorldHistory(w, 4)
    h.record(0)
    h.record(1)
    h.record(5)  # ticks 2..4 were never recorded
    assert (h.oldest, h.newest) == (5, 5)
    with pytest.raises(HistoryError):
        h.at(1)


def test_spawn_despawn_and_stale_ids_in_the_past() -> None:
    w = _world()
    h = WorldHistory(w, 8)
    a, b = w.spawn(2, x=[1.0, 2.0])
    w.commit()
    h.record(0)
    w.despawn([a])
    w.commit()
    h.record(1)
    (c,) = w.spawn(1, x=3.0)  # reuses a's slot with a new generation
    w.commit()
    h.record(2)
    assert int(c) >> 8 == int(a) >> 8 and c != a
    p0, p1, p2 = h.at(0), h.at(1), h.at(2)
    assert p0.ids.tolist() == [a, b] and p1.ids.tolist() == [b]
    assert sorted(p2.ids.tolist()) == sorted([b, c])
    assert p0.slots_of([a, b, c, 0, 2**40]).tolist() == [int(a) >> 8, int(b) >> 8, -1, -1, -1]
    assert p1.slots_of([a]).tolist() == [-1]
    assert p2.slots_of([a, c]).tolist() == [-1, int(c) >> 8]
    assert p0["x"][p0.slots_of([a])[0]] == 1.0 and p2["x"][p2.slots_of([c])[0]] == 3.0


def test_ring_grows_with_the_world_capacity() -> None:
    w = _world(cap=2)
    h = WorldHistory(w, 4)
    first = w.spawn(2, x=[1.0, 2.0])
    w.commit()
    h.record(0)
    more = w.spawn(5, x=np.arange(5, dtype=np.float32) + 10)  # grows the world to 8
    w.commit()
    assert w.capacity >= 7
    h.record(1)
    p0, p1 = h.at(0), h.at(1)
    assert p0.alive.shape[0] == w.capacity == p1.alive.shape[0]
    assert p0.ids.tolist() == first.tolist()  # the old row survived the growth
    np.testing.assert_array_equal(p0["x"][p0.slots], [1.0, 2.0])
    assert p1.ids.tolist() == first.tolist() + more.tolist()
    np.testing.assert_array_equal(p1["x"][p1.slots_of(more)], np.arange(5) + 10)
    assert h.nbytes >= 4 * w.capacity * (4 + 4 + 1 + 2)


def _brute(h: WorldHistory, pts: np.ndarray, ticks: np.ndarray, r: np.ndarray,
           excl: np.ndarray) -> set[tuple[int, int]]:
    """The per-shot, per-entity reference (a test oracle, not product code)."""
    out = set()
    for i in range(len(pts)):
        p = h.at(int(ticks[i]))
        for slot, eid in zip(p.slots.tolist(), p.ids.tolist()):
            if eid == excl[i]:
                continue
            d = np.hypot(p["x"][slot] - pts[i, 0], p["y"][slot] - pts[i, 1])
            if d <= r[i]:
                out.add((i, eid))
    return out


def test_hits_matches_a_brute_force_reference() -> None:
    rng = np.random.default_rng(5)
    w = _world(cap=8)
    h = WorldHistory(w, 6)
    ids = w.spawn(200, x=rng.uniform(0, 20, 200), y=rng.uniform(0, 20, 200))
    w.commit()
    h.record(0)
    for t in range(1, 9):
        s = w.slots_of(ids)
        w["x"][s] += rng.normal(0, 0.5, len(s)).astype(np.float32)
        w["y"][s] += rng.normal(0, 0.5, len(s)).astype(np.float32)
        if t == 4:
            w.despawn(ids[:20])
            ids = ids[20:]
        w.commit()
        h.record(t)
    n = 300
    pts = rng.uniform(0, 20, (n, 2))
    ticks = rng.integers(h.oldest, h.newest + 1, n)
    r = rng.uniform(0.2, 1.5, n)
    excl = np.where(rng.random(n) < 0.5, ids[rng.integers(0, len(ids), n)], 0)
    got = h.hits(pts, ticks, r, exclude=excl)
    pairs = set(zip(got.shot.tolist(), got.entity.tolist()))
    want = _brute(h, pts, ticks, r, excl)
    assert len(want) > 50
    assert pairs == want
    assert len(pairs) == len(got.shot)
    # sorted by shot, then distance; nearest() picks the first per shot
    key = got.shot.astype(np.float64) * 1e6 + got.dist
    assert np.all(np.diff(key) >= 0)
    near = got.nearest(n)
    for i in np.unique(got.shot).tolist()[:20]:
        rows = got.shot == i
        assert near[i] == got.entity[rows][np.argmin(got.dist[rows])]
    assert near[np.setdiff1d(np.arange(n), got.shot)].tolist() == [0] * (n - len(
        np.unique(got.shot)))


def test_hits_where_fields_and_errors() -> None:
    w = _world()
    h = WorldHistory(w, 4)
    a, b = w.spawn(2, x=[1.0, 1.2], y=[0.0, 0.0], hp=[0, 9])
    w.commit()
    h.record(0)
    all_ = h.hits([[1.1, 0.0]], [0], 0.5)
    assert all_.entity.tolist() == [a, b] or all_.entity.tolist() == [b, a]
    alive_only = h.hits([[1.1, 0.0]], [0], 0.5, where=lambda p: p["hp"] > 0)
    assert alive_only.entity.tolist() == [b]
    one_d = h.hits(np.array([1.0]), [0], 0.01, fields=("x",))
    assert one_d.entity.tolist() == [a]
    empty = h.hits(np.zeros((0, 2)), np.zeros(0, np.int64), 1.0)
    assert len(empty.shot) == 0 and empty.nearest(0).shape == (0,)
    with pytest.raises(HistoryError):
        h.hits([[0.0, 0.0]], [3], 1.0)
    with pytest.raises(ValueError):
        h.hits([[0.0, 0.0, 0.0]], [0], 1.0)
    with pytest.raises(ValueError):
        h.hits([[0.0, 0.0]], [0, 0], 1.0)
    with pytest.raises(KeyError):
        h.hits([[0.0, 0.0]], [0], 1.0, fields=("x", "nope"))


# ---------------------------------------------------------------------------- Simulation


class Walker(Game):
    """A target walking +x at SPEED units/s and shooters firing at aim points."""

    name = "walker"
    fields = {"x": F.float32(), "y": F.float32(), "hit": F.uint16()}
    inputs = InputSchema({"fire": I.bool_(), "ax": I.float32(-1000, 1000),
                          "ay": I.float32(-1000, 1000)})
    tick_rate = 20
    send_rate = 20
    history = 1.0
    compensate: ClassVar[bool] = True
    SPEED: ClassVar[float] = 20.0  # 1 unit per tick at 20 Hz
    RADIUS: ClassVar[float] = 0.5

    def on_create(self, config: dict[str, Any]) -> None:
        self.target = int(self.world.spawn(1, x=0.0, y=0.0)[0])
        self.seen: list[InputBatch] = []

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        player.entity = int(self.world.spawn(1, x=0.0, y=-10.0)[0])

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w = self.world
        s = w.slots_of([self.target])
        w["x"][s] += self.SPEED * dt
        self.seen.append(inputs)
        shots = inputs.take(inputs["fire"])
        if not len(shots):
            return
        pts = np.stack([shots["ax"], shots["ay"]], axis=1)
        ticks = shots.render_tick if self.compensate else np.full(len(shots), tick - 1)
        own = [self.players[int(p)].entity or 0 for p in shots.player.tolist()]
        hits = w.history.hits(pts, ticks, self.RADIUS, exclude=own)
        victims = hits.nearest(len(shots))
        vs = w.slots_of(victims[victims != 0])
        np.add.at(w["hit"], vs, 1)


class Uncompensated(Walker):
    compensate = False


@pytest.mark.parametrize("game,expect_hit", [(Walker, True), (Uncompensated, False)])
def test_150ms_shooter_hits_what_it_saw_only_with_compensation(
    game: type[Walker], expect_hit: bool
) -> None:
    """Interpolation delay 100 ms + one-way latency 50 ms at 20 Hz: the client's screen shows
    tick ``T - 3`` when the server is at ``T``. The shooter aims exactly at the target as drawn
    then; the input reaches the server 50 ms (one tick) after it was produced."""
    sim = Simulation(game, seed=1)
    sim.join(1, "shooter")
    rate = sim.tick_rate
    interp, latency = 0.100, 0.050
    lag = round((interp + latency) * rate)
    assert lag == 3
    snapshots: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    target = sim.game.target
    fired_at = 0
    for _ in range(40):
        res = sim.step()
        snapshots[res.tick] = (sim.world.ids.copy(), sim.world["x"].copy())
        if res.tick == 20:
            seen = res.tick - lag  # what was on screen when the client pressed fire
            ids, xs = snapshots[seen]
            slot = int(sim.world.slots_of([target])[0])
            assert target in ids.tolist()
            aim = float(xs[slot])
            # the target moved 3 units since: far outside the 0.5 hit radius
            assert sim.world["x"][slot] - aim == pytest.approx(3.0)
            assert sim.queue_input(1, 1, {"fire": True, "ax": aim, "ay": 0.0}, render_tick=seen)
            fired_at = res.tick + 1
    batch = sim.game.seen[fired_at - 1]
    assert len(batch) == 1 and batch.render_tick.tolist() == [fired_at - 1 - lag]
    hit = int(sim.world["hit"][sim.world.slots_of([target])[0]])
    assert hit == (1 if expect_hit else 0)
    assert sim.clamped_render_ticks == 0


def test_render_tick_clamping_and_defaults() -> None:
    sim = Simulation(Walker, seed=1, history=0.25)  # 6 rows at 20 Hz
    sim.join(1, "p")
    for _ in range(10):
        sim.step()
    assert sim.tick == 10 and sim.history is not None
    assert (sim.history.oldest, sim.history.newest) == (5, 10)
    shot = {"fire": False, "ax": 0.0, "ay": 0.0}
    cases = [(None, 10, 0), (7, 7, 0), (5, 5, 0), (10, 10, 0), (11, 10, 1),
             (2**62, 10, 2), (4, 5, 3), (0, 5, 4)]
    for seq, (rt, _, _) in enumerate(cases, 1):
        assert sim.queue_input(1, seq, shot, render_tick=rt)
    sim.step()
    batch = sim.game.seen[-1]
    assert batch.render_tick.dtype == np.int64
    assert batch.render_tick.tolist() == [want for _, want, _ in cases]
    assert sim.clamped_render_ticks == 4
    assert sim.counters()["clamped_render_ticks"] == 4


def test_no_history_means_no_compensation_and_no_clamp_count() -> None:
    sim = Simulation(Walker, seed=1, history=0)
    assert sim.history is None and sim.world.history is None
    sim.join(1, "p")
    sim.step()
    sim.step()
    assert sim.queue_input(1, 1, {"fire": False, "ax": 0.0, "ay": 0.0}, render_tick=0)
    sim.step()
    assert sim.game.seen[-1].render_tick.tolist() == [2]
    assert sim.clamped_render_ticks == 0
    with pytest.raises(HistoryError, match="no history"):
        sim.world.at(2)


def test_world_at_inside_on_tick_sees_the_previous_ticks() -> None:
    sim = Simulation(Walker, seed=1)
    for _ in range(5):
        sim.step()
    w = sim.world
    s = int(w.slots_of([sim.game.target])[0])
    assert w.at(5)["x"][s] == w["x"][s] == pytest.approx(5.0)
    assert w.at(2)["x"][s] == pytest.approx(2.0)
    assert w.at(0)["x"][s] == 0.0  # tick 0: the state after on_create
    assert w.history is not None and w.history.length == 21


def test_log_entries_carry_render_tick_and_replay_passes_it_back() -> None:
    sim = Simulation(Walker, seed=3, record=1000, history=0.25)
    sim.join(1, "p")
    for t in range(12):
        sim.step()
        sim.queue_input(1, t + 1, {"fire": True, "ax": float(t) - 2, "ay": 0.0},
                        render_tick=[None, t - 2, t + 5, 0][t % 4])
    sim.step()
    entries = [e for e in sim.input_log if e.kind == "input"]
    assert [e.render_tick for e in entries] == [
        b.render_tick[0] for b in sim.game.seen if len(b)]
    assert all(isinstance(e.render_tick, int) for e in entries)
    assert all(e.render_tick is None for e in sim.input_log if e.kind != "input")
    original = [b.render_tick.tolist() for b in sim.game.seen]
    again = None
    for r, _ in replay(Walker, sim.input_log, seed=3):
        again = r
    assert again is not None
    assert [b.render_tick.tolist() for b in again.game.seen] == original
    t_slot = int(sim.world.slots_of([sim.game.target])[0])
    assert int(again.world["hit"][t_slot]) == int(sim.world["hit"][t_slot]) > 0


@pytest.mark.parametrize("spread", [5.0, 3e4, 1e9])  # one 2D table, a 1D table, no table
def test_hits_pruning_grid_never_loses_a_hit(spread: float) -> None:
    rng = np.random.default_rng(int(spread) % 97)
    schema = WorldSchema({"x": F.float64(), "y": F.float64(), "z": F.float64()})
    w = World(schema, capacity=8)
    h = WorldHistory(w, 2)
    centers = rng.uniform(-spread, spread, (4, 3))
    pos = centers[rng.integers(0, 4, 400)] + rng.normal(0, 1.0, (400, 3))
    ids = w.spawn(400, x=pos[:, 0], y=pos[:, 1], z=pos[:, 2])
    w.commit()
    h.record(0)
    pts = centers[rng.integers(0, 4, 60)] + rng.normal(0, 1.0, (60, 3))
    r = 0.8
    for fields in (("x",), ("x", "y"), ("x", "y", "z")):
        k = len(fields)
        got = h.hits(pts[:, :k], np.zeros(60, np.int64), r, fields=fields)
        d = np.sqrt(((pts[:, None, :k] - pos[None, :, :k]) ** 2).sum(axis=2))
        si, ei = np.nonzero(d <= r)
        assert set(zip(got.shot.tolist(), got.entity.tolist())) == set(
            zip(si.tolist(), ids[ei].tolist())), fields
        assert len(si) > 0


def test_a_reused_row_forgets_entities_above_the_new_high_water_mark() -> None:
    w = _world(cap=8)
    h = WorldHistory(w, 1)  # every record overwrites the same row
    ids = w.spawn(6, x=np.arange(6, dtype=np.float32))
    w.commit()
    h.record(0)
    assert h.at(0).count == 6
    w.despawn(ids[2:])
    w.commit()
    h.record(1)
    p = h.at(1)
    assert p.ids.tolist() == ids[:2].tolist() and not p.alive[2:].any()
    assert h.hits([[4.0, 0.0]], [1], 0.5).shot.size == 0  # a dead slot is never hit
