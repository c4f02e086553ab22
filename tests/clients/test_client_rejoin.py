"""GameClient on close 4015 WORKER_RESTARTED (SPEC.md section 7), against the fake server:
a new HELLO without the dead room id, a second WELCOME, the ``on_rejoined`` hook with both
player ids, unacknowledged inputs dropped; a server that keeps closing with 4015 ends the
client with :class:`~clients.errors.WorkerRestarted` after the attempt bound.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from clients_fakeserver import FakeServer

from clients import errors as E
from clients.client import Backoff, GameClient


def fast_backoff(n: int = 3) -> Backoff:
    return Backoff(base=0.01, cap=0.05, max_attempts=n, rng=random.Random(1))


def run(coro: Any, limit: float = 20.0) -> None:
    async def main() -> None:
        async with asyncio.timeout(limit):
            await coro()

    asyncio.run(main())


def test_4015_rejoins_by_hello_and_fires_the_hook() -> None:
    async def main() -> None:
        async with FakeServer(restart_after=3, ack_inputs=False) as srv:
            client = GameClient(srv.url, room="r1", name="ann", backoff=fast_backoff())
            seen: list[tuple[int | None, int | None]] = []
            client.on_rejoined(lambda c, old, new: seen.append((old, new)))
            await client.connect()
            try:
                old = client.player
                client.send_input(dx=1.0, dy=0.0)
                client.send_input(dx=1.0, dy=0.0)
                assert len(client.pending_inputs) == 2  # never acked by this server
                async for up in client.updates():
                    if up.full:
                        break  # the full snapshot of the new room
                assert seen == [(old, client.player)] and client.player != old
                assert client.rejoins == 1 and client.stats.reconnects == 0
                assert srv.resumes == []  # the token died with the worker: no RESUME
                assert len(srv.hellos) == 2
                again = srv.hellos[1]
                assert again.game == "fake" and again.room is None and again.name == "ann"
                assert again.reservation is None
                assert not client.pending_inputs and client.stats.inputs_dropped >= 2
                async for up in client.updates():  # streaming again
                    assert not up.full
                    break
                assert client.connected
            finally:
                await client.close()

    run(main)


def test_server_that_keeps_answering_4015_gives_up_after_the_bound() -> None:
    async def main() -> None:
        async with FakeServer(restart_after=2) as srv:
            client = GameClient(srv.url, backoff=fast_backoff(3))
            fired: list[Any] = []
            client.on_rejoined(lambda *a: fired.append(a))
            await client.connect()
            srv.mode = "restarting"  # every new connection is closed with 4015 at once
            with pytest.raises(E.WorkerRestarted, match="failed 3 attempts") as info:
                await client.wait_closed()
            assert isinstance(info.value, E.ConnectionLost) and info.value.code == 4015
            assert srv.restarts == 1 + 3 and len(srv.hellos) == 1 + 3
            assert fired == [] and client.rejoins == 0

    run(main)


def test_4015_without_reconnect_is_terminal() -> None:
    async def main() -> None:
        async with FakeServer(restart_after=2) as srv:
            client = GameClient(srv.url, reconnect=False)
            await client.connect()
            with pytest.raises(E.ConnectionLost) as info:
                await client.wait_closed()
            assert info.value.code == 4015 and len(srv.hellos) == 1

    run(main)


def test_a_1006_then_resume_answered_4015_rejoins_by_hello() -> None:
    """A worker that died mid-frame: the client sees 1006 (not 4015) and RESUMEs; the
    supervisor answers 4015 (the token names a restarted worker): one RESUME only, then a
    HELLO as on a 4015 close, the hook runs and the client streams again."""
    async def main() -> None:
        async with FakeServer(drop_after=3, mode="resume_4015") as srv:
            client = GameClient(srv.url, room="r1", name="ann", backoff=fast_backoff(5))
            seen: list[tuple[int | None, int | None]] = []
            client.on_rejoined(lambda c, old, new: seen.append((old, new)))
            await client.connect()
            try:
                old, token = client.player, client.resume_token
                async for up in client.updates():
                    if seen and not up.full:
                        break
                # one RESUME per drop, not the whole attempt budget (each new player's first
                # connection drops again after 3 deltas: the fake server's drop_after)
                assert srv.resumes[0] == token and len(srv.resumes) == client.rejoins
                assert seen[0][0] == old and seen[0][1] != old
                assert seen[-1][1] == client.player  # the hook named the player it plays as
                assert client.connected and len(srv.hellos) == 1 + client.rejoins
                assert all(h.room is None for h in srv.hellos[1:])
            finally:
                await client.close()

    run(main)
