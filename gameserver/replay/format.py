"""The replay file format: framing, records, the per-tick state hash, writer and reader.

A replay file (docs/REPLAY.md is the reference for writing a reader in another language)::

    b"GSREPLAY"                                  8-byte magic
    record*                                      until the end of the file
    record = u32 BE length L | u32 BE CRC-32 of the payload | payload (L bytes of msgpack)

Every payload is a msgpack map whose ``"k"`` names the record kind:

* ``"header"`` (first record, exactly once): format version, game name / class / version,
  seed, room config, tick rate, send rate, max players, the wire schema and input schema, the
  storage dtypes of the columns, the keyframe interval and the hash algorithm name.
* ``"ticks"``: a run of consecutive ticks ``from..to``: the calls (joins, leaves, inputs)
  applied before each of those ticks, and the state hash after each tick.
* ``"key"``: a keyframe: the full world (ids + storage columns of the alive entities) after
  tick ``tick`` (tick 0 is the state after ``on_create``).
* ``"end"``: the recording closed cleanly: last tick, reason, trailing calls.
* ``"restore"`` (format :data:`CONTINUED_FORMAT` only, right after the header): the whole
  simulation state of a room restored from a handover at tick ``tick`` (the packed
  :func:`gameserver.handover.simstate.simulation_state`) and its state hash; the ticks then
  start at ``tick + 1`` and the header's ``continues`` names the room and its earlier file.

Errors: :class:`ReplayCorrupt` (the file is damaged or truncated: ``tick`` names the first tick
that cannot be trusted; exit status 1) and :class:`ReplayIncompatible` (a well-formed file this
build or this game cannot replay: other format version, game version or schema; exit status 2).
Neither ever escapes as a traceback from the CLI.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgpack
import numpy as np

from gameserver.schema import WorldSchema

__all__ = [
    "CONTINUED_FORMAT",
    "FORMAT_VERSION",
    "HASH_NAME",
    "MAGIC",
    "MAX_RECORD",
    "Call",
    "Header",
    "Keyframe",
    "ReplayCorrupt",
    "ReplayError",
    "ReplayIncompatible",
    "ReplayReader",
    "ReplayWriter",
    "Restore",
    "TickRun",
    "class_spec",
    "fold_hash",
    "make_header",
    "state_bytes",
    "state_hash",
    "take_keyframe",
]

MAGIC: Final = b"GSREPLAY"
#: Version of everything after the framing (record kinds and their fields).
FORMAT_VERSION: Final = 1
#: The version of a file that continues a room restored from a handover: version 1 plus a
#: ``"restore"`` record right after the header (a build that reads only version 1 says
#: "incompatible", exit 2, instead of misreading it). Both are read.
CONTINUED_FORMAT: Final = 2
#: Name of the state hash algorithm below (a header field; another name is incompatible).
HASH_NAME: Final = "fold64-v1"
#: Largest record payload accepted when reading (a keyframe of 1M entities fits easily).
MAX_RECORD: Final = 256 * 2**20
_FRAME = 8  # u32 length + u32 crc

# Call kinds on disk (one letter each, as in the "calls" arrays of a "ticks" record).
JOIN: Final = "j"
LEAVE: Final = "l"
INPUT: Final = "i"


class ReplayError(Exception):
    """Base of the replay errors; ``message`` is the one line the CLI prints."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReplayCorrupt(ReplayError):
    """The file is truncated or damaged; ``tick`` is the first tick that cannot be trusted."""

    exit_code = 1

    def __init__(self, message: str, *, tick: int, offset: int) -> None:
        super().__init__(f"replay broken at tick {tick} (byte {offset}): {message}")
        self.tick = tick
        self.offset = offset


class ReplayIncompatible(ReplayError):
    """A well-formed replay this build or this game cannot play (other version / schema)."""

    exit_code = 2


# ---------------------------------------------------------------------------- state hash

_MASK64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_keys = np.zeros(0, np.uint64)


