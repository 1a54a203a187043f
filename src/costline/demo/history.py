"""Ninety days of BigQuery job history, shaped like ``INFORMATION_SCHEMA.JOBS`` exports.

Generation is columnar end to end: the jobs are numpy arrays (when, who, which template, the literal
values of the run, bytes, slot-ms, cache hit, error), the dimensions (actors, templates, query
templates) are small Arrow tables, and one DuckDB query joins them, renders every query text by
substituting the run's literals into its template, and writes newline-delimited JSON (or
Parquet) in creation order. A million jobs take seconds.

Query texts vary the way real ones do: literals change on every run, analysts differ in keyword
case, layout, comments and IN-list lengths, so nearly every text is distinct while the number of
templates stays in the low thousands. ``query_info.query_hashes.normalized_literals`` is a hash of
the text with literals, comments and whitespace normalised away, as BigQuery computes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from costline.core.errors import CostlineError
from costline.core.prices import GIB, PriceCatalogue, load_prices
from costline.demo.catalog import demo_catalog
from costline.demo.truth import (
    EDITION_NAMES,
    UNLABELLED,
    GroundTruth,
    Period,
    PlantedPattern,
    job_costs,
)
from costline.demo.warehouse import DEFAULT_END, PROJECT
from costline.demo.workload import (
    Actor,
    Pipeline,
    QueryTemplate,
    analyst_templates,
    analysts,
    pipelines,
)
from costline.warehouse.catalog import Catalog
from costline.warehouse.cost import CANCELLED

MIN_JOBS = 1_000
# Share of the job budget scheduled work may take before its runs are thinned.
_MAX_SCHEDULED_SHARE = 0.4
_US_PER_S = 1_000_000
# What one job (a script: all its statements) may run for: BigQuery's six-hour limit, less the
# queueing and the gaps between a script's statements.
_MAX_RUN_MS = 5.5 * 3_600_000
_US_PER_DAY = 86_400 * _US_PER_S
_EPOCH = dt.date(1970, 1, 1)

PLANTED: dict[str, tuple[str, str]] = {
    "full_table_merge": (
        "full_table_merge",
        "Nightly MERGE into risk.positions whose ON clause has no constant partition filter: "
        "every run reads and rewrites the whole multi-hundred-terabyte table although only "
        "yesterday's partition changes.",
    ),
    "hourly_full_scan": (
        "missing_partition_filter",
        "Hourly reconciliation scanning ~10 TB of finance.ledger_entries: the table is "
        "unpartitioned, so the posting_ts filter prunes nothing.",
    ),
    "non_sargable_partition_filter": (
        "non_sargable_partition_filter",
        "Dashboard filters finance.transactions with CAST(booking_date AS STRING) = '...': the "
        "partition column is wrapped in a function, so every partition is scanned.",
    ),
    "non_sargable_format_date": (
        "non_sargable_partition_filter",
        "Daily snapshot filters risk.positions with FORMAT_DATE('%Y%m%d', as_of_date) = '...': "
        "no partition pruning on the largest table.",
    ),
    "select_star_wide": (
        "select_star_wide_table",
        "Dashboard runs SELECT * on the 131-column risk.exposures table every 30 minutes, "
        "reading every tenor bucket although the tiles show a handful of columns.",
    ),
    "order_by_without_limit": (
        "order_by_without_limit",
        "Regulatory extract sorts a quarter of regulatory_reports lines with ORDER BY and no "
        "LIMIT: the final sort runs on one worker and burns reserved slots.",
    ),
}

_ERRORS: tuple[tuple[str, str | None, str], ...] = (
    ("", None, ""),
    ("invalidQuery", "query", "Unrecognized name: amout; Did you mean amount? at [2:7]"),
    ("stopped", None, "Job execution was cancelled: User requested cancellation"),
    (
        "resourcesExceeded",
        "query",
        "Resources exceeded during query execution: The query could"
        " not be executed in the allotted memory. Peak usage: 112% of limit.",
    ),
    (
        "accessDenied",
        None,
        "Access Denied: Table acme-dwh-prod:regulatory.regulatory_reports:"
        " User does not have permission to query table acme-dwh-prod:regulatory.regulatory_reports",
    ),
    (
        "rateLimitExceeded",
        None,
        "Exceeded rate limits: too many concurrent queries for this"
        " project_and_region. For more information, see"
        " https://cloud.google.com/bigquery/docs/troubleshoot-quotas",
    ),
)
# Share of each error among failures, and the fraction of the scan billed before it struck.
_ERROR_WEIGHTS = (0.0, 0.40, 0.25, 0.15, 0.10, 0.10)
_ERROR_SCANNED = ((0.0, 0.0), (0.0, 0.0), (0.05, 0.8), (0.5, 1.0), (0.0, 0.0), (0.0, 0.0))

_KEYWORDS = (
    "select",
    "from",
    "where",
    "and",
    "or",
    "group",
    "by",
    "order",
    "limit",
    "as",
    "join",
    "on",
    "in",
    "between",
    "sum",
    "count",
    "avg",
    "max",
    "min",
    "distinct",
    "countif",
    "abs",
    "desc",
    "asc",
    "having",
    "timestamp",
    "create",
    "replace",
    "table",
    "true",
    "false",
    "not",
    "null",
    "is",
    "left",
    "using",
)
_KEYWORD_RE = re.compile(r"\b(" + "|".join(_KEYWORDS) + r")\b", re.IGNORECASE)
_SLOT_RE = re.compile(r"\{(d0|d1|d1c|ts0|id0|id1|amt|s0)\}")
_COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_LITERAL_RE = re.compile(r"'[^']*'|\b\d+(?:\.\d+)?\b")

_COMMENTS = (
    "quick check",
    "ticket FIN-",
    "for the weekly review",
    "TODO tidy up",
    "investigating variance ",
    "numbers for the steering committee",
    "rerun ",
)


def normalized_hash(template: str, in_len: int) -> str:
    """Hash of a query text with literals, comments and whitespace normalised away.

    Texts that differ only in literal values, comments or whitespace share the hash; keyword
    case, structure and IN-list length change it.
    """
    text = template.replace("{in}", ", ".join(["?"] * in_len))
    text = _SLOT_RE.sub("?", text)
    text = _COMMENT_RE.sub(" ", text)
    text = _LITERAL_RE.sub("?", text)
    text = " ".join(text.split())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lowercase_keywords(text: str) -> str:
    return _KEYWORD_RE.sub(lambda m: m.group(0).lower(), text)


@dataclass
class _Workload:
    actors: list[Actor]
    templates: list[QueryTemplate]
    pipelines: tuple[Pipeline, ...]
    pipeline_actor: list[int]
    pipeline_templates: list[list[int]]  # script: parent first, then children
    analyst_actor: list[int]
    analyst_families: list[tuple[int, ...]]
    analyst_activity: NDArray[np.float64]
    analyst_habits: NDArray[np.float64]  # lowercase, comments, one_line
    family_templates: dict[int, tuple[NDArray[np.int64], NDArray[np.float64]]]


def _workload(rng: np.random.Generator) -> _Workload:
    actors: list[Actor] = []
    templates: list[QueryTemplate] = []
    pipes = pipelines()
    p_actor: list[int] = []
    p_templates: list[list[int]] = []
    for p in pipes:
        p_actor.append(len(actors))
        actors.append(p.actor)
        ids: list[int] = []
        if p.script:
            text = "\n".join(f"{s.template};" for s in p.templates)
            reads = tuple(r for s in p.templates for r in s.reads)
            ids.append(len(templates))
            templates.append(
                QueryTemplate(
                    f"{p.name}.script",
                    text,
                    "SCRIPT",
                    reads,
                    span=p.templates[0].span,
                    lag=p.templates[0].lag,
                )
            )
        for s in p.templates:
            ids.append(len(templates))
            templates.append(s)
        p_templates.append(ids)
    people = analysts(rng)
    a_actor: list[int] = []
    for person in people:
        a_actor.append(len(actors))
        actors.append(person.actor)
    pool = analyst_templates(rng)
    offset = len(templates)
    templates.extend(pool.templates)
    fam = np.array(pool.family)
    weight = np.array(pool.weight)
    family_templates = {
        int(f): (np.flatnonzero(fam == f) + offset, weight[fam == f] / weight[fam == f].sum())
        for f in np.unique(fam)
    }
    return _Workload(
        actors,
        templates,
        pipes,
        p_actor,
        p_templates,
        a_actor,
        [p.families for p in people],
        np.array([p.activity for p in people]),
        np.array([[p.lowercase, p.comments, p.one_line] for p in people]),
        family_templates,
    )


def _bytes_model(
    templates: list[QueryTemplate], catalog: Catalog
) -> tuple[NDArray[np.float64], ...]:
    """Per template: bytes read regardless of the range, bytes per day of range, full-scan cap."""
    fixed = np.zeros(len(templates))
    per_day = np.zeros(len(templates))
    cap = np.zeros(len(templates))
    for i, template in enumerate(templates):
        for read in template.reads:
            name = read.table if read.table.count(".") == 2 else f"{PROJECT}.{read.table}"
            meta = catalog.get(name)
            if meta is None:
                if read.fixed_bytes <= 0 and name.startswith(PROJECT):
                    raise CostlineError(f"catalogue has no table {name} (read by {template.key})")
                fixed[i] += read.fixed_bytes
                cap[i] += read.fixed_bytes
                continue
            if read.columns is None:
                row = sum(c.avg_bytes or 0.0 for c in meta.columns)
            else:
                row = 0.0
                for col in read.columns:
                    c = meta.column(col)
                    if c is None:
                        raise CostlineError(f"{name} has no column {col} (read by {template.key})")
                    row += c.avg_bytes or 0.0
            full = (meta.rows or 0) * row
            cap[i] += full
            if read.scope == "full" or meta.partitioning is None or not meta.partitions:
                fixed[i] += full * (read.prune if meta.partitioning is None else 1.0)
            else:
                per_day[i] += full / meta.partitions * read.prune
    return fixed, per_day, cap


@dataclass
class _Jobs:
    """The generated jobs as parallel arrays (one element per job, in generation order)."""

    creation: NDArray[np.int64]
    actor: NDArray[np.int64]
    template_id: NDArray[np.int64]
    parent: NDArray[np.int64]
    child_n: NDArray[np.int64]
    lower: NDArray[np.bool_]
    layout: NDArray[np.int8]
    comment: NDArray[np.int8]
    comment_n: NDArray[np.int64]


def _schedule(
    p: Pipeline, start: dt.date, days: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    s = p.schedule
    day_idx = np.arange(days)
    weekday = np.array([(start + dt.timedelta(days=int(d))).weekday() for d in day_idx])
    keep = np.ones(days, bool)
    if s.weekdays_only:
        keep &= weekday < 5
    if s.weekday is not None:
        keep &= weekday == s.weekday
    minutes = np.arange(s.offset % s.every, 1440, s.every)
    minutes = minutes[(minutes >= s.hours[0] * 60) & (minutes < s.hours[1] * 60)]
    base = (day_idx[keep][:, None] * 1440 + minutes[None, :]).ravel()
    base = np.repeat(base, s.runs_per_slot)
    start_us = (start - _EPOCH).days * _US_PER_DAY
    jitter = rng.integers(0, max(1, s.jitter_s * _US_PER_S), size=len(base))
    return start_us + base.astype(np.int64) * 60 * _US_PER_S + jitter


def _analyst_times(
    n: int, start: dt.date, days: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    day_idx = np.arange(days)
    weekday = np.array([(start + dt.timedelta(days=int(d))).weekday() for d in day_idx])
    weight = np.select([weekday == 5, weekday == 6], [0.10, 0.07], 1.0)
    weight = weight * (0.88 + 0.24 * day_idx / max(1, days - 1))  # mild growth
    per_day = rng.multinomial(n, weight / weight.sum())
    day = np.repeat(day_idx, per_day)
    mode = rng.random(n)
    hours = np.where(
        mode < 0.45,
        rng.normal(10.5, 1.5, n),
        np.where(mode < 0.9, rng.normal(15.0, 1.8, n), rng.uniform(0, 24, n)),
    )
    seconds = (np.clip(hours, 0, 23.9999) * 3600 * _US_PER_S).astype(np.int64)
    start_us = (start - _EPOCH).days * _US_PER_DAY
    return start_us + day.astype(np.int64) * _US_PER_DAY + seconds


def _generate(
    w: _Workload, jobs: int, start: dt.date, days: int, rng: np.random.Generator
) -> _Jobs:
    runs = [_schedule(p, start, days, rng) for p in w.pipelines]
    rows_per_run = [len(ids) for ids in w.pipeline_templates]
    scheduled = sum(len(r) * k for r, k in zip(runs, rows_per_run, strict=True))
    fixed = sum(
        len(r) * k for r, k, p in zip(runs, rows_per_run, w.pipelines, strict=True) if p.always
    )
    budget = _MAX_SCHEDULED_SHARE * jobs
    if scheduled > budget:
        keep = max(0.0, (budget - fixed) / max(1, scheduled - fixed))
        runs = [
            r if p.always else r[rng.random(len(r)) < keep]
            for r, p in zip(runs, w.pipelines, strict=True)
        ]
    parts: list[dict[str, NDArray[np.int64]]] = []
    offset = 0
    for p_index, (times, ids) in enumerate(zip(runs, w.pipeline_templates, strict=True)):
        k = len(ids)
        n = len(times) * k
        run_row = offset + np.arange(len(times)) * k
        parent = np.full((len(times), k), -1, np.int64)
        child_n = np.full((len(times), k), -1, np.int64)
        if k > 1:
            parent[:, 1:] = run_row[:, None]
            child_n[:, 1:] = np.arange(k - 1)[None, :]
        parts.append(
            {
                "creation": np.repeat(times, k),
                "actor": np.full(n, w.pipeline_actor[p_index], np.int64),
                "template_id": np.tile(np.array(ids, np.int64), len(times)),
                "parent": parent.ravel(),
                "child_n": child_n.ravel(),
            }
        )
        offset += n
    n_a = jobs - offset
    if n_a < 0:
        raise CostlineError(f"{jobs} jobs are too few for the scheduled pipelines ({offset})")
    times = np.sort(_analyst_times(n_a, start, days, rng))
    person = rng.choice(
        len(w.analyst_actor), size=n_a, p=w.analyst_activity / w.analyst_activity.sum()
    )
    template = np.zeros(n_a, np.int64)
    for a_index, fams in enumerate(w.analyst_families):
        mine = np.flatnonzero(person == a_index)
        fam_weight = np.array([3.0 if i < len(fams) - 2 else 1.0 for i in range(len(fams))])
        chosen = rng.choice(np.array(fams), size=len(mine), p=fam_weight / fam_weight.sum())
        for f in np.unique(chosen):
            sel = mine[chosen == f]
            pool, prob = w.family_templates[int(f)]
            template[sel] = rng.choice(pool, size=len(sel), p=prob)
    habits = w.analyst_habits[person]
    parts.append(
        {
            "creation": times,
            "actor": np.array(w.analyst_actor, np.int64)[person],
            "template_id": template,
            "parent": np.full(n_a, -1, np.int64),
            "child_n": np.full(n_a, -1, np.int64),
        }
    )
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    total = len(cat["creation"])
    is_analyst = np.zeros(total, bool)
    is_analyst[offset:] = True
    lower = np.zeros(total, bool)
    lower[offset:] = rng.random(n_a) < habits[:, 0]
    comment = np.zeros(total, np.int8)
    comment[offset:] = np.where(rng.random(n_a) < habits[:, 1], rng.integers(1, 3, n_a), 0)
    layout = np.zeros(total, np.int8)
    layout[offset:] = np.where(
        rng.random(n_a) < habits[:, 2], 1, np.where(rng.random(n_a) < 0.1, 2, 0)
    )
    return _Jobs(
        cat["creation"],
        cat["actor"],
        cat["template_id"],
        cat["parent"],
        cat["child_n"],
        lower,
        layout,
        comment,
        rng.integers(100, 9999, total),
    )


@dataclass
class _Simulated:
    jobs: _Jobs
    start_us: NDArray[np.int64]
    end_us: NDArray[np.int64]
    d0: NDArray[np.int64]  # days since 1970-01-01
    d1: NDArray[np.int64]
    id0: NDArray[np.int64]
    id1: NDArray[np.int64]
    amt: NDArray[np.int64]
    s0: NDArray[np.int64]
    in_len: NDArray[np.int64]
    in_seed: NDArray[np.int64]
    processed: NDArray[np.int64]
    billed: NDArray[np.int64]
    slot_ms: NDArray[np.int64]
    cache_hit: NDArray[np.bool_]
    error: NDArray[np.int64]
    is_parent: NDArray[np.bool_]


def _simulate(
    w: _Workload,
    j: _Jobs,
    catalog: Catalog,
    prices: PriceCatalogue,
    start: dt.date,
    days: int,
    rng: np.random.Generator,
) -> _Simulated:
    n = len(j.creation)
    templates = w.templates
    sh = j.template_id
    is_child = j.parent >= 0
    is_parent = np.zeros(n, bool)
    is_parent[j.parent[is_child]] = True
    # The literal values of each run; script children take their parent's.
    span_lo = np.array([s.span[0] for s in templates])[sh]
    span_hi = np.array([s.span[1] for s in templates])[sh]
    span = rng.integers(span_lo, span_hi + 1)
    lag = rng.integers(
        np.array([s.lag[0] for s in templates])[sh], np.array([s.lag[1] for s in templates])[sh] + 1
    )
    run_day = j.creation // _US_PER_DAY
    d1 = run_day - lag
    id_max = np.array([s.ids for s in templates])[sh]
    id0 = rng.integers(1, id_max + 1)
    id1 = rng.integers(1, id_max + 1)
    amt = rng.integers(
        np.array([s.amounts[0] for s in templates])[sh],
        np.array([s.amounts[1] for s in templates])[sh] + 1,
    )
    amt = np.where(amt > 1000, amt // 100 * 100, amt)
    s0 = rng.integers(0, 1 << 30, n)
    in_lo = np.array([s.in_list.lengths[0] if s.in_list else 0 for s in templates])[sh]
    in_hi = np.array([s.in_list.lengths[1] if s.in_list else 0 for s in templates])[sh]
    in_len = rng.integers(in_lo, in_hi + 1)
    in_seed = rng.integers(0, 1 << 30, n)
    for arr in (span, d1, id0, id1, amt, s0, in_len, in_seed):
        arr[is_child] = arr[j.parent[is_child]]
    d0 = d1 - span + 1

    # Bytes: what the template reads over the run's range, growing mildly over the period.
    fixed, per_day, cap = _bytes_model(templates, catalog)
    t = (run_day - (start - _EPOCH).days) / max(1, days - 1)
    growth = 0.92 + 0.08 * t
    is_analyst = np.isin(j.actor, np.array(w.analyst_actor))
    noise = np.exp(rng.normal(0.0, np.where(is_analyst, 0.25, 0.03)))
    processed = (fixed[sh] + per_day[sh] * span) * growth * noise
    processed = np.minimum(processed, cap[sh])
    job_type = np.array([s.job_type for s in templates])[sh]
    is_query = job_type == "QUERY"
    processed = np.where(is_query, processed, 0.0)

    # Cache hits: repeated dashboard and analyst SELECTs.
    cacheable = np.array([s.cacheable for s in templates])[sh]
    pipeline_cache = np.zeros(len(w.actors))
    for p, a in zip(w.pipelines, w.pipeline_actor, strict=True):
        pipeline_cache[a] = p.cache_rate
    cache_rate = np.where(is_analyst, 0.16, pipeline_cache[j.actor])
    cache_hit = cacheable & is_query & (rng.random(n) < cache_rate)

    # Failures: about 1.5% of analyst queries, fewer for pipelines; never a script parent.
    fail_rate = np.full(len(w.actors), 0.015)
    for p, a in zip(w.pipelines, w.pipeline_actor, strict=True):
        fail_rate[a] = p.failure_rate
    failed = is_query & ~cache_hit & ~is_parent & (rng.random(n) < fail_rate[j.actor])
    error = np.where(failed, rng.choice(len(_ERRORS), size=n, p=_ERROR_WEIGHTS), 0)
    heavy = np.array([s.slot_ms_per_gib > 500_000 for s in templates])[sh]
    error = np.where(failed & heavy, 3, error)
    lo = np.array([e[0] for e in _ERROR_SCANNED])[error]
    hi = np.array([e[1] for e in _ERROR_SCANNED])[error]
    processed = np.where(failed, processed * rng.uniform(lo, hi), processed)
    processed = np.where(cache_hit, 0.0, processed)
    processed_i = np.round(processed).astype(np.int64)

    # Billing: BigQuery's per-query and per-table minimums, rounded up to whole MiB.
    od = prices.bigquery.on_demand
    n_tables = np.array([len(s.tables) for s in templates])[sh]
    rounded = -(-processed_i // od.rounding_bytes) * od.rounding_bytes
    minimum = np.maximum(od.min_bytes_per_query, od.min_bytes_per_table * n_tables)
    billed = np.where(processed_i > 0, np.maximum(rounded, minimum), 0)

    # Slot time: work per GiB of the template, plus a fixed overhead; loads use the free pool.
    per_gib = np.array([s.slot_ms_per_gib for s in templates])[sh]
    slot = processed / GIB * per_gib * np.exp(rng.normal(0, 0.25, n))
    slot += np.exp(rng.normal(np.log(400), 0.6, n))
    slot = np.where(is_query, slot, np.exp(rng.normal(np.log(40_000), 0.7, n)))
    slot = np.where(cache_hit | (failed & (processed_i == 0)), 0.0, slot)
    slot_ms = np.round(slot).astype(np.int64)

    # Script parents carry the sums of their children.
    for arr in (processed_i, billed, slot_ms):
        arr[is_parent] = 0
        np.add.at(arr, j.parent[is_child], arr[is_child])

    # Timing: queueing, then elapsed time from slot-ms and parallelism; children in sequence.
    # BigQuery stops a query (or a whole script) at six hours, so a job whose work would take
    # longer at its drawn parallelism runs wider: its share of the limit is a script's
    # children's total, spread evenly.
    parallel = np.clip(np.exp(rng.normal(np.log(60), 0.9, n)), 1, 2_000)
    siblings = np.bincount(j.parent[is_child], minlength=n)
    share = np.where(is_child, siblings[np.maximum(j.parent, 0)], 1)
    budget_ms = _MAX_RUN_MS / np.maximum(share, 1)
    parallel = np.maximum(parallel, slot_ms / budget_ms)
    elapsed = np.maximum(120_000, slot_ms / parallel * 1000).astype(np.int64)
    elapsed = np.where(cache_hit, rng.integers(40_000, 400_000, n), elapsed)
    elapsed = np.where(is_query, elapsed, rng.integers(4, 90, n) * _US_PER_S)
    queue = rng.integers(20_000, 1_500_000, n)
    creation = j.creation.copy()
    start_us = creation + queue
    if is_child.any():
        child = np.flatnonzero(is_child)
        gap = rng.integers(50_000, 400_000, len(child))
        step = elapsed[child] + queue[child] + gap
        # Children of one script are contiguous: cumulative offset within each parent's run.
        csum = np.cumsum(step)
        first = np.r_[True, j.parent[child][1:] != j.parent[child][:-1]]
        base = np.maximum.accumulate(np.where(first, csum - step, 0))
        before = csum - step - base
        creation[child] = start_us[j.parent[child]] + 200_000 + before
        start_us[child] = creation[child] + queue[child]
    end_us = start_us + elapsed
    if is_child.any():
        child = np.flatnonzero(is_child)
        last = np.zeros(n, np.int64)
        np.maximum.at(last, j.parent[child], end_us[child])
        end_us[is_parent] = last[is_parent] + 150_000
    j.creation = creation
    return _Simulated(
        j,
        start_us,
        end_us,
        d0,
        d1,
        id0,
        id1,
        amt,
        s0,
        in_len,
        in_seed,
        processed_i,
        billed.astype(np.int64),
        slot_ms,
        cache_hit,
        error,
        is_parent,
    )


# -- writing ----------------------------------------------------------------------------------


def _actor_table(actors: list[Actor]) -> pa.Table:
    label = pa.struct([("key", pa.string()), ("value", pa.string())])
    return pa.table(
        {
            "actor": pa.array(range(len(actors)), pa.int64()),
            "user_email": [a.user_email for a in actors],
            "project_id": [a.project_id for a in actors],
            "reservation_id": pa.array([a.reservation_id for a in actors], pa.string()),
            "edition": pa.array([a.edition for a in actors], pa.string()),
            "priority": [a.priority for a in actors],
            "labels": pa.array(
                [[{"key": k, "value": v} for k, v in a.labels] for a in actors], pa.list_(label)
            ),
            "id_style": pa.array([a.id_style for a in actors], pa.int8()),
            "id_prefix": [a.id_prefix for a in actors],
        }
    )


def _template_table(templates: list[QueryTemplate]) -> pa.Table:
    ref = pa.struct(
        [("project_id", pa.string()), ("dataset_id", pa.string()), ("table_id", pa.string())]
    )

    def split(name: str) -> dict[str, str]:
        project, dataset, table = name.split(".")
        return {"project_id": project, "dataset_id": dataset, "table_id": table}

    return pa.table(
        {
            "template_id": pa.array(range(len(templates)), pa.int64()),
            "job_type": [s.job_type for s in templates],
            "statement_type": pa.array([s.statement_type for s in templates], pa.string()),
            "referenced_tables": pa.array(
                [[split(t) for t in s.tables] for s in templates], pa.list_(ref)
            ),
            "destination_table": pa.array(
                [split(s.destination) if s.destination else None for s in templates], ref
            ),
        }
    )


def _text_table(
    templates: list[QueryTemplate], sim: _Simulated
) -> tuple[pa.Table, NDArray[np.int64]]:
    """One row per (template, keyword case, IN-list length) in use: template and query hash."""
    key = (sim.jobs.template_id * 2 + sim.jobs.lower) * 64 + sim.in_len
    uniq, inverse = np.unique(key, return_inverse=True)
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "tkey",
            "template",
            "hash",
            "choices",
            "in_kind",
            "in_size",
            "in_prefix",
            "in_width",
            "in_choices",
        )
    }
    for tkey, k in enumerate(uniq.tolist()):
        template = templates[k // 128]
        lower = bool((k // 64) % 2)
        in_len = k % 64
        text = template.template
        if text is not None and lower:
            text = _lowercase_keywords(text)
        il = template.in_list
        rows["tkey"].append(tkey)
        rows["template"].append(text)
        rows["hash"].append(normalized_hash(text, in_len) if text else None)
        rows["choices"].append(list(template.choices) or [""])
        rows["in_kind"].append(0 if il is None else 3 if il.choices else 2 if il.prefix else 1)
        rows["in_size"].append(il.size if il and il.size else 1)
        rows["in_prefix"].append(il.prefix if il else "")
        rows["in_width"].append(il.width if il else 0)
        rows["in_choices"].append(list(il.choices) if il and il.choices else [""])
    table = pa.table(
        {
            "tkey": pa.array(rows["tkey"], pa.int64()),
            "template": pa.array(rows["template"], pa.string()),
            "hash": pa.array(rows["hash"], pa.string()),
            "choices": pa.array(rows["choices"], pa.list_(pa.string())),
            "in_kind": pa.array(rows["in_kind"], pa.int8()),
            "in_size": pa.array(rows["in_size"], pa.int64()),
            "in_prefix": pa.array(rows["in_prefix"], pa.string()),
            "in_width": pa.array(rows["in_width"], pa.int64()),
            "in_choices": pa.array(rows["in_choices"], pa.list_(pa.string())),
        }
    )
    return table, inverse.astype(np.int64)


def _jobs_table(sim: _Simulated, tkey: NDArray[np.int64]) -> pa.Table:
    j = sim.jobs
    parent = j.parent
    safe = np.maximum(parent, 0)

    def date32(days: NDArray[np.int64]) -> pa.Array:
        return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())

    return pa.table(
        {
            "row": pa.array(np.arange(len(j.creation)), pa.int64()),
            "creation_us": j.creation,
            "start_us": sim.start_us,
            "end_us": sim.end_us,
            "actor": j.actor,
            "template_id": j.template_id,
            "tkey": tkey,
            "parent_row": parent,
            "parent_creation_us": j.creation[safe],
            "child_n": j.child_n,
            "layout": j.layout,
            "comment": j.comment,
            "comment_n": j.comment_n,
            "d0": date32(sim.d0),
            "d1": date32(sim.d1),
            "id0": sim.id0,
            "id1": sim.id1,
            "amt": sim.amt,
            "s0": sim.s0,
            "in_len": sim.in_len,
            "in_seed": sim.in_seed,
            "processed": sim.processed,
            "billed": sim.billed,
            "slot_ms": sim.slot_ms,
            "cache_hit": sim.cache_hit,
            "error": sim.error,
        }
    )


def _errors_table() -> pa.Table:
    return pa.table(
        {
            "error": pa.array(range(len(_ERRORS)), pa.int64()),
            "reason": [e[0] for e in _ERRORS],
            "location": pa.array([e[1] for e in _ERRORS], pa.string()),
            "message": [e[2] for e in _ERRORS],
        }
    )


def _job_id_sql(seed: int, row: str, creation: str) -> str:
    h = f"md5('{seed}:' || CAST({row} AS VARCHAR))"
    return (
        f"CASE a.id_style WHEN 0 THEN 'bquxjob_' || substr({h}, 1, 8) || '_' || substr({h}, 9, 11)"
        f" WHEN 1 THEN 'job_' || substr({h}, 1, 28)"
        f" WHEN 2 THEN a.id_prefix || strftime(make_timestamp({creation}), '%Y_%m_%dT%H_%M_%S')"
        f" || '_' || substr({h}, 1, 8)"
        f" ELSE 'scheduled_query_' || substr({h}, 1, 8) || '-0000-' || substr({h}, 9, 4) || '-'"
        f" || substr({h}, 13, 12) END"
    )


_RENDER_SQL = r"""
replace(replace(replace(replace(replace(replace(replace(replace(replace(
  t.template,
  '{d0}', CAST(j.d0 AS VARCHAR)),
  '{d1c}', strftime(j.d1, '%Y%m%d')),
  '{d1}', CAST(j.d1 AS VARCHAR)),
  '{ts0}', strftime(date_trunc('hour', make_timestamp(j.creation_us)), '%Y-%m-%d %H:%M:%S')),
  '{id0}', CAST(j.id0 AS VARCHAR)),
  '{id1}', CAST(j.id1 AS VARCHAR)),
  '{amt}', CAST(j.amt AS VARCHAR)),
  '{s0}', t.choices[CAST(j.s0 % len(t.choices) AS INTEGER) + 1]),
  '{in}', array_to_string(list_transform(range(j.in_len), lambda i:
    CASE t.in_kind
      WHEN 1 THEN CAST((j.in_seed + i * 7919) % t.in_size + 1 AS VARCHAR)
      WHEN 2 THEN '''' || t.in_prefix
        || lpad(CAST((j.in_seed + i * 7919) % t.in_size AS VARCHAR),
                CAST(t.in_width AS INTEGER), '0')
        || ''''
      ELSE '''' || t.in_choices[CAST((j.in_seed + i) % len(t.in_choices) AS INTEGER) + 1] || ''''
    END), ', '))
