"""The SDK's matchmaking: GET /matchmake, then a join holding the reserved seat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from clients import GameClient, MatchmakeError, ReservationInvalid, matchmake
from clients.matchmake import matchmake_url

gs_server = pytest.importorskip("gameserver.server")
gs_config = pytest.importorskip("gameserver.config")
arena = pytest.importorskip("examples.arena")


@asynccontextmanager
async def real_server(**kw: Any) -> AsyncIterator[Any]:
    cfg = gs_config.ServerConfig(games={"arena": arena.Arena}, host="127.0.0.1", port=0,
                                 seed=1, room_config={"critters": 20}, **kw)
    server = gs_server.GameServer(cfg)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def test_matchmake_url_forms() -> None:
    assert matchmake_url("http://h:8000/", "arena") == "http://h:8000/matchmake?game=arena"
    assert matchmake_url("http://h:8000", "a b") == "http://h:8000/matchmake?game=a+b"
    assert matchmake_url("ws://h:8000/ws", "arena") == "http://h:8000/matchmake?game=arena"
    assert (matchmake_url("wss://h/game/ws", "arena")
            == "https://h/game/matchmake?game=arena")


def test_reserved_seat_joins_its_room_once() -> None:
    async def main() -> None:
        async with real_server() as srv:
            seat = await matchmake(srv.url, "arena")
            assert seat.url == srv.ws_url and seat.game == "arena" and seat.expires_in > 0
            async with GameClient(seat.url, reservation=seat.reservation, name="ann") as c:
                assert c.room == seat.room
                assert c.reservation is None  # used up by the WELCOME
            # single use: the same reservation again is refused (4017), never a seat
            again = GameClient(seat.url, reservation=seat.reservation, name="bob",
                               reconnect=False)
            with pytest.raises(ReservationInvalid) as info:
                await again.connect()
            assert info.value.code == 4017
            await again.close()
            with pytest.raises(ReservationInvalid) as forged:
                await GameClient(srv.ws_url, reservation="forged-token", name="eve",
                                 reconnect=False).connect()
            assert forged.value.code == 4017

    asyncio.run(asyncio.wait_for(main(), 30))


def test_matchmake_refusals_are_clear_errors() -> None:
    async def main() -> None:
        async with real_server() as srv:
            with pytest.raises(MatchmakeError) as unknown:
                await matchmake(srv.url, "nope")
            assert unknown.value.status == 404
        with pytest.raises(MatchmakeError) as down:  # nothing listens there any more
            await matchmake(srv.url, "arena", timeout=2.0)
        assert down.value.status is None

    asyncio.run(asyncio.wait_for(main(), 30))
