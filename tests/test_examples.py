"""The examples run as written (on small CS224N-format files the test writes)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tiny_model, tiny_task_rows, write_task_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_multitask_example_trains_saves_and_scores(tmp_path):
    rows = tiny_task_rows(n=16)
    for split in ("train", "dev"):
        write_task_files(tmp_path, rows, split=split)
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_multitask.py"), str(tmp_path), str(out), "16"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"sst", "para", "sts", "overall", "mean"} <= set(metrics)
    assert (out / "model.safetensors").exists() and (out / "modeling_minbert.py").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["tasks"]["sts"]["pair_encoding"] == "bi" and config["task_specific_layers"] == 2


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
