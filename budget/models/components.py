"""The parts one decoder layer is built from: an attention (or state-space) mixer and an MLP.

Each part knows its parameters, its forward FLOPs per token (2 per multiply-accumulate, matmuls
only), the values it caches per token for generation and the state it keeps per sequence.
`budget.models.arch.Architecture` lists one mixer and one MLP per layer and sums them.

Attention-context convention (every mixer): a query at position t attends min(t, window)
positions. "unhalved" counts the full context c = min(T, window) for every query (PaLM,
Chowdhery et al. 2022 App. B); "causal" counts the mean over t = 1..T of min(t, window), which is
T/2 without a window (Megatron-LM's and FlashAttention's MFU counts) and window - window^2 / 2T
with one (Beltagy et al. 2020 §3.1, sliding-window cost linear in T).

- `MultiHead`: MHA / GQA / MQA with a free head_dim, optional sliding window (Mistral 7B v0.1,
  Jiang et al. 2023 §2; Gemma 2/3; gpt-oss), per-head q/k RMSNorm (Qwen3, Gemma 3) and learned
  attention sinks (gpt-oss, one logit per head). KV cache: 2 x kv_heads x head_dim per token,
  capped at `window` tokens per sequence.
- `Latent`: multi-head latent attention (DeepSeek-V2, arXiv:2405.04434 §2.1, eqs. 9-19): queries
  through an optional low-rank q_lora_rank, keys and values decompressed from a kv_lora_rank
  latent, a decoupled rotary key of qk_rope_head_dim shared by all heads. The cache holds the
  latent and the rotary key, (kv_lora_rank + qk_rope_head_dim) per token (eq. 19 discussion).
  FLOPs are counted with the keys and values decompressed (the training form).
- `StateSpace`: a Mamba-2 mixer (Dao & Gu 2024, arXiv:2405.21060 §7; the `Mamba2Mixer` of
  `transformers`): in_proj to (z, x, B, C, dt), a causal depthwise conv, the SSM, a gated
  RMSNorm, out_proj. No per-token cache; a constant state per sequence of
  d_inner x d_state + conv_dim x (conv_kernel - 1) values.
Stored activations (what one layer keeps for backward, 16-bit, bytes per token; Korthikanti et al.
2022, arXiv:2205.05198 §4.1, Table 2, written per part): `activation_width` is what tensor
parallelism shards (the inputs of the sharded linears and what lies between them);
`score_positions` counts n_head x the keys each query attends, the 5 a s^2 b attention interior
kept without recomputation or FlashAttention. The 10 s b h of norm and block inputs and dropout
masks lies outside the parts (`budget.training.parallel`).

- `Mlp`: "plain" (2 matrices) or "gated" (3; SwiGLU/GeGLU, Shazeer 2020); biases "all" add
  f + d (plain) or 2f + d (gated).
- `Moe`: a router d x E (optional bias, gpt-oss), E routed experts of which top-k run per token,
  and n_shared always-active experts (DeepSeekMoE, Qwen2-MoE).
"""

from __future__ import annotations

from dataclasses import dataclass

BIAS_KINDS = ("none", "all", "qkv")
CONVENTIONS = ("unhalved", "causal")


def context_positions(seq_len: float, window: int, convention: str) -> float:
    """Positions one query attends, averaged per the convention (module docstring)."""
    T = float(seq_len)
    if not window or window >= T:
        return T / 2 if convention == "causal" else T
    if convention == "causal":
        return window - window * window / (2.0 * T)
    return float(window)


def cached_fraction(seq_len: float | None, window: int) -> float:
    """Share of a sequence's tokens whose keys a windowed layer keeps: min(T, window) / T."""
    if not window or seq_len is None or seq_len <= window:
        return 1.0
    return window / float(seq_len)


