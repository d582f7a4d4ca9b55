"""Task data: readers for the CS224N files, the treebank's trees and the Hub datasets, several training
sources per task, tokenization, padding and batching."""
from .folds import assign_folds, rows_outside_fold
from .hub import HUB_SOURCES, HUB_TREES, HubSource, load_hub_sst_trees, load_hub_task
from .implied_pairs import IMPLIED_SOURCE, ImpliedPairOptions, ImpliedPairsReport, implied_pairs, implies_pairs
from .readers import read_task_file, read_task_splits
from .schema import (
    TASK_SCHEMAS,
    BadRow,
    DataError,
    ReadReport,
    TaskSchema,
    check_bad_row_share,
    task_schema,
)
from .sources import (
    EXTRA_TRAINING_FILES,
    SourceReport,
    SourcesReport,
    default_training_sources,
    parse_sources,
    parse_task_sources,
    read_training_sources,
    row_texts,
    source_name,
)
from .tokenization import (
    MultitaskDataCollator,
    TruncationReport,
    example_lengths,
    length_grouped_sampler,
    length_sorted_batches,
    tokenize_for_sequence_classification,
    tokenize_task,
)
from .trees import Phrase, PhraseOptions, TreeReadReport, TreeSyntaxError, parse_tree, read_tree_file

__all__ = [
    "TASK_SCHEMAS",
    "TaskSchema",
    "task_schema",
    "BadRow",
    "DataError",
    "check_bad_row_share",
    "ReadReport",
    "read_task_file",
    "read_task_splits",
    "HUB_SOURCES",
    "HUB_TREES",
    "HubSource",
    "load_hub_task",
    "load_hub_sst_trees",
    "Phrase",
    "PhraseOptions",
    "TreeReadReport",
    "TreeSyntaxError",
    "parse_tree",
    "read_tree_file",
    "IMPLIED_SOURCE",
    "ImpliedPairOptions",
    "ImpliedPairsReport",
    "implied_pairs",
    "implies_pairs",
    "EXTRA_TRAINING_FILES",
    "SourceReport",
    "SourcesReport",
    "default_training_sources",
    "parse_sources",
    "parse_task_sources",
    "read_training_sources",
    "row_texts",
    "source_name",
    "tokenize_for_sequence_classification",
    "tokenize_task",
    "TruncationReport",
    "MultitaskDataCollator",
    "example_lengths",
    "length_grouped_sampler",
    "length_sorted_batches",
    "assign_folds",
    "rows_outside_fold",
]
