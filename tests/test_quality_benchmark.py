"""benchmarks/quality.py's bookkeeping (not its training runs): suites kept apart by epoch budget, the table's
Δ column and the share of the ensemble's gain the distilled model keeps."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import load_benchmark


@pytest.fixture(scope="module")
def quality():
    return load_benchmark("quality")


def _row(overall, sst=0.5):
    return {"sst_accuracy": sst, "para_accuracy": 0.8, "sts_pearson": 0.8, "overall": overall, "mean": 0.7,
            "minutes": 1.0, "max_train_samples": None, "parameters_millions": 22.7}


def _ensemble(overall, members=("default", "multitask")):
    """An ensemble row whose command names its members' folders (rows of the suite)."""
    return {**_row(overall), "command": "minbert ensemble --selection greedy --models "
                                        + " ".join(f"runs/quality/{member}" for member in members) + " --output_dir x"}


def _fake_minbert(calls, seconds=1.0):
    """A stand-in for quality._minbert that records (command, flags) and writes what a run leaves in its
    --output_dir: metrics.json (and an ensemble's selection record)."""
    def fake(command, flags, environment=None):
        out = Path(flags[flags.index("--output_dir") + 1])
        out.mkdir(parents=True)
        (out / "metrics.json").write_text('{"sst": {"accuracy": 0.5}, "para": {"accuracy": 0.8}, '
                                          '"sts": {"pearson": 0.8}, "overall": 0.73, "mean": 0.7}')
        (out / "ensemble_selection.json").write_text("{}")
        calls.append((command, flags, environment) if environment else (command, flags))
        return seconds
    return fake


def _suite_args(tmp_path, epochs=None):
    return SimpleNamespace(work_dir=str(tmp_path), data_dir="data", epochs=epochs, extra="", max_train_samples=None)


def test_distilled_model_keeps_its_share_of_the_ensembles_gain_over_the_best_single_row(quality):
    results = {"default": _row(0.70), "multitask": _row(0.72), "ensemble": _ensemble(0.76), "distilled": _row(0.735)}
    assert quality.distillation_gain_kept(results) == pytest.approx(0.375)


def test_no_share_is_claimed_when_the_ensemble_gains_nothing(quality):
    results = {"default": _row(0.72), "ensemble": _ensemble(0.72), "distilled": _row(0.73)}
    assert quality.distillation_gain_kept(results) is None


def test_table_gives_each_rows_overall_difference_from_the_default(quality):
    table = quality.render_table({"default": _row(0.700), "no_smart": _row(0.690)})
    no_smart = next(line for line in table.splitlines() if line.startswith("| no_smart |"))
    assert "| -0.010 |" in no_smart


def test_a_row_measured_under_former_defaults_carries_its_note_below_the_table(quality):
    table = quality.render_table({"default": _row(0.70), "sts_cross_cosine": {**_row(0.69), "note": "the old default"}})
    assert table.splitlines()[-1] == "- sts_cross_cosine: the old default"


