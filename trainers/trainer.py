"""`MultitaskTrainer`: `transformers.Trainer` for one `MinBertForMultitask` over several tasks.

What it adds to Trainer, and where:
- `get_train_dataloader`: task batches from `MultitaskBatchSampler` (train_batches.py); each batch arrives
  as `{task: inputs}`.
- `compute_loss`: per task, the task weight × (the head's loss + SMART + the ordinal term on the ordinal task
  + MNR and CoSENT on their pair tasks); a pair task under `--pair_swap_probability` first has some of its
  pairs swapped (pair_order.py).
- `training_step`: PCGrad's gradient surgery when asked; otherwise Trainer's own step (loss scaling for
  gradient accumulation, backward, bf16 via accelerate), once per task of an all_tasks batch.
- `evaluate`: per-task dev metrics with `hf_minbert.evaluation` (and a user's `compute_metrics`, per task), the
  overall score (the default `metric_for_best_model`; it needs sst, para and sts) and `tasks_overall`, the same
  score over any tasks.
- `predict`: per task, Trainer's `PredictionOutput` (scores, gold labels where the rows have them, metrics).
- Trainer options a multitask run could only ignore (compute_loss_func, optimizer_cls_and_kwargs, a collator
  that batches no tasks) are refused by name (`_check_trainer_options`).
- checkpoints: SMART's mean teacher and PCGrad's generator are saved beside the optimizer and restored
  (multitask_state.py, which also builds SMART from the arguments).
- `train`: on a Linux CPU, first has glibc keep freed memory for the next step (cpu_memory.py); a hyperparameter
  trial's arguments (or model_init's new model) rebuild what __init__ read off them (`_hp_search_setup`).
- `create_model_card` / `push_to_hub(**kwargs)`: minBERT's card of the run with Trainer's card options (trainer_card.py).
- `create_optimizer`: hf_minbert's AdamW (or torch's) with LLRD, head multiplier and frozen parts.
- `log`: each task's loss and the SMART/MNR terms, averaged since the last log.
"""
import contextlib
import logging
import math
import os
import re
import time
from collections import defaultdict
from functools import partial

import numpy as np
import pyarrow as pa
import torch
from accelerate.utils import DistributedType
from transformers import Trainer, get_scheduler, set_seed
from transformers.trainer_utils import EvalPrediction, PredictionOutput, number_of_arguments, speed_metrics
from transformers.utils import is_sagemaker_mp_enabled

from hf_minbert.adapters import name_base_by_absolute_path, task_adapter_router, write_base_config
from hf_minbert.data import DataError, has_task_schema, head_mismatch, record_task_schemas, task_schema
from hf_minbert.data.tokenization import (
    JOINT_COLUMNS,
    SIDE_COLUMNS,
    check_row_texts,
    check_task_rows,
    is_tokenized,
    save_input_names,
)
from hf_minbert.evaluation import evaluate_task, evaluate_tasks, gold_labels, unscorable_reason
from hf_minbert.metrics import OVERALL_TASKS, tasks_overall, with_overall_scores
from hf_minbert.modeling_minbert_heads import task_loss
from hf_minbert.optimization import create_optimizer, describe_parameter_groups, freeze_parameters
from model_cards.run_record import loaded_best_step

from .arguments import MultitaskTrainingArguments, full_eval_dtype
from .cpu_memory import keep_freed_memory
from .gradient_clipping import clip_grad_norm_
from .log_level import apply_log_level
from .losses import cosent_loss, paraphrase_mnr_loss, sentence_keys
from .multitask_data import MultitaskCollator
from .multitask_state import (
    MeanTeacherUpdate,
    build_smart,
    check_optimizer_settings,
    load_multitask_state,
    save_multitask_state,
    save_optimizer_settings,
)
from .ordinal import check_ordinal_task, squared_emd_loss
from .pair_order import check_pair_order, pair_order_generator, randomly_swapped
from .pcgrad import pcgrad_backward
from .sampling import MultitaskBatchSampler
from .train_batches import train_batch_sampler, train_dataloader, training_dataset

logger = logging.getLogger(__name__)

# The distributed setups whose gradient clipping accelerate leaves to torch.nn.utils.clip_grad_norm_.
_PLAIN_CLIPPING = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
# The keys each shipped metric reports (hf_minbert/metrics), as evaluate() names them after the task.
METRIC_KEYS = {"accuracy": ("accuracy",), "correlation": ("pearson", "spearman")}


