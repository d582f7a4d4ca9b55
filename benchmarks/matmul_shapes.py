"""bf16 matrix products whose row count changes every call, against the same products on shapes seen before.

    python benchmarks/matmul_shapes.py
    python benchmarks/matmul_shapes.py --calls 400 --bucket 64

A training step's token count (the rows of every projection in minBERT's unpadded layout) differs from one
batch to the next. On CPU, torch runs bf16 products through oneDNN, which builds (JIT-compiles) a kernel for
each new shape and keeps a bounded cache of them. This script times the feed-forward projection of the
default model (tokens × 384 @ 384 × 1536, bf16) over the same list of row counts four ways, in this order:
every row count new, the same list again (now cached), one fixed row count, and row counts rounded up to a
multiple of `--bucket` (few distinct shapes; the padded rows are counted as work done). TFLOP/s each.
Results: benchmarks/results/matmul_shapes.json and .md.
"""
import argparse
import random
import sys
import time
from pathlib import Path

import torch

from result_files import print_machine, run_header, save_results

RESULTS_DIR = Path(__file__).resolve().parent / "results"
HIDDEN, INTERMEDIATE = 384, 1536  # all-MiniLM-L6-v2's feed-forward


def tflops(row_counts, weight):
    """TFLOP/s of `linear(x, weight)` over inputs with these row counts (inputs made beforehand)."""
    inputs = [torch.randn(rows, HIDDEN, dtype=torch.bfloat16) for rows in row_counts]
    start = time.perf_counter()
    for x in inputs:
        torch.nn.functional.linear(x, weight)
    seconds = time.perf_counter() - start
    return 2 * sum(row_counts) * HIDDEN * INTERMEDIATE / seconds / 1e12


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="products per variant")
    parser.add_argument("--low", type=int, default=1500, help="smallest row count (tokens of a batch)")
    parser.add_argument("--high", type=int, default=1900, help="largest row count")
    parser.add_argument("--bucket", type=int, default=128, help="round row counts up to a multiple of this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out_dir", default=str(RESULTS_DIR))
    options = parser.parse_args(argv)
    if options.calls < 1 or not 0 < options.low <= options.high or options.bucket < 1:
        parser.error("need --calls >= 1, 0 < --low <= --high and --bucket >= 1")
    print_machine()
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    weight = torch.randn(INTERMEDIATE, HIDDEN, dtype=torch.bfloat16)
    varying = [rng.randrange(options.low, options.high + 1) for _ in range(options.calls)]
    bucketed = [-(-rows // options.bucket) * options.bucket for rows in varying]
    variants = {"every row count new": varying, "the same row counts again": varying,
                "one fixed row count": [options.high] * options.calls,
                f"rounded up to a multiple of {options.bucket}": bucketed}
    results = {}
    for name, rows in variants.items():
        results[name] = {"tflops": round(tflops(rows, weight), 3), "distinct_shapes": len(set(rows))}
        print(f"{name}: {results[name]}", flush=True)
    report = {**run_header("matmul_shapes.py", argv), "settings": vars(options), "results": results}
    lines = [f"bf16 `linear`, rows × {HIDDEN} @ {HIDDEN} × {INTERMEDIATE}, {options.calls} calls per variant, row counts "
             f"{options.low}–{options.high}; {report['machine']}, torch {report['torch']}, {report['threads']} threads.", "",
             "| row counts | distinct shapes | TFLOP/s |", "|---|---:|---:|"]
    lines += [f"| {name} | {r['distinct_shapes']} | {r['tflops']:.3f} |" for name, r in results.items()]
    lines += ["", f"Command: `{report['command']}`"]
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    save_results(options.out_dir, "matmul_shapes", report, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
