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

A pair is a tuple `(a, b)` or a dict `{"text": a, "text_pair": b}`; every pipeline takes one input, a list, a
`datasets.Dataset` (rows with text/text_pair, sentence1/sentence2 or sentence columns), a torch Dataset or a
generator, and batches with `batch_size`. Within a batch each distinct text goes through the encoder once:
sentences on their own in one pass (sentiment and bi-encoder heads read it), cross-encoded pairs in another
(pair heads read it), so the multitask answer costs no more encoder passes than its distinct inputs. An
ensemble (`minbert ensemble`, per-task adapters) exposes no single encoder: each head then runs through
`model(..., task=head)` on the same distinct inputs, and the answers mean the same (averaged probabilities and
scores); the similarity pipeline returns no embeddings for it.

"text-classification" (and its alias "sentiment-analysis") is transformers' own task name: a saved folder names
`MinBertSentimentPipeline` for it in `custom_pipelines`, which `pipeline()` consults before its built-in tasks,
so `pipeline("text-classification", model=dir_or_repo, trust_remote_code=True)` checks its input like the
pipelines above. A model *object* passed in-process has no such entry until saved and gets the stock
`TextClassificationPipeline` (which labels "" and reads only the first text of a tuple): pass
`pipeline_class=MinBertSentimentPipeline` there. It is not registered in-process under the built-in name, which
would replace the stock pipeline for every other model too.

This file travels to the Hub as remote code: saving a minBERT model copies it next to the weights and names
the pipelines in config.json's `custom_pipelines` (see `attach_pipelines`). So it imports only torch and
transformers, and reaches the encoder and heads through the model object it is given, never through
hf_minbert, which a user of the Hub repository does not have.
"""
import contextlib
import inspect
import logging

import torch
from transformers import AutoModel, AutoTokenizer
from transformers.pipelines import PIPELINE_REGISTRY, Pipeline

logger = logging.getLogger(__name__)

# Paraphrase when its probability exceeds this (exactly 0.5 is "not paraphrase"), as `minbert evaluate` decides.
BINARY_THRESHOLD = 0.5
PREVIEW_CHARS = 60


# ----------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------


def read_input(item, task):
    """One input -> `(text, text_pair)` with `text_pair` None for a single sentence; anything that is not a
    non-empty string (or a pair of them) is refused with an error naming the pipeline and the field."""
    if isinstance(item, str):
        texts = (item, None)
    elif isinstance(item, (tuple, list)):
        if len(item) != 2:
            raise ValueError(
                f"{task}: a sentence pair has 2 texts, got a {type(item).__name__} of {len(item)}: {_preview(item)}"
            )
        texts = tuple(item)
    elif isinstance(item, dict):
        texts = _texts_of_row(item, task)
    else:
        raise TypeError(
            f"{task}: expected a string, a pair (text, text_pair) or a dict with 'text' and 'text_pair'; "
            f"got {type(item).__name__}: {_preview(item)}"
        )
    _check_text(texts[0], "text", task)
    if texts[1] is not None:
        _check_text(texts[1], "text_pair", task)
    return texts


def _texts_of_row(row, task):
    # Pipeline-style keys, or the task files' own column names (a dataset of CS224N rows works as is).
    for first, second in (("text", "text_pair"), ("sentence1", "sentence2")):
        if first in row:
            if first == "sentence1" and second not in row:
                raise ValueError(f"{task}: a row with 'sentence1' needs 'sentence2'; got keys {sorted(row)}")
            return row[first], row.get(second)
    if "sentence" in row:
        return row["sentence"], None
    raise ValueError(
        f"{task}: a dict input needs 'text' (and 'text_pair'), 'sentence1' and 'sentence2', or 'sentence'; "
        f"got keys {sorted(row)}"
    )


def _check_text(text, field, task):
    if not isinstance(text, str):
        raise TypeError(f"{task}: {field} must be a string, got {type(text).__name__}: {_preview(text)}")
    if not text.strip():
        raise ValueError(f"{task}: {field} is empty")


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


# ----------------------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------------------


def select_head(config, task, kind, preferred, head=None):
    """The sentence-pair head of `kind` a pipeline answers with: `head` if given (checked), else `preferred`
    if the model has it, else the model's only such head; otherwise an error listing the candidates."""

    def fits(name):
        spec = config.tasks[name]
        return spec["kind"] == kind and spec["pair_encoding"] != "single"

    if head is not None:
        if head not in config.tasks:
            raise ValueError(f"{task}: the model has no head {head!r}; its heads: {', '.join(config.tasks)}")
        if not fits(head):
            spec = config.tasks[head]
            raise ValueError(
                f"{task}: head {head!r} is a {spec['kind']} head on {spec['pair_encoding']} input; "
                f"this pipeline needs a {kind} head on sentence pairs"
            )
        return head
    if preferred in config.tasks and fits(preferred):
        return preferred
    candidates = [name for name in config.tasks if fits(name)]
    if len(candidates) == 1:
        return candidates[0]
    found = f"several: {', '.join(candidates)}" if candidates else f"none among {', '.join(config.tasks)}"
    raise ValueError(f"{task}: the model needs one {kind} sentence-pair head, found {found}; choose with head=...")