@dataclass(frozen=True)
class MultiHead:
    """Multi-head attention: Q d x (h hd), K and V d x (kv hd) each, O (h hd) x d."""

    d_model: int
    n_head: int
    n_kv_head: int
    head_dim: int
    bias: str = "none"
    window: int = 0  # 0: global; else a sliding window of this many tokens
    qk_norm: bool = False  # per-head RMSNorm on q and k (Qwen3, Gemma 3): 2 hd params
    sinks: bool = False  # one learned sink logit per head (gpt-oss)

    kind = "multi-head"

    @property
    def q_dim(self) -> int:
        return self.n_head * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_head * self.head_dim

    def params(self) -> int:
        d, q, kv = self.d_model, self.q_dim, self.kv_dim
        biases = {"none": 0, "qkv": q + 2 * kv, "all": q + 2 * kv + d}[self.bias]
        extra = (2 * self.head_dim if self.qk_norm else 0) + (self.n_head if self.sinks else 0)
        return d * q + 2 * d * kv + q * d + biases + extra

    def flops_terms(self, seq_len: float, convention: str) -> dict[str, float]:
        c = context_positions(seq_len, self.window, convention)
        d = self.d_model
        return {"qkv": 2.0 * d * (self.q_dim + 2 * self.kv_dim),
                "attention_scores": 2.0 * c * self.q_dim,
                "attention_values": 2.0 * c * self.q_dim,
                "attention_output": 2.0 * self.q_dim * d}

    def activation_width(self) -> float:
        """Q 2q, K and V 2kv each, the output projection's input 2q: 4q + 4kv (8h for MHA)."""
        return 4.0 * self.q_dim + 4.0 * self.kv_dim

    def score_positions(self, seq_len: float) -> float:
        return float(self.n_head) * min(seq_len, self.window or seq_len)

    def kv_values_per_token(self, seq_len: float | None = None) -> float:
        """K and V values cached per token, averaged over a sequence of seq_len tokens."""
        return 2.0 * self.kv_dim * cached_fraction(seq_len, self.window)

    def state_values(self) -> float:
        return 0.0

    def describe(self) -> str:
        kv = f" ({self.n_kv_head} KV)" if self.n_kv_head != self.n_head else ""
        win = f", window {self.window}" if self.window else ""
        return f"{self.n_head} heads{kv} x {self.head_dim}{win}"


@dataclass(frozen=True)
class Latent:
    """Multi-head latent attention (DeepSeek-V2 §2.1): low-rank q and a cached kv latent."""

    d_model: int
    n_head: int
    q_lora_rank: int  # 0: queries projected directly from d_model (DeepSeek-V2-Lite)
    kv_lora_rank: int
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int
    window: int = 0

    kind = "latent"

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def _mats(self) -> dict[str, int]:
        """Weights of each projection (MACs per token equal weights for each)."""
        d, h, r = self.d_model, self.n_head, self.q_lora_rank
        q = d * r + r * h * self.qk_head_dim if r else d * h * self.qk_head_dim
        kv = (d * (self.kv_lora_rank + self.qk_rope_head_dim)
              + self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim))
        return {"q": q, "kv": kv, "o": h * self.v_head_dim * d}

    def params(self) -> int:
        m = self._mats()
        norms = self.kv_lora_rank + self.q_lora_rank  # RMSNorm on each latent
        return m["q"] + m["kv"] + m["o"] + norms

    def flops_terms(self, seq_len: float, convention: str) -> dict[str, float]:
        c = context_positions(seq_len, self.window, convention)
        m, h = self._mats(), self.n_head
        return {"qkv": 2.0 * (m["q"] + m["kv"]),
                "attention_scores": 2.0 * c * h * self.qk_head_dim,
                "attention_values": 2.0 * c * h * self.v_head_dim,
                "attention_output": 2.0 * m["o"]}

    def activation_width(self) -> float:
        """The q and kv latents (inputs of the up-projections), Q and K of qk_head_dim, V and
        the output projection's input of v_head_dim per head, 2 bytes each."""
        h = self.n_head
        latents = self.q_lora_rank + self.kv_lora_rank + self.qk_rope_head_dim
        return 2.0 * (latents + 2 * h * self.qk_head_dim + 2 * h * self.v_head_dim)

    def score_positions(self, seq_len: float) -> float:
        return float(self.n_head) * min(seq_len, self.window or seq_len)

    def kv_values_per_token(self, seq_len: float | None = None) -> float:
        """The latent and the shared rotary key (DeepSeek-V2 §2.1.3, Table 1)."""
        return float(self.kv_lora_rank + self.qk_rope_head_dim) * \
            cached_fraction(seq_len, self.window)

    def state_values(self) -> float:
        return 0.0

    def describe(self) -> str:
        q = f"q rank {self.q_lora_rank}, " if self.q_lora_rank else ""
        return (f"{self.n_head} latent heads ({q}kv rank {self.kv_lora_rank}, qk "
                f"{self.qk_nope_head_dim}+{self.qk_rope_head_dim} rope, v {self.v_head_dim})")


