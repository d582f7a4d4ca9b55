"""The remote-code contract, once for every model class the package saves: a folder saved by today's code loads
where hf_minbert cannot be imported, through the Auto class a Hub user calls with trust_remote_code=True, as the
folder's own code, and answers as the model that saved it (tests/fixtures/behaviour.py computes the answers on
both sides). It holds on the transformers the project runs on and on the oldest that pyproject.toml declares for
remote code."""
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from hf_minbert import MinBertConfig, MinBertForMaskedLM, MinBertForSequenceClassification, MinBertModel
from hf_minbert.modeling_minbert_ensemble import MinBertEnsembleForMultitask
from tests.fixtures import behaviour
from tests.fixtures.make_behaviour_fixture import OTHER_TASKS, VOCAB, tiny_model
from tests.helpers import REPO_ROOT, in_process_pipelines, isolated_answers, oldest_python

pytestmark = pytest.mark.slow  # one fresh interpreter per transformers version

TOKENIZER = Path(__file__).resolve().parent / "fixtures" / "behaviour" / "multitask"  # the VOCAB WordPiece


def _ensemble():
    members = [tiny_model(10), tiny_model(11, tasks=OTHER_TASKS, task_specific_layers=1)]
    weights = {"sst": [0.5, 0.5], "para": [0.25, 0.75], "sts": [0.6, 0.4], "dup": [1.0, 0.0]}
    return MinBertEnsembleForMultitask.from_members(members, weights)


def _one_head(model_class, seed, **config):
    torch.manual_seed(seed)
    return model_class(MinBertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=32, **config))


def _trained_masked_lm():
    """A masked-LM model as training leaves it: an output bias that is not the fresh head's zeros."""
    model = _one_head(MinBertForMaskedLM, 5)
    with torch.no_grad():
        model.cls.predictions.bias.normal_(0, 2)
    return model


# name: (the model, the Auto class a user loads it with, whether it has the multitask heads and pipelines, and
# for a one-head model the stock pipelines built from its folder)
MODELS = {
    "multitask": (lambda: tiny_model(0), "AutoModel", True, ()),
    "cerbertus": (lambda: tiny_model(1, task_specific_layers=1), "AutoModel", True, ()),
    "triple": (lambda: tiny_model(2, task_specific_layers=2, task_specific_embeddings=True), "AutoModel", True, ()),
    "cerbertus_static": (lambda: tiny_model(3, task_specific_layers=1, static_encoder=True), "AutoModel", True, ()),
    "ensemble": (_ensemble, "AutoModel", True, ()),
    "sequence_classification": (lambda: _one_head(MinBertForSequenceClassification, 4, num_labels=3),
                                "AutoModelForSequenceClassification", False, ("text-classification", "feature-extraction")),
    "masked_lm": (_trained_masked_lm, "AutoModelForMaskedLM", False, ("fill-mask", "feature-extraction")),
    "encoder": (lambda: _one_head(MinBertModel, 6), "AutoModel", False, ("feature-extraction",)),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every model saved with the fixture tokenizer, and what it answered in this process before saving."""
    root = tmp_path_factory.mktemp("contract")
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    folders, expected = {}, {}
    for name, (build, auto_class, multitask, stock_tasks) in MODELS.items():
        model = build().eval()
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        make = in_process_pipelines(model, tokenizer) if multitask else None
        expected[name] = behaviour.round_trip(behaviour.contract_answers(model, tokenizer, make))
        if not multitask:  # as where hf_minbert is installed: each Auto class its own head over the encoder
            expected[name]["auto_classes"] = behaviour.auto_class_answers(root / name)
            expected[name]["stock_pipelines"] = behaviour.round_trip(behaviour.stock_folder_answers(root / name, stock_tasks))
        folders[name] = (str(root / name), auto_class, multitask, stock_tasks)
    return root, folders, expected


@pytest.fixture(scope="module", params=["current", "oldest"])
def remote(request, saved, tmp_path_factory):
    """What each folder answers as remote code in a fresh interpreter (this one's transformers, or the oldest)."""
    python = sys.executable if request.param == "current" else oldest_python()
    root, folders, _ = saved
    script = behaviour.remote_answers_script(folders, tmp_path_factory.mktemp("modules"), REPO_ROOT)
    return isolated_answers(python, script, cwd=root)


@pytest.mark.parametrize("name", MODELS)
def test_a_saved_folder_loads_as_its_own_code_where_hf_minbert_is_not_installed(name, remote):
    # The model, the classifier and every pipeline come from the folder's code files (transformers' dynamic
    # modules), not from a class transformers has built in.
    modules = remote[name]["modules"]
    assert modules and all(module.startswith("transformers_modules.") for module in modules), modules


@pytest.mark.parametrize("name", MODELS)
def test_a_saved_folder_answers_as_the_model_that_saved_it(name, saved, remote):
    difference = behaviour.first_difference(saved[2][name], remote[name]["answers"], name)
    assert difference is None, difference
