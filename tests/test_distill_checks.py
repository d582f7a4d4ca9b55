"""What `minbert distill` checks before any work: every teacher's heads against the student's tasks (from the
teachers' saved configs, before any data is read), the rows each out-of-fold teacher split into folds against
the rows the student reads (before any prediction), and an output folder that is no teacher."""
import json
import shutil
from pathlib import Path

import datasets
import pytest

import trainers.distillation
from hf_minbert import MinBertEnsembleForMultitask
from hf_minbert.cli import main as minbert
from hf_minbert.commands import distill as distill_command
from tests.helpers import folder_bytes, refused_calls, tiny_model, tiny_task_rows, write_task_files
from tests.test_train_promises import TINY_RUN, base, data, tokenizer  # noqa: F401  (module fixtures)

TASKS = tiny_model().config.tasks


@pytest.fixture
def data_reads(monkeypatch):
    """The calls of `minbert distill`'s data reader: a check made before any data is read leaves it empty."""
    return refused_calls(monkeypatch, distill_command, "load_task_data")


@pytest.fixture
def predictions(monkeypatch):
    """The calls of the teachers' predictions: a check made before any prediction leaves it empty."""
    return refused_calls(monkeypatch, trainers.distillation, "predict_task")


def distill(base, data, output, *flags):  # noqa: F811
    return minbert(["distill", "--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir", str(output),
                    *TINY_RUN, *flags])


def saved(folder, model, tokenizer, fold=None):  # noqa: F811
    """`model` saved as a teacher folder; with `fold`, as the teacher of that held-out fold of two."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if fold is not None:
        record = {"num_folds": 2, "held_out_fold": fold, "fold_seed": 0, "max_train_samples": None}
        (Path(folder) / "training_config.json").write_text(json.dumps({"data_arguments": record}))
    return str(folder)


def heads(drop=(), **changes):
    """The tiny model's task specs less the tasks in `drop`, with `changes` ({task: {field: value}}) applied."""
    tasks = {name: dict(spec) for name, spec in TASKS.items() if name not in drop}
    for task, fields in changes.items():
        tasks[task].update(fields)
    return tasks


# ------------------------------------------------------------------------------------------------------
# 1. The teachers' heads, from their saved configs, before any data is read
# ------------------------------------------------------------------------------------------------------


def _ensemble_without_sts():
    members = [tiny_model(seed=1), tiny_model(seed=2)]
    return MinBertEnsembleForMultitask.from_members(members, {"sst": [1, 1], "para": [1, 1]})


@pytest.mark.parametrize("teacher, named", [
    (lambda: tiny_model(tasks=heads(drop=["sts"])), "the teacher has no 'sts' head; its tasks: para, sst"),
    (_ensemble_without_sts, "the teacher has no 'sts' head; its tasks: para, sst"),
    (lambda: tiny_model(tasks=heads(sst={"labels": ["neg", "neu", "pos"]})),
     "task 'sst': the teacher's labels is ['neg', 'neu', 'pos'], the student's ['negative', 'somewhat "
     "negative', 'neutral', 'somewhat positive', 'positive'] (3 classes against 5)"),
    (lambda: tiny_model(tasks=heads(para={"kind": "classification", "labels": ["no", "yes"]})),
     "task 'para': the teacher's kind is 'classification', the student's 'binary'"),
], ids=["missing head", "ensemble without the head", "other label count", "other kind"])
def test_a_teacher_without_a_head_for_a_student_task_is_refused_before_any_data_is_read(
        base, data, tokenizer, tmp_path, capsys, data_reads, teacher, named):  # noqa: F811
    folder = saved(tmp_path / "teacher", teacher(), tokenizer)
    assert distill(base, data, tmp_path / "out", "--teacher", folder, "--tasks", "sst,para,sts") == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == f"minbert distill: --teacher {folder}: {named}"
    assert data_reads == [] and not (tmp_path / "out").exists()


def test_the_students_tasks_default_to_the_teachers(base, data, tokenizer, tmp_path):  # noqa: F811
    from hf_minbert.commands.distill import _checked_arguments

    folder = saved(tmp_path / "teacher", tiny_model(tasks=heads(drop=["sts"])), tokenizer)
    flags = ["--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir", str(tmp_path / "out")]
    _, specs, _ = _checked_arguments([*flags, "--teacher", folder, "--max_seq_length", "64"])
    assert list(specs) == ["sst", "para"]


