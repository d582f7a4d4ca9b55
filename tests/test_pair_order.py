"""Pair-order augmentation (trainers/pair_order.py): a cross-encoded pair read the other way round, drawn per
batch from the seed and the step, refused where a batch has no order to swap."""
import pytest
import torch
from transformers import AutoTokenizer

from hf_minbert.modeling_minbert_pair_order import both_orders
from tests.helpers import load_benchmark, tiny_model, tiny_task_rows
from trainers import MultitaskTrainer, MultitaskTrainingArguments
from trainers.pair_order import pair_order_generator, randomly_swapped

FIRST = ["how do i learn python", "a b c d e f", "why"]
SECOND = ["what is the best way to learn python", "x", "why not"]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def _pairs(tokenizer, first, second, **kwargs):
    return tokenizer(first, second, padding=True, return_tensors="pt", **kwargs)


def test_rows_drawn_are_read_the_other_way_round_and_the_rest_as_given(tokenizer):
    batch = dict(_pairs(tokenizer, FIRST, SECOND))
    key = (0, 4, "para")
    drawn = (torch.rand(3, generator=pair_order_generator(*key)) < 0.5).tolist()
    assert True in drawn and False in drawn, "the key should draw both kinds of rows"
    swapped = randomly_swapped(batch, "para", 0.5, pair_order_generator(*key))
    reversed_pairs = _pairs(tokenizer, SECOND, FIRST)
    for row, swap in enumerate(drawn):
        expected = reversed_pairs if swap else batch
        for name in ("input_ids", "token_type_ids"):
            assert torch.equal(swapped[name][row], expected[name][row]), (row, name)


def test_reading_both_orders_twice_gives_back_the_batch(tokenizer):
    batch = dict(_pairs(tokenizer, FIRST, SECOND))
    twice = both_orders(both_orders(batch))
    assert torch.equal(twice["input_ids"], batch["input_ids"]) and torch.equal(twice["token_type_ids"], batch["token_type_ids"])


def test_draws_depend_on_seed_step_task_and_place_in_the_step():
    def draws(*key):
        return torch.rand(8, generator=pair_order_generator(*key)).tolist()

    assert draws(0, 5, "para") == draws(0, 5, "para")
    others = [(1, 5, "para"), (0, 6, "para"), (0, 5, "sts"), (0, 5, "para", 1)]
    assert all(draws(*key) != draws(0, 5, "para") for key in others)


def test_each_data_parallel_rank_draws_its_own_swaps_and_rank_0_a_single_processs():
    def draws(rank):
        return torch.rand(8, generator=pair_order_generator(0, 5, "para", rank=rank)).tolist()

    assert draws(1) != draws(0) == torch.rand(8, generator=pair_order_generator(0, 5, "para")).tolist()


def test_probability_one_swaps_every_row_and_zero_none(tokenizer):
    batch = dict(_pairs(tokenizer, FIRST, SECOND))
    assert randomly_swapped(batch, "para", 0.0, pair_order_generator(0, 0, "para")) is batch
    swapped = randomly_swapped(batch, "para", 1.0, pair_order_generator(0, 0, "para"))
    assert torch.equal(swapped["input_ids"], _pairs(tokenizer, SECOND, FIRST)["input_ids"])


def test_a_left_padded_batch_is_refused_naming_the_flag(tokenizer):
    batch = dict(_pairs(tokenizer, FIRST, SECOND))
    batch = {key: value.flip(1) for key, value in batch.items()}  # padding first
    with pytest.raises(ValueError, match="--pair_swap_probability para: .*right padding"):
        randomly_swapped(batch, "para", 0.5, pair_order_generator(0, 0, "para"))


def test_a_batch_without_segment_ids_is_refused_naming_the_flag(tokenizer):
    batch = {key: value for key, value in _pairs(tokenizer, FIRST, SECOND).items() if key != "token_type_ids"}
    with pytest.raises(ValueError, match="--pair_swap_probability para: .*token_type_ids"):
        randomly_swapped(batch, "para", 0.5, pair_order_generator(0, 0, "para"))


@pytest.mark.parametrize("value", ["para=1.5", "-0.1", "para=nan"])
def test_a_probability_outside_zero_one_is_refused_when_the_arguments_are_built(tmp_path, value):
    with pytest.raises(ValueError, match="--pair_swap_probability: probabilities lie in"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True, pair_swap_probability=value)


