"""Rolling-deploy handover: a room's state moves to another node through Redis.

* :mod:`gameserver.handover.codec`: msgpack with numpy arrays and big ints (the blob format);
* :mod:`gameserver.handover.state`: :func:`serialize_room` / :func:`restore_room` (pure: no I/O);
* :mod:`gameserver.handover.transfer`: the Redis protocol (offer, claim, answer, take back) and
  the :class:`HandoverAgent` a server runs with ``--redis`` (receiver) and ``--handover``
  (sender on SIGTERM).

docs/ARCHITECTURE.md ("Room handover") has the keys and the exactly-once argument.
"""

from gameserver.handover.state import RestoreError, prepare_room, restore_room, serialize_room

__all__ = ["RestoreError", "prepare_room", "restore_room", "serialize_room"]
