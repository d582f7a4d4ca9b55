"""An ensemble of minBERT multitask models saved, loaded and called as one model.

Per task, the ensemble's prediction is a weighted average of its members' unrounded predictions: class
probabilities (classification), the positive-class probability (binary) or the score (regression). Its
`forward(..., task=t)` returns logits that say exactly that to every consumer of a `MinBertForMultitask`:

    classification   log of the averaged class probabilities   (softmax(logits) = the average)
    binary           logit of the averaged probability          (sigmoid(logits) = the average)
    regression       the averaged score

Members are complete models (each its own encoder and heads), all reading the same tokenizer's ids. A task
may use any subset of the members with any weights (`task_weights`): the greedy selection in
`hf_minbert.ensemble` picks a different subset per task, and per-task LoRA adapters export as one merged
member per task.

This file travels to the Hub as remote code: it imports only torch, transformers and, relatively, minBERT's own
modeling files, which `save_pretrained` copies next to it. It imports every one of them itself, also those only
the members' code uses: an ensemble folder loads through this file, and transformers 4.x, loading a local
folder's remote code, copies only the files the loaded module imports itself, not what those import in turn.
"""
import inspect
import sys

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from .configuration_minbert import (
    LABEL_FIELDS,
    MinBertConfig,
    check_requested_labels,
    checked_default_task,
    describe_default_head,
)
from .modeling_minbert import MinBertForMultitask
from .modeling_minbert_conversion import load_multitask  # noqa: F401  (see the module docstring)
from .modeling_minbert_heads import (
    MinBertMultitaskOutput,
    MinBertTaskPrediction,
    sequence_classification_logits,
    task_loss,
)
from .modeling_minbert_layers import MinBertLayer  # noqa: F401
from .modeling_minbert_pair_order import both_orders  # noqa: F401
from .modeling_minbert_task_encoders import stack_sides
from .modeling_minbert_unpadding import MinBertTokenLayout  # noqa: F401

# Fields of a task spec that must agree among the members a task averages: what a prediction means.
MEANING_FIELDS = ("kind", "labels", "label_range")
# Keys of a member's config that describe how it was saved, not what it computes.
SAVE_ONLY_KEYS = ("auto_map", "custom_pipelines", "_name_or_path", "transformers_version")


class MinBertEnsembleConfig(PretrainedConfig):
    r"""
    Configuration of a `MinBertEnsembleForMultitask`.

    Args:
        members (`list[dict]`):
            Each member's `MinBertConfig` as a dict (with `architectures`, naming its class in modeling_minbert).
        task_weights (`dict[str, list[float]]`):
            Per task, one non-negative weight per member (0: the member does not take part in that task);
            normalized to sum to 1. Every member must take part in some task.
        default_task (`str`, *optional*):
            The task `forward` runs when given none (default: "sst" if present, else the first task).

    Derived, and rewritten on every load: `tasks` (per task its kind, labels, label_range and the pair encoding
    the ensemble reads: "cross" if any member cross-encodes the task's pairs, else the members' own),
    `max_position_embeddings` (the members' smallest) and the default task's `id2label` and `problem_type`.
    """

    model_type = "minbert-ensemble"
    DERIVED = ("tasks", "max_position_embeddings", "vocab_size", "id2label", "label2id", "num_labels", "problem_type")

    def __init__(self, members=None, task_weights=None, default_task=None, **kwargs):
        for key in self.DERIVED:
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        self.members = [_clean_member(member) for member in (members or [])]
        self.task_weights = {task: [float(w) for w in weights] for task, weights in (task_weights or {}).items()}
        self.tasks = {}
        if not self.members:  # the empty default config transformers builds to diff against
            self.default_task = default_task
            return
        configs = self.member_configs()
        _check_weights(self.task_weights, len(configs))
        self.task_weights = {task: _normalized(weights) for task, weights in self.task_weights.items()}
        self.tasks = {task: _ensemble_task_spec(task, configs, weights) for task, weights in self.task_weights.items()}
        self.max_position_embeddings = min(config.max_position_embeddings for config in configs)
        vocab_sizes = {config.vocab_size for config in configs}
        if len(vocab_sizes) != 1:
            raise ValueError(f"ensemble members must share one tokenizer, but their vocab sizes differ: {sorted(vocab_sizes)}")
        self.vocab_size = vocab_sizes.pop()
        self.default_task = default_task  # checked, and its head's labels described, by __setattr__

    def __setattr__(self, key, value):
        # The default head decides the labels (`forward` without a task answers with it), also when it is chosen
        # after construction: default_task= to from_pretrained, or set on a loaded ensemble.
        if key != "default_task" or not self.__dict__.get("tasks"):
            return super().__setattr__(key, value)
        super().__setattr__(key, checked_default_task(value, self.tasks))
        describe_default_head(self)

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # The labels are the default head's: a num_labels/id2label request to from_pretrained must agree with them.
        requested = {key: kwargs.pop(key) for key in LABEL_FIELDS if key in kwargs}
        result = super().from_dict(config_dict, **kwargs)
        config = result[0] if isinstance(result, tuple) else result
        if config.tasks:
            check_requested_labels(config, requested)
        return result

    def member_configs(self):
        return [MinBertConfig.from_dict(member) for member in self.members]

    def task_spec(self, task):
        """The spec of `task` (None: the default task); an unknown name lists the known ones."""
        task = self.default_task if task is None else task
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}; this ensemble has tasks: {', '.join(self.tasks)}")
        return self.tasks[task]


