"""A task of one's own declared on the command line: `--task_schema nli.yaml`, a JSON or YAML file of the task's
data schema (hf_minbert.data.TaskSchema's fields) and, optionally, its head's class names:

    name: nli
    text_columns: [premise, hypothesis]
    label_column: label
    label_dtype: int64
    label_values: [0, 1, 2]
    labels: [entailment, neutral, contradiction]   # optional: the head's class names (default: the numbers)

The file does what `register_task_schema(TaskSchema(...))` does from Python, and gives the task a fresh head of
the kind its labels need (0..C-1: C classes; 0 and 1: binary; a label_range: regression), cross-encoded for a
pair task. A checkpoint that already has a head of that name keeps it, if the head can learn from the rows.
"""
from dataclasses import fields
from pathlib import Path

from hf_minbert.configuration_minbert import normalize_task_spec
from hf_minbert.data import TaskSchema, has_task_schema, head_mismatch, register_task_schema, task_schema

from .common import home_path
from .config_file import read_config

SCHEMA_FIELDS = tuple(f.name for f in fields(TaskSchema))
HEAD_FIELDS = ("labels",)


def read_task_schema_file(path) -> tuple:
    """(TaskSchema, the head's class names or None) of the file at `path`; a bad file is one line naming it."""
    path = home_path(path)
    if not Path(path).is_file():  # also a schema written into a config file in place of its file's path
        raise ValueError(f"--task_schema {path}: no such file (the flag takes a JSON or YAML file of the schema)")
    values = read_config(path, holding="a task schema's fields")
    unknown = sorted(set(values) - set(SCHEMA_FIELDS) - set(HEAD_FIELDS))
    if unknown:
        raise ValueError(f"--task_schema {path}: unknown key(s) {unknown}; known: {', '.join(SCHEMA_FIELDS + HEAD_FIELDS)}")
    labels = values.pop("labels", None)
    try:
        schema = TaskSchema(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--task_schema {path}: {error}") from None
    return schema, labels


def fresh_head(schema: TaskSchema, labels, path) -> dict:
    """The task spec of a fresh head that learns from rows of `schema`."""
    spec = {"pair_encoding": "cross" if schema.is_pair else "single"}
    if schema.label_range is not None:
        spec.update(kind="regression", label_range=list(schema.label_range))
    elif set(schema.label_values) == {0, 1}:
        spec.update(kind="binary")
    elif tuple(schema.label_values) == tuple(range(len(schema.label_values))):
        spec.update(kind="classification")
    else:
        raise ValueError(f"--task_schema {path}: a class head's labels are the class numbers 0..C-1 (or 0 and 1 for "
                         f"a binary head); the schema has {schema.describe_labels()}")
    if labels is not None:
        if spec["kind"] == "regression" or not (isinstance(labels, list) and len(labels) == len(schema.label_values or ())
                and all(isinstance(name, str) and name for name in labels) and len(set(labels)) == len(labels)):
            raise ValueError(f"--task_schema {path}: labels names each of the {len(schema.label_values or ())} "
                             f"label values with a string of its own (a regression head has none), got {labels!r}")
    elif spec["kind"] != "regression":
        labels = [f"{value:g}" for value in schema.label_values]
    if spec["kind"] != "regression":  # the head names its classes by number: value 0's name first
        spec["labels"] = [name for _, name in sorted(zip(schema.label_values, labels))]
    return spec


# The schemas --task_schema files registered in this process, by task: a later run's file may replace one (a run
# that failed on its data leaves its schema registered), not a schema registered any other way.
FILE_SCHEMAS = {}


def register_schema_files(paths) -> list:
    """[(TaskSchema, class names or None, path)] of the --task_schema files at `paths`, each schema registered. A
    task two files declare, or that already has another schema in this process (a course task's, a checkpoint's
    saved one, one registered from Python), is refused."""
    declared, declared_by = [], {}
    for path in paths or ():
        schema, labels = read_task_schema_file(path)
        if schema.name in declared_by:
            raise ValueError(f"--task_schema {declared_by[schema.name]} and {path} both declare task {schema.name!r}")
        declared_by[schema.name] = path
        known = task_schema(schema.name) if has_task_schema(schema.name) else None
        if known is not None and known != schema and FILE_SCHEMAS.get(schema.name) is not known:
            raise ValueError(f"--task_schema {path}: task {schema.name!r} already has another data schema (a course "
                             f"task's, the checkpoint's, or one registered from Python): {known}")
        if known is None or FILE_SCHEMAS.get(schema.name) is known:  # a course task's schema stays the course's
            FILE_SCHEMAS[schema.name] = register_task_schema(schema, exist_ok=True)
        declared.append((schema, labels, path))
    return declared


def declare_tasks(paths, heads: dict) -> tuple:
    """({task: the spec of its fresh head} for each task the --task_schema files at `paths` declare that `heads`
    (the checkpoint's, {task: spec}) has no head for, [every task the files declare]), the files' schemas
    registered (`register_schema_files`). A head of the checkpoint that cannot learn from a file's rows, or that
    names its classes otherwise, is refused."""
    fresh, declared = {}, []
    for schema, labels, path in register_schema_files(paths):
        head = heads.get(schema.name) or fresh_head(schema, labels, path)
        problem = head_mismatch(schema, normalize_task_spec(schema.name, head))
        if problem:
            whose = "the checkpoint's" if schema.name in heads else "its fresh"
            raise ValueError(f"--task_schema {path}: {whose} {schema.name} head cannot learn from its rows: {problem}")
        named = labels is not None and fresh_head(schema, labels, path).get("labels")  # in class order
        if schema.name in heads and named and named != heads[schema.name].get("labels"):
            raise ValueError(f"--task_schema {path}: labels {labels} differ from the checkpoint's {schema.name} head's, "
                             f"{heads[schema.name].get('labels')}: a trained head keeps its class names")
        if schema.name not in heads:
            fresh[schema.name] = normalize_task_spec(schema.name, head)
        declared.append(schema.name)
    return fresh, declared
