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

Beside the cells it measures what the CPU can do and how close each cell gets:
- the matmul peak: bf16 and fp32 TFLOP/s at 2048^3 and at the encoder's own shapes (the real tokens of
  the batch times the QKV, attention-output and feed-forward weights); the bf16 peak is the best of them;
- each cell's TFLOP/s on real tokens and its MFU, the share of the bf16 peak (see `model_flops`);
- a profile of minBERT's bf16 training step: the top operators by self CPU time;
- the optimizer step over the default `minbert train` model's parameters: the project's AdamW against
  `torch.optim.AdamW(fused=True)`, alternating, after warmup (ours builds its C kernel first, once per machine);
- gradient clipping over the same parameters' gradients, to norm 1 (a default run's gradients are nearly always
  above it): `MultitaskTrainer`'s (trainers/gradient_clipping.py) against `torch.nn.utils.clip_grad_norm_`,
  alternating, each on the same gradients restored before every call.

    python benchmarks/speed.py                      # batch 32, padded to 64 tokens, 20 timed steps/model
    python benchmarks/speed.py --threads 1          # on a machine busy with other jobs (see benchmarks/README.md)
    python benchmarks/speed.py --quick              # 5 timed steps per cell, fewer repeats everywhere
    python benchmarks/speed.py --label "what changed"   # names this run's row in the history

Results go to benchmarks/results/speed.json (every per-step time, plus machine and settings, and the
history: one summary row per run, labelled with the change it measured) and benchmarks/results/speed.md
(the tables).
"""
import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from torch.profiler import ProfilerActivity, profile
from transformers import BertModel

from hf_minbert import MinBertModel, embedded_base_model
from model_cards.run_record import cpu_model

from result_files import append_history, command_line, print_machine, save_results

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
    quick: bool = False
    label: str = ""
    optimizer_repeats: int = 10
    profile_top: int = 10


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
    p.add_argument("--quick", action="store_true",
                   help="5 timed steps per cell, 1 warmup, 4 optimizer steps: a rough check in a few minutes")
    p.add_argument("--label", default="", help="what this run measures (e.g. the change just made), for the history")
    p.add_argument("--optimizer_repeats", type=int, default=SpeedSettings.optimizer_repeats,
                   help="timed optimizer steps per optimizer")
    p.add_argument("--profile_top", type=int, default=SpeedSettings.profile_top,
                   help="operators listed in the training step's profile (0: no profile)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.optimizer_repeats = min(args.repeats, 5), min(args.warmup, 1), 4
    for name in ("batch_size", "seq_length", "repeats", "optimizer_repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.profile_top < 0:
        p.error("--profile_top must be non-negative")
    if args.warmup < 0:
        p.error("--warmup must be non-negative")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
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
# What the CPU can do, and how close each cell gets
# ----------------------------------------------------------------------------------------------------------


def matmul_shapes(config, real_tokens):
    """(name, m, k, n) of the benchmark's matmuls: a square reference and the encoder's own weights applied
    to the batch's real tokens (minBERT runs every per-token matmul on real tokens only)."""
    h, i = config.hidden_size, config.intermediate_size
    return [
        ("2048^3", 2048, 2048, 2048),
        ("qkv", real_tokens, h, 3 * h),
        ("attention output", real_tokens, h, h),
        ("ffn up", real_tokens, h, i),
        ("ffn down", real_tokens, i, h),
    ]


def matmul_peak(config, real_tokens, repeats):
    """TFLOP/s of `a @ b` per shape and dtype from the fastest of `repeats` products (a peak is what the CPU
    can do, so the run least disturbed by other work counts); the peak of a dtype is its best shape."""
    shapes = {}
    for dtype in (torch.bfloat16, torch.float32):
        for name, m, k, n in matmul_shapes(config, real_tokens):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            a @ b
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - start)
            label = f"{str(dtype).removeprefix('torch.')} {name} ({m}x{k} @ {k}x{n})"
            shapes[label] = 2 * m * k * n / min(times) / 1e12
    peak = {dtype: max(v for key, v in shapes.items() if key.startswith(dtype)) for dtype in ("bfloat16", "float32")}
    return {"tflops_by_shape": shapes, "peak_tflops": peak}


def model_flops(config, attention_mask, training):
    """Matmul FLOPs of one step on the real tokens, counted layer by layer (2 per multiply-add):
    per layer the Q, K, V and output projections (4 H^2 per token) and the feed-forward (2 H I per token),
    plus attention's two products QK^T and PV over real token pairs (2 H n^2 per row of n tokens), then
    the pooler (H^2 per row); a training step adds the backward pass, twice the forward (gradients of
    inputs and of weights). Padding, embeddings lookups, softmax and LayerNorm are not counted, so both
    models are measured against the same useful work."""
    return sequence_flops(config, attention_mask.sum(dim=1).tolist(), training)


