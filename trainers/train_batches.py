"""The training batches of `MultitaskTrainer`: its task datasets tokenized and concatenated, a
`MultitaskBatchSampler` set up from the training arguments, and the DataLoader that reads them through it.

Trainer's own sampler hook cannot return a batch sampler, hence a loader of our own. It is not passed through
`accelerator.prepare`: its `BatchSamplerShard` would re-shard batches that the sampler already split by rank.
Trainer moves each batch to the device in `_prepare_inputs`.
"""
import logging

import torch

from hf_minbert.data.tokenization import example_lengths
from hf_minbert.evaluation import datasets_progress_bars

from .arguments import EMBEDDING_LOSSES
from .losses import check_embedding_loss_task
from .multitask_data import MultitaskDataLoader, MultitaskDataset, tokenize_for_training
from .sampling import MultitaskBatchSampler

logger = logging.getLogger(__name__)


def training_dataset(train_dataset, args, tokenizer, config, always_rows=None):
    """`train_dataset` ({task: rows}) as one MultitaskDataset, tokenized for the model's heads (and, with MNR or
    CoSENT, that task's separate sentences); `always_rows` is checked against it."""
    for task, rows in (always_rows or {}).items():
        if task not in train_dataset:
            raise ValueError(f"always_rows names task {task!r}, which has no train dataset ({', '.join(train_dataset)})")
        if not (isinstance(rows, int) and 0 <= rows <= len(train_dataset[task])):
            raise ValueError(f"always_rows[{task!r}]={rows!r}: expected 0..{len(train_dataset[task])} (the task's rows)")
    for loss, task in args.embedding_losses().items():
        if task not in train_dataset:
            raise ValueError(f"--{loss}_weight > 0 but the {EMBEDDING_LOSSES[loss]} task {task!r} has no train dataset")
        check_embedding_loss_task(loss, task, {name: config.task_spec(name) for name in train_dataset})
    sides = args.embedding_loss_tasks()
    with datasets_progress_bars(not args.disable_tqdm):  # Trainer's own bars follow disable_tqdm: so do these
        return MultitaskDataset(tokenize_for_training(train_dataset, tokenizer, config, args.max_seq_length,
                                                      sides_for=sides, keep_columns=not args.remove_unused_columns))


def train_batch_sampler(dataset, args, batch_size, always_rows=None):
    """The sampler over `dataset` (a MultitaskDataset) for this rank: strategy, seed, caps, length grouping
    and the MNR task's duplicate separation as `args` (MultitaskTrainingArguments) ask."""
    strategy = args.task_sampling
    epoch_rows = args.epoch_rows(dataset.sizes)
    _log_epoch_caps(dataset.sizes, epoch_rows or {}, always_rows or {}, "task_epoch_rows" in args.left_to_default)
    return MultitaskBatchSampler(
        dataset.sizes,
        batch_size,
        strategy,
        seed=args.data_seed if args.data_seed is not None else args.seed,
        num_replicas=args.world_size,
        rank=args.process_index,
        drop_last=args.dataloader_drop_last,
        temperature=args.sampling_temperature if strategy == "temperature" else None,
        size_cap=_temperature_size_cap(args, dataset.sizes, always_rows or {}) if strategy == "temperature" else None,
        num_splits=args.equal_split_parts if strategy == "equal_split" else None,
        epoch_rows=epoch_rows,
        always_rows=always_rows if epoch_rows else None,
        example_keys=no_duplicate_keys(dataset, args),
        lengths={t: example_lengths(ds) for t, ds in dataset.datasets.items()} if args.group_by_length else None,
        token_budget=args.token_budgets(dataset.sizes),
        epoch_passes=args.epoch_passes(dataset.sizes),
    )


def _temperature_size_cap(args, sizes, always_rows):
    """--sampling_size_cap, else per task the rows an epoch of `proportional` reads of it under the built-in
    --task_epoch_rows (beside its always-read rows): without it the treebank's 159k phrases would weigh in whole,
    and an epoch take four times proportional's steps."""
    if args.sampling_size_cap is not None:
        return args.sampling_size_cap
    caps = args.per_task("task_epoch_rows", list(sizes), 0)
    return {task: min(sizes[task], int(cap) + always_rows.get(task, 0)) for task, cap in caps.items() if cap > 0} or None


def _log_epoch_caps(sizes, epoch_rows, always_rows, built_in):
    """Say which tasks an epoch reads only part of: a warning where the built-in cap cuts rows of one's own (no
    `always_rows`: minbert train's recipe reads its first source whole and caps only the treebank's phrases)."""
    for task, cap in epoch_rows.items():
        read = min(sizes[task], cap + always_rows.get(task, 0))
        if read < sizes[task]:
            origin = "the built-in default; 0 reads all" if built_in else "as set"
            (logger.warning if built_in and not always_rows.get(task) else logger.info)(
                "%s: each epoch reads %d of its %d training rows (--task_epoch_rows %s=%d, %s), the next part of them "
                "the next epoch", task, read, sizes[task], task, cap, origin)


def train_dataloader(dataset, sampler, collator, args):
    # Trainer's own loader options; torch refuses the worker ones without worker processes.
    workers = {}
    if args.dataloader_num_workers > 0:
        workers = {"persistent_workers": args.dataloader_persistent_workers,
                   "prefetch_factor": args.dataloader_prefetch_factor,
                   "multiprocessing_context": args.dataloader_multiprocessing_context,
                   "in_order": args.dataloader_in_order}
    return MultitaskDataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collator,
        num_workers=args.dataloader_num_workers,
        pin_memory=args.dataloader_pin_memory and torch.cuda.is_available(),
        **workers,
    )


def no_duplicate_keys(dataset, args):
    """The MNR task's example keys when its batches must avoid repeated sentences (else None)."""
    task = args.mnr_task
    if args.mnr_weight == 0 or not args.mnr_no_duplicates or task not in dataset.sizes:
        return None
    rows = dataset.datasets[task]
    if "input_ids_a" not in rows.column_names:
        return None
    # A pair's key is its two sentences: no sentence may appear twice among a batch's candidates.
    return {task: [(tuple(a), tuple(b)) for a, b in zip(rows["input_ids_a"], rows["input_ids_b"])]}
