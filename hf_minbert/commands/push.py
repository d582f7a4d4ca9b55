"""`minbert push DIR --repo_id user/name [--private]`: publish a saved model folder on the Hub.

Sends exactly the files a remote user needs — safetensors weights, config.json (with auto_map and
custom_pipelines), every code file the remote load imports, the tokenizer — plus the model card,
metrics.json, training_config.json and the plots; nothing else in DIR (checkpoints, optimizer states,
pickled arguments). The card is first regenerated so that its usage snippet loads `--repo_id`
(`--keep_card` sends README.md as it is).

The endpoint is HF_ENDPOINT (default https://huggingface.co); the token is --token, HF_TOKEN or the one
`hf auth login` stored. Without a token the command stops before doing anything.
"""
import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert push", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="saved model folder (minbert train's output directory)")
    parser.add_argument("--repo_id", required=True, help="Hub repository, user/name (created if it does not exist)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or `hf auth login`'s)")
    parser.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    parser.add_argument("--commit_message", default="Upload minBERT model", help="commit message")
    parser.add_argument("--keep_card", action="store_true", help="send README.md as it is, without regenerating it")
    return parser


def main(argv=None) -> int:
    from hf_minbert.hub import MissingTokenError, files_to_push, push_model_dir, resolve_token

    args = build_parser().parse_args(argv)
    try:
        token = resolve_token(args.token)  # first: no work at all without a token
        if not args.keep_card:
            _refresh_card(args.model_dir, args.repo_id)
        files = files_to_push(args.model_dir)
    except (MissingTokenError, FileNotFoundError, ValueError) as error:
        print(f"minbert push: {error}", file=sys.stderr)
        return 2
    commit = push_model_dir(args.model_dir, args.repo_id, private=args.private, token=token,
                            commit_message=args.commit_message, revision=args.revision)
    print(f"pushed {len(files)} files to {args.repo_id}: {', '.join(files)}")
    print(getattr(commit, "commit_url", commit))
    return 0


def _refresh_card(model_dir, repo_id):
    from model_cards import regenerate_model_card
    from model_cards.card import METRICS_FILE, SELECTION_FILE, TRAINING_CONFIG_FILE

    model_dir = Path(model_dir)
    # A run's record: training_config.json (minbert train), or ensemble_selection.json (minbert ensemble).
    recorded = (model_dir / TRAINING_CONFIG_FILE).is_file() or (model_dir / SELECTION_FILE).is_file()
    if (model_dir / METRICS_FILE).is_file() and recorded:
        regenerate_model_card(model_dir, model_id=repo_id)
        print(f"regenerated {model_dir / 'README.md'} for {repo_id}")
    elif (model_dir / "README.md").is_file():
        print(f"{model_dir} has no {METRICS_FILE} and {TRAINING_CONFIG_FILE}: sending README.md as it is")
