"""The output folder of `minbert train` and `minbert distill`: never half-replaced, never silently replaced.

Trainer works in a sibling staging folder, `<output_dir>.partial`: its checkpoint-* folders, then the final
model, tokenizer, metrics.json, curves, card (and adapter/). Only when all of it is written does the staging
folder take the output folder's place, by renames: the old folder becomes `<output_dir>.replaced`, the new
one `<output_dir>`, and the old one is deleted. A run that fails, at whatever point, leaves `<output_dir>`
as it was. A finished run's checkpoints move into `<output_dir>` with the model, as before.

An output folder that holds a model is replaced only with --overwrite_output_dir; a folder holding other
files is never replaced (the replacement deletes everything in it). An interrupted run leaves its
checkpoints in `<output_dir>.partial`: `--resume_from_checkpoint <output_dir>.partial/checkpoint-N`
continues it, --overwrite_output_dir discards it.
"""
import shutil
from pathlib import Path

STAGING_SUFFIX = ".partial"
REPLACED_SUFFIX = ".replaced"
MODEL_FILES = ("config.json", "model.safetensors")


def staging_folder(output_dir) -> Path:
    output = Path(output_dir)
    return output.with_name(output.name + STAGING_SUFFIX)


def check_output_folder(output_dir, overwrite=False, resume_from_checkpoint=None, inputs=None):
    """Refuse, before any work, an output folder this run may not replace. inputs: {flag: path} of folders
    the run reads (such as --data_dir), which must not lie inside the folder the run will replace."""
    output = Path(output_dir)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output_dir {output} is a file, not a folder")
    for flag, path in {"the working directory": Path.cwd(), **(inputs or {})}.items():
        if path is not None and _inside(Path(path), output):
            raise ValueError(f"--output_dir {output} contains {flag} ({path}), which replacing the folder would delete")
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
    staging = staging_folder(output)
    if staging.exists() and not overwrite and not _resumes_from(staging, resume_from_checkpoint):
        raise ValueError(f"{staging} holds an unfinished run: continue it with --resume_from_checkpoint "
                         f"{staging}/checkpoint-N, or pass --overwrite_output_dir to discard it")


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
    if output.exists():
        output.rename(replaced)
    try:
        staging.rename(output)
    except OSError:
        if replaced.exists():
            replaced.rename(output)
        raise
    if replaced.exists():
        shutil.rmtree(replaced)


def _resumes_from(staging, resume_from_checkpoint):
    # True: Trainer resumes from the last checkpoint in its output folder, which is the staging folder.
    if resume_from_checkpoint is True:
        return True
    return bool(resume_from_checkpoint) and _inside(Path(resume_from_checkpoint), staging)


def _inside(path, folder):
    return path.resolve().is_relative_to(folder.resolve())
