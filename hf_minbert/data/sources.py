"""A task's training data from several sources, combined without counting any row twice.

A source is a file, read by its extension: a CS224N task file (`.csv`, `.tsv`) or, for sst, a treebank
file of PTB trees (`.txt`, one tree per line). Sources are read in the order given and concatenated. A row
of a later source that repeats a row of an earlier source is an overlap: the same text (whitespace
ignored; for the pairs of a symmetric task such as para or sts, the same two sentences in either order). Overlapping rows are dropped (the
earlier source's row is kept) and counted per pair of sources, with the overlaps whose labels differ counted
apart. An id says nothing about the text: files written apart number their rows apart (two files may both
use 0, 1, ...), so a row that shares only its id with an earlier source's row is kept, and counted. Repeats
inside one source are that source's own: kept as the data has them, and counted by its reader
(`ReadReport.repeated_texts`).

A row whose text equals an evaluation row's (`exclude_texts`, e.g. the dev file's) is dropped from every
source and counted, so that no score is measured on a row trained on.

With both the SST CSV and its trees, the trees' roots are the CSV's sentences, so they are the overlap.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import datasets
import numpy as np

from .implied_pairs import ImpliedPairsReport
from .readers import read_task_file
from .schema import DataError, ReadReport, check_bad_row_share, task_schema
from .text_form import text_form, text_key
from .trees import PhraseOptions, read_tree_file

# More training data than the course's `*-train.csv`, used by default when present in the data folder.
EXTRA_TRAINING_FILES = {"sst": ("sst-train-trees.txt",), "para": ("quora-train-extra.csv",)}
TABLE_SUFFIXES, TREE_SUFFIXES = (".csv", ".tsv"), (".txt",)


def default_training_sources(data_dir, tasks=("sst", "para", "sts")) -> dict:
    """Each task's training files in `data_dir`: the course's train file, then the extra files present (anything
    by an extra file's name: a folder there is an error when read, not the file left out without a word)."""
    data_dir = Path(data_dir)
    sources = {}
    for task in tasks:
        extras = [data_dir / name for name in EXTRA_TRAINING_FILES.get(task, ()) if (data_dir / name).exists()]
        sources[task] = [data_dir / task_schema(task).file_name("train"), *extras]
    return sources


def parse_sources(spec, data_dir=None) -> list:
    """Source paths from a comma-separated spec ("ids-sst-train.csv,sst-train-trees.txt") or a list of
    paths; relative paths are taken inside `data_dir` when one is given."""
    names = [name.strip() for name in spec.split(",")] if isinstance(spec, str) else [str(name) for name in spec]
    if not names or not all(names):
        raise ValueError(f"empty source name in {spec!r}; expected comma-separated file names")
    paths = [Path(name).expanduser() for name in names]  # ~/a.csv: the home folder's, not data_dir/~/a.csv
    return [Path(data_dir) / path if data_dir is not None else path for path in paths]


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
    """One source's rows: what its reader kept, what equalled an evaluation row, and what overlapped an
    earlier source."""

    read: ReadReport  # the reader's own report: rows, skipped bad rows, repeats (and the trees' counts)
    format: str
    name: str = None  # how records name the file: its path inside the data folder, else as given
    kept: int = 0
    overlaps: dict = field(default_factory=dict)  # earlier source -> rows dropped as repeating its rows' text
    same_id: int = 0  # overlapping rows whose id is also the kept row's
    same_text: int = 0  # overlapping rows with another id than the kept row's
    label_conflicts: int = 0  # overlapping rows whose label differs from the kept row's
    shared_ids: int = 0  # rows kept though an earlier source has a row of the same id (with another text)
    evaluation_rows: int = 0  # rows dropped as equal to an evaluation row's text (beyond the reader's own)

    def __post_init__(self):
        if self.name is None:
            self.name = self.read.source

    @property
    def source(self) -> str:
        return self.read.source

    @property
    def rows_read(self) -> int:
        return self.read.rows

    @property
    def bad_rows(self) -> int:
        return self.read.skipped_count

    @property
    def evaluation_rows_dropped(self) -> int:
        """Rows equal to an evaluation row, all told: a tree reader drops its phrases equal to one itself."""
        return self.evaluation_rows + (len(self.read.excluded) if self.format == "trees" else 0)

    def __str__(self):
        line = f"{self.source} ({self.format}): {self.kept} of {self.rows_read} rows kept"
        if self.evaluation_rows:
            line += f"; {self.evaluation_rows} dropped as equal to an evaluation row"
        for earlier, count in self.overlaps.items():
            line += f"; {count} dropped as repeating {earlier}"
        if self.overlaps:
            line += f" (same text: {self.same_id} with the same id, {self.same_text} with another id"
            line += f", {self.label_conflicts} with another label)" if self.label_conflicts else ")"
        if self.shared_ids:
            line += f"; {self.shared_ids} kept sharing only an id (not the text) with an earlier file's row"
        if self.bad_rows:
            line += f"; {self.bad_rows} bad row(s) skipped, first at {', '.join(map(str, self.read.skipped_lines[:5]))}"
        return line

    def as_dict(self) -> dict:
        return {
            "format": self.format, "rows_read": self.rows_read, "rows_kept": self.kept, "overlaps": dict(self.overlaps),
            "same_id": self.same_id, "same_text": self.same_text, "label_conflicts": self.label_conflicts,
            "shared_ids": self.shared_ids, "evaluation_rows_dropped": self.evaluation_rows_dropped,
            "read": self.read.as_dict(),
        }


@dataclass
class SourcesReport:
    task: str
    sources: list  # SourceReport per source, in reading order
    implied: Optional[ImpliedPairsReport] = None  # the pairs the trained rows' labels imply, when added
    selected: Optional[list] = None  # per source, its rows trained on when only some are (`select`)
    selection: dict = field(default_factory=dict)  # the settings that chose them, for the record

    @property
    def rows(self) -> int:
        """The rows the source files gave (the implied pairs are not among them)."""
        return sum(source.kept for source in self.sources)

    @property
    def trained_rows(self) -> int:
        """The rows of the files trained on: all of them, or those `select` chose."""
        return self.rows if self.selected is None else sum(self.selected)

    @property
    def overlapping_rows(self) -> int:
        return sum(sum(source.overlaps.values()) for source in self.sources)

    @property
    def evaluation_rows_dropped(self) -> int:
        return sum(source.evaluation_rows_dropped for source in self.sources)

    def select(self, indices, **settings):
        """Record that only the rows at `indices` (of the combined rows) are trained on, chosen by `settings`
        (a cap, a held-out fold): each source is credited with its own rows among them."""
        indices = np.asarray(indices)
        bounds = np.cumsum([0, *(source.kept for source in self.sources)])
        self.selected = [int(((indices >= low) & (indices < high)).sum()) for low, high in zip(bounds, bounds[1:])]
        self.selection = dict(settings)

    def rows_per_source(self) -> dict:
        """Source name -> the rows it gave."""
        return {source.name: source.kept for source in self.sources}

    def trained_rows_per_source(self) -> dict:
        """Source name -> its rows trained on."""
        counts = [source.kept for source in self.sources] if self.selected is None else self.selected
        return {source.name: count for source, count in zip(self.sources, counts)}

    def __str__(self):
        lines = [f"{self.task}: {self.rows} training rows from {len(self.sources)} source(s)"]
        if self.selected is not None:
            settings = ", ".join(f"{name} {value}" for name, value in self.selection.items())
            lines[0] += f", of which {self.trained_rows} trained on ({settings})"
        for source in self.sources:
            lines += [f"  {source}", f"    read: {source.read}"]
        if self.implied is not None:
            lines.append(f"  and {self.implied}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        summary = {"task": self.task, "rows": self.rows, "overlapping_rows": self.overlapping_rows,
                   "evaluation_rows_dropped": self.evaluation_rows_dropped,
                   "sources": {source.source: source.as_dict() for source in self.sources}}
        if self.selected is not None:
            summary.update(trained_rows=self.trained_rows, selection=dict(self.selection))
        if self.implied is not None:
            summary["implied_pairs"] = self.implied.as_dict()
        return summary


def read_training_sources(task: str, sources, *, data_dir=None, skip_bad_rows: bool = False, exclude_texts=(),
                          phrase_options: PhraseOptions = PhraseOptions(),
                          max_bad_row_share: Optional[float] = None, names_relative_to=None):
    """Read and combine `task`'s training sources; returns `(datasets.Dataset, SourcesReport)`.

    sources: a comma-separated spec or a list of paths (see `parse_sources`). exclude_texts: the evaluation
    rows' texts no training row may equal, a sentence each for a single-sentence task and a (sentence1,
    sentence2) pair each for a pair task (`row_texts` of the evaluation rows); such rows are dropped from every
    source and counted. phrase_options: which phrases a tree
    source gives. max_bad_row_share: with skip_bad_rows, the largest share of a source's rows that may be
    bad (`check_bad_row_share`); None: no limit. names_relative_to: the folder the reports name the sources
    inside (default `data_dir`), so that two files of the same name in different folders stay apart.
    """
    schema, paths = task_schema(task), parse_sources(sources, data_dir)
    _check_listed_once(task, paths)
    evaluation = {text_key(texts, schema.symmetric) for texts in _as_text_tuples(exclude_texts)}
    folder = names_relative_to if names_relative_to is not None else data_dir
    seen_ids, seen_texts = set(), {}  # of the kept rows: ids; text key -> (source, label, id)
    parts, reports = [], []
    for path in paths:
        dataset, report = _read_source(path, task, source_format(path, task), skip_bad_rows, evaluation,
                                       phrase_options, max_bad_row_share)
        report.name = source_name(path, folder)
        keep = _drop_overlaps(dataset, schema, report, seen_ids, seen_texts, evaluation)
        # An index array, not a list: `select` fingerprints its argument, and pickling a long list takes seconds.
        parts.append(dataset if len(keep) == len(dataset) else dataset.select(np.asarray(keep, dtype=np.int64)))
        reports.append(report)
    combined = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    text_form.cache_clear()  # the forms of a task's rows serve its own checks only
    if len(combined) == 0:
        raise DataError(f"{task}: no training rows left in {', '.join(map(str, paths))}: every row equals an "
                        "evaluation row or an earlier source's row")
    return combined, SourcesReport(task, reports)


def row_texts(dataset, task) -> list:
    """The text of each of `task`'s rows: a (sentence,) or (sentence1, sentence2) tuple, as `exclude_texts`
    takes them."""
    return list(zip(*(dataset[column] for column in task_schema(task).text_columns)))


def _check_listed_once(task, paths):
    """The same file twice (spelled alike, or two spellings of one file) would only overlap itself."""
    resolved = [path.resolve() for path in paths]
    repeated = sorted({str(path) for path, real in zip(paths, resolved) if resolved.count(real) > 1})
    if repeated:
        raise ValueError(f"{task} training source listed twice: {', '.join(repeated)}")


def _as_text_tuples(texts) -> list:
    """Each evaluation text as a tuple of its sentences: a bare string is one sentence."""
    return [(text,) if isinstance(text, str) else tuple(text) for text in texts]


def source_name(path, folder) -> str:
    """`path` inside `folder` when it lies there (as `--train_sources` names it), else as given."""
    if folder is not None:
        try:
            return str(Path(path).relative_to(folder))
        except ValueError:
            pass
    return str(path)


def _read_source(path, task, format, skip_bad_rows, evaluation, phrase_options, max_bad_row_share):
    if format == "trees":
        # The tree reader drops the phrases equal to an evaluation sentence itself and names them by phrase id
        # (`TreeReadReport.excluded`); the check after it finds none left.
        sentences = [key for key in evaluation if isinstance(key, str)]  # a sentence's key is its words
        dataset, read = read_tree_file(path, options=phrase_options, exclude_sentences=sentences,
                                       skip_bad_rows=skip_bad_rows)
        check_bad_row_share(read, max_bad_row_share, records=read.trees + read.skipped_count, unit="trees")
    else:
        dataset, read = read_task_file(path, task, labelled=True, skip_bad_rows=skip_bad_rows,
                                       max_bad_row_share=max_bad_row_share)
    return dataset, SourceReport(read=read, format=format)


def _drop_overlaps(dataset, schema, report: SourceReport, seen_ids: set, seen_texts: dict,
                   evaluation=frozenset()) -> list:
    """Indices of `dataset`'s rows that equal no evaluation row and repeat no earlier source's row; records
    the others in `report`.

    A row repeats another only when its text does: an id is only a file's own numbering. Rows of this source
    are registered only after the whole source is checked, so its own repeats stay."""
    columns = dataset[:]  # plain lists: iterating a `Column` reads Arrow one row at a time
    ids, labels = columns["id"], columns[schema.label_column]
    texts = zip(*(columns[column] for column in schema.text_columns))
    keep, new_texts = [], {}
    for index, (row_id, text, label) in enumerate(zip(ids, texts, labels)):
        key = text_key(text, schema.symmetric)
        earlier = seen_texts.get(key)
        if key in evaluation:
            report.evaluation_rows += 1
        elif earlier is not None:
            _count_overlap(report, earlier, row_id, label)
        else:
            keep.append(index)
            report.shared_ids += row_id in seen_ids
            new_texts.setdefault(key, (report.source, label, row_id))
    seen_ids.update(ids[index] for index in keep)
    seen_texts.update(new_texts)
    report.kept = len(keep)
    return keep


def _count_overlap(report: SourceReport, earlier: tuple, row_id: str, label):
    earlier_source, earlier_label, earlier_id = earlier
    report.overlaps[earlier_source] = report.overlaps.get(earlier_source, 0) + 1
    report.same_id += row_id == earlier_id
    report.same_text += row_id != earlier_id
    report.label_conflicts += label != earlier_label
