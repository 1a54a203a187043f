"""Fixtures for agent-runtime tests (the redis-server fixture is the core tests' one)."""

from __future__ import annotations

import pytest

from tests.core.conftest import redis_url

__all__ = ["redis_url"]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the runtime's loop)."""
    return "asyncio"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver listens on 127.0.0.1 (a free port), not on whatever localhost is."""
    return ("127.0.0.1", 0)
