"""Model cards for trained minBERT folders, on `huggingface_hub.ModelCard`.

The front matter carries `eval_results` (each task metric and both overall scores), which huggingface_hub
renders as the `model-index` the Hub shows. The body states the exact training configuration, time and
hardware, the heads, a usage snippet built for the model's own heads, and the limitations.

A card is a function of files in the model folder, so it can be regenerated at any time (the run record's
files are written and read by model_cards/run_record.py):
    metrics.json          dev metrics (`minbert train` / `minbert evaluate` write it); from `minbert train`
                          also `skipped_rows`, the bad data rows the readers skipped (file, task, count, first),
                          and `training_data`, the rows each training file gave (those equal to a dev row left
                          out; where a cap or held-out fold left some out, also those trained on), each file's
                          SHA-256 and each task's dev file with its rows scored: what the card says of the data
                          (the course's facts only where these show the course's files), else "not recorded"
    training_config.json  the run's arguments (--sst_dev etc.: the dev files scored on, where given), base model,
                          time, hardware and software versions, recorded at training time (`write_model_card`
                          records it)
    ensemble_selection.json  instead of training_config.json in a `minbert ensemble` folder: the members and
                          their dev scores (the card then lists the members rather than a training run)
    config.json, model.safetensors, training_curves.png   heads, parameter count, plot
"""
import json
import math
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .run_record import (
    EMBEDDED_BASE_ID,
    load_ensemble_selection,
    load_run_record,
    save_training_config,
    without_local_paths,
)

TEMPLATE = Path(__file__).with_name("template.md")
CURVES_FILE = "training_curves.png"
ENSEMBLE_MODEL_TYPE = "minbert-ensemble"
# all-MiniLM-L6-v2's license, which a model fine-tuned from it inherits.
BASE_LICENSE = "apache-2.0"
WIDGET_SENTENCES = ("A gorgeous, witty, seductive movie.", "The plot is thin and the jokes fall flat.")

# The course dev files that are a Hub dataset's split row for row (SST's 1,101 dev sentences are SetFit/sst5's
# validation split); the model-index names that dataset and split. STS's 863 dev pairs and the 5,000 Quora pairs
# split from the course's dev file are no split of STS-B or QQP on the Hub: their scores name the course's data.
COURSE_DEV_SPLIT_ON_HUB = {"sst": "validation"}
TASK_NAMES = {
    "sst": ("text-classification", "SST-5 sentiment (CS224N split)", "sentiment (SST, 5 classes)"),
    "para": ("text-classification", "Quora Question Pairs (split of the CS224N dev file)",
             "paraphrase detection (Quora, binary)"),
    "sts": ("sentence-similarity", "STS Benchmark (CS224N split)", "semantic textual similarity (STS, 0–5)"),
}
# This project's copy of the course data (../shared/data): each task's course training and dev file. A record
# that holds its files' SHA-256 (`minbert train` writes them) is matched by content, so a user's own files in the
# course's format, or the course's files edited, claim none of the course's facts below nor its Hub datasets.
# A record written before the hashes were is matched by the training file's name and the rows read from it (or
# those less the rows equal to a dev row, which `minbert train` drops).
CourseFiles = namedtuple("CourseFiles", "train_name train_sha256 train_rows train_rows_equal_to_dev dev_sha256 dev_rows")
COURSE_FILES = {
    "sst": CourseFiles("ids-sst-train.csv", "03b2b625c090f94a6afd59f114cde5282e2053aab0b101e87ed695d8a0c5b1df",
                       8_544, 1, "a186ce94577635fbe10beaaddd50f16cccf6c30973221cefdf90deed2a584bfe", 1_101),
    "para": CourseFiles("quora-train.csv", "012a287ee54f978bf46635ab9ab11a813b2718844f0aec47449639be9b86458c",
                        15_212, 0, "db4a0364775be1e661435ad007f09023780fe943939c972f1bea5a4e3fb312bc", 5_000),
    "sts": CourseFiles("sts-train.csv", "15d12efc2d656fffb1d61ac1f08ec4227f43925fd16f420c037cbd063699c21b",
                       6_040, 17, "ce3cad6f16062586ac7ba462c28b010a9be10c530fd5074165860d7b7ab4e93d", 863),
}
# The course's dev sets, in the card's order.
COURSE_DEV_SETS = {
    "sst": "SST dev (1,101 sentences)",
    "sts": "STS dev (863 pairs)",
    "para": "for Quora a fixed random split (seed 224) of the course's 20,214-pair dev file into 15,214 training "
            "and 5,000 dev pairs",
}
OVERALL_SCORES = {
    "overall": "leaderboard overall (sst_acc + para_acc + (sts_pearson + 1) / 2) / 3",
    "mean": "mean of sst_acc, para_acc, sts_pearson",
}

