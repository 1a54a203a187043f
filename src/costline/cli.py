"""The ``costline`` command line: thin wrappers that parse input, call the public functions a
Python user would call, and format their results. No traceback ever reaches the user: a
:class:`CostlineError` is printed as a message (exit 2), anything else as an internal error
(exit 70) unless ``COSTLINE_DEBUG=1`` asks for the traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressBar

from costline.core.errors import CostlineError
from costline.core.files import check_writable, discard_pending, write_text
from costline.core.prices import Edition, default_prices_text, load_prices
from costline.core.progress import Progress
from costline.warehouse.catalog_read import load_catalog

app = typer.Typer(
    name="costline",
    help="Cloud cost as an architectural property: profile, diagnose and guard warehouse spend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="The embedded demo workspace.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
merge_app = typer.Typer(
    help="Rewrite a full-table MERGE into a partition-scoped one, and prove it.",
    no_args_is_help=True,
)
app.add_typer(merge_app, name="merge")

out = Console()
err = Console(stderr=True)


class OutputFormat(StrEnum):
    """Output formats of analysis commands."""

    text = "text"
    json = "json"
    html = "html"


PricesOption = Annotated[
    Path | None,
    typer.Option("--prices", help="Price catalogue (TOML/JSON) merged over the packaged one."),
]


class EpochUnitChoice(StrEnum):
    """How a time written as a number is read."""

    auto = "auto"
    s = "s"
    ms = "ms"
    us = "us"
    ns = "ns"


EpochUnitOption = Annotated[
    EpochUnitChoice,
    typer.Option(
        "--epoch-unit",
        help="Times written as epoch numbers are in s, ms, us or ns (auto: told from the "
        "number of digits).",
    ),
]
CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="Table catalogue: a costline catalog.json, a dbt manifest.json or project"
        " directory, or a directory of metadata.yaml files.",
    ),
]


def _checked_output(value: Path | None) -> Path | None:
    """An ``--output`` path, refused at parse time (before any work) when it cannot be written."""
    if value is not None and str(value) != "-":
        try:
            check_writable(value)
        except CostlineError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write here.", callback=_checked_output),
]


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Progress]:
    """A progress bar on stderr for long steps; silent when stderr is not a terminal."""
    if not enabled or not err.is_terminal:
        yield lambda _name, _done: None
        return
    with ProgressBar(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def update(name: str, done: float) -> None:
            bar.update(task, description=name, completed=done)

        yield update


def _write_or_print(text: str, output: Path | None) -> None:
    if output is None or str(output) == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    write_text(output, text)
    err.print(f"wrote {output}")


def _html_output(fmt: OutputFormat, output: Path | None, default: str) -> Path | None:
    """Where the output goes (an HTML report has a default file), checked before any work."""
    if fmt is not OutputFormat.html:
        return output
    path = output or Path(default)
    check_writable(path)
    return path


def _report_rejections(rejected: int, read: int, shown: list[str], strict: bool) -> None:
    if not rejected:
        return
    err.print(
        f"[yellow]{rejected:,} of {read:,} rows rejected[/] (the rest were analysed):",
        highlight=False,
    )
    for line in shown[:10]:
        err.print(f"  {line}", highlight=False, markup=False)
    if rejected > 10:
        kept = min(len(shown), rejected)
        err.print(
            f"  ... and {rejected - 10:,} more; --format json lists the first {kept:,}",
            highlight=False,
        )
    if strict:
        raise CostlineError(f"{rejected:,} rows rejected and --strict is set")


@app.command()
def profile(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Job-history files (INFORMATION_SCHEMA.JOBS as .jsonl/.csv/.parquet)."),
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    output: OutputOption = None,
    prices: PricesOption = None,
    catalog: CatalogOption = None,
    edition: Annotated[
        str, typer.Option(help="Edition of reservation jobs whose history does not say.")
    ] = "enterprise",
    team_label: Annotated[str, typer.Option(help="Label key that names the owning team.")] = "team",
    strict: Annotated[bool, typer.Option(help="Exit non-zero if any row is rejected.")] = False,
    top: Annotated[int, typer.Option(help="Patterns shown in the text output.")] = 15,
    bigquery: Annotated[
        str | None, typer.Option("--bigquery", help="Read live from this BigQuery project.")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="BigQuery location of the jobs (us, eu, europe-west2, ...): its prices, and "
            "the jobs view of a live read. Default: the catalogue's (US)."
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="Live read: how many days back.")] = 90,
    reservations_timeline: Annotated[
        Path | None,
        typer.Option(
            "--reservations-timeline",
            help="An INFORMATION_SCHEMA.RESERVATIONS_TIMELINE export: reservations billed "
            "from it (the rest simulated from the jobs).",
        ),
    ] = None,
    reservations: Annotated[
        Path | None,
        typer.Option(
            "--reservations",
            help='TOML/JSON of reservation setups ([reservations."ID"]: edition, '
            "baseline_slots, max_slots, commitment_slots, commitment_term, fluid).",
        ),
    ] = None,
    fluid: Annotated[
        bool,
        typer.Option("--fluid", help="Simulate autoscaling as fluid scaling (no 1-min minimum)."),
    ] = False,
    epoch_unit: EpochUnitOption = EpochUnitChoice.auto,
) -> None:
    """Profile a job history: cost per query pattern, attribution, Pareto, table access.

    Capacity work is billed per reservation (allocated slots) and attributed to its jobs by
    slot time; on-demand work is billed per job."""
    output = _html_output(fmt, output, "profile.html")
    from costline import api
    from costline.report.html import render_profile_html
    from costline.warehouse.billing import load_setups

    # Every option is checked before the history is read.
    price_list = load_prices(prices)
    price_list.for_region(region)
    Edition.parse(edition)
    tables = load_catalog(catalog) if catalog else None
    setups = load_setups(reservations) if reservations else None
    if reservations_timeline is not None and not reservations_timeline.is_file():
        raise CostlineError(f"{reservations_timeline}: no such reservations timeline file")
    if bigquery:
        history = api.read_bigquery_history(bigquery, region=region or "us", days=days)
        for note in history.notes:
            err.print(f"[yellow]warning:[/] {escape(note)}", highlight=False)
    elif paths:
        history = api.read_history(paths, epoch_unit=epoch_unit.value)
    else:
        raise CostlineError("give job-history files, or --bigquery PROJECT to read live")
    with _progress() as step:
        result = api.profile(
            history,
            catalog=tables,
            prices=price_list,
            region=region,
            edition=edition,
            team_label=team_label,
            reservations_timeline=reservations_timeline,
            reservations=setups,
            fluid=fluid,
            progress=step,
        )
    _report_rejections(
        result.rejected_count, result.read, [str(r) for r in result.rejected], strict
    )
    if fmt is OutputFormat.json:
        _write_or_print(result.model_dump_json(indent=2), output)
    elif fmt is OutputFormat.html:
        _write_or_print(render_profile_html(result), output)
    else:
        from costline.report.text import print_profile

        print_profile(out, result, top=top)


@app.command()
def capacity(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Job-history files; default: the demo workspace's history."),
    ] = None,
    timeline: Annotated[
        Path | None,
        typer.Option("--timeline", help="An INFORMATION_SCHEMA.JOBS_TIMELINE export instead."),
    ] = None,
    edition: Annotated[
        list[str] | None, typer.Option("--edition", help="Only this edition (repeatable).")
    ] = None,
    max_slots: Annotated[
        int | None, typer.Option("--max-slots", help="Max reservation size (queue above it).")
    ] = None,
    growth: Annotated[
        str | None, typer.Option("--growth", help="What-if load change, e.g. 20% or -10%.")
    ] = None,
    resolution: Annotated[str, typer.Option(help="Bucket width: 1s (exact) to 1m.")] = "1s",
    idle_sharing: Annotated[
        bool,
        typer.Option(
            "--idle-sharing/--no-idle-sharing",
            help="--no-idle-sharing also prices each reservation with its own commitment.",
        ),
    ] = True,
    fluid: Annotated[
        bool,
        typer.Option(
            "--fluid",
            help="Price autoscaling with fluid scaling: second by second, no one-minute minimum.",
        ),
    ] = False,
    spend_based: Annotated[
        bool,
        typer.Option(
            "--spend-based",
            help="Also price autoscaling under a spend-based committed use discount (1y, 3y).",
        ),
    ] = False,
    region: Annotated[
        str | None,
        typer.Option(help="BigQuery location whose prices apply (us, eu, ...). Default: US."),
    ] = None,
    queue_tolerance: Annotated[
        float,
        typer.Option(
            "--queue-tolerance",
            help="Hours of the period work may wait under a plan's cap and the plan still be best.",
        ),
    ] = 0.0,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    output: OutputOption = None,
    prices: PricesOption = None,
    epoch_unit: EpochUnitOption = EpochUnitChoice.auto,
) -> None:
    """Price the workload's slots on demand, autoscaled, committed and hybrid; find the optimum."""
    output = _html_output(fmt, output, "capacity.html")
    from costline import api
    from costline.report.capacity import print_capacity, render_capacity_html
    from costline.warehouse.slots import check_queue_tolerance, parse_growth, parse_resolution

    # Every option is checked before the usage is read.
    load_prices(prices).for_region(region)
    parse_resolution(resolution)
    check_queue_tolerance(queue_tolerance)
    for e in edition or ():
        Edition.parse(e)
    what_if = parse_growth(growth) if growth is not None else None
    if timeline is not None and paths:
        raise CostlineError("give job-history files or --timeline FILE, not both")
    if timeline is None and not paths:
        from costline.auditor import workspace_history

        paths = workspace_history(_demo_workspace())
    with _progress() as step:
        result = api.capacity(
            api.read_history(paths, epoch_unit=epoch_unit.value) if paths else None,
            timeline=timeline,
            prices=load_prices(prices),
            region=region,
            resolution=resolution,
            editions=edition,
            max_slots=max_slots,
            growth=what_if,
            idle_sharing=idle_sharing,
            fluid=fluid,
            spend_based=spend_based,
            queue_tolerance_hours=queue_tolerance,
            progress=step,
        )
    _report_rejections(result.rejected, result.rows, [str(p) for p in result.problems], False)
    if fmt is OutputFormat.json:
        _write_or_print(result.model_dump_json(indent=2), output)
    elif fmt is OutputFormat.html:
        _write_or_print(render_capacity_html(result), output)
    else:
        print_capacity(out, result)


