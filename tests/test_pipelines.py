"""The minBERT pipelines: answers equal to the model's own, every input form, bad input refused, and loading
from a saved folder where hf_minbert is not installed."""
import json
import logging
import math
import subprocess
import sys

import datasets
import pytest
import torch
from transformers import AutoTokenizer, pipeline

import hf_minbert.pipelines as minbert_pipelines
from hf_minbert import MinBertConfig, MinBertModel
from tests.helpers import run_isolated, tiny_model

PAIR = ("a gorgeous , witty film", "a fine and clever movie")
PAIRS = [PAIR, ("the plot was dull", "it is not very good"), ("good", "bad"), ("a film", "a film about nothing")]
TASKS = ("paraphrase-detection", "sentence-similarity", "minbert-multitask")
# named in config.json's custom_pipelines
SAVED_TASKS = (*TASKS, "text-classification", "sentiment-analysis", "feature-extraction")
BI_TASKS = {**MinBertConfig().tasks, "sts_bi": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "bi"}}


def _centred(model):
    # A random sts head answers near 0, where clipping at 0 would hide any difference: move it mid-scale.
    model.heads["sts"].layers[-1].bias.data.fill_(2.5)
    return model.eval()


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def model():
    return _centred(tiny_model())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model, tokenizer):
    path = tmp_path_factory.mktemp("saved")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _logits(model, tokenizer, task, a, b=None):
    with torch.no_grad():
        return model(**tokenizer(a, b, return_tensors="pt"), task=task).logits[0].double()


def _close(x, y, tol=1e-6):
    """Pipeline answers (dicts, lists, floats, labels) equal up to float noise."""
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k], tol) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_close(a, b, tol) for a, b in zip(x, y))
    if isinstance(x, float):
        return math.isclose(x, y, abs_tol=tol)
    return x == y


# --- registration and saving -------------------------------------------------------------------------------


