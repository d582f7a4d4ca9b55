"""Data-parallel training under torchrun (2 CPU processes, gloo), with every task sampling strategy."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.sampling import SAMPLING_STRATEGIES

WORKER = Path(__file__).with_name("ddp_worker.py")
# PCGrad needs all_tasks; gradient checkpointing leaves DDP parameters without a gradient in a step either way.
SETUPS = [(strategy, []) for strategy in SAMPLING_STRATEGIES] + [("all_tasks", ["pcgrad"]),
                                                                 ("proportional", ["checkpointing"]),
                                                                 ("all_tasks", ["checkpointing"])]


@pytest.mark.slow
@pytest.mark.parametrize("strategy, options", SETUPS, ids=["+".join([s, *o]) for s, o in SETUPS])
def test_two_ranks_see_disjoint_examples_share_the_task_schedule_and_end_equal(tmp_path, strategy, options):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(WORKER), str(tmp_path), strategy, *options],
        capture_output=True, text=True, timeout=600, env=env,
    )
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
