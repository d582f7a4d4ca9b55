"""minBERT: a BERT encoder written from scratch, with multitask heads.

This file travels to the Hub as remote code: it imports only torch, transformers and
`configuration_minbert`. Module and parameter names follow transformers' `modeling_bert.py`
(`bert.encoder.layer.{i}.attention.self.query`, ...) so that any standard BERT checkpoint loads into
minBERT with no key mapping beyond the one `from_pretrained` already does for a base-model prefix.
"""
import copy
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
try:
    from transformers import initialization as init
    BASE_INITIALIZES_LAYERS = True  # transformers 5: PreTrainedModel._init_weights sets Linear, Embedding, LayerNorm
except ImportError:  # transformers 4.x: torch's initializers, and a base _init_weights that does nothing
    from torch.nn import init
    BASE_INITIALIZES_LAYERS = False
from transformers.activations import ACT2FN
try:
    from transformers.modeling_layers import GradientCheckpointingLayer
except ImportError:  # transformers < 4.52: no gradient checkpointing for remote code there
    GradientCheckpointingLayer = nn.Module
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput, SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput, logging

from .configuration_minbert import ARCHITECTURE_FIELDS, MinBertConfig, num_task_outputs

logger = logging.get_logger(__name__)


# ----------------------------------------------------------------------------------------------------------
# Encoder
# ----------------------------------------------------------------------------------------------------------


class MinBertTokenLayout:
    """Where the real tokens of a padded (batch, length) batch sit, so that per-token work skips padding.

    Everything in a layer except attention itself (projections, feed-forward, LayerNorm, dropout, GELU) acts
    on each token alone, so the encoder carries hidden states as a (real tokens, hidden) matrix and re-pads
    only for the attention product (on CPU per group of rows of similar length). Sentence batches padded to
    their longest row are often half padding, and padding would otherwise cost as much as words (ModernBERT
    unpads the same way). Positions with attention_mask 0 are never computed: their returned hidden states
    are zeros.
    """

    def __init__(self, attention_mask, batch, length):
        self.batch, self.length = batch, length
        self.rows = self.cols = self.sdpa_mask = None
        self.attention_mask = attention_mask
        self._length_groups = False  # not planned yet (None: no grouping for this batch)
        if attention_mask is not None:
            if attention_mask.shape != (batch, length):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}; expected {(batch, length)}, "
                    "one 1/0 entry per input token"
                )
            rows, cols = attention_mask.nonzero(as_tuple=True)
            if rows.numel() < batch * length:
                # (B, 1, 1, L) boolean mask, True = attend; None (no padding) lets SDPA take its fastest kernel.
                self.rows, self.cols = rows, cols
                self.sdpa_mask = attention_mask.bool()[:, None, None, :]

    def unpad(self, padded):
        """(batch, length, ...) -> (real tokens, ...), in row-major order."""
        if self.rows is None:
            return padded.reshape(self.batch * self.length, *padded.shape[2:])
        return padded[self.rows, self.cols]

    def pad(self, tokens):
        """(real tokens, ...) -> (batch, length, ...), zeros at padding."""
        if self.rows is None:
            return tokens.view(self.batch, self.length, *tokens.shape[1:])
        padded = tokens.new_zeros(self.batch, self.length, *tokens.shape[1:])
        return padded.index_put((self.rows, self.cols), tokens)

    def length_groups(self):
        """The batch's rows gathered by length for attention (`MinBertLengthGroups`), or None where attention
        runs on the padded batch: no padding, or not on CPU (GPU kernels skip masked work themselves)."""
        if self._length_groups is False:
            on_cpu = self.rows is not None and self.rows.device.type == "cpu"
            groups = MinBertLengthGroups(self) if on_cpu else None
            self._length_groups = groups if groups is not None and groups.shapes else None
        return self._length_groups


class MinBertLengthGroups:
    """Attention over rows of similar length: the rows are sorted by their number of real tokens and cut into
    groups, each padded only to its own longest row, in one packed (slots, ...) buffer.

    On CPU, attention's cost (the score products, the softmax and above all the dropout mask, one random draw
    per query-key pair) grows with the padded width squared, so a batch padded to its longest row pays for
    pairs no token uses. Each extra group costs a few more small operations, so the cut minimises
    rows × width² summed over the groups plus `COST_PER_GROUP` per group. A row's real tokens are packed to
    the left of its slots whatever the mask's layout: position embeddings are already added, and attention
    itself does not depend on where a token sits, only on which tokens it may see.
    """

    COST_PER_GROUP = 1024  # in query-key pairs per head: about what a group's extra small operations cost

    def __init__(self, layout):
        lengths = layout.attention_mask.bool().sum(dim=1)
        plan = plan_length_groups(lengths.tolist(), self.COST_PER_GROUP)
        first_slot = [0] * layout.batch
        self.shapes, self.key_masks, slot = [], [], 0
        for rows, width in plan:
            for i, row in enumerate(rows):
                first_slot[row] = slot + i * width
            row_lengths = lengths[rows]
            ragged = bool((row_lengths < width).any())
            # (rows, 1, 1, width) boolean, True = a real key; None lets SDPA take its unmasked kernel.
            key_mask = torch.arange(width, device=lengths.device) < row_lengths[:, None]
            self.key_masks.append(key_mask[:, None, None, :] if ragged else None)
            self.shapes.append((len(rows), width))
            slot += len(rows) * width
        self.num_slots = slot
        # The k-th real token of row r (row-major, as `unpad` orders them) goes to slot first_slot[r] + k.
        row_starts = lengths.cumsum(0) - lengths
        token_index = torch.arange(layout.rows.numel(), device=lengths.device)
        self.slots = torch.tensor(first_slot, device=lengths.device)[layout.rows] + token_index - row_starts[layout.rows]

    def pack(self, tokens):
        """(real tokens, ...) -> (slots, ...), zeros in the slots of padding."""
        return tokens.new_zeros(self.num_slots, *tokens.shape[1:]).index_copy(0, self.slots, tokens)

    def split(self, packed):
        """(slots, ...) -> one (rows × width, ...) block per group."""
        return packed.split([rows * width for rows, width in self.shapes])

    def unpack(self, packed):
        """(slots, ...) -> (real tokens, ...), in the layout's order."""
        return packed.index_select(0, self.slots)


