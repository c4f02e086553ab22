"""Stall deadlines (SPEC.md section 7): a joined peer that stalls mid-frame, never reads, or
never answers pings is cut within its configured, documented bound.

Raw TCP peers against a real server with small deadlines; each test asserts the close code
the peer sees (or the server's eviction) and that it came within a generous bound, and that
a well-behaved client on the same server over the same time is not cut.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from typing import Any

import msgpack

from protocol import messages as M

UPGRADE = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")


def frame(payload: bytes, opcode: int = 2, fin: bool = True) -> bytes:
    """One masked client frame (RFC 6455 section 5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    head = bytes([b0, 0x80 | n]) if n < 126 else bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def hello_frame(name: str, game: str = "walker") -> bytes:
    return frame(msgpack.packb([1, {"v": 1, "game": game, "name": name}]))


async def raw_join(port: int, name: str, *, game: str = "walker", rcvbuf: int | None = None,
                   limit: int = 2**16) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Upgrade and send HELLO over a raw socket (no keepalive answers: we never pong)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(UPGRADE.format(key=key).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    writer.write(hello_frame(name, game))
    await writer.drain()
    return reader, writer


async def close_code_seen(reader: asyncio.StreamReader, timeout: float) -> int | None:
    """Read server frames until a close frame (its code) or EOF (None); discards the rest."""
    async def read() -> int | None:
        while True:
            try:
                b0, b1 = await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                return None
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", await reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await reader.readexactly(8))[0]
            payload = await reader.readexactly(n)
            if b0 & 0x0F == 8:
                return int(struct.unpack(">H", payload[:2])[0]) if n >= 2 else 1005
    return await asyncio.wait_for(read(), timeout)


def test_mid_frame_stall_is_cut_by_the_frame_deadline(kit: Any) -> None:
    async def main() -> None:
        # keepalive far away: only the frame deadline can cut these peers
        async with kit.running(ping_interval=60.0, ping_timeout=60.0, frame_timeout=0.6) as h:
            good = await h.join(name="steady")
            r1, w1 = await raw_join(h.server.port, "half-frame")
            r2, w2 = await raw_join(h.server.port, "half-message")
            await asyncio.sleep(0.3)  # joined
            ping = M.encode(M.Ping(1.0))
            t0 = time.monotonic()
            w1.write(frame(ping)[:4])  # header and half the mask, then nothing
            w2.write(frame(ping[:3], fin=False))  # first fragment of a message, never the last
            code1, code2 = await asyncio.gather(close_code_seen(r1, 10), close_code_seen(r2, 10))
            elapsed = time.monotonic() - t0
            assert code1 == 1008 and code2 == 1008
            assert 0.5 <= elapsed < 5.0, elapsed
            # a peer that completes its frames is untouched over the same time
            for i in range(5):
                await good.input(dx=0.1 * i)
                await asyncio.sleep(0.2)
            assert not good.ws.closed
            for w in (w1, w2):
                w.close()

    kit.run(main())


def test_peer_that_never_answers_pings_is_cut(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(ping_interval=0.4, ping_timeout=0.4, frame_timeout=None) as h:
            good = await h.join(name="ponger")  # protocol.aio answers pings
            t0 = time.monotonic()
            reader, writer = await raw_join(h.server.port, "deaf")
            code = await close_code_seen(reader, 10)  # reads everything, never pongs
            elapsed = time.monotonic() - t0
            assert code == 1011
            # bound: interval + timeout + one sweep tick (<= 1 s), with margin for the box
            assert 0.7 <= elapsed < 5.0, elapsed
            await asyncio.sleep(1.0)  # several ping periods: the answering client stays
            assert not good.ws.closed
            writer.close()

    kit.run(main())


def test_peer_that_never_reads_is_cut(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(ping_interval=60.0, ping_timeout=60.0, slow_timeout=0.5,
                               close_timeout=0.5, high_water=32 * 1024,
                               send_buffer=16 * 1024) as h:
            m = h.server.metrics
            t0 = time.monotonic()
            _, writer = await raw_join(h.server.port, "sleeper", game="swarm", rcvbuf=8192,
                                       limit=1024)
            # the stream reader stops reading after ~2 KiB: the server's buffer fills up
            for _ in range(200):
                if m.slow_evictions.value >= 1 and not h.server.sessions:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - t0
            assert m.slow_evictions.value >= 1
            assert not h.server.sessions  # the connection is gone (close, then abort)
            # bound: fill time + slow_timeout + close_timeout, with margin for the box
            assert elapsed < 8.0, elapsed
            writer.close()

    kit.run(main())
