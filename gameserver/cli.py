"""Command line: ``gameserver`` / ``python -m gameserver``.

Two forms::

    gameserver [--host H] [--port P] [options]                 # the bundled example (arena)
    gameserver serve MODULE:GameClass [MODULE:Other ...] [options]
    gameserver replay FILE (--verify | --serve [--host H] [--port P])   # docs/REPLAY.md

Options: ``--host`` (default 127.0.0.1), ``--port`` (default 8000; 0 = ephemeral),
``--tick-rate HZ``, ``--send-rate HZ``, ``--max-players N`` (per room),
``--tls-cert FILE --tls-key FILE`` (serve wss:// and https://), ``--origin URL`` (repeatable:
the Origin allow-list; a refused browser gets HTTP 403), ``--auth MODULE:function`` (the
authentication hook, given the HELLO token), ``--resume-grace S``,
``--empty-room-ttl S``, ``--hello-timeout S``, ``--seed N``, ``--room-config JSON``,
``--log-level LEVEL``, ``--log-format {text,json}``; behind a proxy and per IP:
``--trusted-proxy CIDR``, ``--path-prefix PATH``, ``--max-connections-per-ip N``,
``--join-rate-per-ip R``, ``--join-burst-per-ip N``, ``--ip-limit-exempt CIDR``,
``--drain-seconds S``.

Every option may also come from ``GAMESERVER_<OPTION>`` environment variables or a TOML
``--config FILE`` (command line > environment > file > defaults; :mod:`gameserver.settings`);
``--print-config [toml|json]`` prints the result and exits 0.
``--log-level LEVEL``, ``--log-format {text,json}``; stall deadlines ``--ping-interval S``,
``--ping-timeout S``, ``--frame-timeout S`` (0 turns one off), ``--slow-timeout S``,
``--close-timeout S``; ``--fd-reserve N`` (file descriptors kept free).
``--workers N|auto`` (N worker processes behind the one port: :mod:`gameserver.supervisor`;
not with TLS; with ``--redis`` each worker is a cluster node: :mod:`gameserver.supervisor_cluster`).

On start it prints one line to stdout, e.g.
``gameserver: serving arena at http://127.0.0.1:8000/ (ws at ws://127.0.0.1:8000/ws)``,
then runs until SIGINT / SIGTERM (exit status 0) or a startup failure (status 2 for a bad
configuration, 1 if the port cannot be bound).

Logging is structured (``key=value`` text or one JSON object per line) and quiet at INFO:
startup, shutdown and room lifecycle; peers' mistakes are at DEBUG/INFO, one line each.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gameserver.config import ConfigError, ServerConfig, load_auth_hook, load_game_class
from gameserver.settings import (
    Layered,
    SettingsError,
    add_settings_options,
    parse_layered,
    render_json,
    render_toml,
)

__all__ = ["build_config", "configure_logging", "main", "parse_args", "parse_settings",
           "parse_workers"]

DEFAULT_GAME = "examples.arena:Arena"

log = logging.getLogger("gameserver")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000, 0=any)")
    p.add_argument("--tick-rate", type=int, default=None, metavar="HZ",
                   help="simulation ticks per second (default: the game's, else 30)")
    p.add_argument("--send-rate", type=int, default=None, metavar="HZ",
                   help="deltas streamed per second, <= tick rate (default: the game's)")
    p.add_argument("--max-players", type=int, default=None, metavar="N",
                   help="players per room (default: the game's)")
    p.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                   help="PEM certificate chain: serve wss:// and https://")
    p.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="PEM private key")
    p.add_argument("--origin", action="append", default=None, metavar="URL",
                   help="allowed Origin (repeatable); default: any")
    p.add_argument("--auth", default=None, metavar="MODULE:function",
                   help="auth hook: called with the HELLO token, returns true to admit "
                        "(sync or async); refused players get 4001")
    p.add_argument("--resume-grace", type=float, default=15.0, metavar="S",
                   help="seconds a dropped player may RESUME (default 15)")
    p.add_argument("--empty-room-ttl", type=float, default=10.0, metavar="S",
                   help="seconds before an empty room is disposed (default 10)")
    p.add_argument("--hello-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a new connection has to send HELLO (default 10)")
    p.add_argument("--seed", type=int, default=None, help="base RNG seed for rooms")
    p.add_argument("--room-config", type=json.loads, default={}, metavar="JSON",
                   help='config passed to every room\'s on_create, e.g. \'{"critters": 1000}\'')
    p.add_argument("--static-root", type=Path, default=None, metavar="DIR",
                   help="folder served over HTTP (default: the installed web client)")
    p.add_argument("--redis", default=None, metavar="URL",
                   help="cluster mode: redis://HOST:PORT/DB holding the room directory "
                        "(default: none, a single embedded node)")
    p.add_argument("--public-url", default=None, metavar="URL",
                   help="ws(s)://... URL clients should dial to reach this node (cluster mode)")
    p.add_argument("--handover", action="store_true",
                   help="on SIGTERM hand every room over to another node through Redis")
    p.add_argument("--history", type=float, default=None, metavar="S",
                   help="seconds of world history per room for lag compensation (0..10, "
                        "0 = off; default: the game's Game.history, 1 s for the arena)")
    # Stall deadlines (SPEC.md section 7) and file descriptors: 0 turns a deadline off.
    p.add_argument("--ping-interval", type=_seconds, default=20.0, metavar="S",
                   help="WebSocket keepalive ping period (default 20; 0 = no pings)")
    p.add_argument("--ping-timeout", type=_seconds, default=20.0, metavar="S",
                   help="seconds to answer a ping before close 1011 (default 20)")
    p.add_argument("--frame-timeout", type=_seconds, default=10.0, metavar="S",
                   help="seconds a frame or fragmented message may stay incomplete before "
                        "close 1008 (default 10; 0 = none)")
    p.add_argument("--slow-timeout", type=float, default=5.0, metavar="S",
                   help="seconds a backed-up client is skipped before close 4009 (default 5)")
    p.add_argument("--close-timeout", type=float, default=2.0, metavar="S",
                   help="seconds to wait for a peer's close frame, then abort (default 2)")
    p.add_argument("--fd-reserve", type=int, default=64, metavar="N",
                   help="file descriptors kept free: past the limit minus N the oldest "
                        "connections without a player are shed (default 64)")
    p.add_argument("--record", type=Path, default=None, metavar="DIR",
                   help="record every room to a replay file in DIR (docs/REPLAY.md)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default INFO")
    p.add_argument("--log-format", default="text", choices=("text", "json"),
                   help="key=value text (default) or JSON lines")
    _add_edge(p)
    add_settings_options(p)
    p.add_argument("--workers", default="1", metavar="N",
                   help="worker processes behind the one port (default 1: a single process; "
                        "'auto': one per core); see README 'The server'")
    p.add_argument("--worker-process", default=None, help=argparse.SUPPRESS)  # internal


def _add_edge(p: argparse.ArgumentParser) -> None:
    """Reverse proxy, path prefix, per-IP limits, draining (gameserver/proxy.py, iplimits.py)."""
    d = ServerConfig()
    p.add_argument("--trusted-proxy", action="append", default=None, metavar="CIDR",
                   help="proxy range whose Forwarded / X-Forwarded-For names the client "
                        "(repeatable; default: none)")
    p.add_argument("--path-prefix", default="", metavar="PATH",
                   help="serve every route under PATH, e.g. /game (/game/ws, /game/healthz)")
    p.add_argument("--max-connections-per-ip", type=int, default=d.max_connections_per_ip,
                   metavar="N", help="open game connections per client IP, then HTTP 429 "
                                     f"(default {d.max_connections_per_ip}; 0: no limit)")
    p.add_argument("--join-rate-per-ip", type=float, default=d.join_rate_per_ip, metavar="R",
                   help=f"joins per second per client IP, then close 4020 (default "
                        f"{d.join_rate_per_ip:g}; 0: no limit)")
    p.add_argument("--join-burst-per-ip", type=int, default=d.join_burst_per_ip, metavar="N",
                   help=f"join burst per client IP (default {d.join_burst_per_ip})")
    p.add_argument("--ip-limit-exempt", action="append", default=None, metavar="CIDR",
                   help="range the per-IP limits skip (repeatable; default: loopback; "
                        "'none' for no exemption)")
    p.add_argument("--drain-seconds", type=float, default=d.drain_seconds, metavar="S",
                   help="on SIGTERM, answer /readyz 503 and refuse new players for S seconds "
                        "before closing the others (default 0)")


def _seconds(text: str) -> float | None:
    """A duration in seconds for a deadline option; 0 means "off" (None)."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text}")
    return value or None


