"""End to end: the default `minbert train` recipe against the transformers peer, on the same task batches.

    python benchmarks/end_to_end.py                      # 20 warmup steps, then 100 timed steps
    python benchmarks/end_to_end.py --steps 40 --warmup 10
    python benchmarks/end_to_end.py --label "what changed"   # names this run's row in the history
    python benchmarks/end_to_end.py --minbert_flags='--torch_compile true'   # minBERT's side with more flags

minBERT: the command's own code path (its data, its recipe's model, `MultitaskTrainer` with the default
arguments: bf16 autocast where the machine multiplies bf16 natively, else fp32) runs `warmup + steps` optimizer steps, evaluation and saving off. Its steps are
the first steps of the default sampler's epoch: the tasks' batches shuffled together, SST's sentences and
a share of its phrases, grouped by length.

The peer: what a transformers user would train instead — one stock `BertForSequenceClassification` per
task from the same weights (cross-encoded pairs), each trained by a stock `Trainer` (minBERT's precision, batch
32, same learning rate) on exactly the rows of its task's batches above, batch by batch in the same order.

A step's time is the wall time between the ends of two consecutive optimizer steps, so data loading,
collation, forward, backward and the optimizer are all in it; only the steps after the warmup count (for
the peer: the same global steps, and never a model's first step). Real tokens are the non-padding tokens
each side feeds its encoder (the bi-encoded STS pair as two sentences, the peer's as one joint sequence).
Inference, the same way: the recipe's minBERT model (before training: speed does not depend on the weights)
scores the dev sets through `minbert evaluate`'s code path (`evaluate_model`: tokenization, batches of 128)
against the peer's three models under `Trainer.predict` (batches of 128), both in that precision, on the same
rows, tokenization included on both sides, each after an untimed pass over a few rows; rows/s.
Ratios: of real tokens/s over all timed steps, and of the median step times (which a few slow steps on either
side do not move).
Order: the matmul peak, inference and the peer's training run first, as in any process; minBERT's training
last, because its trainer has glibc keep freed memory for the rest of the process (trainers/cpu_memory.py),
which would speed up whatever ran after it.
After the timed steps, `--profile_steps` more minBERT steps run under torch.profiler (untimed: profiling
slows them): where the full step's time goes (forward and losses, backward, optimizer, the rest of the
Trainer's step) and the top operators by self CPU time.
Results: benchmarks/results/end_to_end.json and .md; `benchmarks/speed.py` measures the encoder step alone.
"""
import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import transformers
from accelerate.state import AcceleratorState
from torch.profiler import ProfilerActivity, profile, record_function
from transformers import (
    BertForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from default_recipe import default_recipe
from result_files import append_history, print_machine, run_header, save_results
from speed import matmul_peak, sequence_flops

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PEER_LABELS = {"sst": 5, "para": 2, "sts": 1}
WARMUP_ROWS = 16  # untimed rows each inference side scores first
# matmul_peak's key for each precision a run trains in.
PEAK_KEYS = {"bf16": "bfloat16", "fp32": "float32"}


class StepClock(TrainerCallback):
    """The wall time at the end of every optimizer step."""

    def __init__(self):
        self.ends = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.ends = [time.perf_counter()]

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())

    def step_seconds(self):
        """Seconds of step k (0-based): from the end of step k-1 (or the start of training) to its end."""
        return np.diff(self.ends)


FORWARD_LABEL = "## forward and losses ##"


