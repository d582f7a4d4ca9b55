"""minBERT: a BERT encoder written from scratch, with multitask heads.

This file and the ones it imports travel to the Hub as remote code (`save_pretrained` copies every file a
saved class's module imports relatively), so each imports only torch, transformers and the others:

    configuration_minbert.py            the config: encoder size, task heads, architecture
    modeling_minbert.py                 the models users load (this file)
    modeling_minbert_unpadding.py       where a padded batch's real tokens are; attention's length groups
    modeling_minbert_layers.py          embeddings, attention, layers, pooler, dropout (a cheaper CPU mask)
    modeling_minbert_heads.py           task heads, their features and logits, losses, the masked-LM head
    modeling_minbert_pair_order.py      a cross-encoded pair read the other way round (average_pair_orders)
    modeling_minbert_task_encoders.py   what the tasks share: one encoder, CerBERTus, Triple-BERT, static
    modeling_minbert_conversion.py      a shared encoder's checkpoint loaded into task-specific copies

Module and parameter names follow transformers' `modeling_bert.py` (`bert.encoder.layer.{i}.attention.self.query`,
...) so that any standard BERT checkpoint loads into minBERT with no key mapping beyond the one
`from_pretrained` already does for a base-model prefix.
"""
import json
import os

import torch
import torch.nn.functional as F
from torch import nn

try:
    from transformers import initialization as init
    BASE_INITIALIZES_LAYERS = True  # transformers 5: PreTrainedModel._init_weights sets Linear, Embedding, LayerNorm
except ImportError:  # transformers 4.x: torch's initializers, and a base _init_weights that does nothing
    from torch.nn import init
    BASE_INITIALIZES_LAYERS = False
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput, SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel

from .configuration_minbert import (
    LABEL_FIELDS,
    MinBertConfig,
    check_requested_labels,
    check_segment_embeddings,
    is_minbert_config,
    is_multitask_architecture,
)
from .modeling_minbert_conversion import hub_kwargs, load_multitask
from .modeling_minbert_heads import (
    MinBertBiEncoderHead,
    MinBertCosineLogit,
    MinBertLMPredictionHead,
    MinBertMultitaskOutput,
    MinBertOnlyMLMHead,
    MinBertTaskHead,
    MinBertTaskPrediction,
    check_task,
    inputs_read,
    pooled_features,
    sequence_classification_logits,
    sequence_classification_loss,
    task_logits,
    task_loss,
)
from .modeling_minbert_layers import MinBertEmbeddings, MinBertEncoder, MinBertPooler, mean_pool
from .modeling_minbert_pair_order import both_orders
from .modeling_minbert_task_encoders import INPUT_KEYS, encoder_variant, stack_sides
from .modeling_minbert_unpadding import MinBertTokenLayout, products_in_bf16


def _init_standard_layer(module, std):
    """BERT's initialization of a Linear, Embedding or LayerNorm, for transformers releases whose
    PreTrainedModel._init_weights leaves them to the model (4.x): a fresh head is never left uninitialized."""
    if isinstance(module, nn.Linear):
        init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)


# A folder of one encoder, with or without a head, loads under each auto class as a BERT checkpoint does (and as
# it does where hf_minbert is installed): every class gets its own head over the same encoder, a head the folder
# lacks freshly initialized.
SINGLE_ENCODER_AUTO_MAP = {
    "AutoModel": "modeling_minbert.MinBertModel",
    "AutoModelForSequenceClassification": "modeling_minbert.MinBertForSequenceClassification",
    "AutoModelForMaskedLM": "modeling_minbert.MinBertForMaskedLM",
}


