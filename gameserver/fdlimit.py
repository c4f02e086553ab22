"""File descriptors: raise the soft limit at start, and the connection budget under it.

Every connection holds one file descriptor. When the process runs out (``EMFILE``), accept()
fails and real players are refused while idle sockets hold every descriptor. So:

* :func:`raise_nofile_limit` lifts the soft ``RLIMIT_NOFILE`` to the hard limit at startup
  (the CLI calls it once; a library user may too);
* :func:`connection_budget` is how many sockets the listening server may hold at once: the
  soft limit, minus what the process already has open, minus ``reserve`` descriptors kept
  free (for /healthz answers, accepting so that shedding can happen at all, log files, a
  Redis client, static files). The WebSocket server (``protocol.aio.serve(max_open=...)``)
  sheds the oldest connections that have no player yet when a new one would exceed it
  (handshake incomplete first, then upgraded but no HELLO), so the process never reaches the
  limit because of idle sockets;
* :class:`AcceptErrorLog` is the event loop's exception handler wrapper that turns the accept
  loop's ``EMFILE`` / ``ENFILE`` reports (should the limit be hit anyway, e.g. by descriptors
  opened elsewhere) into one log line per interval instead of one per failed accept.
  asyncio backs the accept loop off by itself (it stops accepting for one second after such
  an error); libuv (uvloop) drops the pending connection with its reserve descriptor.

POSIX only; on a platform without :mod:`resource` the functions report "unknown" (None).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable
from typing import Any

__all__ = ["AcceptErrorLog", "connection_budget", "nofile_limits", "open_fd_count",
           "raise_nofile_limit"]

log = logging.getLogger(__name__)

#: Largest soft limit we set when the hard limit is "unlimited" (the kernel caps it anyway).
_UNLIMITED_CAP = 1 << 20


def nofile_limits() -> tuple[int, int] | None:
    """``(soft, hard)`` RLIMIT_NOFILE, or None where unknown."""
    try:
        import resource
    except ImportError:  # pragma: no cover - non-POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return int(soft), int(hard)


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return ``(before, after)`` soft limits
    (None where unknown). Never raises: a refusal (containers may forbid it) keeps the old
    limit and is logged at INFO."""
    try:
        import resource
    except ImportError:  # pragma: no cover - non-POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = _UNLIMITED_CAP
        try:  # Linux: the per-process ceiling
            with open("/proc/sys/fs/nr_open") as f:
                target = min(target, int(f.read()))
        except (OSError, ValueError):
            pass
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.info("cannot raise the file descriptor limit soft=%d hard=%d: %s",
                     soft, hard, exc)
            return int(soft), int(soft)
        return int(soft), int(target)
    return int(soft), int(soft)


def open_fd_count() -> int | None:
    """How many file descriptors this process has open (Linux/BSD), or None if unknown."""
    for d in ("/proc/self/fd", "/dev/fd"):
        try:
            return max(0, len(os.listdir(d)) - 1)  # minus the one listdir itself opened
        except OSError:
            continue
    return None


def connection_budget(reserve: int) -> int | None:
    """Sockets the server may hold: soft limit - descriptors open now - ``reserve``.

    None when the limit is unknown or unlimited. At least 1 (a tiny limit still serves).
    Call it once the listening socket is open (it counts as open now).
    """
    lim = nofile_limits()
    if lim is None:
        return None
    soft = lim[0]
    try:
        import resource

        if soft == resource.RLIM_INFINITY:
            return None
    except ImportError:  # pragma: no cover
        return None
    used = open_fd_count() or 0
    return max(1, soft - used - reserve)


_ACCEPT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class AcceptErrorLog:
    """Loop exception handler: accept-resource errors logged once per ``interval`` seconds.

    Everything else goes to the previous handler (or the loop's default). Install with
    :meth:`install`; :attr:`count` is the total suppressed+logged accept errors.
    """

    def __init__(self, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last = -float("inf")
        self._since = 0
        self.count = 0
        self._previous: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS:
            self.count += 1
            self._since += 1
            now = self._clock()
            if now - self._last >= self.interval:
                log.warning("accept failed: out of file descriptors (%s); %d accept errors "
                            "in the last %.0f s; shedding connections without a player",
                            errno.errorcode.get(exc.errno or 0, exc.errno), self._since,
                            self.interval)
                self._last = now
                self._since = 0
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