@pytest.mark.slow
def test_importing_hf_minbert_registers_the_three_pipelines(tmp_path):
    code = (
        "import hf_minbert\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        "print(sorted(set(PIPELINE_REGISTRY.get_supported_tasks()) & {'paraphrase-detection', "
        "'sentence-similarity', 'minbert-multitask'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str(sorted(TASKS))


def test_saved_model_names_each_pipeline_in_config_and_holds_its_code(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "paraphrase-detection": {"impl": "pipelines.MinBertParaphrasePipeline", "pt": ["AutoModel"], "type": "text"},
        "sentence-similarity": {"impl": "pipelines.MinBertSimilarityPipeline", "pt": ["AutoModel"], "type": "text"},
        "minbert-multitask": {"impl": "pipelines.MinBertMultitaskPipeline", "pt": ["AutoModel"], "type": "text"},
        "text-classification": {"impl": "pipelines.MinBertSentimentPipeline", "pt": ["AutoModel"], "type": "text"},
        "sentiment-analysis": {"impl": "pipelines.MinBertSentimentPipeline", "pt": ["AutoModel"], "type": "text"},
        "feature-extraction": {"impl": "pipelines.MinBertFeatureExtractionPipeline", "pt": ["AutoModel"],
                               "type": "text"},
    }
    assert (model_dir / "pipelines.py").read_text() == open(minbert_pipelines.__file__).read()


def test_saving_one_pipeline_saves_the_model_with_all_of_them(tmp_path, model, tokenizer):
    pipeline("paraphrase-detection", model=model, tokenizer=tokenizer).save_pretrained(tmp_path)
    assert set(json.loads((tmp_path / "config.json").read_text())["custom_pipelines"]) == set(SAVED_TASKS)
    assert {"pipelines.py", "modeling_minbert.py", "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}


def test_a_model_without_task_heads_advertises_no_pipelines(tmp_path, tiny_config):
    MinBertModel(tiny_config).save_pretrained(tmp_path)
    assert "custom_pipelines" not in json.loads((tmp_path / "config.json").read_text())


# --- answers -----------------------------------------------------------------------------------------------


def test_paraphrase_answers_the_label_and_its_probability_as_the_para_head_does(model, tokenizer):
    probability = float(torch.sigmoid(_logits(model, tokenizer, "para", *PAIR)))
    result = pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)(PAIR)
    expected_label = "paraphrase" if probability > 0.5 else "not paraphrase"
    expected_score = probability if probability > 0.5 else 1 - probability
    assert result["label"] == expected_label
    assert result["score"] == pytest.approx(expected_score, abs=1e-6)


def test_a_pair_may_be_a_tuple_a_list_or_a_text_pair_dict(model, tokenizer):
    paraphrase = pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)
    answers = [paraphrase(PAIR), paraphrase({"text": PAIR[0], "text_pair": PAIR[1]}), paraphrase([list(PAIR)])[0]]
    assert _close(answers[0], answers[1]) and _close(answers[0], answers[2])


def test_similarity_answers_the_sts_heads_score(model, tokenizer):
    score = float(_logits(model, tokenizer, "sts", *PAIR))
    assert 0 < score < 5
    result = pipeline("sentence-similarity", model=model, tokenizer=tokenizer)(PAIR)
    assert result == {"score": pytest.approx(score, abs=1e-6)}


def test_similarity_is_clipped_to_the_heads_label_range(tokenizer):
    model = tiny_model().eval()
    model.heads["sts"].layers[-1].bias.data.fill_(40.0)
    assert pipeline("sentence-similarity", model=model, tokenizer=tokenizer)(PAIR) == {"score": 5.0}


def test_similarity_of_a_bi_encoder_head_returns_both_embeddings(tokenizer):
    model = tiny_model(tasks=BI_TASKS).eval()
    similarity = pipeline("sentence-similarity", model=model, tokenizer=tokenizer, head="sts_bi")
    result = similarity(PAIR)
    with torch.no_grad():
        u, v = (model.embed(**tokenizer([text], return_tensors="pt", return_token_type_ids=False))[0] for text in PAIR)
    low, high = 0.0, 5.0
    expected = min(max(float(5 * torch.cosine_similarity(u, v, dim=0)), low), high)
    assert result["score"] == pytest.approx(expected, abs=1e-5)
    assert torch.allclose(torch.tensor(result["embeddings"]), torch.stack([u, v]), atol=1e-5)


def test_paraphrase_with_a_bi_encoder_head_answers_as_the_head_does(tokenizer):
    tasks = {**MinBertConfig().tasks, "para": {"kind": "binary", "labels": ["no", "yes"], "pair_encoding": "bi",
                                              "bi_features": "concat"}}
    model = tiny_model(tasks=tasks).eval()
    a, b = (tokenizer([text], return_tensors="pt", return_token_type_ids=False) for text in PAIR)
    with torch.no_grad():
        logit = model(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"], input_ids_b=b["input_ids"],
                      attention_mask_b=b["attention_mask"], task="para").logits[0]
    probability = float(torch.sigmoid(logit))
    result = pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)(PAIR)
    assert result == {"label": "yes" if probability > 0.5 else "no",
                      "score": pytest.approx(max(probability, 1 - probability), abs=1e-6)}


def test_multitask_answers_sentiment_of_each_sentence_and_both_pair_heads(model, tokenizer):
    result = pipeline("minbert-multitask", model=model, tokenizer=tokenizer)(PAIR)
    sentiments = [torch.softmax(_logits(model, tokenizer, "sst", text), -1) for text in PAIR]
    labels = model.config.tasks["sst"]["labels"]
    assert [r["label"] for r in result["sst"]] == [labels[int(p.argmax())] for p in sentiments]
    assert [r["score"] for r in result["sst"]] == pytest.approx([float(p.max()) for p in sentiments], abs=1e-6)
    assert _close(result["para"], pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)(PAIR))
    assert _close(result["sts"], pipeline("sentence-similarity", model=model, tokenizer=tokenizer)(PAIR))


def test_multitask_answers_only_sentiment_for_a_single_sentence(model, tokenizer):
    result = pipeline("minbert-multitask", model=model, tokenizer=tokenizer)("a gorgeous , witty film")
    assert list(result) == ["sst"] and len(result["sst"]) == 1


def test_multitask_reads_a_none_text_pair_as_a_single_sentence_as_a_mixed_dataset_holds_one(model, tokenizer):
    multitask = pipeline("minbert-multitask", model=model, tokenizer=tokenizer)
    rows = datasets.Dataset.from_dict({"text": ["a gorgeous , witty film", PAIR[0]], "text_pair": [None, PAIR[1]]})
    answers = list(multitask(rows))
    assert list(answers[0]) == ["sst"] and set(answers[1]) == {"sst", "para", "sts"}
    assert multitask([PAIR[0], PAIR[0]], text_pair=[None, PAIR[1]]) == [multitask(PAIR[0]), multitask(PAIR)]


def test_multitask_runs_the_encoder_once_per_distinct_input(model, tokenizer):
    # 3 pairs over 3 distinct sentences: 3 sentences alone (sst on each side) + 3 cross-encoded pairs
    # (para and sts share them) = 6 encoded rows in 2 passes, not 3 × (2 sst + para + sts) = 12 rows.
    pairs = [("good", "bad"), ("good", "fine"), ("bad", "good")]
    rows = []
    hook = model.bert.register_forward_hook(lambda module, args, kwargs, out: rows.append(len(kwargs["input_ids"])),
                                            with_kwargs=True)
    try:
        pipeline("minbert-multitask", model=model, tokenizer=tokenizer)(pairs, batch_size=3)
    finally:
        hook.remove()
    assert sorted(rows) == [3, 3]


def test_bi_encoder_heads_reuse_the_sentence_pass(tokenizer):
    model = tiny_model(tasks=BI_TASKS).eval()
    calls = []
    hook = model.bert.register_forward_hook(lambda *args: calls.append(1))
    try:
        pipeline("minbert-multitask", model=model, tokenizer=tokenizer, heads=["sst", "sts_bi"])(PAIR)
    finally:
        hook.remove()
    assert len(calls) == 1


def test_a_pair_head_asked_for_by_name_refuses_a_single_sentence(model, tokenizer):
    multitask = pipeline("minbert-multitask", model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="minbert-multitask: head 'para' reads sentence pairs; got a single sentence"):
        multitask("A man plays a guitar.", heads=["para"])


def test_a_model_in_training_mode_still_answers_deterministically(tokenizer):
    model = _centred(tiny_model(hidden_dropout_prob=0.5)).train()
    similarity = pipeline("sentence-similarity", model=model, tokenizer=tokenizer)
    assert similarity(PAIR) == similarity(PAIR)
    assert model.training


def test_a_model_in_training_mode_stays_in_eval_mode_until_the_last_concurrent_call_ends():
    model = tiny_model().train()
    first = minbert_pipelines._eval_mode(model)  # one request of a web app
    second = minbert_pipelines._eval_mode(model)  # another, begun while the first runs, ending after it
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not model.training  # the second still answers without dropout
    second.__exit__(None, None, None)
    assert model.training  # and the caller's mode is back


def test_threads_sharing_a_tokenizer_never_call_it_at_once(tokenizer):
    """A fast tokenizer sets its truncation and padding settings on itself at every call, so calls that overlap
    would encode with each other's max_length."""
    import threading
    import time

    inside, overlaps = [0], []

    class Watched:
        def __call__(self, *args, **kwargs):
            inside[0] += 1
            overlaps.append(inside[0])
            time.sleep(0.002)
            try:
                return tokenizer(*args, **kwargs)
            finally:
                inside[0] -= 1

    watched = Watched()
    lengths = {16: [], 64: []}

    def encode(max_length):
        for _ in range(10):
            encoded = minbert_pipelines.encode_texts(watched, ["a long sentence " * 40], None, max_length, truncation=True)
            lengths[max_length].append(encoded["input_ids"].shape[1])

    threads = [threading.Thread(target=encode, args=(max_length,)) for max_length in (16, 64, 16, 64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(overlaps) == 1
    assert set(lengths[16]) == {16} and set(lengths[64]) == {64}


# --- input forms and batching ------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_a_list_batched_or_not_gives_one_answer_per_input_in_order(model, tokenizer, task):
    pipe = pipeline(task, model=model, tokenizer=tokenizer)
    one_by_one = [pipe(pair) for pair in PAIRS]
    assert _close(pipe(PAIRS), one_by_one)
    assert _close(pipe(PAIRS, batch_size=3), one_by_one)


def test_a_datasets_dataset_of_task_rows_streams_answers_in_order(model, tokenizer):
    rows = datasets.Dataset.from_dict({"id": ["a", "b", "c", "d"], "sentence1": [p[0] for p in PAIRS],
                                       "sentence2": [p[1] for p in PAIRS]})
    pipe = pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)
    assert _close(list(pipe(rows, batch_size=2)), [pipe(pair) for pair in PAIRS])


def test_a_datasets_column_is_read_as_its_texts(model, tokenizer):
    rows = datasets.Dataset.from_dict({"first": [p[0] for p in PAIRS], "second": [p[1] for p in PAIRS]})
    sentiment = _sentiment(model, tokenizer)
    assert sentiment(rows["first"]) == sentiment([p[0] for p in PAIRS])
    assert list(sentiment(rows.to_iterable_dataset()["first"])) == sentiment([p[0] for p in PAIRS])


def test_datasets_columns_pair_up_with_text_pair(model, tokenizer):
    rows = datasets.Dataset.from_dict({"first": [p[0] for p in PAIRS], "second": [p[1] for p in PAIRS]})
    paraphrase = pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)
    assert paraphrase(rows["first"], text_pair=rows["second"]) == paraphrase(PAIRS)


def test_a_generator_streams_answers_in_order(model, tokenizer):
    pipe = pipeline("sentence-similarity", model=model, tokenizer=tokenizer)
    streamed = pipe(({"text": a, "text_pair": b} for a, b in PAIRS), batch_size=2)
    assert _close(list(streamed), [pipe(pair) for pair in PAIRS])


def test_an_empty_list_gives_no_answers(model, tokenizer):
    assert pipeline("minbert-multitask", model=model, tokenizer=tokenizer)([]) == []


def test_over_long_input_is_truncated_with_a_warning(model, tokenizer, caplog):
    long_text = " ".join(["good"] * 200)  # the tiny model takes 64 positions
    with caplog.at_level(logging.WARNING, logger=minbert_pipelines.__name__):
        result = pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)((long_text, "fine"))
    assert result["label"] in ("paraphrase", "not paraphrase")
    assert "1 of 1 inputs are longer than max_length=64 tokens and were truncated" in caplog.text


