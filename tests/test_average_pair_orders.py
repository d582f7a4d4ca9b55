"""`average_pair_orders`: a cross-encoder head that answers with the mean of its outputs for (a, b) and (b, a),
in eval mode, so that its answer does not depend on which sentence comes first."""
import pytest
import torch
from transformers import AutoTokenizer, pipeline

from hf_minbert import MinBertConfig, MinBertForMultitask
from hf_minbert.commands.head_options import task_specs
from hf_minbert.commands.train import check_run
from hf_minbert.commands.train_arguments import ModelArguments
from hf_minbert.modeling_minbert_pair_order import both_orders
from tests.helpers import tiny_model
from trainers import MultitaskTrainingArguments

FIRST = ["how do i learn python", "a b c d e f", "why"]
SECOND = ["what is the best way to learn python", "x", "why not"]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def _tasks(**para):
    tasks = MinBertConfig().tasks
    return {**tasks, "para": {**tasks["para"], **para}}


def _para_logits(model, batch):
    with torch.no_grad():
        return model(**batch, task="para").logits


# Wide initial weights: a random head at BERT's initializer_range answers nearly the same for every input.
WIDE_INIT = {"initializer_range": 0.5}


@pytest.fixture(scope="module")
def averaging_model():
    return tiny_model(tasks=_tasks(average_pair_orders=True), **WIDE_INIT).eval()


def test_both_orders_gives_the_tokenizers_pairs_in_the_other_order(tokenizer):
    swapped = both_orders(tokenizer(FIRST, SECOND, padding=True, return_tensors="pt"))
    reversed_pairs = tokenizer(SECOND, FIRST, padding=True, return_tensors="pt")
    assert torch.equal(swapped["input_ids"], reversed_pairs["input_ids"])
    assert torch.equal(swapped["token_type_ids"], reversed_pairs["token_type_ids"])


def test_both_orders_moves_input_embeddings_as_it_moves_token_ids(tokenizer):
    pairs = tokenizer(FIRST, SECOND, padding=True, return_tensors="pt")
    table = torch.randn(tokenizer.vocab_size, 4)
    swapped = both_orders({"inputs_embeds": table[pairs["input_ids"]], "attention_mask": pairs["attention_mask"],
                           "token_type_ids": pairs["token_type_ids"]})
    assert torch.equal(swapped["inputs_embeds"], table[both_orders(pairs)["input_ids"]])


def test_an_averaging_head_answers_the_same_for_both_orders(averaging_model, tokenizer):
    forward = _para_logits(averaging_model, tokenizer(FIRST, SECOND, padding=True, return_tensors="pt"))
    backward = _para_logits(averaging_model, tokenizer(SECOND, FIRST, padding=True, return_tensors="pt"))
    torch.testing.assert_close(forward, backward, rtol=0, atol=1e-5)


def test_its_answer_is_the_mean_of_the_plain_heads_answers_for_both_orders(averaging_model, tokenizer):
    plain = tiny_model(tasks=_tasks(), **WIDE_INIT).eval()
    plain.load_state_dict(averaging_model.state_dict())
    forward = _para_logits(plain, tokenizer(FIRST, SECOND, padding=True, return_tensors="pt"))
    backward = _para_logits(plain, tokenizer(SECOND, FIRST, padding=True, return_tensors="pt"))
    averaged = _para_logits(averaging_model, tokenizer(FIRST, SECOND, padding=True, return_tensors="pt"))
    assert (forward - backward).abs().max() > 1e-2, "a random head should depend on the order"
    torch.testing.assert_close(averaged, (forward + backward) / 2, rtol=0, atol=1e-5)


def test_in_training_mode_the_head_reads_the_pairs_as_given(tokenizer):
    averaging = tiny_model(tasks=_tasks(average_pair_orders=True), hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0).train()
    plain = tiny_model(tasks=_tasks(), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    plain.load_state_dict(averaging.state_dict())
    batch = tokenizer(FIRST, SECOND, padding=True, return_tensors="pt")
    torch.testing.assert_close(_para_logits(averaging, batch), _para_logits(plain, batch), rtol=0, atol=0)


def test_the_paraphrase_pipeline_answers_the_same_for_both_orders(averaging_model, tokenizer):
    paraphrase = pipeline("paraphrase-detection", model=averaging_model, tokenizer=tokenizer)
    forward, backward = paraphrase((FIRST[0], SECOND[0])), paraphrase((SECOND[0], FIRST[0]))
    assert forward["label"] == backward["label"]
    assert forward["score"] == pytest.approx(backward["score"], abs=1e-5)


def test_the_setting_survives_saving_and_loading(averaging_model, tmp_path):
    averaging_model.save_pretrained(tmp_path)
    loaded = MinBertForMultitask.from_pretrained(tmp_path)
    assert loaded.config.task_spec("para")["average_pair_orders"] is True


def test_pairs_with_padding_before_a_real_token_are_refused_naming_the_task(averaging_model, tokenizer):
    batch = tokenizer(FIRST, SECOND, padding=True, return_tensors="pt")
    batch["attention_mask"][0, 2] = 0  # a hole: no order of the two sentences can be read from the mask
    with pytest.raises(ValueError, match="task 'para' \\(average_pair_orders\\): .*padding before a real token"):
        _para_logits(averaging_model, batch)


def test_pairs_without_token_type_ids_are_refused_naming_the_task(averaging_model, tokenizer):
    batch = tokenizer(FIRST, SECOND, padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match="task 'para' \\(average_pair_orders\\): .*token_type_ids"):
        _para_logits(averaging_model, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})


@pytest.mark.parametrize("encoding", ["bi", "single"])
def test_a_head_without_a_pair_order_cannot_average_over_it(encoding):
    with pytest.raises(ValueError, match="task 'para': average_pair_orders applies to cross-encoded"):
        MinBertConfig(tasks=_tasks(pair_encoding=encoding, average_pair_orders=True))


def test_the_train_flag_sets_the_heads_field():
    specs = task_specs(ModelArguments(average_pair_orders="para=true"), MinBertConfig().tasks)
    assert {task: spec["average_pair_orders"] for task, spec in specs.items()} == {"sst": False, "para": True, "sts": False}


def test_the_train_flag_on_a_bi_encoded_task_is_refused_before_training(tmp_path):
    from hf_minbert.commands.train_arguments import DataArguments

    specs = task_specs(ModelArguments(average_pair_orders="sts=true"), MinBertConfig().tasks)  # the recipe's sts=bi
    args = MultitaskTrainingArguments(output_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="--average_pair_orders sts: .*'bi' inputs"):
        check_run(ModelArguments(), DataArguments(data_dir=str(tmp_path)), args, specs)


def test_the_train_flag_on_a_single_sentence_task_is_refused():
    with pytest.raises(ValueError, match="--average_pair_orders sst=true: sst is a single-sentence task"):
        task_specs(ModelArguments(average_pair_orders="sst=true"), MinBertConfig().tasks)
