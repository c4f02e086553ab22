"""Backpressure: a client that stops reading is skipped (server memory stays bounded, the
other client keeps every send tick), catches up with ONE delta from its own last tick when it
reads again (its replica then equals the server's snapshot), and a client stuck for longer
than slow_timeout is closed with 4009. Game events are reliable: held for a skipped or
dropped player and delivered in order, or, past the backlog bound, the player leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import psutil

from gameserver.metrics import parse_text

HW = 64 * 1024


def test_slow_client_skip_and_catch_up(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(high_water=HW, send_buffer=16384, snapshot_ring=300,
                               slow_timeout=30) as h:
            slow = await h.connect(max_queue=2, read_limit=65536)
            await slow.hello(game="swarm", name="slow")
            good = await h.join(game="swarm", name="good")
            await slow.until(lambda: slow.deltas > 3)
            room = h.server.rooms.rooms[slow.welcome.room]
            ws = room.players[slow.welcome.player].ws
            slow.reading.clear()  # stop reading: the aio queue fills, then TCP, then us
            skips = h.server.metrics.slow_skips
            good_start, tick_start = good.deltas, room.tick
            max_buffered = 0
            rss0 = psutil.Process().memory_info().rss
            while skips.value < 45:  # 1.5 s of skipped send ticks
                await asyncio.sleep(0.02)
                max_buffered = max(max_buffered, ws.buffered_bytes)
            frame_max = 30_000  # a Swarm delta is ~15 KB; acks/events are tiny
            # The ring kept the snapshots the skipped client will need, and no more.
            sent = room.players[slow.welcome.player].last_sent
            assert min(room.ring) == sent and max(room.ring) == room.tick
            assert len(room.ring) <= 300
            assert max_buffered <= HW + frame_max, max_buffered
            # Process memory did not grow with the backlog (bounded: no per-tick queueing).
            assert psutil.Process().memory_info().rss - rss0 < 32 * 2**20
            # The good client got every send tick meanwhile (send rate == tick rate).
            await good.until(lambda: good.replica.tick >= room.tick - 1)
            assert good.deltas - good_start >= room.tick - tick_start - 1
            last_before = slow.delta_ticks[-1]
            n_before = slow.deltas
            slow.reading.set()
            await slow.until(lambda: slow.replica.tick >= room.tick - 1, timeout=10)
            ticks = slow.delta_ticks[n_before:]
            bases = slow.base_ticks[n_before:]
            jumps = [(b, t) for b, t in zip(bases, ticks) if b is not None and t - b > 1]
            # Exactly one catch-up delta, based on the client's own last tick.
            assert len(jumps) == 1, jumps
            base, caught = jumps[0]
            assert caught - base > 30  # it spans the ~1.5 s the client was skipped
            assert base >= last_before  # from the client's own last delivered tick
            assert slow.full_snapshots == 1 and slow.failure is None
            # The replica equals the server's latest snapshot (the ring now holds just that
            # one: no client is behind any more).
            await slow.until(lambda: slow.replica.tick == room.tick, timeout=5)
            assert list(room.ring) == [room.tick]
            assert room.ring[room.tick].equals(slow.replica.snapshot())
            vals = parse_text(h.server.metrics.render())
            assert vals["gameserver_slow_client_skips_total"] >= 45
            assert vals["gameserver_slow_client_evictions_total"] == 0
            assert not slow.ws.closed
    kit.run(main())


def test_stuck_client_is_evicted(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(high_water=HW, send_buffer=16384, slow_timeout=0.5) as h:
            stuck = await h.connect(max_queue=2, read_limit=65536, close_timeout=1)
            await stuck.hello(game="swarm", name="stuck")
            good = await h.join(game="swarm", name="good")
            await stuck.until(lambda: stuck.deltas > 1)
            stuck.reading.clear()
            ev = h.server.metrics.slow_evictions
            while ev.value < 1:
                await asyncio.sleep(0.05)
            room = h.server.rooms.rooms[good.welcome.room]
            server_ws = room.players[stuck.welcome.player].ws
            if server_ws is not None:
                await asyncio.wait_for(server_ws.wait_closed(), 5)
            # The player stays seated for the resume grace (it may come back).
            assert stuck.welcome.player in room.players
            n = good.deltas
            await good.until(lambda: good.deltas >= n + 3, timeout=2)
    kit.run(main())


def _event_ticks(c: Any) -> list[int]:
    return [int(e.data) for e in c.events if e.kind == "t"]


def _consecutive(ticks: list[int]) -> bool:
    return ticks == list(range(ticks[0], ticks[0] + len(ticks)))


def test_events_are_held_for_a_skipped_client(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(high_water=HW, send_buffer=16384, snapshot_ring=300,
                               slow_timeout=30) as h:
            slow = await h.connect(max_queue=2, read_limit=65536)
            await slow.hello(game="chatty", name="slow")
            await slow.until(lambda: len(_event_ticks(slow)) > 3)
            room = h.server.rooms.rooms[slow.welcome.room]
            p = room.players[slow.welcome.player]
            slow.reading.clear()
            skips = h.server.metrics.slow_skips
            while skips.value < 30:  # a second of skipped send ticks
                await asyncio.sleep(0.02)
            assert len(p.backlog) >= 20 and p.backlog_bytes > 0
            slow.reading.set()
            await slow.until(lambda: _event_ticks(slow)[-1] >= room.tick - 1, timeout=10)
            ticks = _event_ticks(slow)
            assert _consecutive(ticks), ticks  # every tick's event, in order, none lost
            assert not p.backlog and p.backlog_bytes == 0
            assert h.server.metrics.event_backlog_overflows.value == 0
    kit.run(main())


def test_events_are_held_through_a_resume(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            a = await h.join(game="chatty", name="ann")
            await a.until(lambda: len(_event_ticks(a)) > 3)
            a.ws._transport.abort()  # a TCP drop: the player waits for its RESUME
            await a.closed()
            await asyncio.sleep(0.3)  # ~9 ticks of events while away
            b = await h.connect()
            await b.send(kit.M.Resume(a.welcome.resume))
            await b.wait_welcome()
            room = h.server.rooms.rooms[a.welcome.room]
            await b.until(lambda: bool(_event_ticks(b)) and _event_ticks(b)[-1] >= room.tick - 1)
            assert b.full_snapshots == 1
            ticks = _event_ticks(a) + _event_ticks(b)
            # nothing lost across the drop (the socket's last frames may arrive twice: no)
            assert _consecutive(sorted(set(ticks))), ticks
            assert len(_event_ticks(b)) >= 9
    kit.run(main())


def test_event_backlog_overflow_ends_the_session(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(high_water=HW, send_buffer=16384, slow_timeout=30,
                               event_backlog=20) as h:
            stuck = await h.connect(max_queue=2, read_limit=65536, close_timeout=1)
            await stuck.hello(game="chatty", name="stuck")
            good = await h.join(game="chatty", name="good")
            await stuck.until(lambda: len(_event_ticks(stuck)) > 1)
            room = h.server.rooms.rooms[stuck.welcome.room]
            pid = stuck.welcome.player
            stuck.reading.clear()
            overflows = h.server.metrics.event_backlog_overflows
            while overflows.value < 1:
                await asyncio.sleep(0.05)
            await good.until(lambda: pid not in room.players, timeout=2)
            # its token is gone: a RESUME is refused (the client knows it lost events)
            r = await h.connect()
            await r.send(kit.M.Resume(stuck.welcome.resume))
            assert await r.closed() == 4005
            # the other player kept every event
            await good.until(lambda: _event_ticks(good)[-1] >= room.tick - 1)
            assert _consecutive(_event_ticks(good))
    kit.run(main())