def test_a_teacher_with_fewer_positions_than_max_seq_length_is_refused_before_any_data_is_read(
        base, data, tokenizer, tmp_path, capsys, data_reads):  # noqa: F811
    folder = saved(tmp_path / "teacher", tiny_model(), tokenizer)  # 64 positions; the student's base has 128
    assert distill(base, data, tmp_path / "out", "--teacher", folder, "--max_seq_length", "100") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"minbert distill: --teacher {folder}: --max_seq_length 100 exceeds the teacher's max_position_embeddings (64)")
    assert data_reads == []


def test_a_teacher_folder_without_a_saved_model_is_refused_before_any_data_is_read(base, data, tmp_path, capsys, data_reads):  # noqa: F811
    (tmp_path / "teacher").mkdir()
    assert distill(base, data, tmp_path / "out", "--teacher", str(tmp_path / "teacher")) == 2
    assert (f"minbert distill: --teacher {tmp_path / 'teacher'}: no config.json with a model_type: not a saved model "
            "folder" in capsys.readouterr().err)
    assert data_reads == []


def test_a_teacher_with_truncated_weights_is_refused_before_any_data_is_read(  # noqa: F811
        base, data, tokenizer, tmp_path, capsys, data_reads):  # noqa: F811
    teacher = saved(tmp_path / "teacher", tiny_model(), tokenizer)
    weights = Path(teacher) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    capsys.readouterr()
    assert distill(base, data, tmp_path / "out", "--teacher", teacher) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(
        f"minbert distill: --teacher {teacher}: cannot read {weights} (truncated or corrupt?)"), error
    assert data_reads == []


def test_a_teacher_without_trained_task_heads_is_refused_before_any_data_is_read(  # noqa: F811
        base, data, tmp_path, capsys, data_reads):  # noqa: F811
    assert distill(base, data, tmp_path / "out", "--teacher", str(base)) == 2  # a plain encoder
    assert "a MinBertModel without trained task heads" in capsys.readouterr().err and data_reads == []


def test_each_fold_teachers_heads_are_checked_before_any_data_is_read(base, data, tokenizer, tmp_path, capsys, data_reads):  # noqa: F811
    first = saved(tmp_path / "fold0", tiny_model(seed=1), tokenizer, fold=0)
    second = saved(tmp_path / "fold1", tiny_model(tasks=heads(drop=["sts"])), tokenizer, fold=1)
    assert distill(base, data, tmp_path / "out", "--fold_teachers", first, second) == 2
    assert (f"minbert distill: --fold_teachers {second}: the teacher has no 'sts' head"
            in capsys.readouterr().err)
    assert data_reads == []


