"""PEFT adapters on minBERT with the `peft` library: LoRA and its relatives on the encoder's Linear layers,
the task heads trained in full and saved with the adapter (`modules_to_save`).

    peft_model = add_adapters(model, AdapterArguments(peft="lora", lora_r=8))
    peft_model = add_adapters(model, AdapterArguments(peft="lora", peft_per_task=True))

One adapter (named "default") is shared by every task. With `peft_per_task`, each task gets its own adapter,
named like the task, and its own head on one shared frozen encoder: a CerBERTus whose every layer is
task-specific, at a fraction of the parameters. A forward pre-hook (`TaskAdapterRouter`) activates the
adapter of each call's `task`, so MultitaskTrainer, evaluation and SMART run unchanged.

On disk (`save_adapters`), an adapter folder is peft's own layout: adapter_config.json and
adapter_model.safetensors, or one such sub-folder per task adapter, plus `base_config.json` (the
MinBertConfig of the model the adapters sit on: its tasks and heads). `load_adapters(folder)` rebuilds the
PeftModel from the base checkpoint named in adapter_config.json (or a `base_model` given).

`export_model` turns adapters into a folder every consumer loads without peft: one adapter merges into a
plain `MinBertForMultitask`. Per-task adapters cannot merge into one set of weights (each task's encoder
differs), so they export as a `MinBertEnsembleForMultitask` whose member i is the encoder merged with task
i's adapter and is used for task i only: the same predictions, at the memory cost of one encoder per task.
"""
import contextlib
import copy
import dataclasses
import json
import os
import types
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from peft import (
    PEFT_TYPE_TO_CONFIG_MAPPING,
    IA3Config,
    LoHaConfig,
    LoKrConfig,
    LoraConfig,
    PeftConfig,
    PeftModel,
    PeftType,
    VeraConfig,
    get_peft_model,
)
from peft.tuners.tuners_utils import BaseTunerLayer, set_adapter
from peft.utils import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
)
from peft.utils.other import AuxiliaryTrainingWrapper
from torch import nn

from .configuration_minbert import MinBertConfig
from .modeling_minbert import MinBertForMultitask
from .modeling_minbert_ensemble import MinBertEnsembleForMultitask

# All Linear layers of the encoder: attention query/key/value, the attention output and feed-forward
# `dense` layers, and the pooler (of each encoder copy a CerBERTus or Triple-BERT has, not of a frozen static
# encoder: see `adaptable_modules`). minBERT keeps BERT's module names, so peft's BERT defaults apply too.
DEFAULT_TARGET_MODULES = "query,key,value,dense"
BASE_CONFIG_FILE = "base_config.json"
SHARED_ADAPTER = "default"

