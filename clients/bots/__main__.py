"""``python -m clients.bots URL --count N [options]``: run a swarm of headless bots.

Examples::

    python -m clients.bots ws://127.0.0.1:8000/ws --count 200 --duration 30
    python -m clients.bots ws://127.0.0.1:8000/ws --count 1000 --procs 2 --behavior chase \\
        --json report.json

Exit status: 0 when every bot connected and none failed, 1 when some failed, 2 for a usage
error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .swarm import SwarmConfig, run_swarm


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m clients.bots",
                                description="Run N headless game bots against a server.")
    p.add_argument("url", help="server WebSocket URL, e.g. ws://127.0.0.1:8000/ws")
    p.add_argument("--count", "-n", type=int, default=10, help="number of bots (default 10)")
    p.add_argument("--behavior", default="random",
                   help="random | chase | idle | MODULE:Class (a clients.bots.Bot subclass)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--procs", type=int, default=1, metavar="P",
                   help="processes to spread the bots over (default 1)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write the JSON report to FILE")
    p.add_argument("--game", default=None, help="game name to join")
    p.add_argument("--room", default=None, help="room id to join")
    p.add_argument("--ramp", type=float, default=200.0, metavar="PER_S",
                   help="connects started per second (default 200)")
    p.add_argument("--max-connecting", type=int, default=32, metavar="N",
                   help="joins in flight per process (default 32; 0 = unbounded)")
    p.add_argument("--input-every", type=int, default=3, metavar="N",
                   help="send an input every N received ticks (0 = never; default 3)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="per join attempt: WebSocket + WELCOME + snapshot (default 10)")
    p.add_argument("--stall-timeout", type=float, default=10.0, metavar="S",
                   help="silence after which a connection counts as dropped (default 10)")
    p.add_argument("--cafile", default=None, help="CA bundle (PEM) for wss:// servers")
    p.add_argument("--seed", type=int, default=0, help="bots' RNG seed (default 0)")
    p.add_argument("--name-prefix", default=None, metavar="TEXT",
                   help="player names are TEXT + bot index (default: bot-<random tag>-, "
                        "different for every run, so several swarms can share a room)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--no-interest", dest="interest", action="store_false",
                   help="do not offer the interest extension (get plain DELTAs of the view)")
    return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    if ns.count < 1 or ns.procs < 1:
        print("error: --count and --procs must be >= 1", file=sys.stderr)
        return 2
    config = SwarmConfig(
        url=ns.url, count=ns.count, behavior=ns.behavior, duration=ns.duration,
        procs=ns.procs, game=ns.game, room=ns.room, ramp=ns.ramp, input_every=ns.input_every,
        max_connecting=ns.max_connecting,
        connect_timeout=ns.connect_timeout, stall_timeout=ns.stall_timeout,
        cafile=ns.cafile, seed=ns.seed, interest=ns.interest,
        **({} if ns.name_prefix is None else {"name_prefix": ns.name_prefix}),
    )
    try:
        report = run_swarm(config, progress=not ns.quiet)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ns.json is not None:
        ns.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["failures"] == 0 and report["connects"] == report["bots"] else 1


if __name__ == "__main__":
    sys.exit(main())
