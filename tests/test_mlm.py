"""Further masked-LM pretraining: `MinBertForMaskedLM` (BERT's head, tied to the word embeddings), a few
Trainer steps, and `minbert pretrain-mlm` writing a folder that `minbert train` fine-tunes."""
import json
import logging
import shutil

import pytest
import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

from hf_minbert import MinBertConfig, MinBertForMaskedLM, MinBertForMultitask, MinBertModel
from hf_minbert.cli import main as minbert
from hf_minbert.commands.pretrain_mlm import task_texts, tokenize_texts
from tests.helpers import random_batch, word_tokenizer

WORDS = "a the cat dog sat ran on mat park film fine dull good bad is it how why so not very . ?".split()
TINY = dict(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64)


def tiny_mlm(seed=0, **overrides):
    torch.manual_seed(seed)
    return MinBertForMaskedLM(MinBertConfig(**{**TINY, **overrides}))


# --- the model ----------------------------------------------------------------------------------------------


def test_decoder_weight_and_bias_are_tied_to_the_word_embeddings_and_the_output_bias():
    model = tiny_mlm()
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias


def test_tying_survives_save_and_load(tmp_path):
    tiny_mlm().save_pretrained(tmp_path)
    loaded = MinBertForMaskedLM.from_pretrained(tmp_path)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    assert loaded.cls.predictions.decoder.bias is loaded.cls.predictions.bias


def test_a_bert_masked_lm_checkpoint_loads_with_its_head_and_the_same_predictions(tmp_path):
    reference = BertForMaskedLM(BertConfig(**TINY)).eval()
    reference.save_pretrained(tmp_path)
    ours, info = MinBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}  # BertForMaskedLM has none
    batch = random_batch(ours.config, batch=3, length=9)
    with torch.no_grad():
        expected, got = reference(**batch).logits, ours.eval()(**batch).logits
    real = batch["attention_mask"].bool()  # padding positions are never computed by minBERT
    torch.testing.assert_close(got[real], expected[real], rtol=0, atol=1e-4)


def test_a_checkpoint_without_an_mlm_head_gets_a_fresh_tied_head(tmp_path):
    MinBertModel(MinBertConfig(**TINY)).save_pretrained(tmp_path)
    model, info = MinBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert {key for key in info["missing_keys"] if not key.startswith("cls.")} == set()
    assert "cls.predictions.transform.dense.weight" in info["missing_keys"]
    predictions = model.cls.predictions
    assert torch.equal(predictions.bias, torch.zeros_like(predictions.bias))
    assert torch.equal(predictions.transform.LayerNorm.weight, torch.ones_like(predictions.transform.LayerNorm.weight))
    assert predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_the_loss_is_cross_entropy_over_the_labelled_positions_only():
    model = tiny_mlm().eval()
    batch = random_batch(model.config, pairs=False)
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, 1], labels[1, 3] = 7, 9
    with torch.no_grad():
        out = model(**batch, labels=labels)
    expected = torch.nn.functional.cross_entropy(torch.stack([out.logits[0, 1], out.logits[1, 3]]), torch.tensor([7, 9]))
    torch.testing.assert_close(out.loss, expected)
    assert out.logits.shape == (*batch["input_ids"].shape, model.config.vocab_size)


def test_labels_of_the_wrong_shape_are_refused():
    model = tiny_mlm()
    batch = random_batch(model.config)
    with pytest.raises(ValueError, match="labels must have the inputs' shape"):
        model(**batch, labels=batch["input_ids"][:, :4])


