"""`minbert train`: multitask fine-tuning of minBERT on the CS224N task files.

    minbert train --data_dir ../shared/data --output_dir runs/minbert
    minbert train --smart_weight sst=2,para=6,sts=8 --task_sampling round_robin --pcgrad ...
    minbert train --architecture cerbertus --task_specific_layers 2 --static_encoder --pair_encoding sts=bi
    minbert train config.json   (or config.yaml: the same keys)

Every MultitaskTrainingArguments / TrainingArguments flag is accepted. The output directory holds the
model (safetensors + remote code), its tokenizer, metrics.json, training_curves.png and a model card. It is
written aside and moved in complete (see hf_minbert/commands/output_folder.py): a folder that already holds a
model is replaced only with --overwrite_output_dir, and a run that fails leaves it as it was.

--seed fixes the run: the random heads are drawn after seeding, and Trainer draws the data order and dropout
from the same seed (--data_seed: the order alone), so the same command gives bitwise the same weights on the
same machine.

Every flag is checked, and all data is read, before the model is built: a bad flag or a bad file is one line
on stderr (exit status 2), not a traceback after training.

    minbert train --peft lora --lora_r 8 [--peft_per_task]   (or --peft ia3|loha|lokr|vera, --peft_config FILE)

trains PEFT adapters and the heads on a frozen encoder; the output directory then holds the exported model
(see hf_minbert.adapters.export_model) and adapter/ the adapters themselves.
"""
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from transformers import AutoTokenizer, EarlyStoppingCallback, HfArgumentParser

from hf_minbert import recipe

logger = logging.getLogger("minbert.train")

ADAPTER_SUBDIR = "adapter"  # where a PEFT run keeps its adapters, beside the exported model

TASK_HEAD_OPTIONS = ("pair_encoding", "head_layers", "head_dropout", "head_activation", "head_pooling", "bi_features",
                     "cosine_feature", "average_pair_orders")
# Meaningless for a single-sentence head.
PAIR_OPTIONS = ("pair_encoding", "bi_features", "cosine_feature", "average_pair_orders")
BOOLEAN_HEAD_OPTIONS = ("cosine_feature", "average_pair_orders")
ARCHITECTURES = ("multitask", "cerbertus", "triple")


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "minBERT or BERT checkpoint (dir or Hub id); default: the embedded all-MiniLM-L6-v2"}
    )
    tasks: str = field(default="sst,para,sts", metadata={"help": "tasks to train, comma-separated"})
    pair_encoding: str = field(
        default="", metadata={"help": "per task: cross or bi, e.g. para=bi (fresh heads: sts=bi, the rest cross)"}
    )
    head_layers: str = field(default="", metadata={"help": "per task head depth, e.g. sts=2"})
    head_dropout: str = field(default="", metadata={"help": "per task head dropout, e.g. sst=0.1"})
    head_activation: str = field(default="", metadata={"help": "per task: the hidden layers' activation, e.g. sst=tanh (default gelu)"})
    head_pooling: str = field(default="", metadata={"help": "per task: pooler, cls or mean"})
    bi_features: str = field(default="", metadata={"help": "per bi-encoder task: cosine or concat"})
    cosine_feature: str = field(
        default="",
        metadata={"help": "per cross-encoded pair task: append the bi-encoder cosine, e.g. sts=true (fresh "
                          "cross-encoded sts heads get it; sts=false turns it off)"},
    )
    average_pair_orders: str = field(
        default="",
        metadata={"help": "per cross-encoded pair task: evaluate and predict with the mean of the head's outputs for "
                          "(a, b) and (b, a) (twice the encoder work per pair; saved in the config). Fresh "
                          "cross-encoded para heads get it; para=false turns it off"},
    )
    hidden_dropout_prob: Optional[float] = field(default=None, metadata={"help": "encoder dropout (default: the checkpoint's)"})
    architecture: Optional[str] = field(
        default=None,
        metadata={"help": "multitask (one shared encoder), cerbertus (each task owns the top --task_specific_layers "
                          "layers) or triple (one whole encoder per task); default: the checkpoint's own"},
    )
    task_specific_layers: Optional[int] = field(
        default=None, metadata={"help": "cerbertus: how many top encoder layers each task owns (copied from the checkpoint)"}
    )
    static_encoder: bool = field(
        default=False,
        metadata={"help": "add a frozen copy of the checkpoint's encoder; the heads also read its output (seed 002)"},
    )

    def __post_init__(self):
        # What needs no checkpoint; the layers --task_specific_layers may take are checked against it (check_run).
        if self.architecture is not None and self.architecture not in ARCHITECTURES:
            raise ValueError(f"--architecture: choose one of {', '.join(ARCHITECTURES)}; got {self.architecture!r}")
        if self.task_specific_layers is not None and self.task_specific_layers < 0:
            raise ValueError(f"--task_specific_layers must be at least 0, got {self.task_specific_layers}")
        if self.hidden_dropout_prob is not None and not 0 <= self.hidden_dropout_prob <= 1:  # also refuses NaN
            raise ValueError(f"--hidden_dropout_prob: a dropout probability lies in [0, 1], got {self.hidden_dropout_prob}")


