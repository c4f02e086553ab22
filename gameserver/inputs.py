"""Declared player inputs: the per-game input schema, its validation, and the per-tick batch.

A game declares what one INPUT message may carry::

    from gameserver.inputs import I, InputSchema

    inputs = InputSchema({
        "dx": I.float32(-1, 1),
        "dy": I.float32(-1, 1),
        "boost": I.bool_(),
        "weapon": I.uint8(max=3),
    })

Every message is validated against the schema *before* game code can see it
(:meth:`InputSchema.validate`): the body must be a map holding exactly the declared fields
(a field declared with ``default=`` may be left out: it takes that value), each of the right
type and inside its declared bounds, with no NaN or infinity. A violation
raises :class:`InputError` whose message names the field; that is the client's fault (the
server answers ERROR code 3, "invalid input") and the input never reaches the game.

Once per tick the simulation hands the game an :class:`InputBatch`: all inputs accepted since
the previous tick, in arrival order, as whole numpy arrays (``batch.player``, ``batch.seq``,
``batch["dx"]``), so the game handles them vectorized.

Wire form (sent in WELCOME under ``"inputs"``, see :meth:`InputSchema.to_wire`): a msgpack
array with one map per field, in declaration order::

    [{"n": "dx", "t": "f32", "lo": -1.0, "hi": 1.0},
     {"n": "boost", "t": "bool"},
     {"n": "weapon", "t": "u8", "lo": 0, "hi": 3}]

``t`` uses protocol/SPEC.md's wire dtype names (``"f32"``, ``"u8"``, ``"i8"``, ``"u16"``,
``"i16"``, ``"u32"``, ``"i32"``) or ``"bool"``; ``lo``/``hi`` are the inclusive bounds (floats
for ``f32``, ints for integer types, absent for ``bool``); ``def`` (only for a field declared
with a default) is the value an INPUT that leaves the field out gets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = ["I", "InputBatch", "InputError", "InputField", "InputSchema"]


class InputError(ValueError):
    """A client's input does not fit the game's input schema (the client's fault).

    ``field`` names the offending field (``None`` when the whole body is wrong); the message
    says what was wrong. The server answers ERROR code 3 (invalid input); the input is dropped.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# Integer dtypes an input field may use, with their representable range.
_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}
# numpy dtype name -> SPEC.md wire dtype name.
_WIRE_NAMES: Final[dict[str, str]] = {
    "float32": "f32", "bool": "bool", "int8": "i8", "uint8": "u8", "int16": "i16",
    "uint16": "u16", "int32": "i32", "uint32": "u32",
}
_FROM_WIRE: Final[dict[str, str]] = {v: k for k, v in _WIRE_NAMES.items()}
_FLOAT32_MAX: Final[float] = float(np.finfo(np.float32).max)


