"""What `minbert train` (and `distill`, `pretrain-mlm`) promise: --seed fixes the run, a bad flag or bad data
is one line before any training, a model folder is never silently or half replaced, and skipped data rows
are reported on the console, in metrics.json and in the card."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from hf_minbert import MinBertConfig, MinBertModel
from hf_minbert.cli import main as minbert
from tests.helpers import folder_bytes, tiny_model, tiny_task_rows, write_task_files

TINY_RUN = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--eval_strategy", "no", "--save_strategy", "no",
            "--bf16", "false", "--use_cpu", "true", "--disable_tqdm", "true", "--max_seq_length", "32",
            "--report_to", "none"]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def base(tmp_path_factory, tokenizer):
    """A tiny encoder without task heads: every run starts with freshly drawn heads."""
    folder = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    MinBertModel(MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_task_files(folder, tiny_task_rows(n=16, seed=1), split="train")
    write_task_files(folder, tiny_task_rows(n=8, seed=2), split="dev")
    return folder


def train(base, data, output, *flags, command="train"):
    return minbert([command, "--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir", str(output),
                    *TINY_RUN, *flags])


def weights(folder):
    return (Path(folder) / "model.safetensors").read_bytes()


def _scramble_global_rng():
    # Whatever ran before in this process must not matter: only --seed may.
    torch.rand(int(torch.randint(1, 1000, (1,))))


# ------------------------------------------------------------------------------------------------------
# 1. --seed fixes the run
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_runs(base, data, tmp_path_factory):
    """Two runs with --seed 7 and one with --seed 8; dropout is on, so the seed must also fix its masks."""
    root = tmp_path_factory.mktemp("seeded")
    for name, seed in (("first", 7), ("again", 7), ("other", 8)):
        _scramble_global_rng()
        assert train(base, data, root / name, "--seed", str(seed)) == 0
    return root


@pytest.mark.slow
def test_train_twice_with_the_same_seed_gives_bitwise_equal_weights(seeded_runs):
    assert weights(seeded_runs / "first") == weights(seeded_runs / "again")


def test_train_with_another_seed_gives_other_weights(seeded_runs):
    assert weights(seeded_runs / "first") != weights(seeded_runs / "other")


@pytest.mark.slow
def test_keeping_freed_memory_changes_no_weight(data, tokenizer, tmp_path):
    import subprocess
    import sys

    # 30522 × 288 float32 word embeddings: a 35 MB gradient, which glibc would otherwise mmap afresh each step.
    base = tmp_path / "wide-base"
    torch.manual_seed(0)
    MinBertModel(MinBertConfig(vocab_size=30522, hidden_size=288, num_hidden_layers=1, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=128)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    for keep in ("true", "false"):  # glibc's setting lasts for the process: one process each
        flags = ["train", "--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir", str(tmp_path / keep),
                 *TINY_RUN, "--max_steps", "4", "--seed", "7", "--keep_freed_memory", keep]
        code = "import sys; from hf_minbert.cli import main; sys.exit(main(sys.argv[1:]))"
        subprocess.run([sys.executable, "-c", code, *flags], check=True, capture_output=True, timeout=600)
    assert weights(tmp_path / "true") == weights(tmp_path / "false")


@pytest.mark.slow
def test_distill_twice_with_the_same_seed_gives_bitwise_equal_weights(base, data, tokenizer, tmp_path):
    teacher = tmp_path / "teacher"
    tiny_model(seed=3).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    for name in ("first", "again"):
        _scramble_global_rng()
        assert train(base, data, tmp_path / name, "--teacher", str(teacher), "--seed", "7", command="distill") == 0
    assert weights(tmp_path / "first") == weights(tmp_path / "again")


@pytest.mark.slow
def test_pretrain_mlm_twice_with_the_same_seed_gives_bitwise_equal_weights(base, data, tmp_path):
    # `base` has no MLM head: a new one is drawn, which the seed must fix.
    for name in ("first", "again"):
        _scramble_global_rng()
        assert minbert(["pretrain-mlm", "--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir",
                        str(tmp_path / name), "--max_steps", "2", "--per_device_train_batch_size", "4", "--use_cpu",
                        "true", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
                        "--max_eval_texts", "8", "--seed", "7"]) == 0
    assert weights(tmp_path / "first") == weights(tmp_path / "again")


@pytest.mark.slow
def test_the_example_twice_gives_bitwise_equal_weights(base, data, tmp_path, monkeypatch):
    import runpy

    import hf_minbert

    monkeypatch.setattr(hf_minbert, "embedded_base_model", lambda: str(base))  # the tiny encoder, not MiniLM
    example = Path(__file__).resolve().parents[1] / "examples" / "train_multitask.py"
    for name in ("first", "again"):
        _scramble_global_rng()
        monkeypatch.setattr("sys.argv", [str(example), str(data), str(tmp_path / name), "16"])
        runpy.run_path(str(example), run_name="__main__")
    assert weights(tmp_path / "first") == weights(tmp_path / "again")


# ------------------------------------------------------------------------------------------------------
# 7. Every flag checked before training: one line naming it, exit status 2
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, named", [
    (["--task_weights", "sst=nan"], "--task_weights"),
    (["--task_weights", "-1"], "--task_weights"),
    (["--smart_weight", "para=inf"], "--smart_weight"),
    (["--max_seq_length", "256"], "--max_seq_length 256 exceeds the model's max_position_embeddings (128"),
    (["--mnr_weight", "1", "--mnr_task", "sst"], "--mnr_task sst"),
    (["--max_train_samples", "0"], "--max_train_samples"),
    (["--pair_encoding", "sst=bi"], "--pair_encoding sst=bi: sst is a single-sentence task"),
    (["--pair_encoding", "para=triple"], "--pair_encoding"),
    (["--mnr_scale", "0"], "--mnr_scale"),
    (["--cosent_weight", "1", "--cosent_task", "sst"], "--cosent_task sst"),
    (["--cosent_weight", "-1"], "--cosent_weight"),
    (["--ordinal_weight", "1", "--ordinal_task", "sts"], "--ordinal_task sts: the ordinal loss needs a classification"),
    (["--ordinal_weight", "-1"], "--ordinal_weight"),
    (["--pair_swap_probability", "sts=0.5"], "--pair_swap_probability sts: only a cross-encoded"),
    (["--pair_swap_probability", "para=2"], "--pair_swap_probability"),
    (["--pair_swap_probability", "cola=0.5"], "--pair_swap_probability: unknown task 'cola'"),
    (["--task_epoch_passes", "cola=2"], "--task_epoch_passes: unknown task 'cola'"),
    (["--task_epoch_passes", "2"], "--task_epoch_passes gives sst 2 passes an epoch, but sst is capped by the built-in"),
    (["--tasks", ""], "--tasks"),
])
def test_a_bad_flag_is_one_line_naming_it_before_any_training(base, data, tmp_path, capsys, flags, named):
    assert train(base, data, tmp_path / "out", *flags) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("minbert train: ") and named in error[0], error
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.fixture
def one_token_type_base(tmp_path, tokenizer):
    """A BERT checkpoint with a single token type (type_vocab_size=1), as some BERT-family models are."""
    torch.manual_seed(0)
    MinBertModel(MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=128,
                               type_vocab_size=1)).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def test_a_checkpoint_with_one_token_type_is_refused_for_cross_encoded_pairs_before_the_data_is_read(
        one_token_type_base, data, tmp_path, capsys, data_reads):
    assert train(one_token_type_base, data, tmp_path / "out") == 2
    assert capsys.readouterr().err.strip() == (
        f"minbert train: --model_name_or_path {one_token_type_base} has type_vocab_size=1: no token type for the second "
        "sentence of the cross-encoded pair head(s) para; bi-encode them (pair_encoding bi) or train single-sentence "
        "tasks only")
    assert data_reads == []


@pytest.mark.slow
def test_a_checkpoint_with_one_token_type_trains_bi_encoded_pairs(one_token_type_base, data, tmp_path):
    assert train(one_token_type_base, data, tmp_path / "out", "--pair_encoding", "para=bi,sts=bi") == 0


def test_a_checkpoint_whose_config_asks_for_attentions_is_refused_before_the_data_is_read(
        base, data, tmp_path, capsys, data_reads):
    # transformers 5 refuses to save such a config beside SDPA attention: the run would be lost at its first save.
    shutil.copytree(base, tmp_path / "base")
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    (tmp_path / "base" / "config.json").write_text(json.dumps({**config, "output_attentions": True}))
    assert train(tmp_path / "base", data, tmp_path / "out") == 2
    assert "config.json sets output_attentions true" in capsys.readouterr().err and data_reads == []


def test_a_checkpoint_whose_tokenizer_pads_on_the_left_is_refused_before_the_data_is_read(
        base, data, tmp_path, capsys, data_reads):
    shutil.copytree(base, tmp_path / "base")
    config = json.loads((tmp_path / "base" / "tokenizer_config.json").read_text())
    (tmp_path / "base" / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    assert train(tmp_path / "base", data, tmp_path / "out") == 2
    assert 'set "padding_side": "right" in its tokenizer_config.json' in capsys.readouterr().err and data_reads == []


@pytest.mark.slow
def test_a_dev_file_of_a_task_not_trained_is_named_as_unread(base, data, tmp_path, caplog):
    # A config file naming every task's dev file serves runs of fewer tasks: a warning, not an error.
    with caplog.at_level("WARNING", logger="minbert.train"):
        assert train(base, data, tmp_path / "out", "--tasks", "para,sts", "--sst_dev", "nothere.csv") == 0
    assert any("--sst_dev nothere.csv: sst is not among the tasks trained (para, sts); the file is not read" in message
               for message in caplog.messages)


@pytest.fixture
def data_reads(monkeypatch):
    """The calls of `minbert train`'s data reader: a check made before any data is read leaves it empty."""
    from hf_minbert.commands import train as train_command
    from tests.helpers import refused_calls

    return refused_calls(monkeypatch, train_command, "load_task_data")


