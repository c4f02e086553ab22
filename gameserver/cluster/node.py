"""Node identity and presence: who this process is in the cluster, and who else is alive.

A node is one server process started with ``--redis``. At start it draws a random
``node_id`` (8 hex digits: :func:`new_node_id`; a restart is a new node) and takes its
``url`` (what clients dial) from ``--public-url``, else the server's own ``ws_url``.

Presence is the hash ``gs:node:<id>`` (see :mod:`gameserver.cluster.keys`) rewritten by the
node's directory sync every ``SYNC_PERIOD`` (1 s) with a TTL of ``NODE_TTL_MS`` (5 s): a
node that dies (SIGKILL, power, partition) stops refreshing it and is gone from Redis within
5 s; readers also prune it from the ``gs:nodes`` set. Its room entries carry the same TTL,
and every read of the directory keeps only rooms whose node is still present, so the rooms of
a dead node are never offered again.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from gameserver.cluster import keys as K

__all__ = ["LiveNode", "NodeIdentity", "new_node_id", "parse_node"]


def new_node_id() -> str:
    """A random node id: 8 lowercase hex digits (32 bits; a collision needs ~65k nodes)."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class NodeIdentity:
    """This process's identity: ``node_id``, public ``url``, ``worker`` index, start time."""

    node_id: str
    url: str
    worker: int = 0
    started: float = field(default_factory=time.time)

    def presence(self, *, games: dict[str, int], rooms: int, players: int,
                 max_rooms: int = 1000) -> dict[str, str]:
        """The ``gs:node:<id>`` hash fields for one sync (``games``: name -> seats per room)."""
        return {"id": self.node_id, "url": self.url, "worker": str(self.worker),
                "games": json.dumps(games, separators=(",", ":")), "rooms": str(rooms),
                "players": str(players), "max_rooms": str(max_rooms),
                "started": f"{self.started:.3f}", "updated": f"{time.time():.3f}"}


@dataclass(frozen=True)
class LiveNode:
    """A node as read back from its presence hash."""

    node_id: str
    url: str
    worker: int
    games: dict[str, int]
    rooms: int
    players: int
    updated: float


def parse_node(raw: Any) -> LiveNode | None:
    """A presence hash (HGETALL reply) as :class:`LiveNode`, None if absent or malformed."""
    h = K.decode_hash(raw)
    if h is None:
        return None
    node_id, url = h.get("id"), h.get("url")
    if not node_id or not url or not url.startswith(("ws://", "wss://")):
        return None
    games_raw = K.load_json(h.get("games", "").encode())
    games: dict[str, int] = {}
    if isinstance(games_raw, dict):
        for g, cap in games_raw.items():
            c = K.as_int(cap, 1, 1 << 20)
            if isinstance(g, str) and c is not None:
                games[g] = c
    try:
        updated = float(h.get("updated", "0"))
    except ValueError:
        updated = 0.0
    return LiveNode(node_id=node_id, url=url, worker=K.as_int(h.get("worker"), 0, 1 << 16) or 0,
                    games=games, rooms=K.as_int(h.get("rooms")) or 0,
                    players=K.as_int(h.get("players")) or 0, updated=updated)
