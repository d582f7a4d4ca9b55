"""`minbert distill`: train one multitask minBERT (the student) on a teacher's soft predictions over the
training inputs, mixed with the gold labels.

    minbert ensemble --models runs/a runs/b runs/c --output_dir runs/ensemble
    minbert distill --teacher runs/ensemble --output_dir runs/distilled [--alpha 0.5 | --alpha sst=0.3,sts=0.5]

    # out-of-fold targets: teachers that never trained on the rows they label
    minbert train --num_folds 2 --held_out_fold 0 --output_dir runs/fold0   # (and fold 1; or ensembles of such)
    minbert distill --fold_teachers runs/fold0 runs/fold1 --output_dir runs/distilled

The teacher (any saved multitask model; typically an ensemble) predicts every training example of every task
once: class probabilities, paraphrase probability, similarity. Each target is then α · gold + (1 − α) ·
teacher (class labels as one-hot rows; the teacher's similarity clipped to the label range), and the student
(default: the embedded all-MiniLM-L6-v2 with new heads) trains on those targets exactly as `minbert train`
trains on gold labels: every `minbert train` flag applies (SMART, sampling, --peft, ...), and the output
folder is the same (model, tokenizer, metrics.json on the gold dev labels, curves, card). The card also
records `teacher_train_scores`: the teacher's own score on the training rows, which says how far its targets
are from the gold labels (a teacher trained on those rows fits them closely, so on the tasks it has
memorized its "soft" targets are the gold labels again). With --fold_teachers every row is labelled by a
teacher that left its fold out, and the targets carry the teacher's errors and doubts as on unseen text.

Checked before any data is read: every teacher's heads (from its saved config) predict what the student's do,
and --output_dir is none of the teachers, nor holds one. Checked before any teacher predicts: each fold
teacher split the very rows this run reads into its folds (its metrics.json's `training_data`).
"""
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from transformers import AutoTokenizer

from hf_minbert.commands.common import check_model_source, load_tokenizer, readable_weights
from hf_minbert.commands.head_options import base_task_specs, task_specs
from hf_minbert.commands.train import build_model, check_run, seed_run, train_and_save
from hf_minbert.commands.train_arguments import parse_arguments
from hf_minbert.commands.train_data import load_task_data, training_data_record

logger = logging.getLogger("minbert.distill")


@dataclass
class DistillationArguments:
    teacher: Optional[str] = field(
        default=None, metadata={"help": "saved multitask model (or ensemble) folder whose predictions are the targets"}
    )
    fold_teachers: Optional[list[str]] = field(
        default=None,
        metadata={"help": "instead of --teacher: one folder per fold, each trained with `minbert train --num_folds k "
                          "--held_out_fold i` (or an ensemble of such models); each training row's target comes from "
                          "the teacher that did not train on it"},
    )
    alpha: str = field(default="0.5", metadata={"help": "weight of the gold label in each target: one number or sst=0.3,para=0.5,sts=0.5"})
    teacher_batch_size: int = field(default=128, metadata={"help": "examples per teacher forward pass"})


