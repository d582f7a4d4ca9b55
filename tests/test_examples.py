"""The examples run as written (on small CS224N-format files the test writes)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tiny_model, tiny_task_rows, write_task_files

ROOT = Path(__file__).resolve().parents[1]


DEV_ROWS_ALSO_IN_TRAIN = 2  # of each task's dev rows, the first ones are training rows too


@pytest.fixture(scope="module")
def multitask_example_run(tmp_path_factory):
    """examples/train_multitask.py run once on 16 training rows a task, whose dev rows include
    DEV_ROWS_ALSO_IN_TRAIN of them: (the finished process, the output folder)."""
    import datasets

    folder = tmp_path_factory.mktemp("train_multitask")
    train, other = tiny_task_rows(n=16), tiny_task_rows(n=8, seed=1)
    dev = {task: datasets.concatenate_datasets([rows.select(range(DEV_ROWS_ALSO_IN_TRAIN)),
                                                other[task].select(range(DEV_ROWS_ALSO_IN_TRAIN, 8))])
           for task, rows in train.items()}
    write_task_files(folder, train, split="train")
    write_task_files(folder, dev, split="dev")
    out = folder / "model"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_multitask.py"), str(folder), str(out), "16"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=folder,
    )
    return proc, out


@pytest.mark.slow
def test_train_multitask_example_trains_saves_and_scores(multitask_example_run):
    proc, out = multitask_example_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"sst", "para", "sts", "overall", "mean"} <= set(metrics)
    assert (out / "model.safetensors").exists() and (out / "modeling_minbert.py").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["tasks"]["sts"]["pair_encoding"] == "bi" and config["task_specific_layers"] == 2


@pytest.mark.slow
def test_train_multitask_example_trains_on_no_row_equal_to_a_dev_row_of_any_task(multitask_example_run):
    proc, _ = multitask_example_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    # each task's report (printed by the example): "sst: 14 training rows from 1 source(s)"
    trained = {task: int(rows) for task, rows in re.findall(r"^(\w+): (\d+) training rows from", proc.stdout, re.M)}
    assert trained == {task: 16 - DEV_ROWS_ALSO_IN_TRAIN for task in ("sst", "para", "sts")}


@pytest.mark.slow
def test_pipelines_example_runs_every_pipeline_of_a_saved_folder(tmp_path, minilm_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "model"
    tiny_model().save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipelines.py"), str(folder)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "'para':" in proc.stdout and proc.stdout.rstrip().endswith("tokens x 32 features")
