"""One audit of a small demo workspace, shared by the report tests (they only render it)."""

from __future__ import annotations

import pytest

from costline import api
from costline.auditor import AuditResult


@pytest.fixture(scope="session")
def audit(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    """Every analysis on a 3,000-job demo workspace: drivers, lint, layout, MERGE, capacity."""
    workspace = api.Workspace.build(
        tmp_path_factory.mktemp("report") / "ws", jobs=3000, scale=0.01, seed=5
    )
    result = api.audit(workspace)
    assert result.layout is not None and result.capacity is not None and result.merge is not None
    return result
