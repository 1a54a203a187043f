"""The cached fraud model is data, never code: plain arrays read without pickle, whose
probabilities are the classifier's own."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import duckdb
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from costline.assistant import fraud
from costline.assistant.bank import bank_tables, load_bank


class _Planted:
    """What an attacker writes into the workspace: unpickling it opens (creates) a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _features(workspace: Path) -> tuple[np.ndarray, np.ndarray]:
    con = duckdb.connect()
    try:
        for name, paths in bank_tables(workspace).items():
            listing = ", ".join(f"'{p.as_posix()}'" for p in paths)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}])")
        table = fraud.transaction_features(con)
    finally:
        con.close()
    x = fraud.feature_matrix(table)
    y = table["is_fraud"].to_numpy(zero_copy_only=False).astype(bool)
    return x, y


def test_the_stored_trees_predict_what_the_classifier_predicts(bank_dir: Path) -> None:
    x, y = _features(bank_dir)
    categorical = [fraud.FEATURES.index(c) for c in fraud.CATEGORICAL]
    classifier = HistGradientBoostingClassifier(
        max_iter=30, categorical_features=categorical, early_stopping=False, random_state=1
    ).fit(x, y)
    buffer = io.BytesIO()
    np.savez(buffer, **fraud.Trees.from_classifier(classifier).arrays())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        trees = fraud.Trees.from_arrays(stored)
    # Unseen and missing categories, and missing numbers, take the classifier's way too.
    probe = x[:2_000].copy()
    probe[:20, -1] = 999
    probe[20:40, -1] = np.nan
    probe[40:60, -1] = -3
    probe[60:80, 1] = np.nan
    model = fraud.FraudModel(trees, fraud._empty_quality(), "k")
    assert np.abs(model.predict(probe) - classifier.predict_proba(probe)[:, 1]).max() < 1e-12


def test_a_planted_pickle_never_runs_and_the_model_still_loads(
    bank_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    key = fraud.data_key([p for paths in bank_tables(bank_dir).values() for p in paths])
    marker = tmp_path / "pwned"
    planted = pickle.dumps(_Planted(marker))
    # At the path older versions read, and as the cache file itself (an object array).
    (models / f"fraud-{key}.pkl").write_bytes(planted)
    with (models / f"fraud-{key}.npz").open("wb") as f:
        np.savez(f, header=np.array([_Planted(marker)], dtype=object))
    bank = load_bank(bank_dir, models)
    assert not marker.exists()
    assert bank.model.key == key and bank.model.quality.roc_auc > 0.9
    assert not list(models.glob("*.pkl"))
    # The retrained cache reads back as the same model, again without running anything.
    again = fraud.read_model(models / f"fraud-{key}.npz", key)
    assert again is not None and again.quality == bank.model.quality
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage",
    [
        b"not a zip file",
        b"PK\x03\x04 truncated",
    ],
)
def test_a_damaged_cache_is_ignored(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "fraud-k.npz"
    path.write_bytes(damage)
    assert fraud.read_model(path, "k") is None


def test_arrays_that_do_not_describe_trees_are_refused(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(300, 2))
    classifier = HistGradientBoostingClassifier(max_iter=3).fit(x, x[:, 0] > 0)
    model = fraud.FraudModel(fraud.Trees.from_classifier(classifier), fraud._empty_quality(), "k")
    path = tmp_path / "fraud-k.npz"
    path.write_bytes(fraud.model_bytes(model))
    assert fraud.read_model(path, "k") is not None
    assert fraud.read_model(path, "other-key") is None
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["left"] = arrays["left"] + 10_000  # children outside their tree
    with path.open("wb") as f:
        np.savez(f, **arrays)
    assert fraud.read_model(path, "k") is None
