"""Exit codes that tell the truth: nothing usable is an error, outputs and options are checked
before any work, Ctrl-C stops at once with nothing half-written, a workspace is never
overwritten unasked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from costline import __version__
from tests.conftest import costline, job

BARE_ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "160"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ws") / "ws"
    result = costline("demo", "init", directory, "--jobs", "2000", "--scale", "0.01", "--seed", "5")
    assert result.returncode == 0, result.stderr
    return directory


def test_version() -> None:
    result = costline("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"costline {__version__}")


def test_a_history_with_no_usable_row_is_an_error_saying_why(tmp_path: Path) -> None:
    micros = 1_790_000_000_000_000
    path = tmp_path / "jobs.jsonl"
    path.write_text(
        "\n".join(json.dumps(job(f"j{i}", creation_time=str(micros + i))) for i in range(50)) + "\n"
    )
    # Read in the unit the digits say: fine. Told seconds: every row rejected, exit 2.
    assert costline("profile", path).returncode == 0
    for command in ("profile", "capacity"):
        result = costline(command, path, "--epoch-unit", "s")
        assert result.returncode == 2, result.stdout
        assert "all 50 rows rejected, nothing to analyse" in result.stderr
        assert "epoch microseconds? pass --epoch-unit us (50)" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = costline("profile", empty)
    assert result.returncode == 2 and "no jobs in it" in result.stderr


def test_outputs_are_checked_before_any_work(tmp_path: Path, workspace: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "out.json"
    start = time.monotonic()
    for args in (
        ("profile", workspace / "jobs.jsonl", "-f", "json", "-o", missing),
        ("audit", workspace, "-o", missing.with_suffix(".html")),
        ("capacity", workspace / "jobs.jsonl", "-f", "html", "-o", tmp_path),
    ):
        result = costline(*args)
        assert result.returncode == 2, (args, result.stdout)
        assert "does not exist" in result.stderr or "is a directory" in result.stderr
    # no analysis ran: three refusals take a few interpreter starts, not three audits
    assert time.monotonic() - start < 60


def test_demo_init_never_overwrites_unasked(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "jobs.jsonl").write_text("mine\n")
    result = costline("demo", "init", taken, "--jobs", "1000", "--scale", "0.01")
    assert result.returncode == 2 and "not empty" in result.stderr and "--force" in result.stderr
    assert (taken / "jobs.jsonl").read_text() == "mine\n"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    result = costline("demo", "init", a_file)
    assert result.returncode == 2 and "is a file, not a workspace directory" in result.stderr
    result = costline("demo", "init", "/proc/costline-cannot-be-here")
    assert result.returncode == 2 and "cannot create /proc/costline-cannot-be-here" in result.stderr
    result = costline("demo", "init", tmp_path / "small", "--jobs", "100")
    assert result.returncode == 2 and "--jobs" in result.stderr
    replaced = costline(
        "demo", "init", taken, "--jobs", "1000", "--scale", "0.01", "--force", "--seed", "3"
    )
    assert replaced.returncode == 0, replaced.stderr
    assert (taken / "workspace.json").is_file() and (taken / "jobs.jsonl").read_text() != "mine\n"
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []


def _interrupted(args: list[str], cwd: Path, after_s: float) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "costline.cli", *args],
        cwd=cwd,
        env={**BARE_ENV, "HOME": str(cwd)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_ctrl_c_during_demo_init_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    result = _interrupted(["demo", "init", str(target), "--jobs", "40000"], tmp_path, 4.0)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().endswith("aborted")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the workspace nor its partial build


def test_ctrl_c_during_merge_prove_is_an_abort(tmp_path: Path, workspace: Path) -> None:
    result = _interrupted(
        ["merge", "prove", "--workspace", str(workspace), "--rows", "3000000"], tmp_path, 6.0
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().endswith("aborted") and "Traceback" not in result.stderr


def test_lint_with_nothing_to_lint_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no sql here")
    result = costline("lint", tmp_path)
    assert result.returncode == 2 and "no SQL files in it" in result.stderr
    (tmp_path / "empty.sql").write_text("")
    result = costline("lint", tmp_path)
    assert result.returncode == 2 and "no SQL statements" in result.stderr


def test_audit_names_what_it_skipped_and_strict_fails_on_it(
    tmp_path: Path, workspace: Path
) -> None:
    import gzip
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    with (
        (workspace / "jobs.jsonl").open("rb") as src,
        gzip.open(bare / "jobs.jsonl.gz", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    result = costline("audit", bare, "-o", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    assert "skipped layout: no table catalogue" in result.stderr
    assert "skipped merge: no table catalogue" in result.stderr
    strict = costline("audit", bare, "-o", tmp_path / "r.html", "--strict")
    assert strict.returncode == 1 and "--strict: 3 sections skipped" in strict.stderr


def test_gzipped_inputs_are_read_wherever_a_path_is_taken(tmp_path: Path, workspace: Path) -> None:
    import gzip

    sql = tmp_path / "sql"
    sql.mkdir()
    merge = "MERGE `acme-dwh-prod.risk.positions` t USING s ON t.id = s.id WHEN MATCHED THEN DELETE"
    (sql / "nightly.sql.gz").write_bytes(gzip.compress(merge.encode()))
    linted = costline("lint", sql, "--catalog", workspace / "catalog.json")
    assert linted.returncode == 0 and "nightly.sql.gz:1:7: CL001 error" in linted.stdout
    prices = tmp_path / "prices.toml.gz"
    prices.write_bytes(gzip.compress(b"[bigquery.on_demand]\nusd_per_tib = 5.0\n"))
    profiled = costline("profile", workspace / "jobs.jsonl", "--prices", prices, "-f", "json")
    assert profiled.returncode == 0, profiled.stderr
    default = costline("profile", workspace / "jobs.jsonl", "-f", "json")
    ratio = (
        json.loads(profiled.stdout)["on_demand_cost_usd"]
        / json.loads(default.stdout)["on_demand_cost_usd"]
    )
    assert ratio == pytest.approx(5.0 / 6.25)
