"""Terminal rendering of MERGE rewrites and proofs (rich). Renders values; computes nothing."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from costline.report.text import size
from costline.warehouse.merge import CheckStatus, MergeProof, MergeRewrite

_STYLE = {CheckStatus.PASS: "green", CheckStatus.WARN: "yellow", CheckStatus.REFUSE: "bold red"}


def print_merge_checks(console: Console, rewrite: MergeRewrite) -> None:
    """One line per precondition: outcome, code, explanation."""
    for check in rewrite.checks:
        mark = f"{check.status.value:<6}"
        console.print(f"[{_STYLE[check.status]}]{mark}[/] {check.code}: ", end="", highlight=False)
        console.print(check.message, highlight=False, markup=False, soft_wrap=True)


def print_merge_proof(console: Console, proof: MergeProof) -> None:
    """The two sides of a proof side by side, then the verdict."""
    console.print(
        f"{proof.table}: {proof.rows:,} rows in {proof.partitions} partitions on"
        f" {proof.engine}; batch of {proof.batch.source_rows:,} rows touching"
        f" {proof.affected_partitions} partitions ({proof.batch.updated:,} updated,"
        f" {proof.batch.inserted:,} inserted, {proof.batch.deleted:,} deleted)",
        highlight=False,
    )
    t = Table()
    t.add_column("")
    for name in ("bytes read", "bytes written", "files rewritten", "rows copied", "wall"):
        t.add_column(name, justify="right")
    for label, side in (("original", proof.original), ("rewritten", proof.rewritten)):
        t.add_row(
            label,
            size(side.bytes_read),
            size(side.bytes_written),
            f"{side.files_rewritten:,}",
            f"{side.rows_copied:,}",
            f"{side.wall_s:.2f} s",
        )
    console.print(t)
    verdict = (
        "[green]identical tables[/]"
        if proof.identical
        else "[bold red]the tables DIFFER: the rewrite is wrong for this statement[/]"
    )
    console.print(
        f"{verdict} (checksum {proof.rewritten_checksum}); bytes read + written"
        f" {proof.reduction:.1%} lower, wall time {proof.wall_ratio:.1f}x lower",
        highlight=False,
    )