@demo_app.command("init")
def demo_init(
    directory: Annotated[Path, typer.Argument(help="Where to build the workspace.")],
    jobs: Annotated[int, typer.Option(help="Jobs in the 90-day history.", min=1_000)] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same workspace).")] = 7,
    scale: Annotated[
        float, typer.Option(help="Scale of the local table copies.", min=0.001, max=1.0)
    ] = 1.0,
    force: Annotated[
        bool, typer.Option("--force", help="Replace DIRECTORY if it is not empty.")
    ] = False,
) -> None:
    """Build the demo workspace: tables, catalogue, job history and ground truth.

    The workspace is built beside DIRECTORY and moved into place when complete."""
    from costline import api
    from costline.core.files import prepare_directory

    prepare_directory(directory.resolve(), replace=force, what="workspace directory")
    with _progress() as step:
        ws = api.Workspace.build(
            directory, jobs=jobs, seed=seed, scale=scale, replace=force, progress=step
        )
    out.print(f"demo workspace ready in [bold]{ws.root}[/]")
    out.print(f"  job history   {ws.jobs}")
    out.print(f"  catalogue     {ws.catalog}")
    out.print(f"  ground truth  {ws.ground_truth}")


def _demo_workspace() -> Path:
    """The cached demo workspace, built the first time with a progress bar."""
    from costline import api
    from costline.demo.workspace import default_workspace_dir

    directory = default_workspace_dir()
    if not (directory / "workspace.json").is_file():
        err.print(f"building the demo workspace in {directory} (once) ...")
        with _progress() as step:
            return api.Workspace.demo(directory, progress=step).root
    return api.Workspace.open(directory).root