"""

_COMMENT_SQL = """
CASE j.comment
  WHEN 1 THEN '-- ' || list_extract($comments, CAST(j.comment_n % $n_comments AS INTEGER) + 1)
    || CASE WHEN j.comment_n % 2 = 0 THEN CAST(j.comment_n AS VARCHAR) ELSE '' END || chr(10)
  WHEN 2 THEN '/* ' || list_extract($comments, CAST(j.comment_n % $n_comments AS INTEGER) + 1)
    || CAST(j.comment_n AS VARCHAR) || ' */ '
  ELSE '' END
"""


def _output_sql(seed: int, *, with_query_hashes: bool, json: bool) -> str:
    comments = "[" + ", ".join(f"'{c}'" for c in _COMMENTS) + "]"
    comment_sql = _COMMENT_SQL.replace("$comments", comments).replace(
        "$n_comments", str(len(_COMMENTS))
    )
    layout_sql = (
        "CASE j.layout WHEN 1 THEN regexp_replace(q.body, '\\s+', ' ', 'g')"
        " WHEN 2 THEN replace(q.body, chr(10), chr(10) || '    ') || chr(10) ELSE q.body END"
    )

    def ts(col: str) -> str:
        if json:
            return f"strftime(make_timestamp({col}), '%Y-%m-%d %H:%M:%S.%f') || ' UTC'"
        return f"CAST(make_timestamp({col}) AS TIMESTAMPTZ)"

    def int64(col: str) -> str:
        return f"CAST({col} AS VARCHAR)" if json else col

    query_info = (
        ",\n  CASE WHEN t.hash IS NULL THEN NULL ELSE"
        " {'query_hashes': {'normalized_literals': t.hash}} END AS query_info"
        if with_query_hashes
        else ""
    )
    job_id = _job_id_sql(seed, "j.row", "j.creation_us")
    parent_id = _job_id_sql(seed, "j.parent_row", "j.parent_creation_us")
    child_id = (
        f"'script_job_' || md5('{seed}:' || CAST(j.parent_row AS VARCHAR))"
        " || '_' || CAST(j.child_n AS VARCHAR)"
    )
    return f"""