def test_max_length_beyond_the_models_positions_is_refused(model, tokenizer):
    with pytest.raises(ValueError, match=r"max_length must lie in \[3, 64\]"):
        pipeline("paraphrase-detection", model=model, tokenizer=tokenizer, max_length=65)


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, error, message", [
    (("", "fine"), ValueError, "paraphrase-detection: text is empty"),
    (("good", "   "), ValueError, "paraphrase-detection: text_pair is empty"),
    (("good", "\u200b\ufeff"), ValueError, "paraphrase-detection: text_pair is empty \\(only spaces, control, format"),
    (("good", 3), TypeError, "paraphrase-detection: text_pair must be a string, got int"),
    (("good", None), TypeError, "paraphrase-detection: text_pair must be a string, got NoneType"),
    ({"sentence1": "good", "sentence2": None}, TypeError, "paraphrase-detection: text_pair must be a string, got NoneType"),
    ({"text": None, "text_pair": "x"}, TypeError, "paraphrase-detection: text must be a string, got NoneType"),
    (("a", "b", "c"), ValueError, "a sentence pair has 2 texts, got a tuple of 3"),
    ({"question": "a"}, ValueError, "a dict input needs 'text'"),
    (7, TypeError, "expected a string, a pair"),
    ("a single sentence", ValueError, "takes sentence pairs"),
])
def test_bad_input_is_refused_with_an_error_naming_the_pipeline_and_field(model, tokenizer, bad, error, message):
    with pytest.raises(error, match=message):
        pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)(bad)