class MinBertPreTrainedModel(PreTrainedModel):
    config_class = MinBertConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # forward() takes no **kwargs and returns a per-batch mean loss: Trainer must scale it itself.
    accepts_loss_kwargs = False
    _no_split_modules = ["MinBertLayer"]
    # A buffer of positions 0..max that checkpoints saved by older transformers carry; minBERT computes positions.
    _keys_to_ignore_on_load_unexpected = [r"embeddings\.position_ids$"]

    @torch.no_grad()
    def _init_weights(self, module):
        cosine_init, bias_init = getattr(module, "cosine_init", None), getattr(module, "bias_init", None)
        fresh = not getattr(getattr(module, "weight", None), "_is_hf_initialized", False)
        super()._init_weights(module)
        if not BASE_INITIALIZES_LAYERS:
            _init_standard_layer(module, self.config.initializer_range)
        if fresh and cosine_init is not None:
            module.weight[:, -1] = cosine_init[0]
            module.bias.fill_(cosine_init[1])
        if fresh and bias_init is not None:
            module.bias.fill_(bias_init)
        if isinstance(module, MinBertCosineLogit):
            init.constant_(module.scale, MinBertCosineLogit.INITIAL_SCALE)
            init.constant_(module.threshold, MinBertCosineLogit.INITIAL_THRESHOLD)
        if isinstance(module, MinBertLMPredictionHead):
            init.zeros_(module.bias)

    def auto_map(self):
        """config.json's auto classes -> classes in the saved modeling file. One folder must resolve for
        AutoModel *and* AutoModelForSequenceClassification (the stock text-classification pipeline loads through
        the latter), both to the class that was saved."""
        class_path = f"modeling_minbert.{type(self).__name__}"
        return {"AutoModel": class_path, "AutoModelForSequenceClassification": class_path}

    def save_pretrained(self, save_directory, *args, **kwargs):
        self.config.auto_map = {"AutoConfig": "configuration_minbert.MinBertConfig", **self.auto_map()}
        # The pipelines travel with every saved model, also when a remote-code copy is fine-tuned and saved
        # again: config.json names them, and this relative import makes the save copy pipelines.py too.
        from .pipelines import attach_pipelines

        attach_pipelines(self)
        return super().save_pretrained(save_directory, *args, **kwargs)


# sentence-transformers (6 and later) loads a saved multitask folder as one Transformer module that calls
# `MinBertForMultitask.sentence_embedding`: `SentenceTransformer(folder, trust_remote_code=True).encode(texts)`.
SENTENCE_TRANSFORMERS_CONFIG = {
    "modules.json": [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}],
    "sentence_bert_config.json": {
        "transformer_task": "feature-extraction",
        "modality_config": {"text": {"method": "sentence_embedding", "method_output_name": None}},
        "module_output_name": "sentence_embedding",
    },
    "config_sentence_transformers.json": {"model_type": "SentenceTransformer", "similarity_fn_name": "cosine",
                                          "prompts": {}, "default_prompt_name": None},
}


def write_sentence_transformers_config(save_directory):
    for name, content in SENTENCE_TRANSFORMERS_CONFIG.items():
        with open(os.path.join(save_directory, name), "w", encoding="utf-8") as file:
            json.dump(content, file, indent=2)
            file.write("\n")


def check_one_encoder(config, where, remedy):
    """Refuse, naming `where`, a CerBERTus or Triple-BERT config where one encoder is wanted: its top layers (or
    all of them) are each task's own, under `task_encoders.<task>.*`, so one encoder would load the shared layers
    alone and start the rest at random, with no more than a line in the load report."""
    if config.architecture != "multitask":
        own = "every layer" if config.architecture == "triple" else f"the top {config.task_specific_layers} layers"
        raise ValueError(f"{where}: a {config.architecture} model, {own} of its encoder each task's own, has no "
                         f"one encoder {remedy}")


