"""Loading a checkpoint with one shared encoder (a BERT, a plain multitask minBERT, a `MinBertForMaskedLM`) into
a model whose tasks own parts of the encoder (CerBERTus, Triple-BERT, a static encoder): the state-dict mapping
from the shared encoder's weights to each task's copies, and the report of what was copied. Part of minBERT's
remote code (see `modeling_minbert.py`): imports only torch, transformers and the files beside it.
"""
import copy

import torch
from transformers.utils import logging

from .configuration_minbert import ARCHITECTURE_FIELDS, MinBertConfig, is_minbert_config

logger = logging.get_logger(__name__)

# from_pretrained arguments that say where a checkpoint is, which reading its config alone needs too (not
# trust_remote_code: MinBertConfig.from_pretrained is no Auto class, and transformers warns that it ignores it).
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


def load_multitask(load, path, model_args, kwargs):
    """`MinBertForMultitask.from_pretrained`, given `load`, `PreTrainedModel.from_pretrained` bound to the class.

    A checkpoint loads as saved unless `kwargs` ask for another architecture (task_specific_layers=k,
    task_specific_embeddings=True, static_encoder=True, or a config saying so); then it must have one shared
    encoder, loads as that, and every task's own encoder part starts as a copy of the part it replaces."""
    requested = requested_architecture(kwargs)
    if requested:
        saved = MinBertConfig.from_pretrained(path, **hub_kwargs(kwargs))
        saved_architecture = architecture_of(saved)
        if {**saved_architecture, **requested} != saved_architecture:
            return _load_from_shared_encoder(load, path, saved, requested, model_args, kwargs)
    want_info = kwargs.pop("output_loading_info", False)
    model, info = load(path, *model_args, output_loading_info=True, **kwargs)
    check_loaded(model, path, info)
    return (model, info) if want_info else model


def check_architecture_change(saved, requested, path):
    """Refuse to turn a checkpoint whose tasks already own encoder parts into another architecture: which task's
    copy would the new parts start from? `saved`: its config; `requested`: the architecture fields asked for."""
    if {**architecture_of(saved), **requested} == architecture_of(saved):
        return
    if saved.task_specific_layers or saved.task_specific_embeddings:
        raise ValueError(
            f"{path} is a {saved.architecture} model (task_specific_layers={saved.task_specific_layers}); "
            f"it loads only as saved, not with {requested}: start from a checkpoint with one shared encoder"
        )


def _load_from_shared_encoder(load, path, saved, requested, model_args, kwargs):
    check_architecture_change(saved, requested, path)
    # Load the checkpoint as what it is (one shared encoder), then give each task its copies.
    target = {field: requested.get(field, getattr(saved, field)) for field in ARCHITECTURE_FIELDS}
    kwargs = dict(kwargs)
    want_info = kwargs.pop("output_loading_info", False)
    config = kwargs.get("config")
    if is_minbert_config(config):
        kwargs["config"] = with_architecture(config, architecture_of(saved))
    else:
        kwargs.update(architecture_of(saved))
    source, info = load(path, *model_args, output_loading_info=True, **kwargs)
    check_loaded(source, path, info)
    model = with_task_specific_copies(source, target)
    return (model, info) if want_info else model


def with_task_specific_copies(model, architecture):
    """`model` (one shared encoder) turned into `architecture`: each task's own encoder part starts as a copy of
    the shared part it replaces, a new static encoder as a copy of the shared encoder."""
    config = with_architecture(model.config, architecture)
    with torch.device("meta"):
        converted = type(model)(config)
    state = model.state_dict()

    def source_of(name):
        owner, _, rest = name.partition(".")
        if owner == "task_encoders":  # task_encoders.<task>.X copies bert.X
            return "bert." + rest.partition(".")[2]
        if owner == "static_bert" and name not in state:
            return "bert." + rest
        return name

    weights = {name: widened(name, state[source_of(name)], target.shape, config.hidden_size)
               for name, target in converted.state_dict().items()}
    converted.load_state_dict(weights, assign=True)
    converted.train(model.training)
    converted.name_or_path = model.name_or_path
    for message in copy_report(model.config, config):
        logger.warning("%s: %s", model.name_or_path, message)
    return converted


def check_loaded(model, path, info):
    """Refuse a load that left a task without its own layers; say what was dropped."""
    model.encoders.after_load(model)
    missing = sorted({key.split(".")[1] for key in info["missing_keys"] if key.startswith("task_encoders.")})
    if missing:
        raise ValueError(
            f"{path} has no task-specific encoder layers for task(s) {missing}: a new task cannot get its own "
            "layers from a checkpoint that has them for other tasks only"
        )
    if any(key.startswith("cls.predictions.") for key in info["unexpected_keys"]):
        logger.warning("%s: the masked-LM head (cls.predictions.*) is dropped; the encoder carries over", path)


def widened(name, tensor, shape, hidden_size):
    """A copy of `tensor` for a parameter of `shape`. A head's first weight that gains the static encoder's
    features (hidden_size more inputs, after the fine-tuned encoder's) gets zero columns for them: the model
    then starts out computing exactly what the checkpoint computed, and those weights still train."""
    if tensor.shape == shape:
        return tensor.clone()
    if name.startswith("heads.") and tensor.dim() == 2 and tuple(shape) == (tensor.shape[0], tensor.shape[1] + hidden_size):
        static_columns = tensor.new_zeros(tensor.shape[0], hidden_size)
        return torch.cat([tensor[:, :hidden_size], static_columns, tensor[:, hidden_size:]], dim=1)
    raise ValueError(f"cannot convert {name}: the checkpoint has shape {tuple(tensor.shape)}, the model {tuple(shape)}")


def copy_report(source, target):
    """What `with_task_specific_copies` copied from the shared encoder of `source` into `target`, in words."""
    tasks = ", ".join(target.tasks)
    num_layers, k = target.num_hidden_layers, target.task_specific_layers
    messages = []
    if target.task_specific_embeddings:
        messages.append(f"Triple-BERT: each task's encoder ({tasks}) starts as a copy of the checkpoint's whole encoder")
    elif k:
        shared = f"{_layer_range(0, num_layers - k - 1)} stay" if k < num_layers else "only the embeddings stay"
        messages.append(
            f"CerBERTus: each task's {_layer_range(num_layers - k, num_layers - 1)} and pooler ({tasks}) start as "
            f"copies of the checkpoint's (task_encoders.<task>.* <- bert.*); {shared} shared"
        )
    if target.static_encoder and not source.static_encoder:
        messages.append(
            "static encoder: a frozen copy of the checkpoint's encoder (static_bert.* <- bert.*); its features "
            "enter the heads through zero-initialised weights"
        )
    if source.static_encoder and not target.static_encoder:
        messages.append("the checkpoint's static encoder is dropped (static_encoder=False)")
    return messages


def _layer_range(first, last):
    return f"layer {first}" if first == last else f"layers {first}-{last}"


def architecture_of(config):
    return {field: getattr(config, field) for field in ARCHITECTURE_FIELDS}


def requested_architecture(kwargs):
    """The architecture fields a from_pretrained call asks for: all of a passed config's, or the keyword arguments."""
    config = kwargs.get("config")
    if is_minbert_config(config):
        return architecture_of(config)
    return {field: kwargs[field] for field in ARCHITECTURE_FIELDS if field in kwargs}


def with_architecture(config, architecture):
    config = copy.deepcopy(config)
    for field, value in architecture.items():
        setattr(config, field, value)
    config._check_architecture()
    return config


def hub_kwargs(kwargs):
    return {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