class StepProfiler(TrainerCallback):
    """torch.profiler over the optimizer steps `first` .. `first + count - 1` (0-based)."""

    def __init__(self, first, count):
        self.first, self.count = first, count
        self.profiler, self.wall = None, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.first and self.count:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.__enter__()
            self.wall = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is not None and state.global_step == self.first + self.count:
            self.wall = time.perf_counter() - self.wall
            self.profiler.__exit__(None, None, None)

    def summary(self, top):
        """Per step: milliseconds of each phase of the step, and the top operators by self CPU time."""
        if self.profiler is None:
            return None
        events = self.profiler.key_averages()
        per_step = lambda us: round(us / self.count / 1e3, 1)  # noqa: E731
        phases = {
            "forward and losses": sum(e.cpu_time_total for e in events if e.key == FORWARD_LABEL),
            "backward": sum(e.cpu_time_total for e in events if e.key.startswith("autograd::engine::evaluate_function")),
            "optimizer step": sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#")),
            "zero_grad": sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.zero_grad#")),
        }
        wall_ms = self.wall * 1e3 / self.count
        phases_ms = {name: per_step(us) for name, us in phases.items()}
        phases_ms["rest (data, clipping, scheduler, callbacks)"] = round(wall_ms - sum(phases_ms.values()), 1)
        ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        operators = [{"operator": e.key, "self_cpu_ms_per_step": per_step(e.self_cpu_time_total),
                      "share": round(e.self_cpu_time_total / total, 4), "calls_per_step": round(e.count / self.count, 1)}
                     for e in ranked[:top]]
        return {"steps": self.count, "wall_ms_per_step": round(wall_ms, 1), "phases_ms": phases_ms,
                "top_operators": operators}


def prepare_minbert(data_dir, work_dir, total_steps, seed, profiler, extra_flags=()):
    """The default recipe's trainer (with `extra_flags`, `minbert train` flags, on top), set to train `total_steps`
    (`profiler`, a StepProfiler, watching some of them), untrained. Returns it, its step clock, each step's (task, row indices), the raw training rows, and
    what the inference comparison needs."""
    from trainers import MultitaskTrainer

    class LabelledTrainer(MultitaskTrainer):
        """Marks the forward pass and the losses for the profile (a no-op when no profiler runs)."""

        def compute_loss(self, *args, **kwargs):
            with record_function(FORWARD_LABEL):
                return super().compute_loss(*args, **kwargs)

    clock = StepClock()
    trainer, train, dev, base_path = default_recipe(
        data_dir, work_dir / "minbert", ["--max_steps", str(total_steps), "--logging_steps", str(total_steps),
                                         *extra_flags], seed,
        trainer_class=LabelledTrainer, callbacks=[clock, profiler])
    sampler = trainer.get_train_dataloader().batch_sampler
    sampler.set_epoch(0)
    if len(sampler) < total_steps:
        raise ValueError(f"the default epoch has {len(sampler)} steps, fewer than the {total_steps} asked")
    batches = [(batch.task, batch.indices - sampler.offsets[batch.task]) for (batch,) in sampler.plan(0)[:total_steps]]
    side = MinBertSide(trainer.model, trainer.processing_class, dev, base_path, trainer.args.learning_rate)
    return trainer, clock, batches, train, side


class MinBertSide(NamedTuple):
    """What the inference comparison and the peer need from the minBERT recipe."""

    model: torch.nn.Module
    tokenizer: object
    dev: dict
    base_path: str
    learning_rate: float


def time_inference(minbert, eval_rows, bf16, batch_size=128):
    """Rows/s scoring the first `eval_rows` dev rows of each task: minBERT through `evaluate_model`, the peer
    through `Trainer.predict` on one fresh `BertForSequenceClassification` per task (speed does not depend
    on the weights); each side's tokenization included."""
    from hf_minbert.data import tokenize_for_sequence_classification
    from hf_minbert.evaluation import evaluate_model

    dev = {task: rows.select(range(min(eval_rows, len(rows)))) for task, rows in minbert.dev.items()}
    rows = sum(len(r) for r in dev.values())
    model = minbert.model.eval()
    warmup = {task: rows.select(range(min(WARMUP_ROWS, len(rows)))) for task, rows in dev.items()}
    evaluate_model(model, minbert.tokenizer, warmup, batch_size=batch_size, bf16=bf16, progress=False)
    start = time.perf_counter()
    evaluate_model(model, minbert.tokenizer, dev, batch_size=batch_size, bf16=bf16, progress=False)
    ours = time.perf_counter() - start
    peer = 0.0
    with tempfile.TemporaryDirectory() as work:
        for task, num_labels in PEER_LABELS.items():
            if task not in dev:
                continue
            peer_model = BertForSequenceClassification.from_pretrained(minbert.base_path, num_labels=num_labels)
            args = TrainingArguments(output_dir=work, per_device_eval_batch_size=batch_size, bf16=bf16,
                                     use_cpu=not torch.cuda.is_available(), report_to="none", disable_tqdm=True)
            predictor = Trainer(model=peer_model, args=args, processing_class=minbert.tokenizer,
                                data_collator=DataCollatorWithPadding(minbert.tokenizer))
            start = time.perf_counter()
            encoded = tokenize_for_sequence_classification(dev[task], minbert.tokenizer, task, num_labels)
            tokenized = time.perf_counter()
            predictor.predict(encoded.select(range(min(WARMUP_ROWS, len(encoded)))))  # a fresh model's first pass
            start += time.perf_counter() - tokenized
            predictor.predict(encoded)
            peer += time.perf_counter() - start
    return {"rows": rows, "minbert_rows_per_s": round(rows / ours, 1), "peer_rows_per_s": round(rows / peer, 1),
            "ratio": round(peer / ours, 2)}


