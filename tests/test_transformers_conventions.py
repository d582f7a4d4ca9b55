"""minBERT keeps transformers' conventions where a generic caller relies on them: tuples under return_dict=False,
a fine-tuned BERT classifier's labels, (batch, num_labels) logits for a caller that names no task, the class a
folder names for AutoModel, BERT's position_ids and ignored label -100, and an error (not a silent fallback) for a default task,
label count or BERT option the model cannot honour."""
import pytest
import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
)
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

from hf_minbert import (
    MinBertConfig,
    MinBertForMaskedLM,
    MinBertForMultitask,
    MinBertForSequenceClassification,
    MinBertModel,
)
from tests.helpers import random_batch

MOOD = {"mood": {"kind": "binary", "labels": ["sad", "happy"]}}
SCORE = {"score": {"kind": "regression", "label_range": [0, 5]}}


def _config(tiny_config, **overrides):
    saved = {key: value for key, value in tiny_config.to_dict().items() if key != "default_task"}
    return MinBertConfig(**{**saved, **overrides})


# --- return_dict=False ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", [MinBertModel, MinBertForSequenceClassification, MinBertForMaskedLM,
                                         MinBertForMultitask])
def test_return_dict_false_in_the_config_gives_a_tuple_of_the_same_outputs(tiny_config, model_class):
    model = model_class(_config(tiny_config, return_dict=False)).eval()
    batch = random_batch(model.config)
    with torch.no_grad():
        as_tuple, as_output = model(**batch), model(**batch, return_dict=True)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_output[0])


# --- a fine-tuned BERT classifier ----------------------------------------------------------------------


@pytest.fixture
def bert_classifier_dir(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, id2label={0: "neg", 1: "neu", 2: "pos"},
                        label2id={"neg": 0, "neu": 1, "pos": 2})
    reference = BertForSequenceClassification(config).eval()
    reference.save_pretrained(tmp_path)
    return tmp_path, reference


def test_a_fine_tuned_bert_classifier_loads_with_its_classifier_and_label_names(bert_classifier_dir):
    path, reference = bert_classifier_dir
    model = MinBertForSequenceClassification.from_pretrained(path).eval()
    assert model.config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    batch = random_batch(model.config)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, reference(**batch).logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("classifier_dropout, expected", [(0.0, 0.0), (0.3, 0.3), (None, 0.1)])
def test_the_sequence_classifiers_dropout_is_the_configs_classifier_dropout_as_bert_s_is(
    tiny_config, classifier_dropout, expected
):
    config = _config(tiny_config, hidden_dropout_prob=0.1, classifier_dropout=classifier_dropout)
    assert MinBertForSequenceClassification(config).dropout.p == expected
    assert BertForSequenceClassification(BertConfig(**config.to_dict())).dropout.p == expected


def test_a_multitask_model_from_a_bert_classifier_names_its_labels_after_its_default_head(bert_classifier_dir):
    model = MinBertForMultitask.from_pretrained(bert_classifier_dir[0])
    assert model.config.id2label == dict(enumerate(model.config.tasks["sst"]["labels"]))


def test_num_labels_asked_of_a_multitask_model_from_a_bert_checkpoint_must_fit_its_default_head(bert_classifier_dir):
    # The BERT config would take num_labels=2, and the model answer with its 5-way default head all the same.
    with pytest.raises(ValueError, match=r"num_labels=2 does not fit this checkpoint: its default head 'sst' answers 5"):
        MinBertForMultitask.from_pretrained(bert_classifier_dir[0], num_labels=2)
    model = MinBertForMultitask.from_pretrained(bert_classifier_dir[0], num_labels=2, default_task="para")
    assert model.config.num_labels == 2 and model.config.default_task == "para"


def test_a_multitask_model_with_one_token_type_refuses_cross_encoded_pair_heads_and_takes_bi_encoded_ones(tiny_config):
    with pytest.raises(ValueError, match=r"type_vocab_size=1: no token type for the second sentence of the "
                                         r"cross-encoded pair head\(s\) para, sts"):
        MinBertForMultitask(_config(tiny_config, type_vocab_size=1))
    config = _config(tiny_config, type_vocab_size=1)
    config.tasks = {**config.tasks, "para": {**config.tasks["para"], "pair_encoding": "bi"},
                    "sts": {**config.tasks["sts"], "pair_encoding": "bi"}}
    assert MinBertForMultitask(config).config.type_vocab_size == 1