@pytest.mark.parametrize("flags, named", [
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1, got 0"),
    (["--per_device_eval_batch_size", "0"], "--per_device_eval_batch_size must be at least 1, got 0"),
    (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps must be at least 1, got 0"),
    (["--learning_rate", "-1"], "--learning_rate must lie in [0, inf), got -1.0"),
    (["--weight_decay", "-0.1"], "--weight_decay must lie in [0, inf)"),
    (["--warmup_ratio", "1"], "--warmup_ratio must lie in [0, 1), got 1.0"),
    (["--warmup_ratio", "0.1", "--warmup_steps", "10"], "--warmup_ratio and --warmup_steps are both set"),
    (["--adam_beta2", "1"], "--adam_beta2 must lie in [0, 1)"),
    (["--num_train_epochs", "0", "--max_steps", "-1"], "--num_train_epochs must lie in (0, inf)"),
    (["--smart_weight", "foo=1"], "--smart_weight: unknown task 'foo'"),
    (["--task_weights", "foo=1"], "--task_weights: unknown task 'foo'"),
    (["--batch_tokens", "foo=512"], "--batch_tokens: unknown task 'foo'"),
    (["--architecture", "triple", "--task_specific_layers", "1"], "--task_specific_layers 1 contradicts --architecture triple"),
    (["--task_specific_layers", "5"], "--architecture cerbertus needs --task_specific_layers k with 1 <= k <= 2"),
    (["--hidden_dropout_prob", "2"], "--hidden_dropout_prob"),
    (["--hidden_dropout_prob", "1"], "--hidden_dropout_prob: a dropout probability lies in [0, 1), got 1.0"),
    (["--pair_encoding", "sts=cross", "--bi_features", "sts=concat"], "--bi_features sts=concat: bi_features applies to bi"),
    (["--pair_encoding", "sts=bi", "--head_pooling", "sts=cls"], "--head_pooling sts=cls: a bi-encoder mean-pools"),
    (["--pair_encoding", "sts=bi", "--head_layers", "sts=3"], "--head_layers sts=3: a bi-encoder's scaled cosine"),
    (["--head_activation", "para=relu"], "--head_activation para=relu: a one-layer head has no hidden layer"),
    (["--head_activation", "relu"], "a one-layer head has no hidden layer to activate"),
    (["--smart_weight", "0", "--smart_steps", "3"], "--smart_steps 3: --smart_weight 0 turns its term off"),
    (["--mnr_task", "sts"], "--mnr_task sts: --mnr_weight 0 turns its term off"),
    (["--cosent_scale", "5"], "--cosent_scale 5.0: --cosent_weight 0 turns its term off"),
    (["--mnr_gather_across_devices", "true"], "--mnr_gather_across_devices True: --mnr_weight 0 turns its term off"),
    (["--ordinal_task", "para"], "--ordinal_task para: --ordinal_weight 0 turns its term off"),
    (["--smart_momentum", "0.9"], "--smart_momentum 0.9: --smart_proximal_weight 0 turns its term off"),
    (["--fold_seed", "3"], "--fold_seed 3: it seeds --num_folds' folds, and no folds are asked for"),
    (["--push_to_hub", "true", "--hub_model_id", "a/b/c"], "--hub_model_id a/b/c: Repo id must be in the form"),
    (["--skip_bad_rows", "false", "--max_bad_row_share", "0.5"], "--max_bad_row_share 0.5: with --skip_bad_rows false"),
    (["--head_dropout", "sst=2"], "--head_dropout"),
    (["--head_dropout", "sst=1"], "--head_dropout: a dropout probability lies in [0, 1), got '1'"),
    (["--head_layers", "sst=x"], "--head_layers"),
    (["--head_pooling", "sst=max"], "head_pooling"),
    (["--implied_pairs_per_question", "-1"], "--implied_pairs_per_question"),
    (["--implied_pairs_per_question", "2", "--tasks", "sst,sts"], "--implied_pairs_per_question: none of the tasks"),
    (["--optim", "adafactor"], "--optim adafactor: MultitaskTrainer always trains with AdamW"),
    (["--resume_from_checkpoint", "nowhere/checkpoint-4"], "--resume_from_checkpoint nowhere/checkpoint-4: no such"),
    (["--report_to", "nosuchtracker"], "--report_to nosuchtracker: not a logging integration installed here"),
    (["--freeze_encoder", "true"], "--freeze_encoder: sts's head (a bi-encoder's scaled cosine) has no weights"),
    (["--peft", "lora", "--lora_r", "0"], "--lora_r must be >= 1, got 0"),
    (["--task_weights", "sts=1,sts=2"], "--task_weights: sts given twice in 'sts=1,sts=2'"),
    (["--tasks", "sst,para,sst"], "--tasks: sst named twice"),
    (["--metric_for_best_model", "sst_acc"], "--metric_for_best_model 'sst_acc' will not be reported"),
    (["--smart_dropout_masks", "foo"], "--smart_dropout_masks 'foo': choose one of fresh, replay"),
    (["--seed", "-1"], "--seed must lie in [0, 2**32), got -1"),
    (["--data_seed", "-1"], "--data_seed must lie in [0, 2**32), got -1"),
    (["--num_folds", "2", "--held_out_fold", "0", "--fold_seed", "-1"], "--fold_seed must lie in [0, 2**32), got -1"),
    (["--dataloader_num_workers", "-1"], "--dataloader_num_workers must be at least 0, got -1"),
    (["--output_dir", "/proc/minbert"], "--output_dir /proc/minbert: cannot write in /proc"),
    (["--lr_scheduler_kwargs", "notjson"], "--lr_scheduler_kwargs must be a JSON object of the scheduler's keyword"),
    (["--torch_compile", "true", "--torch_compile_backend", "nosuch"], "--torch_compile_backend nosuch: choose one of"),
    (["--torch_compile_mode", "nope"], "--torch_compile_mode nope: choose one of default, reduce-overhead"),
    (["--lr_scheduler_kwargs", '{"num_cycles": 2}'],
     "--lr_scheduler_type linear with --lr_scheduler_kwargs {\"num_cycles\": 2}: get_linear_schedule_with_warmup() got"),
    (["--lr_scheduler_type", "warmup_stable_decay"], "--lr_scheduler_type warmup_stable_decay with --lr_scheduler_kwargs {}:"),
    (["--lr_scheduler_type", "cosine_with_min_lr"], "One of min_lr or min_lr_rate should be set"),
    (["--warmup_steps", "inf"], "--warmup_steps must lie in [0, inf), got inf"),
    (["--warmup_steps", "nan"], "--warmup_steps must lie in [0, inf), got nan"),
    (["--warmup_steps", "1.5"], "--warmup_steps 1.5: give a whole number of steps, or a share of the run below 1"),
    (["--logging_steps", "inf"], "--logging_steps must lie in (0, inf), got inf"),
    (["--logging_steps", "nan"], "--logging_steps must lie in (0, inf), got nan"),
    (["--eval_strategy", "steps", "--eval_steps", "-1"], "--eval_steps must lie in (0, inf), got -1.0"),
    (["--save_strategy", "steps", "--save_steps", "nan"], "--save_steps must lie in (0, inf), got nan"),
    (["--neftune_noise_alpha", "-5"], "--neftune_noise_alpha must lie in (0, inf), got -5.0"),
    (["--fp16_full_eval", "true", "--bf16", "true"], "--fp16_full_eval cannot evaluate under bf16 autocast on a CPU"),
    (["--use_liger_kernel", "true"], "--use_liger_kernel needs the liger_kernel package, which is not installed"),
])
def test_a_bad_flag_fails_naming_it_before_the_data_is_read(base, data, tmp_path, capsys, data_reads, flags, named):
    assert train(base, data, tmp_path / "out", *flags) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("minbert train: ") and named in error[0], error
    assert data_reads == []


def test_library_arguments_refuse_an_optimizer_that_multitask_trainer_would_not_use():
    from trainers import MultitaskTrainingArguments

    with pytest.raises(ValueError, match="--optim adafactor: MultitaskTrainer always trains with AdamW"):
        MultitaskTrainingArguments(output_dir="/tmp/x", optim="adafactor")


def test_library_arguments_refuse_fp16_on_a_cpu_where_it_would_train_in_fp32():
    from trainers import MultitaskTrainingArguments

    with pytest.raises(ValueError, match="--fp16 needs a GPU"):
        MultitaskTrainingArguments(output_dir="unused", fp16=True, bf16=False, use_cpu=True)


def test_library_arguments_refuse_a_nan_task_weight():
    from trainers import MultitaskTrainingArguments

    with pytest.raises(ValueError, match="--task_weights"):
        MultitaskTrainingArguments(output_dir="/tmp/x", task_weights={"sst": float("nan")})


def test_scheduler_kwargs_given_as_json_text_reach_the_trainer_as_a_mapping(tmp_path):
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir=str(tmp_path), lr_scheduler_type="cosine_with_restarts",
                                      lr_scheduler_kwargs='{"num_cycles": 2}')
    assert args.lr_scheduler_kwargs == {"num_cycles": 2}


