"""Interest management, the game developer's side: :class:`Interest` and the grid arithmetic.

A game opts in with a class attribute (docs/RULES.md, "Interest management")::

    class World(Game):
        fields = {"x": F.float32(quant=0.1, lo=0, hi=10_000), "y": ..., "team": F.uint8(),
                  "glob": F.uint8()}
        interest = Interest(cell=500, bounds=(0, 0, 10_000, 10_000), view=(2_000, 2_000),
                            team="team", everyone="glob")

Who sees what (all vectorized; units are world units, the real values of the x/y fields):

* **grid**: the world rectangle ``bounds`` is cut into square cells of ``cell`` units (the
  last row / column may be partial; positions outside are clamped into the border cells).
  A player sees the cells its *view rectangle* overlaps: centred on its entity's position
  (``player.entity``), of size ``player.view`` or else ``Interest.view``, clamped to
  ``max_view`` (a request outside the world or absurdly large never costs more than the
  largest view). Spectators centre it on their camera.
* **hysteresis**: a cell, once visible, stays visible until it is more than ``margin`` units
  outside the view rectangle (default half a cell), so an entity on a cell border does not
  flicker in and out of view. Visible cells always form a rectangle of cells.
* **teams**: with ``team="field"``, an entity whose team field is ``t`` in 1..65535 is always
  visible to the players with ``player.team == t`` (set it in ``on_join``), wherever they are.
* **global**: with ``everyone="field"``, entities whose field is non-zero are visible to
  everyone (the ball, a scoreboard entity) and are not in the grid.
* **explicit mask**: ``Game.interest_extra(player)`` may return entity ids (or a boolean mask
  over ``world.snapshot()`` order) the player also sees; encoded per player, for rare cases.

Channels (the unit of sharing, SPEC.md section 11): grid cell ``(cx, cy)`` is channel
``cy * nx + cx``; the global entities are channel ``nx * ny``; team ``t`` is ``nx * ny + t``;
a player's extra entities are channel ``0xFFFFFFFF`` (its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["EXTRA_CHANNEL", "Grid", "Interest"]

#: Channel id of a player's own extra entities (``Game.interest_extra``).
EXTRA_CHANNEL = 0xFFFFFFFF
#: Most grid cells a game may declare (channel ids stay far below EXTRA_CHANNEL).
MAX_CELLS = 1 << 20


@dataclass(frozen=True)
class Interest:
    """A game's interest declaration (see the module docstring; world units throughout).

    ``cell`` side of a grid cell; ``bounds`` ``(x0, y0, x1, y1)`` the world rectangle;
    ``view`` default ``(width, height)`` of a player's view; ``max_view`` the largest view
    anyone gets (default ``view`` for players' requests and 4x its area for spectators:
    ``2 * view``); ``x`` / ``y`` the position fields; ``margin`` the hysteresis distance
    (default ``cell / 2``); ``team`` / ``everyone`` optional field names; ``naive`` encodes
    every client's view separately (the fallback path; for benchmarks and tests only).
    """

    cell: float
    bounds: tuple[float, float, float, float]
    view: tuple[float, float]
    max_view: tuple[float, float] | None = None
    x: str = "x"
    y: str = "y"
    margin: float | None = None
    team: str | None = None
    everyone: str | None = None
    naive: bool = False

    def check(self, fields: Any) -> None:
        """Validate against the game's ``fields``; ``ValueError`` names the problem."""
        x0, y0, x1, y1 = (float(v) for v in self.bounds)
        if not (math.isfinite(self.cell) and self.cell > 0):
            raise ValueError("Interest.cell must be a positive number of world units")
        if not (x1 > x0 and y1 > y0 and all(map(math.isfinite, (x0, y0, x1, y1)))):
            raise ValueError("Interest.bounds must be (x0, y0, x1, y1) with x1 > x0, y1 > y0")
        nx, ny = math.ceil((x1 - x0) / self.cell), math.ceil((y1 - y0) / self.cell)
        if nx * ny > MAX_CELLS or nx > 32767 or ny > 32767:
            raise ValueError(f"Interest grid of {nx} x {ny} cells is over {MAX_CELLS} "
                             "(or over 32,767 on a side)")
        for v in (*self.view, *(self.max_view or (1.0, 1.0))):
            if not (math.isfinite(v) and v > 0):
                raise ValueError("Interest.view / max_view must be positive sizes")
        for name in (self.x, self.y, self.team, self.everyone):
            if name is not None and name not in fields:
                raise ValueError(f"Interest names field {name!r}, which the game does not have")


