"""`minbert space DIR --repo_id user/name [--space_repo_id user/name-demo]`: a Hub Space for a pushed model.

Writes and uploads a Gradio Space (app.py, demo_app.py, requirements.txt and a README with the Space's
front matter) that serves the model repository --repo_id, which `minbert push DIR --repo_id` filled, by
name: the demo of `minbert serve`, running on the Hub. DIR is checked to hold a model a remote load can
use. `--output_dir` only writes the Space's folder (no token needed, nothing uploaded).

The upload follows `minbert push`'s rules: the token (--token, HF_TOKEN or `hf auth login`'s), the endpoint
(HF_ENDPOINT: an http(s) URL that answers and accepts the token) and the repository ids are checked before
anything is written. A failure is one line: exit status 2 for the token, the ids and the folder, 1 for the Hub.
"""
import argparse
import sys

from hf_minbert.commands.common import home_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert space", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=home_path, help="the saved model folder that --repo_id holds (minbert push's DIR)")
    parser.add_argument("--repo_id", required=True, help="the model repository the Space serves, user/name")
    parser.add_argument("--space_repo_id", default=None,
                        help="the Space's repository, user/name (default: --repo_id with -demo appended)")
    parser.add_argument("--output_dir", type=home_path, default=None, help="only write the Space's files into this folder; no upload")
    parser.add_argument("--private", action="store_true", help="create the Space as private")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or `hf auth login`'s)")
    parser.add_argument("--commit_message", default="Upload minBERT demo", help="commit message")
    return parser


def main(argv=None) -> int:
    from hf_minbert.hub import HubAccessError, MissingTokenError, remote_load_files, resolve_token
    from hf_minbert.space import check_served_model, check_space_upload, push_space, write_space

    args = build_parser().parse_args(argv)
    try:
        if args.output_dir is None:  # first: no work at all without a token, an endpoint and valid ids
            token = resolve_token(args.token)
            space_repo_id = check_space_upload(args.repo_id, args.space_repo_id)
        remote_load_files(args.model_dir)
        check_served_model(args.model_dir)
        if args.output_dir is not None:
            written = write_space(args.output_dir, args.repo_id)
            print(f"wrote the Space for {args.repo_id} to {args.output_dir}: {', '.join(p.name for p in written)}")
            return 0
        commit = push_space(args.repo_id, space_repo_id, private=args.private or None, token=token,
                            commit_message=args.commit_message)
    except (MissingTokenError, FileNotFoundError, ValueError) as error:
        print(f"minbert space: {error}", file=sys.stderr)
        return 2
    except HubAccessError as error:  # the endpoint cannot be reached, refuses the token or the upload
        print(f"minbert space: {error}", file=sys.stderr)
        return 1
    print(f"uploaded the Space {space_repo_id}, serving {args.repo_id}")
    print(getattr(commit, "commit_url", commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
