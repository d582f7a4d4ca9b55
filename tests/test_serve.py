"""`minbert serve`: the Gradio demo answers as the model's own pipelines do, for one model or an ensemble, refuses
bad input with a message, shows the dev metrics, keeps gradio out of the core package and, for real, serves a
page that a headless browser drives (with MINBERT_RETAKE_SCREENSHOT=1 it also retakes docs/images/demo.png)."""
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, pipeline

from hf_minbert import MinBertConfig, MinBertEnsembleForMultitask, MinBertForMultitask
from hf_minbert.cli import main as minbert
from hf_minbert.metrics import with_overall_scores
from model_cards import write_model_card
from tests.helpers import free_port, tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]
# The docs' picture of the demo; the browser test retakes it only when asked (a test run leaves the tree as it was).
SCREENSHOT = REPO_ROOT / "docs" / "images" / "demo.png"
RETAKE_SCREENSHOT = os.environ.get("MINBERT_RETAKE_SCREENSHOT") == "1"
SENTENCE = "a gorgeous , witty and seductive movie"
PAIR = ("how do i learn to cook ?", "what is the best way to learn cooking ?")
SERVER_SECONDS = 300  # the server's whole lifetime: it cannot outlive a hung test
START_SECONDS = 180  # importing gradio and loading the model on a busy 2-core machine
STOP_SECONDS = 60  # a clean stop takes a few seconds; a machine shared with training jobs can stretch that


def bi_encoder_tasks(**sts):
    """The default heads, with STS read from two separately encoded sentences (the training default)."""
    tasks = MinBertConfig().tasks
    return {**tasks, "sts": {**tasks["sts"], "pair_encoding": "bi", **sts}}


def save_demo_model(path, tokenizer_path, tasks=None, seed=0, metrics=True):
    """A tiny random model folder as `minbert train` leaves it, with heads biased so that the five sentiment
    probabilities differ and the paraphrase answer is clear."""
    model = tiny_model(tasks=tasks or bi_encoder_tasks(), seed=seed)
    model.heads["sst"].layers[-1].bias.data = torch.tensor([0.0, 0.4, 0.8, 1.2, 1.6])
    model.heads["para"].layers[-1].bias.data.fill_(1.0)
    model.eval().save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(path)
    if metrics:
        scores = with_overall_scores({"sst": {"accuracy": 0.41}, "para": {"accuracy": 0.62},
                                      "sts": {"pearson": 0.33, "spearman": 0.31}})
        (Path(path) / "metrics.json").write_text(json.dumps(scores))
        write_model_card(path, metrics=scores, base_model=tokenizer_path, train_seconds=60.0)
    return Path(path)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, minilm_path):
    return save_demo_model(tmp_path_factory.mktemp("models") / "tiny-random-minbert", minilm_path)


@pytest.fixture(scope="module")
def demo_app():
    pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[dev]' installs it)")
    from hf_minbert import demo_app

    return demo_app


@pytest.fixture(scope="module")
def demo_model(demo_app, model_dir):
    return demo_app.DemoModel(model_dir)


def pipeline_answers(model_dir, sentence, pair):
    """What a Hub user's pipelines answer for the same inputs (the reference the demo must show)."""
    load = {"model": str(model_dir), "trust_remote_code": True}
    sentiment = pipeline("text-classification", **load)(sentence, top_k=None)
    similarity = pipeline("sentence-similarity", **load)(pair)
    return {
        "sentiment": {answer["label"]: answer["score"] for answer in sentiment},
        "paraphrase": pipeline("paraphrase-detection", **load)(pair),
        "similarity": similarity,
        "cosine": float(torch.nn.functional.cosine_similarity(*torch.tensor(similarity["embeddings"]).double(), dim=0)),
        "multitask": pipeline("minbert-multitask", **load)(pair),
    }


@pytest.fixture(scope="module")
def expected(model_dir):
    return pipeline_answers(model_dir, SENTENCE, PAIR)


# --- the core package stays free of gradio ------------------------------------------------------------------