@pytest.mark.slow
def test_a_few_trainer_steps_lower_the_loss_and_keep_the_tying(tmp_path):
    tokenizer = word_tokenizer(WORDS)
    texts = ["the cat sat on the mat .", "a dog ran in the park .", "it is a good film .", "why is it so dull ?"] * 8
    model = tiny_mlm()
    pooler = model.bert.pooler.dense.weight.detach().clone()
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=24, per_device_train_batch_size=8, learning_rate=1e-2,
                             logging_steps=1, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=tokenize_texts(texts, tokenizer, 32),
                      data_collator=DataCollatorForLanguageModeling(tokenizer), processing_class=tokenizer)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert sum(losses[-6:]) / 6 < sum(losses[:6]) / 6
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert torch.equal(model.bert.pooler.dense.weight, pooler), "MLM gives the pooler no gradient"


# --- minbert pretrain-mlm ------------------------------------------------------------------------------------

FILES = {
    "ids-sst-train.csv": ["\tid\tsentence\tsentiment", "0\ts0\t the cat sat .\t3", "1\ts1\t a dull film .\t1",
                          "2\ts2\t the cat sat .\t3"],
    "ids-sst-dev.csv": ["\tid\tsentence\tsentiment", "0\tsd0\t a good film .\t4", "1\tsd1\t a dull film .\t1"],
    "quora-train.csv": ["\tid\tsentence1\tsentence2\tis_duplicate", "0\tq0\thow is the film ?\tthe cat sat .\t0.0",
                        "1\tq1\twhy is it so ?\tis it so ?\t1.0"],
    "quora-dev.csv": ["\tid\tsentence1\tsentence2\tis_duplicate", "0\tqd0\tis the dog good ?\ta dog ran .\t0.0"],
    "sts-train.csv": ["\tid\tsentence1\tsentence2\tsimilarity", "0\tt0\ta dog ran .\tthe dog ran .\t4.0",
                      "1\tt1\tthe park\ta film\t0.2"],
    "sts-dev.csv": ["\tid\tsentence1\tsentence2\tsimilarity", "0\ttd0\tthe cat ran .\ta dull film .\t1.0"],
}
# The distinct training sentences, stripped, in file order: sst, then quora's, then sts's (both sides of pairs).
TRAIN_TEXTS = ["the cat sat .", "a dull film .", "how is the film ?", "why is it so ?", "is it so ?", "a dog ran .",
               "the park", "the dog ran .", "a film"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    for name, lines in FILES.items():
        (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    MinBertModel(MinBertConfig(**TINY)).save_pretrained(folder)
    word_tokenizer(WORDS).save_pretrained(folder)
    return folder


def test_task_texts_are_the_distinct_train_sentences_of_every_side(data_dir):
    assert sorted(task_texts(data_dir, ["sst", "para", "sts"], "train")) == sorted(TRAIN_TEXTS)


@pytest.fixture(scope="module")
def pretrained(data_dir, base_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("mlm")
    code = minbert(["pretrain-mlm", "--model_name_or_path", str(base_dir), "--data_dir", str(data_dir),
                    "--output_dir", str(output), "--max_seq_length", "64", "--max_steps", "3", "--per_device_train_batch_size", "4",
                    "--learning_rate", "1e-3", "--report_to", "none", "--use_cpu", "--save_strategy", "no",
                    "--disable_tqdm", "true"])
    assert code == 0
    return output


@pytest.mark.slow
def test_pretrain_mlm_writes_the_model_tokenizer_and_held_out_losses(pretrained):
    assert {"model.safetensors", "config.json", "modeling_minbert.py", "tokenizer_config.json"} <= {p.name for p in pretrained.iterdir()}
    metrics = json.loads((pretrained / "mlm_metrics.json").read_text())
    assert metrics["train_texts"] == len(TRAIN_TEXTS)
    # the 5 distinct dev sentences less the 2 that are training texts ("a dull film .", "a dog ran .")
    assert metrics["held_out_texts"] == 3
    assert metrics["held_out_loss_before"] > 0 and metrics["held_out_loss_after"] > 0
    assert metrics["base_model_id"] is None  # traced as it was made: a tiny base of no Hub model's making


def test_train_fine_tunes_the_pretrained_encoder_and_drops_the_mlm_head(pretrained, caplog):
    mlm = MinBertForMaskedLM.from_pretrained(pretrained)
    with caplog.at_level(logging.WARNING):
        model = MinBertForMultitask.from_pretrained(pretrained)
    assert "masked-LM head (cls.predictions.*) is dropped" in caplog.text
    ours = model.bert.state_dict()
    assert ours.keys() == mlm.bert.state_dict().keys()
    assert all(torch.equal(value, ours[name]) for name, value in mlm.bert.state_dict().items())


def test_the_pretrained_folder_also_starts_a_cerbertus(pretrained):
    mlm = MinBertForMaskedLM.from_pretrained(pretrained)
    model = MinBertForMultitask.from_pretrained(pretrained, task_specific_layers=1)
    copied = model.task_encoders["sts"].encoder.layer["1"].output.dense.weight
    assert torch.equal(copied, mlm.bert.encoder.layer[1].output.dense.weight)


# --- checked before the texts are read, and a model folder never silently replaced ----------------------------


@pytest.fixture
def text_reads(monkeypatch):
    """The calls of `minbert pretrain-mlm`'s text reader: a check made before any text is read leaves it empty."""
    from hf_minbert.commands import pretrain_mlm
    from tests.helpers import refused_calls

    return refused_calls(monkeypatch, pretrain_mlm, "task_texts")


def pretrain_mlm(base, data_dir, output, *flags):
    return minbert(["pretrain-mlm", "--model_name_or_path", str(base), "--data_dir", str(data_dir), "--output_dir",
                    str(output), "--max_seq_length", "64", "--max_steps", "1", "--per_device_train_batch_size", "4",
                    "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--max_eval_texts", "2", *flags])


def one_error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minbert pretrain-mlm: "), lines
    return lines[0]


def test_pretrain_mlm_refuses_a_max_seq_length_beyond_the_models_positions_before_reading_texts(
    data_dir, base_dir, tmp_path, capsys, text_reads
):
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--max_seq_length", "65") == 2
    assert "--max_seq_length 65 exceeds the model's max_position_embeddings (64" in one_error_line(capsys)
    assert text_reads == [] and not (tmp_path / "out").exists()


def test_pretrain_mlm_refuses_a_model_with_task_encoders_of_its_own_before_reading_texts(
    data_dir, base_dir, tmp_path, capsys, text_reads
):
    from hf_minbert import MinBertForMultitask

    cerbertus = tmp_path / "cerbertus"
    MinBertForMultitask.from_pretrained(base_dir, task_specific_layers=1).save_pretrained(cerbertus)
    word_tokenizer(WORDS).save_pretrained(cerbertus)
    capsys.readouterr()
    assert pretrain_mlm(cerbertus, data_dir, tmp_path / "out") == 2
    assert ("a cerbertus model, the top 1 layers of its encoder each task's own, has no one encoder to pretrain "
            "further") in one_error_line(capsys)
    assert text_reads == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, named", [
    (["--learning_rate", "-1"], "--learning_rate must lie in [0, inf), got -1.0"),
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1, got 0"),
    (["--max_grad_norm", "nan"], "--max_grad_norm must lie in [0, inf), got nan"),
    (["--weight_decay", "-1"], "--weight_decay must lie in [0, inf), got -1.0"),
    (["--max_steps", "-1", "--num_train_epochs", "0"], "--num_train_epochs must lie in (0, inf), got 0.0"),
    (["--label_smoothing_factor", "1"], "--label_smoothing_factor must lie in [0, 1), got 1.0"),
    (["--warmup_steps", "inf"], "--warmup_steps must lie in [0, inf), got inf"),
    (["--save_steps", "inf"], "--save_steps must lie in (0, inf), got inf"),
    (["--neftune_noise_alpha", "-5"], "--neftune_noise_alpha must lie in (0, inf), got -5.0"),
])
def test_pretrain_mlm_refuses_a_number_out_of_range_before_reading_texts(
    data_dir, base_dir, tmp_path, capsys, text_reads, flags, named
):
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", *flags) == 2
    assert one_error_line(capsys) == f"minbert pretrain-mlm: {named}"
    assert text_reads == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, named", [
    (["--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps", "--save_steps", "3",
      "--load_best_model_at_end", "true", "--metric_for_best_model", "accuracy"],
     "--metric_for_best_model accuracy: pretrain-mlm evaluates the held-out masked-LM loss only (loss)"),
    (["--lr_scheduler_kwargs", '{"num_cycles": 2}'], "--lr_scheduler_type linear with --lr_scheduler_kwargs "
                                                     '{"num_cycles": 2}: get_linear_schedule_with_warmup() got an'),
    (["--optim", "adamw_bnb_8bit"], "--optim adamw_bnb_8bit: You need to install `bitsandbytes`"),
    (["--fp16_full_eval", "true", "--bf16", "true"], "--fp16_full_eval cannot evaluate under bf16 autocast on a CPU"),
    (["--max_eval_texts", "0", "--eval_strategy", "steps", "--eval_steps", "2"],
     "--eval_strategy steps: --max_eval_texts 0 holds out no text to evaluate on"),
])
def test_pretrain_mlm_refuses_a_flag_its_trainer_would_fail_on_before_reading_texts(
    data_dir, base_dir, tmp_path, capsys, text_reads, flags, named
):
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", *flags) == 2
    assert one_error_line(capsys).startswith(f"minbert pretrain-mlm: {named}")
    assert text_reads == [] and not (tmp_path / "out").exists()


