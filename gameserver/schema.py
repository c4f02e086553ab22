"""Declared entity fields: a typed, validated description of a game's entity state.

A game declares its components as typed fields::

    from gameserver.schema import F, WorldSchema

    schema = WorldSchema({
        "x": F.float32(quant=0.01, lo=-5000, hi=5000),   # wire i32 (500000 steps each side)
        "y": F.float32(quant=0.01, lo=-5000, hi=5000),
        "angle": F.float32(quant=0.01, lo=-4, hi=4),     # wire i16 (smallest that holds it)
        "hp": F.uint8(default=100),
        "kind": F.uint8(),
        "owner": F.player(),                             # uint32 player id, 0 = none
        "alive": ...                                     # refused: reserved name
    })

Storage (what ``world[name]`` holds) vs wire (what clients receive):

- ``F.float32(quant=q, lo=a, hi=b)``: stored float32; on the wire the int
  ``clip(rint(value / q), rint(a / q), rint(b / q))`` in the smallest dtype holding that
  range (``i8/i16/i32``, or ``u8/u16/u32`` when ``a >= 0``), or the one given by ``wire=``.
  Clients compute ``value = wire * q``. NaN quantizes to 0 (clamped into range).
  Without ``lo``/``hi`` the range is +-2**24 steps (the span in which float32 storage still
  resolves every step; +-167772.16 at q 0.01), wire i32.
- ``F.float32()`` / ``F.float64()`` without ``quant``: raw f32 / f64 on the wire.
- ``F.uint8() ... F.int32()``: stored and sent as that integer type.
- ``F.bool_()``: stored numpy bool, wire u8 (0/1). ``F.player()`` / ``F.entity()``: uint32
  player / entity id, 0 = none.

:class:`WorldSchema` validates everything at declaration and raises :class:`SchemaError`
naming the field: unknown dtype, a quantization that overflows its wire integer (or is finer
than the storage float can resolve), a default out of range, too many fields (a delta group
mask is 32 bits), bad names (not ASCII identifiers, Python keywords, leading underscore,
duplicates, reserved names such as ``id``/``n``/``alive``).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocol.wireschema import (
    INT_CODES,
    MAX_FIELDS,
    WIRE_DTYPES,
    WireField,
    WireSchema,
)

__all__ = ["RESERVED_NAMES", "F", "Field", "FieldSpec", "SchemaError", "WorldSchema"]

#: Names a field may not take (they collide with the World / spawn() API or the wire).
RESERVED_NAMES = frozenset(
    {"id", "ids", "n", "slot", "slots", "alive", "tick", "count", "capacity", "generation"}
)
_MAX_NAME = 64
_STORAGE = {
    "uint8": "u8", "int8": "i8", "uint16": "u16", "int16": "i16", "uint32": "u32",
    "int32": "i32", "float32": "f32", "float64": "f64", "bool": "u8",
}  # fmt: skip
#: Steps a float of this storage dtype resolves exactly (its mantissa): 2**24, 2**53.
_MANTISSA = {"float32": 2**24, "float64": 2**53}


class SchemaError(ValueError):
    """A world schema that cannot work (the game developer's mistake); names the field."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field as declared (unvalidated until it is put in a :class:`WorldSchema`)."""

    dtype: str
    kind: str
    quant: float | None = None
    lo: float | None = None
    hi: float | None = None
    wire: str | None = None
    default: Any = 0


class F:
    """Field declaration helpers: ``F.float32(quant=0.01, lo=-5000, hi=5000)``, ``F.uint8()``..."""

    @staticmethod
    def float32(
        quant: float | None = None,
        *,
        lo: float | None = None,
        hi: float | None = None,
        wire: str | None = None,
        default: float = 0.0,
    ) -> FieldSpec:
        """A float32 value; with ``quant`` it travels as an integer count of ``quant`` steps."""
        return FieldSpec("float32", "float", quant, lo, hi, wire, default)

    @staticmethod
    def float64(
        quant: float | None = None,
        *,
        lo: float | None = None,
        hi: float | None = None,
        wire: str | None = None,
        default: float = 0.0,
    ) -> FieldSpec:
        """A float64 value (same quantization rules as :meth:`float32`)."""
        return FieldSpec("float64", "float", quant, lo, hi, wire, default)

    @staticmethod
    def uint8(default: int = 0) -> FieldSpec:
        return FieldSpec("uint8", "int", default=default)

    @staticmethod
    def int8(default: int = 0) -> FieldSpec:
        return FieldSpec("int8", "int", default=default)

    @staticmethod
    def uint16(default: int = 0) -> FieldSpec:
        return FieldSpec("uint16", "int", default=default)

    @staticmethod
    def int16(default: int = 0) -> FieldSpec:
        return FieldSpec("int16", "int", default=default)

    @staticmethod
    def uint32(default: int = 0) -> FieldSpec:
        return FieldSpec("uint32", "int", default=default)

    @staticmethod
    def int32(default: int = 0) -> FieldSpec:
        return FieldSpec("int32", "int", default=default)

    @staticmethod
    def bool_(default: bool = False) -> FieldSpec:
        return FieldSpec("bool", "bool", default=default)

    @staticmethod
    def player(default: int = 0) -> FieldSpec:
        """A player id (uint32; 0 = no player)."""
        return FieldSpec("uint32", "player", default=default)

    @staticmethod
    def entity(default: int = 0) -> FieldSpec:
        """An entity id reference (uint32; 0 = none; a stale id is the game's to check)."""
        return FieldSpec("uint32", "entity", default=default)

    @staticmethod
    def of(dtype: Any, **kwargs: Any) -> FieldSpec:
        """Declare by dtype name (``"uint8"``, ``np.float32``...); unknown ones refused later."""
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
        kind = "float" if name.startswith("float") else "bool" if name == "bool" else "int"
        return FieldSpec(name, kind, **kwargs)


@dataclass(frozen=True, slots=True)
class Field:
    """A validated field: storage dtype, wire code, quantization range (in steps) and default."""

    name: str
    index: int
    kind: str
    storage: np.dtype[Any]
    wire: str
    quant: float | None
    qlo: int
    qhi: int
    default: Any

    @property
    def wire_dtype(self) -> np.dtype[Any]:
        return WIRE_DTYPES[self.wire]

    def to_wire(self, values: np.ndarray, *, fresh: bool = False) -> np.ndarray:
        """Storage values -> wire values (a new array): quantize + clamp, or cast bool -> u8.

        ``rint`` rounds half to even; out-of-range values (and infinities) clamp to the range
        ends; NaN maps to 0 clamped into the range. ``fresh=True`` says ``values`` is already a
        private copy, so a same-dtype column is returned as is instead of copied.
        """
        if self.quant is not None:
            steps = values.astype(np.float64)
            np.divide(steps, self.quant, out=steps)
            np.rint(steps, out=steps)
            nan = np.isnan(steps)
            # fmin/fmax (unlike clip) are single fast passes; NaN is fixed up below.
            np.fmin(steps, float(self.qhi), out=steps)
            np.fmax(steps, float(self.qlo), out=steps)
            if nan.any():
                steps[nan] = min(max(0, self.qlo), self.qhi)
            return steps.astype(self.wire_dtype)
        if values.dtype == self.wire_dtype:
            return values if fresh else values.copy()
        return values.astype(self.wire_dtype)

    def from_wire(self, wire: np.ndarray) -> np.ndarray:
        """Wire values -> real values (float64 for quantized fields, else storage dtype)."""
        if self.quant is not None:
            return wire.astype(np.float64) * self.quant
        return wire.astype(self.storage)


def _fail(name: str, why: str) -> SchemaError:
    return SchemaError(f"field {name!r}: {why}")


def _check_name(name: Any, seen: set[str]) -> str:
    if not isinstance(name, str):
        raise SchemaError(f"field name {name!r} is not a str")
    if not (name.isascii() and name.isidentifier()) or len(name) > _MAX_NAME:
        raise _fail(name, f"name must be an ASCII identifier of at most {_MAX_NAME} chars")
    if keyword.iskeyword(name) or name.startswith("_"):
        raise _fail(name, "name must not be a Python keyword or start with '_'")
    if name in RESERVED_NAMES:
        raise _fail(name, f"name is reserved ({', '.join(sorted(RESERVED_NAMES))})")
    if name in seen:
        raise _fail(name, "declared twice")
    return name


def _number(name: str, what: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise _fail(name, f"{what} must be a number, not {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise _fail(name, f"{what} must be finite, not {v!r}")
    return f


def _int_range(code: str) -> tuple[int, int]:
    info = np.iinfo(WIRE_DTYPES[code])
    return int(info.min), int(info.max)


def _resolve(name: str, index: int, spec: Any) -> Field:
    if isinstance(spec, str | type | np.dtype):
        spec = F.of(spec)
    if not isinstance(spec, FieldSpec):
        raise _fail(name, f"declare it with F.<type>(...), not {spec!r}")
    if spec.dtype not in _STORAGE:
        raise _fail(name, f"unknown dtype {spec.dtype!r} (use one of {', '.join(_STORAGE)})")
    storage = np.dtype(spec.dtype)
    if spec.dtype in _MANTISSA:
        return _resolve_float(name, index, spec, storage)
    if spec.quant is not None or spec.lo is not None or spec.hi is not None or spec.wire:
        raise _fail(name, f"quant/lo/hi/wire apply to float fields only, not {spec.dtype}")
    wire = _STORAGE[spec.dtype]
    lo, hi = _int_range(wire)
    if spec.dtype == "bool":
        lo, hi = 0, 1
    d = spec.default
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if not isinstance(d, int | np.integer | bool) or not lo <= int(d) <= hi:
        raise _fail(name, f"default {spec.default!r} is not a {spec.dtype} value")
    default = bool(d) if spec.dtype == "bool" else int(d)
    return Field(name, index, spec.kind, storage, wire, None, lo, hi, default)


def _resolve_float(name: str, index: int, spec: FieldSpec, storage: np.dtype[Any]) -> Field:
    default = _number(name, "default", spec.default)
    raw = "f32" if spec.dtype == "float32" else "f64"
    if spec.quant is None:
        if spec.lo is not None or spec.hi is not None:
            raise _fail(name, "lo/hi need quant (they bound the quantized range)")
        if spec.wire not in (None, raw):
            raise _fail(name, f"an unquantized {spec.dtype} travels as {raw}, not {spec.wire!r}")
        return Field(name, index, spec.kind, storage, raw, None, 0, 0, default)
    quant = _number(name, "quant", spec.quant)
    if quant <= 0:
        raise _fail(name, f"quant must be > 0, not {spec.quant!r}")
    if spec.wire is not None and spec.wire not in INT_CODES:
        raise _fail(name, f"a quantized float needs an integer wire dtype, not {spec.wire!r}")
    limit = _MANTISSA[spec.dtype]
    if (spec.lo is None) != (spec.hi is None):
        raise _fail(name, "give both lo and hi (or neither)")
    if spec.lo is None:
        wire = spec.wire or "i32"
        wlo, whi = _int_range(wire)
        qlo, qhi = max(wlo, -limit), min(whi, limit)
    else:
        lo, hi = _number(name, "lo", spec.lo), _number(name, "hi", spec.hi)
        if not lo < hi:
            raise _fail(name, f"lo {lo} must be < hi {hi}")
        qlo, qhi = round(lo / quant), round(hi / quant)
        if max(abs(qlo), abs(qhi)) > limit:
            raise _fail(
                name,
                f"quant {quant} over {lo}..{hi} needs steps up to {max(abs(qlo), abs(qhi))}, "
                f"finer than {spec.dtype} storage resolves (2**{limit.bit_length() - 1}); "
                f"use a coarser quant, a narrower range or F.float64",
            )
        candidates = (
            (spec.wire,)
            if spec.wire
            else (("u8", "u16", "u32") if qlo >= 0 else ("i8", "i16", "i32"))
        )
        for wire in candidates:
            assert wire is not None
            wlo, whi = _int_range(wire)
            if wlo <= qlo and qhi <= whi:
                break
        else:
            target = spec.wire or "any 32-bit integer"
            raise _fail(
                name,
                f"quantization overflows: quant {quant} over {lo}..{hi} gives steps "
                f"{qlo}..{qhi}, which do not fit {target}",
            )
    if not qlo * quant - quant / 2 <= default <= qhi * quant + quant / 2:
        raise _fail(name, f"default {default} is outside the range {qlo * quant}..{qhi * quant}")
    return Field(name, index, spec.kind, storage, wire, quant, int(qlo), int(qhi), default)


class WorldSchema:
    """A validated, ordered set of entity fields.

    ``fields`` maps name -> :class:`Field` in declaration order (the order is the field index
    on the wire). ``wire`` is the :class:`~protocol.wireschema.WireSchema` sent in WELCOME.
    Accepts a mapping or an iterable of ``(name, spec)`` pairs (so duplicates are caught).
    """

    def __init__(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        if len(pairs) > MAX_FIELDS:
            raise SchemaError(
                f"{len(pairs)} fields declared; a delta group mask holds at most {MAX_FIELDS} "
                f"(field {pairs[MAX_FIELDS][0]!r} is one too many)"
            )
        seen: set[str] = set()
        resolved: dict[str, Field] = {}
        for i, pair in enumerate(pairs):
            try:
                name, spec = pair
            except (TypeError, ValueError):
                raise SchemaError(f"entry {i} is not a (name, spec) pair: {pair!r}") from None
            name = _check_name(name, seen)
            seen.add(name)
            resolved[name] = _resolve(name, i, spec)
        self.fields: dict[str, Field] = resolved
        self.wire = WireSchema(
            WireField(f.name, f.wire, f.quant, f.kind) for f in resolved.values()
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{f.name}:{f.storage.name}->{f.wire}" + (f"@{f.quant}" if f.quant else "")
            for f in self.fields.values()
        )
        return f"WorldSchema({inner})"
