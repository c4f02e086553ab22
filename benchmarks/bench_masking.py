"""Masking throughput (MB/s) per payload size: our paths vs websockets' C ``apply_mask``.

Run: ``python benchmarks/bench_masking.py``. Prints one row per size with the integer-trick
path, the numpy path, what :func:`protocol.masking.apply_mask` picks, websockets' C
implementation (if importable) and the ratio ours / websockets. Also prints the frame-parse
micro-benchmark: 100k masked 64-byte binary frames fed to a server ``Connection`` in 16 KiB
chunks (messages per second), against websockets' sans-I/O ``ServerProtocol``.
Machine: 2 cores; single-threaded measurements, best of several repeats.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol import masking
from protocol.connection import Connection, Side
from protocol.frames import BINARY, encode_frame

Mask = Callable[[bytes, bytes], bytes]

ws_apply_mask: Mask | None
try:
    from websockets.speedups import apply_mask as _ws_apply_mask

    ws_apply_mask = _ws_apply_mask
except ImportError:  # pragma: no cover - depends on the environment
    ws_apply_mask = None


def int_path(data: bytes, mask: bytes) -> bytes:
    return masking._mask_int(data, mask, len(data)) if data else b""


def numpy_u8_path(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    tiled = np.frombuffer(mask * ((n >> 2) + 1), dtype=np.uint8, count=n)
    return (np.frombuffer(data, dtype=np.uint8) ^ tiled).tobytes()


def numpy_path(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    n8 = n & ~7
    out = np.empty(n, dtype=np.uint8)
    key = np.frombuffer(mask * 2, dtype=np.uint64)
    np.bitwise_xor(
        np.frombuffer(data, dtype=np.uint64, count=n8 >> 3), key, out=out[:n8].view(np.uint64)
    )
    if n8 != n:
        out[n8:] = np.frombuffer(masking._mask_int(data[n8:], mask, n - n8), dtype=np.uint8)
    return out.tobytes()


def throughput(fn: Mask, data: bytes, mask: bytes) -> float:
    """Best-of-5 MB/s of ``fn(data, mask)``, each repeat running ~50 ms."""
    reps = max(1, int(2e7 // (len(data) + 200)))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn(data, mask)
        best = min(best, (time.perf_counter() - t0) / reps)
    return len(data) / best / 1e6


def bench_masking() -> None:
    mask = os.urandom(4)
    print(
        f"masking MB/s (numpy from {masking.NUMPY_THRESHOLD} B, uint64 from "
        f"{masking.WIDE_THRESHOLD} B)"
    )
    print(
        f"{'size':>8} {'int':>9} {'np uint8':>9} {'np uint64':>9} {'ours':>9}"
        f" {'websockets C':>13} {'ours/ws':>8}"
    )
    for size in (64, 1024, 4096, 16 * 1024, 64 * 1024, 1024 * 1024):
        data = os.urandom(size)
        expected = (
            ws_apply_mask(data, mask)
            if ws_apply_mask is not None
            else masking.apply_mask(data, mask)
        )
        assert masking.apply_mask(data, mask) == expected == int_path(data, mask)
        assert numpy_path(data, mask) == expected
        a = throughput(int_path, data, mask)
        assert numpy_u8_path(data, mask) == expected
        b8 = throughput(numpy_u8_path, data, mask)
        b = throughput(numpy_path, data, mask)
        ours = throughput(masking.apply_mask, data, mask)
        if ws_apply_mask is not None:
            w = throughput(ws_apply_mask, data, mask)
            ws_cell, ratio = f"{w:13.0f}", f"{ours / w:8.2f}"
        else:
            ws_cell, ratio = f"{'n/a':>13}", f"{'n/a':>8}"
        label = f"{size // 1024} KiB" if size >= 1024 else f"{size} B"
        print(f"{label:>8} {a:9.0f} {b8:9.0f} {b:9.0f} {ours:9.0f} {ws_cell} {ratio}")


def bench_parse(n: int = 100_000, size: int = 64, chunk: int = 16384) -> None:
    payload = os.urandom(size)
    stream = b"".join(encode_frame(BINARY, payload, mask=os.urandom(4)) for _ in range(n))
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]

    def ours() -> int:
        conn = Connection(Side.SERVER)
        return sum(len(conn.receive_data(c)) for c in chunks)

    def theirs() -> int:
        from websockets.http11 import Request as WsRequest
        from websockets.server import ServerProtocol

        from protocol.handshake import client_request, new_key

        proto = ServerProtocol(max_size=None)
        proto.receive_data(client_request("localhost", "/", new_key()))
        request = proto.events_received()[0]
        assert isinstance(request, WsRequest)
        proto.send_response(proto.accept(request))
        proto.data_to_send()
        count = 0
        for c in chunks:
            proto.receive_data(c)
            count += len(proto.events_received())
        return count

    print(f"\nparse {n} masked {size}-byte binary frames fed in {chunk}-byte chunks")
    results: dict[str, float] = {}
    for name, fn in (("ours", ours), ("websockets", theirs)):
        try:
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                got = fn()
                best = min(best, time.perf_counter() - t0)
            assert got == n, (name, got)
        except Exception as exc:  # websockets internals may change between versions
            print(f"{name:>11}: skipped ({exc!r})")
            continue
        results[name] = n / best
        print(f"{name:>11}: {n / best:12,.0f} msgs/s")
    if len(results) == 2:
        print(f"      ratio: {results['ours'] / results['websockets']:.2f}x")


def bench_echo(n: int = 100_000, size: int = 64, chunk: int = 16384) -> None:
    """Sans-I/O echo loop: parse, deliver, re-frame and drain (no sockets, no event loop)."""
    from websockets.frames import Opcode
    from websockets.http11 import Request as WsRequest
    from websockets.server import ServerProtocol

    from protocol.events import BinaryMessage, TextMessage
    from protocol.frames import TEXT
    from protocol.handshake import client_request, new_key

    print(f"\nsans-I/O echo of {n} masked {size}-byte messages fed in {chunk}-byte chunks")
    for kind, opcode in (("text", TEXT), ("binary", BINARY)):
        payload = b"x" * size if opcode == TEXT else os.urandom(size)
        stream = b"".join(encode_frame(opcode, payload, mask=os.urandom(4)) for _ in range(n))
        chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]

        def ours(chunks: list[bytes] = chunks) -> int:
            conn = Connection(Side.SERVER)
            count = 0
            for c in chunks:
                for ev in conn.receive_data(c):
                    if type(ev) is TextMessage:
                        conn.send_text(ev.data)
                    elif type(ev) is BinaryMessage:
                        conn.send_binary(ev.data)
                    count += 1
                conn.data_to_send()
            return count

        def theirs(chunks: list[bytes] = chunks) -> int:
            proto = ServerProtocol(max_size=None)
            proto.receive_data(client_request("localhost", "/", new_key()))
            request = proto.events_received()[0]
            assert isinstance(request, WsRequest)
            proto.send_response(proto.accept(request))
            proto.data_to_send()
            count = 0
            for c in chunks:
                proto.receive_data(c)
                for frame in proto.events_received():
                    if frame.opcode is Opcode.TEXT:  # type: ignore[union-attr]
                        proto.send_text(frame.data)  # type: ignore[union-attr]
                    else:
                        proto.send_binary(frame.data)  # type: ignore[union-attr]
                    count += 1
                proto.data_to_send()
            return count

        rates = {}
        for name, fn in (("ours", ours), ("websockets", theirs)):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                assert fn() == n
                best = min(best, time.perf_counter() - t0)
            rates[name] = n / best
        ratio = rates["ours"] / rates["websockets"]
        print(
            f"{kind:>7}: ours {rates['ours']:10,.0f} msgs/s   websockets "
            f"{rates['websockets']:10,.0f} msgs/s   ratio {ratio:.2f}x"
        )


if __name__ == "__main__":
    print("machine: 2 cores; single-threaded")
    bench_masking()
    bench_parse()
    bench_echo()