# The settings of the seeds' techniques, shown in the card whatever their value, in this order.
TRAINING_KEYS = (
    # model and data
    "model_name_or_path", "data_dir", "train_sources", "tasks", "pair_encoding", "head_layers", "head_dropout",
    "head_pooling", "bi_features",
    "average_pair_orders", "hidden_dropout_prob", "extra_training_files", "min_phrase_tokens", "implied_pairs_per_question",
    "max_train_samples", "max_eval_samples", "num_folds", "held_out_fold", "fold_seed",
    "max_seq_length",
    # PEFT: recorded (so shown) only for a run that trained adapters
    "peft", "peft_config", "lora_r", "lora_alpha", "lora_dropout", "peft_target_modules", "peft_per_task",
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
    "mnr_weight", "mnr_task", "mnr_scale", "mnr_symmetric", "mnr_no_duplicates", "mnr_gather_across_devices",
    # CoSENT
    "cosent_weight", "cosent_task", "cosent_scale", "cosent_gather_across_devices",
    # ordinal loss
    "ordinal_weight", "ordinal_task",
    # distillation (`minbert distill`): the teachers, the gold label's weight, how near the teacher's targets are
    "teacher", "fold_teachers", "alpha", "teacher_train_scores",
    # PCGrad, LLRD and frozen parts
    "pcgrad", "layerwise_lr_decay", "head_lr_multiplier", "freeze_embeddings", "freeze_encoder",
    # model selection
    "eval_strategy", "metric_for_best_model", "load_best_model_at_end", "early_stopping_patience",
)


def build_model_card(model_dir, metrics, training_config, model_id=None, model_name=None) -> ModelCard:
    """The card of `model_dir` from its metrics, its training record and its saved config.

    model_id: the name the usage snippet loads (a Hub repo id; default: the folder's path).
    """
    from hf_minbert.evaluation import strict_values

    model_dir = Path(model_dir)
    run = _RunView(model_dir, strict_values(metrics), training_config)  # as metrics.json holds them
    model_name = model_name or (model_id.split("/")[-1] if model_id else model_dir.resolve().name)
    return ModelCard.from_template(_card_data(run, model_name), template_path=str(TEMPLATE),
                                   **_template_values(run, model_name, model_id))


class _RunView:
    """What the card reads of a model folder, gathered once: its config, record, arguments and data."""

    def __init__(self, model_dir, metrics, training_config):
        self.model_dir, self.metrics, self.training_config = model_dir, metrics, training_config
        self.config = _read_model_config(model_dir)
        self.tasks, self.default_task = _in_task_order(self.config["tasks"]), self.config.get("default_task")
        self.base_id = training_config.get("base_model_id")
        self.arguments = {**training_config.get("training_arguments", {}), **training_config.get("data_arguments", {}),
                          **training_config.get("model_arguments", {})}
        self.ensemble = self.config.get("model_type") == ENSEMBLE_MODEL_TYPE
        self.selection = load_ensemble_selection(model_dir)
        self.training_data = metrics.get("training_data")
        self.dev_data = metrics.get("dev_data")  # `minbert ensemble`'s record of the dev files scored
        self.given_dev_files = _given_dev_files(self.arguments)
        self.course_tasks = [task for task in course_training_tasks(self.training_data) if task in self.tasks]
        self.embedding_task = _embedding_task(self)
        self.pipeline_tags = _hub_pipeline_tags(self.config)
        self.pipeline_tag = next(iter(self.pipeline_tags), None if self.ensemble else "feature-extraction")


def _card_data(run, model_name) -> ModelCardData:
    """The card's front matter: what the Hub indexes (tags, base model, datasets, model-index, widget)."""
    return ModelCardData(
        language="en",
        library_name="transformers",
        pipeline_tag=run.pipeline_tag,
        tags=["minbert", "multitask", "custom_code", *run.pipeline_tags, *(["ensemble"] if run.ensemble else [])],
        base_model=run.base_id,
        datasets=[_hub_dataset(task)[0] for task in run.course_tasks] or None,
        license=BASE_LICENSE if run.base_id == EMBEDDED_BASE_ID else None,  # another base's is not known here
        model_name=model_name,
        eval_results=eval_results(run.metrics, run.given_dev_files) or None,
        # The Hub's inference widget runs the pipeline_tag's pipeline: single sentences for text-classification.
        widget=[{"text": text} for text in WIDGET_SENTENCES] if run.pipeline_tag == "text-classification" else None,
    )


