"""Publishing a saved minBERT folder to the Hugging Face Hub (or any Hub-compatible server via HF_ENDPOINT).

A push sends an exact list of files, not "whatever is in the folder": the files a remote
`from_pretrained(..., trust_remote_code=True)` and the pipelines read (config, safetensors weights, every
code file the config names and every file those import relatively, the tokenizer), plus the model card and
the run's record (metrics.json, training_config.json or an ensemble's ensemble_selection.json, plots). Checkpoints, optimizer states and pickled
training arguments stay home, unless a trainer's hub_strategy sends its checkpoints. A push replaces the one
before: files of the kinds it writes that it does not send again are deleted in its commit. Before any of this the token is checked: without one the push stops at once.
Then the folder (complete, and every file inside it: a crafted index or a symlink naming a file elsewhere is
refused), then the endpoint (reachable, and accepting the token), all before the first write.

    files_to_push(model_dir)        the relative paths a push sends, checked (a missing piece is an error)
    remote_load_files(model_dir)    the part of them a remote load needs
    check_hub_access(token)         the endpoint answers and accepts the token (HubAccessError if not)
    push_model_dir(model_dir, repo_id, private=None, token=None, ...)   create the repo and commit the files
"""
import json
import os
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
from transformers.dynamic_module_utils import get_relative_import_files

from hf_minbert.commands.common import check_not_adapters, check_safetensors_file, first_line
from hf_minbert.modeling_minbert import SENTENCE_TRANSFORMERS_CONFIG

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
SAFE_WEIGHTS = "model.safetensors"
SAFE_WEIGHTS_INDEX = "model.safetensors.index.json"
# What tokenizer.save_pretrained may write; tokenizer_config.json plus tokenizer.json or vocab.txt is required.
TOKENIZER_FILES = (
    "tokenizer_config.json", "tokenizer.json", "vocab.txt", "special_tokens_map.json", "added_tokens.json",
)
RUN_RECORD_FILES = ("metrics.json", "training_config.json", "ensemble_selection.json")
# What sentence-transformers reads of a multitask folder (MinBertForMultitask.save_pretrained writes them).
SENTENCE_TRANSFORMERS_FILES = tuple(SENTENCE_TRANSFORMERS_CONFIG)
PLOT_SUFFIX = ".png"


class MissingTokenError(RuntimeError):
    """No Hugging Face token anywhere a push looks for one."""


class HubAccessError(RuntimeError):
    """The endpoint cannot be reached, refuses the token, or refuses the upload; the message is one line."""


def resolve_token(token=None) -> str:
    """`token`, else the usual places (HF_TOKEN, the token file of `hf auth login`); a clear error if none."""
    token = token or get_token()
    if not token:
        raise MissingTokenError(
            "no Hugging Face token: set HF_TOKEN, run `hf auth login`, or pass --token; "
            "a push needs a token with write access"
        )
    return token


def hub_endpoint() -> str:
    """HF_ENDPOINT as it is now (huggingface_hub reads it once, at import), else the default Hub."""
    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def check_hub_access(token, api=None) -> str:
    """The account `token` belongs to, asked of the endpoint: proves it is reachable and accepts the token
    before anything is written. `api`: an `HfApi`-like object (default: one on `hub_endpoint()`)."""
    api = api if api is not None else HfApi(endpoint=hub_endpoint(), token=token)
    try:
        return api.whoami(token=token)["name"]
    except Exception as error:  # the transport's errors differ across huggingface_hub versions (requests, httpx)
        raise HubAccessError(f"cannot use the Hub at {api.endpoint}: {_one_line(error)}") from None


def _one_line(error) -> str:
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        return "the token was refused (401 Unauthorized); check HF_TOKEN, `hf auth login` or --token"
    first = first_line(error)
    first = first if len(first) <= 200 else first[:199] + "…"
    if status is not None:
        return first if str(status) in first else f"HTTP {status}: {first}"
    if first == type(error).__name__:  # first_line's answer for a blank message
        return first
    return f"{type(error).__name__}: {first}"


