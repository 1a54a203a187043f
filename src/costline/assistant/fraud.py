"""The fraud model: per-transaction features over each customer's history, a gradient-boosted
classifier trained on the demo bank's labelled transactions, and a rules fallback.

Features are computed in DuckDB with window functions over the customer's own transactions:
how unusual the amount is for the customer (z-score, ratio to the median), whether it is abroad
and whether other foreign payments surround it (travel), the hour, velocity in the surrounding
hour and day, bursts of tiny payments and of transfers to new payees, repeats at one merchant
within minutes, and the category. The assistant reviews *booked* transactions, so
the windows look both ways around each one (a burst is seen from its first payment on).

The model is a :class:`~sklearn.ensemble.HistGradientBoostingClassifier` trained once on a
split by customer (no customer is in both halves, so bursts cannot leak from training into the
test) with a fixed seed, and cached on disk next to the workspace keyed by the data it was
trained on; precision, recall and ROC AUC on the held-out customers are stored with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from threadpoolctl import threadpool_limits

from costline.core.errors import CostlineError

#: Bump when features or training change: cached models of another version are retrained.
MODEL_VERSION = 2
SEED = 20261124
#: OpenMP threads for training and scoring. One: on a shared machine (a server's workers, CI)
#: more threads spin against each other and run an order of magnitude slower, not faster.
THREADS = 1
#: Share of customers held out for evaluation.
TEST_SHARE = 0.25
#: A transaction is flagged when its fraud probability reaches this.
THRESHOLD = 0.5
#: Share of legitimate training rows kept (reweighted by its inverse, so probabilities stay
#: calibrated): fraud is rare, and the rest teaches little after the first few hundred thousand.
LEGIT_SAMPLE = 0.3
#: A payment below this (in the account's currency) counts as "tiny" (card testing).
TINY_AMOUNT = 3.0
NIGHT_HOURS = (0, 6)

# The channel is not a feature: in the demo data one channel ("mobile") carries only the planted
# new-payee bursts, and a model keyed on it would learn the generator, not the fraud.
CATEGORICAL = ("category_code",)
NUMERIC = (
    "log_amount",
    "amount_z",
    "amount_vs_median",
    "is_credit",
    "is_foreign",
    "foreign_nearby",
    "hour",
    "is_night",
    "is_new_payee",
    "n_1h",
    "n_24h",
    "same_merchant_30m",
    "tiny_1h",
    "new_payee_2h",
)
FEATURES = (*NUMERIC, *CATEGORICAL)

#: Signals named in explanations: (name, test on the feature columns).
SIGNALS = (
    "tiny_payment_burst",
    "new_payee_burst",
    "foreign_without_travel",
    "unusual_amount",
    "night_high_value",
    "merchant_repeat",
)

_FEATURE_SQL = f"""
WITH t AS (
    SELECT
        t.txn_id,
        t.customer_id,
        t.txn_ts,
        t.amount::DOUBLE AS amount,
        abs(t.amount::DOUBLE) AS size,
        t.currency,
        t.category,
        t.channel,
        t.country,
        t.merchant,
        coalesce(t.merchant_id, -1) AS merchant_id,
        t.is_new_payee,
        t.is_fraud,
        t.fraud_pattern,
        (t.country <> c.country) AS foreign_
    FROM transactions t JOIN customers c USING (customer_id)
)
SELECT
    txn_id,
    customer_id,
    txn_ts,
    amount,
    currency,
    category,
    channel,
    country,
    merchant,
    is_fraud,
    fraud_pattern,
    ln(1 + size) AS log_amount,
    coalesce((size - avg(size) OVER cust) / nullif(stddev_pop(size) OVER cust, 0), 0)
        AS amount_z,
    coalesce(size / nullif(median(size) OVER cust, 0), 1) AS amount_vs_median,
    (amount > 0)::INT AS is_credit,
    foreign_::INT AS is_foreign,
    sum(foreign_::INT) OVER (
        PARTITION BY customer_id ORDER BY txn_ts
        RANGE BETWEEN INTERVAL 3 DAYS PRECEDING AND INTERVAL 3 DAYS FOLLOWING
    ) - foreign_::INT AS foreign_nearby,
    hour(txn_ts) AS hour,
    (hour(txn_ts) >= {NIGHT_HOURS[0]} AND hour(txn_ts) < {NIGHT_HOURS[1]})::INT AS is_night,
    is_new_payee::INT AS is_new_payee,
    count(*) OVER (
        PARTITION BY customer_id ORDER BY txn_ts
        RANGE BETWEEN INTERVAL 30 MINUTES PRECEDING AND INTERVAL 30 MINUTES FOLLOWING
    ) AS n_1h,
    count(*) OVER (
        PARTITION BY customer_id ORDER BY txn_ts
        RANGE BETWEEN INTERVAL 12 HOURS PRECEDING AND INTERVAL 12 HOURS FOLLOWING
    ) AS n_24h,
    count(*) OVER (
        PARTITION BY customer_id, merchant_id ORDER BY txn_ts
        RANGE BETWEEN INTERVAL 15 MINUTES PRECEDING AND INTERVAL 15 MINUTES FOLLOWING
    ) AS same_merchant_30m,
    sum((amount < 0 AND size < {TINY_AMOUNT})::INT) OVER (
        PARTITION BY customer_id ORDER BY txn_ts
        RANGE BETWEEN INTERVAL 30 MINUTES PRECEDING AND INTERVAL 30 MINUTES FOLLOWING
    ) AS tiny_1h,
    sum(is_new_payee::INT) OVER (
        PARTITION BY customer_id ORDER BY txn_ts
        RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND INTERVAL 1 HOUR FOLLOWING
    ) AS new_payee_2h
