"""The output folder of `minbert train`, `distill`, `pretrain-mlm` and `ensemble`: never half-replaced, never
silently replaced.

A command writes into a sibling staging folder, `<output_dir>.partial` (Trainer its checkpoint-* folders,
then the command the final model, tokenizer, its record and card), and only when all of it is written does
the staging folder take the output folder's place, by renames: the old folder becomes `<output_dir>.replaced`,
the new one `<output_dir>`, and the old one is deleted. A run that fails, at whatever point, leaves
`<output_dir>` as it was. A finished training run's checkpoints move into `<output_dir>` with the model.

An output folder that holds a model is replaced only with --overwrite_output_dir, and whole (the log names
what of the old folder the new one does not hold); a folder holding other files but no model is never
replaced, nor one that is or holds a folder the command reads. An interrupted training run leaves its
checkpoints in `<output_dir>.partial`: `--resume_from_checkpoint <output_dir>.partial/checkpoint-N` continues
it, --overwrite_output_dir discards it. A training run marks its staging folder with its process id while it
writes there: a second run into the same output folder is refused instead of discarding the first one's
checkpoints.

    check_output_folder(output_dir, ...)    refuse, before any work, a folder this run may not replace
    staged_output(training_args)            for a block, Trainer writes into the staging folder
    move_into_place(staging, output_dir)    the complete staging folder becomes the output folder
"""
import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

STAGING_SUFFIX = ".partial"
REPLACED_SUFFIX = ".replaced"
MODEL_FILES = ("config.json", "model.safetensors")
WRITER_LOCK = ".minbert-writer.pid"  # in a staging folder: the process writing into it

logger = logging.getLogger("minbert")


def staging_folder(output_dir) -> Path:
    output = Path(output_dir)
    return output.with_name(output.name + STAGING_SUFFIX)


def check_output_folder(output_dir, overwrite=False, resume_from_checkpoint=None, inputs=None, resumable=True):
    """Refuse, before any work, an output folder this run may not replace. inputs: {flag: path, or a list of
    paths} of folders the run reads (such as --data_dir), which must neither be nor lie inside the folder the
    run will replace. resumable: whether the command continues an unfinished run (--resume_from_checkpoint)."""
    output = Path(output_dir)
    if output.is_symlink():  # the renames would replace the link, and the model never reach the folder it names
        raise ValueError(f"--output_dir {output} is a symbolic link: pass the folder it points to, --output_dir "
                         f"{output.resolve()}")
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output_dir {output} is a file, not a folder")
    for flag, paths in {"the working directory": Path.cwd(), **(inputs or {})}.items():
        for path in paths if isinstance(paths, (list, tuple)) else [paths]:
            _check_not_inside(flag, path, output)
    if output.is_dir() and any(output.iterdir()):
        held = [name for name in MODEL_FILES if (output / name).exists()]
        if not held:
            raise ValueError(f"--output_dir {output} is not empty and holds no model: refusing to replace it; "
                             "choose a new or empty folder")
        if not overwrite:
            raise ValueError(f"--output_dir {output} already holds a model ({', '.join(held)}): pass "
                             "--overwrite_output_dir to replace it, or choose another folder")
    replaced = output.with_name(output.name + REPLACED_SUFFIX)
    if replaced.exists():
        raise ValueError(f"{replaced} is left from an interrupted replacement of {output}: "
                         "move it back or delete it, then run again")
    _check_checkpoint_exists(resume_from_checkpoint)
    _check_writable(output)
    staging = staging_folder(output)
    running = _running_writer(staging)
    if running:
        raise ValueError(f"{staging} is being written by another run (process {running}): wait for it to end, or "
                         f"choose another --output_dir (if no run writes there, delete {staging / WRITER_LOCK})")
    if (staging / MODEL_FILES[1]).exists() and not _checkpoints(staging) and not overwrite:
        raise ValueError(f"{staging} holds a model a run saved but did not move into place: move it where you want "
                         "it, or pass --overwrite_output_dir to discard it")
    # A staging folder without checkpoints holds nothing to continue from: the next run discards it.
    unfinished = staging.exists() and (not resumable or _checkpoints(staging))
    if unfinished and not overwrite and not _resumes_from(staging, resume_from_checkpoint):
        resume = f"continue it with --resume_from_checkpoint {staging}/checkpoint-N, or " if resumable else ""
        raise ValueError(f"{staging} holds an unfinished run: {resume}pass --overwrite_output_dir to discard it")