def test_an_epoch_budget_keeps_its_own_results_file_and_work_dir(quality, tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    monkeypatch.setattr(quality, "run_training_row", lambda row, args: {**_row(0.7), "work_dir": args.work_dir})
    assert quality.main(["--epochs", "1", "--rows", "default"]) == 0
    saved = (tmp_path / "quality-1epoch.json").read_text()
    assert '"work_dir": "' + str(quality.ROOT / "runs" / "quality-1epoch") + '"' in saved
    assert (tmp_path / "quality-1epoch.md").is_file() and not (tmp_path / "quality.json").exists()


def test_a_named_suite_keeps_its_own_results_file_and_work_dir(quality, tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    monkeypatch.setattr(quality, "run_training_row", lambda row, args: {**_row(0.7), "work_dir": args.work_dir})
    assert quality.main(["--epochs", "1", "--suite", "quality-1epoch-new", "--rows", "default"]) == 0
    saved = (tmp_path / "quality-1epoch-new.json").read_text()
    assert '"work_dir": "' + str(quality.ROOT / "runs" / "quality-1epoch-new") + '"' in saved
    assert not (tmp_path / "quality-1epoch.json").exists()


def test_summary_warns_that_a_share_of_a_noise_sized_gain_means_little(quality):
    results = {"default": _row(0.730), "ensemble": _ensemble(0.731), "distilled": _row(0.725)}
    summary = quality.distillation_summary(results)
    assert "+0.0010" in summary and "-0.0050" in summary and "noise" in summary and "keeps" not in summary


def test_an_equal_weight_ensemble_is_compared_with_its_own_members_on_dev_rows_that_did_not_pick_them(quality):
    ensemble = {**_ensemble(0.752), "held_out_overall": {"ensemble": 0.7524, "best_single": 0.7393}}
    summary = quality.distillation_summary({"default": _row(0.760), "ensemble_folds": ensemble}, "ensemble_folds")
    assert all(figure in summary for figure in ("0.7524", "0.7393", "+0.0131"))


def test_summary_of_a_real_gain_states_the_share_kept_without_a_warning(quality):
    results = {"default": _row(0.70), "ensemble": _ensemble(0.76), "distilled": _row(0.745)}
    summary = quality.distillation_summary(results)
    assert "75%" in summary and "noise" not in summary


def test_summary_adds_the_ensembles_gain_on_dev_rows_that_did_not_choose_it(quality):
    ensemble = {**_ensemble(0.76), "held_out_overall": {"ensemble": 0.741, "best_single": 0.735}}
    summary = quality.distillation_summary({"default": _row(0.70), "ensemble": ensemble, "distilled": _row(0.745)})
    assert all(figure in summary for figure in ("0.7410", "0.7350", "+0.0060"))


def _equal_weight_ensemble_of_two_rows(quality, tmp_path, monkeypatch):
    """Runs the ensemble_all row over two trained rows' folders; returns the (command, flags) it ran."""
    calls = []
    for row in ("default", "epochs_6"):
        (tmp_path / row).mkdir()
        (tmp_path / row / "config.json").write_text('{"model_type": "minbert"}')
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls))
    args = quality.argparse.Namespace(work_dir=str(tmp_path), data_dir="data")
    quality.run_ensemble_row(args, {"default": _row(0.7), "epochs_6": _row(0.71)}, "ensemble_all")
    (call,) = calls
    return call


def test_the_equal_weight_ensemble_row_asks_minbert_ensemble_to_average_every_trained_row(quality, tmp_path, monkeypatch):
    command, flags = _equal_weight_ensemble_of_two_rows(quality, tmp_path, monkeypatch)
    assert command == "ensemble" and flags[:2] == ["--selection", "all"]
    assert flags[flags.index("--models") + 1:flags.index("--output_dir")] == [str(tmp_path / "default"), str(tmp_path / "epochs_6")]
    assert flags[flags.index("--output_dir") + 1] == str(tmp_path / "ensemble_all")


def test_a_rerun_ensemble_row_replaces_its_ensemble(quality, tmp_path, monkeypatch):
    _, flags = _equal_weight_ensemble_of_two_rows(quality, tmp_path, monkeypatch)
    assert "--overwrite_output_dir" in flags


def test_each_ensemble_row_is_summarized_with_its_own_distilled_row(quality):
    results = {"default": _row(0.70), "ensemble": _ensemble(0.76), "distilled": _row(0.745),
               "ensemble_all": {**_ensemble(0.72), "held_out_overall": {"ensemble": 0.72, "best_single": 0.7}},
               "distilled_all": _row(0.71)}
    table = quality.render_table(results)
    assert all(figure in table for figure in ("+0.0600", "+0.0450", "75%"))
    all_summary = quality.distillation_summary(results, "ensemble_all", "distilled_all")
    assert all(figure in all_summary for figure in ("ensemble_all +0.0200", "distilled_all model +0.0100", "50%"))
    assert "cross-fitted" not in all_summary  # averaging every row chose nothing on dev: no selection luck to remove
    assert all_summary in table


def test_a_suites_epoch_budget_applies_to_every_row_but_the_one_that_sets_its_own(quality, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls))
    args = _suite_args(tmp_path, epochs=1.0)
    for row in ("no_smart", "epochs_6"):
        quality.run_training_row(row, args)
    trained = {Path(flags[flags.index("--output_dir") + 1]).name: flags for _, flags in calls}
    epochs = {row: [flags[i + 1] for i, flag in enumerate(flags) if flag == "--num_train_epochs"] for row, flags in trained.items()}
    assert epochs == {"no_smart": ["1"], "epochs_6": ["6"]}


