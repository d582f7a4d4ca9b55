"""minBERT model configuration.

This file travels to the Hub as remote code: it may import only transformers (and the standard library).
"""
import copy

from transformers import PretrainedConfig
from transformers.activations import ACT2FN

TASK_KINDS = ("classification", "binary", "regression")
# Keys of a model's dev metrics (metrics.json, the trainer's eval metrics) beside its tasks' own: a task named as
# one would overwrite them.
RESERVED_TASK_NAMES = ("overall", "mean", "tasks_overall", "skipped_rows", "training_data", "dev_data")
PAIR_ENCODINGS = ("single", "cross", "bi")
HEAD_POOLINGS = ("pooler", "cls", "mean")
BI_FEATURES = ("cosine", "concat")
# The config fields that say which parts of the encoder each task owns (see MinBertConfig).
ARCHITECTURE_FIELDS = ("task_specific_layers", "task_specific_embeddings", "static_encoder")
# A checkpoint saved as one of these has its labels in its task heads, not in num_labels/id2label.
MULTITASK_ARCHITECTURES = ("MinBertForMultitask",)
LABEL_FIELDS = ("num_labels", "id2label", "label2id")

DEFAULT_TASKS = {
    "sst": {
        "kind": "classification",
        "labels": ["negative", "somewhat negative", "neutral", "somewhat positive", "positive"],
        "pair_encoding": "single",
    },
    "para": {
        "kind": "binary",
        "labels": ["not paraphrase", "paraphrase"],
        "pair_encoding": "cross",
    },
    "sts": {
        "kind": "regression",
        "label_range": [0.0, 5.0],
        "pair_encoding": "cross",
    },
}

# Every field a task spec may carry, with its default. Kept explicit so that a typo in a config file
# is an error instead of a silently ignored key.
TASK_SPEC_DEFAULTS = {
    "kind": None,
    "labels": None,  # class names (classification: one per class; binary: [negative, positive])
    "label_range": None,  # regression: [low, high]
    "pair_encoding": "single",  # single sentence, cross-encoded pair ([CLS] a [SEP] b [SEP]) or bi-encoder
    "head_layers": 1,  # number of Linear layers in the head (hidden ones are hidden_size wide)
    "head_dropout": None,  # None: the encoder's hidden_dropout_prob
    "head_activation": "gelu",
    "head_pooling": "pooler",  # what a cross/single head reads: tanh pooler, raw [CLS] or mean of tokens
    "bi_features": "cosine",  # bi-encoder: cosine alone, or a head over [u, v, |u-v|, cos]
    # cross-encoder: also encode each sentence alone and append cos(u, v) to the head's input (seed 004)
    "cosine_feature": False,
    # cross-encoder, eval mode: answer with the mean of the head's outputs for (a, b) and (b, a), so the answer
    # does not depend on which sentence comes first (twice the encoder work per pair)
    "average_pair_orders": False,
    # a task of one's own: its data schema (hf_minbert.data.TaskSchema's fields), saved with the model so that
    # another process reads and scores its rows, and the pipelines read a dict input by its text columns
    "data_schema": None,
}


