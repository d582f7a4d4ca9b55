"""`MultitaskTrainingArguments`: TrainingArguments plus the knobs of the seeds' techniques.

Every field is a command-line flag through `HfArgumentParser` (and a key in a JSON/YAML config file).
Per-task values are written `sst=2,para=6,sts=8`, or as one number for every task (trainers/per_task.py).
"""
import importlib.util
import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Optional

from transformers import TrainingArguments

from .per_task import (
    as_float,
    check_per_task_counts,
    check_per_task_probabilities,
    check_per_task_weights,
    given_values,
    parse_per_task,
)
from .sampling import CAPPED_STRATEGIES, SAMPLING_STRATEGIES
from .smart import DROPOUT_MASKS

logger = logging.getLogger(__name__)

SMART_VARIANTS = ("smart", "gaussian")
SMART_OPTIONS = ("smart_variant", "smart_steps", "smart_step_size", "smart_epsilon", "smart_noise_std", "smart_norm",
                 "smart_dropout_masks")
MNR_OPTIONS = ("mnr_task", "mnr_scale", "mnr_symmetric", "mnr_gather_across_devices")
COSENT_OPTIONS = ("cosent_task", "cosent_scale", "cosent_gather_across_devices")
# The schedules Trainer steps with metric_for_best_model's value, each minimising it unless told mode="max".
METRIC_STEPPED_SCHEDULERS = ("reduce_lr_on_plateau", "greedy")
# SMART is off by default: its passes run in fp32 (bf16 would round its perturbation away), which makes an SST
# step about eight times as expensive, and it has not shown a gain above the seed noise (benchmarks/RESULTS.md).
DEFAULT_SMART_WEIGHT = "0"
# The treebank's ~150k SST phrases would make an epoch five times longer and proportional sampling would give
# them nine steps in ten: capped, each epoch trains on the next share of them beside every SST sentence (the
# train command reads a task's first source whole) and every Quora and STS row.
DEFAULT_TASK_EPOCH_ROWS = "sst=16000"
# Most treebank phrases are a few tokens long: packed up to 768 padded tokens, an SST step takes about twice the
# rows and an epoch a sixth fewer steps (benchmarks/batch_tokens.py), which brings the default within the hour.
DEFAULT_BATCH_TOKENS = "sst=768"
SMART_NORMS = ("linf", "l2")
# The losses on a pair task's two sentence embeddings (trainers/losses.py), by their flags' prefix.
EMBEDDING_LOSSES = {"mnr": "MNR", "cosent": "CoSENT"}
# The options that take one value per task, e.g. sst=2,para=6 (resolved by `per_task`).
PER_TASK_OPTIONS = ("task_weights", "smart_weight", "task_epoch_rows", "task_epoch_passes", "batch_tokens",
                    "pair_swap_probability")
DEFAULT_PAIR_SWAP_PROBABILITY = "para=0.5"
# The per-task options whose built-in value names tasks: left unset (None), it applies to the tasks it names that
# a run trains and where it can apply; a value given is checked against the run (see per_task), even one equal to it.
BUILT_IN_PER_TASK = {"task_epoch_rows": DEFAULT_TASK_EPOCH_ROWS, "batch_tokens": DEFAULT_BATCH_TOKENS,
                     "pair_swap_probability": DEFAULT_PAIR_SWAP_PROBABILITY}


def _has_accelerator():
    import torch

    return torch.cuda.is_available() or (hasattr(torch.backends, "mps") and torch.backends.mps.is_available())


def full_eval_dtype(args):
    """The precision --bf16_full_eval / --fp16_full_eval cast the model to for evaluation outside training, or None."""
    import torch

    return torch.float16 if args.fp16_full_eval else torch.bfloat16 if args.bf16_full_eval else None