# --peft name -> (peft config class, which of --lora_r / --lora_alpha / --lora_dropout it takes, as what)
METHODS = {
    "lora": (LoraConfig, {"lora_r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout"}),
    "loha": (LoHaConfig, {"lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "module_dropout"}),
    "lokr": (LoKrConfig, {"lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "module_dropout"}),
    "vera": (VeraConfig, {"lora_r": "r", "lora_dropout": "vera_dropout"}),
    "ia3": (IA3Config, {}),
}
# Defaults of the shared flags where a method takes them (alpha = 2r, as is usual for LoRA).
FLAG_DEFAULTS = {"lora_r": 8, "lora_alpha": 16.0, "lora_dropout": 0.1}

REFUSED_TYPES = {
    PeftType.ADALORA: (
        "AdaLoRA needs its rank allocator stepped between backward and zero_grad, and its orthogonal "
        "regularizer is added only by AdaLoraModel.forward, which a PeftModel around a custom model bypasses"
    ),
}


@dataclass
class AdapterArguments:
    peft: Optional[str] = field(
        default=None, metadata={"help": f"train PEFT adapters and the heads instead of every weight: {', '.join(METHODS)}"}
    )
    lora_r: Optional[int] = field(default=None, metadata={"help": "adapter rank (lora, loha, lokr, vera; default 8)"})
    lora_alpha: Optional[float] = field(default=None, metadata={"help": "adapter scaling alpha (lora, loha, lokr; default 16)"})
    lora_dropout: Optional[float] = field(default=None, metadata={"help": "adapter dropout (lora, loha, lokr, vera; default 0.1)"})
    peft_target_modules: Optional[str] = field(
        default=None, metadata={"help": f"comma-separated module names to adapt (default {DEFAULT_TARGET_MODULES}; "
                                        "ia3: key,value,output.dense)"}
    )
    peft_per_task: bool = field(default=False, metadata={"help": "one adapter and head per task on a shared frozen encoder"})
    peft_config: Optional[str] = field(
        default=None, metadata={"help": "JSON file of any peft config, e.g. {\"peft_type\": \"OFT\", \"oft_block_size\": 32}"}
    )

    def __post_init__(self):
        self.peft_config = os.path.expanduser(self.peft_config) if self.peft_config else self.peft_config
        if self.peft is not None and self.peft not in METHODS:
            raise ValueError(f"--peft {self.peft!r}: choose one of {', '.join(METHODS)} (or --peft_config FILE)")
        if self.peft_config is not None and self.peft is not None:
            raise ValueError("--peft and --peft_config both choose the method: give one of them")
        given = [name for name in ("lora_r", "lora_alpha", "lora_dropout", "peft_target_modules") if getattr(self, name) is not None]
        if self.peft_config is not None and given:  # the file's settings are the adapter's: the flag would be ignored
            raise ValueError(f"--{given[0]} does not apply to --peft_config {self.peft_config}: set it in the file")
        if self.peft is None and self.peft_config is None and (given or self.peft_per_task):
            raise ValueError(f"--{(given or ['peft_per_task'])[0]} needs --peft (or --peft_config)")
        # peft's configs take any value and fail (or not) only inside the model.
        if self.lora_r is not None and self.lora_r < 1:
            raise ValueError(f"--lora_r must be >= 1, got {self.lora_r}")
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise ValueError(f"--lora_alpha must be > 0, got {self.lora_alpha}")
        if self.lora_dropout is not None and not 0 <= self.lora_dropout < 1:
            raise ValueError(f"--lora_dropout must lie in [0, 1), got {self.lora_dropout}")

    @property
    def enabled(self):
        return self.peft is not None or self.peft_config is not None


# ----------------------------------------------------------------------------------------------------------
# Building adapter configs and adding adapters
# ----------------------------------------------------------------------------------------------------------


def peft_config_for(args, modules_to_save, target_modules):
    """The peft config that `args` describe, adapting `target_modules` (full module names, see
    `adaptable_modules`) and training `modules_to_save` (head module names) in full."""
    if args.peft_config is not None:
        return _config_from_file(args.peft_config, modules_to_save, target_modules)
    config_class, flags = METHODS[args.peft]
    for name in FLAG_DEFAULTS:
        if name not in flags and getattr(args, name) is not None:
            raise ValueError(f"--{name} does not apply to --peft {args.peft}")
    settings = {field_name: _flag(args, name) for name, field_name in flags.items()}
    if args.peft == "ia3":
        feedforward = TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING["bert"]
        settings["feedforward_modules"] = [name for name in target_modules if _ends_with_any(name, feedforward)]
    return config_class(target_modules=list(target_modules), modules_to_save=list(modules_to_save), **settings)


def check_adapter_arguments(args):
    """Build the adapter config the arguments describe, on stand-in module names, so that a mistake in them
    (a --peft_config file, a flag the method does not take) stops a command before it reads any data. Which
    modules the names match is known only once the model is built (`add_adapters`)."""
    if args.enabled:
        peft_config_for(args, ["heads"], target_suffixes(args))


def target_suffixes(args):
    """The module names (suffixes) the flags ask to adapt."""
    if args.peft_target_modules is not None:
        return _names(args.peft_target_modules)
    if args.peft == "ia3":
        return list(TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING["bert"])
    return _names(DEFAULT_TARGET_MODULES)


def check_config_file_targets(model, args):
    """A --peft_config file's own target_modules must name a trainable Linear layer of `model` (its layout is
    enough: a meta-device copy), as peft matches them; peft would find none only when the adapters are added."""
    if args.peft_config is None:
        return
    from peft.tuners.tuners_utils import check_target_module_exists

    config = peft_config_for(args, [], [])
    if not config.target_modules or config.target_modules == "all-linear":  # the defaults, or peft's shorthand
        return
    linear = [name for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and any(p.requires_grad for p in module.parameters())]
    if not any(check_target_module_exists(config, name) for name in linear):
        raise ValueError(f"--peft_config {args.peft_config}: its target_modules {config.target_modules!r} match no "
                         "trainable Linear layer of the model (e.g. query, key, value, dense)")


def adaptable_modules(model, suffixes):
    """Full names of the Linear layers whose names end in one of `suffixes` and that full fine-tuning would
    train: a frozen part of the model (the static encoder) stays as it is, without an adapter."""
    names = [
        name for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and _ends_with_any(name, suffixes) and any(p.requires_grad for p in module.parameters())
    ]
    if not names:
        raise ValueError(f"no trainable Linear layer is named like {', '.join(suffixes)} (--peft_target_modules)")
    return names


def _ends_with_any(name, suffixes):
    return any(name == suffix or name.endswith("." + suffix) for suffix in suffixes)


def _flag(args, name):
    value = getattr(args, name)
    return FLAG_DEFAULTS[name] if value is None else value


def _names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("--peft_target_modules names no module")
    return names


def _config_from_file(path, modules_to_save, target_modules):
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"--peft_config {path}: {error}") from None
    if not isinstance(settings, dict) or "peft_type" not in settings:
        raise ValueError(f"--peft_config {path}: expected a JSON object with a 'peft_type' (e.g. \"LORA\", \"OFT\")")
    _check_config_keys(path, settings)
    settings.setdefault("target_modules", list(target_modules))
    settings["modules_to_save"] = sorted(set(settings.get("modules_to_save") or []) | set(modules_to_save))
    try:
        config = PeftConfig.from_peft_type(**settings)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"--peft_config {path}: {error}") from None
    if config.peft_type in REFUSED_TYPES:
        raise ValueError(f"--peft_config {path}: {config.peft_type.value} is not supported here: {REFUSED_TYPES[config.peft_type]}")
    if config.is_prompt_learning:
        raise ValueError(f"--peft_config {path}: {config.peft_type.value} is a prompt-learning method; minBERT's "
                         "adapters adapt the encoder's layers (LoRA-like methods)")
    return config


def _check_config_keys(path, settings):
    """Refuse what peft's config would keep without complaint and use wrongly or not at all: a key its config
    class has no field for (a typo trains with the default), a number given as text."""
    config_class = PEFT_TYPE_TO_CONFIG_MAPPING.get(str(settings["peft_type"]).upper())
    if config_class is None:
        raise ValueError(f"--peft_config {path}: unknown peft_type {settings['peft_type']!r}")
    fields = {item.name: item for item in dataclasses.fields(config_class)}
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ValueError(f"--peft_config {path}: {config_class.__name__} has no field {', '.join(unknown)}")
    for key, value in settings.items():
        default = fields[key].default
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"--peft_config {path}: {key} must be a number, got {value!r}")


def add_adapters(model, args):
    """Wrap `model` (a MinBertForMultitask, changed in place) in a PeftModel: its encoder frozen, adapters on
    the target modules, every head trained in full. Per task (`args.peft_per_task`): one adapter per task
    with that task's head, all of them trainable, routed by `task`."""
    tasks = list(model.config.tasks)
    targets = adaptable_modules(model, target_suffixes(args))  # resolved once: wrapping changes the modules
    if not args.peft_per_task:
        return get_peft_model(model, peft_config_for(args, [f"heads.{task}" for task in tasks], targets))
    first, *others = tasks
    peft_model = get_peft_model(model, peft_config_for(args, [f"heads.{first}"], targets), adapter_name=first)
    for task in others:
        peft_model.add_adapter(task, peft_config_for(args, [f"heads.{task}"], targets))
    _make_every_adapter_trainable(peft_model)
    TaskAdapterRouter.install(peft_model)
    return peft_model


def _make_every_adapter_trainable(peft_model):
    # peft leaves only the active adapter trainable; every task's adapter trains here (in its task's steps).
    trainable = set()
    for name in peft_model.peft_config:
        peft_model.set_adapter(name)
        trainable.update(p for p in peft_model.parameters() if p.requires_grad)
    for parameter in trainable:
        parameter.requires_grad_(True)


def has_task_adapters(peft_model):
    """True when the adapters are one per task (named like the tasks), routed by `task`."""
    return set(peft_model.peft_config) == set(peft_model.get_base_model().config.tasks)


def trainable_parameter_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------------------------------------
# Routing each forward call to its task's adapter
# ----------------------------------------------------------------------------------------------------------

_ROUTERS = weakref.WeakKeyDictionary()  # base model -> its router


class TaskAdapterRouter:
    """A forward pre-hook on the base model that activates the adapter named like the call's `task` (default:
    `config.default_task`) before every forward.

    Switching keeps each parameter's `requires_grad` as it was when the router was installed. peft's
    `set_adapter` freezes the inactive adapters, and a parameter frozen between its forward and the backward
    silently receives no gradient: with all_tasks sampling one backward follows every task's forward.
    `predict` (what the pipelines call) runs each task with its own adapter too; other calls that bypass
    `forward` (e.g. `model.embed` for the MNR loss) use the adapter of the last forward, which in
    MultitaskTrainer is the same task's.
    """

    def __init__(self, base_model):
        self.adapters = set(base_model.config.tasks)
        self.trainable = [p for p in base_model.parameters() if p.requires_grad]
        self.handle = None

    @classmethod
    def install(cls, peft_model):
        base = peft_model.get_base_model()
        if base not in _ROUTERS:
            _ROUTERS[base] = cls(base)
            _ROUTERS[base].attach(base)
            # Bound to the instance, a deep copy (an export) rebinds it to the copy, which has no router.
            base.predict = types.MethodType(_predict_with_task_adapters, base)
        return _ROUTERS[base]

    def attach(self, base_model):
        self.handle = base_model.register_forward_pre_hook(self, with_kwargs=True)

    def detach(self):
        self.handle.remove()

    def __call__(self, module, args, kwargs):
        self.activate(module, kwargs.get("task") or module.config.default_task)

    def activate(self, module, task):
        if task not in self.adapters:
            raise ValueError(f"no adapter for task {task!r}; the adapters are {', '.join(sorted(self.adapters))}")
        set_adapter(module, task, inference_mode=True, layer_cls=BaseTunerLayer)
        self.restore_trainable()

    def restore_trainable(self):
        """Every adapter trainable again, as when installed: peft's `set_adapter` and `load_adapter` (which
        Trainer calls to resume or to load the best checkpoint) leave only the active one trainable, and an
        optimizer built then would hold one task's adapter alone."""
        for parameter in self.trainable:
            parameter.requires_grad_(True)

    def activating_before_backward(self, module, task):
        """A hook for `task`'s loss that activates its adapter when the backward reaches it: gradient
        checkpointing recomputes the task's layers in that backward, with whichever adapter is active then, and
        PCGrad runs every task's forward before the first backward."""
        def hook(grad):
            self.activate(module, task)

        return hook


def task_adapter_router(base_model):
    """The router of a model whose adapters are one per task (the base model inside its PeftModel), else None."""
    return _ROUTERS.get(base_model)


def _predict_with_task_adapters(self, tasks, *args, **kwargs):
    """`MinBertForMultitask.predict` one task at a time, each with its adapter (and its head's copy) active:
    predict runs no forward, which the router's hook would see, and one pass could read one adapter only."""
    # A deep copy of the routed model carries a copy of the router as its forward hook, not in _ROUTERS.
    router = task_adapter_router(self) or next(
        (hook for hook in self._forward_pre_hooks.values() if isinstance(hook, TaskAdapterRouter)), None)
    predict = type(self).predict
    if router is None:
        return predict(self, tasks, *args, **kwargs)
    predictions = {}
    for task in dict.fromkeys([tasks] if isinstance(tasks, str) else tasks):
        router.activate(self, task)
        predictions.update(predict(self, [task], *args, **kwargs))
    return predictions


@contextlib.contextmanager
def _router_detached(base_model):
    # A deep copy would copy the hook, whose handle still points into the original's hook table.
    router = task_adapter_router(base_model)
    if router is not None:
        router.detach()
    try:
        yield
    finally:
        if router is not None:
            router.attach(base_model)


# ----------------------------------------------------------------------------------------------------------
# Saving, loading, merging
# ----------------------------------------------------------------------------------------------------------


def save_adapters(peft_model, folder):
    """peft's adapter folder (one sub-folder per task adapter) plus `base_config.json`. A base model given as
    a local folder is recorded by its absolute path: relative, it would name another folder, or a Hub
    repository, from anywhere else."""
    folder = Path(folder)
    name_base_by_absolute_path(peft_model)
    peft_model.save_pretrained(str(folder))
    write_base_config(peft_model, folder)
    return folder


def name_base_by_absolute_path(peft_model):
    for config in peft_model.peft_config.values():
        base = config.base_model_name_or_path
        if base and Path(base).is_dir():
            config.base_model_name_or_path = str(Path(base).resolve())


def write_base_config(peft_model, folder):
    """`base_config.json`: the heads and layout the adapters were trained on, which `load_adapters` rebuilds."""
    peft_model.get_base_model().config.to_json_file(str(Path(folder) / BASE_CONFIG_FILE))


def adapter_folders(folder):
    """{adapter name: folder holding its adapter_config.json}: "default" at the top, task adapters below."""
    folder = Path(folder)
    if (folder / "adapter_config.json").is_file():
        return {SHARED_ADAPTER: folder}
    found = {path.parent.name: path.parent for path in sorted(folder.glob("*/adapter_config.json"))}
    if not found:
        raise FileNotFoundError(f"{folder}: no adapter_config.json (nor task sub-folders with one); not an adapter folder")
    return found


def load_adapters(folder, base_model=None, is_trainable=False):
    """The PeftModel saved by `save_adapters`, task routing included. `base_model`: the model the adapters
    were trained on (default: the checkpoint named in adapter_config.json, with `base_config.json`'s heads)."""
    folders = adapter_folders(folder)
    names = list(folders)
    if base_model is None:
        base_model = _load_base_model(Path(folder), folders[names[0]])
    peft_model = PeftModel.from_pretrained(base_model, str(folders[names[0]]), adapter_name=names[0], is_trainable=is_trainable)
    for name in names[1:]:
        peft_model.load_adapter(str(folders[name]), adapter_name=name, is_trainable=is_trainable)
    if has_task_adapters(peft_model):
        if is_trainable:
            _make_every_adapter_trainable(peft_model)
        TaskAdapterRouter.install(peft_model)
    elif len(names) > 1:
        raise ValueError(f"{folder}: adapters {names} are neither one shared adapter nor one per task")
    return peft_model


def _load_base_model(folder, adapter_folder):
    config_path = folder / BASE_CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: it describes the heads the adapters were trained on")
    source = json.loads((adapter_folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not source:
        raise ValueError(f"{adapter_folder}/adapter_config.json names no base model: pass base_model=")
    return MinBertForMultitask.from_pretrained(source, config=MinBertConfig.from_json_file(str(config_path)))


def merged_model(peft_model, adapter=None):
    """A plain model (no peft layers): the base weights with `adapter` merged in, and that adapter's trained
    heads. `peft_model` is left unchanged. `adapter` may be omitted when there is only one."""
    names = list(peft_model.peft_config)
    if adapter is None and len(names) > 1:
        raise ValueError(f"several adapters ({', '.join(names)}): name the one to merge")
    adapter = names[0] if adapter is None else adapter
    if adapter not in names:
        raise ValueError(f"no adapter {adapter!r}; the adapters are {', '.join(names)}")
    base = peft_model.get_base_model()
    with _router_detached(base):
        plain = copy.deepcopy(base)
    set_adapter(plain, adapter, inference_mode=True, layer_cls=BaseTunerLayer)
    _merge_and_unwrap(plain)
    plain.requires_grad_(True)
    plain.config.architectures = [type(plain).__name__]  # not the checkpoint's (a MinBertModel): an ensemble reads it
    return plain


def _merge_and_unwrap(model):
    """Replace every peft layer by its base layer with the active adapter merged in, and every
    modules_to_save wrapper by the active adapter's copy (or the original, where that adapter has none).

    Written here rather than calling peft's merge_and_unload: for methods other than LoRA, peft's unload
    copies `.weight` onto a modules_to_save replacement, which a task head (a Sequential) does not have.
    """
    replaced = []
    for name, module in list(model.named_modules()):
        if any(name.startswith(prefix + ".") for prefix in replaced):
            continue
        if isinstance(module, AuxiliaryTrainingWrapper):
            plain = module.unload_and_optionally_merge_module(merge=True, safe_merge=True, adapter_names=None)
        elif isinstance(module, BaseTunerLayer):
            module.merge(safe_merge=True)
            plain = module.get_base_layer()
        else:
            continue
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, plain)
        replaced.append(name)


def export_model(peft_model):
    """A model folder's worth of model that loads without peft: one adapter merged into a MinBertForMultitask,
    or per-task adapters as an ensemble of one merged encoder per task, each used for its own task only."""
    if not has_task_adapters(peft_model):
        return merged_model(peft_model)
    tasks = list(peft_model.peft_config)
    members = [merged_model(peft_model, task) for task in tasks]
    weights = {task: [float(i == j) for j in range(len(tasks))] for i, task in enumerate(tasks)}
    default = peft_model.get_base_model().config.default_task
    return MinBertEnsembleForMultitask.from_members(members, weights, default_task=default)


__all__ = [
    "AdapterArguments",
    "METHODS",
    "TaskAdapterRouter",
    "adaptable_modules",
    "add_adapters",
    "check_adapter_arguments",
    "adapter_folders",
    "export_model",
    "has_task_adapters",
    "load_adapters",
    "merged_model",
    "peft_config_for",
    "save_adapters",
    "trainable_parameter_count",
]