def main(argv=None) -> int:
    from hf_minbert.ensemble import load_multitask_model
    from trainers.distillation import (
        check_fold_teacher_rows,
        fold_teachers,
        out_of_fold_predictions,
        soft_label_datasets,
        targets_from_predictions,
        teacher_fit,
        teacher_predictions,
    )
    from trainers.per_task import parse_per_task

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, training_args, adapter_args, distill_args = parse_arguments(argv, extra=(DistillationArguments,), prog="minbert distill")
    if (distill_args.teacher is None) == (not distill_args.fold_teachers):
        raise ValueError("give --teacher DIR or --fold_teachers DIR DIR ..., not both and not neither")
    specs = task_specs(model_args, *base_task_specs(model_args))
    alphas = parse_per_task(distill_args.alpha, "alpha", list(specs), default=0.5)
    _check_distillation_arguments(distill_args, alphas, data_args)
    _check_teachers(distill_args, specs, data_args, training_args)
    check_run(model_args, data_args, training_args, specs, adapter_args)  # before the teacher's long pass over the data
    if distill_args.fold_teachers:  # their folds, from their records: before any data is read
        by_fold, num_folds, fold_seed = fold_teachers(distill_args.fold_teachers, data_args.max_train_samples)
    train, dev, read_reports = load_task_data(data_args, specs)
    if distill_args.fold_teachers:  # and the rows they split into folds must be the rows read here
        check_fold_teacher_rows(distill_args.fold_teachers, training_data_record(read_reports, data_args))
    seed_run(training_args)
    base_path, student = build_model(model_args, specs)
    tokenizer = AutoTokenizer.from_pretrained(base_path)

    predict_kwargs = {"batch_size": distill_args.teacher_batch_size, "max_length": training_args.max_seq_length,
                      "bf16": training_args.bf16, "progress": not training_args.disable_tqdm}
    if distill_args.fold_teachers:
        logger.info("predicting each fold of the training inputs with the teacher that left it out: %s", by_fold)
        teachers = {}
        for fold, folder in by_fold.items():
            with readable_weights(f"--fold_teachers {folder}"):
                teachers[fold] = (load_multitask_model(folder).to(training_args.device),
                                  load_tokenizer(folder, "--fold_teachers"))
        predictions = out_of_fold_predictions(teachers, train, student.config, num_folds, fold_seed, **predict_kwargs)
    else:
        logger.info("predicting the training inputs with the teacher %s", distill_args.teacher)
        with readable_weights(f"--teacher {distill_args.teacher}"):
            teacher = load_multitask_model(distill_args.teacher).to(training_args.device)
        predictions = teacher_predictions(teacher, load_tokenizer(distill_args.teacher, "--teacher"), train,
                                          student.config, **predict_kwargs)
    teachers = teacher = None  # free them before the student trains
    fit = teacher_fit(train, predictions, student.config)
    logger.info("the teacher on the training rows (near 1: its targets are near the gold labels): %s",
                ", ".join(f"{task} {score:.4f}" for task, score in fit.items()))
    targets = targets_from_predictions(train, predictions, student.config, alphas)
    sides = training_args.embedding_loss_tasks()
    soft_train = soft_label_datasets(train, targets, tokenizer, student.config, training_args.max_seq_length, sides_for=sides)
    card_arguments = {**asdict(distill_args), "alpha": alphas, "teacher_train_scores": fit}
    train_and_save(student, tokenizer, soft_train, dev, base_path, model_args, data_args, training_args, adapter_args,
                   card_arguments=card_arguments, read_reports=read_reports)
    return 0


def _check_distillation_arguments(distill_args, alphas, data_args):
    for task, alpha in alphas.items():
        if not 0 <= alpha <= 1:
            raise ValueError(f"--alpha: {task}={alpha} must lie in [0, 1] (the weight of the gold label)")
    if distill_args.teacher_batch_size < 1:
        raise ValueError(f"--teacher_batch_size must be at least 1, got {distill_args.teacher_batch_size}")
    if distill_args.fold_teachers and data_args.implied_pairs_per_question:
        # The implied pairs join the rows that are split into folds, and come from rows of every fold.
        raise ValueError("--implied_pairs_per_question with --fold_teachers would give rows a teacher that trained on "
                         "them: the pairs are drawn from every fold and shift the folds")
    flag = "--teacher" if distill_args.teacher else "--fold_teachers"
    for folder in [distill_args.teacher] if distill_args.teacher else distill_args.fold_teachers:
        if not Path(folder).is_dir():
            raise ValueError(f"{flag} {folder}: no such directory")


def _check_teachers(distill_args, specs, data_args, training_args):
    """Before any data is read or any teacher predicts: the output folder is none of the teachers (nor holds
    one, nor a fold teacher's member, whose record is read), and every teacher has a head for each of the
    student's tasks that predicts what the student's does (read from the teachers' saved configs)."""
    from hf_minbert.commands.output_folder import check_output_folder
    from trainers.distillation import check_teacher_heads, recorded_models

    if distill_args.teacher:
        flag, teachers, inputs = "--teacher", [distill_args.teacher], {"--teacher": distill_args.teacher}
    else:
        flag, teachers = "--fold_teachers", distill_args.fold_teachers
        members = [model for folder in teachers for model in recorded_models(folder) if Path(model) != Path(folder)]
        inputs = {"one of --fold_teachers": teachers, "a member of one of --fold_teachers": members}
    check_output_folder(training_args.output_dir, training_args.overwrite_output_dir,
                        training_args.resume_from_checkpoint, inputs={**inputs, "--data_dir": data_args.data_dir})
    check_teacher_heads(teachers, specs, flag)
    for teacher in teachers:  # its weights and tokenizer read back: a corrupt file is named, not a traceback mid-run
        check_model_source(flag, str(teacher))
        load_tokenizer(str(teacher), flag)


if __name__ == "__main__":
    sys.exit(main())
