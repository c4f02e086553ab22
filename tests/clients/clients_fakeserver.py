"""A tiny, controllable game server for client tests, on :func:`protocol.aio.serve`.

It speaks the real wire protocol (protocol.messages / protocol.delta) with a fixed world of a
few moving entities, and can misbehave on purpose: refuse joins with a given code, send
garbage after the snapshot, close mid-frame, go silent (stall), drop the connection after N
deltas (to exercise RESUME), or send a delta that does not apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protocol import messages as M
from protocol.aio import WebSocket, serve
from protocol.aio.server import Server
from protocol.delta import Snapshot, WireField, WireSchema, encode_delta
from protocol.errors import ConnectionClosed

SCHEMA = WireSchema([
    WireField("x", "i32", 0.01, "float"),
    WireField("y", "i32", 0.01, "float"),
    WireField("kind", "u8", None, "int"),
])
INPUTS = [{"n": "dx", "t": "f32", "lo": -1, "hi": 1}, {"n": "dy", "t": "f32", "lo": -1, "hi": 1}]


def _binary(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


@dataclass
class FakePlayer:
    player: int
    token: str
    entity: int
    connections: int = 0
    last_seq: int = 0
    inputs: list[dict[str, Any]] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)


class FakeServer:
    """``mode``: "normal", "reject", "garbage", "close_mid", "stall", "bad_delta", "text",
    "silent_join" (never answers HELLO), "restarting" (closes every connection with 4015 at
    once, a crash-looping worker), "resume_4015" (every RESUME is answered ERROR + close
    4015, as the supervisor answers a token of a restarted worker; HELLOs are served).
    ``restart_after``: after that many deltas on the first player's first connection,
    close it with 4015 and forget every player (a worker restart: rooms and resume tokens
    gone). ``drop_after``: abort the TCP connection after that
    many deltas (first connection of each player only). ``reject_code`` / ``reject_reason``
    for mode "reject" (an ERROR then a close with the same code, like the real server)."""

    def __init__(self, *, mode: str = "normal", tick_rate: float = 50.0, send_every: int = 1,
                 entities: int = 5, drop_after: int | None = None, reject_code: int = 4002,
                 reject_reason: str = "room is full", close_with_error: bool = True,
                 ssl: Any = None, redirect_to: str | None = None,
                 move_after: int | None = None, move_to: str | None = None,
                 ack_inputs: bool = True, players: dict[str, FakePlayer] | None = None,
                 url_in_reason: bool = True, restart_after: int | None = None) -> None:
        self.mode = mode
        self.tick_rate = tick_rate
        self.send_every = send_every
        self.n = entities
        self.drop_after = drop_after
        self.reject_code = reject_code
        self.reject_reason = reject_reason
        self.close_with_error = close_with_error
        self.ssl = ssl
        self.server: Server | None = None
        self.players: dict[str, FakePlayer] = {} if players is None else players
        # cluster: every connection gets ERROR 4013 {url: redirect_to} + close 4013; or, after
        # move_after deltas, a joined player gets ERROR 4014 {url: move_to} + close 4014
        self.redirect_to = redirect_to
        self.move_after = move_after
        self.move_to = move_to
        self.ack_inputs = ack_inputs
        self.url_in_reason = url_in_reason
        self.restart_after = restart_after
        self.restarts = 0
        self.connections = 0
        self.hellos: list[Any] = []
        self.resumes: list[str] = []
        self.pings = 0
        self.leaves = 0
        self._next_player = 1
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "wss" if self.ssl is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.server.port}/ws"

    async def __aenter__(self) -> FakeServer:
        self.server = await serve(self._handler, "127.0.0.1", 0, ping_interval=None,
                                  close_timeout=1.0, ssl=self.ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.shutdown(timeout=1.0)

    # ------------------------------------------------------------------- world
    def snapshot(self, tick: int) -> Snapshot:
        ids = (np.arange(1, self.n + 1, dtype=np.uint32) << 8) | 1
        x = (np.arange(self.n, dtype=np.int32) * 100 + tick * 10).astype(np.int32)
        y = np.full(self.n, 500, np.int32)
        kind = (np.arange(self.n) % 3).astype(np.uint8)
        return Snapshot(ids, {"x": x, "y": y, "kind": kind})

    # ------------------------------------------------------------------ handler
    async def _handler(self, ws: WebSocket) -> None:
        self.connections += 1
        try:
            first = M.decode_client(_binary(await ws.recv()))
        except ConnectionClosed:
            return
        if isinstance(first, M.Hello):
            self.hellos.append(first)
        if self.redirect_to is not None:
            if isinstance(first, M.Resume):
                self.resumes.append(first.token)
            await ws.send(M.encode(M.Error(4013, "room lives on another node",
                                           url=self.redirect_to)))
            await ws.close(4013, self.redirect_to if self.url_in_reason else "redirect")
            return
        if self.mode == "restarting":
            self.restarts += 1
            await ws.close(4015, "worker restarted")
            return
        if self.mode == "silent_join":
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await ws.recv()
            return
        if self.mode == "reject":
            if self.close_with_error:
                await ws.send(M.encode(M.Error(self.reject_code, self.reject_reason)))
            await ws.close(self.reject_code, self.reject_reason if not self.close_with_error
                           else "")
            return
        if isinstance(first, M.Hello):
            p = FakePlayer(self._next_player, secrets.token_hex(8), ((self._next_player) << 8) | 1)
            self._next_player += 1
            self.players[p.token] = p
        elif isinstance(first, M.Resume):
            self.resumes.append(first.token)
            if self.mode == "resume_4015":
                self.players.clear()
                await ws.send(M.encode(M.Error(4015, "worker restarted: join again")))
                await ws.close(4015, "worker restarted: join again")
                return
            found = self.players.get(first.token)
            if found is None:
                await ws.send(M.encode(M.Error(4005, "resume token invalid or expired")))
                await ws.close(4005)
                return
            p = found
        else:
            await ws.close(4000, "expected HELLO")
            return
        p.connections += 1
        tick = 100
        await ws.send(M.encode(M.Welcome(
            player=p.player, room="r1", game="fake", tick=tick, tick_rate=self.tick_rate,
            send_rate=self.tick_rate / self.send_every, schema=SCHEMA, inputs=INPUTS,
            resume=p.token, resume_grace=10.0, entity=p.entity)))
        base = self.snapshot(tick)
        await ws.send(encode_delta(None, base, tick=tick))
        reader = asyncio.ensure_future(self._reader(ws, p, lambda: tick))
        try:
            sent = 0
            while ws.open:
                await asyncio.sleep(self.send_every / self.tick_rate)
                if self.mode == "stall":
                    continue
                if self.mode == "garbage":
                    await ws.send(b"\xc1\xc1 this is not msgpack")
                    continue
                if self.mode == "text":
                    await ws.send("hello")
                    continue
                if self.mode == "close_mid":
                    # a binary frame header announcing 100 bytes, then 10 of them, then EOF
                    ws._transport.write(bytes([0x82, 100]) + b"\x00" * 10)
                    ws._transport.close()
                    return
                tick += self.send_every
                cur = self.snapshot(tick)
                if self.mode == "bad_delta":
                    await ws.send(encode_delta(base, cur, tick=tick, base_tick=7))
                else:
                    await ws.send(encode_delta(base, cur, tick=tick, base_tick=tick -
                                               self.send_every))
                base = cur
                sent += 1
                if (self.move_after is not None and self.move_to is not None
                        and sent >= self.move_after):
                    await ws.send(M.encode(M.Error(4014, "room moved", url=self.move_to)))
                    await ws.close(4014, self.move_to if self.url_in_reason else "moved")
                    return
                if (self.restart_after is not None and self.restarts == 0
                        and sent >= self.restart_after):
                    self.restarts += 1
                    self.players.clear()  # the rooms died with the worker
                    await ws.close(4015, "worker restarted")
                    return
                if self.drop_after is not None and p.connections == 1 and sent >= self.drop_after:
                    ws._transport.abort()
                    return
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def _reader(self, ws: WebSocket, p: FakePlayer, tick: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                msg = M.decode_client(_binary(await ws.recv()))
                if isinstance(msg, M.Input):
                    if msg.seq <= p.last_seq:  # the real server ignores seqs it accepted
                        if self.ack_inputs:
                            await ws.send(M.encode(M.InputAck(p.last_seq, tick())))
                        continue
                    p.inputs.append(msg.data)
                    p.seqs.append(msg.seq)
                    p.last_seq = msg.seq
                    if self.ack_inputs:
                        await ws.send(M.encode(M.InputAck(msg.seq, tick())))
                elif isinstance(msg, M.Ping):
                    self.pings += 1
                    if self.mode != "stall":
                        await ws.send(M.encode(M.Pong(msg.t, tick())))
                elif isinstance(msg, M.Leave):
                    self.leaves += 1
                    await ws.close(1000)
                    return
