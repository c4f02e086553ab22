"""Per-client-address limits (concurrent game connections, join rate) and the token bucket.

:class:`TokenBucket` is the one rate limiter of the server: sessions use it for input rate,
flood and bad-message strikes, :class:`IpLimiter` for each address's joins.

One address (the client IP from :mod:`gameserver.proxy`; an IPv6 address counts by its /64,
the block one subscriber usually gets) may hold at most ``max_connections`` game
connections (``--max-connections-per-ip``; the next upgrade is refused with HTTP 429 and
``Retry-After`` before any WebSocket exists) and may join (HELLO) at ``join_rate`` per
second with bursts of ``join_burst`` (``--join-rate-per-ip``; over it: ERROR 4020 + close
4020, SPEC.md section 7). Addresses in ``exempt`` (default: loopback, for local bots and a
same-host proxy that is not configured as trusted) are not limited. ``0`` disables a limit.

Bounded memory: at most ``max_tracked`` addresses are tracked. An address with open
connections is *active*; one without is *idle* (only its join bucket is remembered) and
idle entries are kept in least-recently-used order: a new address evicts the oldest idle
one when the table is full, and idle entries whose bucket has refilled are swept (they are
the same as unknown addresses). Only when every tracked address is active is a new address
refused (``table_full``; with the default bound above ``max_connections`` that means the
server is full anyway).

Refusals are counted in ``gameserver_ip_limit_refusals_total{kind}`` (``connections``,
``joins``, ``table_full``) and logged at INFO at most once per ``log_interval`` seconds,
summing what was refused since the previous line (never one line per refused peer).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from gameserver.proxy import IPAddress, parse_networks

__all__ = ["IpLimiter", "TokenBucket", "ip_key", "key_text"]

log = logging.getLogger(__name__)

Kind = str  # "connections" | "joins" | "table_full"


_V6 = 1 << 32  # IPv6 keys start above every IPv4 address


def ip_key(ip: IPAddress) -> int:
    """The table key of an address: an IPv4 address's integer, or ``2**32 +`` an IPv6
    address's /64 prefix (an int: hashing ``ipaddress`` objects or strings costs more)."""
    if isinstance(ip, ipaddress.IPv6Address):
        return _V6 + (int(ip) >> 64)
    return int(ip)