def remote_load_files(model_dir) -> list:
    """Files of `model_dir` that loading it from a repository needs, checked to exist: config.json,
    safetensors weights (single or sharded), each code file named by `auto_map` and `custom_pipelines` with
    the files it imports relatively, and the tokenizer."""
    model_dir = Path(model_dir)
    config = _read_config(model_dir)
    files = {CONFIG_FILE, *weight_files(model_dir), *_code_files(model_dir, config), *_tokenizer_files(model_dir)}
    return sorted(files)


def files_to_push(model_dir, require_card=True) -> list:
    """Every file a push sends, as paths relative to `model_dir`: what a remote load needs, the model card
    (README.md), the run's record (metrics.json, training_config.json, ensemble_selection.json), the plots
    (*.png) beside them and the sentence-transformers config, where these are there."""
    model_dir = Path(model_dir)
    files = set(remote_load_files(model_dir))
    if (model_dir / CARD_FILE).is_file():
        files.add(CARD_FILE)
    elif require_card:
        raise FileNotFoundError(f"{model_dir}: no model card ({CARD_FILE}); write one with `minbert card {model_dir}`")
    files.update(name for name in (*RUN_RECORD_FILES, *SENTENCE_TRANSFORMERS_FILES) if (model_dir / name).is_file())
    files.update(path.name for path in model_dir.glob(f"*{PLOT_SUFFIX}") if path.is_file())
    for name in files:
        _check_inside(model_dir, name)
    for name in sorted(files):
        if name.endswith(".json"):
            _read_json(model_dir / name)  # a truncated tokenizer.json would publish a model no one can load
    check_weights(model_dir)
    return sorted(files)


def _read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}); save the model folder again") from None


def _check_inside(model_dir, name):
    """A pushed file must be a file of the folder: a name in config or index files such as "../x" or "/x", or a
    symlink to a file elsewhere, would upload whatever it points at."""
    root = model_dir.resolve()
    target = (model_dir / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(root):
        raise ValueError(f"{model_dir}: {name} resolves to {target}, outside the model folder; refusing to upload it")


def push_model_dir(model_dir, repo_id, *, private=None, token=None, commit_message="Upload minBERT model",
                   revision=None, require_card=True, api=None, card_text=None, check_access=True, also=None,
                   blocking=True):
    """Create `repo_id` (if needed) on HF_ENDPOINT and commit exactly `files_to_push(model_dir)` to it. `private`:
    True or False sets a new repository's visibility; None leaves it to the Hub (an organization's default).

    The token is checked first, the folder second and the endpoint third (`check_access=False`: the caller
    just did), so a push that cannot succeed fails before any write. `card_text`: README.md's content, sent
    in place of the folder's file (which then need not exist). `also`: {path in the repo: local file} sent in the
    same commit. `api`: an `HfApi`-like object (default: one on `hub_endpoint()` with the token). Returns the
    `CommitInfo` of the commit; a refusal by the server is a `HubAccessError`. `blocking=False`: the repository is
    created, then the commit runs in the background and a `concurrent.futures.Future` of it is returned (whose
    `result()` raises the server's error), as `Trainer.push_to_hub(blocking=False)` returns.
    """
    token = resolve_token(token)
    files = set(files_to_push(model_dir, require_card=require_card and card_text is None))
    api = api if api is not None else HfApi(endpoint=hub_endpoint(), token=token)
    if check_access:
        check_hub_access(token, api)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=_shared_bytes(Path(model_dir) / name))
                  for name in sorted(files - {CARD_FILE} if card_text is not None else files)]
    if card_text is not None:
        operations.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card_text.encode("utf-8")))
    operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in (also or {}).items()]
    try:
        repo = api.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
        if revision is not None and not revision.startswith("refs/pr/"):  # a new branch starts from main, as
            # transformers' push_to_hub makes it; a pull request's ref exists already
            api.create_branch(repo.repo_id, branch=revision, token=token, repo_type="model", exist_ok=True)
        operations += _stale_files(api, repo.repo_id, revision, token, sent={op.path_in_repo for op in operations})
        return api.create_commit(repo.repo_id, operations, commit_message=commit_message, token=token,
                                 repo_type="model", revision=revision, **({} if blocking else {"run_as_future": True}))
    except Exception as error:  # as in check_hub_access: one line, whatever the transport
        at = f" (revision {revision})" if revision is not None else ""
        raise HubAccessError(f"upload of {model_dir} to {repo_id}{at} on {api.endpoint} failed: {_one_line(error)}") from None