def test_a_bad_input_inside_a_batch_is_refused_too(model, tokenizer):
    with pytest.raises(ValueError, match="text_pair is empty"):
        pipeline("sentence-similarity", model=model, tokenizer=tokenizer)([PAIR, ("good", "")], batch_size=2)


def test_a_head_of_the_wrong_kind_is_refused_by_name(model, tokenizer):
    with pytest.raises(ValueError, match="head 'sst' is a classification head on single input"):
        pipeline("paraphrase-detection", model=model, tokenizer=tokenizer, head="sst")


def test_a_model_without_the_pipelines_head_is_refused_listing_its_heads(tokenizer):
    model = tiny_model(tasks={"sst": MinBertConfig().tasks["sst"]}).eval()
    with pytest.raises(ValueError, match="needs one regression sentence-pair head, found none among sst"):
        pipeline("sentence-similarity", model=model, tokenizer=tokenizer)(PAIR)


def test_a_model_without_task_heads_is_refused_by_the_pipeline(tokenizer, tiny_config):
    tiny_config.vocab_size = 30522
    with pytest.raises(TypeError, match="paraphrase-detection: needs a minBERT multitask model .* got MinBertModel"):
        pipeline("paraphrase-detection", model=MinBertModel(tiny_config), tokenizer=tokenizer)


