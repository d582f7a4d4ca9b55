"""Folders saved by earlier code answer the same today: every task's forward and every pipeline, in-process
and as remote code where hf_minbert is not installed (tests/fixtures/make_behaviour_fixture.py recorded them)."""
import json
import shutil
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer, pipeline
from transformers.dynamic_module_utils import get_relative_import_files, get_relative_imports

from hf_minbert import MinBertForMultitask
from hf_minbert.ensemble import load_multitask_model
from tests.fixtures import behaviour
from tests.helpers import REPO_ROOT, in_process_pipelines, isolated_answers, oldest_python

PACKAGE = REPO_ROOT / "hf_minbert"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "behaviour"
NAMES = sorted(path.stem for path in FIXTURES.glob("*.json"))
SINGLE_MODELS = [name for name in NAMES if name != "ensemble"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Every fixture folder materialized (its weights drawn from its manifest) in a temporary directory."""
    root = tmp_path_factory.mktemp("behaviour")
    return {name: behaviour.materialize(FIXTURES / name, root / name) for name in NAMES}


def _recorded(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _recorded_config(name):
    return json.loads((FIXTURES / name / "config.json").read_text())


def _assert_same(expected, actual, where):
    difference = behaviour.first_difference(expected, behaviour.round_trip(actual), where)
    assert difference is None, difference


def _named_modules(config):
    """The modules config.json names (auto_map, custom_pipelines): those transformers loads from the folder."""
    references = [*config["auto_map"].values(), *(entry["impl"] for entry in config["custom_pipelines"].values())]
    return sorted({reference.split(".")[0] for reference in references})


def _code_files(config):
    """The code a folder with this config.json needs: the modules it names and what they import relatively."""
    files = set()
    for module in _named_modules(config):
        source = PACKAGE / f"{module}.py"
        files |= {source, *map(Path, get_relative_import_files(str(source)))}
    return files


def test_the_fixture_has_every_architecture_and_an_ensemble():
    assert set(NAMES) == {"multitask", "cerbertus", "cerbertus_all_layers", "static", "cerbertus_static",
                          "triple_static", "ensemble"}
    assert all((FIXTURES / name / behaviour.WEIGHTS_MANIFEST).is_file() for name in NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_saved_folder_answers_as_recorded_in_process(name, folders):
    folder, recorded = folders[name], _recorded(name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = load_multitask_model(folder).eval()
    auto = AutoModel.from_pretrained(folder).eval()
    assert type(auto) is type(model) and type(model).__module__.startswith("hf_minbert")
    _assert_same(recorded["forward"], behaviour.forward_answers(model, tokenizer), f"{name}/forward")
    _assert_same(recorded["forward"], behaviour.forward_answers(auto, tokenizer), f"{name}/AutoModel")
    make = in_process_pipelines(model, tokenizer)
    _assert_same(recorded["pipelines"], behaviour.pipeline_answers(make), f"{name}/pipelines")
    _assert_same(recorded["stock-text-classification"], behaviour.stock_answers(model, tokenizer), f"{name}/stock")
    classes = {task: type(make(task)).__name__ for task in ("paraphrase-detection", "sentence-similarity",
                                                            "minbert-multitask")}
    assert classes == {task: recorded["pipeline_classes"][task] for task in classes}


@pytest.mark.slow
@pytest.mark.parametrize("name", SINGLE_MODELS)
@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_attention_honours_the_configured_implementation(name, implementation, monkeypatch, folders):
    folder = folders[name]
    model = MinBertForMultitask.from_pretrained(folder, attn_implementation=implementation).eval()
    assert model.config._attn_implementation == implementation
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *args, **kwargs: calls.append(1) or sdpa(*args, **kwargs))
    answers = behaviour.forward_answers(model, AutoTokenizer.from_pretrained(folder))
    _assert_same(_recorded(name)["forward"], answers, f"{name}/{implementation}")
    # The explicit product only where asked for (eager) or where SDPA cannot serve (output_attentions).
    assert bool(calls) == (implementation == "sdpa")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_saving_again_writes_every_code_file_the_folder_needs(name, tmp_path, folders):
    load_multitask_model(folders[name]).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == _recorded_config(name)["auto_map"]
    # Folders recorded before minBERT had its own feature-extraction pipeline gain it when saved again.
    assert config["custom_pipelines"] == {**_recorded_config(name)["custom_pipelines"], "feature-extraction": {
        "impl": "pipelines.MinBertFeatureExtractionPipeline", "pt": ["AutoModel"], "type": "text"}}
    assert {path.name for path in tmp_path.glob("*.py")} == {path.name for path in _code_files(config)}


@pytest.mark.parametrize("name", NAMES)
def test_each_module_a_folder_names_imports_every_file_it_needs_itself(name):
    # Loading a local folder's remote code, transformers 4.x copies only the loaded module's own relative imports
    # out of the folder, not what those import in turn: a file imported two levels down would be missing.
    for module in _named_modules(_recorded_config(name)):
        source = str(PACKAGE / f"{module}.py")
        needed = {Path(path).stem for path in get_relative_import_files(source)}
        assert needed <= set(get_relative_imports(source)), (module, needed - set(get_relative_imports(source)))


EARLIER_PIPELINES = Path(__file__).resolve().parent / "fixtures" / "earlier_pipelines.py"


@pytest.mark.slow
@pytest.mark.parametrize("name", SINGLE_MODELS)
def test_a_folder_keeping_an_earlier_versions_pipelines_module_answers_as_recorded(name, tmp_path):
    # transformers builds a folder's pipelines from the module saved in it, and with hf_minbert imported, the
    # model from today's class: the earlier module's calls must find what they call.
    folder = behaviour.materialize(FIXTURES / name, tmp_path / name)
    for source in _code_files(_recorded_config(name)):
        shutil.copy(source, folder / source.name)
    shutil.copy(EARLIER_PIPELINES, folder / "pipelines.py")
    make = partial(pipeline, model=str(folder), trust_remote_code=True)
    assert type(make("sentence-similarity").model) is MinBertForMultitask
    _assert_same(_recorded(name)["pipelines"], behaviour.pipeline_answers(make), f"{name}/earlier pipelines.py")


def _remote_script(tmp_path):
    """The isolated script's source, over a copy of each folder as a user has it after the code moved on: its
    config and weights, and the current code files its config.json names (the fixture keeps no code of its own)."""
    folders = {}
    for name in NAMES:
        folder = behaviour.materialize(FIXTURES / name, tmp_path / name)
        for source in _code_files(_recorded_config(name)):
            shutil.copy(source, folder / source.name)
        folders[name] = (str(folder), "AutoModel", True, ())
    return behaviour.remote_answers_script(folders, tmp_path / "modules", REPO_ROOT)


@pytest.fixture(scope="module", params=["current", "oldest"])
def remote(request, tmp_path_factory):
    """What every fixture folder answers as remote code in a fresh interpreter (this one's transformers, or the
    oldest the project declares)."""
    python = sys.executable if request.param == "current" else oldest_python()
    root = tmp_path_factory.mktemp("remote")
    return isolated_answers(python, _remote_script(root), cwd=root)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_saved_folder_answers_as_recorded_as_remote_code(name, remote):
    recorded, answers = _recorded(name), remote[name]["answers"]
    _assert_same(recorded, {key: answers[key] for key in recorded}, f"{name}/remote")
    assert all(module.startswith("transformers_modules.") for module in remote[name]["modules"]), remote[name]["modules"]
