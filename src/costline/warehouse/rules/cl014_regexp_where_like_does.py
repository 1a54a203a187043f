"""CL014 regexp-where-like-does."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation

_META = set(".^$*+?()[]{}|\\")


def like_pattern(regex: str) -> str | None:
    """The LIKE pattern equivalent to a regular expression, or None when there is none.

    Only anchors, literal characters (metacharacters escaped with a backslash) and `.*`
    translate; `%` and `_` in the text would need escaping in LIKE, so they do not.
    """
    body = regex
    anchored_start = body.startswith("^")
    if anchored_start:
        body = body[1:]
    anchored_end = body.endswith("$") and not body.endswith("\\$")
    if anchored_end:
        body = body[:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _META:
                return None
            out.append(body[i + 1])
            i += 2
        elif body.startswith(".*", i):
            out.append("%")
            i += 2
        elif ch in _META or ch in "%_":
            return None
        else:
            out.append(ch)
            i += 1
    text = "".join(out)
    if not text.strip("%"):
        return None
    if not anchored_start and not text.startswith("%"):
        text = "%" + text
    if not anchored_end and not text.endswith("%"):
        text += "%"
    return re.sub("%+", "%", text)


class RegexpWhereLikeDoes(Rule):
    """`REGEXP_CONTAINS` with a pattern that `LIKE` expresses.

    **What it does**

    Flags `REGEXP_CONTAINS(col, 'pattern')` whose constant pattern is only literal text,
    anchors and `.*` — exactly what `LIKE` says — and proposes the `LIKE`. Patterns with
    classes, alternation, repetition or flags are left alone.

    **Why is this bad?**

    A regular expression is compiled and run per row; `LIKE` is a cheaper string match that
    BigQuery can also optimise (prefix matches). On large scans the difference is slot time
    paid for nothing.

    **Anti-pattern**

    ```sql
    SELECT account_id
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND REGEXP_CONTAINS(description, r'^SEPA.*refund')
    ```

    **Best practice**

    ```sql
    SELECT account_id
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND description LIKE 'SEPA%refund%'
    ```
    """

    code = "CL014"
    name = "regexp-where-like-does"
    severity = Severity.info
    summary = "REGEXP_CONTAINS where LIKE does"
    equivalents = ("StringComparison",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for node in stmt.all(exp.RegexpLike):
            pattern = node.expression
            if not isinstance(pattern, exp.Literal | exp.RawString) or node.args.get("flag"):
                continue
            if isinstance(pattern, exp.Literal) and not pattern.is_string:
                continue
            like = like_pattern(str(pattern.this))
            if like is None:
                continue
            subject = node.this.sql("bigquery")
            yield Violation(
                node,
                f"REGEXP_CONTAINS with a plain pattern: {subject} LIKE '{like}' does the same, "
                "cheaper",
                fix=f"{subject} LIKE '{like}'",
            )
