"""A Gradio demo of a multitask minBERT model: sentiment, paraphrase, similarity, and all three at once.

    launch(build_demo("runs/minbert"))     a saved model folder (an ensemble too), until Ctrl-C
    launch(build_demo("user/minbert"))     a Hub repository

`minbert serve DIR` runs it over a local folder; `minbert space` copies this file, unchanged, into a Hub
Space beside an app.py that names the model repository. So this file imports only gradio, torch,
transformers, huggingface_hub (the Space's requirements.txt) and the standard library, never hf_minbert,
and it answers through the pipelines saved with the model, loaded with trust_remote_code=True: exactly
what a visitor of the model's Hub page would call.
"""
import functools
import json
import os
import signal
import sys
import threading
from pathlib import Path

# Read by gradio whenever an app is built or launched: unset, it reports usage to its servers (and, with no
# network, waits on them). Set before the import all the same, in case a gradio version reads it there.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from huggingface_hub import ModelCard, hf_hub_download  # noqa: E402
from transformers import pipeline  # noqa: E402

# model_cards.run_record.METRICS_FILE, written out: a Space runs this file without the project to import it from.
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
# The pipelines answer with these heads when the model has them (else with another head of the same kind).
PREFERRED_HEADS = {"paraphrase": "para", "similarity": "sts"}
# What the page calls each demo task when the course's head answers it; another head is called by its name.
COURSE_HEADS = {"sentiment": "sst", "paraphrase": "para", "similarity": "sts"}


def _title(demo_model, role, course_title):
    """The title of `role`'s tab and boxes: the course's wording for the course's head, else the head's name."""
    head = demo_model.heads[role]
    return course_title if head == COURSE_HEADS[role] else head


