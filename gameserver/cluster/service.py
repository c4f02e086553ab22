"""The cluster facade one server process holds when started with ``--redis``.

:class:`Cluster` ties together the node's identity (:mod:`~gameserver.cluster.node`), its
link to Redis (:mod:`~gameserver.cluster.link`), the directory sync
(:mod:`~gameserver.cluster.directory`) and the seat book (:mod:`~gameserver.cluster.matchmake`).
:class:`gameserver.server.GameServer` creates it after binding (the url is known then),
hooks it into the :class:`gameserver.manager.RoomManager` (``listener``, ``room_prefix``,
``cluster``, ``seats``) and withdraws it on stop. Sessions call :meth:`locate_room` and
:meth:`locate_token` for joins that are not local; HTTP calls :meth:`cluster_rooms`.

Starting never waits for Redis: a node whose Redis is down starts, serves its local rooms,
and joins the directory when Redis answers (the sync task probes with backoff).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gameserver.cluster.directory import Directory
from gameserver.cluster.link import RedisLink
from gameserver.cluster.matchmake import RedisSeats
from gameserver.cluster.node import NodeIdentity, new_node_id
from gameserver.config import ServerConfig
from gameserver.metrics import ServerMetrics

if TYPE_CHECKING:
    from gameserver.manager import RoomManager

__all__ = ["Cluster"]

log = logging.getLogger("gameserver.cluster")


class Cluster:
    """One node of the cluster (see the module docstring)."""

    def __init__(self, config: ServerConfig, metrics: ServerMetrics, manager: RoomManager,
                 *, url: str, worker: int = 0, node_id: str | None = None,
                 timeout: float = 1.0) -> None:
        assert config.redis_url is not None
        self.node = NodeIdentity(node_id or new_node_id(), config.public_url or url, worker)
        self.link = RedisLink(config.redis_url, metrics, timeout=timeout)
        self.manager = manager
        self.directory = Directory(self.link, self.node, manager)
        self.seats = RedisSeats(self.link, self.node, self.directory)

    @property
    def node_id(self) -> str:
        return self.node.node_id

    @property
    def url(self) -> str:
        return self.node.url

    def start(self) -> None:
        """Hook into the room manager and start the background sync (returns at once)."""
        m = self.manager
        m.listener = self.directory
        prefix = self.node_id
        wid = m.config.worker_id
        if wid is not None and prefix.endswith(f"-w{wid}"):
            # a --workers node <machine>-w<i>: the manager appends "w<i>-" itself, so room ids
            # read <game>-<machine>-w<i>-<n> (gameserver.supervisor_cluster)
            prefix = prefix[:-len(f"-w{wid}")]
        m.room_prefix = f"{prefix}-"
        m.cluster = self
        m.seats = self.seats
        self.directory.start()
        log.info("cluster node started node=%s url=%s", self.node_id, self.url)

    def kill(self) -> None:
        """Tests: stop refreshing presence without cleaning up, as if the process died."""
        self.directory.kill()

    async def close(self) -> None:
        """Withdraw from the directory (best effort, bounded by the link timeout) and close."""
        await self.directory.withdraw()
        await self.link.close()

    # ---------------------------------------------------------------------- join routing

    async def locate_room(self, room_id: str) -> str | None:
        """The url of another live node holding ``room_id``, else None.
        Raises :class:`~gameserver.cluster.link.ClusterUnavailable`."""
        return await self.directory.locate_room(room_id)

    async def locate_token(self, token: str) -> str | None:
        """The url of another live node holding resume ``token``, else None."""
        return await self.directory.locate_token(token)

    async def cluster_rooms(self) -> list[dict[str, object]]:
        """Every live room of the cluster (the ``/rooms?scope=cluster`` entries)."""
        view = await self.directory.view(None)
        return [r.info() for r in sorted(view.rooms, key=lambda r: (r.node, r.room))]