def test_an_activation_transformers_does_not_know_is_refused_with_the_config_not_at_the_first_forward():
    with pytest.raises(ValueError, match=r"hidden_act must be one of \[.*'gelu'.*\], got 'bogus_act'"):
        MinBertConfig(hidden_act="bogus_act")


# --- BERT options minBERT does not compute -----------------------------------------------------------------


@pytest.mark.parametrize("option, value", [("is_decoder", True), ("add_cross_attention", True),
                                           ("position_embedding_type", "relative_key_query")])
def test_a_bert_checkpoint_with_an_option_minbert_does_not_compute_is_refused_by_name(tmp_path, option, value):
    BertConfig(hidden_size=32, num_attention_heads=4, **{option: value}).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=f"{option}={value!r} is not supported: minBERT is a bidirectional encoder"):
        MinBertModel.from_pretrained(tmp_path)


def test_a_folder_without_config_json_is_refused_rather_than_read_as_a_default_config(tmp_path):
    with pytest.raises(OSError, match="no config.json: not a saved model folder"):
        MinBertConfig.from_pretrained(tmp_path)  # transformers reads it as {}


def test_a_config_names_bert_s_tokenizer_for_pipelines_that_load_one_from_it(tiny_config):
    # transformers 4.x's pipeline() loads no tokenizer for an unknown model type whose config names none.
    assert tiny_config.tokenizer_class == "BertTokenizer"
    assert MinBertConfig(tokenizer_class="MyTokenizer").tokenizer_class == "MyTokenizer"


# --- the default task and the label count -----------------------------------------------------------------


def test_a_default_task_that_is_not_a_task_is_an_error_naming_it_and_the_tasks():
    with pytest.raises(ValueError, match="default_task='sentiment' is not one of this model's tasks: sst, para, sts"):
        MinBertConfig(hidden_size=32, num_attention_heads=4, default_task="sentiment")


def test_a_default_task_passed_to_from_pretrained_must_be_a_task(tmp_path, tiny_config):
    MinBertForMultitask(tiny_config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="default_task='sentiment' is not one of this model's tasks"):
        MinBertForMultitask.from_pretrained(tmp_path, default_task="sentiment")


def test_new_heads_without_a_default_task_default_to_sst_or_the_first(tmp_path, tiny_config):
    MinBertForMultitask(tiny_config).save_pretrained(tmp_path)  # saved with default_task "sst"
    assert MinBertForMultitask.from_pretrained(tmp_path, tasks=MOOD).config.default_task == "mood"


def test_num_labels_that_differ_from_a_multitask_checkpoints_default_head_are_refused(tmp_path, tiny_config):
    MinBertForMultitask(tiny_config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"num_labels=2 does not fit this checkpoint: its default head "
                                         r"'sst' answers 5.*para \(2\)"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2)


def test_num_labels_that_agree_with_a_multitask_checkpoints_default_head_load(tmp_path, tiny_config):
    MinBertForMultitask(tiny_config).save_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2, default_task="para")
    assert model.config.num_labels == 2 and model.config.default_task == "para"


@pytest.mark.parametrize("task, labels, problem_type", [
    ("para", {0: "not paraphrase", 1: "paraphrase"}, "single_label_classification"),
    ("sts", {0: "sts"}, "regression"),
])
def test_a_default_task_passed_to_autoconfig_brings_its_labels(tmp_path, tiny_config, task, labels, problem_type):
    MinBertForMultitask(tiny_config).save_pretrained(tmp_path)  # saved with the sst head's five labels
    config = AutoConfig.from_pretrained(tmp_path, default_task=task)
    assert (config.id2label, config.num_labels, config.problem_type) == (labels, len(labels), problem_type)


def test_a_default_task_set_on_a_multitask_models_config_brings_its_labels(tiny_config):
    model = MinBertForMultitask(_config(tiny_config)).eval()
    model.config.default_task = "para"
    assert (model.config.num_labels, model.config.id2label) == (2, {0: "not paraphrase", 1: "paraphrase"})
    with torch.no_grad():
        assert model(**random_batch(model.config)).logits.shape[-1] == model.config.num_labels


def test_a_default_task_set_on_a_config_must_be_a_task(tiny_config):
    config = _config(tiny_config)
    with pytest.raises(ValueError, match="default_task='sentiment' is not one of this model's tasks"):
        config.default_task = "sentiment"