@dataclass(frozen=True, slots=True)
class InputField:
    """One declared input field: a numpy dtype name and inclusive bounds.

    Build these with the :data:`I` helpers rather than directly. ``type`` is one of
    ``"float32"``, ``"bool"`` or an integer dtype name (``"int8"`` ... ``"uint32"``);
    ``min``/``max`` are the inclusive bounds (``None`` for ``bool``); ``default`` (``None``:
    the field is required) is the value an INPUT that leaves the field out gets (it must pass
    the field's own check).
    """

    type: str
    min: float | int | None = None
    max: float | int | None = None
    default: bool | int | float | None = None

    def __post_init__(self) -> None:
        if self.type == "bool":
            if self.min is not None or self.max is not None:
                raise ValueError("a bool input field takes no bounds")
        elif self.type == "float32":
            lo, hi = self.min, self.max
            if not isinstance(lo, int | float) or not isinstance(hi, int | float):
                raise ValueError("a float32 input field needs numeric min and max")
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError("float32 input bounds must be finite")
            if abs(lo) > _FLOAT32_MAX or abs(hi) > _FLOAT32_MAX or lo > hi:
                raise ValueError(f"float32 input bounds [{lo}, {hi}] are empty or too large")
        elif self.type in _INT_RANGES:
            lo, hi = self.min, self.max
            rlo, rhi = _INT_RANGES[self.type]
            if isinstance(lo, bool) or isinstance(hi, bool):
                raise ValueError("integer input bounds must be ints")
            if not isinstance(lo, int) or not isinstance(hi, int):
                raise ValueError("integer input bounds must be ints")
            if not rlo <= lo <= hi <= rhi:
                raise ValueError(f"{self.type} input bounds [{lo}, {hi}] outside [{rlo}, {rhi}]")
        else:
            raise ValueError(f"unknown input field type {self.type!r}")
        if self.default is not None:
            try:
                value = self.check("default", self.default)
            except InputError as exc:
                raise ValueError(f"bad input field default: {exc}") from None
            object.__setattr__(self, "default", value)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of this field's column in an :class:`InputBatch`."""
        return np.dtype(np.bool_) if self.type == "bool" else np.dtype(self.type)

    def check(self, name: str, value: object) -> bool | int | float:
        """Return ``value`` as this field's Python scalar, or raise :class:`InputError`.

        Floats accept ints and floats (not bools); integers accept ints only; bools accept
        ``True``/``False`` and the integers 0 and 1 (for native clients without a bool type).
        """
        if self.type == "bool":
            if value is True or value is False:
                return value
            if type(value) is int and value in (0, 1):
                return bool(value)
            raise InputError(f"input field {name!r}: expected a bool, got {_kind(value)}", name)
        if self.type == "float32":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(
                    f"input field {name!r}: expected a number, got {_kind(value)}", name
                )
            f = float(value)
            if not math.isfinite(f):
                raise InputError(f"input field {name!r}: {f} is not a finite number", name)
            assert self.min is not None and self.max is not None
            if not self.min <= f <= self.max:
                raise InputError(
                    f"input field {name!r}: {f} outside [{self.min}, {self.max}]", name
                )
            return f
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"input field {name!r}: expected an integer, got {_kind(value)}", name)
        assert self.min is not None and self.max is not None
        if not self.min <= value <= self.max:
            raise InputError(
                f"input field {name!r}: {value} outside [{self.min}, {self.max}]", name
            )
        return value

    def to_wire(self, name: str) -> dict[str, Any]:
        """This field's entry in the WELCOME ``"inputs"`` list."""
        out: dict[str, Any] = {"n": name, "t": _WIRE_NAMES[self.type]}
        if self.type == "float32":
            assert self.min is not None and self.max is not None
            out["lo"] = float(self.min)
            out["hi"] = float(self.max)
        elif self.type != "bool":
            out["lo"] = self.min
            out["hi"] = self.max
        if self.default is not None:
            out["def"] = self.default
        return out


def _kind(value: object) -> str:
    return "nil" if value is None else type(value).__name__


class I:  # noqa: E742 - short on purpose, mirrors schema.F
    """Constructors for input fields: ``I.float32(-1, 1)``, ``I.bool_()``, ``I.uint8(max=3)``."""

    @staticmethod
    def float32(min: float, max: float, *, default: float | None = None) -> InputField:
        """A float in ``[min, max]`` (inclusive, finite); NaN and infinities are refused.

        Every constructor takes ``default=``: the field becomes optional in INPUT.
        """
        return InputField("float32", min, max, default)

    @staticmethod
    def bool_(*, default: bool | None = None) -> InputField:
        """A button: ``True``/``False`` (0 and 1 are accepted too)."""
        return InputField("bool", default=default)

    @staticmethod
    def int8(
        min: int = -(2**7), max: int = 2**7 - 1, *, default: int | None = None
    ) -> InputField:
        """An integer in ``[min, max]`` stored as int8."""
        return InputField("int8", min, max, default)

    @staticmethod
    def uint8(
        min: int = 0, max: int = 2**8 - 1, *, default: int | None = None
    ) -> InputField:
        """An integer in ``[min, max]`` stored as uint8 (e.g. ``I.uint8(max=3)`` for 0..3)."""
        return InputField("uint8", min, max, default)

    @staticmethod
    def int16(
        min: int = -(2**15), max: int = 2**15 - 1, *, default: int | None = None
    ) -> InputField:
        """An integer in ``[min, max]`` stored as int16."""
        return InputField("int16", min, max, default)

    @staticmethod
    def uint16(
        min: int = 0, max: int = 2**16 - 1, *, default: int | None = None
    ) -> InputField:
        """An integer in ``[min, max]`` stored as uint16."""
        return InputField("uint16", min, max, default)

    @staticmethod
    def int32(
        min: int = -(2**31), max: int = 2**31 - 1, *, default: int | None = None
    ) -> InputField:
        """An integer in ``[min, max]`` stored as int32."""
        return InputField("int32", min, max, default)

    @staticmethod
    def uint32(
        min: int = 0, max: int = 2**32 - 1, *, default: int | None = None
    ) -> InputField:
        """An integer in ``[min, max]`` stored as uint32."""
        return InputField("uint32", min, max, default)


