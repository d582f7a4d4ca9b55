"""Speed of minBERT against transformers' BertModel on the same weights.

Both models load the embedded all-MiniLM-L6-v2 checkpoint (`hf_minbert.embedded_base_model()`);
transformers' model runs with `attn_implementation="sdpa"`, its fastest CPU path. Four cells:
a training step (train mode so dropout runs; forward, backward of a small loss on the last hidden state
and the pooler output, zero_grad) and inference (eval mode, `torch.inference_mode`), each in fp32 and
under bf16 CPU autocast.

Within a cell the two models alternate step by step after a shared warmup, in ABBA order (A B, B A, ...),
so that drift in machine load and any first-mover effect hit both equally; the table reports medians of
the per-step times, examples/s and the ratio ours/theirs (> 1 means minBERT is faster), also computed from
per-step process CPU time, which is steadier on a shared machine.

    python benchmarks/speed.py                      # batch 32, padded to 64 tokens, 20 timed steps/model
    python benchmarks/speed.py --threads 1          # on a machine busy with other jobs (see README.md)

Results go to benchmarks/results/speed.json (every per-step time, plus machine and settings) and
benchmarks/results/speed.md (the table).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from transformers import BertModel

from hf_minbert import MinBertModel, embedded_base_model
from model_cards.card import cpu_model

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODELS = ("minbert", "transformers")


@dataclass
class SpeedSettings:
    batch_size: int = 32
    seq_length: int = 64
    repeats: int = 20
    warmup: int = 3
    threads: int | None = None
    seed: int = 0
    cells: tuple = ("train-fp32", "train-bf16", "infer-fp32", "infer-bf16")
    out_dir: str = str(RESULTS_DIR)


def parse_args(argv) -> SpeedSettings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch_size", type=int, default=SpeedSettings.batch_size)
    p.add_argument("--seq_length", type=int, default=SpeedSettings.seq_length,
                   help="every batch is padded to this many tokens (its longest row has exactly this many)")
    p.add_argument("--repeats", type=int, default=SpeedSettings.repeats, help="timed steps per model and cell")
    p.add_argument("--warmup", type=int, default=SpeedSettings.warmup, help="untimed steps per model and cell")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--seed", type=int, default=SpeedSettings.seed)
    p.add_argument("--cells", nargs="+", default=list(SpeedSettings.cells), choices=SpeedSettings.cells)
    p.add_argument("--out_dir", default=SpeedSettings.out_dir)
    args = p.parse_args(argv)
    for name in ("batch_size", "seq_length", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be non-negative")
    if args.seq_length < 4:
        p.error("--seq_length must be at least 4 ([CLS] a [SEP] b [SEP] needs room)")
    return SpeedSettings(**{**vars(args), "cells": tuple(args.cells)})


# ----------------------------------------------------------------------------------------------------------
# Inputs and models
# ----------------------------------------------------------------------------------------------------------


def padded_batch(config, settings):
    """A batch shaped like the project's data: lengths drawn around 25 ± 12 tokens (SST dev tokenized:
    25.2 ± 10.8, max 60; STS/Quora pairs 28-31), half of the rows sentence pairs with token types 0/1 (as
    cross-encoded Quora/STS), right-padded to `seq_length` by a row of exactly that length.
    Token ids are random non-special word pieces: speed does not depend on which words they are."""
    gen = torch.Generator().manual_seed(settings.seed)
    batch, length = settings.batch_size, settings.seq_length
    lengths = (torch.randn(batch, generator=gen) * 12 + 25).round().clamp(6, length).long()
    lengths[0] = length  # the longest row sets the padded width, as a collator padding to the longest would
    input_ids = torch.randint(1000, config.vocab_size, (batch, length), generator=gen)
    attention_mask = (torch.arange(length) < lengths[:, None]).long()
    token_type_ids = torch.zeros_like(input_ids)
    cls_id, sep_id, pad_id = 101, 102, config.pad_token_id
    for row, n in enumerate(lengths.tolist()):
        input_ids[row, 0] = cls_id
        input_ids[row, n - 1] = sep_id
        if row % 2:  # a pair: [CLS] a [SEP] b [SEP]
            middle = n // 2
            input_ids[row, middle] = sep_id
            token_type_ids[row, middle + 1 : n] = 1
        input_ids[row, n:] = pad_id
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def load_models(path):
    return {
        "minbert": MinBertModel.from_pretrained(path),
        "transformers": BertModel.from_pretrained(path, attn_implementation="sdpa"),
    }


def max_output_difference(models, inputs):
    """Max |Δ| of the last hidden states at non-padding positions: proof that both run the same weights."""
    with torch.inference_mode():
        outs = [m.eval()(**inputs).last_hidden_state for m in models.values()]
    keep = inputs["attention_mask"].bool()
    return (outs[0][keep] - outs[1][keep]).abs().max().item()


# ----------------------------------------------------------------------------------------------------------
# Steps and timing
# ----------------------------------------------------------------------------------------------------------


def training_step(model, inputs, autocast):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(**inputs)
        loss = out.last_hidden_state.float().pow(2).mean() + out.pooler_output.float().pow(2).mean()
    loss.backward()
    model.zero_grad(set_to_none=True)


def inference_step(model, inputs, autocast):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        model(**inputs)


def time_cell(models, inputs, cell, settings):
    """Per-step wall and process-CPU seconds for each model: warmup steps, then ABBA-alternating timed
    steps. CPU time is the steadier measure on a shared machine: time slices lost to other processes do
    not count (with more than one thread it does include worker threads' spin-waiting)."""
    mode, precision = cell.split("-")
    step = training_step if mode == "train" else inference_step
    autocast = precision == "bf16"
    for model in models.values():
        model.train(mode == "train")
    for _ in range(settings.warmup):
        for model in models.values():
            step(model, inputs, autocast)
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    for i in range(settings.repeats):
        order = MODELS if i % 2 == 0 else MODELS[::-1]
        for name in order:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            step(models[name], inputs, autocast)
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def summarize(wall, cpu, batch_size):
    medians = {name: statistics.median(t) for name, t in wall.items()}
    cpu_medians = {name: statistics.median(t) for name, t in cpu.items()}
    return {
        "median_s": medians,
        "examples_per_s": {name: batch_size / s for name, s in medians.items()},
        "ratio": medians["transformers"] / medians["minbert"],
        "median_cpu_s": cpu_medians,
        "cpu_ratio": cpu_medians["transformers"] / cpu_medians["minbert"],
        "wall_s": wall,
        "cpu_s": cpu,
    }


# ----------------------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------------------


def machine_info():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "mkldnn_bf16_supported": torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported(),
    }




