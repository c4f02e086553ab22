"""A throwaway ``redis-server`` for tests: its own process on a free loopback port.

Each test that needs Redis takes the ``redis_url`` fixture (``tests/conftest.py``): a fresh
server (no persistence, no config file) is started on a free port, the test gets its
``redis://127.0.0.1:PORT/0`` URL, and the process is stopped (SIGTERM, then SIGKILL) when the
test ends. Tests skip with a reason where ``redis-server`` is not installed (the test command,
``scripts/test.sh``, installs Debian's ``redis-server`` with apt where it can).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

__all__ = ["RedisServer", "redis_server_path", "start_redis"]


def redis_server_path() -> str | None:
    """The ``redis-server`` executable, or ``None`` when it is not installed."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if shutil.which("/usr/bin/redis-server") else None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A running ``redis-server`` child process; :meth:`stop` ends it (idempotent)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def pause(self) -> None:
        """SIGSTOP the server (a Redis that stops answering without closing its sockets)."""
        self.proc.send_signal(19)

    def resume(self) -> None:
        self.proc.send_signal(18)


def start_redis(timeout: float = 10.0) -> RedisServer:
    """Start a server on a free port and wait until it accepts connections."""
    exe = redis_server_path()
    if exe is None:
        raise FileNotFoundError("redis-server is not installed")
    for _ in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break  # lost the port race (or a bad install): try another port
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return RedisServer(proc, port)
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
    raise RuntimeError("could not start redis-server")


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
