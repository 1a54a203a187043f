"""Who queries the demo warehouse, and how: pipelines, dashboards and analysts.

A :class:`QueryTemplate` is one query pattern: a SQL template whose ``{slots}`` take literal values
that change per run (dates, ids, amounts, IN-lists), the tables it reads and how much of them.
Pipelines run a fixed template (or a script of templates) on a schedule; analysts pick from a
pool of a few thousand templates generated from families of typical questions. The anti-patterns
from "Architecture Over Alerts" are pipelines whose template carries a ``planted`` id.

Slots: ``{d0}``/``{d1}`` start and end date of the range read, ``{d1c}`` the end date as
``YYYYMMDD``, ``{ts0}`` the run hour, ``{id0}``/``{id1}`` ids, ``{amt}`` an amount, ``{s0}`` one
of the template's ``choices``, ``{in}`` an IN-list. Each slot is replaced by its value; any other
brace is SQL text.

Who queries what is data, in ``demo/sql/``: ``pipelines.toml`` lists the pipelines (schedule,
actor, labels, each template's reads, and the rule codes ``costline lint`` reports for its SQL),
each pipeline query's SQL template is a file ``<team>/<key>.sql`` next to it,
``analysts.toml`` holds the analysts' teams and names and the question families, and
``values.toml`` the value lists choice and IN-list slots draw from.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from costline.core.errors import CostlineError, first_validation_error
from costline.demo.warehouse import PROJECT

DWH = PROJECT


def fq(table: str) -> str:
    """Backticked fully qualified name of a ``dataset.table`` in the warehouse project."""
    return f"`{DWH}.{table}`"


@dataclass(frozen=True)
class Read:
    """Part of a table a template reads: columns (None: all) over all of it or over its date range.

    ``scope`` "full" reads every partition; "range" reads the partitions of the ``{d0}``..``{d1}``
    range (the whole table if it is unpartitioned). ``prune`` is the fraction of the scanned
    partitions left after clustering. Tables outside the catalogue give ``fixed_bytes``.
    """

    table: str
    columns: tuple[str, ...] | None = None
    scope: str = "range"
    prune: float = 1.0
    fixed_bytes: float = 0.0


@dataclass(frozen=True)
class InList:
    """How an IN-list slot is filled: integers below ``size``, or strings from ``choices``."""

    lengths: tuple[int, int]
    size: int = 0
    prefix: str = ""
    width: int = 0
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryTemplate:
    """One query pattern."""

    key: str
    template: str | None
    statement_type: str | None
    reads: tuple[Read, ...] = ()
    destination: str | None = None
    job_type: str = "QUERY"
    slot_ms_per_gib: float = 64_000.0
    span: tuple[int, int] = (1, 1)
    lag: tuple[int, int] = (0, 0)
    ids: int = 1_000_000
    amounts: tuple[int, int] = (100, 100_000)
    choices: tuple[str, ...] = ()
    in_list: InList | None = None
    cacheable: bool = False
    planted: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        """Referenced tables, fully qualified, in first-read order."""
        seen: dict[str, None] = {}
        for r in self.reads:
            seen.setdefault(r.table if r.table.count(".") == 2 else f"{DWH}.{r.table}")
        return tuple(seen)


@dataclass(frozen=True)
class Actor:
    """Who runs jobs: identity, project, billing model, labels, job-id style."""

    key: str
    user_email: str
    project_id: str
    reservation_id: str | None = None
    edition: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    priority: str = "INTERACTIVE"
    id_style: int = 0  # 0 console, 1 API client, 2 Airflow, 3 scheduled query
    id_prefix: str = ""

    @property
    def team(self) -> str | None:
        """The ``team`` label, if any."""
        return next((v for k, v in self.labels if k == "team"), None)


@dataclass(frozen=True)
class Schedule:
    """Runs every ``every`` minutes from ``offset`` within ``hours``; daily/weekly via ``every``."""

    every: int
    offset: int = 0
    hours: tuple[int, int] = (0, 24)
    weekdays_only: bool = False
    weekday: int | None = None  # for weekly runs: 0 = Monday
    jitter_s: int = 90
    runs_per_slot: int = 1


@dataclass(frozen=True)
class Pipeline:
    """A scheduled workload: one template, or a script of several (a SCRIPT parent, children)."""

    name: str
    actor: Actor
    schedule: Schedule
    templates: tuple[QueryTemplate, ...]
    script: bool = False
    always: bool = False  # never thinned when the job budget is small
    cache_rate: float = 0.0
    failure_rate: float = 0.006
    description: str = ""


# -- projects and reservations ---------------------------------------------------------------

ON_DEMAND = (None, None)
ETL_PROD = ("acme-admin:US.etl-prod", "ENTERPRISE")
REGULATORY = ("acme-admin:US.regulatory", "ENTERPRISE_PLUS")
DS_SANDBOX = ("acme-admin:US.data-science", "STANDARD")
BI_RESERVED = ("acme-admin:US.bi-interactive", "ENTERPRISE")

_PROJECT_BILLING: dict[str, tuple[str | None, str | None]] = {
    "acme-risk-etl": ON_DEMAND,
    "acme-finance-etl": ON_DEMAND,
    "acme-etl-prod": ETL_PROD,
    "acme-regulatory": REGULATORY,
    "acme-bi-prod": ON_DEMAND,
    "acme-analytics": ON_DEMAND,
    "acme-ds-sandbox": DS_SANDBOX,
    "acme-treasury": BI_RESERVED,
}


# -- pipelines: sql/pipelines.toml, sql/values.toml and one .sql file per query template ---------

MANIFEST = "pipelines.toml"
VALUES = "values.toml"
_Label = Literal["team", "pipeline", "env"]
_LABELS: tuple[_Label, ...] = ("team", "pipeline", "env")
_JobIds = Literal["console", "api", "airflow", "scheduled_query"]
# Actor.id_style is the index of the style in this tuple.
_JOB_ID_STYLES: tuple[_JobIds, ...] = ("console", "api", "airflow", "scheduled_query")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HH_MM = r"([01]\d|2[0-3]):[0-5]\d"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ReadEntry(_Entry):
    table: str
    columns: tuple[str, ...] | None = None
    scope: Literal["range", "full"] = "range"
    prune: float = 1.0
    fixed_bytes: float = 0.0


class _InListEntry(_Entry):
    lengths: tuple[int, int]
    size: int = 0
    prefix: str = ""
    width: int = 0
    choices: str | tuple[str, ...] = ()


class _TemplateEntry(_Entry):
    key: str | None = None
    sql: str | None = None
    expect: tuple[str, ...] | None = None
    planted: str | None = None
    job_type: Literal["QUERY", "LOAD", "COPY", "EXTRACT"] = "QUERY"
    statement_type: str | None = None
    destination: str | None = None
    # int or float as written: the value reaches QueryTemplate unchanged.
    slot_ms_per_gib: int | float = 64_000.0
    span: tuple[int, int] = (1, 1)
    lag: tuple[int, int] = (0, 0)
    ids: int = 1_000_000
    amounts: tuple[int, int] = (100, 100_000)
    choices: str | tuple[str, ...] = ()
    in_list: _InListEntry | None = None
    cacheable: bool = False
    read: tuple[_ReadEntry, ...] = ()


class _ScheduleEntry(_Entry):
    daily: str | None = Field(None, pattern=f"^{_HH_MM}$")
    hourly: int | None = Field(None, ge=0, lt=60)
    weekly: str | None = Field(None, pattern=f"^({'|'.join(_WEEKDAYS)}) {_HH_MM}$")
    every: int | None = Field(None, gt=0)
    offset: int = Field(0, ge=0)
    hours: tuple[int, int] = (0, 24)
    weekdays_only: bool = False
    jitter_s: int = 90
    runs_per_slot: int = 1


class _PipelineEntry(_Entry):
    name: str
    team: str | None = None
    project: str
    service_account: str | None = None
    labels: tuple[_Label, ...] = _LABELS
    job_ids: _JobIds = "airflow"
    schedule: _ScheduleEntry
    always: bool = False
    cache_rate: float = 0.0
    failure_rate: float = 0.006
    description: str = ""
    query: tuple[_TemplateEntry, ...] = Field(min_length=1)


def sql_root() -> Traversable:
    """The packaged folder of the pipelines: their manifest, value lists and SQL files."""
    return resources.files("costline.demo").joinpath("sql")


def pipelines() -> tuple[Pipeline, ...]:
    """The scheduled workloads: ETL, loads, dashboards, models; six of them planted."""
    return read_pipelines(sql_root())


def read_pipelines(root: Traversable) -> tuple[Pipeline, ...]:
    """The pipelines of the manifest in ``root``, in manifest order, with their SQL files read.

    A malformed manifest (an unknown key, a missing SQL file, an unknown project or value list)
    is a :class:`CostlineError` naming the manifest and the pipeline.
    """
    manifest = root.joinpath(MANIFEST)
    data = _read_toml(manifest, "pipeline manifest")
    lists = _read_values(root.joinpath(VALUES))
    unknown = sorted(set(data) - {"pipeline"})
    if unknown:
        raise CostlineError(f"{manifest}: unknown key {unknown[0]!r} (expected [[pipeline]])")
    entries = data.get("pipeline", [])
    if not isinstance(entries, list):
        raise CostlineError(f"{manifest}: `pipeline` must be an array of tables ([[pipeline]])")
    out: list[Pipeline] = []
    for n, raw in enumerate(entries):
        name = raw.get("name") if isinstance(raw, dict) else None
        where = f"{manifest}: pipeline " + (repr(name) if isinstance(name, str) else str(n + 1))
        try:
            entry = _PipelineEntry.model_validate(raw)
        except ValidationError as exc:
            raise CostlineError(f"{where}: {first_validation_error(exc)}") from None
        if any(p.name == entry.name for p in out):
            raise CostlineError(f"{where}: a second pipeline of that name")
        out.append(_pipeline(entry, root, lists, where))
    return tuple(out)


def _read_toml(file: Traversable, what: str) -> dict[str, object]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CostlineError(f"cannot read {what} {file}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CostlineError(f"{file}: not valid TOML: {exc}") from None


def _read_values(file: Traversable) -> dict[str, tuple[str, ...]]:
    try:
        return _VALUE_LISTS.validate_python(_read_toml(file, "value lists"))
    except ValidationError as exc:
        raise CostlineError(f"{file}: {first_validation_error(exc)}") from None


_VALUE_LISTS = TypeAdapter(dict[str, tuple[str, ...]])


def _slot_values() -> dict[str, tuple[str, ...]]:
    """The packaged value lists that choice and IN-list slots draw from."""
    return _read_values(sql_root().joinpath(VALUES))


def _pipeline(
    e: _PipelineEntry, root: Traversable, lists: dict[str, tuple[str, ...]], where: str
) -> Pipeline:
    if e.project not in _PROJECT_BILLING:
        known = ", ".join(_PROJECT_BILLING)
        raise CostlineError(f"{where}: project: unknown project {e.project!r} (one of {known})")
    templates = tuple(
        _template(s, e.name, root, lists, f"{where}: query.{n}") for n, s in enumerate(e.query)
    )
    return Pipeline(
        e.name,
        _pipeline_actor(e),
        _schedule(e.schedule, f"{where}: schedule"),
        templates,
        script=len(templates) > 1,
        always=e.always,
        cache_rate=e.cache_rate,
        failure_rate=e.failure_rate,
        description=e.description,
    )


def _pipeline_actor(e: _PipelineEntry) -> Actor:
    reservation, edition = _PROJECT_BILLING[e.project]
    label_values = {"team": e.team, "pipeline": e.name, "env": "prod"}
    labels: list[tuple[str, str]] = []
    for key in _LABELS:
        value = label_values[key]
        if key in e.labels and value:
            labels.append((key, value))
    account = e.service_account or f"{e.team or 'ops'}-pipelines"
    return Actor(
        e.name,
        f"{account}@{e.project}.iam.gserviceaccount.com",
        e.project,
        reservation,
        edition,
        tuple(labels),
        id_style=_JOB_ID_STYLES.index(e.job_ids),
        id_prefix=f"airflow_{e.name}_" if e.job_ids == "airflow" else "",
    )


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def _schedule(s: _ScheduleEntry, where: str) -> Schedule:
    given = [k for k in ("daily", "hourly", "weekly", "every") if getattr(s, k) is not None]
    if len(given) != 1:
        got = ", ".join(given) or "none"
        raise CostlineError(f"{where}: give one of daily, hourly, weekly or every (got {got})")
    if s.offset and s.every is None:
        raise CostlineError(f"{where}: offset goes with every")
    weekday: int | None = None
    if s.daily is not None:
        every, offset = 1440, _minutes(s.daily)
    elif s.weekly is not None:
        day, at = s.weekly.split()
        every, offset, weekday = 1440, _minutes(at), _WEEKDAYS.index(day)
    elif s.hourly is not None:
        every, offset = 60, s.hourly
    else:
        assert s.every is not None  # one of the four is given
        every, offset = s.every, s.offset
    return Schedule(
        every,
        offset,
        hours=s.hours,
        weekdays_only=s.weekdays_only,
        weekday=weekday,
        jitter_s=s.jitter_s,
        runs_per_slot=s.runs_per_slot,
    )


def _template(
    s: _TemplateEntry,
    pipeline: str,
    root: Traversable,
    lists: dict[str, tuple[str, ...]],
    where: str,
) -> QueryTemplate:
    runs_sql = ("sql", "statement_type", "expect")
    if s.job_type == "QUERY":
        missing = [k for k in runs_sql if getattr(s, k) is None]
        if missing:
            raise CostlineError(f"{where}: a QUERY template needs {', '.join(missing)}")
    elif given := [k for k in runs_sql if getattr(s, k) is not None]:
        raise CostlineError(f"{where}: {given[0]}: a {s.job_type} job runs no SQL")
    return QueryTemplate(
        s.key or pipeline,
        None if s.sql is None else _read_sql(root, s.sql, f"{where}: sql"),
        s.statement_type,
        tuple(Read(r.table, r.columns, r.scope, r.prune, r.fixed_bytes) for r in s.read),
        destination=s.destination,
        job_type=s.job_type,
        slot_ms_per_gib=s.slot_ms_per_gib,
        span=s.span,
        lag=s.lag,
        ids=s.ids,
        amounts=s.amounts,
        choices=_values(s.choices, lists, f"{where}: choices"),
        in_list=_in_list(s.in_list, lists, f"{where}: in_list.choices"),
        cacheable=s.cacheable,
        planted=s.planted,
    )


def _values(
    given: str | tuple[str, ...], lists: dict[str, tuple[str, ...]], where: str
) -> tuple[str, ...]:
    """``given`` values, or the list of values.toml it names."""
    if isinstance(given, tuple):
        return given
    if given not in lists:
        raise CostlineError(f"{where}: no list {given!r} in {VALUES} (one of {', '.join(lists)})")
    return lists[given]


def _in_list(
    given: _InListEntry | None, lists: dict[str, tuple[str, ...]], where: str
) -> InList | None:
    if given is None:
        return None
    choices = _values(given.choices, lists, where)
    return InList(given.lengths, given.size, given.prefix, given.width, choices)


def _read_sql(root: Traversable, name: str, where: str) -> str:
    """The template in file ``name``: its text without the file's final line break."""
    file = root.joinpath(name)
    if not file.is_file():
        raise CostlineError(f"{where}: no file {name} in {root}")
    return file.read_text(encoding="utf-8").removesuffix("\n")


