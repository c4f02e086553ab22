"""The node's one link to Redis: bounded round trips, a degraded mode, reconnect with backoff.

Every Redis command the cluster code sends goes through :meth:`RedisLink.call`, which

* bounds it with ``timeout`` seconds (``asyncio.wait_for`` on top of redis-py's own socket
  timeouts: a Redis that stopped answering without closing its socket, e.g. SIGSTOPped,
  costs at most that long);
* counts it: one call = one round trip (a pipeline or a script is one call), by ``op`` label,
  with its latency, so the benchmark and ``/metrics`` can say what the directory costs;
* turns every failure (refused connection, timeout, a reply of the wrong shape) into
  :class:`ClusterUnavailable`, the caller's signal to degrade, never a crash.

Degraded mode: after a failure (a refused or broken connection, or ``SLOW_STRIKES`` = 2
timeouts in a row: one slow answer on a busy box is not an outage) the link is *down*.
While down, calls fail at once (no I/O) except one probe per backoff period (0.25 s
doubling to 8 s, with jitter); the first call that succeeds brings it *up* again. Down and
up each log ONE line (WARNING / INFO) per outage, not one per call. ``recovered`` counts
the outages survived: the directory sync compares it to republish everything it wrote
while Redis was away.

Nothing in the tick path awaits this: only background tasks, the join path (HELLO/RESUME of
a connection, which waits at most ``timeout``) and the HTTP endpoints do.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ResponseError

from gameserver.cluster.errors import BadReply, ClusterUnavailable
from gameserver.metrics import Counter, Gauge, Histogram, ServerMetrics

__all__ = ["BadReply", "ClusterUnavailable", "RedisLink", "Reply"]

log = logging.getLogger("gameserver.cluster")

T = TypeVar("T")
#: What redis-py hands back (bytes, ints, lists, dicts, None), to be checked before use.
Reply = Any

#: Backoff bounds between reconnect probes while Redis is down (seconds).
BACKOFF_MIN = 0.25
BACKOFF_MAX = 8.0
#: Timeouts in a row that make an outage (one slow answer on a busy box is not one; a refused
#: connection is at once).
SLOW_STRIKES = 2
#: Round-trip latency buckets (s): 100 us .. 2 s.
RTT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
               0.5, 1.0, 2.0)


class RedisLink:
    """One ``redis.asyncio`` client with timeouts, metrics and the degraded state machine."""

    def __init__(self, url: str, metrics: ServerMetrics, *, timeout: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.timeout = timeout
        self._clock = clock
        # redis-py's own timeouts too, so a stalled socket is given up inside the client;
        # a small pool bound: while down we probe with one connection at a time anyway.
        self.client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry_on_timeout=False, health_check_interval=0, max_connections=32)
        self.up = True            # optimistic until the first failure
        self.recovered = 0        # outages survived (bumped when the link comes back up)
        self._backoff = BACKOFF_MIN
        self._next_try = 0.0
        self._down_since: float | None = None
        self._closed = False
        self._slow = 0            # timeouts in a row
        self._garbage_logged = False
        reg = metrics.registry
        self.m_calls = _metric(reg, Counter, "gameserver_redis_round_trips_total",
                               "Redis round trips (a pipeline or script is one) by operation.",
                               ("op",))
        self.m_errors = _metric(reg, Counter, "gameserver_redis_errors_total",
                                "Redis round trips that failed, by kind (timeout, connection, "
                                "garbage, down = refused at once while degraded).", ("kind",))
        self.m_rtt = _metric(reg, Histogram, "gameserver_redis_round_trip_seconds",
                             "Latency of one Redis round trip (seconds).", buckets=RTT_BUCKETS)
        self.m_degraded = _metric(reg, Gauge, "gameserver_redis_degraded",
                                  "1 while Redis is unreachable (cluster joins refused), else 0.")
        self.m_outages = _metric(reg, Counter, "gameserver_redis_outages_total",
                                 "Times the link to Redis went down.")

    # -------------------------------------------------------------------------- calling

    def available(self) -> bool:
        """True if a call now would be attempted (up, or a probe is due)."""
        return not self._closed and (self.up or self._clock() >= self._next_try)

    async def call(self, op: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``fn(client)`` as one bounded round trip; :class:`ClusterUnavailable` on failure.

        ``fn`` must issue exactly one round trip (one command, pipeline or script).
        """
        if not self.available():
            self.m_errors.labels("down").inc()
            raise ClusterUnavailable("redis unavailable (reconnecting)")
        if not self.up:  # this call is the probe: others fail fast until it is answered
            self._next_try = self._clock() + self._backoff
        t0 = time.perf_counter()
        self.m_calls.labels(op).inc()
        try:
            async with asyncio.timeout(self.timeout):  # (3.11's wait_for can eat a cancel)
                result = await fn(self.client)
        except asyncio.CancelledError:
            raise
        except ResponseError as exc:  # Redis is fine, the data is not
            self.garbage(f"{op}: {exc}")
            if not self.up:
                self._recovered()
            raise BadReply(f"redis refused {op}: {exc}") from None
        except TimeoutError:
            self._slow += 1
            if self.up and self._slow < SLOW_STRIKES:
                self.m_errors.labels("timeout").inc()  # one slow answer: not an outage yet
            else:
                self._failed("timeout", f"no answer within {self.timeout:.2f}s")
            raise ClusterUnavailable("redis timed out") from None
        except Exception as exc:  # redis.ConnectionError, ResponseError, OSError ...
            self._failed("connection", f"{type(exc).__name__}: {exc}")
            raise ClusterUnavailable(f"redis error: {type(exc).__name__}") from None
        self.m_rtt.observe(time.perf_counter() - t0)
        self._slow = 0
        if not self.up:
            self._recovered()
        return result

    def garbage(self, what: str) -> None:
        """Redis answered something of the wrong shape (someone else's keys, corruption).

        Counted and logged at most once per outage window (DEBUG afterwards); the caller
        treats the entry as absent."""
        self.m_errors.labels("garbage").inc()
        log.log(logging.DEBUG if self._garbage_logged else logging.WARNING,
                "redis returned garbage, ignored what=%s", what)
        self._garbage_logged = True

    # -------------------------------------------------------------------- state machine

    def _failed(self, kind: str, detail: str) -> None:
        self.m_errors.labels(kind).inc()
        now = self._clock()
        if self.up:
            self.up = False
            self._down_since = now
            self._backoff = BACKOFF_MIN
            self.m_degraded.set(1)
            self.m_outages.inc()
            log.warning("redis unavailable, cluster degraded (local rooms keep running, "
                        "cross-node joins refused) url=%s error=%s", _safe(self.url), detail)
        else:
            self._backoff = min(BACKOFF_MAX, self._backoff * 2)
        self._next_try = now + self._backoff * random.uniform(0.5, 1.0)

    def _recovered(self) -> None:
        self.up = True
        self.recovered += 1
        self._garbage_logged = False
        down = self._clock() - (self._down_since or self._clock())
        self._down_since = None
        self.m_degraded.set(0)
        log.info("redis reachable again, cluster recovered url=%s down_s=%.1f",
                 _safe(self.url), down)

    async def close(self) -> None:
        self._closed = True
        try:
            await asyncio.wait_for(self.client.aclose(), self.timeout)
        except Exception:  # closing a dead link: nothing to save
            pass


def _safe(url: str) -> str:
    """The URL without a password (``redis://:secret@host`` -> ``redis://***@host``)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _metric(reg: Any, cls: type[Any], name: str, help_: str, labels: tuple[str, ...] = (),
            **kw: Any) -> Any:
    """Register ``name`` once per registry (two links on one registry share the metric)."""
    try:
        return reg.get(name)
    except KeyError:
        m = cls(name, help_, labels, **kw) if labels else cls(name, help_, **kw)
        reg.register(m)
        return m
