"""What each reservation is billed, and each job's share of that bill.

BigQuery does not bill capacity work by the slot-ms jobs used: a reservation is billed for the
slots it had *allocated*, second by second — its baseline all the time, and whatever the
autoscaler added on top, in 50-slot steps, held through the scale-down window (Google: do not
match billing from ``INFORMATION_SCHEMA.JOBS``). So a reservation's cost is two numbers:

- **billed**: per reservation, from what it allocated. When an
  ``INFORMATION_SCHEMA.RESERVATIONS_TIMELINE`` export is given (:func:`timeline_bills`), each
  minute row bills ``slots_assigned`` (the baseline) for 60 s plus the autoscaled slots of that
  minute (the per-second ``per_second_details`` when present, else ``autoscale.current_slots``
  for the whole minute). Otherwise the allocation is simulated from the jobs' slot usage with
  the capacity model (:func:`simulate_bills`): each job's ``total_slot_ms`` spread over its run,
  work beyond ``max_slots`` queued until the reservation (baseline first) has room, the demand
  above the baseline autoscaled as :func:`~.slots.pricing.held_steps` describes, the
  baseline billed for the whole period of the history.
- **attributed**: that bill shared out to the reservation's jobs by slot time, every job at the
  same rate (``billed / slot-ms used``), so that the jobs of a reservation sum to its bill.

Prices: baseline slots up to a reservation's ``commitment_slots`` at the commitment's rate, the
rest of the baseline and every autoscaled slot at the edition's pay-as-you-go rate. A
reservation's setup (edition, baseline, maximum, commitment, fluid scaling) comes from a
``--reservations`` file (:func:`load_setups`); without one a reservation is pure autoscaling
(baseline 0) in the edition its jobs report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from costline.core.errors import CostlineError, Problem, first_validation_error
from costline.core.prices import MS_PER_HOUR, Edition, PriceCatalogue, read_settings
from costline.warehouse.cost import FREE_RESERVATION, SCRIPT_PARENT_SQL
from costline.warehouse.jobs import MAX_REPORTED_PROBLEMS, connect, detect_format
from costline.warehouse.slots.pricing import (
    FLUID_RULES,
    RULES,
    SECONDS_PER_HOUR,
    BillingRules,
    Term,
    commitment_price,
    held_pieces,
    held_steps,
    queue,
    round_up_steps,
)
from costline.warehouse.slots.usage import (
    MAX_RESOLUTION_S,
    PERIOD_START_CHECKS,
    PERIOD_START_SQL,
    export_raw,
    spread,
    spread_pieces,
)

# A simulated reservation is spread at 1 s while its span fits in this many buckets (about
# 231 days); a longer one at the finest resolution that fits, said in a note.
MAX_SIMULATED_BUCKETS = 20_000_000
_RESOLUTIONS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)

Basis = Literal["timeline", "simulated"]


class ReservationSetup(BaseModel):
    """How one reservation is configured, as far as its bill depends on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    edition: Edition | None = None
    baseline_slots: int = Field(default=0, ge=0)

    @field_validator("edition", mode="before")
    @classmethod
    def _any_spelling(cls, value: object) -> object:
        """``ENTERPRISE`` (as JOBS spells it), ``enterprise-plus``, ``Enterprise Plus``..."""
        if isinstance(value, str):
            try:
                return Edition.parse(value)
            except CostlineError as exc:
                raise ValueError(str(exc)) from None
        return value

    max_slots: int | None = Field(
        default=None, gt=0, description="baseline plus the autoscaler's maximum"
    )
    commitment_slots: int = Field(default=0, ge=0)
    # No default term: a 1y and a 3y commitment are priced differently, so it must be said.
    commitment_term: Term = Term.NONE
    fluid: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ReservationSetup:
        step = RULES.commitment_step_slots
        # A maximum off the 50-slot grid would let the autoscaler's step bill above it.
        for name in ("baseline_slots", "max_slots", "commitment_slots"):
            if (getattr(self, name) or 0) % step:
                raise ValueError(f"{name} must be a multiple of {step}")
        if self.max_slots is not None and self.max_slots < self.baseline_slots:
            raise ValueError("max_slots must be at least baseline_slots")
        if self.commitment_term is Term.NONE and self.commitment_slots:
            raise ValueError("commitment_term must be 1y or 3y when commitment_slots is set")
        return self


