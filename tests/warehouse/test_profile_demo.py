"""The profile finds what the demo workspace planted, at the top, at exactly what it cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from costline.core.prices import load_prices
from costline.demo import GroundTruth, Workspace, build_workspace
from costline.warehouse.drivers import cost_drivers
from costline.warehouse.fingerprint import fingerprint
from costline.warehouse.jobs import read_history
from costline.warehouse.profiler import Profile, profile_history


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_workspace(tmp_path_factory.mktemp("demo"), jobs=30_000, seed=3, scale=0.02)


@pytest.fixture(scope="module")
def truth(workspace: Workspace) -> GroundTruth:
    return workspace.load_ground_truth()


@pytest.fixture(scope="module")
def profile(workspace: Workspace) -> Profile:
    history = read_history(Path(workspace.jobs))
    return profile_history(history, load_prices(), catalog=workspace.load_catalog())


def test_total_and_team_attribution_equal_the_ground_truth(
    profile: Profile, truth: GroundTruth
) -> None:
    assert profile.rejected_count == 0 and profile.jobs == truth.jobs
    assert profile.total_cost_usd == pytest.approx(truth.total_cost_usd, rel=1e-9)
    assert profile.attribution.label["team"] == pytest.approx(truth.cost_by_team, rel=1e-9)


def test_every_planted_pattern_is_one_fingerprint_at_its_exact_cost(
    profile: Profile, truth: GroundTruth
) -> None:
    by_id = {fp.id: fp for fp in profile.fingerprints}
    for planted in truth.planted:
        fp = by_id[fingerprint(planted.example_query).id]
        assert fp.jobs == planted.jobs, planted.id
        assert fp.cost_usd == pytest.approx(planted.cost_usd, rel=1e-9), planted.id
        assert fp.bytes_billed == planted.bytes_billed, planted.id


def test_planted_drivers_lead_the_ranking(profile: Profile, truth: GroundTruth) -> None:
    planted = {fingerprint(p.example_query).id for p in truth.planted}
    ranking = [fp.id for fp in profile.fingerprints]
    # the full-table MERGE is the single largest driver, as in the seed
    merge = next(p for p in truth.planted if p.kind == "full_table_merge")
    assert ranking[0] == fingerprint(merge.example_query).id
    assert set(ranking[: len(planted)]) == planted


def test_drivers_explain_the_merge_as_a_full_rewrite(
    profile: Profile, workspace: Workspace
) -> None:
    drivers = cost_drivers(profile, workspace.load_catalog())
    top = drivers[0]
    assert top.statement_type == "MERGE"
    assert top.full_scan_ratio is not None and top.full_scan_ratio >= 0.8
    assert "MERGE reads and rewrites the whole target on every run" in top.reasons


def test_partitioning_state_comes_from_the_catalogue(profile: Profile) -> None:
    layouts = {t.name.split(".")[-1]: t.partitioning for t in profile.tables}
    assert layouts["positions"] == "as_of_date (DAY)"
    assert layouts["ledger_entries"] == "unpartitioned"
    assert layouts["fx_rates"] == "ingestion time (DAY)"
