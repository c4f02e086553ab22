"""Snapshot interpolation buffer: vectorized blend and render-time arithmetic, controlled clock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clients.interpolation import InterpolationBuffer, interpolate


class FakeClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def cols(x: list[float], kind: list[int]) -> dict[str, np.ndarray]:
    return {"x": np.array(x, dtype=np.float64), "kind": np.array(kind, dtype=np.uint8)}


def test_interpolate_matches_by_id_and_keeps_single_side_entities() -> None:
    ids_a = np.array([3, 5, 9], dtype=np.uint32)
    ids_b = np.array([5, 7, 9], dtype=np.uint32)  # 3 despawned, 7 spawned
    a = cols([1.0, 10.0, 100.0], [1, 2, 3])
    b = cols([20.0, 70.0, 200.0], [8, 9, 7])
    ids, out = interpolate(ids_a, a, ids_b, b, 0.25)
    assert ids.tolist() == [3, 5, 7, 9]
    # 3 only in a, 7 only in b: shown as is; 5 and 9 interpolated
    assert out["x"].tolist() == pytest.approx([1.0, 12.5, 70.0, 125.0])
    # ints: the older value for common entities, own value otherwise
    assert out["kind"].tolist() == [1, 2, 9, 3]
    assert out["kind"].dtype == np.uint8


def test_interpolate_alpha_bounds_and_explicit_fields() -> None:
    ids = np.array([1, 2], dtype=np.uint32)
    a = {"x": np.array([0.0, 0.0]), "y": np.array([0.0, 4.0])}
    b = {"x": np.array([10.0, 20.0]), "y": np.array([8.0, 8.0])}
    _, out = interpolate(ids, a, ids, b, 1.7)
    assert out["x"].tolist() == [10.0, 20.0]  # clamped to 1
    _, out = interpolate(ids, a, ids, b, 0.5, fields={"x"})
    assert out["x"].tolist() == [5.0, 10.0]
    assert out["y"].tolist() == [0.0, 4.0]  # not interpolated: older value


def test_interpolate_angles_take_shortest_arc() -> None:
    ids = np.array([1], dtype=np.uint32)
    a = {"rot": np.array([math.pi - 0.1])}
    b = {"rot": np.array([-math.pi + 0.1])}
    _, out = interpolate(ids, a, ids, b, 0.5, angles={"rot"})
    assert abs(abs(out["rot"][0]) - math.pi) < 1e-9
    _, out = interpolate(ids, a, ids, b, 0.5)
    assert out["rot"][0] == pytest.approx(0.0)  # naive lerp crosses zero


def test_buffer_renders_delay_behind_server_time() -> None:
    clock = FakeClock()
    buf = InterpolationBuffer(delay=0.1, clock=clock, tick_rate=10.0)
    ids = np.array([1], dtype=np.uint32)
    assert buf.sample() is None
    # ticks arrive 50 ms after they happen (constant transport delay)
    for tick in range(0, 5):
        clock.t = tick / 10.0 + 0.05
        buf.push_tick(tick, ids, {"x": np.array([tick * 10.0])})
    # now = 0.45 local = server time 0.4; render at 0.3 -> exactly tick 3
    frame = buf.sample()
    assert frame is not None
    assert frame.render_time == pytest.approx(0.3)
    assert frame.columns["x"][0] == pytest.approx(30.0)
    clock.t = 0.475  # render 0.325: between ticks 3 and 4
    frame = buf.sample()
    assert frame is not None and not frame.starved
    assert frame.alpha == pytest.approx(0.25)
    assert frame.columns["x"][0] == pytest.approx(32.5)
    assert frame.older_time == pytest.approx(0.3) and frame.newer_time == pytest.approx(0.4)


def test_buffer_jitter_uses_fastest_delivery_and_never_goes_back() -> None:
    clock = FakeClock()
    buf = InterpolationBuffer(delay=0.1, clock=clock, capacity=4)
    ids = np.array([1], dtype=np.uint32)
    delays = [0.02, 0.08, 0.05, 0.03]
    for i, d in enumerate(delays):
        clock.t = i * 0.1 + d
        buf.push(i * 0.1, ids, {"x": np.array([float(i)])})
    assert buf.clock_offset == pytest.approx(0.02)
    clock.t = 0.35
    first = buf.sample()
    assert first is not None and first.render_time == pytest.approx(0.23)
    # the fastest sample leaves the window: offset rises, render time must not go back
    clock.t = 0.4 + 0.09
    buf.push(0.4, ids, {"x": np.array([4.0])})
    assert buf.clock_offset == pytest.approx(0.03)
    clock.t = 0.35
    again = buf.sample()
    assert again is not None and again.render_time >= first.render_time


def test_buffer_starves_past_newest_and_copies_input() -> None:
    clock = FakeClock()
    buf = InterpolationBuffer(delay=0.0, clock=clock)
    ids = np.array([4], dtype=np.uint32)
    x = np.array([1.0])
    clock.t = 0.0
    buf.push(0.0, ids, {"x": x})
    x[0] = 99.0  # the caller's array (e.g. a replica column) changes later
    clock.t = 0.5
    frame = buf.sample()
    assert frame is not None and frame.starved and frame.newer_time is None
    assert frame.columns["x"][0] == 1.0
    assert buf.starved_frames == 1


def test_buffer_drops_duplicates_and_resets_on_clock_jump() -> None:
    clock = FakeClock()
    buf = InterpolationBuffer(clock=clock)
    ids = np.array([1], dtype=np.uint32)
    buf.push(5.0, ids, {"x": np.array([0.0])})
    buf.push(5.0, ids, {"x": np.array([1.0])})
    assert len(buf) == 1
    buf.push(1.0, ids, {"x": np.array([1.0])})  # server restarted its clock
    assert len(buf) == 1
    with pytest.raises(ValueError):
        InterpolationBuffer(delay=-1)
    with pytest.raises(ValueError):
        InterpolationBuffer().push_tick(1, ids, {})


def test_interpolate_large_vectorized() -> None:
    rng = np.random.default_rng(1)
    ids_a = np.unique(rng.integers(1, 10_000, 2000).astype(np.uint32))
    ids_b = np.unique(rng.integers(1, 10_000, 2000).astype(np.uint32))
    xa = rng.random(len(ids_a))
    xb = rng.random(len(ids_b))
    ids, out = interpolate(ids_a, {"x": xa}, ids_b, {"x": xb}, 0.5)
    da = dict(zip(ids_a.tolist(), xa.tolist()))
    db = dict(zip(ids_b.tolist(), xb.tolist()))
    expect = []
    for i in ids.tolist():
        if i in da and i in db:
            expect.append((da[i] + db[i]) / 2)
        else:
            expect.append(da.get(i, db.get(i)))
    assert out["x"].tolist() == pytest.approx(expect)