def head_logits(model, name, encoding, attention_mask, pair_embeddings=None):
    """Logits of head `name` from an encoder output, computed as `model(..., task=name)` does."""
    spec = model.config.tasks[name]
    logits = model.head_logits(name, encoding, attention_mask, pair_embeddings)
    return logits.squeeze(-1) if spec["kind"] != "classification" else logits


def mean_pooled(model, encoding, attention_mask):
    """Sentence embeddings exactly as `model.embed` pools them (the bi-encoder heads' input)."""
    return model._head_features({"head_pooling": "mean"}, encoding, attention_mask)


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


@contextlib.contextmanager
def _eval_mode(model):
    # A model handed over in training mode would answer through dropout: random answers, silently.
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _as_list(value):
    # Batched, the collate function makes lists of the preprocessed values; with batch_size=1 they come alone.
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------------------------------


class MinBertPipeline(Pipeline):
    """Shared machinery: input checks, truncation with a warning, one encoder pass per distinct input, and
    head logits for every requested head. Subclasses choose the heads and shape the answers."""

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False
    task_name = "minbert"
    accepts_single_sentences = False

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

    def __call__(self, inputs, **kwargs):
        """Answer one input, a list, a `datasets.Dataset`, a torch Dataset or a generator (lazily, for the last
        three). `batch_size` batches; `max_length` caps the tokens of each encoded text (default: the most the
        model and tokenizer accept); longer texts are truncated with a warning."""
        if _is_hf_dataset(inputs):
            inputs = _DatasetRows(inputs) if hasattr(inputs, "__len__") else (row for row in inputs)
        elif isinstance(inputs, list) and not inputs:
            return []
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, head=None, heads=None, max_length=None):
        forward, postprocess = {}, {}
        if head is not None or heads is not None:
            forward["heads"] = postprocess["heads"] = self._heads(head=head, heads=heads)
        if max_length is not None:
            forward["max_length"] = self._max_length(max_length)
        return {}, forward, postprocess

    def _heads(self, head=None, heads=None):
        raise NotImplementedError

    def _max_length(self, max_length=None):
        limit = min(self.model.config.max_position_embeddings, self.tokenizer.model_max_length)
        if max_length is None:
            return limit
        if not 2 < int(max_length) <= self.model.config.max_position_embeddings:
            raise ValueError(
                f"{self._name}: max_length must lie in [3, {self.model.config.max_position_embeddings}] "
                f"(max_position_embeddings), got {max_length}"
            )
        return int(max_length)

    def preprocess(self, inputs):
        text, text_pair = read_input(inputs, self._name)
        if text_pair is None and not self.accepts_single_sentences:
            raise ValueError(
                f"{self._name}: takes sentence pairs, (text, text_pair) or {{'text': ..., 'text_pair': ...}}; "
                f"got a single text {_preview(text)} (a list is a batch of inputs, not a pair)"
            )
        return {"text": text, "text_pair": text_pair}

    def _forward(self, model_inputs, heads=None, max_length=None):
        heads = heads or self._heads()
        max_length = max_length or self._max_length()
        texts, pairs = _as_list(model_inputs["text"]), _as_list(model_inputs["text_pair"])
        specs = [self.model.config.tasks[h] for h in heads]
        outputs = {"has_pair": torch.tensor([pair is not None for pair in pairs])}
        with _eval_mode(self.model):
            if not hasattr(self.model, "encode_for_tasks"):
                outputs.update(self._whole_model_heads(texts, pairs, heads, max_length))
                return outputs
            sentences = None
            if any(spec["pair_encoding"] in ("single", "bi") or spec["cosine_feature"] for spec in specs):
                sentences = self._sentence_pass(texts, pairs, heads, max_length)
                outputs.update(self._sentence_heads(sentences, heads))
            if any(spec["pair_encoding"] == "cross" for spec in specs):
                outputs.update(self._cross_heads(texts, pairs, heads, max_length, sentences))
        return outputs

    def _sentence_pass(self, texts, pairs, heads, max_length):
        """One encoder pass over the distinct sentences (each side of each input), shared by single-sentence
        heads, bi-encoder heads and the cosine feature of cross-encoder heads (each reading the encoder output
        of its own task: they differ where tasks have their own layers)."""
        distinct, rows = _distinct_rows(texts + pairs)
        encoded = self._encode(distinct, None, max_length)
        specs = self.model.config.tasks
        readers = [name for name in heads if specs[name]["pair_encoding"] != "cross" or specs[name]["cosine_feature"]]
        encodings = self.model.encode_for_tasks(readers, **encoded)
        mask = encoded["attention_mask"]
        embeddings = {name: mean_pooled(self.model, encodings[name], mask) for name in readers
                      if specs[name]["pair_encoding"] == "bi" or specs[name]["cosine_feature"]}
        return {"encodings": encodings, "mask": mask, "rows_a": rows[: len(texts)], "rows_b": rows[len(texts):],
                "embeddings": embeddings}

    def _sentence_heads(self, sentences, heads):
        """Single-sentence heads for each side, bi-encoder heads (and the embeddings) for each pair."""
        rows_a, rows_b = sentences["rows_a"], sentences["rows_b"]
        outputs = {}
        for name in heads:
            spec = self.model.config.tasks[name]
            if spec["pair_encoding"] == "single":
                logits = head_logits(self.model, name, sentences["encodings"][name], sentences["mask"])
                outputs[f"{name}/text"] = _per_item(logits, rows_a)
                outputs[f"{name}/text_pair"] = _per_item(logits, rows_b)
            elif spec["pair_encoding"] == "bi":
                embeddings = sentences["embeddings"][name]
                outputs["embeddings/text"] = _per_item(embeddings, rows_a)
                outputs["embeddings/text_pair"] = _per_item(embeddings, rows_b)
                paired = [i for i, row in enumerate(rows_b) if row is not None]
                logits = self.model.heads[name](
                    embeddings[[rows_a[i] for i in paired]], embeddings[[rows_b[i] for i in paired]]
                )
                if spec["kind"] != "classification" and logits.dim() == 2:
                    logits = logits.squeeze(-1)  # a concat head's single output column, as forward squeezes it
                outputs[name] = _per_item(logits, _positions(rows_b))
        return outputs

    def _cross_heads(self, texts, pairs, heads, max_length, sentences=None):
        """One encoder pass over the distinct cross-encoded pairs "[CLS] a [SEP] b [SEP]"."""
        keys = [(text, pair) if pair is not None else None for text, pair in zip(texts, pairs)]
        distinct, rows = _distinct_rows(keys)
        if not distinct:
            return {}
        encoded = self._encode([a for a, _ in distinct], [b for _, b in distinct], max_length)
        cross = [name for name in heads if self.model.config.tasks[name]["pair_encoding"] == "cross"]
        encodings = self.model.encode_for_tasks(cross, **encoded)
        side_a = side_b = None
        if sentences is not None:
            # The sentence embeddings of each distinct pair's two sides, in the order of `distinct`.
            first_input = {}
            for i, row in enumerate(rows):
                if row is not None:
                    first_input.setdefault(row, i)
            inputs = [first_input[d] for d in range(len(distinct))]
            side_a = [sentences["rows_a"][i] for i in inputs]
            side_b = [sentences["rows_b"][i] for i in inputs]
        outputs = {}
        for name in cross:
            embeddings = sentences["embeddings"].get(name) if sentences is not None else None
            pair_embeddings = None if embeddings is None else (embeddings[side_a], embeddings[side_b])
            logits = head_logits(self.model, name, encodings[name], encoded["attention_mask"], pair_embeddings)
            outputs[name] = _per_item(logits, rows)
        return outputs

    def _whole_model_heads(self, texts, pairs, heads, max_length):
        """Heads of a model that exposes no encoder (an ensemble): `model(..., task=head)` per head, on the
        distinct sentences alone for single-sentence heads and on the distinct cross-encoded pairs for pair
        heads (an ensemble derives from those what each member reads, bi-encoder members included)."""
        specs = self.model.config.tasks
        single = [name for name in heads if specs[name]["pair_encoding"] == "single"]
        paired = [name for name in heads if specs[name]["pair_encoding"] != "single"]
        outputs = {}
        if single:
            distinct, rows = _distinct_rows(texts + pairs)
            encoded = self._encode(distinct, None, max_length)
            for name in single:
                logits = self._task_logits(name, encoded)
                outputs[f"{name}/text"] = _per_item(logits, rows[: len(texts)])
                outputs[f"{name}/text_pair"] = _per_item(logits, rows[len(texts):])
        distinct, rows = _distinct_rows([(a, b) if b is not None else None for a, b in zip(texts, pairs)])
        if paired and distinct:
            encoded = self._encode([a for a, _ in distinct], [b for _, b in distinct], max_length)
            for name in paired:
                outputs[name] = _per_item(self._task_logits(name, encoded), rows)
        return outputs

    def _task_logits(self, name, encoded):
        logits = self.model(**encoded, task=name).logits
        if self.model.config.tasks[name]["kind"] != "classification" and logits.dim() == 2:
            logits = logits.squeeze(-1)  # one output column, as head_logits squeezes it
        return logits

    def _encode(self, first, second, max_length):
        """Tokenize (pairs jointly), padded to the batch's longest, truncated at `max_length` with a warning
        that says how many texts lost tokens."""
        encoded = self.tokenizer(
            first, second, padding=True, truncation=True, max_length=max_length, return_tensors="pt",
            return_token_type_ids=True,
        )
        lengths = encoded["attention_mask"].sum(dim=-1).tolist()
        at_limit = [i for i, length in enumerate(lengths) if length == max_length]
        if at_limit:
            # Only an encoding that exactly fills max_length can have been cut: measure just those in full.
            full = self.tokenizer(
                [first[i] for i in at_limit], [second[i] for i in at_limit] if second is not None else None,
                truncation=False, verbose=False,
            )["input_ids"]
            cut = [i for i, ids in zip(at_limit, full) if len(ids) > max_length]
            if cut:
                example = first[cut[0]] if second is None else (first[cut[0]], second[cut[0]])
                logger.warning(
                    "%s: %d of %d inputs are longer than max_length=%d tokens and were truncated, e.g. %s",
                    self._name, len(cut), len(first), max_length, _preview(example),
                )
        return {key: encoded[key].to(self.device) for key in ("input_ids", "attention_mask", "token_type_ids")}


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