class DemoModel:
    """The model, loaded once, and the pipelines over it that the app answers with: the model's own
    text-classification pipeline (every class's probability, for the model's default head when that is a
    single-sentence classifier) and the model's own paraphrase-detection, sentence-similarity and
    minbert-multitask pipelines. Every method takes the texts as typed and refuses empty or over-long ones
    with a ValueError that says which."""

    def __init__(self, model_id):
        self.model_id = str(model_id)
        # Loading one of the model's custom pipelines imports its pipelines.py, which registers the other
        # two tasks; they then share the loaded model and tokenizer instead of loading them again.
        self.multitask = pipeline("minbert-multitask", model=self.model_id, trust_remote_code=True)
        self.model, self.tokenizer = self.multitask.model, self.multitask.tokenizer
        # The app's own tokenizer calls take the pipelines' lock: concurrent events share the tokenizer, which
        # keeps its truncation and padding settings on itself (model folders saved before the lock: unlocked).
        pipelines_module = sys.modules[type(self.multitask).__module__]
        self._tokenize = getattr(pipelines_module, "tokenize", lambda tokenizer, *args, **kwargs: tokenizer(*args, **kwargs))
        self.tasks = self.model.config.tasks
        self.heads = _demo_heads(self.model.config)
        self.max_tokens = min(self.model.config.max_position_embeddings, self.tokenizer.model_max_length)
        shared = {"model": self.model, "tokenizer": self.tokenizer}
        self.paraphrase_pipeline = pipeline("paraphrase-detection", **shared) if self.heads["paraphrase"] else None
        self.similarity_pipeline = pipeline("sentence-similarity", **shared) if self.heads["similarity"] else None
        self.sentiment_pipeline = None
        if self.heads["sentiment"]:
            # The folder's own text-classification pipeline (its pipelines.py, loaded above) over the loaded model:
            # pipeline() on a model object would give the stock one, and registering the model's class with
            # AutoModelForSequenceClassification to avoid that would change every later load in the process.
            sentiment_pipeline = pipelines_module.MinBertSentimentPipeline
            self.sentiment_pipeline = sentiment_pipeline(task="text-classification", **shared)

    def sentiment(self, text):
        """{class: probability} for every class of the sentiment head."""
        text = self._checked(text, "The sentence")
        return {answer["label"]: answer["score"] for answer in self.sentiment_pipeline(text, top_k=None)}

    def paraphrase(self, first, second):
        """{label: probability} of both labels, the pipeline's answer first."""
        pair = self._checked_pair(first, second)
        answer = self.paraphrase_pipeline(pair, head=self.heads["paraphrase"])
        other = next(label for label in self.tasks[self.heads["paraphrase"]]["labels"] if label != answer["label"])
        return {answer["label"]: answer["score"], other: 1.0 - answer["score"]}

    def similarity(self, first, second):
        """(score on the head's scale, cosine of the two sentence embeddings or None): the cosine where the
        head reads one, a bi-encoder head or a cross-encoder head with the cosine feature."""
        pair = self._checked_pair(first, second)
        head = self.heads["similarity"]
        answer = self.similarity_pipeline(pair, head=head)
        return answer["score"], self._cosine(answer, pair, head)

    def all_tasks(self, first, second=""):
        """The multitask pipeline's answer, every head's, for a sentence (the single-sentence heads), or a pair."""
        heads = list(self.tasks)
        if self._token_ids(second):  # a Sentence B the tokenizer reads nothing of leaves Sentence A alone
            return self.multitask(self._checked_pair(first, second), heads=heads)
        sentence = self._checked(first, "Sentence A")
        sentence_heads = [head for head in heads if self.tasks[head]["pair_encoding"] == "single"]
        if not sentence_heads:  # every head of this model reads pairs
            raise ValueError("Sentence B is empty: this model's heads all answer for a pair of sentences.")
        return self.multitask(sentence, heads=sentence_heads)

    def _cosine(self, answer, pair, head):
        if "embeddings" in answer:  # a bi-encoder head: the pipeline returns both sentences' embeddings
            first, second = (torch.tensor(embedding) for embedding in answer["embeddings"])
        elif self.tasks[head].get("cosine_feature") and hasattr(self.model, "embed"):
            encoded = self._tokenize(self.tokenizer, list(pair), padding=True, return_tensors="pt").to(self.model.device)
            with torch.inference_mode():
                first, second = self.model.embed(**encoded, task=head)
        else:
            return None
        return float(torch.nn.functional.cosine_similarity(first.double(), second.double(), dim=0))

    def _checked(self, text, name):
        ids = self._token_ids(text)
        if not ids:
            raise ValueError(f"{name} is empty: type some text first.")
        self._check_length(ids, f"{name} is")
        return text.strip()

    def _token_ids(self, text):
        """`text` encoded, or [] where the tokenizer reads nothing of it (empty, spaces, or only characters it
        drops, such as a zero-width space)."""
        text = (text or "").strip()
        ids = self._tokenize(self.tokenizer, text)["input_ids"] if text else []
        return ids if len(ids) > self.tokenizer.num_special_tokens_to_add(pair=False) else []

    def _checked_pair(self, first, second):
        pair = self._checked(first, "Sentence A"), self._checked(second, "Sentence B")
        self._check_length(self._tokenize(self.tokenizer, *pair)["input_ids"], "Sentences A and B together are")
        return pair

    def _check_length(self, ids, subject):
        # The pipelines would truncate silently (a warning in the server's log, not on the page).
        if len(ids) > self.max_tokens:
            raise ValueError(
                f"{subject} {len(ids)} tokens long; this model reads at most {self.max_tokens}: please shorten it."
            )


def _demo_heads(config):
    """Head per demo task (None where the model has none): for sentiment, the single-sentence classifier the
    model's text-classification pipeline answers with (the default head, else sst, else the only one: its
    `select_sentence_head`); a sentence-pair head of the right kind for paraphrase and similarity."""
    classifiers = [name for name, spec in config.tasks.items()
                   if spec["pair_encoding"] == "single" and spec["kind"] in ("classification", "binary")]
    preferred = [name for name in (config.default_task, "sst") if name in classifiers]
    heads = {"sentiment": preferred[0] if preferred else (classifiers[0] if len(classifiers) == 1 else None)}
    for task, kind in (("paraphrase", "binary"), ("similarity", "regression")):
        candidates = [name for name, spec in config.tasks.items()
                      if spec["kind"] == kind and spec["pair_encoding"] != "single"]
        heads[task] = PREFERRED_HEADS[task] if PREFERRED_HEADS[task] in candidates else next(iter(candidates), None)
    return heads


# ----------------------------------------------------------------------------------------------------------
# Dev metrics, from the model's metrics.json or else its card's front matter
# ----------------------------------------------------------------------------------------------------------


def dev_metrics_markdown(model_id):
    """A Markdown table of the model's dev metrics, or a line saying it has none; a record that cannot be read is
    named under the table (it only fills this panel: the demo runs without it)."""
    unreadable = []
    rows = (_readable_rows(_metrics_json_rows, model_id, METRICS_FILE, unreadable)
            or _readable_rows(_card_rows, model_id, CARD_FILE, unreadable))
    notes = [f"{name} could not be read: {problem}" for name, problem in unreadable]
    if not rows:
        return "\n\n".join(["**Dev metrics**", *(notes or ["This model has no metrics.json and no results in its card."])])
    lines = ["**Dev metrics**", "", "| task | metric | value |", "|---|---|---|"]
    lines += [f"| {task} | {metric} | {value:.3f} |" for task, metric, value in rows]
    return "\n".join([*lines, *(["", *notes] if notes else [])])


