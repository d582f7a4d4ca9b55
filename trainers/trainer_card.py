"""The card `MultitaskTrainer.create_model_card` writes, as `Trainer.create_model_card` does for its own: what
`push_to_hub(**kwargs)` publishes beside the model when the run was trained from Python (`minbert train` writes
its card from its own record and pushes it as it is).

The card is minBERT's, made as `minbert train` makes it, from this trainer's run: the scores of the evaluation
of the model it holds on its dev sets (the best checkpoint's where it loaded that at the end, else the last; not
an `evaluate(eval_dataset=...)` of other rows; metrics.json) and
its arguments (training_config.json), with Trainer's card options set in its front matter.
"""
from pathlib import Path

from hf_minbert.data import has_task_schema, task_schema
from hf_minbert.evaluation import write_metrics_json
from model_cards import set_card_options, write_model_card
from model_cards.run_record import loaded_best_step, training_progress

from .trainer import METRIC_KEYS

CARD_FILE = "README.md"
# Trainer's card names its model-index results with these; minBERT's card indexes its own dev scores by task.
REFUSED_OPTIONS = ("tasks", "dataset", "dataset_args")


def write_trainer_card(trainer, model, model_id=None, **options):
    """README.md in `trainer.args.output_dir` for `model` (the unwrapped MinBertForMultitask), its usage snippet
    loading `model_id` (default: the folder); `options` as `Trainer.create_model_card` takes them (language,
    license, tags, model_name, finetuned_from, dataset_tags)."""
    given = [name for name in REFUSED_OPTIONS if options.pop(name, None) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: these name the results of Trainer's model-index; minBERT's card "
                         "indexes each task's dev scores under the task's own name (set datasets with dataset_tags)")
    folder = Path(trainer.args.output_dir)
    if not (folder / "config.json").is_file():  # the card reads the saved config and weights
        raise ValueError(f"{folder}: no saved model to describe; save it first (trainer.save_model())")
    state = trainer.state
    metrics = evaluation_scores(state.log_history, list(model.config.tasks), step=loaded_best_step(
                                    state, trainer.args.load_best_model_at_end),
                                skip=trainer.other_evaluations)
    write_metrics_json(folder / "metrics.json", metrics)
    base = options.get("finetuned_from") or model.config.name_or_path or "unknown"
    card = write_model_card(folder, metrics=metrics, base_model=base, training_arguments=trainer.args,
                            train_seconds=_train_seconds(state.log_history), model_name=options.get("model_name"),
                            model_id=model_id, progress=training_progress(state, trainer.args.load_best_model_at_end,
                                                                          trainer.resumed_from_step))
    set_card_options(card, **options).save(folder / CARD_FILE)
    return card


def evaluation_scores(log_history, tasks, step=None, skip=()) -> dict:
    """The scores of the evaluation at `step` in a trainer's log (default: the last one), as metrics.json holds
    them ({} when none ran); `skip`: indices of log entries that score other rows than the dev sets (rows passed
    to `evaluate`)."""
    evaluations = [entry for index, entry in enumerate(log_history) if index not in skip
                   and any(key.startswith("eval_") for key in entry) and (step is None or entry.get("step") == step)]
    logged = evaluations[-1] if evaluations else {}
    metrics = {}
    for task in (task for task in tasks if has_task_schema(task)):  # a task without one is never evaluated
        scores = {key: logged[f"eval_{task}_{key}"] for key in METRIC_KEYS[task_schema(task).metric]
                  if f"eval_{task}_{key}" in logged}
        if scores:
            metrics[task] = scores
    metrics.update({key: logged[f"eval_{key}"] for key in ("overall", "mean") if f"eval_{key}" in logged})
    return metrics


def _train_seconds(log_history):
    return next((entry["train_runtime"] for entry in reversed(log_history) if "train_runtime" in entry), None)
