"""Dev-set quality of `minbert train` against a plain transformers peer, with ablation rows.

    python benchmarks/quality.py --rows default,peer          # the headline comparison
    python benchmarks/quality.py --rows no_smart,mnr,...       # ablations (each a full training run)
    python benchmarks/quality.py --list                         # what each row runs
    python benchmarks/quality.py --epochs 1 --rows default,...  # a suite at a smaller budget


Each row trains from the embedded all-MiniLM-L6-v2 on ../shared/data and is scored on the three dev
sets. Results accumulate in benchmarks/results/quality.json (a row re-run replaces its old result), and
the markdown table benchmarks/results/quality.md is rewritten from all rows each time. `--epochs N` trains
every row (the peer too) for N epochs instead of the defaults' (3 for `minbert train` and for the
peer) and keeps its own suite, quality-Nepoch.json and .md, in runs/quality-Nepoch: rows compare only
within one suite; `--suite NAME` starts another (e.g. a budget's suite measured on new data). Rows run one
after another: two trainings at once on a 2-core machine run far slower than the same two in turn.

The peer is what a transformers user would do without this project: one
AutoModelForSequenceClassification per task from the same weights, Trainer defaults (lr 5e-5, batch 32,
3 epochs), bf16 — cross-encoded pairs, CE for sst and para, MSE for sts.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from result_files import machine_name, save_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# row name -> (description, extra `minbert train` flags on top of the defaults)
TRAIN_ROWS = {
    "default": ("minbert train defaults: course files + treebank phrases + Quora extra pairs, 3 epochs, every SST "
                "sentence and 16k phrases an epoch, SST batches packed up to 768 tokens, proportional sampling, "
                "CerBERTus k=2, bi-encoded STS, no SMART", []),
    "multitask": ("one shared encoder for all tasks (CerBERTus k=0)", ["--architecture", "multitask"]),
    "no_smart": ("SMART off (--smart_weight 0), the default's own setting", ["--smart_weight", "0"]),
    "smart_sst": ("SMART λ=1 on sst (seed 000's best λ for SST), its passes in fp32", ["--smart_weight", "sst=1"]),
    # bf16 autocast is the default's fast path (docs/speed.md): do its roundings cost quality? The same recipe
    # in fp32 (half an epoch, three seeds: suite quality-0.5epoch-mnr).
    "fp32": ("the default in fp32: no bf16 autocast (--bf16 false)", ["--bf16", "false"]),
    # The seeds' MNR loss, beside the default (half an epoch, three seeds: its own suite quality-0.5epoch-mnr).
    "mnr": ("defaults + MNR loss (weight 1) on Quora's paraphrase pairs", ["--mnr_weight", "1"]),
    "sts_bi": ("bi-encoded STS head (cosine, seed 001)", ["--pair_encoding", "sts=bi"]),
    "sts_cross": ("cross-encoded STS head without the cosine feature", ["--pair_encoding", "sts=cross", "--cosine_feature", "sts=false"]),
    "sts_cross_cosine": ("cross-encoded STS head reading the bi-encoder cosine (--pair_encoding sts=cross)",
                         ["--pair_encoding", "sts=cross"]),
    "triple": ("Triple-BERT: one encoder per task (seeds 000/002)", ["--architecture", "triple"]),
    "static": ("static (frozen) encoder beside the tuned one (seed 002)", ["--static_encoder"]),
    # LoRA learns at the usual LoRA rate: at the full fine-tuning rate (5e-5) adapters barely move in one
    # epoch (benchmarks/RESULTS.md, the 1-epoch suite).
    "lora_per_task": ("per-task LoRA r=8 on one shared frozen encoder (k=0), lr 5e-4",
                      ["--architecture", "multitask", "--peft", "lora", "--lora_r", "8", "--peft_per_task",
                       "--learning_rate", "5e-4"]),
    "lora_per_task_lr5e-5": ("per-task LoRA r=8 on the recipe's CerBERTus, at the fine-tuning rate 5e-5",
                             ["--peft", "lora", "--lora_r", "8", "--peft_per_task"]),
    "all_tasks": ("one batch of every task per step, losses summed (seeds 000/004)", ["--task_sampling", "all_tasks"]),
    "pcgrad": ("all_tasks + PCGrad", ["--task_sampling", "all_tasks", "--pcgrad", "true"]),
    "sampling_round_robin": ("round-robin sampling, down to the smallest task (seed 001)", ["--task_sampling", "round_robin"]),
    "sampling_temperature": ("temperature sampling, T=2", ["--task_sampling", "temperature", "--sampling_temperature", "2"]),
    "sampling_equal_split": ("equal-split schedule (seed 003)", ["--task_sampling", "equal_split"]),
    "sampling_sequential": ("sequential, task after task (seed 000)", ["--task_sampling", "sequential"]),
    # Longer or faster schedules than the default. epochs_6 and epochs_8 are about the budget itself, so they
    # keep their epoch counts in any suite.
    "epochs_6": ("6 epochs", ["--num_train_epochs", "6"]),
    "epochs_8": ("8 epochs", ["--num_train_epochs", "8"]),
    "lr_1e-4": ("defaults at peak learning rate 1e-4 instead of 5e-5", ["--learning_rate", "1e-4"]),
    # all-MiniLM-L6-v2 was trained as a sentence encoder on mean-pooled embeddings, not on its pooler.
    "head_pooling_mean": ("sst and para heads read mean-pooled tokens instead of the pooler",
                          ["--head_pooling", "sst=mean,para=mean"]),
    # Seed 002's layer-wise learning-rate decay: each layer below the top learns at 0.9× the rate of the one
    # above it, so the lower layers of the pretrained encoder move less.
    "llrd_0.9": ("layer-wise learning-rate decay 0.9 toward the input (seed 002)", ["--layerwise_lr_decay", "0.9"]),
    # SMART as the seeds found it best (λ 2-15) on every task, at an ε that bf16 does not round away: the
    # default ε = 1e-5 is ~0.02% of a word-embedding entry (std 0.056), below bf16's 8 mantissa bits.
    "smart_strong": ("SMART λ=5 on every task at ε=1e-3", ["--smart_weight", "5", "--smart_epsilon", "1e-3"]),
    # Twice the optimizer steps per epoch at the same rate: small data sets often prefer small batches.
    "batch_16": ("per-task batches of 16 instead of 32", ["--per_device_train_batch_size", "16"]),
    # Members for the ensemble that differ in more than their recipe: every other row shares seed 42, hence
    # its heads' initialization and its batch order (the seeds also measure the run-to-run noise).
    "sts_bi_seed1": ("sts_bi trained with seed 1 (an ensemble member)", ["--pair_encoding", "sts=bi", "--seed", "1"]),
    "sts_bi_seed2": ("sts_bi trained with seed 2 (an ensemble member)", ["--pair_encoding", "sts=bi", "--seed", "2"]),
    # The training data: the default reads the treebank's phrases and Quora's extra pairs when the data folder
    # has them; these rows take each source away, or both (the course's files, at the former 6-epoch budget).
    "former_default": ("the recipe before the extra data: the course's train files only, 6 epochs, SMART λ=1 on sst "
                       "(its passes now in fp32, so slower than it was)",
                       ["--extra_training_files", "false", "--num_train_epochs", "6", "--smart_weight", "sst=1"]),
    "phrases_only": ("extra data: the treebank's phrases, not Quora's extra pairs",
                     ["--train_sources", "para=quora-train.csv"]),
    "quora_extra_only": ("extra data: Quora's extra pairs, not the treebank's phrases",
                         ["--train_sources", "sst=ids-sst-train.csv"]),
    # How much of an epoch the treebank's phrases take: here the cap applies to SST's rows as one pool, so the
    # 8.5k course sentences are ~5% of its 24k rows an epoch instead of being read whole.
    "sst_cap_24k_pooled": ("SST capped at 24k rows an epoch drawn from sentences and phrases as one pool",
                           ["--task_epoch_rows", "sst=24000", "--first_source_every_epoch", "false"]),
    # The project's machines differ in CPU (an Intel Xeon with AMX, an AMD EPYC without): the default's seed 42
    # again on the other kind, so that rows measured there have an anchor on their own machine.
    "default_amd_epyc": ("the default (seed 42) run on the AMD EPYC, where phrases_only and quora_extra_only ran at "
                         "the full budget", []),
    # On a CPU with AMX the default's bf16 products round the token matrix up to a few row counts (spare zero rows,
    # other dropout draws): the default's seed 42 there, against its seeds' spread.
    "default_xeon_amx": ("the default (seed 42) on an Intel Xeon with AMX, where its bf16 products round the token "
                         "matrix to 8 row counts per power of two", []),
    # The default before SST's batches were packed by tokens (its three seeds also ran on torch's dropout, before
    # minBERT drew its own CPU mask): batches of 32 rows, 1854 steps an epoch against 1529.
    "rows_32": ("the default with SST in batches of 32 rows (--batch_tokens off)", ["--batch_tokens", ""]),
    # The other side of sst_phrases_48k (SST -0.006) and of no phrases at all (SST -0.024): half the phrases an
    # epoch, a sixth fewer steps. Is 16k past what SST needs?
    "sst_phrases_8k": ("8k treebank phrases an epoch instead of 16k", ["--task_epoch_rows", "sst=8000"]),
    # Every phrase once over the three epochs (48k of the treebank's ~144k phrases an epoch instead of 16k):
    # do the phrases raise SST's ceiling, or only how fast it is reached?
    "sst_phrases_48k": ("48k treebank phrases an epoch instead of 16k (every phrase once in 3 epochs)",
                        ["--task_epoch_rows", "sst=48000"]),
    # CoSENT (Su 2022) beside the STS head's MSE: the head's loss puts each cosine at label / 5, CoSENT orders the
    # pairs of a batch by their labels, which is what the correlation reads.
    "cosent": ("CoSENT ranking loss (weight 1, scale 20) on STS's pairs beside the head's MSE", ["--cosent_weight", "1"]),
    # The default after its AdamW moved from torch.compile and foreach ops to the project's C kernel, which rounds
    # differently in the last place: do the scores stay within the seed spread?
    "default_adamw_kernel": ("the default (seed 42) with AdamW's C kernel, on the AMD EPYC beside default_amd_epyc", []),
    # The token matrix's row count rounded up to 8 values per power of two (faster on CPU: fewer oneDNN kernel
    # shapes; benchmarks/token_rows.py): do its spare rows, which change the dropout draws, change the scores?
    # Where the CPU has AMX the default (bf16) already rounds: this row differs from it only on other CPUs.
    "token_rows_8": ("the default with token rows rounded to 8 steps per octave (MINBERT_CPU_ROW_STEPS=8)", []),
    # The default's dev scores still rose in its third epoch (SST 0.467, 0.491, 0.501): does a fourth, with the
    # learning rate decaying over four, raise them? It fits the hour only where three take under 45 minutes.
    "epochs_4": ("the default for 4 epochs instead of 3", ["--num_train_epochs", "4"]),
    # Does the third epoch pay for its nine minutes? (The same command is the curriculum rows' first stage.)
    "epochs_2": ("the default for 2 epochs instead of 3", ["--num_train_epochs", "2"]),
    # Quora's cross-encoder reads "[CLS] a [SEP] b [SEP]": the default model answers differently for 6% of the dev
    # pairs read the other way round. Each pair in a random order every time it is read, at no cost a step.
    "pair_swap": ("Quora's pairs read in a random order each time (--pair_swap_probability para=0.5)",
                  ["--pair_swap_probability", "para=0.5"]),
    # pair_swap with both orders averaged at prediction time became the default: the default command, seed 42,
    # trains what pair_swap trained (the averaging acts in eval mode only) and scores it the new way.
    "default_both_orders": ("the default since Quora's pairs are read in both orders (pair_swap + "
                            "average_pair_orders para=true)", []),
    # The embeddings are 11.7M of the 30.1M parameters and a dense 47 MB gradient every step; the base model's
    # word vectors were trained on a billion sentence pairs, more than these tasks can teach them.
    "freeze_embeddings": ("the default with the embedding layer frozen (--freeze_embeddings true)",
                          ["--freeze_embeddings", "true"]),
    # Training rows equal to a dev row (17 of sts-train.csv's, one of ids-sst-train.csv's) are dropped since the
    # rows above were measured: today's default command, on that data.
    "default_no_dev_repeats": ("the default since training rows equal to dev rows are dropped", []),
    # The rows named `default` in the full-budget suite ran before pair order became the default: this is their
    # recipe under today's defaults, so that they can be re-run as they were.
    "given_order": ("the default before pair order: Quora's pairs read and answered in their given order",
                    ["--pair_swap_probability", "", "--average_pair_orders", "para=false"]),
    # Duplicates of duplicates are duplicates: Quora's labels join its questions into groups that imply pairs
    # nobody labelled (hf_minbert/data/implied_pairs.py), about 7k beside the 28.7k labelled ones.
    "implied_pairs": ("the default plus the Quora pairs its labels imply, at most 2 new duplicates per question of "
                      "a group (--implied_pairs_per_question 2)", ["--implied_pairs_per_question", "2"]),
    # SST's five classes are noisy neighbours (a 1 and a 2 differ by a reader's taste): softer targets.
    "label_smoothing": ("the default with label smoothing 0.1 on the classification heads (--label_smoothing_factor "
                        "0.1: SST's targets (1 − ε)·one-hot + ε/5, Quora's y·(1 − ε) + ε/2)",
                        ["--label_smoothing_factor", "0.1"]),
    # The task heads start from random weights while the encoder starts trained: at the encoder's rate the heads
    # may be what limits the first epoch, the one whose scores trail most.
    "head_lr_10": ("the default with the task heads at 10x the learning rate (--head_lr_multiplier 10)",
                   ["--head_lr_multiplier", "10"]),
    # Three epochs over all the data end with SST still rising: does less encoder dropout let the small model fit
    # faster? (MiniLM's checkpoint says 0.1.)
    "hidden_dropout_0.05": ("the default with the encoder's dropout at 0.05 instead of the checkpoint's 0.1 "
                            "(--hidden_dropout_prob 0.05)", ["--hidden_dropout_prob", "0.05"]),
    # Four in ten treebank phrases are one to three words long, and 61-74% of those are neutral, against 21% of
    # the dev sentences: the 16k phrases an epoch drawn from five words up are more like the sentences scored.
    "min_phrase_5": ("the default with treebank phrases of at least 5 words (--min_phrase_tokens 5: 78k of the 159k)",
                     ["--min_phrase_tokens", "5"]),
    # all-MiniLM-L6-v2 learned its embeddings partly from Quora's duplicate questions: its cosine of the two
    # questions is a paraphrase detector before any fine-tuning. The cross-encoded Quora head reading it too
    # (as the STS cross head did) starts from that detector.
    "para_cosine": ("the default with the Quora head also reading the bi-encoder cosine of the two questions "
                    "(--cosine_feature para=true)", ["--cosine_feature", "para=true"]),
    # The former default read each STS pair six times (6 epochs on the course files) and scored STS r 0.882; the
    # default reads it three times and scores 0.879 ± 0.001: does STS want a larger share of the shared layers'
    # updates? (Its loss weighted 2, at no cost a step.)
    "sts_weight_2": ("the default with STS's loss weighted 2 (--task_weights sts=2)", ["--task_weights", "sts=2"]),
    # STS's weight 2 doubled the size of its steps and left STS r where it was; the former default's 0.882 came with
    # twice the STS steps (six epochs): does reading each pair twice an epoch, each time in a new batch, lift it?
    "sts_passes_2": ("the default with each STS pair read twice an epoch (--task_epoch_passes sts=2)",
                     ["--task_epoch_passes", "sts=2"]),
    # The peak rate 5e-5 was chosen on the course's files at six epochs; the default now trains three epochs over
    # twice the rows, its first epoch trailing most (overall 0.745, 0.760, 0.764): does a faster rate get further
    # in the same steps?
    "lr_8e-5": ("the default at peak learning rate 8e-5 instead of 5e-5 (--learning_rate 8e-5)",
                ["--learning_rate", "8e-5"]),
    # The other side of lr_8e-5, which lifted STS r alone: is the default's rate already past SST's and Quora's best?
    "lr_3e-5": ("the default at peak learning rate 3e-5 instead of 5e-5 (--learning_rate 3e-5)",
                ["--learning_rate", "3e-5"]),
    # The third epoch is Quora's (two epochs: Quora -0.008, three seeds) and a slower rate cost it 0.009: Quora looks
    # short of steps where SST and STS are not. Reading each Quora pair twice an epoch, in a fresh order and batch.
    "para_passes_2": ("the default with each Quora pair read twice an epoch (--task_epoch_passes para=2)",
                      ["--task_epoch_passes", "para=2"]),
    # AdamW's decoupled decay pulls every weight toward zero, away from the pretrained values: 0.01 (the default) is
    # BERT's fine-tuning value, 0.1 RoBERTa's (the seeds used 0 to 1e-3). Does a stronger pull regularize?
    "weight_decay_0.1": ("the default with AdamW weight decay 0.1 instead of 0.01 (--weight_decay 0.1)",
                         ["--weight_decay", "0.1"]),
    # SST's five grades are ordered: cross-entropy charges mass on the far end as much as on a neighbour, the
    # squared EMD beside it charges by distance. (Four in five of a default-like model's dev errors are one grade off.)
    "ordinal": ("the default with the squared-EMD ordinal loss (weight 1) on SST's grades beside its cross-entropy "
                "(--ordinal_weight 1)", ["--ordinal_weight", "1"]),
    # Every measured run trained without warmup: transformers 5 dropped TrainingArguments.warmup_ratio, so the
    # recipe's 6% was never applied. BERT's fine-tuning recipes warm up; does this one gain from it?
    "warmup_6pct": ("the default with a linear warmup over the first 6% of the steps (--warmup_ratio 0.06)",
                    ["--warmup_ratio", "0.06"]),
}
# Rows measured under seeds 1 and 2 beside their own (seed 42): the spread of identical runs, against which every
# other row's Δ is read. Each `<row>_seed<N>` is the row's command with `--seed N`.
SEEDS = (1, 2)
SEEDED_TRAIN_ROWS = ("default", "given_order", "rows_32", "smart_sst", "cosent", "token_rows_8", "epochs_2", "pair_swap",
                     "implied_pairs", "label_smoothing", "triple", "lr_8e-5", "sts_passes_2", "ordinal", "para_passes_2",
                     "mnr", "fp32", "freeze_embeddings", "default_no_dev_repeats", "warmup_6pct", "default_xeon_amx")


def _with_seed_rows(rows):
    """The rows, each seeded one followed by its seed rows (so tables list them together)."""
    listed = {}
    for name, (description, flags) in rows.items():
        listed[name] = (description, flags)
        if name in SEEDED_TRAIN_ROWS:
            listed.update({f"{name}_seed{seed}": (f"{name} with --seed {seed}", [*flags, "--seed", str(seed)])
                           for seed in SEEDS})
    return listed


TRAIN_ROWS = _with_seed_rows(TRAIN_ROWS)
# Rows that are one recipe under several seeds: the table adds their mean and standard deviation.
SEED_GROUPS = {row: (row, *(f"{row}_seed{seed}" for seed in SEEDS))
               for row in (*SEEDED_TRAIN_ROWS, "default_both_orders", "curriculum")}
# Rows that run `minbert train` under extra environment variables (recorded in the row's command).
ROW_ENVIRONMENT = {row: {"MINBERT_CPU_ROW_STEPS": "8"} for row in SEED_GROUPS["token_rows_8"]}
# Rows built from other rows' outputs (they must run after them).
COMPOSITE_ROWS = {
    "mlm": "further MLM pretraining on the task texts, then the default fine-tuning (seeds 001/002)",
    "ensemble": "greedy per-task ensemble of every trained row's model (seeds 000/002)",
    "distilled": "one default-size model distilled from the ensemble",
    "ensemble_all": "every trained row's model averaged with equal weights (dev chooses nothing)",
    "distilled_all": "one default-size model distilled from ensemble_all",
    "distilled_oof": ("one default-size model distilled from out-of-fold teachers: per fold of two, seeds 42 and 1 "
                      "trained on the other fold's rows and averaged label the rows they never saw"),
    "ensemble_folds": ("distilled_oof's four half-data teachers averaged with equal weights (bagging: members "
                       "that saw different rows)"),
}
# Rows that score another row's kept checkpoints with extra `minbert evaluate` flags and keep the one with the
# best overall score, as the trainer keeps its best: what that row's training gives under a setting that acts
# in eval mode only (the training, and so every checkpoint, is the same).
RESCORED_ROWS = {
    f"default_both_orders_seed{seed}": (f"pair_swap_seed{seed}", ["--average_pair_orders", "para"]) for seed in SEEDS
}
# A curriculum from phrases to sentences, in two `minbert train` runs: the default's first two epochs (the treebank
# phrases beside the sentences), then one epoch whose SST rows are the course's sentences alone, the kind of text
# the dev and test sets hold. The second run restarts its schedule at the rate the default's own schedule has when
# its third epoch starts (about a third of the peak, decaying to 0, no warmup). Each curriculum row: its first
# stage, an `epochs_2` row (recorded as that row too), and the seed flags of both stages.
CURRICULUM_ROWS = {"curriculum": ("epochs_2", []),
                   **{f"curriculum_seed{seed}": (f"epochs_2_seed{seed}", ["--seed", str(seed)]) for seed in SEEDS}}
CURRICULUM_SENTENCE_EPOCH = ["--num_train_epochs", "1", "--train_sources", "sst=ids-sst-train.csv",
                             "--learning_rate", "1.8e-5", "--warmup_ratio", "0"]
COMPOSITE_ROWS.update({row: (f"{first}, then 1 epoch on SST's sentences alone at a third of the peak rate"
                             + (f" (--seed {flags[1]})" if flags else ""))
                       for row, (first, flags) in CURRICULUM_ROWS.items()})
COMPOSITE_ROWS.update({row: f"{source}'s checkpoints scored with {' '.join(flags)} (the default's training and "
                            f"evaluation for --seed {row[-1]})" for row, (source, flags) in RESCORED_ROWS.items()})
# The default's own seeds, averaged: what three times the default's training buys without changing its recipe.
# And the default with a cross-encoded STS model: a bi- and a cross-encoder err differently, the seeds alike.
ENSEMBLE_MEMBERS = {"ensemble_default_seeds": SEED_GROUPS["default_no_dev_repeats"],
                    "ensemble_sts_bi_cross": ("default_no_dev_repeats", "sts_cross_cosine")}
COMPOSITE_ROWS["ensemble_default_seeds"] = (f"the default's three seeds ({', '.join(ENSEMBLE_MEMBERS['ensemble_default_seeds'])}) "
                                            "averaged with equal weights: three times its training")
COMPOSITE_ROWS["ensemble_sts_bi_cross"] = ("the default (bi-encoded STS) and sts_cross_cosine (cross-encoded STS) averaged "
                                           "with equal weights")
# The same seeds' weights averaged into one model (a uniform "model soup", Wortsman et al. 2022): the members
# start from the same pretrained encoder, so their weights may average into one model of the ensemble's quality.
SOUP_MEMBERS = {"soup_default_seeds": SEED_GROUPS["default_no_dev_repeats"]}
COMPOSITE_ROWS["soup_default_seeds"] = ("one model whose weights are the mean of the default's three seeds' "
                                        "(a uniform model soup), scored as the default is")
# Each ensemble row and its `minbert ensemble --selection`.
ENSEMBLE_SELECTION = {"ensemble": "greedy", "ensemble_all": "all", "ensemble_folds": "all",
                      **{row: "all" for row in ENSEMBLE_MEMBERS}}
# Each distilled row and the ensemble row whose gain it should keep (distilled_oof's own teachers are fold
# ensembles of the default recipe; ensemble_all is the same kind of average over models that saw every row).
DISTILLED_FROM = {"distilled": "ensemble", "distilled_all": "ensemble_all", "distilled_oof": "ensemble_all"}
# distilled_oof's teachers: per fold, these seeds of the default recipe trained on the other folds' rows.
OOF_FOLDS, OOF_SEEDS = 2, (42, 1)
ROWS = {
    **{name: desc for name, (desc, _) in TRAIN_ROWS.items()},
    **COMPOSITE_ROWS,
    "peer": "transformers peer: 3 AutoModelForSequenceClassification, Trainer defaults",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="default,peer", help="comma-separated rows (see --list)")
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--epochs", type=float, default=None, help="train every row this many epochs (a separate suite)")
    parser.add_argument("--suite", default=None,
                        help="name the suite (default: quality, or quality-Nepoch with --epochs): a new name starts an "
                             "empty one, so rows measured on another recipe or data stay in theirs")
    parser.add_argument("--work_dir", default=None, help="where models are trained (default: runs/<suite>)")
    parser.add_argument("--out_dir", default=None, help="where the suite's <suite>.json and .md are read and written "
                                                        "(default: benchmarks/results; elsewhere, models go under "
                                                        "<out_dir>/runs unless --work_dir says)")
    parser.add_argument("--max_train_samples", type=int, default=None, help="cap rows per task (quick checks; recorded)")
    parser.add_argument("--extra", default="", help="extra `minbert train` flags for every training row")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--render", action="store_true", help="only rewrite the suite's markdown table from its JSON")
    args = parser.parse_args(argv)
    if args.epochs is not None and not 0 < args.epochs < float("inf"):  # also refuses NaN
        parser.error(f"--epochs must be a positive number, got {args.epochs}")
    if args.max_train_samples is not None and args.max_train_samples < 1:
        parser.error(f"--max_train_samples must be at least 1, got {args.max_train_samples}")
    args.out_dir = Path(args.out_dir) if args.out_dir else RESULTS
    if args.list:
        width = max(map(len, ROWS))
        for name, description in ROWS.items():
            print(f"{name:<{width}}  {description}")
        return 0
    args.suite = args.suite or ("quality" if args.epochs is None else f"quality-{args.epochs:g}epoch")
    if args.render:
        if not (args.out_dir / f"{args.suite}.json").exists():
            parser.error(f"--render: no suite {args.suite!r} in {args.out_dir} (its {args.suite}.json)")
        _save_results(_load_results(args), args)
        print(render_table(_load_results(args)))
        return 0
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; known: {', '.join(ROWS)}")
    # Results kept elsewhere keep their models elsewhere too: the suite's own folders feed its composite rows.
    args.work_dir = args.work_dir or str(ROOT / "runs" / args.suite if args.out_dir == RESULTS else
                                         args.out_dir / "runs" / args.suite)
    results, failed = _load_results(args), []
    capped_over_full = [row for row in rows if args.max_train_samples and row in results
                        and not results[row].get("max_train_samples")]
    if capped_over_full:
        parser.error(f"--max_train_samples would replace the full-data result of {', '.join(capped_over_full)} in "
                     f"{args.out_dir / (args.suite + '.json')}: give quick checks a --suite of their own (its "
                     "results and models apart)")
    runner = {"peer": run_peer, "mlm": run_mlm_row, **{name: run_ensemble_row for name in ENSEMBLE_SELECTION},
              "distilled": run_distilled_row, "distilled_all": run_distilled_row, "distilled_oof": run_distilled_oof_row,
              **{name: run_rescored_row for name in RESCORED_ROWS}, **{name: run_curriculum_row for name in CURRICULUM_ROWS},
              **{name: run_soup_row for name in SOUP_MEMBERS}}
    for row in rows:
        print(f"=== {row}: {ROWS[row]}", flush=True)
        cpu_before = _cpu_times()
        try:
            result = runner[row](args, results, row) if row in runner else run_training_row(row, args)
        except (subprocess.CalledProcessError, SystemExit) as error:  # SystemExit: a composite row's missing parts
            # A suite runs for hours unattended: one failed row must not cost the rows after it.
            print(f"=== {row} FAILED: {error}", file=sys.stderr, flush=True)
            failed.append(row)
            continue
        steal = _steal_share(cpu_before, _cpu_times())
        if steal is not None:  # a row's minutes are only comparable when the host took little of the CPU
            result["cpu_steal_share"] = steal
        results[row] = result
        _save_results(results, args)
        print(json.dumps(result, indent=2), flush=True)
    print(render_table(results))
    if failed:
        print(f"failed rows (see their output above): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def run_training_row(row, args, extra_flags=(), command="train"):
    out = Path(args.work_dir) / row
    row_flags = TRAIN_ROWS.get(row, ("", []))[1]
    # A suite's --epochs sets every row's budget, except where the row is about the budget itself.
    epoch_flags = [] if "--num_train_epochs" in [*row_flags, *extra_flags] else _epoch_flags(args)
    # A re-run replaces the row's model: the result it came with is replaced too.
    flags = ["--data_dir", args.data_dir, "--output_dir", str(out), "--overwrite_output_dir", "true", *row_flags,
             *extra_flags, *epoch_flags, *args.extra.split()]
    if args.max_train_samples:
        flags += ["--max_train_samples", str(args.max_train_samples)]
    environment = ROW_ENVIRONMENT.get(row, {})
    seconds = _minbert(command, flags, environment)
    metrics = json.loads((out / "metrics.json").read_text())
    prefix = "".join(f"{name}={value} " for name, value in environment.items())
    return _result(metrics, seconds, command=f"{prefix}minbert {command} " + " ".join(flags),
                   max_train_samples=args.max_train_samples, model_dir=out)


def _epoch_flags(args, flag="--num_train_epochs"):
    return [] if args.epochs is None else [flag, f"{args.epochs:g}"]


def run_mlm_row(args, results, row="mlm"):
    import torch

    mlm_dir = Path(args.work_dir) / "mlm_pretrained"
    # One epoch over the distinct task sentences at the fine-tuning batch size, in bf16.
    pretrain = ["--data_dir", args.data_dir, "--output_dir", str(mlm_dir), "--num_train_epochs", "1",
                "--per_device_train_batch_size", "32", "--bf16", "true", "--save_strategy", "no", "--report_to", "none",
                *(["--use_cpu", "true"] if not torch.cuda.is_available() else [])]
    if args.max_train_samples:
        pretrain += ["--max_train_texts", str(args.max_train_samples)]
    seconds = _minbert("pretrain-mlm", pretrain)
    result = run_training_row("mlm", args, ["--model_name_or_path", str(mlm_dir)])
    result["minutes"] = round(result["minutes"] + seconds / 60, 1)
    result["command"] = "minbert pretrain-mlm " + " ".join(pretrain) + " && " + result["command"]
    return result


def run_ensemble_row(args, results, row="ensemble"):
    candidates = _ensemble_candidates(args, results, row)
    if len(candidates) < 2:
        needed = "distilled_oof's teachers" if row == "ensemble_folds" else "at least two trained rows"
        raise SystemExit(f"the {row} row needs {needed} in --work_dir; run them first")
    out = Path(args.work_dir) / row
    flags = ["--selection", ENSEMBLE_SELECTION[row], "--models", *candidates, "--output_dir", str(out),
             "--overwrite_output_dir", "--data_dir", args.data_dir, "--bf16"]  # a re-run replaces the row's ensemble
    seconds = _minbert("ensemble", flags)
    metrics = json.loads((out / "metrics.json").read_text())
    result = _result(metrics, seconds, command="minbert ensemble " + " ".join(flags), max_train_samples=None, model_dir=out)
    selection = json.loads((out / "ensemble_selection.json").read_text())
    if selection.get("held_out_overall"):  # the same selection scored on dev rows that did not choose it (2-fold)
        result["held_out_overall"] = selection["held_out_overall"]
    # How alike the candidates err, per task (mean over pairs of the correlation of their dev errors).
    result["error_correlation"] = {task: record["error_correlation"]["mean"] for task, record in selection.get("tasks", {}).items()
                                   if record.get("error_correlation")}
    return result


def _is_single_model(model_dir):
    """A trained row's folder holding one model (per-task LoRA exports an ensemble, which cannot be a member)."""
    config = model_dir / "config.json"
    return config.exists() and json.loads(config.read_text()).get("model_type") == "minbert"


