"""The task heads a `minbert train` run trains: the checkpoint's own heads (or, for a checkpoint without
any, the default heads with the recipe's changes), then the per-task head options (--pair_encoding sts=bi,
--head_layers para=2, ...) applied task by task."""
import logging

from hf_minbert import recipe

from .common import check_model_source, check_named_once, has_trained_task_heads
from .task_schema_files import declare_tasks
from .train_arguments import model_path

logger = logging.getLogger("minbert")

DEFAULT_TASK_ORDER = ("sst", "para", "sts")
# The ModelArguments fields that set one option of a head, task by task (--head_layers sts=2).
TASK_HEAD_OPTIONS = ("pair_encoding", "head_layers", "head_dropout", "head_activation", "head_pooling", "bi_features",
                     "cosine_feature", "average_pair_orders")
# Meaningless for a single-sentence head.
PAIR_OPTIONS = ("pair_encoding", "bi_features", "cosine_feature", "average_pair_orders")
BOOLEAN_HEAD_OPTIONS = ("cosine_feature", "average_pair_orders")


def in_course_order(tasks) -> list:
    """Task names, the course's first in its order (sst, para, sts), then the others in their given order."""
    course = [task for task in DEFAULT_TASK_ORDER if task in tasks]
    return course + [task for task in tasks if task not in course]


def base_task_specs(model_args):
    """The heads a run starts from: a multitask minBERT checkpoint's own (so its trained heads load), or for
    any checkpoint without task heads — a plain BERT, a `minbert pretrain-mlm` output — the default heads,
    which then get this project's recipe (hf_minbert/recipe.py). Returns (specs, whether the recipe applies)."""
    from hf_minbert import MinBertConfig
    from hf_minbert.data import register_saved_schemas

    path = model_path(model_args)
    check_model_source("--model_name_or_path", path)
    raw, _ = MinBertConfig.get_config_dict(path)
    if raw.get("model_type") == MinBertConfig.model_type and raw.get("tasks") and has_trained_task_heads(raw):
        register_saved_schemas(raw["tasks"], f"--model_name_or_path {path}")  # its tasks of one's own train on
        return MinBertConfig.from_pretrained(path).tasks, False
    return MinBertConfig().tasks, True


def task_specs(model_args, base_tasks, recipe_defaults=True, fresh_heads=None):
    """The heads to train: the base specs of the chosen tasks (and a fresh head for each course task --tasks names,
    each task of one's own a --task_schema file declares, or `fresh_heads` gives, that the base lacks), the recipe
    for fresh heads, then the per-task command-line options, which override both task by task."""
    fresh = {task: spec for task, spec in (fresh_heads or {}).items() if task not in base_tasks}
    own, declared = declare_tasks(model_args.task_schema, {**base_tasks, **fresh})
    fresh.update(own)
    base_tasks = {**base_tasks, **fresh}
    if model_args.tasks is None:  # a trained checkpoint goes on with every head it has (a plain one: the course's)
        # in the course's order, as --tasks' former default gave it (a saved config sorts its heads by name)
        model_args.tasks = ",".join(in_course_order(base_tasks))  # as the record says
    names = [name.strip() for name in model_args.tasks.split(",") if name.strip()]
    if not names:
        raise ValueError("--tasks: name at least one task")
    check_named_once("--tasks", names)
    # a course task the checkpoint has no head for: a fresh head, as the recipe gives it
    fresh_course = {task: spec for task, spec in recipe.heads().items() if task in names and task not in base_tasks}
    fresh.update(fresh_course)
    base_tasks = {**base_tasks, **fresh}
    unknown = [name for name in names if name not in base_tasks]
    if unknown:
        raise ValueError(f"--tasks: unknown task(s) {unknown}; known: {', '.join(base_tasks)} (a task of one's own: "
                         "--task_schema FILE)")
    unnamed = [task for task in declared if task not in names]
    if unnamed:
        raise ValueError(f"--task_schema declares {', '.join(unnamed)}, which --tasks {model_args.tasks} does not name")
    specs = {name: dict(base_tasks[name]) for name in names}
    if recipe_defaults:
        specs = recipe.heads(specs)
    single = [name for name in names if base_tasks[name]["pair_encoding"] == "single"]
    for option in TASK_HEAD_OPTIONS:
        for task, value in _per_task_strings(getattr(model_args, option), option, names, single).items():
            specs[task][option] = _typed(option, value)
    _check_head_options_apply(model_args, specs, names, single)
    reencoded = [task for task in names if task not in fresh
                 and specs[task]["pair_encoding"] != base_tasks[task]["pair_encoding"]]
    for task in reencoded if not recipe_defaults else ():
        logger.warning("--pair_encoding %s=%s: the checkpoint's trained %s head is %s-encoded; a fresh %s-encoded head "
                       "replaces it", task, specs[task]["pair_encoding"], task, base_tasks[task]["pair_encoding"],
                       specs[task]["pair_encoding"])
    # the heads the recipe gives: every head of a checkpoint without trained ones, else the fresh ones
    recipe_tasks = names if recipe_defaults else [*fresh_course, *reencoded]
    for option, tasks in recipe.CROSS_HEAD_FIELDS.items():
        chosen = _per_task_strings(getattr(model_args, option), option, names)
        for task in tasks:
            if task in specs and task in recipe_tasks and task not in chosen:
                specs[task][option] = specs[task]["pair_encoding"] == "cross"
    if not recipe_defaults:
        _check_trained_head_shapes({task: spec for task, spec in specs.items() if task not in fresh}, base_tasks)
    return specs


