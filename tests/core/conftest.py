"""Fixtures for core tests: a real redis-server for the shared budget store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from costline.service.loadtest import RedisProcess


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the runtime's loop)."""
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free 127.0.0.1 port, for this test run (the same server
    ``costline loadtest --spawn`` starts).

    The project installs it (``make system-deps``, Debian's ``redis-server``); its absence is a
    broken environment, so the tests that need it fail rather than skip.
    """
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not on PATH: the Redis budget tests need a real server. "
            "Install it with `make system-deps` (Debian package redis-server).",
            pytrace=False,
        )
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