def _member_folders(args, row, names):
    """The model folders of the rows `names` in --work_dir: every one, or the row would not be what it says."""
    missing = [name for name in names if not _is_single_model(Path(args.work_dir) / name)]
    if missing:
        raise SystemExit(f"the {row} row needs the models of {', '.join(missing)} in --work_dir; run them first")
    return [Path(args.work_dir) / name for name in names]


def _ensemble_candidates(args, results, row):
    if row in ENSEMBLE_MEMBERS:
        return [str(folder) for folder in _member_folders(args, row, ENSEMBLE_MEMBERS[row])]
    if row == "ensemble_folds":  # the single models under oof_teachers/, not their per-fold averages
        return [str(path) for path in sorted((Path(args.work_dir) / "oof_teachers").glob("fold*_seed*"))
                if _is_single_model(path)]
    return [str(Path(args.work_dir) / name) for name in (*TRAIN_ROWS, "mlm") if name in results
            and _is_single_model(Path(args.work_dir) / name)]


def run_distilled_row(args, results, row="distilled"):
    teacher_row = DISTILLED_FROM[row]
    teacher = Path(args.work_dir) / teacher_row
    if not (teacher / "config.json").exists():
        raise SystemExit(f"the {row} row needs the {teacher_row} row first")
    return run_training_row(row, args, ["--teacher", str(teacher)], command="distill")


