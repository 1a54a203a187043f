"""Terminal rendering of profiles and audits (rich). Renders values; computes nothing."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from costline.auditor import AuditResult
from costline.report.money import (
    over,
    per_year,
    span,
    usd,
    usd_over_and_per_year,
    usd_per_year_of,
)
from costline.warehouse.profiler import Profile


def size(n: float | None) -> str:
    """Bytes in binary units: ``1.5 TiB``."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def one_line(sql: str | None, width: int = 70) -> str:
    """A query squeezed onto one line for a table cell."""
    if not sql:
        return "-"
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _summary(console: Console, p: Profile) -> None:
    period = (
        f"{p.period.start:%Y-%m-%d} → {p.period.end:%Y-%m-%d} ({span(p.period.days)})"
        if p.period.start and p.period.end
        else "empty"
    )
    yearly = f"{usd_per_year_of(p.total_cost_usd, p.period.days)}; " if p.period.days else ""
    console.print(
        f"[bold]{p.jobs:,}[/] jobs ({p.rejected_count:,} rejected) over {period}: "
        f"[bold]{usd(p.total_cost_usd)}[/] "
        f"({yearly}on-demand {usd(p.on_demand_cost_usd)}, capacity {usd(p.capacity_cost_usd)} "
        f"billed), {size(p.total_bytes_billed)} billed",
        highlight=False,
    )
    console.print(
        f"{p.pareto.fingerprints_for_80pct:,} of {p.pareto.fingerprints:,} query patterns "
        f"({p.pareto.share_of_fingerprints_for_80pct:.1%}) make 80% of the cost",
        highlight=False,
    )
    _capacity(console, p)


def _capacity(console: Console, p: Profile) -> None:
    """Each reservation's bill beside what its jobs' slot time is worth; the notes."""
    cap = p.capacity
    if cap.reservations:
        t = Table(
            title="Reservations: billed (allocated slots) vs the jobs' slot time, "
            f"{over(p.period.days)}",
            title_justify="left",
        )
        t.add_column("reservation", no_wrap=True)
        for name in ("billed", "slot time", "allocated", "used", "from"):
            t.add_column(name, justify="right", no_wrap=True)
        for b in cap.reservations:
            t.add_row(
                b.reservation.rpartition(".")[2],  # admin-project:LOCATION.name
                usd(b.billed_usd),
                usd(b.slot_time_price_usd),
                f"{b.allocated_slot_hours:,.0f}",
                f"{b.used_slot_hours:,.0f}",
                "export" if b.basis == "timeline" else "model",
            )
        console.print(t)
        console.print(
            "Allocated and used in slot-hours; 'model' is the autoscaler simulated on the jobs, "
            "'export' the RESERVATIONS_TIMELINE. Capacity totals are billed; the cost of a "
            "capacity job, pattern, team or table is its attributed share of its reservation's "
            "bill, by slot time.",
            highlight=False,
        )
    for note in (*cap.notes, *p.notes):
        console.print(f"[dim]note:[/] {escape(note)}", highlight=False)


