"""World: a large field for interest management (10,000 x 10,000 units, 10,000 entities).

Critters are scattered over the whole field; a fixed share of them (``moving``, default
10%) random-walk at ``speed`` units per second, bouncing off the edges; the rest stand
still. Each player gets an avatar at a random spot (input ``dx``, ``dy`` in [-1, 1] moves it
at 200 units/s) and sees, through :class:`gameserver.interest.Interest`, the grid cells its
2,000 x 2,000 view overlaps (about 1/25 of the field) plus the global *beacon* entity in the
middle of the field. Spectators (HELLO ``"spectate": true``) fly a free camera. Used by the
tests and ``benchmarks/bench_interest.py``; everything per entity is vectorized.

Room config (all optional)::

    {"entities": 10000, "moving": 0.1, "speed": 30.0, "seed_spread": true,
     "view": [1000, 1000]}

Entity fields: ``x``, ``y`` (0.1 units), ``kind`` (0 avatar, 1 critter, 2 beacon),
``glob`` (1 for the beacon: visible to everyone), ``owner`` (player id of an avatar).
Subclasses ``WorldFull`` (no interest management: everyone gets everything) and
``WorldNaive`` (each client's view encoded separately) are the benchmark's baselines.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import numpy as np

from gameserver.interest import Interest
from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player

__all__ = ["SIZE", "World", "WorldFull", "WorldNaive"]

SIZE: Final = 10_000.0
AVATAR: Final = 0
CRITTER: Final = 1
BEACON: Final = 2
AVATAR_SPEED: Final = 200.0

INTEREST: Final = Interest(cell=1000.0, bounds=(0.0, 0.0, SIZE, SIZE), view=(2000.0, 2000.0),
                           max_view=(4000.0, 4000.0), everyone="glob")


class World(Game):
    """The large world with interest management (see the module docstring)."""

    name = "world"
    fields = {
        "x": F.float32(quant=0.1, lo=0.0, hi=SIZE),
        "y": F.float32(quant=0.1, lo=0.0, hi=SIZE),
        "kind": F.uint8(),
        "glob": F.uint8(),
        "owner": F.player(),
    }
    inputs = InputSchema({"dx": I.float32(-1, 1), "dy": I.float32(-1, 1)})
    max_players = 1000
    max_spectators = 64
    tick_rate = 30
    send_rate = 30
    capacity = 16384
    interest: ClassVar[Interest | None] = INTEREST

    def on_create(self, config: dict[str, Any]) -> None:
        n = int(config.get("entities", 10_000))
        moving = float(config.get("moving", 0.1))
        self.speed = float(config.get("speed", 30.0))
        rng = self.rng
        ids = self.world.spawn(n, x=rng.uniform(0, SIZE, n).astype(np.float32),
                               y=rng.uniform(0, SIZE, n).astype(np.float32), kind=CRITTER)
        self.movers = np.sort(ids[rng.random(n) < moving])
        ang = rng.uniform(0, 2 * np.pi, self.movers.shape[0])
        self.vel = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
        self.beacon = int(self.world.spawn(1, x=SIZE / 2, y=SIZE / 2, kind=BEACON, glob=1)[0])
        # every player's view (width, height), when the room config sets one ("view"):
        # None keeps Interest.view (2,000 x 2,000); clamped to Interest.max_view
        view = config.get("view")
        self.view = None if view is None else (float(view[0]), float(view[1]))
        self.avatars: dict[int, int] = {}        # player id -> entity
        self.held: dict[int, tuple[float, float]] = {}

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        x, y = self.rng.uniform(0, SIZE, 2)
        player.entity = int(self.world.spawn(1, x=x, y=y, kind=AVATAR, owner=player.id)[0])
        self.avatars[player.id] = player.entity
        if self.view is not None:
            player.view = self.view

    def on_leave(self, player: Player, reason: str) -> None:
        super().on_leave(player, reason)
        self.avatars.pop(player.id, None)
        self.held.pop(player.id, None)

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w = self.world
        if len(inputs):
            last = inputs.latest()
            for pid, dx, dy in zip(last.player.tolist(), last["dx"].tolist(),
                                   last["dy"].tolist(), strict=True):
                self.held[pid] = (dx, dy)  # per player (not per entity): the few inputs
        if self.held:
            pids = [p for p in self.held if p in self.avatars]
            ents = np.array([self.avatars[p] for p in pids], np.uint32)
            d = np.array([self.held[p] for p in pids], np.float32).reshape(-1, 2)
            sl = w.slots_of(ents)
            ok = sl >= 0
            sl, d = sl[ok], d[ok]
            w["x"][sl] = np.clip(w["x"][sl] + d[:, 0] * AVATAR_SPEED * dt, 0, SIZE)
            w["y"][sl] = np.clip(w["y"][sl] + d[:, 1] * AVATAR_SPEED * dt, 0, SIZE)
        if self.movers.shape[0]:
            sl = w.slots_of(self.movers)
            # a little random turning, then a step; bounce off the edges
            turn = np.asarray(self.rng.normal(0, 0.2, self.movers.shape[0]), np.float32)
            c, s = np.cos(turn), np.sin(turn)
            vx, vy = self.vel[:, 0].copy(), self.vel[:, 1].copy()
            self.vel[:, 0] = vx * c - vy * s
            self.vel[:, 1] = vx * s + vy * c
            step = self.speed * dt
            nx = w["x"][sl] + self.vel[:, 0] * step
            ny = w["y"][sl] + self.vel[:, 1] * step
            out_x = (nx < 0) | (nx > SIZE)
            out_y = (ny < 0) | (ny > SIZE)
            self.vel[out_x, 0] *= -1
            self.vel[out_y, 1] *= -1
            w["x"][sl] = np.clip(nx, 0, SIZE)
            w["y"][sl] = np.clip(ny, 0, SIZE)


class WorldFull(World):
    """Baseline (a): the same world without interest management."""

    name = "world-full"
    interest = None


class WorldNaive(World):
    """Baseline (b): interest management, but every client's view encoded separately."""

    name = "world-naive"
    interest = Interest(cell=INTEREST.cell, bounds=INTEREST.bounds, view=INTEREST.view,
                        max_view=INTEREST.max_view, everyone="glob", naive=True)