def test_pretrain_mlm_without_an_output_dir_is_refused_before_reading_texts(data_dir, base_dir, capsys, text_reads):
    assert minbert(["pretrain-mlm", "--model_name_or_path", str(base_dir), "--data_dir", str(data_dir),
                    "--max_seq_length", "64"]) == 2
    assert one_error_line(capsys) == ("minbert pretrain-mlm: --output_dir is required: the folder the "
                                      "further-pretrained model is written to")
    assert text_reads == []


def test_pretrain_mlm_refuses_fp16_on_a_cpu_before_reading_texts(data_dir, base_dir, tmp_path, capsys, text_reads):
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--fp16", "true") == 2
    assert "--fp16 needs a GPU" in one_error_line(capsys)
    assert text_reads == []


def test_pretrain_mlm_refuses_an_output_folder_holding_a_model_before_reading_texts(
    data_dir, base_dir, tmp_path, capsys, text_reads
):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_bytes(b"old")
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out") == 2
    assert "already holds a model (model.safetensors): pass --overwrite_output_dir" in one_error_line(capsys)
    assert text_reads == [] and (tmp_path / "out" / "model.safetensors").read_bytes() == b"old"


@pytest.mark.slow
def test_pretrain_mlm_overwrite_output_dir_replaces_the_whole_folder(data_dir, base_dir, tmp_path):
    stale = tmp_path / "out" / "checkpoint-39"
    stale.mkdir(parents=True)
    (tmp_path / "out" / "model.safetensors").write_bytes(b"old")
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--overwrite_output_dir", "--save_strategy", "no") == 0
    assert not stale.exists() and (tmp_path / "out" / "mlm_metrics.json").is_file()
    assert (tmp_path / "out" / "model.safetensors").read_bytes() != b"old"
    MinBertForMaskedLM.from_pretrained(tmp_path / "out")  # the new weights load
    assert not (tmp_path / "out.partial").exists()