def _clean_member(member):
    member = member.to_dict() if isinstance(member, PretrainedConfig) else dict(member)
    return {key: value for key, value in member.items() if key not in SAVE_ONLY_KEYS}


def _check_weights(task_weights, num_members):
    if not task_weights:
        raise ValueError("task_weights must give at least one task its member weights")
    for task, weights in task_weights.items():
        if len(weights) != num_members:
            raise ValueError(f"task {task!r}: {len(weights)} weights for {num_members} members")
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"task {task!r}: weights must be non-negative with a positive sum, got {weights}")
    unused = [i for i in range(num_members) if all(weights[i] == 0 for weights in task_weights.values())]
    if unused:
        raise ValueError(f"member(s) {unused} take part in no task (weight 0 everywhere): leave them out")


def _normalized(weights):
    total = sum(weights)
    return [w / total for w in weights]


def _ensemble_task_spec(task, configs, weights):
    """What the ensemble's `task` means (from its members, which must agree) and which inputs it reads."""
    specs = []
    for index, (config, weight) in enumerate(zip(configs, weights)):
        if weight > 0:
            if task not in config.tasks:
                raise ValueError(f"task {task!r}: member {index} has no head for it; its tasks: {', '.join(config.tasks)}")
            specs.append(config.tasks[task])
    first = specs[0]
    for field in MEANING_FIELDS:
        values = [spec[field] for spec in specs]
        if any(value != first[field] for value in values):
            raise ValueError(f"task {task!r}: members disagree on {field}: {values}")
    encodings = {spec["pair_encoding"] for spec in specs}
    # Cross-encoded input carries both sentences, and a bi-encoder member recovers them from it
    # (`split_cross_encoded`); the reverse is impossible, so any cross member makes the ensemble read "cross".
    encoding = "cross" if "cross" in encodings else encodings.pop()
    # The spec's cosine_feature stays off: which inputs the ensemble reads, the sentences alone among them when a
    # member reads those, `predict_inputs` says; where a caller gives the joint sequence alone (a plain forward),
    # the sentences are split from it.
    # A task of one's own keeps its data schema (members saved before schemas were recorded carry none).
    schemas = [spec.get("data_schema") for spec in specs if spec.get("data_schema")]
    if any(schema != schemas[0] for schema in schemas):
        raise ValueError(f"task {task!r}: members were trained on rows of other data schemas: {schemas}")
    return {"kind": first["kind"], "labels": first["labels"], "label_range": first["label_range"],
            "pair_encoding": encoding, "cosine_feature": False, "data_schema": schemas[0] if schemas else None}


def average_predictions(kind, weights, member_logits):
    """Logits whose probabilities (or score) are the weighted average of the members'.

    Averaged in log space (logsumexp), so that confident members cannot overflow to inf: for a binary task,
    log p = logsumexp_i(log w_i + log σ(z_i)) and log(1 − p) likewise with −z_i, and the logit is their
    difference.
    """
    logits = torch.stack([z.float() for z in member_logits])
    log_w = torch.log(torch.tensor(weights, dtype=logits.dtype, device=logits.device))
    log_w = log_w.view(-1, *([1] * (logits.dim() - 1)))
    if kind == "classification":
        return torch.logsumexp(F.log_softmax(logits, dim=-1) + log_w, dim=0)
    if kind == "binary":
        return torch.logsumexp(F.logsigmoid(logits) + log_w, dim=0) - torch.logsumexp(F.logsigmoid(-logits) + log_w, dim=0)
    return (logits * log_w.exp()).sum(dim=0)


