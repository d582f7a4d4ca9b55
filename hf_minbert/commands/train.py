"""`minbert train`: multitask fine-tuning of minBERT on the CS224N task files.

    minbert train --data_dir ../shared/data --output_dir runs/minbert
    minbert train --smart_weight sst=2,para=6,sts=8 --task_sampling round_robin --pcgrad ...
    minbert train --architecture cerbertus --task_specific_layers 2 --static_encoder --pair_encoding sts=bi
    minbert train config.json   (or config.yaml: the same keys; or --config FILE among the flags)

Every MultitaskTrainingArguments / TrainingArguments flag is accepted. The output directory holds the
model (safetensors + remote code), its tokenizer, metrics.json, training_curves.png and a model card. It is
written aside and moved in complete (see hf_minbert/commands/output_folder.py): a folder that already holds a
model is replaced only with --overwrite_output_dir, and a run that fails leaves it as it was.

--seed fixes the run: the random heads are drawn after seeding, and Trainer draws the data order and dropout
from the same seed (--data_seed: the order alone), so the same command gives bitwise the same weights on the
same machine.

Every flag is checked, and all data is read, before the model is built: a bad flag or a bad file is one line
on stderr (exit status 2), not a traceback after training.

    minbert train --peft lora --lora_r 8 [--peft_per_task]   (or --peft ia3|loha|lokr|vera, --peft_config FILE)

trains PEFT adapters and the heads on a frozen encoder; the output directory then holds the exported model
(see hf_minbert.adapters.export_model) and adapter/ the adapters themselves.

This module runs the command: it checks the run, builds the model, trains it and saves the output folder. The
flags are parsed in train_arguments.py, the heads to train come from head_options.py, and the data is read in
train_data.py.
"""
import copy
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

from transformers import AutoTokenizer, EarlyStoppingCallback

from hf_minbert import recipe

from .common import check_model_source, check_tokenizer_fits, first_line, load_tokenizer, readable_weights
from .head_options import base_task_specs, task_specs
from .train_arguments import ARCHITECTURES, DEV_FILE_TASKS, model_path, parse_arguments
from .train_data import always_rows, load_task_data, skipped_rows_record, training_data_record, training_source_paths

logger = logging.getLogger("minbert.train")

ADAPTER_SUBDIR = "adapter"  # where a PEFT run keeps its adapters, beside the exported model


def seed_run(training_args):
    """Seed Python, numpy and torch from --seed (deterministic kernels too with --full_determinism) before
    anything random is drawn: Trainer seeds only when it is built, after the fresh heads were initialized."""
    from transformers import enable_full_determinism, set_seed

    if training_args.full_determinism:
        enable_full_determinism(training_args.seed)
    else:
        set_seed(training_args.seed)


def architecture_overrides(model_args, num_layers):
    """The config fields that --architecture, --task_specific_layers and --static_encoder ask for, for a
    checkpoint of `num_layers` encoder layers; none given: the checkpoint's own architecture."""
    architecture, k = model_args.architecture, model_args.task_specific_layers
    if architecture is None and k is not None:
        architecture = "cerbertus"
    overrides = {}
    if architecture is not None:
        if architecture not in ARCHITECTURES:
            raise ValueError(f"--architecture: choose one of {', '.join(ARCHITECTURES)}; got {architecture!r}")
        implied = {"multitask": 0, "cerbertus": k, "triple": num_layers}[architecture]
        if architecture == "cerbertus" and (k is None or not 1 <= k <= num_layers):
            raise ValueError(
                f"--architecture cerbertus needs --task_specific_layers k with 1 <= k <= {num_layers} "
                f"(the checkpoint's encoder layers); got {k}"
            )
        if k is not None and k != implied:
            raise ValueError(f"--task_specific_layers {k} contradicts --architecture {architecture} "
                             f"(which means {implied} task-specific layers here)")
        overrides = {"task_specific_layers": implied, "task_specific_embeddings": architecture == "triple"}
    if model_args.static_encoder:
        overrides["static_encoder"] = True
    return overrides


