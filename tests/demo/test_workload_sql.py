"""The demo pipelines' SQL is data: a manifest, one file per query template, and the rule codes
``costline lint`` reports for each file — a corpus of known answers."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from costline.core.errors import CostlineError
from costline.demo import demo_catalog, normalized_hash
from costline.demo.workload import (
    MANIFEST,
    QueryTemplate,
    pipelines,
    read_pipelines,
    sql_root,
)
from costline.warehouse.linter import lint_paths, lint_sql

ROOT = Path(str(sql_root()))
SLOTS = {"d0", "d1", "d1c", "ts0", "id0", "id1", "amt", "s0", "in"}


def _manifest_sql() -> list[tuple[str, list[str]]]:
    """(file, expected rule codes) of every template the manifest gives SQL, in manifest order."""
    manifest = tomllib.loads((ROOT / MANIFEST).read_text(encoding="utf-8"))
    return [
        (template["sql"], template["expect"])
        for pipeline in manifest["pipeline"]
        for template in pipeline["query"]
        if "sql" in template
    ]


MANIFEST_SQL = _manifest_sql()
EXPECT = dict(MANIFEST_SQL)


def test_every_sql_file_is_in_the_manifest_and_every_entry_has_its_file() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.sql")}
    named = [name for name, _codes in MANIFEST_SQL]
    assert len(named) == len(set(named)), "a file is named by two templates"
    assert files == set(named)


def test_sql_files_use_only_the_known_slots() -> None:
    for name, _codes in MANIFEST_SQL:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert set(re.findall(r"\{(\w+)\}", text)) <= SLOTS, name
        assert text.endswith("\n") and not text.endswith("\n\n"), name


@pytest.fixture(scope="module")
def rendered(jobs_path: Path) -> dict[str, str]:
    """The generator's first rendering of each query pattern, by its normalised hash."""
    first: dict[str, str] = {}
    with jobs_path.open(encoding="utf-8") as lines:
        for line in lines:
            job = json.loads(line)
            if job["query_info"] is not None:
                first.setdefault(
                    job["query_info"]["query_hashes"]["normalized_literals"], job["query"]
                )
    return first


def _template_of(name: str) -> QueryTemplate:
    template = (ROOT / name).read_text(encoding="utf-8").removesuffix("\n")
    return next(s for p in pipelines() for s in p.templates if s.template == template)


@pytest.mark.parametrize(("name", "expect"), MANIFEST_SQL, ids=[n for n, _ in MANIFEST_SQL])
def test_lint_finds_the_expected_codes_in_the_rendered_sql(
    name: str, expect: list[str], rendered: dict[str, str]
) -> None:
    # The text the generator wrote for a run of this template: slots filled with that run's dates,
    # ids, amounts and IN-lists.
    template = _template_of(name)
    in_len = template.in_list.lengths[0] if template.in_list else 0
    query = rendered.get(normalized_hash(template.template or "", in_len))
    assert query is not None, f"no job of {template.key} in the demo history"
    assert "{" not in query
    result = lint_sql(query, path=name, catalog=demo_catalog())
    assert result.errors == () and result.skipped == ()
    assert {f.code for f in result.findings} == set(expect)


def test_costline_lint_on_the_folder_reports_what_the_manifest_expects() -> None:
    # The files as they are, slots and all: what `costline lint src/costline/demo/sql` reads.
    result = lint_paths([ROOT], catalog=demo_catalog())
    assert result.errors == () and result.files == len(MANIFEST_SQL)
    found: dict[str, set[str]] = {name: set() for name in EXPECT}
    for f in result.findings:
        found[Path(f.path).relative_to(ROOT).as_posix()].add(f.code)
    assert found == {name: set(codes) for name, codes in EXPECT.items()}


def test_loading_twice_gives_equal_pipelines() -> None:
    first, second = read_pipelines(sql_root()), read_pipelines(sql_root())
    assert first is not second
    assert first == second == pipelines()
    assert len({p.name for p in first}) == len(first)


def _edit(old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        manifest = root / MANIFEST
        text = manifest.read_text(encoding="utf-8")
        assert old in text
        manifest.write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


def _remove(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).unlink()


@pytest.mark.parametrize(
    ("damage", "pipeline", "says"),
    [
        (
            _edit('expect = ["CL001"]', 'expect = ["CL001"]\nexpects = ["CL001"]'),
            "positions_nightly_merge",
            "query.0.expects: Extra inputs are not permitted",
        ),
        (
            _remove("risk/positions_eod_snapshot.sql"),
            "positions_eod_snapshot",
            "query.0: sql: no file risk/positions_eod_snapshot.sql",
        ),
        (
            _edit('sql = "risk/var_results_daily.sql"\n', ""),
            "var_results_daily",
            "query.0: a QUERY template needs sql",
        ),
        (
            _edit('choices = "report_codes"', 'choices = "report_kinds"'),
            "regulatory_extract_daily",
            "query.0: choices: no list 'report_kinds' in values.toml",
        ),
        (
            _edit('schedule = { daily = "04:00" }', 'schedule = { daily = "4am" }'),
            "var_results_daily",
            "schedule.daily: String should match pattern",
        ),
        (
            _edit('project = "acme-risk-etl"', 'project = "acme-risk"'),
            "positions_nightly_merge",
            "project: unknown project 'acme-risk'",
        ),
    ],
    ids=["unknown-key", "missing-file", "no-sql", "unknown-list", "bad-time", "unknown-project"],
)
def test_a_malformed_manifest_entry_is_an_error_naming_the_file_and_the_entry(
    tmp_path: Path, damage: Callable[[Path], None], pipeline: str, says: str
) -> None:
    root = tmp_path / "sql"
    shutil.copytree(ROOT, root)
    damage(root)
    with pytest.raises(CostlineError) as caught:
        read_pipelines(root)
    message = str(caught.value)
    assert message.startswith(f"{root / MANIFEST}: pipeline {pipeline!r}: "), message
    assert says in message
