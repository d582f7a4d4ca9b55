"""`minbert train`'s own options: the model and data flags (ModelArguments, DataArguments), the parser that
adds the training and adapter flags and reads a config file, and the checkpoint --model_name_or_path names.

What a flag's value alone decides is checked here, as it is parsed (__post_init__); what needs the checkpoint,
the tasks or the data is checked by train.check_run and the readers, still before anything is trained.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import HfArgumentParser

from hf_minbert.commands.common import home_path

# --architecture's choices; train.architecture_overrides says what each means for a checkpoint.
ARCHITECTURES = ("multitask", "cerbertus", "triple")
# The tasks whose dev file a flag names (--sst_dev, ...).
DEV_FILE_TASKS = ("sst", "para", "sts", "cfimdb")


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "minBERT or BERT checkpoint (dir or Hub id); default: the embedded all-MiniLM-L6-v2"}
    )
    tasks: Optional[str] = field(
        default=None, metadata={"help": "tasks to train, comma-separated (default: a trained checkpoint's own heads, "
                                        "else sst,para,sts; and the tasks --task_schema declares)"}
    )
    task_schema: Optional[list[str]] = field(
        default=None, metadata={"help": "a task of one's own: a JSON/YAML file of its data schema (TaskSchema's fields, "
                                        "and optionally its class names as labels), one per task; it gets a fresh "
                                        "head and joins the default --tasks (hf_minbert/commands/task_schema_files.py)"}
    )
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
        self.model_name_or_path = home_path(self.model_name_or_path)
        # What needs no checkpoint; the layers --task_specific_layers may take are checked against it (check_run).
        if self.architecture is not None and self.architecture not in ARCHITECTURES:
            raise ValueError(f"--architecture: choose one of {', '.join(ARCHITECTURES)}; got {self.architecture!r}")
        if self.task_specific_layers is not None and self.task_specific_layers < 0:
            raise ValueError(f"--task_specific_layers must be at least 0, got {self.task_specific_layers}")
        if self.hidden_dropout_prob is not None and not 0 <= self.hidden_dropout_prob < 1:  # also refuses NaN; 1 zeroes
            raise ValueError(f"--hidden_dropout_prob: a dropout probability lies in [0, 1), got {self.hidden_dropout_prob}")


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
        metadata={"help": "para (and any symmetric pair task labelled 0/1): also train on the pairs its labels imply (duplicates of duplicates are duplicates; "
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
        for name in ("data_dir", *(f"{task}_dev" for task in DEV_FILE_TASKS)):
            setattr(self, name, home_path(getattr(self, name)))
        for name in ("max_train_samples", "max_eval_samples", "early_stopping_patience", "min_phrase_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.fold_seed < 2**32:  # numpy's seeds
            raise ValueError(f"--fold_seed must lie in [0, 2**32), got {self.fold_seed}")
        if not self.implied_pairs_per_question >= 0:  # also refuses NaN
            raise ValueError(f"--implied_pairs_per_question must be at least 0, got {self.implied_pairs_per_question}")
        if (self.num_folds is None) != (self.held_out_fold is None):
            raise ValueError("--num_folds and --held_out_fold go together: give both or neither")
        if self.num_folds is None and self.fold_seed != self.__dataclass_fields__["fold_seed"].default:
            raise ValueError(f"--fold_seed {self.fold_seed}: it seeds --num_folds' folds, and no folds are asked for")
        if not self.skip_bad_rows and self.max_bad_row_share != self.__dataclass_fields__["max_bad_row_share"].default:
            raise ValueError(f"--max_bad_row_share {self.max_bad_row_share}: with --skip_bad_rows false no bad row is "
                             "skipped (the first one is an error)")
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


def parse_arguments(argv, extra=(), prog="minbert train"):
    """(model, data, training, adapter arguments, *extra dataclasses) from the command line, which may start
    with a config file (config_file.py). prog: the command that --help and usage errors name."""
    from hf_minbert.adapters import AdapterArguments
    from trainers import MultitaskTrainingArguments

    from .config_file import parse_with_config_file

    parser = HfArgumentParser((ModelArguments, DataArguments, MultitaskTrainingArguments, AdapterArguments, *extra),
                              prog=prog)
    return parse_with_config_file(parser, argv)


def model_path(model_args):
    """--model_name_or_path, or the embedded all-MiniLM-L6-v2. A path that can only be local must exist (a
    Hub id, `name` or `org/name`, is looked up when loading)."""
    from hf_minbert import embedded_base_model

    path = model_args.model_name_or_path
    if path is None:
        return embedded_base_model()
    local = path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path
    if local and not Path(path).is_dir():  # a leading ~ was read as the home folder in __post_init__
        raise ValueError(f"--model_name_or_path {path}: no such directory")
    return path
