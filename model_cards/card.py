"""Model cards for trained minBERT folders, on `huggingface_hub.ModelCard`.

The front matter carries `eval_results` (each task metric and both overall scores), which huggingface_hub
renders as the `model-index` the Hub shows. The body states the exact training configuration, time and
hardware, the heads, a usage snippet built for the model's own heads, and the limitations.

A card is a function of files in the model folder, so it can be regenerated at any time:
    metrics.json          dev metrics (`minbert train` / `minbert evaluate` write it); from `minbert train`
                          also `skipped_rows`, the bad data rows the readers skipped (file, task, count, first)
    training_config.json  the run's arguments, base model, time, hardware and software versions, recorded at
                          training time (`save_training_config`; `write_model_card` records it)
    ensemble_selection.json  instead of training_config.json in a `minbert ensemble` folder: the members and
                          their dev scores (the card then lists the members rather than a training run)
    config.json, model.safetensors, training_curves.png   heads, parameter count, plot
"""
import json
import math
import os
import platform
from dataclasses import asdict, is_dataclass
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = Path(__file__).with_name("template.md")
METRICS_FILE = "metrics.json"
TRAINING_CONFIG_FILE = "training_config.json"
SELECTION_FILE = "ensemble_selection.json"
CURVES_FILE = "training_curves.png"
EMBEDDED_BASE_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENSEMBLE_MODEL_TYPE = "minbert-ensemble"

TASK_NAMES = {
    "sst": ("text-classification", "SST-5 sentiment (CS224N split)", "sentiment (SST, 5 classes)"),
    "para": ("text-classification", "Quora Question Pairs (split of the CS224N dev file)",
             "paraphrase detection (Quora, binary)"),
    "sts": ("sentence-similarity", "STS Benchmark (CS224N split)", "semantic textual similarity (STS, 0–5)"),
}
OVERALL_SCORES = {
    "overall": "leaderboard overall (sst_acc + para_acc + (sts_pearson + 1) / 2) / 3",
    "mean": "mean of sst_acc, para_acc, sts_pearson",
}

# The settings of the seeds' techniques, shown in the card whatever their value, in this order.
TRAINING_KEYS = (
    # model and data
    "model_name_or_path", "tasks", "pair_encoding", "head_layers", "head_dropout", "head_pooling", "bi_features",
    "average_pair_orders", "hidden_dropout_prob", "extra_training_files", "min_phrase_tokens", "implied_pairs_per_question",
    "max_train_samples", "max_eval_samples",
    "max_seq_length",
    # optimisation
    "learning_rate", "lr_scheduler_type", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "warmup_ratio", "weight_decay", "label_smoothing_factor", "bf16", "seed",
    "use_torch_adamw",
    # task sampling and weights
    "task_sampling", "sampling_temperature", "sampling_size_cap", "equal_split_parts", "task_epoch_rows",
    "task_epoch_passes", "batch_tokens", "first_source_every_epoch", "task_weights", "pair_swap_probability",
    # SMART
    "smart_weight", "smart_variant", "smart_steps", "smart_step_size", "smart_epsilon", "smart_noise_std",
    "smart_norm", "smart_dropout_masks", "smart_proximal_weight", "smart_momentum",
    # MNR
    "mnr_weight", "mnr_task", "mnr_scale", "mnr_symmetric", "mnr_no_duplicates",
    # CoSENT
    "cosent_weight", "cosent_task", "cosent_scale",
    # ordinal loss
    "ordinal_weight", "ordinal_task",
    # PCGrad, LLRD and frozen parts
    "pcgrad", "layerwise_lr_decay", "head_lr_multiplier", "freeze_embeddings", "freeze_encoder",
    # model selection
    "eval_strategy", "metric_for_best_model", "load_best_model_at_end", "early_stopping_patience",
)


# ----------------------------------------------------------------------------------------------------------
# The run's record
# ----------------------------------------------------------------------------------------------------------