def _read_paths(data_args, specs):
    """{flag: path or paths} of the data the run reads, none of which replacing the output folder may delete."""
    paths = {"--data_dir": data_args.data_dir,
             "--train_sources": [path for paths in training_source_paths(data_args, list(specs)).values()
                                 for path in paths]}
    paths.update({f"--{task}_dev": getattr(data_args, f"{task}_dev", None) for task in specs})
    # The base model may be the folder replaced (training it further in place): it is read whole before training,
    # and the new model replacing it is what --overwrite_output_dir asks for.
    return paths


def check_run(model_args, data_args, training_args, specs, adapter_args=None):
    """What only the command can check, before reading data or building anything: the output folder, and
    the flags that depend on the checkpoint, the tasks or the adapters."""
    from trainers.trainer import resolve_best_model_metric

    from .output_folder import check_output_folder

    check_output_folder(training_args.output_dir, training_args.overwrite_output_dir,
                        training_args.resume_from_checkpoint, inputs=_read_paths(data_args, specs))
    _check_checkpoint_flags(model_args, training_args, specs)
    if adapter_args is None or not adapter_args.enabled:  # an adapters' checkpoint holds adapters, not the model
        _check_resumed_checkpoint(model_args, training_args, specs)
    else:
        _check_resumed_adapter_checkpoint(adapter_args, training_args, specs)
    _check_task_flags(training_args, specs)
    resolve_best_model_metric(training_args, list(specs))  # as the trainer will, evaluating every task
    _check_frozen_parts(training_args, specs, adapter_args)
    if adapter_args is not None and adapter_args.enabled:
        _check_adapter_flags(adapter_args, training_args)
        _check_adapter_targets(model_args, specs, adapter_args)
    if data_args.early_stopping_patience and not (training_args.load_best_model_at_end
                                                   and training_args.metric_for_best_model):
        raise ValueError("--early_stopping_patience needs --load_best_model_at_end and --metric_for_best_model "
                         "(evaluation and saving on the same schedule)")
    _check_implied_pairs_apply(data_args, specs)
    _check_dev_files_apply(data_args, specs)
    check_push_to_hub(training_args)


def check_push_to_hub(training_args):
    """--push_to_hub: the repository name is one and the Hub takes the token, now rather than after training."""
    if not training_args.push_to_hub:
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from hf_minbert.hub import HubAccessError, check_hub_access

    if training_args.hub_model_id is not None:
        try:
            validate_repo_id(training_args.hub_model_id)
        except HFValidationError as error:
            raise ValueError(f"--hub_model_id {training_args.hub_model_id}: {first_line(error)}") from None
    try:
        check_hub_access(training_args.hub_token)
    except HubAccessError as error:
        raise ValueError(f"--push_to_hub: {error}") from None


def _check_dev_files_apply(data_args, specs):
    # A dev file of a task not trained is not read: said, in case --tasks or the flag holds a typo (a config file
    # naming every task's dev file may serve runs of fewer tasks, so it is no error).
    for task in DEV_FILE_TASKS:
        if getattr(data_args, f"{task}_dev", None) and task not in specs:
            logger.warning("--%s_dev %s: %s is not among the tasks trained (%s); the file is not read", task,
                           getattr(data_args, f"{task}_dev"), task, ", ".join(specs))


def _check_implied_pairs_apply(data_args, specs):
    from hf_minbert.data import has_task_schema, implies_pairs

    if data_args.implied_pairs_per_question and not any(has_task_schema(task) and implies_pairs(task) for task in specs):
        raise ValueError(f"--implied_pairs_per_question: none of the tasks trained ({', '.join(specs)}) is a symmetric "
                         "pair task labelled 0/1, such as para: it would imply no pair")