def test_one_value_for_every_task_sets_the_pair_encoding_of_the_pair_tasks_only():
    from hf_minbert.commands.head_options import base_task_specs, task_specs
    from hf_minbert.commands.train_arguments import ModelArguments

    args = ModelArguments(pair_encoding="cross")
    specs = task_specs(args, *base_task_specs(args))
    assert {task: spec["pair_encoding"] for task, spec in specs.items()} == {"sst": "single", "para": "cross", "sts": "cross"}


def test_truncated_base_weights_are_one_line_naming_them_before_the_data_is_read(base, data, tmp_path, capsys,
                                                                                 data_reads):
    broken = tmp_path / "broken"
    shutil.copytree(base, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    assert train(broken, data, tmp_path / "out") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(
        f"minbert train: --model_name_or_path {broken}: cannot read {weights} (truncated or corrupt?)"), error
    assert data_reads == []


def test_a_tokenizer_larger_than_the_word_table_is_one_line_before_the_data_is_read(data, tokenizer, tmp_path,
                                                                                   capsys, data_reads):
    small = tmp_path / "small-vocab"
    MinBertModel(MinBertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=128)).save_pretrained(small)
    tokenizer.save_pretrained(small)  # 30522 tokens
    capsys.readouterr()  # the save's progress bar
    assert train(small, data, tmp_path / "out") == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"minbert train: --model_name_or_path {small}: its tokenizer has 30522 tokens but the model's word table 120 "
        "rows; is the tokenizer another model's?"]
    assert data_reads == []


