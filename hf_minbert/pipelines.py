"""`transformers` pipelines for a multitask minBERT: paraphrase detection, sentence similarity, and every head
at once.

    pipeline("paraphrase-detection", model=dir_or_repo, trust_remote_code=True)(("a", "b"))
        -> {"label": "paraphrase", "score": 0.93}           (score: probability of that label)
    pipeline("sentence-similarity", ...)(("a", "b"))
        -> {"score": 4.1}                                   (0-5; plus "embeddings" from a bi-encoder head)
    pipeline("minbert-multitask", ...)(("a", "b"))
        -> {"sst": [{"label", "score"}, {"label", "score"}], "para": {"label", "score"}, "sts": {"score"}}
    pipeline("text-classification", model=dir_or_repo, trust_remote_code=True)("a")
        -> [{"label": "positive", "score": 0.55}]          (the sentiment head; the stock pipeline's format)
    pipeline("feature-extraction", model=dir_or_repo, trust_remote_code=True)("a")
        -> [[[...hidden_size floats] per token]]            (last hidden states; the stock pipeline's format)

A pair is a tuple `(a, b)` or a dict `{"text": a, "text_pair": b}`; every pipeline takes one input, a list, a
`datasets.Dataset` (rows with text/text_pair, sentence1/sentence2 or sentence columns), a torch Dataset or a
generator, and batches with `batch_size`. Within a batch each distinct text is tokenized once: the sentences on
their own and the cross-encoded pairs, as the model's `predict` reads them (`predict_inputs`), so the multitask
answer costs no more encoder passes than its distinct inputs. An ensemble (`minbert ensemble`, per-task
adapters) predicts the same way, and its answers mean the same (averaged probabilities and scores); the
similarity pipeline returns no embeddings for it.

"text-classification" (and its alias "sentiment-analysis") is transformers' own task name: a saved folder names
`MinBertSentimentPipeline` for it in `custom_pipelines`, which `pipeline()` consults before its built-in tasks,
so `pipeline("text-classification", model=dir_or_repo, trust_remote_code=True)` checks its input like the
pipelines above. A model *object* passed in-process has no such entry until saved and gets the stock
`TextClassificationPipeline` (which labels "" and reads only the first text of a tuple): pass
`pipeline_class=MinBertSentimentPipeline` there. It is not registered in-process under the built-in name, which
would replace the stock pipeline for every other model too. "feature-extraction" is taken over the same way
(`MinBertFeatureExtractionPipeline`): the stock pipeline answers with the first output of the folder's AutoModel
class, a multitask model's logits.

This file travels to the Hub as remote code: saving a minBERT model copies it next to the weights and names
the pipelines in config.json's `custom_pipelines` (see `attach_pipelines`). So it imports only torch and
transformers, and reaches the model only through its public `predict` (or `forward(..., task=...)`), never
through hf_minbert, which a user of the Hub repository does not have. The pipelines do pre- and post-processing
only: reading and tokenizing the inputs, and turning predictions into answers. It imports no file beside it:
the modeling files import it, and transformers 4.x, loading a local folder's remote code, copies only the files
a loaded module imports itself, not what those import in turn.
"""
import contextlib
import inspect
import logging
import os
import threading
import unicodedata
from types import SimpleNamespace

import torch
from transformers import AutoModel, AutoTokenizer
from transformers.modeling_outputs import BaseModelOutput
from transformers.pipelines import PIPELINE_REGISTRY, FeatureExtractionPipeline, Pipeline

logger = logging.getLogger(__name__)

# Paraphrase when sigmoid(logit) > 0.5, i.e. logit > 0 (scores are float64, so the two agree down to
# |logit| ~ 1e-16); exactly 0.5 is "not paraphrase", as the course's sigmoid().round() had it. `minbert evaluate`
# and the trainer's metrics decide with this same threshold.
BINARY_THRESHOLD = 0.5
PREVIEW_CHARS = 60


# ----------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------


def read_input(item, task, columns=()):
    """One input -> `(text, text_pair)` with `text_pair` None for a single sentence; anything that is not a
    non-empty string (or a pair of them) is refused with an error naming the pipeline and the field. columns: the
    text columns a dict input may hold beside the usual keys (`saved_text_columns`), read first."""
    if isinstance(item, str):
        texts = (item,)
    elif isinstance(item, (tuple, list)):
        if len(item) != 2:
            raise ValueError(
                f"{task}: a sentence pair has 2 texts, got a {type(item).__name__} of {len(item)}: {_preview(item)}"
            )
        texts = tuple(item)
    elif isinstance(item, dict):
        texts = _texts_of_row(item, task, columns)
    else:
        raise TypeError(
            f"{task}: expected a string, a pair (text, text_pair) or a dict with 'text' and 'text_pair'; "
            f"got {type(item).__name__}: {_preview(item)}"
        )
    for text, field in zip(texts, ("text", "text_pair")):  # a pair's second text too where it is None
        _check_text(text, field, task)
    return texts if len(texts) == 2 else (texts[0], None)