def _template_values(run, model_name, model_id) -> dict:
    """The values the card's body (template.md) reads."""
    metrics, arguments, selection, tasks = run.metrics, run.arguments, run.selection, run.tasks
    seconds = run.training_config.get("train_seconds")
    return dict(
        model_name=model_name,
        base_model=run.base_id or without_local_paths(run.training_config.get("base_model", "unknown")),
        base_via=run.training_config.get("base_model_via"),
        base_is_minilm=run.base_id == EMBEDDED_BASE_ID,
        task_summary=_task_summary(tasks),
        all_course_tasks=set(tasks) == {"sst", "para", "sts"},
        score_ranges=[(task, f"{spec['label_range'][0]:g}", f"{spec['label_range'][1]:g}") for task, spec in tasks.items()
                      if spec.get("kind") == "regression" and spec.get("label_range")],
        adapter_summary=_adapter_summary(arguments),
        architecture_summary=_architecture_summary(run.config),
        parameter_count=_parameter_count(run.model_dir),
        metric_rows=[(task, name, _score(value)) for task in _scored_tasks(metrics)
                     for name, value in metrics[task].items()],
        overall=_score(metrics["overall"]) if "overall" in metrics else None,
        mean=_score(metrics.get("mean")),
        dev_summary=_dev_summary(_scored_tasks(metrics), run.training_data,
                                 course_dev_set_tasks(run.training_data, run.given_dev_files, run.dev_data),
                                 run.given_dev_files, run.dev_data),
        course_quora="para" in run.course_tasks,
        usage=usage_snippet(model_id or str(run.model_dir), tasks, run.default_task),
        embedding_task=run.embedding_task,
        embedding_bi=tasks.get(run.embedding_task, {}).get("pair_encoding") == "bi",
        head_rows=[] if run.ensemble else [_head_row(name, spec) for name, spec in tasks.items()],
        member_rows=_member_rows(run.config, tasks, selection) if run.ensemble else [],
        member_tasks=list(tasks),
        selected=selection is not None and selection.get("selection", "greedy") == "greedy",
        averaged_all=selection is not None and selection.get("selection") == "all",
        held_out_rows=_held_out_rows(selection),
        error_correlation_rows=_error_correlation_rows(selection),
        held_out_folds=next((row["held_out"]["folds"] for row in (selection or {}).get("tasks", {}).values()
                             if "held_out" in row), None),
        has_training_record=bool(run.training_config),
        data_summary=_data_summary(arguments, run.training_data),
        skipped_rows=_skipped_rows(metrics.get("skipped_rows")),
        max_eval_samples=arguments.get("max_eval_samples"),
        scored_max_length=(selection or {}).get("max_length"),
        scoring_flags=_training_scoring_flags(arguments) if not run.ensemble else None,
        train_time=f"{seconds / 60:.1f} minutes" if seconds is not None else "not recorded",
        progress=_progress_text(run.training_config.get("progress")),
        hardware=run.training_config.get("hardware", "not recorded"),
        software=", ".join(f"{k} {v}" for k, v in run.training_config.get("software", {}).items() if v),
        training_rows=[(key, _training_cell(key, arguments[key], arguments)) for key in TRAINING_KEYS if key in arguments],
        has_curves=(run.model_dir / CURVES_FILE).is_file(),
    )


def write_model_card(model_dir, *, metrics, base_model, training_arguments=None, model_arguments=None,
                     data_arguments=None, train_seconds=None, model_name=None, model_id=None, progress=None) -> ModelCard:
    """Record the run (`training_config.json`) and write README.md: what `minbert train` calls at the end.
    progress: `training_progress` of the run's trainer."""
    training_config = save_training_config(
        model_dir, base_model=base_model, training_arguments=training_arguments, model_arguments=model_arguments,
        data_arguments=data_arguments, train_seconds=train_seconds, progress=progress,
    )
    card = build_model_card(model_dir, metrics, training_config, model_id=model_id, model_name=model_name)
    card.save(Path(model_dir) / "README.md")
    return card


