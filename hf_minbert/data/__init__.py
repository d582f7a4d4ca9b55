"""Task data: readers for the CS224N files and the Hub datasets, tokenization, padding and batching."""
from .folds import assign_folds, rows_outside_fold
from .hub import HUB_SOURCES, HubSource, load_hub_task
from .readers import read_task_file, read_task_splits
from .schema import TASK_SCHEMAS, BadRow, DataError, ReadReport, TaskSchema, task_schema
from .tokenization import (
    MultitaskDataCollator,
    TruncationReport,
    example_lengths,
    length_grouped_sampler,
    length_sorted_batches,
    tokenize_task,
)

__all__ = [
    "TASK_SCHEMAS",
    "TaskSchema",
    "task_schema",
    "BadRow",
    "DataError",
    "ReadReport",
    "read_task_file",
    "read_task_splits",
    "HUB_SOURCES",
    "HubSource",
    "load_hub_task",
    "tokenize_task",
    "TruncationReport",
    "MultitaskDataCollator",
    "example_lengths",
    "length_grouped_sampler",
    "length_sorted_batches",
    "assign_folds",
    "rows_outside_fold",
]