def _paired(inputs, text_pair, task):
    """`inputs` with the `text_pair=` call option: a text and a second text, or a list of texts and a list of as
    many second texts, as pairs."""
    if isinstance(inputs, str) and isinstance(text_pair, str):
        return (inputs, text_pair)
    if isinstance(inputs, list) and isinstance(text_pair, list) and len(inputs) == len(text_pair):
        # a None second text leaves its text alone, as {"text": ..., "text_pair": None} does
        return [text if second is None else (text, second) for text, second in zip(inputs, text_pair)]
    raise ValueError(f"{task}: text_pair= pairs a text with a text, or a list of texts with a list of as many; got "
                     f"{type(inputs).__name__} and {type(text_pair).__name__}: {_preview(text_pair)}")


def pipeline_inputs(inputs, text_pair, task):
    """A pipeline call's inputs as the base Pipeline streams them: paired with `text_pair=` where given, a
    `datasets.Dataset` as a torch Dataset of its rows (an iterable one as a generator), a column of one
    (`dataset["text"]`) as its texts."""
    inputs, text_pair = _column_texts(inputs), _column_texts(text_pair)
    if text_pair is not None:
        inputs = _paired(inputs, text_pair, task)
    if _is_hf_dataset(inputs):
        return _DatasetRows(inputs) if hasattr(inputs, "__len__") else (row for row in inputs)
    return inputs


def saved_text_columns(config) -> list:
    """The text columns of the tasks of one's own a model was trained on (their saved data schemas), pairs first: a
    dict input that holds all of one's columns is read by them (a row of the task's own dataset works as is)."""
    columns = {tuple(spec["data_schema"]["text_columns"]) for spec in (getattr(config, "tasks", None) or {}).values()
               if spec.get("data_schema")}
    return sorted(columns, key=len, reverse=True)


def _texts_of_row(row, task, columns=()):
    # Pairs before single sentences, so that no pair is read as its first sentence alone: a task of one's own's
    # pair columns, pipeline-style keys, the task files' own column names (a dataset of CS224N rows works as
    # is), then a task of one's own's single column.
    # Returns (text,) or (text, text_pair). A None text_pair is a single sentence (transformers' convention, and
    # how a mixed datasets.Dataset holds one); a pair schema's second column (sentence2, a task of one's own's)
    # holds a second text, so a None there is refused.
    for names in [names for names in columns if len(names) == 2]:
        if all(name in row for name in names):
            return row[names[0]], row[names[1]]
    for first, second in (("text", "text_pair"), ("sentence1", "sentence2")):
        if first in row:
            if first == "sentence1" and second not in row:
                raise ValueError(f"{task}: a row with 'sentence1' needs 'sentence2'; got keys {sorted(row)}")
            if first == "text" and row.get(second) is None:
                return (row[first],)
            return row[first], row[second]
    for (name,) in [names for names in columns if len(names) == 1]:
        if name in row:
            return (row[name],)
    if "sentence" in row:
        return (row["sentence"],)
    own = "".join(f", or {' and '.join(map(repr, names))}" for names in columns)
    raise ValueError(
        f"{task}: a dict input needs 'text' (and 'text_pair'), 'sentence1' and 'sentence2', or 'sentence'{own}; "
        f"got keys {sorted(row)}"
    )


def _check_text(text, field, task):
    if not isinstance(text, str):
        raise TypeError(f"{task}: {field} must be a string, got {type(text).__name__}: {_preview(text)}")
    if not has_visible_character(text):
        raise ValueError(f"{task}: {field} is empty" + ("" if not text.strip() else " (only spaces, control, format "
                                                         f"or lone combining characters: {_preview(text)})"))


# What BERT's tokenizer drops before it splits words: control and format characters (a zero-width space, a
# BOM), private-use characters, the replacement character U+FFFD (what a file decoded with errors="replace"
# holds) and, as accents are stripped, combining marks standing alone.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Mn"}


def has_visible_character(text) -> bool:
    """Whether `text` holds a character the tokenizer reads (one that is not space and not dropped)."""
    return any(not char.isspace() and char != "\ufffd" and unicodedata.category(char) not in INVISIBLE_CATEGORIES
               for char in text)


