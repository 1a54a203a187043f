"""Alert-budget figures and calibration of a fraud model, on cases worked out by hand and on
random ones (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.assistant.fraud_validation import at_budget, calibration, validate
from costline.core.errors import CostlineError


def arrays(
    scores: list[float], frauds: list[int], amounts: list[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.array(scores, float), np.array(frauds, bool), np.array(amounts, float)


def test_a_queue_of_the_top_scores_counts_frauds_and_their_value() -> None:
    s, y, a = arrays([0.9, 0.8, 0.7, 0.2, 0.1], [1, 0, 1, 1, 0], [100, 5, 30, 870, 1])
    top2 = at_budget(s, y, a, 2)
    assert (top2.alerts, top2.precision, top2.recall) == (2, 0.5, 1 / 3)
    assert top2.value_recall == pytest.approx(100 / 1000)
    top3 = at_budget(s, y, a, 3)
    assert (top3.precision, top3.recall, top3.value_recall) == (2 / 3, 2 / 3, 0.13)
    # A budget larger than the window alerts every row.
    everything = at_budget(s, y, a, 50)
    assert (everything.alerts, everything.recall, everything.value_recall) == (5, 1.0, 1.0)


def test_ties_at_the_edge_of_the_budget_go_to_the_earlier_row() -> None:
    s, y, a = arrays([0.5, 0.5, 0.5], [0, 1, 1], [1, 1, 1])
    assert at_budget(s, y, a, 1).precision == 0.0
    assert at_budget(s, y, a, 2).precision == 0.5


def test_calibration_table_brier_and_expected_error() -> None:
    # Two bins used: [0.1, 0.2) holds 0.1, 0.1 (no fraud); [0.9, 1.0] holds 0.9, 1.0 (both fraud).
    s, y, _ = arrays([0.1, 0.1, 0.9, 1.0], [0, 0, 1, 1], [1, 1, 1, 1])
    c = calibration(s, y)
    assert [(b.low, b.rows, b.fraud_rate) for b in c.bins] == [(0.1, 2, 0.0), (0.9, 2, 1.0)]
    assert c.brier == pytest.approx((0.01 + 0.01 + 0.01 + 0.0) / 4)
    assert c.expected_calibration_error == pytest.approx((2 * 0.1 + 2 * 0.05) / 4)


def test_budgets_are_per_day_times_the_window() -> None:
    rng = np.random.default_rng(1)
    s = rng.random(1000)
    y = rng.random(1000) < 0.05
    v = validate(s, y, np.ones(1000), days=2 / 3, budgets_per_day=(50, 100))
    assert [(b.alerts_per_day, b.alerts) for b in v.budgets] == [(50, 33), (100, 67)]
    assert v.rows == 1000 and v.frauds == int(y.sum())
    assert 0 <= v.average_precision <= 1


def test_bad_input_is_named() -> None:
    s, y, a = arrays([0.1, 0.2], [0, 1], [1, 1])
    with pytest.raises(CostlineError, match="differ in length"):
        at_budget(s, y[:1], a, 1)
    with pytest.raises(CostlineError, match="NaN"):
        at_budget(np.array([np.nan, 0.1]), y, a, 1)
    with pytest.raises(CostlineError, match="scores in \\[0, 1\\]"):
        calibration(np.array([1.5, 0.1]), y)
    with pytest.raises(CostlineError, match="longer than 0 days"):
        validate(s, y, a, days=0)


cases = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0, 1), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.floats(0, 1e4), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(cases)
def test_a_larger_budget_never_catches_less(
    case: tuple[list[float], list[bool], list[float]],
) -> None:
    s, y, a = (np.array(c, dtype) for c, dtype in zip(case, (float, bool, float), strict=True))
    previous = None
    for k in range(len(s) + 1):
        f = at_budget(s, y, a, k)
        if k:
            # precision x alerts = the frauds among the k highest, counted directly.
            top = sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]
            assert round(f.precision * k) == sum(y[i] for i in top)
        if previous is not None and y.any():
            assert f.recall >= previous.recall
            if a[y].sum() > 0:
                assert f.value_recall >= previous.value_recall - 1e-12
        previous = f
    c = calibration(s, y)
    assert sum(b.rows for b in c.bins) == len(s)
    assert 0 <= c.expected_calibration_error <= 1 and 0 <= c.brier <= 1
