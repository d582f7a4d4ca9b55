"""minBERT's unpadding: where the real tokens of a padded batch sit, and on CPU which rows attention groups by
length. Part of minBERT's remote code (see `modeling_minbert.py`): imports only torch and the standard library.
"""
import os

import torch

# The environment variable that sets the rounding below for a process when the constant is left at None.
CPU_ROW_STEPS_VARIABLE = "MINBERT_CPU_ROW_STEPS"
# On CPU the token matrix's row count can be rounded up to one of this many steps per power of two (a power of
# two itself, e.g. 8; 0: not rounded; None: MINBERT_CPU_ROW_STEPS decides, and where it is unset the machine).
CPU_ROW_STEPS_PER_OCTAVE = None
# The machine's default: on a CPU with AMX, bf16 products are rounded to 8 row counts per power of two. oneDNN
# builds an AMX kernel for every new product shape: the default recipe's steps took 0.80-0.85x the CPU time
# rounded. Without AMX the spare rows cost more than new shapes (1.05-1.11x on an AMD EPYC); fp32 products run
# without per-shape kernels, and fp16 ones were not measured (benchmarks/token_rows.py, matmul_shapes.py).
# In training the spare rows take dropout draws too: a seeded run differs from one with exact row counts.
AMX_ROW_STEPS = 8


def cpu_row_steps_from_environment(environment):
    """MINBERT_CPU_ROW_STEPS as a step count: None (unset, or set empty as `export VAR=` leaves it), 0 or a power
    of two; anything else is refused."""
    value = environment.get(CPU_ROW_STEPS_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) & (int(value) - 1):
        raise ValueError(f"{CPU_ROW_STEPS_VARIABLE}={value!r}: expected 0 (exact row counts) or a power of two "
                         "such as 8 (row counts rounded up to 8 values per power of two)")
    return int(value)


def has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


# {"environment": MINBERT_CPU_ROW_STEPS or None, "machine": the machine's default}, read on first use (None: not
# read yet). A plain global, not a functools.cache: a compiled forward reads it as a constant it guards on,
# where it would trace through a cache wrapper, warning.
process_cpu_row_steps = None


def cpu_row_steps(bf16_products=True):
    """The steps per power of two in force for products in bf16 (`bf16_products`) or another precision:
    CPU_ROW_STEPS_PER_OCTAVE, else the process environment's (read once), else the machine's default."""
    global process_cpu_row_steps
    if CPU_ROW_STEPS_PER_OCTAVE is not None:
        return CPU_ROW_STEPS_PER_OCTAVE
    if process_cpu_row_steps is None:
        process_cpu_row_steps = {"environment": cpu_row_steps_from_environment(os.environ),
                                 "machine": AMX_ROW_STEPS if has_amx() else 0}
    if process_cpu_row_steps["environment"] is not None:
        return process_cpu_row_steps["environment"]
    return process_cpu_row_steps["machine"] if bf16_products else 0


def products_in_bf16(weight) -> bool:
    """Whether a model whose weights are of `weight`'s dtype multiplies in bf16: a bf16 model, or one under CPU
    autocast to bf16."""
    if weight.dtype == torch.bfloat16:
        return True
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4; before it, the CPU-only functions
        return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16


def token_rows(tokens, device_type, bf16_products=True):
    """Rows the (tokens, hidden) matrix carries for `tokens` real tokens: on CPU, when `cpu_row_steps()`
    is set (8: at most 1/8 more rows), rounded up so that a run meets a few dozen matrix shapes instead of one
    per batch. oneDNN, which runs CPU bf16 products, builds a kernel for every new shape
    and caches only some: a product on a shape it has not met runs at a third of the speed
    (benchmarks/matmul_shapes.py). The extra rows are zeros that no output reads."""
    if device_type != "cpu" or _compiling():
        return tokens
    steps = cpu_row_steps(bf16_products)
    if steps == 0 or tokens < 2 * steps:
        return tokens
    step = 1 << (tokens.bit_length() - steps.bit_length())
    return -(-tokens // step) * step


def _compiling() -> bool:
    """Whether torch.compile is tracing the forward: its graphs take the row count as a dynamic size, and a
    rounding would add a guard on every new count instead of saving a kernel."""
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)
    return compiling()