def load_one_encoder(cls, super_from_pretrained, path, model_args, kwargs):
    """`from_pretrained` of a one-encoder class (the bare encoder, the masked-LM model), refusing a CerBERTus or
    Triple-BERT checkpoint (`check_one_encoder`)."""
    config = kwargs.get("config")
    if not is_minbert_config(config):
        config = MinBertConfig.from_pretrained(path, **hub_kwargs(kwargs))
    check_one_encoder(config, path, f"for {cls.__name__}; load it with AutoModel.from_pretrained (MinBertForMultitask) "
                      "and read a task's encoder with model.encode_for_task(task, **inputs)")
    return super_from_pretrained(path, *model_args, **kwargs)


def sentence_embedding_task(tasks, default_task):
    """The task whose encoder gives a model's sentence embeddings: the default task's if its head is a bi-encoder,
    else the first bi-encoder head's by name, else the default task's. By name, not by the config's order:
    config.json stores the tasks in alphabetical order, and a saved model must embed as it did before saving."""
    bi_encoded = sorted(task for task, spec in tasks.items() if spec["pair_encoding"] == "bi")
    return default_task if default_task in bi_encoded or not bi_encoded else bi_encoded[0]


class MinBertModel(MinBertPreTrainedModel):
    """The bare minBERT encoder: last hidden states and the tanh-pooled [CLS] vector.

    Padding positions (attention_mask 0) are skipped, not computed: their hidden states come back as zeros,
    where transformers' BertModel returns values no real token ever attends to.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        return load_one_encoder(cls, super().from_pretrained, pretrained_model_name_or_path, model_args, kwargs)

    def __init__(self, config, add_pooling_layer=True, num_layers=None):
        super().__init__(config)
        self.embeddings = MinBertEmbeddings(config)
        self.encoder = MinBertEncoder(config, num_layers)
        self.pooler = MinBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def auto_map(self):
        return SINGLE_ENCODER_AUTO_MAP

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        return_dict = self.config.return_dict if return_dict is None else return_dict
        ids_like = input_ids if input_ids is not None else inputs_embeds[..., 0]
        _check_lengths(self.config, ids_like)

        bf16_products = products_in_bf16(self.embeddings.position_embeddings.weight)
        layout = MinBertTokenLayout(attention_mask, *ids_like.shape, bf16_products=bf16_products)
        hidden_states = self.embeddings(layout, input_ids, token_type_ids, position_ids, inputs_embeds)
        sequence_output, all_hidden_states, all_attentions = self.encoder(
            hidden_states, layout, output_attentions, output_hidden_states
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        if not return_dict:
            outputs = (sequence_output, pooled_output, all_hidden_states, all_attentions)
            return tuple(o for o in outputs if o is not None)
        return BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


def _check_lengths(config, ids_like):
    if ids_like.dim() != 2:
        raise ValueError(f"expected inputs of shape (batch, sequence_length), got {tuple(ids_like.shape)}")
    if ids_like.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {ids_like.shape[1]} exceeds max_position_embeddings="
            f"{config.max_position_embeddings}: truncate the input"
        )


class MinBertStaticEncoder(MinBertModel):
    """Seed 002's "static BERT": a frozen copy of the pretrained encoder, whose output the heads read beside the
    fine-tuned encoder's. It is never trained (requires_grad False: no optimizer holds it) and always runs in
    eval mode (a fixed feature extractor has no dropout).

    It has no word table of its own: it reads the word vectors of the task's encoder (`inputs_embeds`), so that
    `inputs_embeds` means one thing for the whole model and a perturbation of them (SMART) reaches both encoders
    alike. Position and token-type embeddings, LayerNorm, every layer and the pooler are the frozen copy."""

    def __init__(self, config):
        super().__init__(config)
        self.embeddings.word_embeddings = None
        self.requires_grad_(False)

    def train(self, mode=True):
        return super().train(False)


class MinBertForMultitask(MinBertPreTrainedModel):
    """A minBERT encoder with one head per task in `config.tasks`.

    `forward(..., task=name)` runs the named head; `task=None` runs `config.default_task`, so the stock
    text-classification pipeline answers with the default head and its label names. `predict` runs any number
    of heads on shared encoder passes: forward, the pipelines and ensembles predict through it.

    How much of the encoder the tasks share (see `MinBertConfig`), by parameter name:
        bert.*                   shared by every task: the embeddings and layers 0 .. L−k−1 (and the pooler if k = 0)
        task_encoders.<task>.*   the task's own top k layers and pooler (k = `task_specific_layers`; CerBERTus),
                                 or its whole encoder (`task_specific_embeddings`: Triple-BERT, no `bert` at all)
        static_bert.*            the frozen static encoder (`static_encoder`)
        heads.<task>.*           the task's head
    Shared modules exist once, so every task computes with the same tensors; `encoders`, the variant picked in
    __init__, says how they run. Loading a checkpoint without task-specific layers copies its encoder into
    them: see `from_pretrained`.
    """

    def __init__(self, config):
        super().__init__(config)
        check_segment_embeddings(config.type_vocab_size, config.tasks)
        config.sync_labels_with_default_task()
        self.encoders = encoder_variant(config)
        bert, self.task_encoders, self.static_bert = self.encoders.build(config, MinBertModel, MinBertStaticEncoder)
        if bert is not None:  # Triple-BERT has no shared encoder (nor a `bert` attribute: base_model is the model)
            self.bert = bert
        width = self.encoders.feature_width(config)
        heads = {name: MinBertBiEncoderHead(config, spec) if spec["pair_encoding"] == "bi"
                 else MinBertTaskHead(config, spec, width) for name, spec in config.tasks.items()}
        self.heads = nn.ModuleDict(heads)
        self.post_init()
        # The pipeline tasks (paraphrase-detection, ...) exist wherever such a model does: loaded as remote code,
        # where hf_minbert is not installed, nothing else imports the file that registers them.
        from .pipelines import register_pipeline_tasks

        register_pipeline_tasks()

    def get_input_embeddings(self):
        return self.task_input_embeddings(self.config.default_task)

    def set_input_embeddings(self, value):
        self.encoders.set_input_embeddings(self, value)

    def _resize_token_embeddings(self, new_num_tokens, pad_to_multiple_of=None, *args):
        # `resize_token_embeddings` swaps the one table `set_input_embeddings` takes; a Triple-BERT has one word
        # table per task, each resized here the way transformers resizes one (args: its later options, such as
        # mean_resizing, which older versions lack). The caller then records the new vocab_size.
        if not self.config.task_specific_embeddings:
            return super()._resize_token_embeddings(new_num_tokens, pad_to_multiple_of, *args)
        for encoder in self.task_encoders.values():
            old = encoder.get_input_embeddings()
            resized = self._get_resized_embeddings(old, new_num_tokens, pad_to_multiple_of, *args)
            encoder.set_input_embeddings(resized.requires_grad_(old.weight.requires_grad))
        return self.get_input_embeddings()

    def task_input_embeddings(self, task=None):
        """The word-embedding table whose vectors `inputs_embeds` holds for `task` (shared unless Triple-BERT)."""
        task = self.config.default_task if task is None else task
        self.config.task_spec(task)
        return self.encoders.input_embeddings(self, task)

    def task_parameters(self, task):
        """The parameters only `task` uses: its head and, in a CerBERTus or Triple-BERT, its own encoder part."""
        self.config.task_spec(task)
        modules = [self.heads[task], *self.encoders.task_modules(self, task)]
        return [parameter for module in modules for parameter in module.parameters()]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, which also loads a checkpoint with one shared encoder (a BERT, a plain
        multitask minBERT, a `MinBertForMaskedLM`) into a CerBERTus, Triple-BERT or static-encoder model: pass
        `task_specific_layers=k`, `task_specific_embeddings=True` or `static_encoder=True` (or a config saying so).
        Each task's own layers start as copies of those they replace (`modeling_minbert_conversion`).

        num_labels/id2label/label2id must agree with the default head's labels (pick the head with default_task=):
        a BERT checkpoint's config would take them, and the model then answer with its default head all the same."""
        requested = {key: kwargs[key] for key in LABEL_FIELDS if key in kwargs}
        loaded = load_multitask(super().from_pretrained, pretrained_model_name_or_path, model_args, kwargs)
        check_requested_labels((loaded[0] if isinstance(loaded, tuple) else loaded).config, requested)
        return loaded

    def encode_for_tasks(self, tasks, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                         output_attentions=None, output_hidden_states=None, position_ids=None):
        """{task: `MinBertEncoderOutput`}: the encoder output each task's head reads, for one input batch. The
        shared part of the encoder runs once for all `tasks`; each task's own layers (CerBERTus, Triple-BERT)
        run on top. With a static encoder, each output carries its output as `static_output`."""
        inputs = dict(zip(INPUT_KEYS, (input_ids, attention_mask, token_type_ids, inputs_embeds, position_ids)))
        tasks = list(dict.fromkeys([tasks] if isinstance(tasks, str) else tasks))
        return self._encode(tasks, inputs, output_attentions, output_hidden_states, static_tasks=tasks)

    def encode_for_task(self, task, *args, **kwargs):
        """The encoder output `task`'s head reads (see `encode_for_tasks`)."""
        return self.encode_for_tasks([task], *args, **kwargs)[task]

    def embed(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, task=None):
        """Mean-pooled sentence embeddings (B, H) of single sentences, by `task`'s encoder (default: the default
        task's; all tasks share one encoder unless the model is a CerBERTus or Triple-BERT)."""
        task = self.config.default_task if task is None else task
        inputs = dict(zip(INPUT_KEYS, (input_ids, attention_mask, token_type_ids, inputs_embeds)))
        return mean_pool(self._encode([task], inputs)[task].last_hidden_state, attention_mask)

    def sentence_embedding_task(self):
        """The task whose encoder gives the model's sentence embeddings (`sentence_embedding_task`)."""
        return sentence_embedding_task(self.config.tasks, self.config.default_task)

    def sentence_embedding(self, input_ids=None, attention_mask=None, token_type_ids=None):
        """Mean-pooled sentence embeddings (B, H) by `sentence_embedding_task`'s encoder: those whose cosine a
        bi-encoder similarity head scores, and what sentence-transformers reads of a saved folder
        (`save_pretrained` writes its config)."""
        return self.embed(input_ids, attention_mask, token_type_ids, task=self.sentence_embedding_task())

    def save_pretrained(self, save_directory, *args, **kwargs):
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            write_sentence_transformers_config(save_directory)
        return result

    def _upload_modified_files(self, working_dir, *args, **kwargs):
        # save_pretrained(..., push_to_hub=True) uploads from inside the save: the config must be there by then.
        write_sentence_transformers_config(working_dir)
        return super()._upload_modified_files(working_dir, *args, **kwargs)

    def _encode(self, tasks, inputs, output_attentions=None, output_hidden_states=None, static_tasks=()):
        if not tasks:
            raise ValueError("encode_for_tasks needs at least one task")
        for task in tasks:
            self.config.task_spec(task)
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states, "return_dict": True}
        inputs = {key: inputs.get(key) for key in INPUT_KEYS}
        return self.encoders.encode(self, tasks, inputs, flags, static_tasks)

    def predict_inputs(self, task):
        """Which of `predict`'s inputs `task` reads: some of "sentences", "pairs" and "sides"."""
        return inputs_read(self.config.task_spec(task))

    def predict(self, tasks, sentences=None, pairs=None, sides=None, output_attentions=None, output_hidden_states=None):
        """{task: `MinBertTaskPrediction`} for each of `tasks` on one batch, whose inputs are dicts of
        input_ids (or inputs_embeds), attention_mask and token_type_ids:

            sentences   single sentences: a single-sentence head predicts one row per sentence
            pairs       cross-encoded pairs "[CLS] a [SEP] b [SEP]": a cross-encoder head predicts one row per pair
            sides       (rows_a, rows_b): pair i's sentences alone are rows rows_a[i] and rows_b[i] of `sentences`,
                        which bi-encoder heads (one row per pair) and the cosine feature read

        `predict_inputs(task)` says which a task reads. The sentences go through the encoder once and the pairs
        once, whatever the number of tasks (shared layers once for all of them): a caller that passes each
        distinct text once encodes it once. In eval mode a cross-encoder task with `average_pair_orders` also
        reads the pairs swapped, "[CLS] b [SEP] a [SEP]", and answers with the mean of both head outputs."""
        tasks = list(dict.fromkeys([tasks] if isinstance(tasks, str) else tasks))
        specs = {task: self.config.task_spec(task) for task in tasks}
        single = [task for task in tasks if specs[task]["pair_encoding"] == "single"]
        cross = [task for task in tasks if specs[task]["pair_encoding"] == "cross"]
        alone = [task for task in tasks if specs[task]["pair_encoding"] == "bi" or specs[task]["cosine_feature"]]
        given = {"sentences": sentences, "pairs": pairs, "sides": sides}
        for task in tasks:
            for name in self.predict_inputs(task):
                check_task(given[name] is not None, task, f"predict needs {name}=")
        by_sentence, by_pair, by_swapped, embeddings = {}, {}, {}, {}
        if single or alone:
            # Hidden states and attentions are those of the pass a head reads: this one for sentence heads only.
            flags = (output_attentions, output_hidden_states) if single else (None, None)
            by_sentence = self._encode(single + alone, sentences, *flags, static_tasks=single)
            mask = sentences.get("attention_mask")
            embeddings = {task: mean_pool(by_sentence[task].last_hidden_state, mask) for task in alone}
        if cross:
            by_pair = self._encode(cross, pairs, output_attentions, output_hidden_states, static_tasks=cross)
        both = [task for task in cross if specs[task]["average_pair_orders"] and not self.training]
        if both:
            by_swapped = self._encode(both, self._swapped_pairs(both[0], pairs), static_tasks=both)
        predictions = {}
        for task in tasks:
            spec, read = specs[task], None
            pair_embeddings = (embeddings[task][sides[0]], embeddings[task][sides[1]]) if task in embeddings else None
            if spec["pair_encoding"] == "bi":
                logits = self.heads[task](*pair_embeddings)
            else:
                read, inputs = (by_sentence[task], sentences) if task in single else (by_pair[task], pairs)
                logits = self.head_logits(task, read, inputs.get("attention_mask"), pair_embeddings)
                if task in by_swapped:
                    swapped_embeddings = pair_embeddings and pair_embeddings[::-1]
                    swapped = self.head_logits(task, by_swapped[task], pairs.get("attention_mask"), swapped_embeddings)
                    logits = (logits + swapped) / 2
            predictions[task] = MinBertTaskPrediction(
                logits=task_logits(spec, logits), embeddings=embeddings.get(task),
                hidden_states=getattr(read, "hidden_states", None), attentions=getattr(read, "attentions", None),
            )
        return predictions

    @staticmethod
    def _swapped_pairs(task, pairs):
        try:
            return both_orders(pairs)
        except ValueError as error:
            raise ValueError(f"task {task!r} (average_pair_orders): {error}") from None

    def head_logits(self, task, encoder_output, attention_mask=None, pair_embeddings=None):
        """Raw output of a single-sentence or cross-encoder head from the encoder output the task reads
        (`encode_for_tasks`). `pair_embeddings=(u, v)`: the sentences' mean-pooled embeddings by the task's
        encoder, needed by heads with `cosine_feature`. `predict` shapes it into the task's logits."""
        spec = self.config.task_spec(task)
        features = self.encoders.head_features(self, task, encoder_output, attention_mask)
        cosine = None
        if spec["cosine_feature"]:
            check_task(pair_embeddings is not None, task, "a head with cosine_feature needs pair_embeddings=(u, v)")
            cosine = F.cosine_similarity(*pair_embeddings, dim=-1)
        return self.heads[task](features, cosine)

    @staticmethod
    def _head_features(spec, encoder_output, attention_mask):
        """The pooled features a head of `spec` reads. A model folder keeps the pipelines module it was saved with,
        and where hf_minbert is imported that module runs against this class: the pipelines saved by earlier
        versions call this (today's read `encoders.head_features`)."""
        return pooled_features(spec, encoder_output, attention_mask)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        input_ids_a=None,
        attention_mask_a=None,
        input_ids_b=None,
        attention_mask_b=None,
        inputs_embeds=None,
        inputs_embeds_a=None,
        inputs_embeds_b=None,
        task=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        position_ids=None,
    ):
        """`task`'s logits (and loss, given `labels`); without a task, the default head's, in transformers'
        (batch, num_labels) shape (`sequence_classification_logits`), as a generic caller expects them.
        `position_ids` go with `input_ids` (or `inputs_embeds`): sentences or cross-encoded pairs. A bi-encoder
        task encodes each sentence apart and returns no hidden states or attentions (asking for them in the call
        is an error)."""
        generic = task is None
        task = self.config.default_task if task is None else task
        spec = self.config.task_spec(task)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        inputs = {}
        if spec["pair_encoding"] == "bi":
            check_task(input_ids_a is not None or inputs_embeds_a is not None, task,
                       "a bi-encoder task needs input_ids_a/attention_mask_a and input_ids_b/attention_mask_b")
            check_task(position_ids is None, task, "a bi-encoder task reads each sentence from position 0: "
                       "position_ids go with input_ids, which it does not read")
            # Asked by the call: a config's flags (output_hidden_states=True to from_pretrained) ask of every task
            # what it has, and a bi-encoder task still trains and predicts.
            check_task(not (output_hidden_states or output_attentions), task, "a bi-encoder task encodes each "
                       "sentence apart, so there is no one pass to return hidden states or attentions of: ask "
                       "model.encode_for_task(task, input_ids_a, ...) for each sentence's")
        else:
            check_task(input_ids is not None or inputs_embeds is not None, task, "needs input_ids (or inputs_embeds)")
            joint = dict(zip(INPUT_KEYS, (input_ids, attention_mask, token_type_ids, inputs_embeds, position_ids)))
            inputs["sentences" if spec["pair_encoding"] == "single" else "pairs"] = joint
            if spec["cosine_feature"]:
                check_task(input_ids_a is not None or inputs_embeds_a is not None, task,
                           "a head with cosine_feature also needs the sentences alone: input_ids_a/_b, attention_mask_a/_b")
        if "sides" in self.predict_inputs(task):
            inputs["sentences"], inputs["sides"] = stack_sides(
                (input_ids_a, attention_mask_a, inputs_embeds_a), (input_ids_b, attention_mask_b, inputs_embeds_b),
                self.config.pad_token_id, self.task_input_embeddings(task),
            )
        prediction = self.predict([task], **inputs, output_attentions=output_attentions,
                                  output_hidden_states=output_hidden_states)[task]
        u = v = None
        if "sides" in inputs:
            u, v = (prediction.embeddings[rows] for rows in inputs["sides"])
        loss = task_loss(spec, task, prediction.logits, labels) if labels is not None else None
        logits = sequence_classification_logits(spec, prediction.logits) if generic else prediction.logits
        output = MinBertMultitaskOutput(loss, logits, u, v, prediction.hidden_states, prediction.attentions)
        return output if return_dict else output.to_tuple()