def _fold_keys(n: int) -> np.ndarray:
    """The first ``n`` fold multipliers: ``splitmix64(i) | 1`` for i = 1..n (uint64, cached)."""
    global _keys
    if _keys.shape[0] < n:
        m = max(n, 2 * _keys.shape[0], 4096)
        with np.errstate(over="ignore"):
            z = np.arange(1, m + 1, dtype=np.uint64) * np.uint64(_GOLDEN)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        _keys = z | np.uint64(1)
    return _keys[:n]


def state_bytes(world: Any) -> tuple[np.ndarray, int]:
    """The bytes :func:`state_hash` folds, copied out of the world, and ``hi``.

    Split from the fold so a recorder can copy on the tick thread (one concatenation) and
    fold on its writer thread (numpy's integer dot product runs without the GIL).
    """
    slots = world.alive_slots()
    hi = int(slots[-1]) + 1 if slots.shape[0] else 0
    parts = [world.alive[:hi].view(np.uint8), world.generation[:hi].view(np.uint8)]
    cols = world.columns()
    for name in world.schema.fields:
        parts.append(cols[name][:hi].view(np.uint8))
    pad = -sum(p.shape[0] for p in parts) % 8
    if pad:
        parts.append(np.zeros(pad, np.uint8))
    return np.concatenate(parts), hi


def fold_hash(buf: np.ndarray, hi: int) -> int:
    """The ``fold64-v1`` hash of :func:`state_bytes` output (see :func:`state_hash`)."""
    words = buf.view("<u8")
    h = int(np.dot(words, _fold_keys(words.shape[0]))) if words.shape[0] else 0
    return (h ^ (hi * _GOLDEN)) & _MASK64


def state_hash(world: Any) -> int:
    """64-bit hash of the world after a tick (``fold64-v1``; docs/REPLAY.md section 4).

    Covers the slots ``0..hi-1`` where ``hi`` is one past the highest alive slot: the alive
    mask (1 byte per slot), the slot generations (uint32) and every column's storage bytes in
    schema order (little-endian). Rows of free slots below ``hi`` are included: they are
    deterministic too, and skipping them would cost a gather per column. The bytes are
    zero-padded to whole uint64 words ``w[i]`` and folded as ``sum(w[i] * K[i]) mod 2**64``
    with ``K[i] = splitmix64(i + 1) | 1``, then XORed with ``hi * 0x9E3779B97F4A7C15``.
    A desync detector (any single changed word changes it), not a cryptographic digest.
    Cost: one concatenation and one integer dot product over ~30 B per slot.
    """
    buf, hi = state_bytes(world)
    return fold_hash(buf, hi)


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class Call:
    """One recorded simulation call, re-issued before tick ``tick`` when replaying.

    ``kind`` is ``"j"`` (join: ``data`` = ``[name, hello]``), ``"l"`` (leave: ``data`` =
    reason) or ``"i"`` (input: ``seq``, ``data`` = the validated values in input-schema order,
    ``render_tick`` the tick the client was rendering, or ``None``).
    """

    tick: int
    kind: str
    player: int
    seq: int = 0
    data: Any = None
    render_tick: int | None = None

    def pack(self) -> list[Any]:
        return [self.tick, self.kind, self.player, self.seq, self.data, self.render_tick]


@dataclass(frozen=True, slots=True)
class TickRun:
    """A ``"ticks"`` record: ticks ``first..last``, their calls and state hashes."""

    first: int
    last: int
    calls: list[Call]
    hashes: np.ndarray  # uint64, one per tick first..last


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A ``"key"`` record: ids and storage columns of the alive entities after ``tick``."""

    tick: int
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    hash: int


@dataclass(frozen=True, slots=True)
class Restore:
    """A ``"restore"`` record: the simulation state (packed, as the handover codec packs it)
    of a room restored from a handover at ``tick``, and the state hash of its world."""

    tick: int
    state: bytes
    hash: int


@dataclass(frozen=True)
class Header:
    """The header record, parsed. ``raw`` keeps every field (unknown ones included)."""

    game: str
    game_class: str
    game_version: str
    seed: int
    config: dict[str, Any]
    tick_rate: int
    send_rate: int
    max_players: int
    schema: dict[str, Any]
    inputs: list[Any]
    storage: list[tuple[str, str]]
    keyframe_every: int
    raw: dict[str, Any] = field(repr=False)

    def input_names(self) -> list[str]:
        return [str(f.get("n")) for f in self.inputs if isinstance(f, Mapping)]


def class_spec(cls: type[Any]) -> str:
    """``"module:QualName"`` of a game class (what ``load_game_class`` imports back)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _storage(cls: type[Any]) -> list[tuple[str, str]]:
    schema = WorldSchema(cls.fields)
    return [(name, np.dtype(f.storage).str) for name, f in schema.fields.items()]