# -- analysts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A kind of question analysts ask of one table (optionally joined to a second)."""

    key: str
    table: str
    dims: tuple[str, ...]
    measures: tuple[tuple[str, str], ...]  # (SQL expression, column it reads)
    where: str
    where_columns: tuple[str, ...]
    extras: tuple[tuple[str, tuple[str, ...], float], ...] = ()  # predicate, columns, prune
    scope: str = "range"
    span: tuple[int, int] = (1, 1)
    lag: tuple[int, int] = (0, 3)
    teams: tuple[str, ...] = ()
    weight: float = 1.0
    variants: int = 200
    join: tuple[str, str, tuple[str, ...]] | None = None  # table, ON clause, columns it reads
    choices: tuple[str, ...] = ()
    in_list: InList | None = None
    ids: int = 1_000_000
    amounts: tuple[int, int] = (100, 100_000)
    slot_ms_per_gib: float = 80_000.0


ANALYSTS = "analysts.toml"
# The alias of each table a family may join; a dimension under one is read from that table.
_JOIN_ALIAS = {"core_banking.accounts": "a", "finance.instruments": "i", "risk.counterparties": "c"}


class _MeasureEntry(_Entry):
    sql: str
    column: str = ""


class _ExtraEntry(_Entry):
    sql: str
    columns: tuple[str, ...] = ()
    prune: float = 1.0