def normalize_task_spec(name, spec):
    """Fill defaults into one task spec and check it; raises ValueError naming the task and field."""
    unknown = set(spec) - set(TASK_SPEC_DEFAULTS)
    if unknown:
        raise ValueError(f"task {name!r}: unknown field(s) {sorted(unknown)}; known: {sorted(TASK_SPEC_DEFAULTS)}")
    if name in RESERVED_TASK_NAMES:
        raise ValueError(f"task {name!r}: {', '.join(RESERVED_TASK_NAMES)} name the dev metrics beside the tasks' "
                         "own; name the task otherwise")
    full = {**copy.deepcopy(TASK_SPEC_DEFAULTS), **copy.deepcopy(spec)}
    kind = full["kind"]
    if kind not in TASK_KINDS:
        raise ValueError(f"task {name!r}: kind must be one of {TASK_KINDS}, got {kind!r}")
    if full["pair_encoding"] not in PAIR_ENCODINGS:
        raise ValueError(f"task {name!r}: pair_encoding must be one of {PAIR_ENCODINGS}, got {full['pair_encoding']!r}")
    if full["head_pooling"] not in HEAD_POOLINGS:
        raise ValueError(f"task {name!r}: head_pooling must be one of {HEAD_POOLINGS}, got {full['head_pooling']!r}")
    if full["head_activation"] not in ACT2FN:
        raise ValueError(f"task {name!r}: head_activation must be one of {sorted(ACT2FN)}, got {full['head_activation']!r}")
    if full["bi_features"] not in BI_FEATURES:
        raise ValueError(f"task {name!r}: bi_features must be one of {BI_FEATURES}, got {full['bi_features']!r}")
    if full["pair_encoding"] == "bi" and kind == "classification" and full["bi_features"] != "concat":
        raise ValueError(f"task {name!r}: a bi-encoded classification head reads bi_features='concat' (one cosine "
                         "gives no class scores)")
    if full["cosine_feature"] and full["pair_encoding"] != "cross":
        raise ValueError(f"task {name!r}: cosine_feature applies to cross-encoded pair heads only")
    if full["average_pair_orders"] and full["pair_encoding"] != "cross":
        raise ValueError(f"task {name!r}: average_pair_orders applies to cross-encoded pair heads only (a "
                         f"{full['pair_encoding']} head has no order to average over)")
    _check_data_schema(name, full)
    if int(full["head_layers"]) < 1:
        raise ValueError(f"task {name!r}: head_layers must be >= 1, got {full['head_layers']}")
    if kind == "classification" and (not full["labels"] or len(full["labels"]) < 2):
        raise ValueError(f"task {name!r}: a classification task needs at least two label names")
    if kind == "binary":
        full["labels"] = full["labels"] or ["negative", "positive"]
        if len(full["labels"]) != 2:
            raise ValueError(f"task {name!r}: a binary task has exactly two label names, got {full['labels']}")
    if kind == "regression":
        low, high = full["label_range"] or (0.0, 1.0)
        if not (_is_finite_number(low) and _is_finite_number(high) and low < high):
            raise ValueError(f"task {name!r}: label_range must be [low, high], two finite numbers with low < high, "
                             f"got {full['label_range']}")
        full["label_range"] = [float(low), float(high)]
    return full


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < float("inf")


def _check_data_schema(name, spec):
    schema = spec["data_schema"]
    if schema is None:
        return
    columns = schema.get("text_columns") if isinstance(schema, dict) else None
    sentences = 1 if spec["pair_encoding"] == "single" else 2
    if not (isinstance(columns, (list, tuple)) and len(columns) == sentences and all(isinstance(c, str) for c in columns)):
        raise ValueError(f"task {name!r}: data_schema must be a mapping whose text_columns name the {sentences} "
                         f"text column(s) its head reads, got {schema!r}")


def num_task_outputs(spec):
    """Width of a task head's output: one logit per class, or a single score."""
    return len(spec["labels"]) if spec["kind"] == "classification" else 1


def sequence_classification_labels(task, spec):
    """The label of each column of a head's logits in transformers' (batch, num_labels) shape, which `forward`
    without a task returns (see `sequence_classification_logits`): the class names; a binary head's two names
    (columns [0, logit]); a regression head's one score, named after the task."""
    return list(spec["labels"]) if spec["kind"] != "regression" else [task]


def describe_default_head(config):
    """Set `id2label`, `label2id` (and so `num_labels`) and `problem_type` of a multitask or ensemble config to
    describe the default head's logits as `forward` returns them without a task: the stock text-classification
    pipeline names their columns from id2label, and reads a regression head's score as it is (not through a
    sigmoid) by problem_type."""
    spec = config.tasks[config.default_task]
    labels = sequence_classification_labels(config.default_task, spec)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = "regression" if spec["kind"] == "regression" else "single_label_classification"


def is_multitask_architecture(architectures) -> bool:
    """Whether a saved config's `architectures` name minBERT's multitask model, whose weights hold its trained
    task heads (a plain BERT or a `minbert pretrain-mlm` folder loads with freshly drawn ones)."""
    return (architectures or [None])[0] in MULTITASK_ARCHITECTURES


def is_minbert_config(config):
    """Whether `config` is a minBERT config: by model type, because a remote-code load may give the config
    and the model code two copies of `MinBertConfig` (two dynamic modules), so `isinstance` would fail."""
    return getattr(config, "model_type", None) == MinBertConfig.model_type