def key_text(key: int) -> str:
    """``ip_key`` back to text for logs: ``192.0.2.1`` or ``2001:db8:1:2::/64``."""
    if key < _V6:
        return str(ipaddress.IPv4Address(key))
    return str(ipaddress.IPv6Network(((key - _V6) << 64, 64)))


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` tokens per second (``now`` in
    seconds of any monotonic clock). Sessions use it for input rate, flood and strike limits;
    :class:`IpLimiter` for each address's join rate."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = float(rate)
        self.tokens = float(capacity)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if available (True) else False."""
        tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False

    def full(self, now: float) -> bool:
        """True once the bucket has refilled to ``capacity`` (nothing left to remember)."""
        return self.tokens + (now - self.stamp) * self.rate >= self.capacity


class _Entry(TokenBucket):
    """One address: its open connections and its join bucket."""

    __slots__ = ("conns",)

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        super().__init__(capacity, rate, now)
        self.conns = 0


class IpLimiter:
    """The per-address table (see the module docstring). Event-loop thread only."""

    def __init__(self, *, max_connections: int = 64, join_rate: float = 5.0,
                 join_burst: int = 20, exempt: Iterable[str] = ("127.0.0.0/8", "::1/128"),
                 max_tracked: int = 16384, log_interval: float = 10.0,
                 on_refuse: Callable[[Kind], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_tracked < 1:
            raise ValueError("max_tracked must be >= 1")
        self.max_connections = max_connections
        self.join_rate = float(join_rate)
        self.join_burst = float(max(join_burst, 1))
        self.exempt = parse_networks(exempt)
        self.max_tracked = max_tracked
        self.log_interval = log_interval
        self._on_refuse = on_refuse
        self._clock = clock
        self._active: dict[int, _Entry] = {}
        self._idle: OrderedDict[int, _Entry] = OrderedDict()
        self._next_log = 0.0
        self._next_sweep = 0.0
        self._pending: dict[Kind, int] = {}

    # ----------------------------------------------------------------------- queries

    def __len__(self) -> int:
        """Addresses tracked now (active + idle)."""
        return len(self._active) + len(self._idle)

    def connections(self, ip: IPAddress) -> int:
        """Open connections counted for ``ip``'s key."""
        e = self._active.get(ip_key(ip))
        return e.conns if e is not None else 0

    def is_exempt(self, ip: IPAddress | None) -> bool:
        return ip is None or any(ip in net for net in self.exempt)

    # ----------------------------------------------------------------------- updates

    def acquire(self, ip: IPAddress | None) -> str | None:
        """Count one more connection for ``ip``: ``None`` if allowed, else the refusal kind.

        Every ``None`` answer for a non-exempt address must be paired with one
        :meth:`release` when that connection ends.
        """
        if self.max_connections <= 0 or self.is_exempt(ip):
            return None
        assert ip is not None
        now = self._clock()
        key = ip_key(ip)
        e = self._entry(key, now)
        if e is None:
            return self._refuse("table_full", key, now)
        if e.conns >= self.max_connections:
            return self._refuse("connections", key, now)
        if e.conns == 0:
            self._idle.pop(key, None)
            self._active[key] = e
        e.conns += 1
        return None

    def release(self, ip: IPAddress | None) -> None:
        """One connection counted by :meth:`acquire` ended."""
        if self.max_connections <= 0 or self.is_exempt(ip):
            return
        assert ip is not None
        key = ip_key(ip)
        e = self._active.get(key)
        if e is None:
            return
        e.conns -= 1
        if e.conns <= 0:
            e.conns = 0
            del self._active[key]
            self._idle[key] = e  # most recently used end
            self._trim()

    def allow_join(self, ip: IPAddress | None) -> bool:
        """Spend one join token of ``ip`` (True), or count a refusal (False)."""
        if self.join_rate <= 0 or self.is_exempt(ip):
            return True
        assert ip is not None
        now = self._clock()
        key = ip_key(ip)
        e = self._entry(key, now)
        if e is None:
            self._refuse("table_full", key, now)
            return False
        if e.take(now):
            return True
        self._refuse("joins", key, now)
        return False

    # ---------------------------------------------------------------------- internals

    def _entry(self, key: int, now: float) -> _Entry | None:
        e = self._active.get(key)
        if e is not None:
            return e
        e = self._idle.get(key)
        if e is not None:
            self._idle.move_to_end(key)
            return e
        if now >= self._next_sweep:
            self._sweep(now)
        if len(self) >= self.max_tracked:
            if not self._idle:
                return None
            self._idle.popitem(last=False)  # least recently used idle address
        e = self._idle[key] = _Entry(self.join_burst, self.join_rate, now)
        return e

    def _trim(self) -> None:
        while len(self) > self.max_tracked and self._idle:
            self._idle.popitem(last=False)

    def _sweep(self, now: float) -> None:
        """Forget idle addresses whose join bucket is full again (oldest first)."""
        self._next_sweep = now + 1.0
        idle = self._idle
        while idle:
            e = next(iter(idle.values()))
            if e.rate > 0 and not e.full(now):
                break  # LRU order: later entries were touched more recently
            idle.popitem(last=False)

    def _refuse(self, kind: Kind, key: int, now: float) -> str:
        if self._on_refuse is not None:
            self._on_refuse(kind)
        self._pending[kind] = self._pending.get(kind, 0) + 1
        if now >= self._next_log:
            self._next_log = now + self.log_interval
            counts = " ".join(f"{k}={v}" for k, v in sorted(self._pending.items()))
            log.info("per-IP limit refusing %s last_ip=%s tracked=%d interval=%.0fs",
                     counts, key_text(key), len(self), self.log_interval)
            self._pending.clear()
        return kind