class _JoinEntry(_Entry):
    table: str
    on: str
    columns: tuple[str, ...]


class _FamilyEntry(_Entry):
    key: str
    table: str
    dims: tuple[str, ...] = Field(min_length=1)
    measures: tuple[_MeasureEntry, ...] = ()
    where: str
    where_columns: tuple[str, ...]
    extras: tuple[_ExtraEntry, ...] = ()
    scope: Literal["range", "full"] = "range"
    span: tuple[int, int] = (1, 1)
    lag: tuple[int, int] = (0, 3)
    teams: tuple[str, ...] = ()
    weight: float = 1.0
    variants: int = 200
    join: _JoinEntry | None = None
    choices: str | tuple[str, ...] = ()
    in_list: _InListEntry | None = None
    ids: int = 1_000_000
    amounts: tuple[int, int] = (100, 100_000)
    # int or float as written: the value reaches Family unchanged.
    slot_ms_per_gib: int | float = 80_000.0


class _AnalystsEntry(_Entry):
    teams: tuple[str, ...] = Field(min_length=1)
    project: str
    projects: dict[str, str] = {}
    first_names: tuple[str, ...] = Field(min_length=1)
    last_names: tuple[str, ...] = Field(min_length=1)
    family: tuple[_FamilyEntry, ...] = Field(min_length=1)


