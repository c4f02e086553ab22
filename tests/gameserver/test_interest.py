"""Interest management end to end: VIEW streams, enter / left view / despawn, spectators,
the per-client fallback, shared encodes, and a hostile client that must learn nothing
outside its view."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from gameserver.interest import Interest
from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player
from protocol import messages as M
from protocol.codes import CloseCode, ErrorCode
from protocol.delta import parse_delta
from protocol.replica import Replica
from protocol.view import ViewReplica

CELL, MARGIN, VIEW = 10.0, 5.0, 20.0
#: anything a client may ever see lies within its view plus one cell plus the margin
SLACK = VIEW / 2 + CELL + MARGIN
FAR = (85.0, 85.0)


class Field(Game):
    """100 x 100 units, 10-unit cells. Avatars at the position named ``p:x:y``; a still
    entity near (18, 18), one far away, a mortal one despawned at tick 40, a walker moving
    +1 unit per tick from (20, 20), a global one, and INPUT (dx, dy) teleports by 50x."""

    name = "field"
    fields = {"x": F.float32(quant=0.01, lo=0, hi=100), "y": F.float32(quant=0.01, lo=0, hi=100),
              "kind": F.uint8(), "glob": F.uint8()}
    inputs = InputSchema({"dx": I.float32(-1, 1), "dy": I.float32(-1, 1)})
    max_players = 32
    max_spectators = 2
    tick_rate = 30
    send_rate = 30
    interest = Interest(cell=CELL, bounds=(0, 0, 100, 100), view=(VIEW, VIEW),
                        max_view=(40.0, 40.0), margin=MARGIN, everyone="glob")

    def on_create(self, config: dict[str, Any]) -> None:
        w = self.world
        self.still = int(w.spawn(1, x=18.0, y=18.0, kind=1)[0])
        self.far = int(w.spawn(1, x=FAR[0], y=FAR[1], kind=1)[0])
        self.mortal = int(w.spawn(1, x=12.0, y=12.0, kind=2)[0])
        self.walker = int(w.spawn(1, x=20.0, y=20.0, kind=3)[0])
        self.beacon = int(w.spawn(1, x=95.0, y=5.0, kind=4, glob=1)[0])
        n = int(config.get("crowd", 0))
        if n:
            w.spawn(n, x=self.rng.uniform(0, 100, n), y=self.rng.uniform(0, 100, n), kind=5)

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        parts = (player.name or "p:50:50").split(":")
        x, y = float(parts[1]), float(parts[2])
        player.entity = int(self.world.spawn(1, x=x, y=y, kind=0)[0])

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w = self.world
        if self.config.get("jitter"):
            sl = w.alive_slots()
            crowd = sl[w["kind"][sl] == 5]
            for f in ("x", "y"):
                w[f][crowd] = np.clip(w[f][crowd] + self.rng.uniform(-0.5, 0.5, crowd.shape[0]),
                                      0, 100)
        if tick == 40:
            w.despawn(np.array([self.mortal], np.uint32))
        sl = w.slots_of(np.array([self.walker], np.uint32))
        if sl[0] >= 0:
            w["x"][sl] = np.minimum(w["x"][sl] + 1.0, 99.0)
        if len(inputs):
            last = inputs.latest()
            ents = np.array([self.players[p].entity for p in last.player.tolist()], np.uint32)
            s = w.slots_of(ents)
            w["x"][s] = np.clip(w["x"][s] + last["dx"] * 50, 0, 100)
            w["y"][s] = np.clip(w["y"][s] + last["dy"] * 50, 0, 100)


def _client_cls(kit: Any) -> Any:
    class ViewClient(kit.Client):  # type: ignore[misc,name-defined]
        """The kit's raw client, plus VIEW messages into a ViewReplica, recording
        everything (every piece decoded) for the assertions."""

        def _handle(self, msg: Any) -> None:
            if isinstance(msg, M.Welcome):
                self.welcome = msg
                self.replica = Replica(msg.schema)
                self.view = ViewReplica(msg.schema)
                self.entered: set[int] = set()
                self.left_view: set[int] = set()
                self.despawned: set[int] = set()
                self.resets = 0
                self.views = 0
                self.moves = 0
                self.same = 0
                self.raw_ids: set[int] = set()
                self.seen_positions: list[tuple[int, float, float]] = []
            elif isinstance(msg, M.View):
                v = self.view
                for piece in msg.raw[4:]:
                    if isinstance(piece[1], int | bytes):  # MOVES / SAME: no ids
                        if isinstance(piece[1], bytes) or len(piece) == 3:
                            self.same += 1
                        else:
                            self.moves += 1
                        continue
                    d = parse_delta(piece[1])  # every byte decoded, not only the union
                    self.raw_ids.update(d.despawned.tolist())
                    self.raw_ids.update(d.spawned_ids.tolist())
                if v.apply_unpacked(msg.raw):
                    self.resets += 1
                self.views += 1
                self.entered.update(v.entered.tolist())
                self.left_view.update(v.left_view.tolist())
                self.despawned.update(v.despawned.tolist())
                for rep in v.channels.values():
                    xs, ys = rep.values("x"), rep.values("y")
                    self.seen_positions.extend(zip(rep.ids.tolist(), xs.tolist(), ys.tolist(),
                                                   strict=True))
                self.deltas += 1
                self.delta_ticks.append(msg.tick)
            elif isinstance(msg, M.Delta):
                assert self.replica is not None
                self.replica.apply(msg)
                self.raw_ids.update(msg.despawned.tolist())
                self.raw_ids.update(msg.spawned_ids.tolist())
                r = self.replica
                self.seen_positions.extend(zip(r.ids.tolist(), r.values("x").tolist(),
                                               r.values("y").tolist(), strict=True))
                self.deltas += 1
                self.delta_ticks.append(msg.tick)
                if msg.base_tick is None:
                    self.full_snapshots += 1
            else:
                super()._handle(msg)

    return ViewClient


async def _join(h: Any, kit: Any, **hello: Any) -> Any:
    ws = await kit.connect(h.server.ws_url)
    c = _client_cls(kit)(ws)
    h.clients.append(c)
    c.start()
    hello.setdefault("game", "field")
    await c.hello(**hello)
    return c


def _room(h: Any) -> Any:
    (room,) = h.server.rooms.rooms.values()
    return room


def _games(kit: Any) -> dict[str, type[Game]]:
    return {"field": Field, **kit.GAMES}


def test_enter_left_view_and_despawn_are_distinct(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(games=_games(kit)) as h:
            c = await _join(h, kit, name="p:15:15", ext=("interest",))
            assert c.welcome.ext == ("interest",)
            assert c.welcome.view["grid"] == [10, 10]
            game = _room(h).sim.game
            await c.until(lambda: c.view.tick is not None and c.view.tick > 80, timeout=20)
            assert game.still in c.entered and game.walker in c.entered
            assert game.beacon in set(c.view.ids.tolist())   # global: seen from anywhere
            assert game.mortal in c.despawned and game.mortal not in c.left_view
            assert game.walker in c.left_view and game.walker not in c.despawned
            assert game.far not in c.raw_ids
            assert c.resets == 1  # only the first VIEW is a reset
            assert c.failure is None
    kit.run(main())


def _assert_within_view(c: Any, centre: tuple[float, float], allowed: set[int]) -> None:
    for eid, x, y in c.seen_positions:
        if eid in allowed:
            continue
        assert abs(x - centre[0]) <= SLACK and abs(y - centre[1]) <= SLACK, (eid, x, y)


@pytest.mark.parametrize("ext", [("interest",), ("interest", "interest/2"), ()],
                         ids=["view", "view2", "fallback"])
def test_hostile_client_learns_nothing_outside_its_view(kit: Any, ext: tuple[str, ...]) -> None:
    """Every message decoded, every piece parsed: no id of an entity that never came near
    the view, no position outside view + cell + margin (except the global beacon)."""
    async def main() -> None:
        async with kit.running(games=_games(kit), room_config={"crowd": 300}) as h:
            c = await _join(h, kit, name="p:30:30", ext=ext)
            room = _room(h)
            game = room.sim.game
            # every entity that may legitimately appear: near the view at some tick
            near: set[int] = set()
            for _ in range(60):
                snap = room.sim.world.snapshot()
                x, y = snap.columns["x"] * 0.01, snap.columns["y"] * 0.01
                ok = (np.abs(x - 30) <= SLACK) & (np.abs(y - 30) <= SLACK)
                near.update(snap.ids[ok].tolist())
                await asyncio.sleep(0.02)
            await c.until(lambda: c.deltas > 30, timeout=20)
            assert c.failure is None
            assert c.seen_positions, "the client saw nothing at all"
            _assert_within_view(c, (30.0, 30.0), {game.beacon})
            outside = c.raw_ids - near - {game.beacon}
            assert not outside, f"ids outside the view reached the client: {sorted(outside)}"
            assert game.far not in c.raw_ids
            if not ext:
                assert c.full_snapshots == 1 and c.views == 0  # plain DELTAs of its view
            else:
                assert (c.same > 0) == ("interest/2" in ext), c.same
    kit.run(main())


def test_spectators(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(games=_games(kit)) as h:
            p = await _join(h, kit, name="p:15:15", ext=("interest",))
            s = await _join(h, kit, name="watcher", spectate=True, ext=("interest",))
            assert s.welcome.spectator and s.welcome.entity is None
            room = _room(h)
            game = room.sim.game
            assert len(game.players) == 1 and room.info()["spectators"] == 1
            assert room.info()["players"] == 1
            # a spectator sends no inputs: ERROR 7 (a bad-message strike)
            await s.input(dx=1.0)
            await s.until(lambda: any(e.code == ErrorCode.SPECTATOR_INPUT for e in s.errors))
            # a player sends no CAMERA: ERROR 8
            await p.send(M.Camera(x=1, y=1))
            await p.until(lambda: any(e.code == ErrorCode.NOT_SPECTATING for e in p.errors))
            # the free camera moves the view: the far entity comes into view
            await s.send(M.Camera(x=FAR[0], y=FAR[1], w=10, h=10))
            await s.until(lambda: game.far in set(s.view.ids.tolist()), timeout=10)
            assert game.still not in set(s.view.ids.tolist())
            # an absurd camera is clamped to max_view (40 x 40 -> at most 6 x 6 cells)
            await s.send(M.Camera(x=1e12, y=-1e12, w=1e15, h=1e15))
            t0 = s.view.tick
            await s.until(lambda: s.view.tick > t0 + 5, timeout=10)
            assert len(s.view.channels) <= 6 * 6 + 1
            # following a player: its view is the player's
            await s.send(M.Camera(x=0, y=0, follow=p.welcome.player))
            await s.until(lambda: game.still in set(s.view.ids.tolist()), timeout=10)
            # max_spectators = 2: the third one is refused with 4025
            await _join(h, kit, name="w2", spectate=True)
            ws = await kit.connect(h.server.ws_url)
            x = _client_cls(kit)(ws)
            h.clients.append(x)
            x.start()
            await x.send(M.Hello(game="field", spectate=True))
            assert await x.closed() == CloseCode.SPECTATORS_FULL
            assert any(e.code == ErrorCode.SPECTATORS_FULL for e in x.errors)
            assert s.failure is None and p.failure is None
    kit.run(main())


def test_encodes_grow_with_channels_not_clients(kit: Any) -> None:
    """Call count: pieces encoded per tick are bounded by 2 x the visible channels and do
    not change when 12 more clients join at the same places; messages written do."""
    async def main() -> None:
        async with kit.running(games=_games(kit), room_config={"crowd": 400}) as h:
            spots = ["p:15:15", "p:55:25", "p:25:75", "p:80:80"]
            first = [await _join(h, kit, name=n, ext=("interest",)) for n in spots]
            room = _room(h)
            vs = room.view_stream
            await first[0].until(lambda: first[0].deltas > 20, timeout=20)

            async def sample() -> tuple[list[int], float]:
                counts, sent, t0 = [], room.metrics.messages_out.value, room.tick
                for _ in range(15):
                    t = room.tick
                    await first[0].until(lambda t=t: room.tick > t, timeout=5)
                    counts.append(vs.last_encodes)
                return counts, (room.metrics.messages_out.value - sent) / (room.tick - t0)

            few, msgs_few = await sample()
            more = [await _join(h, kit, name=n, ext=("interest",)) for n in spots * 3]
            await more[-1].until(lambda: more[-1].deltas > 10, timeout=20)
            many, msgs_many = await sample()
            channels = len({c for p in room.players.values() for c in (p.vchans or ())})
            assert max(few + many) <= 2 * channels + 2
            # the same channels are visible: the same work, give or take one tick's changes
            assert np.median(many) <= np.median(few) + 2, (few, many)
            assert msgs_many > 3 * msgs_few  # 4x the clients: 4x the messages written
            assert vs.legacy_encodes == 0
            for c in first + more:
                assert c.failure is None
    kit.run(main())


def test_resume_gets_a_reset_view(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(games=_games(kit)) as h:
            c = await _join(h, kit, name="p:15:15", ext=("interest",))
            await c.until(lambda: c.views > 5)
            token = c.welcome.resume
            await c.ws.close()
            await asyncio.sleep(0.2)
            ws = await kit.connect(h.server.ws_url)
            c2 = _client_cls(kit)(ws)
            h.clients.append(c2)
            c2.start()
            await c2.send(M.Resume(token=token))
            await c2.until(lambda: c2.welcome is not None and c2.views > 5, timeout=10)
            assert c2.resets == 1 and c2.welcome.ext == ("interest",)
            game = _room(h).sim.game
            assert game.still in set(c2.view.ids.tolist())
            assert c2.failure is None
    kit.run(main())


def test_interest2_and_interest_clients_share_a_room(kit: Any) -> None:
    """"interest/2" clients get SAME pieces, "interest" ones in the same room never do; both
    views equal the union of their channels; RESUME keeps "interest/2" (a reset, then SAME
    pieces again)."""
    async def main() -> None:
        async with kit.running(games=_games(kit),
                               room_config={"crowd": 300, "jitter": True}) as h:
            new = await _join(h, kit, name="p:30:30", ext=("interest", "interest/2"))
            old = await _join(h, kit, name="p:30:30", ext=("interest",))
            only2 = await _join(h, kit, name="p:60:60", ext=("interest/2",))
            assert new.welcome.ext == ("interest", "interest/2") == only2.welcome.ext
            assert old.welcome.ext == ("interest",)
            room = _room(h)
            await new.until(lambda: new.same > 20 and only2.same > 20, timeout=20)
            await old.until(lambda: old.moves > 20, timeout=20)
            assert old.same == 0

            def consistent(c: Any) -> bool:
                last = room.view_stream.last
                p = room.players[c.welcome.player]
                if c.view.tick != last.tick or p.vchans is None:
                    return False
                want = set()
                for ch in p.vchans:
                    want.update(last.rows(ch)[0].tolist())
                assert set(c.view.ids.tolist()) == want
                return True
            for c in (new, old, only2):
                await c.until(lambda c=c: consistent(c), timeout=20)
            token = new.welcome.resume
            await new.ws.close()
            await asyncio.sleep(0.2)
            ws = await kit.connect(h.server.ws_url)
            again = _client_cls(kit)(ws)
            h.clients.append(again)
            again.start()
            await again.send(M.Resume(token=token))
            await again.until(lambda: again.welcome is not None and again.same > 20,
                              timeout=20)
            assert again.resets == 1 and again.welcome.ext == ("interest", "interest/2")
            await again.until(lambda: consistent(again), timeout=20)
            for c in (old, only2, again):
                assert c.failure is None
    kit.run(main())


def test_python_client_and_spectator_sdk(kit: Any) -> None:
    """clients.GameClient negotiates the extension by default: its world is the view."""
    from clients import GameClient

    async def main() -> None:
        async with kit.running(games=_games(kit)) as h:
            game_ids: dict[str, int] = {}
            async with GameClient(h.server.ws_url, game="field", name="p:15:15") as c:
                game = _room(h).sim.game
                game_ids.update(still=game.still, far=game.far)
                assert c.world is not None and c.world.is_view
                assert c.welcome.ext == ("interest", "interest/2")  # SAME pieces too
                await asyncio.wait_for(_until_tick(c, 50), 20)
                ids = set(c.world.ids.tolist())
                assert game.still in ids and game.far not in ids and c.entity in ids
                assert c.world.entity(game.still) is not None
                async with GameClient(h.server.ws_url, game="field", spectate=True) as s:
                    assert s.welcome.spectator and s.entity is None
                    assert s.camera(FAR[0], FAR[1], 10, 10)
                    await asyncio.wait_for(
                        _until(lambda: game.far in set(s.world.ids.tolist())), 20)
            async with GameClient(h.server.ws_url, game="field", name="p:15:15",
                                  interest=False) as old:
                assert old.world is not None and not old.world.is_view
                await asyncio.wait_for(_until_tick(old, 5), 20)
                ids = set(old.world.ids.tolist())
                assert game_ids["still"] in ids and game_ids["far"] not in ids
    kit.run(main())


async def _until(pred: Any) -> None:
    while not pred():
        await asyncio.sleep(0.02)


async def _until_tick(c: Any, n: int) -> None:
    start = c.world.tick
    await _until(lambda: c.world.tick >= start + n)


def test_rules_md_interest_example_runs(kit: Any) -> None:
    """docs/RULES.md section 11: the Fog game and its client check, as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "RULES.md").read_text()
    blocks = re.findall(r"```python interest\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    ns: dict[str, Any] = {"__name__": "rules_md_interest"}
    exec(compile(blocks[0] + "\n" + blocks[1], "docs/RULES.md#11", "exec"), ns)

    async def main() -> None:
        async with kit.running(games={"fog": ns["Fog"]}) as h:
            async with asyncio.timeout(30):
                from clients import GameClient
                async with GameClient(h.server.ws_url, game="fog", name="warm"):
                    game = _room(h).sim.game
                await ns["check"](h.server.ws_url, game)
    kit.run(main())


def test_slow_client_gets_a_reset_view_after_being_skipped(kit: Any) -> None:
    """Backpressure per view: a client that stops reading is skipped; when it reads again
    its next VIEW is a reset (full pieces of its view), and its view then equals the union
    of the channels the server streams it."""
    async def main() -> None:
        async with kit.running(games=_games(kit), high_water=16 * 1024, send_buffer=8192,
                               slow_timeout=30,
                               room_config={"crowd": 4000, "jitter": True}) as h:
            ws = await kit.connect(h.server.ws_url, max_queue=2, read_limit=16384)
            slow = _client_cls(kit)(ws)
            h.clients.append(slow)
            slow.start()
            await slow.hello(game="field", name="p:50:50", ext=("interest",))
            await slow.until(lambda: slow.views > 3, timeout=20)
            room = _room(h)
            slow.reading.clear()
            skips = h.server.metrics.slow_skips
            while skips.value < 20:
                await asyncio.sleep(0.02)
            resets_before = slow.resets
            slow.reading.set()
            await slow.until(lambda: slow.resets > resets_before, timeout=20)
            assert slow.resets == resets_before + 1

            def consistent() -> bool:
                last = room.view_stream.last
                p = room.players[slow.welcome.player]
                if slow.view.tick != last.tick or p.vchans is None:
                    return False
                want = set()
                for c in p.vchans:
                    want.update(last.rows(c)[0].tolist())
                assert set(slow.view.ids.tolist()) == want
                return True
            await slow.until(consistent, timeout=20)
            assert slow.failure is None and not slow.ws.closed
    kit.run(main())


def test_spectator_inputs_strike_out(kit: Any) -> None:
    """ERROR 7 is a bad-message strike: a spectator that keeps sending inputs is closed
    with 4000 like any client repeating bad messages."""
    async def main() -> None:
        async with kit.running(games=_games(kit)) as h:
            s = await _join(h, kit, name="w", spectate=True)
            for _ in range(8):
                await s.input(dx=1.0)
            assert await s.closed() == CloseCode.PROTOCOL_MISUSE
            assert sum(e.code == ErrorCode.SPECTATOR_INPUT for e in s.errors) >= 4
    kit.run(main())


def test_example_world_streams_a_small_view(kit: Any) -> None:
    """examples/world.py: a client sees its avatar, the beacon and a small part of the field;
    a full-world client of WorldFull gets every entity."""
    from examples.world import World, WorldFull

    async def main() -> None:
        async with kit.running(games={"world": World, "world-full": WorldFull},
                               room_config={"entities": 3000}) as h:
            c = await _join(h, kit, game="world", name="a", ext=("interest",))
            f = await _join(h, kit, game="world-full", name="b", ext=("interest",))
            assert f.welcome.ext == ()  # no interest management there: plain DELTAs
            await c.until(lambda: c.views > 10, timeout=20)
            await f.until(lambda: f.deltas > 10, timeout=20)
            rooms = {r.game: r for r in h.server.rooms.rooms.values()}
            game = rooms["world"].sim.game
            seen = set(c.view.ids.tolist())
            assert c.welcome.entity in seen and game.beacon in seen
            assert len(seen) < 3000 * 0.25  # a 2,000-unit view of 10,000: ~9% with cells
            assert len(f.replica) == 3000 + 2  # critters, the beacon, its own avatar
            _assert_world_view(c, game)
    kit.run(main())


def _assert_world_view(c: Any, game: Any) -> None:
    """Every position the client ever held is within its view, whole cells and margin."""
    rep = c.view
    row = int(np.searchsorted(rep.ids, c.welcome.entity))
    ax, ay = rep.values("x")[row], rep.values("y")[row]
    reach = 1000 + 1000 + 500  # half the view, one cell, the margin
    for eid, x, y in c.seen_positions:
        if eid != game.beacon:
            assert abs(x - ax) <= reach and abs(y - ay) <= reach, (eid, x, y)


def test_example_world_view_config_sets_every_players_view() -> None:
    """examples/world.py room config ``view``: every player's view is that size (the
    benchmark's ``--view``): a 1,000-unit view covers at most 2 x 2 cells of 1,000 units
    (plus the global channel), the default 2,000-unit view up to 3 x 3; in-process, fake
    sockets, the steady VIEW frames shared per distinct rectangle."""
    import asyncio as aio

    from examples.world import World
    from gameserver.config import ServerConfig
    from gameserver.manager import RoomManager
    from gameserver.metrics import ServerMetrics

    class FakeSocket:
        open = True
        closed = False
        buffered_bytes = 0

        def __init__(self) -> None:
            self.frames: list[bytes] = []

        def write_prepared(self, frame: bytes) -> bool:
            self.frames.append(frame)
            return True

        def send_nowait(self, data: bytes) -> None:
            pass

    async def run(view: list[float] | None) -> tuple[list[int], list[list[bytes]]]:
        rc: dict[str, Any] = {"entities": 2000}
        if view is not None:
            rc["view"] = view
        cfg = ServerConfig(games={"w": World}, seed=5, room_config=rc).check()
        room = RoomManager(cfg, ServerMetrics()).create_room("w")
        assert room._timer is not None
        room._timer.cancel()
        socks = [FakeSocket() for _ in range(40)]
        players = [room.join(ws, {}, f"p{i}", interest=True)  # type: ignore[arg-type]
                   for i, ws in enumerate(socks)]
        for _ in range(5):
            room.sim.step()
            room._send()
        vs = room.view_stream
        assert vs is not None
        game = room.sim.game
        for p in players:
            assert game.players[p.player_id].view == (None if view is None else tuple(view))
        grid = [len([c for c in (p.vchans or ()) if c < vs.grid.ncells]) for p in players]
        return grid, [ws.frames for ws in socks]

    small, frames = aio.run(run([1000.0, 1000.0]))
    assert max(small) <= 4 and min(small) >= 1
    assert all(len(f) == 5 for f in frames)  # every tick written to every client
    default, _ = aio.run(run(None))
    assert max(default) <= 9 and sum(default) > sum(small)