def _arguments(tmp_path, **overrides):
    return MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True, per_device_train_batch_size=8,
                                      num_train_epochs=1, report_to="none", eval_strategy="no", save_strategy="no",
                                      max_seq_length=32, seed=0, bf16=False, **overrides)


def _trainer(tmp_path, tokenizer, model, **overrides):
    return MultitaskTrainer(model=model, args=_arguments(tmp_path, **overrides),
                            train_dataset={"para": tiny_task_rows()["para"]}, processing_class=tokenizer)


def test_the_trainer_refuses_to_swap_a_task_whose_head_is_bi_encoded(tmp_path, tokenizer):
    model = tiny_model(tasks={"sts": {"kind": "regression", "label_range": [0.0, 5.0], "pair_encoding": "bi"}})
    with pytest.raises(ValueError, match="--pair_swap_probability sts: only a cross-encoded"):
        MultitaskTrainer(model=model, args=_arguments(tmp_path, pair_swap_probability="sts=0.5"),
                         train_dataset={"sts": tiny_task_rows()["sts"]}, processing_class=tokenizer)


def test_the_trainers_para_loss_reads_the_swapped_batch(tmp_path, tokenizer):
    model = tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = _trainer(tmp_path, tokenizer, model, pair_swap_probability="para=1")
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))["para"]
    swapped = randomly_swapped(batch, "para", 1.0, pair_order_generator(0, 0, "para"))
    assert not torch.equal(swapped["input_ids"], batch["input_ids"])
    keys = ("input_ids", "attention_mask", "token_type_ids")
    expected = model(**{k: swapped[k] for k in keys}, task="para", labels=batch["labels"]).loss
    torch.testing.assert_close(trainer._task_loss(model, "para", batch), expected)


def test_a_head_reading_the_cosine_too_trains_on_the_swapped_pairs_and_the_sentences_alone(tmp_path, tokenizer):
    spec = {**tiny_model().config.tasks["para"], "cosine_feature": True}
    model = tiny_model(tasks={"para": spec}, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = _trainer(tmp_path, tokenizer, model, pair_swap_probability="para=1")
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))["para"]
    swapped = randomly_swapped(batch, "para", 1.0, pair_order_generator(0, 0, "para"))
    keys = ("input_ids", "attention_mask", "token_type_ids", "input_ids_a", "attention_mask_a", "input_ids_b",
            "attention_mask_b")
    expected = model(**{k: swapped[k] for k in keys}, task="para", labels=batch["labels"]).loss
    torch.testing.assert_close(trainer._task_loss(model, "para", batch), expected)


def test_the_pair_order_benchmark_finds_no_order_in_pairs_of_one_sentence_twice(tmp_path, tokenizer):
    benchmark = load_benchmark("pair_order")
    tiny_model().save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    rows = tiny_task_rows()["para"]
    twice = rows.remove_columns("sentence2").add_column("sentence2", rows["sentence1"])
    scores = benchmark.pair_order_scores(tmp_path, twice, "para")
    assert scores["label changes"] == 0.0
    assert scores["as given"] == scores["swapped"] == scores["averaged"]


def test_the_pair_order_benchmark_scores_each_order_alone_also_for_a_model_that_averages_both(tmp_path, tokenizer):
    benchmark = load_benchmark("pair_order")
    spec = {**tiny_model().config.tasks["para"], "average_pair_orders": True}
    torch.manual_seed(0)
    model = tiny_model(tasks={"para": spec}).eval()
    rows = tiny_task_rows(n=32)["para"]

    def logits(first, second):
        model.config.tasks["para"]["average_pair_orders"] = False
        with torch.no_grad():
            return torch.tensor([model(**tokenizer(a, b, return_tensors="pt"), task="para").logits.item()
                                 for a, b in zip(rows[first], rows[second])])

    with torch.no_grad():  # segment B far from segment A, and the decision boundary amid the answers
        model.bert.embeddings.token_type_embeddings.weight[1] *= 20
        model.heads["para"].layers[-1].bias -= logits("sentence1", "sentence2").median()
    given, swapped = logits("sentence1", "sentence2"), logits("sentence2", "sentence1")
    changed = ((given > 0) != (swapped > 0)).float().mean().item()
    assert changed > 0  # the two orders get different answers somewhere
    model.config.tasks["para"]["average_pair_orders"] = True
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    scores = benchmark.pair_order_scores(tmp_path, rows, "para")
    assert scores["label changes"] > 0  # each order scored alone (the model's averaging answers both alike)