class ReservationBill(BaseModel):
    """One reservation's bill over the history's period."""

    model_config = ConfigDict(frozen=True)

    reservation: str
    edition: Edition
    basis: Basis = Field(description="'timeline': from the export; 'simulated': capacity model")
    billed_usd: float
    baseline_slot_hours: float
    autoscale_slot_hours: float
    used_slot_hours: float = Field(description="what the jobs used (total_slot_ms)")
    slot_time_price_usd: float = Field(
        description="used slot-hours at the pay-as-you-go price: what pricing jobs by their "
        "slot-ms would have said"
    )
    peak_allocated_slots: int
    jobs: int

    @property
    def allocated_slot_hours(self) -> float:
        """Slot-hours billed: baseline plus autoscaled."""
        return self.baseline_slot_hours + self.autoscale_slot_hours

    @property
    def utilisation(self) -> float | None:
        """Share of the allocated slot time the jobs used."""
        allocated = self.allocated_slot_hours
        return self.used_slot_hours / allocated if allocated > 0 else None


class Billing(BaseModel):
    """Every reservation's bill, with what was assumed and what could not be read."""

    model_config = ConfigDict(frozen=True)

    reservations: tuple[ReservationBill, ...]
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    rejected: int = 0

    @property
    def billed_usd(self) -> float:
        """The capacity bill, every reservation."""
        return sum(b.billed_usd for b in self.reservations)

    def get(self, reservation: str) -> ReservationBill | None:
        """The bill of ``reservation``, if it has one."""
        return next((b for b in self.reservations if b.reservation == reservation), None)


def load_setups(path: Path) -> dict[str, ReservationSetup]:
    """Reservation setups from a TOML or JSON file: ``[reservations."<reservation_id>"]``
    tables with the fields of :class:`ReservationSetup`."""
    data = read_settings(path, "reservations file")
    entries = data.get("reservations") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise CostlineError(f"{path}: expected a 'reservations' table keyed by reservation_id")
    setups = {}
    for name, entry in entries.items():
        try:
            setups[str(name)] = ReservationSetup.model_validate(entry)
        except ValidationError as exc:
            raise CostlineError(
                f"{path}: reservation {name!r}: {first_validation_error(exc)}"
            ) from None
    return setups


def _resolution(span_s: float) -> int:
    for r in _RESOLUTIONS:
        if span_s / r <= MAX_SIMULATED_BUCKETS:
            return r
    return MAX_RESOLUTION_S


def _price(
    setup: ReservationSetup, edition: Edition, prices: PriceCatalogue
) -> tuple[float, float | None]:
    price = prices.bigquery.editions[edition]
    commit = commitment_price(price, setup.commitment_term) if setup.commitment_slots else None
    if setup.commitment_slots and commit is None:
        raise CostlineError(
            f"{edition.value} sells no {setup.commitment_term.value} commitment "
            "(a reservation's commitment_slots cannot be priced)"
        )
    return price.payg_usd_per_slot_hour, commit


def _bill_usd(
    setup: ReservationSetup,
    prices: tuple[float, float | None],
    baseline_slot_s: float,
    autoscale_slot_s: float,
    period_s: float,
) -> float:
    payg, commit = prices
    committed_slot_s = min(setup.commitment_slots * period_s, baseline_slot_s)
    committed = setup.commitment_slots * period_s * (commit or 0.0)
    rest = (baseline_slot_s - committed_slot_s + autoscale_slot_s) * payg
    return (committed + rest) / SECONDS_PER_HOUR


def _editions(con: duckdb.DuckDBPyConnection, where: str) -> dict[str, str | None]:
    rows = con.execute(
        f"SELECT reservation_id, mode(edition) FROM jobs WHERE {where} GROUP BY ALL"
    ).fetchall()
    return {str(r): e for r, e in rows}


_CAPACITY_JOBS = f"""
    reservation_id IS NOT NULL AND reservation_id <> '{FREE_RESERVATION}'
    AND NOT coalesce(cache_hit, false) AND NOT {SCRIPT_PARENT_SQL}
"""


def _edition(name: str, setup: ReservationSetup, seen: str | None, default: Edition) -> Edition:
    if setup.edition is not None:
        return setup.edition
    return Edition.parse(seen) if seen else default