def run_distilled_oof_row(args, results, row="distilled_oof"):
    """Trains the out-of-fold teachers (OOF_SEEDS per fold, averaged by `minbert ensemble --selection all`),
    then distills; its minutes count the teachers' training, which no other row shares."""
    work, seconds, teachers = Path(args.work_dir) / "oof_teachers", 0.0, []
    cap = ["--max_train_samples", str(args.max_train_samples)] if args.max_train_samples else []
    for fold in range(OOF_FOLDS):
        members = [str(work / f"fold{fold}_seed{seed}") for seed in OOF_SEEDS]
        for seed, member in zip(OOF_SEEDS, members):
            seconds += _minbert("train", ["--data_dir", args.data_dir, "--output_dir", member, "--num_folds", str(OOF_FOLDS),
                                          "--held_out_fold", str(fold), "--seed", str(seed), *_epoch_flags(args),
                                          *args.extra.split(), *cap])
        teachers.append(str(work / f"fold{fold}"))
        seconds += _minbert("ensemble", ["--selection", "all", "--models", *members, "--output_dir", teachers[-1],
                                         "--data_dir", args.data_dir, "--bf16"])
    result = run_training_row(row, args, ["--fold_teachers", *teachers], command="distill")
    result["minutes"] = round(result["minutes"] + seconds / 60, 1)
    result["teachers"] = (f"per fold F of {OOF_FOLDS}, for each seed S of {list(OOF_SEEDS)}: minbert train --num_folds "
                          f"{OOF_FOLDS} --held_out_fold F --seed S; then per fold minbert ensemble --selection all")
    return result


