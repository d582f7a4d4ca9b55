"""The card `MultitaskTrainer.create_model_card` writes, as `Trainer.create_model_card` does for its own: what
`push_to_hub(**kwargs)` publishes beside the model when the run was trained from Python.

A folder that has a card already (`minbert train` writes one, from its full record) keeps it, with the options
set in its front matter. Otherwise the card is minBERT's own, made as `minbert train` makes it: from the last
evaluation in the trainer's log (metrics.json) and the run's arguments (training_config.json).
"""
from pathlib import Path

from huggingface_hub import ModelCard

from hf_minbert.data import task_schema
from hf_minbert.evaluation import write_metrics_json
from model_cards import set_card_options, write_model_card

from .trainer import METRIC_KEYS

CARD_FILE = "README.md"
# Trainer's card names its model-index results with these; minBERT's card indexes its own dev scores by task.
REFUSED_OPTIONS = ("tasks", "dataset", "dataset_args")


def write_trainer_card(trainer, model, **options):
    """README.md in `trainer.args.output_dir` for `model` (the unwrapped MinBertForMultitask); `options` as
    `Trainer.create_model_card` takes them (language, license, tags, model_name, finetuned_from, dataset_tags)."""
    given = [name for name in REFUSED_OPTIONS if options.pop(name, None) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: these name the results of Trainer's model-index; minBERT's card "
                         "indexes each task's dev scores under the task's own name (set datasets with dataset_tags)")
    folder = Path(trainer.args.output_dir)
    if (folder / CARD_FILE).is_file():
        card = ModelCard.load(folder / CARD_FILE)
    else:
        metrics = last_evaluation(trainer.state.log_history, list(model.config.tasks))
        write_metrics_json(folder / "metrics.json", metrics)
        base = options.get("finetuned_from") or model.config.name_or_path or "unknown"
        card = write_model_card(folder, metrics=metrics, base_model=base, training_arguments=trainer.args,
                                train_seconds=_train_seconds(trainer.state.log_history),
                                model_name=options.get("model_name"))
    set_card_options(card, **options).save(folder / CARD_FILE)
    return card


def last_evaluation(log_history, tasks) -> dict:
    """The scores of the last evaluation in a trainer's log, as metrics.json holds them ({} when none ran)."""
    logged = next((entry for entry in reversed(log_history) if any(key.startswith("eval_") for key in entry)), {})
    metrics = {}
    for task in tasks:
        scores = {key: logged[f"eval_{task}_{key}"] for key in METRIC_KEYS[task_schema(task).metric]
                  if f"eval_{task}_{key}" in logged}
        if scores:
            metrics[task] = scores
    metrics.update({key: logged[f"eval_{key}"] for key in ("overall", "mean") if f"eval_{key}" in logged})
    return metrics


def _train_seconds(log_history):
    return next((entry["train_runtime"] for entry in reversed(log_history) if "train_runtime" in entry), None)