def plan_length_groups(lengths, cost_per_group):
    """[(rows, width)]: rows with tokens, longest first, cut into consecutive groups so that
    Σ len(rows) · width² + cost_per_group · groups is least (exact dynamic programme over the cut points).
    Cuts only fall where the length changes: splitting rows of equal length only adds a group."""
    order = sorted((row for row, n in enumerate(lengths) if n > 0), key=lambda row: -lengths[row])
    cuts = [i for i in range(len(order)) if i == 0 or lengths[order[i]] != lengths[order[i - 1]]] + [len(order)]
    best = {0: (0, None)}  # cut index -> (least cost of the rows before it, previous cut)
    for end in cuts[1:]:
        best[end] = min(
            (best[start][0] + (end - start) * lengths[order[start]] ** 2 + cost_per_group, start)
            for start in cuts if start < end
        )
    groups, end = [], len(order)
    while end:
        start = best[end][1]
        groups.append((order[start:end], lengths[order[start]]))
        end = start
    return groups[::-1]


class MinBertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout (applied once, also for
    `inputs_embeds`: a perturbation of word embeddings goes through the same normalisation as words).
    Returns the real tokens only, (tokens, hidden), as laid out by `layout`: only they are looked up, so
    padding costs neither the sums nor a padded gradient in the backward pass."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, layout, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            embeddings = self.word_embeddings(layout.unpad(input_ids))
        else:
            embeddings = layout.unpad(inputs_embeds)
        if position_ids is None:
            position_ids = torch.arange(layout.length, device=embeddings.device)
        embeddings = embeddings + self.position_embeddings(layout.unpad(position_ids.expand(layout.batch, -1)))
        if token_type_ids is None:
            # Row 0 of the type table broadcasts: the same as all-zero token types without building them.
            embeddings = embeddings + self.token_type_embeddings.weight[0]
        else:
            embeddings = embeddings + self.token_type_embeddings(layout.unpad(token_type_ids))
        return self.dropout(self.LayerNorm(embeddings))


class MinBertSelfAttention(nn.Module):
    """Multi-head self-attention over the real tokens of `layout`: padded again only for the product itself,
    per group of rows of similar length on CPU (`MinBertLengthGroups`), else to the batch's longest row.

    `config._attn_implementation` picks the kernel: "sdpa" (the default) is `scaled_dot_product_attention`,
    "eager" the explicit softmax(QKᵀ/√d)·V of `_attention_with_probs`. `output_attentions` always takes the
    explicit one over the padded batch: SDPA does not return the attention matrix.

    query/key/value stay separate Linear modules (checkpoint names, and what PEFT wraps), but when all
    three are plain Linears their weights are concatenated so the projection is one matmul instead of
    three: on CPU one wide GEMM is markedly faster than three narrow ones.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def _project_qkv(self, hidden_states):
        """(tokens, hidden) -> (tokens, 3 × hidden): each token's query, key and value side by side."""
        if all(type(m) is nn.Linear for m in (self.query, self.key, self.value)):
            weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            return F.linear(hidden_states, weight, bias)
        # Wrapped projections (e.g. LoRA): call each module so the wrapper's own computation runs.
        return torch.cat([m(hidden_states) for m in (self.query, self.key, self.value)], dim=-1)

    def _heads(self, qkv):
        """(rows, length, 3 × hidden) -> query, key and value, each (rows, heads, length, head_dim)."""
        return qkv.unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4).unbind(0)

    def _attend(self, query, key, value, key_mask):
        dropout = self.dropout_prob if self.training else 0.0
        if getattr(self.config, "_attn_implementation", None) == "eager":
            return self._attention_with_probs(query, key, value, key_mask, dropout)[0]
        return F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask, dropout_p=dropout)

    def forward(self, hidden_states, layout, output_attentions=False):
        qkv = self._project_qkv(hidden_states)
        groups = None if output_attentions else layout.length_groups()
        if groups is not None:
            blocks = groups.split(groups.pack(qkv))
            contexts = [
                self._attend(*self._heads(block.view(rows, width, -1)), key_mask).transpose(1, 2).flatten(0, 1)
                for block, (rows, width), key_mask in zip(blocks, groups.shapes, groups.key_masks)
            ]
            return groups.unpack(torch.cat(contexts)).flatten(1), None
        query, key, value = self._heads(layout.pad(qkv))
        if output_attentions:
            dropout = self.dropout_prob if self.training else 0.0
            context, probs = self._attention_with_probs(query, key, value, layout.sdpa_mask, dropout)
        else:
            context, probs = self._attend(query, key, value, layout.sdpa_mask), None
        return layout.unpad(context.transpose(1, 2)).flatten(1), probs

    @staticmethod
    def _attention_with_probs(query, key, value, attention_mask, dropout):
        scores = query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5
        if attention_mask is not None:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        probs = scores.softmax(dim=-1)
        return F.dropout(probs, p=dropout) @ value, probs


class MinBertSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class MinBertAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = MinBertSelfAttention(config)
        self.output = MinBertSelfOutput(config)

    def forward(self, hidden_states, layout, output_attentions=False):
        context, probs = self.self(hidden_states, layout, output_attentions)
        return self.output(context, hidden_states), probs


class MinBertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class MinBertOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class MinBertLayer(GradientCheckpointingLayer):
    """Post-LayerNorm transformer layer: attention, residual, LayerNorm; GELU feed-forward, residual,
    LayerNorm (the original BERT ordering, which pretrained checkpoints require)."""

    def __init__(self, config):
        super().__init__()
        self.attention = MinBertAttention(config)
        self.intermediate = MinBertIntermediate(config)
        self.output = MinBertOutput(config)

    def forward(self, hidden_states, layout, output_attentions=False):
        attention_output, probs = self.attention(hidden_states, layout, output_attentions)
        return self.output(self.intermediate(attention_output), attention_output), probs


class MinBertEncoder(nn.Module):
    """Layers 0 .. num_layers − 1 (default: all of them; a CerBERTus shares only the lower ones)."""

    def __init__(self, config, num_layers=None):
        super().__init__()
        num_layers = config.num_hidden_layers if num_layers is None else num_layers
        self.layer = nn.ModuleList([MinBertLayer(config) for _ in range(num_layers)])

    def forward(self, hidden_states, layout, output_attentions=False, output_hidden_states=False):
        return run_layers(self.layer, hidden_states, layout, output_attentions, output_hidden_states)


class MinBertTopLayers(nn.Module):
    """Layers first_layer .. L − 1 keyed by their number in the full encoder (`layer.{i}`): a CerBERTus task's
    own copy of the top layers carries the names of the layers it copies."""

    def __init__(self, config, first_layer):
        super().__init__()
        self.layer = nn.ModuleDict({str(i): MinBertLayer(config) for i in range(first_layer, config.num_hidden_layers)})

    def forward(self, hidden_states, layout, output_attentions=False, output_hidden_states=False):
        return run_layers(self.layer.values(), hidden_states, layout, output_attentions, output_hidden_states)


def run_layers(layers, hidden_states, layout, output_attentions=False, output_hidden_states=False):
    """`hidden_states`: the real tokens, (tokens, hidden). Returns the last hidden states padded back to
    (batch, length, hidden), and every layer's too when asked for (the input first)."""
    all_hidden_states = (layout.pad(hidden_states),) if output_hidden_states else None
    all_attentions = () if output_attentions else None
    for layer in layers:
        hidden_states, probs = layer(hidden_states, layout, output_attentions)
        if output_hidden_states:
            all_hidden_states += (layout.pad(hidden_states),)
        if output_attentions:
            all_attentions += (probs,)
    last_hidden_state = all_hidden_states[-1] if output_hidden_states else layout.pad(hidden_states)
    return last_hidden_state, all_hidden_states, all_attentions


