"""Client-side prediction and reconciliation with a controlled clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from clients.prediction import AckTracker, Predictor


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def step(state: float, inputs: Mapping[str, Any]) -> float:
    return state + float(inputs["dx"])


def test_prediction_replays_unacked_inputs_on_authoritative_state() -> None:
    clock = FakeClock()
    p = Predictor(step, 0.0, clock=clock, error=lambda a, b: abs(a - b))
    for seq in (1, 2, 3):
        clock.t = seq * 0.01
        p.record(seq, {"dx": 1.0})
    assert p.state == 3.0
    assert [i.seq for i in p.pending] == [1, 2, 3]
    # the server applied inputs 1 and 2 exactly as predicted
    clock.t = 0.1
    assert p.reconcile(2.0, 2) == 3.0
    assert [i.seq for i in p.pending] == [3]
    assert p.mispredictions == 0
    assert p.latency == pytest.approx(0.1 - 0.02)
    # the server's rules differed (a wall): authoritative 1.5 includes input 3
    p.record(4, {"dx": 1.0})
    assert p.reconcile(1.5, 3) == 2.5  # 1.5 + replay of input 4
    assert p.mispredictions == 1
    assert p.last_error == pytest.approx(1.5)
    # a stale authoritative state (older ack) never resurrects acked inputs
    assert p.reconcile(1.5, 1) == 2.5
    assert [i.seq for i in p.pending] == [4]


def test_prediction_expires_inputs_the_server_never_acks() -> None:
    clock = FakeClock()
    p = Predictor(step, 0.0, clock=clock, max_age=1.0, max_pending=3)
    p.record(1, {"dx": 1.0})
    clock.t = 2.0  # input 1 is 2 s old: the server dropped it
    p.record(2, {"dx": 1.0})
    assert p.reconcile(0.0, 0) == 1.0
    assert p.expired == 1
    for seq in (3, 4, 5):
        p.record(seq, {"dx": 1.0})
    assert len(p.pending) == 3 and p.expired == 2  # bounded: the oldest was dropped
    with pytest.raises(ValueError):
        p.record(5, {"dx": 1.0})
    p.reset(10.0)
    assert p.state == 10.0 and not p.pending and p.acked_seq == 0


def test_ack_tracker_pairs_acks_with_ticks() -> None:
    t = AckTracker(capacity=4)
    assert t.acked_at(100) == 0
    t.ack(1, 10)
    t.ack(2, 10)
    t.ack(3, 12)
    t.ack(2, 13)  # stale
    assert t.acked_at(9) == 0
    assert t.acked_at(10) == 2
    assert t.acked_at(11) == 2
    assert t.acked_at(50) == 3
    for s in range(4, 10):
        t.ack(s, 10 + s)
    assert t.last_seq == 9
    assert t.acked_at(19) == 9
    assert t.acked_at(0) >= 3  # folded into the floor, never below what was dropped
    t.reset()
    assert t.last_seq == 0 and t.acked_at(1000) == 0