@dataclass
class DataArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "folder of the CS224N task files"})
    train_sources: Optional[list[str]] = field(
        default=None,
        metadata={"help": "a task's training files inside --data_dir, one task=file[,file...] per task: "
                          "sst=ids-sst-train.csv,sst-train-trees.txt para=quora-train.csv (tasks not named: their "
                          "default sources); a row repeating an earlier file's row's text, or a dev row's, is dropped and "
                          "reported"},
    )
    extra_training_files: bool = field(
        default=True,
        metadata={"help": "train also on sst-train-trees.txt (the treebank's phrases) and quora-train-extra.csv "
                          "when they are in --data_dir; False: the course's train files only"},
    )
    first_source_every_epoch: bool = field(
        default=True,
        metadata={"help": "with --task_epoch_rows: a capped task reads its first training file (the course's rows) "
                          "whole every epoch and the cap applies to its other files' rows; False: to all its rows"},
    )
    min_phrase_tokens: int = field(
        default=1, metadata={"help": "treebank sources: keep inner phrases of at least this many tokens (whole "
                                     "sentences are always kept)"}
    )
    implied_pairs_per_question: float = field(
        default=0.0,
        metadata={"help": "para: also train on the pairs its labels imply (duplicates of duplicates are duplicates; "
                          "a non-duplicate's sides' duplicates are non-duplicates), at most this many new duplicates "
                          "per question of a group of duplicates (hf_minbert/data/implied_pairs.py; 0 = off)"},
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "cap each task's training rows (quick runs)"})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "cap each task's dev rows"})
    skip_bad_rows: bool = field(
        default=True, metadata={"help": "skip malformed rows (two Quora rows have no label) and report them; False: fail"}
    )
    max_bad_row_share: float = field(
        default=0.05,
        metadata={"help": "with --skip_bad_rows: the largest share of a file's rows that may be bad and skipped; more "
                          "is an error naming the file and its first bad row, since skipping that many biases the "
                          "rest (an STS file on a 0..10 scale would lose its most similar pairs). 0: none; 1: no limit"},
    )
    sst_dev: Optional[str] = field(default=None, metadata={"help": "labelled sst dev file (default: --data_dir's "
                                                                    "ids-sst-dev.csv); a path as given, as for minbert evaluate"})
    para_dev: Optional[str] = field(default=None, metadata={"help": "labelled para dev file (default: --data_dir's "
                                                                     "quora-dev.csv)"})
    sts_dev: Optional[str] = field(default=None, metadata={"help": "labelled sts dev file (default: --data_dir's "
                                                                    "sts-dev.csv)"})
    cfimdb_dev: Optional[str] = field(default=None, metadata={"help": "labelled cfimdb dev file (default: --data_dir's "
                                                                       "ids-cfimdb-dev.csv)"})
    early_stopping_patience: Optional[int] = field(default=None, metadata={"help": "evaluations without improvement before stopping"})
    num_folds: Optional[int] = field(
        default=None, metadata={"help": "split each task's training rows into this many folds and leave --held_out_fold "
                                        "out (an out-of-fold teacher for `minbert distill --fold_teachers`)"}
    )
    held_out_fold: Optional[int] = field(default=None, metadata={"help": "with --num_folds: the fold not trained on (0 .. k-1)"})
    fold_seed: int = field(default=0, metadata={"help": "seed of the row-to-fold assignment (the same for every fold's run)"})

    def __post_init__(self):
        for name in ("max_train_samples", "max_eval_samples", "early_stopping_patience", "min_phrase_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if not self.implied_pairs_per_question >= 0:  # also refuses NaN
            raise ValueError(f"--implied_pairs_per_question must be at least 0, got {self.implied_pairs_per_question}")
        if (self.num_folds is None) != (self.held_out_fold is None):
            raise ValueError("--num_folds and --held_out_fold go together: give both or neither")
        if self.num_folds is not None and self.num_folds < 2:
            raise ValueError(f"--num_folds must be at least 2, got {self.num_folds}")
        if self.num_folds is not None and not 0 <= self.held_out_fold < self.num_folds:
            raise ValueError(f"--held_out_fold must lie in 0 .. {self.num_folds - 1}, got {self.held_out_fold}")
        if not 0 <= self.max_bad_row_share <= 1:  # also refuses NaN
            raise ValueError(f"--max_bad_row_share is a share of a file's rows, in [0, 1]; got {self.max_bad_row_share}")
        _check_each_task_once(self.train_sources or ())


def _check_each_task_once(train_sources):
    """A task named twice in --train_sources would keep only its last files: refused, at parse time."""
    files = {}
    for value in train_sources:
        task, _, spec = value.partition("=")
        files.setdefault(task.strip(), []).append(spec.strip())
    for task, specs in files.items():
        if len(specs) > 1:
            raise ValueError(f"--train_sources names {task} {len(specs)} times; list its files once, "
                             f"comma-separated: {task}={','.join(specs)}")


def parse_arguments(argv, extra=()):
    """(model, data, training, adapter arguments, *extra dataclasses) from the command line, which may start
    with a config file (config_file.py)."""
    from hf_minbert.adapters import AdapterArguments
    from trainers import MultitaskTrainingArguments

    from .config_file import parse_with_config_file

    parser = HfArgumentParser((ModelArguments, DataArguments, MultitaskTrainingArguments, AdapterArguments, *extra),
                              prog="minbert train")
    return parse_with_config_file(parser, argv)


def seed_run(training_args):
    """Seed Python, numpy and torch from --seed (deterministic kernels too with --full_determinism) before
    anything random is drawn: Trainer seeds only when it is built, after the fresh heads were initialized."""
    from transformers import enable_full_determinism, set_seed

    if training_args.full_determinism:
        enable_full_determinism(training_args.seed)
    else:
        set_seed(training_args.seed)


def model_path(model_args):
    """--model_name_or_path, or the embedded all-MiniLM-L6-v2. A path that can only be local must exist (a
    Hub id, `name` or `org/name`, is looked up when loading)."""
    from hf_minbert import embedded_base_model

    path = model_args.model_name_or_path
    if path is None:
        return embedded_base_model()
    local = path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path
    if local and not Path(path).expanduser().is_dir():
        raise ValueError(f"--model_name_or_path {path}: no such directory")
    return path


def base_task_specs(model_args):
    """The heads a run starts from: a multitask minBERT checkpoint's own (so its trained heads load), or for
    any checkpoint without task heads — a plain BERT, a `minbert pretrain-mlm` output — the default heads,
    which then get this project's recipe (hf_minbert/recipe.py). Returns (specs, whether the recipe applies)."""
    from hf_minbert import MinBertConfig

    path = model_path(model_args)
    raw, _ = MinBertConfig.get_config_dict(path)
    has_heads = "MinBertForMultitask" in (raw.get("architectures") or [])
    if raw.get("model_type") == MinBertConfig.model_type and raw.get("tasks") and has_heads:
        return MinBertConfig.from_pretrained(path).tasks, False
    return MinBertConfig().tasks, True


def task_specs(model_args, base_tasks, recipe_defaults=True):
    """The heads to train: the base specs of the chosen tasks, the recipe for fresh heads, then the per-task
    command-line options, which override both task by task."""
    names = [name.strip() for name in model_args.tasks.split(",") if name.strip()]
    if not names:
        raise ValueError("--tasks: name at least one task")
    unknown = [name for name in names if name not in base_tasks]
    if unknown:
        raise ValueError(f"--tasks: unknown task(s) {unknown}; known: {', '.join(base_tasks)}")
    specs = {name: dict(base_tasks[name]) for name in names}
    if recipe_defaults:
        specs = recipe.heads(specs)
    single = [name for name in names if base_tasks[name]["pair_encoding"] == "single"]
    for option in TASK_HEAD_OPTIONS:
        for task, value in _per_task_strings(getattr(model_args, option), option, names, single).items():
            specs[task][option] = _typed(option, value)
    if recipe_defaults:
        for option, tasks in recipe.CROSS_HEAD_FIELDS.items():
            chosen = _per_task_strings(getattr(model_args, option), option, names)
            for task in tasks:
                if task in specs and task not in chosen:
                    specs[task][option] = specs[task]["pair_encoding"] == "cross"
    return specs


def _per_task_strings(value, option, names, single=()):
    """{task: setting} of a per-task option. The options that only a sentence pair has (PAIR_OPTIONS): one
    value for all applies to the pair tasks, and naming a single-sentence task is an error."""
    from trainers.per_task import parse_task_values

    pair_only = option in PAIR_OPTIONS
    pairs = [name for name in names if name not in single]
    settings = parse_task_values(value, option, names, every=pairs if pair_only else names)
    for task, setting in settings.items():
        if pair_only and task in single:
            raise ValueError(f"--{option} {task}={setting}: {task} is a single-sentence task; {option} applies "
                             f"to sentence-pair tasks ({', '.join(pairs) or 'none in this run'})")
    return settings


def _typed(option, value):
    if option == "pair_encoding" and value not in ("cross", "bi"):
        raise ValueError(f"--pair_encoding: choose cross or bi, got {value!r}")
    if option == "head_layers":
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"--head_layers: a head has a whole number >= 1 of layers, got {value!r}")
        return int(value)
    if option == "head_dropout":
        from trainers.per_task import as_float

        dropout = as_float(value, option)
        if not 0 <= dropout <= 1:  # also refuses NaN
            raise ValueError(f"--head_dropout: a dropout probability lies in [0, 1], got {value!r}")
        return dropout
    if option in BOOLEAN_HEAD_OPTIONS:
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--{option}: expected true or false, got {value!r}")
        return value.lower() in ("true", "1")
    return value


