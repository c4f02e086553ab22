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

__all__ = ["AuthHook", "ConfigError", "ServerConfig", "load_auth_hook", "load_game_class",
           "load_object"]

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
    event_backlog: int = 1024             # events held per player while skipped / dropped
    event_backlog_bytes: int = 128 * 1024  # bytes of them; past either bound: the player leaves
    send_buffer: int | None = None        # kernel SO_SNDBUF per client socket (None: OS)
    max_rooms: int = 1000                 # bound on live rooms per process
    max_connections: int = 10000          # bound on open game connections
    seed: int | None = None               # base RNG seed for rooms (None: random)
    room_config: Mapping[str, Any] = field(default_factory=dict)  # on_create(config) of rooms
    ping_interval: float | None = 20.0    # WebSocket keepalive ping period (s)
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
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.max_message_size < 64:
            raise ConfigError("max_message_size too small to carry a HELLO")
        if self.snapshot_ring < 2:
            raise ConfigError("snapshot_ring must keep at least 2 snapshots")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"


def load_object(spec: str) -> Any:
    """Import ``"package.module:attr[.attr]"`` and return the object (ConfigError otherwise)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"expected MODULE:GameClass, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
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
