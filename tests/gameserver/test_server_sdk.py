"""Interop with the Python SDK (clients.GameClient): it joins, sees its avatar move with its
own inputs, and resumes transparently after the server drops its TCP connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

client_mod = pytest.importorskip("clients.client")


def test_game_client_against_server(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            c = client_mod.GameClient(h.server.ws_url, game="walker", name="sdk",
                                      reconnect=True)
            await c.connect()
            try:
                pid = c.player
                room = h.server.rooms.rooms[next(iter(h.server.rooms.rooms))]
                p = room.players[pid]
                for _ in range(6):
                    c.send_input(dx=1.0, dy=0.0)
                    await asyncio.sleep(0.02)
                updates = c.updates()
                async for _ in updates:
                    xs = c.world["x"]
                    if len(xs) and float(xs.max()) > 1.0:
                        break
                assert room.acks[pid][0] == 6
                # The server drops the TCP connection: the SDK RESUMEs as the same player.
                old = p.ws
                assert old is not None
                old._transport.abort()
                for _ in range(500):  # the SDK backs off (jitter) before it resumes
                    # the server writes the snapshot before the client has read its WELCOME:
                    # wait for both sides (a busy box separates them by a few ms)
                    if (p.ws is not None and p.ws is not old and p.last_sent is not None
                            and c.stats.reconnects >= 1):
                        break
                    await asyncio.sleep(0.02)
                assert p.ws is not None and p.ws is not old and p.ws.open
                assert c.player == pid and c.stats.reconnects == 1
                assert [q.player_id for q in room.players.values()] == [pid]
            finally:
                await c.close()
            await asyncio.sleep(0.1)
            assert (pid, "leave") in kit.Walker.left
    kit.run(main())