@dataclass(frozen=True)
class StateSpace:
    """A Mamba-2 mixer (Dao & Gu 2024 §7): constant state, no attention over the context."""

    d_model: int
    d_inner: int  # expand x d_model
    d_state: int
    n_heads: int  # SSM heads (d_inner / head dim)
    n_groups: int = 1
    conv_kernel: int = 4

    kind = "state-space"

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.n_groups * self.d_state

    def _in_proj(self) -> int:
        return self.d_model * (2 * self.d_inner + 2 * self.n_groups * self.d_state + self.n_heads)

    def params(self) -> int:
        conv = self.conv_dim * self.conv_kernel + self.conv_dim  # depthwise weight + bias
        per_head = 3 * self.n_heads  # dt_bias, A_log, D
        return self._in_proj() + conv + per_head + self.d_inner + self.d_inner * self.d_model

    def flops_terms(self, seq_len: float, convention: str) -> dict[str, float]:
        """Projections, conv and the recurrence: B x^T into the state and C h out, each
        d_inner x d_state MACs per token (the chunked SSD form costs the same order)."""
        return {"state_space": 2.0 * (self._in_proj() + self.d_inner * self.d_model
                                      + self.conv_dim * self.conv_kernel
                                      + 2 * self.d_inner * self.d_state)}

    def activation_width(self) -> float:
        """in_proj's output, the conv output, the SSM output and its gate product (the
        out_proj input), 2 bytes each (our accounting of the `Mamba2Mixer` data flow)."""
        return 2.0 * (self._in_proj() / self.d_model + self.conv_dim + 2 * self.d_inner)

    def score_positions(self, seq_len: float) -> float:
        return 0.0

    def kv_values_per_token(self, seq_len: float | None = None) -> float:
        return 0.0

    def state_values(self) -> float:
        """Values kept per sequence: the SSM state and the conv window."""
        return float(self.d_inner * self.d_state + self.conv_dim * (self.conv_kernel - 1))

    def describe(self) -> str:
        return f"Mamba-2 d_inner {self.d_inner}, state {self.d_state}, {self.n_heads} heads"


Mixer = MultiHead | Latent | StateSpace


@dataclass(frozen=True)
class Mlp:
    """A dense MLP (or one expert) of width d_ff."""

    d_model: int
    d_ff: int
    gated: bool = True
    bias: bool = False

    @property
    def mats(self) -> int:
        return 3 if self.gated else 2

    def params(self) -> int:
        f = self.d_ff
        biases = ((2 * f if self.gated else f) + self.d_model) if self.bias else 0
        return self.mats * self.d_model * f + biases

    def flops(self) -> float:
        return 2.0 * self.mats * self.d_model * self.d_ff

    def activation_width(self) -> float:
        """plain: the activation's input and output, 4f (16sbh at f = 4h); gated: the two
        up-projections and their product, 6f (our accounting)."""
        return (6 if self.gated else 4) * self.d_ff


@dataclass(frozen=True)
class Moe:
    """Router + routed experts (top-k of n_experts per token) + shared experts."""

    d_model: int
    expert: Mlp
    n_experts: int
    top_k: int
    shared: Mlp | None = None
    n_shared: int = 0
    router_bias: bool = False

    def router_params(self) -> int:
        return self.d_model * self.n_experts + (self.n_experts if self.router_bias else 0)

    def params(self, *, active: bool = False) -> int:
        routed = self.top_k if active else self.n_experts
        shared = self.n_shared * self.shared.params() if self.shared else 0
        return self.router_params() + routed * self.expert.params() + shared

    def activation_width(self) -> float:
        """The top-k routed experts' and the shared experts' widths, plus fp32 router logits."""
        shared = self.n_shared * self.shared.activation_width() if self.shared else 0
        return self.top_k * self.expert.activation_width() + shared + 4 * self.n_experts

    def flops_terms(self) -> dict[str, float]:
        shared = self.n_shared * self.shared.flops() if self.shared else 0.0
        return {"experts": self.top_k * self.expert.flops() + shared,
                "router": 2.0 * self.d_model * self.n_experts}
