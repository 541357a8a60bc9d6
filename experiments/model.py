"""The one torch decoder the sweeps train, assembled per layer from an `Architecture`'s parts.

Each layer is a pre-norm block of the Architecture's mixer and MLP (`budget.models.components`):
multi-head attention (GQA/MQA, free head_dim, sliding window, q/k RMSNorm, attention sinks),
latent attention (MLA, DeepSeek-V2 §2.1: low-rank q, a kv latent decompressed per head, a
decoupled rotary key), a Mamba-2 state-space mixer (a sequential scan: exact, for small models),
and a plain, gated or MoE MLP (router, top-k routed experts, shared experts). Around the blocks:
the token embedding, learned or rotary positions, the final norm and a tied or untied head.

The `gpt2` family preset is nanoGPT's `model.py` (bias=True: fused QKV, GELU MLP, LayerNorm,
learned positions, tied head) and the `llama` preset Meta's Llama block; both draw the same
initial weights as the two classes they replace (the fused QKV weight's rows are Q, K, V in that
order, initialised in one normal_ call). The parameter count equals
`Architecture.params_total()` for every part (tests/test_exp_model.py), and
`measured_training_flops_per_token` counts the FLOPs torch really executes, to be checked
against `Architecture.training_flops_per_token` (one source of truth).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from budget.models.arch import Architecture
from budget.models.components import Latent, Mlp, Moe, MultiHead, StateSpace

INIT_STD = 0.02  # GPT-2 initialisation (Radford et al. 2019; nanoGPT `_init_weights`)
ROPE_THETA = 10000.0  # rotary base of Llama 1/2 (Touvron et al. 2023; Su et al. 2021 eq. 15)
NORM_EPS = 1e-5  # Llama 2 rms_norm_eps (meta-llama/Llama-2-7b-hf config.json)

# Attention in fp32 inside a CPU bf16 autocast: at head sizes 8-64 the CPU bf16 SDPA backward is
# several times slower than fp32 (measured 7.7x at head size 16), while the projections gain.
# The trainer turns it on or off per shape from timed steps (experiments.training.autotune).
FP32_ATTENTION = {"on": True}

Rope = tuple[torch.Tensor, torch.Tensor]


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """Causal SDPA (or under a boolean `mask` of allowed positions); in fp32 with autocast off
    when `FP32_ATTENTION["on"]` and autocast is on."""
    device = q.device.type
    kw: dict[str, Any] = {"is_causal": True} if mask is None else {"attn_mask": mask}
    if FP32_ATTENTION["on"] and device == "cpu" and torch.is_autocast_enabled(device):
        with torch.autocast(device_type=device, enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **kw)
    return F.scaled_dot_product_attention(q, k, v, **kw)


def allowed(T: int, window: int, device: torch.device) -> torch.Tensor | None:
    """Causal mask limited to the last `window` positions (None: plain causal)."""
    if not window or window >= T:
        return None
    i = torch.arange(T, device=device)
    gap = i[:, None] - i[None, :]
    return (gap >= 0) & (gap < window)


def rotary_tables(T: int, head_dim: int, device: torch.device) -> Rope:
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


def _norm(arch: Architecture, width: int | None = None) -> nn.Module:
    w = width or arch.d_model
    return nn.RMSNorm(w, eps=NORM_EPS) if arch.norm == "rmsnorm" else nn.LayerNorm(w, eps=NORM_EPS)


class MultiHeadAttention(nn.Module):
    """`components.MultiHead`: one fused QKV projection, n_kv_head <= n_head (GQA; MQA at 1)."""

    def __init__(self, part: MultiHead, arch: Architecture) -> None:
        super().__init__()
        self.part, self.rotary = part, arch.positions == "rotary"
        q, kv = part.q_dim, part.kv_dim
        self.qkv = nn.Linear(part.d_model, q + 2 * kv, bias=part.bias in ("qkv", "all"))
        self.o = nn.Linear(q, part.d_model, bias=part.bias == "all")
        if part.qk_norm:
            self.q_norm, self.k_norm = (nn.RMSNorm(part.head_dim, eps=NORM_EPS) for _ in "qk")
        if part.sinks:
            self.sinks = nn.Parameter(torch.zeros(part.n_head))

    def forward(self, x: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        p, (B, T, _) = self.part, x.shape
        q, k, v = self.qkv(x).split((p.q_dim, p.kv_dim, p.kv_dim), dim=2)
        q = q.view(B, T, p.n_head, p.head_dim).transpose(1, 2)
        k, v = (t.view(B, T, p.n_kv_head, p.head_dim).transpose(1, 2) for t in (k, v))
        if p.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None and self.rotary:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if p.n_kv_head != p.n_head:  # each KV head serves n_head / n_kv_head query heads
            group = p.n_head // p.n_kv_head
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        mask = allowed(T, p.window, x.device)
        y = self._with_sinks(q, k, v, mask) if p.sinks else causal_attention(q, k, v, mask)
        return self.o(y.transpose(1, 2).reshape(B, T, p.q_dim))

    def _with_sinks(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    mask: torch.Tensor | None) -> torch.Tensor:
        """Softmax over the keys and one learned sink logit per head (gpt-oss), sink dropped."""
        T = q.shape[2]
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        keep = mask if mask is not None else torch.ones(T, T, dtype=torch.bool,
                                                        device=q.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
        sink = self.sinks.view(1, -1, 1, 1).expand(q.shape[0], -1, T, 1).to(scores.dtype)
        weights = torch.cat((scores, sink), dim=-1).softmax(dim=-1)[..., :-1]
        return weights @ v


class LatentAttention(nn.Module):
    """`components.Latent` (DeepSeek-V2 §2.1, eqs. 9-19), keys and values decompressed."""

    def __init__(self, part: Latent, arch: Architecture) -> None:
        super().__init__()
        self.part, h = part, part.n_head
        if part.q_lora_rank:
            self.q_a = nn.Linear(part.d_model, part.q_lora_rank, bias=False)
            self.q_a_norm = nn.RMSNorm(part.q_lora_rank, eps=NORM_EPS)
            self.q_b = nn.Linear(part.q_lora_rank, h * part.qk_head_dim, bias=False)
        else:
            self.q_proj = nn.Linear(part.d_model, h * part.qk_head_dim, bias=False)
        self.kv_a = nn.Linear(part.d_model, part.kv_lora_rank + part.qk_rope_head_dim, bias=False)
        self.kv_a_norm = nn.RMSNorm(part.kv_lora_rank, eps=NORM_EPS)
        self.kv_b = nn.Linear(part.kv_lora_rank, h * (part.qk_nope_head_dim + part.v_head_dim),
                              bias=False)
        self.o = nn.Linear(h * part.v_head_dim, part.d_model, bias=False)

    def forward(self, x: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        p, (B, T, _), h = self.part, x.shape, self.part.n_head
        q = self.q_b(self.q_a_norm(self.q_a(x))) if p.q_lora_rank else self.q_proj(x)
        q = q.view(B, T, h, p.qk_head_dim).transpose(1, 2)
        q_nope, q_rope = q.split((p.qk_nope_head_dim, p.qk_rope_head_dim), dim=-1)
        latent, k_rope = self.kv_a(x).split((p.kv_lora_rank, p.qk_rope_head_dim), dim=-1)
        kv = self.kv_b(self.kv_a_norm(latent)).view(B, T, h, -1).transpose(1, 2)
        k_nope, v = kv.split((p.qk_nope_head_dim, p.v_head_dim), dim=-1)
        k_rope = k_rope.view(B, 1, T, p.qk_rope_head_dim)  # one rotary key shared by the heads
        if p.qk_rope_head_dim:
            cos, sin = rotary_tables(T, p.qk_rope_head_dim, x.device)
            q_rope, k_rope = apply_rotary(q_rope, cos, sin), apply_rotary(k_rope, cos, sin)
        q = torch.cat((q_nope, q_rope), dim=-1)
        k = torch.cat((k_nope, k_rope.expand(B, h, T, -1)), dim=-1)
        y = causal_attention(q, k, v, allowed(T, p.window, x.device))
        return self.o(y.transpose(1, 2).reshape(B, T, h * p.v_head_dim))


class StateSpaceMixer(nn.Module):
    """`components.StateSpace`: Mamba-2 (Dao & Gu 2024 §7) with a sequential scan over time."""

    def __init__(self, part: StateSpace, arch: Architecture) -> None:
        super().__init__()
        self.part = part
        g, n, H = part.n_groups, part.d_state, part.n_heads
        self.in_proj = nn.Linear(part.d_model, 2 * part.d_inner + 2 * g * n + H, bias=False)
        self.conv = nn.Conv1d(part.conv_dim, part.conv_dim, part.conv_kernel,
                              groups=part.conv_dim, padding=part.conv_kernel - 1)
        self.dt_bias, self.A_log, self.D = (nn.Parameter(torch.zeros(H)) for _ in range(3))
        self.norm = nn.RMSNorm(part.d_inner, eps=NORM_EPS)
        self.out_proj = nn.Linear(part.d_inner, part.d_model, bias=False)

    def forward(self, x: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        p, (B, T, _) = self.part, x.shape
        g, n, H, di = p.n_groups, p.d_state, p.n_heads, p.d_inner
        z, xbc, dt = self.in_proj(x).split((di, p.conv_dim, H), dim=-1)
        xbc = F.silu(self.conv(xbc.transpose(1, 2))[..., :T].transpose(1, 2))
        xs, b, c = xbc.split((di, g * n, g * n), dim=-1)
        dt = F.softplus(dt + self.dt_bias)  # (B, T, H)
        decay = torch.exp(-torch.exp(self.A_log) * dt)  # (B, T, H)
        xs = xs.view(B, T, H, di // H)
        b, c = (t.view(B, T, g, n).repeat_interleave(H // g, dim=2) for t in (b, c))
        state = x.new_zeros(B, H, di // H, n)
        ys = []
        for t in range(T):  # h_t = a_t h_{t-1} + dt_t x_t b_t^T;  y_t = h_t c_t
            state = decay[:, t, :, None, None] * state + \
                (dt[:, t, :, None, None] * xs[:, t, :, :, None]) * b[:, t, :, None, :]
            ys.append((state @ c[:, t, :, :, None]).squeeze(-1))
        y = torch.stack(ys, dim=1) + self.D[:, None] * xs
        return self.out_proj(self.norm(y.reshape(B, T, di) * F.silu(z)))


class DenseMLP(nn.Module):
    """gated: down(act(up x) * gate x) (SwiGLU with silu, GeGLU with gelu); plain: down(act(up x))."""

    def __init__(self, part: Mlp, arch: Architecture) -> None:
        super().__init__()
        self.act = F.silu if arch.activation == "silu" else \
            (lambda t: F.gelu(t, approximate="tanh"))
        self.up = nn.Linear(part.d_model, part.d_ff, bias=part.bias)
        self.gate = nn.Linear(part.d_model, part.d_ff, bias=part.bias) if part.gated else None
        self.down = nn.Linear(part.d_ff, part.d_model, bias=part.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.up(x))
        return self.down(h * self.gate(x) if self.gate is not None else h)


class MoEMLP(nn.Module):
    """`components.Moe`: softmax router, top-k routed experts weighted by their gate, shared
    experts on every token (each expert run on the tokens routed to it)."""

    def __init__(self, part: Moe, arch: Architecture) -> None:
        super().__init__()
        self.part = part
        self.router = nn.Linear(part.d_model, part.n_experts, bias=part.router_bias)
        self.experts = nn.ModuleList(DenseMLP(part.expert, arch) for _ in range(part.n_experts))
        self.shared = nn.ModuleList(DenseMLP(part.shared, arch) for _ in range(part.n_shared)) \
            if part.shared is not None else nn.ModuleList()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        weights, chosen = self.router(flat).softmax(dim=-1).topk(self.part.top_k, dim=-1)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            if rows.numel():
                out = out.index_add(0, rows, weights[rows, slot, None] * expert(flat[rows]))
        for expert in self.shared:
            out = out + expert(flat)
        return out.view_as(x)


MIXERS: dict[type, type[nn.Module]] = {MultiHead: MultiHeadAttention, Latent: LatentAttention,
                                       StateSpace: StateSpaceMixer}


class Block(nn.Module):
    """Pre-norm residual block: x + mixer(norm(x)), then x + mlp(norm(x)); with 4 norms per
    layer (Gemma 2/3) each sub-layer's output is normed too before the residual add."""

    def __init__(self, arch: Architecture, kind: str, moe: bool) -> None:
        super().__init__()
        part = arch.mixer(kind)
        self.norm_1 = _norm(arch)
        self.mixer = MIXERS[type(part)](part, arch)
        self.post_1 = _norm(arch) if arch.norms_per_layer == 4 else None
        self.norm_2 = _norm(arch)
        self.mlp: nn.Module = MoEMLP(arch.moe_mlp(), arch) if moe else \
            DenseMLP(arch.dense_mlp(), arch)
        self.post_2 = _norm(arch) if arch.norms_per_layer == 4 else None

    def forward(self, x: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        h = self.mixer(self.norm_1(x), rope)
        x = x + (self.post_1(h) if self.post_1 is not None else h)
        h = self.mlp(self.norm_2(x))
        return x + (self.post_2(h) if self.post_2 is not None else h)


class Decoder(nn.Module):
    """The decoder for one Architecture; `forward(idx, targets)` returns (logits, mean loss)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        if arch.norms_per_layer not in (2, 4):
            raise ValueError(f"norms_per_layer={arch.norms_per_layer}: the torch block has 2 or 4")
        self.arch = arch
        self.wte = nn.Embedding(arch.vocab_size, arch.d_model)
        self.wpe = nn.Embedding(arch.n_ctx, arch.d_model) if arch.positions == "learned" else None
        first = arch.first_dense_layers if arch.is_moe else arch.n_layer
        self.blocks = nn.ModuleList(Block(arch, arch.layer_kind(i), i >= first)
                                    for i in range(arch.n_layer))
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


# Parameter names of the GPT-2 module this builder replaced (nanoGPT's), for its checkpoints: the
# same tensors in the same order, so a killed GPT-2 point resumes from its checkpoint.
LEGACY_NAMES = ((".ln_1.", ".norm_1."), (".attn.c_attn.", ".mixer.qkv."),
                (".attn.c_proj.", ".mixer.o."), (".ln_2.", ".norm_2."), (".mlp.c_fc.", ".mlp.up."),
                (".mlp.c_proj.", ".mlp.down."))


def legacy_names(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict with the replaced GPT-2 module's names mapped to this builder's."""
    out = {}
    for key, value in state.items():
        key = "norm." + key[len("ln_f."):] if key.startswith("ln_f.") else key
        for old, new in LEGACY_NAMES:
            key = key.replace(old, new)
        out[key] = value
    return out


def init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module, *, non_embedding: bool = False) -> int:
    """Distinct parameters (the tied head counted once); optionally without wte, wpe, lm_head."""
    skip = {"wte.weight", "wpe.weight", "lm_head.weight"} if non_embedding else set()
    return sum(p.numel() for name, p in model.named_parameters() if name not in skip)


def build_model(arch: Architecture) -> nn.Module:
    """The torch decoder of an Architecture (every family and part)."""
    return Decoder(arch)


def measured_training_flops_per_token(arch: Architecture, seq_len: int | None = None,
                                      batch: int = 1) -> float:
    """FLOPs of one forward+backward step per token, counted by torch's FlopCounterMode.

    Runs on the `meta` device (no memory, no time), where SDPA decomposes into bmm calls that
    are counted over the full T x T (backward = 2 x forward), the planner's convention. On real
    CPU tensors the fused attention kernel is not counted at all (tests/test_exp_model.py).
    """
    from torch.utils.flop_counter import FlopCounterMode

    T = arch.n_ctx if seq_len is None else seq_len
    with torch.device("meta"):
        model = build_model(arch)
        idx = torch.zeros((batch, T), dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter:
        _, loss = model(idx, idx)
        assert loss is not None
        loss.backward()
    return counter.get_total_flops() / (batch * T)