def recording_graph():
    """Whether torch.jit.trace or torch.export is recording the forward: both fix in the graph every shape that
    depends on the data (the count of real tokens), so a graph of the unpadded batch would serve only the batch
    it was recorded on."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return torch.jit.is_tracing() or exporting()


def _check_first_token_attended(attention_mask):
    """Every head reads a row's [CLS] at position 0 (the pooler, `head_pooling="cls"`), and positions count
    from 0 there: a row padded on the left would answer from a padding slot, the same constant for every input."""
    unattended = (attention_mask[:, 0] == 0).nonzero()
    if unattended.numel():
        raise ValueError(
            f"attention_mask row {int(unattended[0])} does not attend to its first token: minBERT reads each row's "
            "[CLS] at position 0, so pad on the right (tokenizer.padding_side = 'right')"
        )


class MinBertTokenLayout:
    """Where the real tokens of a padded (batch, length) batch sit, so that per-token work skips padding.

    Everything in a layer except attention itself (projections, feed-forward, LayerNorm, dropout, GELU) acts
    on each token alone, so the encoder carries hidden states as a (real tokens, hidden) matrix and re-pads
    only for the attention product (on CPU per group of rows of similar length). Sentence batches padded to
    their longest row are often half padding, and padding would otherwise cost as much as words (ModernBERT
    unpads the same way). Positions with attention_mask 0 are never computed: their returned hidden states
    are zeros. On CPU the matrix may end in a few zero rows (`token_rows`), so that its row count takes few values.
    Under torch.jit.trace or torch.export the padded batch is kept instead, attention masked and padding zeroed
    on the way out: the same answers, from a graph that serves every batch shape and mask.
    """

    def __init__(self, attention_mask, batch, length, bf16_products=False):
        """bf16_products: whether the layers multiply in bf16 (`products_in_bf16`), which decides the token
        matrix's row count (`token_rows`), once for every tensor the layout unpads."""
        self.batch, self.length = batch, length
        self.bf16_products = bf16_products
        self.carried_rows = None  # the token matrix's rows (`token_rows`), decided on the first unpad
        self.tokens = batch * length  # real tokens
        self.rows = self.cols = self.sdpa_mask = None
        self.padding_kept = False  # padding carried through the layers, zeroed by `pad`
        self.attention_mask = attention_mask
        self._length_groups = False  # not planned yet (None: no grouping for this batch)
        if attention_mask is not None:
            if attention_mask.shape != (batch, length):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}; expected {(batch, length)}, "
                    "one 1/0 entry per input token"
                )
            if recording_graph():
                # A graph cannot raise on the data it is given: torch.export keeps this check as a runtime assert
                # (torch.jit.trace records none).
                torch._assert_async(attention_mask[:, 0].bool().all(), "attention_mask: a row does not attend to its "
                                    "first token: minBERT reads each row's [CLS] at position 0, so pad on the right")
                self.padding_kept = True
                self.sdpa_mask = attention_mask.bool()[:, None, None, :]
                return
            rows, cols = attention_mask.nonzero(as_tuple=True)
            if rows.numel() < batch * length:
                _check_first_token_attended(attention_mask)
                # (B, 1, 1, L) boolean mask, True = attend; None (no padding) lets SDPA take its fastest kernel.
                self.rows, self.cols, self.tokens = rows, cols, rows.numel()
                self.sdpa_mask = attention_mask.bool()[:, None, None, :]

    def unpad(self, padded):
        """(batch, length, ...) -> (token rows, ...): the real tokens in row-major order, then zero rows up to
        `token_rows`."""
        if self.rows is None:
            tokens = padded.reshape(self.batch * self.length, *padded.shape[2:])
        else:
            tokens = padded[self.rows, self.cols]
        return self.with_spare_rows(tokens)

    def with_spare_rows(self, tokens):
        """(real tokens, ...) -> (token rows, ...), zeros appended."""
        if self.padding_kept:  # a traced graph's row count follows the batch shape, not a rounding of it
            return tokens
        if self.carried_rows is None:  # decided once: every tensor of the batch gets the same rows
            self.carried_rows = token_rows(self.tokens, tokens.device.type, self.bf16_products)
        spare = self.carried_rows - self.tokens
        return torch.cat([tokens, tokens.new_zeros(spare, *tokens.shape[1:])]) if spare else tokens

    def pad(self, tokens):
        """(token rows, ...) -> (batch, length, ...), zeros at padding."""
        tokens = tokens[: self.tokens]
        if self.padding_kept:
            padding = ~self.sdpa_mask.reshape(self.batch, self.length, *(1,) * (tokens.dim() - 1))
            return tokens.reshape(self.batch, self.length, *tokens.shape[1:]).masked_fill(padding, 0)
        if self.rows is None:
            return tokens.reshape(self.batch, self.length, *tokens.shape[1:])
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
        self.layout = layout

    def pack(self, tokens):
        """(token rows, ...) -> (slots, ...), zeros in the slots of padding."""
        real = tokens[: self.slots.numel()]
        return tokens.new_zeros(self.num_slots, *tokens.shape[1:]).index_copy(0, self.slots, real)

    def split(self, packed):
        """(slots, ...) -> one (rows × width, ...) block per group."""
        return packed.split([rows * width for rows, width in self.shapes])

    def unpack(self, packed):
        """(slots, ...) -> (token rows, ...), in the layout's order."""
        return self.layout.with_spare_rows(packed.index_select(0, self.slots))


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
