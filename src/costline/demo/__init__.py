"""The demo workspace: a finance warehouse, its job history and the ground truth.

``build_workspace`` writes everything ``costline`` needs to run offline: local partitioned and
clustered tables with a catalogue of their production sizes, the bank data the financial
assistant serves, 90 days of ``INFORMATION_SCHEMA.JOBS``-shaped history with the anti-patterns
of "Architecture Over Alerts" planted in it, and a ground truth of what was planted and what it
cost.
"""

from costline.demo.bank import FRAUD_PATTERNS, TENANTS, BankData, generate_bank
from costline.demo.catalog import demo_catalog
from costline.demo.history import PLANTED, generate_history, normalized_hash
from costline.demo.truth import GroundTruth, Period, PlantedPattern
from costline.demo.warehouse import DEFAULT_END, DEFAULT_POSITIONS_ROWS
from costline.demo.workspace import Workspace, build_workspace

__all__ = [
    "DEFAULT_END",
    "DEFAULT_POSITIONS_ROWS",
    "FRAUD_PATTERNS",
    "PLANTED",
    "TENANTS",
    "BankData",
    "GroundTruth",
    "Period",
    "PlantedPattern",
    "Workspace",
    "build_workspace",
    "demo_catalog",
    "generate_bank",
    "generate_history",
    "normalized_hash",
]