class MultitaskTrainer(Trainer):
    """Trainer over `train_dataset={"sst": rows, "para": rows, "sts": rows}` (raw task rows as
    `hf_minbert.data` reads them, or already tokenized), scored on `eval_dataset` (raw rows, same keys).

    always_rows: per task, how many of its first training rows (its core source, e.g. SST's sentences ahead
    of their treebank phrases) every epoch reads whole; `--task_epoch_rows` then caps only the rows after them.
    """

    def __init__(self, model=None, args=None, train_dataset=None, eval_dataset=None, processing_class=None,
                 always_rows=None, **kwargs):
        args = args if args is not None else MultitaskTrainingArguments()
        if not isinstance(args, MultitaskTrainingArguments):
            raise TypeError("MultitaskTrainer needs MultitaskTrainingArguments (a TrainingArguments subclass)")
        apply_log_level(args)  # before the training rows are tokenized: their report is logged at INFO
        if processing_class is None:
            raise ValueError("MultitaskTrainer needs the tokenizer as processing_class (it tokenizes and is saved with the model)")
        if getattr(processing_class, "padding_side", "right") == "left":
            raise ValueError("processing_class pads on the left; minBERT reads each row's [CLS] at position 0: set "
                             "tokenizer.padding_side = 'right'")
        _check_trainer_options(kwargs, args)
        self.resumed_from_step = None  # set by a train() call that resumes from a checkpoint
        save_input_names(processing_class)  # saved with the model: transformers 5.0-5.2 need them to pair sentences
        if model is None and kwargs.get("model_init") is not None:
            set_seed(args.seed)  # as Trainer does before it calls model_init: this model is the one Trainer builds
            model_init = kwargs["model_init"]  # as Trainer.call_model_init calls it, before any trial
            config = _core(model_init() if number_of_arguments(model_init) == 0 else model_init(None)).config
        else:
            config = _core(model).config
        for name, datasets in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            _check_task_dict(name, datasets, config)
        _check_scorable(eval_dataset)
        if eval_dataset is not None:
            resolve_best_model_metric(args, list(eval_dataset), custom_metrics=kwargs.get("compute_metrics") is not None)
        if train_dataset is not None and model is not None:
            _check_peft_heads_trainable(model, list(train_dataset))
        self.always_rows = dict(always_rows or {})
        self._task_rows = train_dataset  # as given: a hyperparameter trial's arguments may tokenize them otherwise
        train_dataset = self._training_rows(args, processing_class, config)
        kwargs.setdefault("data_collator", MultitaskCollator(processing_class))
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=processing_class, **kwargs)
        self._mean_teacher_update = None
        self._configure_from_arguments()
        self._arguments_as_read = self.args.to_dict()  # train() reads them again where they have changed since
        self._tokenized_rows = self.train_dataset  # replaced by one's own, it is not tokenized again
        self._swap_draws = (None, 0)  # (optimizer step, batches swapped in it): one generator per batch
        self.other_evaluations = set()  # log_history indices of evaluations of rows passed to evaluate()
        self._terms = defaultdict(list)  # name -> values since the last log
        if self.optimizer is not None:  # optimizers= given: create_optimizer, which freezes, does not run
            freeze_parameters(_core(self.model), freeze_embeddings=args.freeze_embeddings,
                              freeze_encoder=args.freeze_encoder)

    def _training_rows(self, args, tokenizer, config):
        """The training rows tokenized as `args` ask (None without a train_dataset), every flag that names their
        tasks checked first."""
        _check_max_seq_length(args, config)
        rows = self._task_rows
        if args.ordinal_weight > 0:
            check_ordinal_task(args.ordinal_task, {task: config.task_spec(task) for task in rows or config.tasks})
        if rows is None:
            return None
        args.epoch_passes(list(rows))  # a flag that names no task of the data fails before tokenizing
        args.check_some_task_weighted(list(rows))
        return training_dataset(rows, args, tokenizer, config, self.always_rows)

    def _configure_from_arguments(self):
        """What the trainer reads off its arguments and model once: the task weights, SMART (its mean teacher a
        copy of the model), PCGrad's generator (seeded), the pair-swap probabilities."""
        core = _core(self.model)
        tasks = list(core.config.tasks)
        # The model saved carries the data schema of each task of one's own it reads rows of
        record_task_schemas(core.config, [*(self._task_rows or {}), *(self.eval_dataset or {})])
        self.task_weights = self.args.per_task("task_weights", tasks, default=1.0)
        self.smart = build_smart(self.args, tasks, core)
        if self._mean_teacher_update is not None:
            if self._mean_teacher_update in self.callback_handler.callbacks:  # one's own pop_callback may have taken it
                self.remove_callback(self._mean_teacher_update)
            self._mean_teacher_update = None
        if self.smart is not None and self.smart.teacher is not None:
            self._mean_teacher_update = MeanTeacherUpdate(self.smart.teacher, lambda: _core(self.model))
            self.add_callback(self._mean_teacher_update)
        self._pcgrad_generator = torch.Generator().manual_seed(self.args.seed)
        _check_reentrant_checkpointing(self.args, tasks)
        self.pair_swap = self.args.pair_swap_probabilities(core.config.tasks)
        for task in self.pair_swap:
            check_pair_order("pair_swap_probability", task, core.config.task_spec(task)["pair_encoding"])
        for loss in self.args.embedding_losses():
            if getattr(self.args, f"{loss}_gather_across_devices") and self.args.world_size == 1:
                logger.warning("--%s_gather_across_devices: one process trains, so each batch is already all there "
                               "is to gather", loss)

    def _hp_search_setup(self, trial):
        """Every train() call comes here before it trains, after Trainer has set a hyperparameter trial's values on
        the arguments and model_init has built the model (_read_arguments_again)."""
        super()._hp_search_setup(trial)
        self._read_arguments_again(trial is not None and self.hp_search_backend is not None)

    def _read_arguments_again(self, new_trial=False):
        """What __init__ read off the arguments and the model, read again where either may differ: arguments
        assigned since, a hyperparameter trial's (its model too), a model model_init has built. The training rows
        are tokenized again for a trial or changed arguments, unless a train_dataset of one's own was assigned."""
        arguments = self.args.to_dict()
        arguments_changed = arguments != self._arguments_as_read
        if (arguments_changed or new_trial) and self.train_dataset is self._tokenized_rows:
            self.train_dataset = self._tokenized_rows = self._training_rows(
                self.args, self.processing_class, _core(self.model).config)
        if arguments_changed or self.model_init is not None:  # a new model: SMART's mean teacher must start as its copy
            self._configure_from_arguments()
        self._arguments_as_read = arguments

    def train(self, resume_from_checkpoint=None, trial=None, *args, **kwargs):
        if trial is not None and self.hp_search_backend is not None and self.model_init is not None:
            # Trainer seeds and builds a trial's model before it sets the trial's values: set them first, so that
            # the trial's seed draws its model (and model_init reads the trial's arguments); Trainer sets them again.
            Trainer._hp_search_setup(self, trial)
        self.resumed_from_step = None  # the step of the checkpoint this call resumes from, once it loads it
        if self.args.keep_freed_memory and self.args.device.type == "cpu":
            keep_freed_memory()
        self._terms.clear()  # terms of an earlier train() call left unlogged belong to no log of this one
        # Arguments changed since __init__ (a setter, an assignment) are checked as __init__ checked them and read
        # again (--optim where the optimizer is built). A hyperparameter search releases the model between trials:
        # Trainer builds the next with model_init, and _hp_search_setup checks and reads them with it.
        if self.model is not None:
            _check_reentrant_checkpointing(self.args, list(_core(self.model).config.tasks))
            self._check_user_metric_for_best_model()
            if self.model_init is None:  # before Trainer.train changes anything: a bad value leaves the trainer as it was
                self._read_arguments_again()
        output = super().train(resume_from_checkpoint, trial, *args, **kwargs)
        self._warn_if_the_best_evaluation_was_not_kept()
        return output

    def _warn_if_the_best_evaluation_was_not_kept(self):
        best = self.state.best_global_step
        if not self.args.load_best_model_at_end or not best:
            return
        kept = loaded_best_step(self.state)
        if (self.state.global_step if kept is None else kept) != best:
            logger.warning("The best evaluation (step %d) saved no checkpoint: the model kept is %s (save at every "
                           "evaluation, --save_steps = --eval_steps, to keep the best)", best,
                           "the last step's" if kept is None else f"step {kept}'s, the last checkpoint that was the "
                           "best so far when it was saved")

    def hyperparameter_search(self, hp_space=None, compute_objective=None, n_trials=20, direction=None, backend=None,
                              hp_name=None, **kwargs):
        """Trainer's search, whose default objective would sum every dev metric (overall three times over): here it
        is `metric_for_best_model`'s score (default: the overall score), maximized where greater is better. A
        `compute_objective` of one's own keeps Trainer's default direction, "minimize"."""
        if compute_objective is None:
            metric = self.args.metric_for_best_model or "overall"
            key = metric if metric.startswith("eval_") else f"eval_{metric}"
            compute_objective = partial(_objective, key)
            if direction is None:
                greater = self.args.greater_is_better
                direction = "maximize" if greater or greater is None else "minimize"
        return super().hyperparameter_search(hp_space=hp_space, compute_objective=compute_objective, n_trials=n_trials,
                                             direction=direction or "minimize", backend=backend, hp_name=hp_name,
                                             **kwargs)

    def _check_user_metric_for_best_model(self):
        """A `metric_for_best_model` that only `compute_metrics` could report is looked for in what it returns for a
        few dev rows, before any training: a typo would otherwise end the run at its first evaluation."""
        metric = self.args.metric_for_best_model
        datasets = self.eval_dataset
        if metric is None or self.compute_metrics is None or not datasets or self.args.eval_strategy == "no":
            return
        name = metric[len("eval_"):] if metric.startswith("eval_") else metric
        if name in evaluation_metric_names(list(datasets)):
            return
        reported = {}
        for task, rows in datasets.items():
            reported.update(self._user_metrics(task, *self._few_predictions(task, rows), "eval", {}))
        if f"eval_{name}" not in reported:
            raise ValueError(f"--metric_for_best_model {metric!r} is neither a metric MultitaskTrainer reports nor one "
                             f"compute_metrics returns; it returns: {', '.join(k[len('eval_'):] for k in reported)}")

    def _few_predictions(self, task, rows, count=8):
        """The model's scores and the gold labels of `task`'s first `count` dev rows."""
        rows = rows.select(range(min(count, len(rows))))
        unlabelled = rows.remove_columns(task_schema(task).label_column)
        result = evaluate_task(_core(self.model), self.processing_class, unlabelled, task, progress=False,
                               **self._prediction_options())
        return result.predictions.scores, np.asarray(gold_labels(rows, task))

    def get_train_dataloader(self):
        if self.train_dataset is None:
            raise ValueError("MultitaskTrainer: training requires a train_dataset")
        sampler = train_batch_sampler(self.train_dataset, self.args, self._train_batch_size, self.always_rows)
        return train_dataloader(self.train_dataset, sampler, self.data_collator, self.args)

    def num_examples(self, dataloader):
        """The rows an epoch reads (Trainer's "Num examples" and train_samples_per_second), not every row of every
        task: a cap (--task_epoch_rows), passes or the sampling strategy decide how many of them an epoch reads."""
        sampler = getattr(dataloader, "batch_sampler", None)
        return sampler.rows_per_epoch() if isinstance(sampler, MultitaskBatchSampler) else super().num_examples(dataloader)

    def set_initial_training_values(self, args, dataloader):
        values = list(super().set_initial_training_values(args, dataloader))
        sampler = getattr(dataloader, "batch_sampler", None)
        if args.max_steps > 0 and isinstance(sampler, MultitaskBatchSampler):
            # Trainer counts max_steps full batches of rows (train_samples_per_second): a step here reads a
            # packed batch, or a batch of every task; the rows of max_steps steps at the epoch's rows per step.
            steps_per_epoch = values[1]
            values[3] = round(sampler.rows_per_epoch() * args.max_steps / steps_per_epoch)
        return tuple(values)

    # ---- loss --------------------------------------------------------------------------------------------

    def compute_loss_context_manager(self):
        # accelerate autocasts only model.forward; SMART and MNR also call encoder methods directly.
        stack = contextlib.ExitStack()
        stack.enter_context(self.accelerator.autocast())
        return stack

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        losses = self.task_losses(model, inputs)
        loss = sum(losses.values())
        return (loss, losses) if return_outputs else loss

    def task_losses(self, model, inputs):
        """{task: weight × (head loss + ordinal + SMART + MNR + CoSENT)} for the tasks of this batch."""
        return {task: self._task_loss(model, task, batch) for task, batch in inputs.items()}

    def _task_loss(self, model, task, batch):
        core = _core(model)
        if task in self.pair_swap:
            batch = randomly_swapped(batch, task, self.pair_swap[task], self._swap_generator(task))
        spec = core.config.task_spec(task)
        head_inputs = {k: v for k, v in batch.items() if k in head_input_keys(spec)}
        rng = self.smart.capture_rng_state(self.args.device) if self.smart is not None else None
        # Trainer's LabelSmoother reads one logits tensor; here each head's loss smooths its own targets.
        smoothing = self.args.label_smoothing_factor
        outputs = model(**head_inputs, task=task, labels=None if smoothing else batch["labels"])
        loss = task_loss(spec, task, outputs.logits, batch["labels"], smoothing) if smoothing else outputs.loss
        self._record(f"loss_{task}", loss)
        if self.args.ordinal_weight > 0 and task == self.args.ordinal_task:
            # the targets as given (class indices or a teacher's rows), not label-smoothed: smoothing would
            # put mass on every grade, the far ones too
            ordinal = squared_emd_loss(outputs.logits, batch["labels"])
            self._record("ordinal", ordinal)
            loss = loss + self.args.ordinal_weight * ordinal
        if self.smart is not None:
            # The extra passes use the unwrapped model: under DDP only the clean forward goes through the
            # wrapper, and every gradient still lands on the same parameters before one all-reduce.
            regularizer = self.smart(core, head_inputs, task, outputs.logits, rng_state=rng)
            if regularizer is not None and regularizer.requires_grad:
                self._record(f"smart_{task}", regularizer)
                loss = loss + regularizer
        if self.args.mnr_weight > 0 and task == self.args.mnr_task:
            mnr = mnr_loss(core, batch, outputs, self.args)
            self._record("mnr", mnr)
            loss = loss + self.args.mnr_weight * mnr
        if self.args.cosent_weight > 0 and task == self.args.cosent_task:
            cosent = cosent_loss(*pair_embeddings(core, batch, outputs, task), batch["labels"].float(),
                                 scale=self.args.cosent_scale,
                                 gather_across_devices=self.args.cosent_gather_across_devices)
            self._record("cosent", cosent)
            loss = loss + self.args.cosent_weight * cosent
        return self.task_weights[task] * loss

    def _swap_generator(self, task):
        """A generator for this batch's swap draws, from the seed, the optimizer step and the batch's place in it
        (gradient accumulation and all_tasks run several batches a step): a resumed run draws the same."""
        step, count = self._swap_draws
        count = count + 1 if step == self.state.global_step else 0
        self._swap_draws = (self.state.global_step, count)
        return pair_order_generator(self.args.seed, self.state.global_step, task, count, rank=self.args.process_index)

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.args.pcgrad:
            return self._pcgrad_step(model, inputs)
        if len(inputs) == 1:
            return super().training_step(model, inputs, num_items_in_batch)
        # all_tasks: a forward and a backward per task. DDP allows one forward per backward, so every task but
        # the last backpropagates under no_sync: the gradients add up locally, and the last backward
        # all-reduces their sum, the gradient of the summed loss.
        tasks = list(inputs)
        total = 0.0
        for n, task in enumerate(tasks):
            last = n == len(tasks) - 1
            with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                total = total + super().training_step(model, {task: inputs[task]}, num_items_in_batch)
        return total

    def _pcgrad_step(self, model, inputs):
        model.train()
        inputs = self._prepare_inputs(inputs)
        # autograd.grad bypasses DDP's all-reduce hooks; pcgrad_backward averages across ranks itself.
        with self.accelerator.no_sync(model), self.compute_loss_context_manager():
            losses = self.task_losses(model, inputs)
        scale = 1.0 / self.current_gradient_accumulation_steps
        core = _core(model)
        shared = [p for name, p in core.named_parameters() if name.startswith(f"{core.base_model_prefix}.")]
        # A task's own parameters: its head, and its own encoder layers in a CerBERTus or Triple-BERT.
        heads = {task: core.task_parameters(task) for task in core.heads}
        router = task_adapter_router(core)
        if router is not None:  # every forward ran before the first backward: each backward activates its own adapter
            for task, loss in losses.items():
                loss.register_hook(router.activating_before_backward(core, task))
        stats = pcgrad_backward({t: loss * scale for t, loss in losses.items()}, shared, heads, generator=self._pcgrad_generator)
        self._terms["pcgrad_projections"].append(float(stats.projections))
        return sum(losses.values()).detach() * scale

    def floating_point_ops(self, inputs):
        # Kaplan et al.'s 6 · tokens · parameters for forward + backward, summed over the step's tasks.
        if not hasattr(self, "_non_embedding_parameters"):
            self._non_embedding_parameters = _core(self.model).num_parameters(exclude_embeddings=True)
        tokens = sum(batch[k].numel() for batch in inputs.values() for k in ("input_ids", "input_ids_a", "input_ids_b") if k in batch)
        return 6 * tokens * self._non_embedding_parameters

    def _track_num_input_tokens(self, inputs):
        # Trainer counts the tokens of one `input_ids` (include_num_input_tokens_seen): here, of every
        # sequence of every task's batch (a bi-encoder pair's two sentences are two sequences).
        for batch in inputs.values():
            for ids, mask in (("input_ids", "attention_mask"), ("input_ids_a", "attention_mask_a"),
                              ("input_ids_b", "attention_mask_b")):
                if ids in batch:
                    super()._track_num_input_tokens({"input_ids": batch[ids], "attention_mask": batch[mask]})

    # ---- logging -----------------------------------------------------------------------------------------

    def _record(self, name, value):
        self._terms[name].append(value.detach().float().item())

    def _get_learning_rate(self):
        # The logged rate is --learning_rate's: the top encoder layer's (the largest but for heads at a
        # multiplier); Trainer would log the first parameter group's, the embeddings' under layer-wise decay.
        groups = getattr(self.optimizer, "param_groups", None) or []
        encoder = [group["lr"] for group in groups if "name" in group and not group["name"].startswith("heads/")]
        return max(encoder) if encoder else super()._get_learning_rate()

    def log(self, logs, start_time=None):
        if "loss" in logs:  # a training log: add the terms gathered since the previous one
            logs.update(self._averaged_terms())
            self._terms.clear()
        super().log(logs, start_time)

    def _averaged_terms(self):
        """Each term's mean since the last log, over every rank as Trainer averages `loss`: the ranks trained the
        same tasks on their own rows, so each holds the same terms (and every rank logs, in step)."""
        names = sorted(name for name, values in self._terms.items() if values)
        means = [sum(self._terms[name]) / len(self._terms[name]) for name in names]
        if self.args.world_size > 1 and names:
            means = self.accelerator.reduce(torch.tensor(means, dtype=torch.float64, device=self.args.device),
                                            reduction="mean").tolist()
        return {name: round(mean, 6) for name, mean in zip(names, means)}

    # ---- evaluation --------------------------------------------------------------------------------------

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        datasets = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not datasets:
            raise ValueError("MultitaskTrainer.evaluate needs eval_dataset={task: labelled rows}")
        _check_task_dict("eval_dataset", datasets, _core(self.model).config)
        if eval_dataset is not None:  # the trainer's own rows were checked in __init__
            _check_scorable(datasets)
        self._cast_for_full_eval()
        start = time.time()
        results = evaluate_tasks(_core(self.model), self.processing_class, datasets, **self._prediction_options())
        metrics = with_overall_scores({task: result.metrics for task, result in results.items()})
        metrics["tasks_overall"] = tasks_overall(metrics)
        flat = flatten_metrics(metrics, metric_key_prefix)
        if self.compute_metrics is not None:  # the user's metrics; the gold labels are read again only for them
            for task, result in results.items():
                flat.update(self._user_metrics(task, result.predictions.scores, gold_labels(datasets[task], task),
                                               metric_key_prefix, flat))
        flat.update(self._speed_metrics(metric_key_prefix, start, datasets.values()))
        flat["epoch"] = self.state.epoch
        self.log(flat)
        if eval_dataset is not None:  # rows of one's own: not the dev scores a card reports (trainer_card.py)
            self.other_evaluations.add(len(self.state.log_history) - 1)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, flat)
        return flat

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix="test"):
        """{task: PredictionOutput} for `test_dataset={task: rows}`: `predictions` are the head's scores (class
        probabilities, paraphrase probability or similarity, unclipped: as Trainer's, the model's own output),
        `label_ids` the gold labels (None for unlabelled rows, e.g. a test-student file), `metrics` e.g.
        {"test_sst_accuracy": ...} (empty when unlabelled), scored as `evaluate` scores: similarity clipped to the
        task's range."""
        if not isinstance(test_dataset, dict):
            raise TypeError("MultitaskTrainer.predict needs test_dataset={task: rows} (one task's rows: "
                            f"{{'sst': rows}}), got {type(test_dataset).__name__}")
        _check_task_dict("test_dataset", test_dataset, _core(self.model).config)
        self._cast_for_full_eval()
        outputs = {task: self._predict_task(task, rows, metric_key_prefix) for task, rows in test_dataset.items()}
        metrics = {key: value for output in outputs.values() for key, value in output.metrics.items()}
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, metrics)
        return outputs

    def _predict_task(self, task, rows, metric_key_prefix):
        # Rows whose labels cannot give the task's metric (a single STS row) are still predicted, with their
        # labels, as Trainer.predict does; the metric is left out, with a warning. A test split whose every label
        # is missing (None, or -1 as the Hub's GLUE test splits write it) is predicted as unlabelled rows.
        label_column = task_schema(task).label_column
        if label_column in rows.column_names and _labels_all_missing(rows, label_column):
            rows = rows.remove_columns(label_column)
        try:
            unscorable = unscorable_reason(task, rows) if label_column in rows.column_names else None
        except DataError as error:  # a label that is not the task's, naming its row
            raise DataError(f"test_dataset: {error}") from None
        if unscorable:
            logger.warning("predict: task %r: %s; its metrics are left out", task, unscorable)
        predicted = rows.remove_columns(label_column) if unscorable else rows
        start = time.time()
        result = evaluate_task(_core(self.model), self.processing_class, predicted, task, progress=False,
                               **self._prediction_options())
        scores, labels, metrics = result.predictions.scores, None, {}
        if label_column in rows.column_names:
            labels = np.asarray(gold_labels(rows, task))
        if result.metrics is not None:
            metrics = flatten_metrics({task: result.metrics}, metric_key_prefix)
            metrics.update(self._user_metrics(task, scores, labels, metric_key_prefix, metrics))
        metrics.update(self._speed_metrics(metric_key_prefix, start, [rows]))
        return PredictionOutput(predictions=scores, label_ids=labels, metrics=metrics)

    def _speed_metrics(self, prefix, start, datasets):
        """Trainer's <prefix>_runtime, _samples_per_second and _steps_per_second over these rows' batches."""
        batch_size = self.args.per_device_eval_batch_size
        return speed_metrics(prefix, start, num_samples=sum(len(rows) for rows in datasets),
                             num_steps=sum(math.ceil(len(rows) / batch_size) for rows in datasets))

    def _cast_for_full_eval(self):
        """--bf16_full_eval / --fp16_full_eval: outside training, evaluate and predict with the model cast to that
        precision, as Trainer's evaluation loop does (in place: the model stays cast)."""
        dtype = full_eval_dtype(self.args)
        if dtype is not None and not self.is_in_train:
            self.model.to(dtype=dtype, device=self.args.device)

    def _prediction_options(self):
        return {"batch_size": self.args.per_device_eval_batch_size, "max_length": self.args.max_seq_length,
                "bf16": self.args.bf16}

    def _user_metrics(self, task, scores, labels, prefix, reported):
        """`compute_metrics(EvalPrediction)` on one task's scores and gold labels, as "<prefix>_<task>_<name>":
        beside the task's own metrics, which it may not replace (the overall score is made of them)."""
        if self.compute_metrics is None:
            return {}
        prediction = EvalPrediction(predictions=scores, label_ids=np.asarray(labels))
        # batch_eval_metrics: a metric that gathers batch by batch and answers at the last one, given the task's
        # predictions as that one batch.
        answer = (self.compute_metrics(prediction, compute_result=True) if self.args.batch_eval_metrics
                  else self.compute_metrics(prediction))
        if not isinstance(answer, dict):
            raise TypeError(f"compute_metrics must return a dict {{metric name: value}}; for task {task!r} it returned "
                            f"{type(answer).__name__}")
        metrics = {f"{prefix}_{task}_{name}": value for name, value in answer.items()}
        clashes = sorted(set(metrics) & set(reported))
        if clashes:
            raise ValueError(f"compute_metrics returned {', '.join(clashes)}, which MultitaskTrainer already reports; "
                             "name the metric otherwise")
        return metrics

    # ---- optimizer ---------------------------------------------------------------------------------------

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            args = self.args
            args.check_optimizer_choice()  # a hyperparameter trial may have set --optim
            self.optimizer = create_optimizer(
                _core(model if model is not None else self.model),
                lr=args.learning_rate,
                weight_decay=args.weight_decay,
                layerwise_lr_decay=args.layerwise_lr_decay,
                head_lr_multiplier=args.head_lr_multiplier,
                freeze_embeddings=args.freeze_embeddings,
                freeze_encoder=args.freeze_encoder,
                betas=(args.adam_beta1, args.adam_beta2),
                eps=args.adam_epsilon,
                use_torch_adamw=args.use_torch_adamw,
            )
            # Layer-wise decay, head multipliers and frozen parts all show here: the rates a run really used.
            logger.info("optimizer parameter groups:\n%s", describe_parameter_groups(self.optimizer))
        return self.optimizer

    def create_scheduler(self, num_training_steps, optimizer=None):
        if self.lr_scheduler is None:
            warmup = self.args.get_warmup_steps(num_training_steps)
            if warmup >= num_training_steps > 0:  # the learning rate would never reach --learning_rate
                logger.warning("the warmup (%d steps) is as long as the whole run (%d steps): the learning rate never "
                               "reaches --learning_rate %g", warmup, num_training_steps, self.args.learning_rate)
            # The arguments as they stand now (MultitaskTrainingArguments.scheduler_kwargs: a plateau watches the
            # best-model metric rise), not as they were when built.
            self.lr_scheduler = get_scheduler(
                self.args.lr_scheduler_type, optimizer=optimizer if optimizer is not None else self.optimizer,
                num_warmup_steps=warmup, num_training_steps=num_training_steps,
                scheduler_specific_kwargs=self.args.scheduler_kwargs(),
            )
            self._created_lr_scheduler = True
        return self.lr_scheduler

    # ---- gradient clipping: fewer passes over memory on a CPU (gradient_clipping.py)

    def _clip_grad_norm(self, model):
        if self._clips_as_torch(model):
            return clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
        return super()._clip_grad_norm(model)

    def _get_grad_norm(self, model, grad_norm=None):
        if grad_norm is None and self._clips_as_torch(model):  # the norm logged with --max_grad_norm 0
            grad_norm = clip_grad_norm_(model.parameters(), float("inf"))
        return super()._get_grad_norm(model, grad_norm=grad_norm)

    def _clips_as_torch(self, model):
        """Whether `Trainer` would clip with `torch.nn.utils.clip_grad_norm_` (DeepSpeed, FSDP and XLA clip their
        own way; a gradient scaler unscales first), which gradient_clipping.clip_grad_norm_ computes alike."""
        accelerator = self.accelerator
        return (accelerator.distributed_type in _PLAIN_CLIPPING and accelerator.scaler is None
                and not is_sagemaker_mp_enabled() and not self._has_mixed_mesh_grads(model))

    # ---- checkpoints: SMART's mean teacher and PCGrad's generator go with the optimizer (multitask_state.py)

    def _save(self, output_dir=None, state_dict=None):
        # Trainer saves a PeftModel's adapters alone; load_adapters also needs the heads they were trained on.
        peft_model = self.accelerator.unwrap_model(self.model)
        is_peft = hasattr(peft_model, "get_base_model")
        if is_peft:
            name_base_by_absolute_path(peft_model)
        super()._save(output_dir, state_dict)
        if is_peft and self.args.should_save:  # the main process alone writes (Trainer's _save returns on the others)
            write_base_config(peft_model, output_dir if output_dir is not None else self.args.output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        router = task_adapter_router(_core(model if model is not None else self.model))
        if router is not None:  # Trainer's load_adapter left the active adapter alone trainable
            router.restore_trainable()

    def _load_best_model(self):
        if task_adapter_router(_core(self.model)) is None:
            return super()._load_best_model()
        # Trainer looks for one adapter at the checkpoint's top; per-task adapters lie in a folder each, which
        # its checkpoint loading reads, heads included.
        logger.info("Loading the best model from %s (score: %s).", self.state.best_model_checkpoint, self.state.best_metric)
        self._load_from_checkpoint(self.state.best_model_checkpoint)

    def _save_optimizer_and_scheduler(self, output_dir):
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save:
            save_multitask_state(self.smart, self._pcgrad_generator, output_dir)
            save_optimizer_settings(self.args, output_dir)

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is not None:
            check_optimizer_settings(self.args, checkpoint)
            # Trainer has loaded the checkpoint's state: its step, kept now, since checkpoint rotation may delete
            # the checkpoint before the card tells where the run resumed.
            self.resumed_from_step = self.state.global_step or None
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        if not _has_optimizer_state(checkpoint):
            # Trainer resumes such a checkpoint (save_only_model) without a word.
            logger.warning("%s holds no optimizer state (a save_only_model checkpoint): training goes on from its "
                           "weights with AdamW's moments and the learning-rate schedule started afresh", checkpoint)
        load_multitask_state(self.smart, self._pcgrad_generator, checkpoint, _core(self.model), pcgrad=self.args.pcgrad)

    # ---- Hub ---------------------------------------------------------------------------------------------

    def create_model_card(self, language=None, license=None, tags=None, model_name=None, finetuned_from=None,
                          tasks=None, dataset_tags=None, dataset=None, dataset_args=None, model_id=None):
        """README.md (and metrics.json, training_config.json) in output_dir: minBERT's card of this run, from the
        evaluation of the model it holds and its arguments, with Trainer's card options in its front matter
        (trainer_card.py). `model_id`: what its usage snippet loads (default: the folder; a push names its repository)."""
        if not self.is_world_process_zero():
            return None
        from .trainer_card import write_trainer_card

        return write_trainer_card(self, _core(self.model), language=language, license=license, tags=tags,
                                  model_name=model_name, finetuned_from=finetuned_from, tasks=tasks,
                                  dataset_tags=dataset_tags, dataset=dataset, dataset_args=dataset_args, model_id=model_id)

    def push_to_hub(self, commit_message="End of training", blocking=True, token=None, revision=None, private=None, **kwargs):
        """Push the model folder's publishable files (weights, config, remote code, pipelines, tokenizer,
        card, metrics, plots) — not Trainer's whole output folder, and not a card Trainer writes over ours.
        `kwargs` are `create_model_card`'s, as for Trainer.push_to_hub; `blocking=False` returns the commit's
        Future."""
        from hf_minbert.hub import push_trainer_output

        return push_trainer_output(self, commit_message, token, revision, private,
                                   write_card=lambda repo_id: self.create_model_card(model_id=repo_id, **kwargs),
                                   blocking=blocking)

    def _push_from_checkpoint(self, checkpoint_folder):
        # Trainer copies only config and weights here: a remote user would lack the code (transformers#29714).
        from hf_minbert.hub import push_trainer_checkpoint

        push_trainer_checkpoint(self, checkpoint_folder)


def pair_embeddings(core, batch, outputs, task):
    """The two sentences' embeddings of a batch of pairs: the bi-encoder head's, or embedded here."""
    if outputs.embeddings_a is not None:  # a bi-encoder head already embedded both sides
        return outputs.embeddings_a, outputs.embeddings_b
    if "input_ids_a" not in batch:
        raise ValueError(f"task {task!r}: an embedding loss needs the separate sentences (input_ids_a/_b)")
    return (core.embed(batch["input_ids_a"], batch["attention_mask_a"], task=task),
            core.embed(batch["input_ids_b"], batch["attention_mask_b"], task=task))


def mnr_loss(core, batch, outputs, args):
    """The MNR loss of a batch of the MNR task (its pairs' embeddings: `pair_embeddings`)."""
    emb_a, emb_b = pair_embeddings(core, batch, outputs, args.mnr_task)
    return paraphrase_mnr_loss(
        emb_a,
        emb_b,
        batch["labels"].round(),
        scale=args.mnr_scale,
        symmetric=args.mnr_symmetric,
        keys_a=sentence_keys(batch["input_ids_a"], batch["attention_mask_a"]) if "input_ids_a" in batch else None,
        keys_b=sentence_keys(batch["input_ids_b"], batch["attention_mask_b"]) if "input_ids_b" in batch else None,
        gather_across_devices=args.mnr_gather_across_devices,
    )


def head_input_keys(spec):
    """The input columns a head reads: the joint sequence, the separate sentences, or (cosine feature) both."""
    if spec["pair_encoding"] == "bi":
        return SIDE_COLUMNS
    return JOINT_COLUMNS + SIDE_COLUMNS if spec["cosine_feature"] else JOINT_COLUMNS


def evaluation_metric_names(tasks):
    """The metrics `MultitaskTrainer.evaluate` reports for these tasks, without the "eval_" prefix."""
    names = [f"{task}_{key}" for task in tasks for key in METRIC_KEYS[task_schema(task).metric]]
    names.append("tasks_overall")
    if all(task in tasks for task in OVERALL_TASKS):
        names += ["overall", "mean"]
    return names


def resolve_best_model_metric(args, eval_tasks, custom_metrics=False):
    """Make `metric_for_best_model` one that evaluation will report, before any training. The default
    "overall" needs sst, para and sts: with other tasks it becomes "tasks_overall" (the same score over the
    tasks evaluated). Any other metric that will not exist is an error naming the ones that will; with
    `compute_metrics` (custom_metrics), any "<task>_<name>" of an evaluated task may be one of its metrics."""
    metric = args.metric_for_best_model
    if metric is None:
        return
    available = evaluation_metric_names(eval_tasks)
    name = metric[len("eval_"):] if metric.startswith("eval_") else metric
    if name == "overall" and name not in available:
        logger.info("metric_for_best_model: 'overall' needs sst, para and sts; evaluating %s, the best model is "
                    "picked by 'tasks_overall'", ", ".join(eval_tasks))
        args.metric_for_best_model = name = "tasks_overall"
    if custom_metrics and any(name.startswith(f"{task}_") for task in eval_tasks):
        return
    if name not in available:
        raise ValueError(f"--metric_for_best_model {metric!r} will not be reported when evaluating "
                         f"{', '.join(eval_tasks)}; choose one of: {', '.join(available)}")


def _labels_all_missing(rows, column):
    """Whether every label of `rows` is missing: None, or -1 (the label the Hub's GLUE test splits give rows)."""
    labels = rows.with_format("arrow")[column]
    if labels.null_count == len(labels):
        return True
    numeric = pa.types.is_integer(labels.type) or pa.types.is_floating(labels.type)
    return numeric and labels.null_count == 0 and bool((labels.to_numpy() == -1).all())


def _objective(key, metrics):
    """A hyperparameter trial's score: one metric of its evaluation."""
    if key not in metrics:
        raise ValueError(f"hyperparameter_search: the trial's evaluation reported no {key!r} (metric_for_best_model); "
                         f"it reported {', '.join(sorted(metrics))}")
    return metrics[key]


def flatten_metrics(metrics, prefix="eval"):
    """{"sst": {"accuracy": a}, "overall": o} -> {"eval_sst_accuracy": a, "eval_overall": o}."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update({f"{prefix}_{key}_{name}": v for name, v in value.items()})
        else:
            flat[f"{prefix}_{key}"] = value
    return flat


def _core(model):
    """The MinBertForMultitask inside DDP / accelerate / torch.compile wrappers and a peft PeftModel (whose adapter layers it
    holds: its parameter names are the plain model's, which the optimizer's LLRD groups and PCGrad read)."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):  # _orig_mod: torch.compile's wrapper
        model = getattr(model, "module", None) or model._orig_mod
    if hasattr(model, "get_base_model"):  # peft.PeftModel
        model = model.get_base_model()
    return model


def _check_max_seq_length(args, config):
    # Training rows may all be short enough; a longer evaluation row would then fail only after training.
    if args.max_seq_length > config.max_position_embeddings:
        raise ValueError(f"max_seq_length={args.max_seq_length} exceeds the model's max_position_embeddings "
                         f"({config.max_position_embeddings})")


def _check_task_dict(name, datasets, config):
    if datasets is None:
        return
    if not isinstance(datasets, dict) or not datasets:
        raise TypeError(f"{name} must be a non-empty dict {{task: dataset}}, got {type(datasets).__name__}")
    unknown = [task for task in datasets if task not in config.tasks]
    if unknown:
        raise ValueError(f"{name} names task(s) {unknown} that the model has no head for; its tasks: {list(config.tasks)}")
    for task, rows in datasets.items():
        check_task_rows(task, rows)
        _check_rows_readable(name, task, rows, config.task_spec(task))
    empty = [task for task, rows in datasets.items() if len(rows) == 0]
    if empty:
        raise ValueError(f"{name}: {', '.join(empty)} has no rows")


def _check_rows_readable(name, task, rows, spec):
    """A task's rows are read by its data schema (raw rows; every evaluation), which must suit its head; only
    tokenized training rows need none."""
    if name == "train_dataset" and is_tokenized(rows):
        return
    schema_columns = task_schema(task).text_columns if has_task_schema(task) else ()
    if is_tokenized(rows) and not all(column in rows.column_names for column in schema_columns):
        raise ValueError(f"{name}: task {task!r}: its rows are tokenized; evaluation and prediction tokenize the rows "
                         f"themselves: give the raw rows (columns {', '.join(schema_columns)} and the label)")
    if has_task_schema(task):
        mismatch = head_mismatch(task_schema(task), spec)
        if mismatch:
            raise ValueError(f"{name}: task {task!r}: {mismatch}")
    else:
        raise ValueError(f"{name}: task {task!r} has no data schema to read its rows by: describe its columns and "
                         "labels with hf_minbert.data.register_task_schema(TaskSchema(...))"
                         + (", or pass tokenized rows" if name == "train_dataset" else ""))


def _check_scorable(eval_dataset):
    # Checked before training: an evaluation that cannot give its score would end the run after its first epoch.
    for task, rows in (eval_dataset or {}).items():
        if has_task_schema(task):
            try:
                check_row_texts(task, rows)
                reason = unscorable_reason(task, rows)
            except DataError as error:  # a sentence that is no text, a label column missing, or a label that is not
                # the task's, naming its row
                raise DataError(f"eval_dataset: {error}") from None
            if reason:
                raise ValueError(f"eval_dataset: task {task!r}: {reason}")


def _check_peft_heads_trainable(model, tasks):
    """peft trains in full only the modules its config names (task_type SEQ_CLS: `classifier`, `score`), never
    minBERT's `heads.<task>`: the adapters would be fitted under frozen, randomly initialized heads."""
    if not hasattr(model, "get_base_model"):
        return
    for task in tasks:
        head = re.compile(rf"(^|\.)heads\.{re.escape(task)}\.")  # also its peft copies: heads.<task>.modules_to_save...
        parameters = [p for name, p in model.named_parameters() if head.search(name)]
        if parameters and not any(p.requires_grad for p in parameters):
            raise ValueError(
                f"task {task!r}: its head is frozen in this PeftModel, so only the adapters would train, under a "
                f"random head; give the peft config modules_to_save=['heads.{task}', ...] (one per task), or build "
                "the model with hf_minbert.adapters.add_adapters"
            )


def _has_optimizer_state(checkpoint):
    """Whether Trainer restores the optimizer and scheduler from `checkpoint`: an optimizer file (or an FSDP
    optimizer folder) and scheduler.pt, as Trainer._load_optimizer_and_scheduler asks."""
    names = os.listdir(checkpoint)
    optimizer = any(name in ("optimizer.pt", "optimizer.bin") or (name.startswith("optimizer")
                    and os.path.isdir(os.path.join(checkpoint, name))) for name in names)
    return optimizer and "scheduler.pt" in names


def _check_reentrant_checkpointing(args, tasks):
    """Reentrant gradient checkpointing cannot run `torch.autograd.grad`, which PCGrad (each task's gradient) and
    SMART's adversarial ascent take: refused by name, where torch would fail at the first step."""
    # transformers 5 names them activation_checkpointing(_kwargs) (gradient_ being the deprecated aliases).
    enabled = getattr(args, "activation_checkpointing", False) or args.gradient_checkpointing
    options = getattr(args, "activation_checkpointing_kwargs", None) or args.gradient_checkpointing_kwargs or {}
    if not enabled or not options.get("use_reentrant"):
        return
    smart_ascends = args.smart_variant != "gaussian" and any(args.per_task("smart_weight", tasks, default=0.0).values())
    users = [flag for flag, used in (("--pcgrad", args.pcgrad), ("--smart_weight", smart_ascends)) if used]
    if users:
        raise ValueError(f"gradient_checkpointing_kwargs use_reentrant=True cannot run {' and '.join(users)}, which "
                         "take torch.autograd.grad: use use_reentrant=False (transformers' default)")


def _check_trainer_options(kwargs, args):
    """Refuse the Trainer options a multitask run could only ignore, naming what to use instead."""
    if args.n_gpu > 1:  # one process seeing several GPUs: Trainer would wrap the model in nn.DataParallel
        raise ValueError(f"this process sees {args.n_gpu} GPUs: MultitaskTrainer trains one process per GPU "
                         "(torchrun --nproc_per_node N or accelerate launch), not nn.DataParallel; or set "
                         "CUDA_VISIBLE_DEVICES to one GPU")
    if (kwargs.get("optimizers") or (None,))[0] is not None:
        shaping = {"layerwise_lr_decay": args.layerwise_lr_decay != 1, "head_lr_multiplier": args.head_lr_multiplier != 1,
                   "use_torch_adamw": args.use_torch_adamw}
        given = [name for name, differs in shaping.items() if differs]
        if given:
            raise ValueError(f"{', '.join(given)}: these shape the optimizer MultitaskTrainer builds, and optimizers= "
                             "gives one already built; build its parameter groups with hf_minbert.optimization."
                             "create_optimizer, or leave them out")
    if kwargs.get("compute_loss_func") is not None:
        raise ValueError("compute_loss_func: MultitaskTrainer's loss is each task's head loss (plus SMART, MNR, CoSENT, "
                         "ordinal terms), one per batch task; weigh tasks with task_weights, or subclass and override "
                         "task_losses")
    if kwargs.get("optimizer_cls_and_kwargs") is not None:
        raise ValueError("optimizer_cls_and_kwargs: MultitaskTrainer builds hf_minbert's AdamW (or torch's, "
                         "use_torch_adamw) over its layer-wise parameter groups; pass optimizers=(optimizer, "
                         "scheduler) to train with another optimizer")
    collator = kwargs.get("data_collator")
    if collator is not None and not isinstance(collator, MultitaskCollator):
        raise TypeError(f"data_collator: MultitaskTrainer batches with a MultitaskCollator, which takes (task, row) "
                        f"pairs and returns {{task: batch}}; got {type(collator).__name__} (subclass MultitaskCollator "
                        "to batch otherwise)")
