"""Dev-set quality of `minbert train` against a plain transformers peer, with ablation rows.

    python benchmarks/quality.py --rows default,peer          # the headline comparison
    python benchmarks/quality.py --rows no_smart,no_mnr,...    # ablations (each a full training run)
    python benchmarks/quality.py --list                         # what each row runs

Each row trains from the embedded all-MiniLM-L6-v2 on ../shared/data and is scored on the three dev
sets. Results accumulate in benchmarks/results/quality.json (a row re-run replaces its old result), and
the markdown table benchmarks/results/quality.md is rewritten from all rows each time. Rows run one after
another: two trainings at once on a 2-core machine run far slower than the same two in turn.

The peer is what a transformers user would do without this project: one
AutoModelForSequenceClassification per task from the same weights, Trainer defaults (lr 5e-5, batch 32,
3 epochs), bf16 — cross-encoded pairs, CE for sst and para, MSE for sts.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# row name -> (description, extra `minbert train` flags on top of the defaults)
TRAIN_ROWS = {
    "default": ("minbert train, defaults", []),
    "no_smart": ("defaults without SMART", ["--smart_weight", "0"]),
    "no_mnr": ("defaults without MNR", ["--mnr_weight", "0"]),
    "sampling_round_robin": ("round-robin sampling (seed 001)", ["--task_sampling", "round_robin"]),
    "sampling_proportional": ("proportional sampling (seed 002)", ["--task_sampling", "proportional"]),
    "sampling_temperature": ("temperature sampling, T=2", ["--task_sampling", "temperature", "--sampling_temperature", "2"]),
    "sampling_equal_split": ("equal-split schedule (seed 003)", ["--task_sampling", "equal_split"]),
    "sampling_sequential": ("sequential task after task (seed 000)", ["--task_sampling", "sequential"]),
    "all_tasks": ("one batch of every task per step (seeds 000/004)", ["--task_sampling", "all_tasks"]),
    "pcgrad": ("all_tasks + PCGrad", ["--task_sampling", "all_tasks", "--pcgrad", "true"]),
    "sts_bi": ("bi-encoded STS head (cosine)", ["--pair_encoding", "sts=bi"]),
    "sts_cross": ("cross-encoded STS head", ["--pair_encoding", "sts=cross"]),
}
ROWS = {**{name: desc for name, (desc, _) in TRAIN_ROWS.items()}, "peer": "transformers peer: 3 AutoModelForSequenceClassification, Trainer defaults"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="default,peer", help="comma-separated rows (see --list)")
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--work_dir", default=str(ROOT / "runs" / "quality"), help="where models are trained")
    parser.add_argument("--max_train_samples", type=int, default=None, help="cap rows per task (quick checks; recorded)")
    parser.add_argument("--extra", default="", help="extra `minbert train` flags for every training row")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for name, description in ROWS.items():
            print(f"{name:<24}{description}")
        return 0
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; known: {', '.join(ROWS)}")
    results = _load_results()
    for row in rows:
        print(f"=== {row}: {ROWS[row]}", flush=True)
        result = run_peer(args) if row == "peer" else run_training_row(row, args)
        results[row] = result
        _save_results(results)
        print(json.dumps(result, indent=2), flush=True)
    print(render_table(results))
    return 0


def run_training_row(row, args):
    out = Path(args.work_dir) / row
    flags = ["--data_dir", args.data_dir, "--output_dir", str(out), *TRAIN_ROWS[row][1], *args.extra.split()]
    if args.max_train_samples:
        flags += ["--max_train_samples", str(args.max_train_samples)]
    start = time.time()
    subprocess.run([sys.executable, "-m", "hf_minbert.cli", "train", *flags], check=True, cwd=ROOT,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.time() - start
    metrics = json.loads((out / "metrics.json").read_text())
    return _result(metrics, seconds, command="minbert train " + " ".join(flags), max_train_samples=args.max_train_samples)


def run_peer(args):
    """Three stock BertForSequenceClassification models, Trainer defaults, cross-encoded pairs."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    from hf_minbert import embedded_base_model
    from hf_minbert.data import read_task_splits, task_schema
    from hf_minbert.metrics import with_overall_scores
    from hf_minbert.evaluation import score_task

    base = embedded_base_model()
    tokenizer = AutoTokenizer.from_pretrained(base)
    metrics, start = {}, time.time()
    for task, num_labels in (("sst", 5), ("para", 2), ("sts", 1)):
        splits, _ = read_task_splits(args.data_dir, task, ("train", "dev"), skip_bad_rows=True)
        schema = task_schema(task)
        train = splits["train"]
        if args.max_train_samples:
            train = train.select(range(min(args.max_train_samples, len(train))))

        def encode(rows):
            encoded = tokenizer(*[rows[c] for c in schema.text_columns], truncation=True, max_length=128)
            labels = rows[schema.label_column]
            encoded["labels"] = [float(y) for y in labels] if num_labels == 1 else [int(y) for y in labels]
            return encoded

        train_tok = train.map(encode, batched=True, remove_columns=train.column_names)
        dev_tok = splits["dev"].map(encode, batched=True, remove_columns=splits["dev"].column_names)
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=num_labels)
        training_args = TrainingArguments(
            output_dir=str(Path(args.work_dir) / f"peer_{task}"), per_device_train_batch_size=32, num_train_epochs=3,
            bf16=True, use_cpu=not torch.cuda.is_available(), save_strategy="no", eval_strategy="no", report_to="none",
            per_device_eval_batch_size=128, logging_steps=100,
        )
        trainer = Trainer(model=model, args=training_args, train_dataset=train_tok, processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer))
        trainer.train()
        logits = trainer.predict(dev_tok).predictions
        predictions = logits.reshape(-1).tolist() if num_labels == 1 else np.argmax(logits, axis=-1).tolist()
        gold = list(splits["dev"][schema.label_column])
        metrics[task] = score_task(task, predictions, gold)
    return _result(with_overall_scores(metrics), time.time() - start, command="python benchmarks/quality.py --rows peer",
                   max_train_samples=args.max_train_samples)


def _result(metrics, seconds, command, max_train_samples):
    return {
        "sst_accuracy": metrics["sst"]["accuracy"],
        "para_accuracy": metrics["para"]["accuracy"],
        "sts_pearson": metrics["sts"]["pearson"],
        "overall": metrics["overall"],
        "mean": metrics["mean"],
        "minutes": round(seconds / 60, 1),
        "max_train_samples": max_train_samples,
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
    }


def _load_results():
    path = RESULTS / "quality.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_results(results):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "quality.md").write_text(render_table(results) + "\n")


def render_table(results):
    lines = ["| row | SST acc | Quora acc | STS r | overall (leaderboard) | mean | minutes | rows/task |",
             "|---|---|---|---|---|---|---|---|"]
    for name in [n for n in ROWS if n in results]:
        r = results[name]
        lines.append(f"| {name} | {r['sst_accuracy']:.3f} | {r['para_accuracy']:.3f} | {r['sts_pearson']:.3f} | "
                     f"{r['overall']:.3f} | {r['mean']:.3f} | {r['minutes']} | {r['max_train_samples'] or 'all'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
