"""The template pre-pass: markup replaced by SQL that parses and means the same to a cost
analysis, lines kept, text that only looks like markup left alone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from costline.warehouse.sql import detemplate, has_template, read_script

DBT_MODEL = """\
{{ config(materialized='incremental', partition_by={'field': 'dt', 'data_type': 'date'}) }}
SELECT o.id, c.name
FROM {{ ref('orders') }} AS o
JOIN {{ source('raw', 'customers') }} AS c ON o.customer_id = c.id
WHERE o.status = '{{ var("status") }}'
{% if is_incremental() %}
  AND o.dt > (SELECT MAX(dt) FROM {{ this }})
{% else %}
  AND o.dt > '2020-01-01'
{% endif %}
"""


def test_a_dbt_model_becomes_the_sql_of_its_incremental_run() -> None:
    t = detemplate(DBT_MODEL, model="fct_orders")
    assert t is not None
    lines = [line.rstrip() for line in t.text.splitlines()]
    assert lines == [
        "",
        "SELECT o.id, c.name",
        "FROM orders              AS o",
        "JOIN raw.customers                    AS c ON o.customer_id = c.id",
        "WHERE o.status = 'status             '",
        "",
        "  AND o.dt > (SELECT MAX(dt) FROM fct_orders)",
        "",
        "",
        "",
    ]
    assert (t.placeholders, t.tags) == (4, 4)  # config() is configuration, not SQL


def test_placeholders_become_names_where_tables_go_and_parameters_elsewhere() -> None:
    t = detemplate(
        "SELECT * FROM `${project}.sales.orders` o, ${dataset}.items i\n"
        "WHERE o.day = ${run_date} AND i.kind = {kind}"
    )
    assert t is not None
    assert t.text.splitlines() == [
        "SELECT * FROM `project.sales.orders` o, dataset.items i",
        "WHERE o.day = @run_date   AND i.kind = @kind ",
    ]


def test_markup_lookalikes_are_text() -> None:
    udf = "SELECT FORMAT('{\"values\":{%s}}', x), '{a}' FROM t WHERE y = '{{'"
    assert detemplate(udf) is None
    assert not has_template("SELECT STRUCT(1 AS a), '{\"k\": 2}' FROM t")


def test_branches_stay_consistent_with_the_one_kept() -> None:
    sql = (
        "{% if flavour == 'ecc' or flavour == 'union' %}SELECT 1 AS a{% endif %}\n"
        "{% if flavour == 'union' %}UNION ALL{% endif %}\n"
        "{% if flavour == 's4' or flavour == 'union' %}SELECT 2 AS a{% endif %}\n"
    )
    t = detemplate(sql)
    assert t is not None
    assert " ".join(t.text.split()) == "SELECT 1 AS a"


def test_a_loop_body_is_its_one_pass_first_and_last() -> None:
    sql = (
        "SELECT * FROM (\n"
        "{% for t in tables %}\n"
        "  {% if not loop.first %}UNION ALL{% endif %}\n"
        "  SELECT id FROM {{ t }}\n"
        "{% endfor %}\n"
        ")"
    )
    t = detemplate(sql)
    assert t is not None
    assert " ".join(t.text.split()) == "SELECT * FROM ( SELECT id FROM t )"


def test_includes_and_statement_macros_are_reported_not_guessed() -> None:
    sql = "({% include './ecc/x.sql' %})\nUNION ALL\n({% include './s4/x.sql' %});\n{{ check() }}"
    reading = read_script(sql)
    assert reading.problems == []
    assert [k.reason.split(":")[0] for k in reading.skipped] == [
        "{% include … %}",
        "{% include … %}",
        "{{ check(…) }}",
    ]


def test_raw_blocks_and_comments() -> None:
    sql = "-- {{ not_rendered }}\nSELECT '{% raw %}{{ds}}{% endraw %}' AS s {# note #}"
    t = detemplate(sql)
    assert t is not None
    line = t.text.splitlines()[1]
    # Text in a raw block is kept as written, the tags around it blanked.
    assert line.split()[0] == "SELECT" and "{{ds}}" in line
    assert line.replace(" ", "") == "SELECT'{{ds}}'ASs"


PIECES = st.sampled_from(
    [
        "SELECT", "a", "FROM", "{{ ref('m') }}", "{% if x %}", "{% else %}", "{% endif %}",
        "{% for c in cs %}", "{% endfor %}", "{# c #}", "'{{ ds }}'", "${p}", "\n", "--", "'",
        "`", "{%", "}}", "{{", "WHERE", "=", "{{ v }}", "/*", "*/", "{% raw %}", "{% endraw %}",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=30).map(" ".join))
def test_any_template_keeps_its_lines_and_never_raises(text: str) -> None:
    t = detemplate(text)
    if t is not None:
        assert t.text.count("\n") == text.count("\n")
        assert len(read_script(text).statements) >= 0