def run_rescored_row(args, results, row):
    """`minbert evaluate` with the row's flags on each checkpoint its source row kept; the best overall is the
    row. Its minutes are the source row's plus the scoring."""
    source, flags = RESCORED_ROWS[row]
    checkpoints = sorted((Path(args.work_dir) / source).glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    if source not in results or not checkpoints:
        raise SystemExit(f"the {row} row needs the {source} row's model and checkpoints in --work_dir; run it first")
    scored, seconds = {}, 0.0
    for checkpoint in checkpoints:
        out = Path(args.work_dir) / row / checkpoint.name
        seconds += _minbert("evaluate", ["--model", str(checkpoint), "--data_dir", args.data_dir, "--output_dir", str(out),
                                         "--bf16", "--batch_size", "128", "--no_progress", *flags])
        scored[checkpoint.name] = json.loads((out / "metrics.json").read_text())
    best = max(scored, key=lambda name: scored[name]["overall"])
    result = _result(scored[best], results[source]["minutes"] * 60 + seconds, max_train_samples=None,
                     command=f"minbert evaluate --model {Path(args.work_dir) / source}/<each checkpoint> --bf16 "
                             f"--batch_size 128 {' '.join(flags)}; the best overall kept",
                     model_dir=Path(args.work_dir) / source)
    result["checkpoints_overall"] = {name: metrics["overall"] for name, metrics in scored.items()}
    return result


def run_soup_row(args, results, row):
    """The members' weights averaged into one model folder, then `minbert evaluate` on it; its minutes are the
    averaging and the scoring (the members' training is theirs)."""
    members = _member_folders(args, row, SOUP_MEMBERS[row])
    out, start = Path(args.work_dir) / row, time.time()
    average_weights(members, out)
    flags = ["--model", str(out), "--data_dir", args.data_dir, "--output_dir", str(out / "dev"), "--bf16", "--no_progress"]
    seconds = time.time() - start + _minbert("evaluate", flags)
    metrics = json.loads((out / "dev" / "metrics.json").read_text())
    return _result(metrics, seconds, command=f"uniform weight average of {', '.join(map(str, members))}; minbert evaluate "
                   + " ".join(flags), max_train_samples=None, model_dir=out)


def average_weights(members, out):
    """A model folder whose weights are the mean of every member's, with the first member's config, tokenizer and
    code (not its card, scores or training record, which describe that member alone)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    states = [load_file(member / "model.safetensors") for member in members]
    if any(state.keys() != states[0].keys() for state in states):
        raise SystemExit(f"cannot average {', '.join(map(str, members))}: their weights differ in names")
    mean = {name: torch.stack([state[name].double() for state in states]).mean(0).to(tensor.dtype)
            if tensor.is_floating_point() else tensor for name, tensor in states[0].items()}
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(members[0], out, ignore=shutil.ignore_patterns(
        "checkpoint-*", "model.safetensors", "metrics.json", "README.md", "training_config.json", "*.png"))
    save_file(mean, out / "model.safetensors", metadata={"format": "pt"})


def run_curriculum_row(args, results, row="curriculum"):
    """The phrase stage (its `epochs_2` row, whose result is recorded too), then the sentence stage from its model
    into `<row>`; the row's minutes and command cover both."""
    if args.epochs is not None:
        raise SystemExit(f"the {row} row sets its own epochs (2, then 1): run it without --epochs")
    first, seed_flags = CURRICULUM_ROWS[row]
    results[first] = run_training_row(first, args)
    result = run_training_row(row, args, ["--model_name_or_path", str(Path(args.work_dir) / first), *seed_flags,
                                          *CURRICULUM_SENTENCE_EPOCH])
    result["minutes"] = round(result["minutes"] + results[first]["minutes"], 1)
    result["command"] = results[first]["command"] + " && " + result["command"]
    return result


def _minbert(command, flags, environment=None):
    start = time.time()
    subprocess.run([sys.executable, "-m", "hf_minbert.cli", command, *flags], check=True, cwd=ROOT,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", **(environment or {})})
    return time.time() - start


def run_peer(args, results=None, row="peer"):
    """Three stock BertForSequenceClassification models on the course files, cross-encoded pairs: batches of 32 in
    the precision minbert train chooses here, Trainer's defaults otherwise, scored after the last epoch."""
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from hf_minbert import embedded_base_model
    from hf_minbert.data import read_task_splits, task_schema, tokenize_for_sequence_classification
    from hf_minbert.evaluation import score_task
    from hf_minbert.metrics import with_overall_scores
    from trainers.arguments import has_bf16_matmuls  # the precision minbert train chooses on this machine

    base = embedded_base_model()
    tokenizer = AutoTokenizer.from_pretrained(base)
    metrics, start = {}, time.time()
    for task, num_labels in (("sst", 5), ("para", 2), ("sts", 1)):
        splits, _ = read_task_splits(args.data_dir, task, ("train", "dev"), skip_bad_rows=True)
        train = splits["train"]
        if args.max_train_samples:
            train = train.select(range(min(args.max_train_samples, len(train))))
        train_tok = tokenize_for_sequence_classification(train, tokenizer, task, num_labels)
        dev_tok = tokenize_for_sequence_classification(splits["dev"], tokenizer, task, num_labels)
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=num_labels)
        training_args = TrainingArguments(
            output_dir=str(Path(args.work_dir) / f"peer_{task}"), per_device_train_batch_size=32,
            num_train_epochs=3 if args.epochs is None else args.epochs,
            bf16=has_bf16_matmuls(), use_cpu=not torch.cuda.is_available(), save_strategy="no", eval_strategy="no",
            report_to="none",
            per_device_eval_batch_size=128, logging_steps=100,
        )
        trainer = Trainer(model=model, args=training_args, train_dataset=train_tok, processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer))
        trainer.train()
        logits = trainer.predict(dev_tok).predictions
        predictions = logits.reshape(-1).tolist() if num_labels == 1 else np.argmax(logits, axis=-1).tolist()
        gold = list(splits["dev"][task_schema(task).label_column])
        metrics[task] = score_task(task, predictions, gold)
    return _result(with_overall_scores(metrics), time.time() - start, command=" ".join(["python benchmarks/quality.py --rows peer", *_epoch_flags(args, "--epochs")]),
                   max_train_samples=args.max_train_samples)


