"""The cluster's exceptions (no Redis import: sessions use them in single-node mode too)."""

from __future__ import annotations

__all__ = ["BadReply", "ClusterUnavailable", "Redirect", "SeatError"]


class ClusterUnavailable(Exception):
    """Redis is unreachable, too slow or answered garbage: the cluster view is unknown.

    Not the peer's fault: a join that needs the directory is refused with close 4018
    (``CLUSTER_UNAVAILABLE``), try again later; rooms already running are unaffected.
    """


class BadReply(ClusterUnavailable):
    """Redis answered, but refused the command (e.g. WRONGTYPE: a key of ours holds someone
    else's value). The link stays up; the caller treats the entry as absent."""


class Redirect(Exception):
    """The room, resume token or reservation is held by another live node: dial ``url``
    (ERROR 4013 + close 4013, SPEC.md section 7)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class SeatError(Exception):
    """A reservation refused, or none could be made; ``code`` is the ERROR / close code
    (4017 for a HELLO's bad reservation), ``status`` the HTTP status for /matchmake."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.status = status
