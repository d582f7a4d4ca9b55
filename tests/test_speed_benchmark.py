"""benchmarks/speed.py's and end_to_end.py's bookkeeping (not their timings): each history row names the CPU it
ran on, because MFU is a share of that machine's own measured peak and the project's machines differ; FLOPs
are counted per real sequence; the end-to-end ceiling is what the peak allows against the peer."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.helpers import REPO_ROOT, load_benchmark


@pytest.fixture(scope="module")
def speed():
    return load_benchmark("speed")


@pytest.fixture(scope="module")
def end_to_end():
    return load_benchmark("end_to_end")


TINY = SimpleNamespace(hidden_size=4, intermediate_size=8, num_hidden_layers=1)


def test_sequence_flops_count_projections_per_token_and_attention_per_pair_of_a_sequences_tokens(speed):
    # Per layer 2·tokens·(4H² + 2HI) + 4H·Σn², then the pooler 2H² per sequence; training triples it.
    forward = 2 * 5 * (4 * 16 + 2 * 4 * 8) + 4 * 4 * (2 * 2 + 3 * 3) + 2 * 2 * 16
    assert speed.sequence_flops(TINY, [2, 3], training=False) == forward
    assert speed.sequence_flops(TINY, [2, 3], training=True) == 3 * forward


def test_model_flops_of_a_padded_batch_count_only_its_real_tokens(speed):
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    assert speed.model_flops(TINY, mask, training=True) == speed.sequence_flops(TINY, [2, 3], training=True)


def test_end_to_end_ceiling_is_our_tokens_per_second_at_the_peak_over_the_peers(end_to_end):
    report = {"minbert": {"tflops": 0.2, "matmul_flops_per_real_token": 1e8},
              "peer": {"tflops": 0.1, "real_tokens_per_s": 1000.0}}
    end_to_end.add_matmul_ceiling(report, peak_tflops=0.4)
    # At 0.4 TFLOP/s, 1e8 FLOPs a token is 4000 tokens/s: 4× the peer's 1000.
    assert report["ceiling_ratio_real_tokens"] == 4.0
    assert (report["minbert"]["mfu"], report["peer"]["mfu"]) == (0.5, 0.25)


def test_history_row_records_the_cpu_its_bf16_peak_and_the_optimizer_and_clipping_ratios(speed):
    settings = speed.SpeedSettings(label="a change")
    cells = {"train-bf16": {"mfu": {"minbert": 0.5}, "ratio": 2.0}}
    row = speed.history_row(settings, "python benchmarks/speed.py", cells, {"ratio": 1.3}, {"ratio": 0.4},
                            {"cpu": "AMD EPYC"}, 0.44)
    assert (row["cpu"], row["bf16 peak tflops"], row["train-bf16 mfu"]) == ("AMD EPYC", 0.44, 0.5)
    assert (row["adamw ratio"], row["clipping ratio"]) == (1.3, 0.4)


def test_clipping_is_timed_from_the_same_gradients_on_both_sides(speed, monkeypatch):
    params = [torch.nn.Parameter(torch.zeros(4)) for _ in range(3)]
    for param in params:
        param.grad = torch.full((4,), 2.0)
    monkeypatch.setattr(speed, "default_recipe_parameters", lambda: params)
    seen = []
    torch_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda ps, norm: seen.append(ps[0].grad.clone()) or torch_clip(ps, norm))
    timing = speed.time_clipping(speed.SpeedSettings(optimizer_repeats=2))
    assert set(timing["median_s"]) == {"MultitaskTrainer's clipping", "torch clip_grad_norm_"}
    assert len(seen) == 3 and all(torch.equal(grad, torch.full((4,), 2.0)) for grad in seen)


def test_history_table_shows_each_rows_cpu_and_marks_rows_without_one(speed):
    rows = [{"label": "old", "command": "c", "train-bf16 mfu": 0.1},
            {"label": "new", "command": "c", "train-bf16 mfu": 0.5, "cpu": "AMD EPYC", "bf16 peak tflops": 0.44}]
    assert [speed._history_cpu(row) for row in rows] == ["not recorded", "AMD EPYC (0.44)"]


@pytest.fixture(scope="module")
def result_files():
    return load_benchmark("result_files")


@pytest.mark.parametrize("name", ["speed", "end_to_end"])
def test_a_new_run_adds_its_row_to_the_committed_history(result_files, name):
    history = result_files.append_history(REPO_ROOT / "benchmarks" / "results", name, {"label": "a change"})
    assert len(history) > 1 and history[-1] == {"label": "a change"}
    assert all("label" in row and "command" in row for row in history[:-1])


def test_the_first_run_starts_the_history(result_files, tmp_path):
    assert result_files.append_history(tmp_path, "speed", {"label": "first"}) == [{"label": "first"}]


def test_an_unreadable_results_file_stops_the_run_instead_of_dropping_its_history(result_files, tmp_path):
    (tmp_path / "speed.json").write_text('{"history": [{"label": "a"}')  # cut short by an interrupted write
    with pytest.raises(SystemExit, match=r"speed\.json: cannot read its history"):
        result_files.append_history(tmp_path, "speed", {"label": "b"})


def test_saving_results_replaces_both_files_whole(result_files, tmp_path):
    result_files.save_results(tmp_path, "speed", {"history": [1]}, "| a |\n")
    result_files.save_results(tmp_path, "speed", {"history": [1, 2]}, "| b |\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speed.json", "speed.md"]
    assert (tmp_path / "speed.md").read_text() == "| b |\n"


def test_minbert_is_timed_on_the_global_steps_the_peer_counts(end_to_end):
    ours = np.array([0.5, 0.2, 0.3, 0.4])
    peer = np.array([np.nan, 0.3, np.nan, 0.5])  # each peer model's first step is not training
    assert np.isnan(end_to_end.on_the_peers_steps(ours, peer)).tolist() == [True, False, True, False]


@pytest.mark.parametrize("flags", ["--max_steps 5", "--task_sampling=all_tasks", "--num_train_epochs 1"])
def test_end_to_end_refuses_minbert_flags_that_would_change_the_steps_it_replays(end_to_end, flags, capsys):
    with pytest.raises(SystemExit):
        end_to_end.main([f"--minbert_flags={flags}"])
    assert "is the script's to set (--steps, --warmup)" in capsys.readouterr().err


def test_speed_refuses_zero_threads(capsys):
    with pytest.raises(SystemExit):
        load_benchmark("speed").parse_args(["--threads", "0"])
    assert "--threads must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("budget", ["sst=abc", "foo=768"])
def test_batch_tokens_refuses_a_budget_before_its_first_run(budget, capsys):
    with pytest.raises(SystemExit):
        load_benchmark("batch_tokens").main(["--budgets", budget])
    assert f"--budgets {budget}: --batch_tokens: " in capsys.readouterr().err