class MinBertForSequenceClassification(MinBertPreTrainedModel):
    """One classification/regression head on the pooled output: the standard transformers shape, for
    `AutoModelForSequenceClassification` users (`config.num_labels`, `config.problem_type`)."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = MinBertModel(config)
        # As BertForSequenceClassification: a BERT config's classifier_dropout, where set, is the head's.
        classifier_dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if classifier_dropout is None else classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        # A multitask checkpoint reached through AutoModelForSequenceClassification (as the stock pipeline
        # does) must keep its trained heads: loading it into a fresh single classifier would silently
        # answer with random weights.
        config = kwargs.get("config")
        if not is_minbert_config(config):
            config = MinBertConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs(kwargs))
        if cls is MinBertForSequenceClassification and is_multitask_architecture(config.architectures):
            return MinBertForMultitask.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def auto_map(self):
        # As transformers maps a BERT classifier: AutoModel gives its encoder, whose first output is the token
        # features the stock feature-extraction pipeline reads (this class's first output is logits).
        return SINGLE_ENCODER_AUTO_MAP

    def get_input_embeddings(self):
        return self.bert.get_input_embeddings()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        return_dict = self.config.return_dict if return_dict is None else return_dict
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,  # read by name here; the tuple, if asked for, is built below
        )
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None if labels is None else sequence_classification_loss(self.config, self.num_labels, logits, labels)
        if not return_dict:
            return tuple(x for x in (loss, logits, out.hidden_states, out.attentions) if x is not None)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class MinBertForMaskedLM(MinBertPreTrainedModel):
    """minBERT with BERT's masked-language-model head, for further pretraining on in-domain text (seeds 001/002).

    Module names are those of transformers' `BertForMaskedLM` (`cls.predictions.transform.*`,
    `cls.predictions.decoder`, `cls.predictions.bias`), so a BERT checkpoint's MLM head loads; a checkpoint
    without one (e.g. a sentence-embedding model) gets a freshly initialised head, reported as missing keys.
    Unlike BertForMaskedLM it keeps the pooler (MLM does not train it): a multitask model fine-tuned from the
    saved folder then starts from the checkpoint's pooler rather than a random one.
    """

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config):
        super().__init__(config)
        self.bert = MinBertModel(config)
        self.cls = MinBertOnlyMLMHead(config)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        return load_one_encoder(cls, super().from_pretrained, pretrained_model_name_or_path, model_args, kwargs)

    def auto_map(self):
        return SINGLE_ENCODER_AUTO_MAP

    def get_input_embeddings(self):
        return self.bert.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.bert.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        """`labels`: (batch, length) token ids to predict, -100 where nothing is predicted (as
        `DataCollatorForLanguageModeling` makes them); the loss is the mean cross-entropy over the others."""
        return_dict = self.config.return_dict if return_dict is None else return_dict
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.cls(out.last_hidden_state)
        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(f"labels must have the inputs' shape {tuple(logits.shape[:2])}, got {tuple(labels.shape)}")
            # in float32, as every head's loss: a bf16 model's logits would round the loss
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        if not return_dict:
            return tuple(x for x in (loss, logits, out.hidden_states, out.attentions) if x is not None)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


# save_pretrained copies this file, the files it imports relatively and configuration_minbert.py next to the
# weights and writes auto_map, so the folder loads with trust_remote_code=True where hf_minbert is not installed.
MinBertConfig.register_for_auto_class()
for _model_class in (MinBertModel, MinBertForMultitask):
    _model_class.register_for_auto_class("AutoModel")
# Each class under the auto class its auto_map() gives it: transformers writes this entry over auto_map's.
MinBertForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
MinBertForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")

__all__ = [
    "MinBertPreTrainedModel",
    "MinBertModel",
    "MinBertForMultitask",
    "MinBertForSequenceClassification",
    "MinBertForMaskedLM",
    "MinBertMultitaskOutput",
    "MinBertTaskPrediction",
]