def _check_checkpoint_flags(model_args, training_args, specs):
    """The flags that must fit the checkpoint: the sequence length its positions allow, the architecture its
    layers allow, the tasks its task-owned layers allow."""
    from hf_minbert import MinBertConfig
    from hf_minbert.configuration_minbert import check_segment_embeddings
    from hf_minbert.modeling_minbert_conversion import check_architecture_change

    path = model_path(model_args)
    check_model_source("--model_name_or_path", path)  # its weights read back
    config = MinBertConfig.from_pretrained(path)
    tokenizer = load_tokenizer(path, "--model_name_or_path")
    check_tokenizer_fits(f"--model_name_or_path {path}", tokenizer, config.vocab_size)
    if tokenizer.padding_side == "left":  # the trainer refuses it too, once the data is read
        raise ValueError(f"--model_name_or_path {path}: its tokenizer pads on the left, and minBERT reads each row's "
                         "[CLS] at position 0: set \"padding_side\": \"right\" in its tokenizer_config.json")
    if training_args.max_seq_length > config.max_position_embeddings:
        raise ValueError(f"--max_seq_length {training_args.max_seq_length} exceeds the model's "
                         f"max_position_embeddings ({config.max_position_embeddings}, {path})")
    check_architecture_change(config, architecture_overrides(model_args, config.num_hidden_layers), path)
    check_segment_embeddings(config.type_vocab_size, specs, f"--model_name_or_path {path}")
    if config.output_attentions:  # every step would compute them; transformers 5 then refuses to save the model
        raise ValueError(f"--model_name_or_path {path}: its config.json sets output_attentions true, which "
                         "transformers cannot save beside SDPA attention: set it to false (a call with "
                         "output_attentions=True still returns them)")
    new = [task for task in specs if task not in config.tasks]
    if (config.task_specific_layers or config.task_specific_embeddings) and new:
        raise ValueError(f"new task(s) {', '.join(new)}: {path} is a {config.architecture} model, each of its tasks "
                         f"owning encoder layers ({', '.join(config.tasks)}), and a new task cannot get its own from "
                         "it: train the new task from a checkpoint with one shared encoder (--architecture multitask)")
    check_report_to(training_args.report_to)


# What a checkpoint's weights and optimizer state are shaped by: the encoder's sizes and layout, and per head
# what sizes its layers.
SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "task_specific_layers", "task_specific_embeddings",
                "static_encoder")
HEAD_SHAPE_FIELDS = ("kind", "labels", "pair_encoding", "head_layers", "bi_features", "cosine_feature")


def _check_resumed_checkpoint(model_args, training_args, specs):
    """--resume_from_checkpoint DIR must be a Trainer checkpoint of the model this run builds: another layout
    fails in the middle of loading its weights or optimizer state, after the data is read."""
    from hf_minbert import MinBertConfig
    from trainers.multitask_state import check_optimizer_settings

    checkpoint = training_args.resume_from_checkpoint
    if not isinstance(checkpoint, str):  # True: the output folder's last checkpoint, found by Trainer
        return
    folder, saved = Path(checkpoint), checkpoint_config(checkpoint, "minbert train")
    path, overrides = model_overrides(model_args, specs)
    run = MinBertConfig.from_pretrained(path, **overrides)
    differences = shape_differences(saved, run)
    if set(saved.tasks) != set(run.tasks):
        differences.append(f"tasks {','.join(sorted(saved.tasks))} against {','.join(sorted(run.tasks))}")
    else:
        differences += [f"{task}'s {field} {saved.tasks[task][field]} against {run.tasks[task][field]}"
                        for task in run.tasks for field in HEAD_SHAPE_FIELDS
                        if saved.tasks[task][field] != run.tasks[task][field]]
    if differences:
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: its model differs from the one these flags build "
                         f"({'; '.join(differences)}): resume with the flags it was trained with")
    check_checkpoint_files(checkpoint, folder)
    check_optimizer_settings(training_args, checkpoint)


def checkpoint_config(checkpoint, command):
    """The MinBertConfig of a Trainer checkpoint folder `command` wrote; another folder is one line naming it."""
    from hf_minbert import MinBertConfig

    folder = Path(checkpoint)
    if not (folder / "trainer_state.json").is_file() or not (folder / "config.json").is_file():
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: not a Trainer checkpoint of {command} "
                         "(no trainer_state.json and config.json)")
    return MinBertConfig.from_pretrained(folder)


