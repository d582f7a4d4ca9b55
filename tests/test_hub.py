"""Publishing: the exact files a push sends, the token and endpoint it uses, and — for real, through a
Hub-compatible server (olah) on 127.0.0.1 — that a repository holding exactly those files gives a fresh
process, where hf_minbert is not installed, the model and every pipeline."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import CommitOperationDelete
from transformers import AutoModel, AutoTokenizer, pipeline

from hf_minbert import MinBertForMultitask, hub
from hf_minbert.cli import main as minbert
from hf_minbert.metrics import with_overall_scores
from model_cards import write_model_card
from tests.helpers import free_port, run_isolated, tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]
PAIR = ("a gorgeous , witty film", "a fine and clever movie")
PIPELINE_TASKS = ("paraphrase-detection", "sentence-similarity", "minbert-multitask", "text-classification")
REMOTE_LOAD_FILES = ["config.json", "configuration_minbert.py", "model.safetensors", "modeling_minbert.py",
                     "modeling_minbert_conversion.py", "modeling_minbert_heads.py", "modeling_minbert_layers.py",
                     "modeling_minbert_pair_order.py", "modeling_minbert_task_encoders.py", "modeling_minbert_unpadding.py",
                     "pipelines.py", "tokenizer.json", "tokenizer_config.json"]
PUSHED_FILES = sorted([*REMOTE_LOAD_FILES, "README.md", "metrics.json", "training_config.json", "training_curves.png",
                       "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"])
OLAH_SECONDS = 180  # the server's whole lifetime: it cannot outlive a hung test


@pytest.fixture
def model_dir(tmp_path, minilm_path):
    """What `minbert train` leaves, plus what must stay home: checkpoints, optimizer state, pickles, logs."""
    path = tmp_path / "run"
    model = tiny_model()
    model.heads["sts"].layers[-1].bias.data.fill_(2.5)
    model.eval().save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    metrics = with_overall_scores({"sst": {"accuracy": 0.5}, "para": {"accuracy": 0.8},
                                   "sts": {"pearson": 0.8, "spearman": 0.8}})
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "training_curves.png").write_bytes(b"\x89PNG\r\n")
    write_model_card(path, metrics=metrics, base_model=minilm_path, train_seconds=60.0)
    (path / "training_args.bin").write_bytes(b"pickle")
    (path / "checkpoint-10").mkdir()
    (path / "checkpoint-10" / "optimizer.pt").write_bytes(b"state")
    (path / "runs").mkdir()
    (path / "runs" / "events.out").write_bytes(b"log")
    return path


# --- the file set ------------------------------------------------------------------------------------------


def test_remote_load_needs_config_weights_every_code_file_and_the_tokenizer(model_dir):
    assert hub.remote_load_files(model_dir) == REMOTE_LOAD_FILES


def test_a_push_sends_the_remote_load_files_card_record_and_plots_and_nothing_else(model_dir):
    assert hub.files_to_push(model_dir) == PUSHED_FILES


@pytest.mark.parametrize("missing", ["pipelines.py", "configuration_minbert.py", "model.safetensors", "tokenizer.json"])
def test_a_folder_missing_a_needed_file_is_refused_naming_it(model_dir, missing):
    (model_dir / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing.replace(".", r"\.")):
        hub.files_to_push(model_dir)


def test_a_config_without_custom_pipelines_is_refused(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    del config["custom_pipelines"]
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no 'custom_pipelines'"):
        hub.files_to_push(model_dir)


def test_a_model_without_task_heads_needs_no_custom_pipelines(tmp_path, minilm_path):
    from hf_minbert import MinBertForMaskedLM

    MinBertForMaskedLM(tiny_model().config).save_pretrained(tmp_path)  # as `minbert pretrain-mlm` saves one
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path)
    files = hub.remote_load_files(tmp_path)
    assert {"config.json", "configuration_minbert.py", "modeling_minbert.py", "model.safetensors"} <= set(files)


def test_a_crafted_shard_index_naming_a_file_outside_the_folder_is_refused(model_dir, tmp_path):
    (tmp_path / "secret.safetensors").write_bytes(b"not yours")
    (model_dir / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {"bert.embeddings.word_embeddings.weight": "../secret.safetensors"}}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"\.\./secret\.safetensors resolves to .* outside the model folder"):
        hub.files_to_push(model_dir)


def test_a_symlink_to_a_file_outside_the_folder_is_refused(model_dir, tmp_path):
    (tmp_path / "private.png").write_bytes(b"\x89PNG\r\n")
    (model_dir / "training_curves.png").unlink()
    (model_dir / "training_curves.png").symlink_to(tmp_path / "private.png")
    with pytest.raises(ValueError, match=r"training_curves\.png resolves to .*private\.png, outside the model folder"):
        hub.files_to_push(model_dir)


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json"])
def test_a_truncated_json_file_is_refused_naming_it(model_dir, name):
    path = model_dir / name
    path.write_text(path.read_text()[:-20])
    with pytest.raises(ValueError, match=rf"{name}: not valid JSON \("):
        hub.files_to_push(model_dir)


def test_an_adapter_folder_is_refused_naming_the_exported_model_to_push_instead(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="PEFT adapters, not a model: pass the exported model folder"):
        hub.files_to_push(tmp_path)


def test_a_folder_without_a_card_is_refused_with_the_command_that_writes_one(model_dir):
    (model_dir / "README.md").unlink()
    with pytest.raises(FileNotFoundError, match="minbert card"):
        hub.files_to_push(model_dir)


# --- pushing -----------------------------------------------------------------------------------------------


def test_push_creates_the_repo_and_commits_exactly_the_push_set(model_dir, hub_calls, token):
    hub.push_model_dir(model_dir, "someone/minbert", private=True)
    (_, _, repo_id, repo_kwargs), (_, _, commit_repo, _, operations) = hub_calls
    assert repo_id == commit_repo == "someone/minbert" and repo_kwargs["private"] is True
    assert sorted(op.path_in_repo for op in operations) == PUSHED_FILES
    assert all(Path(op.path_or_fileobj) == model_dir / op.path_in_repo for op in operations
               if op.path_in_repo not in hub.RUN_RECORD_FILES)  # the records are sent without local paths


def test_a_pushed_record_names_local_folders_by_name_not_by_where_the_run_ran(model_dir, hub_calls, token):
    record = json.loads((model_dir / "training_config.json").read_text())
    record["data_arguments"] = {"data_dir": "/home/someone/data", "train_sources": ["sst=/home/someone/a.csv"]}
    (model_dir / "training_config.json").write_text(json.dumps(record))
    hub.push_model_dir(model_dir, "someone/minbert")
    sent = {op.path_in_repo: op.path_or_fileobj for op in hub_calls[-1][4]}
    pushed = json.loads(sent["training_config.json"])
    assert pushed["data_arguments"] == {"data_dir": "data", "train_sources": ["sst=a.csv"]}
    assert "/home/someone" not in sent["training_config.json"].decode() and str(model_dir) not in str(pushed)
    assert json.loads((model_dir / "training_config.json").read_text())["data_arguments"]["data_dir"] == "/home/someone/data"


def test_a_second_push_deletes_what_the_first_sent_and_this_one_replaces(model_dir, hub_calls, token):
    hub.push_model_dir(model_dir, "someone/minbert")
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    for name in ("model.safetensors", "training_curves.png", "metrics.json"):
        (model_dir / name).unlink()
    model.save_pretrained(model_dir, max_shard_size="100KB")  # sharded: a leftover model.safetensors would load
    hub.push_model_dir(model_dir, "someone/minbert")
    deleted = {op.path_in_repo for op in hub_calls[-1][4] if isinstance(op, CommitOperationDelete)}
    assert deleted == {"model.safetensors", "training_curves.png", "metrics.json"}


def test_a_push_keeps_repository_files_no_push_writes():
    assert not any(map(hub.is_pushed_kind, [".gitattributes", "handler.py", "last-checkpoint/model.safetensors",
                                             "notes.md"]))
    assert all(map(hub.is_pushed_kind, ["model-00001-of-00002.safetensors", "pytorch_model.bin", "modeling_minbert.py",
                                         "training_config.json", "loss.png"]))


def test_a_push_to_a_revision_creates_its_branch_first(model_dir, hub_calls, token):
    hub.push_model_dir(model_dir, "someone/minbert", revision="dev")
    assert [call[0] for call in hub_calls] == ["create_repo", "create_branch", "create_commit"]
    assert hub_calls[1][3] == "dev" and hub_calls[1][4]["exist_ok"] is True and hub_calls[2][3]["revision"] == "dev"


def test_minbert_push_without_private_leaves_the_visibility_to_the_hub(model_dir, hub_calls, token):
    assert minbert(["push", str(model_dir), "--repo_id", "someone/minbert"]) == 0
    assert hub_calls[0][3]["private"] is None  # an organization's private-by-default holds


def test_a_push_to_a_pull_request_commits_to_its_ref_without_creating_a_branch(model_dir, hub_calls, token):
    hub.push_model_dir(model_dir, "someone/minbert", revision="refs/pr/1")
    assert [call[0] for call in hub_calls] == ["create_repo", "create_commit"]
    assert hub_calls[1][3]["revision"] == "refs/pr/1"


def test_push_goes_to_HF_ENDPOINT(model_dir, hub_calls, token, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    hub.push_model_dir(model_dir, "someone/minbert")
    assert {call[1] for call in hub_calls} == {"http://127.0.0.1:9"}


def test_push_without_a_token_stops_before_any_request_or_file_check(hub_calls, no_token, tmp_path):
    with pytest.raises(hub.MissingTokenError, match="no Hugging Face token: set HF_TOKEN, run `hf auth login`"):
        hub.push_model_dir(tmp_path / "not-even-a-folder", "someone/minbert")
    assert hub_calls == []


def test_minbert_push_regenerates_the_card_for_the_repo_then_pushes(model_dir, hub_calls, token, capsys):
    assert minbert(["push", str(model_dir), "--repo_id", "someone/minbert-mt", "--private"]) == 0
    assert 'model_id = "someone/minbert-mt"' in (model_dir / "README.md").read_text()
    assert sorted(op.path_in_repo for op in hub_calls[1][4]) == PUSHED_FILES
    assert f"pushed {len(PUSHED_FILES)} files to someone/minbert-mt" in capsys.readouterr().out


def test_minbert_push_to_a_bare_name_names_the_repository_in_the_token_owners_namespace(model_dir, hub_calls, token,
                                                                                         capsys):
    assert minbert(["push", str(model_dir), "--repo_id", "minbert-mt"]) == 0
    assert 'model_id = "someone/minbert-mt"' in (model_dir / "README.md").read_text()
    assert hub_calls[-1][2] == "someone/minbert-mt" and "to someone/minbert-mt:" in capsys.readouterr().out


@pytest.mark.parametrize("repo_id", ["a/b/c", "someone/has space"])
def test_minbert_push_refuses_a_malformed_repo_id_before_any_request(model_dir, hub_calls, token, capsys, repo_id):
    assert minbert(["push", str(model_dir), "--repo_id", repo_id]) == 2
    assert _stderr_is_one_line(capsys.readouterr()).startswith(f"minbert push: --repo_id {repo_id}: Repo id must")
    assert hub_calls == []


def test_minbert_push_without_a_token_says_so_and_touches_nothing(model_dir, hub_calls, no_token, capsys):
    card = (model_dir / "README.md").read_text()
    assert minbert(["push", str(model_dir), "--repo_id", "someone/minbert"]) == 2
    assert "minbert push: no Hugging Face token" in capsys.readouterr().err
    assert hub_calls == [] and (model_dir / "README.md").read_text() == card


@pytest.mark.parametrize("keep_card", [[], ["--keep_card"]])
def test_minbert_push_refuses_truncated_weights_before_any_request(model_dir, hub_calls, token, capsys, keep_card):
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert minbert(["push", str(model_dir), "--repo_id", "someone/minbert", *keep_card]) == 2
    assert _stderr_is_one_line(capsys.readouterr()).startswith(
        f"minbert push: cannot read {weights} (truncated or corrupt?)")
    assert hub_calls == []


def test_minbert_card_refuses_truncated_weights_in_one_line(model_dir, capsys):
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert minbert(["card", str(model_dir)]) == 2
    assert _stderr_is_one_line(capsys.readouterr()).startswith(
        f"minbert card: cannot read {weights} (truncated or corrupt?)")


def test_minbert_card_refuses_a_record_that_is_not_a_json_object(model_dir, capsys):
    (model_dir / "training_config.json").write_text("[1, 2]")
    assert minbert(["card", str(model_dir)]) == 2
    assert _stderr_is_one_line(capsys.readouterr()) == (
        f"minbert card: {model_dir / 'training_config.json'}: not a JSON object of the run's record (written by "
        "minbert train)")


def _stderr_is_one_line(captured):
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_minbert_push_to_an_unreachable_endpoint_fails_in_one_line_and_leaves_the_folder(
        model_dir, token, online, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    before = {path.name: path.read_bytes() for path in model_dir.iterdir() if path.is_file()}
    assert minbert(["push", str(model_dir), "--repo_id", "someone/minbert"]) == 1
    line = _stderr_is_one_line(capsys.readouterr())
    assert line.startswith("minbert push: cannot use the Hub at http://127.0.0.1:")
    assert {path.name: path.read_bytes() for path in model_dir.iterdir() if path.is_file()} == before


class _RefusingHub(BaseHTTPRequestHandler):
    """A Hub that knows the token (whoami) but refuses to create the repository (403)."""

    def do_GET(self):
        if self.path.startswith("/api/whoami"):
            self._reply(200, {"name": "someone", "type": "user"})
        else:
            self._reply(403, {"error": "Access to this resource is forbidden"})

    def do_POST(self):
        self._reply(403, {"error": "You don't have the rights to create a model under the namespace someone-else"})

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_minbert_push_refused_by_the_server_fails_in_one_line_and_keeps_the_old_card(
        model_dir, token, online, monkeypatch, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    card = (model_dir / "README.md").read_text()
    try:
        assert minbert(["push", str(model_dir), "--repo_id", "someone-else/minbert"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    line = _stderr_is_one_line(capsys.readouterr())
    assert "upload of" in line and "someone-else/minbert" in line and "403" in line
    assert (model_dir / "README.md").read_text() == card


def test_minbert_push_sends_the_regenerated_card_and_writes_it_only_after_the_upload(model_dir, hub_calls, token):
    old_card = (model_dir / "README.md").read_text()
    assert minbert(["push", str(model_dir), "--repo_id", "someone/minbert-mt"]) == 0
    sent = next(op for op in hub_calls[1][4] if op.path_in_repo == "README.md")
    assert 'model_id = "someone/minbert-mt"' in sent.path_or_fileobj.decode() != old_card
    assert (model_dir / "README.md").read_text() == sent.path_or_fileobj.decode()


def _fake_trainer(output_dir, saved, hub_strategy="every_save"):
    args = SimpleNamespace(output_dir=str(output_dir), hub_model_id="someone/from-trainer", hub_token=None,
                           hub_private_repo=False, hub_revision=None, hub_strategy=hub_strategy)
    return SimpleNamespace(args=args, save_model=lambda _internal_call: saved.append(_internal_call),
                           is_world_process_zero=lambda: True, hub_model_id="someone/from-trainer",
                           state=SimpleNamespace(global_step=10))


def test_trainer_push_saves_then_sends_the_push_set_of_its_output_dir(model_dir, hub_calls, token):
    saved = []
    hub.push_trainer_output(_fake_trainer(model_dir, saved))
    assert saved == [True]
    assert hub_calls[1][2] == "someone/from-trainer"
    assert sorted(op.path_in_repo for op in hub_calls[1][4]) == PUSHED_FILES


def test_trainer_push_without_a_token_stops_before_saving(model_dir, hub_calls, no_token):
    saved = []
    with pytest.raises(hub.MissingTokenError):
        hub.push_trainer_output(_fake_trainer(model_dir, saved))
    assert saved == [] and hub_calls == []


def test_a_checkpoint_push_sends_the_checkpoints_complete_model_without_its_optimizer(model_dir, hub_calls, token):
    (model_dir / "optimizer.pt").write_bytes(b"state")
    (model_dir / "README.md").unlink()  # checkpoints have no card
    hub.push_trainer_checkpoint(_fake_trainer(model_dir, []), model_dir)
    pushed = sorted(op.path_in_repo for op in hub_calls[1][4])
    assert pushed == sorted(set(PUSHED_FILES) - {"README.md"})
    assert hub_calls[1][3]["commit_message"] == "Training in progress, step 10"


@pytest.mark.parametrize("strategy, folder", [("checkpoint", "last-checkpoint"), ("all_checkpoints", "checkpoint-10")])
def test_a_checkpoint_strategy_also_sends_the_whole_checkpoint_to_resume_from(model_dir, hub_calls, token, strategy,
                                                                               folder):
    checkpoint = model_dir / "checkpoint-10"
    for name in hub.remote_load_files(model_dir):
        shutil.copy(model_dir / name, checkpoint / name)
    (checkpoint / "trainer_state.json").write_text("{}")
    hub.push_trainer_checkpoint(_fake_trainer(model_dir, [], hub_strategy=strategy), checkpoint)
    pushed = {op.path_in_repo: op.path_or_fileobj for op in hub_calls[1][4]}
    assert {f"{folder}/optimizer.pt", f"{folder}/trainer_state.json", f"{folder}/model.safetensors"} <= set(pushed)
    assert Path(pushed[f"{folder}/optimizer.pt"]) == checkpoint / "optimizer.pt"
    assert "model.safetensors" in pushed and "optimizer.pt" not in pushed  # the model at the top, its state beside


def _python_trained(tmp_path, minilm_path):
    from tests.helpers import tiny_task_rows
    from trainers import MultitaskTrainer, MultitaskTrainingArguments

    args = MultitaskTrainingArguments(output_dir=str(tmp_path / "from-python"), max_steps=1, eval_strategy="steps",
                                      eval_steps=1, save_strategy="no", report_to="none", use_cpu=True, max_seq_length=32,
                                      per_device_train_batch_size=8, disable_tqdm=True, hub_model_id="someone/mt")
    rows = tiny_task_rows()
    trainer = MultitaskTrainer(model=tiny_model(), args=args, train_dataset=rows, eval_dataset=rows,
                               processing_class=AutoTokenizer.from_pretrained(minilm_path))
    trainer.train()
    return trainer


def test_trainer_push_from_python_sends_minberts_card_with_the_options_given(tmp_path, minilm_path, hub_calls, token):
    trainer = _python_trained(tmp_path, minilm_path)
    trainer.push_to_hub(license="mit", tags=["my-tag"], finetuned_from="someone/base", dataset_tags="glue")
    pushed = {op.path_in_repo for op in hub_calls[1][4]}
    assert {"README.md", "metrics.json", "training_config.json"} <= pushed
    card = (tmp_path / "from-python" / "README.md").read_text()
    assert "license: mit" in card and "- my-tag" in card and "- minbert" in card and "base_model: someone/base" in card
    assert 'model_id = "someone/mt"' in card
    evaluated = trainer.state.log_history[-2]["eval_sst_accuracy"]
    assert json.loads((tmp_path / "from-python" / "metrics.json").read_text())["sst"]["accuracy"] == evaluated


@pytest.mark.parametrize("blocking", [True, False])
def test_trainer_push_without_blocking_runs_the_commit_as_a_future(model_dir, hub_calls, token, blocking):
    hub.push_trainer_output(_fake_trainer(model_dir, []), blocking=blocking)
    commit_options = hub_calls[1][3]
    assert commit_options.get("run_as_future", False) is (not blocking)


def test_a_card_an_earlier_run_left_in_the_output_folder_is_replaced_by_this_runs(tmp_path, minilm_path):
    trainer = _python_trained(tmp_path, minilm_path)
    folder = tmp_path / "from-python"
    trainer.save_model()
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\nAn earlier run's card.\n")
    (folder / "metrics.json").write_text(json.dumps({"sst": {"accuracy": 0.99}}))
    trainer.create_model_card()
    assert "An earlier run's card" not in (folder / "README.md").read_text()
    evaluated = trainer.state.log_history[-2]["eval_sst_accuracy"]
    assert json.loads((folder / "metrics.json").read_text())["sst"]["accuracy"] == evaluated


def test_the_cards_scores_are_the_evaluation_of_the_model_the_trainer_holds():
    from trainers.trainer_card import evaluation_scores

    log = [{"eval_sst_accuracy": 0.9, "step": 1}, {"loss": 1.0, "step": 2}, {"eval_sst_accuracy": 0.25, "step": 2}]
    assert evaluation_scores(log, ["sst", "custom"]) == {"sst": {"accuracy": 0.25}}  # the last, without a best
    assert evaluation_scores(log, ["sst"], step=1) == {"sst": {"accuracy": 0.9}}  # the best model's, loaded at the end


def test_the_cards_scores_are_the_loaded_checkpoints_where_the_best_evaluation_saved_none(tmp_path, minilm_path):
    trainer = _python_trained(tmp_path, minilm_path)
    scored = next(entry for entry in trainer.state.log_history if "eval_sst_accuracy" in entry)
    trainer.state.log_history += [{**scored, "eval_sst_accuracy": 0.25, "step": 4},
                                  {**scored, "eval_sst_accuracy": 0.75, "step": 5}]
    trainer.args.load_best_model_at_end = True
    trainer.state.best_global_step, trainer.state.best_model_checkpoint = 5, str(tmp_path / "out" / "checkpoint-4")
    trainer.save_model()
    trainer.create_model_card()
    assert json.loads((tmp_path / "from-python" / "metrics.json").read_text())["sst"]["accuracy"] == 0.25


def test_the_cards_scores_are_the_dev_evaluation_not_one_of_rows_passed_to_evaluate(tmp_path, minilm_path):
    from tests.helpers import tiny_task_rows

    trainer = _python_trained(tmp_path, minilm_path)
    dev = trainer.state.log_history[-2]
    trainer.evaluate(eval_dataset={"sst": tiny_task_rows(4)["sst"]})  # an evaluation of other rows, logged last
    trainer.save_model()
    trainer.create_model_card()
    scores = json.loads((tmp_path / "from-python" / "metrics.json").read_text())
    assert scores["sst"]["accuracy"] == dev["eval_sst_accuracy"] and set(scores) >= {"sst", "para", "sts"}


def test_a_card_of_a_model_not_yet_saved_is_refused_before_writing_anything(tmp_path, minilm_path):
    trainer = _python_trained(tmp_path, minilm_path)
    with pytest.raises(ValueError, match="no saved model to describe; save it first"):
        trainer.create_model_card()
    assert not (tmp_path / "from-python" / "metrics.json").exists()


def test_trainers_model_index_options_are_refused_naming_what_the_card_indexes(tmp_path, minilm_path):
    trainer = _python_trained(tmp_path, minilm_path)
    with pytest.raises(ValueError, match="^dataset_args: .*dev scores"):
        trainer.create_model_card(dataset_args="qqp")


# --- the download path, for real --------------------------------------------------------------------------


def _olah_cli():
    candidates = [os.environ.get("MINBERT_OLAH_CLI"), str(REPO_ROOT / ".olah-venv" / "bin" / "olah-cli"),
                  shutil.which("olah-cli")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def _mirror(model_dir, root, repo_id):
    """olah's offline mirror of `repo_id`: a git repository holding exactly the files a push sends."""
    repo = root / "mirrors" / "models" / repo_id
    repo.mkdir(parents=True)
    for name in hub.files_to_push(model_dir):
        shutil.copy(model_dir / name, repo / name)
    git = ["git", "-c", "user.name=minbert", "-c", "user.email=minbert@localhost", "-C", str(repo)]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "minbert model"]):
        subprocess.run(git + command, check=True, capture_output=True)


