"""GET /matchmake and seat reservations, on two nodes sharing Redis and on a single node:
valid (seated in the reserved room), forged, expired, reused, raced, the wrong node (4013,
not consumed), seats held against joins without a reservation, rooms filled before new ones."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cluster_kit import cluster, http, refused, synced

from protocol import messages as M
from protocol.errors import ConnectionClosed


async def reserve(server: Any, game: str = "walker") -> dict[str, Any]:
    status, body = await http(server.port, f"/matchmake?game={game}")
    assert status == 200, body
    assert set(body) == {"url", "room", "game", "node", "reservation", "expires_in"}
    return body  # type: ignore[no-any-return]


async def use(h: Any, seat: dict[str, Any], server: Any = None, **hello: Any) -> M.Welcome:
    """HELLO with the reservation on ``server`` (default: the one its url names)."""
    srv = server or next(x for x in h if x.server.ws_url == seat["url"])
    c = await srv.connect()
    await c.send(M.Hello(reservation=seat["reservation"], name="p", **hello))
    return await c.wait_welcome()  # type: ignore[no-any-return]


def test_matchmake_reservations_across_nodes(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url) as nodes:
            a, b = nodes
            by_url = {h.server.ws_url: h for h in nodes}
            # A fresh cluster: a new room on the least loaded node, created on arrival.
            s1 = await reserve(a.server)
            assert s1["url"] in by_url and s1["game"] == "walker" and s1["expires_in"] == 15
            assert len(s1["reservation"]) >= 24
            owner = by_url[s1["url"]]
            other = b if owner is a else a
            assert s1["room"] not in owner.server.rooms.rooms
            # The wrong node redirects (4013 to the owner) and does not consume it.
            err, code, _reason = await refused(other, M.Hello(reservation=s1["reservation"]))
            assert err is not None and (err.code, err.url, code) == (4013, s1["url"], 4013)
            w1 = await use(nodes, s1)
            assert w1.room == s1["room"] and s1["room"] in owner.server.rooms.rooms
            # Used once: a second HELLO with it is refused (4017), never a second seat.
            err, code, _ = await refused(owner, M.Hello(reservation=s1["reservation"]))
            assert err is not None and (err.code, code) == (4017, 4017)
            # Forged tokens: 4017, and nobody is seated by them.
            for forged in ("x", s1["reservation"][:-1] + "A", "A" * 24):
                err, code, _ = await refused(owner, M.Hello(reservation=forged))
                assert err is not None and (err.code, code) == (4017, 4017)
            # Reserved seats fill the same room (capacity 4): 3 more, then a new room.
            await synced(owner.server)
            seats = [await reserve(other.server) for _ in range(3)]
            assert {s["room"] for s in seats} == {s1["room"]}
            fifth = await reserve(a.server)
            assert fifth["room"] != s1["room"]
            # While held, those 3 seats are not given to a join without a reservation.
            await synced(owner.server)
            room = owner.server.rooms.rooms[s1["room"]]
            assert room.held == 3
            err, code, _ = await refused(owner, M.Hello(room=s1["room"]))
            assert err is not None and code == 4002
            # A reservation for another room than the HELLO names: refused (4017).
            err, code, _ = await refused(owner, M.Hello(reservation=seats[0]["reservation"],
                                                         room="walker-other-1"))
            assert err is not None and code == 4017
            for s in seats[1:]:
                assert (await use(nodes, s)).room == s1["room"]
            assert len(room.players) == 3
    kit.run(main())


def test_reservation_expires(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1) as (a,):
            a.server.cluster.seats.ttl_ms = 400
            s = await reserve(a.server)
            await asyncio.sleep(1.0)
            err, code, _ = await refused(a, M.Hello(reservation=s["reservation"]))
            assert err is not None and (err.code, code) == (4017, 4017)
            assert s["room"] not in a.server.rooms.rooms
    kit.run(main())


def test_racing_hellos_with_one_reservation_seat_one_player(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1) as (a,):
            s = await reserve(a.server)

            async def attempt() -> str:
                c = await a.connect(start=False)
                await c.send(M.Hello(reservation=s["reservation"]))
                try:
                    while True:
                        if isinstance(M.decode_server(await c.ws.recv()), M.Welcome):
                            return "welcome"
                except ConnectionClosed:
                    return f"closed {c.ws.close_code}"

            results = sorted(await asyncio.gather(*(attempt() for _ in range(4))))
            assert results == ["closed 4017"] * 3 + ["welcome"]
    kit.run(main())


def test_matchmake_http_errors(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1) as (a,):
            port = a.server.port
            assert (await http(port, "/matchmake"))[0] == 400
            status, body = await http(port, "/matchmake?game=nosuch")
            assert status == 404 and "nosuch" in body["error"]
            assert (await http(port, "/matchmake?game=walker", "HEAD"))[0] == 405
            assert (await http(port, "/matchmake?game=walker", "POST"))[0] == 405
            assert (await http(port, "/matchmake?" + "&".join(["a=1"] * 20)))[0] == 400
    kit.run(main())


@pytest.mark.parametrize("ttl", [15.0, 0.3])
def test_matchmake_on_a_single_node(kit: Any, ttl: float) -> None:
    """Without Redis /matchmake answers the same JSON for this node, with the same rules."""
    async def main() -> None:
        async with kit.running() as h:
            h.server.rooms.seats._ttl = ttl
            s = await reserve(h.server)
            assert s["url"] == h.server.ws_url and s["node"] == ""
            if ttl < 1:  # expired
                await asyncio.sleep(0.8)
                err, code, _ = await refused(h, M.Hello(reservation=s["reservation"]))
                assert err is not None and code == 4017
                assert not h.server.rooms.seats._book and not h.server.rooms.seats._pending
                return
            w = await use([h], s)
            assert w.room == s["room"]
            err, code, _ = await refused(h, M.Hello(reservation=s["reservation"]))
            assert err is not None and (err.code, code) == (4017, 4017)
            err, code, _ = await refused(h, M.Hello(reservation="forged-token-xyz"))
            assert err is not None and code == 4017
            more = [await reserve(h.server) for _ in range(3)]
            assert {x["room"] for x in more} == {s["room"]}
            room = h.server.rooms.rooms[s["room"]]
            assert room.held == 3
            # Held seats: a join by game name goes to another room, not a reserved seat.
            c = await h.join(name="walk-in")
            assert c.welcome.room != s["room"]
            assert (await reserve(h.server))["room"] not in (s["room"],)
    kit.run(main())


def test_concurrent_matchmakes_never_overbook(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url) as nodes:
            seats = await asyncio.gather(*(reserve(nodes[i % 2].server) for i in range(10)))
            per_room: dict[str, int] = {}
            for s in seats:
                per_room[s["room"]] = per_room.get(s["room"], 0) + 1
            # capacity 4: filled before new rooms are opened, atomically in Redis
            assert sorted(per_room.values()) == [2, 4, 4]
            assert len({s["reservation"] for s in seats}) == 10
            welcomes = await asyncio.gather(*(use(nodes, s) for s in seats))
            assert sorted(w.room for w in welcomes) == sorted(s["room"] for s in seats)
    kit.run(main())


def test_matchmake_floods_cannot_allocate_past_the_room_bound(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1, max_rooms=2) as (a,):
            seats = [await reserve(a.server) for _ in range(8)]  # 2 rooms x 4 seats
            assert len({s["room"] for s in seats}) == 2
            status, body = await http(a.server.port, "/matchmake?game=walker")
            assert status == 503 and body["code"] == 4002
    kit.run(main())