def shape_differences(saved, run) -> list:
    """What sizes the layers (`SHAPE_FIELDS`) and differs between a checkpoint's config and the run's."""
    return [f"{name} {getattr(saved, name)} against {getattr(run, name)}"
            for name in SHAPE_FIELDS if getattr(saved, name) != getattr(run, name)]


def _check_resumed_adapter_checkpoint(adapter_args, training_args, specs):
    """--resume_from_checkpoint DIR with adapters must hold the adapters this run builds (one shared, or one per
    task; the same method and rank): others fail in the optimizer's state, after the data is read."""
    import json

    from hf_minbert.adapters import SHARED_ADAPTER, adapter_folders, peft_config_for
    from trainers.multitask_state import check_optimizer_settings

    checkpoint = training_args.resume_from_checkpoint
    if not isinstance(checkpoint, str):  # True: the output folder's last checkpoint, found by Trainer
        return
    folder = Path(checkpoint)
    if not (folder / "trainer_state.json").is_file():
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: not a Trainer checkpoint (no trainer_state.json)")
    try:
        saved = adapter_folders(folder)
    except FileNotFoundError as error:
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: {error}") from None
    built = peft_config_for(adapter_args, [], [])
    differences = []
    wanted = set(specs) if adapter_args.peft_per_task else {SHARED_ADAPTER}
    if set(saved) != wanted:
        differences.append(f"adapters {','.join(sorted(saved))} against {','.join(sorted(wanted))}")
    settings = json.loads((next(iter(saved.values())) / "adapter_config.json").read_text(encoding="utf-8"))
    differences += [f"{key} {settings[key]} against {getattr(built, key)}" for key in ("peft_type", "r")
                    if key in settings and hasattr(built, key) and settings[key] != getattr(built, key)]
    if differences:
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: its adapters differ from the ones these flags build "
                         f"({'; '.join(differences)}): resume with the flags it was trained with")
    check_checkpoint_files(checkpoint, folder)
    check_optimizer_settings(training_args, checkpoint)


def check_checkpoint_files(checkpoint, folder):
    """A checkpoint cut short (a run killed while saving it) fails only once Trainer loads it, after the data is
    read and the model built: its weights and its optimizer's state must read back whole."""
    import zipfile

    from trainers.multitask_state import MULTITASK_STATE_NAME, OPTIMIZER_SETTINGS_NAME

    from .common import CommandError, check_safetensors_file

    for weights in sorted(folder.glob("*.safetensors")):
        try:
            check_safetensors_file(weights)
        except CommandError as error:
            raise CommandError(f"--resume_from_checkpoint {checkpoint}: {error}") from None
    # DeepSpeed and FSDP keep the optimizer's state in folders of their own; otherwise Trainer would go on with a
    # fresh optimizer, silently.
    elsewhere = any(folder.glob("global_step*")) or any(folder.glob("optimizer_*"))
    if not (folder / "optimizer.pt").is_file() and not elsewhere:
        raise CommandError(f"--resume_from_checkpoint {checkpoint}: no optimizer.pt, so training could not go on as it "
                           "was (saved with --save_only_model, or cut short while saving?)")
    torch_files = [folder / "optimizer.pt", folder / "scheduler.pt", *sorted(folder.glob("rng_state*.pth")),
                   folder / MULTITASK_STATE_NAME]
    for path in torch_files:
        if not path.is_file():
            continue
        try:  # torch.save writes a zip archive, whose directory at the end is lost when the file is cut short
            zipfile.ZipFile(path).close()
        except (zipfile.BadZipFile, OSError):
            raise CommandError(f"--resume_from_checkpoint {checkpoint}: cannot read {path} (truncated or corrupt?): "
                               "resume from an earlier checkpoint") from None
    for path in (folder / "trainer_state.json", folder / OPTIMIZER_SETTINGS_NAME):
        try:
            if path.is_file():
                json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as error:  # trainer_state.json is written last: a save cut short leaves it so
            raise CommandError(f"--resume_from_checkpoint {checkpoint}: cannot read {path} ({error}; truncated or "
                               "corrupt?): resume from an earlier checkpoint") from None


