"""Measure how long a stalled peer holds a connection to a real ``gameserver`` (SPEC.md s. 7).

Starts ``python -m gameserver`` (the arena, plus any extra options given), joins three raw TCP
peers and measures, from the server's own log, the time from each peer's HELLO until the
server gave up on its socket:

* ``mid_frame``: sends the first bytes of a frame, then nothing (keeps reading);
* ``never_reads``: a tiny receive buffer, never reads a byte;
* ``no_pong``: reads everything, never answers a WebSocket ping.

Usage: ``python scripts/measure_stalls.py [--ping-interval 5 --ping-timeout 5 ...]``
(defaults: the server's own). Runs at most ~100 s. Prints one line per peer.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import threading
import time

import msgpack

LINE = re.compile(r"msg=\"(ws keepalive timeout|ws frame timeout|client too slow|player dropped)"
                  r"[^\"]*?(?:peer=\('127\.0\.0\.1', (\d+)\)|player=(\d+))")


def frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    head = bytes([0x82, 0x80 | len(payload)])
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def join(port: int, name: str, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    s.sendall(frame(msgpack.packb([1, {"v": 1, "game": "arena", "name": name}])))
    return s


def drain(s: socket.socket, stop: threading.Event) -> None:
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            if not s.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def main() -> None:
    extra = sys.argv[1:]
    port = 18000 + os.getpid() % 1000
    srv = subprocess.Popen([sys.executable, "-m", "gameserver", "--port", str(port),
                            "--log-level", "DEBUG", *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert srv.stdout is not None and srv.stderr is not None
    srv.stdout.readline()  # the URL line: listening
    stop = threading.Event()
    started: dict[str, float] = {}
    ports: dict[int, str] = {}
    socks = []
    try:
        for name, rcvbuf in (("mid_frame", None), ("never_reads", 4096), ("no_pong", None)):
            s = join(port, name, rcvbuf)
            started[name] = time.monotonic()
            ports[s.getsockname()[1]] = name
            socks.append(s)
            if name != "never_reads":
                threading.Thread(target=drain, args=(s, stop), daemon=True).start()
        socks[0].sendall(frame(msgpack.packb([4, {"t": 1}]))[:3])
        cut: dict[str, tuple[float, str]] = {}
        deadline = time.monotonic() + 100
        while len(cut) < 3 and time.monotonic() < deadline:
            line = srv.stderr.readline()
            if not line:
                break
            m = LINE.search(line)
            if m and m.group(2):
                name = ports.get(int(m.group(2)))
                if name and name not in cut:
                    cut[name] = (time.monotonic() - started[name], m.group(1))
            elif m and m.group(1) == "client too slow" and "never_reads" not in cut:
                cut["never_reads"] = (time.monotonic() - started["never_reads"], m.group(1))
        for name in started:
            if name in cut:
                print(f"{name:12s} cut after {cut[name][0]:5.1f} s ({cut[name][1]})")
            else:
                print(f"{name:12s} not cut within the measurement window")
    finally:
        stop.set()
        for s in socks:
            s.close()
        srv.terminate()
        srv.wait(10)


if __name__ == "__main__":
    main()