def test_a_default_task_set_on_a_bert_classifiers_config_keeps_its_labels(bert_classifier_dir):
    model = MinBertForSequenceClassification.from_pretrained(bert_classifier_dir[0])
    model.config.default_task = "para"
    assert model.config.id2label == {0: "neg", 1: "neu", 2: "pos"}


# --- logits for a caller that names no task ---------------------------------------------------------------


def test_a_binary_default_head_answers_a_task_less_call_with_two_columns_zero_and_its_logit(tiny_config):
    model = MinBertForMultitask(_config(tiny_config, tasks=MOOD)).eval()
    batch = random_batch(model.config)
    logit = model(**batch, task="mood").logits
    torch.testing.assert_close(model(**batch).logits, torch.stack([torch.zeros_like(logit), logit], dim=-1))
    assert model.config.num_labels == 2 and model.config.id2label == {0: "sad", 1: "happy"}


def test_a_regression_default_head_answers_a_task_less_call_with_one_column(tiny_config):
    model = MinBertForMultitask(_config(tiny_config, tasks=SCORE)).eval()
    batch = random_batch(model.config)
    torch.testing.assert_close(model(**batch).logits, model(**batch, task="score").logits.unsqueeze(-1))
    assert model.config.num_labels == 1


def test_an_ensemble_answers_a_task_less_call_in_transformers_shape_too(tiny_config):
    from hf_minbert import MinBertEnsembleForMultitask

    member = MinBertForMultitask(_config(tiny_config, tasks=MOOD)).eval()
    ensemble = MinBertEnsembleForMultitask.from_members([member], {"mood": [1.0]}).eval()
    batch = random_batch(member.config)
    logit = ensemble(**batch, task="mood").logits
    torch.testing.assert_close(ensemble(**batch).logits, torch.stack([torch.zeros_like(logit), logit], dim=-1))
    assert ensemble.config.id2label == {0: "sad", 1: "happy"}


def test_a_task_less_binary_loss_is_the_cross_entropy_of_its_two_columns(tiny_config):
    model = MinBertForMultitask(_config(tiny_config, tasks=MOOD)).eval()
    labels = torch.tensor([1, 0, 1])
    out = model(**random_batch(model.config), labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))


# --- AutoModel in-process ---------------------------------------------------------------------------------


def test_a_saved_sequence_classifier_loads_as_its_encoder_through_auto_model_as_bert_does(tmp_path, tiny_config):
    saved = MinBertForSequenceClassification(_config(tiny_config, num_labels=3)).eval()
    saved.save_pretrained(tmp_path)
    encoder = AutoModel.from_pretrained(tmp_path).eval()
    assert type(encoder) is MinBertModel
    batch = random_batch(saved.config)
    with torch.no_grad():
        torch.testing.assert_close(encoder(**batch).last_hidden_state, saved.bert(**batch).last_hidden_state)


def test_a_saved_sequence_classifier_loads_with_its_classifier_through_the_classification_auto_class(
        tmp_path, tiny_config):
    saved = MinBertForSequenceClassification(_config(tiny_config, num_labels=3)).eval()
    saved.save_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    batch = random_batch(saved.config)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, saved(**batch).logits)


def test_feature_extraction_of_a_saved_sequence_classifier_gives_token_features(tmp_path, tiny_config, minilm_path):
    from transformers import AutoTokenizer, pipeline

    MinBertForSequenceClassification(_config(tiny_config, num_labels=3, vocab_size=30522)).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path)
    features = pipeline("feature-extraction", model=str(tmp_path), trust_remote_code=True)("a fine film")
    assert torch.tensor(features).shape == (1, 5, tiny_config.hidden_size)  # [CLS] a fine film [SEP]


def test_auto_model_loads_a_masked_lm_folder_as_its_encoder_as_remote_code_does(tmp_path, tiny_config):
    MinBertForMaskedLM(tiny_config).save_pretrained(tmp_path)
    assert type(AutoModel.from_pretrained(tmp_path)) is MinBertModel


def test_auto_model_from_a_fresh_config_is_the_multitask_model(tiny_config):
    assert type(AutoModel.from_config(tiny_config)) is MinBertForMultitask