def check_report_to(report_to):
    # Trainer builds its logging callbacks only after the data is read and the model built.
    from transformers.integrations import get_available_reporting_integrations

    missing = sorted(set(report_to or []) - set(get_available_reporting_integrations()) - {"none", "all"})
    if missing:
        raise ValueError(f"--report_to {','.join(missing)}: not a logging integration installed here (installed: "
                         f"{', '.join(get_available_reporting_integrations()) or 'none'})")


def _check_task_flags(training_args, specs):
    """The flags that name tasks or need a kind of head: every per-task option, the embedding losses' and the
    ordinal loss's tasks, the pair-order options; and each head's options (--head_pooling, ...)."""
    from hf_minbert.configuration_minbert import normalize_task_spec
    from trainers.losses import check_embedding_loss_task
    from trainers.ordinal import check_ordinal_task
    from trainers.pair_order import check_pair_order

    training_args.check_tasks(specs)
    for loss, task in training_args.embedding_losses().items():
        check_embedding_loss_task(loss, task, specs)
    if training_args.ordinal_weight > 0:
        check_ordinal_task(training_args.ordinal_task, specs)
    training_args.epoch_passes(specs)
    for task in training_args.pair_swap_probabilities(specs):
        check_pair_order("pair_swap_probability", task, specs[task]["pair_encoding"])
    for task, spec in specs.items():
        if spec.get("average_pair_orders"):
            check_pair_order("average_pair_orders", task, spec["pair_encoding"])
    for task, spec in specs.items():  # the rest of each head's options, last: the messages above name their flag
        normalize_task_spec(task, spec)


def model_overrides(model_args, specs):
    """(checkpoint path, the from_pretrained arguments the run's model gets): heads, default task, architecture,
    dropout."""
    from hf_minbert import MinBertConfig

    path = model_path(model_args)
    num_layers = MinBertConfig.from_pretrained(path).num_hidden_layers
    architecture = architecture_overrides(model_args, num_layers)
    chose = model_args.architecture is not None or model_args.task_specific_layers is not None
    if not chose and base_task_specs(model_args)[1]:  # a fresh start from a plain BERT: the recipe's CerBERTus
        architecture = {**architecture, **recipe.architecture(num_layers)}
    overrides = {"tasks": specs, "default_task": recipe.default_task(specs), **architecture}
    if model_args.hidden_dropout_prob is not None:
        overrides["hidden_dropout_prob"] = model_args.hidden_dropout_prob
    return path, overrides


def build_model(model_args, specs):
    import torch

    from hf_minbert import MinBertForMultitask

    path, overrides = model_overrides(model_args, specs)
    with readable_weights(f"--model_name_or_path {path}"):
        # float32 weights whatever the checkpoint was saved in: bf16 weights would round most updates away
        # (--bf16 trains under autocast, with float32 weights)
        return path, MinBertForMultitask.from_pretrained(path, dtype=torch.float32, **overrides)


def _check_adapter_targets(model_args, specs, adapter_args):
    # Which layers the adapters' module names match depends on the model's layout alone: a copy of it without
    # weights (torch's meta device) shows it before any data is read.
    import torch

    from hf_minbert import MinBertConfig, MinBertForMultitask
    from hf_minbert.adapters import adaptable_modules, check_config_file_targets, target_suffixes

    path, overrides = model_overrides(model_args, specs)
    with torch.device("meta"):
        layout = MinBertForMultitask(MinBertConfig.from_pretrained(path, **overrides))
    adaptable_modules(layout, target_suffixes(adapter_args))
    check_config_file_targets(layout, adapter_args)


def main(argv=None) -> int:
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    model_args, data_args, training_args, adapter_args = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    specs = task_specs(model_args, *base_task_specs(model_args))
    check_run(model_args, data_args, training_args, specs, adapter_args)
    # Read through this module's global: tests replace train.load_task_data to see that the checks above come
    # before any data is read.
    train, dev, read_reports = load_task_data(data_args, specs)
    seed_run(training_args)
    base_path, model = build_model(model_args, specs)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    train_and_save(model, tokenizer, train, dev, base_path, model_args, data_args, training_args, adapter_args,
                   read_reports=read_reports)
    return 0


