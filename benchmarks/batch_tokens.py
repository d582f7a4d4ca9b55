"""Batches by row count against batches by token budget: the training cost of the same share of the default epoch.

    python benchmarks/batch_tokens.py                          # 5% of an epoch, budgets off and sst=768, twice each
    python benchmarks/batch_tokens.py --budgets sst=768 sst=1024 --fraction 0.1 --repeats 3

Each variant runs the default `minbert train` recipe (its data, model and `MultitaskTrainer`; evaluation and
saving off) for the same fraction of its own epoch: with a token budget an epoch has fewer, fuller SST steps,
and a fraction of it covers the same share of every task's rows. Variants alternate (A B A B ...), so a drift
of the machine's speed hits both. The figures are the process's CPU seconds inside `Trainer.train` (what the
steps cost; on a virtual machine whose host takes CPU time, wall seconds overstate it) and wall seconds; the
ratio is each variant's median CPU seconds over the row-count batches'. Tokenizing and building the model are
outside the timing. Results: benchmarks/results/batch_tokens.json and .md.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import transformers

from trainers.per_task import check_per_task_counts, parse_task_values

from default_recipe import default_recipe
from result_files import print_machine, run_header, save_results

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROWS = "rows"  # the variant without a budget: batches of --per_device_train_batch_size rows


def train_share(data_dir, fraction, budget, seed):
    """Train the default recipe with `--batch_tokens budget` (None: off, batches of rows) for `fraction` of its
    epoch's steps."""
    with tempfile.TemporaryDirectory() as work:
        trainer = default_recipe(data_dir, Path(work) / "model", ["--batch_tokens", budget or ""], seed).trainer
        epoch_steps = len(trainer.get_train_dataloader().batch_sampler)
        trainer.args.max_steps = max(1, round(fraction * epoch_steps))
        cpu, wall = time.process_time(), time.perf_counter()
        trainer.train()
        return {"epoch_steps": epoch_steps, "steps": trainer.args.max_steps,
                "cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}


def summarize(runs):
    """Per variant: its steps and the medians of its runs; the ratio of its CPU seconds to the row batches'."""
    summary = {}
    for variant, measured in runs.items():
        summary[variant] = {"epoch_steps": measured[0]["epoch_steps"], "steps": measured[0]["steps"],
                            "cpu_s": round(statistics.median(r["cpu_s"] for r in measured), 1),
                            "wall_s": round(statistics.median(r["wall_s"] for r in measured), 1)}
    for variant in summary:
        summary[variant]["cpu_ratio"] = round(summary[variant]["cpu_s"] / summary[ROWS]["cpu_s"], 3)
    return summary


def markdown(report):
    lines = [f"The default recipe trained for {report['fraction']:.0%} of its epoch, batches by rows against batches "
             f"by token budget (`--batch_tokens`); {report['machine']}, torch {report['torch']}, {report['threads']} "
             f"threads; medians of {report['repeats']} alternating runs each.", "",
             "| batches | steps an epoch | steps timed | CPU s | ratio | wall s |", "|---|---:|---:|---:|---:|---:|"]
    for variant, r in report["summary"].items():
        label = "32 rows" if variant == ROWS else f"`--batch_tokens {variant}`"
        lines.append(f"| {label} | {r['epoch_steps']} | {r['steps']} | {r['cpu_s']:.1f} | {r['cpu_ratio']:.2f} | "
                     f"{r['wall_s']:.1f} |")
    lines += ["", "CPU s: the process's CPU time inside `Trainer.train` (both threads); wall s also counts the time the "
              "host of this virtual machine took.", "", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--budgets", nargs="+", default=["sst=768"], help="--batch_tokens values to compare")
    parser.add_argument("--fraction", type=float, default=0.05, help="share of an epoch each run trains")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out_dir", default=str(RESULTS_DIR))
    options = parser.parse_args(argv)
    if not 0 < options.fraction <= 1 or options.repeats < 1:
        parser.error("--fraction must be in (0, 1] and --repeats at least 1")
    for budget in options.budgets:  # checked as minbert train checks them, before the first run trains
        try:
            check_per_task_counts(budget, "batch_tokens")
            parse_task_values(budget, "batch_tokens", ["sst", "para", "sts"], every=["sst", "para", "sts"])
        except ValueError as error:
            parser.error(f"--budgets {budget}: {error}")
    transformers.logging.set_verbosity_error()
    print_machine()
    runs = {variant: [] for variant in (ROWS, *options.budgets)}
    for repeat in range(options.repeats):
        for variant in runs:
            result = train_share(options.data_dir, options.fraction, None if variant == ROWS else variant, options.seed)
            runs[variant].append(result)
            print(f"{variant} run {repeat + 1}: {json.dumps(result)}", flush=True)
    report = {**run_header("batch_tokens.py", argv), "fraction": options.fraction, "repeats": options.repeats,
              "summary": summarize(runs), "runs": runs}
    table = markdown(report)
    print("\n" + table)
    save_results(options.out_dir, "batch_tokens", report, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