def test_loading_through_auto_classes_does_not_warn_that_trust_remote_code_is_ignored(tmp_path, tiny_config):
    MinBertForMultitask(tiny_config).save_pretrained(tmp_path)
    with CaptureLogger(transformers_logging.get_logger("transformers.configuration_utils")) as captured:
        AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
        AutoModelForSequenceClassification.from_pretrained(tmp_path, trust_remote_code=True)
    assert "trust_remote_code" not in captured.out


# --- position_ids -------------------------------------------------------------------------------------------

VARIANTS = {"shared": {}, "cerbertus": {"task_specific_layers": 1}, "triple": {"task_specific_embeddings": True, "task_specific_layers": 2},
            "static": {"static_encoder": True}}


def _shifted_positions(batch, shift=3):
    length = batch["input_ids"].shape[1]
    return torch.arange(shift, shift + length).expand_as(batch["input_ids"])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("task", ["sst", "para"])
def test_multitask_position_ids_from_zero_are_the_default_positions(tiny_config, variant, task):
    model = MinBertForMultitask(_config(tiny_config, **VARIANTS[variant])).eval()
    batch = random_batch(model.config)
    default = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(model(**batch, task=task, position_ids=default).logits,
                                   model(**batch, task=task).logits)


@pytest.mark.parametrize("variant", VARIANTS)
def test_multitask_position_ids_reach_every_encoder_the_head_reads(tiny_config, variant):
    model = MinBertForMultitask(_config(tiny_config, **VARIANTS[variant])).eval()
    batch = random_batch(model.config)
    with torch.no_grad():
        given = model.encode_for_task("sst", **batch, position_ids=_shifted_positions(batch))
        default = model.encode_for_task("sst", **batch)
    assert not torch.allclose(given.last_hidden_state, default.last_hidden_state)
    if variant == "static":
        assert not torch.allclose(given.static_output.last_hidden_state, default.static_output.last_hidden_state)


def test_multitask_position_ids_give_the_encoders_answer_for_those_positions(tiny_config):
    model = MinBertForMultitask(_config(tiny_config)).eval()
    batch = random_batch(model.config)
    positions = _shifted_positions(batch)
    with torch.no_grad():
        encoded = model.bert(**batch, position_ids=positions)
        expected = model.head_logits("sst", encoded, batch["attention_mask"])
        torch.testing.assert_close(model(**batch, task="sst", position_ids=positions).logits, expected)


def _bi_encoded_sts(tiny_config, **overrides):
    """A model whose sts head is a bi-encoder, and a batch of its two sentences' inputs (the same sentences)."""
    tasks = {name: dict(spec) for name, spec in tiny_config.tasks.items()}
    tasks["sts"]["pair_encoding"] = "bi"
    model = MinBertForMultitask(_config(tiny_config, tasks=tasks, **overrides)).eval()
    batch = random_batch(model.config, pairs=False)
    sides = {"input_ids_a": batch["input_ids"], "attention_mask_a": batch["attention_mask"],
             "input_ids_b": batch["input_ids"], "attention_mask_b": batch["attention_mask"]}
    return model, batch, sides


def test_a_bi_encoder_task_refuses_position_ids_it_would_not_read(tiny_config):
    model, batch, sides = _bi_encoded_sts(tiny_config)
    with pytest.raises(ValueError, match="task 'sts': a bi-encoder task reads each sentence from position 0"):
        model(**sides, task="sts", position_ids=_shifted_positions(batch))


@pytest.mark.parametrize("flag", ["output_hidden_states", "output_attentions"])
def test_a_bi_encoder_task_refuses_to_return_hidden_states_or_attentions_of_no_one_pass(tiny_config, flag):
    model, _, sides = _bi_encoded_sts(tiny_config)
    with pytest.raises(ValueError, match="task 'sts': a bi-encoder task encodes each sentence apart.*encode_for_task"):
        model(**sides, task="sts", **{flag: True})


def test_a_bi_encoder_task_under_a_config_asking_for_hidden_states_answers_without_them(tiny_config):
    # from_pretrained(..., output_hidden_states=True) asks every task for what it has; a bi-encoder task still answers.
    model, batch, sides = _bi_encoded_sts(tiny_config, output_hidden_states=True)
    output = model(**sides, task="sts")
    assert output.logits.shape == (3,) and output.hidden_states is None
    assert model(**batch, task="sst").hidden_states is not None


# --- label -100 -------------------------------------------------------------------------------------------