def sequence_flops(config, lengths, training):
    """`model_flops` of a batch of sequences with these numbers of real tokens."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens, pairs, rows = sum(lengths), sum(n * n for n in lengths), len(lengths)
    forward = layers * (2 * tokens * (4 * h * h + 2 * h * i) + 4 * h * pairs) + 2 * rows * h * h
    return float(3 * forward if training else forward)


def add_mfu(results, config, inputs, peak_tflops):
    for cell, r in results.items():
        flops = model_flops(config, inputs["attention_mask"], training=cell.startswith("train"))
        r["flops_per_step"] = flops
        r["tflops"] = {name: flops / s / 1e12 for name, s in r["median_s"].items()}
        r["mfu"] = {name: tflops / peak_tflops for name, tflops in r["tflops"].items()}


def profile_training_step(model, inputs, top):
    """Top `top` operators by self CPU time over three bf16 training steps of `model` (after one warmup)."""
    model.train()
    training_step(model, inputs, autocast=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            training_step(model, inputs, autocast=True)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"operator": e.key, "self_cpu_ms_per_step": e.self_cpu_time_total / 3 / 1e3,
             "share": e.self_cpu_time_total / total, "calls_per_step": e.count / 3} for e in events[:top]]


def default_recipe_parameters():
    """The trainable parameters of the model `minbert train` builds by default (random gradients)."""
    from hf_minbert.commands.head_options import base_task_specs, task_specs
    from hf_minbert.commands.train import build_model
    from hf_minbert.commands.train_arguments import ModelArguments

    model_args = ModelArguments()
    _, model = build_model(model_args, task_specs(model_args, *base_task_specs(model_args)))
    params = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(0)
    for param in params:
        param.grad = torch.randn(param.shape, generator=generator) * 1e-3
    return params


def time_optimizers(settings):
    """Per-step seconds of our AdamW and torch's fused AdamW over the default model's parameters (two
    copies, one param group with weight decay), alternating after two warmup steps each."""
    from hf_minbert.optimization import AdamW

    params = default_recipe_parameters()
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for twin, param in zip(twins, params):
        twin.grad = param.grad.clone()
    optimizers = {"minbert AdamW": AdamW(params, lr=2e-5, weight_decay=0.01),
                  "torch AdamW(fused=True)": torch.optim.AdamW(twins, lr=2e-5, weight_decay=0.01, fused=True)}
    start = time.perf_counter()
    for optimizer in optimizers.values():
        optimizer.step()
    first_steps_s = time.perf_counter() - start
    for optimizer in optimizers.values():
        optimizer.step()
    wall = {name: [] for name in optimizers}
    for i in range(settings.optimizer_repeats):
        names = list(optimizers) if i % 2 == 0 else list(optimizers)[::-1]
        for name in names:
            start = time.perf_counter()
            optimizers[name].step()
            wall[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in wall.items()}
    return {"parameters": sum(p.numel() for p in params), "median_s": medians, "wall_s": wall,
            "first_steps_s": first_steps_s, "ratio": medians["minbert AdamW"] / medians["torch AdamW(fused=True)"]}


def time_clipping(settings):
    """Per-call seconds of MultitaskTrainer's gradient clipping and torch's over the default model's gradients,
    clipped to norm 1, alternating; every call starts from the same gradients."""
    from trainers.gradient_clipping import clip_grad_norm_

    params = default_recipe_parameters()
    gradients = [p.grad.clone() for p in params]
    clippers = {"MultitaskTrainer's clipping": clip_grad_norm_, "torch clip_grad_norm_": torch.nn.utils.clip_grad_norm_}
    wall = {name: [] for name in clippers}
    for i in range(settings.optimizer_repeats + 1):  # the first round warms up
        for name in list(clippers) if i % 2 == 0 else list(clippers)[::-1]:
            for param, gradient in zip(params, gradients):
                param.grad.copy_(gradient)
            start = time.perf_counter()
            clippers[name](params, 1.0)
            if i:
                wall[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in wall.items()}
    return {"median_s": medians, "wall_s": wall,
            "ratio": medians["MultitaskTrainer's clipping"] / medians["torch clip_grad_norm_"]}


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


def markdown_table(results, settings, command, real_tokens, machine, extras):
    peak = extras["matmul"]["peak_tflops"]
    lines = [
        f"minBERT vs transformers `BertModel` (SDPA), all-MiniLM-L6-v2 weights, batch {settings.batch_size} "
        f"padded to {settings.seq_length} tokens ({real_tokens} real, "
        f"{real_tokens / (settings.batch_size * settings.seq_length):.0%}); medians of {settings.repeats} alternating "
        f"steps per model; torch {machine['torch']}, {machine['torch_threads']} threads on {machine['cpu_count']} "
        f"CPUs ({machine['cpu']}). Measured matmul peak: bf16 {peak['bfloat16']:.2f} TFLOP/s, fp32 "
        f"{peak['float32']:.2f} TFLOP/s. MFU: matmul FLOPs on real tokens per second over the bf16 peak.",
        "",
        "| cell | minBERT ex/s | transformers ex/s | ratio (ours/theirs) | ratio by CPU time "
        "| minBERT TFLOP/s | minBERT MFU | transformers MFU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell, r in results.items():
        eps, mfu = r["examples_per_s"], r["mfu"]
        lines.append(
            f"| {cell} | {eps['minbert']:.1f} | {eps['transformers']:.1f} | {r['ratio']:.2f} | {r['cpu_ratio']:.2f} "
            f"| {r['tflops']['minbert']:.3f} | {mfu['minbert']:.1%} | {mfu['transformers']:.1%} |"
        )
    optimizer = extras["optimizer"]
    lines += ["", f"Optimizer step over the default model's {optimizer['parameters'] / 1e6:.1f}M parameters: "
              + ", ".join(f"{name} {s * 1e3:.1f} ms" for name, s in optimizer["median_s"].items())
              + f" (ratio {optimizer['ratio']:.2f}; first steps incl. compiling {optimizer['first_steps_s']:.1f} s)."]
    clipping = extras["clipping"]
    lines += ["", "Gradient clipping of the same parameters' gradients to norm 1: "
              + ", ".join(f"{name} {s * 1e3:.1f} ms" for name, s in clipping["median_s"].items())
              + f" (ratio {clipping['ratio']:.2f})."]
    lines += ["", "| matmul | TFLOP/s |", "|---|---:|"]
    lines += [f"| {name} | {tflops:.2f} |" for name, tflops in extras["matmul"]["tflops_by_shape"].items()]
    if extras["profile"]:
        lines += ["", "minBERT bf16 training step, top operators by self CPU time (torch.profiler):", "",
                  "| operator | ms/step | share | calls/step |", "|---|---:|---:|---:|"]
        lines += [f"| `{e['operator']}` | {e['self_cpu_ms_per_step']:.1f} | {e['share']:.1%} "
                  f"| {e['calls_per_step']:.0f} |"
                  for e in extras["profile"]]
    lines += ["", "History (one row per change measured; ratios are within one run):", "",
              "| change | CPU (bf16 peak TFLOP/s) | train-bf16 MFU | train-fp32 MFU | train-bf16 ratio "
              "| AdamW / torch fused | clipping / torch's | command |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for row in extras["history"]:
        lines.append(f"| {row['label']} | {_history_cpu(row)} | {_percent(row.get('train-bf16 mfu'))} "
                     f"| {_percent(row.get('train-fp32 mfu'))} | {_number(row.get('train-bf16 ratio'))} "
                     f"| {_number(row.get('adamw ratio'))} | {_number(row.get('clipping ratio'))} | `{row['command']}` |")
    lines += ["", f"Command: `{command}`"]
    return "\n".join(lines) + "\n"


def _history_cpu(row):
    cpu = row.get("cpu", "not recorded")
    return cpu if row.get("bf16 peak tflops") is None else f"{cpu} ({row['bf16 peak tflops']:.2f})"


def _percent(value):
    return "–" if value is None else f"{value:.1%}"


def _number(value):
    return "–" if value is None else f"{value:.2f}"


def history_row(settings, command, results, optimizer, clipping, machine, peak_tflops):
    """One run's figures for the history table, with its CPU: MFU is a share of that machine's own peak, so
    rows from different CPUs are not one series."""
    row = {"label": settings.label or "(unlabelled)", "command": command, "adamw ratio": optimizer["ratio"],
           "clipping ratio": clipping["ratio"], "cpu": machine["cpu"], "bf16 peak tflops": peak_tflops}
    for cell, r in results.items():
        row[f"{cell} mfu"] = r["mfu"]["minbert"]
        row[f"{cell} ratio"] = r["ratio"]
    return row


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    settings = parse_args(argv)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    transformers.logging.set_verbosity_error()  # the checkpoint's load reports are not benchmark output
    transformers.logging.disable_progress_bar()
    print_machine()
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

    command = command_line("speed.py", argv)
    real_tokens = int(inputs["attention_mask"].sum())
    config = models["minbert"].config
    matmul = matmul_peak(config, real_tokens, repeats=3 if settings.quick else 10)
    print(f"matmul peak: bf16 {matmul['peak_tflops']['bfloat16']:.2f} TFLOP/s, "
          f"fp32 {matmul['peak_tflops']['float32']:.2f} TFLOP/s", flush=True)
    add_mfu(results, config, inputs, matmul["peak_tflops"]["bfloat16"])
    profile_rows = []
    if settings.profile_top:
        profile_rows = profile_training_step(models["minbert"], inputs, settings.profile_top)
    optimizer = time_optimizers(settings)
    print("optimizer step: " + ", ".join(f"{n} {s * 1e3:.1f} ms" for n, s in optimizer["median_s"].items()),
          flush=True)
    clipping = time_clipping(settings)
    print("gradient clipping: " + ", ".join(f"{n} {s * 1e3:.1f} ms" for n, s in clipping["median_s"].items()),
          flush=True)
    machine = machine_info()
    history = append_history(settings.out_dir, "speed", history_row(settings, command, results, optimizer, clipping,
                                                                    machine, matmul["peak_tflops"]["bfloat16"]))
    extras = {"matmul": matmul, "profile": profile_rows, "optimizer": optimizer, "clipping": clipping,
              "history": history}
    table = markdown_table(results, settings, command, real_tokens, machine, extras)
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
        **extras,
    }
    save_results(out_dir, "speed", report, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
