"""Headless bots for testing and load (``python -m clients.bots``).

Write a behaviour by subclassing :class:`Bot` and overriding ``decide(view)``; run it with
``python -m clients.bots URL --count N --behavior mymodule:MyBot``.
"""

from .behaviors import Bot, BotView, Chase, Idle, RandomWalk, load_behavior
from .report import BotStats, Histogram, ProcessStats
from .swarm import SwarmConfig, run_bots, run_swarm

__all__ = [
    "Bot",
    "BotStats",
    "BotView",
    "Chase",
    "Histogram",
    "Idle",
    "ProcessStats",
    "RandomWalk",
    "SwarmConfig",
    "load_behavior",
    "run_bots",
    "run_swarm",
]