# --- stock pipeline and remote code ------------------------------------------------------------------------


def test_stock_text_classification_answers_with_the_sst_head_and_labels(model, tokenizer):
    result = pipeline("text-classification", model=model, tokenizer=tokenizer)(PAIR[0], top_k=None)
    probabilities = torch.softmax(_logits(model, tokenizer, "sst", PAIR[0]), -1)
    by_label = {r["label"]: r["score"] for r in result}
    assert by_label == {label: pytest.approx(float(p), abs=1e-5)
                        for label, p in zip(model.config.tasks["sst"]["labels"], probabilities)}


def test_stock_text_classification_answers_a_regression_default_heads_score_as_it_is(tokenizer):
    model = tiny_model().eval()
    model.config.default_task = "sts"
    with torch.no_grad():
        model.heads["sts"].layers[-1].bias.fill_(2.5)  # a score above 1, which a sigmoid would hide
    result = pipeline("text-classification", model=model, tokenizer=tokenizer)(PAIR[0])
    with torch.no_grad():
        score = model(**tokenizer(PAIR[0], return_tensors="pt")).logits.item()
    assert result == [{"label": "sts", "score": pytest.approx(score, abs=1e-5)}] and score > 1


def _sentiment(model, tokenizer, **kwargs):
    return pipeline("text-classification", model=model, tokenizer=tokenizer,
                    pipeline_class=minbert_pipelines.MinBertSentimentPipeline, **kwargs)


def test_text_classification_of_a_saved_folder_is_the_checked_sentiment_pipeline(model_dir):
    classify = pipeline("text-classification", model=str(model_dir), trust_remote_code=True)
    assert type(classify).__name__ == "MinBertSentimentPipeline"
    with pytest.raises(ValueError, match="text-classification: text is empty"):
        classify("")


@pytest.mark.parametrize("call", [
    lambda pipe: pipe(PAIR[0]),
    lambda pipe: pipe(list(PAIR)),
    lambda pipe: pipe(list(PAIR), batch_size=2),
    lambda pipe: pipe(PAIR[0], top_k=None),
    lambda pipe: pipe(list(PAIR), top_k=2),
], ids=["one", "list", "batched", "all-labels", "top-2"])
def test_sentiment_answers_as_the_stock_pipeline_on_valid_input(model, tokenizer, call):
    stock = pipeline("text-classification", model=model, tokenizer=tokenizer)
    assert _close(call(_sentiment(model, tokenizer)), call(stock), tol=1e-5)


@pytest.mark.parametrize("bad, error, message", [
    ("", ValueError, "text-classification: text is empty"),
    ("   ", ValueError, "text-classification: text is empty"),
    ("\u0301", ValueError, "text-classification: text is empty"),
    (("Great movie", None), TypeError, "text-classification: text_pair must be a string, got NoneType"),
    (PAIR, ValueError, "text-classification: classifies one sentence; got a pair"),
    ({"text": PAIR[0], "text_pair": PAIR[1]}, ValueError, "classifies one sentence; got a pair"),
    (None, TypeError, "text-classification: expected a string"),
    ([PAIR[0], 3], TypeError, "text-classification: expected a string"),
])
def test_sentiment_refuses_empty_non_string_and_pair_input(model, tokenizer, bad, error, message):
    with pytest.raises(error, match=message):
        _sentiment(model, tokenizer)(bad)


def test_sentiment_answers_an_empty_list_with_no_answers(model, tokenizer):
    assert _sentiment(model, tokenizer)([]) == []


