"""One uniform schema per task, and the row checks every loader (CS224N files, Hub datasets) shares.

A task's rows are `id`, its text column(s) and, when labelled, its label column:

    sst     id, sentence, sentiment (int 0..4)
    para    id, sentence1, sentence2, is_duplicate (float 0.0 / 1.0)
    sts     id, sentence1, sentence2, similarity (float 0..5)
    cfimdb  id, sentence, sentiment (int 0 / 1)

A task of one's own gets a schema with `register_task_schema(TaskSchema(...))`; from then on its raw rows are
read, checked, tokenized, trained on and scored like these (the `id` column is optional in Python rows).

A row that breaks the schema is an error naming its source, line (or row) and column; with
`skip_bad_rows=True` it is dropped instead and counted in the `ReadReport`. Nothing is dropped silently.
"""
import math
import re
from dataclasses import asdict, dataclass, field

import datasets
import numpy as np
import pyarrow as pa

from hf_minbert.configuration_minbert import RESERVED_TASK_NAMES

from .text_form import text_key

# Column names that already mean something in a task's rows: the row id, and what tokenized rows hold.
RESERVED_COLUMNS = {"id", "labels", "input_ids", "attention_mask", "token_type_ids", "input_ids_a", "attention_mask_a",
                    "input_ids_b", "attention_mask_b"}


@dataclass(frozen=True)
class TaskSchema:
    name: str
    text_columns: tuple  # ("sentence",) or ("sentence1", "sentence2")
    label_column: str
    label_dtype: str  # "int64" or "float64"
    label_values: tuple = None  # the allowed labels of a classification task
    label_range: tuple = None  # [low, high] of a regression task
    file_prefix: str = ""  # CS224N file names: f"{file_prefix}-{train|dev|test-student}.csv"
    prediction_header: str = ""  # the course's column name in submission files
    # shipped metric module that scores the task: "accuracy" or "correlation" (default: correlation for a label_range)
    metric: str = None
    # A pair task whose label does not depend on the order of its two sentences (a paraphrase, a similarity):
    # (b, a) is then the same example as (a, b). Not so by default: entailment, question-answer, ...
    symmetric: bool = False

    def __post_init__(self):
        where = f"TaskSchema {self.name!r}"
        for name in ("text_columns", "label_values", "label_range"):  # lists as given, kept as tuples (hashable)
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"{where}: the name must be an identifier (it names flags such as --<task>_dev)")
        if self.name in RESERVED_TASK_NAMES:
            raise ValueError(f"{where}: {', '.join(RESERVED_TASK_NAMES)} name the dev metrics beside the tasks' own; "
                             "name the task otherwise")
        if not (isinstance(self.text_columns, tuple) and len(self.text_columns) in (1, 2)
                and all(isinstance(column, str) and column for column in self.text_columns)):
            raise ValueError(f"{where}: text_columns must be a tuple of one column name or of a pair's two, got "
                             f"{self.text_columns!r}")
        for name in ("label_column", "file_prefix", "prediction_header"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{where}: {name} must be a string, got {getattr(self, name)!r}")
        for name in ("label_values", "label_range"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), tuple):
                raise ValueError(f"{where}: {name} must be a list of numbers, got {getattr(self, name)!r}")
        columns = (*self.text_columns, self.label_column)
        if len(set(columns)) != len(columns) or set(columns) & RESERVED_COLUMNS:
            raise ValueError(f"{where}: the text and label columns must be distinct and none of "
                             f"{', '.join(sorted(RESERVED_COLUMNS))}, got {columns}")
        if self.label_dtype not in ("int64", "float64"):
            raise ValueError(f"{where}: label_dtype must be 'int64' or 'float64', got {self.label_dtype!r}")
        if (self.label_values is None) == (self.label_range is None):
            raise ValueError(f"{where}: give the labels as label_values (classes) or as label_range (scores), one of them")
        if self.label_range is not None and not (len(self.label_range) == 2 and all(map(_is_number, self.label_range))
                                                 and self.label_range[0] < self.label_range[1]):
            raise ValueError(f"{where}: label_range must be (low, high), two finite numbers with low < high, got "
                             f"{self.label_range}")
        if self.label_range is not None and self.label_dtype != "float64":
            raise ValueError(f"{where}: scores in a label_range need label_dtype='float64' (whole numbers would cut them)")
        if self.label_values is not None and (len(self.label_values) < 2 or len(set(self.label_values)) != len(self.label_values)
                                              or not all(_is_number(value) for value in self.label_values)):
            raise ValueError(f"{where}: label_values must be two or more distinct numbers, got {self.label_values}")
        if self.label_dtype == "int64" and any(value != int(value) for value in self.label_values or ()):
            raise ValueError(f"{where}: label_dtype='int64' needs whole-number label_values, got {self.label_values}")
        if not isinstance(self.symmetric, bool) or (self.symmetric and not self.is_pair):
            raise ValueError(f"{where}: symmetric is True or False, and True only for a pair task, got {self.symmetric!r}")
        if self.metric is None:
            object.__setattr__(self, "metric", "correlation" if self.label_range is not None else "accuracy")
        if self.metric not in ("accuracy", "correlation"):
            raise ValueError(f"{where}: metric must be 'accuracy' or 'correlation', got {self.metric!r}")
        # A task of one's own names its files and its prediction column after itself.
        object.__setattr__(self, "file_prefix", self.file_prefix or self.name)
        object.__setattr__(self, "prediction_header", self.prediction_header or f"Predicted_{self.label_column}")

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    def columns(self, labelled: bool) -> tuple:
        return ("id", *self.text_columns, *((self.label_column,) if labelled else ()))

    def features(self, labelled: bool) -> datasets.Features:
        features = {"id": datasets.Value("string")}
        features.update({column: datasets.Value("string") for column in self.text_columns})
        if labelled:
            features[self.label_column] = datasets.Value(self.label_dtype)
        return datasets.Features(features)

    def file_name(self, split: str) -> str:
        """The CS224N file of `split` ("train", "dev" or "test"; test files carry no labels)."""
        if split not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {split!r}; expected train, dev or test")
        return f"{self.file_prefix}-{'test-student' if split == 'test' else split}.csv"

    def describe_labels(self) -> str:
        if self.label_values is not None:
            return ", ".join(str(value) for value in self.label_values)
        low, high = self.label_range
        return f"a number in [{low}, {high}]"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Every task whose raw rows can be read, by name: the course's, and those given by `register_task_schema`.