def _stale_files(api, repo_id, revision, token, sent) -> list:
    """Deletions of the files an earlier push left at the repository's top that this push does not send: a
    former single `model.safetensors` beside new shards would be the weights that load, and a former run's
    record would describe this model. Files a push never writes (the user's own, checkpoint folders) stay."""
    existing = api.list_repo_files(repo_id, revision=revision, repo_type="model", token=token)
    return [CommitOperationDelete(path_in_repo=name) for name in existing if name not in sent and is_pushed_kind(name)]


def is_pushed_kind(name) -> bool:
    """Whether a repository file at `name` is of a kind a push writes, so that a later push replaces it."""
    if "/" in name:
        return False
    code = name in ("configuration_minbert.py", "pipelines.py") or (name.startswith("modeling_minbert") and name.endswith(".py"))
    weights = name.endswith(".safetensors") or name.startswith(("model.safetensors.index", "pytorch_model"))
    records = name in (CONFIG_FILE, *TOKENIZER_FILES, *RUN_RECORD_FILES, *SENTENCE_TRANSFORMERS_FILES)
    return code or weights or records or name.endswith(PLOT_SUFFIX)


def push_trainer_output(trainer, commit_message="End of training", token=None, revision=None, private=None,
                        write_card=None, blocking=True):
    """What `MultitaskTrainer.push_to_hub` does: check the token, save the model into `args.output_dir`
    (weights, code, pipelines, tokenizer), write its card for the repository (`write_card(repo_id)`, where given), then push that folder's
    push set to `args.hub_model_id` (default: the folder's name in the token owner's namespace). Trainer's own
    push would send the whole folder, checkpoints' leftovers and pickled arguments included, and overwrite the
    card with a generic one."""
    args = trainer.args
    token = resolve_token(token or args.hub_token)
    trainer.save_model(_internal_call=True)
    if not trainer.is_world_process_zero():
        return None
    repo_id = qualified_repo_id(args.hub_model_id or Path(args.output_dir).absolute().name, check_hub_access(token))
    if write_card is not None:
        write_card(repo_id)  # the folder's card, its usage snippet loading the repository
    private = args.hub_private_repo if private is None else private
    return push_model_dir(args.output_dir, repo_id, private=private, token=token, commit_message=commit_message,
                          revision=revision or args.hub_revision, require_card=False, check_access=False,
                          blocking=blocking)


def qualified_repo_id(repo_id, owner) -> str:
    """`repo_id` with its namespace: the Hub creates a bare name in the token owner's."""
    return repo_id if "/" in repo_id else f"{owner}/{repo_id}"


def push_trainer_checkpoint(trainer, checkpoint_folder):
    """What `MultitaskTrainer._push_from_checkpoint` does (args.push_to_hub with hub_strategy other than
    "end"): push the checkpoint's model, which `save_pretrained` made complete, not Trainer's copy of
    config and weights alone (transformers#29714: that copy misses the custom code). With hub_strategy
    "checkpoint" ("all_checkpoints"), the whole checkpoint, optimizer and trainer state included, also goes to
    last-checkpoint/ (checkpoint-<step>/), as Trainer sends it: what resume_from_checkpoint needs."""
    args = trainer.args
    if not trainer.is_world_process_zero() or args.hub_strategy == "end":
        return None
    return push_model_dir(checkpoint_folder, trainer.hub_model_id, token=resolve_token(args.hub_token),
                          commit_message=f"Training in progress, step {trainer.state.global_step}",
                          revision=args.hub_revision, require_card=False, also=_checkpoint_files(args, checkpoint_folder))


