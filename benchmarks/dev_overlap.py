"""How much the STS dev pairs that the course's training file repeats lifted the STS scores measured so far.

sts-train.csv holds some of sts-dev.csv's pairs (the same two sentences, in either order, often with another
score), and models trained before `minbert train` dropped such rows were trained on them. This scores each
given model on STS dev twice: on every pair, and on the pairs that no training row repeats. A Pearson r that
drops without the repeated pairs means the repeats had lifted it.

    python benchmarks/dev_overlap.py runs/quality/weight_decay_0.1 runs/quality/ordinal_seed1 ...

Writes results/dev_overlap.json and .md (the models are not in the repository: name the ones you have).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from hf_minbert.data.text_form import text_key  # the training data reader's notion of the same pair

from result_files import print_machine, run_header, save_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def repeated_in_training(train, dev):
    """Per dev row: whether a training row has the same two sentences."""
    seen = {text_key((a, b), symmetric=True) for a, b in zip(train["sentence1"], train["sentence2"])}
    return np.array([text_key((a, b), symmetric=True) in seen for a, b in zip(dev["sentence1"], dev["sentence2"])])


def score_model(folder, dev, repeated):
    from transformers import AutoTokenizer

    from hf_minbert import MinBertForMultitask
    from hf_minbert.evaluation import predict_task

    model = MinBertForMultitask.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    predicted = predict_task(model, tokenizer, dev, "sts", progress=False).scores.reshape(-1)
    gold = np.asarray(dev["similarity"])
    return {"model": str(folder), "pearson_all": float(stats.pearsonr(predicted, gold)[0]),
            "pearson_unrepeated": float(stats.pearsonr(predicted[~repeated], gold[~repeated])[0])}


def table(report) -> str:
    lines = [f"STS dev: {report['repeated_pairs']} of {report['dev_pairs']} pairs repeated in sts-train.csv",
             "", "| model | r, every dev pair | r, pairs not trained on | difference |", "|---|---:|---:|---:|"]
    for row in report["models"]:
        difference = row["pearson_unrepeated"] - row["pearson_all"]
        lines.append(f"| {Path(row['model']).name} | {row['pearson_all']:.4f} | {row['pearson_unrepeated']:.4f} | {difference:+.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders trained on the course's sts-train.csv")
    parser.add_argument("--data_dir", default=str(DATA))
    parser.add_argument("--out_dir", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    from hf_minbert.data import read_task_splits

    print_machine()
    splits, _ = read_task_splits(args.data_dir, "sts")
    repeated = repeated_in_training(splits["train"], splits["dev"])
    report = {**run_header("dev_overlap.py", sys.argv[1:] if argv is None else argv),
              "dev_pairs": len(repeated), "repeated_pairs": int(repeated.sum()),
              "models": [score_model(folder, splits["dev"], repeated) for folder in args.models]}
    print(table(report))
    save_results(args.out_dir, "dev_overlap", report, table(report))


if __name__ == "__main__":
    main()
