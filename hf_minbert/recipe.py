"""The default recipe: what a checkpoint without trained task heads (a plain BERT, the embedded all-MiniLM-L6-v2,
a `minbert pretrain-mlm` output) gets from `minbert train` and from examples/train_multitask.py.

- heads: `MinBertConfig`'s default heads, but STS as a bi-encoder (`HEADS`);
- architecture: CerBERTus, each task owning a copy of the top `TASK_SPECIFIC_LAYERS` encoder layers;
- data: a task's first training source (the course's rows) is read whole every epoch beside the
  `--task_epoch_rows` cap on the rest (`first_source_rows`);
- training: the defaults of `MultitaskTrainingArguments` (trainers/arguments.py), used as they are.

Why each choice: benchmarks/RESULTS.md, "Where each default comes from".
"""
import numpy as np

from .configuration_minbert import MinBertConfig, checked_default_task

# STS as the cosine of the two sentences' mean-pooled embeddings (seed 001): the default base is a
# sentence-transformers bi-encoder, and a head that uses it that way scored best. SST (single sentence) keeps
# MinBertConfig's default head; Quora stays cross-encoded and answers with the mean of both pair orders,
# having been trained on both (`--pair_swap_probability para=0.5`, trainers/arguments.py).
HEADS = {"sts": {"pair_encoding": "bi"}, "para": {"average_pair_orders": True}}
# Head fields the recipe sets on these tasks' heads when they are cross-encoded, and only then, unless the user
# sets them: a cross-encoded STS head the user asks for (--pair_encoding sts=cross) keeps the cosine feature; a
# Quora head turned into a bi-encoder (--pair_encoding para=bi) has no pair order to average over.
CROSS_HEAD_FIELDS = {"cosine_feature": ("sts",), "average_pair_orders": ("para",)}
TASK_SPECIFIC_LAYERS = 2  # seed 002's best k


def heads(base=None) -> dict:
    """The recipe's heads: `base` ({task: spec}; default: MinBertConfig's heads) with its changes."""
    base = MinBertConfig().tasks if base is None else base
    return {task: {**spec, **HEADS.get(task, {})} for task, spec in base.items()}


def architecture(num_layers: int) -> dict:
    """The recipe's architecture fields for a checkpoint of `num_layers` encoder layers."""
    return {"task_specific_layers": min(TASK_SPECIFIC_LAYERS, num_layers), "task_specific_embeddings": False}


def default_task(tasks) -> str:
    """The head the stock text-classification pipeline uses: sst where there is one, as for any config."""
    return checked_default_task(None, tasks)


def model_kwargs(checkpoint) -> dict:
    """`MinBertForMultitask.from_pretrained(checkpoint, **model_kwargs(checkpoint))`: the recipe's heads and
    architecture on a checkpoint without task heads."""
    tasks = heads()
    num_layers = MinBertConfig.from_pretrained(checkpoint).num_hidden_layers
    return {"tasks": tasks, "default_task": default_task(tasks), **architecture(num_layers)}


def first_source_rows(reports, trained_rows) -> dict:
    """`MultitaskTrainer(always_rows=...)`: per task with several training sources, how many of the rows it
    trains on come from its first source, whose rows lead the task's rows.

    reports: the tasks' `SourcesReport`s (other reports are passed over); trained_rows: per task, the indices
    of the rows trained on.
    """
    return {report.task: int((np.asarray(trained_rows[report.task]) < report.sources[0].kept).sum())
            for report in reports if hasattr(report, "sources") and len(report.sources) > 1}