def has_bf16_matmuls() -> bool:
    """Whether this machine multiplies bf16 matrices natively: a GPU that supports bf16, or a CPU with AVX512-BF16
    or AMX. A CPU without them (e.g. AVX2 only) runs bf16 autocast's matmuls about 90 times slower than fp32."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if _has_accelerator():
        return True
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if not all(probes):  # a torch without these probes: keep autocast, as before they existed
        return True
    return any(probe() for probe in probes)


def _check_range(name, value, low, high=math.inf, low_open=False, high_open=False):
    """`value` lies in the interval (NaN never does, nor ±inf: an unbounded end is open); else an error naming
    the flag."""
    high_open = high_open or high == math.inf
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"--{name} must lie in {interval}, got {value}")


def check_trainer_numbers(args):
    """TrainingArguments' numbers that Trainer itself checks only once the data is read and the model built
    (a batch size of 0, a negative learning rate), or never (a NaN max_grad_norm turns clipping off)."""
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("learning_rate", "weight_decay", "max_grad_norm", "adam_epsilon"):
        _check_range(name, getattr(args, name), 0)
    for name in ("adam_beta1", "adam_beta2"):
        _check_range(name, getattr(args, name), 0, 1, high_open=True)
    if args.max_steps <= 0:  # the epochs decide the length of the run
        _check_range("num_train_epochs", args.num_train_epochs, 0, low_open=True)
    for name in ("seed", "data_seed"):  # numpy's and torch's seeds
        if getattr(args, name) is not None and not 0 <= getattr(args, name) < 2**32:
            raise ValueError(f"--{name} must lie in [0, 2**32), got {getattr(args, name)}")
    if args.dataloader_num_workers < 0:
        raise ValueError(f"--dataloader_num_workers must be at least 0, got {args.dataloader_num_workers}")


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


def check_trainer_flags(args):
    """TrainingArguments' flags that it accepts, or fails on with an error naming no flag (int(inf)), and that
    Trainer or torch then fail on, or silently ignore, after the data is read and the model built: step intervals,
    warmup, NEFTune's noise, label smoothing, the compile mode, fp16 evaluation on a CPU, the packages a flag needs.
    Call it before TrainingArguments' own checks."""
    for name in ("logging_steps", "save_steps", "eval_steps"):  # NaN or -1 would turn logging or saving off
        if getattr(args, name) is not None:
            _check_range(name, getattr(args, name), 0, low_open=True)
    _check_range("warmup_steps", args.warmup_steps, 0)
    if args.warmup_steps >= 1 and args.warmup_steps != int(args.warmup_steps):
        raise ValueError(f"--warmup_steps {args.warmup_steps}: give a whole number of steps, or a share of the run "
                         "below 1")
    if args.neftune_noise_alpha is not None:
        _check_range("neftune_noise_alpha", args.neftune_noise_alpha, 0, low_open=True)
    _check_range("label_smoothing_factor", args.label_smoothing_factor, 0, 1, high_open=True)
    if args.torch_compile_mode is not None and args.torch_compile_mode not in COMPILE_MODES:
        raise ValueError(f"--torch_compile_mode {args.torch_compile_mode}: choose one of {', '.join(COMPILE_MODES)}")
    # On a CPU, CPU autocast meets the fp16 weights (torch fails at the first evaluation): bf16 is on by default
    # where the CPU multiplies bf16 natively.
    if args.fp16_full_eval and args.bf16 and (args.use_cpu or not _has_accelerator()):
        raise ValueError("--fp16_full_eval cannot evaluate under bf16 autocast on a CPU: use --bf16_full_eval, or "
                         "--bf16 false")
    for flag, package in (("use_liger_kernel", "liger_kernel"), ("deepspeed", "deepspeed")):
        if getattr(args, flag) and importlib.util.find_spec(package) is None:
            raise ValueError(f"--{flag} needs the {package} package, which is not installed: pip install {package}")


def check_flags_of_several_processes(args):
    """Flags that fail where TrainingArguments has set up several processes (torchrun, accelerate launch): call it
    after TrainingArguments' own checks."""
    if getattr(args, "enable_jit_checkpoint", False) and args.world_size > 1:
        raise ValueError("--enable_jit_checkpoint: transformers takes its checkpoint on SIGTERM in each process at "
                         "that process's own step, so several processes stop at different steps and wait on each "
                         "other; save checkpoints with --save_steps instead")


def check_scheduler_builds(args, kwargs):
    """Build the scheduler --lr_scheduler_type and --lr_scheduler_kwargs ask for on a stand-in optimizer: a
    keyword its function lacks, or one it needs, is an error naming both flags now, not a TypeError from inside
    Trainer once the data is read."""
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    name = _value(args.lr_scheduler_type)
    try:
        get_scheduler(name, optimizer, num_warmup_steps=0, num_training_steps=100, scheduler_specific_kwargs=kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--lr_scheduler_type {name} with --lr_scheduler_kwargs {json.dumps(kwargs or {})}: "
                         f"{str(error).strip().splitlines()[0]}") from None