def set_card_options(card: ModelCard, *, language=None, license=None, tags=None, model_name=None,
                     finetuned_from=None, dataset_tags=None) -> ModelCard:
    """The front matter options of `Trainer.create_model_card` (and so of `push_to_hub(**kwargs)`) set on `card`:
    each given one replaces the card's own, but tags, which are added to its own."""
    data = card.data
    if language is not None:
        data.language = language
    if license is not None:
        data.license = license
    if tags is not None:
        data.tags = [*(data.tags or []), *(tag for tag in ([tags] if isinstance(tags, str) else tags)
                                           if tag not in (data.tags or []))]
    if model_name is not None:
        data.model_name = model_name
    if finetuned_from is not None:
        data.base_model = finetuned_from
    if dataset_tags is not None:
        data.datasets = [dataset_tags] if isinstance(dataset_tags, str) else list(dataset_tags)
    return card


def regenerate_model_card(model_dir, model_id=None, model_name=None) -> ModelCard:
    """Rewrite README.md of `model_dir` from its metrics.json and training_config.json (`minbert card`)."""
    metrics, training_config = load_run_record(model_dir)
    card = build_model_card(model_dir, metrics, training_config, model_id=model_id, model_name=model_name)
    card.save(Path(model_dir) / "README.md")
    return card


def eval_results(metrics, given_dev_files=None):
    """One `EvalResult` per task metric on the dev split, and one per overall score, each naming the dev set it
    was scored on: the course's (its Hub dataset) only where metrics.json's `training_data` shows every row of
    the course's dev file scored (`course_dev_set_tasks`), or `dev_data` (`minbert ensemble`'s record) the
    course's dev file itself. given_dev_files: task -> the dev file --<task>_dev named."""
    given_dev_files = given_dev_files or {}
    training_data, dev_data = metrics.get("training_data"), metrics.get("dev_data") or {}
    course_tasks = course_dev_set_tasks(training_data, given_dev_files, dev_data)
    results = []
    for task in _scored_tasks(metrics):
        task_type = TASK_NAMES[task][0] if task in TASK_NAMES else "text-classification"
        dataset_id, dataset_name, dataset_config = _dev_dataset(task, course_tasks, training_data,
                                                                given_dev_files.get(task), dev_data.get(task))
        split = COURSE_DEV_SPLIT_ON_HUB.get(task, "dev") if task in course_tasks else "dev"
        for name, value in metrics[task].items():
            if value is None:  # undefined (metrics.json writes NaN as null): the model-index holds numbers only
                continue
            results.append(EvalResult(
                task_type=task_type, dataset_type=dataset_id, dataset_name=dataset_name, dataset_config=dataset_config,
                dataset_split=split, metric_type=name, metric_name=f"{task} {name}", metric_value=float(value),
            ))
    dataset_id, dataset_name = _overall_dataset(course_tasks)
    for key, description in OVERALL_SCORES.items():
        if metrics.get(key) is not None:
            results.append(EvalResult(
                task_type="text-classification", dataset_type=dataset_id, dataset_name=dataset_name,
                dataset_split="dev", metric_type=key, metric_name=description, metric_value=float(metrics[key]),
            ))
    return results


def course_training_tasks(training_data):
    """The tasks that metrics.json's `training_data` shows trained on the course's training file (with others
    or not): by its SHA-256, or in a record written before those were, by its name and row count."""
    return [task for task, course in COURSE_FILES.items()
            if _trained_on_course_file(((training_data or {}).get(task) or {}), course)]


def _trained_on_course_file(record, course):
    if "sha256" in record:
        return course.train_sha256 in record["sha256"].values()
    return record.get("sources", {}).get(course.train_name) in (
        course.train_rows, course.train_rows - course.train_rows_equal_to_dev)


def course_dev_set_tasks(training_data, given_dev_files=None, dev_data=None):
    """The tasks scored on every row of the course's dev file: by the recorded dev file's SHA-256 and rows
    scored (`minbert train` records it in `training_data`, `minbert ensemble` in `dev_data`); in a record
    written before those were, the tasks trained on the course's files whose dev file no --<task>_dev named
    (`minbert train` reads it from the same folder)."""
    given_dev_files = given_dev_files or {}
    tasks = []
    for task, course in COURSE_FILES.items():
        record = (training_data or {}).get(task) or {}
        dev = record.get("dev") or (dev_data or {}).get(task)
        if dev:
            scored_course_file = dev["sha256"] == course.dev_sha256 and dev["rows"] == course.dev_rows
        else:
            scored_course_file = _trained_on_course_file(record, course) and task not in given_dev_files
        if scored_course_file:
            tasks.append(task)
    return tasks


