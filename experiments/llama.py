"""The Llama-style decoder the sweeps can train, built from a `budget.models.arch.Architecture`.

Meta's Llama `model.py` block (Touvron et al. 2023): token embedding, pre-norm blocks of causal
grouped-query attention with rotary positions (Su et al. 2021) and a SwiGLU MLP (Shazeer 2020),
RMSNorm, a final norm and an untied output head. The same class builds the Architecture's other
choices (LayerNorm, learned or no positions, plain MLP, tied head, biases none/qkv/all), so its
parameter count equals `Architecture.params_total()` for every dense Architecture (tested).
Parameter names: `wte` (tokens), `wpe` (learned positions), `lm_head` (an untied head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from budget.models.arch import Architecture
from experiments.model import causal_attention, init_weights

ROPE_THETA = 10000.0  # rotary base of Llama 1/2 (Touvron et al. 2023; Su et al. 2021 eq. 15)
NORM_EPS = 1e-5  # Llama 2 rms_norm_eps (meta-llama/Llama-2-7b-hf config.json)


def _norm(arch: Architecture) -> nn.Module:
    if arch.norm == "rmsnorm":
        return nn.RMSNorm(arch.d_model, eps=NORM_EPS)
    return nn.LayerNorm(arch.d_model, eps=NORM_EPS)


def rotary_tables(T: int, head_dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position x theta^(-2i/hd), shaped (T, head_dim) for the half-split form."""
    inv = ROPE_THETA ** (-torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(T, device=device).float(), inv)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x cos + rotate_half(x) sin (element-wise: no matmul FLOPs)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Causal attention with n_kv_head <= n_head key/value heads (GQA; MQA at 1)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        qkv_bias, out_bias = arch.bias in ("qkv", "all"), arch.bias == "all"
        self.q = nn.Linear(arch.d_model, arch.q_dim, bias=qkv_bias)
        self.k = nn.Linear(arch.d_model, arch.kv_dim, bias=qkv_bias)
        self.v = nn.Linear(arch.d_model, arch.kv_dim, bias=qkv_bias)
        self.o = nn.Linear(arch.q_dim, arch.d_model, bias=out_bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        a, (B, T, _) = self.arch, x.shape
        q = self.q(x).view(B, T, a.n_head, a.head_dim).transpose(1, 2)
        k = self.k(x).view(B, T, a.n_kv_head, a.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, a.n_kv_head, a.head_dim).transpose(1, 2)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if a.n_kv_head != a.n_head:  # each KV head serves n_head / n_kv_head query heads
            group = a.n_head // a.n_kv_head
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        y = causal_attention(q, k, v)  # fp32 inside CPU bf16 autocast where that times faster
        return self.o(y.transpose(1, 2).reshape(B, T, a.q_dim))


class MLP(nn.Module):
    """gated: w2(act(w1 x) * w3 x) (SwiGLU with silu, GeGLU with gelu); plain: w2(act(w1 x))."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        bias = arch.bias == "all"
        self.act = F.silu if arch.activation == "silu" else F.gelu
        self.w1 = nn.Linear(arch.d_model, arch.d_ff, bias=bias)
        self.w3 = nn.Linear(arch.d_model, arch.d_ff, bias=bias) if arch.mlp == "gated" else None
        self.w2 = nn.Linear(arch.d_ff, arch.d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.w1(x))
        return self.w2(h * self.w3(x) if self.w3 is not None else h)


class Block(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.norm_1, self.attn = _norm(arch), Attention(arch)
        self.norm_2, self.mlp = _norm(arch), MLP(arch)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = x + self.attn(self.norm_1(x), rope)
        return x + self.mlp(self.norm_2(x))


class Llama(nn.Module):
    """The decoder for one dense Architecture; `forward(idx, targets)` returns (logits, loss)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        if arch.is_moe:
            raise ValueError("the torch model builds dense Architectures only (n_experts = 0)")
        self.arch = arch
        self.wte = nn.Embedding(arch.vocab_size, arch.d_model)
        self.wpe = nn.Embedding(arch.n_ctx, arch.d_model) if arch.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.n_layer))
        self.norm = _norm(arch)
        self.lm_head = None if arch.tied_embeddings else nn.Linear(arch.d_model, arch.vocab_size,
                                                                   bias=False)
        self.apply(init_weights)

    def forward(self, idx: torch.Tensor,
                targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        T = idx.shape[1]
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        rope = rotary_tables(T, self.arch.head_dim, idx.device) \
            if self.arch.positions == "rotary" else None
        for block in self.blocks:
            x = block(x, rope)
        x = self.norm(x)
        logits = self.lm_head(x) if self.lm_head is not None else F.linear(x, self.wte.weight)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.reshape(-1))
        return logits, loss