def print_profile(console: Console, p: Profile, *, top: int = 15) -> None:
    """The profile as terminal tables: summary, top patterns, teams, tables."""
    _summary(console, p)
    t = Table(title=f"Top query patterns by cost {over(p.period.days)}", title_justify="left")
    for name in ("#", "jobs", "billed", "cost", "share"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("pattern")
    for i, fp in enumerate(p.fingerprints[:top], 1):
        t.add_row(
            str(i),
            f"{fp.jobs:,}",
            size(fp.bytes_billed),
            usd(fp.cost_usd),
            f"{fp.share:.1%}",
            f"{fp.statement_type} {fp.id}\n{one_line(fp.example_query, 40)}",
        )
    console.print(t)
    teams = p.attribution.label.get(p.team_label, {})
    if teams:
        tt = Table(title=f"Cost by {p.team_label} {over(p.period.days)}", title_justify="left")
        tt.add_column(p.team_label)
        tt.add_column("cost", justify="right")
        tt.add_column("share", justify="right")
        for team, cost in teams.items():
            share = cost / p.total_cost_usd if p.total_cost_usd else 0.0
            tt.add_row(team, usd(cost), f"{share:.1%}")
        console.print(tt)
    tb = Table(title=f"Top tables by attributed cost {over(p.period.days)}", title_justify="left")
    tb.add_column("table and layout")
    tb.add_column("jobs", justify="right", no_wrap=True)
    tb.add_column("cost", justify="right", no_wrap=True)
    tb.add_column("most filtered on")
    for table in p.tables[:top]:
        layout = f"partitioning: {table.partitioning}"
        if table.clustering:
            layout += f"; clustered by {', '.join(table.clustering)}"
        filters = [a.column for a in table.access if a.role == "filter"][:3]
        tb.add_row(
            f"{'.'.join(table.name.split('.')[-2:])}\n[dim]{layout}[/]",
            f"{table.jobs:,}",
            usd(table.cost_usd),
            ", ".join(filters) or "-",
        )
    console.print(tb)


def print_audit(console: Console, result: AuditResult, *, top: int = 10) -> None:
    """The audit's headline: summary, the top cost drivers, and the evidence for each."""
    _summary(console, result.profile)
    days = result.profile.period.days
    drivers = result.drivers[:top]
    t = Table(title=f"Top cost drivers {over(days)}", title_justify="left")
    for name in ("#", "cost", "share", "runs/day", "billed/run"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("pattern")
    for d in drivers:
        t.add_row(
            str(d.rank),
            usd(d.cost_usd),
            f"{d.share:.1%}",
            f"{d.runs_per_day:.1f}",
            size(d.bytes_billed_per_run),
            f"{d.statement_type} {d.fingerprint}\n{one_line(d.example_query, 36)}",
        )
    console.print(t)
    for d in drivers:
        if d.reasons:
            console.print(f"[bold]#{d.rank}[/] " + "; ".join(d.reasons), highlight=False)
    if result.lint is not None and result.lint.findings:
        lint = result.lint
        console.print(
            f"SQL anti-patterns: {len(lint.findings):,} findings in {lint.files:,} patterns; "
            f"costliest: (each pattern's cost {over(days)})",
            highlight=False,
        )
        for f in lint.findings[:5]:
            console.print(
                f"  {usd(f.cost_usd or 0.0):>10}  {f.code} {f.name:<30} {f.path.split('#')[-1]}",
                highlight=False,
                markup=False,
            )
    if result.layout is not None:
        changed = [r for r in result.layout.recommendations if r.changed]
        console.print(
            f"Table layout (`costline advise`): {len(changed)} tables to re-lay out, estimated "
            f"saving {usd_over_and_per_year(result.layout.total_saving_usd, days)}; per table "
            f"{over(days)}:",
            highlight=False,
        )
        for r in changed:
            m = r.measured
            measured = (
                f"; checked on {m.engine} with {m.queries} of its queries: "
                f"{m.measured_fraction:.1%} of the bytes scanned, {m.estimated_fraction:.1%} "
                "estimated for the same queries"
                if m is not None
                else ""
            )
            console.print(
                f"  {usd(r.saving.saving_usd):>10}  {r.table}: {r.proposed.describe()}{measured}",
                highlight=False,
                markup=False,
            )
    capacity = result.capacity
    if capacity is not None and capacity.best is not None:
        best = capacity.best
        on_demand = next((p for p in capacity.plans if p.edition == "on_demand"), None)
        against = (
            f" (the whole workload on demand: {per_year(on_demand.annual_cost_usd)})"
            if on_demand is not None
            else ""
        )
        console.print(
            f"Capacity (`costline capacity`): cheapest plan {best.edition} {best.term}, "
            f"{best.commitment_slots:,} committed slots covering {best.committed_share:.0%} of "
            f"the slot usage, {per_year(best.annual_cost_usd)}{against}; annualised from "
            f"{capacity.period_days:,.1f} days of slot usage",
            highlight=False,
            markup=False,
        )
    merge = result.merge
    if merge is not None and merge.proof is not None:
        proof = merge.proof
        console.print(
            f"MERGE into {merge.rewrite.target}, {usd_over_and_per_year(merge.cost_usd, days)},"
            " rewritten partition-scoped (`costline merge"
            f" rewrite`); proved on {proof.rows:,} rows: tables"
            f" {'identical' if proof.identical else 'DIFFERENT'}, bytes read + written"
            f" {proof.reduction:.1%} lower, wall time {proof.wall_ratio:.1f}x lower",
            highlight=False,
        )
