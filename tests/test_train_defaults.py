"""`minbert train`'s recipe defaults: what a run gets with no flags, and when the defaults stand aside."""
from pathlib import Path

import pytest

from hf_minbert.commands.head_options import base_task_specs, task_specs
from hf_minbert.commands.train_arguments import ModelArguments
from tests.helpers import tiny_model, tiny_task_rows, write_task_files
from trainers import MultitaskTrainingArguments

ROOT = Path(__file__).resolve().parents[1]
TREES = ["(3 (2 a) (4 (4 witty) (2 film)))", "(1 (2 the) (1 (1 dull) (2 plot)))"]


def _specs(**model_args):
    args = ModelArguments(**model_args)
    return task_specs(args, *base_task_specs(args))


def test_a_fresh_bert_base_gets_a_bi_encoded_sts_head():
    specs = _specs()
    assert specs["sts"]["pair_encoding"] == "bi" and specs["sts"]["cosine_feature"] is False
    assert specs["para"]["pair_encoding"] == "cross" and specs["para"]["cosine_feature"] is False


def test_a_cross_encoded_sts_head_gets_the_cosine_feature_unless_it_is_turned_off():
    assert _specs(pair_encoding="sts=cross")["sts"]["cosine_feature"] is True
    assert _specs(pair_encoding="sts=cross", cosine_feature="sts=false")["sts"]["cosine_feature"] is False


def test_a_fresh_cross_encoded_quora_head_averages_both_pair_orders_unless_told_otherwise():
    assert _specs()["para"]["average_pair_orders"] is True
    assert _specs(average_pair_orders="para=false")["para"]["average_pair_orders"] is False
    assert _specs(pair_encoding="para=bi")["para"]["average_pair_orders"] is False, "a bi-encoder has no pair order"
    assert _specs()["sts"]["average_pair_orders"] is False


def test_training_swaps_quora_pairs_by_default_only_where_they_have_an_order():
    args = MultitaskTrainingArguments(output_dir="/tmp/x")
    assert args.pair_swap_probabilities(_specs()) == {"para": 0.5}
    assert args.pair_swap_probabilities(_specs(pair_encoding="para=bi")) == {}
    assert args.pair_swap_probabilities(_specs(tasks="sst,sts")) == {}


def test_an_option_for_one_task_leaves_the_recipe_of_the_others():
    specs = _specs(pair_encoding="para=bi", bi_features="para=concat")
    assert specs["para"]["pair_encoding"] == "bi" and specs["sts"]["pair_encoding"] == "bi"


def test_the_defaults_ignore_tasks_a_run_does_not_train():
    assert set(_specs(tasks="sst,para")) == {"sst", "para"}
    args = MultitaskTrainingArguments(output_dir="/tmp/x")  # the default task_epoch_rows names sst only
    assert args.per_task("task_epoch_rows", ["para", "sts"], 0.0) == {"para": 0.0, "sts": 0.0}
    assert args.per_task("task_epoch_rows", ["sst", "para", "sts"], 0.0) == {"sst": 16000.0, "para": 0.0, "sts": 0.0}


def test_a_value_given_equal_to_the_built_in_one_is_checked_against_the_tasks_as_any_other():
    args = MultitaskTrainingArguments(output_dir="/tmp/x", task_epoch_rows="sst=16000", pair_swap_probability="para=0.5")
    for name in ("task_epoch_rows", "pair_swap_probability"):
        with pytest.raises(ValueError, match=f"--{name}: unknown task"):
            args.per_task(name, ["sts"], 0.0)


def test_a_minbert_checkpoint_keeps_its_own_heads(tmp_path):
    tasks = {"sst": {"kind": "classification", "labels": ["neg", "pos"]},
             "sts": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "cross"}}
    tiny_model(tasks=tasks).save_pretrained(tmp_path)
    specs = _specs(model_name_or_path=str(tmp_path), tasks="sst,sts")
    assert specs["sst"]["labels"] == ["neg", "pos"]
    assert specs["sts"]["cosine_feature"] is False, "a trained plain head must load, not change shape"


def test_the_best_checkpoint_is_kept_when_evaluation_and_saving_share_a_schedule():
    assert MultitaskTrainingArguments(output_dir="/tmp/x").load_best_model_at_end is True
    no_eval = MultitaskTrainingArguments(output_dir="/tmp/x", eval_strategy="no", save_strategy="steps")
    assert no_eval.load_best_model_at_end is False


def test_a_fresh_bert_base_gets_the_cerbertus_recipe_unless_an_architecture_is_named(minilm_path):
    from hf_minbert.commands.train import build_model

    fresh = ModelArguments(model_name_or_path=minilm_path, tasks="sst")
    assert build_model(fresh, task_specs(fresh, *base_task_specs(fresh)))[1].config.task_specific_layers == 2
    plain = ModelArguments(model_name_or_path=minilm_path, tasks="sst", architecture="multitask")
    assert build_model(plain, task_specs(plain, *base_task_specs(plain)))[1].config.task_specific_layers == 0