def _preview(value):
    text = repr(value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class _DatasetRows(torch.utils.data.Dataset):
    """A `datasets.Dataset` seen as a torch Dataset of row dicts, which the base Pipeline streams lazily."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def _is_hf_dataset(inputs):
    # Checked by module name: importing `datasets` here would make it a requirement of the remote code.
    return type(inputs).__module__.split(".")[0] == "datasets"


def _column_texts(inputs):
    """A `datasets` column (`dataset["text"]`, list-like but no list) -> a list of its texts (a streamed one's
    -> a generator); anything else as it is."""
    if not _is_hf_dataset(inputs) or hasattr(inputs, "column_names"):
        return inputs
    return list(inputs) if hasattr(inputs, "__len__") else (text for text in inputs)


# ----------------------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------------------


def select_head(config, task, kind, preferred, head=None):
    """The sentence-pair head of `kind` a pipeline answers with: `head` if given (checked), else `preferred`
    if the model has it, else the model's only such head; otherwise an error listing the candidates."""
    return _choose_head(config, task, lambda spec: spec["kind"] == kind and spec["pair_encoding"] != "single",
                        f"{kind} sentence-pair head", (preferred,), head)


def select_sentence_head(config, task, head=None):
    """The single-sentence classification head `task` answers with: `head` if given (checked), else the default
    task's (the head the stock pipeline used) if it is one, else "sst", else the model's only such head."""
    return _choose_head(config, task,
                        lambda spec: spec["pair_encoding"] == "single" and spec["kind"] in ("classification", "binary"),
                        "single-sentence classification head", (config.default_task, "sst"), head)


def _choose_head(config, task, fits, wanted, preferred, head):
    """`head` if given and it `fits` its spec, else the first of `preferred` that the model has and fits, else the
    model's only fitting head; an error naming the candidates (and `wanted`, what fits) otherwise."""
    if head is not None:
        if head not in config.tasks:
            raise ValueError(f"{task}: the model has no head {head!r}; its heads: {', '.join(config.tasks)}")
        spec = config.tasks[head]
        if not fits(spec):
            raise ValueError(f"{task}: head {head!r} is a {spec['kind']} head on {spec['pair_encoding']} input; "
                             f"this pipeline needs a {wanted}")
        return head
    for name in preferred:
        if name in config.tasks and fits(config.tasks[name]):
            return name
    candidates = [name for name in config.tasks if fits(config.tasks[name])]
    if len(candidates) == 1:
        return candidates[0]
    found = f"several: {', '.join(candidates)}" if candidates else f"none among {', '.join(config.tasks)}"
    raise ValueError(f"{task}: the model needs one {wanted}, found {found}; choose with head=...")


def answer(spec, logits):
    """One head's logits for one input -> {label, score} (score: that label's probability) or {score}
    (regression, clipped to the task's label range)."""
    logits = logits.double()
    if spec["kind"] == "classification":
        probabilities = logits.softmax(-1)
        best = int(probabilities.argmax())
        return {"label": spec["labels"][best], "score": float(probabilities[best])}
    if spec["kind"] == "binary":
        probability = float(torch.sigmoid(logits))
        positive = probability > BINARY_THRESHOLD
        return {"label": spec["labels"][int(positive)], "score": probability if positive else 1.0 - probability}
    low, high = spec["label_range"]
    return {"score": min(max(float(logits), low), high)}


def _per_item(values, rows):
    """Results for distinct inputs (D, ...) -> one row per batch item (N, ...); NaN where an item has no
    such input (a single sentence has no pair)."""
    result = values.new_full((len(rows), *values.shape[1:]), float("nan"))
    present = [i for i, row in enumerate(rows) if row is not None]
    if present:
        result[present] = values[[rows[i] for i in present]]
    return result


def _distinct_rows(keys):
    """Row of each key in a list of the distinct keys (None stays None)."""
    distinct = {}
    rows = [None if key is None else distinct.setdefault(key, len(distinct)) for key in keys]
    return list(distinct), rows


# Calls in eval mode now, per model, and the mode each model had before the first of them (threads share a model).
_EVAL_MODE_USERS = {}
_EVAL_MODE_LOCK = threading.Lock()


@contextlib.contextmanager
def _eval_mode(model):
    # A model handed over in training mode would answer through dropout: random answers, silently. Concurrent
    # calls on one model (a web app's requests) keep it in eval mode until the last of them ends.
    with _EVAL_MODE_LOCK:
        users, was_training = _EVAL_MODE_USERS.get(id(model), (0, model.training))
        _EVAL_MODE_USERS[id(model)] = (users + 1, was_training)
        model.eval()
    try:
        yield
    finally:
        with _EVAL_MODE_LOCK:
            users, was_training = _EVAL_MODE_USERS.pop(id(model))
            if users > 1:
                _EVAL_MODE_USERS[id(model)] = (users - 1, was_training)
            else:
                model.train(was_training)


# A fast tokenizer keeps its truncation and padding settings on itself and sets them at every call: threads
# sharing one (a web app's concurrent requests) would encode with each other's settings. Every call goes through
# `tokenize`, which holds this lock.
_TOKENIZER_LOCK = threading.RLock()


def _new_locks():
    # A process forked while another thread held a lock (a DataLoader worker of a pipeline with num_workers) would
    # wait for it forever: the child starts with its own.
    global _TOKENIZER_LOCK, _EVAL_MODE_LOCK
    _TOKENIZER_LOCK, _EVAL_MODE_LOCK = threading.RLock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_locks)


def tokenize(tokenizer, *args, **kwargs):
    """`tokenizer(*args, **kwargs)`, one thread at a time (see _TOKENIZER_LOCK)."""
    with _TOKENIZER_LOCK:
        return tokenizer(*args, **kwargs)


def _as_list(value):
    # Batched, the collate function makes lists of the preprocessed values; with batch_size=1 they come alone.
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------------------------------