def test_pretrain_mlm_failing_while_training_leaves_the_old_folder_as_it_was(data_dir, base_dir, tmp_path, monkeypatch):
    from hf_minbert.commands import pretrain_mlm as pretrain_mlm_command

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pretrain_mlm_command, "pretrain", fail)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="out of memory"):
        pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--overwrite_output_dir")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["model.safetensors"]
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"old"


def test_pretrain_mlm_on_a_local_model_that_does_not_exist_is_no_such_directory(data_dir, tmp_path, capsys, text_reads):
    assert pretrain_mlm(tmp_path / "nowhere", data_dir, tmp_path / "out") == 2
    assert one_error_line(capsys) == f"minbert pretrain-mlm: --model_name_or_path {tmp_path / 'nowhere'}: no such directory"
    assert text_reads == []


# --- resuming, and what is checked before the texts are read ------------------------------------------------


def _weights(folder):
    return (folder / "model.safetensors").read_bytes()


@pytest.fixture(scope="module")
def interrupted_and_whole(data_dir, base_dir, tmp_path_factory):
    """A 4-step run, and the same run resumed from its step-2 checkpoint (as after an interruption)."""
    root = tmp_path_factory.mktemp("resume")
    flags = ["--max_steps", "4", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--save_steps", "2",
             "--seed", "5", "--max_eval_texts", "0"]
    assert pretrain_mlm(base_dir, data_dir, root / "whole", *flags) == 0
    shutil.copytree(root / "whole" / "checkpoint-2", root / "checkpoint-2")
    assert pretrain_mlm(base_dir, data_dir, root / "resumed", *flags, "--resume_from_checkpoint",
                        str(root / "checkpoint-2")) == 0
    return root


