"""A task's training data from several sources, combined without counting any row twice.

A source is a file, read by its extension: a CS224N task file (`.csv`, `.tsv`) or, for sst, a treebank
file of PTB trees (`.txt`, one tree per line). Sources are read in the order given and concatenated. A row
of a later source that repeats a row of an earlier source is an overlap: the same id, or the same text
(whitespace ignored; for sentence pairs, the same two sentences in either order). Overlapping rows are
dropped (the earlier source's row is kept) and counted per pair of sources, with the overlaps whose labels
differ counted apart. Repeats inside one source are that source's own: kept as the data has them, and
counted by its reader (`ReadReport.repeated_texts`).

With both the SST CSV and its trees, the trees' roots are the CSV's sentences, so they are the overlap.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import datasets
import numpy as np

from .implied_pairs import ImpliedPairsReport
from .readers import read_task_file
from .schema import ReadReport, task_schema
from .trees import PhraseOptions, read_tree_file

# More training data than the course's `*-train.csv`, used by default when present in the data folder.
EXTRA_TRAINING_FILES = {"sst": ("sst-train-trees.txt",), "para": ("quora-train-extra.csv",)}
TABLE_SUFFIXES, TREE_SUFFIXES = (".csv", ".tsv"), (".txt",)


def default_training_sources(data_dir, tasks=("sst", "para", "sts")) -> dict:
    """Each task's training files in `data_dir`: the course's train file, then the extra files present."""
    data_dir = Path(data_dir)
    sources = {}
    for task in tasks:
        extras = [data_dir / name for name in EXTRA_TRAINING_FILES.get(task, ()) if (data_dir / name).is_file()]
        sources[task] = [data_dir / task_schema(task).file_name("train"), *extras]
    return sources


def parse_sources(spec, data_dir=None) -> list:
    """Source paths from a comma-separated spec ("ids-sst-train.csv,sst-train-trees.txt") or a list of
    paths; relative paths are taken inside `data_dir` when one is given."""
    names = [name.strip() for name in spec.split(",")] if isinstance(spec, str) else [str(name) for name in spec]
    if not names or not all(names):
        raise ValueError(f"empty source name in {spec!r}; expected comma-separated file names")
    return [Path(data_dir) / name if data_dir is not None else Path(name) for name in names]


def parse_task_sources(value: str, data_dir=None):
    """`(task, paths)` from "task=source,source" (one `--train_sources` value)."""
    task, separator, spec = value.partition("=")
    if not separator:
        raise ValueError(f"{value!r}: expected task=file[,file...], e.g. sst=ids-sst-train.csv,sst-train-trees.txt")
    task_schema(task.strip())  # an unknown task is an error naming the tasks there are
    return task.strip(), parse_sources(spec, data_dir)


def source_format(path, task: str) -> str:
    """ "table" (a CS224N task file) or "trees" (a treebank file), by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return "table"
    if suffix in TREE_SUFFIXES:
        if task != "sst":
            raise ValueError(f"{path}: a tree file (one PTB tree per line) holds sst phrases, not {task} rows")
        return "trees"
    raise ValueError(
        f"{path}: cannot tell the format from the extension {suffix!r}; expected .csv or .tsv (a task file "
        "with a header) or .txt (sst treebank trees, one per line)"
    )


@dataclass
class SourceReport:
    """One source's rows: what its reader kept, and what overlapped an earlier source."""

    read: ReadReport  # the reader's own report: rows, skipped bad rows, repeats (and the trees' counts)
    format: str
    kept: int = 0
    overlaps: dict = field(default_factory=dict)  # earlier source -> rows dropped as repeating its rows
    same_id: int = 0  # overlapping rows found by id
    same_text: int = 0  # overlapping rows found by text (ids differ)
    label_conflicts: int = 0  # overlapping rows whose label differs from the kept row's

    @property
    def source(self) -> str:
        return self.read.source

    @property
    def rows_read(self) -> int:
        return self.read.rows

    @property
    def bad_rows(self) -> int:
        return self.read.skipped_count

    def __str__(self):
        line = f"{self.source} ({self.format}): {self.kept} of {self.rows_read} rows kept"
        for earlier, count in self.overlaps.items():
            line += f"; {count} dropped as repeating {earlier}"
        if self.overlaps:
            line += f" ({self.same_id} by id, {self.same_text} by text"
            line += f", {self.label_conflicts} with another label)" if self.label_conflicts else ")"
        if self.bad_rows:
            line += f"; {self.bad_rows} bad row(s) skipped, first at {', '.join(map(str, self.read.skipped_lines[:5]))}"
        return line

    def as_dict(self) -> dict:
        return {
            "format": self.format, "rows_read": self.rows_read, "rows_kept": self.kept, "overlaps": dict(self.overlaps),
            "same_id": self.same_id, "same_text": self.same_text, "label_conflicts": self.label_conflicts,
            "read": self.read.as_dict(),
        }


