"""The `minbert` console script: a thin dispatcher to `hf_minbert.commands.<name>.main(argv)`.

Each subcommand lives in its own module so that it can own its argument parser (`train` uses
`HfArgumentParser`, others plain argparse) and so that importing the CLI stays cheap.
"""
import importlib
import sys

# name on the command line -> (module under hf_minbert.commands, one-line help)
COMMANDS = {
    "card": ("card", "regenerate a model folder's card (README.md) from metrics.json and training_config.json"),
    "distill": ("distill", "train one multitask model on a teacher's (e.g. an ensemble's) soft predictions: --teacher DIR"),
    "demo": ("demo", "load the embedded base model as minBERT and run every task head once"),
    "ensemble": ("ensemble", "greedy per-task selection of saved models on dev, saved as one ensemble model folder"),
    "evaluate": ("evaluate", "score a saved model on the dev sets and write predictions"),
    "pretrain-mlm": ("pretrain_mlm", "further masked-LM pretraining on the task texts, before `minbert train`"),
    "push": ("push", "upload a model folder (weights, code, tokenizer, card) to the Hub: --repo_id user/name"),
    "train": ("train", "multitask fine-tuning with SMART, MNR loss and task sampling"),
}


def _usage() -> str:
    lines = ["usage: minbert <command> [options]", "", "commands:"]
    lines += [f"  {name:<14}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `minbert <command> --help` for the options of one command."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"minbert: unknown command {name!r}; known: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"hf_minbert.commands.{COMMANDS[name][0]}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