def split_cross_encoded(input_ids, attention_mask, token_type_ids, pad_token_id=0):
    """"[CLS] a [SEP] b [SEP]" -> ("[CLS] a [SEP]", "[CLS] b [SEP]"): each side as the tokenizer encodes it
    alone, padded on the right, with its attention mask. Needs right padding and token types (0 for the
    first segment, 1 for the second)."""
    if token_type_ids is None:
        raise ValueError("splitting a cross-encoded pair needs token_type_ids (0: first sentence, 1: second)")
    mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    if not bool(mask[:, 0].all()):
        raise ValueError("splitting a cross-encoded pair needs right-padded rows that start with [CLS]")
    length_a = (mask & (token_type_ids == 0)).sum(dim=1)
    length_b = (mask & (token_type_ids == 1)).sum(dim=1) + 1  # + its own [CLS]
    positions_a = torch.arange(int(length_a.max()), device=input_ids.device)
    mask_a = positions_a < length_a[:, None]
    ids_a = input_ids[:, : positions_a.numel()].masked_fill(~mask_a, pad_token_id)
    # Side b's position j > 0 is the joint position length_a + j - 1; position 0 is the row's [CLS].
    positions_b = torch.arange(int(length_b.max()), device=input_ids.device)
    source = (length_a[:, None] + positions_b - 1).clamp(max=input_ids.shape[1] - 1)
    ids_b = input_ids.gather(1, source)
    ids_b[:, 0] = input_ids[:, 0]
    mask_b = positions_b < length_b[:, None]
    ids_b = ids_b.masked_fill(~mask_b, pad_token_id)
    return (ids_a, mask_a.long()), (ids_b, mask_b.long())


def _member_class(config):
    """The class a member was saved as, looked up in modeling_minbert (the copy beside this file, when loaded
    as remote code)."""
    module = sys.modules[MinBertForMultitask.__module__]
    name = (config.architectures or ["MinBertForMultitask"])[0]
    cls = getattr(module, name, None)
    if cls is None or "task" not in inspect.signature(cls.forward).parameters:
        raise ValueError(f"ensemble member architecture {name!r} is not a multitask minBERT model in modeling_minbert")
    return cls


