"""The `minbert` console script: a thin dispatcher to `hf_minbert.commands.<name>.main(argv)`.

Each subcommand lives in its own module so that it can own its argument parser (`train` uses
`HfArgumentParser`, others plain argparse) and so that importing the CLI stays cheap.

A command raises ValueError (hf_minbert.data.DataError is one) for a bad flag or bad data, and OSError for
a file it cannot read; the dispatcher prints it as one line, `minbert <command>: <message>`, with exit
status 2, as argparse does for a malformed flag. Commands check their flags and read their data before any
long work, so these errors come first. MINBERT_TRACEBACK=1 lets them through with their traceback, for an
error that is a bug rather than a bad input.
"""
import argparse
import importlib
import os
import signal
import sys
from pathlib import Path

from hf_minbert.commands.output_folder import RunStopped
from hf_minbert.modeling_minbert_unpadding import cpu_row_steps

# name on the command line -> (module under hf_minbert.commands, one-line help)
COMMANDS = {
    "card": ("card", "regenerate a model folder's card (README.md) from metrics.json and training_config.json"),
    "distill": ("distill", "train one multitask model on a teacher's (e.g. an ensemble's) soft predictions: --teacher DIR"),
    "demo": ("demo", "load a model (default: the embedded base model) as minBERT and answer two pairs with every head"),
    "ensemble": ("ensemble", "greedy per-task selection of saved models on dev, saved as one ensemble model folder"),
    "evaluate": ("evaluate", "score a saved model on the dev sets and write predictions"),
    "pretrain-mlm": ("pretrain_mlm", "further masked-LM pretraining on the task texts, before `minbert train`"),
    "push": ("push", "upload a model folder (weights, code, tokenizer, card) to the Hub: --repo_id user/name"),
    "serve": ("serve", "try a model folder in the browser: a local Gradio demo of every task (needs hf_minbert[demo])"),
    "space": ("space", "write and upload a Hub Space (Gradio demo) serving a pushed model repo: --repo_id user/name"),
    "train": ("train", "multitask fine-tuning with SMART, MNR loss and task sampling"),
}


def _usage() -> str:
    lines = ["usage: minbert <command> [options]", "", "commands:"]
    lines += [f"  {name:<14}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `minbert <command> --help` for the options of one command."]
    return "\n".join(lines)


# What an interrupted command that stages its output folder (commands/output_folder.py) left, and where.
STAGED_HINT = dict.fromkeys(
    ("train", "distill", "pretrain-mlm"),
    "; --output_dir is as it was, and the checkpoints saved so far are in <output_dir>.partial: continue with "
    "--resume_from_checkpoint <output_dir>.partial/checkpoint-N",
)
STAGED_HINT["ensemble"] = "; --output_dir is as it was"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"minbert: unknown command {name!r}; known: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        cpu_row_steps()  # a bad MINBERT_CPU_ROW_STEPS fails here, before any work
        return importlib.import_module(f"hf_minbert.commands.{COMMANDS[name][0]}").main(rest) or 0
    except (ValueError, OSError) as error:
        if os.environ.get("MINBERT_TRACEBACK"):
            raise
        print(f"minbert {name}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if os.environ.get("MINBERT_TRACEBACK"):
            raise
        print(f"minbert {name}: interrupted" + _staged_hint(name, rest), file=sys.stderr)
        return 130
    except RunStopped as stopped:  # its message names the checkpoint to resume from
        print(f"minbert {name}: {stopped}; --output_dir is as it was", file=sys.stderr)
        return 128 + signal.SIGTERM


def _staged_hint(name, argv):
    """STAGED_HINT, naming the run's staging folder and its last checkpoint where --output_dir is on the command
    line and a checkpoint was saved."""
    from transformers.trainer_utils import get_last_checkpoint

    from hf_minbert.commands.output_folder import staging_folder

    hint = STAGED_HINT.get(name, "")
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--output_dir")
    output_dir = peek.parse_known_args(argv)[0].output_dir
    if name == "ensemble" or not hint or not output_dir:
        return hint
    staging = staging_folder(Path(output_dir).expanduser())
    checkpoint = get_last_checkpoint(str(staging)) if staging.is_dir() else None
    if checkpoint is None:
        return hint
    return (f"; --output_dir is as it was, and the checkpoints saved so far are in {staging}: continue with "
            f"--resume_from_checkpoint {checkpoint}")


if __name__ == "__main__":
    sys.exit(main())
