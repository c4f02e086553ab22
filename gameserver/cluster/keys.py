"""The cluster's Redis key layout, its TTLs, and defensive readers for what comes back.

Every key starts with ``gs:``; one Redis database holds one cluster (``redis://HOST/DB``).
Times are milliseconds. Writers and TTLs (docs/ARCHITECTURE.md has the full table):

=========================  ======  ==========================================  ==============
key                        type    value                                       TTL (ms)
=========================  ======  ==========================================  ==============
``gs:node:<node>``         hash    id, url, worker, games (JSON name->seats),  NODE_TTL,
                                   rooms, players, max_rooms, started, updated every SYNC
``gs:nodes``               set     node ids (readers prune the dead)           none
``gs:room:<room>``         hash    id, game, node, url, worker, players,       ROOM_TTL,
                                   capacity, updated (pending=1: reserved,     every SYNC
                                   not created yet)                            (PENDING_TTL)
``gs:game:<game>``         set     room ids of that game (readers prune)       GAME_TTL
``gs:tok:<token>``         string  node id holding the resume token            TOKEN_TTL,
                                                                               every TOKEN_REFRESH
``gs:resv:<token>``        string  JSON {room, game, node, url}: a seat        RESERVATION_TTL
``gs:resv:room:<room>``    zset    reservation token -> expiry (Redis TIME ms) 2 x RESERVATION
``gs:mseq``                string  counter for matchmaker-allocated room ids   none
=========================  ======  ==========================================  ==============
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "NODE_TTL_MS", "PENDING_TTL_MS", "RESERVATION_TTL_MS", "ROOM_TTL_MS", "SYNC_PERIOD",
    "TOKEN_REFRESH", "TOKEN_TTL_MS", "as_int", "as_str", "decode_hash", "game_key", "node_key",
    "resv_key", "resv_room_key", "room_key", "tok_key",
]

PREFIX = "gs:"
#: Seconds between two directory syncs (presence + every room) of a node.
SYNC_PERIOD = 1.0
#: A node's presence, and each of its room entries, expire this long after its last sync:
#: a node that dies vanishes from the directory within NODE_TTL_MS (plus up to one period).
NODE_TTL_MS = 5000
ROOM_TTL_MS = 5000
#: A game's room-id set lives this long after the last sync of any node touching it.
GAME_TTL_MS = 60_000
#: A resume-token index entry lives this long; its node rewrites it every TOKEN_REFRESH s.
TOKEN_TTL_MS = 300_000
TOKEN_REFRESH = 60.0
#: A seat reservation holds its seat this long (the player must send HELLO in time).
RESERVATION_TTL_MS = 15_000
#: A room the matchmaker allocated (on a node that creates it when the player arrives).
PENDING_TTL_MS = RESERVATION_TTL_MS + 5000

NODES = PREFIX + "nodes"
MSEQ = PREFIX + "mseq"


def node_key(node: str) -> str:
    return f"{PREFIX}node:{node}"


def room_key(room: str) -> str:
    return f"{PREFIX}room:{room}"


def game_key(game: str) -> str:
    return f"{PREFIX}game:{game}"


def tok_key(token: str) -> str:
    return f"{PREFIX}tok:{token}"


def resv_key(token: str) -> str:
    return f"{PREFIX}resv:{token}"


def resv_room_key(room: str) -> str:
    return f"{PREFIX}resv:room:{room}"


# ------------------------------------------------------------------ defensive decoding
# Redis is shared infrastructure: a value may be missing, truncated or someone else's. These
# return None for anything not of the expected shape; callers treat that as "absent".

def as_str(v: Any, limit: int = 2048) -> str | None:
    """A bytes/str reply as str (UTF-8, at most ``limit`` chars), else None."""
    if isinstance(v, bytes):
        try:
            v = v.decode()
        except UnicodeDecodeError:
            return None
    return v if isinstance(v, str) and 0 < len(v) <= limit else None


def as_int(v: Any, lo: int = 0, hi: int = 2**53) -> int | None:
    """An int reply (or decimal bytes) within [lo, hi], else None."""
    if isinstance(v, bytes | str):
        try:
            v = int(v)
        except ValueError:
            return None
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    return v if lo <= v <= hi else None


def decode_hash(v: Any) -> dict[str, str] | None:
    """An HGETALL reply as {str: str}; None if empty (missing key) or not a mapping."""
    if not isinstance(v, dict) or not v:
        return None
    out: dict[str, str] = {}
    for k, x in v.items():
        ks, xs = as_str(k, 64), as_str(x, 4096)
        if ks is not None and xs is not None:
            out[ks] = xs
    return out or None


def load_json(v: Any) -> Any:
    """A JSON reply decoded, or None when it is not valid JSON."""
    s = as_str(v, 8192)
    if s is None:
        return None
    try:
        return json.loads(s)
    except ValueError:
        return None