def markdown_table(results, settings, command, real_tokens, machine):
    lines = [
        f"minBERT vs transformers `BertModel` (SDPA), all-MiniLM-L6-v2 weights, batch {settings.batch_size} "
        f"padded to {settings.seq_length} tokens ({real_tokens / (settings.batch_size * settings.seq_length):.0%} "
        f"real tokens); medians of {settings.repeats} alternating steps per model; torch {machine['torch']}, "
        f"{machine['torch_threads']} threads on {machine['cpu_count']} CPUs ({machine['cpu']}).",
        "",
        "| cell | minBERT ex/s | transformers ex/s | ratio (ours/theirs) | ratio by CPU time |",
        "|---|---:|---:|---:|---:|",
    ]
    for cell, r in results.items():
        eps = r["examples_per_s"]
        lines.append(
            f"| {cell} | {eps['minbert']:.1f} | {eps['transformers']:.1f} | {r['ratio']:.2f} | {r['cpu_ratio']:.2f} |"
        )
    lines += ["", f"Command: `{command}`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    settings = parse_args(argv)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    transformers.logging.set_verbosity_error()  # the checkpoint's load reports are not benchmark output
    transformers.logging.disable_progress_bar()
    path = embedded_base_model()
    models = load_models(path)
    inputs = padded_batch(models["minbert"].config, settings)
    difference = max_output_difference(models, inputs)
    if difference > 1e-4:
        raise RuntimeError(f"minBERT and BertModel disagree by {difference:.2e} on the benchmark batch")

    results = {}
    for cell in settings.cells:
        results[cell] = summarize(*time_cell(models, inputs, cell, settings), settings.batch_size)
        r = results[cell]
        print(f"{cell}: minbert {r['examples_per_s']['minbert']:.1f} ex/s, "
              f"transformers {r['examples_per_s']['transformers']:.1f} ex/s, "
              f"ratio {r['ratio']:.2f} (CPU time {r['cpu_ratio']:.2f})", flush=True)

    command = "python benchmarks/speed.py" + ("" if not argv else " " + " ".join(argv))
    real_tokens = int(inputs["attention_mask"].sum())
    machine = machine_info()
    table = markdown_table(results, settings, command, real_tokens, machine)
    print("\n" + table)
    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "command": command,
        "settings": asdict(settings),
        "machine": machine,
        "model_path": path,
        "real_tokens": real_tokens,
        "max_abs_output_difference": difference,
        "cells": results,
    }
    (out_dir / "speed.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "speed.md").write_text(table)
    print(f"wrote {out_dir / 'speed.json'} and {out_dir / 'speed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