def test_a_class_label_of_minus_100_is_ignored_by_a_classification_head(tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    batch = random_batch(tiny_config)
    out = model(**batch, task="sst", labels=torch.tensor([2, -100, 4]))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[[0, 2]], torch.tensor([2, 4])))


def test_a_class_label_of_minus_100_is_ignored_by_the_sequence_classifier(tiny_config):
    model = MinBertForSequenceClassification(_config(tiny_config, num_labels=3)).eval()
    out = model(**random_batch(tiny_config), labels=torch.tensor([-100, 1, 2]))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[1:], torch.tensor([1, 2])))


def test_class_labels_in_a_column_of_one_train_the_sequence_classifier_as_a_flat_batch_does(tiny_config):
    model = MinBertForSequenceClassification(_config(tiny_config, num_labels=3)).eval()
    batch, labels = random_batch(tiny_config), torch.tensor([0, 2, 1])
    flat = model(**batch, labels=labels).loss
    torch.testing.assert_close(model(**batch, labels=labels[:, None]).loss, flat)


# --- resize_token_embeddings ------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", [{}, {"task_specific_layers": 2, "task_specific_embeddings": True}],
                         ids=["shared", "triple"])
def test_resize_token_embeddings_grows_every_word_table_and_keeps_its_rows(tiny_config, tmp_path, architecture):
    model = MinBertForMultitask(_config(tiny_config, **architecture)).eval()
    vocab = model.config.vocab_size
    before = {task: model.task_input_embeddings(task).weight[:vocab].clone() for task in model.config.tasks}
    model.resize_token_embeddings(vocab + 3)
    assert model.config.vocab_size == vocab + 3
    for task, rows in before.items():
        table = model.task_input_embeddings(task)
        assert table.num_embeddings == vocab + 3
        torch.testing.assert_close(table.weight[:vocab], rows, rtol=0, atol=0)
    batch = random_batch(model.config)
    batch["input_ids"][:, 1] = vocab + 2  # a new token
    model.save_pretrained(tmp_path)
    reloaded = MinBertForMultitask.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        for task in model.config.tasks:
            torch.testing.assert_close(reloaded(**batch, task=task).logits, model(**batch, task=task).logits)



# --- NEFTune ------------------------------------------------------------------------------------------------


def _neftune_hook():
    try:
        from transformers.integrations.neftune import neftune_post_forward_hook
    except ImportError:  # transformers 4.x
        from transformers.trainer_utils import neftune_post_forward_hook
    return neftune_post_forward_hook


def test_neftune_noise_on_the_input_embeddings_reaches_the_encoder_in_training_only(tiny_config):
    model = MinBertModel(_config(tiny_config, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    batch = random_batch(model.config)
    clean = model(**batch).last_hidden_state
    embeddings = model.get_input_embeddings()
    embeddings.neftune_noise_alpha = 5.0  # what Trainer(neftune_noise_alpha=5.0) sets beside its hook
    embeddings.register_forward_hook(_neftune_hook())
    noisy = model.train()(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert not torch.allclose(noisy[real], clean[real]) and noisy[~real].abs().max() == 0
    torch.testing.assert_close(model.eval()(**batch).last_hidden_state, clean)


def test_trainer_with_neftune_trains_a_minbert_classifier(tiny_config, tmp_path):
    from transformers import Trainer, TrainingArguments

    batch = random_batch(tiny_config, batch=4)
    rows = [{**{key: value[row] for key, value in batch.items()}, "labels": torch.tensor(row % 2)} for row in range(4)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, report_to="none",
                             use_cpu=True, neftune_noise_alpha=5.0, save_strategy="no")
    model = MinBertForSequenceClassification(_config(tiny_config, num_labels=2))
    assert Trainer(model=model, args=args, train_dataset=rows).train().training_loss > 0


def test_a_bert_classifiers_config_maps_with_its_labels_so_its_weights_load():
    from transformers import BertForSequenceClassification

    bert = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                      id2label={0: "negative", 1: "neutral", 2: "positive"}, classifier_dropout=0.3)
    config = MinBertConfig.from_bert_config(bert)
    assert (config.num_labels, config.id2label[2], config.classifier_dropout) == (3, "positive", 0.3)
    MinBertForSequenceClassification(config).load_state_dict(BertForSequenceClassification(bert).state_dict())