@pytest.mark.slow
def test_importing_the_package_and_its_commands_does_not_import_gradio():
    script = ("import sys, hf_minbert, hf_minbert.cli, hf_minbert.space, hf_minbert.commands.serve, "
              "hf_minbert.commands.space, hf_minbert.commands.push; print('gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "False"


def test_serve_without_gradio_says_in_one_line_to_install_the_demo_extra(model_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` meets where it is not installed
    assert minbert(["serve", str(model_dir)]) == 2
    error = capsys.readouterr().err
    assert error == 'minbert serve: gradio is not installed; install the demo extra: pip install "hf_minbert[demo]"\n'


def test_serve_refuses_a_folder_without_a_model_in_one_line(tmp_path, capsys):
    assert minbert(["serve", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"minbert serve: {tmp_path}: no config.json; is this a saved model folder?\n"


def test_serve_refuses_a_model_without_the_minbert_pipelines(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert minbert(["serve", str(tmp_path)]) == 2
    assert "no custom_pipelines" in capsys.readouterr().err


def test_serve_refuses_a_folder_whose_earlier_pipelines_lack_one_the_demo_answers_with(model_dir, tmp_path, capsys):
    # as an hf_minbert that had no text-classification pipeline of its own saved it
    folder = tmp_path / "earlier"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    for task in ("text-classification", "sentiment-analysis", "feature-extraction"):
        del config["custom_pipelines"][task]
    (folder / "config.json").write_text(json.dumps(config))
    assert minbert(["serve", str(folder)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"minbert serve: {folder / 'config.json'}: saved by an earlier hf_minbert whose pipelines "
                            "lack text-classification, which the demo answers with: load and save the folder again")
    assert "\n" not in error


def test_serve_does_not_ask_an_earlier_folder_for_a_pipeline_of_a_head_it_lacks(model_dir, tmp_path):
    from hf_minbert.space import check_served_model

    folder = tmp_path / "pairs-only"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["tasks"] = {name: spec for name, spec in config["tasks"].items() if spec["pair_encoding"] != "single"}
    for task in ("text-classification", "sentiment-analysis", "feature-extraction"):
        del config["custom_pipelines"][task]
    (folder / "config.json").write_text(json.dumps(config))
    check_served_model(folder)  # no single-sentence head: the demo builds no sentiment pipeline


def _copy_without(model_dir, tmp_path, *names):
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns(*names))
    return copy


def test_serve_refuses_a_folder_without_its_tokenizer_in_one_line(model_dir, tmp_path, capsys):
    copy = _copy_without(model_dir, tmp_path, "tokenizer.json", "vocab.txt", "tokenizer_config.json")
    assert minbert(["serve", str(copy)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no complete tokenizer" in error[0], error


def test_serve_refuses_truncated_weights_in_one_line_naming_the_file(model_dir, tmp_path, capsys):
    copy = _copy_without(model_dir, tmp_path)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    assert minbert(["serve", str(copy)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"cannot read {weights} (truncated or corrupt?)" in error[0], error


@pytest.mark.slow
def test_serve_refuses_a_port_in_use_before_loading_the_model(model_dir, demo_app, monkeypatch, capsys):
    monkeypatch.setattr(demo_app, "build_demo", lambda *args: pytest.fail("the model was loaded"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert minbert(["serve", str(model_dir), "--port", str(port)]) == 2
    assert capsys.readouterr().err.startswith(f"minbert serve: cannot listen on 127.0.0.1:{port}: ")


def test_serve_checks_an_ipv6_address_as_the_server_listens_on_it():
    from hf_minbert.commands.serve import ServeError, check_port

    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        check_port("::1", free_port())  # free: accepted
        with pytest.raises(ServeError, match=rf"^cannot listen on \[::1\]:{port}: "):
            check_port("::1", port)


# --- the answers: exactly the pipelines' ----------------------------------------------------------------------


def test_ctrl_c_closes_the_server_and_a_second_ctrl_c_while_closing_is_ignored(demo_app, monkeypatch):
    class Interrupted:
        def wait(self):
            raise KeyboardInterrupt

    calls = []
    demo = type("Demo", (), {"launch": lambda self, **kwargs: calls.append(("launch", kwargs)),
                             "close": lambda self: calls.append("close")})()
    monkeypatch.setattr(demo_app.threading, "Event", Interrupted)
    monkeypatch.setattr(demo_app.signal, "signal", lambda number, handler: calls.append((number, handler)))
    demo_app.launch(demo, server_port=7861)
    assert calls == [("launch", {"prevent_thread_lock": True, "server_port": 7861}),
                     (signal.SIGINT, signal.SIG_IGN), "close"]


@pytest.mark.slow
def test_sentiment_shows_every_class_probability_of_the_text_classification_pipeline(demo_model, expected):
    shown = demo_model.sentiment(SENTENCE)
    assert list(shown) == list(expected["sentiment"])
    assert shown == pytest.approx(expected["sentiment"], abs=1e-6)


@pytest.mark.slow
def test_the_demo_leaves_the_processs_auto_classes_as_they_were(demo_app, model_dir):
    from transformers import AutoModel, AutoModelForSequenceClassification

    from hf_minbert import MinBertConfig

    def mapped():
        return {auto: auto._model_mapping[MinBertConfig] for auto in (AutoModel, AutoModelForSequenceClassification)}

    before = mapped()
    demo_app.DemoModel(model_dir)
    assert mapped() == before


def test_paraphrase_shows_the_pipelines_label_first_and_both_probabilities(demo_model, expected):
    shown = demo_model.paraphrase(*PAIR)
    label, probability = next(iter(shown.items()))
    assert (label, probability) == (expected["paraphrase"]["label"], pytest.approx(expected["paraphrase"]["score"]))
    assert sum(shown.values()) == pytest.approx(1.0) and len(shown) == 2


def test_similarity_shows_the_pipelines_score_and_the_cosine_of_its_bi_encoder_embeddings(demo_model, expected):
    score, cosine = demo_model.similarity(*PAIR)
    assert score == pytest.approx(expected["similarity"]["score"], abs=1e-9)
    assert cosine == pytest.approx(expected["cosine"], abs=1e-9)


def test_the_all_tasks_tab_answers_as_the_multitask_pipeline(demo_model, expected):
    assert demo_model.all_tasks(*PAIR) == expected["multitask"]


@pytest.mark.parametrize("second", ["  ", "\u200b"])  # spaces, or only a character the tokenizer drops
def test_the_all_tasks_tab_answers_sentiment_alone_for_a_single_sentence(demo_model, second):
    assert list(demo_model.all_tasks(SENTENCE, second)) == ["sst"]


def test_a_cross_encoder_head_with_the_cosine_feature_shows_the_cosine_it_reads(demo_app, tmp_path, minilm_path):
    folder = save_demo_model(tmp_path / "cosine", minilm_path, tasks=bi_encoder_tasks(pair_encoding="cross",
                                                                                       cosine_feature=True))
    tokenizer, model = AutoTokenizer.from_pretrained(folder), MinBertForMultitask.from_pretrained(folder).eval()
    with torch.no_grad():
        first, second = model.embed(**tokenizer(list(PAIR), padding=True, return_tensors="pt"), task="sts")
    _, cosine = demo_app.DemoModel(folder).similarity(*PAIR)
    assert cosine == pytest.approx(float(torch.cosine_similarity(first, second, dim=0)), abs=1e-5)


def test_a_cross_encoder_head_without_the_cosine_feature_shows_no_cosine(demo_app, tmp_path, minilm_path):
    folder = save_demo_model(tmp_path / "cross", minilm_path, tasks=bi_encoder_tasks(pair_encoding="cross"))
    assert demo_app.DemoModel(folder).similarity(*PAIR)[1] is None


def test_the_all_tasks_tab_asks_for_a_pair_where_every_head_reads_pairs(demo_app, tmp_path, minilm_path):
    model = tiny_model(tasks={name: spec for name, spec in bi_encoder_tasks().items() if name != "sst"})
    model.eval().save_pretrained(tmp_path / "pairs")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "pairs")
    with pytest.raises(ValueError, match="^Sentence B is empty: this model's heads all answer for a pair"):
        demo_app.DemoModel(tmp_path / "pairs").all_tasks(PAIR[0], "")


NLI = {"kind": "classification", "labels": ["entailment", "neutral", "contradiction"], "pair_encoding": "cross"}


def test_the_all_tasks_tab_answers_with_every_head_a_task_of_ones_own_too(demo_app, tmp_path, minilm_path):
    folder = save_demo_model(tmp_path / "nli", minilm_path, tasks={**bi_encoder_tasks(), "nli": NLI}, metrics=False)
    shown = demo_app.DemoModel(folder)
    assert set(shown.all_tasks(*PAIR)) == {"sst", "para", "sts", "nli"}
    assert "nli" not in shown.heads.values()  # no tab of its own: answered in All tasks


def test_a_model_of_pair_heads_of_ones_own_alone_still_asks_for_a_pair(demo_app, tmp_path, minilm_path):
    model = tiny_model(tasks={"nli": NLI})
    model.eval().save_pretrained(tmp_path / "nli")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "nli")
    shown = demo_app.DemoModel(tmp_path / "nli")
    assert list(shown.all_tasks(*PAIR)) == ["nli"]
    with pytest.raises(ValueError, match="^Sentence B is empty: this model's heads all answer for a pair"):
        shown.all_tasks(PAIR[0], "")


def test_a_tab_answered_by_a_head_of_ones_own_is_named_after_the_head(demo_app, tmp_path, minilm_path):
    tasks = {"topic": {"kind": "classification", "labels": ["art", "sport"], "pair_encoding": "single"},
             "qnli": {"kind": "binary", "labels": ["no", "yes"], "pair_encoding": "cross"}}
    tiny_model(tasks=tasks).eval().save_pretrained(tmp_path / "own")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "own")
    demo = demo_app.build_demo(str(tmp_path / "own"))
    tabs = {block.label for block in demo.blocks.values() if isinstance(block, demo_app.gr.Tab)}
    assert tabs == {"topic", "qnli", "All tasks"}


def test_the_sentiment_tab_follows_the_text_classification_pipelines_head_not_only_the_default(
        demo_app, tmp_path, minilm_path):
    model = tiny_model(tasks=bi_encoder_tasks())
    model.config.default_task = "para"
    model.eval().save_pretrained(tmp_path / "para_default")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "para_default")
    assert demo_app.DemoModel(tmp_path / "para_default").heads["sentiment"] == "sst"


@pytest.mark.slow
def test_an_ensemble_folder_is_served_through_the_same_pipelines(demo_app, tmp_path, minilm_path):
    members = [tiny_model(seed=0).eval(), tiny_model(seed=1).eval()]
    ensemble = MinBertEnsembleForMultitask.from_members(members, {"sst": [1, 1], "para": [1, 0], "sts": [1, 3]})
    ensemble.eval().save_pretrained(tmp_path / "ensemble")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "ensemble")
    shown = demo_app.DemoModel(tmp_path / "ensemble")
    load = {"model": str(tmp_path / "ensemble"), "trust_remote_code": True}
    assert shown.sentiment(SENTENCE) == pytest.approx(
        {a["label"]: a["score"] for a in pipeline("text-classification", **load)(SENTENCE, top_k=None)}, abs=1e-6)
    assert shown.similarity(*PAIR) == (pytest.approx(pipeline("sentence-similarity", **load)(PAIR)["score"]), None)
    assert shown.all_tasks(*PAIR) == pipeline("minbert-multitask", **load)(PAIR)


# --- bad input and the metrics panel ------------------------------------------------------------------------


@pytest.mark.parametrize("first, second, message", [
    ("", PAIR[1], "Sentence A is empty"),
    (PAIR[0], "   ", "Sentence B is empty"),
    (PAIR[0], "\u200b", "Sentence B is empty"),  # only a character the tokenizer drops
    ("word " * 70, PAIR[1], "Sentence A is 72 tokens long; this model reads at most 64"),
    ("word " * 31, "word " * 31, "Sentences A and B together are 65 tokens long; this model reads at most 64"),
])
def test_empty_or_over_long_input_is_refused_with_a_message_naming_it(demo_model, first, second, message):
    with pytest.raises(ValueError, match=message):
        demo_model.similarity(first, second)


def test_bad_input_reaches_the_page_as_a_gradio_error_not_a_traceback(demo_app, demo_model):
    import gradio as gr

    with pytest.raises(gr.Error, match="The sentence is empty"):
        demo_app._shown_errors(demo_model.sentiment)("")


def test_dev_metrics_come_from_metrics_json(demo_app, model_dir):
    shown = demo_app.dev_metrics_markdown(model_dir)
    assert "| sst | accuracy | 0.410 |" in shown and "| all | overall |" in shown


def test_dev_metrics_come_from_the_cards_front_matter_without_metrics_json(demo_app, model_dir, tmp_path):
    shutil.copy(model_dir / "README.md", tmp_path / "README.md")
    assert "| 0.620 |" in demo_app.dev_metrics_markdown(tmp_path)


@pytest.mark.parametrize("content, problem", [("[0.5]", "ValueError: expected a JSON object of scores, got a list"),
                                               ('{"sst": {"accuracy": 0.41},}', "JSONDecodeError: ")])
def test_a_metrics_json_that_cannot_be_read_is_named_and_the_cards_scores_shown(demo_app, model_dir, tmp_path, content,
                                                                                  problem):
    shutil.copy(model_dir / "README.md", tmp_path / "README.md")
    (tmp_path / "metrics.json").write_text(content)
    shown = demo_app.dev_metrics_markdown(tmp_path)
    assert "| 0.620 |" in shown and f"metrics.json could not be read: {problem}" in shown


def test_a_score_that_is_true_or_false_is_not_shown_as_a_number(demo_app, tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"overall": True, "sst": {"accuracy": 0.41}}))
    shown = demo_app.dev_metrics_markdown(tmp_path)
    assert "| sst | accuracy | 0.410 |" in shown and "overall" not in shown


def test_a_model_without_metrics_says_so(demo_app, tmp_path):
    assert "no metrics.json and no results in its card" in demo_app.dev_metrics_markdown(tmp_path)


# --- for real: the served page in a headless browser ---------------------------------------------------------


def _browser():
    """(chromium, chromedriver) paths, or None where Debian's packages are not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _start_server(command, port, log_path, cwd=None, env=None):
    """Start `command` under `timeout` and wait (bounded) until it listens on 127.0.0.1:`port`."""
    log = open(log_path, "wb")
    server = subprocess.Popen(["timeout", str(SERVER_SECONDS), *command], stdout=log, stderr=subprocess.STDOUT,
                              cwd=cwd, env=env)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}: {Path(log_path).read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.5)
    _stop_server(server)
    raise RuntimeError(f"the server did not listen within {START_SECONDS} s: {Path(log_path).read_text()[-3000:]}")


def _stop_server(server):
    """Ctrl-C by PID (`timeout` passes SIGINT on), then a kill if it has not exited within STOP_SECONDS."""
    server.send_signal(signal.SIGINT)
    try:
        return server.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.wait()


def _chrome(chromium, driver):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def _run_tab(browser, tab, inputs, button, output, shown="meter"):
    """Open `tab`, type each text into its box, press the button; return the output element once it shows
    `shown` (a CSS selector: a gr.Label's bars, a gauge's number)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.XPATH, f"//button[@role='tab' and normalize-space()='{tab}']").click()
    for elem_id, text in inputs.items():
        box = WebDriverWait(browser, 30).until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, f"#{elem_id} textarea")))
        box.clear()
        box.send_keys(text)
    browser.find_element(By.ID, button).click()
    WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, f"#{output} {shown}"))
    return browser.find_element(By.ID, output)


def _label_bars(element):
    """{class: probability} as a gr.Label draws them: one <meter> per class, its value the probability."""
    from selenium.webdriver.common.by import By

    return {meter.get_attribute("aria-label"): float(meter.get_attribute("value"))
            for meter in element.find_elements(By.TAG_NAME, "meter")}


def _save_small_png(png_bytes, path):
    """The screenshot as a 64-colour palette PNG: a few tens of kB in the repository instead of hundreds."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png_bytes)).convert("RGB").quantize(colors=64).save(path, optimize=True)


@pytest.mark.slow
def test_a_browser_sees_the_pipelines_answers_on_the_served_page(model_dir, expected, tmp_path):
    paths = _browser()
    if paths is None:
        pytest.skip("no chromium + chromedriver (Debian's chromium and chromium-driver; .ci/run installs them)")
    pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    minbert_cli = [sys.executable, "-m", "hf_minbert.cli", "serve", str(model_dir), "--port", str(port)]
    server = _start_server(minbert_cli, port, tmp_path / "serve.log",
                           env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")})
    browser = None
    try:
        browser = _chrome(*paths)
        browser.set_page_load_timeout(60)
        browser.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(browser, 60).until(lambda b: "0.410" in b.find_element(By.ID, "dev-metrics").text)

        sentiment = _run_tab(browser, "Sentiment", {"sentiment-text": SENTENCE}, "sentiment-run", "sentiment-label")
        assert _label_bars(sentiment) == pytest.approx(expected["sentiment"], abs=1e-6)
        top = max(expected["sentiment"], key=expected["sentiment"].get)
        assert sentiment.find_element(By.CSS_SELECTOR, "[data-testid='label-output-value']").text == top

        paraphrase = _run_tab(browser, "Paraphrase", {"paraphrase-a": PAIR[0], "paraphrase-b": PAIR[1]},
                              "paraphrase-run", "paraphrase-label")
        assert paraphrase.find_element(By.CSS_SELECTOR, "[data-testid='label-output-value']").text == \
            expected["paraphrase"]["label"]
        bars = _label_bars(paraphrase)
        assert bars[expected["paraphrase"]["label"]] == pytest.approx(expected["paraphrase"]["score"], abs=1e-6)

        similarity = _run_tab(browser, "Similarity", {"similarity-a": PAIR[0], "similarity-b": PAIR[1]},
                              "similarity-run", "similarity-score", ".minbert-score")
        assert similarity.find_element(By.CLASS_NAME, "minbert-score").text == f"{expected['similarity']['score']:.3f}"
        cosine = browser.find_element(By.CSS_SELECTOR, "#similarity-cosine .minbert-score").text
        assert cosine == f"{expected['cosine']:.3f}"

        multitask = _run_tab(browser, "All tasks", {"multitask-a": PAIR[0], "multitask-b": PAIR[1]},
                             "multitask-run", "multitask-similarity", ".minbert-score")
        assert multitask.find_element(By.CLASS_NAME, "minbert-score").text == \
            f"{expected['multitask']['sts']['score']:.3f}"
        shown = browser.find_element(By.CSS_SELECTOR, "#multitask-sentiment-b [data-testid='label-output-value']")
        assert shown.text == expected["multitask"]["sst"][1]["label"]
        _save_small_png(browser.get_screenshot_as_png(), SCREENSHOT if RETAKE_SCREENSHOT else tmp_path / "demo.png")

        # An empty box: a message on the page, no traceback.
        _run_tab(browser, "Sentiment", {"sentiment-text": " "}, "sentiment-run", "sentiment-label")
        message = WebDriverWait(browser, 30).until(
            lambda b: next((t.text for t in b.find_elements(By.CSS_SELECTOR, ".toast-body") if t.text), None))
        assert "The sentence is empty" in message and "Traceback" not in browser.page_source
    finally:
        if browser is not None:
            browser.quit()
        returncode = _stop_server(server)
    log = (tmp_path / "serve.log").read_text()
    assert returncode == 0, f"exit status {returncode} after Ctrl-C:\n{log[-3000:]}"  # Ctrl-C is a clean stop