def _start_olah(cli, root, port):
    (root / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{root / "repos"}"\n'
        f'mirrors-path = ["{root / "mirrors"}"]\nhf-scheme = "http"\nhf-netloc = "127.0.0.1:9"\n'
        f'hf-lfs-netloc = "127.0.0.1:9"\n\n[accessibility]\noffline = true\n'
    )
    log = open(root / "olah.log", "wb")
    server = subprocess.Popen(["timeout", str(OLAH_SECONDS), cli, "-c", str(root / "olah.toml")], cwd=root,
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"olah exited with {server.returncode}: {(root / 'olah.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.3)
    _stop(server)
    raise RuntimeError("olah did not listen within 60 s")


def _stop(server):
    server.terminate()  # `timeout` passes the signal on to olah
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_a_repo_of_exactly_the_pushed_files_serves_the_model_and_every_pipeline(model_dir, tmp_path, monkeypatch):
    cli = _olah_cli()
    if cli is None:
        pytest.skip("olah is not installed (.ci/run installs it into .olah-venv; MINBERT_OLAH_CLI names another)")
    repo_id, root, cache = "minbert-test/tiny-multitask", tmp_path / "olah", tmp_path / "hub-cache"
    _mirror(model_dir, root, repo_id)
    model, tokenizer = MinBertForMultitask.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    expected = {task: pipeline(task, model=model, tokenizer=tokenizer)(PAIR if task != "text-classification" else PAIR[0])
                for task in PIPELINE_TASKS}  # in-process, from hf_minbert
    port = free_port()
    server = _start_olah(cli, root, port)
    try:
        script = (f"import huggingface_hub, os; path = huggingface_hub.snapshot_download({repo_id!r}); "
                  "print(sorted(os.listdir(path)))")
        download = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{port}",
                 "HF_HUB_CACHE": str(cache), "HF_TOKEN": ""},
            capture_output=True, text=True, timeout=120,
        )
    finally:
        _stop(server)
    assert download.returncode == 0, download.stderr[-3000:]
    assert download.stdout.strip() == str(hub.files_to_push(model_dir))

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    out = run_isolated(
        f"""
        import json
        from transformers import AutoModel, pipeline
        model = AutoModel.from_pretrained({repo_id!r}, trust_remote_code=True)
        print(type(model).__name__)
        answers = {{task: pipeline(task, model={repo_id!r}, trust_remote_code=True)(
                       {PAIR!r} if task != "text-classification" else {PAIR[0]!r}) for task in {PIPELINE_TASKS!r}}}
        print(json.dumps(answers))
        """,
        cwd=tmp_path,
    )
    model_class, answers = out.strip().splitlines()
    assert model_class == "MinBertForMultitask"
    assert _same(json.loads(answers), expected)


def _same(x, y, tol=1e-6):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k], tol) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_same(a, b, tol) for a, b in zip(x, y))
    if isinstance(x, float):
        return abs(x - y) <= tol
    return x == y