def _positions(rows):
    """Index of each present row among the present rows (None stays None): where a pair's result sits in a
    tensor computed for the paired items only."""
    count, positions = 0, []
    for row in rows:
        positions.append(None if row is None else count)
        count += row is not None
    return positions


class MinBertParaphrasePipeline(MinBertPipeline):
    """Is `text_pair` a paraphrase of `text`? -> {"label": "paraphrase" | "not paraphrase", "score"}, where
    score is the probability of the returned label. The model's binary pair head ("para", or `head=`)."""

    task_name = "paraphrase-detection"

    def _heads(self, head=None, heads=None):
        if heads is not None:
            raise TypeError(f"{self._name}: answers with one head; pass head=..., not heads=...")
        return [select_head(self.model.config, self._name, "binary", "para", head)]

    def postprocess(self, model_outputs, heads=None):
        name = (heads or self._heads())[0]
        return answer(self.model.config.tasks[name], model_outputs[name][0])


class MinBertSimilarityPipeline(MinBertPipeline):
    """How similar are `text` and `text_pair`? -> {"score": s} on the head's scale (0-5 for STS), clipped to
    it; a bi-encoder head also returns "embeddings": [embedding of text, embedding of text_pair]."""

    task_name = "sentence-similarity"

    def _heads(self, head=None, heads=None):
        if heads is not None:
            raise TypeError(f"{self._name}: answers with one head; pass head=..., not heads=...")
        return [select_head(self.model.config, self._name, "regression", "sts", head)]

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

    def __call__(self, inputs, **kwargs):
        result = super().__call__(inputs, **kwargs)
        return [result] if isinstance(inputs, str) and "top_k" not in kwargs else result

    def _sanitize_parameters(self, head=None, heads=None, max_length=None, top_k=_NO_TOP_K):
        preprocess, forward, postprocess = super()._sanitize_parameters(head=head, heads=heads, max_length=max_length)
        if top_k is not self._NO_TOP_K:
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"{self._name}: top_k must be a positive integer or None (every label), got {top_k!r}")
            postprocess["top_k"] = top_k
        return preprocess, forward, postprocess

    def _heads(self, head=None, heads=None):
        if heads is not None:
            raise TypeError(f"{self._name}: answers with one head; pass head=..., not heads=...")
        return [select_sentence_head(self.model.config, self._name, head)]

    def preprocess(self, inputs):
        text, text_pair = read_input(inputs, self._name)
        if text_pair is not None:
            raise ValueError(
                f"{self._name}: classifies one sentence; got a pair {_preview(inputs)} (a list is a batch of "
                "sentences; for pairs use paraphrase-detection, sentence-similarity or minbert-multitask)"
            )
        return {"text": text, "text_pair": None}

    def postprocess(self, model_outputs, heads=None, top_k=_NO_TOP_K):
        name = (heads or self._heads())[0]
        ranked = ranked_labels(self.model.config.tasks[name], model_outputs[f"{name}/text"][0])
        if top_k is self._NO_TOP_K:
            return ranked[0]
        return ranked if top_k is None else ranked[:top_k]