class MinBertConfig(PretrainedConfig):
    r"""
    Configuration of a minBERT encoder and its task heads.

    The encoder hyperparameters carry BERT's names and meanings, so a `BertConfig` maps onto this one field
    by field (see `MinBertConfig.from_bert_config`).

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act,
        hidden_dropout_prob, attention_probs_dropout_prob, max_position_embeddings, type_vocab_size,
        initializer_range, layer_norm_eps, pad_token_id, tie_word_embeddings: as in `BertConfig`.
        tasks (`dict[str, dict]`, *optional*):
            One entry per task head: `kind` ("classification", "binary" or "regression"), `labels` (class
            names), `label_range` (regression), `pair_encoding` ("single", "cross" or "bi"), `head_layers`,
            `head_dropout`, `head_activation`, `head_pooling` ("pooler", "cls", "mean") and `bi_features`
            ("cosine" or "concat"), `cosine_feature` (cross heads: append the bi-encoder cosine of the two
            sentences to the head's input), `average_pair_orders` (cross heads, eval mode: the mean of the
            head's outputs for (a, b) and (b, a)). Defaults to sst (5 classes), para (binary) and sts
            (regression 0-5).
        default_task (`str`, *optional*):
            The head used when `forward` gets no `task`, e.g. by the stock text-classification pipeline; one of
            `tasks` (another name is an error). Defaults to "sst" if the model has it, else the first task. Set on
            a multitask model's config, `num_labels` and `id2label` follow it.
        task_specific_layers (`int`, *optional*, defaults to 0):
            CerBERTus (seed 002): the top k encoder layers, and the pooler above them, are copied per task;
            the lower `num_hidden_layers - k` layers and the embeddings stay shared. 0 is the plain multitask
            model (one shared encoder); `num_hidden_layers` gives every task its own layers.
        task_specific_embeddings (`bool`, *optional*, defaults to False):
            Give every task its own embeddings too: with `task_specific_layers == num_hidden_layers` (required)
            this is Triple-BERT (seeds 000/002), one complete encoder per task, nothing shared.
        static_encoder (`bool`, *optional*, defaults to False):
            Seed 002's "static BERT": a frozen copy of the pretrained encoder runs beside the fine-tuned one, and
            each single-sentence or cross-encoder head reads both outputs, concatenated (pooled the head's way).
            Bi-encoder heads and the cosine feature read the fine-tuned encoder alone.
    """

    model_type = "minbert"

    def __init__(
        self,
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        tasks=None,
        default_task=None,
        task_specific_layers=0,
        task_specific_embeddings=False,
        static_encoder=False,
        tie_word_embeddings=True,
        **kwargs,
    ):
        _check_encoder_options(kwargs)
        # transformers 4.x's pipeline() loads a tokenizer for a model type it does not know only where the config
        # names a tokenizer class; minBERT reads BERT's WordPiece ids (a folder's tokenizer_config.json still decides).
        if kwargs.get("tokenizer_class") is None:
            kwargs["tokenizer_class"] = "BertTokenizer"
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be a multiple of num_attention_heads ({num_attention_heads})"
            )
        if isinstance(hidden_act, str) and hidden_act not in ACT2FN:  # found out at the first forward otherwise
            raise ValueError(f"hidden_act must be one of {sorted(ACT2FN)}, got {hidden_act!r}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        tasks = DEFAULT_TASKS if tasks is None else tasks
        if not tasks:
            raise ValueError("tasks must name at least one task head")
        self.tasks = {name: normalize_task_spec(name, spec) for name, spec in tasks.items()}
        self.default_task = checked_default_task(default_task, self.tasks)
        self.task_specific_layers = int(task_specific_layers)
        self.task_specific_embeddings = bool(task_specific_embeddings)
        self.static_encoder = bool(static_encoder)
        self.tie_word_embeddings = tie_word_embeddings  # as in BertConfig: the masked-LM decoder is the word table
        self._check_architecture()

    def _check_architecture(self):
        k, num_layers = self.task_specific_layers, self.num_hidden_layers
        if not 0 <= k <= num_layers:
            raise ValueError(f"task_specific_layers must lie in [0, num_hidden_layers={num_layers}], got {k}")
        if self.task_specific_embeddings and k != num_layers:
            raise ValueError(
                f"task_specific_embeddings=True (Triple-BERT) needs every layer task-specific: "
                f"task_specific_layers={num_layers}, got {k}"
            )
        if self.static_encoder and all(spec["pair_encoding"] == "bi" for spec in self.tasks.values()):
            raise ValueError("static_encoder=True: no head reads it (bi-encoder heads use the fine-tuned encoder alone)")

    @property
    def architecture(self):
        """"multitask" (one shared encoder), "cerbertus" (top layers per task) or "triple" (one encoder per task)."""
        if self.task_specific_embeddings:
            return "triple"
        return "cerbertus" if self.task_specific_layers else "multitask"

    def __setattr__(self, key, value):
        # A new default head (`config.default_task = "para"` on a loaded model) is checked like the one given at
        # construction; where the labels described the old default head's logits (a multitask model syncs
        # them), they follow the new one, which `forward` without a task now answers with.
        if key != "default_task" or "tasks" not in self.__dict__:
            return super().__setattr__(key, value)
        labels_followed = "default_task" in self.__dict__ and self._labels_describe_default_task()
        super().__setattr__(key, checked_default_task(value, self.tasks))
        if labels_followed:
            self.sync_labels_with_default_task()

    def _labels_describe_default_task(self):
        labels = sequence_classification_labels(self.default_task, self.tasks[self.default_task])
        return getattr(self, "id2label", None) == dict(enumerate(labels))

    def sync_labels_with_default_task(self):
        """Make `id2label` (and so `num_labels`) and `problem_type` describe the default head's logits as `forward`
        returns them without a task: the stock text-classification pipeline reads them (a regression head's score
        as it is, not through a sigmoid)."""
        describe_default_head(self)

    def to_dict(self):
        output = super().to_dict()
        if isinstance(output.get("tasks"), dict):
            # A head without a data schema (every course task's) is saved without the field, as before it existed:
            # an earlier release's config code, which knows no such field, still reads the folder.
            output["tasks"] = {task: {key: value for key, value in spec.items()
                                      if not (key == "data_schema" and value is None)}
                               for task, spec in output["tasks"].items()}
        return output

    def task_spec(self, task):
        """The spec of `task` (None: the default task); an unknown name lists the known ones."""
        task = self.default_task if task is None else task
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}; this model has tasks: {', '.join(self.tasks)}")
        return self.tasks[task]

    @classmethod
    def from_bert_config(cls, bert_config, **overrides):
        """Map a `BertConfig` (or its dict) onto a minBERT config, the encoder's and a sequence classifier's settings
        (its labels, problem type and dropout: a `BertForSequenceClassification` state dict then loads into
        `MinBertForSequenceClassification`); `overrides` set tasks etc."""
        source = bert_config if isinstance(bert_config, dict) else bert_config.to_dict()
        keys = (
            "vocab_size hidden_size num_hidden_layers num_attention_heads intermediate_size hidden_act "
            "hidden_dropout_prob attention_probs_dropout_prob max_position_embeddings type_vocab_size "
            "initializer_range layer_norm_eps pad_token_id id2label label2id problem_type classifier_dropout"
        ).split()
        values = {k: source[k] for k in keys if k in source}
        return cls(**{**values, **overrides})

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        # Read as minBERT's before `from_pretrained` compares model types: it warns that a `bert` config read
        # into another type "can yield errors", and minBERT reads BERT configs by design.
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if not config_dict:  # a folder without config.json reads as {}: it would load as a default config
            raise OSError(f"{pretrained_model_name_or_path}: no config.json: not a saved model folder")
        return cls._as_minbert_dict(config_dict), kwargs

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        config_dict = _without_stale_default_task(cls._as_minbert_dict(config_dict), kwargs)
        # Head settings passed to from_pretrained must go through __init__'s validation, not a setattr.
        for key in ("tasks", "default_task", *ARCHITECTURE_FIELDS):
            if key in kwargs:
                config_dict = {**config_dict, key: kwargs.pop(key)}
        # A multitask checkpoint's labels are its heads': a num_labels/id2label request must agree with them.
        multitask = is_multitask_architecture(config_dict.get("architectures"))
        requested = {key: kwargs.pop(key) for key in LABEL_FIELDS if key in kwargs} if multitask else {}
        result = super().from_dict(config_dict, **kwargs)
        config = result[0] if isinstance(result, tuple) else result
        if multitask:  # the saved labels are the saved default head's; default_task= or tasks= may name another
            config.sync_labels_with_default_task()
        check_requested_labels(config, requested)
        return result

    @classmethod
    def _as_minbert_dict(cls, config_dict):
        # A standard BERT checkpoint's config.json is accepted as the encoder description; anything else
        # is refused by name rather than half-loaded into the wrong architecture.
        model_type = config_dict.get("model_type", cls.model_type)
        if model_type == "bert":
            # Its labels stay: a fine-tuned BertForSequenceClassification's classifier and label names load into
            # MinBertForSequenceClassification (a multitask model names its labels after its default head).
            config_dict = {k: v for k, v in config_dict.items() if k not in ("model_type", "architectures")}
            return {**config_dict, "model_type": cls.model_type}
        if model_type != cls.model_type:
            raise ValueError(
                f"cannot load a checkpoint with model_type={model_type!r} as minBERT: "
                "only 'minbert' and standard 'bert' checkpoints are supported"
            )
        return config_dict


