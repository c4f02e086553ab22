"""Bot behaviours: the :class:`Bot` base class and the built-in random walk and chase.

A behaviour is a class with one method, :meth:`Bot.decide`: given a :class:`BotView` (the
replicated world's columns, the bot's own entity id, the tick) return an input dict for
INPUT's ``d`` map, or None to send nothing this time. The swarm calls it at the bot's input
rate (default: every ``--input-every`` received tick); fields it leaves out are filled with
neutral values (:func:`input_defaults`), as the server wants complete inputs. Keep it cheap
and vectorized: hundreds of bots share one process.

Direction inputs: the built-ins steer with the game's ``dx`` / ``dy`` inputs when it declares
them (the example arena does: floats in [-1, 1]); for any other input schema they send random
values inside each numeric field's declared ``lo`` / ``hi`` range.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clients.world import WorldView

__all__ = [
    "BEHAVIORS",
    "Bot",
    "BotView",
    "Chase",
    "Idle",
    "RandomWalk",
    "input_defaults",
    "load_behavior",
    "nearest",
]


class BotView:
    """What a bot sees when deciding (one object per bot, updated in place: do not keep it).

    ``world`` the replicated world (``world["x"]`` real values, ``world.ids``), ``entity``
    the bot's own entity id (None if the game gives players none), ``player`` its player id,
    ``tick`` the world's tick, ``inputs`` the game's input schema from WELCOME (list of
    ``{"n", "t", "lo"?, "hi"?}``), ``rng`` the bot's own numpy Generator.
    """

    __slots__ = ("entity", "index", "inputs", "player", "rng", "tick", "world")

    def __init__(self, index: int, rng: np.random.Generator) -> None:
        self.index = index
        self.rng = rng
        self.world: WorldView | None = None
        self.entity: int | None = None
        self.player: int | None = None
        self.tick = 0
        self.inputs: Sequence[Mapping[str, Any]] = ()

    def own_row(self) -> int | None:
        """Row of the bot's own entity in the world, or None."""
        if self.world is None or self.entity is None:
            return None
        return self.world.row_of(self.entity)


class Bot:
    """Base class: override :meth:`decide`. ``setup`` runs once after the first WELCOME."""

    def setup(self, view: BotView) -> None:
        """Called once when the bot joined (``view.world`` / ``view.inputs`` are set)."""

    def decide(self, view: BotView) -> dict[str, Any] | None:
        """The input to send now (INPUT ``d`` map), or None for no input."""
        return None


def input_defaults(inputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A neutral value for every declared input field (the server wants complete inputs):
    False for bools, "" for strs, 0 clamped into ``lo``..``hi`` for numbers."""
    out: dict[str, Any] = {}
    for f in inputs:
        name, t = f.get("n"), f.get("t")
        if not isinstance(name, str):
            continue
        if t == "bool":
            out[name] = False
        elif t == "str":
            out[name] = ""
        else:
            lo, hi = f.get("lo"), f.get("hi")
            v: float = 0
            if isinstance(lo, int | float) and v < lo:
                v = lo
            if isinstance(hi, int | float) and v > hi:
                v = hi
            out[name] = float(v) if isinstance(t, str) and t.startswith("f") else int(v)
    return out


def _has_direction(inputs: Sequence[Mapping[str, Any]]) -> bool:
    names = {i.get("n") for i in inputs}
    return "dx" in names and "dy" in names


def _random_input(view: BotView) -> dict[str, Any]:
    """Random values inside each numeric input field's range (other fields left out)."""
    out: dict[str, Any] = {}
    for f in view.inputs:
        t, name = f.get("t"), f.get("n")
        if not isinstance(name, str):
            continue
        if t == "bool":
            out[name] = bool(view.rng.integers(0, 2))
        elif isinstance(t, str) and t[:1] in ("u", "i", "f"):
            lo = f.get("lo", 0 if t[0] == "u" else -1)
            hi = f.get("hi", 1)
            if t[0] == "f":
                out[name] = float(view.rng.uniform(lo, hi))
            else:
                out[name] = int(view.rng.integers(int(lo), int(hi) + 1))
    return out


class Idle(Bot):
    """Sends nothing: a pure viewer (measures the stream alone)."""


class RandomWalk(Bot):
    """Walk in a random direction, changing it every ``turn_every`` decisions (~1 s)."""

    turn_every = 10

    def __init__(self) -> None:
        self._left = 0
        self._dir = (0.0, 0.0)

    def decide(self, view: BotView) -> dict[str, Any] | None:
        if not _has_direction(view.inputs):
            return _random_input(view)
        if self._left <= 0:
            a = float(view.rng.uniform(0.0, 2.0 * math.pi))
            self._dir = (round(math.cos(a), 3), round(math.sin(a), 3))
            self._left = int(view.rng.integers(self.turn_every // 2, self.turn_every * 2))
        self._left -= 1
        return {"dx": self._dir[0], "dy": self._dir[1]}


def nearest(x: np.ndarray, y: np.ndarray, row: int) -> int | None:
    """Row of the entity nearest to row ``row`` (squared distance, vectorized), or None."""
    n = x.shape[0]
    if n < 2:
        return None
    dx = x - x[row]
    dy = y - y[row]
    d2 = dx * dx + dy * dy
    d2[row] = np.inf
    return int(np.argmin(d2))


class Chase(Bot):
    """Steer towards the nearest other entity (needs ``x`` / ``y`` fields and an own entity)."""

    def decide(self, view: BotView) -> dict[str, Any] | None:
        world = view.world
        row = view.own_row()
        if world is None or row is None or not _has_direction(view.inputs):
            return _random_input(view) if world is not None else None
        if "x" not in world.names or "y" not in world.names:
            return _random_input(view)
        x, y = world["x"], world["y"]
        target = nearest(x, y, row)
        if target is None:
            return {"dx": 0.0, "dy": 0.0}
        dx = float(x[target] - x[row])
        dy = float(y[target] - y[row])
        norm = math.hypot(dx, dy)
        if norm < 1e-9:
            return {"dx": 0.0, "dy": 0.0}
        return {"dx": round(dx / norm, 3), "dy": round(dy / norm, 3)}


#: Short names accepted by ``--behavior``.
BEHAVIORS: dict[str, type[Bot]] = {"random": RandomWalk, "chase": Chase, "idle": Idle}


def load_behavior(spec: str) -> type[Bot]:
    """``"random"`` / ``"chase"`` / ``"idle"`` or ``"package.module:ClassName"`` -> a Bot class.

    Raises ValueError with a clear message (our caller's mistake) when it cannot be loaded.
    """
    if spec in BEHAVIORS:
        return BEHAVIORS[spec]
    mod_name, sep, cls_name = spec.partition(":")
    if not sep or not mod_name or not cls_name:
        raise ValueError(
            f"behavior {spec!r}: use one of {', '.join(BEHAVIORS)} or MODULE:ClassName")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ValueError(f"behavior {spec!r}: cannot import {mod_name!r}: {exc}") from None
    cls = getattr(mod, cls_name, None)
    if not isinstance(cls, type) or not issubclass(cls, Bot):
        raise ValueError(f"behavior {spec!r}: {cls_name!r} is not a clients.bots.Bot subclass")
    return cls
