"""A saved multitask folder is also a sentence-transformers model: its sentences' embeddings are those of the
model's sentence-embedding task (its bi-encoder head's), whose cosine that head scores."""
import pytest
import torch
from transformers import AutoTokenizer, pipeline

from hf_minbert import MinBertForMultitask
from tests.helpers import run_isolated, tiny_model

SENTENCES = ["A man plays a guitar.", "Someone plays an acoustic guitar.", "The cat sleeps."]
BI_ENCODER_TASKS = {
    "sst": {"kind": "classification", "labels": ["neg", "neu", "pos"]},
    "sts": {"kind": "regression", "label_range": [0.0, 5.0], "pair_encoding": "bi"},
}


@pytest.fixture
def saved(tmp_path, minilm_path):
    model = tiny_model(tasks=BI_ENCODER_TASKS, task_specific_layers=1).eval()  # each task its own top layer
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path)
    return model, tmp_path


def _embeddings(model, folder, sentences):
    batch = AutoTokenizer.from_pretrained(folder)(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.sentence_embedding(**batch)


def test_the_sentence_embedding_task_of_several_bi_encoder_heads_survives_a_save(tmp_path):
    # config.json stores the tasks alphabetically: the choice may not depend on their order
    model = tiny_model(tasks={**BI_ENCODER_TASKS, "para": {"kind": "binary", "pair_encoding": "bi"}})
    model.save_pretrained(tmp_path)
    assert MinBertForMultitask.from_pretrained(tmp_path).sentence_embedding_task() == model.sentence_embedding_task()


def test_the_sentence_embedding_task_is_the_bi_encoder_heads_else_the_default_tasks():
    assert tiny_model(tasks=BI_ENCODER_TASKS).sentence_embedding_task() == "sts"
    assert tiny_model().sentence_embedding_task() == "sst"  # no bi-encoder head: sts cross-encodes its pairs


def test_sentence_embeddings_are_those_the_similarity_pipeline_returns(saved):
    model, folder = saved
    answer = pipeline("sentence-similarity", model=model, tokenizer=AutoTokenizer.from_pretrained(folder))(
        tuple(SENTENCES[:2]))
    torch.testing.assert_close(torch.tensor(answer["embeddings"]), _embeddings(model, folder, SENTENCES[:2]))


@pytest.mark.slow
def test_sentence_transformers_loads_a_saved_folder_as_remote_code_with_the_models_embeddings(saved):
    model, folder = saved
    out = run_isolated(
        f"""
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer({str(folder)!r}, trust_remote_code=True, device="cpu")
        print(model.encode({SENTENCES!r}, convert_to_tensor=True).tolist())
        """,
        cwd=folder,
    )
    torch.testing.assert_close(torch.tensor(eval(out.strip().splitlines()[-1])), _embeddings(model, folder, SENTENCES))


def test_a_saved_folder_carries_the_sentence_transformers_config(saved):
    import json

    _, folder = saved
    modules = json.loads((folder / "modules.json").read_text())
    assert [module["type"] for module in modules] == ["sentence_transformers.models.Transformer"]
    text = json.loads((folder / "sentence_bert_config.json").read_text())["modality_config"]["text"]
    assert text == {"method": "sentence_embedding", "method_output_name": None}


@pytest.mark.parametrize("push", ["push_to_hub", "save_pretrained(push_to_hub=True)"])
def test_a_push_from_python_sends_the_sentence_transformers_config(tmp_path, hub_calls, token, push):
    model = tiny_model(tasks=BI_ENCODER_TASKS)
    if push == "push_to_hub":
        model.push_to_hub("someone/encoder")
    else:
        model.save_pretrained(tmp_path / "encoder", push_to_hub=True, repo_id="someone/encoder")
    sent = {op.path_in_repo for call in hub_calls if call[0] == "create_commit" for op in call[4]}
    assert {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "model.safetensors"} <= sent