def parse_args(argv: Sequence[str], env: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Parse either form; ``ns.games`` is the list of ``MODULE:Class`` specs to host.

    Options also come from ``GAMESERVER_*`` variables of ``env`` (default ``os.environ``)
    and ``--config FILE`` (see :mod:`gameserver.settings`; SettingsError if bad).
    """
    return parse_settings(argv, env).namespace


def parse_settings(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Layered:
    """:func:`parse_args` with the provenance of every value (for ``--print-config``)."""
    args = list(argv)
    if args and args[0] == "serve":
        p = argparse.ArgumentParser(prog="gameserver serve",
                                    description="Serve one or more game classes.")
        p.add_argument("games", nargs="+", metavar="MODULE:GameClass",
                       help="game class to host (the first is the default game)")
        _add_common(p)
        return parse_layered(p, args[1:], env)
    p = argparse.ArgumentParser(
        prog="gameserver",
        description="Authoritative game server. Without a command it serves the bundled "
                    "example game; `gameserver serve MODULE:GameClass` serves yours.",
        epilog="commands: serve MODULE:GameClass [...] [options]; "
               "replay FILE --verify | --serve")
    _add_common(p)
    res = parse_layered(p, args, env)
    res.namespace.games = [DEFAULT_GAME]
    return res


def _game_name(cls: type[Any]) -> str:
    name = getattr(cls, "name", None)
    return name if isinstance(name, str) and name else cls.__name__.lower()


def build_config(ns: argparse.Namespace) -> ServerConfig:
    """Turn parsed arguments into a checked :class:`ServerConfig` (ConfigError if invalid)."""
    games: dict[str, type[Any]] = {}
    for spec in ns.games:
        cls = load_game_class(spec)
        name = _game_name(cls)
        if name in games:
            raise ConfigError(f"two game classes named {name!r}")
        games[name] = cls
    return ServerConfig(
        games=games, host=ns.host, port=ns.port, tick_rate=ns.tick_rate,
        send_rate=ns.send_rate, max_players=ns.max_players, tls_cert=ns.tls_cert,
        tls_key=ns.tls_key, origins=tuple(ns.origin) if ns.origin else None,
        resume_grace=ns.resume_grace, empty_room_ttl=ns.empty_room_ttl,
        hello_timeout=ns.hello_timeout, seed=ns.seed, static_root=ns.static_root,
        room_config=ns.room_config if isinstance(ns.room_config, dict) else {},
        auth=load_auth_hook(ns.auth) if ns.auth else None,
        redis_url=ns.redis, public_url=ns.public_url, handover=ns.handover,
        **_edge_settings(ns),
        history=ns.history,
        ping_interval=ns.ping_interval, ping_timeout=ns.ping_timeout,
        frame_timeout=ns.frame_timeout, slow_timeout=ns.slow_timeout,
        close_timeout=ns.close_timeout, fd_reserve=ns.fd_reserve,
        record_dir=getattr(ns, "record", None),
    ).check()


def _edge_settings(ns: argparse.Namespace) -> dict[str, Any]:
    exempt = ns.ip_limit_exempt
    return {
        "trusted_proxies": tuple(ns.trusted_proxy or ()),
        "path_prefix": ns.path_prefix.rstrip("/"),
        "max_connections_per_ip": ns.max_connections_per_ip,
        "join_rate_per_ip": ns.join_rate_per_ip,
        "join_burst_per_ip": ns.join_burst_per_ip,
        **({} if exempt is None else
           {"ip_limit_exempt": tuple(c for c in exempt if c.lower() != "none")}),
        "drain_seconds": ns.drain_seconds,
    }


class _KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg="..."`` (+ ``exc="..."``) on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = (f"ts={ts}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
                f"logger={record.name} msg={json.dumps(record.getMessage())}")
        if record.exc_info:
            line += f" exc={json.dumps(self.formatException(record.exc_info))}"
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {"ts": record.created, "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Structured logs on stderr; the protocol layer is held at WARNING unless DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level != "DEBUG":
        logging.getLogger("protocol").setLevel(logging.WARNING)


def parse_workers(value: str) -> int:
    """``--workers``: a count >= 1, or ``auto`` (``os.cpu_count()``); ConfigError otherwise."""
    import os

    if value == "auto":
        return max(1, os.cpu_count() or 1)
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"--workers must be a number or 'auto', got {value!r}") from None
    if not 1 <= n <= 256:
        raise ConfigError(f"--workers must be in 1..256, got {n}")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gameserver`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "replay":
        from gameserver.replay.player import main as replay_main

        return replay_main(args[1:])
    try:
        res = parse_settings(args)
    except SettingsError as exc:
        print(f"gameserver: error: {exc}", file=sys.stderr)
        return 2
    ns = res.namespace
    if ns.print_config:
        render = render_json if ns.print_config == "json" else render_toml
        sys.stdout.write(render(res, {"games": ns.games}))
        return 0
    configure_logging(ns.log_level, ns.log_format)
    try:
        config = build_config(ns)
        workers = parse_workers(ns.workers)
        if workers > 1 and config.tls_cert is not None and ns.worker_process is None:
            # A TLS session cannot be handed to another process mid-stream (see README).
            raise ConfigError("--workers > 1 does not terminate TLS: put a TLS proxy in "
                              "front, or use --workers 1 with --tls-cert")
    except ConfigError as exc:
        print(f"gameserver: error: {exc}", file=sys.stderr)
        return 2
    if ns.worker_process is not None:
        from gameserver.worker import run_worker

        try:
            return run_worker(config, ns.worker_process)
        except ConfigError as exc:
            print(f"gameserver: error: {exc}", file=sys.stderr)
            return 2
    if workers > 1:
        from gameserver.supervisor import run_supervisor

        return run_supervisor(config, args, workers)
    from gameserver.server import run_server

    return run_server(config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