class MinBertPipeline(Pipeline):
    """Shared machinery: input checks, truncation with a warning, and the model's predictions for every
    requested head on each distinct input. Subclasses choose the heads and shape the answers."""

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False
    task_name = "minbert"
    accepts_single_sentences = False
    _options = "head, max_length, truncation, text_pair, batch_size"  # named when another option is refused

    def __init__(self, model, *args, **kwargs):
        # Checked first: the base class resolves call parameters (heads) against the model's config.
        if not is_multitask_model(model):
            raise TypeError(
                f"{kwargs.get('task') or self.task_name}: needs a minBERT multitask model (MinBertForMultitask or "
                f"an ensemble of them); got {type(model).__name__}"
            )
        if kwargs.get("tokenizer") is None and not args:
            kwargs["tokenizer"] = _saved_tokenizer(model)
        super().__init__(model, *args, **kwargs)
        if self.tokenizer is None:
            raise ValueError(f"{self._name}: needs the model's tokenizer")

    @property
    def _name(self):
        return self.task or self.task_name

    def __call__(self, inputs, text_pair=None, **kwargs):
        """Answer one input, a list, a `datasets.Dataset`, a torch Dataset or a generator (lazily, for the last
        three). `text_pair` pairs a text (or a list of texts) with a second one (a list of as many), as the stock
        text-classification pipeline does. `batch_size` batches; `max_length` caps the tokens of each encoded
        text (default: the most the model and tokenizer accept); longer texts are truncated with a warning
        (`truncation=True`: without one; `truncation=False`: refused with an error)."""
        inputs = pipeline_inputs(inputs, text_pair, self._name)
        return [] if isinstance(inputs, list) and not inputs else super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, head=None, heads=None, max_length=None, truncation=None, **unsupported):
        if unsupported:  # the base class would raise a TypeError naming _sanitize_parameters, not the option
            raise ValueError(f"{self._name}: no option {', '.join(sorted(unsupported))}; it takes {self._options}")
        forward, postprocess = {}, {}
        if head is not None or heads is not None:
            forward["heads"] = postprocess["heads"] = self._heads(head=head, heads=heads)
        if max_length is not None:
            forward["max_length"] = self._max_length(max_length)
        if truncation is not None:
            forward["truncation"] = _checked_truncation(truncation, self._name)
        return {}, forward, postprocess

    def _heads(self, head=None, heads=None):
        """The heads a call answers with; a one-head pipeline's (all but minbert-multitask) chosen by `_select_head`."""
        if heads is not None:
            raise TypeError(f"{self._name}: answers with one head; pass head=..., not heads=...")
        return [self._select_head(head)]

    def _select_head(self, head=None):
        raise NotImplementedError

    def _max_length(self, max_length=None):
        return checked_max_length(self.model, self.tokenizer, max_length, self._name)

    def preprocess(self, inputs):
        text, text_pair = read_input(inputs, self._name, saved_text_columns(self.model.config))
        if text_pair is None and not self.accepts_single_sentences:
            raise ValueError(
                f"{self._name}: takes sentence pairs, (text, text_pair) or {{'text': ..., 'text_pair': ...}}; "
                f"got a single text {_preview(text)} (a list is a batch of inputs, not a pair)"
            )
        return {"text": text, "text_pair": text_pair}

    def _forward(self, model_inputs, heads=None, max_length=None, truncation=None):
        heads = heads or self._heads()
        max_length = max_length or self._max_length()
        texts, pairs = _as_list(model_inputs["text"]), _as_list(model_inputs["text_pair"])
        sentences, rows = _distinct_rows(texts + pairs)
        rows_a, rows_b = rows[: len(texts)], rows[len(texts):]
        pair_texts, pair_rows = _distinct_rows([(a, b) if b is not None else None for a, b in zip(texts, pairs)])
        specs = self.model.config.tasks
        heads = [name for name in heads if pair_texts or specs[name]["pair_encoding"] == "single"]
        inputs = self._inputs({name for head in heads for name in _reads(self.model, head)}, sentences, pair_texts,
                              max_length, truncation)
        with _eval_mode(self.model):
            predictions = _predictions(self.model, heads, inputs)
        outputs = {"has_pair": torch.tensor([pair is not None for pair in pairs])}
        for name in heads:
            prediction = predictions[name]
            if specs[name]["pair_encoding"] == "single":  # one answer per sentence
                outputs[f"{name}/text"] = _per_item(prediction.logits, rows_a)
                outputs[f"{name}/text_pair"] = _per_item(prediction.logits, rows_b)
            else:  # one answer per pair
                outputs[name] = _per_item(prediction.logits, pair_rows)
            if specs[name]["pair_encoding"] == "bi" and prediction.embeddings is not None:
                outputs["embeddings/text"] = _per_item(prediction.embeddings, rows_a)
                outputs["embeddings/text_pair"] = _per_item(prediction.embeddings, rows_b)
        return outputs

    def _inputs(self, needed, sentences, pair_texts, max_length, truncation=None):
        """The `predict` inputs named in `needed`, for the batch's distinct sentences and distinct pairs."""
        inputs = {}
        if "sentences" in needed:
            inputs["sentences"] = self._encode(sentences, None, max_length, truncation)
        if "pairs" in needed:
            inputs["pairs"] = self._encode([a for a, _ in pair_texts], [b for _, b in pair_texts], max_length,
                                           truncation)
        if "sides" in needed:  # where each pair's two sentences sit among the sentences
            row_of = {text: row for row, text in enumerate(sentences)}
            inputs["sides"] = tuple(torch.tensor([row_of[pair[side]] for pair in pair_texts], device=self.device)
                                    for side in (0, 1))
        return inputs

    def _encode(self, first, second, max_length, truncation=None):
        encoded = encode_texts(self.tokenizer, first, second, max_length, truncation, self._name)
        return {key: encoded[key].to(self.device) for key in ("input_ids", "attention_mask", "token_type_ids")}