def _given_dev_files(arguments):
    """Task -> the dev file the run was given for it (--sst_dev, ..., recorded in training_config.json) in place
    of its data folder's."""
    from hf_minbert.data import TASK_SCHEMAS

    return {task: str(arguments[f"{task}_dev"]) for task in TASK_SCHEMAS if arguments.get(f"{task}_dev")}


def _hub_pipeline_tags(config):
    """The Hub's pipeline tags whose minBERT pipeline answers on this model without `head=` (as the Hub's widget
    calls it): text-classification needs one single-sentence classification head, sentence-similarity one
    regression head on pairs. The heads are chosen as the pipelines choose them."""
    from hf_minbert.pipelines import select_head, select_sentence_head

    model_config = SimpleNamespace(tasks=config["tasks"], default_task=config.get("default_task"))
    choosers = {"text-classification": lambda: select_sentence_head(model_config, "text-classification"),
                "sentence-similarity": lambda: select_head(model_config, "sentence-similarity", "regression", "sts")}
    return [tag for tag, choose in choosers.items() if _chooses_a_head(choose)]


def _chooses_a_head(choose):
    try:
        choose()
    except ValueError:  # the pipeline's own refusal: no such head, or several and none preferred
        return False
    return True


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
    # a pair where a head reads pairs; else one sentence, which every head answers
    reads_pairs = any(spec.get("pair_encoding", "single") != "single" for spec in tasks.values())
    lines += ['multitask = pipeline("minbert-multitask", model=model_id, trust_remote_code=True)',
              f"print(multitask({pair if reads_pairs else pair[0]!r}))", ""]
    if default_spec.get("pair_encoding") in ("single", "cross"):
        # a cross-encoded head reads a pair as one sequence: the tokenizer joins the two sentences
        texts = ('"A gorgeous, witty, seductive movie."' if default_spec["pair_encoding"] == "single"
                 else ", ".join(json.dumps(text) for text in pair))
        lines += ["model = AutoModel.from_pretrained(model_id, trust_remote_code=True)",
                  "tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=True)",
                  f'inputs = tokenizer({texts}, return_tensors="pt")',
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
    return [(task, _score(row["held_out"]["ensemble"]), _score(row["held_out"]["best_single"]))
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


def _embedding_task(run):
    """The task whose encoder a sentence-transformers load embeds with (`MinBertForMultitask.sentence_embedding_task`),
    where the folder carries the sentence-transformers config; else None."""
    from hf_minbert.modeling_minbert import sentence_embedding_task

    if run.ensemble or not (run.model_dir / "modules.json").is_file():
        return None
    return sentence_embedding_task(run.config["tasks"], run.default_task)


def _head_row(name, spec):
    scale = ", ".join(spec["labels"]) if spec.get("labels") else "{} to {}".format(*spec["label_range"])
    pooling = "mean (bi-encoder)" if spec["pair_encoding"] == "bi" else spec["head_pooling"]
    encoding = spec["pair_encoding"] + (" (both orders averaged)" if spec.get("average_pair_orders") else "")
    return [name, spec["kind"], encoding, str(spec["head_layers"]), pooling, scale]


def _scored_tasks(metrics):
    """The tasks metrics.json holds scores of (its other keys are the overall scores and the run's record)."""
    return [task for task, values in metrics.items() if isinstance(values, dict) and values
            and all(value is None or isinstance(value, (int, float)) for value in values.values())]


def _dev_dataset(task, course_tasks, training_data, given_file=None, scored_file=None):
    """(type, name, config) of the dev set `task` was scored on, for the model-index. training_data: metrics.json's
    record of the run's data (None where not recorded); scored_file: the record of the dev file an ensemble was
    scored on."""
    if task in course_tasks and task in COURSE_DEV_SPLIT_ON_HUB:
        dataset_id, dataset_config = _hub_dataset(task)
        return dataset_id, TASK_NAMES[task][1], dataset_config
    if task in course_tasks:  # other rows than any split of the Hub dataset: not to be read as its scores
        return f"cs224n-{task}", TASK_NAMES[task][1], None
    if given_file:
        return Path(given_file).name, f"{task} dev set ({without_local_paths(given_file)}, given with --{task}_dev)", None
    if scored_file:
        return Path(scored_file["file"]).name, f"{task} dev set ({without_local_paths(scored_file['file'])})", None
    if training_data:
        name = _dev_file(task, training_data.get(task))
        return name, f"{task} dev set ({name} of the training data folder)", None
    return f"{task}-dev", f"{task} dev set (which data is not recorded)", None


def _overall_dataset(course_tasks):
    if all(task in course_tasks for task in ("sst", "para", "sts")):
        return "cs224n-minbert-multitask", "CS224N multitask dev sets (SST, Quora, STS)"
    return "minbert-multitask-dev", "the sst, para and sts dev sets scored above"


def _dev_file(task, record=None):
    """The dev file `minbert train` read for `task` from its data folder, e.g. `ids-sst-dev.csv`: as the task's
    record of the run's data names it, else as the task's schema (where this process knows it) names it."""
    from hf_minbert.data import TASK_SCHEMAS

    recorded = ((record or {}).get("dev") or {}).get("file")
    if recorded:
        return Path(recorded).name
    return TASK_SCHEMAS[task].file_name("dev") if task in TASK_SCHEMAS else f"{task} dev file"


def _dev_summary(scored_tasks, training_data, course_tasks, given_dev_files=None, dev_data=None):
    """What the dev sets were: the course's splits where the record shows them scored (`course_dev_set_tasks`),
    else the files --<task>_dev named or the data folder's dev files, or the files an ensemble recorded
    (`dev_data`), with the rows scored where recorded; or "not recorded" without a record."""
    if not training_data and not dev_data:
        return ("not recorded (metrics.json holds no `training_data` nor `dev_data`, which `minbert train` and "
                "`minbert ensemble` record: it was written by another tool, or by an earlier hf_minbert)")
    given = given_dev_files or {}
    course = [description for task, description in COURSE_DEV_SETS.items() if task in scored_tasks and task in course_tasks]
    others = [task for task in scored_tasks if task not in course_tasks]
    parts = ["the CS224N splits — " + _listed(course)] if course else []
    if not training_data:
        files = [f"{task}: `{dev_data[task]['file']}` ({dev_data[task]['rows']:,} rows scored)" if task in dev_data
                 else f"{task}: not recorded" for task in others]
        return "; ".join(parts + ([_listed(files)] if files else []))
    folder = [_dev_file_scored(f"`{_dev_file(task, training_data.get(task))}`", training_data.get(task))
              for task in others if task not in given]
    named = [_dev_file_scored(f"`{given[task]}` given with --{task}_dev", training_data.get(task))
             for task in others if task in given]
    if folder:
        parts.append(f"{_listed(folder)} of the training data folder")
    if named:
        parts.append(_listed(named))
    if any("dev" not in (training_data.get(task) or {}) for task in others):
        parts[-1] += " (rows scored: not recorded)"
    return "; ".join(parts)


def _dev_file_scored(name, record):
    """A dev file's name, with the rows scored where the record holds them."""
    dev = (record or {}).get("dev")
    return f"{name} ({dev['rows']:,} rows scored)" if dev else name


def _listed(items):
    """Items in prose: "a", "a and b", "a, b, and c"."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ("," if len(items) > 2 else "") + " and " + items[-1]


def _adapter_summary(arguments):
    """How a PEFT run trained (None for a full fine-tune): adapters on a frozen encoder, merged for saving."""
    if arguments.get("peft"):
        method = f"`{arguments['peft']}`"
    elif arguments.get("peft_config"):
        method = f"`{Path(arguments['peft_config']).name}`'s"
    else:
        return None
    if arguments.get("peft_per_task"):
        return (f"Trained with PEFT: one {method} adapter and head per task on a frozen encoder, each adapter then "
                "merged into its own copy of the encoder (an ensemble of one encoder per task).")
    return (f"Trained with PEFT: {method} adapters and the heads on a frozen encoder, the adapters then merged "
            "into these weights.")


def _data_summary(arguments, training_data=None):
    """The training data: which files gave how many rows (metrics.json's `training_data`), the rows equal to a
    dev row left out, and where --max_train_samples or a held-out fold left some out, the rows trained on."""
    selection = _row_selection(arguments)
    if not training_data:
        text = "not recorded (metrics.json holds no `training_data`)"
        return text + (f"; trained on {selection}: how many rows that left is not recorded" if selection else "")
    # `minbert train` records `rows_trained` for each task some of whose rows were left out; a record with
    # none of them, from a run that left rows out, may be one written before it did.
    unrecorded = bool(selection) and not any("rows_trained" in record for record in training_data.values())
    text = "; ".join(_task_data(task, record, read_only=unrecorded) for task, record in training_data.items())
    overlapping = sum(record.get("overlapping_rows_dropped", 0) for record in training_data.values())
    if overlapping:
        text += f"; {overlapping:,} rows repeating an earlier file's row dropped"
    text += _dev_rows_dropped(training_data)
    if unrecorded:
        # The record counts the rows read, not those left after the cap and the fold: no number is given for them.
        text += f"; trained on {selection}: how many rows that left is not recorded"
    return text


def _dev_rows_dropped(training_data):
    """ "; 17 sts training rows equal to dev rows were left out, …", or "" when none were."""
    dropped = {task: record["dev_rows_dropped"] for task, record in training_data.items()
               if record.get("dev_rows_dropped")}
    if not dropped:
        return ""
    total = sum(dropped.values())
    if len(dropped) == 1:
        counted = f"{total:,} {next(iter(dropped))} training rows"
    else:
        counted = f"{total:,} training rows ({', '.join(f'{task} {rows:,}' for task, rows in dropped.items())})"
    return f"; {counted} equal to dev rows were left out, so that no dev score is measured on a row trained on"


def _row_selection(arguments):
    """Which of each task's rows were trained on, as the flags say, e.g. "at most the first 10 rows of each
    task, less fold 0 of 3 (held out; fold seed 0)"; "" when every row was."""
    cap, folds = arguments.get("max_train_samples"), arguments.get("num_folds")
    parts = [f"at most the first {cap:,} rows of each task"] if cap else []
    if folds:
        fold, seed = arguments.get("held_out_fold"), arguments.get("fold_seed", 0)
        held_out = f"fold {fold} of {folds} (held out; fold seed {seed})"
        parts.append(("less " if cap else "each task's rows but ") + held_out)
    return ", ".join(parts)


def _task_data(task, record, read_only=False):
    """ "para 35,782 rows (`quora-train.csv` 15,212, …, 7,063 pairs implied by the labels)"; where only some
    rows were trained on, the rows read and then those trained on ("sst 24 rows read (…), 6 trained on (at most
    the first 10, less fold 0 of 3 held out; fold seed 0)"); read_only: the rows read only (those trained on
    are not recorded). The implied pairs come after the rows trained on, from their labels."""
    parts = [f"`{name}` {rows:,}" for name, rows in record["sources"].items()]
    implied = record.get("implied_pairs")
    if read_only or "rows_trained" in record:
        text = f"{task} {record['rows']:,} rows read ({', '.join(parts)})"
        if "rows_trained" in record:
            text += f", {record['rows_trained']:,} trained on ({_trained_from(record)})"
        return text if implied is None else text + f", {implied:,} pairs implied by the labels of the rows trained on"
    if implied is not None:
        parts.append(f"{implied:,} pairs implied by the labels")
    return f"{task} {record['rows'] + (implied or 0):,} rows ({', '.join(parts)})"


def _trained_from(record):
    """Which rows of a task were trained on: per file where it has several, and the settings that chose them,
    e.g. "at most the first 10, less fold 0 of 3 held out; fold seed 0"."""
    selection = record.get("selection", {})
    cap, folds = selection.get("max_train_samples"), selection.get("num_folds")
    how = [f"at most the first {cap:,}"] if cap else []
    if folds:
        held_out = f"fold {selection.get('held_out_fold')} of {folds} held out; fold seed {selection.get('fold_seed', 0)}"
        how.append(("less " if cap else "") + held_out)
    files = record.get("sources_trained", {})
    per_file = ", ".join(f"`{name}` {rows:,}" for name, rows in files.items()) if len(files) > 1 else ""
    return ": ".join(part for part in (per_file, ", ".join(how)) if part)


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
    """The number of parameters in `model_dir`'s safetensors weights, one file or an index's shards (read from
    their headers), or None without any."""
    from safetensors import safe_open

    from hf_minbert.hub import weight_files

    model_dir = Path(model_dir)
    try:
        names = [name for name in weight_files(model_dir) if name.endswith(".safetensors")]
    except FileNotFoundError:
        return None
    total = 0
    for name in names:
        with safe_open(str(model_dir / name), framework="pt") as f:
            total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return total


def _parameter_count(model_dir):
    total = parameter_count(model_dir)
    return "an unknown number of" if total is None else f"{total / 1e6:.1f}M"


def _progress_text(progress):
    """How far the run trained, as the card says it; None where the record does not say."""
    if not progress:
        return None
    text = f"{progress['optimizer_steps']} optimizer steps ({progress['epochs']:g} epochs)"
    if progress.get("resumed_from_step") is not None:
        text += f", resumed from the checkpoint of step {progress['resumed_from_step']} (the time below is this session's)"
    saved, best = progress.get("saved_step"), progress.get("best_step")
    if saved not in (None, progress["optimizer_steps"]):
        text += f"; the model saved is step {saved}'s, the best on dev"
        if best not in (None, saved):
            text += f" when its checkpoint was saved (the best evaluation, step {best}'s, saved none)"
    elif best not in (None, saved):
        text += f"; the best evaluation, step {best}'s, saved no checkpoint: the model saved is the last step's"
    return text


def _architecture_summary(config):
    """How the tasks share the encoder, where they do not share all of it (the seeds' CerBERTus, Triple-BERT and
    static encoder); None for one shared encoder."""
    layers, whole, static = (config.get("task_specific_layers") or 0, config.get("task_specific_embeddings"),
                             config.get("static_encoder"))
    if whole:
        text = "Triple-BERT: each task has a whole encoder of its own, all started from the base model."
    elif layers:
        text = (f"CerBERTus: the tasks share the embeddings and the lower layers; each task owns the top {layers} "
                f"encoder layer{'s' if layers > 1 else ''}, started from the base model's.")
    else:
        text = ""
    if static:
        text += " A frozen copy of the base encoder (the static encoder) also feeds every head."
    return text.strip() or None


def _training_scoring_flags(arguments):
    """The `minbert evaluate` flags that score as the run's final evaluation did (its precision, its token limit,
    as `minbert train` scores the model it saves), or None where the record does not say."""
    if "max_seq_length" not in arguments or arguments.get("bf16_full_eval") or arguments.get("fp16_full_eval"):
        return None  # a model cast to half precision: no evaluate flag scores that way
    if arguments.get("max_eval_samples") or any(arguments.get(f"{task}_dev") for task in ("sst", "para", "sts", "cfimdb")):
        return None  # scored on part of the dev rows, or on dev files of one's own: said in the dev-set line above
    flags = ["--data_dir", "<its data folder>"] + (["--bf16"] if arguments.get("bf16") else [])
    return " ".join(flags + ["--max_length", str(arguments["max_seq_length"])])


def _training_cell(key, value, arguments):
    """A training argument as the card's table shows it; one left unset, with the value the run used where
    another is built in (a per-task option's, an adapter flag's or the sampling temperature's default)."""
    from trainers.arguments import BUILT_IN_PER_TASK

    if value is None and key in BUILT_IN_PER_TASK:
        return f"{_cell(BUILT_IN_PER_TASK[key])} (built-in: where the run trains the task and it applies)"
    default = _default_used(key, arguments) if value is None else None
    return _cell(value) if default is None else f"{_cell(default)} (default)"


def _default_used(key, arguments):
    """The value an unset flag took in this run, or None where it took none (it did not apply)."""
    if key == "sampling_temperature" and arguments.get("task_sampling") == "temperature":
        from trainers.sampling import DEFAULT_TEMPERATURE

        return DEFAULT_TEMPERATURE
    if key not in ("lora_r", "lora_alpha", "lora_dropout", "peft_target_modules") or not arguments.get("peft"):
        return None
    from hf_minbert.adapters import FLAG_DEFAULTS, METHODS, target_suffixes

    method = arguments["peft"]
    if key == "peft_target_modules" and method in METHODS:
        return ",".join(target_suffixes(SimpleNamespace(peft_target_modules=None, peft=method)))
    return FLAG_DEFAULTS[key] if method in METHODS and key in METHODS[method][1] else None


def _cell(value):
    if value is None or value == "":
        return "— (not set)"
    value = without_local_paths(value)  # where the run ran is no part of the card
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text.replace("|", "\\|")


def _score(value):
    """A score as the card shows it; None is a score that is undefined (NaN, e.g. the Pearson r of constant
    predictions), which metrics.json writes as null."""
    return f"{value:.4f}" if value is not None else "undefined (NaN)"
