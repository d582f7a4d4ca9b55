"""`minbert pretrain-mlm`: further masked-language-model pretraining on the task texts (seeds 001/002, after
Sun et al. 2019), the step before `minbert train`.

    minbert pretrain-mlm --data_dir ../shared/data --output_dir runs/mlm --num_train_epochs 3
    minbert train --model_name_or_path runs/mlm ...

The texts are the sentences of the tasks' train splits (sst's sentences, both sides of quora's and sts's
pairs), deduplicated. `DataCollatorForLanguageModeling` picks 15% of the tokens to predict, as BERT did (80%
become [MASK], 10% a random token, 10% stay). The encoder starts from --model_name_or_path (default: the
embedded all-MiniLM-L6-v2); a checkpoint without an MLM head gets a new one, its decoder tied to the word
embeddings. The dev splits' sentences that are not training texts (up to --max_eval_texts) measure the
held-out MLM loss before and after, with the same masks both times.

The output folder (weights, config, remote code, tokenizer, mlm_metrics.json) is what `minbert train
--model_name_or_path` fine-tunes: the encoder carries over and the MLM head is dropped, with a warning.
Every TrainingArguments flag is accepted (--learning_rate, --per_device_train_batch_size, --max_steps, ...),
or a JSON/YAML file of the same keys (config_file.py). The output folder is written as `minbert train`
writes its own (output_folder.py): aside in `<output_dir>.partial`, moved in complete, and a folder that
already holds a model is replaced only with --overwrite_output_dir. Every flag, the checkpoint and the output
folder are checked before the texts are read.
"""
import copy
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, HfArgumentParser, Trainer, TrainingArguments

logger = logging.getLogger("minbert.pretrain_mlm")


@dataclass
class MlmArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "minBERT or BERT checkpoint (dir or Hub id); default: the embedded all-MiniLM-L6-v2"}
    )
    data_dir: str = field(default="../shared/data", metadata={"help": "folder of the CS224N task files"})
    tasks: str = field(default="sst,para,sts", metadata={"help": "tasks whose train sentences are the texts, comma-separated"})
    task_schema: Optional[list[str]] = field(
        default=None, metadata={"help": "a task of one's own --tasks names: a JSON/YAML file of its data schema, one per "
                                        "task (as for minbert train)"}
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "fraction of the tokens chosen for prediction"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens per text (longer texts are truncated)"})
    max_train_texts: Optional[int] = field(default=None, metadata={"help": "use only the first N texts (quick runs)"})
    max_eval_texts: int = field(default=2000, metadata={"help": "held-out dev sentences for the MLM loss (0: none)"})
    skip_bad_rows: bool = field(default=True, metadata={"help": "skip malformed rows and report them; False: fail"})
    # TrainingArguments lost this field in transformers 5; here it means what it means to `minbert train`.
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "replace an --output_dir that already holds a model (refused otherwise)"}
    )

    def __post_init__(self):
        from hf_minbert.commands.common import home_path

        self.model_name_or_path, self.data_dir = home_path(self.model_name_or_path), home_path(self.data_dir)
        if not 0 < self.mlm_probability < 1:  # also refuses NaN
            raise ValueError(f"--mlm_probability must lie in (0, 1), got {self.mlm_probability}")
        if self.max_seq_length < 8:
            raise ValueError(f"--max_seq_length {self.max_seq_length} is too short")
        if self.max_train_texts is not None and self.max_train_texts < 1:
            raise ValueError(f"--max_train_texts must be at least 1, got {self.max_train_texts}")
        if self.max_eval_texts < 0:
            raise ValueError(f"--max_eval_texts must be at least 0, got {self.max_eval_texts}")

    def task_names(self) -> list:
        """The --tasks, each one with a data schema (its files can be read): a course task's, one a --task_schema
        file declares, or one the --model_name_or_path folder was trained on."""
        from hf_minbert.data import task_schema

        from .common import check_named_once
        from .task_schema_files import register_schema_files

        names = [task.strip() for task in self.tasks.split(",") if task.strip()]
        if not names:
            raise ValueError("--tasks: name at least one task")
        check_named_once("--tasks", names)
        unnamed = [schema.name for schema, _, _ in register_schema_files(self.task_schema) if schema.name not in names]
        if unnamed:
            raise ValueError(f"--task_schema declares {', '.join(unnamed)}, which --tasks {self.tasks} does not name")
        for task in names:
            try:
                task_schema(task)
            except ValueError:
                raise ValueError(f"--tasks: unknown task {task!r}: a task of one's own needs --task_schema FILE, or a "
                                 "--model_name_or_path folder trained on it") from None
        return names