def test_sentiment_answers_with_the_default_tasks_head(tokenizer):
    tasks = {**MinBertConfig().tasks, "mood": {"kind": "binary", "labels": ["sad", "happy"]}}
    model = tiny_model(tasks=tasks, default_task="mood").eval()
    probability = float(torch.sigmoid(_logits(model, tokenizer, "mood", PAIR[0])))
    assert _close(_sentiment(model, tokenizer)(PAIR[0], top_k=None),
                  sorted([{"label": "sad", "score": 1 - probability}, {"label": "happy", "score": probability}],
                         key=lambda answer: -answer["score"]))


def test_sentiment_refuses_a_pair_head(model, tokenizer):
    with pytest.raises(ValueError, match="head 'para' is a binary head on cross input"):
        _sentiment(model, tokenizer, head="para")


@pytest.mark.slow
def test_text_classification_of_a_saved_folder_refuses_bad_input_as_remote_code(model_dir):
    out = run_isolated(
        f"""
        from transformers import pipeline
        for task in ("text-classification", "sentiment-analysis"):
            classify = pipeline(task, model={str(model_dir)!r}, trust_remote_code=True)
            print(type(classify).__name__, classify([]))
            for bad in ("", ("a fine film", "a dull film"), {{"text": "a", "text_pair": "b"}}, [None]):
                try:
                    classify(bad)
                except (TypeError, ValueError) as error:
                    print(type(error).__name__, str(error).split(";")[0])
        """,
        cwd=model_dir,
    )
    assert out.splitlines()[:5] == [
        "MinBertSentimentPipeline []",
        "ValueError text-classification: text is empty",
        "ValueError text-classification: classifies one sentence",
        "ValueError text-classification: classifies one sentence",
        "TypeError text-classification: expected a string, a pair (text, text_pair) or a dict with 'text' and 'text_pair'",
    ]
    assert out.splitlines()[5:7] == ["MinBertSentimentPipeline []", "ValueError sentiment-analysis: text is empty"]


@pytest.mark.slow
def test_a_remote_code_copy_saves_the_pipelines_again(model_dir, tmp_path):
    # transformers#29714: a model fine-tuned from a remote-code repo must push all the code it needs.
    run_isolated(
        f"""
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(model_dir)!r}, trust_remote_code=True)
        model.save_pretrained({str(tmp_path / 'again')!r})
        """,
        cwd=tmp_path,
    )
    saved = tmp_path / "again"
    assert {"modeling_minbert.py", "configuration_minbert.py", "pipelines.py"} <= {p.name for p in saved.iterdir()}
    assert set(json.loads((saved / "config.json").read_text())["custom_pipelines"]) == set(SAVED_TASKS)



def test_similarity_with_a_cosine_feature_head_equals_the_models_forward(tokenizer):
    tasks = {"sts": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "cross", "cosine_feature": True}}
    model = tiny_model(tasks=tasks, default_task="sts").eval()
    joint = tokenizer(*PAIR, return_tensors="pt")
    a, b = tokenizer(PAIR[0], return_tensors="pt"), tokenizer(PAIR[1], return_tensors="pt")
    with torch.no_grad():
        expected = model(**joint, input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"],
                         input_ids_b=b["input_ids"], attention_mask_b=b["attention_mask"], task="sts").logits
    result = pipeline("sentence-similarity", model=model, tokenizer=tokenizer)(PAIR)
    assert result["score"] == pytest.approx(min(max(float(expected), 0.0), 5.0), abs=1e-5)


# --- transformers' call options ----------------------------------------------------------------------------


def test_sentiment_takes_truncation_true_and_truncates_without_a_warning(model, tokenizer, caplog):
    long_text = "good " * 200
    with caplog.at_level(logging.WARNING, logger=minbert_pipelines.__name__):
        answer = _sentiment(model, tokenizer)(long_text, truncation=True)
    assert not caplog.records
    assert answer == _sentiment(model, tokenizer)(long_text)


def test_truncation_false_refuses_over_long_input(model, tokenizer):
    with pytest.raises(ValueError, match="paraphrase-detection: truncation=False, but 1 of 1 inputs are longer"):
        pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)(("good " * 200, "bad"), truncation=False)


