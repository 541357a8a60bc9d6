"""The GPT-style decoder the sweeps train, built from the planner's `ModelShape`.

nanoGPT's `model.py` (bias=True): learned token and position embeddings, pre-norm blocks of
causal self-attention and a GELU MLP, a final LayerNorm and an output head tied to the token
embedding. Parameter counts equal `budget.models.transformer.params_total` / `params_non_embedding`
(tested), and `measured_training_flops_per_token` counts the FLOPs torch really executes, to be
checked against `budget.models.transformer.training_flops_per_token` (one source of truth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from budget.models.arch import Architecture
from budget.models.transformer import ModelShape

INIT_STD = 0.02  # GPT-2 initialisation (Radford et al. 2019; nanoGPT `_init_weights`)


# Attention in fp32 inside a CPU bf16 autocast: at head sizes 8-64 the CPU bf16 SDPA backward is
# several times slower than fp32 (measured 7.7x at head size 16), while the projections gain.
# The trainer turns it on or off per shape from timed steps (experiments.autotune).
FP32_ATTENTION = {"on": True}


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal SDPA; in fp32 with autocast off when `FP32_ATTENTION["on"]` and autocast is on."""
    device = q.device.type
    if FP32_ATTENTION["on"] and device == "cpu" and torch.is_autocast_enabled(device):
        with torch.autocast(device_type=device, enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class SelfAttention(nn.Module):
    """Causal multi-head self-attention with one fused QKV projection."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.n_head = shape.n_head
        self.c_attn = nn.Linear(shape.d_model, 3 * shape.d_model)
        self.c_proj = nn.Linear(shape.d_model, shape.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = causal_attention(q, k, v)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    """d_model -> d_ff -> d_model with GELU."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.c_fc = nn.Linear(shape.d_model, shape.d_ff)
        self.c_proj = nn.Linear(shape.d_ff, shape.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(shape.d_model)
        self.attn = SelfAttention(shape)
        self.ln_2 = nn.LayerNorm(shape.d_model)
        self.mlp = MLP(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The decoder for one `ModelShape`; `forward(idx, targets)` returns (logits, mean loss)."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.shape = shape
        self.wte = nn.Embedding(shape.vocab_size, shape.d_model)
        self.wpe = nn.Embedding(shape.n_ctx, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layer))
        self.ln_f = nn.LayerNorm(shape.d_model)
        self.apply(init_weights)

    def forward(self, idx: torch.Tensor,
                targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # head tied to the token embedding
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.reshape(-1))
        return logits, loss


def init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module, *, non_embedding: bool = False) -> int:
    """Distinct parameters (the tied head counted once); optionally without wte and wpe."""
    skip = {"wte.weight", "wpe.weight", "lm_head.weight"} if non_embedding else set()
    return sum(p.numel() for name, p in model.named_parameters() if name not in skip)


def build_model(spec: ModelShape | Architecture) -> nn.Module:
    """GPT for a ModelShape (GPT-2 blocks); experiments.llama.Llama for an Architecture."""
    if isinstance(spec, ModelShape):
        return GPT(spec)
    from experiments.llama import Llama

    return Llama(spec)


def measured_training_flops_per_token(shape: ModelShape | Architecture, seq_len: int | None = None,
                                      batch: int = 1) -> float:
    """FLOPs of one forward+backward step per token, counted by torch's FlopCounterMode.

    Runs on the `meta` device (no memory, no time), where SDPA decomposes into bmm calls that
    are counted over the full T x T (backward = 2 x forward), the planner's convention. On real
    CPU tensors the fused attention kernel is not counted at all (tests/test_exp_model.py).
    """
    from torch.utils.flop_counter import FlopCounterMode

    T = shape.n_ctx if seq_len is None else seq_len
    with torch.device("meta"):
        model = build_model(shape)
        idx = torch.zeros((batch, T), dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter:
        _, loss = model(idx, idx)
        assert loss is not None
        loss.backward()
    return counter.get_total_flops() / (batch * T)