@dataclass
class MlmTrainingArguments(TrainingArguments):
    """TrainingArguments, with the flags it would accept (or fail on naming no flag) checked first."""

    def __post_init__(self):
        from trainers.arguments import check_flags_of_several_processes, check_trainer_flags

        check_trainer_flags(self)
        super().__post_init__()
        check_flags_of_several_processes(self)


def parse_arguments(argv):
    from .config_file import parse_with_config_file

    parser = HfArgumentParser((MlmArguments, MlmTrainingArguments), prog="minbert pretrain-mlm")
    parser.set_defaults(output_dir="")  # unset, TrainingArguments would pick ./trainer_output: check_run refuses it
    return parse_with_config_file(parser, argv)


def task_texts(data_dir, tasks, split, skip_bad_rows=True):
    """Every sentence of `split` of `tasks` (each side of a pair), stripped and deduplicated, in file order."""
    from hf_minbert.data import read_task_splits, task_schema

    texts = {}
    for task in tasks:
        splits, reports = read_task_splits(data_dir, task, (split,), skip_bad_rows=skip_bad_rows)
        (logger.warning if reports[split].skipped else logger.info)(str(reports[split]))
        for column in task_schema(task).text_columns:
            texts.update(dict.fromkeys(text.strip() for text in splits[split][column]))
    return list(texts)


def tokenize_texts(texts, tokenizer, max_length):
    """A Dataset of `input_ids` / `attention_mask` / `token_type_ids`, one row per text (unpadded)."""
    import datasets

    rows = datasets.Dataset.from_dict({"text": texts})
    return rows.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=["text"],
        desc="tokenizing",
    )


class MaskingTrainer(Trainer):
    """Trainer that masks each training batch in its own step, not in the collator: the data loader collates one
    batch ahead, so masks drawn there would come from the generator state a checkpoint saves after the step
    before, and a resumed run would draw other masks than the uninterrupted one. Drawn in the step, they come
    from the state Trainer seeds and restores, as dropout's do. Evaluation batches come masked by the collator."""

    def __init__(self, *args, masker: DataCollatorForLanguageModeling, **kwargs):
        super().__init__(*args, data_collator=masker, **kwargs)
        self.masker = masker
        self.special_ids = torch.tensor(self.processing_class.all_special_ids)  # never masked

    def get_train_dataloader(self):
        from transformers import DataCollatorWithPadding

        masking, self.data_collator = self.data_collator, DataCollatorWithPadding(self.processing_class)
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = masking

    def compute_loss(self, model, inputs, *args, **kwargs):
        if "labels" not in inputs:  # a training batch: mask it here (on the CPU generator, where Trainer seeds it)
            ids = inputs["input_ids"]
            cpu_ids = ids.cpu()
            special = torch.isin(cpu_ids, self.special_ids)
            masked, labels = self.masker.torch_mask_tokens(cpu_ids.clone(), special_tokens_mask=special)
            inputs = {**inputs, "input_ids": masked.to(ids.device), "labels": labels.to(ids.device)}
        return super().compute_loss(model, inputs, *args, **kwargs)


def held_out_loss(trainer, make_collator):
    """The MLM loss on the trainer's eval texts with masks from a freshly seeded collator, so that losses measured
    before and after training see the same masks; the plain loss, without --label_smoothing_factor's smoothing
    (perplexity is of the model's own probabilities)."""
    evaluation_collator, trainer.data_collator = trainer.data_collator, make_collator()
    smoother, trainer.label_smoother = trainer.label_smoother, None
    model = trainer.model
    if trainer.args.bf16_full_eval or trainer.args.fp16_full_eval:  # Trainer casts the model it evaluates in place:
        trainer.model = copy.deepcopy(model)  # a copy, so that the weights trained and saved stay float32
    try:
        return trainer.evaluate()["eval_loss"]
    finally:
        trainer.data_collator, trainer.label_smoother, trainer.model = evaluation_collator, smoother, model


