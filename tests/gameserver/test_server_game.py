"""End to end over real sockets: join, see others, inputs and acks, events, resume, join
refusals (auth, origin, full, unknown, version, reject), HELLO deadline, ws and wss."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from protocol import messages as M
from protocol.errors import HandshakeError


def test_join_see_others_inputs_acks_events(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            a = await h.join(name="ann")
            b = await h.join(name="bob")
            wa, wb = a.welcome, b.welcome
            assert wa.room == wb.room and wa.player != wb.player
            assert wa.tick_rate == 30 and wa.resume and wa.resume_grace == 15.0
            assert [f.name for f in wa.schema.fields] == ["x", "y", "owner"]
            assert [i["n"] for i in wa.inputs] == ["dx", "dy"]
            # Both see both avatars (first delta is a full snapshot).
            for c in (a, b):
                await c.until(lambda c=c: c.replica is not None and c.replica.tick is not None
                              and len(c.replica) == 2)
                assert c.full_snapshots == 1
            # ann moves right: bob's replica sees her avatar move; ann gets acks.
            for _ in range(10):
                await a.input(dx=1.0, dy=0.0)
            await a.until(lambda: bool(a.acks) and a.acks[-1].seq == 10)
            assert all(x.tick >= 1 for x in a.acks)
            await b.until(lambda: b.position(wa.entity)[0] > 3.0)
            x, y = b.position(wa.entity)
            assert x == pytest.approx(10 * kit.SPEED / 30, abs=0.05) and y == 0.0
            assert b.position(wb.entity) == (0.0, 0.0)
            # Steady state: deltas, not full snapshots; events arrive.
            await b.until(lambda: any(e.kind == "tick30" for e in b.events), timeout=3)
            assert b.full_snapshots == 1 and b.deltas > 5
            # PING -> PONG with the server tick.
            await a.send(M.Ping(12.5))
            await a.until(lambda: bool(a.pongs))
            assert a.pongs[0].t == 12.5 and a.pongs[0].st > 0
            # LEAVE: close 1000, on_leave runs, bob sees the avatar despawn.
            await a.send(M.Leave())
            assert await a.closed() == 1000
            assert (wa.player, "leave") in kit.Walker.left
            await b.until(lambda: len(b.replica) == 1)
    kit.run(main())


def test_resume_after_drop_and_replace(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            a = await h.join(name="ann")
            w = a.welcome
            await a.input(dx=1.0, dy=1.0)
            await a.until(lambda: bool(a.acks))
            # Drop without LEAVE (abort TCP): the player is kept for the grace period.
            a.ws._transport.abort()
            await a.closed()
            a2 = await h.connect()
            await a2.send(M.Resume(w.resume))
            w2 = await a2.wait_welcome()
            assert (w2.player, w2.entity, w2.room) == (w.player, w.entity, w.room)
            await a2.until(lambda: a2.replica.tick is not None)
            assert a2.full_snapshots == 1
            assert a2.position(w.entity)[0] > 0  # same entity, state kept
            assert not any(pid == w.player for pid, _ in kit.Walker.left)
            # Resuming while the old connection is open replaces it (old gets 4011).
            a3 = await h.connect()
            await a3.send(M.Resume(w.resume))
            assert (await a3.wait_welcome()).player == w.player
            assert await a2.closed() == 4011
            # Input seqs continue (the server ignores seqs it already accepted).
            a3.seq = 1
            await a3.input(dx=-1.0, dy=0.0)
            await a3.until(lambda: bool(a3.acks) and a3.acks[-1].seq == 2)
            # Bad token -> ERROR 4005 + close 4005.
            bad = await h.connect()
            await bad.send(M.Resume("nope"))
            assert await bad.closed() == 4005
            assert bad.errors[0].code == 4005
    kit.run(main())


def test_grace_expiry_runs_on_leave(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(resume_grace=0.3) as h:
            a = await h.join(name="ann")
            b = await h.join(name="bob")
            await b.until(lambda: b.replica.tick is not None and len(b.replica) == 2)
            pid = a.welcome.player
            await a.close()
            await b.until(lambda: len(b.replica) == 1, timeout=3)
            assert (pid, "timeout") in kit.Walker.left
            r = await h.connect()
            await r.send(M.Resume(a.welcome.resume))
            assert await r.closed() == 4005
    kit.run(main())


def test_join_refusals(kit: Any) -> None:
    async def auth(token: str | None) -> bool:
        return token == "letmein"

    async def main() -> None:
        async with kit.running(auth=auth, max_players=2) as h:
            async def refused(code: int, **hello: Any) -> None:
                c = await h.connect()
                await c.send(M.Hello(**hello))
                assert await c.closed() == code, hello
                assert c.errors and c.errors[0].code == code
            await refused(4001, game="walker", token="wrong")
            await refused(4001, game="walker")
            await refused(4003, game="nope", token="letmein")
            await refused(4003, room="walker-999", token="letmein")
            await refused(4004, v=2, game="walker", token="letmein")
            await refused(4006, game="walker", name="nobody", token="letmein")
            a = await h.join(name="a", token="letmein")
            await h.join(name="b", token="letmein")
            await refused(4002, room=a.welcome.room, token="letmein")
            # Matchmaking opens a second room when the first is full.
            c = await h.join(name="c", token="letmein")
            assert c.welcome.room != a.welcome.room
    kit.run(main())


def test_hello_deadline_and_origin(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(hello_timeout=0.3, origins=("https://good.example",)) as h:
            with pytest.raises(HandshakeError) as exc:
                await h.connect(origin="https://evil.example")
            assert exc.value.status == 403
            c = await h.connect(origin="https://good.example")
            assert await c.closed() == 4012
    kit.run(main())


def test_wss(kit: Any, tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def main() -> None:
        async with kit.running(ssl_pair=tls_pair) as h:
            assert h.server.ws_url.startswith("wss://")
            a = await h.join(name="ann")
            await a.input(dx=1.0, dy=0.0)
            await a.until(lambda: bool(a.acks) and a.replica.tick is not None)
            assert len(a.replica) == 1
    kit.run(main())


def test_empty_room_disposed_after_ttl(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(empty_room_ttl=0.3) as h:
            a = await h.join(name="ann")
            rooms = h.server.rooms
            assert [r["id"] for r in rooms.list_rooms()] == [a.welcome.room]
            await a.send(M.Leave())
            assert await a.closed() == 1000
            assert len(rooms.rooms) == 1  # not at once: the TTL has not elapsed
            for _ in range(100):
                if not rooms.rooms:
                    break
                await asyncio.sleep(0.02)
            assert rooms.rooms == {}
            assert h.server.metrics.rooms.value == 0
            # A new join creates a fresh room.
            b = await h.join(name="bob")
            assert b.welcome.room != a.welcome.room
    kit.run(main())


def test_stop_while_inputs_arrive(kit: Any) -> None:
    """Inputs still queued on sockets while the server stops are ignored: every client gets
    1001 (not 1011 from a handler error) and on_leave runs once per player."""
    async def main() -> None:
        async with kit.running() as h:
            clients = [await h.join(name=f"p{i}") for i in range(4)]

            async def spam(c: Any) -> None:
                try:
                    while not c.ws.closed:
                        await c.input(dx=0.1, dy=0.1)
                        await asyncio.sleep(0.03)
                except Exception:
                    pass
            tasks = [asyncio.ensure_future(spam(c)) for c in clients]
            await clients[0].until(lambda: len(clients[0].acks) >= 2)
            await h.server.stop()
            codes = [await c.closed() for c in clients]
            assert codes == [1001] * 4
            reasons = sorted(r for _, r in kit.Walker.left)
            assert reasons == ["shutdown"] * 4
            await asyncio.gather(*tasks)
    kit.run(main())