FROM t
WINDOW cust AS (PARTITION BY customer_id)
ORDER BY customer_id, txn_ts, txn_id
"""


def transaction_features(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Every transaction with its features and labels, ordered by customer and time.

    ``con`` must have ``transactions`` and ``customers`` views. The category is added as an
    integer code (``category_code``) in sorted order of the names.
    """
    table: pa.Table = con.sql(_FEATURE_SQL).to_arrow_table()
    for name in ("category",):
        encoded = table[name].combine_chunks().dictionary_encode()
        names = np.array(encoded.dictionary.to_pylist(), dtype=object)
        order = np.argsort(names)
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
        table = table.append_column(f"{name}_code", pa.array(codes, pa.int64()))
    return table


def feature_matrix(table: pa.Table) -> NDArray[np.float64]:
    """The model's input: :data:`FEATURES` as columns of a float matrix."""
    return np.column_stack(
        [table[name].to_numpy(zero_copy_only=False).astype(np.float64) for name in FEATURES]
    )


def signals(table: pa.Table) -> NDArray[np.uint8]:
    """A bitmask per transaction of the :data:`SIGNALS` its features show (bit i = signal i)."""

    def col(name: str) -> NDArray[np.float64]:
        values: NDArray[np.float64] = table[name].to_numpy(zero_copy_only=False).astype(np.float64)
        return values

    debit = col("is_credit") == 0
    size = np.exp(col("log_amount")) - 1
    tests = (
        debit & (size < TINY_AMOUNT) & (col("tiny_1h") >= 3),
        debit & (col("new_payee_2h") >= 2),
        debit & (col("is_foreign") == 1) & (col("foreign_nearby") == 0) & (col("amount_z") > 2),
        debit & (col("amount_z") > 3),
        debit & (col("is_night") == 1) & (size > 300),
        debit & (col("same_merchant_30m") >= 4),
    )
    mask = np.zeros(table.num_rows, np.uint8)
    for bit, test in enumerate(tests):
        mask |= test.astype(np.uint8) << bit
    return mask


def signal_names(mask: int) -> list[str]:
    """The names of the signals set in ``mask``."""
    return [name for bit, name in enumerate(SIGNALS) if mask >> bit & 1]


#: Fraud probability the rules fallback gives each signal (the highest applies).
RULE_SCORES = (0.9, 0.85, 0.8, 0.6, 0.75, 0.55)
RULE_BASELINE = 0.02


def rule_scores(mask: NDArray[np.uint8]) -> NDArray[np.float64]:
    """The rules fallback's fraud probability per transaction from its signal bitmask."""
    score = np.full(len(mask), RULE_BASELINE)
    for bit, value in enumerate(RULE_SCORES):
        score = np.where(mask >> bit & 1, np.maximum(score, value), score)
    return score


@dataclass(frozen=True)
class ModelQuality:
    """Held-out quality of the fraud model (customers never seen in training)."""

    roc_auc: float
    precision: float
    recall: float
    threshold: float
    train_rows: int
    test_rows: int
    test_frauds: int
    recall_by_pattern: dict[str, float]
    rules_roc_auc: float


@dataclass(frozen=True)
class FraudModel:
    """The trained classifier and its held-out quality."""

    classifier: HistGradientBoostingClassifier
    quality: ModelQuality
    key: str

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fraud probability of each row of ``x`` (columns :data:`FEATURES`)."""
        if len(x) == 0:
            return np.zeros(0)
        with threadpool_limits(limits=THREADS):
            proba: NDArray[np.float64] = self.classifier.predict_proba(x)[:, 1]
        return proba


def held_out(customer_ids: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Whether each row belongs to a held-out customer (a seeded draw per customer)."""
    unique = np.unique(customer_ids)
    rng = np.random.default_rng(SEED)
    test = unique[rng.random(len(unique)) < TEST_SHARE]
    return np.isin(customer_ids, test)


