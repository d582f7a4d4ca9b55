"""Saved minBERT folders load as remote code where hf_minbert is not installed."""
import json

import torch
from transformers import AutoTokenizer

from hf_minbert import MinBertForMultitask, MinBertForSequenceClassification
from tests.helpers import random_batch, run_isolated


def _save_with_tokenizer(model, path, minilm_path):
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)


def _tiny_vocab_config(tiny_config):
    tiny_config.vocab_size = 30522  # the MiniLM tokenizer's vocabulary, so the pipeline can tokenize
    return tiny_config


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


def test_multitask_model_loads_via_automodel_remote_code_with_identical_outputs(tmp_path, tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    model.save_pretrained(tmp_path)
    batch = random_batch(tiny_config)
    torch.save(batch, tmp_path / "batch.pt")
    expected = {task: model(**batch, task=task).logits for task in tiny_config.tasks}
    torch.save(expected, tmp_path / "expected.pt")
    out = run_isolated(
        f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        assert type(model).__name__ == "MinBertForMultitask", type(model)
        assert not type(model).__module__.startswith("hf_minbert"), type(model).__module__
        batch = torch.load({str(tmp_path / 'batch.pt')!r})
        expected = torch.load({str(tmp_path / 'expected.pt')!r})
        with torch.no_grad():
            for task, logits in expected.items():
                # Same weights, bit for bit; CPU kernels may still round differently in the last ulp.
                torch.testing.assert_close(model(**batch, task=task).logits, logits, rtol=0, atol=1e-6)
        print("identical", sorted(expected))
        """,
        cwd=tmp_path,
    )
    assert "identical ['para', 'sst', 'sts']" in out


def test_sequence_classification_loads_via_auto_class_remote_code(tmp_path, tiny_config):
    tiny_config.num_labels = 2
    model = MinBertForSequenceClassification(tiny_config).eval()
    model.save_pretrained(tmp_path)
    batch = random_batch(tiny_config)
    torch.save({"batch": batch, "logits": model(**batch).logits}, tmp_path / "io.pt")
    out = run_isolated(
        f"""
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        io = torch.load({str(tmp_path / 'io.pt')!r})
        with torch.no_grad():
            torch.testing.assert_close(model(**io["batch"]).logits, io["logits"], rtol=0, atol=1e-6)
        print(type(model).__name__)
        """,
        cwd=tmp_path,
    )
    assert out.strip() == "MinBertForSequenceClassification"


def test_text_classification_pipeline_answers_with_sst_label_names(tmp_path, tiny_config, minilm_path):
    model = MinBertForMultitask(_tiny_vocab_config(tiny_config)).eval()
    _save_with_tokenizer(model, tmp_path, minilm_path)
    out = run_isolated(
        f"""
        from transformers import pipeline
        clf = pipeline("text-classification", model={str(tmp_path)!r}, trust_remote_code=True)
        result = clf(["a gorgeous, witty film", "dull"], top_k=None)
        print(sorted(r["label"] for r in result[0]))
        print(abs(sum(r["score"] for r in result[0]) - 1) < 1e-5)
        """,
        cwd=tmp_path,
    )
    labels, normalised = out.strip().splitlines()
    assert labels == str(sorted(["negative", "somewhat negative", "neutral", "somewhat positive", "positive"]))
    assert normalised == "True"


def test_multitask_checkpoint_opened_as_sequence_classification_keeps_its_heads(tmp_path, tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    model.save_pretrained(tmp_path)
    reopened = MinBertForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(reopened, MinBertForMultitask)
    batch = random_batch(tiny_config)
    torch.testing.assert_close(reopened(**batch).logits, model(**batch).logits)
