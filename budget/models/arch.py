"""One description of a decoder-only transformer, built from parts (`budget.models.components`).

An `Architecture` is a few dimensions plus, per layer, a mixer (multi-head attention, possibly
windowed; latent attention, MLA; or a Mamba-2 state-space mixer) and an MLP (plain, gated or
MoE). `layer_pattern` says which mixer each layer has, cyclically: "G" global attention, "L"
sliding-window attention over `window` tokens, "S" state-space (e.g. "LG" for Gemma 2 and
gpt-oss, "LLLLLG" for Gemma 3, "" = every layer "G", or "L" when a window is given). MoE layers
are the ones after `first_dense_layers`. GPT-2 is the `gpt2` family preset
(`budget.models.families`). Everything else (counts, FLOPs per token as named terms, the KV cache
per token, the state per sequence) is the sum of what the parts say.

Counting rules (each checked against a published config in the tests):
- attention, MLP, MoE: see `budget.models.components`.
- norms: LayerNorm has weight and bias (2d), RMSNorm weight only (d); `norms_per_layer` per block
  (2; Gemma 2/3 have 4: pre and post each sub-layer) and a final one.
- embeddings: V d for tokens, n_ctx d for learned positions, and V d more for an untied head.
- FLOPs are 2 per multiply-accumulate, matmuls only. Attention scores (Q K^T) and values (A V)
  are counted over the context a query sees: "unhalved" counts all T (or the window; PaLM,
  Chowdhery et al. 2022 App. B), "causal" the mean of what the causal mask computes (T/2
  without a window; Megatron-LM's and FlashAttention's MFU counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import Any

from budget.errors import BudgetError
from budget.models.arch_checks import check
from budget.models.components import Latent, Mixer, Mlp, Moe, MultiHead, StateSpace

ATTENTION_CONVENTIONS = ("unhalved", "causal")
DEFAULT_ATTENTION_CONVENTION = "unhalved"  # PaLM App. B; the toolkit's count before this module
TRAIN_MULTIPLIER = 3.0  # forward + backward (backward = 2 x forward; Kaplan et al. 2020 §2.1)
RECOMPUTE_MULTIPLIER = 4.0  # full recomputation adds one forward (Korthikanti et al. 2022 §4)

# Fields added with the parts; `to_dict` leaves them out at their defaults so that the JSON of
# the models described before them is unchanged.
_PART_DEFAULTS: dict[str, Any] = {
    "attention": "multi-head", "q_lora_rank": 0, "kv_lora_rank": 0, "qk_rope_head_dim": 0,
    "qk_nope_head_dim": 0, "v_head_dim": 0, "window": 0, "layer_pattern": "",
    "ssm_d_inner": 0, "ssm_d_state": 0, "ssm_heads": 0, "ssm_groups": 1, "ssm_conv": 4,
    "norms_per_layer": 2, "qk_norm": False, "attention_sinks": False, "router_bias": False,
}


@dataclass(frozen=True)
class Architecture:
    """A decoder-only transformer. MoE when `n_experts` > 0; dense otherwise."""

    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    head_dim: int
    d_ff: int
    vocab_size: int
    n_ctx: int
    mlp: str = "gated"  # "plain": W2 act(W1 x); "gated": W2 (act(W1 x) * W3 x)
    activation: str = "silu"  # silu (SwiGLU), gelu (GeGLU or GPT-2's MLP)
    norm: str = "rmsnorm"
    positions: str = "rotary"
    tied_embeddings: bool = False
    bias: str = "none"
    n_experts: int = 0  # routed experts per MoE layer; 0 = dense
    experts_per_token: int = 0  # top-k
    n_shared_experts: int = 0  # always-active experts (DeepSeekMoE, Qwen2-MoE)
    expert_d_ff: int = 0  # 0: same as d_ff
    shared_expert_d_ff: int = 0  # 0: same as expert_d_ff
    first_dense_layers: int = 0  # leading layers with a dense MLP (DeepSeek-V2/V3)
    name: str = ""
    # ---- the parts beyond Llama-style blocks (see the module docstring) ----
    attention: str = "multi-head"  # or "latent" (MLA; the q/kv ranks and head dims below)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    window: int = 0  # sliding-window size of "L" layers
    layer_pattern: str = ""  # per layer, cyclically: G global, L local (window), S state-space
    ssm_d_inner: int = 0  # Mamba-2 mixer of "S" layers
    ssm_d_state: int = 0
    ssm_heads: int = 0
    ssm_groups: int = 1
    ssm_conv: int = 4
    norms_per_layer: int = 2
    qk_norm: bool = False
    attention_sinks: bool = False
    router_bias: bool = False

    def __post_init__(self) -> None:
        check(self)

    # ---- the parts ----------------------------------------------------------------------
    @property
    def pattern(self) -> str:
        """One letter per cycle of layers: the given pattern, else all L (window) or all G."""
        return self.layer_pattern or ("L" if self.window else "G")

    def layer_kind(self, i: int) -> str:
        return self.pattern[i % len(self.pattern)]

    @cached_property
    def _memo(self) -> dict[Any, Any]:
        """Parts and per-layer sums, built once per Architecture (the layout search asks often)."""
        return {}

    def _once(self, key: Any, make: Any) -> Any:
        memo = self._memo
        if key not in memo:
            memo[key] = make()
        return memo[key]

    def mixer(self, kind: str = "G") -> Mixer:
        """The mixer of a layer of this kind (G, L or S)."""
        return self._once(("mixer", kind), lambda: self._make_mixer(kind))  # type: ignore[no-any-return]

    def _make_mixer(self, kind: str) -> Mixer:
        if kind == "S":
            return StateSpace(self.d_model, self.ssm_d_inner, self.ssm_d_state, self.ssm_heads,
                              self.ssm_groups, self.ssm_conv)
        window = self.window if kind == "L" else 0
        if self.attention == "latent":
            return Latent(self.d_model, self.n_head, self.q_lora_rank, self.kv_lora_rank,
                          self.qk_rope_head_dim, self.qk_nope_head_dim, self.v_head_dim, window)
        return MultiHead(self.d_model, self.n_head, self.n_kv_head, self.head_dim, self.bias,
                         window, self.qk_norm, self.attention_sinks)

    def dense_mlp(self, d_ff: int | None = None) -> Mlp:
        f = self.d_ff if d_ff is None else d_ff
        return self._once(("mlp", f), lambda: Mlp(  # type: ignore[no-any-return]
            self.d_model, f, self.mlp == "gated", self.bias == "all"))

    def moe_mlp(self) -> Moe:
        return self._once("moe", lambda: Moe(  # type: ignore[no-any-return]
            self.d_model, self.dense_mlp(self.routed_d_ff), self.n_experts,
            self.experts_per_token, self.dense_mlp(self.shared_d_ff), self.n_shared_experts,
            self.router_bias))

    @cached_property
    def layer_groups(self) -> tuple[tuple[str, bool, int], ...]:
        """(layer kind, MoE MLP?, number of such layers), in order of first appearance."""
        counts: dict[tuple[str, bool], int] = {}
        p, first = self.pattern, self.first_dense_layers if self.is_moe else self.n_layer
        if len(p) == 1:  # uniform mixers: two groups at most, no per-layer loop
            counts[(p, False)] = min(first, self.n_layer)
            if self.n_layer > first:
                counts[(p, True)] = self.n_layer - first
        else:
            for i in range(self.n_layer):
                key = (p[i % len(p)], i >= first)
                counts[key] = counts.get(key, 0) + 1
        return tuple((k, moe, n) for (k, moe), n in counts.items() if n)

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def q_dim(self) -> int:
        return self.n_head * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_head * self.head_dim

    @property
    def moe_layers(self) -> int:
        return self.n_layer - self.first_dense_layers if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        return self.n_layer - self.moe_layers

    @property
    def routed_d_ff(self) -> int:
        return self.expert_d_ff or self.d_ff

    @property
    def shared_d_ff(self) -> int:
        return self.shared_expert_d_ff or self.routed_d_ff

    def with_(self, **changes: Any) -> "Architecture":
        return replace(self, **changes)

    # ---- parameters ---------------------------------------------------------------------
    def attention_params(self) -> int:
        """One attention layer's weights and biases (the global kind's mixer)."""
        return self.mixer("G").params()

    def mlp_params(self, d_ff: int | None = None) -> int:
        """One MLP (or one expert) of width d_ff: 2 or 3 matrices and, with biases "all", theirs."""
        return self.dense_mlp(d_ff).params()

    def norm_params(self) -> int:
        return 2 * self.d_model if self.norm == "layernorm" else self.d_model

    def router_params(self) -> int:
        return self.moe_mlp().router_params()

    def moe_mlp_params(self, *, active: bool = False) -> int:
        """Router + routed experts (all of them, or the top-k when `active`) + shared experts."""
        return self.moe_mlp().params(active=active)

    def layer_params(self, *, moe: bool, active: bool = False, kind: str = "G") -> int:
        return self._once(("layer", moe, active, kind),  # type: ignore[no-any-return]
                          lambda: self._layer_params(moe, active, kind))

    def _layer_params(self, moe: bool, active: bool, kind: str) -> int:
        mlp = self.moe_mlp_params(active=active) if moe else self.mlp_params()
        return self.mixer(kind).params() + mlp + self.norms_per_layer * self.norm_params()

    def embedding_params(self) -> int:
        """Token embedding, learned positions, and the output head when untied."""
        tokens = self.vocab_size * self.d_model
        positions = self.n_ctx * self.d_model if self.positions == "learned" else 0
        head = 0 if self.tied_embeddings else self.vocab_size * self.d_model
        return tokens + positions + head

    def params_non_embedding(self, *, active: bool = False) -> int:
        """Blocks and the final norm (Kaplan et al. 2020 §2.1 excludes embeddings and the head)."""
        blocks = sum(n * self.layer_params(moe=moe, active=active, kind=kind)
                     for kind, moe, n in self.layer_groups)
        return blocks + self.norm_params()

    def params_total(self) -> int:
        """Every stored parameter, embeddings and head included (Hoffmann et al. 2022 App. F)."""
        return self.params_non_embedding() + self.embedding_params()

    def params_active(self) -> int:
        """Parameters one token passes through: top-k experts only (Mixtral's "active")."""
        return self.params_non_embedding(active=True) + self.embedding_params()

    # ---- FLOPs per token ----------------------------------------------------------------
    def forward_flops_terms(self, seq_len: int | None = None,
                            convention: str = DEFAULT_ATTENTION_CONVENTION) -> dict[str, float]:
        """Forward FLOPs per token by named term, summed over layers (2 FLOPs per MAC)."""
        return dict(self._once(("flops", seq_len, convention),
                               lambda: self._forward_flops_terms(seq_len, convention)))

    def _forward_flops_terms(self, seq_len: int | None, convention: str) -> dict[str, float]:
        if convention not in ATTENTION_CONVENTIONS:
            raise BudgetError(f"attention convention {convention!r} is not one of "
                              f"{', '.join(ATTENTION_CONVENTIONS)}")
        T = self.n_ctx if seq_len is None else seq_len
        terms = dict.fromkeys(("qkv", "attention_scores", "attention_values", "attention_output"),
                              0.0)
        if "S" in self.pattern:
            terms["state_space"] = 0.0
        terms.update(mlp=0.0, experts=0.0, router=0.0)
        moe = self.moe_mlp() if self.is_moe else None
        for kind, is_moe, n in self.layer_groups:
            for key, value in self.mixer(kind).flops_terms(T, convention).items():
                terms[key] += n * value
            if moe is not None and is_moe:
                for key, value in moe.flops_terms().items():
                    terms[key] += n * value
            else:
                terms["mlp"] += n * self.dense_mlp().flops()
        terms["logits"] = 2.0 * self.d_model * self.vocab_size
        return terms

    def forward_flops_per_token(self, seq_len: int | None = None,
                                convention: str = DEFAULT_ATTENTION_CONVENTION) -> float:
        return sum(self.forward_flops_terms(seq_len, convention).values())

    def training_flops_per_token(self, seq_len: int | None = None,
                                 convention: str = DEFAULT_ATTENTION_CONVENTION,
                                 recompute: bool = False) -> float:
        """3 x forward; 4 x with full activation recomputation."""
        mult = RECOMPUTE_MULTIPLIER if recompute else TRAIN_MULTIPLIER
        return mult * self.forward_flops_per_token(seq_len, convention)

    # ---- stored activations (budget.models.components; Korthikanti et al. 2022 §4.1) ----
    def activation_widths(self, moe: bool | None = None) -> tuple[float, float]:
        """(mixer, MLP) bytes per token one layer keeps that tensor parallelism shards, the mean
        over the layers (or over the dense / MoE ones when `moe` is given)."""
        return self._once(("widths", moe), lambda: self._activation_widths(moe))  # type: ignore[no-any-return]

    def _activation_widths(self, moe: bool | None) -> tuple[float, float]:
        groups = [(k, m, n) for k, m, n in self.layer_groups if moe is None or m == moe]
        layers = sum(n for _k, _m, n in groups)
        mixer = sum(n * self.mixer(k).activation_width() for k, _m, n in groups)
        mlp = sum(n * (self.moe_mlp() if m else self.dense_mlp()).activation_width()
                  for _k, m, n in groups)
        return (mixer / layers, mlp / layers) if layers > 1 else (mixer, mlp)

    def score_positions(self, seq_len: float, moe: bool | None = None) -> float:
        """Mean over the layers of n_head x the keys a query attends (0 for state-space)."""
        groups = self._once(("scores", moe), lambda: [
            (k, n) for k, m, n in self.layer_groups if moe is None or m == moe])
        layers = sum(n for _k, n in groups)
        total = sum(n * self.mixer(k).score_positions(seq_len) for k, n in groups)
        return total / layers if layers > 1 else total

    # ---- serving ------------------------------------------------------------------------
    def kv_cache_bytes_per_token(self, bytes_per_value: float = 2.0,
                                 seq_len: float | None = None) -> float:
        """Cache per token, summed over layers and averaged over a sequence of seq_len tokens:
        2 kv_heads head_dim (GQA/MQA shrink it), the latent + rotary key (MLA), nothing for
        state-space layers; a windowed layer keeps min(seq_len, window) tokens. Without
        seq_len, a windowed layer is counted as if it kept every token (an upper bound)."""
        values = sum(n * self.mixer(kind).kv_values_per_token(seq_len)
                     for kind, _moe, n in self.layer_groups)
        return values * bytes_per_value

    def kv_cache_share(self, tp: int) -> float:
        """Fraction of the cache one of `tp` tensor-parallel GPUs holds: ceil(kv_heads / tp) /
        kv_heads (heads split, replicated past kv_heads); the MLA latent is shared by every head,
        so each GPU keeps all of it (as vLLM and SGLang do)."""
        if self.attention == "latent":
            return 1.0
        return -(-self.n_kv_head // tp) / self.n_kv_head

    def state_bytes_per_sequence(self, bytes_per_value: float = 2.0) -> float:
        """Constant state a sequence keeps whatever its length (state-space layers)."""
        return bytes_per_value * sum(n * self.mixer(kind).state_values()
                                     for kind, _moe, n in self.layer_groups)

    # ---- added for named models, configs and plans ------------------------------------
    def training_flops_ratio_to_6n(self, seq_len: int | None = None,
                                   convention: str = DEFAULT_ATTENTION_CONVENTION,
                                   recompute: bool = False) -> float:
        """Training FLOPs per token / (6 x active parameters): what 6ND leaves out (or adds)."""
        return (self.training_flops_per_token(seq_len, convention, recompute)
                / (6.0 * self.params_active()))

    def describe(self) -> str:
        """One line: layers, width, heads (KV heads) x head_dim, MLP, norm, positions, head."""
        kv = f" ({self.n_kv_head} KV)" if self.n_kv_head != self.n_head else ""
        mlp = ({"silu": "SwiGLU", "gelu": "GeGLU"}.get(self.activation, f"gated {self.activation}")
               if self.mlp == "gated" else f"{self.activation.upper()} MLP")
        moe = (f", MoE {self.n_experts} experts top-{self.experts_per_token}"
               + (f" + {self.n_shared_experts} shared" if self.n_shared_experts else "")
               if self.is_moe else "")
        heads = (self.mixer("G").describe() if self.attention == "latent"
                 else f"{self.n_head} heads{kv} x {self.head_dim}")
        parts = ""
        if self.window:
            parts += f", window {self.window}"
        if self.pattern != "G":
            parts += f", layers {self.pattern!r} repeated"
        if "S" in self.pattern:
            parts += f", {self.mixer('S').describe()}"
        return (f"{self.n_layer} layers, d_model {self.d_model}, {heads}{parts}, {mlp} d_ff "
                f"{self.d_ff}{moe}, {self.norm}, {self.positions} "
                f"positions, {'tied' if self.tied_embeddings else 'untied'} head, bias "
                f"{self.bias}, vocab {self.vocab_size}, n_ctx {self.n_ctx}")

    def to_dict(self) -> dict[str, Any]:
        """The fields (those of the parts only where they differ from their defaults) and counts."""
        out: dict[str, Any] = {k: v for k, v in asdict(self).items()
                               if k not in _PART_DEFAULTS or v != _PART_DEFAULTS[k]}
        out["params_total"] = self.params_total()
        out["params_non_embedding"] = self.params_non_embedding()
        out["params_active"] = self.params_active()
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

