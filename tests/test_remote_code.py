"""Saved minBERT folders load as remote code where hf_minbert is not installed."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoTokenizer

from hf_minbert import MinBertForMultitask, MinBertForSequenceClassification
from tests.helpers import REPO_ROOT, oldest_python, random_batch, run_isolated, tiny_model


def _save_with_tokenizer(model, path, minilm_path):
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)


def test_save_writes_safetensors_auto_map_and_both_code_files(tmp_path, tiny_config):
    MinBertForMultitask(tiny_config).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_minbert.MinBertConfig",
        "AutoModel": "modeling_minbert.MinBertForMultitask",
        "AutoModelForSequenceClassification": "modeling_minbert.MinBertForMultitask",
    }
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model.safetensors", "modeling_minbert.py", "configuration_minbert.py"} <= names
    assert not any(n.endswith(".bin") for n in names)


def test_multitask_checkpoint_opened_as_sequence_classification_keeps_its_heads(tmp_path, tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    model.save_pretrained(tmp_path)
    reopened = MinBertForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(reopened, MinBertForMultitask)
    batch = random_batch(tiny_config)
    torch.testing.assert_close(reopened(**batch).logits, model(**batch).logits)


@pytest.mark.slow
def test_auto_model_converts_a_saved_model_to_cerbertus_as_remote_code(tmp_path, minilm_path):
    # The remote config and the remote modeling code are two copies of MinBertConfig: an isinstance check between
    # them fails, and the conversion must not depend on one.
    model = tiny_model().eval()
    _save_with_tokenizer(model, tmp_path, minilm_path)
    batch = random_batch(model.config)
    torch.save(batch, tmp_path / "batch.pt")
    out = run_isolated(
        f"""
        import json, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True, task_specific_layers=1).eval()
        with torch.no_grad():
            logits = model(**torch.load({str(tmp_path / 'batch.pt')!r}), task="sst").logits
        print(model.config.architecture, json.dumps(logits.tolist()))
        """,
        cwd=tmp_path,
    )
    architecture, logits = out.splitlines()[-1].split(" ", 1)
    assert architecture == "cerbertus"
    with torch.no_grad():  # each task's layers start as copies: the converted model computes what the saved one did
        torch.testing.assert_close(torch.tensor(json.loads(logits)), model(**batch, task="sst").logits, rtol=0, atol=1e-5)


# --- the oldest transformers pyproject.toml declares ---------------------------------------------------------------

# transformers 4.x has neither module; the saved code must fall back to what 4.x has. transformers' own
# modules are imported first (they use them), then the two are made unimportable for the saved code.
HIDE_TRANSFORMERS_5_MODULES = """
import importlib.abc, sys
import transformers, transformers.modeling_utils, transformers.pipelines
HIDDEN = ("transformers.initialization", "transformers.modeling_layers")
class _Hide5x(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in HIDDEN:
            raise ImportError(f"{name} is a transformers 5 module")
for name in HIDDEN:
    sys.modules.pop(name, None)
    transformers.__dict__.pop(name.split(".")[1], None)
sys.meta_path.insert(0, _Hide5x())
try:
    from transformers import initialization
except ImportError:
    pass
else:
    raise SystemExit("transformers.initialization still importable: the test would prove nothing")
"""


def _declared_transformers_floor():
    import tomllib  # Python 3.11+, as this project's CI

    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["hf_minbert"]["remote-code-min-transformers"]


@pytest.mark.slow
def test_saved_code_loads_and_answers_the_same_without_transformers_5_only_modules(tmp_path, minilm_path):
    model = tiny_model().eval()
    _save_with_tokenizer(model, tmp_path, minilm_path)
    batch = random_batch(model.config)
    torch.save(batch, tmp_path / "batch.pt")
    with torch.no_grad():
        torch.save({task: model(**batch, task=task).logits for task in model.config.tasks}, tmp_path / "expected.pt")
    out = run_isolated(
        HIDE_TRANSFORMERS_5_MODULES + textwrap.dedent(f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        batch, expected = torch.load({str(tmp_path / 'batch.pt')!r}), torch.load({str(tmp_path / 'expected.pt')!r})
        with torch.no_grad():
            for task, logits in expected.items():
                torch.testing.assert_close(model(**batch, task=task).logits, logits, rtol=0, atol=1e-6)
        print("identical", sorted(expected))
        """),
        cwd=tmp_path,
    )
    assert "identical ['para', 'sst', 'sts']" in out


def test_answers_within_tolerance_agree_and_the_first_difference_is_named():
    from tests.fixtures.behaviour import TOLERANCE, first_difference

    reference = {"logits": [[0.5, -1.0]], "pipeline": [{"label": "positive", "score": 0.25}]}
    close = {"logits": [[0.5 + TOLERANCE / 2, -1.0]], "pipeline": [{"label": "positive", "score": 0.25}]}
    assert first_difference(reference, close) is None
    assert first_difference(reference, {**close, "logits": [[0.5 + 2 * TOLERANCE, -1.0]]}) == (
        "/logits[0][0]: 0.5 != 0.50002")
    assert first_difference(reference, {**close, "pipeline": [{"label": "negative", "score": 0.25}]}) == (
        "/pipeline[0]/label: 'positive' != 'negative'")