def _check_head_options_apply(model_args, specs, names, single):
    """A head option its head has no use for would be written into config.json and do nothing: refused where
    it names the task, or where one value for every task fits none of them."""
    for option in ("head_layers", "head_dropout", "head_activation", "head_pooling", "bi_features"):
        value = getattr(model_args, option)
        if value is None:
            continue
        settings = _per_task_strings(value, option, names, single)
        misfits = {task: why for task in settings if (why := _unused_option(specs[task], option))}
        if misfits and ("=" in str(value) or len(misfits) == len(settings)):
            task, why = next(iter(misfits.items()))
            raise ValueError(f"--{option} {task}={settings[task]}: {why}")


def _unused_option(spec, option):
    """Why `spec`'s head has no use for `option`, or None."""
    bi = spec["pair_encoding"] == "bi"
    if option == "head_pooling" and bi:
        return "a bi-encoder mean-pools each sentence's tokens"
    if option == "bi_features" and not bi:
        return f"bi_features applies to bi-encoded pair heads, and this one is {spec['pair_encoding']}-encoded"
    if option in ("head_layers", "head_dropout", "head_activation") and bi and spec["bi_features"] == "cosine":
        return "a bi-encoder's scaled cosine (bi_features cosine) has no layers"
    if option == "head_activation" and int(spec["head_layers"]) == 1:
        return "a one-layer head has no hidden layer to activate (head_layers 2 or more)"
    return None


def _shape_options(spec):
    """The options that size a head's layers: a trained head changed in one no longer fits its weights."""
    if spec["pair_encoding"] == "bi":  # a cosine head has no layers; concatenated features feed head_layers
        return ("bi_features", "head_layers") if spec["bi_features"] == "concat" else ("bi_features",)
    return ("head_layers", "cosine_feature")


def _check_trained_head_shapes(specs, trained):
    """A trained checkpoint's head keeps the shape of its weights: an option that resizes it would fail while the
    weights load, after the data is read. (Another pair encoding is another head, started fresh, as transformers'
    load report then shows.)"""
    for task, spec in specs.items():
        before = trained[task]
        if spec["pair_encoding"] != before["pair_encoding"]:
            continue
        for option in _shape_options(before):
            if spec[option] != before[option]:
                raise ValueError(f"--{option} {task}={spec[option]}: the checkpoint's trained {task} head has "
                                 f"{option}={before[option]}, and a head of another shape cannot load its "
                                 "weights; keep it, or train from the checkpoint it was trained from")


def _per_task_strings(value, option, names, single=()):
    """{task: setting} of a per-task option. The options that only a sentence pair has (PAIR_OPTIONS): one
    value for all applies to the pair tasks, and naming a single-sentence task is an error."""
    from trainers.per_task import parse_task_values

    pair_only = option in PAIR_OPTIONS
    pairs = [name for name in names if name not in single]
    settings = parse_task_values(value, option, names, every=pairs if pair_only else names)
    for task, setting in settings.items():
        if pair_only and task in single:
            raise ValueError(f"--{option} {task}={setting}: {task} is a single-sentence task; {option} applies "
                             f"to sentence-pair tasks ({', '.join(pairs) or 'none in this run'})")
    return settings


def _typed(option, value):
    if option == "pair_encoding" and value not in ("cross", "bi"):
        raise ValueError(f"--pair_encoding: choose cross or bi, got {value!r}")
    if option == "head_layers":
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"--head_layers: a head has a whole number >= 1 of layers, got {value!r}")
        return int(value)
    if option == "head_dropout":
        from trainers.per_task import as_float

        dropout = as_float(value, option)
        if not 0 <= dropout < 1:  # also refuses NaN; 1 would zero every feature the head reads
            raise ValueError(f"--head_dropout: a dropout probability lies in [0, 1), got {value!r}")
        return dropout
    if option in BOOLEAN_HEAD_OPTIONS:
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--{option}: expected true or false, got {value!r}")
        return value.lower() in ("true", "1")
    return value