def save_training_config(model_dir, *, base_model, training_arguments=None, model_arguments=None,
                         data_arguments=None, train_seconds=None, hardware=None) -> dict:
    """Write `training_config.json`: everything a card states about the run that the weights cannot tell,
    captured now (hardware and versions would be wrong if read when a card is regenerated elsewhere)."""
    record = {
        "base_model": str(base_model),
        "base_model_id": hub_base_id(base_model),
        "train_seconds": train_seconds,
        "hardware": hardware or describe_hardware(),
        "software": _software_versions(),
        "model_arguments": _as_dict(model_arguments),
        "data_arguments": _as_dict(data_arguments),
        "training_arguments": _as_dict(training_arguments),
    }
    path = Path(model_dir) / TRAINING_CONFIG_FILE
    path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return json.loads(path.read_text(encoding="utf-8"))


def load_run_record(model_dir):
    """`(metrics, training_config)` of a model folder; a clear error naming the file that is missing."""
    model_dir = Path(model_dir)
    metrics = _read_json(model_dir / METRICS_FILE, "minbert train or minbert evaluate")
    if (model_dir / SELECTION_FILE).is_file() and not (model_dir / TRAINING_CONFIG_FILE).is_file():
        return metrics, {}  # a `minbert ensemble` folder: its members trained elsewhere
    return metrics, _read_json(model_dir / TRAINING_CONFIG_FILE, "minbert train")


def _read_json(path, writer):
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (written by {writer}); a card needs it")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def describe_hardware() -> str:
    """CPU model, core count and GPUs of this machine, e.g. "Intel(R) Xeon(R) ..., 2 CPU cores, no GPU"."""
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    gpu = ", ".join(gpus) or "no GPU"
    return f"{cpu_model()}, {os.cpu_count()} CPU cores, {gpu}"


def cpu_model():
    """The processor's name (what every speed depends on), with its bf16 matrix units if it has them."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor() or platform.machine())
    return name + (" (AMX)" if " amx_bf16" in info else "")


def _software_versions():
    import torch
    import transformers

    try:
        from hf_minbert import __version__ as minbert_version
    except ImportError:
        minbert_version = None
    return {"hf_minbert": minbert_version, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def _as_dict(arguments):
    if arguments is None:
        return {}
    if hasattr(arguments, "to_dict"):  # TrainingArguments: enums as values, tokens masked
        return arguments.to_dict()
    if is_dataclass(arguments):
        return asdict(arguments)
    return dict(arguments)


def hub_base_id(base_model):
    """The Hub id of the base model: the embedded MiniLM's path maps to its Hub id; a local folder has none."""
    try:
        from hf_minbert import embedded_base_model

        if Path(str(base_model)).resolve() == Path(embedded_base_model()).resolve():
            return EMBEDDED_BASE_ID
    except ImportError:
        pass
    return None if Path(str(base_model)).exists() else str(base_model)


# ----------------------------------------------------------------------------------------------------------
# The card
# ----------------------------------------------------------------------------------------------------------


