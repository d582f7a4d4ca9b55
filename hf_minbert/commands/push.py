"""`minbert push DIR --repo_id user/name [--private]`: publish a saved model folder on the Hub.

Sends exactly the files a remote user needs — safetensors weights, config.json (with auto_map and
custom_pipelines), every code file the remote load imports, the tokenizer — plus the model card,
metrics.json, training_config.json and the plots; nothing else in DIR (checkpoints, optimizer states,
pickled arguments). The card is regenerated so that its usage snippet loads `--repo_id` (`--keep_card`
sends README.md as it is); the new card is what is sent, and it replaces the folder's README.md only once the
upload has succeeded.

The endpoint is HF_ENDPOINT (default https://huggingface.co); the token is --token, HF_TOKEN or the one
`hf auth login` stored. Everything that can stop a push is checked before any file is written or sent, in
this order: the token, the folder (complete, and no file that resolves outside it), the endpoint (it answers
and accepts the token). A failure is one line: exit status 2 for the token and the folder, 1 for the Hub.
"""
import argparse
import sys
from pathlib import Path

from hf_minbert.commands.common import first_line, home_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert push", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=home_path, help="saved model folder (minbert train's output directory)")
    parser.add_argument("--repo_id", required=True, help="Hub repository, user/name (created if it does not exist)")
    parser.add_argument("--private", action="store_true",
                        help="create the repository as private (default: the Hub's default for the namespace)")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or `hf auth login`'s)")
    parser.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    parser.add_argument("--commit_message", default="Upload minBERT model", help="commit message")
    parser.add_argument("--keep_card", action="store_true", help="send README.md as it is, without regenerating it")
    parser.add_argument("--space_repo_id", default=None,
                        help="then also upload a Gradio demo Space serving --repo_id to this repository (minbert space)")
    return parser


def main(argv=None) -> int:
    from hf_minbert.hub import HubAccessError, MissingTokenError, check_hub_access, push_model_dir, qualified_repo_id

    args = build_parser().parse_args(argv)
    try:
        token, files, card = _prepared(args)
    except (MissingTokenError, FileNotFoundError, ValueError) as error:
        print(f"minbert push: {error}", file=sys.stderr)
        return 2
    try:
        repo_id = qualified_repo_id(args.repo_id, check_hub_access(token))
        if card is not None and repo_id != args.repo_id:  # a bare name: the card loads the repository's full id
            card = _new_card(args.model_dir, repo_id)
        commit = push_model_dir(args.model_dir, repo_id, private=args.private or None, token=token,
                                commit_message=args.commit_message, revision=args.revision,
                                card_text=None if card is None else str(card), check_access=False)
    except HubAccessError as error:
        print(f"minbert push: {error}", file=sys.stderr)
        return 1
    if card is not None:
        card.save(Path(args.model_dir) / "README.md")  # the folder's card is now the repository's
        print(f"regenerated {Path(args.model_dir) / 'README.md'} for {repo_id}")
        files = sorted({*files, "README.md"})
    print(f"pushed {len(files)} files to {repo_id}: {', '.join(files)}")
    print(getattr(commit, "commit_url", commit))
    return _push_space(args, token, repo_id) if args.space_repo_id else 0


def _prepared(args):
    """(token, files to send, the regenerated card or None): everything that can stop the push, checked before
    any file is written or sent — the token first, then the Space's repository, the folder and its record."""
    from hf_minbert.hub import files_to_push, resolve_token

    token = resolve_token(args.token)  # first: no work at all without a token
    _check_repo_id(args.repo_id, "--repo_id")
    if args.space_repo_id:
        from hf_minbert.space import check_served_model, check_space_upload

        check_space_upload(args.repo_id, args.space_repo_id)  # before the model goes up
        check_served_model(args.model_dir)
    files = files_to_push(args.model_dir, require_card=args.keep_card)  # checks the weights the card counts
    return token, files, None if args.keep_card else _new_card(args.model_dir, args.repo_id)


def _check_repo_id(repo_id, flag):
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"{flag} {repo_id}: {first_line(error)}") from None


def _push_space(args, token, repo_id) -> int:
    """Upload the demo Space serving the model just pushed; its exit status."""
    from hf_minbert.hub import HubAccessError
    from hf_minbert.space import push_space

    try:
        space_commit = push_space(repo_id, args.space_repo_id, private=args.private or None, token=token,
                                  check_access=False)
    except HubAccessError as error:
        print(f"minbert push: {error}", file=sys.stderr)
        return 1
    print(f"uploaded the Space {args.space_repo_id}, serving {repo_id}")
    print(getattr(space_commit, "commit_url", space_commit))
    return 0


def _new_card(model_dir, repo_id):
    """The card regenerated for `repo_id` from the folder's run record (not yet written), or None when the
    folder has no record and its README.md is sent as it is."""
    from model_cards.card import build_model_card
    from model_cards.run_record import METRICS_FILE, SELECTION_FILE, TRAINING_CONFIG_FILE, load_run_record

    model_dir = Path(model_dir)
    # A run's record: training_config.json (minbert train), or ensemble_selection.json (minbert ensemble).
    recorded = (model_dir / TRAINING_CONFIG_FILE).is_file() or (model_dir / SELECTION_FILE).is_file()
    if (model_dir / METRICS_FILE).is_file() and recorded:
        metrics, training_config = load_run_record(model_dir)
        return build_model_card(model_dir, metrics, training_config, model_id=repo_id)
    if (model_dir / "README.md").is_file():
        print(f"{model_dir} has no {METRICS_FILE} and {TRAINING_CONFIG_FILE}: sending README.md as it is")
    return None
