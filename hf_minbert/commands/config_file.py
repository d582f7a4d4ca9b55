"""Config files of the commands built on `HfArgumentParser` (`minbert train`, `distill`, `pretrain-mlm`).

    minbert train config.yaml                          (or .yml, .json: keys are the flag names)
    minbert train config.yaml --learning_rate 8e-5     (flags after the file override its values)
    minbert train --learning_rate 8e-5 --config config.yaml   (the same)

Every value is converted as the same value on the command line would be, by the parser's own type of the
flag: `learning_rate: 1e-4` is a number although YAML reads it as the string '1e-4', `bf16: "false"` is
False, and `per_device_train_batch_size: 3.5` is refused. A mapping for a per-task option (`smart_weight:
{sst: 2, para: 6}`) reads as its command-line form, `sst=2,para=6`, one for a per-task list option
(`train_sources: {sst: [a.csv, b.csv]}`) as `sst=a.csv,b.csv`. As in YAML 1.2 and JSON, only true and false
are booleans: `eval_strategy: no` is the string the flag takes. An unknown key, a value of the wrong type
or a file that is not valid JSON/YAML is one line naming the file and the key (or the line), before any
work; the dataclasses' own checks then run once, on the file's values and the flags together.
"""
import argparse
import dataclasses
import difflib
import json
import typing
from pathlib import Path

from transformers.hf_argparser import string_to_bool

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
EXPECTED = {int: "a whole number", float: "a number", string_to_bool: "true or false"}


def parse_with_config_file(parser, argv) -> tuple:
    """`parser`'s dataclasses from `argv`, which may start with a config file: its values replace the
    defaults, and the flags after it override them."""
    from hf_minbert.commands.common import check_list_flags_once

    argv = _config_flag_first(list(argv))
    parser.usage = f"{parser.prog} [CONFIG.json|yaml | --config CONFIG.json|yaml] [options]"
    parser.epilog = ("A config file's keys are the flag names; flags override its values "
                     "(hf_minbert/commands/config_file.py).")
    check_list_flags_once(parser, argv)
    if argv and argv[0].lower().endswith(CONFIG_SUFFIXES) and not argv[0].startswith("-"):
        parser.set_defaults(**config_values(parser, argv.pop(0)))
    *parsed, unused = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if unused:
        raise ValueError(_unused_message(parser.prog, unused))
    return tuple(parsed)


def _config_flag_first(argv) -> list:
    """`--config FILE` (or `--config=FILE`), anywhere among the flags, as the config file that comes first: the flags
    still override its values."""
    named = [i for i, arg in enumerate(argv) if arg == "--config" or arg.startswith("--config=")]
    if not named:
        return argv
    if len(named) > 1 or (argv and not argv[0].startswith("-")):
        raise ValueError("give one config file: first, or with --config FILE")
    i = named[0]
    if argv[i] == "--config":
        if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
            raise ValueError("--config: expected a config file (.json, .yaml or .yml)")
        path, rest = argv[i + 1], argv[:i] + argv[i + 2:]
    else:
        path, rest = argv[i].split("=", 1)[1], argv[:i] + argv[i + 1:]
    if not path.lower().endswith(CONFIG_SUFFIXES):
        raise ValueError(f"--config {path}: a config file is a .json, .yaml or .yml file")
    return [path, *rest]


# Fields where null would not mean the default this project gives them: output_dir: null trains into
# transformers' own default folder. (Elsewhere null is a setting: save_total_limit: null keeps every checkpoint.)
NO_NULL = ("output_dir",)


def config_values(parser, path) -> dict:
    """{field: value} of the config file at `path`, each value converted as on the command line."""
    fields, defaults = _field_types(parser), _field_defaults(parser)
    values = {}
    for key, value in read_config(path).items():
        if key not in fields:
            raise ValueError(f"{path}: unknown key {key!r}{_did_you_mean(key, fields)}")
        values[key] = _convert(parser._option_string_actions[f"--{key}"], fields[key], value, f"{path}: {key}")
        if values[key] is None and key in NO_NULL:
            raise ValueError(f"{path}: {key}: null is not a setting; leave the key out for its default "
                             f"({defaults[key]!r})")
    return values


def read_config(path, holding="flag names to values") -> dict:
    """The mapping (of `holding`) a JSON or YAML file holds (an empty file: none); a syntax error names its line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():  # no values, JSON as YAML (json.loads refuses an empty text)
        return {}
    data = _load_json(path, text) if str(path).lower().endswith(".json") else _load_yaml(path, text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of {holding}, got a {type(data).__name__}")
    return {str(key): value for key, value in data.items()}


def _load_json(path, text):
    try:
        return json.loads(text, object_pairs_hook=lambda pairs: _mapping(path, pairs))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}, line {error.lineno}, column {error.colno}: not valid JSON: {error.msg}") from None


def _mapping(path, pairs):
    """A JSON object's dict, where a key given twice is an error: which value was meant cannot be told."""
    mapping = {}
    for key, value in pairs:
        if key in mapping:
            raise ValueError(f"{path}: {key!r} is given twice")
        mapping[key] = value
    return mapping


def _load_yaml(path, text):
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValueError(f"{path}{where}: not valid YAML: {problem}") from None


