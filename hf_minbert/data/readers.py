"""Readers for the CS224N task files (`ids-sst-*.csv`, `quora-*.csv`, `sts-*.csv`, `ids-cfimdb-*.csv`).

The files are tab-separated with a header line; the first column is an unnamed row index, and the
`*-test-student` files of SST and CFIMDB carry one more unnamed float column. Columns are therefore
found by their header names, never by position. Quoting is CSV-style but irregular (the course's own
`csv.DictReader` read it the same way, so this reader does too), and every record is one line: each line
is parsed on its own, so a quote left open is a bad row naming the line (and column) where it opens,
instead of a record that swallows the lines after it. So is a field of a labelled file that opens with a quote
closed before the field ends (`"A" or B`, which the csv module reads as `A or B`; an unlabelled test file is read
so, as the course's reader reads it, since every id needs its prediction). A row whose field count differs from the
header's is rejected too, and a line that is not UTF-8 is an error naming it.
"""
import csv
from pathlib import Path

import datasets

from .lines import FileLines
from .schema import TASK_SCHEMAS, DataError, TaskRowsBuilder, check_bad_row_share, task_schema


def read_task_file(path, task: str, *, labelled=None, skip_bad_rows: bool = False, max_bad_row_share=None):
    """Read one CS224N file into `task`'s schema; returns `(datasets.Dataset, ReadReport)`.

    labelled: True requires the label column, False ignores it, None (default) reads it when the header
    has it. skip_bad_rows: drop (and report) rows that break the schema instead of raising `DataError`.
    max_bad_row_share: with skip_bad_rows, more bad rows than this share of the file's rows is a `DataError`
    all the same (`check_bad_row_share`); None: no limit.
    """
    schema = task_schema(task)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{task} data file not found: {path}")
    _check_named_for_task(path, schema)
    lines = FileLines(path)
    _, header = next(lines, (1, None))
    if header is None:
        raise DataError(f"{path}: empty file; expected a header line naming the columns")
    header = _fields(header, path, 1)
    positions = _column_positions(header, schema, labelled, path)
    labelled = schema.label_column in positions
    builder = TaskRowsBuilder(schema, labelled, str(path), skip_bad_rows)
    for number, line in lines:
        fields, location = _fields(line, path, number), f"line {number}"
        open_quote = next((index for index, value in enumerate(fields) if "\n" in value), None)
        if open_quote is not None:
            column = header[open_quote] if open_quote < len(header) else f"field {open_quote + 1}"
            builder.reject(location, column, "a quote opened in this field is never closed on its line")
        elif len(fields) != len(header):
            builder.reject(location, None, f"{len(fields)} tab-separated fields where the header has {len(header)}")
        # An unlabelled (test) file is read as the course's reader reads it: every id must get its prediction.
        elif labelled and '"' in line and (early := _quote_closed_early(line)) is not None:
            field, character = early
            column = header[field] if field < len(header) else f"field {field + 1}"
            builder.reject(location, column, f"the quote opening this field closes at character {character}, before "
                           "the field ends, and a CSV reader drops both (\"A\" or B reads as A or B): quote the whole "
                           "field and double the quotes inside it")
        else:
            builder.add(location, {column: fields[index] for column, index in positions.items()})
    dataset, report = builder.finish()
    report.sha256 = lines.sha256
    check_bad_row_share(report, max_bad_row_share)
    return dataset, report


def _check_named_for_task(path: Path, schema):
    """A course file named for another task with the same columns is refused. SST's and CFIMDB's files
    share their columns and CFIMDB's 0/1 labels are valid SST grades, so only the name tells them apart:
    read as the other task, the file would train or score silently wrong."""
    name = path.name.lower()
    if name.startswith(schema.file_prefix + "-"):
        return
    for other in TASK_SCHEMAS.values():
        if other.name != schema.name and other.columns(True) == schema.columns(True) \
                and name.startswith(other.file_prefix + "-"):
            raise DataError(f"{path}: named like {other.name}'s files ({other.file_prefix}-*), given as {schema.name} "
                            f"data; pass it as {other.name} data, or rename it if it holds {schema.name} rows")


# Every record is one line read whole, so a field can be no longer than its line: the csv module's default
# limit of 128 KiB per field would only stop a long (valid) row, and with it the whole read.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def _fields(line, path, number):
    """The tab-separated fields of one line. The newline given to the parser ends up inside a field only
    when a quote in that field is still open at the end of the line."""
    try:
        return next(csv.reader([line + "\n"], delimiter="\t"))
    except csv.Error as error:
        raise DataError(f"{path}, line {number}: unreadable CSV record ({error})") from None


def _quote_closed_early(line):
    """(field index, character number) of the first field that opens with a quote and goes on after the quote
    that closes it (`"A" or B`), else None. The course's reader, and the csv module's lenient default, read such a
    field without both quotes; a field quoted whole, with its own quotes doubled, is read as written."""
    field, start = 0, 0
    while True:
        end = line.find("\t", start)
        end = len(line) if end < 0 else end
        if line.startswith('"', start):
            close = start + 1
            while (close := line.find('"', close)) >= 0 and line.startswith('""', close):
                close += 2
            if close < 0:  # a quote left open: a bad row of its own
                return None
            end = line.find("\t", close)
            end = len(line) if end < 0 else end
            if line[close + 1:end].strip():
                return field, close + 1
        if end >= len(line):
            return None
        field, start = field + 1, end + 1


def _column_positions(header, schema, labelled, path):
    """Index of each schema column in the header; a missing required column is an error."""
    required = list(schema.columns(labelled=bool(labelled)))
    optional = [schema.label_column] if labelled is None else []
    positions = {}
    for column in required + optional:
        if header.count(column) > 1:  # which of the two holds the task's values cannot be told
            raise DataError(f"{path}, line 1 (header): column {column!r} appears {header.count(column)} times")
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
