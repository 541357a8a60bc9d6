"""`budget flops` for an Architecture: parameters, FLOPs per token by named term, C for D tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from budget.models.arch import (
    ATTENTION_CONVENTIONS,
    RECOMPUTE_MULTIPLIER,
    TRAIN_MULTIPLIER,
    Architecture,
)
from budget.models.families import family_of

CONVENTION_TEXT = {
    "unhalved": "attention scores and values counted over all T positions (PaLM, Chowdhery et al. "
                "2022 App. B)",
    "causal": "attention scores and values counted over T/2 positions, what the causal mask "
              "computes (Megatron-LM, FlashAttention MFU counts)",
}
assert set(CONVENTION_TEXT) == set(ATTENTION_CONVENTIONS)


@dataclass(frozen=True)
class ArchitectureCount:
    """Counts and FLOPs of one architecture at a sequence length and attention convention."""

    arch: Architecture
    seq_len: int
    convention: str
    tokens: float | None = None
    source: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        a, T, conv = self.arch, self.seq_len, self.convention
        terms = a.forward_flops_terms(T, conv)
        attention = terms["attention_scores"] + terms["attention_values"]
        forward = sum(terms.values())
        total, active = a.params_total(), a.params_active()
        out: dict[str, Any] = {
            "model": a.name, "family": family_of(a), "description": a.describe(),
            "source": self.source, "note": self.note,
            "shape": {k: v for k, v in a.to_dict().items() if not k.startswith("params")},
            "seq_len": T, "attention_convention": conv,
            "attention_convention_text": CONVENTION_TEXT[conv],
            "params_total": total, "params_non_embedding": a.params_non_embedding(),
            "params_embedding": a.embedding_params(), "params_active": active,
            "forward_flops_terms": terms,
            "forward_flops_per_token": forward,
            "forward_flops_per_token_no_attention": forward - attention,
            "training_flops_per_token": TRAIN_MULTIPLIER * forward,
            "training_flops_per_token_no_attention": TRAIN_MULTIPLIER * (forward - attention),
            "training_flops_per_token_recompute": RECOMPUTE_MULTIPLIER * forward,
            "training_flops_per_token_recompute_no_attention":
                RECOMPUTE_MULTIPLIER * (forward - attention),
            "six_n_total_flops_per_token": 6.0 * total,
            "six_n_active_flops_per_token": 6.0 * active,
            "six_n_non_embedding_flops_per_token": 6.0 * a.params_non_embedding(),
            "ratio_to_6n": a.training_flops_ratio_to_6n(T, conv),
            "attention_context_flops_per_token": attention,
            "tokens": self.tokens,
        }
        if self.tokens is not None:
            out["training_flops"] = out["training_flops_per_token"] * self.tokens
            out["training_flops_6nd"] = out["six_n_active_flops_per_token"] * self.tokens
            out["training_flops_6nd_non_embedding"] = (
                out["six_n_non_embedding_flops_per_token"] * self.tokens)
        return out
