"""Shared pytest configuration and fixtures used across the test tree."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_server import RedisServer, redis_server_path, start_redis


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free port for this test, stopped afterwards."""
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of a fresh server for this test."""
    return redis_server.url