@pytest.mark.parametrize("function_to_apply", ["softmax", "sigmoid", "none"])
def test_sentiment_scores_with_function_to_apply_as_the_stock_pipeline(model, tokenizer, function_to_apply):
    stock = pipeline("text-classification", model=model, tokenizer=tokenizer)
    ours = _sentiment(model, tokenizer)(PAIR[0], top_k=None, function_to_apply=function_to_apply)
    assert _close(ours, stock(PAIR[0], top_k=None, function_to_apply=function_to_apply), tol=1e-5)


def test_an_option_the_pipeline_does_not_take_is_a_one_line_error_naming_it(model, tokenizer):
    with pytest.raises(ValueError, match="text-classification: no option return_all_scores; it takes head"):
        _sentiment(model, tokenizer)(PAIR[0], return_all_scores=True)


def test_paraphrase_takes_the_second_text_as_text_pair(model, tokenizer):
    paraphrase = pipeline("paraphrase-detection", model=model, tokenizer=tokenizer)
    assert paraphrase(PAIR[0], text_pair=PAIR[1]) == paraphrase(PAIR)
    assert paraphrase([a for a, _ in PAIRS], text_pair=[b for _, b in PAIRS]) == paraphrase(PAIRS)


def test_stock_text_classification_of_a_binary_default_head_answers_its_probabilities(tokenizer):
    model = tiny_model(tasks={"mood": {"kind": "binary", "labels": ["sad", "happy"]}}).eval()
    model.heads["mood"].layers[-1].bias.data.fill_(1.0)  # away from 0.5, where both labels tie
    stock = pipeline("text-classification", model=model, tokenizer=tokenizer)
    happy = float(torch.sigmoid(_logits(model, tokenizer, "mood", PAIR[0])))
    assert _close(stock(PAIR[0], top_k=None), [{"label": "happy", "score": happy}, {"label": "sad", "score": 1 - happy}],
                  tol=1e-5)


# --- feature extraction -----------------------------------------------------------------------------------


def _features(model, tokenizer, text, task):
    with torch.no_grad():
        return model.encode_for_task(task, **tokenizer(text, return_tensors="pt")).last_hidden_state


def test_feature_extraction_of_a_saved_folder_returns_the_default_heads_token_features(model, model_dir, tokenizer):
    extract = pipeline("feature-extraction", model=str(model_dir), trust_remote_code=True)
    features = torch.tensor(extract(PAIR[0]))
    torch.testing.assert_close(features, _features(model, tokenizer, PAIR[0], "sst"), rtol=0, atol=1e-5)


def test_feature_extraction_reads_the_chosen_heads_own_layers(tmp_path, tokenizer):
    model = tiny_model(task_specific_layers=1).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    extract = pipeline("feature-extraction", model=str(tmp_path), trust_remote_code=True)
    features = extract(PAIR[0], head="para", return_tensors=True)
    torch.testing.assert_close(features, _features(model, tokenizer, PAIR[0], "para"), rtol=0, atol=1e-5)
    assert not torch.allclose(features, _features(model, tokenizer, PAIR[0], "sst"))


def test_feature_extraction_takes_the_stock_truncation_option(model_dir, model):
    extract = pipeline("feature-extraction", model=str(model_dir), trust_remote_code=True)
    features = extract("good " * 200, truncation=True, tokenize_kwargs={"max_length": 16}, return_tensors=True)
    assert features.shape == (1, 16, model.config.hidden_size)


@pytest.mark.parametrize("text, tokenize_kwargs, length", [
    (PAIR[0], {"padding": "max_length", "max_length": 16}, 16),
    ("good " * 200, {"truncation": "longest_first", "max_length": 8}, 8),
    (PAIR[0], {"return_token_type_ids": False}, None),
])
def test_feature_extraction_takes_the_stock_tokenize_kwargs(model_dir, model, tokenizer, text, tokenize_kwargs, length):
    extract = pipeline("feature-extraction", model=str(model_dir), trust_remote_code=True)
    features = extract(text, tokenize_kwargs=tokenize_kwargs, return_tensors=True)
    assert features.shape == (1, length or len(tokenizer(text)["input_ids"]), model.config.hidden_size)


@pytest.mark.parametrize("strategy", ["only_first", "only_second", 1])
def test_a_truncation_strategy_that_cannot_cut_every_heads_input_is_refused_in_one_line(model, tokenizer, strategy):
    with pytest.raises(ValueError, match="^text-classification: truncation must be True, False, 'longest_first'"):
        _sentiment(model, tokenizer)("good " * 200, truncation=strategy)