def sequence_lengths(rows, indices):
    """Real tokens of each sequence the encoder reads for these tokenized rows: the joint sequence, or both
    sides of a bi-encoded pair."""
    columns = [c for c in ("input_ids", "input_ids_a", "input_ids_b") if c in rows.column_names]
    picked = rows.select(indices)
    return [len(ids) for column in columns for ids in picked[column]]


def step_work(config, lengths_per_step):
    """(real tokens, matmul FLOPs of a training step on them) per step, as `speed.py` counts FLOPs."""
    tokens = np.array([sum(lengths) for lengths in lengths_per_step], dtype=np.int64)
    flops = np.array([sequence_flops(config, lengths, training=True) for lengths in lengths_per_step])
    return tokens, flops


def run_peer(raw_train, batches, base_path, work_dir, learning_rate, seed, bf16):
    """Each task's peer model trained on its batches in order; returns per-global-step seconds (NaN for a
    model's first step) and each global step's sequence lengths (empty for another task's steps)."""
    from hf_minbert.data import tokenize_for_sequence_classification

    tokenizer = transformers.AutoTokenizer.from_pretrained(base_path)
    seconds, lengths = np.full(len(batches), np.nan), [[] for _ in batches]
    for task, num_labels in PEER_LABELS.items():
        steps = [k for k, (t, _) in enumerate(batches) if t == task]
        if not steps:
            continue
        order = np.concatenate([batches[k][1] for k in steps])
        encoded = tokenize_for_sequence_classification(raw_train[task].select(order), tokenizer, task, num_labels)
        sizes = [len(batches[k][1]) for k in steps]
        model = BertForSequenceClassification.from_pretrained(base_path, num_labels=num_labels)
        args = TrainingArguments(
            output_dir=str(work_dir / f"peer_{task}"), per_device_train_batch_size=sizes[0], max_steps=len(steps),
            learning_rate=learning_rate, bf16=bf16, use_cpu=not torch.cuda.is_available(), save_strategy="no",
            eval_strategy="no", report_to="none", logging_steps=len(steps), disable_tqdm=True, seed=seed)
        clock = StepClock()
        trainer = _InOrderTrainer(model=model, args=args, train_dataset=encoded, processing_class=tokenizer,
                                  data_collator=DataCollatorWithPadding(tokenizer), callbacks=[clock], batch_sizes=sizes)
        trainer.train()
        step_seconds = clock.step_seconds()
        step_seconds[0] = np.nan  # a fresh model's first step: allocation, not training
        seconds[steps] = step_seconds
        bounds = np.cumsum([0, *sizes])
        for step, a, b in zip(steps, bounds, bounds[1:]):
            lengths[step] = [len(ids) for ids in encoded[int(a):int(b)]["input_ids"]]
    return seconds, lengths


class _InOrderTrainer(Trainer):
    """A stock Trainer that reads its rows in the order given, cut into the replayed batches' sizes (SST's
    batches packed by tokens hold different numbers of rows). One process: no sharding to prepare."""

    def __init__(self, *args, batch_sizes, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_sizes = batch_sizes

    def get_train_dataloader(self):
        dataset = self._remove_unused_columns(self.train_dataset, description="training")
        bounds = np.cumsum([0, *self.batch_sizes]).tolist()
        batches = [list(range(start, end)) for start, end in zip(bounds, bounds[1:])]
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=self.data_collator)