# The course's submission files spell STS's column "Predicted_Similiarity" (sic): kept, so that files
# written here are drop-in replacements for the ones its scripts wrote and read.
TASK_SCHEMAS = {
    "sst": TaskSchema(
        "sst", ("sentence",), "sentiment", "int64", label_values=(0, 1, 2, 3, 4),
        file_prefix="ids-sst", prediction_header="Predicted_Sentiment",
    ),
    "para": TaskSchema(
        "para", ("sentence1", "sentence2"), "is_duplicate", "float64", label_values=(0.0, 1.0),
        file_prefix="quora", prediction_header="Predicted_Is_Paraphrase", symmetric=True,
    ),
    "sts": TaskSchema(
        "sts", ("sentence1", "sentence2"), "similarity", "float64", label_range=(0.0, 5.0),
        file_prefix="sts", prediction_header="Predicted_Similiarity", metric="correlation", symmetric=True,
    ),
    "cfimdb": TaskSchema(
        "cfimdb", ("sentence",), "sentiment", "int64", label_values=(0, 1),
        file_prefix="ids-cfimdb", prediction_header="Predicted_Sentiment",
    ),
}


def register_task_schema(schema: TaskSchema, exist_ok: bool = False) -> TaskSchema:
    """Give a task of one's own (a head of that name in the model's `tasks`) a data schema, so that its raw rows
    are read and scored like the course tasks'. A name that already has another schema is refused unless
    `exist_ok`, which replaces it (the same schema again is always accepted)."""
    if not isinstance(schema, TaskSchema):
        raise TypeError(f"register_task_schema takes a TaskSchema, got {type(schema).__name__}")
    known = TASK_SCHEMAS.get(schema.name)
    if known is not None and known != schema and not exist_ok:
        raise ValueError(f"task {schema.name!r} already has a data schema ({known}); pass exist_ok=True to replace it")
    TASK_SCHEMAS[schema.name] = schema
    return schema


def has_task_schema(task: str) -> bool:
    return task in TASK_SCHEMAS


# The schemas this package ships, as shipped: a model records only a schema of one's own.
SHIPPED_SCHEMAS = dict(TASK_SCHEMAS)


def record_task_schemas(config, tasks) -> None:
    """Write into `config`'s task specs the data schema of each of `tasks` that has one of one's own (registered,
    not shipped), so that the saved model carries it (`register_saved_schemas` reads it back)."""
    for task in tasks:
        schema = TASK_SCHEMAS.get(task)
        if schema is not None and schema != SHIPPED_SCHEMAS.get(task) and task in config.tasks:
            record = {name: list(value) if isinstance(value, tuple) else value for name, value in asdict(schema).items()}
            config.tasks[task]["data_schema"] = record