def test_feature_extraction_refuses_to_drop_the_attention_mask(model_dir):
    extract = pipeline("feature-extraction", model=str(model_dir), trust_remote_code=True)
    with pytest.raises(ValueError, match="return_attention_mask=False: the model reads the attention mask"):
        extract(PAIR[0], tokenize_kwargs={"return_attention_mask": False})


def test_feature_extraction_refuses_tensors_other_than_torchs(model_dir):
    extract = pipeline("feature-extraction", model=str(model_dir), trust_remote_code=True)
    with pytest.raises(ValueError, match="^feature-extraction: tokenize_kwargs return_tensors='np': the model reads"):
        extract(PAIR[0], tokenize_kwargs={"return_tensors": "np"})


@pytest.fixture(scope="module")
def extract(model_dir):
    return pipeline("feature-extraction", model=str(model_dir), trust_remote_code=True)


def test_feature_extraction_of_a_pair_returns_the_features_of_both_texts_encoded_together(extract, model, tokenizer):
    features = extract(PAIR[0], text_pair=PAIR[1], return_tensors=True)
    with torch.no_grad():
        expected = model.encode_for_task("sst", **tokenizer(*PAIR, return_tensors="pt")).last_hidden_state
    torch.testing.assert_close(features, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(extract(PAIR, return_tensors=True), features, rtol=0, atol=0)


def test_feature_extraction_truncates_over_long_input_at_max_length_with_a_warning(extract, model, caplog):
    with caplog.at_level(logging.WARNING, logger=minbert_pipelines.__name__):
        features = extract("good " * 200, max_length=16, return_tensors=True)
    assert features.shape == (1, 16, model.config.hidden_size)
    assert "1 of 1 inputs are longer than max_length=16 tokens and were truncated" in caplog.text


def test_feature_extraction_without_max_length_truncates_at_the_models_positions(extract, model):
    features = extract("good " * 200, truncation=True, return_tensors=True)
    assert features.shape == (1, model.config.max_position_embeddings, model.config.hidden_size)


def test_feature_extraction_refuses_an_option_it_does_not_take(extract):
    with pytest.raises(ValueError, match=r"^feature-extraction: no option top_k; it takes head, max_length"):
        extract(PAIR[0], top_k=3)


def test_feature_extraction_refuses_max_length_given_twice(extract):
    with pytest.raises(ValueError, match="max_length given twice"):
        extract(PAIR[0], max_length=8, tokenize_kwargs={"max_length": 8})


def test_feature_extraction_refuses_empty_text(extract):
    with pytest.raises(ValueError, match="^feature-extraction: text is empty$"):
        extract("   ")


def test_feature_extraction_reads_a_datasets_dataset_row_by_row(extract):
    rows = datasets.Dataset.from_dict({"sentence": [PAIR[0], PAIR[1]]})
    features = list(extract(rows, return_tensors=True))
    torch.testing.assert_close(features[1], extract(PAIR[1], return_tensors=True), rtol=0, atol=1e-6)


def test_feature_extraction_refuses_an_ensemble_naming_why(model, tokenizer):
    from hf_minbert import MinBertEnsembleForMultitask

    ensemble = MinBertEnsembleForMultitask.from_members([model], {"sst": [1.0]})
    with pytest.raises(ValueError, match="has no single encoder whose token features to return"):
        pipeline("feature-extraction", model=ensemble, tokenizer=tokenizer,
                 pipeline_class=minbert_pipelines.MinBertFeatureExtractionPipeline)


@pytest.mark.slow
def test_feature_extraction_of_a_saved_folder_returns_token_features_as_remote_code(model, model_dir, tokenizer):
    out = run_isolated(
        f"""
        import json
        from transformers import pipeline
        extract = pipeline("feature-extraction", model={str(model_dir)!r}, trust_remote_code=True)
        print(json.dumps(extract({PAIR[0]!r})))
        """,
        cwd=model_dir,
    )
    features = torch.tensor(json.loads(out.splitlines()[-1]))
    torch.testing.assert_close(features, _features(model, tokenizer, PAIR[0], "sst"), rtol=0, atol=1e-5)