def on_the_peers_steps(ours, peer):
    """minBERT's step seconds on the global steps the peer counts (NaN where the peer's is: each of its models'
    first step, which is not training), so that both sides' figures come from the same steps."""
    return np.where(np.isnan(peer[:len(ours)]), np.nan, ours)


def summarize(seconds, tokens, flops, rows, warmup):
    timed = slice(warmup, None)
    counted = ~np.isnan(seconds[timed])
    total = float(np.nansum(seconds[timed]))
    return {"steps_timed": int(counted.sum()), "seconds": round(total, 2),
            "real_tokens_per_s": round(float(tokens[timed][counted].sum()) / total, 1),
            "matmul_flops_per_real_token": float(flops[timed][counted].sum() / tokens[timed][counted].sum()),
            "tflops": float(flops[timed][counted].sum()) / total / 1e12,
            "rows_per_s": round(float(rows[timed][counted].sum()) / total, 2),
            "median_step_ms": round(float(np.nanmedian(seconds[timed])) * 1e3, 1)}


def add_matmul_ceiling(report, peak_tflops):
    """Each side's MFU (matmul FLOP/s on real tokens over the peak of the run's precision), and the ceiling: the real-tokens ratio
    minBERT's step would reach against this peer if all its matmuls ran at the peak and nothing else took time.
    No implementation of the same step on this CPU can exceed it."""
    for side in ("minbert", "peer"):
        report[side]["mfu"] = report[side]["tflops"] / peak_tflops
    at_peak = peak_tflops * 1e12 / report["minbert"]["matmul_flops_per_real_token"]
    report["ceiling_ratio_real_tokens"] = round(at_peak / report["peer"]["real_tokens_per_s"], 2)


