"""`minbert space` (and `minbert push --space_repo_id`): a self-contained Gradio Space that serves a pushed model
repository by name, uploaded under the same rules as a model push; and, for real, that Space's app serving a
model downloaded through a Hub-compatible server (olah) where hf_minbert cannot be imported."""
import ast
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import SpaceCard
from transformers import pipeline

from hf_minbert import space
from hf_minbert.cli import main as minbert
from tests.helpers import BLOCK_PROJECT_IMPORTS, free_port
from tests.test_hub import _mirror, _olah_cli, _start_olah, _stop
from tests.test_serve import PAIR, SENTENCE, _start_server, _stop_server, save_demo_model

REPO_ID = "someone/minbert-mt"
SPACE_FILES = ["README.md", "app.py", "demo_app.py", "requirements.txt"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, minilm_path):
    return save_demo_model(tmp_path_factory.mktemp("models") / "run", minilm_path)


@pytest.fixture
def space_dir(tmp_path, model_dir):
    folder = tmp_path / "space"
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID, "--output_dir", str(folder)]) == 0
    return folder


def _imported_modules(source):
    """Top-level names of every module a Python file imports (relative imports have none)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _required_names(requirements_txt):
    return {line.split(">=")[0].split("==")[0].strip() for line in requirements_txt.splitlines() if line.strip()}


# --- the folder ---------------------------------------------------------------------------------------------


def test_output_dir_writes_the_spaces_four_files(space_dir):
    assert sorted(path.name for path in space_dir.iterdir()) == SPACE_FILES


def test_output_dir_replaces_an_earlier_spaces_files(space_dir, model_dir):
    assert minbert(["space", str(model_dir), "--repo_id", "someone/other", "--output_dir", str(space_dir)]) == 0
    assert "someone/other" in (space_dir / "README.md").read_text()


@pytest.mark.parametrize("existing", ["model", "readme"])
def test_output_dir_holding_a_model_or_another_readme_is_refused_and_left_as_it_was(existing, tmp_path, model_dir,
                                                                                   capsys):
    folder = tmp_path / "taken"
    folder.mkdir()
    if existing == "model":
        (folder / "config.json").write_text("{}")
    (folder / "README.md").write_text("# my project\n")
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID, "--output_dir", str(folder)]) == 2
    assert capsys.readouterr().err.startswith(f"minbert space: --output_dir {folder}")
    assert (folder / "README.md").read_text() == "# my project\n" and not (folder / "app.py").exists()


def test_the_space_imports_only_its_requirements_the_standard_library_and_its_own_files(space_dir):
    own = {path.stem for path in space_dir.glob("*.py")}
    allowed = _required_names((space_dir / "requirements.txt").read_text()) | set(sys.stdlib_module_names) | own
    for path in space_dir.glob("*.py"):
        imported = _imported_modules(path.read_text())
        assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}, not in requirements.txt"
    assert "hf_minbert" not in _imported_modules((space_dir / "demo_app.py").read_text())


def test_every_requirement_is_imported_by_the_space(space_dir):
    imported = set().union(*(_imported_modules(path.read_text()) for path in space_dir.glob("*.py")))
    assert _required_names((space_dir / "requirements.txt").read_text()) <= imported


def test_the_spaces_demo_is_the_one_minbert_serve_runs(space_dir):
    assert (space_dir / "demo_app.py").read_text() == (Path(space.__file__).with_name("demo_app.py")).read_text()


def test_app_py_serves_the_model_repository_by_name(space_dir):
    app = (space_dir / "app.py").read_text()
    assert f'MODEL_REPO_ID = "{REPO_ID}"' in app and "launch(build_demo(MODEL_REPO_ID))" in app


def test_the_readme_front_matter_makes_it_a_gradio_space_of_the_model(space_dir):
    data = SpaceCard.load(space_dir / "README.md").data
    assert (data.sdk, data.app_file, data.models) == ("gradio", "app.py", [REPO_ID])


def test_writing_a_space_needs_no_token_and_uploads_nothing(model_dir, tmp_path, hub_calls, no_token):
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID, "--output_dir", str(tmp_path / "s")]) == 0
    assert hub_calls == []


def test_a_folder_that_a_remote_load_cannot_use_is_refused_naming_the_missing_file(model_dir, tmp_path, capsys):
    (tmp_path / "config.json").write_text((model_dir / "config.json").read_text())
    assert minbert(["space", str(tmp_path), "--repo_id", REPO_ID, "--output_dir", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.startswith(f"minbert space: {tmp_path}: ")
    assert not (tmp_path / "s").exists()


def test_a_malformed_model_repo_id_is_refused_in_one_line(model_dir, tmp_path, capsys):
    assert minbert(["space", str(model_dir), "--repo_id", "a/b/c", "--output_dir", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("upload", [False, True], ids=["written", "uploaded"])
def test_a_model_repo_id_without_its_namespace_is_refused_as_the_space_could_not_load_it(model_dir, tmp_path, capsys,
                                                                                        hub_calls, token, upload):
    where = [] if upload else ["--output_dir", str(tmp_path / "s")]
    assert minbert(["space", str(model_dir), "--repo_id", "minbert-mt", *where]) == 2
    assert "a Space loads the model by its full id: give it as user/name" in capsys.readouterr().err
    assert hub_calls == [] and not (tmp_path / "s").exists()


# --- uploading ----------------------------------------------------------------------------------------------


def test_space_creates_a_gradio_space_and_commits_its_files(model_dir, hub_calls, token, capsys):
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID]) == 0
    (_, _, repo_id, repo_kwargs), (_, _, commit_repo, commit_kwargs, operations) = hub_calls
    assert repo_id == commit_repo == f"{REPO_ID}-demo"
    assert (repo_kwargs["repo_type"], repo_kwargs["space_sdk"]) == ("space", "gradio")
    assert commit_kwargs["repo_type"] == "space"
    assert sorted(op.path_in_repo for op in operations) == SPACE_FILES
    assert f"uploaded the Space {REPO_ID}-demo, serving {REPO_ID}" in capsys.readouterr().out


def test_space_repo_id_names_the_space(model_dir, hub_calls, token):
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID, "--space_repo_id", "someone/try-it"]) == 0
    assert {call[2] for call in hub_calls} == {"someone/try-it"}


def test_space_without_a_token_says_so_before_any_work(model_dir, hub_calls, no_token, capsys):
    assert minbert(["space", str(model_dir / "not-even-a-folder"), "--repo_id", REPO_ID]) == 2
    assert capsys.readouterr().err.startswith("minbert space: no Hugging Face token")
    assert hub_calls == []


def test_space_refuses_an_endpoint_that_is_not_a_url_before_any_work(model_dir, hub_calls, token, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "huggingface.co")
    assert minbert(["space", str(model_dir / "not-even-a-folder"), "--repo_id", REPO_ID]) == 2
    assert capsys.readouterr().err == ("minbert space: HF_ENDPOINT='huggingface.co' is not an http(s) URL such as "
                                       "https://huggingface.co\n")
    assert hub_calls == []


def test_space_goes_to_HF_ENDPOINT(model_dir, hub_calls, token, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID]) == 0
    assert {call[1] for call in hub_calls} == {"http://127.0.0.1:9"}


def test_space_to_an_unreachable_endpoint_fails_in_one_line(model_dir, token, online, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID]) == 1
    error = capsys.readouterr().err
    assert error.startswith("minbert space: cannot use the Hub at http://127.0.0.1:") and error.count("\n") == 1


def test_a_refused_space_upload_fails_in_one_line(model_dir, hub_calls, token, monkeypatch, capsys):
    def refuse(self, repo_id, **kwargs):
        raise RuntimeError("403 Forbidden: you cannot create Spaces\nmore detail")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", refuse)
    assert minbert(["space", str(model_dir), "--repo_id", REPO_ID]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"minbert space: upload of the Space {REPO_ID}-demo on ")
    assert error.endswith(" failed: RuntimeError: 403 Forbidden: you cannot create Spaces\n")


def test_push_with_space_repo_id_pushes_the_model_then_its_space(model_dir, hub_calls, token):
    assert minbert(["push", str(model_dir), "--repo_id", REPO_ID, "--space_repo_id", "someone/try-it"]) == 0
    assert [(call[0], call[2]) for call in hub_calls] == [
        ("create_repo", REPO_ID), ("create_commit", REPO_ID), ("create_repo", "someone/try-it"),
        ("create_commit", "someone/try-it")]
    assert hub_calls[2][3]["repo_type"] == "space"


def test_push_with_a_malformed_space_repo_id_fails_before_the_model_goes_up(model_dir, hub_calls, token, capsys):
    assert minbert(["push", str(model_dir), "--repo_id", REPO_ID, "--space_repo_id", "a/b/c"]) == 2
    assert capsys.readouterr().err.startswith("minbert push: Repo id must be in the form")
    assert hub_calls == []


# --- for real: the Space's app, where hf_minbert cannot be imported, over a repo downloaded from a Hub server --


@pytest.mark.slow
def test_the_space_serves_the_repository_downloaded_from_a_hub_server_without_hf_minbert(model_dir, space_dir,
                                                                                         tmp_path):
    cli = _olah_cli()
    if cli is None:
        pytest.skip("olah is not installed (.ci/run installs it into .olah-venv; MINBERT_OLAH_CLI names another)")
    gradio_client = pytest.importorskip("gradio_client", reason="gradio is not installed (pip install -e '.[dev]')")
    root, cache = tmp_path / "olah", tmp_path / "hub-cache"
    _mirror(model_dir, root, REPO_ID)
    port = free_port()
    server = _start_olah(cli, root, port)
    try:
        download = subprocess.run(
            [sys.executable, "-c", f"import huggingface_hub; huggingface_hub.snapshot_download({REPO_ID!r})"],
            env={**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{port}",
                 "HF_HUB_CACHE": str(cache), "HF_TOKEN": ""},
            capture_output=True, text=True, timeout=120,
        )
    finally:
        _stop(server)
    assert download.returncode == 0, download.stderr[-3000:]

    load = {"model": str(model_dir), "trust_remote_code": True}
    expected_paraphrase = pipeline("paraphrase-detection", **load)(PAIR)
    expected_sentiment = pipeline("text-classification", **load)(SENTENCE, top_k=None)
    run_app = BLOCK_PROJECT_IMPORTS + "import runpy\nrunpy.run_path('app.py', run_name='__main__')\n"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_MODULES_CACHE": str(tmp_path / "mods"),
           "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "PYTHONPATH": ""}
    app = _start_server([sys.executable, "-c", run_app], port, tmp_path / "space.log", cwd=space_dir, env=env)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        paraphrase = client.predict(*PAIR, api_name="/paraphrase")
        sentiment = client.predict(SENTENCE, api_name="/sentiment")
        page_config = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30).read().decode()
    finally:
        returncode = _stop_server(app)
    assert returncode == 0, (tmp_path / "space.log").read_text()[-3000:]
    assert paraphrase["label"] == expected_paraphrase["label"]
    shown = {item["label"]: item["confidence"] for item in paraphrase["confidences"]}
    assert shown[expected_paraphrase["label"]] == pytest.approx(expected_paraphrase["score"], abs=1e-6)
    assert {item["label"]: item["confidence"] for item in sentiment["confidences"]} == pytest.approx(
        {answer["label"]: answer["score"] for answer in expected_sentiment}, abs=1e-6)
    assert "| sst | accuracy | 0.410 |" in page_config  # the dev metrics, read from the repository's metrics.json


def _masked_lm_folder(folder, minilm_path):
    from transformers import AutoTokenizer

    from hf_minbert import MinBertConfig, MinBertForMaskedLM

    MinBertForMaskedLM(MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return folder


def test_a_space_of_a_model_without_the_minbert_pipelines_is_refused_as_its_app_would_fail(tmp_path, minilm_path,
                                                                                           capsys):
    folder = _masked_lm_folder(tmp_path / "mlm", minilm_path)
    capsys.readouterr()
    assert minbert(["space", str(folder), "--repo_id", REPO_ID, "--output_dir", str(tmp_path / "s")]) == 2
    assert "no custom_pipelines, so this is not a multitask minBERT model" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_push_with_a_space_of_a_model_without_the_minbert_pipelines_sends_nothing(tmp_path, minilm_path, hub_calls,
                                                                                   token, capsys):
    folder = _masked_lm_folder(tmp_path / "mlm", minilm_path)
    assert minbert(["push", str(folder), "--repo_id", REPO_ID, "--space_repo_id", f"{REPO_ID}-demo"]) == 2
    assert "no custom_pipelines" in capsys.readouterr().err and hub_calls == []
