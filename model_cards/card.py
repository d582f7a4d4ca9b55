"""Build a model card from a run's metrics and configuration.

The front matter carries `eval_results` (one per task metric and the overall score), which
`huggingface_hub` renders as the `model-index` the Hub shows; the body records the exact training
configuration, so a card always says how its numbers were obtained.
"""
import os
import platform
from dataclasses import asdict, is_dataclass
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = Path(__file__).with_name("template.md")
EMBEDDED_BASE_ID = "sentence-transformers/all-MiniLM-L6-v2"

# task -> (Hub task type, dataset id, dataset name)
TASK_DATASETS = {
    "sst": ("text-classification", "SetFit/sst5", "SST-5 (CS224N split)"),
    "para": ("text-classification", "glue/qqp", "Quora Question Pairs (CS224N dev split, resplit)"),
    "sts": ("sentence-similarity", "sentence-transformers/stsb", "STS Benchmark (CS224N split)"),
}

# The settings of the seeds' techniques, shown in the card whatever their value.
TRAINING_KEYS = (
    "learning_rate", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
    "warmup_ratio", "weight_decay", "bf16", "max_seq_length", "seed", "task_sampling", "sampling_temperature",
    "task_weights", "smart_weight", "smart_variant", "smart_steps", "smart_step_size", "smart_epsilon",
    "smart_noise_std", "smart_norm", "smart_proximal_weight", "mnr_weight", "mnr_scale", "mnr_symmetric",
    "pcgrad", "layerwise_lr_decay", "head_lr_multiplier", "freeze_embeddings", "freeze_encoder",
)


def build_model_card(model_dir, metrics, base_model, training_arguments=None, model_arguments=None,
                     data_arguments=None, train_seconds=None, model_name=None):
    model_dir = Path(model_dir)
    base_id = _hub_base_id(base_model)
    settings = _settings(training_arguments, model_arguments)
    card_data = ModelCardData(
        language="en",
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["minbert", "multitask", "sentiment", "paraphrase", "sentence-similarity", "custom_code"],
        base_model=base_id,
        datasets=[TASK_DATASETS[t][1] for t in ("sst", "para", "sts") if t in metrics],
        model_name=model_name or model_dir.name,
        eval_results=eval_results(metrics),
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name or model_dir.name,
        base_model=base_id,
        parameter_count=_parameter_count(model_dir),
        metric_rows=[(task, name, f"{value:.4f}") for task, values in metrics.items() if isinstance(values, dict)
                     for name, value in values.items()],
        overall=_fmt(metrics.get("overall")),
        mean=_fmt(metrics.get("mean")),
        usage=usage_snippet(model_name or str(model_dir)),
        train_minutes=f"{train_seconds / 60:.1f}" if train_seconds is not None else "unknown",
        hardware=_hardware(),
        max_train_samples=getattr(data_arguments, "max_train_samples", None),
        training_rows=[(k, settings[k]) for k in (*TRAINING_KEYS, "tasks") if k in settings],
        has_curves=(model_dir / "training_curves.png").exists(),
    )


def write_model_card(model_dir, **kwargs):
    card = build_model_card(model_dir, **kwargs)
    card.save(Path(model_dir) / "README.md")
    return card


def eval_results(metrics):
    """One `EvalResult` per task metric (dev split), and the leaderboard overall score."""
    results = []
    for task, values in metrics.items():
        if task not in TASK_DATASETS or not isinstance(values, dict):
            continue
        task_type, dataset_id, dataset_name = TASK_DATASETS[task]
        for name, value in values.items():
            results.append(EvalResult(task_type=task_type, dataset_type=dataset_id, dataset_name=dataset_name,
                                      dataset_split="dev", metric_type=name, metric_name=f"{task} {name}",
                                      metric_value=float(value)))
    if "overall" in metrics:
        results.append(EvalResult(task_type="text-classification", dataset_type="cs224n-multitask",
                                  dataset_name="CS224N multitask (SST, Quora, STS)", dataset_split="dev",
                                  metric_type="overall", metric_name="leaderboard overall", metric_value=float(metrics["overall"])))
    return results


def usage_snippet(model_id):
    return (
        "from transformers import AutoModel, AutoTokenizer, pipeline\n\n"
        f"classifier = pipeline(\"text-classification\", model=\"{model_id}\", trust_remote_code=True)\n"
        "print(classifier(\"A gorgeous, witty, seductive movie.\"))\n\n"
        f"model = AutoModel.from_pretrained(\"{model_id}\", trust_remote_code=True)\n"
        f"tokenizer = AutoTokenizer.from_pretrained(\"{model_id}\")\n"
        "pair = tokenizer(\"A man plays a guitar.\", \"Someone plays an acoustic guitar.\", return_tensors=\"pt\")\n"
        "print(model(**pair, task=\"sts\").logits)  # similarity on the 0-5 scale"
    )


def _settings(training_arguments, model_arguments):
    settings = {}
    for arguments in (training_arguments, model_arguments):
        if arguments is not None:
            settings.update(asdict(arguments) if is_dataclass(arguments) else dict(arguments))
    return {k: v for k, v in settings.items() if v not in (None, "")}


def _hub_base_id(base_model):
    try:
        from hf_minbert import embedded_base_model

        if Path(str(base_model)).resolve() == Path(embedded_base_model()).resolve():
            return EMBEDDED_BASE_ID
    except ImportError:
        pass
    return str(base_model)


def _parameter_count(model_dir):
    weights = Path(model_dir) / "model.safetensors"
    if not weights.exists():
        return "unknown"
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        total = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
    return f"{total / 1e6:.1f}M"


def _prod(shape):
    total = 1
    for n in shape:
        total *= n
    return total


def _fmt(value):
    return f"{value:.4f}" if value is not None else "n/a"


def _hardware():
    import torch

    accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {accelerator}"