def checked_max_length(model, tokenizer, max_length, task):
    """The tokens an encoded text may hold: `max_length` where given (an error outside [3, the model's
    positions]), else the most the model and its tokenizer accept."""
    if max_length is None:
        return min(model.config.max_position_embeddings, tokenizer.model_max_length)
    if not 2 < int(max_length) <= model.config.max_position_embeddings:
        raise ValueError(f"{task}: max_length must lie in [3, {model.config.max_position_embeddings}] "
                         f"(max_position_embeddings), got {max_length}")
    return int(max_length)


def encode_texts(tokenizer, first, second, max_length, truncation=None, task="minbert", **tokenize_kwargs):
    """Tokenize the texts `first` (paired with `second`, jointly, where given), padded to the longest and
    truncated at `max_length` with a warning that says how many texts lost tokens (`truncation=True`: silently;
    False: an error instead). tokenize_kwargs: further arguments of the tokenizer (`padding="max_length"`,
    `return_token_type_ids=False`, ...); the tensors are torch's, with the attention mask."""
    if tokenize_kwargs.get("return_tensors", "pt") != "pt":
        raise ValueError(f"{task}: tokenize_kwargs return_tensors={tokenize_kwargs['return_tensors']!r}: the model "
                         "reads torch tensors ('pt')")
    if tokenize_kwargs.get("return_attention_mask", True) is not True:
        raise ValueError(f"{task}: tokenize_kwargs return_attention_mask=False: the model reads the attention mask "
                         "(it skips the padding by it)")
    options = {"padding": True, "return_token_type_ids": True, **tokenize_kwargs, "return_tensors": "pt"}
    encoded = tokenize(tokenizer, first, second, truncation=True, max_length=max_length, **options)
    lengths = encoded["attention_mask"].sum(dim=-1).tolist()
    at_limit = [i for i, length in enumerate(lengths) if length == max_length]
    if at_limit and truncation is not True:
        # Only an encoding that exactly fills max_length can have been cut: measure just those in full.
        full = tokenize(tokenizer, [first[i] for i in at_limit],
                        [second[i] for i in at_limit] if second is not None else None,
                        truncation=False, verbose=False, **_measuring(tokenize_kwargs))["input_ids"]
        cut = [i for i, ids in zip(at_limit, full) if len(ids) > max_length]
        if cut:
            example = first[cut[0]] if second is None else (first[cut[0]], second[cut[0]])
            if truncation is False:
                raise ValueError(f"{task}: truncation=False, but {len(cut)} of {len(first)} inputs are longer than "
                                 f"max_length={max_length} tokens, e.g. {_preview(example)}")
            logger.warning("%s: %d of %d inputs are longer than max_length=%d tokens and were truncated, e.g. %s",
                           task, len(cut), len(first), max_length, _preview(example))
    return encoded


def _measuring(tokenize_kwargs):
    # What changes the tokens (add_special_tokens, ...), not how they are padded and returned.
    return {key: value for key, value in tokenize_kwargs.items()
            if key not in ("padding", "return_tensors", "return_token_type_ids", "return_attention_mask")}


# The tokenizer's strategies a pipeline's truncation= takes, as the stock pipelines do, and what they mean here.
TRUNCATION_STRATEGIES = {"longest_first": True, "do_not_truncate": False}


def _checked_truncation(truncation, task):
    """None (truncate, with a warning), True (truncate silently) or False (refuse what is too long); the strategies
    "longest_first" and "do_not_truncate" mean True and False. A pair is cut longest text first: only_first and
    only_second are refused, since the heads that encode each text alone have no second text to cut."""
    if truncation is None or isinstance(truncation, bool):
        return truncation
    if isinstance(truncation, str) and truncation in TRUNCATION_STRATEGIES:
        return TRUNCATION_STRATEGIES[truncation]
    raise ValueError(f"{task}: truncation must be True, False, 'longest_first' or 'do_not_truncate'; got "
                     f"{truncation!r} (minBERT's pipelines cut a pair longest text first)")


def _saved_tokenizer(model):
    """The tokenizer saved beside the model, or None. transformers 4.x's `pipeline()` loads no tokenizer for a
    model type it does not know (a remote-code one), so the pipeline finds it itself."""
    source = getattr(model, "name_or_path", None)
    if not source:
        return None
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError):
        return None