def test_a_missing_data_file_is_one_line_naming_it(base, tmp_path, capsys):
    empty = tmp_path / "no-data"
    empty.mkdir()
    assert train(base, empty, tmp_path / "out") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "ids-sst-train.csv" in error[0], error


def test_a_bad_token_row_setting_in_the_environment_is_one_line_naming_it(base, data, tmp_path, capsys, monkeypatch):
    from hf_minbert import modeling_minbert_unpadding

    monkeypatch.setenv("MINBERT_CPU_ROW_STEPS", "6")
    monkeypatch.setattr(modeling_minbert_unpadding, "process_cpu_row_steps", None)  # read afresh
    assert train(base, data, tmp_path / "out") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "MINBERT_CPU_ROW_STEPS='6'" in error[0], error
    assert not (tmp_path / "out").exists()


def test_a_bad_row_without_skipping_is_one_line_naming_its_line(base, data, tmp_path, capsys):
    bad = _data_with_bad_rows(data, tmp_path / "bad")
    assert train(base, bad, tmp_path / "out", "--skip_bad_rows", "false") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "quora-train.csv, line 3" in error[0], error


def test_dev_rows_too_few_to_correlate_are_refused_before_training(base, data, tmp_path, capsys):
    # The run would otherwise train, then fail at its first evaluation.
    assert train(base, data, tmp_path / "out", "--max_eval_samples", "1") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"minbert train: sts dev file {data / 'sts-dev.csv'} with --max_eval_samples 1: a correlation "
                     "needs at least 2 scored rows, got 1"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_folder_without_a_model_as_the_base_is_one_line_before_the_data_is_read(data, tmp_path, capsys, data_reads):
    assert train(data, data, tmp_path / "out") == 2  # the data folder: it would load as a default config
    assert capsys.readouterr().err.strip() == f"minbert train: {data}: no config.json: not a saved model folder"
    assert data_reads == []


def test_a_nonexistent_local_model_is_no_such_directory(data, tmp_path, capsys):
    assert train(tmp_path / "nowhere", data, tmp_path / "out") == 2
    assert "no such directory" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------
# 8. Never a half-replaced or silently replaced model folder
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def trained(base, data, tmp_path):
    output = tmp_path / "model"
    assert train(base, data, output, "--seed", "1") == 0
    return output


@pytest.mark.slow
def test_an_output_dir_holding_a_model_is_refused_before_training(base, data, trained, capsys):
    before = folder_bytes(trained)
    assert train(base, data, trained, "--seed", "2") == 2
    error = capsys.readouterr().err.strip()
    assert "already holds a model" in error and "--overwrite_output_dir" in error
    assert folder_bytes(trained) == before


@pytest.mark.slow
def test_overwrite_output_dir_replaces_the_whole_folder(base, data, trained):
    (trained / "adapter").mkdir()
    (trained / "adapter" / "stale.bin").write_bytes(b"old")
    old_weights = weights(trained)
    assert train(base, data, trained, "--seed", "2", "--overwrite_output_dir", "true") == 0
    assert weights(trained) != old_weights
    assert not (trained / "adapter").exists(), "nothing of the old folder may survive beside the new model"
    assert {"metrics.json", "README.md", "training_config.json", "config.json"} <= {p.name for p in trained.iterdir()}
    assert not trained.with_name("model.partial").exists() and not trained.with_name("model.replaced").exists()


@pytest.mark.slow
def test_a_failure_while_saving_leaves_the_old_folder_byte_identical(base, data, trained, monkeypatch):
    import model_cards

    def broken_card(*args, **kwargs):
        raise OSError("disk full while writing the card")

    monkeypatch.setattr(model_cards, "write_model_card", broken_card)
    before = folder_bytes(trained)
    assert train(base, data, trained, "--seed", "2", "--overwrite_output_dir", "true") == 2
    assert folder_bytes(trained) == before


def test_a_dev_file_inside_the_folder_to_replace_is_refused_before_training(base, data, trained, capsys):
    own_dev = trained / "my-sts-dev.csv"
    own_dev.write_bytes((data / "sts-dev.csv").read_bytes())
    before = folder_bytes(trained)
    assert train(base, data, trained, "--overwrite_output_dir", "true", "--sts_dev", str(own_dev)) == 2
    assert capsys.readouterr().err.strip() == (f"minbert train: --output_dir {trained} contains --sts_dev ({own_dev}), "
                                               "which replacing the folder would delete")
    assert folder_bytes(trained) == before


@pytest.mark.slow
def test_a_model_trained_further_in_place_replaces_its_own_folder(data, trained):
    # The base is read whole before training: --overwrite_output_dir may replace the folder it came from.
    before = weights(trained)
    assert train(trained, data, trained, "--overwrite_output_dir", "true", "--seed", "3") == 0
    assert weights(trained) != before and not trained.with_name(trained.name + ".partial").exists()


def test_replacing_a_folder_names_what_of_the_old_one_the_new_one_does_not_hold(tmp_path, caplog):
    from hf_minbert.commands.output_folder import move_into_place

    old, new = tmp_path / "model", tmp_path / "model.partial"
    for folder in (old, new):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    (old / "notes.txt").write_text("mine")
    (old / "dev").mkdir()
    with caplog.at_level("WARNING", logger="minbert"):
        move_into_place(new, old)
    assert caplog.messages == [f"replaced {old}: deleted with the old folder, not part of the new one: dev/, notes.txt"]
    assert sorted(p.name for p in old.iterdir()) == ["config.json"]