@app.command()
def audit(
    directory: Annotated[
        Path | None,
        typer.Argument(help="A workspace (catalog.json + jobs.*); default: the demo workspace."),
    ] = None,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The HTML report.", callback=_checked_output),
    ] = Path("report.html"),
    prices: PricesOption = None,
    top: Annotated[int, typer.Option(help="Cost drivers shown.", min=1)] = 10,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when a section is skipped or a row rejected.")
    ] = False,
    bigquery: Annotated[
        str | None,
        typer.Option(
            "--bigquery",
            help="Audit this BigQuery project live: its job history and table catalogue are "
            "read into --workspace first.",
        ),
    ] = None,
    region: Annotated[
        str, typer.Option(help="With --bigquery: the region of the jobs and datasets.")
    ] = "us",
    days: Annotated[int, typer.Option(help="With --bigquery: days of history.", min=1)] = 90,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="With --bigquery: the new workspace directory to fill."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --bigquery: replace a non-empty --workspace.")
    ] = False,
) -> None:
    """Run every analysis on a workspace and write one self-contained HTML report."""
    from costline import api
    from costline.core.files import prepare_directory
    from costline.report.html import render_audit_html
    from costline.report.text import print_audit

    price_list = load_prices(prices)
    if bigquery is not None:
        if directory is not None:
            raise CostlineError("give a workspace directory or --bigquery PROJECT, not both")
        target = (workspace or Path(f"{bigquery}-{region}")).resolve()
        prepare_directory(target, replace=force, what="workspace directory")
        err.print(f"reading {bigquery} (region {region}, {days} days) into {target} ...")
        live = api.read_bigquery_workspace(
            bigquery, target, region=region, days=days, replace=force
        )
        err.print(f"  {live.jobs:,} jobs, {live.tables:,} tables", highlight=False)
        for note in live.notes:
            err.print(f"[yellow]warning:[/] {escape(note)}", highlight=False)
        directory = live.root
    elif workspace is not None:
        raise CostlineError("--workspace is for --bigquery; give the workspace as the argument")
    if directory is None:
        directory = _demo_workspace()
    with _progress() as step:
        result = api.audit(directory, prices=price_list, progress=step)
    write_text(output, render_audit_html(result))
    print_audit(out, result, top=top)
    for skipped in result.skipped:
        err.print(
            f"[yellow]skipped {skipped.section}:[/] {escape(skipped.reason)}", highlight=False
        )
    out.print(f"\nreport: [bold]{output}[/]")
    rejected = result.profile.rejected_count
    if strict and (result.skipped or rejected):
        what = [f"{len(result.skipped)} sections skipped"] if result.skipped else []
        what += [f"{rejected:,} rows rejected"] if rejected else []
        err.print(f"[red]--strict:[/] {' and '.join(what)}", highlight=False)
        raise typer.Exit(1)


