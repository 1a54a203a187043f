"""A small demo workspace shared by the demo tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from costline.demo import Workspace, build_workspace

SMALL_JOBS = 20_000
SMALL_SCALE = 0.05


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_workspace(
        tmp_path_factory.mktemp("demo"), jobs=SMALL_JOBS, seed=7, scale=SMALL_SCALE
    )


@pytest.fixture(scope="session")
def jobs_path(workspace: Workspace) -> Path:
    return workspace.jobs