def register_saved_schemas(tasks: dict, source) -> None:
    """Register the data schemas a saved model's task specs (`tasks`, its config's) carry, so that this process reads
    and scores those tasks' rows; a task registered here with another schema is refused, naming `source`."""
    for task, spec in (tasks or {}).items():
        record = spec.get("data_schema") if isinstance(spec, dict) else None
        if not record:
            continue
        try:
            saved = TaskSchema(**record)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: task {task!r}: its saved data_schema is not a schema: {error}") from None
        known = TASK_SCHEMAS.get(task)
        if known is not None and known != saved:
            raise ValueError(f"{source}: task {task!r} was trained on rows of the schema {saved}, but this process "
                             f"reads the task by another: {known}")
        TASK_SCHEMAS[task] = saved


def head_mismatch(schema: TaskSchema, spec: dict):
    """Why a task head (its spec in the model config's `tasks`) cannot learn from and be scored on rows of
    `schema`, or None: the same number of sentences, and labels of the kind the head predicts."""
    reads_pairs = spec["pair_encoding"] != "single"
    if reads_pairs != schema.is_pair:
        return (f"its rows hold {'sentence pairs' if schema.is_pair else 'single sentences'} but its head reads "
                f"{'pairs' if reads_pairs else 'single sentences'} (pair_encoding={spec['pair_encoding']!r})")
    kind, labels = spec["kind"], schema.label_values
    if kind == "classification" and (schema.metric != "accuracy" or labels != tuple(range(len(spec["labels"])))):
        return (f"its head has {len(spec['labels'])} classes, so its labels must be the class numbers "
                f"{tuple(range(len(spec['labels'])))} scored by accuracy; the schema has {schema.describe_labels()}")
    if kind == "binary" and (schema.metric != "accuracy" or labels is None or not set(labels) <= {0, 1}):
        return f"its head is binary, so its labels must be 0 and 1 scored by accuracy; the schema has {schema.describe_labels()}"
    if kind == "regression":
        low, high = spec.get("label_range") or (-math.inf, math.inf)
        if schema.metric != "correlation" or schema.label_range is None or not low <= schema.label_range[0] <= schema.label_range[1] <= high:
            return (f"its head predicts scores in [{low}, {high}], so its labels must be a range within it scored by "
                    f"correlation; the schema has {schema.describe_labels()}")
    return None


def task_schema(task: str) -> TaskSchema:
    if task not in TASK_SCHEMAS:
        raise ValueError(f"unknown task {task!r}; tasks with a data schema: {', '.join(TASK_SCHEMAS)} (a task of "
                         "one's own: hf_minbert.data.register_task_schema(TaskSchema(...)))")
    return TASK_SCHEMAS[task]


@dataclass(frozen=True)
class BadRow:
    source: str  # a file path, or a Hub dataset and split
    location: str  # "line 12" (files) or "row 12" (datasets)
    column: str  # None when the row as a whole is malformed
    problem: str

    def where(self) -> str:
        return self.location + (f", column {self.column!r}" if self.column else "")

    @property
    def number(self) -> int:
        """The line (files) or row (datasets) number of `location`."""
        return int(self.location.split()[1])

    def __str__(self):
        return f"{self.source}, {self.where()}: {self.problem}"


class DataError(ValueError):
    """Bad input data; the message names the source, line or row, and column."""


SKIP_HINT = "pass skip_bad_rows=True (--skip_bad_rows on the command line) to skip such rows and count them"


@dataclass
class ReadReport:
    """What a loader kept and skipped from one source."""

    source: str
    task: str
    rows: int = 0
    skipped: list = field(default_factory=list)  # BadRow per dropped row
    repeated_texts: int = 0  # rows whose text(s) repeat an earlier row: kept, as in the data, but counted
    sha256: str = None  # of the file's bytes as they were read (None for rows that were not read from a file)

    MAX_SHOWN = 5  # bad rows spelled out in the one-line summary

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    @property
    def skipped_lines(self) -> list:
        """The line (or row) number of every skipped row, in file order."""
        return [bad.number for bad in self.skipped]

    def first_skipped(self, limit: int = MAX_SHOWN) -> list:
        """The first `limit` skipped rows, each as "line 4, column 'sentence': problem"."""
        return [f"{bad.where()}: {bad.problem}" for bad in self.skipped[:limit]]

    def as_dict(self, limit: int = MAX_SHOWN) -> dict:
        """A JSON-ready summary (for metrics.json and the model card)."""
        return {
            "source": self.source, "task": self.task, "rows": self.rows, "skipped_rows": self.skipped_count,
            "skipped_lines": self.skipped_lines[:limit], "first_skipped": self.first_skipped(limit),
            "repeated_texts": self.repeated_texts,
        }

    def __str__(self):
        line = f"{self.source}: {self.rows} {self.task} rows"
        if self.repeated_texts:
            line += f" ({self.repeated_texts} repeating an earlier row's words, case aside)"
        if self.skipped:
            details = "; ".join(self.first_skipped())
            if self.skipped_count > self.MAX_SHOWN:
                details += f"; and {self.skipped_count - self.MAX_SHOWN} more"
            line += f"; skipped {len(self.skipped)} bad row(s): {details}"
        return line


