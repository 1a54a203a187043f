"""The first command of the README on a fresh account: ``make audit`` with an empty cache and a
new shell's PATH builds the demo workspace and writes the report, as the README says.

The project's own virtual environment is used as installed (``make -o`` keeps make from
reinstalling it; ``make test`` on a clean clone is what proves the install itself), and the run
happens in a directory of its own, so the checkout is not written to.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
VENV = Path(sys.executable).parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_audit_from_an_empty_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "clone"
    work.mkdir()
    shutil.copy(ROOT / "Makefile", work / "Makefile")
    (work / "pyproject.toml").symlink_to(ROOT / "pyproject.toml")
    (work / ".venv").symlink_to(VENV)
    result = subprocess.run(
        ["make", "-o", ".venv/.installed", "audit"],
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "building the demo workspace" in result.stderr  # the cache was empty
    assert (home / ".cache" / "costline" / "demo" / "workspace.json").is_file()
    report = work / "report.html"
    assert report.is_file() and "<script src=" not in report.read_text(encoding="utf-8")
    # the figures the README quotes come from this run: its headline total is printed
    assert re.search(r"\$[\d,]+", result.stdout)
    assert "report: report.html" in result.stdout
    # nothing half-built or left beside the cache
    assert [p.name for p in (home / ".cache" / "costline").iterdir()] == ["demo"]
    assert os.access(work / ".venv" / "bin" / "costline", os.X_OK)