def _workspace_or_demo(directory: Path | None) -> Path:
    """``directory``, or the cached demo workspace (built once, as ``costline audit`` does)."""
    if directory is not None:
        if not (directory / "tables" / "core_banking" / "customers").is_dir():
            raise CostlineError(f"{directory}: no bank tables (tables/core_banking/customers)")
        return directory
    return _demo_workspace()


def _tier_model(text: str) -> tuple[str, str]:
    tier, sep, name = text.partition("=")
    if not sep or not tier.strip() or not name.strip():
        raise CostlineError(f"--model {text!r}: expected TIER=MODEL, e.g. small=gpt-4o-mini")
    return tier.strip(), name.strip()


@app.command()
def serve(
    workspace: Annotated[
        Path | None, typer.Argument(help="A demo workspace; default: the cached demo.")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    redis: Annotated[
        str | None, typer.Option("--redis", help="Share budgets through Redis (redis://...).")
    ] = None,
    tenants: Annotated[
        Path | None, typer.Option("--tenants", help="Tenants file (default: demo tenants).")
    ] = None,
    ledger_dir: Annotated[
        Path | None, typer.Option(help="Append every cost event to DIR/ledger-<pid>.jsonl.")
    ] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.", min=256)] = 16384,
    allow_faults: Annotated[
        bool, typer.Option(help="Honour X-Costline-Faults (load tests only).")
    ] = False,
    llm_base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (default: offline provider).")
    ] = None,
    llm_api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the endpoint's API key.")
    ] = None,
    llm_provider: Annotated[str, typer.Option(help="Provider name reported in telemetry.")] = (
        "openai"
    ),
    model: Annotated[
        list[str] | None,
        typer.Option(help="TIER=MODEL (premium, mid, small), repeatable; catalogue names."),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (JSON lines; query values masked).")
    ] = False,
    docs: Annotated[
        bool, typer.Option(help="Serve /docs (Swagger UI: the page loads it from a public CDN).")
    ] = False,
    metrics_token: Annotated[
        str | None,
        typer.Option(
            envvar="COSTLINE_METRICS_TOKEN",
            help="Require Authorization: Bearer TOKEN on /metrics (16 characters or more).",
            show_envvar=True,
        ),
    ] = None,
    failed_auth_limit: Annotated[
        int, typer.Option(help="Failed logins per client address and window, then 429.", min=1)
    ] = 10,
    failed_auth_window: Annotated[
        float, typer.Option(help="Seconds of the failed-login window.", min=1.0)
    ] = 60.0,
    per_worker_budgets: Annotated[
        bool,
        typer.Option(help="--workers > 1 without --redis: each worker keeps its own budgets."),
    ] = False,
    restart_limit: Annotated[
        int,
        typer.Option(help="Stop when workers restart this often within --restart-window.", min=1),
    ] = 5,
    restart_window: Annotated[
        float, typer.Option(help="Seconds over which --restart-limit counts restarts.", min=1.0)
    ] = 60.0,
    budget_outage: Annotated[
        str,
        typer.Option(
            help="While Redis is unreachable: 'refuse' every LLM call (fallback answers) or "
            "serve the 'free-tier' only; paid calls are never made unbudgeted."
        ),
    ] = "refuse",
) -> None:
    """Serve the financial assistant over HTTP (POST /v1/assist, /healthz, /metrics).

    Logs are JSON lines on stderr. Spans are exported over OTLP/HTTP when
    OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the other
    standard OTEL_EXPORTER_OTLP_* variables (headers, timeout, certificate) apply. Without
    --tenants the demo keys are served, on a loopback --host only.
    """
    from costline.core.budgets import BudgetOutage
    from costline.service.app import ServerSettings, tenants_for

    try:
        outage = BudgetOutage(budget_outage)
    except ValueError:
        known = ", ".join(o.value for o in BudgetOutage)
        raise CostlineError(f"--budget-outage {budget_outage}: use one of {known}") from None
    if metrics_token is not None and len(metrics_token) < 16:
        raise CostlineError("--metrics-token: use 16 characters or more (a random token)")
    from costline.service.workers import serve as run_server

    settings = ServerSettings(
        workspace=_workspace_or_demo(workspace),
        host=host,
        port=port,
        workers=workers,
        redis_url=redis,
        tenants_file=tenants,
        ledger_dir=ledger_dir,
        max_body_bytes=max_body_bytes,
        allow_faults=allow_faults,
        llm_base_url=llm_base_url,
        llm_api_key_env=llm_api_key_env,
        llm_provider_name=llm_provider,
        models=dict(_tier_model(m) for m in model or []),
        access_log=access_log,
        docs=docs,
        metrics_token=metrics_token,
        failed_auth_limit=failed_auth_limit,
        failed_auth_window_s=failed_auth_window,
        per_worker_budgets=per_worker_budgets,
        restart_limit=restart_limit,
        restart_window_s=restart_window,
        budget_outage=outage,
    )
    if tenants is None:
        names = ", ".join(tenants_for(settings).tenants)
        err.print(
            f"demo tenants: {names}; API key demo-key-<tenant>", highlight=False, soft_wrap=True
        )
    run_server(settings)