def select_sentence_head(config, task, head=None):
    """The single-sentence classification head `task` answers with: `head` if given (checked), else the default
    task's (the head the stock pipeline used) if it is one, else "sst", else the model's only such head."""

    def fits(name):
        spec = config.tasks[name]
        return spec["pair_encoding"] == "single" and spec["kind"] in ("classification", "binary")

    if head is not None:
        if head not in config.tasks:
            raise ValueError(f"{task}: the model has no head {head!r}; its heads: {', '.join(config.tasks)}")
        if not fits(head):
            spec = config.tasks[head]
            raise ValueError(f"{task}: head {head!r} is a {spec['kind']} head on {spec['pair_encoding']} input; "
                             "this pipeline needs a classification head on single sentences")
        return head
    for preferred in (config.default_task, "sst"):
        if preferred in config.tasks and fits(preferred):
            return preferred
    candidates = [name for name in config.tasks if fits(name)]
    if len(candidates) == 1:
        return candidates[0]
    found = f"several: {', '.join(candidates)}" if candidates else f"none among {', '.join(config.tasks)}"
    raise ValueError(f"{task}: the model needs one single-sentence classification head, found {found}; "
                     "choose with head=...")


def ranked_labels(spec, logits):
    """Every label of a classification or binary head with its probability, most probable first."""
    logits = logits.double()
    if spec["kind"] == "binary":
        positive = float(torch.sigmoid(logits.reshape(())))
        probabilities = [1.0 - positive, positive]
    else:
        probabilities = logits.softmax(-1).tolist()
    pairs = sorted(zip(spec["labels"], probabilities), key=lambda pair: -pair[1])
    return [{"label": label, "score": score} for label, score in pairs]


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
    task=...)` (a `MinBertForMultitask`, or an ensemble of them)."""
    tasks = getattr(getattr(model, "config", None), "tasks", None)
    return bool(tasks) and isinstance(tasks, dict) and "task" in inspect.signature(model.forward).parameters


def attach_pipelines(model):
    """Name the pipelines in `model.config` before a save (multitask models only: the others have no heads
    for them). The models' `save_pretrained` call this through a relative import, which is also what makes
    transformers copy this file next to the weights."""
    if is_multitask_model(model):
        model.config.custom_pipelines = custom_pipelines_config()
    elif hasattr(model.config, "custom_pipelines"):
        del model.config.custom_pipelines


def _register():
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


_register()