def build_model_card(model_dir, metrics, training_config, model_id=None, model_name=None) -> ModelCard:
    """The card of `model_dir` from its metrics, its training record and its saved config.

    model_id: the name the usage snippet loads (a Hub repo id; default: the folder's path).
    """
    model_dir = Path(model_dir)
    config = _read_model_config(model_dir)
    tasks, default_task = _in_task_order(config["tasks"]), config.get("default_task")
    base_id = training_config.get("base_model_id")
    base_model = base_id or training_config.get("base_model", "unknown")
    arguments = {**training_config.get("training_arguments", {}), **training_config.get("data_arguments", {}),
                 **training_config.get("model_arguments", {})}
    model_name = model_name or (model_id.split("/")[-1] if model_id else model_dir.resolve().name)
    ensemble = config.get("model_type") == ENSEMBLE_MODEL_TYPE
    selection = _read_json(model_dir / SELECTION_FILE, "minbert ensemble") if (model_dir / SELECTION_FILE).is_file() else None
    card_data = ModelCardData(
        language="en",
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["minbert", "multitask", "custom_code", "text-classification", "sentence-similarity",
              *(["ensemble"] if ensemble else [])],
        base_model=base_id,
        datasets=[_hub_dataset(task)[0] for task in TASK_NAMES if task in metrics],
        license=BASE_LICENSE,
        model_name=model_name,
        eval_results=eval_results(metrics) or None,
        # The Hub's inference widget runs the text-classification pipeline: the sentiment head.
        widget=[{"text": text} for text in WIDGET_SENTENCES] if "sst" in tasks else None,
    )
    seconds = training_config.get("train_seconds")
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        base_model=base_model,
        base_is_minilm=base_id == EMBEDDED_BASE_ID,
        task_summary=_task_summary(tasks),
        parameter_count=_parameter_count(model_dir),
        metric_rows=[(task, name, f"{value:.4f}") for task, values in metrics.items() if isinstance(values, dict)
                     for name, value in values.items() if isinstance(value, (int, float))],
        overall=_fmt(metrics.get("overall")),
        mean=_fmt(metrics.get("mean")),
        usage=usage_snippet(model_id or str(model_dir), tasks, default_task),
        head_rows=[] if ensemble else [_head_row(name, spec) for name, spec in tasks.items()],
        member_rows=_member_rows(config, tasks, selection) if ensemble else [],
        member_tasks=list(tasks),
        selected=selection is not None and selection.get("selection", "greedy") == "greedy",
        averaged_all=selection is not None and selection.get("selection") == "all",
        held_out_rows=_held_out_rows(selection),
        error_correlation_rows=_error_correlation_rows(selection),
        held_out_folds=next((row["held_out"]["folds"] for row in (selection or {}).get("tasks", {}).values()
                             if "held_out" in row), None),
        has_training_record=bool(training_config),
        data_summary=_data_summary(arguments, metrics.get("training_data")),
        skipped_rows=_skipped_rows(metrics.get("skipped_rows")),
        max_eval_samples=arguments.get("max_eval_samples"),
        train_time=f"{seconds / 60:.1f} minutes" if seconds is not None else "not recorded",
        hardware=training_config.get("hardware", "not recorded"),
        software=", ".join(f"{k} {v}" for k, v in training_config.get("software", {}).items() if v),
        training_rows=[(key, _cell(arguments[key])) for key in TRAINING_KEYS if key in arguments],
        has_curves=(model_dir / CURVES_FILE).is_file(),
    )


# all-MiniLM-L6-v2's license, which a model fine-tuned from it inherits.
BASE_LICENSE = "apache-2.0"
WIDGET_SENTENCES = ("A gorgeous, witty, seductive movie.", "The plot is thin and the jokes fall flat.")


def write_model_card(model_dir, *, metrics, base_model, training_arguments=None, model_arguments=None,
                     data_arguments=None, train_seconds=None, model_name=None, model_id=None) -> ModelCard:
    """Record the run (`training_config.json`) and write README.md: what `minbert train` calls at the end."""
    training_config = save_training_config(
        model_dir, base_model=base_model, training_arguments=training_arguments, model_arguments=model_arguments,
        data_arguments=data_arguments, train_seconds=train_seconds,
    )
    card = build_model_card(model_dir, metrics, training_config, model_id=model_id, model_name=model_name)
    card.save(Path(model_dir) / "README.md")
    return card


def regenerate_model_card(model_dir, model_id=None, model_name=None) -> ModelCard:
    """Rewrite README.md of `model_dir` from its metrics.json and training_config.json (`minbert card`)."""
    metrics, training_config = load_run_record(model_dir)
    card = build_model_card(model_dir, metrics, training_config, model_id=model_id, model_name=model_name)
    card.save(Path(model_dir) / "README.md")
    return card


