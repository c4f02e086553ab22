"""Many machines on Redis: node presence, the room directory, redirects, matchmaking.

Only imported in cluster mode (``--redis URL``), except :mod:`gameserver.cluster.seats`,
whose in-memory book also serves ``/matchmake`` on a single node. Modules:

* ``keys``       the Redis key layout and TTLs, defensive readers of replies
* ``link``       the bounded, counted Redis link and its degraded mode (:class:`ClusterUnavailable`)
* ``node``       node identity and presence
* ``directory``  the room directory and resume-token index (background sync, lookups)
* ``seats``      seat reservations (:class:`Seat`, :class:`SeatError`, the local book)
* ``matchmake``  ``/matchmake`` and the Redis seat book
* ``service``    :class:`Cluster`, the facade a server holds
"""
