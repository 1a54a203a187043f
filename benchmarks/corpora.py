"""Public repositories the lint benchmarks run on, each at a pinned commit.

Nothing of them is kept in this repository: each is cloned once (bare) into a cache directory,
``$COSTLINE_BENCH_CACHE`` or ``~/.cache/costline/corpora``, and the directory the benchmark
needs is exported from the pinned commit next to it. ``COSTLINE_BENCH_GIT`` may point at a
directory of bare clones named ``owner+name`` to clone from instead of GitHub (a local mirror).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Corpus:
    """A repository of production SQL, and where in it the SQL and its catalogue are."""

    repo: str
    commit: str
    sql: str
    """Directory of the SQL files linted."""
    catalog: str | None
    """What ``--catalog`` is given (a directory of metadata, a dbt project), if anything."""
    description: str


CORPORA = (
    Corpus(
        "mozilla/bigquery-etl",
        "1c16343c97055fce8ada06621c8616d7e29e5657",
        "sql",
        "sql",
        "Mozilla's BigQuery ETL: scheduled queries, views, UDFs, checks (Jinja), metadata.yaml",
    ),
    Corpus(
        "GoogleCloudPlatform/cortex-data-foundation",
        "2682b49df7b48fe4c6441613830e90a3fbad65c0",
        "src",
        None,
        "Google Cortex Framework: SAP/Salesforce/marketing reporting, Jinja-templated scripts",
    ),
    Corpus(
        "cal-itp/data-infra",
        "f20856f3f4cfe37f9e36f42bfe3ea22f6d4a2cfa",
        "warehouse/models",
        "warehouse",
        "California Integrated Travel Project: a dbt BigQuery warehouse (GTFS, payments)",
    ),
)

PEER = Corpus(
    "GoogleCloudPlatform/bigquery-antipattern-recognition",
    "8ea9eaf1de871141894a13e3ef7e31725c0471e1",
    "",
    None,
    "Google's anti-pattern detector: its JUnit cases and samples",
)


def cache_dir() -> Path:
    """Where clones and exports are kept."""
    root = os.environ.get("COSTLINE_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "costline" / "corpora"


def _slug(repo: str) -> str:
    return repo.replace("/", "+")


def git_dir(corpus: Corpus) -> Path:
    """A bare clone holding the corpus's pinned commit (cloned on first use)."""
    path = cache_dir() / f"{_slug(corpus.repo)}.git"
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get("COSTLINE_BENCH_GIT")
    source = (
        str(Path(mirror) / _slug(corpus.repo))
        if mirror
        else f"https://github.com/{corpus.repo}.git"
    )
    # Blobs arrive on demand: only the exported directory is ever downloaded in full.
    partial = [] if mirror else ["--filter=blob:none"]
    subprocess.run(["git", "clone", "--quiet", "--bare", *partial, source, str(path)], check=True)
    return path


def export(corpus: Corpus, subdir: str | None = None) -> Path:
    """The corpus's ``subdir`` (default: its SQL and catalogue directories) at the pinned
    commit, as files on disk."""
    wanted = [d for d in ({subdir} if subdir else {corpus.sql, corpus.catalog or corpus.sql})]
    root = cache_dir() / f"{_slug(corpus.repo)}@{corpus.commit[:12]}"
    marker = root / ".exported"
    done = set(marker.read_text().split("\n")) if marker.is_file() else set()
    missing = [d for d in wanted if d not in done]
    if missing:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            subprocess.run(
                ["git", f"--git-dir={git_dir(corpus)}", "archive", corpus.commit, *missing],
                stdout=archive,
                check=True,
            )
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(root, filter="data")
        marker.write_text("\n".join(sorted(done | set(missing))))
    return root
