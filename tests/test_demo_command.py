"""`minbert demo`: a trained folder answers with its own heads, any other checkpoint with fresh heads beside the
base model's cosine, and a folder that cannot answer is refused in one line."""
import pytest
from transformers import BertConfig, BertModel

from hf_minbert.cli import main as minbert
from tests.helpers import tiny_model, word_tokenizer


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    # minbert train's recipe: CerBERTus, each task its own top layer (the demo's extra cosine head would have none).
    folder = tmp_path_factory.mktemp("trained")
    tiny_model(task_specific_layers=1).save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    return folder


def test_a_trained_folder_answers_each_pair_with_its_own_heads(trained_folder, capsys):
    assert minbert(["demo", "--model", str(trained_folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("  para: {'label':") == 2 and out.count("  sts: {'score':") == 2 and out.count("  sst: [") == 2
    assert "untrained" not in out


def test_an_ensemble_folder_answers_each_pair_with_its_averaged_heads(tmp_path, capsys):
    from hf_minbert import MinBertEnsembleForMultitask

    weights = {"sst": [1, 1], "para": [1, 1], "sts": [1, 1]}
    MinBertEnsembleForMultitask.from_members([tiny_model(seed=0), tiny_model(seed=1)], weights).save_pretrained(tmp_path)
    word_tokenizer().save_pretrained(tmp_path)
    assert minbert(["demo", "--model", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MinBertEnsembleForMultitask" in out and out.count("  para: {'label':") == 2 and "untrained" not in out


def test_a_bert_checkpoint_gets_fresh_heads_said_to_be_untrained(tmp_path, capsys):
    BertModel(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(tmp_path)
    word_tokenizer().save_pretrained(tmp_path)
    assert minbert(["demo", "--model", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("bi-encoder cosine similarity") == 2 and out.count("(random until `minbert train`)") == 2


def test_a_folder_without_its_tokenizer_is_refused_in_one_line(tmp_path, capsys):
    tiny_model().save_pretrained(tmp_path)
    assert minbert(["demo", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"minbert demo: --model {tmp_path}: its tokenizer holds") and "no words" in err[-1]
