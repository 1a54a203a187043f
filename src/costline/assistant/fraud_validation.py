"""How a fraud model is measured the way a model-validation team measures it.

A fraud team does not act on a threshold: it works a queue of alerts, as many a day as its
analysts can review. So the figures are taken at *alert budgets* (the top ``k`` scores of the
evaluation window, ``k`` = alerts per day × days): precision (how many alerts were fraud),
recall (how many frauds were alerted) and value-weighted recall (how much of the defrauded
amount), next to average precision (the area under the precision-recall curve, the summary that
stays informative at a prevalence of 0.2%, where ROC AUC does not) and calibration (does a score
of 0.3 mean a 30% chance: Brier score, expected calibration error over equal-width bins, and the
table behind it). Ties at the budget's edge are broken by position, so a figure never depends on
the sort's whim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, roc_auc_score

from costline.core.errors import CostlineError

#: Alerts a day a fraud team reviews, for the figures at alert budgets.
ALERT_BUDGETS_PER_DAY = (50, 100, 250)
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class BudgetFigures:
    """A queue of the ``alerts`` highest scores, and what it catches."""

    alerts_per_day: int
    alerts: int
    precision: float
    recall: float
    value_recall: float


@dataclass(frozen=True)
class CalibrationBin:
    """Scores in ``[low, high)`` (the last bin includes 1.0)."""

    low: float
    high: float
    rows: int
    mean_score: float
    fraud_rate: float


@dataclass(frozen=True)
class Calibration:
    """How far scores are from being probabilities."""

    brier: float
    expected_calibration_error: float
    bins: tuple[CalibrationBin, ...]


@dataclass(frozen=True)
class Validation:
    """Every figure of one model on one evaluation window."""

    rows: int
    frauds: int
    average_precision: float
    roc_auc: float
    budgets: tuple[BudgetFigures, ...]
    calibration: Calibration


def _check(scores: NDArray[np.float64], y: NDArray[np.bool_], amounts: NDArray[np.float64]) -> None:
    if not (len(scores) == len(y) == len(amounts)):
        raise CostlineError(
            f"scores, labels and amounts differ in length: {len(scores)}, {len(y)}, {len(amounts)}"
        )
    if not np.isfinite(scores).all():
        raise CostlineError("scores hold NaN or infinite values")
    if (amounts < 0).any():
        raise CostlineError("amounts must not be negative")


def at_budget(
    scores: NDArray[np.float64],
    y: NDArray[np.bool_],
    amounts: NDArray[np.float64],
    alerts: int,
    alerts_per_day: int = 0,
) -> BudgetFigures:
    """What a queue of the ``alerts`` highest scores catches (ties: the earlier row first)."""
    _check(scores, y, amounts)
    alerts = max(0, min(alerts, len(scores)))
    # A stable sort of the negated scores keeps the earlier of two equal scores first.
    top = np.argsort(-scores, kind="stable")[:alerts]
    caught = y[top]
    frauds = int(y.sum())
    fraud_value = float(amounts[y].sum())
    caught_value = float(amounts[top][caught].sum())
    return BudgetFigures(
        alerts_per_day=alerts_per_day,
        alerts=alerts,
        precision=float(caught.mean()) if alerts else float("nan"),
        recall=float(caught.sum() / frauds) if frauds else float("nan"),
        value_recall=caught_value / fraud_value if fraud_value else float("nan"),
    )


def calibration(
    scores: NDArray[np.float64], y: NDArray[np.bool_], bins: int = CALIBRATION_BINS
) -> Calibration:
    """Brier score and expected calibration error (the rows' share-weighted gap between mean
    score and fraud rate, over ``bins`` equal-width bins of the score)."""
    if len(scores) == 0:
        raise CostlineError("no rows to measure calibration on")
    if ((scores < 0) | (scores > 1)).any():
        raise CostlineError("calibration needs scores in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    table = []
    gap = 0.0
    for b in range(bins):
        member = index == b
        n = int(member.sum())
        if n:
            mean, rate = float(scores[member].mean()), float(y[member].mean())
            gap += n * abs(mean - rate)
            table.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), n, mean, rate))
    return Calibration(
        brier=float(np.mean((scores - y) ** 2)),
        expected_calibration_error=gap / len(scores),
        bins=tuple(table),
    )


def validate(
    scores: NDArray[np.float64],
    y: NDArray[np.bool_],
    amounts: NDArray[np.float64],
    days: float,
    budgets_per_day: Sequence[int] = ALERT_BUDGETS_PER_DAY,
) -> Validation:
    """Every figure of ``scores`` on an evaluation window of ``days`` days."""
    _check(scores, y, amounts)
    if days <= 0:
        raise CostlineError(f"the evaluation window must be longer than 0 days, not {days}")
    y = y.astype(bool)
    both = bool(y.any() and not y.all())
    return Validation(
        rows=len(y),
        frauds=int(y.sum()),
        average_precision=float(average_precision_score(y, scores)) if both else float("nan"),
        roc_auc=float(roc_auc_score(y, scores)) if both else float("nan"),
        budgets=tuple(
            at_budget(scores, y, amounts, round(per_day * days), per_day)
            for per_day in budgets_per_day
        ),
        calibration=calibration(scores, y),
    )
