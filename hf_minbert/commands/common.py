"""What the `minbert` commands share: the error a bad argument or input raises, the checks of flags that
several commands take (a positive count, a torch device, a model folder or Hub id), and `first_line`, which
turns an error from a library into the one line a command prints."""
import argparse
import contextlib
import os
import pickle
from pathlib import Path

import torch
from huggingface_hub.utils import HFValidationError, validate_repo_id
from safetensors import SafetensorError, safe_open

from hf_minbert.configuration_minbert import is_multitask_architecture
from hf_minbert.data.tokenization import save_input_names


class CommandError(ValueError):
    """A problem with the command's arguments or inputs: printed as one line, exit status 2 (a ValueError, so
    that the dispatcher prints it so where another command raises it)."""


def first_line(error) -> str:
    """The first non-blank line of `error`'s message, stripped; its type's name when the message is blank.
    Libraries' messages run on over several lines (a traceback, a page from a server); a command prints one."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def home_path(path):
    """A path flag's value with a leading ~ (or ~user) read as that home folder, where the shell left it: quoted,
    after the = of `--data_dir=~/data` (bash expands a ~ only at the start of a word), in a config file or given
    from Python. What is not a string (None, a list's absence) is returned as it is. Only path flags take this:
    another flag's ~ (a commit message, a title) is text."""
    return os.path.expanduser(path) if isinstance(path, str) else path


def check_list_flags_once(parser, argv):
    """argparse keeps the last of a list flag given twice and drops the values before it without a word: a second
    `--models` or `--train_sources` would ensemble or train on other folders or files than the command line names.
    (A flag of one value given twice keeps its last, as a later flag overrides an earlier one.)"""
    list_flags = {option: action.dest for action in parser._actions if action.nargs in ("+", "*")
                  for option in action.option_strings}
    given = {}  # dest -> the flag that gave it
    for arg in argv:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if flag not in list_flags:
            continue
        if list_flags[flag] in given:
            raise CommandError(f"{flag} is given twice (the second would drop the first's values): give all its "
                               f"values after one {given[list_flags[flag]]}")
        given[list_flags[flag]] = flag


def check_named_once(flag, names):
    """A task named twice in a list flag would be read, scored or reported twice: refused, naming it."""
    twice = sorted({name for name in names if list(names).count(name) > 1})
    if twice:
        raise CommandError(f"{flag}: {', '.join(twice)} named twice")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def torch_device(flag, name):
    """The torch device `name` names (None: cuda where available, else cpu), after checking that this torch
    can place a tensor there: a bad name or a missing backend is one line naming the flag, not a traceback
    from the first model.to(device)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CommandError(f"{flag} {name}: not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if device.type == "meta":  # tensors without data: nothing could be computed
        raise CommandError(f"{flag} {name}: holds no data to compute with; choose cpu, cuda, mps, ...")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:  # AssertionError: "Torch not compiled with CUDA enabled"
        reason = first_line(error).split(". ")[0]  # some run on for a page
        raise CommandError(f"{flag} {name}: this torch cannot use that device ({reason})") from None
    return device


def check_model_source(flag, source):
    """A local folder (its safetensors files readable), else a name that can only be a Hub repository id;
    anything else is "no such directory" rather than a Hub connection error."""
    path = Path(source).expanduser()
    if path.is_dir():
        check_not_adapters(f"{flag} {source}", path)
        for weights in sorted(path.glob("*.safetensors")):
            try:
                check_safetensors_file(weights)
            except CommandError as error:
                raise CommandError(f"{flag} {source}: {error}") from None
        return
    if path.exists():
        raise CommandError(f"{flag} {source}: not a directory (a saved model folder or a Hub repository id)")
    if not looks_like_repo_id(source):
        raise CommandError(f"{flag} {source}: no such directory")
    if _hub_offline() and not _in_hub_cache(source):  # offline, the Hub reading can only fail: say what was not found
        raise CommandError(f"{flag} {source}: no such directory, nor a Hub model of that id in the cache "
                           "(HF_HUB_OFFLINE is set)")


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _in_hub_cache(repo_id) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def check_not_adapters(where, folder):
    """A CommandError where `folder` holds PEFT adapters (`minbert train --peft`'s adapter/) but no model: they are
    read with the model they were trained on, which the exported model folder above them holds merged."""
    folder = Path(folder)
    if (folder / "config.json").is_file():
        return
    if (folder / "adapter_config.json").is_file() or any(folder.glob("*/adapter_config.json")):
        raise CommandError(f"{where}: PEFT adapters, not a model: pass the exported model folder (the output folder "
                           "of `minbert train --peft`, which holds adapter/), or load them with "
                           "hf_minbert.adapters.load_adapters")


def load_tokenizer(path, flag=None):
    """The tokenizer saved at `path` (AutoTokenizer); one that does not load is one line naming the folder."""
    from transformers import AutoTokenizer

    where = f"{flag} {path}" if flag else str(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"{where}: cannot load its tokenizer: {first_line(error)}") from None
    check_tokenizer_knows_words(where, tokenizer)
    return save_input_names(tokenizer)


def check_tokenizer_knows_words(source, tokenizer):
    """A folder without its vocabulary file still loads a tokenizer (built from config.json's tokenizer_class),
    one of special tokens alone, which reads every word as [UNK]: a model would then train or score on nothing."""
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        raise CommandError(f"{source}: its tokenizer holds {len(tokenizer)} special tokens and no words (no "
                           "tokenizer.json or vocab.txt): save the model's tokenizer beside it with "
                           "tokenizer.save_pretrained")


def check_tokenizer_fits(source, tokenizer, vocab_size):
    """Every id the tokenizer gives must index the model's word table: a larger tokenizer (another model's)
    would otherwise fail deep inside torch's embedding lookup at its first such token; an empty one (see
    `check_tokenizer_knows_words`) would read every word as [UNK]."""
    check_tokenizer_knows_words(source, tokenizer)
    if vocab_size is not None and len(tokenizer) > vocab_size:
        raise CommandError(f"{source}: its tokenizer has {len(tokenizer)} tokens but the model's word table "
                           f"{vocab_size} rows; is the tokenizer another model's?")


@contextlib.contextmanager
def readable_weights(where):
    """Loading a checkpoint's weights: the errors of weights that do not fit its config.json, or of a file that does not
    unpickle, as one line naming `where` (transformers and torch raise them with a page of report or advice)."""
    try:
        yield
    except RuntimeError as error:
        if "PytorchStreamReader" in str(error):  # torch.load of a zip archive cut short
            raise CommandError(f"{where}: cannot read its weights (truncated or corrupt?): {first_line(error)}") from None
        if "ignore_mismatched_sizes" not in str(error):
            raise
        raise CommandError(f"{where}: its weights' sizes differ from those its config.json gives (an edited config.json, "
                           "or another model's weights?)") from None
    except (pickle.UnpicklingError, EOFError, SafetensorError) as error:
        raise CommandError(f"{where}: cannot read its weights (truncated or corrupt?): {first_line(error)}") from None


def check_safetensors_file(path):
    """A safetensors file whose header and tensors' extent read back (a truncated or corrupt one is named)."""
    try:
        with safe_open(str(path), framework="pt"):
            pass
    except (SafetensorError, OSError) as error:
        raise CommandError(f"cannot read {path} (truncated or corrupt?): {error}") from None


def looks_like_repo_id(source):
    # "name" or "namespace/name", not a path that merely does not exist ("./x", "/x", "~/x", "a/b/c").
    if source.startswith((".", "~", os.sep)) or source.count("/") > 1:
        return False
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def has_trained_task_heads(config_dict) -> bool:
    """Whether a saved config (its config.json, as read) comes from minBERT's multitask model, whose weights
    hold trained task heads. Any other checkpoint — a plain BERT, a `minbert pretrain-mlm` output — would load
    with freshly drawn heads."""
    return is_multitask_architecture(config_dict.get("architectures"))


def register_model_schemas(path, flag="--model_name_or_path"):
    """The data schemas the model at `path` (a folder or Hub id; None: none) was trained on, registered. A path
    that is not a readable model is left to the command's own loading, which says what is wrong with it."""
    from transformers import PretrainedConfig

    from hf_minbert.data import register_saved_schemas

    if path is None:
        return
    try:
        tasks = PretrainedConfig.get_config_dict(str(path))[0].get("tasks")
    except (OSError, ValueError):
        return
    try:
        register_saved_schemas(tasks if isinstance(tasks, dict) else None, f"{flag} {path}")
    except ValueError as error:
        raise CommandError(str(error)) from None


def register_folder_schemas(argv, flag):
    """The data schemas the model folders named by `flag` in `argv` were trained on (their tasks of one's own),
    registered before a command builds its parser: they give the tasks its --tasks may name, its --<task>_dev
    flags and the files' formats (`register_model_schemas`)."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument(flag, dest="folders", nargs="+", type=home_path, default=[])
    for folder in peek.parse_known_args(argv)[0].folders:
        register_model_schemas(folder, flag)