class MinBertEnsembleForMultitask(PreTrainedModel):
    """Several multitask minBERT models averaged per task (see the module docstring); `members[i]` is a
    complete model. `forward` takes the inputs of `MinBertForMultitask.forward` (but not `inputs_embeds`:
    members have their own embeddings) and returns a `MinBertMultitaskOutput` with `.logits` (and `.loss`
    when `labels` are given); `predict` takes those of `MinBertForMultitask.predict`, for several tasks."""

    config_class = MinBertEnsembleConfig
    main_input_name = "input_ids"
    # forward() takes no **kwargs and returns a per-batch mean loss: Trainer must scale it itself.
    accepts_loss_kwargs = False
    _no_split_modules = ["MinBertLayer"]
    _supports_sdpa = True  # as its members

    def __init__(self, config):
        super().__init__(config)
        members = config.member_configs()
        for member in members:  # attn_implementation= picks the members' kernel: theirs is the only attention
            member._attn_implementation = config._attn_implementation
        self.members = nn.ModuleList([_member_class(member)(member) for member in members])
        self.post_init()

    @classmethod
    def from_members(cls, models, task_weights, default_task=None):
        """An ensemble holding (copies of) the weights of `models`; `task_weights[task]` has one weight per model."""
        dtypes = [next(model.parameters()).dtype for model in models]
        if len(set(dtypes)) > 1:  # the ensemble holds its members in one precision: it would answer otherwise
            raise ValueError(f"the member models are in different precisions ({', '.join(map(str, dtypes))}): "
                             "cast them to one first")
        config = MinBertEnsembleConfig(
            members=[model.config for model in models], task_weights=task_weights, default_task=default_task
        )
        ensemble = cls(config)
        for member, model in zip(ensemble.members, models):
            member.load_state_dict(model.state_dict())
        # in the members' precision: bf16 members make a bf16 ensemble, which answers as they did
        first = next(models[0].parameters())
        return ensemble.to(device=first.device, dtype=first.dtype)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        input_ids_a=None,
        attention_mask_a=None,
        input_ids_b=None,
        attention_mask_b=None,
        task=None,
        labels=None,
        return_dict=None,
    ):
        """As `MinBertForMultitask.forward`: without a task, the default head's logits as (batch, num_labels)."""
        generic = task is None
        task = self.config.default_task if task is None else task
        spec = self.config.task_spec(task)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        joint = None if input_ids is None else {"input_ids": input_ids, "attention_mask": attention_mask,
                                                "token_type_ids": token_type_ids}
        inputs = {"sentences" if spec["pair_encoding"] == "single" else "pairs": joint}
        if input_ids_a is not None and spec["pair_encoding"] != "single":
            # Padding ids are never read (masked positions are skipped): any member's will do.
            inputs["sentences"], inputs["sides"] = stack_sides(
                (input_ids_a, attention_mask_a, None), (input_ids_b, attention_mask_b, None), self.members[0].config.pad_token_id
            )
        logits = self.predict([task], **inputs)[task].logits
        loss = task_loss(spec, task, logits, labels) if labels is not None else None
        logits = sequence_classification_logits(spec, logits) if generic else logits
        output = MinBertMultitaskOutput(loss=loss, logits=logits)
        return output if return_dict else output.to_tuple()

    def predict_inputs(self, task):
        """Which of `predict`'s inputs `task` reads: single sentences; for a pair task, what its members read —
        the cross-encoded pairs, each sentence alone at "sides", or both. Each sentence is then cut as a member
        alone cuts it: split from a pair cut as a whole, a long sentence would lose other tokens."""
        if self.config.task_spec(task)["pair_encoding"] == "single":
            return ("sentences",)
        reads = {name for weight, member in zip(self.config.task_weights[task], self.members) if weight > 0
                 for name in member.predict_inputs(task)}
        return tuple(name for name in ("pairs", "sentences", "sides") if name in reads)

    def predict(self, tasks, sentences=None, pairs=None, sides=None):
        """{task: `MinBertTaskPrediction`} with the averaged logits, from the inputs of
        `MinBertForMultitask.predict`; each member predicts through its own `predict`."""
        predictions = {}
        for task in dict.fromkeys([tasks] if isinstance(tasks, str) else tasks):
            spec = self.config.task_spec(task)
            joint, alone = (sentences, None) if spec["pair_encoding"] == "single" else (pairs, (sentences, sides))
            weights, member_logits = [], []
            for index, (weight, member) in enumerate(zip(self.config.task_weights[task], self.members)):
                if weight > 0:
                    inputs = self._member_inputs(index, member, task, joint, alone)
                    member_logits.append(member.predict([task], **inputs)[task].logits)
                    weights.append(weight)
            predictions[task] = MinBertTaskPrediction(logits=average_predictions(spec["kind"], weights, member_logits))
        return predictions

    @staticmethod
    def _member_inputs(index, member, task, joint, alone):
        """`member.predict`'s inputs for `task`: `joint` (what the ensemble reads for the task: sentences or
        cross-encoded pairs) and, for a member that reads each sentence alone, `alone` = (sentences, sides) if
        given, else the sentences split from the cross-encoded pairs."""
        spec = member.config.tasks[task]
        inputs = {}
        if spec["pair_encoding"] != "bi":
            if joint is None:
                raise ValueError(f"task {task!r}: member {index} reads input_ids (the cross-encoded pair); none given")
            inputs["sentences" if spec["pair_encoding"] == "single" else "pairs"] = joint
        if "sides" in member.predict_inputs(task):
            if alone is not None and alone[1] is not None:
                inputs["sentences"], inputs["sides"] = alone
            elif joint is None:
                raise ValueError("an ensemble member needs input_ids_a/_b or a cross-encoded input_ids")
            else:
                pad = member.config.pad_token_id
                (ids_a, mask_a), (ids_b, mask_b) = split_cross_encoded(
                    joint["input_ids"], joint.get("attention_mask"), joint.get("token_type_ids"), pad_token_id=pad
                )
                inputs["sentences"], inputs["sides"] = stack_sides((ids_a, mask_a, None), (ids_b, mask_b, None), pad)
        return inputs

    def save_pretrained(self, save_directory, *args, **kwargs):
        # One folder must resolve for AutoModel and AutoModelForSequenceClassification (the stock
        # text-classification pipeline loads through the latter), both to this class.
        class_path = f"modeling_minbert_ensemble.{type(self).__name__}"
        self.config.auto_map = {
            "AutoConfig": "modeling_minbert_ensemble.MinBertEnsembleConfig",
            "AutoModel": class_path,
            "AutoModelForSequenceClassification": class_path,
        }
        # The custom pipelines travel with the ensemble as with a single model (this relative import makes
        # the save copy pipelines.py too).
        from .pipelines import attach_pipelines

        attach_pipelines(self)
        return super().save_pretrained(save_directory, *args, **kwargs)


# save_pretrained copies this file, and the files it imports relatively, next to the weights.
MinBertEnsembleConfig.register_for_auto_class()
MinBertEnsembleForMultitask.register_for_auto_class("AutoModel")

__all__ = ["MinBertEnsembleConfig", "MinBertEnsembleForMultitask", "average_predictions", "split_cross_encoded"]
