"""`minbert card DIR`: rewrite DIR/README.md, the model card, from DIR's metrics.json and training_config.json.

    minbert card runs/minbert
    minbert card runs/minbert --model_id user/minbert-multitask   (the usage snippet loads that repo)

`minbert train` writes both files and the card; run this to point the usage snippet at a Hub repository (`minbert
push` does that itself), or after editing either file (`minbert evaluate` writes its scores into another folder,
never into a model's, whose metrics.json is its record).
"""
import argparse
import sys
from pathlib import Path

from hf_minbert.commands.common import home_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert card", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=home_path, help="saved model folder with metrics.json and training_config.json")
    parser.add_argument("--model_id", default=None, help="name the usage snippet loads (default: the folder's path)")
    parser.add_argument("--model_name", default=None, help="title of the card (default: the repo's or folder's name)")
    return parser


def main(argv=None) -> int:
    from hf_minbert.commands.common import check_not_adapters
    from hf_minbert.hub import check_weights
    from model_cards import regenerate_model_card

    args = build_parser().parse_args(argv)
    try:
        check_not_adapters(str(args.model_dir), args.model_dir)
        check_weights(args.model_dir)  # the card counts the parameters from them
        regenerate_model_card(args.model_dir, model_id=args.model_id, model_name=args.model_name)
    except (FileNotFoundError, ValueError) as error:
        print(f"minbert card: {error}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.model_dir) / 'README.md'}")
    return 0
