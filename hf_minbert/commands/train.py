"""`minbert train`: multitask fine-tuning of minBERT on the CS224N task files.

    minbert train --data_dir ../shared/data --output_dir runs/minbert
    minbert train --smart_weight sst=2,para=6,sts=8 --task_sampling round_robin --pcgrad ...
    minbert train config.json   (or config.yaml: the same keys)

Every MultitaskTrainingArguments / TrainingArguments flag is accepted. The output directory holds the
model (safetensors + remote code), its tokenizer, metrics.json, training_curves.png and a model card.
"""
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import AutoTokenizer, EarlyStoppingCallback, HfArgumentParser

logger = logging.getLogger("minbert.train")

TASK_HEAD_OPTIONS = ("pair_encoding", "head_layers", "head_dropout", "head_pooling", "bi_features", "cosine_feature")


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "minBERT or BERT checkpoint (dir or Hub id); default: the embedded all-MiniLM-L6-v2"}
    )
    tasks: str = field(default="sst,para,sts", metadata={"help": "tasks to train, comma-separated"})
    pair_encoding: str = field(default="", metadata={"help": "per task: cross or bi, e.g. sts=bi"})
    head_layers: str = field(default="", metadata={"help": "per task head depth, e.g. sts=2"})
    head_dropout: str = field(default="", metadata={"help": "per task head dropout, e.g. sst=0.1"})
    head_pooling: str = field(default="", metadata={"help": "per task: pooler, cls or mean"})
    bi_features: str = field(default="", metadata={"help": "per bi-encoder task: cosine or concat"})
    cosine_feature: str = field(default="", metadata={"help": "per cross-encoded pair task: append the bi-encoder cosine, e.g. sts=true"})
    hidden_dropout_prob: Optional[float] = field(default=None, metadata={"help": "encoder dropout (default: the checkpoint's)"})


@dataclass
class DataArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "folder of the CS224N task files"})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "cap each task's training rows (quick runs)"})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "cap each task's dev rows"})
    skip_bad_rows: bool = field(
        default=True, metadata={"help": "skip malformed rows (two Quora rows have no label) and report them; False: fail"}
    )
    early_stopping_patience: Optional[int] = field(default=None, metadata={"help": "evaluations without improvement before stopping"})


def parse_arguments(argv):
    from trainers import MultitaskTrainingArguments

    parser = HfArgumentParser((ModelArguments, DataArguments, MultitaskTrainingArguments), prog="minbert train")
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        loader = parser.parse_json_file if argv[0].endswith(".json") else parser.parse_yaml_file
        return loader(str(Path(argv[0]).resolve()))
    return parser.parse_args_into_dataclasses(args=argv)


def task_specs(model_args, base_tasks):
    """The heads to train: the default specs of the chosen tasks with the per-task command-line options."""
    names = [name.strip() for name in model_args.tasks.split(",") if name.strip()]
    unknown = [name for name in names if name not in base_tasks]
    if unknown:
        raise ValueError(f"--tasks: unknown task(s) {unknown}; known: {', '.join(base_tasks)}")
    specs = {name: dict(base_tasks[name]) for name in names}
    for option in TASK_HEAD_OPTIONS:
        for task, value in _per_task_strings(getattr(model_args, option), option, names).items():
            specs[task][option] = _typed(option, value)
    return specs


def _per_task_strings(value, option, names):
    if not value:
        return {}
    if "=" not in value:
        return {task: value for task in names}
    result = {}
    for item in value.split(","):
        task, _, setting = item.partition("=")
        if task.strip() not in names:
            raise ValueError(f"--{option}: unknown task {task.strip()!r}; training tasks: {', '.join(names)}")
        result[task.strip()] = setting.strip()
    return result


def _typed(option, value):
    if option == "head_layers":
        return int(value)
    if option == "head_dropout":
        return float(value)
    if option == "cosine_feature":
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--cosine_feature: expected true or false, got {value!r}")
        return value.lower() in ("true", "1")
    return value


def load_task_data(data_args, tasks):
    from hf_minbert.data import read_task_splits

    train, dev = {}, {}
    for task in tasks:
        splits, reports = read_task_splits(data_args.data_dir, task, ("train", "dev"), skip_bad_rows=data_args.skip_bad_rows)
        for split, report in reports.items():
            logger.info(str(report))
        train[task] = _cap(splits["train"], data_args.max_train_samples)
        dev[task] = _cap(splits["dev"], data_args.max_eval_samples)
    return train, dev


def _cap(dataset, limit):
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def build_model(model_args, specs):
    from hf_minbert import MinBertForMultitask, embedded_base_model

    path = model_args.model_name_or_path or embedded_base_model()
    overrides = {"tasks": specs, "default_task": next(iter(specs))}
    if "sst" in specs:
        overrides["default_task"] = "sst"
    if model_args.hidden_dropout_prob is not None:
        overrides["hidden_dropout_prob"] = model_args.hidden_dropout_prob
    return path, MinBertForMultitask.from_pretrained(path, **overrides)


def main(argv=None) -> int:
    from hf_minbert import MinBertConfig
    from hf_minbert.evaluation import evaluate_model
    from trainers import MultitaskTrainer
    from trainers.reporting import plot_training_curves, write_metrics

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    model_args, data_args, training_args = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    specs = task_specs(model_args, MinBertConfig().tasks)
    train, dev = load_task_data(data_args, specs)
    base_path, model = build_model(model_args, specs)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    callbacks = []
    if data_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    trainer = MultitaskTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=dev, processing_class=tokenizer, callbacks=callbacks
    )
    start = time.time()
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    train_seconds = time.time() - start

    output = Path(training_args.output_dir)
    # weights, config with auto_map, remote code, pipelines, tokenizer; the push (if asked) comes after the card
    trainer.save_model(str(output), _internal_call=True)
    metrics = evaluate_model(trainer.model, tokenizer, dev, batch_size=training_args.per_device_eval_batch_size,
                             max_length=training_args.max_seq_length, bf16=training_args.bf16)
    write_metrics(output / "metrics.json", metrics)
    plot_training_curves(trainer.state.log_history, output / "training_curves.png")
    _write_card(output, model_args, data_args, training_args, metrics, train_seconds, base_path)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    print(_summary(metrics, train_seconds, output))
    return 0


def _write_card(output, model_args, data_args, training_args, metrics, train_seconds, base_path):
    from model_cards import write_model_card

    write_model_card(
        output,
        metrics=metrics,
        base_model=base_path,
        training_arguments=training_args,
        model_arguments=model_args,
        data_arguments=data_args,
        train_seconds=train_seconds,
    )


def _summary(metrics, seconds, output):
    lines = [f"trained in {seconds / 60:.1f} min; model in {output}"]
    for task in ("sst", "para", "sts"):
        if task in metrics:
            lines.append(f"  {task}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics[task].items()))
    if "overall" in metrics:
        lines.append(f"  overall (leaderboard) {metrics['overall']:.4f}   mean {metrics['mean']:.4f}")
    return "\n".join(lines)