def check_bad_row_share(report: ReadReport, max_share, records: int = None, unit: str = "rows"):
    """Raise `DataError` when more than `max_share` of a source's `records` (default: its rows, kept and
    skipped) were skipped as bad. Past a few stray rows, skipping filters by the very property that makes a
    row bad: an STS file on a 0..10 scale would lose exactly its most similar pairs. None: no limit."""
    if max_share is None or not report.skipped:
        return
    records = report.rows + report.skipped_count if records is None else records
    if report.skipped_count > max_share * records:
        raise DataError(
            f"{report.source}: {report.skipped_count} of {records} {unit} are bad, more than the share "
            f"max_bad_row_share={max_share:g} allows (--max_bad_row_share); first: {report.first_skipped(1)[0]}"
        )


def check_text(value):
    """The problem with a sentence value, or None when it is usable text."""
    if not isinstance(value, str):
        return f"expected text, got {type(value).__name__} {value!r}"
    from hf_minbert.pipelines import has_visible_character  # the pipelines' own test, which travels with a model

    if not has_visible_character(value):
        return "empty sentence"  # also one of only characters the tokenizer drops: it would read no token at all
    return None


_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def plain_number(value):
    """`value` as a float when it is a number or the text of one written plainly ("3", " 0.5", "+2", "1e-1");
    else None. Python's float() also reads "0_5" as 5 and "٣" as 3, which no label file means."""
    if isinstance(value, str):
        return float(value) if _PLAIN_NUMBER.fullmatch(value.strip()) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def parse_label(value, schema: TaskSchema):
    """`value` (a string from a file or a number from a dataset) as the task's label; raises ValueError."""
    if value is None:
        raise ValueError("missing label")
    if isinstance(value, str) and not value.strip():
        raise ValueError("empty label")
    number = plain_number(value)
    if number is None:
        raise ValueError(f"label {value!r} is not a number" if isinstance(value, str)
                         else f"expected a number, got {type(value).__name__} {value!r}")
    if math.isnan(number):
        raise ValueError("label is NaN")
    if schema.label_values is not None:
        if number not in schema.label_values:
            raise ValueError(f"label {value!r} is not one of the task's labels ({schema.describe_labels()})")
    elif not schema.label_range[0] <= number <= schema.label_range[1]:
        raise ValueError(f"label {value!r} is outside the task's range ({schema.describe_labels()})")
    return int(number) if schema.label_dtype == "int64" else number


# A class label the losses skip (PyTorch's and transformers' ignore index): allowed in training rows.
IGNORE_LABEL = -100


def label_numbers(dataset, schema: TaskSchema, training: bool = False, head_kind: str = None) -> np.ndarray:
    """The label column of rows in `schema`'s columns as float64 numbers, every one checked; the first that is not
    a label of the task is a `DataError` naming its row. Rows for training may also hold what the heads' losses
    accept beyond the scored labels: the ignore index -100 of a class task, a soft target between a binary task's
    two labels; where the head is known (`head_kind`: "classification", "binary" or "regression"), only what
    that head's loss takes. The loaders check labels as they read files; rows built in Python get the same check here, before
    any work: a head would otherwise stop training at the step that draws the row, or score a wrong label."""
    column = dataset.with_format("arrow")[schema.label_column]  # columnar: a 160k-row column in milliseconds
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
        numbers = column.to_numpy(zero_copy_only=False).astype(np.float64)  # a missing label reads as NaN
    else:  # text, as files hold it: each value parsed as a file's is
        numbers = np.array([_parsed_or_nan(value, schema) for value in column.to_pylist()], dtype=np.float64)
    allowed = _allowed_labels(numbers, schema, training, head_kind)
    if not allowed.all():
        row = int(np.flatnonzero(~allowed)[0])
        value = column[row].as_py()
        problem = _label_problem(value, schema) or f"label {value!r} is not a label ({schema.describe_labels()})"
        raise DataError(f"task {schema.name!r}, row {row}, column {schema.label_column!r}: {problem}")
    return numbers