class Grid:
    """The grid of an :class:`Interest`: cell of a position, cell rectangle of a view."""

    def __init__(self, interest: Interest) -> None:
        self.interest = interest
        x0, y0, x1, y1 = (float(v) for v in interest.bounds)
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.cell = float(interest.cell)
        self.nx = math.ceil((x1 - x0) / self.cell)
        self.ny = math.ceil((y1 - y0) / self.cell)
        self.ncells = self.nx * self.ny
        self.global_channel = self.ncells
        self.margin = float(interest.margin if interest.margin is not None else self.cell / 2)
        vw, vh = (float(v) for v in interest.view)
        self.view = (vw, vh)
        mv = interest.max_view or (2 * vw, 2 * vh)
        self.max_view = (float(mv[0]), float(mv[1]))
        # (2, 1) columns broadcast against (2, n) per-axis arrays (x row, y row)
        self._lo_col = np.array([[x0], [y0]])
        self._hi_col = np.array([[x1], [y1]])
        self._view_col = np.array([[vw], [vh]])
        self._top_col = np.array([[self.nx - 1], [self.ny - 1]], np.float64)
        self._shift_col = np.array([[0], [32]], np.int64)
        #: the (2, 1) size of a default view (``Interest.view`` within ``max_view``)
        self.default_size = np.minimum(self._view_col, np.array(self.max_view)[:, None])

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Channel (int64) of each position; outside the bounds: the nearest border cell."""
        cx = np.floor((x - self.x0) / self.cell)
        cy = np.floor((y - self.y0) / self.cell)
        np.clip(cx, 0, self.nx - 1, out=cx)
        np.clip(cy, 0, self.ny - 1, out=cy)
        return (cy * self.nx + cx).astype(np.int64)

    def clamp_view(self, cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray,
                   limit: tuple[float, float]) -> tuple[np.ndarray, ...]:
        """Views clamped: size into ``(0, limit]`` (NaN -> the default), centre into bounds.

        Both axes at once as (2, n) arrays: per-call numpy overhead, not the viewer
        count, dominates at a few hundred viewers."""
        size = np.stack((w, h)).astype(np.float64, copy=False)
        size = np.where(np.isfinite(size) & (size > 0), size, self._view_col)
        np.minimum(size, np.array(limit, np.float64)[:, None], out=size)
        # NaN -> the low bound; +-inf -> the nearest bound (as nan_to_num, then clip)
        ctr = self.clamp_centres(np.stack((cx, cy)).astype(np.float64, copy=True), True)
        return ctr[0], ctr[1], size[0], size[1]

    @staticmethod
    def code(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
        """A cell rectangle (inclusive bounds, each < 2**15) as one int64 code."""
        return x0 | (x1 << 16) | (y0 << 32) | (y1 << 48)

    def rects(self, cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray,
              old: np.ndarray) -> np.ndarray:
        """New visible cell rectangles as codes (:meth:`code`) for views centred on
        ``(cx, cy)`` of size ``(w, h)``; ``old`` each viewer's previous code (-1: none).

        Per axis, the interval of cells the view overlaps is always visible; a previously
        visible cell stays while it is within ``margin`` of the view; a jump (no overlap with
        the old interval) starts afresh. Vectorized over viewers (see :meth:`rects_of`).
        """
        return self.rects_of(np.stack((cx, cy)), np.stack((w, h)), old)

    def rects_of(self, ctr: np.ndarray, size: np.ndarray, old: np.ndarray) -> np.ndarray:
        """:meth:`rects` on (2, n) arrays: row 0 x, row 1 y (``size`` may be (2, 1): one
        size for all). Both axes at once: at a few hundred viewers the per-call numpy
        overhead, not the viewer count, is the cost; the float operations and their order
        are those of one axis at a time."""
        c, m = self.cell, self.margin
        half = size / 2
        lo_edge = ctr - half - self._lo_col
        hi_edge = ctr + half - self._lo_col
        # e0 (first overlapped cell), s0 (first kept cell), e1 (last overlapped), s1
        lows = np.floor(np.stack((lo_edge, lo_edge - m)) / c)
        highs = np.ceil(np.stack((hi_edge, hi_edge + m)) / c) - 1
        cells = np.concatenate((lows, highs))  # (4, 2, n): e0, s0, e1, s1
        np.maximum(cells, 0, out=cells)
        np.minimum(cells, self._top_col, out=cells)
        e0, s0, e1, s1 = cells.astype(np.int64)
        e1 = np.maximum(e1, e0)
        o0 = (old >> self._shift_col) & 0xFFFF
        o1 = (old >> (self._shift_col + 16)) & 0xFFFF
        fresh = (old < 0) | (o1 < e0) | (o0 > e1)
        p0 = np.where(fresh, e0, np.minimum(e0, np.maximum(o0, s0)))
        p1 = np.where(fresh, e1, np.maximum(e1, np.minimum(o1, s1)))
        return self.code(p0[0], p1[0], p0[1], p1[1])

    def clamp_centres(self, ctr: np.ndarray, nan_to_lo: bool = False) -> np.ndarray:
        """(2, n) view centres clamped into the bounds, in place, as :meth:`clamp_view`
        does (``nan_to_lo``: NaN becomes the low bound first)."""
        if nan_to_lo:
            np.copyto(ctr, self._lo_col, where=np.isnan(ctr))
        np.maximum(ctr, self._lo_col, out=ctr)
        np.minimum(ctr, self._hi_col, out=ctr)
        return ctr

    @staticmethod
    def decode(code: int) -> tuple[int, int, int, int]:
        """``(x0, x1, y0, y1)`` of a rectangle code."""
        return code & 0xFFFF, (code >> 16) & 0xFFFF, (code >> 32) & 0xFFFF, (code >> 48) & 0xFFFF

    def cells_of_code(self, code: int) -> list[int]:
        return self.cells_in(self.decode(code))

    def cells_in(self, rect: tuple[int, int, int, int]) -> list[int]:
        """Channels of the cells of ``rect`` ``(x0, x1, y0, y1)``, ascending."""
        x0, x1, y0, y1 = rect
        nx = self.nx
        return [cy * nx + cx for cy in range(y0, y1 + 1) for cx in range(x0, x1 + 1)]

    def info(self) -> dict[str, Any]:
        """WELCOME's ``"view"`` map (informative, SPEC.md section 11)."""
        return {"cell": self.cell, "grid": [self.nx, self.ny],
                "bounds": [self.x0, self.y0, self.x1, self.y1],
                "view": list(self.view), "max_view": list(self.max_view),
                "margin": self.margin}
