"""``costline lint``: the engine, its configuration, every output format, the job-history mode,
the demo's planted anti-patterns, and the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costline.core.errors import CostlineError
from costline.core.prices import load_prices
from costline.demo import demo_catalog
from costline.demo.history import generate_history
from costline.report.lint import (
    render_lint_github,
    render_lint_json,
    render_lint_sarif,
    render_lint_text,
)
from costline.warehouse.catalog import Catalog, TableMeta, save_catalog
from costline.warehouse.fingerprint import fingerprint
from costline.warehouse.jobs import read_history
from costline.warehouse.linter import (
    LintResult,
    StatementCounts,
    find_config,
    lint_history,
    lint_paths,
    lint_sql,
    select_rules,
)
from costline.warehouse.profiler import profile_history
from costline.warehouse.rules import ALL_RULES, rule_doc
from costline.warehouse.rules.examples import EXAMPLE_CATALOG
from tests.conftest import TIB, costline, job, tables

SARIF_SCHEMA = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"
SCRIPT = """-- nightly report
SELECT * FROM d.orders;
SELECT a FROM d.t
ORDER BY a;
SELECT (;
INSERT INTO d.log VALUES (1)
"""


def codes(result: LintResult) -> list[str]:
    return [f.code for f in result.findings]


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------


def test_a_script_is_linted_statement_by_statement_with_exact_positions() -> None:
    result = lint_sql(SCRIPT, path="nightly.sql")
    assert [(f.line, f.column, f.code) for f in result.findings] == [
        (2, 8, "CL010"),
        (4, 1, "CL013"),  # at ORDER, the keyword
    ]
    # The statement that does not parse is reported where it is, and the run goes on.
    [error] = result.errors
    assert (error.path, error.line) == ("nightly.sql", 5)
    assert result.statements == StatementCounts(linted=3, unparsed=1, skipped=0)


def test_scripting_blocks_are_read_and_loops_known() -> None:
    sql = (
        "DECLARE i INT64 DEFAULT 0;\n"
        "IF i = 0 THEN\n"
        "  WHILE i < 10 DO\n"
        "    INSERT INTO d.t VALUES (i);\n"
        "    SET i = i + 1;\n"
        "  END WHILE;\n"
        "ELSE\n"
        "  SELECT * FROM d.u;\n"
        "END IF;\n"
        "INSERT INTO d.t VALUES (99);"
    )
    result = lint_sql(sql)
    assert result.errors == ()
    assert [(f.line, f.code) for f in result.findings] == [(4, "CL023"), (8, "CL010")]


def test_unterminated_string_and_non_sql_are_errors_with_a_location() -> None:
    result = lint_sql(
        "SELECT * FROM d.t;\n  SELECT 'open;\nSELECT a FROM d.u ORDER BY a", path="x.sql"
    )
    assert [(f.line, f.code) for f in result.findings] == [(1, "CL010"), (3, "CL013")]
    assert [(e.line, e.column, e.path) for e in result.errors] == [(2, 3, "x.sql")]
    assert result.errors[0].message.startswith("cannot tokenize")
    [bad] = lint_sql("SELECT a,\n  FROM", path="y.sql").errors
    assert (bad.line, bad.column) == (2, 6)
    assert lint_sql("").statements == StatementCounts()
    assert lint_sql("-- only a comment\n").errors == ()


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("", ["CL010", "CL013"]),
        (" -- noqa", ["CL013"]),
        (" -- noqa: CL010", ["CL013"]),
        (" -- noqa: CL013", ["CL010", "CL013"]),  # CL013 is reported on another line
        (" # NOQA:cl010, CL013", ["CL013"]),
        (" -- noqa\nORDER BY 1 -- noqa: CL013\n", []),
    ],
)
def test_noqa_suppresses_findings_on_its_line(comment: str, expected: list[str]) -> None:
    sql = (
        f"SELECT * FROM d.t{comment}"
        if "ORDER" in comment
        else f"SELECT * FROM d.t{comment}\nORDER BY 1"
    )
    assert codes(lint_sql(sql)) == expected


def test_rules_are_selected_and_ignored_by_code_prefix() -> None:
    assert [r.code for r in select_rules(["CL01"], ["CL011", "CL012"])] == [
        "CL010",
        "CL013",
        "CL014",
        "CL015",
        "CL016",
        "CL017",
        "CL018",
        "CL019",
    ]
    with pytest.raises(CostlineError, match="unknown rule code 'XX1'"):
        select_rules(["XX1"])


def test_other_dialects_are_selectable() -> None:
    sql = "SELECT * FROM db.sch.t QUALIFY ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) = 1"
    result = lint_sql(sql, dialect="snowflake")
    assert codes(result) == ["CL010", "CL015"]
    with pytest.raises(CostlineError, match="unknown SQL dialect 'nope'"):
        lint_sql("SELECT 1", dialect="nope")


def test_directories_are_walked_for_sql_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.sql").write_text("SELECT * FROM d.t")
    (tmp_path / "sub" / "b.sql").write_text("SELECT a FROM d.t ORDER BY a")
    (tmp_path / ".git" / "c.sql").write_text("SELECT * FROM d.t")
    (tmp_path / "notes.txt").write_text("SELECT * FROM d.t")
    (tmp_path / "latin1.sql").write_bytes("SELECT 'caf\xe9'".encode("latin-1"))
    result = lint_paths([tmp_path])
    assert result.files == 3
    assert [(Path(f.path).name, f.code) for f in result.findings] == [
        ("a.sql", "CL010"),
        ("b.sql", "CL013"),
    ]
    [error] = result.errors
    assert Path(error.path).name == "latin1.sql" and error.message.startswith("not UTF-8")
    with pytest.raises(CostlineError, match="no such file or directory"):
        lint_paths([tmp_path / "missing.sql"])


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_pyproject_configures_rules_and_per_path_options(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        """
[project]
name = "warehouse-sql"

[tool.costline.lint]
ignore = ["CL013"]
fail-on = "warning"

[tool.costline.lint.per-path."legacy/*.sql"]
ignore = ["CL010"]

[tool.costline.lint.per-path."snow/*.sql"]
dialect = "snowflake"
"""
    )
    for folder in ("models", "legacy", "snow"):
        (tmp_path / folder).mkdir()
    (tmp_path / "models" / "m.sql").write_text("SELECT * FROM d.t ORDER BY 1")
    (tmp_path / "legacy" / "l.sql").write_text("SELECT * FROM d.t ORDER BY 1")
    (tmp_path / "snow" / "s.sql").write_text("SELECT * FROM db.sch.t WHERE a ILIKE 'x%'")
    config = find_config(tmp_path / "models")
    assert config.fail_on == "warning" and config.ignore == ("CL013",)
    result = lint_paths([tmp_path], config=config)
    assert result.errors == ()
    assert [(Path(f.path).parent.name, f.code) for f in result.findings] == [
        ("models", "CL010"),
        ("snow", "CL010"),
    ]


def test_bad_configuration_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.costline.lint]\nselect = "CL001"\nsurprise = 1\n'
    )
    with pytest.raises(CostlineError, match=r"pyproject.toml: \[tool.costline.lint\]"):
        find_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.costline.lint]\nignore = ["ZZ9"]\n')
    with pytest.raises(CostlineError, match="unknown rule code 'ZZ9'"):
        find_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.costline.lint\n")
    with pytest.raises(CostlineError, match="not valid TOML"):
        find_config(tmp_path)


# --------------------------------------------------------------------------------------------
# Output formats
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script_result() -> LintResult:
    # d.orders is large: a SELECT * of it is a warning (of a table of unknown size, info).
    orders = TableMeta(name="acme.d.orders", columns=(), logical_bytes=2 * TIB)
    return lint_sql(SCRIPT, path="reports/nightly.sql", catalog=Catalog(tables=(orders,)))


def test_text_output(script_result: LintResult) -> None:
    assert render_lint_text(script_result).splitlines() == [
        "reports/nightly.sql:2:8: CL010 warning SELECT * reads every column of d.orders "
        "(2.0 TiB); BigQuery bills each column read",
        "    fix: list the columns the consumer needs (or SELECT * EXCEPT the wide ones)",
        "reports/nightly.sql:4:1: CL013 info ORDER BY without LIMIT sorts the whole result "
        "on one worker",
        "    fix: add LIMIT, or sort where the result is consumed",
        f"reports/nightly.sql:5:{script_result.errors[0].column}: cannot parse: "
        f"{script_result.errors[0].message}",
        "2 findings (0 error, 1 warning, 1 info) in 3 statements of 1 source; "
        "1 could not be parsed",
        "catalogue: 1 tables known, 0 partitioned, 0 clustered, 0 views",
    ]


def test_json_output_has_exactly_the_documented_fields(script_result: LintResult) -> None:
    data = json.loads(render_lint_json(script_result))
    assert list(data) == [
        "files",
        "statements",
        "findings",
        "errors",
        "skipped",
        "templated",
        "catalog",
    ]
    assert data["statements"] == {"linted": 3, "unparsed": 1, "skipped": 0}
    first = data["findings"][0]
    assert first == {
        "path": "reports/nightly.sql",
        "line": 2,
        "column": 8,
        "code": "CL010",
        "name": "select-star",
        "severity": "warning",
        "message": "SELECT * reads every column of d.orders (2.0 TiB); BigQuery bills each "
        "column read",
        "fix": "list the columns the consumer needs (or SELECT * EXCEPT the wide ones)",
        "equivalents": ["bigquery-antipattern-recognition:SimpleSelectStar"],
        "cost_usd": None,
    }
    assert list(data["errors"][0]) == ["path", "line", "column", "message", "kind"]
    assert data["errors"][0]["kind"] == "parse"


def test_sarif_output_validates_against_the_sarif_2_1_0_schema(script_result: LintResult) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text())
    log = json.loads(render_lint_sarif(script_result))
    jsonschema.Draft4Validator(schema).validate(log)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.code for r in ALL_RULES]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("CL010", "warning"),
        ("CL013", "note"),
    ]
    region = run["results"][0]["locations"][0]["physicalLocation"]
    assert region == {
        "artifactLocation": {"uri": "reports/nightly.sql"},
        "region": {"startLine": 2, "startColumn": 8},
    }
    assert len(run["invocations"][0]["toolExecutionNotifications"]) == 1
    # History findings carry their cost, and an empty run is valid too.
    empty = json.loads(render_lint_sarif(LintResult(findings=(), errors=(), files=0)))
    jsonschema.Draft4Validator(schema).validate(empty)


def test_github_annotations(script_result: LintResult) -> None:
    lines = render_lint_github(script_result).splitlines()
    assert lines[0] == (
        "::warning file=reports/nightly.sql,line=2,col=8,title=CL010 select-star::"
        "SELECT * reads every column of d.orders (2.0 TiB); BigQuery bills each column read "
        "(fix: list the columns the consumer needs (or SELECT * EXCEPT the wide ones))"
    )
    assert lines[1].startswith("::notice file=reports/nightly.sql,line=4,col=1,title=CL013")
    assert lines[2].startswith("::error file=reports/nightly.sql,line=5,")
    assert len(lines) == 3


# --------------------------------------------------------------------------------------------
# Job history
# --------------------------------------------------------------------------------------------


def test_history_findings_carry_their_pattern_cost_ranked_by_it(tmp_path: Path) -> None:
    merge = "MERGE d.target t USING d.src s ON t.id = s.id WHEN MATCHED THEN DELETE"
    rows = [
        job(
            "a",
            query="SELECT * FROM d.wide",
            total_bytes_billed=TIB,
            referenced_tables=tables("p.d.wide"),
        ),
        job(
            "b",
            query="SELECT * FROM d.wide",
            total_bytes_billed=TIB,
            referenced_tables=tables("p.d.wide"),
        ),
        job("c", query=merge, statement_type="MERGE", total_bytes_billed=3 * TIB),
        job("d", query="SELECT 1", total_bytes_billed=0),
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prices = load_prices()
    profile = profile_history(read_history([path]), prices)
    result = lint_history(profile.fingerprints, source="jobs.jsonl")
    per_tib = prices.bigquery.on_demand.usd_per_tib
    assert [(f.code, f.cost_usd) for f in result.findings] == [
        ("CL001", pytest.approx(3 * per_tib)),
        ("CL010", pytest.approx(2 * per_tib)),
    ]
    assert result.findings[0].path == f"jobs.jsonl#{fingerprint(merge).id}"
    assert result.findings[0].fix == "costline merge rewrite FILE"
    assert result.files == 3
    assert (
        render_lint_text(result)
        .splitlines()[-1]
        .endswith(f"the flagged patterns cost ${5 * per_tib:,.2f}")
    )


LEDGER = "acme.finance.ledger"
RECONCILE = (
    f"SELECT SUM(amount) FROM `{LEDGER}` WHERE posting_ts >= TIMESTAMP '2026-10-01 08:00:00'"
)
BY_DAY = (
    f"SELECT gl_account, SUM(amount) FROM `{LEDGER}` WHERE entry_date = '2026-09-30' GROUP BY 1"
)


def _ledger_catalog() -> Catalog:
    from costline.warehouse.catalog import Column

    return Catalog(
        tables=(
            TableMeta(
                name=LEDGER,
                columns=(
                    Column(name="entry_date", type="DATE", distinct_count=730),
                    Column(name="posting_ts", type="TIMESTAMP"),
                    Column(name="gl_account", type="STRING", distinct_count=5_000),
                    Column(name="amount", type="NUMERIC"),
                ),
                rows=10**10,
                logical_bytes=20 * TIB,
            ),
        )
    )


def _ledger_history(tmp_path: Path, reconcile_tib: int, by_day_tib: int) -> Path:
    rows = [
        job(
            f"{kind}{i}",
            query=sql,
            total_bytes_billed=tib * TIB,
            total_bytes_processed=tib * TIB,
            referenced_tables=tables(LEDGER),
            creation_time=f"2026-10-01 {8 + i % 10:02d}:00:00.000000 UTC",
        )
        for kind, sql, tib in (("r", RECONCILE, reconcile_tib), ("d", BY_DAY, by_day_tib))
        for i in range(10)
    ]
    path = tmp_path / f"jobs_{reconcile_tib}_{by_day_tib}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(("reconcile_tib", "by_day_tib", "column"), [
    (3, 1, "posting_ts"),
    (1, 3, "entry_date"),
])  # fmt: skip
def test_lint_and_advise_give_one_partition_column_per_table(
    tmp_path: Path, reconcile_tib: int, by_day_tib: int, column: str
) -> None:
    # Two query patterns read the unpartitioned ledger, filtering different time columns:
    # linting the history names, for both, the column advise partitions the table on, the one
    # whose filters serve the costlier queries.
    from costline import api

    catalog = _ledger_catalog()
    path = _ledger_history(tmp_path, reconcile_tib, by_day_tib)
    found = api.lint(history=[path], catalog=catalog).findings
    assert sorted(f.message.split("filter on ")[1].split()[0] for f in found) == [
        "entry_date",
        "posting_ts",
    ]
    assert {f.code for f in found} == {"CL005"}
    assert {f.fix for f in found} == {
        f"partition finance.ledger on {column}, the column the history's costliest queries "
        "filter (`costline advise` replays the layout and writes the migration)"
    }
    (advice,) = api.advise([path], catalog).recommendations
    assert advice.proposed.partition_column == column


def test_lint_of_files_leaves_the_partition_column_to_advise() -> None:
    # One query's filter does not say which column the table should be partitioned on: both
    # statements get the same fix, naming no column that advise could contradict.
    result = lint_sql(f"{RECONCILE};\n{BY_DAY};", catalog=_ledger_catalog())
    assert codes(result) == ["CL005", "CL005"]
    assert {f.fix for f in result.findings} == {
        "partition finance.ledger on the column its costliest queries filter: `costline "
        "advise` weighs every query that reads it and proposes the column, the layout and the "
        "migration"
    }


def test_audit_shows_the_costliest_findings(tmp_path: Path) -> None:
    from rich.console import Console

    from costline.auditor import AuditResult
    from costline.report.html import render_audit_html
    from costline.report.text import print_audit

    rows = [
        job("a", query="SELECT * FROM d.wide", total_bytes_billed=TIB),
        job("b", query="SELECT a FROM d.t ORDER BY a", total_bytes_billed=2 * TIB),
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    profile = profile_history(read_history([path]), load_prices())
    lint = lint_history(profile.fingerprints, source="jobs")
    result = AuditResult(workspace="ws", profile=profile, drivers=(), lint=lint)
    html = render_audit_html(result)
    section = html[html.index('<section id="lint">') :]
    assert "2 findings in 2 query patterns" in section
    assert section.index("CL013") < section.index("CL010")  # costliest first
    console = Console(record=True, width=80)
    print_audit(console, result)
    text = console.export_text()
    assert "SQL anti-patterns: 2 findings in 2 patterns; costliest:" in text
    assert "CL013 order-by-without-limit" in text


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LintResult, list[tuple[str, str, float]]]:
    path = tmp_path_factory.mktemp("demo") / "jobs.jsonl"
    catalog = demo_catalog()
    truth = generate_history(path, jobs=3_000, seed=3, catalog=catalog)
    profile = profile_history(read_history([path]), load_prices(), catalog=catalog)
    result = lint_history(profile.fingerprints, source="jobs.jsonl", catalog=catalog)
    planted = []
    for p in truth.planted:
        meta = catalog.get(p.table)
        assert meta is not None
        expected = {
            "full_table_merge": "CL001",
            "missing_partition_filter": "CL002" if meta.partitioning else "CL005",
            "non_sargable_partition_filter": "CL003",
            "select_star_wide_table": "CL010",
            "order_by_without_limit": "CL013",
        }[p.kind]
        planted.append((fingerprint(p.example_query).id, expected, p.cost_usd))
    return result, planted


def test_lint_over_the_demo_history_finds_every_planted_anti_pattern(
    demo: tuple[LintResult, list[tuple[str, str, float]]],
) -> None:
    result, planted = demo
    assert result.errors == ()
    assert len(planted) >= 5
    for fp, code, cost in planted:
        hits = [f for f in result.findings if f.path == f"jobs.jsonl#{fp}" and f.code == code]
        assert hits, (fp, code)
        assert hits[0].cost_usd == pytest.approx(cost, abs=1e-6)  # the truth keeps 6 decimals
    costs = [f.cost_usd or 0.0 for f in result.findings]
    assert costs == sorted(costs, reverse=True)
    # The headline finding leads the list.
    assert result.findings[0].code == "CL001"


# --------------------------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------------------------

VOCAB = [
    "SELECT",
    "FROM",
    "WHERE",
    "MERGE",
    "USING",
    "ON",
    "WHEN",
    "MATCHED",
    "NOT",
    "THEN",
    "UPDATE",
    "SET",
    "DELETE",
    "INSERT",
    "INTO",
    "VALUES",
    "WITH",
    "AS",
    "JOIN",
    "CROSS",
    "UNNEST",
    "ORDER",
    "BY",
    "LIMIT",
    "GROUP",
    "QUALIFY",
    "OVER",
    "PARTITION",
    "ROW_NUMBER()",
    "IN",
    "AND",
    "OR",
    "(",
    ")",
    ",",
    ";",
    "*",
    "=",
    "<",
    "'x'",
    "1",
    "d.t",
    "`p.d.t`",
    "t.a",
    "a",
    "IF",
    "END",
    "LOOP",
    "WHILE",
    "DO",
    "BEGIN",
    "DECLARE",
    "CASE",
    "--",
    "/*",
    "*/",
    "REGEXP_CONTAINS",
    "r'^a.*'",
    "CAST",
    "DATE",
    "'2026-01-01'",
    "@p",
    "#",
    "\n",
    "EXCEPT",
    # wrong arities and empty arguments sqlglot itself fails on
    "DATE_ADD()",
    "REGEXP_EXTRACT()",
    "DATE_SUB(,)",
    "SAFE_CAST()",
    # every construct of BigQuery's procedural language
    "DECLARE",
    "SET",
    "BEGIN",
    "EXCEPTION WHEN ERROR THEN",
    "IF",
    "THEN",
    "ELSEIF",
    "ELSE",
    "END IF",
    "LOOP",
    "END LOOP",
    "WHILE",
    "DO",
    "END WHILE",
    "REPEAT",
    "UNTIL",
    "END REPEAT",
    "FOR x IN",
    "END FOR",
    "CASE",
    "END CASE",
    "BREAK",
    "LEAVE",
    "CONTINUE",
    "RETURN",
    "RAISE USING MESSAGE =",
    "EXECUTE IMMEDIATE",
    "CALL",
    "ASSERT",
    "BEGIN TRANSACTION",
    "COMMIT",
    "label:",
    "CREATE PROCEDURE d.p()",
    # template markup
    "{{ ref('m') }}",
    "{%",
    "%}",
    "{{",
    "}}",
    "{% if x %}",
    "{% endif %}",
]
EXAMPLES = [rule_doc(r).example(s) for r in ALL_RULES for s in ("Anti-pattern", "Best practice")]
FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=10),  # a hang, not a slow machine, must trip this
    suppress_health_check=[HealthCheck.too_slow],
)


def _well_formed(result: LintResult) -> None:
    assert all(f.line >= 1 and f.column >= 1 for f in result.findings)
    assert all(e.line >= 1 and e.column >= 1 and e.message for e in result.errors)
    assert not any(e.message.startswith("rule ") for e in result.errors), result.errors


@FUZZ
@given(st.lists(st.sampled_from(VOCAB), max_size=60).map(" ".join))
def test_token_soup_never_crashes(sql: str) -> None:
    _well_formed(lint_sql(sql, catalog=EXAMPLE_CATALOG))


@FUZZ
@given(st.sampled_from(EXAMPLES), st.data())
def test_truncated_sql_never_crashes(sql: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(sql)))
    _well_formed(lint_sql(sql[:cut], catalog=EXAMPLE_CATALOG))


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _well_formed(lint_sql(text))


def test_huge_in_lists_and_deep_nesting_are_handled() -> None:
    ids = ", ".join(f"'C{i}'" for i in range(20_000))
    big = lint_sql(
        f"SELECT * FROM `acme.finance.transactions` WHERE customer_id IN ({ids})",
        catalog=EXAMPLE_CATALOG,
    )
    assert big.errors == () and "CL002" in codes(big)
    for depth in (50, 150, 201, 5_000):
        parens = "SELECT " + "(" * depth + "1" + ")" * depth + " FROM d.t"
        _well_formed(lint_sql(parens))
        nested = "SELECT * FROM " + "(SELECT * FROM " * depth + "d.t" + ")" * depth
        result = lint_sql(nested)
        _well_formed(result)
        if depth <= 200:
            assert codes(result) == ["CL010"]  # only the innermost reads a table
        else:
            [error] = result.errors
            assert error.message == "statement nested more than 200 levels deep; not analysed"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def test_cli_lint_formats_selection_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "m.sql").write_text(
        "MERGE `acme.risk.positions` t USING `acme.staging.positions_delta` s\n"
        "ON t.portfolio_id = s.portfolio_id WHEN MATCHED THEN DELETE;\n"
        "SELECT a FROM d.t ORDER BY a;\n"
    )
    save_catalog(EXAMPLE_CATALOG, tmp_path / "catalog.json")
    ok = costline("lint", "sql", "--catalog", "catalog.json", "--format", "json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert [(f["code"], f["line"], f["fix"]) for f in data["findings"]] == [
        ("CL001", 1, "costline merge rewrite sql/m.sql"),
        ("CL013", 3, "add LIMIT, or sort where the result is consumed"),
    ]
    failing = costline(
        "lint", "sql", "--catalog", "catalog.json", "--fail-on", "error", cwd=tmp_path
    )
    assert failing.returncode == 1
    assert "sql/m.sql:1:7: CL001 error full-table MERGE" in failing.stdout
    only = costline("lint", "sql", "--select", "CL013", "--fail-on", "warning", cwd=tmp_path)
    assert only.returncode == 0 and "CL013" in only.stdout and "CL001" not in only.stdout
    sarif = costline("lint", "sql", "--format", "sarif", "-o", "out.sarif", cwd=tmp_path)
    assert sarif.returncode == 0
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(
        json.loads((tmp_path / "out.sarif").read_text())
    )
    for args, message in [
        (("lint",), "give SQL files or directories"),
        (("lint", "sql", "--select", "CL9"), "unknown rule code 'CL9'"),
        (("lint", "sql", "--dialect", "klingon"), "unknown SQL dialect 'klingon'"),
        (("lint", "missing.sql"), "missing.sql: no such file or directory"),
        (("rules", "CL999"), "no rule 'CL999'"),
    ]:
        bad = costline(*args, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)


def test_cli_lint_on_a_repository_a_crash_or_a_template_costs_nothing(tmp_path: Path) -> None:
    """A repository as found: templates, scripting, statements sqlglot fails on, in parallel."""
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\n")
    (repo / "models" / "orders.sql").write_text(
        "{{ config(materialized='table', partition_by={'field': 'day', 'data_type': 'date'}) }}\n"
        "SELECT id, day FROM {{ source('raw', 'orders') }}\n"
    )
    (repo / "models" / "daily.sql").write_text(
        "{{ config(materialized='view') }}\nSELECT * FROM {{ ref('orders') }}\n"
    )
    (repo / "models" / "report.sql").write_text(
        "{{ config(materialized='table') }}\n"
        "SELECT day, COUNT(*) AS n FROM {{ ref('orders') }}\nGROUP BY day\n"
    )
    (repo / "scripts").mkdir()
    (repo / "scripts" / "nightly.sql").write_text(
        "DECLARE d DATE DEFAULT CURRENT_DATE();\n"
        "SELECT DATE_ADD() AS broken;\n"
        "FOR r IN (SELECT id FROM d.batches) DO\n"
        "  CALL d.process(r.id);\n"
        "END FOR;\n"
        "SELECT * FROM d.big ORDER BY id;\n"
    )
    run = costline(
        "lint", "models", "scripts", "--catalog", ".", "--format", "json", "--jobs", "2", cwd=repo
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["files"] == 4
    assert data["statements"] == {"linted": 6, "unparsed": 1, "skipped": 1}
    [error] = data["errors"]
    assert (error["path"], error["line"], error["kind"]) == ("scripts/nightly.sql", 2, "internal")
    [skip] = data["skipped"]
    assert (skip["path"], skip["line"]) == ("scripts/nightly.sql", 4)
    assert skip["reason"].startswith("CALL d.process: a procedure call")
    assert sorted(data["templated"]) == [
        "models/daily.sql",
        "models/orders.sql",
        "models/report.sql",
    ]
    assert data["catalog"]["tables"] >= 3 and data["catalog"]["partitioned"] == 1
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == [
        # the view reads what its readers ask for; the table reads its partitions in full
        ("models/report.sql", 2, "CL002"),
        ("scripts/nightly.sql", 6, "CL010"),
        ("scripts/nightly.sql", 6, "CL013"),
    ]
    text = costline("lint", "models", "scripts", "--catalog", ".", cwd=repo)
    assert "scripts/nightly.sql:2:1: internal error: the SQL parser failed" in text.stdout
    assert "scripts/nightly.sql:4:3: skipped: CALL d.process" in text.stdout
    assert "; 1 could not be parsed; 1 skipped; 3 templated" in text.stdout
    assert "catalogue (dbt project" in text.stdout
    # On a large repository CI shows what is worth acting on; every statement is still counted.
    focused = costline(
        "lint", "models", "scripts", "--catalog", ".", "--min-severity", "warning", cwd=repo
    )
    assert " info " not in focused.stdout and "skipped:" not in focused.stdout
    assert "internal error: the SQL parser failed" in focused.stdout
    assert focused.stdout.splitlines()[-2].endswith(
        "1 skipped; 3 templated (markup replaced before parsing)"
    )


def test_parallel_linting_gives_the_same_result(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"q{i:02}.sql").write_text(
            f"SELECT * FROM d.t{i % 3} ORDER BY a;\nSELECT REGEXP_EXTRACT();\nSELECT 1 FROM ("
        )
    one = lint_paths([tmp_path], jobs=1)
    two = lint_paths([tmp_path], jobs=2)
    assert one == two
    assert one.statements == StatementCounts(linted=40, unparsed=80, skipped=0)


def test_cli_rules_lists_and_explains(tmp_path: Path) -> None:
    listing = costline("rules", cwd=tmp_path)
    assert listing.returncode == 0
    assert [ln.split()[0] for ln in listing.stdout.splitlines() if ln.startswith("CL")] == [
        r.code for r in ALL_RULES
    ]
    assert all(len(ln) <= 80 for ln in listing.stdout.splitlines())
    one = costline("rules", "cl014", cwd=tmp_path)
    assert one.returncode == 0
    assert one.stdout.startswith("CL014 regexp-where-like-does (info)")
    assert "equivalents: bigquery-antipattern-recognition:StringComparison" in one.stdout
    assert "**Anti-pattern**" in one.stdout and "REGEXP_CONTAINS(description" in one.stdout


def test_cli_lint_history(tmp_path: Path) -> None:
    rows = [
        job("a", query="SELECT * FROM d.wide", total_bytes_billed=TIB),
        job("b", query="SELECT a FROM d.t ORDER BY a", total_bytes_billed=2 * TIB),
        job("c", query="SELECT desk FROM `acme.risk.positions`", total_bytes_billed=3 * TIB),
    ]
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = costline("lint", "--history", "jobs.jsonl", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)["findings"]
    assert [f["code"] for f in found] == ["CL013", "CL010"]
    assert found[0]["cost_usd"] == pytest.approx(2 * found[1]["cost_usd"])
    # A workspace's catalogue beside the history adds the layout rules.
    save_catalog(EXAMPLE_CATALOG, tmp_path / "catalog.json")
    result = costline("lint", "--history", "jobs.jsonl", "--format", "json", cwd=tmp_path)
    found = json.loads(result.stdout)["findings"]
    assert [f["code"] for f in found] == ["CL002", "CL013", "CL010"]
    assert found[0]["cost_usd"] == pytest.approx(3 * found[2]["cost_usd"])