def _reads(model, head):
    """Which inputs `model.predict` reads for `head`. A model with `forward(..., task=...)` but no `predict` reads
    the sentences for a single-sentence head and the cross-encoded pairs for a pair head, as its forward does."""
    if hasattr(model, "predict_inputs"):
        return model.predict_inputs(head)
    return ("sentences",) if model.config.tasks[head]["pair_encoding"] == "single" else ("pairs",)


def _predictions(model, heads, inputs):
    """{head: prediction with `.logits` (and `.embeddings`)}: `model.predict`, else `model(..., task=head)`."""
    if hasattr(model, "predict"):
        return model.predict(heads, **inputs)
    return {head: SimpleNamespace(logits=model(**inputs[_reads(model, head)[0]], task=head).logits, embeddings=None)
            for head in heads}


class MinBertParaphrasePipeline(MinBertPipeline):
    """Is `text_pair` a paraphrase of `text`? -> {"label": "paraphrase" | "not paraphrase", "score"}, where
    score is the probability of the returned label. The model's binary pair head ("para", or `head=`)."""

    task_name = "paraphrase-detection"

    def _select_head(self, head=None):
        return select_head(self.model.config, self._name, "binary", "para", head)

    def postprocess(self, model_outputs, heads=None):
        name = (heads or self._heads())[0]
        return answer(self.model.config.tasks[name], model_outputs[name][0])


class MinBertSimilarityPipeline(MinBertPipeline):
    """How similar are `text` and `text_pair`? -> {"score": s} on the head's scale (0-5 for STS), clipped to
    it; a bi-encoder head also returns "embeddings": [embedding of text, embedding of text_pair]."""

    task_name = "sentence-similarity"

    def _select_head(self, head=None):
        return select_head(self.model.config, self._name, "regression", "sts", head)

    def postprocess(self, model_outputs, heads=None):
        name = (heads or self._heads())[0]
        result = answer(self.model.config.tasks[name], model_outputs[name][0])
        if "embeddings/text" in model_outputs:  # a bi-encoder head of one model (an ensemble has no one embedding)
            result["embeddings"] = [model_outputs["embeddings/text"][0].tolist(),
                                    model_outputs["embeddings/text_pair"][0].tolist()]
        return result


class MinBertMultitaskPipeline(MinBertPipeline):
    """Every head's answer for one input, keyed by head name: a single-sentence head (sst) answers for each
    sentence, in a list; a pair head (para, sts) answers for the pair, when one is given.

        {"sst": [{"label", "score"}, {"label", "score"}], "para": {"label", "score"}, "sts": {"score"}}

    `heads=[...]` restricts the answer to some heads."""

    task_name = "minbert-multitask"
    accepts_single_sentences = True
    _options = "heads, max_length, truncation, text_pair, batch_size"

    def _heads(self, head=None, heads=None):
        if head is not None:
            raise TypeError(f"{self._name}: answers with several heads; pass heads=[...], not head=...")
        if heads is None:
            # Sentence heads first, then pair heads (config.json stores the heads in alphabetical order).
            tasks = self.model.config.tasks
            return sorted(tasks, key=lambda name: tasks[name]["pair_encoding"] != "single")
        heads = [heads] if isinstance(heads, str) else list(heads)
        unknown = [name for name in heads if name not in self.model.config.tasks]
        if unknown or not heads:
            raise ValueError(
                f"{self._name}: unknown head(s) {unknown or heads}; the model's heads: {', '.join(self.model.config.tasks)}"
            )
        return heads

    def postprocess(self, model_outputs, heads=None):
        has_pair = bool(model_outputs["has_pair"][0])
        result = {}
        for name in heads or self._heads():
            spec = self.model.config.tasks[name]
            if spec["pair_encoding"] == "single":
                sides = ("text", "text_pair") if has_pair else ("text",)
                result[name] = [answer(spec, model_outputs[f"{name}/{side}"][0]) for side in sides]
            elif has_pair:
                result[name] = answer(spec, model_outputs[name][0])
            elif heads:  # asked for by name, a pair head has no answer for one sentence: say so, not {}
                raise ValueError(f"{self._name}: head {name!r} reads sentence pairs; got a single sentence (give "
                                 "(text, text_pair) or {'text': ..., 'text_pair': ...})")
        return result


