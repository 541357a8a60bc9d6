"""Step times of one continuous-batching iteration, from the roofline ops of the model.

One iteration (Orca, Yu et al. OSDI 2022: iteration-level scheduling; vLLM's scheduler) runs m
tokens through the model: the one new token of every decoding sequence plus chunks of prompts
being prefilled. Its time is the roofline of `budget.hardware.roofline.transformer_ops` placed
like `budget.serving.cost.step` (per op max(FLOPs / (peak eta_f), bytes / (bandwidth eta_m)),
matmuls and attention split over the tensor-parallel GPUs, plus the two all-reduces per layer):

- the token-linear ops (embedding, QKV, rotary, out-projection, norms, residuals, MLP/experts) at
  m tokens: a table over m, built once from the ops at m = 1 and m = 2 (their FLOPs and bytes are
  affine in m; the experts' weights read follow E (1 - (1 - k/E)^m));
- the output head (final norm, logits) at the sequences that emit a token;
- one fused attention op: decode reads each sequence's whole KV cache; a prefill chunk of c
  tokens after s cached ones costs 4 c (s + c) q FLOPs (the unhalved convention of the roofline)
  and reads its Q, K, V, writes O and re-reads the s cached tokens' K and V.
With one whole prompt (s = 0) or one batch of decodes this is exactly `cost.step` of the
prefill or decode ops (tests/test_serving_sim.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budget.hardware import roofline as R
from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture
from budget.serving.cost import ALLREDUCE_LATENCY_S, kv_share

_HEAD = ("final_norm", "logits")


@dataclass(frozen=True)
class StepModel:
    """Step times of one replica: `linear_s[m]` for m tokens, `head_s[n]` for n emitting sequences,
    attention coefficients per FLOP and per KV token read (seconds, per GPU)."""

    linear_s: tuple[float, ...]  # token-linear ops + all-reduces at m tokens, m = 0..max_tokens
    head_s: tuple[float, ...]  # final norm + logits at n sequences, n = 0..max_seqs
    attn_s_per_flop: float  # 1 / (peak x eta_f), attention FLOPs already split tp ways
    attn_s_per_byte: float  # 1 / (bandwidth x eta_m)
    q_dim_layers: float  # n_layer x q_dim / tp: attention FLOPs = 4 x this x (tokens x context)
    kv_bytes_token: float  # K and V bytes of one cached token on one GPU (all layers)
    qo_bytes_token: float  # Q read + O written per new token on one GPU (all layers)
    flops_per_token_bound: float  # token-linear FLOPs per token per GPU: the roofline ceiling

    @property
    def max_tokens(self) -> int:
        return len(self.linear_s) - 1

    def attention_s(self, flops: float, kv_tokens_read: float, new_tokens: float) -> float:
        """One fused attention op over the batch: max(FLOPs, bytes) on the roofline."""
        nbytes = kv_tokens_read * self.kv_bytes_token + new_tokens * (
            self.qo_bytes_token + self.kv_bytes_token)
        return max(flops * self.attn_s_per_flop, nbytes * self.attn_s_per_byte)

    def decode_s(self, batch: int, context: float) -> float:
        """A decode-only step: `batch` sequences each reading `context` cached tokens."""
        attn = self.attention_s(4.0 * self.q_dim_layers * batch * context, batch * context, batch)
        return self.linear_s[batch] + self.head_s[batch] + attn

    def prefill_s(self, tokens: int) -> float:
        """One whole prompt of `tokens` tokens in one step (no cached tokens before it)."""
        attn = self.attention_s(4.0 * self.q_dim_layers * tokens * tokens, 0.0, tokens)
        return self.linear_s[tokens] + self.head_s[1] + attn

    def tokens_per_s_bound(self) -> float:
        """Roofline ceiling on tokens through the model per second: token-linear FLOPs only."""
        return 1.0 / (self.flops_per_token_bound * self.attn_s_per_flop)


def step_model(arch: Architecture, acc: Accelerator, precision: str, weight_bytes: float,
               kv_bytes: float, tp: int, eta_f: float, eta_m: float, max_tokens: int,
               max_seqs: int) -> StepModel:
    """The step-time tables of `arch` on `tp` x `acc` (weights/KV bytes per value as given)."""
    peak = acc.peak_flops(precision) * eta_f
    vpeak = R.vector_peak(acc, acc.peak_flops(precision)) * eta_f
    bw = acc.memory_bandwidth_gbs * 1e9 * eta_m
    share = kv_share(arch, tp)
    one, two = (R.transformer_ops(arch, "decode", b, 1, precision, weight_bytes, kv_bytes)
                for b in (1, 2))
    m = np.arange(max_tokens + 1, dtype=float)
    n = np.arange(max_seqs + 1, dtype=float)
    linear, head = np.zeros_like(m), np.zeros_like(n)
    flops_per_token = 0.0
    for a, b in zip(one, two, strict=True):
        if a.kind == "attention":
            continue
        split = a.kind == "matmul"
        div = tp if split else 1
        df, db = (b.flops - a.flops) / div, (b.bytes - a.bytes) / div  # per token
        f0, b0 = a.flops / div - df, a.bytes / div - db  # at zero tokens (the weights)
        x = n if a.name in _HEAD else m
        flops = f0 + df * x
        nbytes = b0 + db * x
        if split and a.name.startswith("experts_"):  # weights read grow with experts touched
            E, k = arch.n_experts, arch.experts_per_token
            act = a.act_bytes_per_elt * k * (a.d_in + a.d_out) / div  # per token
            w1 = a.bytes / div - act  # weights read at one token
            touched = R.experts_touched(E, k, np.maximum(x, 1.0)) / R.experts_touched(E, k, 1.0)
            nbytes = w1 * touched + act * x
        t = np.maximum(flops / (peak if split else vpeak), nbytes / bw) * a.count
        t[0] = 0.0
        if a.name in _HEAD:
            head += t
        else:
            linear += t
            flops_per_token += df * a.count if split else 0.0
    if tp > 1:
        per_dir = (acc.interconnect_gbs_bidir or 0.0) * 1e9 / 2
        act = max(2.0, R.PRECISION_BYTES[precision])
        one_ar = 2 * (tp - 1) / tp * act * m * arch.d_model / per_dir + ALLREDUCE_LATENCY_S
        linear += np.where(m > 0, 2 * arch.n_layer * one_ar, 0.0)
    b_a = R.PRECISION_BYTES[precision]
    return StepModel(
        linear_s=tuple(linear.tolist()), head_s=tuple(head.tolist()),
        attn_s_per_flop=1.0 / peak, attn_s_per_byte=1.0 / bw,
        q_dim_layers=arch.n_layer * arch.q_dim / tp,
        kv_bytes_token=arch.n_layer * 2 * arch.kv_dim * kv_bytes * share,
        qo_bytes_token=arch.n_layer * 2 * arch.q_dim * b_a * share,
        flops_per_token_bound=flops_per_token)