def test_a_folder_with_other_files_is_never_replaced(base, data, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    assert train(base, data, tmp_path / "notes", "--overwrite_output_dir", "true") == 2
    assert "holds no model" in capsys.readouterr().err
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_a_finished_run_leaves_no_writer_lock_in_its_model_folder(trained):
    from hf_minbert.commands.output_folder import WRITER_LOCK

    assert (trained / "model.safetensors").exists() and not (trained / WRITER_LOCK).exists()


def test_a_symbolic_link_as_output_dir_is_refused_naming_the_folder_it_points_to(tmp_path):
    from hf_minbert.commands.output_folder import check_output_folder

    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(ValueError, match=f"is a symbolic link: pass the folder it points to, --output_dir {tmp_path / 'target'}$"):
        check_output_folder(tmp_path / "link")


def test_a_run_writing_into_the_staging_folder_keeps_a_second_run_out(tmp_path):
    from hf_minbert.commands.output_folder import WRITER_LOCK, check_output_folder

    (tmp_path / "model.partial").mkdir()
    lock = {"pid": os.getppid(), "run": "another run"}  # a live process
    (tmp_path / "model.partial" / WRITER_LOCK).write_text(json.dumps(lock))
    with pytest.raises(ValueError, match=r"is being written by another run \(process"):
        check_output_folder(tmp_path / "model", overwrite=True)


def test_another_rank_of_the_same_distributed_run_is_not_kept_out_by_its_lock(tmp_path, monkeypatch):
    from hf_minbert.commands.output_folder import WRITER_LOCK, check_output_folder

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-1")  # as torchrun sets it for every rank
    lock = {"pid": os.getppid(), "run": f"job-1:{os.getppid()}"}  # rank 0, a sibling under the same agent
    (tmp_path / "model.partial").mkdir()
    (tmp_path / "model.partial" / WRITER_LOCK).write_text(json.dumps(lock))
    check_output_folder(tmp_path / "model")


def test_a_lock_left_by_a_run_that_ended_does_not_keep_the_next_run_out(tmp_path):
    from hf_minbert.commands.output_folder import WRITER_LOCK, check_output_folder

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "model.partial").mkdir()
    (tmp_path / "model.partial" / WRITER_LOCK).write_text(json.dumps({"pid": int(ended.stdout), "run": "ended"}))
    check_output_folder(tmp_path / "model")


