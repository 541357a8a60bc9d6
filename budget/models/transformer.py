"""Decoder-only transformer shapes: parameter counts, FLOPs per token, and a shape for a size.

The architecture is GPT-2's (Radford et al. 2019; nanoGPT `model.py` with bias=True): learned
token and position embeddings, pre-norm blocks of causal self-attention and a 4x GELU MLP,
LayerNorms with weight and bias, a final LayerNorm, and an output head tied to the token
embedding. `experiments.model.GPT` builds exactly this network from a `ModelShape`, and the
tests check that its counts equal the functions below.

Conventions
- "total" parameters include the token and position embeddings (Chinchilla, Hoffmann et al.
  2022 App. F counts embeddings); "non-embedding" excludes both (Kaplan et al. 2020 §2.1).
- FLOPs count 2 per multiply-accumulate, matmuls only (norms, softmax and element-wise ops are
  <1% at these sizes and FlopCounterMode does not count them either). Attention is counted over
  the full context (QK^T and AV, not halved for the causal mask), as PaLM App. B and DeepSeek
  LLM eq. 2 do. Kaplan's Table 1 counts only QK^T: half of our context term.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from budget.errors import BudgetError

GPT2_VOCAB = 50257  # GPT-2 BPE vocabulary (Radford et al. 2019), the planner's default
DEFAULT_N_CTX = 2048  # GPT-3 and Chinchilla context length (Brown et al. 2020 §2.1; Hoffmann et al. 2022 §4)
FFN_MULT = 4  # d_ff = 4 d_model (Vaswani et al. 2017 §3.3; GPT-2/3)
HEAD_DIM = 64  # GPT-2 small .. GPT-3 13B use 64-dimensional heads (Brown et al. 2020 Table 2.1)

TRAIN_MULTIPLIER = 3.0  # forward + backward = 3 x forward (backward = 2 x forward; Kaplan et al. 2020 §2.1)
RECOMPUTE_MULTIPLIER = 4.0  # full activation recomputation adds one more forward (Korthikanti et al. 2022 §4)


@dataclass(frozen=True)
class ModelShape:
    """A GPT-style decoder: layers, widths, heads, context and vocabulary."""

    n_layer: int
    d_model: int
    n_head: int
    d_ff: int
    n_ctx: int = DEFAULT_N_CTX
    vocab_size: int = GPT2_VOCAB

    def __post_init__(self) -> None:
        for name in ("n_layer", "d_model", "n_head", "d_ff", "n_ctx", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BudgetError(f"{name}={value!r} must be a whole number >= 1")
        if self.d_model % self.n_head:
            raise BudgetError(
                f"n_head={self.n_head} must divide d_model={self.d_model}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def aspect_ratio(self) -> float:
        """d_model / n_layer (Kaplan et al. 2020 §3.1: loss is flat over a wide range of it)."""
        return self.d_model / self.n_layer

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out["params_total"] = params_total(self)
        out["params_non_embedding"] = params_non_embedding(self)
        out["training_flops_per_token"] = training_flops_per_token(self)
        return out


def params_per_layer(shape: ModelShape) -> int:
    """One block: QKV and output projections, two MLP matrices, their biases, two LayerNorms.

    4 d^2 + 2 d d_ff (weights) + 3d + d + d_ff + d (biases) + 4d (LayerNorm weight and bias x 2).
    """
    d, f = shape.d_model, shape.d_ff
    weights = 4 * d * d + 2 * d * f
    biases = 5 * d + f
    norms = 4 * d
    return weights + biases + norms


def params_non_embedding(shape: ModelShape) -> int:
    """N without token/position embeddings (Kaplan et al. 2020 §2.1): blocks + final LayerNorm."""
    return shape.n_layer * params_per_layer(shape) + 2 * shape.d_model


def params_embedding(shape: ModelShape) -> int:
    """Token embedding V d (shared with the output head) + learned positions n_ctx d."""
    return (shape.vocab_size + shape.n_ctx) * shape.d_model


def params_total(shape: ModelShape) -> int:
    """All parameters, embeddings included (Hoffmann et al. 2022 App. F)."""
    return params_non_embedding(shape) + params_embedding(shape)


def forward_flops_per_token(shape: ModelShape, *, attention: bool = True,
                            logits: bool = True, seq_len: int | None = None) -> float:
    """Forward FLOPs per token: 2 x (matmul MACs).

    Per layer 2(4 d^2 + 2 d d_ff) for the projections and MLP, plus the attention-context term
    2 x 2 T d (QK^T and AV over T = seq_len positions; PaLM App. B, unhalved); plus 2 d V for
    the output logits.
    """
    d, f, L = shape.d_model, shape.d_ff, shape.n_layer
    T = shape.n_ctx if seq_len is None else seq_len
    dense = L * 2 * (4 * d * d + 2 * d * f)
    context = L * 4 * T * d if attention else 0
    head = 2 * d * shape.vocab_size if logits else 0
    return float(dense + context + head)


def training_flops_per_token(shape: ModelShape, *, attention: bool = True, logits: bool = True,
                             recompute: bool = False, seq_len: int | None = None) -> float:
    """Training FLOPs per token = 3 x forward (4 x with full activation recomputation)."""
    mult = RECOMPUTE_MULTIPLIER if recompute else TRAIN_MULTIPLIER
    return mult * forward_flops_per_token(shape, attention=attention, logits=logits,
                                          seq_len=seq_len)


ASPECT_BAND = 16.0  # shapes keep d_model / n_layer within 16x of the target (see shape_for_params)


def target_aspect_ratio(n_params: float) -> float:
    """House heuristic for d_model / n_layer: 64 at 1e8 params, x1.26 per decade, in [32, 128].

    Chosen to track published shapes (GPT-3 Table 2.1: 125M 64, 1.3B 85, 6.7B-175B 128;
    Chinchilla 70B 102); loss is insensitive to it over a wide range (Kaplan et al. 2020 Fig. 5).
    """
    return min(128.0, max(32.0, 64.0 * (n_params / 1e8) ** 0.1))


def shape_for_params(n_params: float, *, count: str = "total", n_ctx: int = DEFAULT_N_CTX,
                     vocab_size: int = GPT2_VOCAB, multiple_of: int = 64,
                     head_dim: int = HEAD_DIM, ffn_mult: int = FFN_MULT,
                     tolerance: float = 0.02, max_layers: int = 256) -> ModelShape:
    """The shape with d_model a multiple of `multiple_of` whose `count` params are nearest N.

    Among shapes within `tolerance` (relative) of N, the one whose aspect ratio is nearest the
    target (see target_aspect_ratio) wins; if none is that close, the closest count wins.
    """
    if count not in ("total", "non_embedding"):
        raise BudgetError(f"count={count!r} must be 'total' or 'non_embedding'")
    if not math.isfinite(n_params) or n_params <= 0:
        raise BudgetError(f"parameter count {n_params!r} must be a finite number > 0")
    counter = params_total if count == "total" else params_non_embedding
    aspect = target_aspect_ratio(n_params)
    scored: list[tuple[float, float, ModelShape]] = []
    for n_layer in range(1, max_layers + 1):
        for d_model in _widths_near(n_params, n_layer, multiple_of, ffn_mult, count,
                                    n_ctx, vocab_size):
            n_head = max(1, d_model // head_dim)
            while d_model % n_head:
                n_head -= 1
            shape = ModelShape(n_layer, d_model, n_head, ffn_mult * d_model, n_ctx, vocab_size)
            scored.append((abs(counter(shape) / n_params - 1.0),
                           abs(math.log(shape.aspect_ratio / aspect)), shape))
    # Only shapes whose aspect ratio is within a factor ASPECT_BAND of the target compete; among
    # them, within `tolerance` of N the aspect nearest the target wins, else the closest count
    # (embeddings dominate a small N). Without the band 66 x 64 (aspect 1) won at 6.7M params and
    # 1 x 128 at 6.8M: 3.8x less activation memory for 0.5% more parameters.
    banded = [row for row in scored if row[1] <= math.log(ASPECT_BAND)] or scored
    close = [row for row in banded if row[0] <= tolerance]
    if close:
        return min(close, key=lambda row: (row[1], row[0]))[2]
    return min(banded, key=lambda row: (row[0], row[1]))[2]


def _widths_near(n_params: float, n_layer: int, multiple_of: int, ffn_mult: int, count: str,
                 n_ctx: int, vocab_size: int) -> list[int]:
    """The two multiples of `multiple_of` around the width solving the quadratic count = N."""
    quad = n_layer * (4 + 2 * ffn_mult)  # d^2 coefficient of the count
    lin = n_layer * (9 + ffn_mult) + 2  # d coefficient (biases, norms, final norm)
    if count == "total":
        lin += vocab_size + n_ctx
    d = (-lin + math.sqrt(lin * lin + 4 * quad * n_params)) / (2 * quad)
    low = max(multiple_of, int(d // multiple_of) * multiple_of)
    return [low, low + multiple_of]