MAX_INPUT_FIELDS: Final[int] = 64


class InputSchema:
    """The fields one INPUT message carries, validated before the game sees them.

    ``InputSchema({"dx": I.float32(-1, 1), ...})``; field names are non-empty identifiers of at
    most 32 characters, at most 64 fields. A declaration mistake raises ``ValueError`` or
    ``TypeError`` naming the field (the developer's fault, at import time).
    """

    __slots__ = ("_fields", "_names")

    def __init__(self, fields: Mapping[str, InputField]) -> None:
        if not isinstance(fields, Mapping):
            raise TypeError("InputSchema takes a mapping of field name -> I.<type>(...)")
        if len(fields) > MAX_INPUT_FIELDS:
            raise ValueError(f"too many input fields ({len(fields)} > {MAX_INPUT_FIELDS})")
        for name, spec in fields.items():
            if not isinstance(name, str) or not name.isidentifier() or len(name) > 32:
                raise ValueError(f"input field name {name!r} must be an identifier (<= 32 chars)")
            if not isinstance(spec, InputField):
                raise TypeError(f"input field {name!r} must be declared with I.<type>(...)")
        self._fields: dict[str, InputField] = dict(fields)
        self._names: frozenset[str] = frozenset(self._fields)

    @property
    def fields(self) -> Mapping[str, InputField]:
        """Declared fields in declaration order (read-only view)."""
        return dict(self._fields)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __getitem__(self, name: str) -> InputField:
        return self._fields[name]

    def __repr__(self) -> str:
        return f"InputSchema({self._fields!r})"

    def validate(self, data: object) -> tuple[bool | int | float, ...]:
        """Check one INPUT body; return its values in declaration order.

        Raises :class:`InputError` for a body that is not a map, an unknown or missing field,
        a wrong type, an out-of-range value, NaN or infinity.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"input body must be a map, got {_kind(data)}")
        if len(data) != len(self._fields) or data.keys() != self._names:
            for key in data:
                if key not in self._names:
                    raise InputError(
                        f"unknown input field {key!r}", key if isinstance(key, str) else repr(key)
                    )
            fields = self._fields
            for n, spec in fields.items():
                if n not in data and spec.default is None:
                    raise InputError(f"missing input field {n!r}", n)
            # only optional fields are missing: they take their declared defaults
            return tuple(spec.check(name, data[name]) if name in data
                         else spec.default  # type: ignore[misc]
                         for name, spec in fields.items())
        return tuple(spec.check(name, data[name]) for name, spec in self._fields.items())

    def to_wire(self) -> list[dict[str, Any]]:
        """The msgpack-able description sent in WELCOME under ``"inputs"``.

        A list, in declaration order, of ``{"n": name, "t": type, "lo": num, "hi": num}``;
        ``t`` is ``"f32"``, ``"bool"`` or an integer wire dtype (``"i8"``, ``"u8"``, ``"i16"``,
        ``"u16"``, ``"i32"``, ``"u32"``), as in protocol/SPEC.md; ``bool`` entries have no
        ``lo``/``hi``; float bounds are floats and integer bounds ints, both inclusive.
        """
        return [spec.to_wire(name) for name, spec in self._fields.items()]

    @classmethod
    def from_wire(cls, wire: object) -> InputSchema:
        """Rebuild a schema from :meth:`to_wire` output (clients, bots). Raises ``ValueError``."""
        if not isinstance(wire, list):
            raise ValueError("input schema must be a list of field maps")
        fields: dict[str, InputField] = {}
        for entry in wire:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("n"), str):
                raise ValueError(f"bad input schema entry {entry!r}")
            kind = _FROM_WIRE.get(str(entry.get("t")))
            if kind is None:
                raise ValueError(f"unknown input type in {entry!r}")
            fields[entry["n"]] = InputField(kind, entry.get("lo"), entry.get("hi"),
                                            entry.get("def"))
        return cls(fields)


_EMPTY_IDX: Final[npt.NDArray[np.intp]] = np.zeros(0, dtype=np.intp)


class InputBatch:
    """The inputs accepted since the previous tick, in arrival order, as numpy arrays.

    ``batch.player`` (uint32 player ids), ``batch.seq`` (uint32 sequence numbers) and
    ``batch[name]`` (one array per declared field, of that field's dtype) all have length
    ``len(batch)``; row ``i`` is the i-th input to arrive. A player may appear several times
    (several inputs per tick) or not at all (no input this tick: keep its last state).
    The arrays belong to the batch; treat them as read-only.

    ``batch.render_tick`` (int64, one per row) is the server tick the player was rendering
    when it produced the input (INPUT ``rt``, lag compensation), already clamped into the
    room's history window; an input without ``rt`` (or a room without history) gets the
    latest committed tick, ``tick - 1`` inside ``on_tick(tick)``: the current world, i.e. no
    compensation. Use it with ``world.at(t)`` / ``world.history.hits(...)``. A batch built
    without it (``render_tick=None``) holds zeros.
    """

    __slots__ = ("_columns", "player", "render_tick", "seq")

    def __init__(
        self,
        player: npt.NDArray[np.uint32],
        seq: npt.NDArray[np.uint32],
        columns: Mapping[str, npt.NDArray[Any]],
        render_tick: npt.NDArray[np.int64] | None = None,
    ) -> None:
        n = len(player)
        if len(seq) != n or any(len(c) != n for c in columns.values()):
            raise ValueError("InputBatch columns must all have the same length")
        if render_tick is None:
            render_tick = np.zeros(n, np.int64)
        elif len(render_tick) != n:
            raise ValueError("InputBatch render_tick must have one entry per input")
        self.player = player
        self.seq = seq
        self.render_tick = render_tick
        self._columns = dict(columns)

    @classmethod
    def empty(cls, schema: InputSchema) -> InputBatch:
        """A batch with no rows and one empty column per field of ``schema``."""
        return cls(
            np.zeros(0, np.uint32),
            np.zeros(0, np.uint32),
            {name: np.zeros(0, spec.dtype) for name, spec in schema.fields.items()},
        )

    def __len__(self) -> int:
        return len(self.player)

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"no input field {name!r} (declared: {list(self._columns)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names, in declaration order."""
        return tuple(self._columns)

    def __repr__(self) -> str:
        return f"<InputBatch {len(self)} inputs from {len(self.players())} players>"

    def take(self, rows: npt.NDArray[Any]) -> InputBatch:
        """A new batch holding ``rows`` (an index array or a boolean mask) of this one."""
        return InputBatch(
            self.player[rows], self.seq[rows], {k: v[rows] for k, v in self._columns.items()},
            self.render_tick[rows],
        )

    def players(self) -> npt.NDArray[np.uint32]:
        """The distinct players present in this batch, sorted ascending."""
        return np.unique(self.player)

    def last_rows(self) -> npt.NDArray[np.intp]:
        """Row index of each player's last input, ordered like :meth:`players` (sorted ids)."""
        n = len(self.player)
        if n == 0:
            return _EMPTY_IDX
        # np.unique returns the first occurrence; on the reversed array that is the last one.
        _, first_rev = np.unique(self.player[::-1], return_index=True)
        return (n - 1 - first_rev).astype(np.intp)

    def latest(self) -> InputBatch:
        """One row per player: its most recent input, sorted by player id."""
        return self.take(self.last_rows())

    def _group(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.intp]]:
        uniq, inverse = np.unique(self.player, return_inverse=True)
        return uniq, inverse.astype(np.intp).reshape(-1)

    def any(self, name: str) -> npt.NDArray[np.bool_]:
        """Per player (ordered like :meth:`players`): was ``name`` true in any of its inputs?

        Use it for buttons, so a press and release between two ticks is not lost.
        """
        uniq, inverse = self._group()
        out = np.zeros(len(uniq), np.bool_)
        np.logical_or.at(out, inverse, self[name].astype(np.bool_))
        return out

    def sum(self, name: str) -> npt.NDArray[np.float64]:
        """Per player (ordered like :meth:`players`): the sum of ``name`` over its inputs."""
        uniq, inverse = self._group()
        out: npt.NDArray[np.float64] = np.bincount(
            inverse, weights=self[name].astype(np.float64), minlength=len(uniq)
        ).astype(np.float64)
        return out

    def count(self) -> npt.NDArray[np.intp]:
        """Per player (ordered like :meth:`players`): how many inputs it sent this tick."""
        uniq, inverse = self._group()
        return np.bincount(inverse, minlength=len(uniq)).astype(np.intp)