def _yaml_loader(path):
    """YAML's safe loader, reading booleans and numbers as YAML 1.2 and JSON do: only true and false are
    booleans (YAML 1.1 also reads an unquoted no, yes, on and off as booleans, which turns `eval_strategy: no`
    into False, not the "no" the same flag takes on the command line), and 1e-6 is a number."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    replaced = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in replaced]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    # YAML 1.1 also reads 042 as octal (34), 1:30 as base 60 (90) and 0x1A as hex: digits are the only integers
    # here, read in base 10 as the command line reads them (042 is 42, inside a mapping too); the rest is text.
    Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9][0-9_]*$"), list("-+0123456789"))
    Loader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node), 10))
    # YAML 1.1 reads a number with an exponent but no point (1e-6) as text, 1.2 and JSON as a number: inside a
    # mapping (--lr_scheduler_kwargs) no flag's type would convert it afterwards.
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))

    def construct_mapping(loader, node, deep=False):
        # A key written twice in one mapping: which value was meant cannot be told. Keys merged in (<<: *anchor)
        # may be overridden, as YAML means them to be.
        written = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in written:
                    raise ValueError(f"{path}, line {key_node.start_mark.line + 1}: {key_node.value!r} is given twice")
                written.add((key_node.tag, key_node.value))
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.construct_mapping = construct_mapping
    return Loader


def _field_defaults(parser) -> dict:
    """{field name: its plain default} of the parser's dataclasses' init fields (none for a default factory)."""
    return {f.name: f.default for dtype in parser.dataclass_types for f in dataclasses.fields(dtype)
            if f.init and f.default is not dataclasses.MISSING}


def _field_types(parser) -> dict:
    """{field name: its type hint} of every init field of the parser's dataclasses."""
    types = {}
    for dtype in parser.dataclass_types:
        hints = typing.get_type_hints(dtype)
        types.update({f.name: hints[f.name] for f in dataclasses.fields(dtype) if f.init})
    return types


def _convert(action, hint, value, where):
    """`value` as the parser would give it for the flag typed on the command line."""
    if value is None:
        if not _admits(hint, type(None)):
            raise ValueError(f"{where}: expected {_expected(action)}, got null")
        return None
    if action.nargs in ("+", "*"):  # a list flag: one value or a list of them
        if isinstance(value, dict):  # per-task values (--train_sources sst=a,b): {task: value or list}
            value = [f"{task}={_joined(item, where)}" for task, item in value.items()]
        return [_convert_one(action, item, where) for item in (value if isinstance(value, list) else [value])]
    if isinstance(value, (dict, list)):
        return _convert_container(action, hint, value, where)
    return _convert_one(action, value, where)


def _joined(item, where) -> str:
    """A task's value, or its list of values, as typed after `task=`."""
    parts = item if isinstance(item, list) else [item]
    if any(isinstance(part, (dict, list)) for part in parts):
        raise ValueError(f"{where}: a task's value is a value or a list of values, got {item!r}")
    return ",".join(str(part) for part in parts)


def _convert_container(action, hint, value, where):
    """A mapping or list where the field takes one: kept; a mapping for a per-task option: its command-line form
    `task=value,...`; else an error (a mapping for another string flag, --run_name or --peft_config's path, is a
    mistake, not a value)."""
    if _admits(hint, type(value)):
        return value
    if isinstance(value, dict) and action.type is str and action.dest in _per_task_flags():
        return ",".join(f"{task}={_convert_one(action, _joined(item, where), where)}" for task, item in value.items())
    raise ValueError(f"{where}: expected {_expected(action)}, got a {'mapping' if isinstance(value, dict) else 'list'}")


def _per_task_flags() -> set:
    """The string flags that take `task=value,...` (commands' modules import this one: imported when needed)."""
    from trainers.arguments import PER_TASK_OPTIONS

    from .head_options import TASK_HEAD_OPTIONS

    return {*PER_TASK_OPTIONS, *TASK_HEAD_OPTIONS, "alpha"}  # alpha: minbert distill's gold-label weight


def _convert_one(action, value, where):
    text = str(value).lower() if isinstance(value, bool) else str(value)  # as typed: true, 3, 1e-4
    try:
        converted = action.type(text) if action.type is not None else text
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        raise ValueError(f"{where}: expected {_expected(action)}, got {value!r}") from None
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"{where}: expected {_expected(action)}, got {value!r}")
    return converted


def _expected(action) -> str:
    if action.choices is not None:
        return "one of " + ", ".join(str(choice) for choice in action.choices)
    return EXPECTED.get(action.type, "a string")


def _admits(hint, kind) -> bool:
    """Whether the type hint `hint` (Optional[...], dict[str, Any] | str, ...) accepts a value of type `kind`."""
    return hint is kind or typing.get_origin(hint) is kind or any(_admits(arg, kind) for arg in typing.get_args(hint))


def _did_you_mean(key, fields) -> str:
    close = difflib.get_close_matches(key, fields, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unused_message(prog, unused) -> str:
    files = [arg for arg in unused if arg.endswith(CONFIG_SUFFIXES) and not arg.startswith("-")]
    if files:
        return (f"{files[0]}: a config file comes first, before any flag: {prog} {files[0]} [--flag value ...], or "
                f"anywhere as --config {files[0]} (the flags override the file's values)")
    return f"unrecognized arguments: {' '.join(unused)}"
