"""Room serialization for handover: round-trip fidelity, RNG continuity, players, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from gameserver.config import ServerConfig
from gameserver.handover import RestoreError, prepare_room, restore_room, serialize_room
from gameserver.handover.codec import BlobError, pack_blob, unpack_blob
from gameserver.manager import RoomManager
from gameserver.metrics import ServerMetrics
from gameserver.room import Room
from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player


class Churn(Game):
    """Random walk + spawn/despawn churn + an event per tick + numpy and scalar state."""

    name = "churn"
    fields = {"x": F.float32(quant=0.01, lo=-1000, hi=1000), "hp": F.uint8(),
              "owner": F.player()}
    inputs = InputSchema({"dx": I.float32(-1, 1)})
    max_players = 64
    tick_rate = 30
    send_rate = 15

    def on_create(self, config: dict[str, Any]) -> None:
        self.world.spawn(40, x=self.rng.uniform(-10, 10, 40).astype(np.float32), hp=100)
        self.counts = np.zeros(0, np.int64)
        self.seen = 0
        self.applied: dict[str, int] = {}
        self.label = ("a", 1)

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        player.entity = int(self.world.spawn(1, owner=player.id)[0])
        player.data["score"] = 0
        self.send("hi", player.id)

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w = self.world
        slots = w.alive_slots()
        w["x"][slots] += self.rng.normal(0, 1, slots.shape[0]).astype(np.float32)
        for pid, dx in zip(inputs.player.tolist(), inputs["dx"].tolist()):
            key = str(pid)
            self.applied[key] = self.applied.get(key, 0) + 1
            p = self.players.get(pid)
            if p is not None and p.entity is not None:
                s = w.slots_of([p.entity])
                w["x"][s] += dx
        if tick % 3 == 0:  # churn: kill a few random critters, spawn as many
            ids = w.ids
            kill = self.rng.choice(ids, size=min(3, ids.shape[0]), replace=False)
            owners = w["owner"][w.slots_of(kill)]
            w.despawn(kill[owners == 0])
            w.spawn(3, x=self.rng.uniform(-5, 5, 3).astype(np.float32), hp=50)
        self.seen += len(inputs)
        self.counts = np.append(self.counts, len(inputs))
        self.send("tick", {"n": tick})


def run(fn: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        async with asyncio.timeout(30):
            await fn()
    asyncio.run(main())


def manager(**kw: Any) -> RoomManager:
    cfg = ServerConfig(games={"churn": Churn}, seed=7, **kw)
    return RoomManager(cfg, ServerMetrics())


def step(room: Room, inputs: list[tuple[int, int, float]]) -> None:
    for pid, seq, dx in inputs:
        room.queue_input(room.players[pid], seq, {"dx": dx})
    res = room.sim.step()
    for pid, seq in res.acks.items():
        room.acks[pid] = (seq, res.tick)
    room._collect_events()


def world_equal(a: Room, b: Room) -> None:
    wa, wb = a.sim.world, b.sim.world
    assert wa.capacity == wb.capacity
    for name in wa.columns():
        assert np.array_equal(wa[name], wb[name]), name
    for k in ("_gen", "_alive", "_taken", "_dying"):
        assert np.array_equal(getattr(wa, k), getattr(wb, k)), k
    assert np.array_equal(wa._free[: wa._nfree], wb._free[: wb._nfree])
    sa, sb = wa.snapshot(), wb.snapshot()
    assert np.array_equal(sa.ids, sb.ids)


def test_codec_round_trip_and_garbage() -> None:
    big = 2**127 + 12345
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [big, -big, 1, (2, 3)],
           "c": np.int16(-3), "d": b"\x00\xff", "e": None}
    back = unpack_blob(pack_blob(obj))
    assert back["a"].dtype == np.float32 and back["a"].shape == (2, 3)
    assert np.array_equal(back["a"], obj["a"]) and back["a"].flags.writeable
    assert back["b"] == [big, -big, 1, [2, 3]]
    assert back["c"] == -3 and back["d"] == b"\x00\xff" and back["e"] is None
    with pytest.raises(BlobError):
        unpack_blob(b"\xc1\xc1garbage")
    with pytest.raises(TypeError):
        pack_blob({"x": object()})


def test_default_save_keeps_plain_attributes_only() -> None:
    g = Churn()
    g.counts = np.arange(3)
    g.label = ("a", 1)
    g.handle = open  # not plain: left out
    saved = g.save()
    assert set(saved) >= {"counts", "label"} and "handle" not in saved
    assert not {"world", "rng", "players", "tick", "_outbox"} & set(saved)
    h = Churn()
    h.load(unpack_blob(pack_blob(saved)))
    assert np.array_equal(h.counts, [0, 1, 2]) and h.label == ["a", 1]


def test_round_trip_is_bit_identical_and_continues_identically() -> None:
    async def main() -> None:
        ma = manager()
        ma.create_room("churn")._stop()
        a = ma.create_room("churn")  # churn-2
        a._timer.cancel()  # driven by hand: no wall clock in this test
        ws = None
        p1 = a.join(ws, {}, "ann")  # type: ignore[arg-type]
        p2 = a.join(ws, {}, "bob")  # type: ignore[arg-type]
        rng = np.random.default_rng(3)
        seq = {p1.player_id: 0, p2.player_id: 0}

        def inputs() -> list[tuple[int, int, float]]:
            out = []
            for pid in seq:
                for _ in range(int(rng.integers(0, 3))):
                    seq[pid] += 1
                    out.append((pid, seq[pid], float(rng.uniform(-1, 1))))
            return out

        for _ in range(20):
            step(a, inputs())
        # leave inputs queued, an event pending and a backlog: all must move
        pending = inputs()
        for pid, s, dx in pending:
            a.queue_input(a.players[pid], s, {"dx": dx})
        a.sim.game.send("pending", 1)
        p2.backlog.append(b"held-frame")
        p2.backlog_bytes += 10
        blob = serialize_room(a)

        mb = manager()
        mb.create_room("churn")  # the target node already has a room (churn-1)
        b = prepare_room(mb, blob)
        assert b.id == a.id and b.tick == a.tick == 20
        world_equal(a, b)
        assert b.sim.acks == a.sim.acks and b.sim.ack_ticks == a.sim.ack_ticks
        assert b.sim._last_seq == a.sim._last_seq and b.sim.queued == a.sim.queued > 0
        n = a.sim.queued
        # the history window came along: render ticks are kept as they were
        assert np.array_equal(b.sim._q_rt[:n], a.sim._q_rt[:n])
        assert b.sim.history is not None and a.sim.history is not None
        assert (b.sim.history.oldest, b.sim.history.newest) == (
            a.sim.history.oldest, a.sim.history.newest)
        assert np.array_equal(b.sim._q_seq[:n], a.sim._q_seq[:n])
        assert b.acks == a.acks
        assert a.sim.game.rng.bit_generator.state == b.sim.game.rng.bit_generator.state
        assert [(p.player_id, p.name, p.entity, p.resume_token, p.last_seq)
                for p in b.players.values()] == \
            [(p.player_id, p.name, p.entity, p.resume_token, p.last_seq)
             for p in a.players.values()]
        assert list(b.players[p2.player_id].backlog) == [b"held-frame"]
        assert b.sim.players[p1.player_id].data == {"score": 0}
        assert [e.kind for e in b.sim.game._outbox] == [e.kind for e in a.sim.game._outbox]
        assert [d for d, _ in b.events] == [d for d, _ in a.events]
        assert b.sim.game.seen == a.sim.game.seen
        assert all(p.ws is None for p in b.players.values())
        # both continue with the same inputs: identical states afterwards
        for _ in range(25):
            batch = inputs()
            step(a, batch)
            step(b, batch)
        assert a.tick == b.tick == 45
        world_equal(a, b)
        assert np.array_equal(a.sim.game.counts, b.sim.game.counts)
        assert a.sim.game.applied == b.sim.game.applied
        assert [d for d, _ in a.events] == [d for d, _ in b.events]
        assert a.sim.game.rng.random() == b.sim.game.rng.random()
        a._stop()

    run(main)


def test_restore_room_seats_players_in_grace_and_avoids_their_ids() -> None:
    async def main() -> None:
        ma = manager()
        a = ma.create_room("churn")
        players = [a.join(None, {}, f"p{i}") for i in range(5)]  # type: ignore[arg-type]
        for _ in range(3):
            step(a, [])
        a._stop()
        blob = serialize_room(a)
        mb = manager(resume_grace=5.0)
        b = restore_room(mb, blob)
        try:
            assert mb.rooms[a.id] is b and not b.closed and b._timer is not None
            for p in players:
                q = mb.resume(p.resume_token)  # the token index knows every player
                assert q.player_id == p.player_id and q.entity == p.entity
                assert q.grace is not None and q.ws is None
            # a new player on the target node never gets a restored id
            newcomer = b.join(None, {}, "new")  # type: ignore[arg-type]
            assert newcomer.player_id not in {p.player_id for p in players}
            assert len(set(b.sim.players)) == 6
            # restoring the same room twice on one node is refused
            with pytest.raises(RestoreError):
                restore_room(mb, blob)
            # ticking resumes at the next tick number
            before = b.tick
            await asyncio.sleep(0.3)
            assert b.tick > before == 3
        finally:
            b._stop()

    run(main)


def test_restore_refuses_garbage_unknown_game_and_schema_change() -> None:
    async def main() -> None:
        ma = manager()
        a = ma.create_room("churn")
        a._stop()
        blob = serialize_room(a)
        mb = manager()
        with pytest.raises(RestoreError):
            prepare_room(mb, b"garbage")
        with pytest.raises(RestoreError):
            prepare_room(mb, pack_blob({"v": 99}))

        class Other(Churn):
            name = "other"

        mo = RoomManager(ServerConfig(games={"other": Other}), ServerMetrics())
        with pytest.raises(RestoreError, match="not served"):
            prepare_room(mo, blob)

        class Changed(Churn):
            fields = {"x": F.float32(quant=0.01, lo=-1000, hi=1000), "hp": F.uint16(),
                      "owner": F.player()}

        mc = RoomManager(ServerConfig(games={"churn": Changed}), ServerMetrics())
        with pytest.raises(RestoreError, match=r"dtype|fields"):
            prepare_room(mc, blob)
        assert not mb.rooms and not mc.rooms

    run(main)


class Queued(Churn):
    """Non-plain state (a deque, a dict of sets): the game writes its own save / load."""

    name = "queued"

    def on_create(self, config: dict[str, Any]) -> None:
        super().on_create(config)
        from collections import deque
        self.queue: Any = deque([3, 1, 2])
        self.teams: dict[int, set[int]] = {1: {5, 6}, 2: set()}

    def save(self) -> Any:
        return {"queue": list(self.queue),
                "teams": {str(k): sorted(v) for k, v in self.teams.items()},
                "base": super().save()}

    def load(self, state: Any) -> None:
        from collections import deque
        super().load(state["base"])
        self.queue = deque(state["queue"])
        self.teams = {int(k): set(v) for k, v in state["teams"].items()}


def test_a_game_s_own_save_and_load_pair() -> None:
    async def main() -> None:
        cfg = ServerConfig(games={"queued": Queued}, seed=1)
        ma = RoomManager(cfg, ServerMetrics())
        a = ma.create_room("queued")
        a._stop()
        a.sim.game.queue.append(9)
        # the default save alone would leave these out (not plain values)
        assert "queue" not in Game.save(a.sim.game) and "teams" not in Game.save(a.sim.game)
        b = prepare_room(RoomManager(cfg, ServerMetrics()), serialize_room(a))
        g = b.sim.game
        assert list(g.queue) == [3, 1, 2, 9] and g.teams == {1: {5, 6}, 2: set()}
        assert g.seen == 0 and g.label == ["a", 1]  # the plain part came back too

    run(main)


def test_the_arena_moves_and_keeps_playing_with_lag_compensated_shots() -> None:
    """The example game (default save/load, world history, render-tick shots) restored
    mid-match continues identically while nobody shoots into the old history."""
    from examples.arena import Arena

    async def main() -> None:
        cfg = ServerConfig(games={"arena": Arena}, seed=4, room_config={"critters": 200})
        ma = RoomManager(cfg, ServerMetrics())
        a = ma.create_room("arena")
        a._timer.cancel()
        ps = [a.join(None, {}, f"p{i}") for i in range(3)]  # type: ignore[arg-type]
        seq = 0

        def feed(room: Room, fire: bool) -> None:
            for i, p in enumerate(ps):
                q = room.players[p.player_id]
                room.sim.queue_input(q.player_id, seq, {"dx": 0.3 * (i - 1), "dy": 0.5,
                                                          "boost": i == 0, "fire": fire,
                                                          "ax": 50.0, "ay": 50.0},
                                     render_tick=room.tick)

        for _ in range(40):
            seq += 1
            feed(a, fire=seq % 5 == 0)
            step(a, [])
        b = prepare_room(RoomManager(cfg, ServerMetrics()), serialize_room(a))
        world_equal(a, b)
        for _ in range(40):
            seq += 1
            for room in (a, b):
                feed(room, fire=seq % 5 == 0)
                step(room, [])
        world_equal(a, b)
        assert [d for d, _ in a.events] == [d for d, _ in b.events]
        a._stop()

    run(main)


def test_lag_compensation_history_crosses_the_handover() -> None:
    """A rewind to a render tick from before the move answers the same on the new node:
    every tick of the old window (``at``: ids, alive, columns; ``hits`` for many shots),
    queued render ticks unclamped; a blob without the history (previous build) still
    restores with the history starting over; a malformed one is refused."""
    async def main() -> None:
        ma = manager()
        a = ma.create_room("churn")
        a._timer.cancel()
        ps = [a.join(None, {}, f"p{i}") for i in range(2)]  # type: ignore[arg-type]
        for t in range(1, 50):
            step(a, [(ps[0].player_id, t, 0.5)])
        ha = a.sim.history
        assert ha is not None and ha.oldest > 0  # the ring wrapped
        old_rt = ha.oldest + 2
        a.sim.queue_input(ps[1].player_id, 1, {"dx": 0.1}, render_tick=old_rt)
        blob = serialize_room(a)
        b = prepare_room(manager(), blob)
        hb = b.sim.history
        assert hb is not None and (hb.oldest, hb.newest) == (ha.oldest, ha.newest)
        assert int(b.sim._q_rt[0]) == old_rt  # not clamped to the restored tick
        rng = np.random.default_rng(3)
        ticks = rng.integers(ha.oldest, ha.newest + 1, 64)
        pts = np.stack([rng.uniform(-12, 12, 64), np.zeros(64)], axis=1)
        for t in range(ha.oldest, ha.newest + 1):
            pa, pb = ha.at(t), hb.at(t)
            assert np.array_equal(pa.ids, pb.ids)
            for name in ("x", "hp", "owner"):
                assert np.array_equal(pa[name][pa.slots], pb[name][pb.slots]), (t, name)
        qa = ha.hits(pts[:, :1], ticks, 1.5, fields=("x",))
        qb = hb.hits(pts[:, :1], ticks, 1.5, fields=("x",))
        assert len(qa.shot) > 0
        for x, y in zip(qa, qb):
            assert np.array_equal(x, y)
        # both go on identically, the render tick from before the move included
        step(a, [])
        step(b, [])
        world_equal(a, b)
        assert np.array_equal(ha.at(old_rt).ids, hb.at(old_rt).ids)
        # a blob of the previous build (no "history"): restores, history starts at the tick
        st = unpack_blob(blob)
        del st["history"]
        c = prepare_room(manager(), pack_blob(st))
        assert c.sim.history is not None
        assert (c.sim.history.oldest, c.sim.history.newest) == (ha.newest - 1, ha.newest - 1)
        assert int(c.sim._q_rt[0]) == c.sim.history.oldest  # clamped into the new window
        # malformed history: refused with a clear error, not a traceback deep inside
        st = unpack_blob(blob)
        st["history"]["ticks"] = st["history"]["ticks"][::-1].copy()
        with pytest.raises(RestoreError, match="ticks"):
            prepare_room(manager(), pack_blob(st))
        st = unpack_blob(blob)
        st["history"]["cols"]["x"] = st["history"]["cols"]["x"].astype(np.float64)
        with pytest.raises(RestoreError, match="field 'x'"):
            prepare_room(manager(), pack_blob(st))
        a._stop()

    run(main)


def test_interest_players_and_spectators_keep_their_session_across_the_handover() -> None:
    """What HELLO negotiated (interest, interest/2) and the spectators' seats (camera,
    follow) cross the handover: without it an interest client would get DELTAs after its
    RESUME, and a spectator's RESUME would be refused."""
    from examples.world import World

    async def main() -> None:
        def mgr(**kw: Any) -> RoomManager:
            cfg = ServerConfig(games={"w": World}, seed=3, max_players=8,
                               room_config={"entities": 300}, **kw)
            return RoomManager(cfg, ServerMetrics())

        ma = mgr()
        a = ma.create_room("w")
        assert a.view_stream is not None
        plain = a.join(None, {}, "plain")  # type: ignore[arg-type]
        v1 = a.join(None, {}, "v1", interest=True)  # type: ignore[arg-type]
        v2 = a.join(None, {}, "v2", interest=True)  # type: ignore[arg-type]
        v2.vsame = True
        free = a.join_spectator(None, "cam", interest=True)  # type: ignore[arg-type]
        a.set_camera(free, 1234.5, 678.0, 1500.0, 900.0, None)
        fol = a.join_spectator(None, "fol", interest=True,  # type: ignore[arg-type]
                               follow=v1.player_id)
        fol.vsame = True
        step(a, [])
        a._stop()
        blob = serialize_room(a)
        mb = mgr(resume_grace=5.0)
        b = restore_room(mb, blob)
        try:
            got = {p.player_id: p for p in b.players.values()}
            assert set(got) == {p.player_id for p in (plain, v1, v2, free, fol)}
            assert b.spectators == 2
            for p in (plain, v1, v2, free, fol):
                q = mb.resume(p.resume_token)
                assert q is got[p.player_id] and q.grace is not None and q.ws is None
                assert (q.interest, q.vsame, q.spectator) == (p.interest, p.vsame, p.spectator)
                assert (q.camera, q.follow, q.entity) == (p.camera, p.follow, p.entity)
            assert not got[plain.player_id].interest and got[v2.player_id].vsame
            assert got[free.player_id].camera == (1234.5, 678.0, 1500.0, 900.0)
            assert got[fol.player_id].follow == v1.player_id
            # spectators still count against max_spectators, not max_players
            assert b.info()["players"] == 3
            # a blob of the previous build (no "spectators", no extension flags) restores
            st = unpack_blob(blob)
            del st["spectators"]
            for entry in st["players"]:
                del entry["interest"], entry["vsame"]
            st["room"] = "older"
            old = restore_room(mgr(), pack_blob(st))
            try:
                assert old.spectators == 0 and not any(p.interest for p in old.players.values())
            finally:
                old._stop()
            # a malformed spectator is refused with RestoreError, nothing installed
            st = unpack_blob(blob)
            st["spectators"][0]["token"] = 5
            st["room"] = "bad"
            mc = mgr()
            with pytest.raises(RestoreError):
                restore_room(mc, pack_blob(st))
            assert "bad" not in mc.rooms
        finally:
            b._stop()

    run(main)
