"""BigQuery scripts: every construct of the procedural language read, every statement
accounted for (parsed, a problem, or skipped with its reason)."""

from __future__ import annotations

from sqlglot import exp

from costline.warehouse.sql import read_script

SCRIPT = """\
DECLARE run_date DATE DEFAULT CURRENT_DATE();
DECLARE n INT64 DEFAULT 0;
BEGIN TRANSACTION;
outer_loop: LOOP
  SET n = n + 1;
  IF n > 3 THEN
    LEAVE outer_loop;
  ELSEIF (SELECT COUNT(*) FROM d.flags WHERE f) > 0 THEN
    INSERT INTO d.log VALUES (n);
  ELSE
    CONTINUE;
  END IF;
END LOOP outer_loop;
COMMIT TRANSACTION;
FOR r IN (SELECT id FROM d.batches WHERE day = run_date) DO
  CALL d.process(r.id);
  EXECUTE IMMEDIATE 'DELETE FROM d.stage WHERE id = ?' USING r.id;
  EXECUTE IMMEDIATE CONCAT('DROP TABLE d.tmp_', CAST(r.id AS STRING));
END FOR;
BEGIN
  SELECT 1 / 0;
EXCEPTION WHEN ERROR THEN
  SELECT @@error.message;
  RAISE USING MESSAGE = 'failed';
END;
REPEAT
  SET n = n - 1;
UNTIL n <= 0 END REPEAT;
CASE
  WHEN n = 0 THEN SELECT 'zero';
  ELSE SELECT 'other';
END CASE;
WHILE n < 2 DO
  SET n = n + 1;
  BREAK;
END WHILE;
ASSERT (SELECT COUNT(*) FROM d.log) > 0 AS 'log written';
RETURN;
"""


def test_every_construct_is_read_and_every_statement_accounted_for() -> None:
    reading = read_script(SCRIPT)
    assert reading.problems == []
    kinds = [(type(s.expr).__name__, s.loop_depth) for s in reading.statements]
    assert kinds == [
        ("Declare", 0),
        ("Declare", 0),
        ("Set", 1),
        ("GT", 1),  # the ELSEIF condition's subquery runs: it is a statement to lint
        ("Insert", 1),
        ("Select", 0),  # the FOR's query, run once
        ("Delete", 1),  # literal EXECUTE IMMEDIATE, read like the script's own SQL
        ("Select", 0),  # the block
        ("Select", 0),  # its exception handler
        ("Set", 1),  # REPEAT's body
        ("Select", 0),  # CASE's branches
        ("Select", 0),
        ("Set", 1),  # WHILE's body
        ("Alias", 0),  # the ASSERT's expression, with its description
    ]
    assert [k.reason.split(":")[0] for k in reading.skipped] == [
        "CALL d.process",
        "EXECUTE IMMEDIATE of SQL built at run time",
    ]
    line_of = {k.reason.split(":")[0]: SCRIPT.count("\n", 0, k.offset) + 1 for k in reading.skipped}
    assert line_of == {"CALL d.process": 16, "EXECUTE IMMEDIATE of SQL built at run time": 18}


def test_the_statements_of_a_procedure_body_are_read() -> None:
    sql = (
        "CREATE OR REPLACE PROCEDURE d.refresh(day DATE)\n"
        "OPTIONS (description = 'nightly')\n"
        "BEGIN\n"
        "  DELETE FROM d.t WHERE dt = day;\n"
        "  INSERT INTO d.t SELECT * FROM d.s WHERE dt = day;\n"
        "END;"
    )
    reading = read_script(sql)
    assert reading.problems == []
    assert [type(s.expr) for s in reading.statements] == [exp.Delete, exp.Insert]


def test_script_variables_are_bound_as_values_known_before_the_query() -> None:
    reading = read_script("DECLARE d DATE;\nSELECT * FROM t WHERE day = d AND other = x")
    select = reading.statements[1].expr
    assert [v.name for v in select.find_all(exp.Var)] == ["d"]
    assert [c.name for c in select.find_all(exp.Column)] == ["day", "other", "x"]


def test_statements_sqlglot_keeps_as_text_are_skipped_with_a_reason() -> None:
    reading = read_script("CREATE SNAPSHOT TABLE d.snap CLONE d.t FOR SYSTEM_TIME AS OF x;")
    assert reading.statements == []
    [skip] = reading.skipped
    assert skip.reason.startswith("CREATE SNAPSHOT TABLE")
    assert skip.reason.endswith("a statement the SQL parser keeps only as text; not analysed")


def test_a_broken_statement_costs_only_itself() -> None:
    reading = read_script("SELECT 1;\nSELECT DATE_ADD() AS d;\nSELECT (;\nSELECT 2")
    assert len(reading.statements) == 2
    assert [p.kind.value for p in reading.problems] == ["internal", "parse"]


def test_templated_scripts_are_read_with_their_macros_reported() -> None:
    sql = (
        "#fail\n"
        "{{ is_unique(['id']) }}\n"
        "#warn\n"
        "SELECT COUNT(*) FROM `{{ project }}.ds.t` WHERE dt = '{{ ds }}'"
    )
    reading = read_script(sql)
    assert reading.templated is not None
    assert reading.problems == []
    [select] = reading.statements
    assert select.expr.find(exp.Table).sql("bigquery") == "`project.ds.t`"
    [skip] = reading.skipped
    assert skip.reason.startswith("{{ is_unique(…) }}: a statement produced by a template macro")
    assert reading.text.count("\n") == sql.count("\n")  # lines kept