def train_and_save(model, tokenizer, train, dev, base_path, model_args, data_args, training_args, adapter_args,
                   card_arguments=None, read_reports=()):
    """Train `model` with MultitaskTrainer (as PEFT adapters when `adapter_args` ask), save it to the output
    directory with its tokenizer, dev metrics, training curves and card; returns the dev metrics.

    Checkpoints and then the model are written to `<output_dir>.partial`, which replaces the output directory
    only once complete (output_folder.py). With adapters, the output directory holds the exported model (one
    adapter merged into the weights, or per-task adapters as an ensemble of merged encoders), which `minbert
    evaluate` and the Hub load like any other, and adapter/ holds the adapters themselves
    (hf_minbert.adapters.load_adapters reads it).
    card_arguments: extra settings to record in the card (e.g. distillation's teacher and alpha).
    read_reports: the ReadReports of the data files; their skipped rows go into metrics.json and the card.
    """
    from hf_minbert.evaluation import evaluate_model
    from trainers import MultitaskTrainer
    from trainers.arguments import full_eval_dtype

    from .output_folder import check_output_folder, staged_output, stopped_by_sigterm_raises

    output = Path(training_args.output_dir)
    check_output_folder(output, training_args.overwrite_output_dir, training_args.resume_from_checkpoint,
                        inputs={"--data_dir": data_args.data_dir})
    # Made before the long work: nothing about the data files (moved or edited while the model trains) may stop
    # the saving of a trained model.
    data_record = training_data_record(read_reports, data_args)
    if adapter_args.enabled:
        model = _with_adapters(model, adapter_args, training_args)
    callbacks = []
    if data_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    with staged_output(training_args) as staging:  # Trainer's checkpoints, then the model, are written here
        trainer = MultitaskTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=dev,
                                   processing_class=tokenizer, callbacks=callbacks,
                                   always_rows=always_rows(read_reports, data_args))
        start = time.time()
        with stopped_by_sigterm_raises(trainer):
            trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        train_seconds = time.time() - start

    if adapter_args.enabled:
        trained = _save_adapters_and_export(trainer, tokenizer, staging)
    else:
        # weights, config with auto_map, remote code, pipelines, tokenizer; the push (if asked) comes after the card
        trainer.save_model(str(staging), _internal_call=True)
        trained = trainer.model
    evaluated = trained
    if full_eval_dtype(training_args) is not None:  # its dev scores in that precision, as Trainer.evaluate's, from
        evaluated = copy.deepcopy(trained).to(full_eval_dtype(training_args))  # a copy: the pushed model stays
    metrics = evaluate_model(evaluated, tokenizer, dev, batch_size=training_args.per_device_eval_batch_size,
                             max_length=training_args.max_seq_length, bf16=training_args.bf16)
    recorded = {**asdict(model_args), **(asdict(adapter_args) if adapter_args.enabled else {}), **(card_arguments or {})}
    record = {**metrics, "skipped_rows": skipped_rows_record(read_reports), "training_data": data_record}
    if training_args.should_save:
        _save_record(staging, output, trainer, record, recorded, data_args, training_args, train_seconds, base_path)
    if training_args.push_to_hub:  # the folder's own card, rewritten to load the repository it goes to
        from hf_minbert.hub import push_trainer_output

        push_trainer_output(trainer, write_card=lambda repo_id: _write_card(
            output, recorded, data_args, training_args, record, train_seconds, base_path, model_id=repo_id,
            trainer=trainer))
    if trainer.is_world_process_zero():  # under torchrun every rank gets here; the summary is the run's, said once
        print(_summary(metrics, train_seconds, output, skipped_rows_record(read_reports)))
    return metrics