def _read_analysts() -> tuple[_AnalystsEntry, str]:
    """The analysts' file, validated, and its name for messages."""
    file = sql_root().joinpath(ANALYSTS)
    try:
        entry = _AnalystsEntry.model_validate(_read_toml(file, "analyst families"))
    except ValidationError as exc:
        raise CostlineError(f"{file}: {first_validation_error(exc)}") from None
    for project in (entry.project, *entry.projects.values()):
        if project not in _PROJECT_BILLING:
            raise CostlineError(f"{file}: unknown project {project!r}")
    for f in entry.family:
        if f.join is not None and f.join.table not in _JOIN_ALIAS:
            known = ", ".join(_JOIN_ALIAS)
            raise CostlineError(
                f"{file}: family {f.key!r}: join.table: {f.join.table!r} is none of {known}"
            )
    return entry, str(file)


def families() -> tuple[Family, ...]:
    """The analyst question families of ``analysts.toml``; each yields ``variants`` templates."""
    entry, file = _read_analysts()
    lists = _slot_values()
    out: list[Family] = []
    for f in entry.family:
        where = f"{file}: family {f.key!r}"
        j = f.join
        out.append(
            Family(
                f.key,
                f.table,
                f.dims,
                tuple((m.sql, m.column) for m in f.measures),
                f.where,
                f.where_columns,
                tuple((x.sql, x.columns, x.prune) for x in f.extras),
                scope=f.scope,
                span=f.span,
                lag=f.lag,
                teams=f.teams,
                weight=f.weight,
                variants=f.variants,
                join=None if j is None else (j.table, j.on, j.columns),
                choices=_values(f.choices, lists, f"{where}: choices"),
                in_list=_in_list(f.in_list, lists, f"{where}: in_list.choices"),
                ids=f.ids,
                amounts=f.amounts,
                slot_ms_per_gib=f.slot_ms_per_gib,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class Analyst:
    """A person running ad-hoc queries, with their habits."""

    actor: Actor
    team: str
    families: tuple[int, ...]
    activity: float
    lowercase: float  # share of their queries written in lower-case keywords
    comments: float
    one_line: float


def analysts(rng: np.random.Generator, count: int = 64) -> tuple[Analyst, ...]:
    """``count`` analysts across the teams, with label, case, comment and layout habits."""
    people, _file = _read_analysts()
    fams = families()
    out: list[Analyst] = []
    used: set[str] = set()
    for n in range(count):
        team = people.teams[n % len(people.teams)]
        while True:
            name = f"{rng.choice(people.first_names)}.{rng.choice(people.last_names)}"
            if name not in used:
                used.add(name)
                break
        project = people.projects.get(team, people.project)
        reservation, edition = _PROJECT_BILLING[project]
        habit = rng.random()
        labels: tuple[tuple[str, str], ...] = ()
        if habit < 0.3:
            labels = (("team", team),)
        elif habit < 0.4:
            labels = (("team", team), ("env", "adhoc"))
        own = [i for i, f in enumerate(fams) if team in f.teams]
        others = [i for i in range(len(fams)) if i not in own]
        extra = rng.choice(others, size=min(2, len(others)), replace=False).tolist()
        out.append(
            Analyst(
                Actor(
                    f"analyst:{name}",
                    f"{name}@acme-bank.com",
                    project,
                    reservation,
                    edition,
                    labels,
                    "INTERACTIVE",
                    0 if rng.random() < 0.7 else 1,
                ),
                team,
                tuple(own + [int(e) for e in extra]),
                float(rng.lognormal(0.0, 0.7)),
                float(rng.choice([0.0, 0.05, 0.9])),
                float(rng.choice([0.0, 0.1, 0.4])),
                float(rng.choice([0.05, 0.3, 0.7])),
            )
        )
    return tuple(out)


@dataclass
class TemplatePool:
    """Analyst templates, grouped by family, with a popularity weight each."""

    templates: list[QueryTemplate] = field(default_factory=list)
    family: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)


def _analyst_template(fam: Family, index: int, rng: np.random.Generator) -> QueryTemplate:
    alias = {"risk.positions": "p", "finance.transactions": "t", "risk.exposures": "e"}
    a = alias.get(fam.table, "x") if fam.join else ""
    is_lookup = not fam.measures
    k = (
        int(rng.integers(1, min(4, len(fam.dims)) + 1))
        if not is_lookup
        else int(rng.integers(3, len(fam.dims) + 1))
    )
    dims = [fam.dims[i] for i in rng.permutation(len(fam.dims))[:k]]
    measures: list[tuple[str, str]] = []
    if not is_lookup:
        m = int(rng.integers(1, min(3, len(fam.measures)) + 1))
        measures = [fam.measures[i] for i in rng.permutation(len(fam.measures))[:m]]
    extra = None
    if fam.extras and rng.random() < 0.6:
        extra = fam.extras[int(rng.integers(len(fam.extras)))]
    style = int(rng.integers(0, 2))
    table_ref = fq(fam.table) if style == 0 else f"`{DWH}`.{fam.table}"
    select_items = list(dims)
    for n, (expr, _col) in enumerate(measures):
        name = expr.split("(")[0].lower()
        select_items.append(f"{expr} AS {name}_{n + 1}")
    lines = ["SELECT " + ",\n  ".join(select_items)]
    lines.append(f"FROM {table_ref}" + (f" AS {a}" if a else ""))
    joined = tuple(f"{j}." for j in _JOIN_ALIAS.values())
    reads_cols = {d.split(".")[-1] for d in dims if not d.startswith(joined)}
    reads_cols |= {c for _e, c in measures if c}
    reads_cols |= set(fam.where_columns)
    join_read: Read | None = None
    if fam.join is not None:
        jt, on, jcols = fam.join
        ja = _JOIN_ALIAS[jt]
        lines.append(f"JOIN {fq(jt)} AS {ja} ON {on}")
        join_read = Read(jt, jcols, "full")
    where = fam.where
    prune = 1.0
    if extra is not None:
        where += f"\n  AND {extra[0]}"
        reads_cols |= set(extra[1])
        prune = extra[2]
    lines.append(f"WHERE {where}")
    if not is_lookup:
        lines.append("GROUP BY " + ", ".join(dims))
        if rng.random() < 0.5:
            lines.append(f"ORDER BY {select_items[len(dims)].split(' AS ')[-1]} DESC")
            lines.append(f"LIMIT {int(rng.choice([10, 20, 50, 100, 1000]))}")
    else:
        lines.append(f"ORDER BY {dims[0]} DESC")
        lines.append("LIMIT 200")
    text = "\n".join(lines)
    statement = "SELECT"
    destination = None
    if rng.random() < 0.05:
        dest = f"acme-analytics.scratch.{fam.key}_{index}"
        text = f"CREATE OR REPLACE TABLE `{dest}` AS\n{text}"
        statement = "CREATE_TABLE_AS_SELECT"
        destination = dest
    base_prune = 0.02 if fam.key == "txn_customer" else 1.0
    if fam.key == "positions_portfolio":
        base_prune = 0.05
    scope = fam.scope
    in_list = fam.in_list if "{in}" in text else None
    reads = [Read(fam.table, tuple(sorted(reads_cols)), scope, base_prune * prune)]
    if join_read is not None:
        reads.append(join_read)
    return QueryTemplate(
        f"{fam.key}.{index}",
        text,
        statement,
        tuple(reads),
        destination=destination,
        slot_ms_per_gib=fam.slot_ms_per_gib,
        span=fam.span,
        lag=fam.lag,
        ids=fam.ids,
        amounts=fam.amounts,
        choices=fam.choices,
        in_list=in_list,
        cacheable=statement == "SELECT",
    )


def analyst_templates(rng: np.random.Generator) -> TemplatePool:
    """A few thousand distinct analyst templates, with Zipf-like popularity within each family."""
    pool = TemplatePool()
    seen: set[str] = set()
    for f_index, fam in enumerate(families()):
        made = 0
        for n in range(fam.variants * 3):
            if made >= fam.variants:
                break
            template = _analyst_template(fam, n, rng)
            if template.template in seen or template.template is None:
                continue
            seen.add(template.template)
            made += 1
            pool.templates.append(template)
            pool.family.append(f_index)
            pool.weight.append(1.0 / (made**0.9))
    return pool