# BERT options minBERT does not implement, with the one value it computes: a checkpoint that sets another would
# load and silently compute something else.
ENCODER_ONLY_OPTIONS = {"is_decoder": False, "add_cross_attention": False, "position_embedding_type": "absolute"}


def _check_encoder_options(kwargs):
    for key, supported in ENCODER_ONLY_OPTIONS.items():
        if kwargs.get(key) not in (None, supported):
            raise ValueError(f"{key}={kwargs[key]!r} is not supported: minBERT is a bidirectional encoder with absolute "
                             f"position embeddings ({key}={supported!r})")


def _without_stale_default_task(config_dict, kwargs):
    # New heads (tasks=) without a default_task= replace the saved heads: a saved default that names none of
    # them is dropped, so that the default's default applies instead of an error.
    tasks = kwargs.get("tasks") or DEFAULT_TASKS
    if "tasks" in kwargs and "default_task" not in kwargs and config_dict.get("default_task") not in tasks:
        return {key: value for key, value in config_dict.items() if key != "default_task"}
    return config_dict


def checked_default_task(default_task, tasks):
    if default_task is None:
        return "sst" if "sst" in tasks else next(iter(tasks))
    if default_task not in tasks:
        raise ValueError(f"default_task={default_task!r} is not one of this model's tasks: {', '.join(tasks)}")
    return default_task