# ------------------------------------------------------------------------------------------------------
# 2. Out-of-fold teachers must have split the rows the student reads
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fold_runs(base, data, tmp_path_factory):  # noqa: F811
    """Two out-of-fold teachers trained by `minbert train` on `data` (16 rows a task), an ensemble of the
    first, and data folders whose training rows differ from `data`'s: 4 rows more, or as many rows with one
    sst label changed."""
    root = tmp_path_factory.mktemp("folds")
    for fold in (0, 1):
        assert minbert(["train", "--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir",
                        str(root / f"fold{fold}"), "--num_folds", "2", "--held_out_fold", str(fold), *TINY_RUN]) == 0
    assert minbert(["ensemble", "--selection", "all", "--models", str(root / "fold0"), "--data_dir", str(data),
                    "--output_dir", str(root / "ensemble0"), "--device", "cpu", "--no_progress"]) == 0
    rows = tiny_task_rows(n=16, seed=1)
    more = {task: extra.map(lambda row: {"id": "extra" + row["id"]}) for task, extra in tiny_task_rows(n=4, seed=9).items()}
    (root / "more_rows").mkdir()
    write_task_files(root / "more_rows", {task: datasets.concatenate_datasets([rows[task], more[task]]) for task in rows},
                     split="train")
    (root / "other_label").mkdir()
    sst = rows["sst"].map(lambda row, i: {"sentiment": (row["sentiment"] + 1) % 5 if i == 0 else row["sentiment"]},
                          with_indices=True)
    write_task_files(root / "other_label", {**rows, "sst": sst}, split="train")
    for folder in ("more_rows", "other_label"):
        for dev in Path(data).glob("*dev*"):
            shutil.copy(dev, root / folder / dev.name)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("first, data_dir, named", [
    ("fold0", "more_rows", "sst: the teacher trained on folds of 16 rows, this run reads 20"),
    ("fold0", "other_label", "sst: the teacher's training files are not this run's (16 rows each, but SHA-256"),
    ("ensemble0", "more_rows", "(its member {root}/fold0): sst: the teacher trained on folds of 16 rows, this run reads 20"),
], ids=["more rows", "same count other content", "ensemble member"])
def test_fold_teachers_trained_on_other_rows_than_the_student_reads_are_refused_before_any_prediction(
        base, fold_runs, tmp_path, capsys, predictions, first, data_dir, named):  # noqa: F811
    teachers = [str(fold_runs / first), str(fold_runs / "fold1")]
    assert distill(base, fold_runs / data_dir, tmp_path / "out", "--fold_teachers", *teachers) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"minbert distill: --fold_teachers {teachers[0]}")
    assert named.format(root=fold_runs) in error and error.endswith("its folds would be of other rows")
    assert predictions == [] and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_fold_teacher_whose_training_rows_are_not_recorded_is_refused_before_any_prediction(
        base, data, fold_runs, tmp_path, capsys, predictions):  # noqa: F811
    unrecorded = tmp_path / "fold0"
    shutil.copytree(fold_runs / "fold0", unrecorded)
    metrics = json.loads((unrecorded / "metrics.json").read_text())
    del metrics["training_data"]
    (unrecorded / "metrics.json").write_text(json.dumps(metrics))
    assert distill(base, data, tmp_path / "out", "--fold_teachers", str(unrecorded), str(fold_runs / "fold1")) == 2
    assert (f"minbert distill: --fold_teachers {unrecorded}: the rows it trained on are not recorded (no training_data "
            "in its metrics.json)" in capsys.readouterr().err)
    assert predictions == []


# ------------------------------------------------------------------------------------------------------
# 3. The output folder is none of the teachers
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output, teachers, named", [
    ("teacher", ["--teacher", "teacher"], "is --teacher"),
    (".", ["--teacher", "teacher"], "contains --teacher"),
    ("fold1", ["--fold_teachers", "fold0", "fold1"], "is one of --fold_teachers"),
], ids=["the teacher", "a folder holding the teacher", "a fold teacher"])
def test_an_output_folder_that_is_or_holds_a_teacher_is_refused_before_any_data_is_read(
        base, data, tokenizer, tmp_path, capsys, data_reads, output, teachers, named):  # noqa: F811
    root = tmp_path / "runs"
    root.mkdir()
    saved(root / "teacher", tiny_model(seed=1), tokenizer)
    tiny_model(seed=2).save_pretrained(root)  # the folder holding the teacher holds a model too: replaceable as such
    for fold in (0, 1):
        saved(root / f"fold{fold}", tiny_model(seed=3 + fold), tokenizer, fold=fold)
    before = folder_bytes(root)
    flags = [flag if flag.startswith("--") else str(root / flag) for flag in teachers]
    assert distill(base, data, root / output, "--overwrite_output_dir", *flags) == 2
    assert f"minbert distill: --output_dir {root / output} {named}" in capsys.readouterr().err
    assert data_reads == [] and folder_bytes(root) == before


# ------------------------------------------------------------------------------------------------------
# 4. Flags that could only give wrong targets or fail late
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, named", [(["--implied_pairs_per_question", "2"], "--implied_pairs_per_question"),
                                          (["--num_folds", "2", "--held_out_fold", "0", "--fold_seed", "0"],
                                           "--num_folds/--held_out_fold")])
