"""Data-parallel training under torchrun (2 CPU processes, gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_ranks_see_disjoint_examples_share_the_task_schedule_and_end_equal(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         str(WORKER), str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["global_step"] == rank1["global_step"] == 6
    assert rank0["tasks"] == rank1["tasks"], "every rank must be on the same task at every step"
    seen0 = {i for batch in rank0["batches"] for i in batch}
    seen1 = {i for batch in rank1["batches"] for i in batch}
    assert seen0 and seen1 and not seen0 & seen1, "ranks must train on disjoint examples"
    assert rank0["smart_computed"] > 0 and rank1["smart_computed"] > 0
    assert rank0["weights"] == rank1["weights"], "DDP must keep the replicas identical"