def markdown(report):
    ours, peer = report["minbert"], report["peer"]
    recipe = f"default recipe with `{report['minbert_flags']}`" if report.get("minbert_flags") else "default recipe"
    lines = [f"End to end, `minbert train`'s {recipe} against the transformers peer on the same {report['steps']} "
             f"task batches after {report['warmup']} warmup steps; {report['machine']}, torch {report['torch']}, "
             f"{report['threads']} threads.", "",
             "| | real tokens/s | rows/s | median step (ms) | steps timed | matmul TFLOP/s | MFU |",
             "|---|---:|---:|---:|---:|---:|---:|",
             f"| minBERT (`MultitaskTrainer`) | {ours['real_tokens_per_s']:.0f} | {ours['rows_per_s']:.1f} | "
             f"{ours['median_step_ms']:.0f} | {ours['steps_timed']} | {ours['tflops']:.3f} | {_percent(ours.get('mfu'))} |",
             f"| peer (`Trainer` + `BertForSequenceClassification` ×3) | {peer['real_tokens_per_s']:.0f} | "
             f"{peer['rows_per_s']:.1f} | {peer['median_step_ms']:.0f} | {peer['steps_timed']} | {peer['tflops']:.3f} | "
             f"{_percent(peer.get('mfu'))} |",
             f"| ratio (ours/peer) | {report['ratio_real_tokens']:.2f} | {report['ratio_rows']:.2f} | "
             f"{report['ratio_median_step']:.2f} (peer's/ours) | | | |", "",
             f"Precision: {report['precision']} on both sides (bf16 autocast where the machine multiplies bf16 "
             "natively, as `minbert train` chooses).", "",
             f"Task batches timed: {report['task_steps']}.", ""]
    if "ceiling_ratio_real_tokens" in report:
        peak = report["matmul"]["peak_tflops"][PEAK_KEYS[report["precision"]]]
        lines += [f"Matmul FLOPs are counted on real tokens as `speed.py` counts them; MFU is their rate over the "
                  f"measured {report['precision']} matmul peak, {peak:.2f} TFLOP/s. The ceiling: were every matmul of minBERT's step "
                  f"at that peak and nothing else to do, it would process "
                  f"{peak * 1e12 / ours['matmul_flops_per_real_token']:.0f} real tokens/s, "
                  f"**{report['ceiling_ratio_real_tokens']:.2f}×** the peer's: no implementation of the same "
                  "step on this CPU can reach a higher ratio.", ""]
    inference = report.get("inference")
    if inference:
        lines += [f"Inference on {inference['rows']} dev rows (up to {report['eval_rows']} per task), tokenization "
                  f"included, {report['precision']}, batches of 128:", "",
                  "| | rows/s |", "|---|---:|",
                  f"| minBERT (`evaluate_model`, as `minbert evaluate`) | {inference['minbert_rows_per_s']:.1f} |",
                  f"| peer (`Trainer.predict`, `BertForSequenceClassification` ×3) | {inference['peer_rows_per_s']:.1f} |",
                  f"| ratio (ours/peer) | {inference['ratio']:.2f} |", ""]
    profiled = report.get("profile")
    if profiled:
        lines += [f"Where minBERT's step goes: {profiled['steps']} more steps under torch.profiler (slower than the "
                  f"timed ones: {profiled['wall_ms_per_step']:.0f} ms a step), per step:", "",
                  "| phase | ms/step |", "|---|---:|"]
        lines += [f"| {phase} | {ms:.1f} |" for phase, ms in profiled["phases_ms"].items()]
        lines += ["", "| operator (self CPU time) | ms/step | share | calls/step |", "|---|---:|---:|---:|"]
        lines += [f"| `{e['operator']}` | {e['self_cpu_ms_per_step']:.1f} | {e['share']:.1%} | {e['calls_per_step']:g} |"
                  for e in profiled["top_operators"]]
        lines.append("")
    history = report.get("history")
    if history:
        lines += ["History (one row per change measured; each ratio within its own run):", "",
                  "| change | CPU | precision | minBERT real tokens/s | peer | ratio | median-step ratio | minBERT MFU | "
                  "peer MFU | ceiling | command |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        lines += [f"| {row['label']} | {row['machine']} | {row.get('precision', 'bf16')} | "
                  f"{row['minbert real tokens/s']:.0f} | {row['peer real tokens/s']:.0f} | {row['ratio']:.2f} | "
                  f"{_optional(row.get('median-step ratio'))} | {_percent(row['minbert mfu'])} | "
                  f"{_percent(row['peer mfu'])} | {'' if row['ceiling'] is None else format(row['ceiling'], '.2f')} | "
                  f"`{row['command']}` |" for row in history]
        lines.append("")
    lines.append(f"Command: `{report['command']}`")
    return "\n".join(lines) + "\n"


def history_row(report):
    """One run's figures for the history table, with its CPU (its MFU is a share of that machine's peak)."""
    ours, peer = report["minbert"], report["peer"]
    return {"label": report.get("label", "(unlabelled)"), "machine": report["machine"], "date": report["date"],
            "minbert real tokens/s": ours["real_tokens_per_s"], "peer real tokens/s": peer["real_tokens_per_s"],
            "ratio": report["ratio_real_tokens"], "median-step ratio": report["ratio_median_step"],
            "precision": report["precision"], "minbert mfu": ours.get("mfu"), "peer mfu": peer.get("mfu"),
            "ceiling": report.get("ceiling_ratio_real_tokens"), "command": report["command"]}


def _percent(value):
    return "" if value is None else f"{value:.1%}"