def test_a_row_selection_that_would_shift_the_fold_teachers_folds_is_refused_before_any_data_is_read(  # noqa: F811
        base, data, tokenizer, tmp_path, capsys, data_reads, flags, named):  # noqa: F811
    folds = [saved(tmp_path / f"fold{fold}", tiny_model(seed=fold), tokenizer, fold=fold) for fold in (0, 1)]
    assert distill(base, data, tmp_path / "out", "--fold_teachers", *folds, *flags) == 2
    assert f"{named} with --fold_teachers would give rows a teacher" in capsys.readouterr().err
    assert data_reads == []


def test_adapter_flag_mistakes_are_refused_before_any_data_is_read(base, data, tokenizer, tmp_path, capsys, data_reads):  # noqa: F811
    teacher = saved(tmp_path / "teacher", tiny_model(), tokenizer)
    assert distill(base, data, tmp_path / "out", "--teacher", teacher, "--peft_config", "nowhere.json") == 2
    assert "--peft_config nowhere.json: " in capsys.readouterr().err and data_reads == []


def test_a_teacher_batch_size_below_one_is_refused_naming_the_flag(base, data, tokenizer, tmp_path, capsys, data_reads):  # noqa: F811
    teacher = saved(tmp_path / "teacher", tiny_model(), tokenizer)
    assert distill(base, data, tmp_path / "out", "--teacher", teacher, "--teacher_batch_size", "0") == 2
    assert "--teacher_batch_size must be at least 1, got 0" in capsys.readouterr().err and data_reads == []


# ------------------------------------------------------------------------------------------------------
# 5. An ensemble fold teacher's members, wherever distill runs
# ------------------------------------------------------------------------------------------------------


def _selection_file(folder, members, working_dir=None):
    folder.mkdir(parents=True)
    record = {"members": members, **({"working_dir": str(working_dir)} if working_dir else {})}
    (folder / "ensemble_selection.json").write_text(json.dumps(record))
    return folder


def test_an_ensembles_members_are_found_from_the_folder_its_command_ran_in(tmp_path, monkeypatch):
    (tmp_path / "built" / "fold0").mkdir(parents=True)
    ensemble = _selection_file(tmp_path / "built" / "ens", ["fold0"], working_dir=tmp_path / "built")
    monkeypatch.chdir(tmp_path)  # distill runs elsewhere
    assert trainers.distillation.ensemble_members(ensemble) == [tmp_path / "built" / "fold0"]


def test_an_ensemble_member_that_is_not_there_is_named(tmp_path):
    ensemble = _selection_file(tmp_path / "ens", ["gone"], working_dir=tmp_path)
    with pytest.raises(ValueError, match=rf"its member {tmp_path / 'gone'} \(ensemble_selection\.json\) is not there"):
        trainers.distillation.ensemble_members(ensemble)


def test_distill_help_names_the_distill_command(capsys):
    with pytest.raises(SystemExit):
        minbert(["distill", "--help"])
    assert capsys.readouterr().out.startswith("usage: minbert distill ")



def test_a_trained_students_tasks_default_to_its_own_heads(base, data, tokenizer, tmp_path):  # noqa: F811
    from hf_minbert.commands.distill import _checked_arguments

    teacher = saved(tmp_path / "teacher", tiny_model(), tokenizer)
    student = saved(tmp_path / "student", tiny_model(tasks=heads(drop=["para", "sts"])), tokenizer)
    flags = ["--model_name_or_path", student, "--data_dir", str(data), "--output_dir", str(tmp_path / "out")]
    _, specs, _ = _checked_arguments([*flags, "--teacher", teacher, "--max_seq_length", "64"])
    assert list(specs) == ["sst"]


def test_an_ensemble_teachers_heads_give_a_plain_students_default_tasks(tokenizer, tmp_path):  # noqa: F811
    from hf_minbert import MinBertEnsembleForMultitask
    from hf_minbert.commands.distill import DistillationArguments, _teacher_heads

    members = [tiny_model(tasks=heads(drop=["sts"]), seed=seed) for seed in (0, 1)]
    ensemble = MinBertEnsembleForMultitask.from_members(members, {"sst": [1, 1], "para": [1, 1]})
    folder = saved(tmp_path / "teacher", ensemble, tokenizer)
    assert sorted(_teacher_heads(DistillationArguments(teacher=folder))) == ["para", "sst"]
