"""Renderers of a :class:`~costline.warehouse.linter.LintResult`: text, JSON, SARIF 2.1.0 and
GitHub workflow annotations. They format the findings as found; nothing is recomputed.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

from costline import __version__
from costline.warehouse.linter import CatalogSummary, LintFinding, LintResult
from costline.warehouse.rules import ALL_RULES, Rule, Severity, rule_doc
from costline.warehouse.rules.base import GOOGLE

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_SARIF_LEVEL = {Severity.error: "error", Severity.warning: "warning", Severity.info: "note"}
_GITHUB_LEVEL = {Severity.error: "error", Severity.warning: "warning", Severity.info: "notice"}


def _usd(value: float) -> str:
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def render_lint_text(result: LintResult, *, list_skipped: bool = True) -> str:
    """One line per finding (``path:line:col: CODE message``), its fix, the statements that
    could not be read (and, with ``list_skipped``, those skipped), then a summary of what
    became of every statement."""
    lines: list[str] = []
    for f in result.findings:
        cost = f" [{_usd(f.cost_usd)}]" if f.cost_usd is not None else ""
        lines.append(f"{f.path}:{f.line}:{f.column}: {f.code} {f.severity}{cost} {f.message}")
        if f.fix:
            lines.append(f"    fix: {f.fix}")
    for e in result.errors:
        what = "cannot parse" if e.kind == "parse" else "internal error"
        lines.append(f"{e.path}:{e.line}:{e.column}: {what}: {e.message}")
    for k in result.skipped if list_skipped else ():
        lines.append(f"{k.path}:{k.line}:{k.column}: skipped: {k.reason}")
    counts = Counter(f.severity for f in result.findings)
    n = result.statements
    summary = (
        f"{len(result.findings):,} finding{'s' * (len(result.findings) != 1)}"
        f" ({counts[Severity.error]} error, {counts[Severity.warning]} warning, "
        f"{counts[Severity.info]} info) in {n.linted:,} statement"
        f"{'s' * (n.linted != 1)} of {result.files:,} "
        f"{'source' if result.files == 1 else 'sources'}"
    )
    if n.unparsed:
        summary += f"; {n.unparsed:,} could not be parsed"
    if n.skipped:
        summary += f"; {n.skipped:,} skipped"
    if result.templated:
        summary += f"; {len(result.templated):,} templated (markup replaced before parsing)"
    costed = [f.cost_usd for f in result.findings if f.cost_usd is not None]
    if costed:
        summary += f"; the flagged patterns cost {_usd(_pattern_cost(result.findings))}"
    lines.append(summary)
    if result.catalog is not None:
        lines.append(_catalog_line(result.catalog))
    return "\n".join(lines) + "\n"


def _catalog_line(c: CatalogSummary) -> str:
    source = f" ({c.source})" if c.source else ""
    return (
        f"catalogue{source}: {c.tables:,} tables known, {c.partitioned:,} partitioned, "
        f"{c.clustered:,} clustered, {c.views:,} views"
    )


def _pattern_cost(findings: tuple[LintFinding, ...]) -> float:
    """Cost of the flagged patterns, each counted once however many rules it breaks."""
    seen: dict[str, float] = {}
    for f in findings:
        if f.cost_usd is not None:
            seen[f.path] = f.cost_usd
    return sum(seen.values())


def render_lint_json(result: LintResult) -> str:
    """One object: ``files``, ``statements`` (linted / unparsed / skipped), ``findings``,
    ``errors``, ``skipped``, ``templated`` and ``catalog``, with the documented fields."""
    payload = {
        "files": result.files,
        "statements": result.statements.model_dump(mode="json"),
        "findings": [f.model_dump(mode="json") for f in result.findings],
        "errors": [e.model_dump(mode="json") for e in result.errors],
        "skipped": [k.model_dump(mode="json") for k in result.skipped],
        "templated": list(result.templated),
        "catalog": result.catalog.model_dump(mode="json") if result.catalog else None,
    }
    return json.dumps(payload, indent=2) + "\n"


def _sarif_rule(rule: type[Rule]) -> dict[str, Any]:
    doc = rule_doc(rule)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": doc.sections.get("What it does", rule.summary)},
        "help": {"text": doc.text, "markdown": doc.text},
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        "properties": {
            "equivalents": [f"{GOOGLE}:{e}" for e in rule.equivalents],
            "tags": ["cost"],
        },
    }


def _uri(path: str) -> str:
    return quote(path.replace("\\", "/"), safe="/:#@._-~")


def render_lint_sarif(result: LintResult) -> str:
    """A SARIF 2.1.0 log: one run, every rule described, parse errors as notifications."""
    index = {r.code: i for i, r in enumerate(ALL_RULES)}
    results = []
    for f in result.findings:
        item: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message + (f" Fix: {f.fix}" if f.fix else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.path)},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
            "properties": {"equivalents": list(f.equivalents)},
        }
        if f.cost_usd is not None:
            item["properties"]["cost_usd"] = f.cost_usd
        results.append(item)
    notifications = [
        {
            "level": "error",
            "message": {
                "text": f"{'cannot parse' if e.kind == 'parse' else 'internal error'}: {e.message}"
            },
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(e.path)},
                        "region": {"startLine": e.line, "startColumn": e.column},
                    }
                }
            ],
        }
        for e in result.errors
    ] + [
        {
            "level": "note",
            "message": {"text": f"skipped: {k.reason}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(k.path)},
                        "region": {"startLine": k.line, "startColumn": k.column},
                    }
                }
            ],
        }
        for k in result.skipped
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "costline",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/costline/",
                        "rules": [_sarif_rule(r) for r in ALL_RULES],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_lint_github(result: LintResult) -> str:
    """GitHub Actions workflow commands: one ``::error``/``::warning``/``::notice`` each."""
    lines = []
    for f in result.findings:
        title = _escape_property(f"{f.code} {f.name}")
        message = f.message + (f" (fix: {f.fix})" if f.fix else "")
        lines.append(
            f"::{_GITHUB_LEVEL[f.severity]} file={_escape_property(f.path)},line={f.line},"
            f"col={f.column},title={title}::{_escape_data(message)}"
        )
    for e in result.errors:
        title = "cannot parse" if e.kind == "parse" else "internal error"
        lines.append(
            f"::error file={_escape_property(e.path)},line={e.line},col={e.column},"
            f"title={title}::{_escape_data(e.message)}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def render_rules_text() -> str:
    """The rule index ``costline rules`` prints."""
    lines = []
    for r in ALL_RULES:
        notes = [*r.equivalents, *(["needs --catalog"] if r.needs_catalog else [])]
        lines.append(f"{r.code}  {r.severity:<7}  {r.name:<31} {', '.join(notes)}".rstrip())
        lines.append(f"       {r.summary}")
    lines.append("`costline rules CODE` explains one rule, with examples.")
    return "\n".join(lines) + "\n"


def render_rule_text(rule: type[Rule]) -> str:
    """One rule's documentation, from its docstring."""
    from costline.warehouse.rules.examples import EXAMPLE_CATALOG_DOC

    doc = rule_doc(rule)
    head = f"{rule.code} {rule.name} ({rule.severity})"
    meta = []
    if rule.equivalents:
        meta.append("equivalents: " + ", ".join(f"{GOOGLE}:{e}" for e in rule.equivalents))
    if rule.needs_catalog:
        meta.append("needs a catalogue (--catalog)")
    body = doc.text
    note = f"\n\nThe examples assume this catalogue: {EXAMPLE_CATALOG_DOC}"
    return "\n".join([head, "=" * len(head), *meta, "", body]) + note + "\n"
