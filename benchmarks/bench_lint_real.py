"""costline lint on production BigQuery SQL nobody here wrote: coverage, findings, speed.

Three public repositories at pinned commits (``benchmarks/corpora.py``): Mozilla's
bigquery-etl (scheduled queries, views, UDFs, Jinja checks; its ``metadata.yaml`` files are the
catalogue), Google's Cortex Data Foundation (Jinja-templated SAP/marketing scripts; no
catalogue) and Cal-ITP's dbt warehouse (its dbt project is the catalogue). For each:

- files, statements linted / unparsed / skipped (every skip has its reason), templated files;
- what bare sqlglot makes of the same files (``sqlglot.parse`` of each file as written): files
  it rejects, and statements it returns; and of the same files once their template markup is
  replaced (costline's pre-pass, the SQL costline itself hands to the parser);
- crashes (an exception out of ``lint_paths``: must be 0), internal errors (a failure inside
  the parser or a rule, reported as a finding-less error entry);
- findings per rule and severity;
- speed: CPU seconds of costline on one core against bare sqlglot parsing of the same files in
  the same process, as written and with markup replaced (rounds alternate, the fastest of each
  is kept: the machine is shared; a templated file sqlglot rejects at its first ``{{`` costs it
  next to nothing, so the rendered baseline is the like-for-like one), and
  statements per second wall-clock with ``--jobs 2`` (files linted in parallel);
- precision on the hand-labelled sample ``benchmarks/data/lint_labels.csv`` (corpus, file,
  line, code, verdict TP / noisy / FP, reason): per rule, and for the ``warning`` + ``error``
  findings the labels still match.

    python benchmarks/bench_lint_real.py [--quick] [--rounds N]

``--quick`` lints the Cal-ITP corpus only, one round. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlglot

sys.path.insert(0, str(Path(__file__).parent))

from corpora import CORPORA, Corpus, export
from costline.warehouse.catalog import Catalog
from costline.warehouse.catalog_read import load_catalog
from costline.warehouse.linter import LintConfig, LintResult, lint_paths, sql_files
from costline.warehouse.sql import detemplate

LABELS = Path(__file__).parent / "data" / "lint_labels.csv"
VERDICTS = ("TP", "noisy", "FP")


def corpus_paths(corpus: Corpus) -> tuple[Path, Catalog | None, Path]:
    root = export(corpus)
    catalog = load_catalog(root / corpus.catalog) if corpus.catalog else None
    return root / corpus.sql, catalog, root


def bare_parse(texts: list[str]) -> tuple[float, int, int]:
    """CPU seconds, statements returned and files rejected by ``sqlglot.parse``."""
    statements = rejected = 0
    start = time.process_time()
    for text in texts:
        try:
            statements += len(sqlglot.parse(text, read="bigquery"))
        except Exception:
            rejected += 1
    return time.process_time() - start, statements, rejected


def lint_once(files: list[Path], catalog: Catalog | None, jobs: int) -> tuple[float, LintResult]:
    clock = time.process_time if jobs == 1 else time.perf_counter
    start = clock()
    result = lint_paths(files, config=LintConfig(), catalog=catalog, jobs=jobs)
    return clock() - start, result


def relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def read_labels() -> list[dict[str, str]]:
    if not LABELS.is_file():
        return []
    with LABELS.open(encoding="utf-8", newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("corpus")]


def score_labels(
    labels: list[dict[str, str]], findings: dict[str, dict[tuple[str, int, str], str]]
) -> dict[str, Any]:
    """Precision per rule on the labelled findings that still exist; stale labels counted."""
    per_rule: dict[str, Counter[str]] = defaultdict(Counter)
    severe: Counter[str] = Counter()
    stale = 0
    for row in labels:
        key = (row["file"], int(row["line"]), row["code"])
        severity = findings.get(row["corpus"], {}).get(key)
        if severity is None:
            stale += 1
            continue
        verdict = row["verdict"]
        per_rule[row["code"]][verdict] += 1
        if severity in ("warning", "error"):
            severe[verdict] += 1

    def precision(c: Counter[str]) -> float | None:
        total = sum(c[v] for v in VERDICTS)
        return round(c["TP"] / total, 3) if total else None

    return {
        "labels": len(labels),
        "matched": len(labels) - stale,
        "stale": stale,
        "warning_error": {**{v: severe[v] for v in VERDICTS}, "precision": precision(severe)},
        "per_rule": {
            code: {**{v: c[v] for v in VERDICTS}, "precision": precision(c)}
            for code, c in sorted(per_rule.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one corpus, one round")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (fastest kept)")
    args = parser.parse_args()
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    rounds = 1 if args.quick else max(1, args.rounds)
    chosen = [c for c in CORPORA if not args.quick or c.repo == "cal-itp/data-infra"]
    parallel = min(2, len(os.sched_getaffinity(0)))

    report: dict[str, Any] = {"benchmark": "lint_real", "quick": args.quick, "corpora": {}}
    found: dict[str, dict[tuple[str, int, str], str]] = {}
    totals: Counter[str] = Counter()
    for corpus in chosen:
        sql_dir, catalog, root = corpus_paths(corpus)
        files = list(sql_files([sql_dir]))
        texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
        rendered = [
            ((t := detemplate(text, model=f.stem)) and t.text) or text
            for f, text in zip(files, texts, strict=True)
        ]
        crashes = 0
        parse_s, rendered_s, lint_s, wall_s = [], [], [], []
        result: LintResult | None = None
        for _ in range(rounds):
            seconds, statements, rejected = bare_parse(texts)
            parse_s.append(seconds)
            seconds, rendered_statements, rendered_rejected = bare_parse(rendered)
            rendered_s.append(seconds)
            try:
                cpu, result = lint_once(files, catalog, jobs=1)
                lint_s.append(cpu)
                wall, _ = lint_once(files, catalog, jobs=parallel)
                wall_s.append(wall)
            except Exception as exc:
                crashes += 1
                print(f"CRASH in {corpus.repo}: {exc!r}", file=sys.stderr)
        if result is None:
            report["corpora"][corpus.repo] = {"crashes": crashes}
            continue
        n = result.statements
        by_rule = Counter(f.code for f in result.findings)
        by_severity = Counter(f.severity.value for f in result.findings)
        found[corpus.repo] = {
            (relative(f.path, root), f.line, f.code): f.severity.value for f in result.findings
        }
        skip_reasons = Counter(k.reason.split(":", 1)[0] for k in result.skipped)
        entry = {
            "commit": corpus.commit,
            "files": result.files,
            "templated": len(result.templated),
            "statements": n.model_dump(),
            "skipped_by_reason": dict(skip_reasons.most_common(12)),
            "crashes": crashes,
            "internal_errors": sum(1 for e in result.errors if e.kind == "internal"),
            "parse_errors": sum(1 for e in result.errors if e.kind == "parse"),
            "bare_sqlglot": {"statements": statements, "files_rejected": rejected},
            "bare_sqlglot_rendered": {
                "statements": rendered_statements,
                "files_rejected": rendered_rejected,
            },
            "findings": len(result.findings),
            "by_severity": dict(by_severity),
            "by_rule": dict(sorted(by_rule.items())),
            "catalog_tables": len(list(catalog)) if catalog is not None else 0,
            "parse_cpu_s": round(min(parse_s), 3),
            "parse_rendered_cpu_s": round(min(rendered_s), 3),
            "lint_cpu_s": round(min(lint_s), 3),
            "ratio_to_parse": round(min(lint_s) / min(parse_s), 3),
            "ratio_to_parse_rendered": round(min(lint_s) / min(rendered_s), 3),
            "lint_wall_s_jobs": round(min(wall_s), 3),
            "jobs": parallel,
            "statements_per_s_wall": round(n.linted / min(wall_s)),
            "statements_per_s_one_core": round(n.linted / min(lint_s)),
        }
        report["corpora"][corpus.repo] = entry
        totals["statements"] += n.linted
        totals["parse_s"] += round(min(parse_s) * 1000)
        totals["rendered_s"] += round(min(rendered_s) * 1000)
        totals["lint_s"] += round(min(lint_s) * 1000)
        totals["wall_s"] += round(min(wall_s) * 1000)
        totals["crashes"] += crashes
        totals["unparsed"] += n.unparsed
        print(
            f"{corpus.repo:46} files {result.files:5,}  linted {n.linted:5,}  "
            f"unparsed {n.unparsed:3}  skipped {n.skipped:3}  findings {len(result.findings):4} "
            f"({by_severity.get('error', 0)} E, {by_severity.get('warning', 0)} W)  "
            f"{entry['ratio_to_parse']:.2f}x parse ({entry['ratio_to_parse_rendered']:.2f}x "
            f"rendered)  {entry['statements_per_s_wall']:,}/s wall"
        )
    report["total"] = {
        "statements": totals["statements"],
        "unparsed": totals["unparsed"],
        "crashes": totals["crashes"],
        "ratio_to_parse": round(totals["lint_s"] / max(totals["parse_s"], 1), 3),
        "ratio_to_parse_rendered": round(totals["lint_s"] / max(totals["rendered_s"], 1), 3),
        "statements_per_s_wall": round(totals["statements"] / max(totals["wall_s"], 1) * 1000),
    }
    if not args.quick:
        report["labels"] = score_labels(read_labels(), found)
        labels = report["labels"]
        severe = labels["warning_error"]
        print(
            f"labelled sample: {labels['matched']} of {labels['labels']} labels match a finding;"
            f" warning+error precision {severe['precision']} ({severe['TP']} TP, "
            f"{severe['noisy']} noisy, {severe['FP']} FP)"
        )
        for code, c in labels["per_rule"].items():
            print(f"  {code}: {c['TP']} TP {c['noisy']} noisy {c['FP']} FP -> {c['precision']}")
    print(
        f"total: {report['total']['statements']:,} statements, {report['total']['crashes']} "
        f"crashes, {report['total']['unparsed']} unparsed, "
        f"{report['total']['ratio_to_parse']:.2f}x bare parse as written, "
        f"{report['total']['ratio_to_parse_rendered']:.2f}x rendered, "
        f"{report['total']['statements_per_s_wall']:,} statements/s wall with --jobs {parallel}"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