@dataclass
class SourcesReport:
    task: str
    sources: list  # SourceReport per source, in reading order
    implied: Optional[ImpliedPairsReport] = None  # the pairs the trained rows' labels imply, when added

    @property
    def rows(self) -> int:
        """The rows the source files gave (the implied pairs are not among them)."""
        return sum(source.kept for source in self.sources)

    @property
    def overlapping_rows(self) -> int:
        return sum(sum(source.overlaps.values()) for source in self.sources)

    def __str__(self):
        lines = [f"{self.task}: {self.rows} training rows from {len(self.sources)} source(s)"]
        for source in self.sources:
            lines += [f"  {source}", f"    read: {source.read}"]
        if self.implied is not None:
            lines.append(f"  and {self.implied}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        summary = {"task": self.task, "rows": self.rows, "overlapping_rows": self.overlapping_rows,
                   "sources": {source.source: source.as_dict() for source in self.sources}}
        if self.implied is not None:
            summary["implied_pairs"] = self.implied.as_dict()
        return summary


def read_training_sources(task: str, sources, *, data_dir=None, skip_bad_rows: bool = False,
                          exclude_sentences=(), phrase_options: PhraseOptions = PhraseOptions()):
    """Read and combine `task`'s training sources; returns `(datasets.Dataset, SourcesReport)`.

    sources: a comma-separated spec or a list of paths (see `parse_sources`). exclude_sentences: the
    evaluation sentences no treebank phrase may equal (tree sources only: the course's own files are
    kept as they are). phrase_options: which phrases a tree source gives.
    """
    schema, paths = task_schema(task), parse_sources(sources, data_dir)
    repeated = sorted({str(path) for path in paths if paths.count(path) > 1})
    if repeated:
        raise ValueError(f"{task} training source listed twice: {', '.join(repeated)}")
    seen_ids, seen_texts = {}, {}  # id / text key -> (source, label) of the kept row
    parts, reports = [], []
    for path in paths:
        dataset, report = _read_source(path, task, source_format(path, task), skip_bad_rows, exclude_sentences,
                                       phrase_options)
        keep = _drop_overlaps(dataset, schema, report, seen_ids, seen_texts)
        # An index array, not a list: `select` fingerprints its argument, and pickling a long list takes seconds.
        parts.append(dataset if len(keep) == len(dataset) else dataset.select(np.asarray(keep, dtype=np.int64)))
        reports.append(report)
    combined = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    return combined, SourcesReport(task, reports)


def _read_source(path, task, format, skip_bad_rows, exclude_sentences, phrase_options):
    if format == "trees":
        dataset, read = read_tree_file(path, options=phrase_options, exclude_sentences=exclude_sentences,
                                       skip_bad_rows=skip_bad_rows)
    else:
        dataset, read = read_task_file(path, task, labelled=True, skip_bad_rows=skip_bad_rows)
    return dataset, SourceReport(read=read, format=format)


def _drop_overlaps(dataset, schema, report: SourceReport, seen_ids: dict, seen_texts: dict) -> list:
    """Indices of `dataset`'s rows that repeat no earlier source's row; records the others in `report`.

    Rows of this source are registered only after the whole source is checked, so its own repeats stay."""
    columns = dataset[:]  # plain lists: iterating a `Column` reads Arrow one row at a time
    ids, labels = columns["id"], columns[schema.label_column]
    texts = zip(*(columns[column] for column in schema.text_columns))
    keep, new_ids, new_texts = [], {}, {}
    for index, (row_id, text, label) in enumerate(zip(ids, texts, labels)):
        key = _text_key(text)
        earlier = seen_ids.get(row_id)
        by_id = earlier is not None
        earlier = earlier or seen_texts.get(key)
        if earlier is None:
            keep.append(index)
            new_ids.setdefault(row_id, (report.source, label))
            new_texts.setdefault(key, (report.source, label))
            continue
        earlier_source, earlier_label = earlier
        report.overlaps[earlier_source] = report.overlaps.get(earlier_source, 0) + 1
        report.same_id += by_id
        report.same_text += not by_id
        report.label_conflicts += label != earlier_label
    seen_ids.update(new_ids)
    seen_texts.update(new_texts)
    report.kept = len(keep)
    return keep


def _text_key(texts: tuple):
    """What makes two rows the same text: words only (whitespace ignored); a pair in either order."""
    words = [" ".join(text.split()) for text in texts]
    return words[0] if len(words) == 1 else tuple(sorted(words))
