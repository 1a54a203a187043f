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


def test_a_fresh_venv_in_a_new_shell_runs_the_readme_commands(tmp_path: Path) -> None:
    # A new virtual environment with the package built and installed into it (its dependencies
    # are the project environment's, through a .pth file: installing them again would only
    # download what `make test` on a clean clone already proves), then a new login shell with an
    # empty cache and nothing on PATH but the system: the activate line, then the commands.
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", fresh], check=True)
    site = next((fresh / "lib").glob("python3*/site-packages"))
    deps = next(VENV.glob("lib/python3*/site-packages"))
    (site / "project-deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    install = subprocess.run(
        [fresh / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", ROOT],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    home = tmp_path / "home"
    home.mkdir()
    script = (
        f". {fresh}/bin/activate\n"
        "costline --version\n"
        "costline demo init ./ws --jobs 1000 --scale 0.01 --seed 3\n"
        "costline profile ws/jobs.jsonl --catalog ws/catalog.json --top 3\n"
        "costline lint --history ws/jobs.jsonl --catalog ws/catalog.json --min-severity error\n"
    )
    result = subprocess.run(
        ["bash", "-lc", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("costline ")
    assert "demo workspace ready" in result.stdout
    assert "Top query patterns by cost" in result.stdout
    assert "CL001" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # the command ran from the fresh environment, not the project's
    which = subprocess.run(
        ["bash", "-lc", f". {fresh}/bin/activate && command -v costline"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert which.stdout.strip() == str(fresh / "bin" / "costline")