def _result(metrics, seconds, command, max_train_samples, model_dir=None):
    return {
        "parameters_millions": _parameters(model_dir),
        "sst_accuracy": metrics["sst"]["accuracy"],
        "para_accuracy": metrics["para"]["accuracy"],
        "sts_pearson": metrics["sts"]["pearson"],
        "overall": metrics["overall"],
        "mean": metrics["mean"],
        "minutes": round(seconds / 60, 1),
        "max_train_samples": max_train_samples,
        "command": command,
        "machine": machine_name(),
        "date": time.strftime("%Y-%m-%d"),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _cpu_times():
    """The machine's CPU time counters (/proc/stat's first line; None where there is none)."""
    try:
        return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None


def _steal_share(before, after):
    """The share of CPU time a virtual machine's host took for itself between two `_cpu_times` (the 8th
    counter, steal): wall time measured under steal overstates what the code costs."""
    if not before or not after or len(before) < 8:
        return None
    elapsed = [b - a for a, b in zip(before, after)]
    return round(elapsed[7] / sum(elapsed), 3) if sum(elapsed) else None


def _parameters(model_dir):
    from model_cards.card import parameter_count

    total = parameter_count(model_dir) if model_dir else None
    return None if total is None else round(total / 1e6, 1)


def _load_results(args):
    path = args.out_dir / f"{args.suite}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_results(results, args):
    save_results(args.out_dir, args.suite, results, render_table(results) + "\n")


def render_table(results):
    lines = ["| row | SST acc | Quora acc | STS r | overall (leaderboard) | Δ overall vs default | mean | parameters | minutes | rows/task |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    reference = results.get("default", {}).get("overall")
    for name in [n for n in ROWS if n in results]:
        r = results[name]
        parameters = f"{r['parameters_millions']}M" if r.get("parameters_millions") else "–"
        delta = "" if reference is None or name == "default" else f"{r['overall'] - reference:+.3f}"
        lines.append(f"| {name} | {r['sst_accuracy']:.3f} | {r['para_accuracy']:.3f} | {r['sts_pearson']:.3f} | "
                     f"{r['overall']:.3f} | {delta} | {r['mean']:.3f} | {parameters} | {_minutes(r)} | "
                     f"{r['max_train_samples'] or 'all'} |")
    lines += seed_group_lines(results)
    # A row measured under other defaults than today's says so (its command is the one that ran).
    notes = [f"- {name}: {results[name]['note']}" for name in ROWS if results.get(name, {}).get("note")]
    if notes:
        lines += ["", *notes]
    for ensemble in ENSEMBLE_SELECTION:
        students = [row for row, teacher in DISTILLED_FROM.items() if teacher == ensemble and row in results]
        for student in students or [None]:  # an ensemble without a distilled row yet is summarized alone
            summary = distillation_summary(results, ensemble, student)
            if summary:
                lines += ["", summary]
    return "\n".join(lines)


def _minutes(result):
    """A row's wall minutes, with the share of the CPU the host took meanwhile where that was measured."""
    steal = result.get("cpu_steal_share")
    return f"{result['minutes']} (host took {steal:.0%})" if steal else str(result["minutes"])


def seed_group_lines(results):
    """Mean ± standard deviation (over seeds) of each recipe measured with more than one seed."""
    import statistics

    lines = []
    for recipe, rows in SEED_GROUPS.items():
        measured = [results[row] for row in rows if row in results]
        if len(measured) < 2:
            continue
        cells = [f"{statistics.mean(r[key] for r in measured):.3f} ± {statistics.stdev(r[key] for r in measured):.3f}"
                 for key in ("sst_accuracy", "para_accuracy", "sts_pearson", "overall")]
        lines.append(f"| {recipe}: mean ± sd of {len(measured)} seeds | " + " | ".join(cells) + " | | | | | |")
    return lines


# Below this an ensemble's overall gain is within run-to-run noise here (11 SST dev sentences are 0.01 accuracy).
NOISE_OVERALL = 0.01


def distillation_summary(results, ensemble="ensemble", distilled="distilled"):
    """The ensemble's (and, once it exists, the distilled model's) overall score against the best single
    trained row, the share of the ensemble's gain the distilled model keeps, and a warning when that gain is
    only noise; where no member is a row of the suite, the comparison with its members on held-out dev rows only."""
    if ensemble not in results:
        return None
    best, text = _best_single_row(results, ensemble), ""
    if best is not None:
        text = _against_best_member(results, ensemble, distilled, best)
    held_out = results[ensemble].get("held_out_overall")
    if held_out and ENSEMBLE_SELECTION[ensemble] == "greedy":
        text += (f" Scored on dev rows that did not choose them (selection cross-fitted over two halves of each dev set), "
                 f"the ensemble reaches {held_out['ensemble']:.4f} overall against {held_out['best_single']:.4f} for "
                 f"the best single model per task: {held_out['ensemble'] - held_out['best_single']:+.4f} from averaging.")
    elif held_out:  # averaging all chooses nothing, so only the member it is compared with was picked on dev
        text += (f" Against its own members (the best per task picked on one half of each dev set, scored on the "
                 f"other): {held_out['ensemble']:.4f} overall against {held_out['best_single']:.4f}, "
                 f"{held_out['ensemble'] - held_out['best_single']:+.4f} from averaging.")
    return text.strip() or None


def _against_best_member(results, ensemble, distilled, best):
    reference = results[best]["overall"]
    gain = results[ensemble]["overall"] - reference
    text = f"Against its best member row ({best}): {ensemble} {gain:+.4f} overall"
    if distilled in results:
        text += f", {distilled} model {results[distilled]['overall'] - reference:+.4f}"
        share = distillation_gain_kept(results, ensemble, distilled)
        if share is not None and gain >= NOISE_OVERALL:
            text += f"; the {distilled} model keeps {share:.0%} of the ensemble's gain"
    if abs(gain) < NOISE_OVERALL:
        text += f". A difference below {NOISE_OVERALL} is within run-to-run noise"
        text += ": no share of the gain is stated." if distilled in results else "."
    elif gain < 0:
        text += f". The ensemble scores below its best member by more than run-to-run noise ({NOISE_OVERALL})."
    return text if text.endswith(".") else text + "."


def distillation_gain_kept(results, ensemble="ensemble", distilled="distilled"):
    """(distilled − best single) / (ensemble − best single), on the leaderboard overall score."""
    best = _best_single_row(results, ensemble)
    if best is None or distilled not in results:
        return None
    gain = results[ensemble]["overall"] - results[best]["overall"]
    return None if gain <= 0 else (results[distilled]["overall"] - results[best]["overall"]) / gain


def _best_single_row(results, ensemble):
    """The ensemble's member row with the best overall score (its members are the model folders its command
    names, by row name); None before the ensemble row exists, where no member is a row of this suite, or where a
    member's row was measured again after the ensemble was built (it then holds another model's scores)."""
    if ensemble not in results:
        return None
    words = results[ensemble].get("command", "").split()
    folders = words[words.index("--models") + 1:] if "--models" in words else []
    members = [Path(folder).name for folder in itertools.takewhile(lambda word: not word.startswith("--"), folders)]
    singles = [name for name in members if name in results and (name in TRAIN_ROWS or name == "mlm")]
    built = _measured_at(results[ensemble]) or "9999"
    if not singles or any(_measured_at(results[name]) > built for name in singles):
        return None
    return max(singles, key=lambda name: results[name]["overall"])


def _measured_at(row):
    """When a row was measured: its time, or for rows that recorded only their day, the day (which reads as
    before any time of that day, so a member row measured later that day counts as measured after)."""
    return row.get("finished") or row.get("date", "")


if __name__ == "__main__":
    sys.exit(main())