def _check_writable(output):
    """The run writes `<output_dir>.partial` beside the output folder: try a folder there now rather than fail
    when the model is ready to be written."""
    check_writable(output.absolute().parent, f"--output_dir {output}")


def check_writable(folder, label):
    """Try making a folder in `folder`, or in the nearest folder above it that exists: a `ValueError` naming
    `label` where it cannot be written."""
    folder = Path(folder).absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{label}: {folder} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".minbert-write-check-", dir=folder))
    except OSError as error:
        raise ValueError(f"{label}: cannot write in {folder} ({error.strerror})") from None


def _run_identity():
    """What the processes of one run share: a distributed launch's run id and agent, else this process."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    return f"{run_id}:{os.getppid()}" if run_id else f"pid:{os.getpid()}"


def _running_writer(staging):
    """The process id of a live run writing into `staging` (its lock file, `WRITER_LOCK`), else None: another rank of
    this run is no other run, and a lock left by a run that ended names a process that no longer exists."""
    try:
        lock = json.loads((Path(staging) / WRITER_LOCK).read_text())
        pid, run = int(lock["pid"]), lock["run"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if run == _run_identity():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's live process
        return pid
    return pid


def _lock_for_writing(staging):
    # Another run checking the same output folder sees that this one is writing here (`_running_writer`).
    staging.mkdir(parents=True, exist_ok=True)
    (staging / WRITER_LOCK).write_text(json.dumps({"pid": os.getpid(), "run": _run_identity()}))


def _check_checkpoint_exists(resume_from_checkpoint):
    if resume_from_checkpoint in (None, True, False) or Path(resume_from_checkpoint).is_dir():
        return
    raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint}: no such checkpoint folder")


def _checkpoints(folder):
    return sorted(Path(folder).glob("checkpoint-*"))


@contextlib.contextmanager
def staged_output(training_args):
    """For the block, `training_args.output_dir` is the staging folder (yielded), so that Trainer writes its
    checkpoints there; an unfinished run's staging folder is discarded first, unless this run resumes from
    it (check_output_folder has made sure that discarding it was asked for). After the block, also when it
    fails, `output_dir` names the output folder again: the run's record names it, and a push reads from it.
    The caller then saves the model and its record into the staging folder, and moves it into place."""
    output = Path(training_args.output_dir)
    staging = staging_folder(output)
    if training_args.should_save:
        discard_unfinished_run(staging, training_args.resume_from_checkpoint)
        _lock_for_writing(staging)
    if training_args.push_to_hub and training_args.hub_model_id is None:
        training_args.hub_model_id = output.resolve().name  # Trainer would name the repo after the staging folder
    training_args.output_dir = str(staging)
    try:
        yield staging
        # A checkpoint resumed from the staging folder moves into the output folder with it: the record names it there.
        training_args.resume_from_checkpoint = moved_with_staging(training_args.resume_from_checkpoint, staging, output)
    finally:
        training_args.output_dir = str(output)


def moved_with_staging(path, staging, output):
    """Where `path` will be once `staging` has become `output` (as given where it lies elsewhere)."""
    if not isinstance(path, (str, os.PathLike)):
        return path
    try:
        inside = Path(path).resolve().relative_to(Path(staging).resolve())
    except ValueError:
        return path
    return str(Path(output) / inside)


class RunStopped(Exception):
    """Training returned before its last step, its checkpoint saved (--enable_jit_checkpoint on SIGTERM): the
    staging folder keeps the checkpoints to resume from, and the output folder stays as it was."""


@contextlib.contextmanager
def stopped_by_sigterm_raises(trainer):
    """Around `trainer.train()`. With --enable_jit_checkpoint Trainer answers SIGTERM (a preemption) by saving a
    checkpoint and returning from train() as if the run had ended: a command would then save and publish the
    unfinished model as its result. Here train() returning before its last step after a SIGTERM raises RunStopped."""
    if not getattr(trainer.args, "enable_jit_checkpoint", False) or threading.current_thread() is not threading.main_thread():
        yield
        return
    received = threading.Event()
    answer = signal.getsignal(signal.SIGTERM)  # Trainer's, installed when it was built

    def note_sigterm(signum, frame):
        received.set()
        if callable(answer):
            answer(signum, frame)

    signal.signal(signal.SIGTERM, note_sigterm)
    try:
        yield
    finally:
        # Trainer restores the handler that came before its own when training ends, not when train() raises
        if signal.getsignal(signal.SIGTERM) in (note_sigterm, answer):
            before_trainer = getattr(getattr(answer, "__self__", None), "_original_sigterm_handler", None)
            signal.signal(signal.SIGTERM, answer if before_trainer is None else before_trainer)
    state = trainer.state
    if received.is_set() and state.global_step < state.max_steps:
        from transformers.trainer_utils import get_last_checkpoint

        raise RunStopped(f"stopped by SIGTERM at step {state.global_step} of {state.max_steps}: continue with "
                         f"--resume_from_checkpoint {get_last_checkpoint(trainer.args.output_dir)}")


def discard_unfinished_run(staging, resume_from_checkpoint=None) -> None:
    """Delete an unfinished run's staging folder, unless this run resumes from it (check_output_folder has
    made sure that discarding it was asked for)."""
    staging = Path(staging)
    if staging.exists() and not _resumes_from(staging, resume_from_checkpoint):
        shutil.rmtree(staging)


def move_into_place(staging, output_dir) -> None:
    """Make the complete folder `staging` the folder `output_dir`: two renames, so `output_dir` is the old
    folder or the new one, never a mix; the old one is deleted last."""
    staging, output = Path(staging), Path(output_dir)
    replaced = output.with_name(output.name + REPLACED_SUFFIX)
    (staging / WRITER_LOCK).unlink(missing_ok=True)
    if output.exists():
        output.rename(replaced)
    try:
        staging.rename(output)
    except OSError:
        if replaced.exists():
            replaced.rename(output)
        raise
    if replaced.exists():
        _log_dropped_entries(replaced, output)
        shutil.rmtree(replaced)
    _repoint_best_checkpoint(output, staging)


def _log_dropped_entries(old, new):
    # --overwrite_output_dir replaces the whole folder: say what of the old one the new one does not hold (a
    # user's notes, an evaluation's predictions), since it is gone after this.
    dropped = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in old.iterdir()
                     if not (new / entry.name).exists())
    if dropped:
        logger.warning("replaced %s: deleted with the old folder, not part of the new one: %s", new, ", ".join(dropped))


def _repoint_best_checkpoint(output, staging):
    # Trainer records its best checkpoint by path: inside the staging folder, which no longer exists. A run
    # continued from a moved checkpoint would otherwise lose track of which checkpoint was best.
    from transformers import TrainerState

    for state_file in Path(output).glob("checkpoint-*/trainer_state.json"):
        state = TrainerState.load_from_json(str(state_file))
        best = state.best_model_checkpoint
        if best and _inside(Path(best), staging):
            state.best_model_checkpoint = str(output / Path(best).resolve().relative_to(staging.resolve()))
            state.save_to_json(str(state_file))


def _resumes_from(staging, resume_from_checkpoint):
    # True: Trainer resumes from the last checkpoint in its output folder, which is the staging folder.
    if resume_from_checkpoint is True:
        return True
    return bool(resume_from_checkpoint) and _inside(Path(resume_from_checkpoint), staging)


def _check_not_inside(flag, path, output):
    if path is None or not _inside(Path(path), output):
        return
    relation = "is" if Path(path).resolve() == output.resolve() else "contains"
    raise ValueError(f"--output_dir {output} {relation} {flag} ({path}), which replacing the folder would delete")


def _inside(path, folder):
    return path.resolve().is_relative_to(folder.resolve())
