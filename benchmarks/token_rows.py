"""Token matrices of every row count against row counts rounded to a few shapes: the training cost of the default.

    python benchmarks/token_rows.py                    # 2 × 5% of an epoch, exact and rounded, twice each
    python benchmarks/token_rows.py --fraction 0.1 --repeats 3 --cache_capacity 16384

minBERT's encoder carries a batch as a (real tokens, hidden) matrix, so every projection's row count is the
batch's token count, new almost every step. On CPU the matrix can be rounded up to one of a few row counts
(`MINBERT_CPU_ROW_STEPS`, or `CPU_ROW_STEPS_PER_OCTAVE` in modeling_minbert_unpadding.py; by default on where the CPU
has AMX and the products run in bf16, off elsewhere), since oneDNN builds a kernel
per product shape and keeps a bounded cache of them (benchmarks/matmul_shapes.py). This script trains the
default `minbert train` recipe (evaluation and saving off) with exact row counts ("exact") and with 8 row
counts per power of two ("rounded"), and, with `--cache_capacity`, exact row counts under a larger oneDNN
kernel cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY).

Each run is a fresh process (an empty kernel cache) that trains 2 × `--fraction` of an epoch and reports the
CPU seconds of each half: the first half builds kernels for shapes it meets first, the second shows what
a long run pays once the cache holds what it can. Variants alternate (A B A B ...), so a drift of the machine's
speed hits both; ratios are medians against the exact row counts. Results: benchmarks/results/token_rows.json
and .md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import transformers

from default_recipe import default_recipe
from result_files import print_machine, run_header, save_results

RESULTS_DIR = Path(__file__).resolve().parent / "results"
EXACT, ROUNDED, CACHED = "exact", "rounded", "exact, larger kernel cache"
RESULT_PREFIX = "RESULT "
ROUNDED_STEPS_PER_OCTAVE = 8  # at most 1/8 more rows


class HalfwayClock(transformers.TrainerCallback):
    """Process CPU seconds at the end of step `halfway` (the first half's cost)."""

    def __init__(self, halfway):
        self.halfway, self.cpu_at_halfway = halfway, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.halfway:
            self.cpu_at_halfway = time.process_time()


def train_halves(data_dir, fraction, seed, rounded):
    """In this process: train the default for 2 × `fraction` of its epoch; CPU seconds of each half."""
    from hf_minbert import modeling_minbert_unpadding

    modeling_minbert_unpadding.CPU_ROW_STEPS_PER_OCTAVE = ROUNDED_STEPS_PER_OCTAVE if rounded else 0
    with tempfile.TemporaryDirectory() as work:
        trainer = default_recipe(data_dir, Path(work) / "model", seed=seed).trainer
        epoch_steps = len(trainer.get_train_dataloader().batch_sampler)
        half = max(1, round(fraction * epoch_steps))
        trainer.args.max_steps = 2 * half
        clock = HalfwayClock(half)
        trainer.add_callback(clock)
        start = time.process_time()
        trainer.train()
        end = time.process_time()
    return {"epoch_steps": epoch_steps, "steps_per_half": half,
            "first_cpu_s": clock.cpu_at_halfway - start, "second_cpu_s": end - clock.cpu_at_halfway}


def run_variant(variant, options):
    """One run of `variant` in a fresh process; its `train_halves` result."""
    env = dict(os.environ)
    if variant == CACHED:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(options.cache_capacity)
    command = [sys.executable, __file__, "--child", variant, "--data_dir", options.data_dir,
               "--fraction", str(options.fraction), "--seed", str(options.seed)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    results = [line[len(RESULT_PREFIX):] for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not results:
        raise SystemExit(f"token_rows.py: the {variant!r} run failed:\n{completed.stderr[-3000:]}")
    return json.loads(results[-1])


def summarize(runs):
    """Per variant: the medians of its runs' halves, and their ratios to the exact row counts'."""
    summary = {}
    for variant, measured in runs.items():
        summary[variant] = {half: round(statistics.median(r[half] for r in measured), 1)
                            for half in ("first_cpu_s", "second_cpu_s")}
    for variant in summary:
        for half in ("first", "second"):
            summary[variant][f"{half}_ratio"] = round(
                summary[variant][f"{half}_cpu_s"] / summary[EXACT][f"{half}_cpu_s"], 3)
    return summary


def markdown(report):
    first = next(iter(report["runs"].values()))[0]
    lines = [f"The default recipe, {first['steps_per_half']} steps twice ({report['fraction']:.0%} of its "
             f"{first['epoch_steps']}-step epoch each half), each run in a fresh process; {report['machine']}, "
             f"torch {report['torch']}, {report['threads']} threads; medians of {report['repeats']} alternating runs.",
             "", "| token matrix rows | first half CPU s | ratio | second half CPU s | ratio |",
             "|---|---:|---:|---:|---:|"]
    for variant, r in report["summary"].items():
        label = variant if variant != CACHED else f"exact, ONEDNN_PRIMITIVE_CACHE_CAPACITY={report['cache_capacity']}"
        lines.append(f"| {label} | {r['first_cpu_s']:.1f} | {r['first_ratio']:.2f} | {r['second_cpu_s']:.1f} | "
                     f"{r['second_ratio']:.2f} |")
    lines += ["", f"exact: as many rows as the batch has real tokens; rounded: up to one of {ROUNDED_STEPS_PER_OCTAVE} "
              "row counts per power of two (at most 1/8 more rows, zeros). CPU s: the process's CPU time "
              "(both threads) for that half of the steps.", "", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--fraction", type=float, default=0.05, help="share of an epoch each half trains")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant")
    parser.add_argument("--cache_capacity", type=int, default=0,
                        help="also run exact row counts with this oneDNN kernel cache capacity (0: not run)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out_dir", default=str(RESULTS_DIR))
    parser.add_argument("--child", choices=(EXACT, ROUNDED, CACHED), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if not 0 < options.fraction <= 0.5 or options.repeats < 1 or options.cache_capacity < 0:
        parser.error("--fraction must be in (0, 0.5], --repeats at least 1 and --cache_capacity at least 0")
    transformers.logging.set_verbosity_error()
    if options.child:
        result = train_halves(options.data_dir, options.fraction, options.seed, rounded=options.child == ROUNDED)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    print_machine()
    runs = {variant: [] for variant in (EXACT, ROUNDED, *([CACHED] if options.cache_capacity else []))}
    for repeat in range(options.repeats):
        for variant in runs:
            runs[variant].append(run_variant(variant, options))
            print(f"{variant} run {repeat + 1}: {json.dumps(runs[variant][-1])}", flush=True)
    report = {**run_header("token_rows.py", argv), "fraction": options.fraction, "repeats": options.repeats,
              "cache_capacity": options.cache_capacity, "summary": summarize(runs), "runs": runs}
    table = markdown(report)
    print("\n" + table)
    save_results(options.out_dir, "token_rows", report, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