def test_an_ensemble_without_its_distilled_row_yet_is_summarized_alone(quality):
    summary = quality.distillation_summary({"default": _row(0.730), "ensemble_all": _ensemble(0.733)}, "ensemble_all", "distilled_all")
    assert "ensemble_all +0.0030" in summary and "noise" in summary and "distilled" not in summary
    assert quality.distillation_gain_kept({"default": _row(0.70), "ensemble": _ensemble(0.76)}) is None


def test_the_out_of_fold_row_trains_each_folds_teachers_without_it_then_distills_from_their_averages(
    quality, tmp_path, monkeypatch
):
    calls = []
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls, seconds=60.0))
    args = _suite_args(tmp_path)
    result = quality.run_distilled_oof_row(args, {}, "distilled_oof")
    trained = [flags for command, flags in calls if command == "train"]
    held_out = sorted((flags[flags.index("--held_out_fold") + 1], flags[flags.index("--seed") + 1]) for flags in trained)
    assert held_out == [("0", "1"), ("0", "42"), ("1", "1"), ("1", "42")]
    averaged = [flags for command, flags in calls if command == "ensemble"]
    assert [flags[:2] for flags in averaged] == [["--selection", "all"]] * 2
    assert all(f"seed{seed}" in member and f"fold{fold}" in member for fold, flags in enumerate(averaged)
               for seed, member in zip((42, 1), flags[flags.index("--models") + 1:flags.index("--output_dir")]))
    command, distill = calls[-1]
    teachers = distill[distill.index("--fold_teachers") + 1:distill.index("--fold_teachers") + 3]
    assert command == "distill" and teachers == [str(tmp_path / "oof_teachers" / "fold0"), str(tmp_path / "oof_teachers" / "fold1")]
    assert result["minutes"] == 7.0  # four trainings, two averages and the distillation, a minute each


def test_the_curriculum_row_trains_on_sst_sentences_alone_from_its_two_epoch_rows_model_under_one_seed(
    quality, tmp_path, monkeypatch
):
    calls, results = [], {}
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls, seconds=60.0))
    result = quality.run_curriculum_row(_suite_args(tmp_path), results, "curriculum_seed2")
    (_, phrases), (_, sentences) = calls
    assert "--train_sources" not in phrases and phrases[phrases.index("--num_train_epochs") + 1] == "2"
    assert sentences[sentences.index("--model_name_or_path") + 1] == str(tmp_path / "epochs_2_seed2")
    assert sentences[sentences.index("--train_sources") + 1] == "sst=ids-sst-train.csv"
    assert [flags[flags.index("--seed") + 1] for flags in (phrases, sentences)] == ["2", "2"]
    assert result["minutes"] == 2.0 and result["command"].count("minbert train") == 2


def test_the_curriculum_rows_first_stage_is_recorded_as_its_two_epoch_row(quality, tmp_path, monkeypatch):
    calls, results = [], {}
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls, seconds=60.0))
    quality.run_curriculum_row(_suite_args(tmp_path), results, "curriculum")
    assert results["epochs_2"]["minutes"] == 1.0 and results["epochs_2"]["command"].count("minbert train") == 1


def test_the_curriculum_row_refuses_a_suites_epoch_budget_before_training(quality, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls))
    with pytest.raises(SystemExit, match="curriculum row sets its own epochs"):
        quality.run_curriculum_row(_suite_args(tmp_path, epochs=1.0), {}, "curriculum")
    assert calls == []


def test_the_curriculum_sentence_stages_flags_are_minbert_train_arguments(quality, tmp_path):
    from hf_minbert.commands.train_arguments import parse_arguments

    parsed = parse_arguments(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"),
                              *quality.CURRICULUM_SENTENCE_EPOCH])
    assert parsed[2].num_train_epochs == 1 and parsed[2].warmup_ratio == 0


def test_the_out_of_fold_student_is_summarized_against_the_equal_weight_ensemble(quality):
    results = {"default": _row(0.70), "ensemble_all": _ensemble(0.72), "distilled_oof": _row(0.715)}
    summaries = [line for line in quality.render_table(results).splitlines() if line.startswith("Against")]
    assert summaries == [quality.distillation_summary(results, "ensemble_all", "distilled_oof")]
    assert "distilled_oof" in summaries[0] and "75%" in summaries[0]