@pytest.mark.slow
def test_pretrain_mlm_resumed_from_a_checkpoint_ends_with_the_uninterrupted_runs_weights(interrupted_and_whole):
    # The masks of a step are drawn in the step, from the generator state the checkpoint restores.
    assert _weights(interrupted_and_whole / "whole") == _weights(interrupted_and_whole / "resumed")


def test_pretrain_mlm_refuses_a_checkpoint_of_another_command_before_reading_texts(
        data_dir, base_dir, tmp_path, capsys, text_reads):
    checkpoint = tmp_path / "checkpoint-2"
    MinBertForMultitask.from_pretrained(base_dir).save_pretrained(checkpoint)
    (checkpoint / "trainer_state.json").write_text("{}")
    capsys.readouterr()
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--resume_from_checkpoint", str(checkpoint)) == 2
    assert "a checkpoint of MinBertForMultitask, not of minbert pretrain-mlm" in one_error_line(capsys)
    assert text_reads == []


def test_pretrain_mlm_refuses_a_checkpoint_without_its_optimizer_state_before_reading_texts(
        data_dir, base_dir, interrupted_and_whole, tmp_path, capsys, text_reads):
    checkpoint = shutil.copytree(interrupted_and_whole / "checkpoint-2", tmp_path / "checkpoint-2")
    (checkpoint / "optimizer.pt").unlink()
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--resume_from_checkpoint", str(checkpoint)) == 2
    assert "no optimizer.pt, so training could not go on as it was" in one_error_line(capsys)
    assert text_reads == []


def test_pretrain_mlm_refuses_a_logging_integration_not_installed_before_reading_texts(
        data_dir, base_dir, tmp_path, capsys, text_reads):
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--report_to", "wandb") == 2
    assert "--report_to wandb: not a logging integration installed here" in one_error_line(capsys)
    assert text_reads == []


def test_pretrain_mlm_without_held_out_texts_reads_no_dev_file(base_dir, data_dir, tmp_path):
    train_only = shutil.copytree(data_dir, tmp_path / "data", ignore=shutil.ignore_patterns("*-dev.csv"))
    assert pretrain_mlm(base_dir, train_only, tmp_path / "out", "--max_eval_texts", "0") == 0


