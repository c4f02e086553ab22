"""Server configuration: every tunable of the game server in one frozen dataclass.

Units are in the field names or docstrings: rates in Hz, durations in seconds, sizes in bytes.
The defaults are what ``gameserver`` uses when the command line does not say otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AuthHook", "ConfigError", "ServerConfig", "check_game", "load_auth_hook",
           "load_game_class", "load_object"]

#: Authentication hook: receives the HELLO ``token`` (``None`` if absent) and returns truthy to
#: admit the player, falsy (or raises) to refuse it: ERROR 4001 then close 4001.
AuthHook = Callable[[str | None], bool | Awaitable[bool]]


class ConfigError(ValueError):
    """The operator's configuration is invalid (our caller's fault, never a peer's)."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs; validated by :meth:`check`.

    ``games`` maps a registry name (what HELLO's ``"game"`` names) to a game class; the first
    entry is the default game for a HELLO that names neither game nor room.
    """

    games: Mapping[str, type[Any]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    tick_rate: float | None = None        # Hz; None: the game class's own (or 30)
    send_rate: float | None = None        # Hz; None: the tick rate (must divide it)
    max_players: int | None = None        # per room; None: the game class's own
    tls_cert: Path | None = None
    tls_key: Path | None = None
    origins: tuple[str, ...] | None = None  # Origin allow-list; None: any origin
    auth: AuthHook | None = None
    static_root: Path | None = None       # None: the installed clients/web folder
    ws_path: str = "/ws"
    # Session
    hello_timeout: float = 10.0           # s before an unidentified connection gets 4012
    resume_grace: float = 15.0            # s a dropped player is kept for RESUME
    max_message_size: int = 4096          # bytes per client message (over it: close 1009)
    input_burst_factor: float = 2.0       # token bucket depth = factor x tick rate (inputs)
    input_rate_factor: float = 1.5        # token refill = factor x tick rate (inputs / s)
    flood_strikes: int = 30               # rate-limited inputs tolerated (refill 1/s) -> 4008
    bad_message_strikes: int = 5          # bad messages tolerated (refill 1 per 2 s) -> 4000
    # Rooms and streaming
    empty_room_ttl: float = 10.0          # s an empty room lives before disposal
    snapshot_ring: int = 64               # recent snapshots kept per room (catch-up baselines)
    high_water: int = 256 * 1024          # bytes buffered on a socket above which it is skipped
    slow_timeout: float = 5.0             # s of continuous skipping before close 4009
    record_dir: Path | None = None        # write one replay file per room here (docs/REPLAY.md)
    record_keyframe: float = 10.0         # s of match between keyframes in a replay file
    event_backlog: int = 1024             # events held per player while skipped / dropped
    event_backlog_bytes: int = 128 * 1024  # bytes of them; past either bound: the player leaves
    send_buffer: int | None = None        # kernel SO_SNDBUF per client socket (None: OS)
    max_rooms: int = 1000                 # bound on live rooms per process
    max_connections: int = 10000          # bound on open game connections
    seed: int | None = None               # base RNG seed for rooms (None: random)
    room_config: Mapping[str, Any] = field(default_factory=dict)  # on_create(config) of rooms
    ping_interval: float | None = 20.0    # WebSocket keepalive ping period (s); None: no pings
    # Cluster (issue 10): without redis_url the process is the embedded single node
    redis_url: str | None = None          # redis://HOST:PORT/DB of the cluster's Redis
    public_url: str | None = None         # ws(s)://... clients should dial for this node
    handover: bool = False                # on SIGTERM hand rooms to another node via Redis
    # Edge: reverse proxies, path prefix, per-IP limits (gameserver/proxy.py, iplimits.py)
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose Forwarded / X-Forwarded-For we read
    path_prefix: str = ""                 # e.g. "/game": every route lives under it
    max_connections_per_ip: int = 64      # open game connections per client IP (0: no limit)
    join_rate_per_ip: float = 5.0         # HELLOs per second per client IP (0: no limit)
    join_burst_per_ip: int = 20           # join bucket depth per client IP
    ip_limit_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # CIDRs not limited
    max_tracked_ips: int = 16384          # bound on the per-IP table
    ip_limit_log_interval: float = 10.0   # s between INFO lines about per-IP refusals
    drain_seconds: float = 0.0            # s of /readyz 503 after SIGTERM before players close
    history: float | None = None          # s of world history per room (lag compensation,
                                          # 0..10, 0 = off); None: the game's Game.history
    # Stall deadlines (SPEC.md section 7): a peer silent, stalled or not reading is cut within
    ping_timeout: float | None = 20.0     # s to answer a keepalive ping, else close 1011
    frame_timeout: float | None = 10.0    # s a frame / fragmented message may stay partial: 1008
    close_timeout: float = 2.0            # s to wait for the peer's close frame, then abort
    # File descriptors (gameserver.fdlimit): kept free for /healthz, accepting and the process
    fd_reserve: int = 64
    # Interest management and spectators (gameserver/interest.py, viewstream.py)
    max_spectators: int | None = None     # per room; None: the game class's own
    # --workers N (gameserver.supervisor): set in each worker process, None when single
    worker_id: int | None = None          # tags room ids (game-w<i>-<n>) and resume tokens

    def check(self) -> ServerConfig:
        """Raise :class:`ConfigError` naming the bad setting; return ``self`` when valid."""
        if not self.games:
            raise ConfigError("no game class configured")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port out of range: {self.port}")
        for name, value in (("tick_rate", self.tick_rate), ("send_rate", self.send_rate)):
            if value is not None and (not 1 <= value <= 240 or value != int(value)):
                raise ConfigError(f"{name} must be a whole number of Hz in 1..240, got {value}")
        if self.max_players is not None and self.max_players < 1:
            raise ConfigError("max_players must be >= 1")
        if not self.record_keyframe > 0:
            raise ConfigError("record_keyframe must be > 0 seconds")
        if self.record_dir is not None and not Path(self.record_dir).is_dir():
            raise ConfigError(f"--record: {self.record_dir} is not a directory")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.max_message_size < 64:
            raise ConfigError("max_message_size too small to carry a HELLO")
        if self.snapshot_ring < 2:
            raise ConfigError("snapshot_ring must keep at least 2 snapshots")
        if self.redis_url is not None and not self.redis_url.startswith(
                ("redis://", "rediss://", "unix://")):
            raise ConfigError(f"--redis must be a redis:// URL, got {self.redis_url!r}")
        if self.public_url is not None and not self.public_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"--public-url must be a ws:// or wss:// URL, got "
                              f"{self.public_url!r}")
        if self.handover and self.redis_url is None:
            raise ConfigError("--handover needs --redis (rooms are handed over through Redis)")
        self._check_edge()
        if self.history is not None and not 0 <= self.history <= 10:
            raise ConfigError(f"history must be 0..10 seconds, got {self.history}")
        for name, t in (("ping_interval", self.ping_interval), ("ping_timeout",
                        self.ping_timeout), ("frame_timeout", self.frame_timeout),
                        ("close_timeout", self.close_timeout),
                        ("slow_timeout", self.slow_timeout),
                        ("resume_grace", self.resume_grace),
                        ("hello_timeout", self.hello_timeout)):
            if t is not None and not t > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {t}")
        if self.fd_reserve < 8:
            raise ConfigError(f"fd_reserve must be >= 8, got {self.fd_reserve}")
        for name, cls in self.games.items():
            check_game(name, cls)
        return self

    def _check_edge(self) -> None:
        from gameserver.proxy import parse_networks

        for name in ("trusted_proxies", "ip_limit_exempt"):
            try:
                parse_networks(getattr(self, name))
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        p = self.path_prefix
        if p and (not p.startswith("/") or p.endswith("/") or any(c in p for c in "?#% \t")):
            raise ConfigError(f"path_prefix must look like /game (no trailing /), got {p!r}")
        if self.max_connections_per_ip < 0 or self.join_rate_per_ip < 0:
            raise ConfigError("per-IP limits must be >= 0 (0: no limit)")
        if self.join_burst_per_ip < 1 or self.max_tracked_ips < 1:
            raise ConfigError("join_burst_per_ip and max_tracked_ips must be >= 1")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"


def check_game(name: str, cls: type[Any]) -> None:
    """Refuse a game class whose declarations are invalid, at startup (ConfigError naming the
    class and the problem) rather than when its first room is created (the first player would
    get 4006): the class attributes, the entity field schema and the input schema."""
    from gameserver.rules import check_game_class
    from gameserver.schema import WorldSchema

    where = f"game {name!r} ({getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', cls)})"
    try:
        check_game_class(cls)
        WorldSchema(cls.fields)
        cls.inputs.to_wire()
    except (TypeError, ValueError) as exc:  # SchemaError is a ValueError
        raise ConfigError(f"{where}: invalid: {exc}") from exc


def load_object(spec: str) -> Any:
    """Import ``"package.module:attr[.attr]"`` and return the object (ConfigError otherwise)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"expected MODULE:GameClass, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:  # the module itself raised, e.g. an invalid InputSchema(...)
        raise ConfigError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
                          ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigError(f"{module_name!r} has no attribute {attr!r}") from exc
    return obj


def load_game_class(spec: str) -> type[Any]:
    """Import ``"package.module:ClassName"`` and return the class (ConfigError otherwise)."""
    obj = load_object(spec)
    if not isinstance(obj, type):
        raise ConfigError(f"{spec} is not a class")
    return obj


def load_auth_hook(spec: str) -> AuthHook:
    """Import ``"package.module:function"``: the auth hook (sync or async, token -> bool)."""
    obj = load_object(spec)
    if not callable(obj) or isinstance(obj, type):
        raise ConfigError(f"{spec} is not a function")
    return obj