def test_the_fold_ensemble_row_averages_the_out_of_fold_teachers_single_models(quality, tmp_path, monkeypatch):
    calls, teachers = [], tmp_path / "oof_teachers"
    for name in ("fold0_seed42", "fold0_seed1", "fold1_seed42", "fold1_seed1", "fold0", "fold1"):
        (teachers / name).mkdir(parents=True)
        model_type = "minbert-ensemble" if name in ("fold0", "fold1") else "minbert"
        (teachers / name / "config.json").write_text(f'{{"model_type": "{model_type}"}}')
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls))
    args = quality.argparse.Namespace(work_dir=str(tmp_path), data_dir="data")
    quality.run_ensemble_row(args, {"default": _row(0.7)}, "ensemble_folds")
    (command, flags), = calls
    members = flags[flags.index("--models") + 1:flags.index("--output_dir")]
    assert flags[:2] == ["--selection", "all"]
    assert sorted(Path(member).name for member in members) == ["fold0_seed1", "fold0_seed42", "fold1_seed1", "fold1_seed42"]


def test_the_fold_ensemble_row_without_the_out_of_fold_teachers_says_to_run_them_first(quality, tmp_path):
    args = quality.argparse.Namespace(work_dir=str(tmp_path), data_dir="data")
    with pytest.raises(SystemExit, match="distilled_oof's teachers"):
        quality.run_ensemble_row(args, {"default": _row(0.7)}, "ensemble_folds")


def test_a_seed_row_is_its_rows_command_with_that_seed_and_is_listed_right_after_it(quality):
    rows = list(quality.TRAIN_ROWS)
    for row in quality.SEEDED_TRAIN_ROWS:
        seed_rows = [f"{row}_seed{seed}" for seed in quality.SEEDS]
        assert rows[rows.index(row) + 1:rows.index(row) + 1 + len(seed_rows)] == seed_rows
        for seed, seed_row in zip(quality.SEEDS, seed_rows):
            assert quality.TRAIN_ROWS[seed_row][1] == [*quality.TRAIN_ROWS[row][1], "--seed", str(seed)]
        assert quality.SEED_GROUPS[row] == (row, *seed_rows)


def test_a_row_with_an_environment_trains_under_it_and_records_it_in_its_command(quality, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls))
    args = _suite_args(tmp_path)
    result = quality.run_training_row("token_rows_8_seed1", args)
    (command, flags, environment), = calls
    assert environment == {"MINBERT_CPU_ROW_STEPS": "8"} and flags[-2:] == ["--seed", "1"]
    assert result["command"].startswith("MINBERT_CPU_ROW_STEPS=8 minbert train ")


def test_every_training_rows_flags_are_minbert_train_arguments(quality, tmp_path):
    from hf_minbert.commands.train_arguments import parse_arguments

    for row, (_, flags) in quality.TRAIN_ROWS.items():
        parsed = parse_arguments(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / row), *flags])
        assert parsed[2].output_dir == str(tmp_path / row), row



def test_a_recipe_measured_with_three_seeds_gets_its_mean_and_standard_deviation(quality):
    results = {"default": _row(0.70, sst=0.50), "default_seed1": _row(0.72, sst=0.52), "default_seed2": _row(0.74, sst=0.54)}
    line = next(line for line in quality.render_table(results).splitlines() if "mean ± sd of 3 seeds" in line)
    assert "| 0.520 ± 0.020 |" in line and "| 0.720 ± 0.020 |" in line


def test_a_recipe_with_one_seed_gets_no_spread(quality):
    assert "mean ± sd" not in quality.render_table({"default": _row(0.70), "no_smart": _row(0.69)})


def test_a_rerun_row_replaces_its_model_folder(quality, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls))
    args = quality.main.__globals__["argparse"].Namespace(work_dir=str(tmp_path), data_dir="d", epochs=None, extra="",
                                                          max_train_samples=None)
    quality.run_training_row("default", args)
    flags = calls[0][1]
    assert flags[flags.index("--overwrite_output_dir") + 1] == "true"


