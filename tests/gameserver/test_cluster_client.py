"""End to end with the Python SDK: GameClient pointed at the wrong node follows the 4013
REDIRECT (SPEC.md section 7) to the node holding the room. Runs once the SDK follows
redirects (the handover branch adds that; checked against a merge of both: it passes)."""

from __future__ import annotations

from typing import Any

import pytest
from cluster_kit import cluster, synced

import clients.backoff

pytestmark = pytest.mark.skipif(not hasattr(clients.backoff, "redirect_url"),
                                reason="this GameClient does not follow 4013 redirects yet")


def test_game_client_follows_a_redirect_to_the_rooms_node(kit: Any, redis_url: str) -> None:
    from clients.client import GameClient

    async def main() -> None:
        async with cluster(kit, redis_url) as (a, b):
            bob = await b.join(name="bob")
            room = bob.welcome.room
            await synced(b.server)
            client = GameClient(a.server.ws_url, room=room, name="ann")
            try:
                await client.connect()
                assert client.welcome.room == room
                assert client.url == b.server.ws_url and client.stats.redirects == 1
                assert any(p.name == "ann" for p in b.server.rooms.rooms[room].players.values())
                assert not a.server.rooms.rooms  # nothing was created on the wrong node
            finally:
                await client.close()
    kit.run(main())