def check_run(mlm_args, training_args):
    """(checkpoint path, tokenizer) after every check that needs no data: the numbers in range, the checkpoint
    exists and its positions hold --max_seq_length, its tokenizer has a mask token and fits its word table, and
    the output folder may be written."""
    from hf_minbert import MinBertConfig, embedded_base_model
    from hf_minbert.data.tokenization import save_input_names
    from hf_minbert.modeling_minbert import check_one_encoder
    from trainers.arguments import check_scheduler_builds, check_trainer_numbers

    from .common import check_model_source, check_tokenizer_fits
    from .output_folder import check_output_folder
    from .train import check_report_to

    check_trainer_numbers(training_args)
    check_scheduler_builds(training_args, training_args.lr_scheduler_kwargs)
    _check_optimizer_available(training_args)
    strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
    if mlm_args.max_eval_texts == 0 and strategy != "no":  # Trainer would find no eval dataset after the texts are read
        raise ValueError(f"--eval_strategy {strategy}: --max_eval_texts 0 holds out no text to evaluate on")
    if training_args.metric_for_best_model not in (None, "loss", "eval_loss"):  # the held-out MLM loss is all it scores
        raise ValueError(f"--metric_for_best_model {training_args.metric_for_best_model}: pretrain-mlm evaluates the "
                         "held-out masked-LM loss only (loss)")
    if not training_args.output_dir:
        raise ValueError("--output_dir is required: the folder the further-pretrained model is written to")
    if training_args.fp16 and training_args.device.type == "cpu":  # accelerate runs no fp16 autocast on a CPU
        raise ValueError("--fp16 needs a GPU: on a CPU it would silently train in fp32; use --bf16 (CPU autocast)")
    check_output_folder(training_args.output_dir, mlm_args.overwrite_output_dir,
                        training_args.resume_from_checkpoint, inputs={"--data_dir": mlm_args.data_dir})
    path = mlm_args.model_name_or_path or embedded_base_model()
    check_model_source("--model_name_or_path", path)
    config = MinBertConfig.from_pretrained(path)
    check_one_encoder(config, f"--model_name_or_path {path}",  # the masked-LM model is one encoder
                      "to pretrain further; start from the base model it was trained from")
    positions = config.max_position_embeddings
    if mlm_args.max_seq_length > positions:
        raise ValueError(f"--max_seq_length {mlm_args.max_seq_length} exceeds the model's "
                         f"max_position_embeddings ({positions}, {path})")
    tokenizer = save_input_names(AutoTokenizer.from_pretrained(path))
    if tokenizer.mask_token is None:
        raise ValueError(f"the tokenizer of {path} has no mask token: masked-LM pretraining needs one")
    check_tokenizer_fits(f"--model_name_or_path {path}", tokenizer, config.vocab_size)
    check_report_to(training_args.report_to)
    _check_resumed_checkpoint(training_args.resume_from_checkpoint, config)
    return path, tokenizer


def _check_optimizer_available(training_args):
    """--optim names an optimizer whose package is installed: Trainer would find out after the texts are read."""
    try:
        Trainer.get_optimizer_cls_and_kwargs(training_args)
    except ImportError as error:
        optim = getattr(training_args.optim, "value", training_args.optim)
        raise ValueError(f"--optim {optim}: {str(error).strip().splitlines()[0]}") from None
    except Exception:  # noqa: BLE001 - anything else needs the model, and Trainer reports it with the model at hand
        pass


def _check_resumed_checkpoint(checkpoint, config):
    """--resume_from_checkpoint DIR must be a checkpoint of this command on the same encoder: another fails while
    loading its weights or optimizer state, after the texts are read and the held-out loss measured."""
    from .train import check_checkpoint_files, checkpoint_config, shape_differences

    if not isinstance(checkpoint, str):  # True: the output folder's last checkpoint, found by Trainer
        return
    saved = checkpoint_config(checkpoint, "minbert pretrain-mlm")
    if "MinBertForMaskedLM" not in (saved.architectures or []):
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: a checkpoint of {', '.join(saved.architectures or ['?'])}, "
                         "not of minbert pretrain-mlm (MinBertForMaskedLM)")
    differences = shape_differences(saved, config)
    if differences:
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: its model differs from --model_name_or_path's "
                         f"({'; '.join(differences)}): resume from the model it was trained from")
    check_checkpoint_files(checkpoint, Path(checkpoint))


