"""Helpers for the cluster tests: several GameServers on one private Redis, raw HTTP, a raw
Redis client, and a redis-server restarted on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis_server import RedisServer, redis_server_path

from gameserver.config import ServerConfig
from gameserver.server import GameServer
from protocol import messages as M


@contextlib.asynccontextmanager
async def handover_node(kit: Any, redis_url: str, **kw: Any) -> AsyncIterator[GameServer]:
    """One started ``--redis --handover`` node serving the kit's games (``kw``: more
    ServerConfig fields). Teardown is a plain stop: a node the test did not stop itself must
    not start a handover of its own (to the nodes being torn down beside it), which could
    wait for a claim until the test's time limit. stop() is idempotent."""
    kw.setdefault("games", kit.GAMES)
    kw.setdefault("empty_room_ttl", 5.0)
    cfg = ServerConfig(host="127.0.0.1", port=0, seed=7, redis_url=redis_url, handover=True,
                       **kw)
    server = GameServer(cfg)
    await server.start()
    try:
        yield server
    finally:
        server.config = dataclasses.replace(server.config, handover=False)
        await server.stop(timeout=2)


@contextlib.asynccontextmanager
async def cluster(kit: Any, redis_url: str, n: int = 2, **overrides: Any,
                  ) -> AsyncIterator[list[Any]]:
    """``n`` nodes (kit Harnesses) sharing ``redis_url``; all stopped afterwards."""
    harnesses: list[Any] = []
    try:
        for i in range(n):
            cfg: dict[str, Any] = {"games": kit.GAMES, "host": "127.0.0.1", "port": 0,
                                   "seed": 7 + i, "empty_room_ttl": 5.0,
                                   "redis_url": redis_url}
            cfg.update(overrides)
            server = GameServer(ServerConfig(**cfg))
            await server.start()
            harnesses.append(kit.Harness(server))
        for h in harnesses:
            await synced(h.server)
        yield harnesses
    finally:
        for h in harnesses:
            for c in h.clients:
                await c.close()
            await h.server.stop(timeout=2)


async def synced(server: GameServer, passes: int = 1, timeout: float = 10.0) -> None:
    """Wait until the node's directory has completed ``passes`` more full syncs."""
    d = server.cluster.directory
    target = d.syncs + passes
    await until(lambda: d.syncs >= target, timeout)


async def until(pred: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


async def http(port: int, path: str, method: str = "GET") -> tuple[int, Any]:
    """One HTTP request; (status, parsed JSON body or raw bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


async def refused(h: Any, msg: Any, server: GameServer | None = None,
                  ) -> tuple[M.Error | None, int | None, str]:
    """Send ``msg`` as the first message on a new raw connection (to ``server`` or ``h``'s);
    return (the ERROR received, close code, close reason)."""
    from protocol.aio import connect

    srv = server or h.server
    ws = await connect(srv.ws_url)
    await ws.send(M.encode(msg))
    err: M.Error | None = None
    try:
        while True:
            data = await asyncio.wait_for(ws.recv(), 10)
            m = M.decode_server(data)  # type: ignore[arg-type]
            if isinstance(m, M.Error):
                err = m
            elif isinstance(m, M.Welcome):
                raise AssertionError(f"joined instead of being refused: {m.room}")
    except Exception as exc:
        if isinstance(exc, AssertionError):
            await ws.close()
            raise
    await asyncio.wait_for(ws.wait_closed(), 10)
    return err, ws.close_code, ws.close_reason


def raw_redis(url: str) -> Any:
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, socket_timeout=2, decode_responses=True)


def restart_on_same_port(server: RedisServer, timeout: float = 10.0) -> None:
    """Start a fresh (empty) redis-server on ``server``'s port; ``server.proc`` becomes it."""
    import socket

    exe = redis_server_path()
    assert exe is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.Popen(
            [exe, "--port", str(server.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", server.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    server.proc = proc
                    return
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
        time.sleep(0.2)  # the port may still be held for a moment
    raise RuntimeError("could not restart redis-server on its port")
