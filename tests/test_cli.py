"""The command line as a user runs it: a real process, real files, exit codes, no tracebacks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import TIB, costline, job


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ws")
    result = costline("demo", "init", directory, "--jobs", "3000", "--scale", "0.01", "--seed", "5")
    assert result.returncode == 0, result.stderr
    assert "demo workspace ready" in result.stdout
    return directory


def test_profile_json(workspace: Path) -> None:
    result = costline(
        "profile",
        workspace / "jobs.jsonl",
        "--format",
        "json",
        "--catalog",
        workspace / "catalog.json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    truth = json.loads((workspace / "ground_truth.json").read_text())
    assert data["jobs"] == 3000 and data["rejected"] == []
    assert data["total_cost_usd"] == pytest.approx(truth["total_cost_usd"], rel=1e-9)
    assert data["fingerprints"][0]["cost_usd"] >= data["fingerprints"][1]["cost_usd"]


def test_profile_text_and_html(workspace: Path, tmp_path: Path) -> None:
    text = costline("profile", workspace / "jobs.jsonl", "--top", "5")
    assert text.returncode == 0 and "Top query patterns by cost" in text.stdout
    assert "Reservations: billed (allocated slots)" in text.stdout
    assert "not deducted" in text.stdout  # the free tier, stated
    page = tmp_path / "p.html"
    html = costline("profile", workspace / "jobs.jsonl", "--format", "html", "-o", page)
    assert html.returncode == 0, html.stderr
    content = page.read_text()
    assert "<script src=" not in content  # self-contained: plotly is inlined
    assert 'id="reservations"' in content and "attributed" in content


def test_profile_billing_options(workspace: Path, tmp_path: Path) -> None:
    # A setup for one reservation: a 100-slot baseline billed all period, at Enterprise's
    # pay-as-you-go price; the other reservations stay pure autoscaling.
    setups = tmp_path / "res.toml"
    setups.write_text('[reservations."acme-admin:US.etl-prod"]\nbaseline_slots = 100\n')
    base = costline("profile", workspace / "jobs.jsonl", "-f", "json")
    with_setup = costline(
        "profile", workspace / "jobs.jsonl", "-f", "json", "--reservations", setups, "--fluid"
    )
    assert base.returncode == 0 and with_setup.returncode == 0, with_setup.stderr
    before, after = json.loads(base.stdout), json.loads(with_setup.stdout)
    bills = {b["reservation"]: b for b in after["capacity"]["reservations"]}
    etl = bills["acme-admin:US.etl-prod"]
    span = dt.datetime.fromisoformat(after["period"]["end"]) - dt.datetime.fromisoformat(
        after["period"]["start"]
    )
    assert etl["baseline_slot_hours"] >= 100 * span.total_seconds() / 3600
    assert after["capacity"]["billed_usd"] != before["capacity"]["billed_usd"]
    assert sum(after["attribution"]["reservation"].values()) == pytest.approx(
        after["total_cost_usd"]
    )
    eu = costline("profile", workspace / "jobs.jsonl", "-f", "json", "--region", "eu")
    assert eu.returncode == 0 and json.loads(eu.stdout)["region"] == "EU"
    # Bad billing input: one message naming the file and field, exit 2, no traceback.
    bad = tmp_path / "bad.toml"
    bad.write_text('[reservations."x"]\nbaseline_slots = 75\n')
    for args, message in (
        (("--reservations", bad), "multiple of 50"),
        (("--reservations-timeline", tmp_path / "absent.jsonl"), "no such reservations timeline"),
        (("--region", "mars"), "[bigquery.regions.'mars']"),
    ):
        result = costline("profile", workspace / "jobs.jsonl", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


def test_audit_writes_a_self_contained_report(workspace: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = costline("audit", workspace, "-o", report)
    assert result.returncode == 0, result.stderr
    assert "Top cost drivers" in result.stdout
    page = report.read_text()
    for section in (
        'id="daily-cost"',
        'id="pareto"',
        'id="drivers"',
        'id="findings"',
        'id="tables"',
    ):
        assert section in page
    assert "<script src=" not in page and "cdn" not in page.lower().split("<body>")[1]


def test_bad_rows_are_listed_and_strict_fails(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps(job("a", total_bytes_billed=TIB)) + "\n{broken\n")
    lenient = costline("profile", path, "--format", "json")
    assert lenient.returncode == 0
    assert json.loads(lenient.stdout)["rejected"] == [
        {"path": str(path), "line": 2, "field": None, "error": "not valid JSON"}
    ]
    assert (
        "1 of 2 rows rejected" in lenient.stderr and f"{path}:2: not valid JSON" in lenient.stderr
    )
    strict = costline("profile", path, "--strict")
    assert strict.returncode == 2 and "--strict" in strict.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("profile", "nope.jsonl"), "nope.jsonl: no such job-history file"),
        (("profile",), "give job-history files"),
        (("profile", "x.jsonl", "--edition", "gold"), "unknown BigQuery edition 'gold'"),
        (("profile", "x.jsonl", "--prices", "missing.toml"), "cannot read price file"),
        (("audit", "empty"), "no job history found"),
    ],
)
def test_errors_are_one_clear_message(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "x.jsonl").write_text("")
    (tmp_path / "empty").mkdir()
    result = costline(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_bad_price_override_names_the_entry(tmp_path: Path) -> None:
    prices = tmp_path / "p.toml"
    prices.write_text("[bigquery.on_demand]\nusd_per_tib = -1\n")
    (tmp_path / "x.jsonl").write_text("")
    result = costline("profile", "x.jsonl", "--prices", prices, cwd=tmp_path)
    assert result.returncode == 2
    assert "bigquery.on_demand.usd_per_tib" in result.stderr


def test_price_override_changes_costs(tmp_path: Path) -> None:
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"bigquery": {"on_demand": {"usd_per_tib": 5.0}}}))
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps(job("a", total_bytes_billed=TIB)) + "\n")
    result = costline("profile", path, "--format", "json", "--prices", prices)
    assert json.loads(result.stdout)["total_cost_usd"] == pytest.approx(5.0)


def test_usage_errors_and_prices(tmp_path: Path) -> None:
    usage = costline("profile", "--format", "yaml", cwd=tmp_path)
    assert usage.returncode == 2 and "yaml" in usage.stderr
    shown = costline("prices")
    assert shown.returncode == 0 and "usd_per_tib = 6.25" in shown.stdout
