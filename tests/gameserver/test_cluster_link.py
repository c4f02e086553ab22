"""RedisLink's degraded state machine and the defensive readers of Redis replies (no Redis
needed: the client's calls are replaced by coroutines that are slow, fail or answer)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from gameserver.cluster import keys as K
from gameserver.cluster.errors import BadReply, ClusterUnavailable
from gameserver.cluster.link import RedisLink
from gameserver.cluster.node import parse_node
from gameserver.metrics import ServerMetrics, parse_text


def test_link_outage_backoff_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gameserver.cluster")
    now = [100.0]

    async def slow(r: Any) -> None:
        await asyncio.sleep(5)

    async def ok(r: Any) -> int:
        return 1

    async def refused(r: Any) -> None:
        raise ConnectionRefusedError("refused")

    async def wrongtype(r: Any) -> None:
        from redis.exceptions import ResponseError

        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind")

    async def main() -> None:
        metrics = ServerMetrics()
        link = RedisLink("redis://:secret@127.0.0.1:1/0", metrics, timeout=0.05,
                         clock=lambda: now[0])
        try:
            assert await link.call("t", ok) == 1
            with pytest.raises(ClusterUnavailable):
                await link.call("t", slow)
            assert link.up  # one slow answer is not an outage
            with pytest.raises(ClusterUnavailable):
                await link.call("t", slow)
            assert not link.up and not link.available()
            # While down: refused at once, no I/O, however many callers.
            t0 = time.perf_counter()
            for _ in range(100):
                with pytest.raises(ClusterUnavailable):
                    await link.call("t", slow)
            assert time.perf_counter() - t0 < 0.5
            now[0] += 0.3  # past the first backoff (<= 0.25 s): one probe, which succeeds
            assert link.available()
            assert await link.call("t", ok) == 1
            assert link.up and link.recovered == 1
            # A refused connection is an outage at once; the backoff grows while it lasts.
            with pytest.raises(ClusterUnavailable):
                await link.call("t", refused)
            assert not link.up
            waits = []
            for _ in range(6):
                before = now[0]
                while not link.available():
                    now[0] += 0.05
                waits.append(now[0] - before)
                with pytest.raises(ClusterUnavailable):
                    await link.call("t", refused)
            assert waits[-1] > waits[0] and max(waits) <= 8.05
            now[0] += 10
            # Redis answers but refuses the command: BadReply, and the link is up again.
            with pytest.raises(BadReply):
                await link.call("t", wrongtype)
            assert link.up and link.recovered == 2
            vals = parse_text(metrics.render())
            assert vals['gameserver_redis_round_trips_total{op="t"}'] >= 10
            assert vals['gameserver_redis_errors_total{kind="down"}'] >= 100
            assert vals['gameserver_redis_errors_total{kind="timeout"}'] == 2
            assert vals["gameserver_redis_outages_total"] == 2
            assert vals["gameserver_redis_degraded"] == 0
        finally:
            await link.close()

    asyncio.run(main())
    downs = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
    ups = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(downs) == 2 and len(ups) == 2  # one line per outage, not per failed call
    assert all("secret" not in r.getMessage() for r in caplog.records)


def test_reply_readers_refuse_garbage() -> None:
    assert K.as_str(b"abc") == "abc" and K.as_str(b"\xff") is None and K.as_str(5) is None
    assert K.as_str(b"") is None and K.as_str("x" * 3000) is None
    assert K.as_int(b"12") == 12 and K.as_int(b"x") is None and K.as_int(True) is None
    assert K.as_int(-1) is None and K.as_int(b"-1", lo=-5) == -1
    assert K.decode_hash({}) is None and K.decode_hash([1]) is None
    assert K.decode_hash({b"a": b"1", b"\xff": b"2", 3: b"4"}) == {"a": "1"}
    assert K.load_json(b"{bad") is None and K.load_json(b'{"a": 1}') == {"a": 1}
    good = {b"id": b"n1", b"url": b"ws://h:1/ws", b"games": b'{"arena": 16, "x": "big"}',
            b"players": b"3", b"rooms": b"1", b"worker": b"2", b"updated": b"1.5"}
    n = parse_node(good)
    assert n is not None and n.games == {"arena": 16} and (n.players, n.worker) == (3, 2)
    assert parse_node({**good, b"url": b"http://h"}) is None
    assert parse_node({**good, b"games": b"[]", b"players": b"lots"}) is not None
    assert parse_node({}) is None and parse_node(b"string") is None