WITH q AS (
  SELECT j.row, {_RENDER_SQL} AS body
  FROM j JOIN t USING (tkey)
  WHERE t.template IS NOT NULL
)
SELECT
  CASE WHEN j.parent_row >= 0 THEN {child_id} ELSE {job_id} END AS job_id,
  {ts("j.creation_us")} AS creation_time,
  {ts("j.start_us")} AS start_time,
  {ts("j.end_us")} AS end_time,
  a.project_id,
  a.user_email,
  s.job_type,
  s.statement_type,
  a.priority,
  CASE WHEN q.body IS NULL THEN NULL ELSE {comment_sql} || {layout_sql} END AS query,
  'DONE' AS state,
  j.cache_hit,
  {int64("j.processed")} AS total_bytes_processed,
  {int64("j.billed")} AS total_bytes_billed,
  {int64("j.slot_ms")} AS total_slot_ms,
  CASE WHEN s.job_type = 'QUERY' THEN a.reservation_id END AS reservation_id,
  CASE WHEN s.job_type = 'QUERY' THEN a.edition END AS edition,
  CASE WHEN j.parent_row >= 0 THEN {parent_id} END AS parent_job_id,
  a.labels,
  s.referenced_tables,
  s.destination_table,
  CASE WHEN j.error = 0 THEN NULL ELSE
    {{'reason': e.reason, 'location': e.location, 'message': e.message}} END AS error_result
  {query_info},
  j.template_id AS _template_id,
  j.creation_us AS _t,
  j.row AS _r