def test_a_model_saved_in_the_staging_folder_but_not_moved_is_not_discarded_silently(tmp_path):
    from hf_minbert.commands.output_folder import check_output_folder

    (tmp_path / "model.partial").mkdir()
    (tmp_path / "model.partial" / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(ValueError, match="holds a model a run saved but did not move into place"):
        check_output_folder(tmp_path / "model")
    check_output_folder(tmp_path / "model", overwrite=True)


@pytest.mark.slow
@pytest.mark.parametrize("flag, value", [("--learning_rate", "0.1"), ("--weight_decay", "0.9"),
                                         ("--layerwise_lr_decay", "0.5"), ("--head_lr_multiplier", "100")])
def test_resuming_with_optimizer_settings_its_state_was_not_built_with_is_refused_before_the_data_is_read(
        base, data, tmp_path, capsys, flag, value):
    # The optimizer state resuming restores holds the old settings: the run would train with them, its record
    # saying otherwise.
    assert train(base, data, tmp_path / "model", "--save_strategy", "steps", "--save_steps", "1") == 0
    checkpoint = tmp_path / "model" / "checkpoint-1"
    assert train(base, data, tmp_path / "again", "--resume_from_checkpoint", str(checkpoint), flag, value) == 2
    error = capsys.readouterr().err
    assert f"--resume_from_checkpoint {checkpoint}: its optimizer state, which resuming restores" in error
    assert f"{flag} {float(value)}" in error and not (tmp_path / "again").exists()


@pytest.mark.slow
def test_the_card_of_a_resumed_run_names_the_step_it_resumed_from_after_rotation_deleted_that_checkpoint(
        base, data, tmp_path):
    output = tmp_path / "model"
    assert train(base, data, output, "--save_strategy", "steps", "--save_steps", "1", "--max_steps", "2") == 0
    output.rename(tmp_path / "model.partial")  # a run killed after its first checkpoints
    checkpoint = tmp_path / "model.partial" / "checkpoint-1"
    assert train(base, data, output, "--resume_from_checkpoint", str(checkpoint), "--max_steps", "4",
                 "--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "1") == 0
    assert not (output / "checkpoint-1").exists()  # rotated away during the resumed run
    assert json.loads((output / "training_config.json").read_text())["progress"]["resumed_from_step"] == 1
    assert "resumed from the checkpoint of step 1" in (output / "README.md").read_text()


@pytest.mark.slow
def test_an_unfinished_run_is_refused_unless_resumed_or_discarded(base, data, tmp_path, capsys):
    output = tmp_path / "model"
    assert train(base, data, output, "--save_strategy", "steps", "--save_steps", "1", "--max_steps", "2") == 0
    # Simulate a run killed during training: its checkpoints are left in the staging folder.
    output.rename(tmp_path / "model.partial")
    assert train(base, data, output) == 2
    assert "holds an unfinished run" in capsys.readouterr().err
    checkpoint = tmp_path / "model.partial" / "checkpoint-1"
    assert train(base, data, output, "--resume_from_checkpoint", str(checkpoint)) == 0
    assert (output / "model.safetensors").exists() and (output / "checkpoint-2").is_dir()
    assert not (tmp_path / "model.partial").exists()


@pytest.mark.slow
def test_a_run_resumed_from_its_staging_folder_records_the_checkpoint_where_it_moved(base, data, tmp_path):
    output = tmp_path / "model"
    assert train(base, data, output, "--save_strategy", "steps", "--save_steps", "1", "--max_steps", "2") == 0
    output.rename(tmp_path / "model.partial")  # a run killed after its first checkpoints
    assert train(base, data, output, "--resume_from_checkpoint", str(tmp_path / "model.partial" / "checkpoint-1")) == 0
    recorded = json.loads((output / "training_config.json").read_text())["training_arguments"]["resume_from_checkpoint"]
    assert recorded == str(output / "checkpoint-1") and (output / "checkpoint-1").is_dir()


def _checkpoint_of(model, folder):
    """`model` saved as a Trainer checkpoint folder holds it (its trainer_state.json's content does not matter here)."""
    model.save_pretrained(folder)
    (folder / "trainer_state.json").write_text("{}")
    return folder


def test_resuming_a_checkpoint_of_another_model_is_refused_before_the_data_is_read(base, data, tmp_path, capsys,
                                                                                   data_reads):
    checkpoint = _checkpoint_of(tiny_model(), tmp_path / "checkpoint-2")  # 32 wide, no CerBERTus layers
    capsys.readouterr()  # the save's progress bar
    assert train(base, data, tmp_path / "out", "--tasks", "sst,para", "--resume_from_checkpoint", str(checkpoint)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"minbert train: --resume_from_checkpoint {checkpoint}: its model differs from the one these flags "
                     "build (max_position_embeddings 64 against 128; task_specific_layers 0 against 2; tasks "
                     "para,sst,sts against para,sst): resume with the flags it was trained with"]
    assert data_reads == []


def _optimizer_state_files(folder):
    import torch

    folder.mkdir()
    for name in ("optimizer.pt", "scheduler.pt"):
        torch.save({"state": torch.zeros(1000)}, folder / name)
    return folder


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_checkpoint_whose_optimizer_state_is_cut_short_or_missing_is_refused(tmp_path, damage):
    from hf_minbert.commands.common import CommandError
    from hf_minbert.commands.train import check_checkpoint_files

    folder = _optimizer_state_files(tmp_path / "checkpoint-2")
    check_checkpoint_files("checkpoint-2", folder)  # whole: accepted
    optimizer = folder / "optimizer.pt"
    if damage == "truncated":
        optimizer.write_bytes(optimizer.read_bytes()[:-600])
    else:
        optimizer.unlink()
    with pytest.raises(CommandError, match=r"^--resume_from_checkpoint checkpoint-2: (cannot read|no) .*optimizer.pt"):
        check_checkpoint_files("checkpoint-2", folder)


@pytest.mark.parametrize("name", ["rng_state.pth", "multitask_state.pt", "trainer_state.json",
                                  "optimizer_settings.json"])
def test_a_checkpoint_whose_rng_trainer_or_multitask_state_is_cut_short_is_refused_naming_the_file(tmp_path, name):
    import json

    import torch

    from hf_minbert.commands.common import CommandError
    from hf_minbert.commands.train import check_checkpoint_files

    folder = _optimizer_state_files(tmp_path / "checkpoint-2")
    path = folder / name
    if name.endswith(".json"):
        path.write_text(json.dumps({"global_step": 2, "log_history": [{"loss": 0.5}] * 20}))
    else:
        torch.save({"state": torch.zeros(1000)}, path)
    check_checkpoint_files("checkpoint-2", folder)  # whole: accepted
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CommandError, match=rf"^--resume_from_checkpoint checkpoint-2: cannot read {path} .*earlier"):
        check_checkpoint_files("checkpoint-2", folder)


def test_a_checkpoint_keeping_its_optimizer_state_in_a_deepspeed_folder_is_accepted(tmp_path):
    from hf_minbert.commands.train import check_checkpoint_files

    folder = _optimizer_state_files(tmp_path / "checkpoint-2")
    (folder / "optimizer.pt").unlink()
    (folder / "global_step2").mkdir()
    check_checkpoint_files("checkpoint-2", folder)


def test_task_epoch_rows_of_zero_reads_every_row_under_any_sampling():
    from trainers import MultitaskTrainingArguments

    MultitaskTrainingArguments(output_dir="unused", task_epoch_rows="0", task_sampling="round_robin", bf16=False)


def test_resuming_from_a_folder_that_is_not_a_checkpoint_is_refused_before_the_data_is_read(base, data, tmp_path,
                                                                                           capsys, data_reads):
    assert train(base, data, tmp_path / "out", "--resume_from_checkpoint", str(base)) == 2
    assert capsys.readouterr().err.strip() == (f"minbert train: --resume_from_checkpoint {base}: not a Trainer "
                                               "checkpoint of minbert train (no trainer_state.json and config.json)")
    assert data_reads == []


def test_another_architecture_for_a_base_whose_tasks_own_layers_fails_before_the_data_is_read(
        data, trained, tmp_path, capsys, data_reads):
    assert train(trained, data, tmp_path / "out", "--architecture", "multitask") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "it loads only as saved" in error[0], error
    assert data_reads == []


@pytest.mark.slow
def test_a_staging_folder_without_checkpoints_is_discarded_by_the_next_run(base, data, tmp_path):
    output = tmp_path / "model"
    (tmp_path / "model.partial").mkdir()  # a run killed before its first checkpoint
    assert train(base, data, output) == 0
    assert (output / "model.safetensors").exists() and not (tmp_path / "model.partial").exists()


def test_push_to_hub_sends_the_card_minbert_train_wrote_from_its_whole_record(base, data, tmp_path, hub_calls, token):
    assert train(base, data, tmp_path / "model", "--push_to_hub", "true", "--hub_model_id", "someone/tiny") == 0
    commit = next(call for call in hub_calls if call[0] == "create_commit")
    sent = {op.path_in_repo: op.path_or_fileobj for op in commit[4]}
    assert commit[2] == "someone/tiny" and {"README.md", "metrics.json", "training_config.json"} <= set(sent)
    card = Path(sent["README.md"]).read_text()
    assert card == (tmp_path / "model" / "README.md").read_text() and "Bad data rows skipped while reading" in card
    assert 'model_id = "someone/tiny"' in card  # the usage snippet loads the repository, not the local folder


def test_push_to_hub_without_a_token_is_refused_before_the_data_is_read(base, data, tmp_path, no_token, capsys,
                                                                         data_reads):
    assert train(base, data, tmp_path / "model", "--push_to_hub", "true", "--hub_model_id", "someone/tiny") == 2
    assert capsys.readouterr().err.startswith("minbert train: --push_to_hub: cannot use the Hub at ")
    assert data_reads == []


def test_a_data_file_moved_while_the_model_trains_neither_loses_the_model_nor_changes_its_record(
        base, data, tmp_path, monkeypatch):
    from hf_minbert.commands import train as train_command
    from hf_minbert.commands.train_data import file_sha256

    moved = tmp_path / "data"
    shutil.copytree(data, moved)
    read_sha = file_sha256(moved / "sts-train.csv")
    read = train_command.load_task_data

    def read_then_move(*args):  # what a long run can meet: its data folder changed under it
        loaded = read(*args)
        (moved / "sts-train.csv").write_text("replaced\n")
        return loaded

    monkeypatch.setattr(train_command, "load_task_data", read_then_move)
    assert train(base, moved, tmp_path / "model") == 0
    record = json.loads((tmp_path / "model" / "metrics.json").read_text())["training_data"]["sts"]
    assert record["sha256"] == {"sts-train.csv": read_sha}


@pytest.mark.slow
def test_checkpoints_and_the_best_model_end_in_the_output_folder(base, data, tmp_path):
    output = tmp_path / "model"
    assert train(base, data, output, "--eval_strategy", "steps", "--save_strategy", "steps", "--eval_steps", "1",
                 "--save_steps", "1", "--load_best_model_at_end", "true", "--metric_for_best_model", "sst_accuracy",
                 "--max_eval_samples", "4") == 0
    state = json.loads((output / "checkpoint-2" / "trainer_state.json").read_text())
    best = Path(state["best_model_checkpoint"])
    assert best.name in {p.name for p in output.iterdir()}, "the best checkpoint moves in with the model"
    assert best.parent == output, "and its record points there, where a continued run looks for it"


# ------------------------------------------------------------------------------------------------------
# 9. Skipped rows: console, metrics.json, card
# ------------------------------------------------------------------------------------------------------


def _data_with_bad_rows(data, folder):
    """The fixture data, with quora-train.csv's rows on lines 3 and 5 missing their label."""
    folder.mkdir()
    for path in Path(data).iterdir():
        lines = path.read_text().splitlines()
        if path.name == "quora-train.csv":
            for number in (3, 5):
                lines[number - 1] = lines[number - 1].rsplit("\t", 1)[0] + "\t"
        (folder / path.name).write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def run_with_bad_rows(base, data, tmp_path, caplog):
    output = tmp_path / "model"
    with caplog.at_level("WARNING", logger="minbert.train"):
        assert train(base, _data_with_bad_rows(data, tmp_path / "bad"), output, "--max_bad_row_share", "0.2") == 0
    return output, [(r.levelname, r.getMessage()) for r in caplog.records]


@pytest.mark.slow
def test_skipped_rows_are_a_console_warning(run_with_bad_rows):
    _, records = run_with_bad_rows
    warnings = [message for level, message in records if level == "WARNING" and "quora-train.csv" in message]
    assert len(warnings) == 1 and "skipped 2 bad row(s)" in warnings[0] and "line 3" in warnings[0]


@pytest.mark.slow
def test_skipped_rows_are_recorded_in_metrics_json(run_with_bad_rows):
    output, _ = run_with_bad_rows
    (record,) = json.loads((output / "metrics.json").read_text())["skipped_rows"]
    assert Path(record["file"]).name == "quora-train.csv" and record["task"] == "para" and record["count"] == 2
    assert [line.split(",")[0].split(":")[0] for line in record["first"]] == ["line 3", "line 5"]


@pytest.mark.slow
def test_skipped_rows_are_stated_in_the_card(run_with_bad_rows):
    output, _ = run_with_bad_rows
    card = (output / "README.md").read_text()
    line = next(line for line in card.splitlines() if "quora-train.csv" in line and "row(s)" in line)
    assert "2 row(s)" in line and "line 3" in line and "line 5" in line


@pytest.mark.slow
def test_a_run_without_bad_rows_says_so_in_the_card(trained):
    assert json.loads((trained / "metrics.json").read_text())["skipped_rows"] == []
    assert "- Bad data rows skipped while reading: none" in (trained / "README.md").read_text()


@pytest.mark.parametrize("value", ["sst=-5", "sst=2.5", "sst=nan"])
def test_task_epoch_rows_must_be_whole_counts(value):
    from trainers import MultitaskTrainingArguments

    with pytest.raises(ValueError, match="--task_epoch_rows"):
        MultitaskTrainingArguments(output_dir="unused", task_epoch_rows=value, bf16=False)


@pytest.mark.parametrize("flags, message", [
    ({"batch_tokens": "sst=-1"}, "--batch_tokens: counts must be whole numbers"),
    ({"batch_tokens": "sst=768", "task_sampling": "round_robin"}, "--batch_tokens applies to --task_sampling"),
    ({"batch_tokens": "sst=1024", "group_by_length": False}, "--batch_tokens needs --group_by_length true"),
    ({"batch_tokens": "sst=1024", "dataloader_drop_last": True}, "--batch_tokens cannot be combined with --dataloader_drop_last"),
])
def test_batch_tokens_is_refused_where_it_cannot_apply(flags, message):
    from trainers import MultitaskTrainingArguments

    with pytest.raises(ValueError, match=message):
        MultitaskTrainingArguments(output_dir="unused", bf16=False, **flags)


def test_task_weights_of_zero_for_every_training_task_are_refused():
    from trainers import MultitaskTrainingArguments

    MultitaskTrainingArguments(output_dir="unused", task_weights="sst=0", bf16=False).check_tasks(["sst", "sts"])
    args = MultitaskTrainingArguments(output_dir="unused", task_weights="0", bf16=False)
    with pytest.raises(ValueError, match="every training task's loss is weighted 0"):
        args.check_tasks(["sst", "sts"])


@pytest.mark.parametrize("flags, message", [
    ({"sampling_temperature": 2.0}, "--sampling_temperature applies to --task_sampling temperature, not proportional"),
    ({"sampling_size_cap": 100}, "--sampling_size_cap applies to --task_sampling temperature, not proportional"),
    ({"equal_split_parts": 3}, "--equal_split_parts applies to --task_sampling equal_split, not proportional"),
    ({"task_epoch_rows": "sst=5", "task_sampling": "round_robin"}, "--task_epoch_rows applies to --task_sampling"),
    ({"task_epoch_rows": {"sst": 5}, "task_sampling": "round_robin"}, "--task_epoch_rows applies to --task_sampling"),
    ({"task_epoch_rows": "5", "task_sampling": "round_robin"}, "--task_epoch_rows applies to --task_sampling"),
])
def test_an_option_of_another_sampling_strategy_is_refused(flags, message):
    from trainers import MultitaskTrainingArguments

    with pytest.raises(ValueError, match=message):
        MultitaskTrainingArguments(output_dir="unused", bf16=False, **flags)


def test_batch_tokens_resolves_to_the_samplers_token_budget():
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir="unused", batch_tokens="sst=1024,para=2048", bf16=False)
    assert args.token_budgets(["sst", "para"]) == {"sst": 1024, "para": 2048}
    off = MultitaskTrainingArguments(output_dir="unused", batch_tokens="", bf16=False)
    assert off.token_budgets(["sst", "para"]) is None