def test_pretrain_mlm_records_the_held_out_loss_without_label_smoothing(base_dir, data_dir, tmp_path):
    # --learning_rate 0: the weights stay, so the loss recorded before training is the same with and without.
    losses = []
    for name, flags in (("plain", []), ("smoothed", ["--label_smoothing_factor", "0.5"])):
        assert pretrain_mlm(base_dir, data_dir, tmp_path / name, "--learning_rate", "0", "--seed", "3", *flags) == 0
        losses.append(json.loads((tmp_path / name / "mlm_metrics.json").read_text())["held_out_loss_before"])
    assert losses[0] == losses[1]


NOTES = {"name": "notes", "text_columns": ["text"], "label_column": "label", "label_dtype": "int64", "label_values": [0, 1]}


@pytest.fixture
def notes_data(tmp_path):
    """A data folder of a task of one's own, `notes`; its schema is unregistered again afterwards."""
    from hf_minbert.commands.task_schema_files import FILE_SCHEMAS
    from hf_minbert.data import TASK_SCHEMAS

    (tmp_path / "data").mkdir()
    for split in ("train", "dev"):
        (tmp_path / "data" / f"notes-{split}.csv").write_text("\tid\ttext\tlabel\n0\ta\ta cat sat on the mat\t1\n"
                                                             "1\tb\ta dog ran in the park\t0\n")
    yield tmp_path / "data"
    TASK_SCHEMAS.pop("notes", None), FILE_SCHEMAS.pop("notes", None)


def test_pretrain_mlm_reads_the_texts_of_a_task_a_schema_file_declares(base_dir, notes_data, tmp_path):
    (tmp_path / "notes.json").write_text(json.dumps(NOTES))
    assert pretrain_mlm(base_dir, notes_data, tmp_path / "out", "--tasks", "notes",
                        "--task_schema", str(tmp_path / "notes.json")) == 0


def test_pretrain_mlm_reads_the_texts_of_a_task_its_model_folder_was_trained_on(notes_data, tmp_path):
    from hf_minbert import MinBertForMultitask

    head = {"kind": "binary", "pair_encoding": "single", "data_schema": NOTES}
    MinBertForMultitask(MinBertConfig(**TINY, tasks={"notes": head})).save_pretrained(tmp_path / "model")
    word_tokenizer(WORDS).save_pretrained(tmp_path / "model")
    assert pretrain_mlm(tmp_path / "model", notes_data, tmp_path / "out", "--tasks", "notes") == 0


def test_pretrain_mlm_trains_a_checkpoint_saved_in_bf16_in_float32_weights(base_dir, tmp_path):
    from hf_minbert.commands.pretrain_mlm import load_model

    MinBertModel.from_pretrained(base_dir).to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    assert {parameter.dtype for parameter in load_model(str(tmp_path / "bf16")).parameters()} == {torch.float32}


def test_pretrain_mlm_reads_a_task_its_model_folder_was_trained_on_named_in_a_config_file(notes_data, tmp_path):
    from hf_minbert import MinBertForMultitask

    head = {"kind": "binary", "pair_encoding": "single", "data_schema": NOTES}
    MinBertForMultitask(MinBertConfig(**TINY, tasks={"notes": head})).save_pretrained(tmp_path / "model")
    word_tokenizer(WORDS).save_pretrained(tmp_path / "model")
    (tmp_path / "run.yaml").write_text(f"model_name_or_path: {tmp_path / 'model'}\ntasks: notes\n")
    assert minbert(["pretrain-mlm", "--config", str(tmp_path / "run.yaml"), "--data_dir", str(notes_data),
                    "--output_dir", str(tmp_path / "out"), "--max_seq_length", "64", "--max_steps", "1",
                    "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--max_eval_texts", "2"]) == 0


def test_pretrain_mlm_under_bf16_full_eval_trains_and_saves_float32_weights(base_dir, data_dir, tmp_path):
    assert pretrain_mlm(base_dir, data_dir, tmp_path / "out", "--bf16_full_eval", "true") == 0
    saved = MinBertForMaskedLM.from_pretrained(tmp_path / "out", dtype="auto")
    assert {parameter.dtype for parameter in saved.parameters()} == {torch.float32}