# Fresh heads on a checkpoint without them, built by the saved code alone on the oldest transformers: its
# PreTrainedModel._init_weights initializes nothing, so the saved code must (BERT's normal(0, 0.02)).
FRESH_HEADS_ON_OLDEST = """
import shutil, sys, torch
from pathlib import Path
package = Path(sys.argv[1]) / "saved_code"
package.mkdir()
(package / "__init__.py").write_text("")
for pattern in ("configuration_minbert*.py", "modeling_minbert*.py", "pipelines*.py"):
    for path in Path(sys.argv[2]).glob(pattern):
        shutil.copy(path, package / path.name)
sys.path.insert(0, sys.argv[1])
from saved_code.configuration_minbert import MinBertConfig
from saved_code.modeling_minbert import MinBertForMultitask, MinBertModel
config = MinBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, max_position_embeddings=64)
MinBertModel(config).save_pretrained(Path(sys.argv[1]) / "base")
model = MinBertForMultitask.from_pretrained(Path(sys.argv[1]) / "base")
for name, weight in model.named_parameters():
    if name.startswith("heads.") and weight.dim() == 2:
        print(name, float(weight.std()), bool(torch.isfinite(weight).all()))
"""


@pytest.mark.slow
def test_fresh_heads_are_initialized_by_the_saved_code_on_the_oldest_transformers(tmp_path):
    proc = subprocess.run([oldest_python(), "-c", FRESH_HEADS_ON_OLDEST, str(tmp_path), str(REPO_ROOT / "hf_minbert")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    heads = [line.split() for line in proc.stdout.splitlines() if line.startswith("heads.")]
    assert heads and all(finite == "True" and 0.01 < float(std) < 0.03 for _, std, finite in heads), proc.stdout



PAIR_TASKS = ("paraphrase-detection", "sentence-similarity", "minbert-multitask")


@pytest.mark.slow
@pytest.mark.parametrize("version", ["current", "oldest"])
def test_a_model_object_loaded_as_remote_code_has_the_pipeline_tasks(version, tmp_path, minilm_path):
    # Loading a model object imports none of the folder's pipelines.py: building the model registers the tasks.
    from transformers import pipeline

    from tests.fixtures.behaviour import first_difference

    python = sys.executable if version == "current" else oldest_python()
    model = tiny_model().eval()
    _save_with_tokenizer(model, tmp_path, minilm_path)
    out = run_isolated(
        f"""
        import json
        from transformers import AutoModel, AutoTokenizer, pipeline
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        for task in {PAIR_TASKS!r}:
            pipe = pipeline(task, model=model, tokenizer=tokenizer)
            print("ANSWER", task, type(pipe).__module__.split(".")[0], json.dumps(pipe(("a fine film", "a good film"))))
        """,
        cwd=tmp_path, python=python,
    )
    remote = {task: (module, json.loads(answer)) for _, task, module, answer in
              (line.split(" ", 3) for line in out.splitlines() if line.startswith("ANSWER "))}
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    for task in PAIR_TASKS:
        expected = json.loads(json.dumps(pipeline(task, model=model, tokenizer=tokenizer)(("a fine film", "a good film"))))
        assert remote[task][0] == "transformers_modules", remote[task]
        assert first_difference(expected, remote[task][1], task) is None


GRADIENT_CHECKPOINTING = """
import torch
from transformers import AutoModel
model = AutoModel.from_pretrained({folder!r}, trust_remote_code=True).train()
batch = torch.load({batch!r})
calls = []
for module in model.modules():
    if type(module).__name__ == "MinBertLayer":  # counted inside: a recomputation may call forward directly
        module.attention.register_forward_pre_hook(lambda *args: calls.append(1))

def step():
    model.zero_grad()
    calls.clear()
    model(**batch, task="sst").logits.sum().backward()
    return {{name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}}, len(calls)

plain, plain_calls = step()
model.gradient_checkpointing_enable()
checkpointed, checkpointed_calls = step()
assert plain.keys() == checkpointed.keys()
print("CALLS", plain_calls, checkpointed_calls, max(float((plain[k] - checkpointed[k]).abs().max()) for k in plain))
"""


@pytest.mark.slow
@pytest.mark.parametrize("version", ["current", "oldest"])
def test_gradient_checkpointing_of_the_saved_code_recomputes_layers_for_the_same_gradients(version, tmp_path, minilm_path):
    python = sys.executable if version == "current" else oldest_python()
    model = tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    _save_with_tokenizer(model, tmp_path, minilm_path)
    torch.save(random_batch(model.config), tmp_path / "batch.pt")
    out = run_isolated(GRADIENT_CHECKPOINTING.format(folder=str(tmp_path), batch=str(tmp_path / "batch.pt")),
                       cwd=tmp_path, python=python)
    plain_calls, checkpointed_calls, difference = next(
        line.split()[1:] for line in out.splitlines() if line.startswith("CALLS "))
    assert int(checkpointed_calls) == 2 * int(plain_calls) > 0  # each layer run again in backward
    assert float(difference) < 1e-6