def load_task_data(data_args, tasks):
    """(train, dev, reports): each task's train and dev rows, and the reports of the data read — a
    SourcesReport per task's training sources (rows kept per file, dev rows and overlaps dropped, the rows
    trained on) and a ReadReport per dev file. Skipped bad rows and training rows equal to a dev row are a
    warning on the console; `skipped_rows_record` puts the former in metrics.json and the card,
    `training_data_record` the training rows each file gave."""
    from hf_minbert.data import implies_pairs, read_task_file, read_training_sources

    sources, dev_paths = training_sources(data_args, tasks), dev_files(data_args, tasks)
    train, dev, reports = {}, {}, []
    for task in tasks:
        dev_rows, dev_report = read_task_file(dev_paths[task], task, labelled=True, skip_bad_rows=data_args.skip_bad_rows,
                                              max_bad_row_share=data_args.max_bad_row_share)
        dev[task] = _cap(dev_rows, data_args.max_eval_samples)
        # A training row equal to a dev row would be scored after being trained on: such rows are dropped,
        # from every source (a treebank's phrases, a dev file named among --train_sources).
        rows, report = read_training_sources(task, sources[task], skip_bad_rows=data_args.skip_bad_rows,
                                             exclude_texts=_row_texts(dev_rows, task),
                                             phrase_options=_phrase_options(data_args),
                                             max_bad_row_share=data_args.max_bad_row_share,
                                             names_relative_to=data_args.data_dir)
        indices = training_row_indices(len(rows), data_args)
        train[task] = rows if len(indices) == len(rows) else rows.select(indices)
        if data_args.num_folds is not None or len(indices) < len(rows):
            report.select(indices, **_selection(data_args))
        if data_args.implied_pairs_per_question and implies_pairs(task):
            train[task], report.implied = with_implied_pairs(train[task], dev_rows, task, data_args)
        _log_reads(report, dev_report)
        reports += [report, dev_report]
    return train, dev, reports


