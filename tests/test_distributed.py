"""Data-parallel training under torchrun (2 CPU processes, gloo), with every task sampling strategy."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from hf_minbert import MinBertConfig, MinBertModel
from tests.helpers import tiny_task_rows, write_task_files
from trainers.sampling import SAMPLING_STRATEGIES

WORKER = Path(__file__).with_name("ddp_worker.py")
# PCGrad needs all_tasks; gradient checkpointing leaves DDP parameters without a gradient in a step either way.
# "gather": MNR and CoSENT gathered across the ranks.
SETUPS = [(strategy, []) for strategy in SAMPLING_STRATEGIES] + [("all_tasks", ["pcgrad"]),
                                                                 ("proportional", ["checkpointing"]),
                                                                 ("all_tasks", ["checkpointing"]),
                                                                 ("proportional", ["gather"]),
                                                                 ("all_tasks", ["pcgrad", "gather"])]


def torchrun(*args, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("strategy, options", SETUPS, ids=["+".join([s, *o]) for s, o in SETUPS])
def test_two_ranks_see_disjoint_examples_share_the_task_schedule_and_end_equal(tmp_path, strategy, options):
    proc = torchrun(str(WORKER), str(tmp_path), strategy, *options)
    assert proc.returncode == 0, proc.stderr[-5000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["global_step"] == rank1["global_step"] == 6
    assert rank0["tasks"] == rank1["tasks"], "every rank must be on the same task(s) at every step"
    for step0, step1 in zip(rank0["batches"], rank1["batches"]):
        assert step0 and step1 and not set(step0) & set(step1), "ranks must train on disjoint examples"
    assert rank0["smart_computed"] > 0 and rank1["smart_computed"] > 0
    assert rank0["weights"] == rank1["weights"], "DDP must keep the replicas identical"
    assert rank0["terms"] and rank0["terms"] == rank1["terms"], "a logged term is the mean over the ranks, as `loss` is"
    if "gather" in options:
        assert any("mnr" in step for step in rank0["terms"]) and any("cosent" in step for step in rank0["terms"])


@pytest.fixture
def base_and_data(tmp_path, minilm_path):
    base, data = tmp_path / "base", tmp_path / "data"
    data.mkdir()
    torch.manual_seed(0)
    MinBertModel(MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=128)).save_pretrained(base)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(base)
    write_task_files(data, tiny_task_rows(n=16, seed=1), split="train")
    write_task_files(data, tiny_task_rows(n=8, seed=2), split="dev")
    return base, data


@pytest.mark.slow
@pytest.mark.parametrize("command, summary", [("train", "trained in"), ("pretrain-mlm", "MLM pretraining on")])
def test_a_command_under_torchrun_prints_its_summary_once(base_and_data, tmp_path, command, summary):
    base, data = base_and_data
    proc = torchrun("-m", "hf_minbert.cli", command, "--model_name_or_path", str(base), "--data_dir", str(data),
                    "--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--per_device_train_batch_size", "4",
                    "--bf16", "false", "--use_cpu", "true", "--ddp_backend", "gloo", "--max_seq_length", "32",
                    "--disable_tqdm", "true", "--report_to", "none")
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert proc.stdout.count(summary) == 1, proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "pretrain-mlm"])
def test_jit_checkpoints_under_torchrun_are_refused_in_one_line(base_and_data, tmp_path, command):
    # each process would take its checkpoint at its own step on SIGTERM, and the processes wait on each other
    base, data = base_and_data
    proc = torchrun("-m", "hf_minbert.cli", command, "--model_name_or_path", str(base), "--data_dir", str(data),
                    "--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--use_cpu", "true", "--bf16", "false",
                    "--ddp_backend", "gloo", "--enable_jit_checkpoint", "true", "--report_to", "none")
    assert proc.returncode != 0
    assert f"minbert {command}: --enable_jit_checkpoint: transformers takes its checkpoint on SIGTERM" in proc.stderr
    assert not (tmp_path / "out").exists()