def _checkpoint_files(args, checkpoint_folder) -> dict:
    """{path in the repo: file} of the whole checkpoint where the hub strategy sends it, else {}."""
    if args.hub_strategy not in ("checkpoint", "all_checkpoints"):
        return {}
    folder = Path(checkpoint_folder)
    prefix = "last-checkpoint" if args.hub_strategy == "checkpoint" else folder.name
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    for name in files:
        _check_inside(folder, name)
    return {f"{prefix}/{name}": folder / name for name in files}


def _shared_bytes(path):
    """What a repository receives of a file: the file itself, but a run's record without where the run ran
    (absolute paths cut to their last part, which may name the user: `without_local_paths`)."""
    if path.name not in RUN_RECORD_FILES:
        return str(path)
    from model_cards.run_record import without_local_paths

    return (json.dumps(without_local_paths(_read_json(path)), indent=2) + "\n").encode("utf-8")


def _read_config(model_dir):
    path = model_dir / CONFIG_FILE
    check_not_adapters(str(model_dir), model_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no {CONFIG_FILE}; is this a saved model folder?")
    config = _read_json(path)
    # The pipelines answer with task heads: a folder without them (a `minbert pretrain-mlm` model, a single-head
    # classifier) loads through auto_map alone.
    multitask = any(name.endswith("ForMultitask") for name in config.get("architectures") or ())
    for key in ("auto_map", "custom_pipelines") if multitask else ("auto_map",):
        if not config.get(key):
            raise ValueError(
                f"{path}: no {key!r}, so the Hub copy would not load where hf_minbert is not installed; "
                "save the model with hf_minbert's save_pretrained"
            )
    return config


def check_weights(model_dir):
    """The folder's safetensors files (one, or an index and its shards) lie inside it and read back: a push must
    not publish weights that no one can load, and a card counts the parameters from them."""
    model_dir = Path(model_dir)
    names = weight_files(model_dir)
    for name in names:
        _check_inside(model_dir, name)
    for name in names:
        if name.endswith(".safetensors"):
            check_safetensors_file(model_dir / name)


def weight_files(model_dir):
    """The folder's safetensors files: model.safetensors, or the index and the shards it names (checked to exist)."""
    if (model_dir / SAFE_WEIGHTS).is_file():
        return [SAFE_WEIGHTS]
    index = model_dir / SAFE_WEIGHTS_INDEX
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(shard, str) for shard in weight_map.values()):
            raise ValueError(f"{index}: no 'weight_map' of tensor names to shard files")
        shards = sorted(set(weight_map.values()))
        missing = [shard for shard in shards if not (model_dir / shard).is_file()]
        if missing:
            raise FileNotFoundError(f"{index}: shard(s) {missing} are missing")
        return [SAFE_WEIGHTS_INDEX, *shards]
    raise FileNotFoundError(f"{model_dir}: no safetensors weights ({SAFE_WEIGHTS} or {SAFE_WEIGHTS_INDEX})")


def _code_files(model_dir, config):
    """The modules named as "module.Class" in auto_map and custom_pipelines, and their relative imports."""
    references = list(config["auto_map"].values())
    references += [entry["impl"] for entry in config.get("custom_pipelines", {}).values()]
    modules = {reference.split(".")[0] for reference in references if isinstance(reference, str)}
    files = set()
    for module in sorted(modules):
        path = model_dir / f"{module}.py"
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir}: {path.name} is named in {CONFIG_FILE} but missing")
        files.add(path.name)
        files.update(Path(needed).name for needed in get_relative_import_files(str(path)))
    return files


def _tokenizer_files(model_dir):
    present = [name for name in TOKENIZER_FILES if (model_dir / name).is_file()]
    if "tokenizer_config.json" not in present or not {"tokenizer.json", "vocab.txt"} & set(present):
        raise FileNotFoundError(
            f"{model_dir}: no complete tokenizer (tokenizer_config.json and tokenizer.json or vocab.txt); "
            "save it with tokenizer.save_pretrained"
        )
    return present