def dev_files(data_args, tasks):
    """Each task's dev file: --<task>_dev where given (a path as given, as `minbert evaluate` takes it), else
    the course's file in --data_dir. Every file must exist: checked before any is read."""
    from hf_minbert.data import task_schema

    paths = {}
    for task in tasks:
        flag = f"{task}_dev"
        given = getattr(data_args, flag, None)
        paths[task] = Path(given) if given else Path(data_args.data_dir) / task_schema(task).file_name("dev")
        if not paths[task].is_file():
            how = f"--{flag} {given}" if given else f"{task} dev file {paths[task]} (name another with --{flag})"
            raise ValueError(f"{how}: no such file")
    return paths


def _row_texts(dataset, task):
    """The text of each row: a (sentence,) or (sentence1, sentence2) tuple."""
    from hf_minbert.data import task_schema

    return list(zip(*(dataset[column] for column in task_schema(task).text_columns)))


def _selection(data_args):
    """The settings that choose which of a task's rows are trained on (training_row_indices), for the record."""
    selection = {"max_train_samples": data_args.max_train_samples} if data_args.max_train_samples else {}
    if data_args.num_folds is not None:
        selection.update(num_folds=data_args.num_folds, held_out_fold=data_args.held_out_fold,
                         fold_seed=data_args.fold_seed)
    return selection