@app.command()
def loadtest(
    url: Annotated[
        str | None, typer.Option(help="A running service (default with --spawn: start one).")
    ] = None,
    spawn: Annotated[bool, typer.Option(help="Start the service, and stop it after.")] = False,
    workspace: Annotated[
        Path | None, typer.Option(help="Workspace the mix draws customers from (default: demo).")
    ] = None,
    requests: Annotated[int, typer.Option(help="At most this many requests.", min=1)] = 2000,
    duration: Annotated[float, typer.Option(help="At most this many seconds.", min=0.1)] = 30.0,
    concurrency: Annotated[int, typer.Option(help="Concurrent connections.", min=1)] = 32,
    rate: Annotated[
        float | None, typer.Option(help="Open loop: requests started per second.")
    ] = None,
    workers: Annotated[int, typer.Option(help="--spawn: worker processes.", min=1)] = 2,
    redis: Annotated[
        bool, typer.Option("--redis", help="--spawn: share budgets through a redis-server.")
    ] = False,
    faults: Annotated[
        str | None,
        typer.Option(help="e.g. slow-risk=0.3,failing-recommender=0.1,provider-429=0.05,..."),
    ] = None,
    tenant_budget_usd: Annotated[
        float | None, typer.Option(help="--spawn: every tenant's daily budget (USD).")
    ] = None,
    ledger_dir: Annotated[
        Path | None, typer.Option(help="A running service's --ledger-dir (budget check).")
    ] = None,
    tenants: Annotated[
        Path | None, typer.Option("--tenants", help="The running service's tenants file.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the request mix.")] = 7,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Drive the service with a realistic mix and injected faults; report latency and cost."""
    from costline.service.faults import HARNESS_FAULTS, REDIS_FAULTS, REDIS_KILL, parse_faults
    from costline.service.loadtest import (
        LoadConfig,
        daily_budget,
        render_loadtest_text,
        request_mix,
        run_load,
        spawned_service,
        workspace_mix,
    )
    from costline.service.tenants import load_tenants

    spec = parse_faults(faults)
    ws = _workspace_or_demo(workspace)
    mix = workspace_mix(ws, request_mix())

    def say(message: str) -> None:
        if not json_out:
            err.print(message, highlight=False)

    if spawn:
        if url is not None:
            raise CostlineError("give --url or --spawn, not both")
        for name in REDIS_FAULTS:
            if name in spec and not redis:
                raise CostlineError(f"the {name} fault needs --redis")
        budget = daily_budget(tenant_budget_usd) if tenant_budget_usd is not None else None
        # redis-kill tests a Redis that keeps nothing: the budgets must come from the ledger.
        persistent = REDIS_KILL not in spec
        say(f"starting the service ({workers} workers{', redis' if redis else ''}"
            f"{' without persistence' if redis and not persistent else ''}) ...")  # fmt: skip
        with spawned_service(
            ws, workers=workers, redis=redis, redis_persistent=persistent, tenant_budget=budget
        ) as svc:
            config = LoadConfig(
                base_url=svc.base_url, requests=requests, duration_s=duration,
                concurrency=concurrency, rate_per_s=rate, seed=seed, faults=spec,
            )  # fmt: skip
            say(f"driving {svc.base_url} ...")
            report = run_load(
                config, mix, ledger_dir=svc.ledger_dir, tenants=svc.tenants, redis=svc.redis,
                on_progress=say, worker_pids=svc.worker_pids,
            )  # fmt: skip
    else:
        if url is None:
            raise CostlineError("give --url of a running service, or --spawn")
        for name in HARNESS_FAULTS:
            if name in spec:
                raise CostlineError(f"the {name} fault needs --spawn (the harness owns it)")
        config = LoadConfig(
            base_url=url, requests=requests, duration_s=duration, concurrency=concurrency,
            rate_per_s=rate, seed=seed, faults=spec,
        )  # fmt: skip
        report = run_load(
            config, mix, ledger_dir=ledger_dir,
            tenants=load_tenants(tenants) if tenants else None,
        )  # fmt: skip
    if json_out:
        sys.stdout.write(report.model_dump_json() + "\n")
    else:
        sys.stdout.write(render_loadtest_text(report))


class MergeStrategyOption(StrEnum):
    """``--strategy`` of ``costline merge rewrite``."""

    merge = "merge"
    insert_overwrite = "insert-overwrite"


class ProofFormat(StrEnum):
    """Output formats of ``costline merge prove``."""

    text = "text"
    json = "json"


def _merge_catalog(catalog: Path | None, demo: bool) -> Path | None:
    """The catalogue ``merge rewrite`` reads: ``--catalog``, the demo workspace's with
    ``--demo``, else ``./catalog.json`` when there is one."""
    if catalog is not None and demo:
        raise CostlineError("give --catalog or --demo, not both")
    if demo:
        from costline.demo.workspace import default_workspace_dir

        path = default_workspace_dir() / "catalog.json"
        if not path.is_file():
            raise CostlineError(
                f"the demo workspace is not built ({path} missing): run `costline demo init`"
            )
        return path
    if catalog is not None:
        return catalog
    here = Path("catalog.json")
    return here if here.is_file() else None


@merge_app.command("rewrite")
def merge_rewrite(
    file: Annotated[
        Path, typer.Argument(help="A file holding one BigQuery MERGE (alone or within a script).")
    ],
    catalog: CatalogOption = None,
    strategy: Annotated[
        MergeStrategyOption, typer.Option(help="merge: scoped MERGE; insert-overwrite: dbt-style.")
    ] = MergeStrategyOption.merge,
    partition_column: Annotated[
        str | None, typer.Option(help="The target's partition column (overrides the catalogue).")
    ] = None,
    partition_type: Annotated[
        str | None,
        typer.Option(
            help="Its type: DATE, TIMESTAMP, DATETIME or INT64; time types may add"
            " :HOUR/:DAY/:MONTH/:YEAR (default DAY)."
        ),
    ] = None,
    scope_by_source: Annotated[
        bool,
        typer.Option(help="Scope WHEN NOT MATCHED BY SOURCE branches to the affected partitions."),
    ] = False,
    complete_partitions: Annotated[
        bool,
        typer.Option(
            help="State that each batch holds the complete content of every partition it"
            " touches (required by --strategy insert-overwrite, which deletes the rest)."
        ),
    ] = False,
    demo: Annotated[
        bool, typer.Option(help="Use the demo workspace's catalogue (its tables only).")
    ] = False,
    fmt: Annotated[ProofFormat, typer.Option("--format", "-f")] = ProofFormat.text,
    output: OutputOption = None,
) -> None:
    """Rewrite a full-table MERGE into an idempotent, partition-scoped BigQuery script."""
    from costline import api
    from costline.report.merge import print_merge_checks

    catalog_path = _merge_catalog(catalog, demo)
    if partition_column is not None:
        err.print("partitioning: from --partition-column", highlight=False)
    elif catalog_path is not None:
        err.print(f"catalogue: {catalog_path}", highlight=False)
    result = api.rewrite_merge(
        file,
        catalog=catalog_path,
        partition_column=partition_column,
        partition_type=partition_type,
        strategy=strategy.value,
        scope_by_source=scope_by_source,
        complete_partitions=complete_partitions,
    )
    if fmt is ProofFormat.json:
        payload = result.model_dump(mode="json") | {"refused": result.refused}
        _write_or_print(json.dumps(payload, indent=2), output)
    else:
        print_merge_checks(err, result)
        if result.script is not None:
            _write_or_print(result.script, output)
    if result.refused:
        err.print(
            f"[bold red]refused:[/] {result.refusals[0].code}: the rewrite would not be"
            " equivalent; no script written",
            highlight=False,
        )
        raise typer.Exit(1)


@merge_app.command("prove")
def merge_prove(
    workspace: Annotated[
        Path | None,
        typer.Option(help="Workspace with catalog.json (default: the demo workspace)."),
    ] = None,
    statement: Annotated[
        Path | None,
        typer.Option(help="The MERGE to prove (default: the workspace's full-table MERGE)."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Rows of the generated target table.", min=1)] = (
        10_000_000
    ),
    partitions: Annotated[
        int, typer.Option(help="Daily partitions of the target table.", min=1)
    ] = 365,
    fmt: Annotated[ProofFormat, typer.Option("--format", "-f")] = ProofFormat.text,
) -> None:
    """Run the original and the rewritten MERGE on a local Delta table; compare I/O and result."""
    from costline import api
    from costline.report.merge import print_merge_proof

    if workspace is None:
        workspace = _demo_workspace()
    with _progress() as step:
        proof = api.prove_merge(
            workspace, statement=statement, rows=rows, partitions=partitions, progress=step
        )
    if fmt is ProofFormat.json:
        sys.stdout.write(proof.model_dump_json(indent=2) + "\n")
    else:
        print_merge_proof(out, proof)
    if not proof.identical:
        raise typer.Exit(1)


class LintFormat(StrEnum):
    """Output formats of ``costline lint``."""

    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


class FailOn(StrEnum):
    """Severity from which ``costline lint`` exits 1."""

    info = "info"
    warning = "warning"
    error = "error"
    never = "never"


def _codes(value: str | None) -> list[str] | None:
    return [c for c in value.replace(" ", ",").split(",") if c] if value else None


@app.command()
def lint(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="SQL files or directories (walked for *.sql).")
    ] = None,
    catalog: CatalogOption = None,
    history: Annotated[
        list[Path] | None,
        typer.Option(
            "--history",
            help="Lint a job history's query patterns, ranked by cost (the catalog.json "
            "beside it is used unless --catalog says otherwise).",
        ),
    ] = None,
    select: Annotated[
        str | None, typer.Option(help="Rule codes or prefixes to run (CL001,CL01).")
    ] = None,
    ignore: Annotated[str | None, typer.Option(help="Rule codes or prefixes to skip.")] = None,
    fmt: Annotated[LintFormat, typer.Option("--format", "-f")] = LintFormat.text,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(help="Exit 1 if a finding this severe (or an unparseable file) exists."),
    ] = None,
    dialect: Annotated[
        str | None, typer.Option(help="SQL dialect (sqlglot name); default bigquery.")
    ] = None,
    output: OutputOption = None,
    prices: PricesOption = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=1, help="Worker processes linting files (default: one per CPU)."
        ),
    ] = None,
    min_severity: Annotated[
        FailOn | None,
        typer.Option(
            "--min-severity", help="Show only findings this severe (info shows everything)."
        ),
    ] = None,
) -> None:
    """Find SQL anti-patterns that cost money (rules: `costline rules`)."""
    from costline import api
    from costline.report.lint import (
        render_lint_github,
        render_lint_json,
        render_lint_sarif,
        render_lint_text,
    )
    from costline.warehouse.linter import Severity, find_config

    config = find_config(Path.cwd())
    updates: dict[str, object] = {}
    if (chosen := _codes(select)) is not None:
        updates["select"] = tuple(chosen)
    if (skipped := _codes(ignore)) is not None:
        updates["ignore"] = (*config.ignore, *skipped)
    if dialect:
        updates["dialect"] = dialect
    config = config.model_copy(update=updates)
    catalog_path = catalog or (
        Path(config.root or ".") / config.catalog if config.catalog else None
    )
    if catalog_path is None and history and (history[0].parent / "catalog.json").is_file():
        catalog_path = history[0].parent / "catalog.json"  # a workspace's own catalogue
    tables = load_catalog(catalog_path) if catalog_path else None
    if tables is not None and tables.problems:
        err.print(
            f"catalogue {catalog_path}: {len(tables.problems)} entr"
            f"{'y' if len(tables.problems) == 1 else 'ies'} could not be read, e.g."
            f" {tables.problems[0]}",
            highlight=False,
        )
    if not history and not paths:
        raise CostlineError("give SQL files or directories, or --history JOBS")
    with _progress() as step:
        result = api.lint(
            None if history else paths,
            history=history or None,
            catalog=tables,
            config=config,
            prices=load_prices(prices),
            jobs=jobs,
            progress=step,
        )
    threshold = fail_on.value if fail_on else (config.fail_on.value if config.fail_on else None)
    failing = threshold not in (None, FailOn.never.value) and bool(
        result.at_or_above(Severity(threshold)) or result.errors
    )
    if min_severity is not None and min_severity is not FailOn.never:
        floor = Severity(min_severity.value)
        result = result.model_copy(update={"findings": result.at_or_above(floor)})
    quiet_notes = min_severity is not None and min_severity is not FailOn.info
    render = {
        LintFormat.text: lambda r: render_lint_text(r, list_skipped=not quiet_notes),
        LintFormat.json: render_lint_json,
        LintFormat.sarif: render_lint_sarif,
        LintFormat.github: render_lint_github,
    }[fmt]
    _write_or_print(render(result), output)
    if failing:
        raise typer.Exit(1)


@app.command("rules")
def rules_command(
    code: Annotated[
        str | None, typer.Argument(help="A rule code (CL001) or name; omit to list all.")
    ] = None,
) -> None:
    """List the lint rules, or explain one."""
    from costline.report.lint import render_rule_text, render_rules_text
    from costline.warehouse.rules import get_rule

    if code is None:
        sys.stdout.write(render_rules_text())
        return
    rule = get_rule(code)
    if rule is None:
        raise CostlineError(f"no rule {code!r}; `costline rules` lists them")
    sys.stdout.write(render_rule_text(rule))


@app.command()
def advise(
    source: Annotated[
        Path | None,
        typer.Argument(help="A job history file or a workspace directory; default: the demo."),
    ] = None,
    catalog: CatalogOption = None,
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="Advise these tables only.")
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    output: OutputOption = None,
    top: Annotated[int, typer.Option(help="Costliest tables advised.", min=1)] = 6,
    prove: Annotated[
        int, typer.Option(help="Measure this many changed tables on their local copy.", min=0)
    ] = 1,
    prices: PricesOption = None,
) -> None:
    """Partitioning and clustering per table, with the saving replayed from the history."""
    output = _html_output(fmt, output, "advice.html")
    from costline import api
    from costline.auditor import workspace_history
    from costline.report.advise import render_advice_html, render_advice_text

    if source is None:
        source = _workspace_or_demo(None)
    if source.is_dir():
        files = workspace_history(source)
        catalog = catalog or (source / "catalog.json")
    elif source.is_file():
        files = [source]
    else:
        raise CostlineError(f"{source}: no such job-history file or workspace directory")
    if catalog is None or not catalog.is_file():
        raise CostlineError(
            "advise needs a table catalogue: --catalog FILE "
            "(`costline catalog --bigquery PROJECT -o catalog.json` fetches one)"
            + (f"; {catalog} does not exist" if catalog is not None else "")
        )
    with _progress() as step:
        advice = api.advise(
            files,
            catalog,
            prices=load_prices(prices),
            tables=table,
            top=top,
            prove=prove,
            progress=step,
        )
    if fmt is OutputFormat.json:
        _write_or_print(advice.model_dump_json(indent=2), output)
    elif fmt is OutputFormat.html:
        _write_or_print(render_advice_html(advice, history_days=advice.history_days), output)
    else:
        _write_or_print(render_advice_text(advice, history_days=advice.history_days), output)


@app.command("catalog")
def catalog_command(
    bigquery: Annotated[
        str, typer.Option("--bigquery", help="Read the catalogue of this BigQuery project.")
    ],
    region: Annotated[str, typer.Option(help="BigQuery region of the datasets.")] = "us",
    datasets: Annotated[
        list[str] | None, typer.Option("--datasets", help="Only these datasets.")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Catalogue file.")] = Path(
        "catalog.json"
    ),
) -> None:
    """Fetch the table catalogue (types, partitioning, clustering, sizes) from BigQuery."""
    from costline import api

    fetched = api.fetch_catalog(bigquery, region=region, datasets=datasets or ())
    api.save_catalog(fetched, output)
    err.print(f"wrote {output}: {len(fetched.tables)} tables")


@app.command("prices")
def show_prices(
    sources: Annotated[
        bool,
        typer.Option(
            "--sources",
            help="Print BigQuery's billing rules and limits instead, each with its "
            "documentation page and the date it was checked.",
        ),
    ] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="With --sources: text or json.")
    ] = OutputFormat.text,
) -> None:
    """Print the packaged price catalogue (every entry with its source and date), or with
    ``--sources`` BigQuery's billing rules and limits with theirs."""
    from dataclasses import asdict

    from costline.core.billing_rules import RULES, BillingRule

    if fmt is OutputFormat.html:
        raise CostlineError("prices prints text or json, not html")
    if fmt is OutputFormat.json and not sources:
        raise CostlineError("--format json needs --sources (the catalogue itself is TOML)")
    if not sources:
        sys.stdout.write(default_prices_text())
        return
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps([asdict(r) for r in RULES], indent=2) + "\n")
        return

    def shown(rule: BillingRule) -> str:
        """The value with its unit: bytes in binary units where exact, text (a date, a zone)
        bare; ``--format json`` has the raw numbers."""
        value = rule.value
        if isinstance(value, str):
            return value
        if rule.unit == "bytes" and isinstance(value, int) and value:
            for shift, name in ((40, "TiB"), (30, "GiB"), (20, "MiB")):
                if value % (1 << shift) == 0:
                    return f"{value >> shift:,} {name}"
        unit = rule.unit.removesuffix("s") if value == 1 else rule.unit
        return f"{value:,} {unit}"

    # One rule a paragraph: a URL stays whole and copyable at any terminal width.
    out.print("[bold]BigQuery billing rules and limits[/] (value, rule, source, checked on)")
    for r in RULES:
        out.print(
            f"\n[bold]{r.key}[/] = {escape(shown(r))}\n  {escape(r.statement)}\n"
            f"  [dim]{escape(r.source)} ({r.as_of})[/dim]",
            highlight=False,
            soft_wrap=True,
        )