FROM j
JOIN a ON a.actor = j.actor
JOIN s ON s.template_id = j.template_id
JOIN t USING (tkey)
JOIN e ON e.error = j.error
LEFT JOIN q ON q.row = j.row
ORDER BY j.creation_us, j.row
"""


def _truth(
    w: _Workload,
    sim: _Simulated,
    prices: PriceCatalogue,
    *,
    seed: int,
    jobs: int,
    start: dt.date,
    end: dt.date,
    examples: dict[str, str],
) -> GroundTruth:
    actors = w.actors
    j = sim.jobs
    job_type = np.array([s.job_type for s in w.templates])[j.template_id]
    edition_index = {name: i for i, name in enumerate(EDITION_NAMES)}
    actor_edition = np.array(
        [edition_index[a.edition] if a.reservation_id and a.edition else -1 for a in actors],
        np.int8,
    )
    edition = np.where(job_type == "QUERY", actor_edition[j.actor], -1).astype(np.int8)
    names = sorted({a.reservation_id for a in actors if a.reservation_id})
    actor_reservation = np.array(
        [names.index(a.reservation_id) if a.reservation_id else -1 for a in actors], np.int64
    )
    reasons = [e[0] for e in _ERRORS]
    cost = job_costs(
        billed=sim.billed,
        slot_ms=sim.slot_ms,
        edition=edition,
        is_parent=sim.is_parent,
        prices=prices,
        charged=(sim.error == 0) | (sim.error == reasons.index(CANCELLED)),
        reservation=np.where(edition >= 0, actor_reservation[j.actor], -1),
        start_us=sim.start_us,
        end_us=sim.end_us,
    )
    teams = [a.team or UNLABELLED for a in actors]
    team_names = sorted(set(teams))
    team_of_actor = np.array([team_names.index(t) for t in teams])
    by_team = np.bincount(team_of_actor[j.actor], weights=cost, minlength=len(team_names))
    planted: list[PlantedPattern] = []
    for p_index, p in enumerate(w.pipelines):
        for template_id in w.pipeline_templates[p_index]:
            template = w.templates[template_id]
            if template.planted is None:
                continue
            mine = (j.template_id == template_id) & ~sim.is_parent
            kind, description = PLANTED[template.planted]
            planted.append(
                PlantedPattern(
                    id=template.planted,
                    kind=kind,
                    description=description,
                    pipeline=p.name,
                    table=template.tables[0],
                    example_query=examples[template.planted],
                    jobs=int(mine.sum()),
                    bytes_billed=int(sim.billed[mine].sum()),
                    slot_ms=int(sim.slot_ms[mine].sum()),
                    cost_usd=round(float(cost[mine].sum()), 6),
                )
            )
    planted.sort(key=lambda p: -p.cost_usd)
    return GroundTruth(
        seed=seed,
        jobs=jobs,
        period=Period(start=start, end=end),
        total_cost_usd=round(float(cost.sum()), 6),
        cost_by_team={
            name: round(float(v), 6) for name, v in zip(team_names, by_team, strict=True)
        },
        planted=planted,
    )


def generate_history(
    path: Path,
    *,
    jobs: int,
    seed: int,
    days: int = 90,
    end: dt.date = DEFAULT_END,
    catalog: Catalog | None = None,
    with_query_hashes: bool = True,
    format: Literal["jsonl", "parquet"] = "jsonl",
) -> GroundTruth:
    """Write ``jobs`` jobs of history ending ``end`` to ``path``; return the ground truth.

    Deterministic for (``jobs``, ``seed``, ``days``, ``end``, catalogue sizes): the same
    arguments give a byte-identical file. ``catalog`` supplies the production table sizes jobs
    bill against (default: the demo catalogue).
    """
    if jobs < MIN_JOBS:
        raise CostlineError(f"a demo history needs at least {MIN_JOBS} jobs (got {jobs})")
    if days < 7:
        raise CostlineError(f"a demo history covers at least 7 days (got {days})")
    catalog = catalog or demo_catalog()
    prices = load_prices()
    start = end - dt.timedelta(days=days - 1)
    rng = np.random.default_rng([seed, 0x10B5])
    workload = _workload(rng)
    generated = _generate(workload, jobs, start, days, rng)
    sim = _simulate(workload, generated, catalog, prices, start, days, rng)
    text, tkey = _text_table(workload.templates, sim)

    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("j", _jobs_table(sim, tkey))
        con.register("a", _actor_table(workload.actors))
        con.register("s", _template_table(workload.templates))
        con.register("t", text)
        con.register("e", _errors_table())
        sql = _output_sql(seed, with_query_hashes=with_query_hashes, json=format == "jsonl")
        con.execute(f"CREATE TEMP TABLE out AS {sql}")
        examples: dict[str, str] = {}
        for template_id, template in enumerate(workload.templates):
            if template.planted is not None:
                row = con.execute(
                    "SELECT query FROM out WHERE _template_id = ? AND query IS NOT NULL"
                    " ORDER BY _t, _r LIMIT 1",
                    [template_id],
                ).fetchone()
                examples[template.planted] = str(row[0]) if row else ""
        path.parent.mkdir(parents=True, exist_ok=True)
        options = "FORMAT JSON" if format == "jsonl" else "FORMAT PARQUET, COMPRESSION ZSTD"
        con.execute(
            "COPY (SELECT * EXCLUDE (_template_id, _t, _r) FROM out ORDER BY _t, _r)"
            f" TO '{path}' ({options})"
        )
    finally:
        con.close()
    return _truth(
        workload, sim, prices, seed=seed, jobs=jobs, start=start, end=end, examples=examples
    )
