"""Distinct query shapes, analysed once each: fingerprint and column access from one parse.

The profiler hands this module one representative text per shape (see
:func:`~costline.warehouse.fingerprint.shape_key_sql`); texts that share a
:func:`~costline.warehouse.fingerprint.token_key` are parsed once, in worker processes when the
batch is large, and the column-access analysis reads the same syntax tree the fingerprint is
printed from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sqlglot import exp

from costline.warehouse.access import ColumnSchema, ColumnUse, statement_uses
from costline.warehouse.fingerprint import Fingerprint, fingerprint_with, map_shapes

Schema = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class ShapeAnalysis:
    """What one query shape is and which columns of which tables it uses."""

    fingerprint: Fingerprint
    uses: tuple[ColumnUse, ...]


def analyse_query(sql: str, schema: Schema | ColumnSchema | None = None) -> ShapeAnalysis:
    """Fingerprint and column uses of one text, from a single parse."""
    uses: tuple[ColumnUse, ...] = ()

    def visit(statements: Sequence[exp.Expr]) -> None:
        nonlocal uses
        uses = statement_uses(statements, schema)

    return ShapeAnalysis(fingerprint_with(sql, visit=visit), uses)


def _analyse_chunk(texts: Sequence[str], schema: ColumnSchema | None) -> list[ShapeAnalysis]:
    return [analyse_query(t, schema) for t in texts]


def analyse_shapes(
    texts: Iterable[str], *, schema: Schema | None = None, workers: int | None = None
) -> list[ShapeAnalysis]:
    """:func:`analyse_query` of every text, in input order, parsing once per token key."""
    prepared = ColumnSchema.of(schema) if schema else None
    return map_shapes(texts, partial(_analyse_chunk, schema=prepared), workers=workers)