class MinBertPooler(nn.Module):
    """tanh(W · h_[CLS] + b), BERT's next-sentence pooler."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


def mean_pool(last_hidden_state, attention_mask):
    """Mean of the token vectors over non-padding positions (sentence-transformers' pooling)."""
    if attention_mask is None:
        return last_hidden_state.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


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


class MinBertPreTrainedModel(PreTrainedModel):
    config_class = MinBertConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # forward() takes no **kwargs and returns a per-batch mean loss: Trainer must scale it itself.
    accepts_loss_kwargs = False
    _no_split_modules = ["MinBertLayer"]

    @torch.no_grad()
    def _init_weights(self, module):
        cosine_init = getattr(module, "cosine_init", None)
        fresh = cosine_init is not None and not getattr(module.weight, "_is_hf_initialized", False)
        super()._init_weights(module)
        if not BASE_INITIALIZES_LAYERS:
            _init_standard_layer(module, self.config.initializer_range)
        if fresh:
            module.weight[:, -1] = cosine_init[0]
            module.bias.fill_(cosine_init[1])
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


class MinBertModel(MinBertPreTrainedModel):
    """The bare minBERT encoder: last hidden states and the tanh-pooled [CLS] vector.

    Padding positions (attention_mask 0) are skipped, not computed: their hidden states come back as zeros,
    where transformers' BertModel returns values no real token ever attends to.
    """

    def __init__(self, config, add_pooling_layer=True, num_layers=None):
        super().__init__(config)
        self.embeddings = MinBertEmbeddings(config)
        self.encoder = MinBertEncoder(config, num_layers)
        self.pooler = MinBertPooler(config) if add_pooling_layer else None
        self.post_init()

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

        layout = MinBertTokenLayout(attention_mask, *ids_like.shape)
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


class MinBertTaskEncoder(nn.Module):
    """One task's own top layers and pooler (CerBERTus, seed 002), run on the output of the shared lower layers.
    Below `task_encoders.<task>.` the parameter names are those of the BERT parameters they copy
    (`encoder.layer.{i}.*`, `pooler.*`), so a checkpoint's top layers map onto every task's copy by name."""

    def __init__(self, config):
        super().__init__()
        self.encoder = MinBertTopLayers(config, config.num_hidden_layers - config.task_specific_layers)
        self.pooler = MinBertPooler(config)

    def forward(self, shared_output, attention_mask=None, output_attentions=False, output_hidden_states=False):
        shared_states = shared_output.last_hidden_state
        layout = MinBertTokenLayout(attention_mask, *shared_states.shape[:2])
        last_hidden_state, hidden_states, attentions = self.encoder(
            layout.unpad(shared_states), layout, output_attentions, output_hidden_states
        )
        if output_hidden_states:  # the shared layers' states, then this task's (its input is the shared output)
            hidden_states = shared_output.hidden_states + hidden_states[1:]
        if output_attentions:
            attentions = shared_output.attentions + attentions
        return BaseModelOutputWithPooling(last_hidden_state, self.pooler(last_hidden_state), hidden_states, attentions)


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


@dataclass
class MinBertEncoderOutput(BaseModelOutputWithPooling):
    """A task's encoder output (`MinBertForMultitask.encode_for_tasks`); `static_output`: the static encoder's
    output on the same input, for models with `config.static_encoder`."""

    static_output: Optional[BaseModelOutputWithPooling] = None


# ----------------------------------------------------------------------------------------------------------
# Task heads
# ----------------------------------------------------------------------------------------------------------


class MinBertTaskHead(nn.Module):
    """`head_layers` Linear layers: (dropout, Linear(·, hidden), activation) × (depth − 1), then dropout and
    the output Linear. With `cosine_feature` the input gains one last feature, cos(u, v) of the separately
    encoded sentences; a one-layer regression or binary head then starts out as the bi-encoder's own
    cosine mapping (see `cosine_feature_init`), so fine-tuning refines a strong start instead of finding it."""

    def __init__(self, config, spec, in_features):
        super().__init__()
        dropout = config.hidden_dropout_prob if spec["head_dropout"] is None else spec["head_dropout"]
        self.cosine_feature = bool(spec["cosine_feature"])
        layers, width = [], in_features + int(self.cosine_feature)
        for _ in range(int(spec["head_layers"]) - 1):
            layers += [nn.Dropout(dropout), nn.Linear(width, config.hidden_size), ACT2FN[spec["head_activation"]]]
            width = config.hidden_size
        layers += [nn.Dropout(dropout), nn.Linear(width, num_task_outputs(spec))]
        self.layers = nn.Sequential(*layers)
        if self.cosine_feature and spec["head_layers"] == 1:
            # Read by _init_weights when it initializes this Linear (and only then: loaded weights stay).
            self.layers[-1].cosine_init = cosine_feature_init(spec)

    def forward(self, features, cosine=None):
        if self.cosine_feature:
            features = torch.cat([features, cosine.unsqueeze(-1).to(features.dtype)], dim=-1)
        return self.layers(features)


def cosine_feature_init(spec):
    """(weight on cos, bias) that make a one-layer head reproduce the bi-encoder mapping at the start:
    regression low + (high − low)·cos; binary logit scale·(cos − threshold); classification: none."""
    if spec["kind"] == "regression":
        low, high = spec["label_range"]
        return high - low, low
    if spec["kind"] == "binary":
        scale, threshold = MinBertCosineLogit.INITIAL_SCALE, MinBertCosineLogit.INITIAL_THRESHOLD
        return scale, -scale * threshold
    return None


class MinBertCosineLogit(nn.Module):
    """Binary bi-encoder head: logit = scale · (cos − threshold), both learned. Initialised so that the
    decision boundary sits at cos = 0.75, where paraphrases from a sentence-embedding model start."""

    INITIAL_SCALE = 20.0
    INITIAL_THRESHOLD = 0.75

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(self.INITIAL_SCALE))
        self.threshold = nn.Parameter(torch.tensor(self.INITIAL_THRESHOLD))

    def forward(self, cosine):
        return self.scale * (cosine - self.threshold)


class MinBertBiEncoderHead(nn.Module):
    """Scores a pair from two separately encoded, mean-pooled sentences u and v.

    `bi_features="cosine"`: regression maps cos ∈ [0, 1] linearly onto the label range (sentence-transformers'
    CosineSimilarityLoss convention: label / max == cos); binary uses a learned scale and threshold.
    `bi_features="concat"`: an MLP head over [u, v, |u − v|, cos] (SBERT's classification objective).
    """

    def __init__(self, config, spec):
        super().__init__()
        self.kind = spec["kind"]
        self.label_range = spec["label_range"]
        self.mlp = None
        self.cosine_logit = None
        if spec["bi_features"] == "concat":
            self.mlp = MinBertTaskHead(config, spec, 3 * config.hidden_size + 1)
        elif self.kind == "binary":
            self.cosine_logit = MinBertCosineLogit()
        elif self.kind == "classification":
            raise ValueError("a bi-encoder classification head needs bi_features='concat'")

    def forward(self, u, v):
        cosine = F.cosine_similarity(u, v, dim=-1)
        if self.mlp is not None:
            return self.mlp(torch.cat([u, v, (u - v).abs(), cosine.unsqueeze(-1)], dim=-1))
        if self.cosine_logit is not None:
            return self.cosine_logit(cosine)
        low, high = self.label_range
        return low + (high - low) * cosine