def test_steal_share_is_the_hosts_part_of_the_cpu_time_between_two_readings(quality):
    # /proc/stat's counters: user nice system idle iowait irq softirq steal
    before, after = [100, 0, 10, 500, 0, 0, 0, 20], [400, 0, 40, 600, 0, 0, 0, 120]
    assert quality._steal_share(before, after) == pytest.approx(100 / 530, abs=1e-3)


def test_steal_share_is_unknown_without_cpu_counters(quality):
    assert quality._steal_share(None, [1] * 8) is None
    assert quality._steal_share([1, 2, 3], [4, 5, 6]) is None


def test_table_shows_how_much_of_the_cpu_the_host_took_beside_a_rows_minutes(quality):
    table = quality.render_table({"default": {**_row(0.70), "minutes": 61.0, "cpu_steal_share": 0.12}})
    assert "| 61.0 (host took 12%) |" in table


def test_a_rescored_row_scores_each_kept_checkpoint_of_its_source_and_keeps_the_best(quality, tmp_path, monkeypatch):
    source = tmp_path / "pair_swap_seed1"
    for step in (3060, 4590):
        (source / f"checkpoint-{step}").mkdir(parents=True)
    overall = {"checkpoint-3060": 0.76, "checkpoint-4590": 0.77}
    calls = []

    def fake(command, flags, environment=None):
        out = Path(flags[flags.index("--output_dir") + 1])
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps({"sst": {"accuracy": 0.5}, "para": {"accuracy": 0.85},
                                                      "sts": {"pearson": 0.88}, "overall": overall[out.name], "mean": 0.7}))
        calls.append((command, flags))
        return 30.0

    monkeypatch.setattr(quality, "_minbert", fake)
    args = SimpleNamespace(work_dir=str(tmp_path), data_dir="data")
    result = quality.run_rescored_row(args, {"pair_swap_seed1": {**_row(0.75), "minutes": 26.0}}, "default_both_orders_seed1")
    assert [Path(flags[flags.index("--model") + 1]).name for _, flags in calls] == ["checkpoint-3060", "checkpoint-4590"]
    assert all(command == "evaluate" and flags[-2:] == ["--average_pair_orders", "para"] for command, flags in calls)
    assert result["overall"] == 0.77 and result["checkpoints_overall"] == overall
    assert result["minutes"] == 27.0  # the source's training and both scorings


def test_a_rescored_row_without_its_source_says_to_run_it_first(quality, tmp_path):
    args = SimpleNamespace(work_dir=str(tmp_path), data_dir="data")
    with pytest.raises(SystemExit, match="needs the pair_swap_seed2 row's model and checkpoints"):
        quality.run_rescored_row(args, {}, "default_both_orders_seed2")


def _saved_model_folder(folder, weights):
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "minbert"}')
    save_file(weights, folder / "model.safetensors")


def test_the_seeds_ensemble_row_averages_the_default_seeds_models_only(quality, tmp_path, monkeypatch):
    calls = []
    for row in (*quality.ENSEMBLE_MEMBERS["ensemble_default_seeds"], "epochs_6"):
        (tmp_path / row).mkdir()
        (tmp_path / row / "config.json").write_text('{"model_type": "minbert"}')
    monkeypatch.setattr(quality, "_minbert", _fake_minbert(calls))
    args = quality.argparse.Namespace(work_dir=str(tmp_path), data_dir="data")
    quality.run_ensemble_row(args, {"epochs_6": _row(0.71)}, "ensemble_default_seeds")
    (_, flags), = calls
    members = flags[flags.index("--models") + 1:flags.index("--output_dir")]
    assert members == [str(tmp_path / row) for row in quality.ENSEMBLE_MEMBERS["ensemble_default_seeds"]]