def check_segment_embeddings(type_vocab_size, tasks, where="this checkpoint"):
    """A cross-encoded pair head reads its second sentence as segment B (token type 1): a checkpoint with one token
    type (type_vocab_size=1) has no embedding for it, and every pair would fail inside the embedding lookup."""
    cross = [name for name, spec in tasks.items() if spec.get("pair_encoding") == "cross"]
    if cross and type_vocab_size < 2:
        raise ValueError(f"{where} has type_vocab_size={type_vocab_size}: no token type for the second sentence of the "
                         f"cross-encoded pair head(s) {', '.join(cross)}; bi-encode them (pair_encoding bi) or train "
                         "single-sentence tasks only")


def check_requested_labels(config, requested):
    """Refuse num_labels/id2label/label2id that differ from what a multitask (or ensemble) checkpoint's default head answers:
    silently keeping the head would train, say, a 5-way head on 0/1 labels."""
    labels = sequence_classification_labels(config.default_task, config.tasks[config.default_task])
    expected = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {label: i for i, label in enumerate(labels)}}
    for key, value in requested.items():
        given = {int(k): v for k, v in value.items()} if key == "id2label" else value
        if given != expected[key]:
            heads = ", ".join(f"{name} ({len(sequence_classification_labels(name, spec))})"
                              for name, spec in config.tasks.items())
            raise ValueError(
                f"{key}={value!r} does not fit this checkpoint: its default head {config.default_task!r} "
                f"answers {expected[key]!r}. Pick another head with default_task= (heads and label counts: {heads}) "
                "or add one with tasks="
            )


__all__ = ["MinBertConfig"]
