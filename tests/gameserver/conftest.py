"""Fixtures for the game server's end-to-end tests: small test games, a running server, and a
raw test client built on protocol.aio.connect + protocol.messages + protocol.replica.Replica.

The client deliberately does not use clients.GameClient (another engineer's, in progress):
the server is tested against the wire protocol alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import trustme

from gameserver.config import ServerConfig
from gameserver.inputs import I, InputBatch, InputSchema
from gameserver.rules import Game, Player, Reject
from gameserver.schema import F
from gameserver.server import GameServer
from protocol import messages as M
from protocol.aio import WebSocket, connect
from protocol.errors import ConnectionClosed
from protocol.replica import Replica

SPEED = 10.0  # units per second at full input


class Walker(Game):
    """Each player is a dot moved by (dx, dy) inputs; names starting 'no' are rejected."""

    name = "walker"
    fields = {"x": F.float32(quant=0.01, lo=-10000, hi=10000),
              "y": F.float32(quant=0.01, lo=-10000, hi=10000),
              "owner": F.player()}
    inputs = InputSchema({"dx": I.float32(-1, 1), "dy": I.float32(-1, 1)})
    max_players = 4
    tick_rate = 30
    send_rate = 30
    left: list[tuple[int, str]] = []

    def on_join(self, player: Player, hello: Mapping[str, Any]) -> None:
        if player.name.startswith("no"):
            raise Reject("names starting with 'no' are refused")
        player.entity = int(self.world.spawn(1, x=0.0, y=0.0, owner=player.id)[0])

    def on_leave(self, player: Player, reason: str) -> None:
        Walker.left.append((player.id, reason))
        logging.getLogger("walker").info("on_leave player=%d reason=%s", player.id, reason)
        super().on_leave(player, reason)

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        if tick % 30 == 0:
            self.send("tick30", {"tick": tick})
        if not len(inputs):
            return
        players = inputs.player.tolist()
        ents = np.array([self.players[p].entity for p in players], np.uint32)
        slots = self.world.slots_of(ents)
        ok = slots >= 0
        np.add.at(self.world["x"], slots[ok], inputs["dx"][ok] * SPEED * dt)
        np.add.at(self.world["y"], slots[ok], inputs["dy"][ok] * SPEED * dt)


class Boom(Walker):
    """A Walker whose on_tick raises once a player named 'boom' is in the room."""

    name = "boom"

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        if any(p.name == "boom" for p in self.players.values()):
            raise RuntimeError("kaboom (deliberate test crash)")
        super().on_tick(tick, dt, inputs)


class Swarm(Game):
    """Many entities that all move every tick (big deltas, for backpressure tests)."""

    name = "swarm"
    fields = {"x": F.float32(quant=0.01, lo=-100000, hi=100000),
              "y": F.float32(quant=0.01, lo=-100000, hi=100000)}
    inputs = InputSchema({"dx": I.float32(-1, 1)})
    max_players = 8
    tick_rate = 30
    send_rate = 30
    capacity = 4096
    entities = 3000

    def on_create(self, config: dict[str, Any]) -> None:
        n = self.entities
        self.world.spawn(n, x=self.rng.uniform(0, 1000, n), y=self.rng.uniform(0, 1000, n))

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        slots = self.world.alive_slots()
        self.world["x"][slots] += self.rng.uniform(-3, 3, len(slots)).astype(np.float32)
        self.world["y"][slots] += self.rng.uniform(-3, 3, len(slots)).astype(np.float32)


class Chatty(Swarm):
    """Swarm that also sends every player an event each tick, numbered by tick."""

    name = "chatty"
    entities = 500

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        super().on_tick(tick, dt, inputs)
        self.send("t", tick)


GAMES: dict[str, type[Game]] = {"walker": Walker, "boom": Boom, "swarm": Swarm,
                                "chatty": Chatty}


@dataclass
class Client:
    """A raw protocol client: a reader task decodes every message and keeps a Replica."""

    ws: WebSocket
    welcome: M.Welcome | None = None
    replica: Replica | None = None
    deltas: int = 0
    full_snapshots: int = 0
    acks: list[M.InputAck] = field(default_factory=list)
    errors: list[M.Error] = field(default_factory=list)
    events: list[M.Event] = field(default_factory=list)
    pongs: list[M.Pong] = field(default_factory=list)
    delta_ticks: list[int] = field(default_factory=list)
    base_ticks: list[int | None] = field(default_factory=list)
    failure: BaseException | None = None
    seq: int = 0
    reader: asyncio.Task[None] | None = None
    reading: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def send(self, msg: Any) -> None:
        await self.ws.send(M.encode(msg))

    async def hello(self, **kw: Any) -> M.Welcome:
        await self.send(M.Hello(**kw))
        return await self.wait_welcome()

    async def wait_welcome(self) -> M.Welcome:
        await self.until(lambda: self.welcome is not None)
        assert self.welcome is not None
        return self.welcome

    async def input(self, **data: float) -> int:
        self.seq += 1
        await self.send(M.Input(self.seq, dict(data)))
        return self.seq

    def start(self) -> None:
        self.reading.set()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                await self.reading.wait()
                data = await self.ws.recv()
                assert isinstance(data, bytes), "server sent a text message"
                self._handle(M.decode_server(data))
                async with self.changed:
                    self.changed.notify_all()
        except ConnectionClosed:
            pass
        except Exception as exc:  # a decode / apply failure: the test inspects it
            self.failure = exc
            raise
        finally:
            async with self.changed:
                self.changed.notify_all()

    def _handle(self, msg: Any) -> None:
        if isinstance(msg, M.Welcome):
            self.welcome = msg
            self.replica = Replica(msg.schema)
        elif isinstance(msg, M.Delta):
            assert self.replica is not None, "delta before welcome"
            self.replica.apply(msg)
            self.deltas += 1
            self.delta_ticks.append(msg.tick)
            self.base_ticks.append(msg.base_tick)
            if msg.base_tick is None:
                self.full_snapshots += 1
        elif isinstance(msg, M.InputAck):
            self.acks.append(msg)
        elif isinstance(msg, M.Error):
            self.errors.append(msg)
        elif isinstance(msg, M.Event):
            self.events.append(msg)
        elif isinstance(msg, M.Pong):
            self.pongs.append(msg)

    async def until(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (event driven) until ``pred()`` holds; AssertionError on timeout or close."""
        async def wait() -> None:
            async with self.changed:
                while not pred():
                    if self.failure is not None:
                        raise AssertionError(f"client reader failed: {self.failure!r}")
                    if self.ws.closed and (self.reader is None or self.reader.done()):
                        raise AssertionError(
                            f"connection closed ({self.ws.close_code}) before condition")
                    await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the connection to close; return its close code."""
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, timeout)
        return self.ws.close_code

    def position(self, entity: int) -> tuple[float, float]:
        r = self.replica
        assert r is not None
        row = int(np.searchsorted(r.ids, entity))
        assert row < len(r.ids) and r.ids[row] == entity, f"entity {entity} not in replica"
        return float(r.values("x")[row]), float(r.values("y")[row])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


@dataclass
class Harness:
    server: GameServer
    client_ssl: ssl.SSLContext | None = None
    clients: list[Client] = field(default_factory=list)

    async def connect(self, *, start: bool = True, **kw: Any) -> Client:
        ws = await connect(self.server.ws_url, ssl=self.client_ssl, **kw)
        c = Client(ws)
        self.clients.append(c)
        if start:
            c.start()
        return c

    async def join(self, **hello: Any) -> Client:
        c = await self.connect()
        hello.setdefault("game", "walker")
        await c.hello(**hello)
        return c


@contextlib.asynccontextmanager
async def running(*, ssl_pair: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
                  **overrides: Any) -> AsyncIterator[Harness]:
    """A GameServer on 127.0.0.1:0 with the test games; stopped (and clients closed) after."""
    cfg: dict[str, Any] = {"games": GAMES, "host": "127.0.0.1", "port": 0, "seed": 7,
                           "empty_room_ttl": 0.5}
    cfg.update(overrides)
    Walker.left.clear()
    server = GameServer(ServerConfig(**cfg), ssl_context=ssl_pair[0] if ssl_pair else None)
    await server.start()
    h = Harness(server, ssl_pair[1] if ssl_pair else None)
    try:
        yield h
    finally:
        for c in h.clients:
            await c.close()
        await server.stop(timeout=2)


def run(coro: Any) -> Any:
    """Run a test coroutine on a fresh loop (uvloop when available, like production)."""
    from protocol.aio.loop import run as loop_run

    return loop_run(asyncio.wait_for(coro, 60))


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_pair(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@pytest.fixture
def kit() -> Any:
    """This module (test games, ``running``, ``run``, ``Client``) for the test files, which
    cannot import a conftest by name (there are several ``conftest`` modules in the tree)."""
    import types

    # Not sys.modules[__name__]: with several conftest.py files in the tree, the name
    # "conftest" may be bound to another directory's module.
    return types.SimpleNamespace(**globals())
