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

from hf_minbert.commands.common import check_model_source, home_path, load_tokenizer, readable_weights
from hf_minbert.commands.head_options import base_task_specs, in_course_order, task_specs
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

    def __post_init__(self):
        self.teacher = home_path(self.teacher)
        self.fold_teachers = [home_path(folder) for folder in self.fold_teachers] if self.fold_teachers else self.fold_teachers


def main(argv=None) -> int:
    from trainers.distillation import check_fold_teacher_rows

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    arguments, specs, alphas = _checked_arguments(list(sys.argv[1:] if argv is None else argv))
    model_args, data_args, training_args, adapter_args, distill_args = arguments
    folds = _fold_teachers(distill_args, data_args)  # their folds, from their records: before any data is read
    train, dev, read_reports = load_task_data(data_args, specs)
    if folds is not None:  # and the rows they split into folds must be the rows read here
        check_fold_teacher_rows(distill_args.fold_teachers, training_data_record(read_reports, data_args))
    seed_run(training_args)
    base_path, student = build_model(model_args, specs)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    soft_train, fit = _soft_training_rows(distill_args, folds, alphas, train, student.config, tokenizer, training_args)
    card_arguments = {**asdict(distill_args), "alpha": alphas, "teacher_train_scores": fit}
    train_and_save(student, tokenizer, soft_train, dev, base_path, model_args, data_args, training_args, adapter_args,
                   card_arguments=card_arguments, read_reports=read_reports)
    return 0


def _checked_arguments(argv):
    """(the five argument dataclasses, the student's task specs, alpha per task), every check that needs no
    data made: the teachers, the output folder and the run's flags."""
    from trainers.per_task import parse_per_task

    arguments = parse_arguments(argv, extra=(DistillationArguments,), prog="minbert distill")
    model_args, data_args, training_args, adapter_args, distill_args = arguments
    if (distill_args.teacher is None) == (not distill_args.fold_teachers):
        raise ValueError("give --teacher DIR or --fold_teachers DIR DIR ..., not both and not neither")
    teacher_heads = _teacher_heads(distill_args)
    base_tasks, plain_student = base_task_specs(model_args)
    if model_args.tasks is None and teacher_heads and plain_student:  # it learns what the teacher answers
        model_args.tasks = ",".join(in_course_order(teacher_heads))  # (a trained student: its own heads)
    own = {task: spec for task, spec in teacher_heads.items() if spec.get("data_schema")}
    specs = task_specs(model_args, base_tasks, plain_student, fresh_heads=own)
    alphas = parse_per_task(distill_args.alpha, "alpha", list(specs), default=0.5)
    _check_distillation_arguments(distill_args, alphas, data_args)
    _check_teachers(distill_args, specs, data_args, training_args)
    check_run(model_args, data_args, training_args, specs, adapter_args)  # before the teacher's long pass over the data
    return arguments, specs, alphas


def _teacher_heads(distill_args):
    """{task: head spec} of the teachers' heads, the data schemas of their tasks of one's own registered: a plain
    student's default tasks, and for a task of one's own its student lacks, a fresh head like the teacher's. A
    folder whose config cannot be read is left to _check_teachers, which names what is wrong with it."""
    from transformers import PretrainedConfig

    from hf_minbert.data import register_saved_schemas

    flag, teachers = ("--teacher", [distill_args.teacher]) if distill_args.teacher else ("--fold_teachers",
                                                                                          distill_args.fold_teachers)
    heads = {}
    for teacher in teachers:
        try:
            tasks = PretrainedConfig.get_config_dict(str(teacher))[0].get("tasks")  # a model's or an ensemble's
        except (OSError, ValueError):
            continue
        tasks = tasks if isinstance(tasks, dict) else {}
        register_saved_schemas(tasks, f"{flag} {teacher}")
        heads.update({task: spec for task, spec in tasks.items() if isinstance(spec, dict) and task not in heads})
    return heads


def _soft_training_rows(distill_args, folds, alphas, train, student_config, tokenizer, training_args):
    """(the training rows tokenized with their mixed targets, the teacher's score on them by task)."""
    from trainers.distillation import soft_label_datasets, targets_from_predictions, teacher_fit

    predictions = _teacher_predictions(distill_args, folds, train, student_config, training_args)
    fit = teacher_fit(train, predictions, student_config)
    logger.info("the teacher on the training rows (near 1: its targets are near the gold labels): %s",
                ", ".join(f"{task} {score:.4f}" for task, score in fit.items()))
    targets = targets_from_predictions(train, predictions, student_config, alphas)
    soft_train = soft_label_datasets(train, targets, tokenizer, student_config, training_args.max_seq_length,
                                     sides_for=training_args.embedding_loss_tasks())
    return soft_train, fit


def _fold_teachers(distill_args, data_args):
    """(teacher folder by fold, number of folds, fold seed) from the fold teachers' records; None for --teacher."""
    from trainers.distillation import fold_teachers

    return fold_teachers(distill_args.fold_teachers, data_args.max_train_samples) if distill_args.fold_teachers else None


def _teacher_predictions(distill_args, folds, train, student_config, training_args):
    """What the teacher predicts for every training row: with fold teachers, each row by the one that left its
    fold out. The teachers are loaded here and freed on return, before the student trains."""
    from trainers.distillation import out_of_fold_predictions, teacher_predictions

    predict_kwargs = {"batch_size": distill_args.teacher_batch_size, "max_length": training_args.max_seq_length,
                      "bf16": training_args.bf16, "progress": not training_args.disable_tqdm}
    if folds is not None:
        by_fold, num_folds, fold_seed = folds
        logger.info("predicting each fold of the training inputs with the teacher that left it out: %s", by_fold)
        teachers = {fold: _load_teacher(folder, "--fold_teachers", training_args.device) for fold, folder in by_fold.items()}
        return out_of_fold_predictions(teachers, train, student_config, num_folds, fold_seed, **predict_kwargs)
    logger.info("predicting the training inputs with the teacher %s", distill_args.teacher)
    teacher, tokenizer = _load_teacher(distill_args.teacher, "--teacher", training_args.device)
    return teacher_predictions(teacher, tokenizer, train, student_config, **predict_kwargs)


def _load_teacher(folder, flag, device):
    """(model, tokenizer) of a teacher folder; one that does not load is one line naming it."""
    from hf_minbert.ensemble import load_multitask_model

    with readable_weights(f"{flag} {folder}"):
        model = load_multitask_model(folder).to(device)
    return model, load_tokenizer(folder, flag)


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
    if distill_args.fold_teachers and data_args.num_folds is not None:
        # The student's own folds are a part of the rows the teachers' folds split: each teacher's fold would be
        # drawn anew over that part, and give half of it a teacher that trained on it.
        raise ValueError("--num_folds/--held_out_fold with --fold_teachers would give rows a teacher that trained on "
                         "them: a student of fold teachers trains on every fold (use --teacher for a fold's student)")
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
    for teacher in teachers:  # its weights read back: a corrupt file is named, not a traceback mid-run
        check_model_source(flag, str(teacher))
    check_teacher_heads(teachers, specs, flag, max_length=training_args.max_seq_length)
    for teacher in teachers:
        load_tokenizer(str(teacher), flag)


if __name__ == "__main__":
    sys.exit(main())