def _log_reads(report, dev_report):
    for read in [*(source.read for source in report.sources), dev_report]:
        (logger.warning if read.skipped else logger.info)(str(read))
    logger.info(str(report))
    if report.evaluation_rows_dropped:
        counts = ", ".join(f"{source.name} {source.evaluation_rows_dropped}" for source in report.sources
                           if source.evaluation_rows_dropped)
        logger.warning("%s: dropped %d training row(s) whose text equals a row of the dev file %s (%s): the dev "
                       "scores must not be measured on rows trained on", report.task, report.evaluation_rows_dropped,
                       dev_report.source, counts)


def with_implied_pairs(train, dev, task, data_args):
    """`train` and the pairs its labels imply (none equal to a dev pair): derived from the rows trained on, so
    a held-out fold's or a capped-off row's label implies nothing."""
    import datasets

    from hf_minbert.data import ImpliedPairOptions, implied_pairs

    options = ImpliedPairOptions(per_question=data_args.implied_pairs_per_question)
    implied, report = implied_pairs(train, task=task, options=options,
                                    exclude_pairs=zip(dev["sentence1"], dev["sentence2"]))
    return datasets.concatenate_datasets([train, implied]), report


def training_sources(data_args, tasks):
    """Each task's training files: --train_sources where it names the task, else the course's train file plus
    (with --extra_training_files) the extra files of the data folder. Every file must exist."""
    from hf_minbert.data import default_training_sources, parse_task_sources

    defaults = default_training_sources(data_args.data_dir, tasks)
    if not data_args.extra_training_files:
        defaults = {task: paths[:1] for task, paths in defaults.items()}
    chosen = dict(parse_task_sources(value, data_args.data_dir) for value in data_args.train_sources or ())
    unknown = [task for task in chosen if task not in tasks]
    if unknown:
        raise ValueError(f"--train_sources: {', '.join(unknown)} is not a training task ({', '.join(tasks)})")
    sources = {task: chosen.get(task, defaults[task]) for task in tasks}
    for task, paths in sources.items():
        for path in paths:
            if not Path(path).is_file():
                raise ValueError(f"{task} training source {path}: no such file")
    return sources


def _phrase_options(data_args):
    from hf_minbert.data import PhraseOptions

    return PhraseOptions(min_tokens=data_args.min_phrase_tokens)


def _read_reports(reports):
    """The ReadReport of every file read, from a mix of ReadReports and SourcesReports."""
    reads = []
    for report in reports:
        reads += [source.read for source in report.sources] if hasattr(report, "sources") else [report]
    return reads


def training_data_record(reports):
    """Per task: the rows its files gave and how many each gave (after dev rows and overlaps were dropped),
    and the pairs their labels imply where those were added. Where --max_train_samples or a held-out fold left
    some out, also the rows trained on (`rows_trained`, `sources_trained`) and the settings (`selection`).
    Files are named by their path inside --data_dir, else as given."""
    return {report.task: _task_training_record(report) for report in reports if hasattr(report, "sources")}


def _task_training_record(report):
    record = {"rows": report.rows, "overlapping_rows_dropped": report.overlapping_rows,
              "sources": report.rows_per_source()}
    if report.evaluation_rows_dropped:
        record["dev_rows_dropped"] = report.evaluation_rows_dropped
    if report.selected is not None:
        record.update(rows_trained=report.trained_rows, sources_trained=report.trained_rows_per_source(),
                      selection=dict(report.selection))
    if report.implied:
        record["implied_pairs"] = report.implied.rows
    return record


def skipped_rows_record(read_reports):
    """Per file with skipped rows: its path, task, how many rows and the first few (line and problem)."""
    return [{"file": report.source, "task": report.task, "count": len(report.skipped),
             "first": [f"{bad.where()}: {bad.problem}" for bad in report.skipped[: report.MAX_SHOWN]]}
            for report in _read_reports(read_reports) if report.skipped]


