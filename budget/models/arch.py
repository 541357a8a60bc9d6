"""One description of a decoder-only transformer: GPT-2, Llama-style (GQA, SwiGLU), and MoE.

`Architecture` is what every question takes: it is counted here (total, non-embedding and active
parameters; FLOPs per token as named terms), laid out on a cluster, priced for training and
serving, and built in torch for sweeps. `budget.models.transformer.ModelShape` (GPT-2 blocks) maps
onto it with `Architecture.from_shape`.

Counting rules (each checked against a published config in the tests):
- attention: Q is d x (h hd), K and V are d x (kv hd) each (GQA/MQA: kv < h), O is (h hd) x d;
  biases "all" add h hd + 2 kv hd + d, "qkv" (Qwen2) adds h hd + 2 kv hd.
- MLP: "plain" has two matrices (d x f, f x d), "gated" (SwiGLU/GeGLU; Shazeer 2020) three;
  biases "all" add f + d (plain) or 2f + d (gated).
- MoE layers (the ones after `first_dense_layers`): a router d x E (no bias, as Mixtral's
  `gate`), E routed experts and `n_shared_experts` shared ones, each a gated/plain MLP of its d_ff.
- norms: LayerNorm has weight and bias (2d), RMSNorm weight only (d); two per block and a final one.
- embeddings: V d for tokens, n_ctx d for learned positions, and V d more for an untied head.
- FLOPs are 2 per multiply-accumulate, matmuls only. Attention scores (Q K^T) and values (A V)
  cost 2 T h hd each per token per layer over T context positions: "unhalved" counts all T
  (PaLM, Chowdhery et al. 2022 App. B), "causal" counts T/2 (what the causal mask computes;
  Megatron-LM's and FlashAttention's MFU counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from budget.errors import BudgetError

if TYPE_CHECKING:
    from budget.models.transformer import ModelShape

MLP_KINDS = ("plain", "gated")
NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rotary", "none")
BIASES = ("none", "all", "qkv")
ATTENTION_CONVENTIONS = ("unhalved", "causal")
DEFAULT_ATTENTION_CONVENTION = "unhalved"  # PaLM App. B; the toolkit's count before this module
TRAIN_MULTIPLIER = 3.0  # forward + backward (backward = 2 x forward; Kaplan et al. 2020 §2.1)
RECOMPUTE_MULTIPLIER = 4.0  # full recomputation adds one forward (Korthikanti et al. 2022 §4)


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

    def __post_init__(self) -> None:
        for f in ("n_layer", "d_model", "n_head", "n_kv_head", "head_dim", "d_ff",
                  "vocab_size", "n_ctx"):
            _whole(f, getattr(self, f), minimum=1)
        for f in ("n_experts", "experts_per_token", "n_shared_experts", "expert_d_ff",
                  "shared_expert_d_ff", "first_dense_layers"):
            _whole(f, getattr(self, f), minimum=0)
        for f, allowed in (("mlp", MLP_KINDS), ("norm", NORMS), ("positions", POSITIONS),
                           ("bias", BIASES)):
            if getattr(self, f) not in allowed:
                raise BudgetError(f"{f}={getattr(self, f)!r} is not one of {', '.join(allowed)}")
        if self.n_head % self.n_kv_head:
            raise BudgetError(f"n_head={self.n_head} must be a multiple of "
                              f"n_kv_head={self.n_kv_head} (grouped-query attention)")
        if self.n_experts:
            if not 1 <= self.experts_per_token <= self.n_experts:
                raise BudgetError(f"experts_per_token={self.experts_per_token} must be between 1 "
                                  f"and n_experts={self.n_experts}")
            if self.first_dense_layers > self.n_layer:
                raise BudgetError(f"first_dense_layers={self.first_dense_layers} exceeds "
                                  f"n_layer={self.n_layer}")
        elif self.experts_per_token or self.n_shared_experts:
            raise BudgetError("experts_per_token and n_shared_experts need n_experts >= 1")

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
        """Q, K, V, O weights and their biases, one layer."""
        d = self.d_model
        weights = d * self.q_dim + 2 * d * self.kv_dim + self.q_dim * d
        biases = {"none": 0, "qkv": self.q_dim + 2 * self.kv_dim,
                  "all": self.q_dim + 2 * self.kv_dim + d}[self.bias]
        return weights + biases

    def mlp_params(self, d_ff: int | None = None) -> int:
        """One MLP (or one expert) of width d_ff: 2 or 3 matrices and, with biases "all", theirs."""
        f = self.d_ff if d_ff is None else d_ff
        mats = 3 if self.mlp == "gated" else 2
        biases = ((2 * f if self.mlp == "gated" else f) + self.d_model) if self.bias == "all" else 0
        return mats * self.d_model * f + biases

    def norm_params(self) -> int:
        return 2 * self.d_model if self.norm == "layernorm" else self.d_model

    def router_params(self) -> int:
        return self.d_model * self.n_experts

    def moe_mlp_params(self, *, active: bool = False) -> int:
        """Router + routed experts (all of them, or the top-k when `active`) + shared experts."""
        routed = self.experts_per_token if active else self.n_experts
        return (self.router_params() + routed * self.mlp_params(self.routed_d_ff)
                + self.n_shared_experts * self.mlp_params(self.shared_d_ff))

    def layer_params(self, *, moe: bool, active: bool = False) -> int:
        mlp = self.moe_mlp_params(active=active) if moe else self.mlp_params()
        return self.attention_params() + mlp + 2 * self.norm_params()

    def embedding_params(self) -> int:
        """Token embedding, learned positions, and the output head when untied."""
        tokens = self.vocab_size * self.d_model
        positions = self.n_ctx * self.d_model if self.positions == "learned" else 0
        head = 0 if self.tied_embeddings else self.vocab_size * self.d_model
        return tokens + positions + head

    def params_non_embedding(self, *, active: bool = False) -> int:
        """Blocks and the final norm (Kaplan et al. 2020 §2.1 excludes embeddings and the head)."""
        blocks = (self.dense_layers * self.layer_params(moe=False)
                  + self.moe_layers * self.layer_params(moe=True, active=active))
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
        if convention not in ATTENTION_CONVENTIONS:
            raise BudgetError(f"attention convention {convention!r} is not one of "
                              f"{', '.join(ATTENTION_CONVENTIONS)}")
        T = self.n_ctx if seq_len is None else seq_len
        context = T / 2 if convention == "causal" else T
        d, L = self.d_model, self.n_layer
        mats = 3 if self.mlp == "gated" else 2
        k = self.experts_per_token
        routed = 2.0 * self.moe_layers * k * mats * d * self.routed_d_ff
        shared = 2.0 * self.moe_layers * self.n_shared_experts * mats * d * self.shared_d_ff
        return {
            "qkv": 2.0 * L * d * (self.q_dim + 2 * self.kv_dim),
            "attention_scores": 2.0 * L * context * self.q_dim,
            "attention_values": 2.0 * L * context * self.q_dim,
            "attention_output": 2.0 * L * self.q_dim * d,
            "mlp": 2.0 * self.dense_layers * mats * d * self.d_ff,
            "experts": routed + shared,
            "router": 2.0 * self.moe_layers * d * self.n_experts,
            "logits": 2.0 * d * self.vocab_size,
        }

    def forward_flops_per_token(self, seq_len: int | None = None,
                                convention: str = DEFAULT_ATTENTION_CONVENTION) -> float:
        return sum(self.forward_flops_terms(seq_len, convention).values())

    def training_flops_per_token(self, seq_len: int | None = None,
                                 convention: str = DEFAULT_ATTENTION_CONVENTION,
                                 recompute: bool = False) -> float:
        """3 x forward; 4 x forward with full activation recomputation."""
        mult = RECOMPUTE_MULTIPLIER if recompute else TRAIN_MULTIPLIER
        return mult * self.forward_flops_per_token(seq_len, convention)

    # ---- serving ------------------------------------------------------------------------
    def kv_cache_bytes_per_token(self, bytes_per_value: float = 2.0) -> float:
        """K and V for every layer: 2 x L x kv_heads x head_dim values (GQA/MQA shrink it)."""
        return 2.0 * self.n_layer * self.kv_dim * bytes_per_value

    # ---- added for named models, configs and plans ------------------------------------
    @classmethod
    def from_shape(cls, shape: "ModelShape", name: str = "") -> "Architecture":
        """The GPT-2 block of `budget.models.transformer.ModelShape`: plain GELU MLP, LayerNorm,
        learned positions, biases, head tied to the token embedding (same counts and FLOPs)."""
        return cls(shape.n_layer, shape.d_model, shape.n_head, shape.n_head, shape.head_dim,
                   shape.d_ff, shape.vocab_size, shape.n_ctx, mlp="plain", activation="gelu",
                   norm="layernorm", positions="learned", tied_embeddings=True, bias="all",
                   name=name)

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
        return (f"{self.n_layer} layers, d_model {self.d_model}, {self.n_head} heads{kv} x "
                f"{self.head_dim}, {mlp} d_ff {self.d_ff}{moe}, {self.norm}, {self.positions} "
                f"positions, {'tied' if self.tied_embeddings else 'untied'} head, bias "
                f"{self.bias}, vocab {self.vocab_size}, n_ctx {self.n_ctx}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["params_total"] = self.params_total()
        out["params_non_embedding"] = self.params_non_embedding()
        out["params_active"] = self.params_active()
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _whole(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BudgetError(f"{name}={value!r} must be a whole number >= {minimum}")