def test_a_minbert_checkpoint_keeps_its_own_architecture(tmp_path):
    from hf_minbert.commands.train import build_model

    tiny_model().save_pretrained(tmp_path)
    args = ModelArguments(model_name_or_path=str(tmp_path))
    assert build_model(args, task_specs(args, *base_task_specs(args)))[1].config.task_specific_layers == 0


def test_an_mlm_pretrained_checkpoint_gets_the_recipe_like_a_plain_bert(tmp_path):
    # `minbert pretrain-mlm` saves a minBERT config with no trained task heads: nothing to keep.
    from hf_minbert import MinBertConfig, MinBertForMaskedLM
    from hf_minbert.commands.train import build_model

    MinBertForMaskedLM(MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)).save_pretrained(tmp_path)
    args = ModelArguments(model_name_or_path=str(tmp_path))
    specs = task_specs(args, *base_task_specs(args))
    assert specs["sts"]["pair_encoding"] == "bi"
    assert build_model(args, specs)[1].config.task_specific_layers == 2


@pytest.mark.slow
def test_the_example_trains_the_recipe_minbert_train_trains(tmp_path, monkeypatch, minilm_path):
    """examples/train_multitask.py N and `minbert train --max_train_samples N` build the same model config,
    the same training arguments, and read the same rows whole every epoch."""
    import runpy

    import hf_minbert
    import trainers
    from hf_minbert.commands.train import build_model
    from hf_minbert.commands.train_arguments import parse_arguments
    from hf_minbert.commands.train_data import always_rows, load_task_data

    data, base, output = _data_with_trees(tmp_path / "data"), _tiny_base(tmp_path / "base", minilm_path), tmp_path / "out"
    monkeypatch.setattr(hf_minbert, "embedded_base_model", lambda: str(base))
    built = {}

    class Built(Exception):
        pass

    def capture(model, args, always_rows, **kwargs):
        built.update(model=model, args=args, always_rows=always_rows)
        raise Built  # the example is not run past building its trainer

    monkeypatch.setattr(trainers, "MultitaskTrainer", capture)
    monkeypatch.setattr("sys.argv", ["train_multitask.py", str(data), str(output), "20"])
    with pytest.raises(Built):
        runpy.run_path(str(ROOT / "examples" / "train_multitask.py"), run_name="__main__")

    model_args, data_args, training_args, _ = parse_arguments(
        ["--data_dir", str(data), "--output_dir", str(output), "--max_train_samples", "20"])
    specs = task_specs(model_args, *base_task_specs(model_args))
    _, model = build_model(model_args, specs)
    _, _, reports = load_task_data(data_args, specs)
    assert built["model"].config.to_dict() == model.config.to_dict()
    assert built["model"].config.tasks["sts"]["pair_encoding"] == "bi" and model.config.task_specific_layers == 2
    assert _comparable(built["args"]) == _comparable(training_args)
    assert built["always_rows"] == always_rows(reports, data_args) == {"sst": 16}  # the course's 16 of 20 rows


def _data_with_trees(folder):
    folder.mkdir()
    write_task_files(folder, tiny_task_rows(n=16, seed=1), split="train")
    write_task_files(folder, tiny_task_rows(n=8, seed=2), split="dev")
    (folder / "sst-train-trees.txt").write_text("\n".join(TREES) + "\n")
    return folder


def _tiny_base(folder, tokenizer_path):
    """A tiny encoder without task heads, with the embedded tokenizer."""
    from transformers import AutoTokenizer

    from hf_minbert import MinBertConfig, MinBertModel

    MinBertModel(MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(folder)
    return folder


def _comparable(training_args):
    # logging_dir is stamped with the time the arguments were made
    return {k: v for k, v in training_args.to_dict().items() if k != "logging_dir"}


@pytest.mark.parametrize("native", [True, False])
def test_bf16_autocast_is_the_default_only_where_the_machine_multiplies_bf16_natively(native, monkeypatch):
    import trainers.arguments as arguments

    monkeypatch.setattr(arguments, "has_bf16_matmuls", lambda: native)
    assert MultitaskTrainingArguments(output_dir="/tmp/x").bf16 is native


def test_bf16_asked_for_without_native_bf16_matmuls_is_kept_with_a_warning(monkeypatch, caplog):
    import trainers.arguments as arguments

    monkeypatch.setattr(arguments, "has_bf16_matmuls", lambda: False)
    assert MultitaskTrainingArguments(output_dir="/tmp/x", bf16=True).bf16 is True
    assert "without native bf16 matmuls" in caplog.text


def test_a_trained_head_given_another_pair_encoding_is_replaced_by_a_fresh_recipe_head_said_in_the_log(caplog):
    from hf_minbert import recipe

    trained = recipe.heads()  # a trained checkpoint's heads: sts bi-encoded
    with caplog.at_level("WARNING", logger="minbert"):
        specs = task_specs(ModelArguments(pair_encoding="sts=cross"), trained, recipe_defaults=False)
    assert specs["sts"]["pair_encoding"] == "cross" and specs["sts"]["cosine_feature"] is True  # as a fresh one gets
    assert "--pair_encoding sts=cross: the checkpoint's trained sts head is bi-encoded; a fresh cross-encoded" in caplog.text