def _cap(dataset, limit):
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def training_row_indices(num_rows, data_args):
    """Which of a task's training rows are trained on: the first --max_train_samples, less the held-out fold."""
    indices = np.arange(min(num_rows, data_args.max_train_samples or num_rows))
    if data_args.num_folds is None:
        return indices
    from hf_minbert.data import rows_outside_fold

    return indices[rows_outside_fold(len(indices), data_args.num_folds, data_args.held_out_fold, data_args.fold_seed)]


def always_rows(read_reports, data_args):
    """Per task with several training sources: how many of its trained rows come from its first source (which
    lead its rows), for the sampler to read whole every epoch (--first_source_every_epoch)."""
    if not data_args.first_source_every_epoch:
        return {}
    trained = {report.task: training_row_indices(report.rows, data_args)
               for report in read_reports if hasattr(report, "sources")}
    return recipe.first_source_rows(read_reports, trained)


def architecture_overrides(model_args, num_layers):
    """The config fields that --architecture, --task_specific_layers and --static_encoder ask for, for a
    checkpoint of `num_layers` encoder layers; none given: the checkpoint's own architecture."""
    architecture, k = model_args.architecture, model_args.task_specific_layers
    if architecture is None and k is not None:
        architecture = "cerbertus"
    overrides = {}
    if architecture is not None:
        if architecture not in ARCHITECTURES:
            raise ValueError(f"--architecture: choose one of {', '.join(ARCHITECTURES)}; got {architecture!r}")
        implied = {"multitask": 0, "cerbertus": k, "triple": num_layers}[architecture]
        if architecture == "cerbertus" and (k is None or not 1 <= k <= num_layers):
            raise ValueError(
                f"--architecture cerbertus needs --task_specific_layers k with 1 <= k <= {num_layers} "
                f"(the checkpoint's encoder layers); got {k}"
            )
        if k is not None and k != implied:
            raise ValueError(f"--task_specific_layers {k} contradicts --architecture {architecture} "
                             f"(which means {implied} task-specific layers here)")
        overrides = {"task_specific_layers": implied, "task_specific_embeddings": architecture == "triple"}
    if model_args.static_encoder:
        overrides["static_encoder"] = True
    return overrides


def check_run(model_args, data_args, training_args, specs):
    """What only the command can check, before reading data or building anything: the output folder, and
    the flags that depend on the checkpoint or the tasks."""
    from .output_folder import check_output_folder

    check_output_folder(training_args.output_dir, training_args.overwrite_output_dir,
                        training_args.resume_from_checkpoint, inputs={"--data_dir": data_args.data_dir})
    _check_checkpoint_flags(model_args, training_args)
    _check_task_flags(training_args, specs)
    if data_args.early_stopping_patience and not (training_args.load_best_model_at_end
                                                   and training_args.metric_for_best_model):
        raise ValueError("--early_stopping_patience needs --load_best_model_at_end and --metric_for_best_model "
                         "(evaluation and saving on the same schedule)")


def _check_checkpoint_flags(model_args, training_args):
    """The flags that must fit the checkpoint: the sequence length its positions allow, the architecture its
    layers allow."""
    from hf_minbert import MinBertConfig
    from hf_minbert.modeling_minbert_conversion import check_architecture_change

    path = model_path(model_args)
    config = MinBertConfig.from_pretrained(path)
    if training_args.max_seq_length > config.max_position_embeddings:
        raise ValueError(f"--max_seq_length {training_args.max_seq_length} exceeds the model's "
                         f"max_position_embeddings ({config.max_position_embeddings}, {path})")
    check_architecture_change(config, architecture_overrides(model_args, config.num_hidden_layers), path)
    _check_report_to(training_args.report_to)


def _check_report_to(report_to):
    # Trainer builds its logging callbacks only after the data is read and the model built.
    from transformers.integrations import get_available_reporting_integrations

    missing = sorted(set(report_to or []) - set(get_available_reporting_integrations()) - {"none", "all"})
    if missing:
        raise ValueError(f"--report_to {','.join(missing)}: not a logging integration installed here (installed: "
                         f"{', '.join(get_available_reporting_integrations()) or 'none'})")