class MinBertSentimentPipeline(MinBertPipeline):
    """transformers' "text-classification" task on a minBERT model: one sentence -> its single-sentence head's
    answer (the default task's, e.g. sst), in the stock pipeline's format: `{"label", "score"}` per input
    (a lone string: wrapped in a list, as the stock pipeline does), or with `top_k` (None: all labels) a list
    of them, most probable first. Unlike the stock pipeline it refuses empty or non-string input and pairs
    (its head reads one sentence: pairs go to paraphrase-detection or minbert-multitask), and answers [] to
    an empty list."""

    task_name = "text-classification"
    accepts_single_sentences = True
    _NO_TOP_K = object()  # top_k not passed: one dict per input (None means every label)
    _options = "head, max_length, truncation, top_k, function_to_apply, batch_size"

    def __call__(self, inputs, **kwargs):
        result = super().__call__(inputs, **kwargs)
        return [result] if isinstance(inputs, str) and "top_k" not in kwargs else result

    def _sanitize_parameters(self, top_k=_NO_TOP_K, function_to_apply=None, **kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        if top_k is not self._NO_TOP_K:
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"{self._name}: top_k must be a positive integer or None (every label), got {top_k!r}")
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            # The stock pipeline's values: strings or its ClassificationFunction members (a str enum).
            name = str(getattr(function_to_apply, "value", function_to_apply)).lower()
            if name not in SCORE_FUNCTIONS:
                raise ValueError(f"{self._name}: function_to_apply must be one of {', '.join(SCORE_FUNCTIONS)}, "
                                 f"got {function_to_apply!r}")
            postprocess["function_to_apply"] = name
        return preprocess, forward, postprocess

    def _select_head(self, head=None):
        return select_sentence_head(self.model.config, self._name, head)

    def preprocess(self, inputs):
        text, text_pair = read_input(inputs, self._name, saved_text_columns(self.model.config))
        if text_pair is not None:
            raise ValueError(
                f"{self._name}: classifies one sentence; got a pair {_preview(inputs)} (a list is a batch of "
                "sentences; for pairs use paraphrase-detection, sentence-similarity or minbert-multitask)"
            )
        return {"text": text, "text_pair": None}

    def postprocess(self, model_outputs, heads=None, top_k=_NO_TOP_K, function_to_apply="softmax"):
        name = (heads or self._heads())[0]
        ranked = ranked_labels(self.model.config.tasks[name], model_outputs[f"{name}/text"][0], function_to_apply)
        if top_k is self._NO_TOP_K:
            return ranked[0]
        return ranked if top_k is None else ranked[:top_k]


def ranked_labels(spec, logits, function_to_apply="softmax"):
    """Every label of a classification or binary head with its score, highest first, scored as the stock
    text-classification pipeline scores the model's task-less logits (a binary head's are [0, logit]): "softmax"
    (each label's probability; a binary head's (1 − p, p)), "sigmoid" or "none" (the raw logits)."""
    logits = logits.double().reshape(-1)
    if spec["kind"] == "binary":
        logits = torch.cat([logits.new_zeros(1), logits])
    scores = SCORE_FUNCTIONS[function_to_apply](logits).tolist()
    pairs = sorted(zip(spec["labels"], scores), key=lambda pair: -pair[1])
    return [{"label": label, "score": score} for label, score in pairs]


# The stock text-classification pipeline's `function_to_apply` values.
SCORE_FUNCTIONS = {
    "softmax": lambda logits: logits.softmax(-1),
    "sigmoid": torch.sigmoid,
    "none": lambda logits: logits,
}