def eval_results(metrics):
    """One `EvalResult` per task metric on the dev split, and one per overall score."""
    results = []
    for task, values in metrics.items():
        if task not in TASK_NAMES or not isinstance(values, dict):
            continue
        task_type, dataset_name, _ = TASK_NAMES[task]
        dataset_id, dataset_config = _hub_dataset(task)
        for name, value in values.items():
            results.append(EvalResult(
                task_type=task_type, dataset_type=dataset_id, dataset_name=dataset_name, dataset_config=dataset_config,
                dataset_split="dev", metric_type=name, metric_name=f"{task} {name}", metric_value=float(value),
            ))
    for key, description in OVERALL_SCORES.items():
        if key in metrics:
            results.append(EvalResult(
                task_type="text-classification", dataset_type="cs224n-minbert-multitask",
                dataset_name="CS224N multitask dev sets (SST, Quora, STS)", dataset_split="dev",
                metric_type=key, metric_name=description, metric_value=float(metrics[key]),
            ))
    return results


def usage_snippet(model_id, tasks, default_task=None):
    """Python that loads `model_id` and runs each pipeline its heads support (kept runnable: tested)."""
    pair = ("A man is playing a guitar.", "Someone plays an acoustic guitar.")
    questions = ("How do I learn Python quickly?", "What is the fastest way to learn Python?")
    lines = ["from transformers import AutoModel, AutoTokenizer, pipeline", "",
             f"model_id = {json.dumps(str(model_id))}", ""]
    default_spec = tasks.get(default_task, {})
    if default_spec.get("kind") == "classification" and default_spec.get("pair_encoding") == "single":
        lines += ['sentiment = pipeline("text-classification", model=model_id, trust_remote_code=True)',
                  'print(sentiment("A gorgeous, witty, seductive movie."))', ""]
    for name, task, kind, preferred, example in (("paraphrase", "paraphrase-detection", "binary", "para", questions),
                                                 ("similarity", "sentence-similarity", "regression", "sts", pair)):
        head = _snippet_head(tasks, kind, preferred)
        if head is not False:
            head_argument = f", head={json.dumps(head)}" if head else ""
            lines += [f'{name} = pipeline("{task}", model=model_id, trust_remote_code=True{head_argument})',
                      f"print({name}({example!r}))", ""]
    lines += ['multitask = pipeline("minbert-multitask", model=model_id, trust_remote_code=True)',
              f"print(multitask({pair!r}))", ""]
    if default_spec.get("pair_encoding") in ("single", "cross"):
        lines += ["model = AutoModel.from_pretrained(model_id, trust_remote_code=True)",
                  "tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=True)",
                  'inputs = tokenizer("A gorgeous, witty, seductive movie.", return_tensors="pt")',
                  f"print(model(**inputs, task={json.dumps(default_task)}).logits)"]
    return "\n".join(lines).rstrip()


def _in_task_order(tasks):
    """sst, para, sts first (the course's order), then any other head in the config's order."""
    order = [t for t in TASK_NAMES if t in tasks] + [t for t in tasks if t not in TASK_NAMES]
    return {name: tasks[name] for name in order}


def _snippet_head(tasks, kind, preferred):
    """False: no such head. None: the pipeline's default finds it. A name: it must be passed as head=."""
    candidates = [name for name, spec in tasks.items() if spec["kind"] == kind and spec["pair_encoding"] != "single"]
    if not candidates:
        return False
    return None if preferred in candidates or len(candidates) == 1 else candidates[0]


def _task_summary(tasks):
    names = [TASK_NAMES[t][2] if t in TASK_NAMES else t for t in tasks]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _held_out_rows(selection):
    """(task, ensemble, best single) dev scores on rows that did not choose the members, where recorded."""
    tasks = (selection or {}).get("tasks", {})
    return [(task, _fmt(row["held_out"]["ensemble"]), _fmt(row["held_out"]["best_single"]))
            for task, row in tasks.items() if "held_out" in row]