def main(argv=None) -> int:
    from hf_minbert.commands.common import register_model_schemas
    from hf_minbert.commands.train import seed_run

    from .output_folder import move_into_place, staged_output

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    mlm_args, training_args = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    register_model_schemas(mlm_args.model_name_or_path)  # a trained model's tasks of one's own
    tasks = mlm_args.task_names()
    path, tokenizer = check_run(mlm_args, training_args)

    train_texts = task_texts(mlm_args.data_dir, tasks, "train", mlm_args.skip_bad_rows)[: mlm_args.max_train_texts]
    seen = set(train_texts)
    eval_texts = []
    if mlm_args.max_eval_texts:  # 0: no held-out loss, so no dev file is read
        eval_texts = [t for t in task_texts(mlm_args.data_dir, tasks, "dev", mlm_args.skip_bad_rows) if t not in seen]
    eval_texts = eval_texts[: mlm_args.max_eval_texts]
    logger.info("%d distinct training texts, %d held-out dev texts", len(train_texts), len(eval_texts))

    seed_run(training_args)  # a new MLM head is drawn in load_model, before Trainer seeds
    model = load_model(path)
    # Checkpoints, then the model, go to <output_dir>.partial, which replaces the output folder once complete
    # (output_folder.py): a failed run leaves the old folder as it was, and no stale checkpoint stays beside the new.
    output = Path(training_args.output_dir)
    with staged_output(training_args) as staging:
        trainer, metrics = pretrain(model, tokenizer, mlm_args, training_args, train_texts, eval_texts)
    from model_cards.run_record import hub_base_id

    metrics = {"base_model": path, "base_model_id": hub_base_id(path), "tasks": tasks, **metrics}
    if training_args.should_save:
        trainer.save_model(str(staging))  # weights, config with auto_map, remote code, tokenizer
        from hf_minbert.evaluation import write_strict_json

        write_strict_json(staging / "mlm_metrics.json", metrics)
        move_into_place(staging, output)
    if trainer.is_world_process_zero():  # under torchrun every rank gets here; the summary is the run's, said once
        print(_summary(metrics, output))
    return 0


def load_model(path):
    """MinBertForMaskedLM from `path`; a checkpoint without an MLM head gets a new one (tied decoder)."""
    from hf_minbert import MinBertForMaskedLM

    from .common import readable_weights

    with readable_weights(f"--model_name_or_path {path}"):
        # float32 weights whatever the checkpoint was saved in: bf16 weights would round most updates away
        model, loading = MinBertForMaskedLM.from_pretrained(path, output_loading_info=True, dtype=torch.float32)
    if any(key.startswith("cls.predictions.") for key in loading["missing_keys"]):
        # (transformers may also call such a checkpoint "corrupted": it only lacks the MLM head)
        logger.warning("%s has no masked-LM head: a new one starts from scratch, its decoder tied to the word "
                       "embeddings", path)
    return model


def pretrain(model, tokenizer, mlm_args, training_args, train_texts, eval_texts):
    """(trainer, metrics): MLM training on `train_texts`, with the held-out loss on `eval_texts` before and
    after."""

    def make_collator(seed=None):
        # Unseeded, masks come from torch's global generator, which Trainer seeds and restores on resume.
        return DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_args.mlm_probability, seed=seed)

    def held_out_collator():
        return make_collator(seed=training_args.seed)

    trainer = MaskingTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenize_texts(train_texts, tokenizer, mlm_args.max_seq_length),
        eval_dataset=tokenize_texts(eval_texts, tokenizer, mlm_args.max_seq_length) if eval_texts else None,
        masker=make_collator(),
        processing_class=tokenizer,
    )
    from .output_folder import stopped_by_sigterm_raises

    with stopped_by_sigterm_raises(trainer):  # from here: Trainer answers SIGTERM from its construction on
        before = held_out_loss(trainer, held_out_collator) if eval_texts else None
        start = time.time()
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        train_seconds = time.time() - start
    after = held_out_loss(trainer, held_out_collator) if eval_texts else None
    return trainer, {
        "train_texts": len(train_texts),
        "held_out_texts": len(eval_texts),
        "train_loss": train_result.training_loss,
        "train_seconds": round(train_seconds, 1),
        "held_out_loss_before": before,
        "held_out_loss_after": after,
        "held_out_perplexity_before": _perplexity(before),
        "held_out_perplexity_after": _perplexity(after),
    }


def _perplexity(loss):
    return None if loss is None else math.exp(min(loss, 50.0))


def _summary(metrics, output):
    lines = [f"MLM pretraining on {metrics['train_texts']} texts in {metrics['train_seconds'] / 60:.1f} min; model in {output}"]
    if metrics["held_out_loss_before"] is not None:
        lines.append(
            f"  held-out MLM loss {metrics['held_out_loss_before']:.4f} -> {metrics['held_out_loss_after']:.4f} "
            f"(perplexity {metrics['held_out_perplexity_before']:.1f} -> {metrics['held_out_perplexity_after']:.1f}) "
            f"on {metrics['held_out_texts']} dev texts"
        )
    lines.append(f"  fine-tune it: minbert train --model_name_or_path {output}")
    return "\n".join(lines)
