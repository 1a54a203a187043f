"""The Python API as a user calls it: the README's session, paths as text, one input per call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import costline
from costline import warehouse
from costline.demo import build_workspace

README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> costline.Workspace:
    return build_workspace(tmp_path_factory.mktemp("ws"), jobs=3000, seed=5, scale=0.01)


def test_the_readme_python_session_runs_as_written(workspace: costline.Workspace) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [session] = [b for b in blocks if "costline.Workspace.demo()" in b]
    # Workspace.demo() builds in the XDG cache: point it at the small workspace built here.
    cache = workspace.root.parent / "cache"
    (cache / "costline").mkdir(parents=True, exist_ok=True)
    demo = cache / "costline" / "demo"
    if not demo.exists():
        demo.symlink_to(workspace.root)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    run = subprocess.run(
        [sys.executable, "-c", session], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr
    # the small workspace's own figures, in the README's shape
    lines = run.stdout.splitlines()
    assert re.fullmatch(r"\$[\d,]+; top pattern MERGE \$[\d,]+", lines[0]), lines[0]
    assert re.fullmatch(r"layout: 2 tables, saving \$[\d,]+", lines[1]), lines[1]
    assert re.fullmatch(r"capacity: \w+ \w+, \d+ slots", lines[2]), lines[2]
    assert lines[3:] == ["lint: ['CL010', 'CL002']", "merge: rewritten; JSON schema 2"]


def test_paths_as_text_and_the_results_as_data(workspace: costline.Workspace) -> None:
    profile = costline.profile(str(workspace.jobs), catalog=str(workspace.catalog))
    truth = workspace.load_ground_truth()
    assert profile.total_cost_usd == pytest.approx(truth.total_cost_usd, rel=1e-9)
    data = profile.to_dict()
    assert data["jobs"] == 3000 and json.loads(profile.to_json())["jobs"] == 3000
    assert isinstance(data["period"]["start"], str)  # JSON-compatible: dates as text
    # a list of paths, Path and str mixed
    again = costline.read_history([workspace.jobs])
    assert again.jobs == profile.jobs


def test_advise_needs_one_input(workspace: costline.Workspace) -> None:
    history = costline.read_history(workspace.jobs)
    from_profile = costline.advise(
        costline.profile(history, catalog=workspace.catalog), workspace.catalog, top=2
    )
    from_paths = costline.advise(str(workspace.jobs), str(workspace.catalog), top=2)
    assert from_profile.to_dict() == from_paths.to_dict()
    loaded = costline.Profile.model_validate(costline.profile(history).to_dict())
    with pytest.raises(costline.CostlineError, match="no job history"):
        costline.advise(loaded, workspace.catalog)


def test_bad_input_is_a_costline_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(costline.CostlineError, match=r"absent\.jsonl: no such job-history file"):
        costline.read_history(str(tmp_path / "absent.jsonl"))
    with pytest.raises(costline.CostlineError, match="expected a path"):
        costline.read_history(42)  # type: ignore[arg-type]
    with pytest.raises(costline.CostlineError, match="one of them"):
        costline.lint(tmp_path, sql="SELECT 1")
    with pytest.raises(costline.CostlineError, match="catalogue is needed"):
        costline.advise(tmp_path / "jobs.jsonl", None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        costline.nothing  # type: ignore[attr-defined]  # noqa: B018


def test_import_costline_is_cheap() -> None:
    # The API loads on first use: importing the package pulls in none of the analyses.
    code = "import sys, costline; print(sorted(m for m in sys.modules if m.startswith('costline')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "['costline']"


def test_analyses_sharing_one_history_keep_their_tables_apart(
    workspace: costline.Workspace,
) -> None:
    # Two profiles and a capacity plan on one history, interleaved as a notebook would: each
    # works in its own temporary tables, and the shared connection is left as it was.
    history = costline.read_history(workspace.jobs)
    before = history.con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
    history.con.execute("CREATE TEMP TABLE priced AS SELECT 'mine' AS note")
    first = costline.profile(history)
    plans = costline.capacity(history, editions=["enterprise"])
    second = costline.profile(history, catalog=workspace.catalog)
    assert first.total_cost_usd == pytest.approx(second.total_cost_usd, rel=1e-12)
    assert plans.best is not None
    assert history.con.execute("SELECT note FROM priced").fetchall() == [("mine",)]
    history.con.execute("DROP TABLE priced")
    after = history.con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
    assert after == before


def test_every_public_name_resolves_and_the_two_lists_agree() -> None:
    from costline import api

    assert set(costline.__all__) - {"__version__"} == set(api.__all__)
    assert set(warehouse.__all__) == set(api.__all__)
    for name in api.__all__:
        assert getattr(costline, name) is getattr(api, name)
        assert getattr(warehouse, name) is getattr(api, name)


def test_warehouse_functions_are_not_shadowed_by_its_modules() -> None:
    # Importing every implementation module first must not turn a public function into a module.
    import costline.warehouse.layout
    import costline.warehouse.linter
    import costline.warehouse.profiler
    import costline.warehouse.slots  # noqa: F401

    for name in ("profile", "lint", "capacity", "advise"):
        assert callable(getattr(warehouse, name)), name


def test_lint_a_history_from_its_paths_or_its_profile(workspace: costline.Workspace) -> None:
    from_paths = costline.lint(history=str(workspace.jobs), catalog=workspace.catalog)
    made = costline.profile(workspace.jobs, catalog=workspace.catalog)
    from_profile = costline.lint(history=made, catalog=workspace.catalog)
    assert from_paths.to_dict() == from_profile.to_dict()
    top = from_paths.findings[0]
    assert top.code == "CL001" and top.path.startswith("jobs.jsonl#fp_")
