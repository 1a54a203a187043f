"""The lint rules, one per module; ``ALL_RULES`` lists them in code order.

Each rule's docstring is its documentation (``costline rules CODE``) and its examples are
tests. Codes are stable: a retired rule's code is never reused.
"""

from __future__ import annotations

from costline.warehouse.rules.base import Rule, RuleDoc, Severity, rule_doc
from costline.warehouse.rules.cl001_full_table_merge import FullTableMerge
from costline.warehouse.rules.cl002_missing_partition_filter import MissingPartitionFilter
from costline.warehouse.rules.cl003_non_sargable_partition_filter import (
    NonSargablePartitionFilter,
)
from costline.warehouse.rules.cl004_unscoped_dml import UnscopedDml
from costline.warehouse.rules.cl005_unpartitioned_time_filter import UnpartitionedTimeFilter
from costline.warehouse.rules.cl006_filter_misses_clustering import FilterMissesClustering
from costline.warehouse.rules.cl007_clustering_prefix_skipped import ClusteringPrefixSkipped
from costline.warehouse.rules.cl008_function_on_clustering_column import (
    FunctionOnClusteringColumn,
)
from costline.warehouse.rules.cl009_clustering_columns_compared import (
    ClusteringColumnsCompared,
)
from costline.warehouse.rules.cl010_select_star import SelectStar
from costline.warehouse.rules.cl011_semi_join_without_aggregation import (
    SemiJoinWithoutAggregation,
)
from costline.warehouse.rules.cl012_cte_evaluated_multiple_times import (
    CteEvaluatedMultipleTimes,
)
from costline.warehouse.rules.cl013_order_by_without_limit import OrderByWithoutLimit
from costline.warehouse.rules.cl014_regexp_where_like_does import RegexpWhereLikeDoes
from costline.warehouse.rules.cl015_latest_record_row_number import LatestRecordRowNumber
from costline.warehouse.rules.cl016_dynamic_predicate import DynamicPredicate
from costline.warehouse.rules.cl017_where_predicate_order import WherePredicateOrder
from costline.warehouse.rules.cl018_join_order import JoinOrder
from costline.warehouse.rules.cl019_temp_table_not_dropped import TempTableNotDropped
from costline.warehouse.rules.cl020_table_created_and_dropped import TableCreatedAndDropped
from costline.warehouse.rules.cl021_join_without_condition import JoinWithoutCondition
from costline.warehouse.rules.cl022_self_join_window import SelfJoinWindow
from costline.warehouse.rules.cl023_single_row_inserts import SingleRowInserts

ALL_RULES: tuple[type[Rule], ...] = (
    FullTableMerge,
    MissingPartitionFilter,
    NonSargablePartitionFilter,
    UnscopedDml,
    UnpartitionedTimeFilter,
    FilterMissesClustering,
    ClusteringPrefixSkipped,
    FunctionOnClusteringColumn,
    ClusteringColumnsCompared,
    SelectStar,
    SemiJoinWithoutAggregation,
    CteEvaluatedMultipleTimes,
    OrderByWithoutLimit,
    RegexpWhereLikeDoes,
    LatestRecordRowNumber,
    DynamicPredicate,
    WherePredicateOrder,
    JoinOrder,
    TempTableNotDropped,
    TableCreatedAndDropped,
    JoinWithoutCondition,
    SelfJoinWindow,
    SingleRowInserts,
)


def get_rule(code: str) -> type[Rule] | None:
    """The rule with ``code`` (or readable ``name``), case-insensitive."""
    key = code.strip().upper()
    return next((r for r in ALL_RULES if key in (r.code, r.name.upper())), None)


__all__ = ["ALL_RULES", "Rule", "RuleDoc", "Severity", "get_rule", "rule_doc"]
