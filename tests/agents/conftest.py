"""Fixtures for agent-runtime tests (the redis-server fixture is the core tests' one)."""

from __future__ import annotations

import pytest

from tests.core.conftest import redis_url

__all__ = ["redis_url"]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the runtime's loop)."""
    return "asyncio"