@dataclass
class MultitaskTrainingArguments(TrainingArguments):
    # --- defaults that suit multitask fine-tuning of a small encoder on CPU ---
    output_dir: Optional[str] = field(default="runs/minbert", metadata={"help": "where checkpoints and the model go"})
    # TrainingArguments lost this field in transformers 5; `minbert train` honours it (Trainer never did).
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "replace an --output_dir that already holds a model (minbert train refuses otherwise)"}
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate (top encoder layer)"})
    # With the extra data an epoch is about twice as long as on the course's files alone, where dev scores
    # still rose up to the sixth epoch (benchmarks/RESULTS.md): three hold as many steps and fit the hour.
    num_train_epochs: float = field(default=3.0, metadata={"help": "epochs over the sampled task schedule"})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "examples per task batch"})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "examples per prediction batch"})
    # No warmup by default: every measured run of the default recipe trained without one (benchmarks/RESULTS.md).
    warmup_ratio: float = field(default=0.0, metadata={"help": "share of steps with linear warmup, in [0, 1) (not with "
                                                               "--warmup_steps)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW decoupled weight decay"})
    eval_strategy: str = field(default="epoch", metadata={"help": "when to score the dev sets"})
    save_strategy: str = field(default="epoch", metadata={"help": "when to save a checkpoint"})
    save_total_limit: Optional[int] = field(default=2, metadata={"help": "checkpoints kept on disk"})
    logging_steps: float = field(default=50, metadata={"help": "log losses every N steps"})
    metric_for_best_model: Optional[str] = field(default="overall", metadata={"help": "dev metric that picks the best checkpoint"})
    greater_is_better: Optional[bool] = field(
        default=None, metadata={"help": "the best metric is the largest (default: yes, but for a metric named *loss, as "
                                        "transformers infers it)"}
    )
    load_best_model_at_end: Optional[bool] = field(
        default=None, metadata={"help": "end with the best checkpoint by metric_for_best_model (default: yes when "
                                        "every evaluation saves a checkpoint)"}
    )
    report_to: Optional[str] = field(default="none", metadata={"help": "logging integrations"})
    bf16: Optional[bool] = field(
        default=None,
        metadata={"help": "bf16 autocast (default: on where the machine multiplies bf16 natively, a bf16 GPU or a CPU with "
                          "AVX512-BF16 or AMX; elsewhere bf16 matmuls run far slower than fp32)"},
    )

    group_by_length: bool = field(default=True, metadata={"help": "batch examples of similar length within each task"})

    # --- data ---
    max_seq_length: int = field(default=128, metadata={"help": "truncate inputs (pairs jointly) to this many tokens"})
    task_weights: str = field(default="", metadata={"help": "fixed loss weight per task: one number or sst=1,para=1,sts=1"})

    pair_swap_probability: Optional[str] = field(
        default=None,
        metadata={"help": "a cross-encoded pair task reads each pair the other way round ([CLS] b [SEP] a [SEP]) with "
                          "this probability, drawn afresh every step (trainers/pair_order.py; unset: "
                          f"{DEFAULT_PAIR_SWAP_PROBABILITY} where para is cross-encoded; empty = off)"},
    )

    # --- task sampling (trainers/sampling.py) ---
    task_sampling: str = field(default="proportional", metadata={"help": f"one of {', '.join(SAMPLING_STRATEGIES)}"})
    sampling_temperature: Optional[float] = field(default=None, metadata={"help": "temperature strategy: p_i ∝ n_i^(1/T)"})
    sampling_size_cap: Optional[int] = field(default=None, metadata={"help": "temperature strategy: cap n_i at this"})
    equal_split_parts: Optional[int] = field(default=None, metadata={"help": "equal_split: parts of the largest task"})
    task_epoch_rows: Optional[str] = field(
        default=None,
        metadata={"help": f"proportional/sequential: the most rows a task gives an epoch (unset: {DEFAULT_TASK_EPOCH_ROWS} "
                          "where SST is trained and the sampling caps; empty or 0 = all); a "
                          "larger task reads the next part of its reshuffled rows each epoch (minbert train: beside "
                          "its first source's rows, see --first_source_every_epoch)"},
    )
    task_epoch_passes: Optional[str] = field(
        default=None,
        metadata={"help": "proportional/sequential: how many times an epoch reads each row of a task, each pass in its "
                          "own order, e.g. sts=2 (up-sampling a small task; 1 = once; not with a --task_epoch_rows cap "
                          "on the same task)"},
    )

    batch_tokens: Optional[str] = field(
        default=None,
        metadata={"help": "proportional/sequential: a task's batches take more rows than the batch size while rows × "
                          "longest row stay within this many tokens, e.g. sst=1024 (short treebank phrases: fewer, "
                          f"fuller steps; needs --group_by_length; empty = off). Unset: {DEFAULT_BATCH_TOKENS} where "
                          "SST is trained and the sampling allows it"},
    )

    # --- SMART (trainers/smart.py) ---
    smart_weight: str = field(default=DEFAULT_SMART_WEIGHT, metadata={"help": "λ_s: one number or sst=2,para=6,sts=8 (0 = off)"})
    smart_variant: str = field(default="smart", metadata={"help": f"one of {', '.join(SMART_VARIANTS)}"})
    smart_steps: int = field(default=1, metadata={"help": "projected gradient-ascent steps K"})
    smart_step_size: float = field(default=1e-3, metadata={"help": "ascent step size η"})
    smart_epsilon: float = field(default=1e-5, metadata={"help": "radius ε of the perturbation ball"})
    smart_noise_std: Optional[float] = field(default=None, metadata={"help": "σ of the initial noise (default: 1e-5 smart, 0.05 gaussian as in seed 003)"})
    smart_norm: str = field(default="linf", metadata={"help": f"perturbation norm, one of {', '.join(SMART_NORMS)}"})
    smart_dropout_masks: str = field(default="fresh", metadata={"help": "perturbed passes draw fresh dropout masks, or replay the clean pass's"})
    smart_proximal_weight: float = field(default=0.0, metadata={"help": "μ of the Bregman proximal point term (0 = off)"})
    smart_momentum: float = field(default=0.999, metadata={"help": "β of the mean-teacher copy (0.99 for the first tenth of the steps, as in the paper)"})

    # --- MNR loss (trainers/losses.py) ---
    mnr_weight: float = field(default=0.0, metadata={"help": "weight of the MNR loss on para's paraphrase pairs (0 = off)"})
    mnr_task: str = field(default="para", metadata={"help": "the pair task whose positive pairs feed the MNR loss"})
    mnr_scale: float = field(default=20.0, metadata={"help": "cosine similarity scale (1 / temperature)"})
    mnr_symmetric: bool = field(default=False, metadata={"help": "average both ranking directions"})
    mnr_no_duplicates: bool = field(default=True, metadata={"help": "batches of the MNR task avoid repeated sentences"})
    mnr_gather_across_devices: bool = field(default=False, metadata={"help": "under data parallelism, each anchor ranks every rank's candidates, not only its own rank's"})

    # --- CoSENT loss (trainers/losses.py) ---
    cosent_weight: float = field(default=0.0, metadata={"help": "weight of the CoSENT ranking loss on the graded pairs of --cosent_task, beside its head's loss (0 = off)"})
    cosent_task: str = field(default="sts", metadata={"help": "the sentence-pair task whose graded pairs feed the CoSENT loss"})
    cosent_scale: float = field(default=20.0, metadata={"help": "CoSENT's cosine scale (1 / temperature)"})
    cosent_gather_across_devices: bool = field(default=False, metadata={"help": "under data parallelism, order every rank's pairs together, not each rank's alone"})

    # --- ordinal loss (trainers/ordinal.py) ---
    ordinal_weight: float = field(default=0.0, metadata={"help": "weight of the squared-EMD ordinal loss on the ordered classes of --ordinal_task, beside its cross-entropy (0 = off)"})
    ordinal_task: str = field(default="sst", metadata={"help": "the classification task whose classes are ordered grades (SST's 0-4)"})

    # --- PCGrad (trainers/pcgrad.py) ---
    pcgrad: bool = field(default=False, metadata={"help": "project conflicting task gradients (needs task_sampling=all_tasks)"})

    # --- optimizer (hf_minbert/optimization.py) ---
    layerwise_lr_decay: float = field(default=1.0, metadata={"help": "lr factor per layer toward the input (seed 002: 0.95)"})
    head_lr_multiplier: float = field(default=1.0, metadata={"help": "task heads' lr = learning_rate × this"})
    freeze_embeddings: bool = field(default=False, metadata={"help": "do not train the embedding layer"})
    freeze_encoder: bool = field(default=False, metadata={"help": "train the heads only (linear probing)"})
    use_torch_adamw: bool = field(default=False, metadata={"help": "torch.optim.AdamW instead of hf_minbert's AdamW"})

    # --- memory (trainers/cpu_memory.py) ---
    keep_freed_memory: bool = field(
        default=True,
        metadata={"help": "training on a Linux CPU: glibc keeps freed memory for reuse instead of returning it to the "
                          "system, so each step's large tensors are not faulted in afresh (the process keeps its peak size)"},
    )

    @property
    def left_to_default(self) -> set:
        """The per-task options left unset: their built-in value may name a task the run does not train; one the
        user gives is checked against the tasks (see per_task)."""
        return {name for name in BUILT_IN_PER_TASK if getattr(self, name) is None}

    def _choose_precision(self):
        # bf16 and fp32 scored alike (benchmarks/RESULTS.md): bf16 is the default only where it is the faster.
        native = has_bf16_matmuls()
        if self.bf16 is None:
            self.bf16 = native and not self.fp16
            if not native:
                logger.info("bf16 autocast off: this machine has no native bf16 matmuls (AVX512-BF16, AMX or a bf16 "
                            "GPU), where fp32 is many times faster; --bf16 true turns it on")
        elif self.bf16 and not native:
            logger.warning("--bf16 true on a machine without native bf16 matmuls (AVX512-BF16, AMX or a bf16 GPU): "
                           "they will run many times slower than in fp32")

    def _check_warmup(self):
        _check_range("warmup_ratio", self.warmup_ratio, 0, 1, high_open=True)
        if self.warmup_ratio > 0 and self.warmup_steps != 0:
            raise ValueError("--warmup_ratio and --warmup_steps are both set: give one")

    def get_warmup_steps(self, num_training_steps: int) -> int:
        # transformers 5's TrainingArguments has no warmup_ratio: Trainer asks this method. Read here rather
        # than written into warmup_steps, so that a copy with another warmup_ratio (dataclasses.replace) holds.
        if self.warmup_ratio > 0:
            return math.ceil(num_training_steps * self.warmup_ratio)
        return super().get_warmup_steps(num_training_steps)

    def __post_init__(self):
        if self.ddp_find_unused_parameters is None:
            # A step trains one task's head (or, under all_tasks, backpropagates each task's loss in turn), so
            # some parameters get no gradient in a step; transformers turns the search off under gradient
            # checkpointing, and the second step then fails in DDP's reduction.
            self.ddp_find_unused_parameters = True
        best_model_by_default = self.load_best_model_at_end is None
        if best_model_by_default:
            self.load_best_model_at_end = False  # decided below, once TrainingArguments has resolved the schedules
        self._choose_precision()
        # bf16 on a machine without a GPU means the CPU, which TrainingArguments only allows with use_cpu.
        if (self.bf16 or self.bf16_full_eval) and not self.use_cpu and not _has_accelerator():
            self.use_cpu = True
        self._check_warmup()
        check_trainer_flags(self)
        self.check_optimizer_choice()  # before TrainingArguments turns optim into an enum (and again at training)
        self._check_compile_backend()  # accelerate's own message would not name the flag
        if isinstance(self.resume_from_checkpoint, str):  # a path (TrainingArguments expands only output_dir's ~)
            self.resume_from_checkpoint = os.path.expanduser(self.resume_from_checkpoint)
        super().__post_init__()
        check_flags_of_several_processes(self)
        self._check_scheduler_kwargs()
        check_scheduler_builds(self, self.scheduler_kwargs())
        if self.include_for_metrics:  # MultitaskTrainer scores each task from its predictions alone
            given = self.include_for_metrics
            raise ValueError(f"--include_for_metrics {given if isinstance(given, str) else ' '.join(given)}: MultitaskTrainer's "
                             "compute_metrics receives each task's scores and gold labels only, no inputs or losses")
        if self.prediction_loss_only:  # Trainer would report eval_loss alone; MultitaskTrainer never computes one
            raise ValueError("--prediction_loss_only: MultitaskTrainer evaluates each task by its metrics (accuracy, "
                             "Pearson's r) from its predictions, and reports no evaluation loss")
        self._check_batching_flags()
        if best_model_by_default:
            self.load_best_model_at_end = self._saves_at_every_evaluation()
        if self.task_sampling not in SAMPLING_STRATEGIES:
            raise ValueError(f"--task_sampling {self.task_sampling!r}: choose one of {', '.join(SAMPLING_STRATEGIES)}")
        if self.smart_variant not in SMART_VARIANTS:
            raise ValueError(f"--smart_variant {self.smart_variant!r}: choose one of {', '.join(SMART_VARIANTS)}")
        if self.smart_norm not in SMART_NORMS:
            raise ValueError(f"--smart_norm {self.smart_norm!r}: choose one of {', '.join(SMART_NORMS)}")
        if self.smart_dropout_masks not in DROPOUT_MASKS:
            raise ValueError(f"--smart_dropout_masks {self.smart_dropout_masks!r}: choose one of {', '.join(DROPOUT_MASKS)}")
        if self.pcgrad and self.task_sampling != "all_tasks":
            raise ValueError("--pcgrad needs every task's loss in one step: use --task_sampling all_tasks")
        if self.pcgrad and self.fp16:  # its per-task autograd.grad bypasses the loss scaler that fp16 needs
            raise ValueError("--pcgrad does not work with --fp16 (its task gradients bypass fp16 loss scaling): use --bf16 or fp32")
        # On a CPU accelerate runs no fp16 autocast: the run would be fp32 while its record says fp16.
        if self.fp16 and (self.use_cpu or not _has_accelerator()):
            raise ValueError("--fp16 needs a GPU: on a CPU it would silently train in fp32; use --bf16 (CPU autocast)")
        if self.max_seq_length < 8:
            raise ValueError(f"--max_seq_length {self.max_seq_length} is too short")
        for name in ("smart_steps",):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        self._check_numbers()
        self._check_loss_options_apply()

    def _check_batching_flags(self):
        """TrainingArguments' sampler and label flags, which MultitaskTrainer's task batches do not read: a value
        other than the default would stand in the run's record as if it had shaped the run."""
        for name, default in (("train_sampling_strategy", "random"), ("length_column_name", "length")):
            if getattr(self, name, default) != default:  # transformers 5's; older versions lack them
                raise ValueError(f"--{name} {getattr(self, name)}: MultitaskTrainer draws each step's batch by "
                                 "--task_sampling, rows of similar length together by --group_by_length")
        names = [self.label_names] if isinstance(self.label_names, str) else self.label_names
        if names is not None and list(names) != ["labels"]:
            raise ValueError(f"--label_names {' '.join(map(str, names)) or '(none)'}: every task's rows hold their "
                             "labels as 'labels', which MultitaskTrainer reads")

    def _check_compile_backend(self):
        from accelerate.utils import DynamoBackend

        backends = [backend.value.lower() for backend in DynamoBackend]
        if self.torch_compile_backend is not None and self.torch_compile_backend.lower() not in backends:
            raise ValueError(f"--torch_compile_backend {self.torch_compile_backend}: choose one of {', '.join(backends)}")

    def _check_scheduler_kwargs(self):
        # TrainingArguments reads text that starts with "{" as JSON; anything else stays a string, which Trainer
        # would pass to the scheduler as its keyword arguments after the data is read and the model built.
        if self.lr_scheduler_kwargs and not isinstance(self.lr_scheduler_kwargs, dict):
            raise ValueError(f"--lr_scheduler_kwargs must be a JSON object of the scheduler's keyword arguments, "
                             f"got {self.lr_scheduler_kwargs!r}")

    def check_optimizer_choice(self):
        """MultitaskTrainer always builds AdamW over its own parameter groups (hf_minbert/optimization.py) and
        never reads --optim: another optimizer asked for would silently be AdamW."""
        optim = str(getattr(self.optim, "value", self.optim))  # a name or an OptimizerNames
        # torch's AdamW by either name (set_optimizer(learning_rate=...) names the unfused one) is what trains.
        if optim not in (self.__dataclass_fields__["optim"].default, "adamw_torch", "adamw_torch_fused"):
            asked = f"--optim {optim}"
        elif self.optim_args:
            asked = f"--optim_args {self.optim_args}"
        else:
            return
        raise ValueError(f"{asked}: MultitaskTrainer always trains with AdamW over its parameter groups "
                         "(--layerwise_lr_decay, --head_lr_multiplier); --optim cannot choose another optimizer "
                         "or its arguments (torch's AdamW: --use_torch_adamw)")

    def _saves_at_every_evaluation(self):
        """Whether the best checkpoint can be restored at the end (`load_best_model_at_end`'s default): dev
        scored and a checkpoint saved at every evaluation. Saves every few evaluations (which Trainer allows)
        would miss a best evaluation between them, and Trainer would keep the last checkpoint that was the best so
        far when saved, or the last step's model. TrainingArguments has made the strategies enums and eval_steps a
        number by now."""
        evaluation, saving = _value(self.eval_strategy), _value(self.save_strategy)
        if evaluation == "no" or evaluation != saving:
            return False
        return evaluation != "steps" or self.save_steps == self.eval_steps

    def scheduler_kwargs(self):
        """The scheduler's keyword arguments as the run stands (read when the scheduler is built, so that a setter,
        an assignment or a hyperparameter trial is followed): Trainer steps ReduceLROnPlateau and GreedyLR with
        metric_for_best_model, whose default here ("overall") rises as the model improves, so the scheduler watches
        for a maximum where greater_is_better (their own default is a minimum)."""
        kwargs = dict(self.lr_scheduler_kwargs or {})
        if _value(self.lr_scheduler_type) in METRIC_STEPPED_SCHEDULERS and self.greater_is_better and "mode" not in kwargs:
            kwargs["mode"] = "max"
        return kwargs

    def _check_numbers(self):
        """Every number flag in its meaningful range, so a typo fails here rather than mid-training (or, for
        a NaN, never, leaving a model of NaNs)."""
        check_trainer_numbers(self)
        for name in ("task_weights", "smart_weight"):
            check_per_task_weights(getattr(self, name), name)
        check_per_task_probabilities(self.pair_swap_probability, "pair_swap_probability")
        check_per_task_counts(self.task_epoch_rows, "task_epoch_rows")
        check_per_task_counts(self.task_epoch_passes, "task_epoch_passes", minimum=1)
        if self.task_epoch_passes and self.task_sampling not in CAPPED_STRATEGIES:
            raise ValueError(f"--task_epoch_passes applies to --task_sampling {' or '.join(CAPPED_STRATEGIES)}, "
                             f"not {self.task_sampling}")
        check_per_task_counts(self.batch_tokens, "batch_tokens")
        if self.batch_tokens and not self._can_pack_by_tokens():
            if self.task_sampling not in CAPPED_STRATEGIES:
                raise ValueError(f"--batch_tokens applies to --task_sampling {' or '.join(CAPPED_STRATEGIES)}, "
                                 f"not {self.task_sampling}")
            if not self.group_by_length:
                raise ValueError("--batch_tokens needs --group_by_length true (a budget packs rows of similar length)")
            raise ValueError("--batch_tokens cannot be combined with --dataloader_drop_last (a packed task keeps its last batch)")
        for name in ("mnr_weight", "cosent_weight", "ordinal_weight", "smart_proximal_weight"):
            _check_range(name, getattr(self, name), 0)
        for name in ("mnr_scale", "cosent_scale", "smart_step_size", "smart_epsilon", "head_lr_multiplier"):
            _check_range(name, getattr(self, name), 0, low_open=True)
        _check_range("smart_momentum", self.smart_momentum, 0, 1, high_open=True)
        _check_range("layerwise_lr_decay", self.layerwise_lr_decay, 0, 1, low_open=True)
        if self.smart_noise_std is not None:
            _check_range("smart_noise_std", self.smart_noise_std, 0)
        if self.sampling_temperature is not None:
            _check_range("sampling_temperature", self.sampling_temperature, 0, low_open=True)
        for name in ("sampling_size_cap", "equal_split_parts"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        self._check_sampling_options_apply()  # after their ranges: a bad value is named as such first

    def _check_loss_options_apply(self):
        """An option of a loss its weight turns off would be ignored, yet stand in the run's record as if it had
        shaped the run: one set to other than its default is refused."""
        smart_off = not any(as_float(weight, "smart_weight") for weight in given_values(self.smart_weight, "smart_weight"))
        options = {"smart_weight": (smart_off, SMART_OPTIONS), "mnr_weight": (self.mnr_weight == 0, MNR_OPTIONS),
                   "cosent_weight": (self.cosent_weight == 0, COSENT_OPTIONS),
                   "ordinal_weight": (self.ordinal_weight == 0, ("ordinal_task",)),
                   "smart_proximal_weight": (self.smart_proximal_weight == 0, ("smart_momentum",))}
        for weight, (off, names) in options.items():
            changed = [name for name in names if off and getattr(self, name) != self.__dataclass_fields__[name].default]
            if changed:
                raise ValueError(f"--{changed[0]} {getattr(self, changed[0])}: --{weight} 0 turns its term off, so "
                                 "it would change nothing")

    def _check_sampling_options_apply(self):
        """An option of another sampling strategy than --task_sampling would be ignored, yet stand in the run's
        record as if it had shaped the run."""
        strategy_options = {"sampling_temperature": ("temperature",), "sampling_size_cap": ("temperature",),
                            "equal_split_parts": ("equal_split",), "task_epoch_rows": CAPPED_STRATEGIES}
        for name, strategies in strategy_options.items():
            value = getattr(self, name)
            if name == "task_epoch_rows":  # a count of 0 means no cap, under any strategy (counts are checked above)
                value = any(as_float(rows, name) > 0 for rows in given_values(value, name))
            if value and self.task_sampling not in strategies:
                raise ValueError(f"--{name} applies to --task_sampling {' or '.join(strategies)}, "
                                 f"not {self.task_sampling}")

    def check_tasks(self, tasks) -> None:
        """Every per-task option the user gave names only these tasks (the training tasks), so that a typo in a
        task name fails before the data is read, not when the option is first used."""
        for name in PER_TASK_OPTIONS:
            self.per_task(name, tasks, 0.0)
        self.check_some_task_weighted(tasks)

    def check_some_task_weighted(self, tasks) -> None:
        """A weight of 0 on every training task's loss would train nothing, and save the model as trained."""
        weights = parse_per_task(self.task_weights, "task_weights", list(tasks), 1.0, skip_unknown=True)
        if weights and not any(weights.values()):
            raise ValueError(f"--task_weights {self.task_weights}: every training task's loss is weighted 0, so "
                             "nothing would train (a task's weight scales its loss; 1 is the default)")

    def embedding_losses(self) -> dict:
        """{loss: its task} of the embedding losses that are on ("mnr", "cosent": EMBEDDING_LOSSES)."""
        return {loss: getattr(self, f"{loss}_task") for loss in EMBEDDING_LOSSES if getattr(self, f"{loss}_weight") > 0}

    def embedding_loss_tasks(self):
        """The tasks whose batches must also carry their separate sentences, for the MNR or CoSENT loss."""
        return set(self.embedding_losses().values())

    def _can_pack_by_tokens(self):
        return self.task_sampling in CAPPED_STRATEGIES and self.group_by_length and not self.dataloader_drop_last

    def epoch_rows(self, tasks) -> Optional[dict]:
        """--task_epoch_rows for these tasks as the sampler's `epoch_rows` (None: no task is capped)."""
        if self.task_sampling not in CAPPED_STRATEGIES:
            return None
        caps = {task: int(rows) for task, rows in self.per_task("task_epoch_rows", tasks, 0).items() if rows > 0}
        return caps or None

    def epoch_passes(self, tasks) -> Optional[dict]:
        """--task_epoch_passes for these tasks as the sampler's `epoch_passes` (None: every task read once)."""
        if self.task_sampling not in CAPPED_STRATEGIES:
            return None
        passes = {task: int(n) for task, n in self.per_task("task_epoch_passes", tasks, 1).items() if n > 1}
        caps = self.epoch_rows(tasks) or {}
        for task in passes:
            if task not in caps:
                continue
            if "task_epoch_rows" in self.left_to_default:
                raise ValueError(f"--task_epoch_passes gives {task} {passes[task]} passes an epoch, but {task} is capped "
                                 f"by the built-in --task_epoch_rows {DEFAULT_TASK_EPOCH_ROWS}: name the tasks to read "
                                 f"more than once (e.g. --task_epoch_passes sts=2)")
            raise ValueError(f"--task_epoch_passes and --task_epoch_rows both name {task}: a task is either read "
                             "several times an epoch or capped, not both")
        return passes or None

    def pair_swap_probabilities(self, specs) -> dict:
        """--pair_swap_probability for the tasks of `specs` ({task: head spec}): {task: probability} of the tasks
        that swap. The built-in default stands aside where a task's head has no pair order (not cross-encoded);
        a value the user gives is checked against the heads by `check_pair_order`."""
        chosen = {task: p for task, p in self.per_task("pair_swap_probability", specs, 0.0).items() if p > 0}
        if "pair_swap_probability" in self.left_to_default:
            chosen = {task: p for task, p in chosen.items() if specs[task]["pair_encoding"] == "cross"}
        return chosen

    def token_budgets(self, tasks) -> Optional[dict]:
        """--batch_tokens for these tasks as the sampler's `token_budget` (None: no task packs by tokens). The
        built-in budget stands aside where the sampling cannot pack; a budget the user gives is refused there."""
        if not self._can_pack_by_tokens():
            return None
        budgets = {task: int(tokens) for task, tokens in self.per_task("batch_tokens", tasks, 0).items() if tokens > 0}
        return budgets or None

    def per_task(self, name: str, tasks, default: float) -> dict:
        """A per-task option (`smart_weight`, `task_weights`) resolved for these tasks. A value the user gave
        must name only these tasks; the built-in default may name a task this run does not train."""
        value = getattr(self, name)
        if value is None:
            value = BUILT_IN_PER_TASK.get(name)
        return parse_per_task(value, name, list(tasks), default, skip_unknown=name in self.left_to_default)


def _value(option):
    """A TrainingArguments option as its string: an enum member's value, or the string given."""
    return getattr(option, "value", option)
