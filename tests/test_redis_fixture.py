"""The Redis test fixture starts a real server that redis-py's asyncio client can use."""

from __future__ import annotations

import asyncio

from redis_server import RedisServer


def test_redis_fixture_round_trip(redis_server: RedisServer) -> None:
    import redis.asyncio as aioredis

    async def main() -> bytes | None:
        r = aioredis.from_url(redis_server.url)
        try:
            await r.set("k", b"v", ex=5)
            return await r.get("k")  # type: ignore[no-any-return]
        finally:
            await r.aclose()

    assert asyncio.run(main()) == b"v"
    pid = redis_server.proc.pid
    redis_server.stop()
    assert redis_server.proc.poll() is not None, f"redis-server {pid} still running"
