"""Does a trained model's paraphrase answer depend on which question comes first?

    python benchmarks/pair_order.py runs/minbert                      # Quora's dev pairs, both orders
    python benchmarks/pair_order.py runs/quality/default runs/quality/pair_swap --task para

Each saved model scores the task's dev pairs as given, (sentence1, sentence2), and swapped, (sentence2,
sentence1), through `minbert evaluate`'s code path (`predict_task`, bf16, batches of 128). Reported per
model: accuracy (Pearson r for STS) in each order, the share of pairs whose predicted label changes with the
order (for STS: the mean absolute change of the score), and the score of the model with
`average_pair_orders` turned on (its head answers with the mean of its outputs for both orders). A
cross-encoder reads "[CLS] a [SEP] b [SEP]", so nothing forces it to answer the same for both orders; a model
trained with `--pair_swap_probability` has seen both.
Results: benchmarks/results/pair_order.json and .md (`--name` for another set of models).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import transformers

from hf_minbert.data import read_task_file, task_schema
from hf_minbert.evaluation import gold_labels, predict_task, predictions_to_labels, score_task

from result_files import run_header, save_results

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def pair_order_scores(model_dir, dev, task, batch_size=128):
    """The task's dev metric for both orders and their average, and how much the order changes the answer."""
    import hf_minbert  # noqa: F401  (registers minBERT with the Auto classes)

    model = transformers.AutoModel.from_pretrained(model_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    swapped = dev.rename_columns({"sentence1": "sentence2", "sentence2": "sentence1"})
    def predict(rows):
        return predict_task(model, tokenizer, rows, task, batch_size=batch_size, bf16=True, progress=False).scores

    cross = model.config.task_spec(task)["pair_encoding"] == "cross"  # a bi-encoder's cosine has no order
    if cross:  # each order alone, also for a model that averages both (today's default para head)
        model.config.tasks[task]["average_pair_orders"] = False
    forward, backward = predict(dev), predict(swapped)
    if cross:
        model.config.tasks[task]["average_pair_orders"] = True
    averaged = predict(dev)
    kind = model.config.task_spec(task)["kind"]
    gold = gold_labels(dev, task)
    label_range = task_schema(task).label_range
    result = {name: _metric(task, predictions_to_labels(scores, kind, label_range), gold) for name, scores in
              (("as given", forward), ("swapped", backward), ("averaged", averaged))}
    if task == "sts":
        result["mean absolute change"] = float(np.abs(forward - backward).mean())
    else:
        changed = np.not_equal(predictions_to_labels(forward, kind), predictions_to_labels(backward, kind))
        result["label changes"] = float(changed.mean())
    return result


def _metric(task, predictions, gold):
    """The task's dev metric (`minbert evaluate`'s): accuracy, or Pearson r for STS."""
    return score_task(task, predictions, gold)["pearson" if task == "sts" else "accuracy"]


def markdown(report):
    change = "mean absolute change" if report["task"] == "sts" else "label changes"
    metric = "Pearson r" if report["task"] == "sts" else "accuracy"
    lines = [f"{report['task']} dev pairs ({report['rows']}) in both orders; {report['machine']}, torch {report['torch']}.",
             "", f"| model | {metric} as given | swapped | average_pair_orders | {change} |", "|---|---:|---:|---:|---:|"]
    for model, r in report["models"].items():
        share = f"{r[change]:.3f}" if report["task"] == "sts" else f"{r[change]:.1%}"
        lines.append(f"| {model} | {r['as given']:.4f} | {r['swapped']:.4f} | {r['averaged']:.4f} | {share} |")
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="saved minBERT model folders")
    parser.add_argument("--task", default="para", choices=("para", "sts"))
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--out_dir", default=str(RESULTS_DIR))
    parser.add_argument("--name", default="pair_order", help="results file name (several sets of models)")
    options = parser.parse_args(argv)
    missing = [m for m in options.models if not (Path(m) / "config.json").is_file()]
    if missing:
        parser.error(f"not a saved model folder (no config.json): {', '.join(missing)}")
    transformers.logging.set_verbosity_error()
    dev, _ = read_task_file(Path(options.data_dir) / task_schema(options.task).file_name("dev"), options.task, labelled=True)
    report = {**run_header("pair_order.py", argv), "task": options.task, "rows": len(dev), "models": {}}
    for model_dir in options.models:
        report["models"][Path(model_dir).name] = pair_order_scores(model_dir, dev, options.task)
        print(Path(model_dir).name, report["models"][Path(model_dir).name], flush=True)
    table = markdown(report)
    print("\n" + table)
    save_results(options.out_dir, options.name, report, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