def _readable_rows(read, model_id, name, unreadable):
    try:
        return read(model_id)
    except Exception as error:  # malformed JSON or front matter, or another shape than the record's
        unreadable.append((name, f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"))
        return []


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model_file(model_id, name):
    """Path of `name` in a model folder or (downloaded) Hub repository; None if it has none."""
    if Path(model_id).is_dir():
        path = Path(model_id) / name
        return path if path.is_file() else None
    try:
        return Path(hf_hub_download(model_id, name))
    except OSError:  # not in the repository (or not reachable): the demo runs without it
        return None


def _metrics_json_rows(model_id):
    path = _model_file(model_id, METRICS_FILE)
    if path is None:
        return []
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object of scores, got a {type(record).__name__}")
    rows = []
    for task, values in record.items():
        if isinstance(values, dict):
            rows += [(task, metric, value) for metric, value in values.items() if _is_number(value)]
        elif _is_number(values):
            rows.append(("all", task, values))  # overall, mean
    return rows


def _card_rows(model_id):
    path = _model_file(model_id, CARD_FILE)
    if path is None:
        return []
    results = ModelCard.load(path).data.eval_results or []
    return [(result.dataset_name, result.metric_name or result.metric_type, result.metric_value) for result in results
            if _is_number(result.metric_value)]


# ----------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------


def score_gauge(score, low, high, caption):
    """A horizontal gauge of `score` on [low, high], with the number, as HTML."""
    share = 100.0 * min(max((score - low) / (high - low), 0.0), 1.0)
    return (
        f'<div style="font-size: 0.9em; opacity: 0.8">{caption}</div>'
        f'<div style="display: flex; align-items: center; gap: 0.6em">'
        f'<div style="flex: 1; height: 1.1em; border-radius: 0.55em; background: #e5e7eb">'
        f'<div style="width: {share:.1f}%; height: 100%; border-radius: 0.55em; background: #f97316"></div></div>'
        f'<b class="minbert-score">{score:.3f}</b><span style="opacity: 0.7">of {low:g}–{high:g}</span></div>'
    )


def _shown_errors(function):
    """Bad input becomes a message in the page (gr.Error), never a stack trace."""

    @functools.wraps(function)
    def wrapper(*args):
        try:
            return function(*args)
        except (ValueError, TypeError) as error:
            raise gr.Error(str(error)) from None

    return wrapper


def build_demo(model_id, demo_model=None):
    """The Gradio app over `model_id` (a model folder or Hub repository id), loaded once: a tab per task the
    model has a head for, one for all of them, and the dev metrics beside them."""
    demo_model = demo_model or DemoModel(model_id)
    heads = demo_model.heads
    # A folder is named by its last part (its full path says more about this machine than about the model).
    name = Path(model_id).name if Path(model_id).is_dir() else str(model_id)
    with gr.Blocks(title=f"minBERT: {name}") as demo:
        gr.Markdown(f"# minBERT demo\n`{name}`: a multitask BERT for sentiment, paraphrase detection and semantic "
                    "similarity. Type, then press Enter or the button.")
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Tabs():
                    if heads["sentiment"]:
                        _sentiment_tab(demo_model)
                    if heads["paraphrase"]:
                        _paraphrase_tab(demo_model)
                    if heads["similarity"]:
                        _similarity_tab(demo_model)
                    _all_tasks_tab(demo_model)
            with gr.Column(scale=1):
                gr.Markdown(dev_metrics_markdown(demo_model.model_id), elem_id="dev-metrics")
    return demo


def launch(demo, **launch_kwargs):
    """Serve `demo` until Ctrl-C, then close it. A second SIGINT while it closes (a user pressing twice, or
    `timeout`, which signals the child and then its whole group) is the same request: without this, gradio's
    own wait would end in a KeyboardInterrupt traceback from inside its shutdown."""
    demo.launch(prevent_thread_lock=True, **launch_kwargs)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping the server", flush=True)
        demo.close()


def _sentiment_tab(demo_model):
    with gr.Tab(_title(demo_model, "sentiment", "Sentiment"), id="sentiment"):
        text = gr.Textbox(label="Sentence", elem_id="sentiment-text")
        button = gr.Button("Classify", variant="primary", elem_id="sentiment-run")
        classes = len(demo_model.tasks[demo_model.heads["sentiment"]]["labels"])
        label = gr.Label(num_top_classes=classes, label=_title(demo_model, "sentiment", "Sentiment"),
                         elem_id="sentiment-label")
    _on_submit(button, demo_model.sentiment, [text], [label], "sentiment")


def _paraphrase_tab(demo_model):
    with gr.Tab(_title(demo_model, "paraphrase", "Paraphrase"), id="paraphrase"):
        side = "Question" if demo_model.heads["paraphrase"] == COURSE_HEADS["paraphrase"] else "Sentence"
        first = gr.Textbox(label=f"{side} A", elem_id="paraphrase-a")
        second = gr.Textbox(label=f"{side} B", elem_id="paraphrase-b")
        button = gr.Button("Compare", variant="primary", elem_id="paraphrase-run")
        label = gr.Label(label=_title(demo_model, "paraphrase", "Paraphrase") + "?", elem_id="paraphrase-label")
    _on_submit(button, demo_model.paraphrase, [first, second], [label], "paraphrase")


def _similarity_tab(demo_model):
    label_range = demo_model.tasks[demo_model.heads["similarity"]]["label_range"]

    def similarity(first, second):
        score, cosine = demo_model.similarity(first, second)
        cosine_gauge = "" if cosine is None else score_gauge(cosine, -1, 1, "cosine of the sentence embeddings")
        return score_gauge(score, *label_range, "similarity"), cosine_gauge

    with gr.Tab(_title(demo_model, "similarity", "Similarity"), id="similarity"):
        first = gr.Textbox(label="Sentence A", elem_id="similarity-a")
        second = gr.Textbox(label="Sentence B", elem_id="similarity-b")
        button = gr.Button("Score", variant="primary", elem_id="similarity-run")
        score, cosine = gr.HTML(elem_id="similarity-score"), gr.HTML(elem_id="similarity-cosine")
    _on_submit(button, similarity, [first, second], [score, cosine], "similarity")


def _all_tasks_tab(demo_model):
    heads, tasks = demo_model.heads, demo_model.tasks
    others = [name for name in tasks if name not in heads.values()]  # heads of tasks of one's own: shown as answered

    def all_tasks(first, second):
        answer = demo_model.all_tasks(first, second)
        shown = [{sentiment["label"]: sentiment["score"]} for sentiment in answer.get(heads["sentiment"], [])]
        shown += [None] * (2 - len(shown))  # no second sentence: its sentiment box is cleared
        paraphrase, similar = answer.get(heads["paraphrase"]), answer.get(heads["similarity"])
        shown.append({paraphrase["label"]: paraphrase["score"]} if paraphrase else None)
        label_range = tasks[heads["similarity"]]["label_range"] if similar else None
        shown.append(score_gauge(similar["score"], *label_range, "similarity") if similar else "")
        shown.append({name: answer[name] for name in others if name in answer} if others else None)
        return shown

    with gr.Tab("All tasks", id="multitask"):
        first = gr.Textbox(label="Sentence A", elem_id="multitask-a")
        second = gr.Textbox(label="Sentence B (optional: paraphrase and similarity need a pair)",
                            elem_id="multitask-b")
        button = gr.Button("Answer", variant="primary", elem_id="multitask-run")
        with gr.Row():
            outputs = [gr.Label(label=f"Sentiment of {side}", elem_id=f"multitask-sentiment-{side.lower()}",
                                visible=bool(heads["sentiment"])) for side in ("A", "B")]
            outputs.append(gr.Label(label="Paraphrase?", elem_id="multitask-paraphrase",
                                    visible=bool(heads["paraphrase"])))
        outputs.append(gr.HTML(elem_id="multitask-similarity", visible=bool(heads["similarity"])))
        outputs.append(gr.JSON(label=f"Other heads: {', '.join(others)}", elem_id="multitask-others",
                               visible=bool(others)))
    _on_submit(button, all_tasks, [first, second], outputs, "multitask")


def _on_submit(button, function, boxes, outputs, api_name):
    """The button, or Enter in any of the text boxes, runs `function` (named `api_name` in the app's API);
    bad input comes back as a message on the page."""
    gr.on([button.click, *(box.submit for box in boxes)], _shown_errors(function), boxes, outputs, api_name=api_name)