def make_header(cls: type[Any], *, seed: int, config: Mapping[str, Any], tick_rate: int,
                send_rate: int, max_players: int, keyframe_every: int,
                **extra: Any) -> dict[str, Any]:
    """The header record's payload for a room of game class ``cls`` (msgpack-able)."""
    schema = WorldSchema(cls.fields)
    return {
        "k": "header", "format": FORMAT_VERSION, "game": cls.name,
        "game_class": class_spec(cls), "game_version": str(getattr(cls, "version", "0")),
        "seed": int(seed), "config": dict(config), "tick_rate": int(tick_rate),
        "send_rate": int(send_rate), "max_players": int(max_players),
        "schema": schema.wire.to_wire(), "inputs": cls.inputs.to_wire(),
        "storage": [list(s) for s in _storage(cls)], "keyframe_every": int(keyframe_every),
        "hash": HASH_NAME, **extra,
    }


def check_compatible(header: Header, cls: type[Any]) -> None:
    """Raise :class:`ReplayIncompatible` unless ``cls`` can replay a file with ``header``."""
    if cls.name != header.game:
        raise ReplayIncompatible(f"incompatible replay: recorded game {header.game!r}, "
                                 f"this class is {cls.name!r} ({class_spec(cls)})")
    version = str(getattr(cls, "version", "0"))
    if version != header.game_version:
        raise ReplayIncompatible(
            f"incompatible replay: recorded with {header.game} version "
            f"{header.game_version!r}, this {header.game} is version {version!r}")
    schema = WorldSchema(cls.fields).wire.to_wire()
    if schema != header.schema or [list(s) for s in _storage(cls)] != [
            list(s) for s in header.storage]:
        raise ReplayIncompatible(f"incompatible replay: the entity schema of {header.game} "
                                 "changed since the recording")
    if cls.inputs.to_wire() != header.inputs:
        raise ReplayIncompatible(f"incompatible replay: the input schema of {header.game} "
                                 "changed since the recording")


def take_keyframe(world: Any, tick: int, *, with_hash: bool = True) -> dict[str, Any]:
    """A ``"key"`` record payload: ids + storage columns of the alive entities after ``tick``.

    ``with_hash=False`` leaves out ``"hash"`` (the caller adds the tick's state hash).
    """
    slots = world.alive_slots()
    cols = world.columns()
    out = {"k": "key", "tick": int(tick), "ids": world.id_of(slots).astype("<u4").tobytes(),
           "cols": {name: np.take(cols[name], slots).tobytes() for name in world.schema.fields}}
    if with_hash:
        out["hash"] = state_hash(world)
    return out