def train(table: pa.Table, key: str = "") -> FraudModel:
    """Train on the customers not held out; measure on the held-out ones."""
    x = feature_matrix(table)
    y = table["is_fraud"].to_numpy(zero_copy_only=False).astype(bool)
    if y.sum() == 0 or y.all():
        raise CostlineError("the transactions hold no fraud labels of both kinds to learn from")
    test = held_out(table["customer_id"].to_numpy())
    categorical = [FEATURES.index(c) for c in CATEGORICAL]
    rng = np.random.default_rng(SEED)
    keep = ~test & (y | (rng.random(len(y)) < LEGIT_SAMPLE))
    weight = np.where(y[keep], 1.0, 1.0 / LEGIT_SAMPLE)
    classifier = HistGradientBoostingClassifier(
        max_iter=120,
        learning_rate=0.1,
        max_leaf_nodes=31,
        categorical_features=categorical,
        early_stopping=False,
        random_state=SEED,
    )
    with threadpool_limits(limits=THREADS):
        classifier.fit(x[keep], y[keep], sample_weight=weight)
    model = FraudModel(classifier, _empty_quality(), key)
    proba = model.predict(x[test])
    y_test = y[test]
    flagged = proba >= THRESHOLD
    patterns = table["fraud_pattern"].to_numpy(zero_copy_only=False)[test]
    by_pattern = {
        str(p): float(flagged[patterns == p].mean())
        for p in sorted({p for p in patterns if p is not None})
    }
    rules = rule_scores(signals(table))[test]
    both = bool(y_test.any() and not y_test.all())
    quality = ModelQuality(
        roc_auc=float(roc_auc_score(y_test, proba)) if both else float("nan"),
        precision=float(precision_score(y_test, flagged, zero_division=0)),
        recall=float(recall_score(y_test, flagged, zero_division=0)),
        threshold=THRESHOLD,
        train_rows=int(keep.sum()),
        test_rows=int(test.sum()),
        test_frauds=int(y_test.sum()),
        recall_by_pattern=by_pattern,
        rules_roc_auc=float(roc_auc_score(y_test, rules)) if both else float("nan"),
    )
    return FraudModel(classifier, quality, key)


def _empty_quality() -> ModelQuality:
    nan = float("nan")
    return ModelQuality(nan, nan, nan, THRESHOLD, 0, 0, 0, {}, nan)


def data_key(files: list[Path]) -> str:
    """A key for the data a model is trained on: model version, file names and sizes."""
    digest = hashlib.sha256(f"v{MODEL_VERSION}".encode())
    for path in sorted(files):
        digest.update(f"{path.as_posix()}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


#: Columns of the scored transactions the assistant keeps (features are dropped once scored).
SCORED_COLUMNS = (
    "txn_id",
    "customer_id",
    "txn_ts",
    "amount",
    "currency",
    "category",
    "merchant",
    "country",
)


def score(table: pa.Table, model: FraudModel) -> pa.Table:
    """The transactions with the model's and the rules' fraud probability and their signals."""
    mask = signals(table)
    return (
        table.select(list(SCORED_COLUMNS))
        .append_column(
            "fraud_probability", pa.array(model.predict(feature_matrix(table)), pa.float64())
        )
        .append_column("rule_probability", pa.array(rule_scores(mask), pa.float64()))
        .append_column("signals", pa.array(mask, pa.uint8()))
    )


def load_or_build(
    con: duckdb.DuckDBPyConnection, model_dir: Path, key: str
) -> tuple[pa.Table, FraudModel]:
    """The scored transactions and the model, from the cache under ``model_dir`` for ``key``,
    or computed now (features, training, scoring) and cached.

    Cache files are written atomically (a temporary file renamed into place), so workers
    starting together never read a half-written one.
    """
    model_path = model_dir / f"fraud-{key}.pkl"
    scored_path = model_dir / f"scored-{key}.parquet"
    model = _cached_model(model_path, key)
    if model is not None and scored_path.exists():
        try:
            return pq.read_table(scored_path), model
        except (OSError, pa.ArrowInvalid):
            pass  # a damaged cache: score again
    table = transaction_features(con)
    if model is None:
        model = train(table, key)
        _atomic_write(model_path, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        (model_dir / f"fraud-{key}.json").write_text(
            json.dumps(asdict(model.quality), indent=2) + "\n", encoding="utf-8"
        )
    scored = score(table, model)
    sink = pa.BufferOutputStream()
    pq.write_table(scored, sink)
    _atomic_write(scored_path, sink.getvalue().to_pybytes())
    # Caches of other data or model versions are stale now.
    for pattern in ("fraud-*.pkl", "fraud-*.json", "scored-*.parquet"):
        for old in model_dir.glob(pattern):
            if key not in old.name:
                old.unlink(missing_ok=True)
    return scored, model


def _cached_model(path: Path, key: str) -> FraudModel | None:
    if not path.exists():
        return None
    try:
        with path.open("rb") as f:
            cached = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return None  # a stale or damaged cache: train again
    return cached if isinstance(cached, FraudModel) and cached.key == key else None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def quality_dict(quality: ModelQuality) -> dict[str, Any]:
    """The quality figures as a JSON-ready mapping."""
    return asdict(quality)
