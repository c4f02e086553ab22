"""Wire-level entity schema and snapshots (SPEC.md sections 3 and 4).

A :class:`WireSchema` is what a client needs to decode deltas: the ordered fields, each with
its wire dtype code (``"u8" ... "f64"``), its quantization step (``value = wire * quant``) and
a kind hint. It travels in WELCOME as ``{"fields": [{"n", "t", "q"?, "k"?}, ...]}``.

A :class:`Snapshot` is one tick's entity state in wire form: ids sorted ascending (uint32)
and one column per field holding wire values (quantized ints for quantized floats), in
schema order. It is produced by ``gameserver.world.World.snapshot()`` and consumed by
:func:`protocol.delta.encode_delta`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .codes import ErrorCode, MessageError

__all__ = [
    "DIFF_DTYPES",
    "FLOAT_CODES",
    "INT_CODES",
    "KINDS",
    "MAX_FIELDS",
    "WIRE_DTYPES",
    "Snapshot",
    "WireField",
    "WireSchema",
    "code_of",
]

#: Raw column codes -> little-endian numpy dtypes (SPEC.md section 5, COL table).
WIRE_DTYPES: dict[str, np.dtype[Any]] = {
    "u8": np.dtype("<u1"),
    "i8": np.dtype("<i1"),
    "u16": np.dtype("<u2"),
    "i16": np.dtype("<i2"),
    "u32": np.dtype("<u4"),
    "i32": np.dtype("<i4"),
    "f32": np.dtype("<f4"),
    "f64": np.dtype("<f8"),
}
#: Difference column codes (``new = old + d``) -> signed little-endian dtypes.
DIFF_DTYPES: dict[str, np.dtype[Any]] = {
    "d8": np.dtype("<i1"),
    "d16": np.dtype("<i2"),
    "d32": np.dtype("<i4"),
}
INT_CODES = ("u8", "i8", "u16", "i16", "u32", "i32")
FLOAT_CODES = ("f32", "f64")
#: Kind hints a field may carry (informative for clients).
KINDS = ("float", "int", "bool", "player", "entity")
#: A delta group mask is a uint32: at most 32 fields.
MAX_FIELDS = 32
_MAX_NAME = 64


def code_of(dtype: np.dtype[Any] | type | str) -> str:
    """The wire code of a numpy dtype (``int32`` -> ``"i32"``); ``ValueError`` if none."""
    dt = np.dtype(dtype)
    for code, wdt in WIRE_DTYPES.items():
        if wdt == dt.newbyteorder("<"):
            return code
    raise ValueError(f"dtype {dt} has no wire code (use one of {', '.join(WIRE_DTYPES)})")


@dataclass(frozen=True, slots=True)
class WireField:
    """A wire field: ``name``, ``dtype`` code, ``quant`` (None: not quantized), ``kind``."""

    name: str
    dtype: str
    quant: float | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.dtype not in WIRE_DTYPES:
            raise ValueError(f"field {self.name!r}: unknown wire dtype {self.dtype!r}")
        if self.quant is not None and (
            self.dtype in FLOAT_CODES or not (self.quant > 0 and math.isfinite(self.quant))
        ):
            raise ValueError(f"field {self.name!r}: bad quant {self.quant!r} for {self.dtype}")

    @property
    def np_dtype(self) -> np.dtype[Any]:
        """The little-endian numpy dtype of the wire values."""
        return WIRE_DTYPES[self.dtype]

    @property
    def is_float(self) -> bool:
        """True for raw f32/f64 fields (these never use difference columns)."""
        return self.dtype in FLOAT_CODES

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.name, "t": self.dtype}
        if self.quant is not None:
            out["q"] = float(self.quant)
        if self.kind is not None:
            out["k"] = self.kind
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> WireField:
        """Parse a FIELD map from a peer; :class:`MessageError` if malformed."""
        if not isinstance(obj, dict):
            raise MessageError(ErrorCode.MALFORMED, "schema field is not a map")
        name, dtype, quant, kind = obj.get("n"), obj.get("t"), obj.get("q"), obj.get("k")
        if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME:
            raise MessageError(ErrorCode.MALFORMED, "schema field name must be a short str")
        if dtype not in WIRE_DTYPES:
            raise MessageError(ErrorCode.MALFORMED, f"field {name!r}: unknown dtype {dtype!r}")
        if quant is not None:
            if isinstance(quant, bool) or not isinstance(quant, int | float):
                raise MessageError(ErrorCode.MALFORMED, f"field {name!r}: quant not a number")
            quant = float(quant)
            if not (quant > 0 and math.isfinite(quant)) or dtype in FLOAT_CODES:
                raise MessageError(ErrorCode.MALFORMED, f"field {name!r}: bad quant {quant}")
        if kind is not None and not isinstance(kind, str):
            raise MessageError(ErrorCode.MALFORMED, f"field {name!r}: kind not a str")
        return cls(name, dtype, quant, kind)


@dataclass(frozen=True, slots=True)
class WireSchema:
    """The ordered entity fields; a field's position is its index (bit in delta group masks)."""

    fields: tuple[WireField, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __init__(self, fields: Iterable[WireField]) -> None:
        fs = tuple(fields)
        if len(fs) > MAX_FIELDS:
            raise ValueError(f"{len(fs)} fields: a delta group mask holds at most {MAX_FIELDS}")
        index = {f.name: i for i, f in enumerate(fs)}
        if len(index) != len(fs):
            raise ValueError("duplicate field names")
        object.__setattr__(self, "fields", fs)
        object.__setattr__(self, "index", index)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __getitem__(self, name: str) -> WireField:
        return self.fields[self.index[name]]

    def to_wire(self) -> dict[str, Any]:
        """The msgpack-able SCHEMA map sent in WELCOME."""
        return {"fields": [f.to_wire() for f in self.fields]}

    @classmethod
    def from_wire(cls, obj: Any) -> WireSchema:
        """Parse a SCHEMA map from a peer; :class:`MessageError` if malformed."""
        if not isinstance(obj, dict) or not isinstance(obj.get("fields"), list):
            raise MessageError(ErrorCode.MALFORMED, "schema must be a map with a 'fields' array")
        fields = [WireField.from_wire(f) for f in obj["fields"]]
        try:
            return cls(fields)
        except ValueError as exc:
            raise MessageError(ErrorCode.MALFORMED, f"bad schema: {exc}") from None

    def empty_snapshot(self) -> Snapshot:
        """A snapshot with no entities, columns of the right dtypes."""
        return Snapshot(
            np.zeros(0, np.uint32), {f.name: np.zeros(0, f.np_dtype) for f in self.fields}
        )


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """One tick's state in wire form.

    ``ids``: uint32, strictly ascending. ``columns``: field name -> 1-D array of wire values
    (dtype = the field's wire dtype), same length as ``ids``, in schema order (the order of
    the dict is the field index order used by the delta encoder).
    """

    ids: np.ndarray
    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def equals(self, other: Snapshot) -> bool:
        """Bit-for-bit equality of ids and every column (names, order, dtypes, values)."""
        if list(self.columns) != list(other.columns) or not np.array_equal(self.ids, other.ids):
            return False
        for name, col in self.columns.items():
            oc = other.columns[name]
            if col.dtype != oc.dtype or col.tobytes() != oc.tobytes():
                return False
        return True