def _error_correlation_rows(selection):
    """(task, mean correlation of the candidates' per-row dev errors), where recorded and defined."""
    tasks = (selection or {}).get("tasks", {})
    return [(task, f"{row['error_correlation']['mean']:.2f}") for task, row in tasks.items()
            if (row.get("error_correlation") or {}).get("mean") is not None]


def _member_rows(config, tasks, selection):
    """Per ensemble member: its name (the folder `minbert ensemble` took it from, else its position), then
    per task its weight, with its own dev score when a selection record has it."""
    names = (selection or {}).get("members") or [f"member {i}" for i in range(len(config["members"]))]
    rows = []
    for index, name in enumerate(names):
        row = [f"`{Path(name).name}`" if selection else name]
        for task in tasks:
            weight = config["task_weights"][task][index]
            single = ((selection or {}).get("tasks", {}).get(task, {}).get("single_scores", {})).get(name)
            row.append("" if weight == 0 else f"{weight:.2f}" + (f" ({single:.3f})" if single is not None else ""))
        rows.append(row)
    return rows


def _head_row(name, spec):
    scale = ", ".join(spec["labels"]) if spec.get("labels") else "{} to {}".format(*spec["label_range"])
    pooling = "mean (bi-encoder)" if spec["pair_encoding"] == "bi" else spec["head_pooling"]
    encoding = spec["pair_encoding"] + (" (both orders averaged)" if spec.get("average_pair_orders") else "")
    return [name, spec["kind"], encoding, str(spec["head_layers"]), pooling, scale]


def _data_summary(arguments, training_data=None):
    """Which training files gave how many rows (metrics.json's `training_data`), or the course's files."""
    if training_data:
        parts = [_task_data(task, record) for task, record in training_data.items()]
        text = "; ".join(parts)
        dropped = sum(record.get("overlapping_rows_dropped", 0) for record in training_data.values())
        if dropped:
            text += f"; {dropped:,} rows repeating an earlier file's row dropped"
    else:
        text = "the CS224N task files (`ids-sst-*`, `quora-*`, `sts-*`)"
    if arguments.get("max_train_samples"):
        text += f", at most {arguments['max_train_samples']} training rows per task"
    return text


def _task_data(task, record):
    """ "para 35,782 rows (`quora-train.csv` 15,212, …, 7,063 pairs implied by the labels)"."""
    parts = [f"`{name}` {rows:,}" for name, rows in record["sources"].items()]
    implied = record.get("implied_pairs")
    if implied is not None:
        parts.append(f"{implied:,} pairs implied by the labels")
    return f"{task} {record['rows'] + (implied or 0):,} rows ({', '.join(parts)})"


def _skipped_rows(records):
    """One line per data file with skipped rows (from metrics.json); [] when none were, None when the run
    did not record it (metrics.json from `minbert evaluate`, an ensemble)."""
    if records is None:
        return None
    return [f"`{Path(record['file']).name}` ({record['task']}): {record['count']} row(s); first "
            + "; ".join(record["first"]) for record in records]


def _hub_dataset(task):
    """The Hub id (and config) of a task's dataset, as `hf_minbert.data.hub` loads it."""
    from hf_minbert.data.hub import hub_source

    source = hub_source(task)
    return source.path, source.name


def _read_model_config(model_dir):
    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json; is this a saved model folder?")
    config = json.loads(path.read_text(encoding="utf-8"))
    if "tasks" not in config:
        raise ValueError(f"{path}: no 'tasks'; not a minBERT multitask model")
    return config


def parameter_count(model_dir):
    """The number of parameters in `model_dir`'s model.safetensors (read from its header), or None without one."""
    weights = Path(model_dir) / "model.safetensors"
    if not weights.exists():
        return None
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def _parameter_count(model_dir):
    total = parameter_count(model_dir)
    return "an unknown number of" if total is None else f"{total / 1e6:.1f}M"


def _cell(value):
    if value is None or value == "":
        return "— (not set)"
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text.replace("|", "\\|")


def _fmt(value):
    return f"{value:.4f}" if value is not None else None
