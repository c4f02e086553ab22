"""Client-side prediction with server reconciliation.

The server is authoritative, but waiting a round trip before the local player's own entity
moves feels sluggish. So the client applies each input locally the moment it is sent
(*prediction*) and keeps it until the server acknowledges it (INPUT_ACK ``s`` = the last input
seq applied). When an authoritative state arrives, the client restarts from it and replays the
inputs the server has not applied yet (*reconciliation*): the prediction is always
"authoritative state + my pending inputs", so a misprediction is corrected within one round
trip, and a correct prediction never snaps back.

Contracts:

* The user supplies ``step(state, inputs) -> new_state``: the same rule the server runs for one
  input of this player (e.g. ``x += dx * speed * dt``). It must not mutate ``state`` (return a
  new value); states are opaque to this module (a tuple, a dict, a small numpy array...).
* :meth:`Predictor.record` is called once per sent input, in seq order (seq 1, 2, 3...).
* :meth:`Predictor.reconcile` is called with the authoritative state **and** the last input
  seq that state includes (for a delta at tick T: the largest INPUT_ACK ``s`` whose ``t`` is
  <= T; :class:`AckTracker` does that pairing, since acks and deltas are separate messages).
* Every buffer is bounded: at most ``max_pending`` unacknowledged inputs (the oldest are
  dropped) and inputs older than ``max_age`` seconds (by the supplied clock) are forgotten, as
  the server evidently dropped them (rate limit, invalid input).
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["AckTracker", "PendingInput", "Predictor"]

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class PendingInput:
    """An input sent but not yet acknowledged: its seq, its fields, when it was sent."""

    seq: int
    data: Mapping[str, Any]
    sent_at: float


class AckTracker:
    """Pairs INPUT_ACK messages (``s`` applied in tick ``t``) with delta ticks.

    ``acked_at(tick)`` is the last input seq the authoritative state of ``tick`` includes.
    Keeps at most ``capacity`` acks (older ones are folded into a floor value).
    """

    def __init__(self, capacity: int = 256) -> None:
        self._ticks: list[int] = []
        self._seqs: list[int] = []
        self._capacity = capacity
        self._floor = 0  # seq known applied at or before every retained tick
        self.last_seq = 0
        """The highest seq acknowledged so far (regardless of tick)."""

    def ack(self, seq: int, tick: int) -> None:
        """Record INPUT_ACK ``{"s": seq, "t": tick}``. Acks for older seqs are ignored."""
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        if self._ticks and tick < self._ticks[-1]:
            tick = self._ticks[-1]  # a reordered ack can only be later in time
        self._ticks.append(tick)
        self._seqs.append(seq)
        if len(self._ticks) > self._capacity:
            drop = len(self._ticks) - self._capacity // 2
            self._floor = self._seqs[drop - 1]
            del self._ticks[:drop]
            del self._seqs[:drop]

    def acked_at(self, tick: int) -> int:
        """The largest acknowledged seq applied in a tick <= ``tick`` (0 if none)."""
        i = bisect.bisect_right(self._ticks, tick)
        return self._seqs[i - 1] if i else self._floor

    def reset(self) -> None:
        """Forget everything (a new session: seqs restart at 1)."""
        self._ticks.clear()
        self._seqs.clear()
        self._floor = 0
        self.last_seq = 0


class Predictor(Generic[S]):
    """Predicted state = authoritative state + replay of the unacknowledged inputs.

    ``step(state, inputs) -> state`` is the user's one-input rule; ``clock`` (seconds) stamps
    inputs so tests control time; ``error(a, b) -> float`` (optional) measures how far a
    reconciliation moved the predicted state, to count mispredictions above ``tolerance``.
    """

    def __init__(
        self,
        step: Callable[[S, Mapping[str, Any]], S],
        initial: S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = 256,
        max_age: float = 5.0,
        error: Callable[[S, S], float] | None = None,
        tolerance: float = 1e-6,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self._step = step
        self._clock = clock
        self._pending: deque[PendingInput] = deque(maxlen=max_pending)
        self._max_age = max_age
        self._error = error
        self._tolerance = tolerance
        self.authoritative: S = initial
        """The last state received from the server."""
        self.state: S = initial
        """The predicted state: what to draw for the local player now."""
        self.acked_seq = 0
        """The last input seq the authoritative state includes."""
        self.last_error = 0.0
        """How far the last reconciliation moved the prediction (``error``; 0 without it)."""
        self.mispredictions = 0
        """Reconciliations that moved the prediction by more than ``tolerance``."""
        self.expired = 0
        """Inputs forgotten because no ack came within ``max_age`` or the buffer was full."""
        self.latency: float | None = None
        """Seconds between sending the newest acknowledged input and reconciling with it."""

    @property
    def pending(self) -> tuple[PendingInput, ...]:
        """Inputs sent and not yet included in the authoritative state, oldest first."""
        return tuple(self._pending)

    def record(self, seq: int, inputs: Mapping[str, Any]) -> S:
        """An input was just sent with ``seq``: predict its effect; returns the new state."""
        if seq <= self.acked_seq:
            raise ValueError(f"input seq {seq} is already acknowledged ({self.acked_seq})")
        if self._pending and seq <= self._pending[-1].seq:
            raise ValueError(f"input seq {seq} not after {self._pending[-1].seq}")
        if len(self._pending) == self._pending.maxlen:
            self.expired += 1
        self._pending.append(PendingInput(seq, dict(inputs), self._clock()))
        self.state = self._step(self.state, inputs)
        return self.state

    def reconcile(self, authoritative: S, acked_seq: int) -> S:
        """Restart from the server's state (which includes inputs up to ``acked_seq``) and
        replay the newer pending inputs. Returns the new predicted state."""
        now = self._clock()
        pending = self._pending
        if acked_seq < self.acked_seq:
            acked_seq = self.acked_seq  # a stale delta: seqs only move forward
        while pending and pending[0].seq <= acked_seq:
            done = pending.popleft()
            if done.seq == acked_seq:
                self.latency = now - done.sent_at
        while pending and now - pending[0].sent_at > self._max_age:
            pending.popleft()
            self.expired += 1
        self.acked_seq = acked_seq
        self.authoritative = authoritative
        state = authoritative
        for p in pending:
            state = self._step(state, p.data)
        if self._error is not None:
            self.last_error = float(self._error(self.state, state))
            if self.last_error > self._tolerance:
                self.mispredictions += 1
        self.state = state
        return state

    def reset(self, state: S) -> None:
        """Forget every pending input and start from ``state`` (a new session)."""
        self._pending.clear()
        self.acked_seq = 0
        self.authoritative = state
        self.state = state