_interrupted = threading.Event()


def _on_interrupt(_signum: int, _frame: object) -> None:
    # Remembered, so that whatever a library makes of the interruption (DuckDB raises a
    # RuntimeError, typer an Exit(130)) it ends as an abort, not as an error.
    _interrupted.set()
    raise KeyboardInterrupt


def _abort() -> None:
    """Stop at once after Ctrl-C: outputs still being built are removed, nothing is waited for
    (worker threads in the middle of a DuckDB or Arrow call would finish their step, or abort
    the interpreter at exit)."""
    discard_pending(settle_s=0.1)
    err.print("aborted", highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _version(value: bool) -> None:
    if value:
        from costline import __version__

        out.print(f"costline {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Cloud cost as an architectural property: profile, diagnose and guard warehouse spend."""


def main() -> None:
    """Entry point: run the app, turning every error into a message and an exit code."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_interrupt)
    try:
        # Without standalone mode click returns a typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
        if _interrupted.is_set():
            _abort()
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except CostlineError as exc:
        if _interrupted.is_set():
            _abort()
        # a message may hold brackets (a TOML table, a JSON path): printed as text, not markup
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None
    except (typer.Abort, KeyboardInterrupt):
        _abort()
    except typer.Exit as exc:
        if _interrupted.is_set():
            _abort()
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:  # the last line of defence: never a traceback for a user
        if _interrupted.is_set():
            _abort()
        # Usage errors (click's, vendored by typer) know how to show themselves.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            raise SystemExit(code) from None
        if os.environ.get("COSTLINE_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
            "This is a bug in costline; rerun with COSTLINE_DEBUG=1 for the traceback.",
            highlight=False,
        )
        raise SystemExit(70) from None


if __name__ == "__main__":
    main()