def _check_task_flags(training_args, specs):
    """The flags that name tasks or need a kind of head: every per-task option, the embedding losses' and the
    ordinal loss's tasks, the pair-order options; and each head's options (--head_pooling, ...)."""
    from hf_minbert.configuration_minbert import normalize_task_spec
    from trainers.arguments import EMBEDDING_LOSSES
    from trainers.ordinal import check_ordinal_task
    from trainers.pair_order import check_pair_order

    training_args.check_tasks(specs)
    for loss, task in training_args.embedding_losses().items():
        spec = specs.get(task)
        if spec is None or spec["pair_encoding"] == "single":
            pairs = [name for name, s in specs.items() if s["pair_encoding"] != "single"]
            raise ValueError(f"--{loss}_task {task}: {EMBEDDING_LOSSES[loss]} needs a sentence-pair task among the "
                             f"training tasks ({', '.join(pairs) or 'none'})")
    if training_args.ordinal_weight > 0:
        check_ordinal_task(training_args.ordinal_task, specs)
    training_args.epoch_passes(specs)
    for task in training_args.pair_swap_probabilities(specs):
        check_pair_order("pair_swap_probability", task, specs[task]["pair_encoding"])
    for task, spec in specs.items():
        if spec.get("average_pair_orders"):
            check_pair_order("average_pair_orders", task, spec["pair_encoding"])
    for task, spec in specs.items():  # the rest of each head's options, last: the messages above name their flag
        normalize_task_spec(task, spec)


def build_model(model_args, specs):
    from hf_minbert import MinBertConfig, MinBertForMultitask

    path = model_path(model_args)
    num_layers = MinBertConfig.from_pretrained(path).num_hidden_layers
    architecture = architecture_overrides(model_args, num_layers)
    chose = model_args.architecture is not None or model_args.task_specific_layers is not None
    if not chose and base_task_specs(model_args)[1]:  # a fresh start from a plain BERT: the recipe's CerBERTus
        architecture = {**architecture, **recipe.architecture(num_layers)}
    overrides = {"tasks": specs, "default_task": recipe.default_task(specs), **architecture}
    if model_args.hidden_dropout_prob is not None:
        overrides["hidden_dropout_prob"] = model_args.hidden_dropout_prob
    return path, MinBertForMultitask.from_pretrained(path, **overrides)


def main(argv=None) -> int:
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    model_args, data_args, training_args, adapter_args = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    specs = task_specs(model_args, *base_task_specs(model_args))
    check_run(model_args, data_args, training_args, specs)
    train, dev, read_reports = load_task_data(data_args, specs)
    seed_run(training_args)
    base_path, model = build_model(model_args, specs)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    train_and_save(model, tokenizer, train, dev, base_path, model_args, data_args, training_args, adapter_args,
                   read_reports=read_reports)
    return 0


def train_and_save(model, tokenizer, train, dev, base_path, model_args, data_args, training_args, adapter_args,
                   card_arguments=None, read_reports=()):
    """Train `model` with MultitaskTrainer (as PEFT adapters when `adapter_args` ask), save it to the output
    directory with its tokenizer, dev metrics, training curves and card; returns the dev metrics.

    Checkpoints and then the model are written to `<output_dir>.partial`, which replaces the output directory
    only once complete (output_folder.py). With adapters, the output directory holds the exported model (one
    adapter merged into the weights, or per-task adapters as an ensemble of merged encoders), which `minbert
    evaluate` and the Hub load like any other, and adapter/ holds the adapters themselves
    (hf_minbert.adapters.load_adapters reads it).
    card_arguments: extra settings to record in the card (e.g. distillation's teacher and alpha).
    read_reports: the ReadReports of the data files; their skipped rows go into metrics.json and the card.
    """
    from hf_minbert.evaluation import evaluate_model
    from trainers import MultitaskTrainer

    from .output_folder import check_output_folder, staged_output

    output = Path(training_args.output_dir)
    check_output_folder(output, training_args.overwrite_output_dir, training_args.resume_from_checkpoint,
                        inputs={"--data_dir": data_args.data_dir})
    if adapter_args.enabled:
        model = _with_adapters(model, adapter_args, training_args)
    callbacks = []
    if data_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    with staged_output(training_args) as staging:  # Trainer's checkpoints, then the model, are written here
        trainer = MultitaskTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=dev,
                                   processing_class=tokenizer, callbacks=callbacks,
                                   always_rows=always_rows(read_reports, data_args))
        start = time.time()
        trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        train_seconds = time.time() - start

    if adapter_args.enabled:
        trained = _save_adapters_and_export(trainer, tokenizer, staging)
    else:
        # weights, config with auto_map, remote code, pipelines, tokenizer; the push (if asked) comes after the card
        trainer.save_model(str(staging), _internal_call=True)
        trained = trainer.model
    metrics = evaluate_model(trained, tokenizer, dev, batch_size=training_args.per_device_eval_batch_size,
                             max_length=training_args.max_seq_length, bf16=training_args.bf16)
    if training_args.should_save:
        recorded = {**asdict(model_args), **(asdict(adapter_args) if adapter_args.enabled else {}), **(card_arguments or {})}
        _save_record(staging, output, trainer, {**metrics, "skipped_rows": skipped_rows_record(read_reports),
                                                   "training_data": training_data_record(read_reports)},
                     recorded, data_args, training_args, train_seconds, base_path)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    print(_summary(metrics, train_seconds, output, skipped_rows_record(read_reports)))
    return metrics