def _save_record(staging, output, trainer, metrics, model_arguments, data_args, training_args, train_seconds, base_path):
    """metrics.json, the curves and the card beside the model in the staging folder, then the staging folder
    into the output folder's place."""
    from hf_minbert.evaluation import write_metrics_json
    from trainers.reporting import plot_training_curves

    from .output_folder import move_into_place

    write_metrics_json(staging / "metrics.json", metrics)
    plot_training_curves(trainer.state.log_history, staging / "training_curves.png")
    _write_card(staging, model_arguments, data_args, training_args, metrics, train_seconds, base_path, model_id=str(output),
                trainer=trainer)
    move_into_place(staging, output)


def _check_adapter_flags(adapter_args, training_args):
    from hf_minbert.adapters import check_adapter_arguments

    if training_args.push_to_hub:
        raise ValueError("--push_to_hub with adapters would push the adapter files only: "
                         "push the output folder with `minbert push` after training")
    if training_args.freeze_encoder:
        raise ValueError("--freeze_encoder with adapters would freeze the adapters too (they sit in the encoder); "
                         "the adapters already leave the encoder's own weights frozen")
    check_adapter_arguments(adapter_args)


def _check_frozen_parts(training_args, specs, adapter_args):
    # A bi-encoder head reading the cosine alone has no weights: with the encoder frozen its task trains nothing.
    if training_args.freeze_encoder and not (adapter_args is not None and adapter_args.enabled):
        idle = [task for task, spec in specs.items() if spec["pair_encoding"] == "bi" and spec.get("bi_features", "cosine") == "cosine"]
        if idle:
            raise ValueError(f"--freeze_encoder: {', '.join(idle)}'s head (a bi-encoder's scaled cosine) has no "
                             "weights of its own, so it would train nothing; give it --bi_features concat or "
                             "--pair_encoding cross, or leave the encoder trainable")


def _with_adapters(model, adapter_args, training_args):
    from hf_minbert.adapters import add_adapters, trainable_parameter_count

    _check_adapter_flags(adapter_args, training_args)  # checked before the data too (check_run); also from Python
    total = model.num_parameters()
    peft_model = add_adapters(model, adapter_args)
    trainable = trainable_parameter_count(peft_model)
    logger.info("adapters: %d of %d parameters trainable (%.2f%%)", trainable, total, 100 * trainable / total)
    return peft_model


def _save_adapters_and_export(trainer, tokenizer, output):
    """adapter/ (peft's files) and, at the top, the exported model that loads without peft; returns the latter."""
    from hf_minbert.adapters import export_model, save_adapters

    exported = export_model(trainer.model)
    if trainer.args.should_save:
        save_adapters(trainer.model, output / ADAPTER_SUBDIR)
        exported.save_pretrained(output)
        tokenizer.save_pretrained(output)
    return exported


def _write_card(folder, model_arguments, data_args, training_args, metrics, train_seconds, base_path, model_id,
                trainer):
    from model_cards import write_model_card
    from model_cards.run_record import training_progress

    write_model_card(
        folder,
        metrics=metrics,
        base_model=base_path,
        training_arguments=training_args,
        model_arguments=model_arguments,
        data_arguments=data_args,
        train_seconds=train_seconds,
        model_id=model_id,  # the output folder, not the staging folder the card is written in
        progress=training_progress(trainer.state, training_args.load_best_model_at_end, trainer.resumed_from_step),
    )


def _summary(metrics, seconds, output, skipped_rows=()):
    lines = [f"trained in {seconds / 60:.1f} min; model in {output}"]
    if skipped_rows:
        count = sum(record["count"] for record in skipped_rows)
        lines.append(f"  skipped {count} bad data row(s) in {len(skipped_rows)} file(s): see metrics.json")
    for task, scores in metrics.items():  # every task scored, one's own too
        if isinstance(scores, dict) and scores and all(isinstance(v, (int, float)) for v in scores.values()):
            lines.append(f"  {task}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    if "overall" in metrics:
        lines.append(f"  overall (leaderboard) {metrics['overall']:.4f}   mean {metrics['mean']:.4f}")
    return "\n".join(lines)