def simulate_bills(
    con: duckdb.DuckDBPyConnection,
    prices: PriceCatalogue,
    *,
    period: tuple[dt.datetime, dt.datetime] | None = None,
    setups: Mapping[str, ReservationSetup] | None = None,
    default_edition: Edition = Edition.ENTERPRISE,
    rules: BillingRules = RULES,
    only: set[str] | None = None,
) -> tuple[list[ReservationBill], list[str]]:
    """Each reservation's bill simulated from the slot usage of the ``jobs`` table.

    ``period`` is the span the baseline is billed over (the history's); ``only`` limits the
    reservations simulated. Jobs with slots but no usable run interval are still attributed
    (their reservation's rate) but cannot be placed in time; the notes count them.
    """
    setups = setups or {}
    editions = _editions(con, _CAPACITY_JOBS)
    bills: list[ReservationBill] = []
    notes: list[str] = []
    names = [n for n in sorted(editions) if only is None or n in only]
    # One scan for every reservation: its jobs' run intervals and slot-ms, grouped by it.
    arrays = con.execute(
        f"""
        SELECT list_position(?, reservation_id)::INTEGER AS r,
               coalesce(epoch_us(start_time)::DOUBLE, 'nan'::DOUBLE) AS s,
               coalesce(epoch_us(end_time)::DOUBLE, 'nan'::DOUBLE) AS e,
               total_slot_ms::DOUBLE AS ms
        FROM jobs
        WHERE {_CAPACITY_JOBS} AND total_slot_ms > 0 AND list_contains(?, reservation_id)
        """,
        [names, names],
    ).fetchnumpy()
    codes = np.asarray(arrays["r"], dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    groups = np.searchsorted(codes[order], np.arange(1, len(names) + 2))
    for k, name in enumerate(names):
        setup = setups.get(name, ReservationSetup())
        edition = _edition(name, setup, editions[name], default_edition)
        mine = order[groups[k] : groups[k + 1]]
        ms_all = np.asarray(arrays["ms"], dtype=np.float64)[mine]
        s_us = np.asarray(arrays["s"], dtype=np.float64)[mine]
        e_us = np.asarray(arrays["e"], dtype=np.float64)[mine]
        placed = np.isfinite(s_us) & np.isfinite(e_us) & (e_us >= s_us)
        unplaced = int((~placed).sum())
        if unplaced:
            notes.append(
                f"{name}: {unplaced:,} jobs with slots have no usable start_time/end_time; "
                "they share the bill but their slots are not in the simulated allocation"
            )
        s_us, e_us, ms = s_us[placed], e_us[placed], ms_all[placed]
        if period is not None:
            p0 = period[0].timestamp() * 1e6
            p1 = period[1].timestamp() * 1e6
        else:
            p0 = float(s_us.min()) if s_us.size else 0.0
            p1 = float(e_us.max()) if e_us.size else 0.0
        # The resolution is the period's (every reservation alike); the series spans only
        # this reservation's jobs: before the first and after the last it bills nothing.
        lo = float(s_us.min()) if s_us.size else p0
        hi = float(e_us.max()) if e_us.size else p0
        res = _resolution((max(hi, p1) - min(lo, p0)) / 1e6)
        width = res * 1e6
        origin = np.floor(lo / width) * width
        # the last scale-up is still held (and billed) for the window after the work ends
        tail_s = 0 if rules.fluid or setup.fluid else rules.window_seconds
        buckets = max(int(np.ceil((hi - origin) / width)), 1) + -(-tail_s // res)
        if res > 1:
            notes.append(f"{name}: simulated at {res} s resolution (a span of {buckets:,} buckets)")
        floor = max(setup.baseline_slots, setup.commitment_slots)
        cap = None if setup.max_slots is None else setup.max_slots - setup.baseline_slots
        fluid = rules.fluid or setup.fluid
        window = 0 if fluid else max(1, rules.window_seconds // res)
        # The demand as constant pieces: as many as the jobs' boundaries, whatever the span.
        begins, values = spread_pieces((s_us - origin) / width, (e_us - origin) / width, ms)
        demand = values / (res * 1000.0)
        if cap is not None and cap <= 0:  # no autoscaling: the baseline serves every job
            autoscale_slot_s, autoscale_peak = 0.0, 0
        elif cap is not None and demand.size and float(demand.max()) > floor + cap:
            # The queue is the reservation's, not the autoscaler's: work waiting for slots runs
            # on the baseline as soon as that frees up, so the whole demand queues under the
            # reservation's size and only what is then served above the baseline autoscales.
            # The queue needs every bucket.
            dense = spread((s_us - origin) / width, (e_us - origin) / width, ms, buckets + 1)
            served, _ = queue(dense / (res * 1000.0), floor + cap, res)
            above = np.maximum(served - floor, 0.0, out=served)
            held = held_steps(round_up_steps(above, rules.step_slots), window)
            autoscale_slot_s = float(held.sum(dtype=np.int64)) * rules.step_slots * res
            autoscale_peak = int(held.max()) * rules.step_slots if held.size else 0
        else:
            # The billed curve (as billed_autoscale, without the commitment-level statistics
            # a capacity plan needs): 50-slot steps, each scale-up held, summed piece by piece.
            need = round_up_steps(np.maximum(demand - floor, 0.0), rules.step_slots)
            changes = np.concatenate(([True], need[1:] != need[:-1])) if need.size else need
            steps, starts = need[changes].tolist(), begins[changes].tolist()
            if not starts or starts[0] > 0:
                starts, steps = [0, *starts], [0, *steps]
            out_begins, out_levels = held_pieces(starts, steps, buckets + 1, window)
            edges = np.asarray([*out_begins, buckets + 1], dtype=np.int64)
            levels = np.asarray(out_levels, dtype=np.int64)
            held_step_s = int((levels * (edges[1:] - edges[:-1])).sum())
            autoscale_slot_s = float(held_step_s) * rules.step_slots * res
            autoscale_peak = int(levels.max()) * rules.step_slots if levels.size else 0
        period_s = max((p1 - p0) / 1e6, 0.0)
        baseline_slot_s = setup.baseline_slots * period_s
        price = _price(setup, edition, prices)
        used_h = float(ms_all.sum()) / MS_PER_HOUR
        bills.append(
            ReservationBill(
                reservation=name,
                edition=edition,
                basis="simulated",
                billed_usd=_bill_usd(setup, price, baseline_slot_s, autoscale_slot_s, period_s),
                baseline_slot_hours=baseline_slot_s / SECONDS_PER_HOUR,
                autoscale_slot_hours=autoscale_slot_s / SECONDS_PER_HOUR,
                used_slot_hours=used_h,
                slot_time_price_usd=used_h * price[0],
                peak_allocated_slots=setup.baseline_slots + autoscale_peak,
                jobs=int(ms_all.size),
            )
        )
    return bills, notes


_TIMELINE_FIELDS = (
    "period_start",
    "reservation_id",
    "reservation_name",
    "edition",
    "slots_assigned",
    "autoscale.current_slots",
    "autoscale",
    "per_second_details",
)
# The nested columns, as JSON text in every format: a JSONL line holds them as JSON, a CSV
# export as JSON text (when it has them at all), Parquet as a struct and a list of structs.
_NESTED = ("autoscale", "per_second_details")


def _nested_as_json(raw: str) -> str:
    """``raw`` with a CSV or Parquet export's nested columns read as JSON text (a Parquet
    struct or list cast to text is not JSON; a text column is kept as it is)."""
    for name in _NESTED:
        column = f'CAST("{name}" AS VARCHAR)'  # how export_raw reads a column it found
        raw = raw.replace(
            column,
            f"CASE WHEN typeof(\"{name}\") = 'VARCHAR' THEN {column} "
            f'ELSE CAST(to_json("{name}") AS VARCHAR) END',
        )
    return raw


# per_second_details as JSON text: what it holds (an empty field is no details), and each
# second's autoscaled slots in it as JSON values (a missing key skipped, a JSON null kept).
_DETAILS_TYPE = (
    "CASE WHEN coalesce(trim(details), '') = '' THEN 'NULL' "
    "WHEN json_valid(details) THEN json_type(CAST(details AS JSON)) ELSE 'not JSON' END"
)
_SECONDS_JSON = (
    "CASE WHEN details_type = 'ARRAY' "
    "THEN json_extract(details, '$[*].autoscale_current_slots') END"
)
_AS_NUMBER = "TRY_CAST(json_extract_string(v, '$') AS DOUBLE)"


def timeline_bills(
    path: Path,
    prices: PriceCatalogue,
    *,
    setups: Mapping[str, ReservationSetup] | None = None,
    default_edition: Edition = Edition.ENTERPRISE,
    used_slot_ms: Mapping[str, float] | None = None,
    period: tuple[dt.datetime, dt.datetime] | None = None,
) -> Billing:
    """Each reservation's bill from an ``INFORMATION_SCHEMA.RESERVATIONS_TIMELINE`` export
    (JSONL, CSV or Parquet; one row per reservation and minute). The nested columns are read
    alike in every format: ``per_second_details`` as JSONL, a Parquet list of structs or JSON
    text in a CSV cell; ``autoscale`` as a struct, JSON text, or a flattened
    ``autoscale.current_slots``/``autoscale_current_slots`` column.

    A row that cannot be used (no or a malformed ``period_start``, a negative or non-numeric
    slot count, a repeated reservation and minute) is reported with its line and field and
    left out. ``used_slot_ms`` (per reservation, from the job history) fills the bills' used
    slot time.
    """
    if not path.is_file():
        raise CostlineError(f"{path}: no such reservations timeline file")
    setups = setups or {}
    used_slot_ms = used_slot_ms or {}
    con = connect()
    fields = list(_TIMELINE_FIELDS)
    raw = export_raw(
        con,
        path,
        fields,
        required=("period_start", "slots_assigned"),
        what="a RESERVATIONS_TIMELINE export",
    )
    if detect_format(path) != "jsonl":
        raw = _nested_as_json(raw)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE rt AS
            SELECT *, CASE
                    {PERIOD_START_CHECKS}
                    WHEN reservation IS NULL THEN 'reservation_id|missing'
                    WHEN t_baseline IS NULL THEN 'slots_assigned|expected a number, got '
                         || coalesce(left(slots_assigned, 40), 'nothing')
                    WHEN t_baseline < 0 THEN 'slots_assigned|must not be negative, got '
                         || slots_assigned
                    WHEN details_type NOT IN ('ARRAY', 'NULL')
                        THEN 'per_second_details|expected a JSON array, got ' || left(details, 40)
                    WHEN len(not_numbers) > 0
                        THEN 'per_second_details|autoscale_current_slots: expected numbers, got '
                             || left(array_to_string(not_numbers, ', '), 40)
                    WHEN list_min(t_seconds) < 0
                        THEN 'per_second_details|autoscale_current_slots must not be negative'
                    WHEN t_auto IS NULL AND coalesce(trim(auto), '') <> ''
                        THEN 'autoscale.current_slots|expected a number, got ' || left(auto, 40)
                    WHEN t_auto < 0 THEN 'autoscale.current_slots|must not be negative, got '
                         || auto
                END AS error
            FROM (
                SELECT *, TRY_CAST(auto AS DOUBLE) AS t_auto,
                       list_transform(seconds, lambda v: {_AS_NUMBER}) AS t_seconds,
                       list_filter(seconds, lambda v: json_type(v) <> 'NULL'
                                                      AND {_AS_NUMBER} IS NULL) AS not_numbers,
                       list_sum(t_seconds) AS t_auto_s, list_max(t_seconds) AS t_auto_peak
                FROM (
                    SELECT line, doc_error, period_start, slots_assigned, edition, details,
                           coalesce("autoscale.current_slots",
                                    CASE WHEN json_valid(autoscale)
                                         THEN json_extract_string(autoscale, '$.current_slots')
                                    END) AS auto,
                           {_DETAILS_TYPE} AS details_type, {_SECONDS_JSON} AS seconds,
                           coalesce(nullif(trim(reservation_id), ''),
                                    nullif(trim(reservation_name), '')) AS reservation,
                           {PERIOD_START_SQL} AS t_start,
                           TRY_CAST(slots_assigned AS DOUBLE) AS t_baseline
                    FROM (SELECT * REPLACE (CAST(autoscale AS VARCHAR) AS autoscale),
                                 CAST(per_second_details AS VARCHAR) AS details
                          FROM ({raw}))
                )
            )
            """
        )
        con.execute(
            """
            UPDATE rt SET error = 'period_start|duplicate of the row on line '
                                  || d.first_line || ' (same reservation and minute)'
            FROM (SELECT reservation, t_start, min(line) AS first_line FROM rt
                  WHERE error IS NULL GROUP BY ALL HAVING count(*) > 1) d
            WHERE rt.error IS NULL AND rt.reservation = d.reservation
              AND rt.t_start = d.t_start AND rt.line <> d.first_line
            """
        )
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise CostlineError(f"{path}: cannot read the reservations timeline: {first}") from None
    # A JSONL file has no columns to check up front: one whose records all lack both required
    # fields (a JOBS export given by mistake) is refused as a whole, not as N bad rows.
    [(records, shaped)] = con.execute(
        "SELECT count(*) FILTER (WHERE doc_error IS NULL), count(*) FILTER (WHERE "
        "doc_error IS NULL AND (period_start IS NOT NULL OR slots_assigned IS NOT NULL)) FROM rt"
    ).fetchall()
    if records and not shaped:
        raise CostlineError(
            f"{path}: not a RESERVATIONS_TIMELINE export: no record has a period_start or "
            "slots_assigned field"
        )
    rejected_row = con.execute("SELECT count(*) FROM rt WHERE error IS NOT NULL").fetchall()[0]
    rejected = int(rejected_row[0]) if rejected_row else 0
    problems = tuple(
        Problem(path=str(path), line=int(line), field=f or None, message=m)
        for line, f, m in con.execute(
            "SELECT line, split_part(error, '|', 1), substr(error, strpos(error, '|') + 1) "
            f"FROM rt WHERE error IS NOT NULL ORDER BY line LIMIT {MAX_REPORTED_PROBLEMS}"
        ).fetchall()
    )
    rows = con.execute(
        """
        SELECT reservation, mode(edition), sum(t_baseline) * 60,
               sum(coalesce(t_auto_s, t_auto * 60, 0)), count(*) * 60,
               max(t_baseline + coalesce(t_auto_peak, t_auto, 0))
        FROM rt WHERE error IS NULL GROUP BY reservation ORDER BY reservation
        """
    ).fetchall()
    notes = _coverage_notes(con, path, period)
    bills = []
    for name, seen, baseline_s, auto_s, period_s, peak in rows:
        setup = setups.get(str(name), ReservationSetup())
        edition = _edition(str(name), setup, seen, default_edition)
        price = _price(setup, edition, prices)
        used_h = float(used_slot_ms.get(str(name), 0.0)) / MS_PER_HOUR
        bills.append(
            ReservationBill(
                reservation=str(name),
                edition=edition,
                basis="timeline",
                billed_usd=_bill_usd(
                    setup, price, float(baseline_s), float(auto_s), float(period_s)
                ),
                baseline_slot_hours=float(baseline_s) / SECONDS_PER_HOUR,
                autoscale_slot_hours=float(auto_s) / SECONDS_PER_HOUR,
                used_slot_hours=used_h,
                slot_time_price_usd=used_h * price[0],
                peak_allocated_slots=int(peak or 0),
                jobs=0,
            )
        )
    return Billing(reservations=tuple(bills), notes=notes, problems=problems, rejected=rejected)


def _coverage_notes(
    con: duckdb.DuckDBPyConnection, path: Path, period: tuple[dt.datetime, dt.datetime] | None
) -> tuple[str, ...]:
    """Which reservations' minutes in the export leave part of the history's period out."""
    if period is None:
        return ()
    start, end = period
    slack = dt.timedelta(hours=1)
    notes = []
    for name, first, last in con.execute(
        "SELECT reservation, min(t_start), max(t_start) + INTERVAL 1 MINUTE FROM rt "
        "WHERE error IS NULL GROUP BY reservation ORDER BY reservation"
    ).fetchall():
        if first - start > slack or end - last > slack:
            notes.append(
                f"{path.name} covers {name} from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} "
                f"UTC, the jobs {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}: it is billed "
                "for the minutes the export has only"
            )
    return tuple(notes)


def reservation_billing(
    con: duckdb.DuckDBPyConnection,
    prices: PriceCatalogue,
    *,
    period: tuple[dt.datetime, dt.datetime] | None,
    timeline: Path | None = None,
    setups: Mapping[str, ReservationSetup] | None = None,
    default_edition: Edition = Edition.ENTERPRISE,
    fluid: bool = False,
) -> Billing:
    """The bill of every reservation the ``jobs`` table ran in: from ``timeline`` where it
    covers the reservation, else simulated (see the module docstring)."""
    rules = FLUID_RULES if fluid else RULES
    used = {
        str(r): float(ms)
        for r, ms in con.execute(
            f"SELECT reservation_id, coalesce(sum(total_slot_ms), 0) FROM jobs "
            f"WHERE {_CAPACITY_JOBS} GROUP BY ALL"
        ).fetchall()
    }
    counts = {
        str(r): int(n)
        for r, n in con.execute(
            f"SELECT reservation_id, count(*) FROM jobs WHERE {_CAPACITY_JOBS} "
            "AND total_slot_ms > 0 GROUP BY ALL"
        ).fetchall()
    }
    notes: list[str] = []
    bills: list[ReservationBill] = []
    problems: tuple[Problem, ...] = ()
    rejected = 0
    if timeline is not None:
        from_timeline = timeline_bills(
            timeline,
            prices,
            setups=setups,
            default_edition=default_edition,
            used_slot_ms=used,
            period=period,
        )
        problems, rejected = from_timeline.problems, from_timeline.rejected
        notes += from_timeline.notes
        bills = [
            b.model_copy(update={"jobs": counts.get(b.reservation, 0)})
            for b in _by_job_ids(from_timeline.reservations, used, prices, notes)
        ]
    covered = {b.reservation for b in bills}
    missing = set(used) - covered
    if timeline is not None and missing:
        notes.append(
            f"{len(missing)} reservation(s) not in {timeline.name}, simulated from the jobs: "
            + ", ".join(sorted(missing))
        )
    simulated, sim_notes = simulate_bills(
        con,
        prices,
        period=period,
        setups=setups,
        default_edition=default_edition,
        rules=rules,
        only=missing,
    )
    bills += simulated
    notes += sim_notes
    if simulated:
        scaling = (
            "fluid scaling (no one-minute minimum)"
            if rules.fluid
            else f"{rules.step_slots}-slot steps held {rules.window_seconds} s after each scale-up"
        )
        notes.append(
            "simulated reservations: the autoscaler's allocation of the jobs' slot usage "
            f"({scaling}); idle slots shared between reservations are not modelled"
        )
    unknown = sorted(set(setups or {}) - {b.reservation for b in bills})
    if unknown:
        notes.append("reservations file names reservations with no jobs: " + ", ".join(unknown))
    return Billing(
        reservations=tuple(sorted(bills, key=lambda b: b.reservation)),
        notes=tuple(notes),
        problems=problems,
        rejected=rejected,
    )


def _by_job_ids(
    bills: tuple[ReservationBill, ...],
    used: Mapping[str, float],
    prices: PriceCatalogue,
    notes: list[str],
) -> list[ReservationBill]:
    """Timeline bills keyed as JOBS keys reservations. JOBS writes ``admin:LOCATION.name``; an
    export that carries only ``reservation_name`` is matched by that last part when exactly one
    reservation of the jobs ends with it."""
    out = []
    for b in bills:
        if b.reservation in used or ":" in b.reservation:
            out.append(b)
            continue
        same = [r for r in used if r.rpartition(".")[2] == b.reservation]
        if len(same) != 1:
            out.append(b)
            continue
        [job_id] = same
        used_h = used[job_id] / MS_PER_HOUR
        payg = prices.bigquery.editions[b.edition].payg_usd_per_slot_hour
        notes.append(f"timeline reservation {b.reservation!r} is the jobs' {job_id!r}")
        out.append(
            b.model_copy(
                update={
                    "reservation": job_id,
                    "used_slot_hours": used_h,
                    "slot_time_price_usd": used_h * payg,
                }
            )
        )
    return out


def attribution_rates(billing: Billing) -> dict[str, float]:
    """USD per slot-ms of each reservation: its bill over the slot-ms its jobs used. A
    reservation whose jobs used no slots has no rate (its bill is unattributed)."""
    return {
        b.reservation: b.billed_usd / (b.used_slot_hours * MS_PER_HOUR)
        for b in billing.reservations
        if b.used_slot_hours > 0
    }