class MinBertFeatureExtractionPipeline(FeatureExtractionPipeline):
    """transformers' "feature-extraction" task on a minBERT model: the stock pipeline's answer, a (1, tokens,
    hidden) nested list per input (a tensor with `return_tensors=True`), holding the last hidden states the head
    `head=` reads (default: the default task's; a CerBERTus or Triple-BERT gives each task its own top layers).
    The stock pipeline would answer with the first output of the folder's AutoModel class: a multitask model's
    logits, not features. An input is a text or a pair (features of "[CLS] a [SEP] b [SEP]"), read and checked as
    the other minBERT pipelines read theirs, with their options (`max_length`, `truncation`, `text_pair=`) and the
    stock pipeline's `tokenize_kwargs` (further tokenizer arguments) and `return_tensors`. Padding positions (of a
    batch) are zeros: minBERT skips them."""

    task_name = "feature-extraction"
    _options = "head, max_length, truncation, tokenize_kwargs, return_tensors, text_pair, batch_size"

    def __init__(self, model, *args, **kwargs):
        _check_token_features(model, kwargs.get("task") or self.task_name)
        if kwargs.get("tokenizer") is None and not args:
            kwargs["tokenizer"] = _saved_tokenizer(model)
        super().__init__(model, *args, **kwargs)

    @property
    def _name(self):
        return self.task or self.task_name

    def __call__(self, inputs, text_pair=None, **kwargs):
        inputs = pipeline_inputs(inputs, text_pair, self._name)
        return [] if isinstance(inputs, list) and not inputs else super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, head=None, max_length=None, truncation=None, tokenize_kwargs=None,
                             return_tensors=None, **unsupported):
        if unsupported:  # the stock pipeline ignores them silently
            raise ValueError(f"{self._name}: no option {', '.join(sorted(unsupported))}; it takes {self._options}")
        tokenize_kwargs = dict(tokenize_kwargs or {})
        for name, value in (("max_length", max_length), ("truncation", truncation)):
            if value is not None and name in tokenize_kwargs:
                raise ValueError(f"{self._name}: {name} given twice (as an option and in tokenize_kwargs)")
        max_length = tokenize_kwargs.pop("max_length", max_length)
        truncation = _checked_truncation(tokenize_kwargs.pop("truncation", truncation), self._name)
        preprocess = {"tokenize_kwargs": tokenize_kwargs, "truncation": truncation}
        if max_length is not None:
            preprocess["max_length"] = checked_max_length(self.model, self.tokenizer, max_length, self._name)
        forward, postprocess = {}, {}
        if head is not None:
            if not hasattr(self.model, "encode_for_task"):
                raise ValueError(f"{self._name}: head={head!r}, but a {type(self.model).__name__} has no task heads")
            self.model.config.task_spec(head)  # an unknown head: an error listing the model's heads
            forward["head"] = head
        if return_tensors is not None:
            postprocess["return_tensors"] = return_tensors
        return preprocess, forward, postprocess

    def preprocess(self, inputs, max_length=None, truncation=None, tokenize_kwargs=None):
        text, text_pair = read_input(inputs, self._name, saved_text_columns(self.model.config))
        max_length = max_length or checked_max_length(self.model, self.tokenizer, None, self._name)
        return encode_texts(self.tokenizer, [text], None if text_pair is None else [text_pair], max_length,
                            truncation, self._name, **(tokenize_kwargs or {}))

    def _forward(self, model_inputs, head=None):
        inputs = {key: model_inputs[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in model_inputs}
        with _eval_mode(self.model):
            return BaseModelOutput(last_hidden_state=token_features(self.model, head, inputs))


def token_features(model, head, inputs):
    """The last hidden states (B, T, H) `head`'s head reads (a multitask model), or the encoder's (one head)."""
    if hasattr(model, "encode_for_task"):
        head = model.config.default_task if head is None else head
        return model.encode_for_task(head, **inputs).last_hidden_state
    return getattr(model, "bert", model)(**inputs, return_dict=True).last_hidden_state


def _check_token_features(model, task):
    # An ensemble averages its members' predictions: it has no one encoder whose states to return.
    if not (hasattr(model, "encode_for_task") or hasattr(getattr(model, "bert", model), "embeddings")):
        raise ValueError(f"{task}: a {type(model).__name__} has no single encoder whose token features to return; "
                         "extract them with one of its members")


# ----------------------------------------------------------------------------------------------------------
# Registration and saving
# ----------------------------------------------------------------------------------------------------------

# The tasks registered in-process (importing hf_minbert) and named in every saved folder.
PIPELINES = {
    "paraphrase-detection": MinBertParaphrasePipeline,
    "sentence-similarity": MinBertSimilarityPipeline,
    "minbert-multitask": MinBertMultitaskPipeline,
}
# transformers' own task names, taken over in saved folders only (see the module docstring).
BUILT_IN_TASKS = {
    "text-classification": MinBertSentimentPipeline,
    "sentiment-analysis": MinBertSentimentPipeline,
    "feature-extraction": MinBertFeatureExtractionPipeline,
}


def custom_pipelines_config():
    """config.json's `custom_pipelines`: each task's class in the saved copy of this file, loaded on AutoModel."""
    module = __name__.rsplit(".", 1)[-1]
    return {
        task: {"impl": f"{module}.{cls.__name__}", "pt": ["AutoModel"], "type": "text"}
        for task, cls in {**PIPELINES, **BUILT_IN_TASKS}.items()
    }


def is_multitask_model(model):
    """A model these pipelines can answer with: task heads named in `config.tasks` and a `forward(...,
    task=...)` (a `MinBertForMultitask`, or an ensemble of them), also inside a peft `PeftModel`, whose
    forward passes `task` on to it."""
    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    tasks = getattr(getattr(core, "config", None), "tasks", None)
    return bool(tasks) and isinstance(tasks, dict) and "task" in inspect.signature(core.forward).parameters


def attach_pipelines(model):
    """Name the pipelines in `model.config` before a save (multitask models only: the others have no heads
    for them). The models' `save_pretrained` call this through a relative import, which is also what makes
    transformers copy this file next to the weights."""
    if is_multitask_model(model):
        model.config.custom_pipelines = custom_pipelines_config()
    elif hasattr(model.config, "custom_pipelines"):
        del model.config.custom_pipelines


def register_pipeline_tasks():
    """Register this file's pipeline tasks with transformers: on import, and again (a no-op then) whenever a
    multitask model is built, so that a model loaded as remote code, where nothing imported this file, has them."""
    # Loading a saved model's copy of this file (trust_remote_code) in a process that imported hf_minbert
    # finds the tasks taken by the same classes from hf_minbert: keep those, silently, rather than have
    # transformers warn about overwriting them; the copy's classes still learn their task names for saving.
    for task, cls in PIPELINES.items():
        current = PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl")
        if current is not None and current.__qualname__ == cls.__qualname__ and _same_file_name(current, cls):
            cls._registered_impl = {task: {**PIPELINE_REGISTRY.supported_tasks[task], "impl": cls}}
            continue
        PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=cls, pt_model=AutoModel, type="text")


def _same_file_name(first, second):
    return first.__module__.rsplit(".", 1)[-1] == second.__module__.rsplit(".", 1)[-1]


register_pipeline_tasks()
