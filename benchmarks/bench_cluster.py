"""Cluster benchmarks (issue 10), one section per part (``--part NAME``); each part lives in its
own module and registers in :data:`PARTS`, so parts written on different branches merge by
adding one entry.

``--part directory`` (``benchmarks/cluster_directory.py``): the cost of the Redis directory:
Redis round trips and commands per join and per second per room, and the latency a join adds
in cluster mode vs a single node, side by side in one run. Run::

    python benchmarks/bench_cluster.py --part directory               # ~1 min
    python benchmarks/bench_cluster.py --part directory --joins 50 --window 3

``--part handover`` (``benchmarks/cluster_handover.py``, its own options: ``--players``,
``--entities``, ``--baseline``, ...): a rolling deploy of a room with 10,000 entities and 200
players through Redis; the pause players see and the bytes moved.
``--part workers`` (``benchmarks/cluster_workers.py``): ``gameserver --workers 1`` vs
``--workers 2`` on this 2-core machine, side by side in one run: aggregate clients held at
30 Hz with 1,000 moving entities per room (a ramp), the server CPU per client, join latency
and the per-message round trip. Run::

    python benchmarks/bench_cluster.py --part workers                 # ~2-3 min
    python benchmarks/bench_cluster.py --part workers --rounds 2 --nice -5

``--part workers-redis`` (``benchmarks/cluster_workers_redis.py``): ``--workers 2`` vs
``--workers 2 --redis``: HELLO and RESUME latency through the supervisor and its own Redis
round trips per join (the directory lookup that finds a moved token's worker). Run::

    python benchmarks/bench_cluster.py --part workers-redis           # ~1 min

Results: printed, and written as JSON to ``benchmarks/results-cluster-<part>.json``
(``--out`` to change); the recorded runs are in ``benchmarks/RESULTS-cluster.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_directory import part_directory
from cluster_workers import part_workers
from cluster_workers_redis import part_workers_redis

HERE = Path(__file__).resolve().parent

PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "directory": part_directory,
    "workers": part_workers,
    "workers-redis": part_workers_redis,
}


#: parts with a command line of their own: ``--part NAME`` hands the rest of argv to them
DELEGATED = ("handover",)


def main() -> None:
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        name = argv[i + 1] if a == "--part" and i + 1 < len(argv) else (
            a.split("=", 1)[1] if a.startswith("--part=") else None)
        if name in DELEGATED:
            import cluster_handover

            rest = argv[:i] + argv[i + (2 if a == "--part" else 1):]
            cluster_handover.main(rest)
            return
    p = argparse.ArgumentParser(description="cluster benchmarks (see the module docstring)")
    p.add_argument("--part", choices=sorted([*PARTS, *DELEGATED]), default="directory")
    p.add_argument("--joins", type=int, default=100, help="joins per variant")
    p.add_argument("--window", type=float, default=5.0,
                   help="seconds of each steady-state / measured window")
    # workers
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds (workers)")
    p.add_argument("--room-size", type=int, default=8, help="players per room (workers)")
    p.add_argument("--entities", type=int, default=1000,
                   help="entities per room, all moving (workers)")
    p.add_argument("--start", type=int, default=96, help="clients of the first ramp step")
    p.add_argument("--step", type=int, default=48, help="clients added per ramp step")
    p.add_argument("--max-clients", type=int, default=1600)
    p.add_argument("--settle", type=float, default=2.0, help="s after a ramp step")
    p.add_argument("--pings", type=int, default=100, help="PING round trips (workers)")
    p.add_argument("--nice", type=int, default=0,
                   help="nice increment for servers and bots (workers; e.g. -5 on a busy box)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    t0 = time.time()
    results = PARTS[args.part](args)
    out = args.out or HERE / f"results-cluster-{args.part}.json"
    meta = {"part": args.part, "python": platform.python_version(), "started": t0,
            "seconds": round(time.time() - t0, 1)}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
