"""The same tasks from the Hugging Face Hub, loaded by name into the CS224N schema.

    sst   SetFit/sst5                   text, label (0..4), label_text         -> sentence, sentiment
    para  nyu-mll/glue, config "qqp"    question1, question2, label, idx       -> sentence1, sentence2, is_duplicate, id
    sts   sentence-transformers/stsb    sentence1, sentence2, score (0..1)     -> similarity = 5 * score

The treebank's phrases come from the `ptb` configuration of `stanfordnlp/sst` (column `ptb_tree`: one
PTB-format tree per row, as in the treebank's own files; splits train / validation / test), parsed by
`trees.py` exactly as a local tree file is. Its `dictionary` configuration is not used: it pools the
phrases of all three splits, so training on it would train on dev and test sentences.

Loading goes through `datasets.load_dataset`, so a Hub name, a local copy of the repository or a
mirror (HF_ENDPOINT) all work; rows are then checked exactly as the CS224N files are. Datasets without an
id column get `"{hub split}-{row}"`. GLUE's QQP test split has no labels (label -1), so it loads unlabelled.
"""
from dataclasses import dataclass, field

import datasets

from .schema import TaskRowsBuilder, check_bad_row_share, plain_number, task_schema
from .trees import PhraseOptions, phrases_to_rows

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class HubSource:
    path: str
    name: str = None  # the dataset's config name
    columns: dict = field(default_factory=dict)  # Hub column -> schema column
    id_column: str = None  # Hub column holding a row id, if the dataset has one
    label_scale: float = 1.0  # multiplies the Hub label onto the task's scale
    hub_splits: dict = field(default_factory=lambda: {"train": "train", "dev": "validation", "test": "test"})
    labelled_test: bool = True


HUB_SOURCES = {
    "sst": HubSource("SetFit/sst5", columns={"text": "sentence", "label": "sentiment"}),
    "para": HubSource(
        "nyu-mll/glue",
        name="qqp",
        columns={"question1": "sentence1", "question2": "sentence2", "label": "is_duplicate"},
        id_column="idx",
        labelled_test=False,
    ),
    "sts": HubSource(
        "sentence-transformers/stsb",
        columns={"sentence1": "sentence1", "sentence2": "sentence2", "score": "similarity"},
        label_scale=5.0,
    ),
}


# The treebank's trees: (repository, config, column holding one PTB tree per row).
HUB_TREES = HubSource("stanfordnlp/sst", name="ptb", columns={"ptb_tree": "sentence"})


def hub_source(task: str) -> HubSource:
    if task not in HUB_SOURCES:
        raise ValueError(f"no Hub dataset known for task {task!r}; known: {', '.join(HUB_SOURCES)}")
    return HUB_SOURCES[task]


def load_hub_task(task: str, split: str = "train", *, path=None, name=None, skip_bad_rows=False, max_bad_row_share=None,
                  **load_kwargs):
    """Load `split` ("train", "dev" or "test") of `task`'s Hub dataset into the task's schema.

    path / name override the Hub repository (e.g. a local copy laid out like it) and its config.
    max_bad_row_share: with skip_bad_rows, more bad rows than this share of the split's is a `DataError` (a copy
    laid out otherwise, such as scores already on the task's scale, would lose most rows; None: no limit).
    Extra keyword arguments go to `datasets.load_dataset`. Returns `(datasets.Dataset, ReadReport)`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    source = hub_source(task)
    path, name = path or source.path, name if name is not None else source.name
    hub_split = source.hub_splits[split]
    raw = datasets.load_dataset(path, name, split=hub_split, **load_kwargs)
    labelled = split != "test" or source.labelled_test
    description = f"{path}{f' ({name})' if name else ''} split {hub_split!r}"
    rows, report = map_hub_rows(raw, task, labelled=labelled, source=description, split_name=hub_split,
                                skip_bad_rows=skip_bad_rows)
    check_bad_row_share(report, max_bad_row_share)
    return rows, report


def map_hub_rows(raw, task: str, *, labelled: bool, source: str, split_name: str, skip_bad_rows=False):
    """Rename a Hub dataset's columns onto the task's schema and check every row like a file row."""
    schema, hub = task_schema(task), hub_source(task)
    needed = [column for column, target in hub.columns.items() if labelled or target != schema.label_column]
    needed += [hub.id_column] if hub.id_column else []
    missing = [column for column in needed if column not in raw.column_names]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing} for task {task!r}; found {raw.column_names}")
    builder = TaskRowsBuilder(schema, labelled, source, skip_bad_rows)
    columns = raw.select_columns(needed).to_dict()
    for row, values in enumerate(zip(*(columns[column] for column in needed))):
        hub_row = dict(zip(needed, values))
        record = {target: hub_row[column] for column, target in hub.columns.items() if column in hub_row}
        record["id"] = str(hub_row[hub.id_column]) if hub.id_column else f"{split_name}-{row}"
        if labelled:
            record[schema.label_column] = _scaled(record[schema.label_column], hub.label_scale)
        builder.add(f"row {row}", record)
    return builder.finish()


def _scaled(label, scale):
    # A number, or the text of one (a mirror may store scores as text), is scaled; anything else reaches the row
    # check unchanged and is reported there.
    number = plain_number(label)
    return number * scale if number is not None and scale != 1.0 else label


def load_hub_sst_trees(split: str = "train", *, path=None, name=None, options: PhraseOptions = PhraseOptions(),
                       exclude_sentences=(), skip_bad_rows=False, **load_kwargs):
    """The treebank's labelled phrases of `split` ("train", "dev" or "test") from the Hub, in the sst schema.

    Options and the result are those of `trees.read_tree_file`; ids are `{hub split}-{row}-{node}`. Should
    the repository serve only its old loading script (which datasets no longer runs), pass
    `revision="refs/convert/parquet"`, the Hub's automatic Parquet export, through `load_kwargs`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    path, name = path or HUB_TREES.path, name if name is not None else HUB_TREES.name
    hub_split = HUB_TREES.hub_splits[split]
    raw = datasets.load_dataset(path, name, split=hub_split, **load_kwargs)
    description = f"{path}{f' ({name})' if name else ''} split {hub_split!r}"
    (column,) = HUB_TREES.columns
    if column not in raw.column_names:
        raise ValueError(f"{description}: missing column {column!r} holding the trees; found {raw.column_names}")
    rows = ((f"row {row}", row, tree) for row, tree in enumerate(raw.select_columns([column]).to_dict()[column]))
    return phrases_to_rows(rows, description, hub_split, options, exclude_sentences, skip_bad_rows)
