"""Interoperability with real peers: the ``websockets`` and ``aiohttp`` libraries.

Both directions, ws:// and wss:// (throwaway trustme CA), permessage-deflate on and off,
subprotocol selection, close codes. These libraries are test-only peers, never imported by
``protocol/``.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from protocol.aio import WebSocket, connect, run, serve
from protocol.errors import ConnectionClosed

MESSAGES: list[str | bytes] = [
    "hello",
    "ünïcødé ✓ " * 50,
    b"",
    b"\x00\x01\x02" * 40000,  # 120 KB: 64-bit length, several TCP reads
    "x" * 126,  # 16-bit length boundary
    "compressible " * 5000,
]

TLS = pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
DEFLATE = pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])


async def echo(ws: WebSocket) -> None:
    async for msg in ws:
        await ws.send(msg)


def _ctx(tls: bool, ctx: ssl.SSLContext) -> ssl.SSLContext | None:
    return ctx if tls else None


@TLS
@DEFLATE
def test_websockets_client_against_our_server(
    tls: bool, deflate: bool, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    async def main() -> None:
        seen: list[tuple[str | None, bool]] = []

        async def handler(ws: WebSocket) -> None:
            assert ws._conn is not None
            seen.append((ws.subprotocol, ws._conn.deflate is not None))
            await echo(ws)

        async with await serve(
            handler, "127.0.0.1", 0, ssl=_ctx(tls, server_ssl), deflate=True,
            subprotocols=["game.v1"],
        ) as server:
            scheme = "wss" if tls else "ws"
            async with ws_connect(
                f"{scheme}://localhost:{server.port}/play",
                ssl=_ctx(tls, client_ssl),
                compression="deflate" if deflate else None,
                subprotocols=["other", "game.v1"],  # type: ignore[list-item]
                max_size=2**22,
            ) as client:
                assert client.subprotocol == "game.v1"
                for msg in MESSAGES:
                    await client.send(msg)
                    assert await client.recv() == msg
                await client.close(4000, "done")
            assert client.close_code == 4000
        assert seen == [("game.v1", deflate)]

    run(main())


@TLS
@DEFLATE
def test_our_client_against_websockets_server(
    tls: bool, deflate: bool, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    async def main() -> None:
        seen: list[str | None] = []

        async def handler(conn: ServerConnection) -> None:
            seen.append(conn.subprotocol)
            async for msg in conn:
                await conn.send(msg)

        async with ws_serve(
            handler, "127.0.0.1", 0, ssl=_ctx(tls, server_ssl),
            compression="deflate" if deflate else None,
            subprotocols=["chat", "game.v2"],  # type: ignore[list-item]
            max_size=2**22,
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            scheme = "wss" if tls else "ws"
            ws = await connect(
                f"{scheme}://localhost:{port}/", ssl=_ctx(tls, client_ssl), deflate=True,
                subprotocols=["game.v2"],
            )
            assert ws.subprotocol == "game.v2"
            assert ws._conn is not None and (ws._conn.deflate is not None) == deflate
            for msg in MESSAGES:
                await ws.send(msg)
                assert await ws.recv() == msg
            rtt = await ws.ping()
            assert rtt >= 0
            await ws.close()
            assert ws.close_code == 1000
        assert seen == ["game.v2"]

    run(main())


def test_websockets_server_shutdown_reaches_our_client_as_1001() -> None:
    async def main() -> None:
        async def handler(conn: ServerConnection) -> None:
            await conn.wait_closed()

        server = await ws_serve(handler, "127.0.0.1", 0)
        port = next(iter(server.sockets)).getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}/")
        server.close()
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.code == 1001
        await asyncio.wait_for(ws.wait_closed(), 5)
        await server.wait_closed()

    run(main())


def test_our_shutdown_reaches_websockets_client_as_1001() -> None:
    async def main() -> None:
        server = await serve(echo, "127.0.0.1", 0)
        async with ws_connect(f"ws://127.0.0.1:{server.port}/") as client:
            await client.send("x")
            assert await client.recv() == "x"
            await server.shutdown()
            with pytest.raises(websockets.ConnectionClosedOK):
                await client.recv()
            assert client.close_code == 1001

    run(main())


@TLS
@DEFLATE
def test_aiohttp_client_against_our_server(
    tls: bool, deflate: bool, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    async def main() -> None:
        async with await serve(
            echo, "127.0.0.1", 0, ssl=_ctx(tls, server_ssl), deflate=True,
            subprotocols=["game.v1"],
        ) as server:
            scheme = "wss" if tls else "ws"
            async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{scheme}://localhost:{server.port}/",
                ssl=_ctx(tls, client_ssl) or False,
                compress=15 if deflate else 0,
                protocols=("game.v1",),
                max_msg_size=2**22,
            ) as client:
                assert client.protocol == "game.v1"
                assert bool(client.compress) == deflate
                for msg in MESSAGES:
                    if isinstance(msg, str):
                        await client.send_str(msg)
                        got = await client.receive()
                        assert got.type == aiohttp.WSMsgType.TEXT and got.data == msg
                    else:
                        await client.send_bytes(msg)
                        got = await client.receive()
                        assert got.type == aiohttp.WSMsgType.BINARY and got.data == msg
                await client.close()
                assert client.close_code == 1000

    run(main())
