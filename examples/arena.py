"""Arena: the example game, written only against the public rules API.

Players run around a square arena (input ``dx``, ``dy`` in [-1, 1], ``boost`` button). The
arena is full of *critters* that wander, some of them moving at any time, others resting;
moving critters flee from nearby players, and a player who touches a critter long enough
catches it (+5 points; a new critter appears elsewhere). *Orbs* lie around: touching one
collects it (+1 point; a new orb appears). A few *hunters* chase the nearest player and
drain its hp on contact; at 0 hp the player gets a ``"died"`` event, loses half its score
and respawns. Scores live in the ``score`` field of each player's entity and a
``"scoreboard"`` event goes to everyone every two seconds when it changed.

Attack (lag compensated): an input with ``fire`` true and the aim point ``ax``, ``ay`` (world
units: what is under the player's crosshair) zaps the critter or hunter nearest to that point
within ``ZAP_RADIUS``, judged against the world *as the player saw it*: the tick of the
input's ``rt`` (``inputs.render_tick``), through ``self.world.history.hits``. A zapped critter
loses ``ZAP_DAMAGE`` hp (at 0 it is caught: +5 points); a zapped hunter is driven off (it
reappears elsewhere). One zap per player every ``ZAP_COOLDOWN`` seconds, aimed at most
``ZAP_RANGE`` from the player. ``fire``, ``ax`` and ``ay`` are optional (default: no zap), so
clients that only move keep working. A ``"zaps"`` event tells everyone ``[[player id, ax, ay,
hit entity id or 0], ...]`` (one event per tick with zaps).

Everything per entity is vectorized with numpy; the only Python loops run over the few
players (events, scoreboard), never over entities.

Room config (all optional)::

    {"critters": 300,   # number of critters
     "moving": 0.3,     # fraction of critters moving at any time (0..1), the rest rest
     "orbs": 40,        # number of orbs
     "hunters": 3,      # number of hunters
     "size": 100.0}     # arena side, world units (0 < size <= 600); positions in [0, size]

Entity fields (what clients render): ``x``, ``y`` (position, 0.01 units), ``angle``
(heading, radians, 0.05 steps), ``kind`` (0 player, 1 critter, 2 orb, 3 hunter), ``state``
(0 resting, 1 moving, 2 fleeing / chasing, 3 boosting player), ``hp`` (0..100), ``owner``
(player id of a player entity, else 0), ``score`` (player entities).

Events: ``"arena"`` to a joining player ``{"size": float, "kinds": {name: code}}``;
``"joined"`` / ``"left"`` to everyone ``{"player": id, "name": str}``; ``"pickup"`` to the
collecting player ``{"what": "orb" | "critter", "points": int, "score": int}``; ``"died"``
to the victim ``{"score": int}``; ``"scoreboard"`` to everyone: ``[[player id, name,
score], ...]`` best first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player, Reject

__all__ = ["CRITTER", "HUNTER", "ORB", "PLAYER", "Arena"]

PLAYER: Final = 0
CRITTER: Final = 1
ORB: Final = 2
HUNTER: Final = 3
KINDS: Final = {"player": PLAYER, "critter": CRITTER, "orb": ORB, "hunter": HUNTER}

RESTING: Final = 0
MOVING: Final = 1
RUSHING: Final = 2  # a critter fleeing or a hunter chasing
BOOSTING: Final = 3

MAX_SIZE: Final = 600.0
PLAYER_SPEED: Final = 12.0  # units per second; boost multiplies it
BOOST: Final = 1.8
CRITTER_SPEED: Final = 4.0
FLEE_SPEED: Final = 9.0
HUNTER_SPEED: Final = 8.0
TURN_SIGMA: Final = 2.0  # wander: heading random walk, radians per sqrt(second)
SENSE: Final = 10.0  # critters notice players, hunters spot them, within this distance
TOUCH: Final = 1.5  # contact distance (catch a critter, collect an orb, get bitten)
CATCH_DAMAGE: Final = 10  # critter hp lost per tick of contact
BITE_DAMAGE: Final = 1  # player hp lost per tick of contact with a hunter
SWAP_FRACTION: Final = 0.01  # of moving critters stop (as many resting start) per tick
ZAP_RADIUS: Final = 1.0  # a zap hits an entity within this distance of the aim point
ZAP_RANGE: Final = 40.0  # aim at most this far from the player
ZAP_DAMAGE: Final = 50  # critter hp lost per zap (two zaps catch a fresh critter)
ZAP_COOLDOWN: Final = 0.25  # seconds between two zaps of one player

F32 = npt.NDArray[np.float32]
IDX = npt.NDArray[np.intp]


def _cfg_int(config: Mapping[str, Any], key: str, default: int, hi: int) -> int:
    v = config.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
        raise ValueError(f"arena config {key!r} must be an int in 0..{hi}, got {v!r}")
    return v


def _cfg_float(config: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    v = config.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise ValueError(f"arena config {key!r} must be a number in {lo}..{hi}, got {v!r}")
    return float(v)


class Arena(Game):
    """The example arena game (see the module docstring)."""

    name = "arena"
    fields = {
        "x": F.float32(quant=0.01, lo=0, hi=MAX_SIZE),
        "y": F.float32(quant=0.01, lo=0, hi=MAX_SIZE),
        "angle": F.float32(quant=0.05, lo=-3.15, hi=3.15),
        "kind": F.uint8(),
        "state": F.uint8(),
        "hp": F.uint8(default=100),
        "owner": F.player(),
        "score": F.uint16(),
    }
    inputs = InputSchema({
        "dx": I.float32(-1, 1), "dy": I.float32(-1, 1), "boost": I.bool_(),
        # the attack: optional, so movement-only clients need not send them
        "fire": I.bool_(default=False),
        "ax": I.float32(0, MAX_SIZE, default=0.0), "ay": I.float32(0, MAX_SIZE, default=0.0),
    })
    max_players = 32
    tick_rate = 30
    send_rate = 15
    capacity = 1024

    # -- lifecycle -------------------------------------------------------------------------

    def on_create(self, config: dict[str, Any]) -> None:
        self.size = _cfg_float(config, "size", 100.0, 1.0, MAX_SIZE)
        self.n_critters = _cfg_int(config, "critters", 300, 1_000_000)
        self.moving = _cfg_float(config, "moving", 0.3, 0.0, 1.0)
        self.n_orbs = _cfg_int(config, "orbs", 40, 100_000)
        self.n_hunters = _cfg_int(config, "hunters", 3, 10_000)
        # Per-player held input, rows aligned with the sorted player ids in self._pids.
        self._pids = np.zeros(0, np.uint32)
        self._pents = np.zeros(0, np.uint32)
        self._held = np.zeros((0, 3), np.float32)  # dx, dy, boost (0/1)
        self._ready = np.zeros(0, np.int64)  # per player: first tick it may zap again
        self._scores_dirty = False
        n_moving = round(self.n_critters * self.moving)
        state = np.zeros(self.n_critters, np.uint8)
        state[self.rng.permutation(self.n_critters)[:n_moving]] = MOVING
        self._spawn(CRITTER, self.n_critters, state=state)
        self._spawn(ORB, self.n_orbs)
        self._spawn(HUNTER, self.n_hunters, state=MOVING)

    def _spawn(self, kind: int, n: int, **values: Any) -> npt.NDArray[np.uint32]:
        """Spawn ``n`` entities of ``kind`` at random positions and headings."""
        rng = self.rng
        pos = rng.uniform(0.0, self.size, (2, n)).astype(np.float32)
        angle = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
        ids: npt.NDArray[np.uint32] = self.world.spawn(
            n, x=pos[0], y=pos[1], angle=angle, kind=kind, **values
        )
        return ids

    def on_join(self, player: Player, hello: Mapping[str, Any]) -> None:
        if player.name and any(
            p.name == player.name for p in self.players.values() if p is not player
        ):
            raise Reject(f"the name {player.name!r} is already taken in this arena")
        player.entity = int(self._spawn(PLAYER, 1, owner=player.id, state=RESTING)[0])
        i = int(np.searchsorted(self._pids, player.id))
        self._pids = np.insert(self._pids, i, player.id)
        self._pents = np.insert(self._pents, i, player.entity)
        self._held = np.insert(self._held, i, 0.0, axis=0)
        self._ready = np.insert(self._ready, i, 0)
        self.send("arena", {"size": self.size, "kinds": KINDS}, to=player)
        self.send("joined", {"player": player.id, "name": player.name})
        self._scores_dirty = True

    def on_leave(self, player: Player, reason: str) -> None:
        super().on_leave(player, reason)  # despawns the avatar
        keep = self._pids != player.id
        self._pids, self._pents, self._held = self._pids[keep], self._pents[keep], self._held[keep]
        self._ready = self._ready[keep]
        self.send("left", {"player": player.id, "name": player.name})
        self._scores_dirty = True

    # -- the tick --------------------------------------------------------------------------

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        self._apply_inputs(inputs)
        w = self.world
        slots = w.alive_slots()
        kind = w["kind"][slots]
        psl = w.slots_of(self._pents)  # avatars spawned this tick resolve too
        pvalid = psl >= 0
        psl = psl[pvalid]
        self._move_players(psl, self._held[pvalid], dt)
        px, py = w["x"][psl], w["y"][psl]
        self._critters(slots[kind == CRITTER], px, py, psl, dt)
        self._hunters(slots[kind == HUNTER], px, py, psl, dt)
        self._orbs(slots[kind == ORB], px, py, psl)
        self._zaps(inputs, tick)
        if self._scores_dirty and tick % max(1, round(2.0 / dt)) == 0:  # every ~2 seconds
            self._scoreboard()

    def _apply_inputs(self, inputs: InputBatch) -> None:
        """Latest dx/dy per player are held until the next input; a boost press is not lost."""
        if not len(inputs) or not len(self._pids):
            return
        last = inputs.latest()  # sorted by player id, like inputs.any()
        i = np.searchsorted(self._pids, last.player)
        i = np.minimum(i, len(self._pids) - 1)
        ok = self._pids[i] == last.player
        i = i[ok]
        self._held[i, 0] = last["dx"][ok]
        self._held[i, 1] = last["dy"][ok]
        self._held[i, 2] = inputs.any("boost")[ok]

    def _move_players(self, psl: IDX, held: F32, dt: float) -> None:
        w = self.world
        d = held[:, :2]
        norm = np.hypot(d[:, 0], d[:, 1])
        scale = np.where(norm > 1.0, 1.0 / np.maximum(norm, 1e-9), 1.0)  # no faster diagonally
        speed = PLAYER_SPEED * (1.0 + (BOOST - 1.0) * held[:, 2]) * scale * dt
        w["x"][psl] = np.clip(w["x"][psl] + d[:, 0] * speed, 0.0, self.size)
        w["y"][psl] = np.clip(w["y"][psl] + d[:, 1] * speed, 0.0, self.size)
        moving = norm > 0.0
        w["angle"][psl[moving]] = np.arctan2(d[moving, 1], d[moving, 0])
        w["state"][psl] = np.where(held[:, 2] > 0, BOOSTING, np.where(moving, MOVING, RESTING))

    def _near(self, ex: F32, ey: F32, px: F32, py: F32, radius: float) -> tuple[IDX, IDX, F32]:
        """Entities within ``radius`` of some player: (entity rows, nearest player row, dist).

        A coarse grid of cells ``radius`` wide marks the cells next to players, so only the
        few entities in marked cells get an exact entities x players distance matrix.
        """
        empty = np.zeros(0, np.intp)
        if len(px) == 0 or len(ex) == 0:
            return empty, empty, np.zeros(0, np.float32)
        n = int(self.size / radius) + 3
        grid = np.zeros((n, n), np.bool_)
        pcx = (px / radius).astype(np.intp) + 1
        pcy = (py / radius).astype(np.intp) + 1
        for ox in (-1, 0, 1):  # 9 vectorized writes (over players), not a loop over entities
            for oy in (-1, 0, 1):
                grid[pcx + ox, pcy + oy] = True
        # Positions are kept inside [0, size], so cells are in range; minimum() guards rounding.
        ecx = np.minimum((ex * (1.0 / radius)).astype(np.intp) + 1, n - 1)
        ecy = np.minimum((ey * (1.0 / radius)).astype(np.intp) + 1, n - 1)
        rows = np.flatnonzero(grid[ecx, ecy])
        if len(rows) == 0:
            return empty, empty, np.zeros(0, np.float32)
        ddx = ex[rows, None] - px[None, :]
        ddy = ey[rows, None] - py[None, :]
        d2 = ddx * ddx + ddy * ddy
        j = np.argmin(d2, axis=1)
        dist = np.sqrt(d2[np.arange(len(rows)), j])
        close = dist <= radius
        return rows[close], j[close].astype(np.intp), dist[close].astype(np.float32)

    def _walk(self, sl: IDX, speed: F32 | float, dt: float) -> None:
        """Move entities ``sl`` along their heading, bouncing off the walls."""
        w = self.world
        ang = w["angle"][sl]
        x = w["x"][sl] + np.cos(ang) * speed * dt
        y = w["y"][sl] + np.sin(ang) * speed * dt
        size = self.size
        hit_x = (x < 0) | (x > size)
        hit_y = (y < 0) | (y > size)
        ang = np.where(hit_x, np.pi - ang, ang)
        ang = np.where(hit_y, -ang, ang)
        w["angle"][sl] = (ang + np.pi) % (2 * np.pi) - np.pi
        w["x"][sl] = np.minimum(np.maximum(x, 0.0), size)
        w["y"][sl] = np.minimum(np.maximum(y, 0.0), size)

    def _critters(self, cs: IDX, px: F32, py: F32, psl: IDX, dt: float) -> None:
        w = self.world
        rng = self.rng
        resting = w["state"][cs] == RESTING
        # Keep the moving fraction: a few moving critters stop, as many resting ones start.
        mov = np.flatnonzero(~resting)
        rest = np.flatnonzero(resting)
        k = min(len(mov), len(rest), max(1, round(len(mov) * SWAP_FRACTION)))
        if k:
            stop = np.unique(rng.integers(0, len(mov), k))
            start = np.unique(rng.integers(0, len(rest), k))
            m = min(len(stop), len(start))
            resting[mov[stop[:m]]] = True
            resting[rest[start[:m]]] = False
            w["state"][cs[mov[stop[:m]]]] = RESTING
        # Moving critters wander: their heading does a random walk.
        movers = cs[~resting]
        noise = rng.normal(0.0, TURN_SIGMA * np.sqrt(dt), len(movers)).astype(np.float32)
        w["angle"][movers] += noise
        w["state"][movers] = MOVING
        # Near a player (any critter, the grid keeps this cheap): moving ones flee straight
        # away from the nearest player; contact drains hp (below).
        ex, ey = w["x"][cs], w["y"][cs]
        rows, j, dist = self._near(ex, ey, px, py, SENSE)
        awake = ~resting[rows]
        fr, fj = rows[awake], j[awake]
        fleeing = cs[fr]
        w["angle"][fleeing] = np.arctan2(ey[fr] - py[fj], ex[fr] - px[fj])
        w["state"][fleeing] = RUSHING
        speed = np.where(w["state"][movers] == RUSHING, FLEE_SPEED, CRITTER_SPEED).astype(
            np.float32
        )
        self._walk(movers, speed, dt)
        # Catch: contact drains a critter's hp; at 0 the nearest player scores it.
        touch = dist <= TOUCH
        if touch.any():
            victims = cs[rows[touch]]
            hp = w["hp"][victims].astype(np.int16) - CATCH_DAMAGE
            w["hp"][victims] = np.maximum(hp, 0)
            dead = hp <= 0
            if dead.any():
                self._score(psl[j[touch][dead]], 5, "critter")
                w.despawn(w.id_of(victims[dead]))
                n = int(dead.sum())
                st = np.where(rng.random(n) < self.moving, MOVING, RESTING).astype(np.uint8)
                self._spawn(CRITTER, n, state=st)

    def _hunters(self, hs: IDX, px: F32, py: F32, psl: IDX, dt: float) -> None:
        if len(hs) == 0:
            return
        w = self.world
        ex, ey = w["x"][hs], w["y"][hs]
        ang = w["angle"][hs] + self.rng.normal(0.0, TURN_SIGMA * np.sqrt(dt), len(hs)).astype(
            np.float32
        )
        rows, j, dist = self._near(ex, ey, px, py, SENSE)
        ang[rows] = np.arctan2(py[j] - ey[rows], px[j] - ex[rows])
        w["angle"][hs] = ang
        state = np.full(len(hs), MOVING, np.uint8)
        state[rows] = RUSHING
        w["state"][hs] = state
        self._walk(hs, HUNTER_SPEED, dt)
        bites = j[dist <= TOUCH]  # player row per biting hunter
        if len(bites):
            # bincount: a player bitten by two hunters loses hp twice.
            loss = np.bincount(bites, minlength=len(psl)) * BITE_DAMAGE
            hp = np.maximum(w["hp"][psl].astype(np.int32) - loss, 0)
            w["hp"][psl] = hp
            self._deaths(psl[hp == 0])

    def _deaths(self, dead: IDX) -> None:
        if len(dead) == 0:
            return
        w = self.world
        for slot, owner in zip(dead.tolist(), w["owner"][dead].tolist()):  # players only
            score = int(w["score"][slot]) // 2
            self.send("died", {"score": score}, to=owner)
        w["score"][dead] //= 2
        w["hp"][dead] = 100
        w["x"][dead] = self.rng.uniform(0.0, self.size, len(dead)).astype(np.float32)
        w["y"][dead] = self.rng.uniform(0.0, self.size, len(dead)).astype(np.float32)
        self._scores_dirty = True

    def _orbs(self, os_: IDX, px: F32, py: F32, psl: IDX) -> None:
        w = self.world
        rows, j, _ = self._near(w["x"][os_], w["y"][os_], px, py, TOUCH)
        if len(rows) == 0:
            return
        self._score(psl[j], 1, "orb")
        w.despawn(w.id_of(os_[rows]))
        self._spawn(ORB, len(rows))

    def _zaps(self, inputs: InputBatch, tick: int) -> None:
        """Lag-compensated hitscan: each firing player's last ``fire`` input this tick zaps
        the critter or hunter nearest its aim point *at the tick the player was seeing*."""
        w = self.world
        if not len(inputs) or w.history is None or not inputs["fire"].any():
            return
        fired = inputs.take(inputs["fire"])
        shots = fired.latest()  # one shot per player per tick, sorted by player id
        i = np.minimum(np.searchsorted(self._pids, shots.player), len(self._pids) - 1)
        ok = (self._pids[i] == shots.player) & (self._ready[i] <= tick)
        psl = w.slots_of(self._pents[i])
        ok &= psl >= 0
        aim = np.stack([shots["ax"], shots["ay"]], axis=1).astype(np.float32)
        reach = np.hypot(aim[:, 0] - w["x"][np.maximum(psl, 0)],
                         aim[:, 1] - w["y"][np.maximum(psl, 0)])
        ok &= reach <= ZAP_RANGE
        if not ok.any():
            return
        i, aim, rt = i[ok], aim[ok], shots.render_tick[ok]
        self._ready[i] = tick + max(1, round(ZAP_COOLDOWN / self.dt))
        hits = w.history.hits(
            aim, rt, ZAP_RADIUS, exclude=self._pents[i],
            where=lambda past: (past["kind"] == CRITTER) | (past["kind"] == HUNTER),
        )
        victim = hits.nearest(len(i))
        vsl = w.slots_of(victim)  # -1 for a miss, or a victim gone since the shooter saw it
        live = vsl >= 0
        live[live] &= w["hp"][vsl[live]] > 0  # not already caught this tick
        vk = w["kind"][np.maximum(vsl, 0)]
        crit = live & (vk == CRITTER)
        if crit.any():
            c = vsl[crit]
            hp = w["hp"][c].astype(np.int16) - ZAP_DAMAGE
            w["hp"][c] = np.maximum(hp, 0)
            dead = hp <= 0
            if dead.any():
                shooters = w.slots_of(self._pents[i[crit][dead]])
                self._score(shooters, 5, "critter")
                w.despawn(w.id_of(c[dead]))
                n = int(dead.sum())
                st = np.where(self.rng.random(n) < self.moving, MOVING, RESTING).astype(np.uint8)
                self._spawn(CRITTER, n, state=st)
        hunt = live & (vk == HUNTER)
        if hunt.any():  # driven off: the hunter reappears elsewhere
            h = vsl[hunt]
            w["x"][h] = self.rng.uniform(0.0, self.size, len(h)).astype(np.float32)
            w["y"][h] = self.rng.uniform(0.0, self.size, len(h)).astype(np.float32)
        hit_ids = np.where(live, victim, 0)
        self.send("zaps", [
            [pid, round(ax, 2), round(ay, 2), hid]  # a loop over the firing players only
            for pid, ax, ay, hid in zip(self._pids[i].tolist(), aim[:, 0].tolist(),
                                        aim[:, 1].tolist(), hit_ids.tolist())
        ])

    def _score(self, psl: IDX, points: int, what: str) -> None:
        """Add ``points`` for each scoring player slot in ``psl`` and tell each scorer."""
        w = self.world
        uniq, inverse = np.unique(psl, return_inverse=True)
        gained = np.bincount(inverse.reshape(-1), minlength=len(uniq)) * points
        score = np.minimum(w["score"][uniq].astype(np.int64) + gained, 65535)
        w["score"][uniq] = score
        owners = w["owner"][uniq].tolist()
        for owner, g, s in zip(owners, gained.tolist(), score.tolist()):  # per scoring player
            self.send("pickup", {"what": what, "points": g, "score": s}, to=owner)
        self._scores_dirty = True

    def _scoreboard(self) -> None:
        self._scores_dirty = False
        psl = self.world.slots_of(self._pents)
        ok = psl >= 0
        scores = self.world["score"][psl[ok]].tolist()
        names = {p.id: p.name for p in self.players.values()}
        board = sorted(
            ([pid, names.get(pid, ""), s] for pid, s in zip(self._pids[ok].tolist(), scores)),
            key=lambda r: (-r[2], r[0]),
        )
        self.send("scoreboard", board)