def test_sst_batches_are_packed_by_tokens_by_default():
    from trainers import MultitaskTrainingArguments
    args = MultitaskTrainingArguments(output_dir="unused", bf16=False)
    assert args.token_budgets(["sst", "para"]) == {"sst": 768}
    assert args.token_budgets(["para", "sts"]) is None  # a run without SST: nothing to pack


@pytest.mark.parametrize("flags", [{"task_sampling": "round_robin"}, {"group_by_length": False},
                                   {"dataloader_drop_last": True}])
def test_the_default_token_budget_is_off_where_it_cannot_apply(flags):
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir="unused", bf16=False, **flags)
    assert args.token_budgets(["sst", "para"]) is None


def test_a_budget_for_a_task_not_trained_is_refused_when_given():
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir="unused", batch_tokens="sst=768", bf16=False)  # the built-in value
    with pytest.raises(ValueError, match="batch_tokens"):
        args.token_budgets(["para", "sts"])


@pytest.mark.parametrize("flags, message", [
    ({"task_epoch_passes": "sts=0"}, "--task_epoch_passes: counts must be whole numbers >= 1"),
    ({"task_epoch_passes": "sts=1.5"}, "--task_epoch_passes: counts must be whole numbers >= 1"),
    ({"task_epoch_passes": "sts=2", "task_sampling": "temperature"}, "--task_epoch_passes applies to --task_sampling"),
])
def test_task_epoch_passes_is_refused_where_it_cannot_apply(flags, message):
    from trainers import MultitaskTrainingArguments

    with pytest.raises(ValueError, match=message):
        MultitaskTrainingArguments(output_dir="unused", bf16=False, **flags)


def test_task_epoch_passes_resolves_to_the_samplers_passes_for_the_tasks_trained():
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir="unused", task_epoch_passes="sts=2,para=1", bf16=False)
    assert args.epoch_passes(["sst", "para", "sts"]) == {"sts": 2}
    assert MultitaskTrainingArguments(output_dir="unused", bf16=False).epoch_passes(["sst", "sts"]) is None


