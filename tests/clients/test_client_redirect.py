"""GameClient follows the cluster's 4013 REDIRECT and 4014 MOVED (SPEC.md section 7), against
fake servers: same HELLO at the new URL, RESUME after a move with unacknowledged inputs
re-sent once, the URL taken from the close reason when only it carries one, the loop cut."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest
from clients_fakeserver import FakeServer

from clients import errors as E
from clients.backoff import close_drop, redirect_url
from clients.client import Backoff, GameClient


def run(coro_fn: Callable[[], Awaitable[None]], limit: float = 20.0) -> None:
    async def main() -> None:
        async with asyncio.timeout(limit):
            await coro_fn()

    asyncio.run(main())


def fast_backoff(n: int = 3) -> Backoff:
    return Backoff(base=0.01, cap=0.05, max_attempts=n, rng=random.Random(1))


def test_close_drop_maps_redirect_and_moved() -> None:
    d = close_drop(4013, "", "elsewhere", "ws://b:1/ws")
    assert d.redirect == "ws://b:1/ws" and not d.moved and d.retry
    d = close_drop(4014, "wss://c:2/ws", "moved")
    assert d.redirect == "wss://c:2/ws" and d.moved
    d = close_drop(4014, "moved", "moved", None)  # no URL anywhere: cannot follow
    assert d.redirect is None and not d.retry
    assert isinstance(d.error, E.ServerProtocolError)
    assert redirect_url("not a url", "http://x/") is None


def test_redirect_on_hello_sends_the_same_hello_to_the_new_url() -> None:
    async def main() -> None:
        async with FakeServer() as target:
            async with FakeServer(redirect_to=target.url) as first:
                client = GameClient(first.url, game="fake", room="r1", name="ann")
                await client.connect()
                try:
                    assert client.url == target.url and client.player == 1
                    assert len(first.hellos) == 1 and len(target.hellos) == 1
                    h0, h1 = first.hellos[0], target.hellos[0]
                    assert (h1.game, h1.room, h1.name) == (h0.game, h0.room, h0.name)
                    assert client.stats.redirects == 1
                finally:
                    await client.close()

    run(main)


def test_redirect_reason_only_is_followed_too() -> None:
    async def main() -> None:
        async with FakeServer() as target:
            # an ERROR without url (an older node): the close reason carries it
            async with FakeServer(redirect_to=target.url) as first:
                client = GameClient(first.url, game="fake")
                await client.connect()
                assert client.url == target.url
                await client.close()

    run(main)


def test_moved_resumes_same_player_and_resends_unacked_inputs_once() -> None:
    async def main() -> None:
        players: dict = {}
        async with FakeServer(players=players) as b:
            async with FakeServer(players=players, move_after=15, move_to=b.url,
                                  ack_inputs=False) as a:
                client = GameClient(a.url, game="fake", backoff=fast_backoff())
                await client.connect()
                try:
                    pid, ent, token = client.player, client.entity, client.resume_token
                    seqs = [client.send_input(dx=0.1 * i, dy=0.0) for i in range(1, 6)]
                    assert [p[0] for p in client.pending_inputs] == seqs  # none acked on a
                    async for up in client.updates():
                        if client.url == b.url and not up.full:
                            break
                    assert b.resumes == [token]
                    assert (client.player, client.entity, client.room) == (pid, ent, "r1")
                    while client.acked_seq < 5:
                        await asyncio.sleep(0.01)
                    fp = players[token]
                    # a saw them once; b ignores nothing it had not seen (shared table here:
                    # the re-sent seqs are "already accepted", so each is counted once)
                    assert fp.seqs == [1, 2, 3, 4, 5]
                    assert client.stats.inputs_resent == 5
                    assert not client.pending_inputs and client.stats.redirects == 1
                    assert client.error is None and client.connected
                    # new inputs go to the new node
                    client.send_input(dx=1.0, dy=0.0)
                    while client.acked_seq < 6:
                        await asyncio.sleep(0.01)
                    assert fp.seqs[-1] == 6
                finally:
                    await client.close()

    run(main)


def test_moved_resend_reaches_a_node_that_had_not_seen_them() -> None:
    async def main() -> None:
        async with FakeServer() as b:
            async with FakeServer(move_after=10, move_to=b.url, ack_inputs=False) as a:
                client = GameClient(a.url, game="fake", backoff=fast_backoff())
                await client.connect()
                try:
                    token = client.resume_token
                    assert token is not None
                    for _ in range(4):
                        client.send_input(dx=0.5, dy=0.5)
                    # b knows the player (the handover carried it) but not the inputs
                    b.players[token] = a.players[token].__class__(
                        a.players[token].player, token, a.players[token].entity)
                    while client.url != b.url or client.acked_seq < 4:
                        await asyncio.sleep(0.01)
                    assert b.players[token].seqs == [1, 2, 3, 4]
                finally:
                    await client.close()

    run(main)


def test_redirect_loop_is_cut_with_a_clear_error() -> None:
    async def main() -> None:
        async with FakeServer() as x, FakeServer() as y:
            x.redirect_to, y.redirect_to = y.url, x.url  # x -> y -> x -> ...
            client = GameClient(x.url, game="fake")
            with pytest.raises(E.RedirectLoop) as info:
                await client.connect()
            assert len(info.value.urls) == E.MAX_HOPS + 1
            assert "redirect loop" in str(info.value)
            # bounded: 1 + MAX_HOPS connections, no more
            assert x.connections + y.connections == E.MAX_HOPS + 1
            await client.close()

    run(main)


def test_hops_reset_after_a_welcome() -> None:
    async def main() -> None:
        players: dict = {}
        async with FakeServer(players=players) as c:
            async with FakeServer(players=players, move_after=5, move_to=c.url) as b:
                async with FakeServer(players=players, move_after=5, move_to=b.url) as a:
                    # a -> (moved) b -> (moved) c -> ... each after a WELCOME: never a loop
                    client = GameClient(a.url, game="fake", backoff=fast_backoff())
                    await client.connect()
                    try:
                        while client.url != c.url:
                            await asyncio.sleep(0.01)
                        async for up in client.updates():
                            if not up.full:
                                break
                        assert client.stats.redirects == 2 and client.error is None
                    finally:
                        await client.close()

    run(main)
