"""Columnar delta codec (SPEC.md section 5). Encoder/decoder/Replica land next; the wire
schema and snapshot types live in :mod:`protocol.wireschema` and are re-exported here."""

from __future__ import annotations

from .codes import DeltaError
from .wireschema import Snapshot, WireField, WireSchema

__all__ = ["DeltaError", "Snapshot", "WireField", "WireSchema"]
