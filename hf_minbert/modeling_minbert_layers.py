"""minBERT's encoder layers: embeddings, self-attention, feed-forward, the layer stack and the pooler, with
transformers' `modeling_bert.py` module names. Part of minBERT's remote code (see `modeling_minbert.py`):
imports only torch, transformers and the files beside it.
"""
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN

try:
    from transformers.modeling_layers import GradientCheckpointingLayer
except ImportError:  # transformers < 4.52
    class GradientCheckpointingLayer(nn.Module):
        """What transformers 4.52+ provides: `gradient_checkpointing_enable` finds the layers by their
        `gradient_checkpointing` attribute and gives them the function that recomputes them in backward."""

        gradient_checkpointing = False

        def __call__(self, *args, **kwargs):
            if self.gradient_checkpointing and self.training:
                return self._gradient_checkpointing_func(partial(super().__call__, **kwargs), *args)
            return super().__call__(*args, **kwargs)


def dropout(hidden, p, training=True):
    """`F.dropout`, drawing its mask from a quarter of the random numbers on CPU.

    A CPU dropout mask costs one draw of the serial Mersenne Twister per element, several times the cost of
    everything else dropout does (and dropout sits on every hidden state and every attention weight). Here
    one 64-bit draw gives the keep/drop decisions of four elements, one per 16 bits, so the drop probability
    is `p` rounded to a multiple of 1/65536 (0.1 becomes 0.1000061). Same generator as torch's, so
    `torch.manual_seed` and saved RNG states replay it; elsewhere (GPU kernels fuse the mask) `F.dropout`.
    """
    if not training or p == 0.0:
        return hidden
    if hidden.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(hidden, p, training=True)
    words = torch.empty((hidden.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    draws = words.view(torch.int16)[: hidden.numel()].view(hidden.shape)  # uniform over [-2^15, 2^15)
    keep = draws >= round(p * 65536) - 32768
    # the same 0/1 bytes read as uint8: torch converts those to floats faster than bools
    return hidden * keep.view(torch.uint8).to(hidden.dtype).mul_(1.0 / (1.0 - p))


class MinBertDropout(nn.Dropout):
    """`nn.Dropout` through minBERT's cheaper CPU mask (`dropout`)."""

    def forward(self, hidden):
        return dropout(hidden, self.p, self.training)


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
        self.dropout = MinBertDropout(config.hidden_dropout_prob)

    def forward(self, layout, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None and getattr(self.word_embeddings, "neftune_noise_alpha", None) is not None:
            # Trainer's NEFTune hook scales its noise by the size of a (batch, length, hidden) output.
            embeddings = layout.unpad(self.word_embeddings(input_ids))
        elif inputs_embeds is None:
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
        dropout_p = self.dropout_prob if self.training else 0.0
        # On CPU, SDPA with dropout takes its unfused math path and torch's mask: the explicit product with
        # minBERT's cheaper mask computes the same thing faster.
        explicit = dropout_p > 0 and query.device.type == "cpu"
        if explicit or getattr(self.config, "_attn_implementation", None) == "eager":
            return self._attention_with_probs(query, key, value, key_mask, dropout_p)[0]
        return F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask, dropout_p=dropout_p)

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
            dropout_p = self.dropout_prob if self.training else 0.0
            context, probs = self._attention_with_probs(query, key, value, layout.sdpa_mask, dropout_p)
        else:
            context, probs = self._attend(query, key, value, layout.sdpa_mask), None
        return layout.unpad(context.transpose(1, 2)).flatten(1), probs

    @staticmethod
    def _attention_with_probs(query, key, value, attention_mask, dropout_p):
        scores = query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5
        if attention_mask is not None:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        probs = dropout(scores.softmax(dim=-1), dropout_p)  # returned after dropout, as BertModel's eager attention
        return probs @ value, probs


class MinBertSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = MinBertDropout(config.hidden_dropout_prob)

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
        self.dropout = MinBertDropout(config.hidden_dropout_prob)

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