def _optional(value):
    return "" if value is None else f"{value:.2f}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=100, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=20, help="untimed optimizer steps before them")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval_rows", type=int, default=1000, help="dev rows per task for the inference comparison")
    parser.add_argument("--profile_steps", type=int, default=10, help="minBERT steps profiled after the timed ones (0: none)")
    parser.add_argument("--profile_top", type=int, default=15, help="operators listed in the profile")
    parser.add_argument("--out_dir", default=str(RESULTS_DIR))
    parser.add_argument("--label", default="", help="names this run's row in the history (what changed)")
    parser.add_argument("--minbert_flags", default="", help="`minbert train` flags added to minBERT's side, e.g. "
                        "--minbert_flags='--torch_compile true' (a candidate measured against the peer)")
    options = parser.parse_args(argv)
    if options.steps < 1 or options.warmup < 1 or options.eval_rows < 1:
        parser.error("--steps, --warmup and --eval_rows must be at least 1")
    if options.profile_steps < 0 or options.profile_top < 1:
        parser.error("--profile_steps must be at least 0 and --profile_top at least 1")
    owned = [flag for flag in ("--max_steps", "--task_sampling", "--num_train_epochs")
             if any(word == flag or word.startswith(flag + "=") for word in shlex.split(options.minbert_flags))]
    if owned:  # the steps replayed on the peer's side are the default sampler's, counted by --steps and --warmup
        parser.error(f"--minbert_flags: {owned[0]} is the script's to set (--steps, --warmup)")
    transformers.logging.set_verbosity_error()
    print_machine()
    timed_end = options.warmup + options.steps
    profiler = StepProfiler(first=timed_end, count=options.profile_steps)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        trainer, clock, batches, raw, minbert = prepare_minbert(
            options.data_dir, work, timed_end + options.profile_steps, options.seed, profiler,
            shlex.split(options.minbert_flags))
        batches = batches[:timed_end]  # the profiled steps are not timed
        config = transformers.AutoConfig.from_pretrained(minbert.base_path)  # both sides' encoder shapes
        tokenized = trainer.train_dataset
        ours_tokens, ours_flops = step_work(config, [sequence_lengths(tokenized.datasets[t], i) for t, i in batches])
        rows = np.array([len(i) for _, i in batches])
        # minBERT's trainer has glibc keep freed memory for the rest of the process (trainers/cpu_memory.py), so
        # everything a stock process would run without that comes first: the peak, inference, the peer.
        bf16 = bool(trainer.args.bf16)  # minbert train's choice for this machine; the peer runs in the same
        peak = matmul_peak(config, int(np.median(ours_tokens)), repeats=10)
        inference = time_inference(minbert, options.eval_rows, bf16)
        peer_s, peer_lengths = run_peer(raw, batches, minbert.base_path, work, minbert.learning_rate, options.seed, bf16)
        peer_tokens, peer_flops = step_work(config, peer_lengths)
        # The peer's Trainers replaced accelerate's process-wide state (its torch.compile setting among it): minBERT's
        # trainer sets it up again from its own arguments before it trains.
        AcceleratorState._reset_state(reset_partial_state=True)
        trainer.create_accelerator_and_postprocess()
        trainer.train()
        ours_s = clock.step_seconds()[:timed_end]
        print(f"minBERT: {np.sum(ours_s[options.warmup:]):.1f} s for {options.steps} steps", flush=True)
    same_steps = on_the_peers_steps(ours_s, peer_s)
    report = {**run_header("end_to_end.py", argv), "steps": options.steps, "warmup": options.warmup,
              "precision": "bf16" if bf16 else "fp32", "minbert_flags": options.minbert_flags,
              "eval_rows": options.eval_rows,
              "task_steps": {t: sum(1 for task, _ in batches[options.warmup:] if task == t) for t in PEER_LABELS},
              "minbert": summarize(same_steps, ours_tokens, ours_flops, rows, options.warmup),
              "peer": summarize(peer_s, peer_tokens, peer_flops, rows, options.warmup),
              "inference": inference, "matmul": peak,
              "profile": profiler.summary(options.profile_top),
              "minbert_step_seconds": ours_s.tolist(), "peer_step_seconds": peer_s.tolist()}
    report["ratio_real_tokens"] = round(report["minbert"]["real_tokens_per_s"] / report["peer"]["real_tokens_per_s"], 2)
    report["ratio_rows"] = round(report["minbert"]["rows_per_s"] / report["peer"]["rows_per_s"], 2)
    report["ratio_median_step"] = round(report["peer"]["median_step_ms"] / report["minbert"]["median_step_ms"], 2)
    add_matmul_ceiling(report, peak["peak_tflops"][PEAK_KEYS[report["precision"]]])
    report["label"] = options.label or "(unlabelled)"
    report["history"] = append_history(options.out_dir, "end_to_end", history_row(report))
    table = markdown(report)
    print("\n" + table)
    save_results(options.out_dir, "end_to_end", report, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