def frame(payload: dict[str, Any]) -> bytes:
    """One framed record: u32 BE length, u32 BE CRC-32, msgpack payload."""
    body = msgpack.packb(payload, use_bin_type=True)
    return (len(body).to_bytes(4, "big") + (zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")
            + body)


class ReplayWriter:
    """Appends framed records to a file; every record is flushed to the OS when written.

    No fsync: a crashed *process* loses nothing written; a crashed *machine* may lose what the
    OS had not written back. Not thread-safe (one room's tick thread uses it).
    """

    def __init__(self, path: Path | str, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self._f: IO[bytes] | None = open(self.path, "xb")  # closed in close()
        self.bytes = 0
        self._f.write(MAGIC)
        self.bytes += len(MAGIC)
        self.write(header)

    @property
    def closed(self) -> bool:
        return self._f is None

    def write(self, payload: dict[str, Any]) -> int:
        """Write one record and hand it to the OS; returns its size in bytes."""
        if self._f is None:
            raise ValueError("replay writer is closed")
        data = frame(payload)
        self._f.write(data)
        self._f.flush()
        self.bytes += len(data)
        return len(data)

    def close(self) -> None:
        if self._f is not None:
            f, self._f = self._f, None
            f.close()


# ------------------------------------------------------------------------------- reader


def _bad(what: str) -> ValueError:
    return ValueError(what)


def _int(obj: Mapping[str, Any], key: str, lo: int = 0, hi: int = 2**63) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(f"field {key!r} is not an integer in {lo}..{hi}")
    return v


def _parse_header(obj: Any) -> Header:
    if not isinstance(obj, dict) or obj.get("k") != "header":
        raise _bad("the first record is not a header")
    fmt = obj.get("format")
    if fmt not in (FORMAT_VERSION, CONTINUED_FORMAT):
        raise ReplayIncompatible(f"incompatible replay: file format version {fmt!r}, this "
                                 f"gameserver reads versions {FORMAT_VERSION} and "
                                 f"{CONTINUED_FORMAT}")
    if obj.get("hash") != HASH_NAME:
        raise ReplayIncompatible(f"incompatible replay: state hash {obj.get('hash')!r}, this "
                                 f"gameserver computes {HASH_NAME!r}")
    for key in ("game", "game_class", "game_version"):
        if not isinstance(obj.get(key), str):
            raise _bad(f"header field {key!r} is not a string")
    if not isinstance(obj.get("config"), dict) or not isinstance(obj.get("schema"), dict):
        raise _bad("header config / schema is not a map")
    if not isinstance(obj.get("inputs"), list) or not isinstance(obj.get("storage"), list):
        raise _bad("header inputs / storage is not a list")
    storage = []
    for s in obj["storage"]:
        if not (isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s)):
            raise _bad("header storage entry is not [name, dtype]")
        storage.append((s[0], s[1]))
    return Header(
        game=obj["game"], game_class=obj["game_class"], game_version=obj["game_version"],
        seed=_int(obj, "seed"), config=obj["config"], tick_rate=_int(obj, "tick_rate", 1, 240),
        send_rate=_int(obj, "send_rate", 1, 240), max_players=_int(obj, "max_players", 1),
        schema=obj["schema"], inputs=obj["inputs"], storage=storage,
        keyframe_every=_int(obj, "keyframe_every", 1), raw=obj)


def _parse_call(c: Any, first: int, last: int) -> Call:
    if not isinstance(c, list) or len(c) != 6:
        raise _bad("a call is not a 6-element array")
    tick, kind, player, seq, data, rt = c
    if isinstance(tick, bool) or not isinstance(tick, int) or not first <= tick <= last:
        raise _bad(f"a call's tick {tick!r} is outside the record's ticks {first}..{last}")
    if kind not in (JOIN, LEAVE, INPUT):
        raise _bad(f"unknown call kind {kind!r}")
    if isinstance(player, bool) or not isinstance(player, int) or not 1 <= player < 2**32:
        raise _bad("a call's player id is not a uint32")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**32:
        raise _bad("a call's seq is not a uint32")
    if rt is not None and (isinstance(rt, bool) or not isinstance(rt, int)):
        raise _bad("a call's render tick is not an integer")
    if kind == JOIN and not (isinstance(data, list) and len(data) == 2
                             and isinstance(data[0], str) and isinstance(data[1], dict)):
        raise _bad("a join's data is not [name, hello]")
    if kind == LEAVE and not isinstance(data, str):
        raise _bad("a leave's reason is not a string")
    if kind == INPUT and not isinstance(data, list):
        raise _bad("an input's values are not an array")
    return Call(tick, kind, player, seq, data, rt)


class ReplayReader:
    """Reads a replay file record by record, checking framing, CRCs and tick continuity.

    ``ReplayReader(path)`` reads and checks the header (raises :class:`ReplayCorrupt` /
    :class:`ReplayIncompatible`); :meth:`records` then yields :class:`TickRun` and
    :class:`Keyframe` objects in file order and finally the ``"end"`` payload (a dict);
    a continuation file's ``"restore"`` record is read with the header (``restore``, else
    None; ``start`` is its tick, 0 for a recording from the room's creation);
    damage or truncation raises :class:`ReplayCorrupt` naming the first tick affected.
    A file without an ``"end"`` record (the recording process died) raises at its end,
    after every intact record has been yielded.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.size = os.path.getsize(self.path)
            self._f: IO[bytes] = open(self.path, "rb")  # closed in close()
        except OSError as exc:
            raise ReplayError(f"cannot open replay {self.path}: {exc.strerror or exc}") from None
        self.offset = 0
        self.last_tick = 0  # last tick whose record was read intact
        self.restore: Restore | None = None
        self.record_offset = 0  # offset of the record last yielded by records()
        magic = self._f.read(len(MAGIC))
        if magic != MAGIC:
            self.close()
            if len(magic) < len(MAGIC) and MAGIC.startswith(magic):
                raise ReplayCorrupt("truncated before the header", tick=0, offset=0)
            raise ReplayCorrupt(f"not a gameserver replay file (magic {magic[:8]!r})",
                                tick=0, offset=0)
        self.offset = len(MAGIC)
        try:
            raw = self._read_payload(tick=0, what="header")
            if raw is None:
                raise ReplayCorrupt("truncated before the header", tick=0, offset=self.offset)
            self.header = _parse_header(raw)
            if self.header.raw.get("format") == CONTINUED_FORMAT:
                self.restore = self._read_restore()
                self.last_tick = self.restore.tick
        except ValueError as exc:
            self.close()
            raise ReplayCorrupt(f"bad header: {exc}", tick=0, offset=len(MAGIC)) from None
        except ReplayError:
            self.close()
            raise

    @property
    def start(self) -> int:
        """The first tick whose state the file holds (the restored tick, else 0)."""
        return self.restore.tick if self.restore is not None else 0

    def _read_restore(self) -> Restore:
        start = self.offset
        obj = self._read_payload(tick=0, what="restore record")
        if obj is None:
            raise ReplayCorrupt("truncated before the restore record", tick=0, offset=start)
        if not isinstance(obj, dict) or obj.get("k") != "restore":
            raise ReplayCorrupt("a continued replay must begin with a restore record",
                                tick=0, offset=start)
        state = obj.get("state")
        try:
            tick = _int(obj, "tick", 0, 2**32)
            h = _int(obj, "hash", 0, 2**64 - 1)
            if not isinstance(state, bytes):
                raise _bad("the restore record's state is not bytes")
        except ValueError as exc:
            raise ReplayCorrupt(f"bad restore record: {exc}", tick=0, offset=start) from None
        return Restore(tick, state, h)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ReplayReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_payload(self, *, tick: int, what: str) -> Any:
        """The next record's unpacked payload; ``None`` at a clean end of file."""
        start = self.offset
        head = self._f.read(_FRAME)
        if not head:
            return None
        if len(head) < _FRAME:
            raise ReplayCorrupt(f"truncated inside the frame of the {what}", tick=tick,
                                offset=start)
        length = int.from_bytes(head[:4], "big")
        crc = int.from_bytes(head[4:], "big")
        if length > MAX_RECORD or start + _FRAME + length > self.size:
            if start + _FRAME + length > self.size and length <= MAX_RECORD:
                raise ReplayCorrupt(f"truncated inside the {what} ({length} bytes announced, "
                                    f"{self.size - start - _FRAME} present)",
                                    tick=tick, offset=start)
            raise ReplayCorrupt(f"record length {length} is not plausible (damaged frame)",
                                tick=tick, offset=start)
        body = self._f.read(length)
        if len(body) < length:
            raise ReplayCorrupt(f"truncated inside the {what}", tick=tick, offset=start)
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            raise ReplayCorrupt(f"checksum mismatch in the {what} (damaged bytes)",
                                tick=tick, offset=start)
        self.offset = start + _FRAME + length
        try:
            return msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several types for bad bytes
            raise ReplayCorrupt(f"undecodable {what}: {exc}", tick=tick,
                                offset=start) from None

    def records(self) -> Iterator[TickRun | Keyframe | dict[str, Any]]:
        """Yield every record after the header (see the class docstring).

        ``record_offset`` is the byte offset of the record last yielded (for :meth:`run_at`).
        """
        while True:
            start = self.offset
            nxt = self.last_tick + 1
            obj = self._read_payload(tick=nxt, what=f"record after tick {self.last_tick}")
            if obj is None:
                raise ReplayCorrupt("the file ends without an end record (the recording "
                                    f"stopped abruptly after tick {self.last_tick})",
                                    tick=nxt, offset=start)
            try:
                rec = self._parse(obj, self.last_tick)
            except ValueError as exc:
                raise ReplayCorrupt(f"malformed record: {exc}", tick=nxt, offset=start) from None
            self.record_offset = start
            if isinstance(rec, TickRun):
                self.last_tick = rec.last
            yield rec
            if isinstance(rec, dict):
                return

    def run_at(self, offset: int, first: int) -> TickRun:
        """Re-read the ``"ticks"`` record at ``offset`` (one :meth:`records` yielded there)."""
        self._f.seek(offset)
        self.offset = offset
        obj = self._read_payload(tick=first, what=f"record of tick {first}")
        try:
            rec = self._parse(obj, first - 1)
        except ValueError as exc:
            raise ReplayCorrupt(f"malformed record: {exc}", tick=first, offset=offset) from None
        if not isinstance(rec, TickRun):
            raise ReplayCorrupt("not a ticks record", tick=first, offset=offset)
        return rec

    def _parse(self, obj: Any, prev: int) -> TickRun | Keyframe | dict[str, Any]:
        """Check and convert one record payload that follows tick ``prev`` (ValueError)."""
        nxt = prev + 1
        kind = obj.get("k") if isinstance(obj, dict) else None
        if kind == "ticks":
            first, last = _int(obj, "from", 1), _int(obj, "to", 1)
            if first != nxt or last < first:
                raise _bad(f"ticks {first}..{last} do not follow tick {prev}")
            hashes = obj.get("hashes")
            if not isinstance(hashes, bytes) or len(hashes) != 8 * (last - first + 1):
                raise _bad("the hashes do not match the tick count")
            calls = self._calls(obj, first, last)
            return TickRun(first, last, calls, np.frombuffer(hashes, "<u8"))
        if kind == "key":
            tick = _int(obj, "tick")
            if tick != prev:
                raise _bad(f"keyframe of tick {tick} after tick {prev}")
            ids_b, cols_b = obj.get("ids"), obj.get("cols")
            if not isinstance(ids_b, bytes) or len(ids_b) % 4 or not isinstance(cols_b, dict):
                raise _bad("keyframe ids / columns malformed")
            ids = np.frombuffer(ids_b, "<u4")
            cols: dict[str, np.ndarray] = {}
            for name, dt in self.header.storage:
                b = cols_b.get(name)
                dtype = np.dtype(dt)
                if not isinstance(b, bytes) or len(b) != dtype.itemsize * ids.shape[0]:
                    raise _bad(f"keyframe column {name!r} has the wrong size")
                cols[name] = np.frombuffer(b, dtype)
            return Keyframe(tick, ids, cols, _int(obj, "hash", 0, 2**64 - 1))
        if kind == "end":
            last = _int(obj, "tick")
            if last != prev:
                raise _bad(f"end record says tick {last}, the file has {prev}")
            obj["calls"] = self._calls(obj, last + 1, last + 1)
            return dict(obj)
        raise _bad(f"unknown record kind {kind!r}")

    def _calls(self, obj: dict[str, Any], first: int, last: int) -> list[Call]:
        raw_calls = obj.get("calls", [])
        if not isinstance(raw_calls, list):
            raise _bad("calls is not an array")
        n_inputs = len(self.header.inputs)
        calls = [_parse_call(c, first, last) for c in raw_calls]
        prev = first
        for c in calls:
            if c.tick < prev:
                raise _bad("calls are not in tick order")
            prev = c.tick
            if c.kind == INPUT and len(c.data) != n_inputs:
                raise _bad("an input does not have one value per input field")
        return calls