def _parsed_or_nan(value, schema):
    try:
        return float(parse_label(value, schema))
    except ValueError:
        return math.nan


def _allowed_labels(numbers, schema, training, head_kind=None):
    if schema.label_range is not None:
        low, high = schema.label_range
        return (numbers >= low) & (numbers <= high)
    allowed = np.isin(numbers, schema.label_values)
    # Whole-number labels can hold the ignore index, which only cross-entropy skips; soft targets need float labels
    # (whole numbers would cut them) and a binary head's loss.
    if training and schema.label_dtype == "int64" and head_kind in (None, "classification"):
        allowed |= numbers == IGNORE_LABEL
    elif training and schema.label_dtype != "int64" and len(schema.label_values) == 2 and head_kind in (None, "binary"):
        allowed |= (numbers >= min(schema.label_values)) & (numbers <= max(schema.label_values))
    return allowed


def _label_problem(value, schema):
    try:
        parse_label(value, schema)
    except ValueError as error:
        return str(error)
    return None


class TaskRowsBuilder:
    """Collects checked rows of one task from one source into a `datasets.Dataset`.

    Each row is checked in column order (id, texts, label); the first problem makes it a bad row, which
    raises `DataError` or, with `skip_bad_rows`, is recorded in the report.
    """

    def __init__(self, schema: TaskSchema, labelled: bool, source: str, skip_bad_rows: bool = False, report=None):
        self.schema = schema
        self.labelled = labelled
        self.source = source
        self.skip_bad_rows = skip_bad_rows
        self.columns = {column: [] for column in schema.columns(labelled)}
        self.report = report if report is not None else ReadReport(source=source, task=schema.name)
        self.first_seen_at = {}  # id -> location, to name the earlier row of a repeated id
        self.seen_texts = set()

    def reject(self, location: str, column, problem: str):
        bad = BadRow(self.source, location, column, problem)
        if not self.skip_bad_rows:
            raise DataError(f"{bad}; {SKIP_HINT}")
        self.report.skipped.append(bad)

    def add(self, location: str, record: dict):
        """Check one row (a dict keyed by schema column) and keep it, or reject it."""
        column, problem, label = self._check(record)
        if problem:
            self.reject(location, column, problem)
            return
        row_id = str(record["id"]).strip()
        self.first_seen_at[row_id] = location
        texts = tuple(record[column] for column in self.schema.text_columns)
        key = text_key(texts, self.schema.symmetric)  # as the overlaps between sources are found
        if key in self.seen_texts:
            self.report.repeated_texts += 1
        self.seen_texts.add(key)
        self.columns["id"].append(row_id)
        for column, text in zip(self.schema.text_columns, texts):
            self.columns[column].append(text)
        if self.labelled:
            self.columns[self.schema.label_column].append(label)

    def _check(self, record):
        """(column, problem, None) for the first problem in column order, else (None, None, parsed label)."""
        row_id = record.get("id")
        if row_id is None or not str(row_id).strip():
            return "id", "empty id", None
        # Ids are compared and kept stripped, as the course's scorer reads prediction files: " 7 " and "7" are one id.
        if str(row_id).strip() in self.first_seen_at:
            return "id", f"id {row_id!r} repeats the id of {self.first_seen_at[str(row_id).strip()]}", None
        for column in self.schema.text_columns:
            problem = check_text(record.get(column))
            if problem:
                return column, problem, None
        if not self.labelled:
            return None, None, None
        try:
            return None, None, parse_label(record.get(self.schema.label_column), self.schema)
        except ValueError as error:
            return self.schema.label_column, str(error), None

    def finish(self):
        """The checked rows as a Dataset, with the report; an empty result is an error."""
        self.report.rows = len(self.columns["id"])
        if self.report.rows == 0:
            skipped = (f" ({len(self.report.skipped)} bad rows skipped; the first: {self.report.first_skipped(1)[0]})"
                       if self.report.skipped else "")
            raise DataError(f"{self.source}: no usable {self.schema.name} rows{skipped}")
        # The rows are checked already: handing them to Arrow with the schema's types is ~10x faster than
        # `Dataset.from_dict(..., features=)`, which re-encodes every value (seconds for the treebank's phrases).
        arrow_schema = self.schema.features(self.labelled).arrow_schema
        dataset = datasets.Dataset(pa.Table.from_pydict(self.columns, schema=arrow_schema))
        return dataset, self.report