def _save_record(staging, output, trainer, metrics, model_arguments, data_args, training_args, train_seconds, base_path):
    """metrics.json, the curves and the card beside the model in the staging folder, then the staging folder
    into the output folder's place."""
    from hf_minbert.evaluation import write_metrics_json
    from trainers.reporting import plot_training_curves

    from .output_folder import move_into_place

    write_metrics_json(staging / "metrics.json", metrics)
    plot_training_curves(trainer.state.log_history, staging / "training_curves.png")
    _write_card(staging, model_arguments, data_args, training_args, metrics, train_seconds, base_path, model_id=str(output))
    move_into_place(staging, output)


def _with_adapters(model, adapter_args, training_args):
    from hf_minbert.adapters import add_adapters, trainable_parameter_count

    if training_args.push_to_hub:
        raise ValueError("--push_to_hub with adapters would push the adapter files only: "
                         "push the output folder with `minbert push` after training")
    if adapter_args.peft_per_task and training_args.load_best_model_at_end and training_args.load_best_model_at_end_by_default:
        logger.info("--peft_per_task: the model of the last epoch is kept (Trainer restores only one adapter "
                    "from a checkpoint, so the best one cannot be reloaded)")
        training_args.load_best_model_at_end = False
    if adapter_args.peft_per_task and (training_args.load_best_model_at_end or training_args.resume_from_checkpoint):
        raise ValueError("--peft_per_task: Trainer restores only one adapter from a checkpoint, so "
                         "--load_best_model_at_end and --resume_from_checkpoint are not supported with per-task adapters")
    total = model.num_parameters()
    peft_model = add_adapters(model, adapter_args)
    trainable = trainable_parameter_count(peft_model)
    logger.info("adapters: %d of %d parameters trainable (%.2f%%)", trainable, total, 100 * trainable / total)
    return peft_model


def _save_adapters_and_export(trainer, tokenizer, output):
    """adapter/ (peft's files) and, at the top, the exported model that loads without peft; returns the latter."""
    from hf_minbert.adapters import export_model, save_adapters

    exported = export_model(trainer.model)
    if trainer.args.should_save:
        save_adapters(trainer.model, output / ADAPTER_SUBDIR)
        exported.save_pretrained(output)
        tokenizer.save_pretrained(output)
    return exported


def _write_card(folder, model_arguments, data_args, training_args, metrics, train_seconds, base_path, model_id):
    from model_cards import write_model_card

    write_model_card(
        folder,
        metrics=metrics,
        base_model=base_path,
        training_arguments=training_args,
        model_arguments=model_arguments,
        data_arguments=data_args,
        train_seconds=train_seconds,
        model_id=model_id,  # the output folder, not the staging folder the card is written in
    )


def _summary(metrics, seconds, output, skipped_rows=()):
    lines = [f"trained in {seconds / 60:.1f} min; model in {output}"]
    if skipped_rows:
        count = sum(record["count"] for record in skipped_rows)
        lines.append(f"  skipped {count} bad data row(s) in {len(skipped_rows)} file(s): see metrics.json")
    for task in ("sst", "para", "sts"):
        if task in metrics:
            lines.append(f"  {task}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics[task].items()))
    if "overall" in metrics:
        lines.append(f"  overall (leaderboard) {metrics['overall']:.4f}   mean {metrics['mean']:.4f}")
    return "\n".join(lines)