def test_task_epoch_passes_on_a_task_the_user_capped_names_both_flags():
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir="unused", task_epoch_passes="sts=2", task_epoch_rows="sts=100",
                                      bf16=False)
    with pytest.raises(ValueError, match="--task_epoch_passes and --task_epoch_rows both name sts"):
        args.epoch_passes(["sst", "sts"])


@pytest.mark.parametrize("passes", ["2", "sst=2"])
def test_task_epoch_passes_reaching_the_built_in_sst_cap_says_so_and_how_to_name_tasks(passes):
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir="unused", task_epoch_passes=passes, bf16=False)
    with pytest.raises(ValueError, match=r"sst is capped by the built-in --task_epoch_rows sst=16000: name the tasks"):
        args.epoch_passes(["sst", "sts"])


def test_task_epoch_rows_resolves_to_the_samplers_caps_for_the_tasks_trained():
    from trainers import MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir="unused", task_epoch_rows="sst=100", bf16=False)
    assert args.epoch_rows(["sst", "para"]) == {"sst": 100}
    default = MultitaskTrainingArguments(output_dir="unused", bf16=False)
    assert default.epoch_rows(["para", "sts"]) is None  # the built-in default may name a task not trained


def test_training_a_trained_folder_further_without_tasks_goes_on_with_its_own_heads(base, data, tmp_path):
    assert train(base, data, tmp_path / "first", "--tasks", "sst,para", "--seed", "1") == 0
    assert minbert(["train", "--model_name_or_path", str(tmp_path / "first"), "--data_dir", str(data), "--output_dir",
                    str(tmp_path / "again"), *TINY_RUN]) == 0
    tasks = json.loads((tmp_path / "again" / "config.json").read_text())["tasks"]
    assert sorted(tasks) == ["para", "sst"]
    recorded = json.loads((tmp_path / "again" / "training_config.json").read_text())["model_arguments"]["tasks"]
    assert sorted(recorded.split(",")) == ["para", "sst"]  # the record says which tasks the run trained


def test_the_summary_names_every_task_scored():
    from hf_minbert.commands.train import _summary

    summary = _summary({"nli": {"accuracy": 0.5}, "sst": {"accuracy": 0.25}}, 60.0, "out")
    assert "  nli: accuracy 0.5000" in summary and "  sst: accuracy 0.2500" in summary


@pytest.mark.parametrize("flags, named", [
    (["--head_layers", "sst=2"], "--head_layers sst=2: the checkpoint's trained sst head has head_layers=1"),
    (["--cosine_feature", "para=true"], "--cosine_feature para=True: the checkpoint's trained para head has "
                                        "cosine_feature=False"),
])
def test_a_flag_resizing_a_trained_head_is_refused_naming_it_before_the_data_is_read(trained, data, tmp_path, capsys,
                                                                                      data_reads, flags, named):
    assert minbert(["train", "--model_name_or_path", str(trained), "--data_dir", str(data), "--output_dir",
                    str(tmp_path / "again"), *TINY_RUN, *flags]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"minbert train: {named}"), error
    assert data_reads == []


def test_a_checkpoint_saved_in_bf16_trains_in_float32_weights(tmp_path, base):
    # bf16 weights would round most updates away; --bf16 means autocast over float32 weights
    from hf_minbert import MinBertModel
    from hf_minbert.commands.head_options import base_task_specs, task_specs
    from hf_minbert.commands.train import build_model
    from hf_minbert.commands.train_arguments import ModelArguments

    MinBertModel.from_pretrained(base).to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    args = ModelArguments(model_name_or_path=str(tmp_path / "bf16"))
    _, model = build_model(args, task_specs(args, *base_task_specs(args)))
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}


def test_bf16_full_eval_scores_a_copy_and_leaves_the_trained_model_in_float32(tmp_path, base, data, monkeypatch):
    # a push after the scores saves trainer.model again: it must still be the float32 model the folder holds
    from hf_minbert import evaluation
    from trainers import MultitaskTrainer

    scored, trainers = [], []
    original_evaluate, original_train = evaluation.evaluate_model, MultitaskTrainer.train
    monkeypatch.setattr(evaluation, "evaluate_model", lambda model, *a, **k: scored.append(model) or original_evaluate(model, *a, **k))
    monkeypatch.setattr(MultitaskTrainer, "train", lambda self, *a, **k: trainers.append(self) or original_train(self, *a, **k))
    assert train(base, data, tmp_path / "out", "--bf16_full_eval", "true") == 0
    assert scored[-1].dtype == torch.bfloat16
    assert {parameter.dtype for parameter in trainers[-1].model.parameters()} == {torch.float32}


def _sigterm_once_the_run_answers_it():
    """SIGTERM to this process once the run's handler is installed (around train()): sent before that, it would
    end the test process. Where none comes, SIGINT ends the run (as Ctrl-C)."""
    deadline = time.time() + 60
    while getattr(signal.getsignal(signal.SIGTERM), "__name__", None) != "note_sigterm" and time.time() < deadline:
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM if time.time() < deadline else signal.SIGINT)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "pretrain-mlm"])
def test_a_run_stopped_by_sigterm_with_jit_checkpoints_keeps_its_checkpoint_and_publishes_nothing(
        base, data, tmp_path, capsys, command):
    output = tmp_path / "model"
    sender = threading.Thread(target=_sigterm_once_the_run_answers_it, daemon=True)
    sender.start()
    code = train(base, data, output, "--enable_jit_checkpoint", "true", "--max_steps", "100000", command=command)
    sender.join()
    assert code == 128 + signal.SIGTERM
    error = capsys.readouterr().err
    assert "stopped by SIGTERM at step" in error and error.strip().endswith("; --output_dir is as it was")
    assert not output.exists()
    named = Path(error.split("continue with --resume_from_checkpoint ")[1].split(";")[0])
    assert named.parent == tmp_path / "model.partial" and (named / "model.safetensors").is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_failing_run_leaves_sigterm_to_the_handler_before_the_trainers(monkeypatch):
    from types import SimpleNamespace

    from hf_minbert.commands.output_folder import stopped_by_sigterm_raises

    class CheckpointManager:  # as transformers' JIT checkpointing installs its handler when the Trainer is built
        _original_sigterm_handler = signal.SIG_DFL

        def _sigterm_handler(self, signum, frame):
            pass

    monkeypatch.setattr(signal, "signal", lambda signum, handler: installed.__setitem__(signum, handler))
    monkeypatch.setattr(signal, "getsignal", lambda signum: installed[signum])
    installed = {signal.SIGTERM: CheckpointManager()._sigterm_handler}
    trainer = SimpleNamespace(args=SimpleNamespace(enable_jit_checkpoint=True), state=None)
    with pytest.raises(RuntimeError), stopped_by_sigterm_raises(trainer):
        raise RuntimeError("training failed")
    assert installed[signal.SIGTERM] is signal.SIG_DFL
