"""Readers for the CS224N task files (`ids-sst-*.csv`, `quora-*.csv`, `sts-*.csv`, `ids-cfimdb-*.csv`).

The files are tab-separated with a header line; the first column is an unnamed row index, and the
`*-test-student` files of SST and CFIMDB carry one more unnamed float column. Columns are therefore
found by their header names, never by position. Quoting is CSV-style but irregular (the course's own
`csv.DictReader` read it the same way, so this reader does too); what irregular quoting can break is
caught instead of mis-parsed: a quote left open joins lines into one record, and a row whose field count
differs from the header's is rejected. Both name the line.
"""
import csv
from pathlib import Path

import datasets

from .schema import DataError, TaskRowsBuilder, task_schema


def read_task_file(path, task: str, *, labelled=None, skip_bad_rows: bool = False):
    """Read one CS224N file into `task`'s schema; returns `(datasets.Dataset, ReadReport)`.

    labelled: True requires the label column, False ignores it, None (default) reads it when the header
    has it. skip_bad_rows: drop (and report) rows that break the schema instead of raising `DataError`.
    """
    schema = task_schema(task)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{task} data file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = _next_record(reader, path)
        if header is None:
            raise DataError(f"{path}: empty file; expected a header line naming the columns")
        positions = _column_positions(header, schema, labelled, path)
        builder = TaskRowsBuilder(schema, schema.label_column in positions, str(path), skip_bad_rows)
        last_line = reader.line_num
        while (fields := _next_record(reader, path)) is not None:
            first_line, last_line = last_line + 1, reader.line_num
            location = f"line {first_line}"
            if last_line > first_line:
                problem = f"one record runs over lines {first_line}-{last_line}: a quote opened in it is never closed"
                builder.reject(location, None, problem)
            elif len(fields) != len(header):
                builder.reject(location, None, f"{len(fields)} tab-separated fields where the header has {len(header)}")
            else:
                builder.add(location, {column: fields[index] for column, index in positions.items()})
    return builder.finish()


def _next_record(reader, path):
    try:
        return next(reader, None)
    except csv.Error as error:
        raise DataError(f"{path}, line {reader.line_num}: unreadable CSV record ({error})") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}, after line {reader.line_num}: not UTF-8 text ({error})") from None


def _column_positions(header, schema, labelled, path):
    """Index of each schema column in the header; a missing required column is an error."""
    required = list(schema.columns(labelled=bool(labelled)))
    optional = [schema.label_column] if labelled is None else []
    positions = {}
    for column in required + optional:
        if column in header:
            positions[column] = header.index(column)
        elif column in required:
            found = ", ".join(repr(name) for name in header)
            raise DataError(
                f"{path}, line 1 (header): missing column {column!r} for task {schema.name!r}; found {found}"
            )
    return positions


def read_task_splits(data_dir, task: str, splits=("train", "dev"), *, skip_bad_rows: bool = False):
    """The CS224N files of `task` in `data_dir` as a `DatasetDict` keyed by split, plus a report per split.

    "test" reads the `*-test-student.csv` file, which has no labels.
    """
    schema = task_schema(task)
    dataset_dict, reports = datasets.DatasetDict(), {}
    for split in splits:
        dataset_dict[split], reports[split] = read_task_file(
            Path(data_dir) / schema.file_name(split), task, labelled=split != "test", skip_bad_rows=skip_bad_rows
        )
    return dataset_dict, reports