def test_a_soup_holds_the_mean_of_its_members_weights_and_keeps_integer_tensors(quality, tmp_path):
    import torch
    from safetensors.torch import load_file

    _saved_model_folder(tmp_path / "a", {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([3])})
    _saved_model_folder(tmp_path / "b", {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([3])})
    quality.average_weights([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    soup = load_file(tmp_path / "soup" / "model.safetensors")
    assert soup["w"].tolist() == [2.0, 4.0] and soup["ids"].tolist() == [3]


def test_a_soup_keeps_the_first_members_config_but_not_what_describes_that_member_alone(quality, tmp_path):
    import torch

    _saved_model_folder(tmp_path / "a", {"w": torch.tensor([1.0])})
    _saved_model_folder(tmp_path / "b", {"w": torch.tensor([3.0])})
    for name in ("README.md", "metrics.json", "training_config.json", "training_curves.png", "checkpoint-7/x"):
        (tmp_path / "a" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "a" / name).write_text("member a")
    quality.average_weights([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    assert sorted(path.name for path in (tmp_path / "soup").iterdir()) == ["config.json", "model.safetensors"]


def test_the_seeds_ensemble_row_refuses_to_run_without_every_seed(quality, tmp_path):
    (tmp_path / "default_no_dev_repeats").mkdir()
    (tmp_path / "default_no_dev_repeats" / "config.json").write_text('{"model_type": "minbert"}')
    args = quality.argparse.Namespace(work_dir=str(tmp_path), data_dir="data")
    with pytest.raises(SystemExit, match="needs the models of default_no_dev_repeats_seed1, default_no_dev_repeats_seed2"):
        quality.run_ensemble_row(args, {}, "ensemble_default_seeds")


def test_the_soup_row_without_its_members_says_to_run_them_first(quality, tmp_path):
    args = quality.argparse.Namespace(work_dir=str(tmp_path), data_dir="data")
    with pytest.raises(SystemExit, match="needs the models of default_no_dev_repeats"):
        quality.run_soup_row(args, {}, "soup_default_seeds")


def test_an_ensemble_is_compared_with_its_own_members_not_with_a_better_row_outside_it(quality):
    results = {"default": _row(0.70), "multitask": _row(0.72), "lr_3e-5": _row(0.80), "ensemble": _ensemble(0.73)}
    assert quality.distillation_summary(results).startswith("Against its best member row (multitask): ensemble +0.0100")


def test_an_ensemble_whose_member_row_was_measured_again_since_states_no_comparison_with_it(quality):
    results = {"default": {**_row(0.75), "date": "2026-12-03"}, "multitask": {**_row(0.72), "date": "2026-11-22"},
               "ensemble": {**_ensemble(0.73), "date": "2026-11-22"}}
    assert quality.distillation_summary(results) is None


def test_a_member_row_measured_again_later_the_same_day_as_its_ensemble_counts_as_measured_since(quality):
    results = {"default": {**_row(0.75), "finished": "2026-12-03T18:00:00"},
               "multitask": {**_row(0.72), "finished": "2026-12-03T09:00:00"},
               "ensemble": {**_ensemble(0.73), "finished": "2026-12-03T12:00:00"}}
    assert quality.distillation_summary(results) is None


def test_an_ensemble_clearly_below_its_best_member_is_not_called_noise(quality):
    summary = quality.distillation_summary({"default": _row(0.76), "multitask": _row(0.70), "ensemble": _ensemble(0.74)})
    assert "-0.0200" in summary and "below its best member by more than run-to-run noise" in summary


def test_a_quick_capped_run_does_not_replace_a_rows_full_data_result(quality, tmp_path, monkeypatch, capsys):
    (tmp_path / "quality.json").write_text(json.dumps({"default": _row(0.76)}))
    monkeypatch.setattr(quality, "run_training_row", lambda row, args: pytest.fail("trained"))
    with pytest.raises(SystemExit):
        quality.main(["--rows", "default", "--max_train_samples", "50", "--out_dir", str(tmp_path)])
    assert "would replace the full-data result of default" in capsys.readouterr().err


def test_render_of_a_suite_that_does_not_exist_writes_nothing(quality, tmp_path, capsys):
    with pytest.raises(SystemExit):
        quality.main(["--render", "--suite", "qualty", "--out_dir", str(tmp_path)])
    assert "no suite 'qualty'" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags", [["--epochs", "nan"], ["--epochs", "0"], ["--max_train_samples", "0"]])
def test_a_suite_flag_out_of_range_is_refused(quality, tmp_path, flags):
    with pytest.raises(SystemExit):
        quality.main([*flags, "--out_dir", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_a_composite_row_missing_its_parts_is_reported_and_the_suite_goes_on(quality, tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    monkeypatch.setattr(quality, "run_training_row", lambda row, args: _row(0.7))
    status = quality.main(["--rows", "soup_default_seeds,default", "--work_dir", str(tmp_path / "runs")])
    assert status != 0 and "default" in json.loads((tmp_path / "quality.json").read_text())