@dataclass
class MinBertMultitaskOutput(ModelOutput):
    """
    loss: the task's loss when `labels` are given (cross-entropy, BCE-with-logits or MSE).
    logits: (B, num_classes) for classification; (B,) — one logit, or the predicted score on the label
        scale — for binary and regression tasks.
    embeddings_a, embeddings_b: the mean-pooled sentence embeddings of a bi-encoder task.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    embeddings_a: Optional[torch.FloatTensor] = None
    embeddings_b: Optional[torch.FloatTensor] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


def task_loss(spec, task, logits, labels):
    """The task's loss, after checking that `labels` fit the task (shape and range) with a clear error.

    Classification also accepts soft targets (B, C) that are probability rows, and binary accepts targets
    in [0, 1]: distillation trains on a teacher's probabilities.
    """
    kind = spec["kind"]
    if kind == "classification":
        num_classes = logits.shape[-1]
        if labels.dim() == 2 and labels.is_floating_point():
            _check(labels.shape == logits.shape, task, f"soft labels must have shape {tuple(logits.shape)}")
            _check(bool((labels >= 0).all()) and torch.allclose(labels.sum(-1), labels.new_ones(())), task,
                   "soft labels must be probability rows (non-negative, summing to 1)")
            return F.cross_entropy(logits, labels)
        _check(labels.shape == logits.shape[:1], task, f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
        _check(not labels.is_floating_point() or bool((labels == labels.round()).all()), task, "class labels must be integers")
        labels = labels.long()
        _check(bool(((labels >= 0) & (labels < num_classes)).all()), task,
               f"class labels must lie in [0, {num_classes}), got values {labels.unique().tolist()}")
        return F.cross_entropy(logits, labels)
    labels = labels.reshape(-1) if labels.dim() == 2 and labels.shape[-1] == 1 else labels
    _check(labels.shape == logits.shape, task, f"labels must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
    labels = labels.to(logits.dtype)
    _check(bool(torch.isfinite(labels).all()), task, "labels contain NaN or Inf")
    if kind == "binary":
        _check(bool(((labels >= 0) & (labels <= 1)).all()), task, "binary labels must lie in [0, 1]")
        return F.binary_cross_entropy_with_logits(logits, labels)
    low, high = spec["label_range"]
    _check(bool(((labels >= low) & (labels <= high)).all()), task, f"regression labels must lie in [{low}, {high}]")
    return F.mse_loss(logits, labels)


def _check(condition, task, message):
    if not condition:
        raise ValueError(f"task {task!r}: {message}")


class MinBertForMultitask(MinBertPreTrainedModel):
    """A minBERT encoder with one head per task in `config.tasks`.

    `forward(..., task=name)` runs the named head; `task=None` runs `config.default_task`, so the stock
    text-classification pipeline answers with the default head and its label names.

    How much of the encoder the tasks share (see `MinBertConfig`), by parameter name:
        bert.*                   shared by every task: the embeddings and layers 0 .. L−k−1 (and the pooler if k = 0)
        task_encoders.<task>.*   the task's own top k layers and pooler (k = `task_specific_layers`; CerBERTus),
                                 or its whole encoder (`task_specific_embeddings`: Triple-BERT, no `bert` at all)
        static_bert.*            the frozen static encoder (`static_encoder`)
        heads.<task>.*           the task's head
    Shared modules exist once, so every task computes with the same tensors. Loading a checkpoint without
    task-specific layers (a BERT, or a plain multitask minBERT) copies its encoder into them: see
    `from_pretrained`.
    """

    def __init__(self, config):
        super().__init__(config)
        config.sync_labels_with_default_task()
        num_shared_layers = config.num_hidden_layers - config.task_specific_layers
        if config.task_specific_embeddings:
            self.task_encoders = nn.ModuleDict({name: MinBertModel(config) for name in config.tasks})
        else:
            # The pooler reads the top layer: it is shared exactly when the top layer is.
            self.bert = MinBertModel(config, add_pooling_layer=num_shared_layers == config.num_hidden_layers,
                                     num_layers=num_shared_layers)
            self.task_encoders = (
                nn.ModuleDict({name: MinBertTaskEncoder(config) for name in config.tasks})
                if config.task_specific_layers else None
            )
        self.static_bert = MinBertStaticEncoder(config) if config.static_encoder else None
        head_width = config.hidden_size * (2 if config.static_encoder else 1)
        self.heads = nn.ModuleDict(
            {
                name: MinBertBiEncoderHead(config, spec)
                if spec["pair_encoding"] == "bi"
                else MinBertTaskHead(config, spec, head_width)
                for name, spec in config.tasks.items()
            }
        )
        self.post_init()

    def get_input_embeddings(self):
        return self.task_input_embeddings(self.config.default_task)

    def set_input_embeddings(self, value):
        if self.config.task_specific_embeddings:
            raise ValueError(
                "this model (Triple-BERT) has one word table per task: set each one through "
                "model.task_encoders[task].set_input_embeddings"
            )
        self.bert.set_input_embeddings(value)

    def task_input_embeddings(self, task=None):
        """The word-embedding table whose vectors `inputs_embeds` holds for `task` (shared unless Triple-BERT)."""
        task = self.config.default_task if task is None else task
        self.config.task_spec(task)
        if self.config.task_specific_embeddings:
            return self.task_encoders[task].get_input_embeddings()
        return self.bert.get_input_embeddings()

    def task_parameters(self, task):
        """The parameters only `task` uses: its head and, in a CerBERTus or Triple-BERT, its own encoder part."""
        self.config.task_spec(task)
        parameters = list(self.heads[task].parameters())
        if self.task_encoders is not None:
            parameters += list(self.task_encoders[task].parameters())
        return parameters

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, which also loads a checkpoint with one shared encoder (a BERT, a
        plain multitask minBERT, a `MinBertForMaskedLM`) into a CerBERTus, Triple-BERT or static-encoder model:
        pass `task_specific_layers=k`, `task_specific_embeddings=True` or `static_encoder=True` (or a config
        saying so). Every task's own layers then start as copies of the checkpoint's layers they replace, and
        the static encoder as a copy of its encoder; a warning lists what was copied. A checkpoint that already
        has task-specific layers loads only as the architecture it was saved with."""
        requested = _requested_architecture(kwargs)
        if requested:
            saved = MinBertConfig.from_pretrained(pretrained_model_name_or_path, **_hub_kwargs(kwargs))
            saved_architecture = {field: getattr(saved, field) for field in ARCHITECTURE_FIELDS}
            if {**saved_architecture, **requested} != saved_architecture:
                return cls._from_shared_encoder(pretrained_model_name_or_path, saved, requested, model_args, kwargs)
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs)
        model._check_loaded(pretrained_model_name_or_path, info)
        return (model, info) if want_info else model

    @classmethod
    def _from_shared_encoder(cls, path, saved, requested, model_args, kwargs):
        if saved.task_specific_layers or saved.task_specific_embeddings:
            raise ValueError(
                f"{path} is a {saved.architecture} model (task_specific_layers={saved.task_specific_layers}); "
                f"it loads only as saved, not with {requested}: start from a checkpoint with one shared encoder"
            )
        # Load the checkpoint as what it is (one shared encoder), then give each task its copies.
        target = {field: requested.get(field, getattr(saved, field)) for field in ARCHITECTURE_FIELDS}
        kwargs = dict(kwargs)
        want_info = kwargs.pop("output_loading_info", False)
        config = kwargs.get("config")
        if isinstance(config, MinBertConfig):
            kwargs["config"] = _with_architecture(config, {field: getattr(saved, field) for field in ARCHITECTURE_FIELDS})
        else:
            kwargs.update({field: getattr(saved, field) for field in ARCHITECTURE_FIELDS})
        source, info = super().from_pretrained(path, *model_args, output_loading_info=True, **kwargs)
        source._check_loaded(path, info)
        model = source._with_task_specific_copies(target)
        return (model, info) if want_info else model

    def _with_task_specific_copies(self, architecture):
        """This model (one shared encoder) turned into `architecture`: each task's own encoder part starts as a
        copy of the shared part it replaces, a new static encoder as a copy of the shared encoder."""
        config = _with_architecture(self.config, architecture)
        with torch.device("meta"):
            model = type(self)(config)
        state = self.state_dict()

        def source_of(name):
            owner, _, rest = name.partition(".")
            if owner == "task_encoders":  # task_encoders.<task>.X copies bert.X
                return "bert." + rest.partition(".")[2]
            if owner == "static_bert" and name not in state:
                return "bert." + rest
            return name

        target_state = model.state_dict()
        weights = {name: _widened(name, state[source_of(name)], target.shape, config.hidden_size)
                   for name, target in target_state.items()}
        model.load_state_dict(weights, assign=True)
        model.train(self.training)
        model.name_or_path = self.name_or_path
        for message in _copy_report(self.config, config):
            logger.warning("%s: %s", self.name_or_path, message)
        return model

    def _check_loaded(self, path, info):
        # Loading replaces parameters with fresh ones (requires_grad True): the static encoder must stay frozen.
        if self.static_bert is not None:
            self.static_bert.requires_grad_(False)
        missing = sorted({key.split(".")[1] for key in info["missing_keys"] if key.startswith("task_encoders.")})
        if missing:
            raise ValueError(
                f"{path} has no task-specific encoder layers for task(s) {missing}: a new task cannot get its own "
                "layers from a checkpoint that has them for other tasks only"
            )
        if any(key.startswith("cls.predictions.") for key in info["unexpected_keys"]):
            logger.warning("%s: the masked-LM head (cls.predictions.*) is dropped; the encoder carries over", path)

    def encode_for_tasks(
        self,
        tasks,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
    ):
        """{task: `MinBertEncoderOutput`}: the encoder output each task's head reads, for one input batch. The
        shared part of the encoder runs once for all `tasks`; each task's own layers (CerBERTus, Triple-BERT)
        run on top. With a static encoder, each output carries its output as `static_output`."""
        return self._encode(tasks, input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions,
                            output_hidden_states, with_static=True)

    def encode_for_task(self, task, *args, **kwargs):
        """The encoder output `task`'s head reads (see `encode_for_tasks`)."""
        return self.encode_for_tasks([task], *args, **kwargs)[task]

    def _encode(self, tasks, input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions=None,
                output_hidden_states=None, with_static=False):
        tasks = list(dict.fromkeys([tasks] if isinstance(tasks, str) else tasks))
        if not tasks:
            raise ValueError("encode_for_tasks needs at least one task")
        for task in tasks:
            self.config.task_spec(task)
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states, "return_dict": True}
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                  "inputs_embeds": inputs_embeds}
        if self.config.task_specific_embeddings:
            if inputs_embeds is not None and len(tasks) > 1:
                raise ValueError("inputs_embeds are one task's word vectors here (Triple-BERT): encode one task at a time")
            outputs = {task: self.task_encoders[task](**inputs, **flags) for task in tasks}
        else:
            shared = self.bert(**inputs, **flags)
            outputs = {
                task: shared if self.task_encoders is None
                else self.task_encoders[task](shared, attention_mask, output_attentions, output_hidden_states)
                for task in tasks
            }
        if with_static and self.static_bert is not None:
            outputs = self._with_static_outputs(outputs, input_ids, attention_mask, token_type_ids, inputs_embeds)
        return outputs

    def _with_static_outputs(self, outputs, input_ids, attention_mask, token_type_ids, inputs_embeds):
        # The static encoder reads the word vectors the task's encoder read: once per distinct word table.
        static_by_table = {}
        result = {}
        for task, output in outputs.items():
            table = self.task_input_embeddings(task)
            if id(table) not in static_by_table:
                words = inputs_embeds if inputs_embeds is not None else table(input_ids)
                static_by_table[id(table)] = self.static_bert(None, attention_mask, token_type_ids, inputs_embeds=words)
            result[task] = MinBertEncoderOutput(**output, static_output=static_by_table[id(table)])
        return result

    def embed(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, task=None):
        """Mean-pooled sentence embeddings (B, H) of single sentences, by `task`'s encoder (default: the default
        task's; all tasks share one encoder unless the model is a CerBERTus or Triple-BERT)."""
        task = self.config.default_task if task is None else task
        out = self._encode([task], input_ids, attention_mask, token_type_ids, inputs_embeds)[task]
        return mean_pool(out.last_hidden_state, attention_mask)

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
    ):
        task = self.config.default_task if task is None else task
        spec = self.config.task_spec(task)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if spec["pair_encoding"] == "bi":
            _check(input_ids_a is not None or inputs_embeds_a is not None, task,
                   "a bi-encoder task needs input_ids_a/attention_mask_a and input_ids_b/attention_mask_b")
            u, v = self._encode_pair_separately(
                (input_ids_a, attention_mask_a, inputs_embeds_a), (input_ids_b, attention_mask_b, inputs_embeds_b), task
            )
            logits, hidden_states, attentions = self.heads[task](u, v), None, None
        else:
            _check(input_ids is not None or inputs_embeds is not None, task, "needs input_ids (or inputs_embeds)")
            u = v = None
            if spec["cosine_feature"]:
                _check(input_ids_a is not None or inputs_embeds_a is not None, task,
                       "a head with cosine_feature also needs the sentences alone: input_ids_a/_b, attention_mask_a/_b")
                u, v = self._encode_pair_separately(
                    (input_ids_a, attention_mask_a, inputs_embeds_a), (input_ids_b, attention_mask_b, inputs_embeds_b), task
                )
            out = self.encode_for_task(
                task,
                input_ids,
                attention_mask,
                token_type_ids,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
            logits = self.head_logits(task, out, attention_mask, None if u is None else (u, v))
            hidden_states, attentions = out.hidden_states, out.attentions
        if logits.dim() == 2 and logits.shape[-1] == 1 and spec["kind"] != "classification":
            logits = logits.squeeze(-1)  # (B, 1) -> (B,); a cosine head's (B,) stays, also when B = 1
        loss = task_loss(spec, task, logits, labels) if labels is not None else None
        output = MinBertMultitaskOutput(loss, logits, u, v, hidden_states, attentions)
        return output if return_dict else output.to_tuple()

    def head_logits(self, task, encoder_output, attention_mask=None, pair_embeddings=None):
        """Raw output of a single-sentence or cross-encoder head from the encoder output the task reads
        (`encode_for_tasks`; pipelines reuse one encoder pass for several heads). `pair_embeddings=(u, v)`:
        the sentences' mean-pooled embeddings by the task's encoder, needed by heads with `cosine_feature`."""
        spec = self.config.task_spec(task)
        features = self._head_features(spec, encoder_output, attention_mask)
        if self.static_bert is not None:
            static_output = getattr(encoder_output, "static_output", None)
            _check(static_output is not None, task, "this model has a static encoder: pass the output of encode_for_tasks")
            features = torch.cat([features, self._head_features(spec, static_output, attention_mask)], dim=-1)
        cosine = None
        if spec["cosine_feature"]:
            _check(pair_embeddings is not None, task, "a head with cosine_feature needs pair_embeddings=(u, v)")
            cosine = F.cosine_similarity(*pair_embeddings, dim=-1)
        return self.heads[task](features, cosine)

    @staticmethod
    def _head_features(spec, encoder_output, attention_mask):
        pooling = spec["head_pooling"]
        if pooling == "pooler":
            return encoder_output.pooler_output
        if pooling == "cls":
            return encoder_output.last_hidden_state[:, 0]
        return mean_pool(encoder_output.last_hidden_state, attention_mask)

    def _encode_pair_separately(self, side_a, side_b, task):
        # Both sides go through the encoder as one batch of 2B: one pass over a wider batch is faster than
        # two passes, and pad-to-common-length does not change mean-pooled outputs.
        (ids_a, mask_a, emb_a), (ids_b, mask_b, emb_b) = side_a, side_b
        first = ids_a if ids_a is not None else emb_a
        length = max(first.shape[1], (ids_b if ids_b is not None else emb_b).shape[1])
        mask_a = _ones_mask(first, mask_a)
        mask_b = _ones_mask(ids_b if ids_b is not None else emb_b, mask_b)
        mask = torch.cat([_pad_to(mask_a, length), _pad_to(mask_b, length)])
        if ids_a is not None and ids_b is not None:
            ids = torch.cat([_pad_to(ids_a, length, self.config.pad_token_id), _pad_to(ids_b, length, self.config.pad_token_id)])
            embeddings = self.embed(ids, mask, task=task)
        else:
            word = self.task_input_embeddings(task)
            emb_a = emb_a if emb_a is not None else word(ids_a)
            emb_b = emb_b if emb_b is not None else word(ids_b)
            pair = torch.cat([_pad_to(emb_a, length), _pad_to(emb_b, length)])
            embeddings = self.embed(None, mask, inputs_embeds=pair, task=task)
        return embeddings.chunk(2)


def _ones_mask(ids_like, mask):
    return mask if mask is not None else torch.ones(ids_like.shape[:2], dtype=torch.long, device=ids_like.device)


def _pad_to(tensor, length, value=0):
    """Right-pad dimension 1 of `tensor` to `length`."""
    missing = length - tensor.shape[1]
    if missing == 0:
        return tensor
    pad = (0, 0, 0, missing) if tensor.dim() == 3 else (0, missing)
    return F.pad(tensor, pad, value=value)


class MinBertForSequenceClassification(MinBertPreTrainedModel):
    """One classification/regression head on the pooled output: the standard transformers shape, for
    `AutoModelForSequenceClassification` users (`config.num_labels`, `config.problem_type`)."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = MinBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        # A multitask checkpoint reached through AutoModelForSequenceClassification (as the stock pipeline
        # does) must keep its trained heads: loading it into a fresh single classifier would silently
        # answer with random weights.
        config = kwargs.get("config")
        if not isinstance(config, MinBertConfig):
            config = MinBertConfig.from_pretrained(pretrained_model_name_or_path, **_hub_kwargs(kwargs))
        if cls is MinBertForSequenceClassification and (config.architectures or [None])[0] == "MinBertForMultitask":
            return MinBertForMultitask.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

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
        )
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = self._loss(logits, labels) if labels is not None else None
        if not return_dict:
            return tuple(x for x in (loss, logits, out.hidden_states, out.attentions) if x is not None)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)

    def _loss(self, logits, labels):
        # transformers' convention: regression for one label, single-label for integer labels, else multi-label.
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).reshape(-1))
        if self.config.problem_type == "single_label_classification":
            if labels.dim() != 1 or bool(((labels < 0) | (labels >= self.num_labels)).any()):
                raise ValueError(f"labels must be class indices in [0, {self.num_labels}) of shape (batch,)")
            return F.cross_entropy(logits, labels)
        if labels.shape != logits.shape:
            raise ValueError(f"multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def _widened(name, tensor, shape, hidden_size):
    """A copy of `tensor` for a parameter of `shape`. A head's first weight that gains the static encoder's
    features (hidden_size more inputs, after the fine-tuned encoder's) gets zero columns for them: the model
    then starts out computing exactly what the checkpoint computed, and those weights still train."""
    if tensor.shape == shape:
        return tensor.clone()
    if name.startswith("heads.") and tensor.dim() == 2 and tuple(shape) == (tensor.shape[0], tensor.shape[1] + hidden_size):
        static_columns = tensor.new_zeros(tensor.shape[0], hidden_size)
        return torch.cat([tensor[:, :hidden_size], static_columns, tensor[:, hidden_size:]], dim=1)
    raise ValueError(f"cannot convert {name}: the checkpoint has shape {tuple(tensor.shape)}, the model {tuple(shape)}")


def _copy_report(source, target):
    """What `_with_task_specific_copies` copied from the shared encoder of `source` into `target`, in words."""
    tasks = ", ".join(target.tasks)
    num_layers, k = target.num_hidden_layers, target.task_specific_layers
    messages = []
    if target.task_specific_embeddings:
        messages.append(f"Triple-BERT: each task's encoder ({tasks}) starts as a copy of the checkpoint's whole encoder")
    elif k:
        shared = f"{_layer_range(0, num_layers - k - 1)} stay" if k < num_layers else "only the embeddings stay"
        messages.append(
            f"CerBERTus: each task's {_layer_range(num_layers - k, num_layers - 1)} and pooler ({tasks}) start as "
            f"copies of the checkpoint's (task_encoders.<task>.* <- bert.*); {shared} shared"
        )
    if target.static_encoder and not source.static_encoder:
        messages.append(
            "static encoder: a frozen copy of the checkpoint's encoder (static_bert.* <- bert.*); its features "
            "enter the heads through zero-initialised weights"
        )
    if source.static_encoder and not target.static_encoder:
        messages.append("the checkpoint's static encoder is dropped (static_encoder=False)")
    return messages


def _layer_range(first, last):
    return f"layer {first}" if first == last else f"layers {first}-{last}"


def _requested_architecture(kwargs):
    """The architecture fields a from_pretrained call asks for: all of a passed config's, or the keyword arguments."""
    config = kwargs.get("config")
    if isinstance(config, MinBertConfig):
        return {field: getattr(config, field) for field in ARCHITECTURE_FIELDS}
    return {field: kwargs[field] for field in ARCHITECTURE_FIELDS if field in kwargs}


def _with_architecture(config, architecture):
    config = copy.deepcopy(config)
    for field, value in architecture.items():
        setattr(config, field, value)
    config._check_architecture()
    return config


class MinBertPredictionHeadTransform(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class MinBertLMPredictionHead(nn.Module):
    """BERT's masked-LM head: dense + activation + LayerNorm, then the decoder onto the vocabulary, whose
    weight is the word-embedding table (tied) and whose bias is `bias` (tied)."""

    def __init__(self, config):
        super().__init__()
        self.transform = MinBertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states):
        return self.decoder(self.transform(hidden_states))


class MinBertOnlyMLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.predictions = MinBertLMPredictionHead(config)

    def forward(self, sequence_output):
        return self.predictions(sequence_output)


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

    def auto_map(self):
        return {"AutoModel": "modeling_minbert.MinBertModel", "AutoModelForMaskedLM": "modeling_minbert.MinBertForMaskedLM"}

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
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        if not return_dict:
            return tuple(x for x in (loss, logits, out.hidden_states, out.attentions) if x is not None)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


def _hub_kwargs(kwargs):
    keys = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "trust_remote_code")
    return {k: kwargs[k] for k in keys if k in kwargs}


# save_pretrained copies this file and configuration_minbert.py next to the weights and writes auto_map, so
# the folder loads with trust_remote_code=True where hf_minbert is not installed.
MinBertConfig.register_for_auto_class()
for _model_class in (MinBertModel, MinBertForMultitask, MinBertForSequenceClassification):
    _model_class.register_for_auto_class("AutoModel")
MinBertForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")

__all__ = [
    "MinBertPreTrainedModel",
    "MinBertModel",
    "MinBertForMultitask",
    "MinBertForSequenceClassification",
    "MinBertForMaskedLM",
    "MinBertMultitaskOutput",
]
