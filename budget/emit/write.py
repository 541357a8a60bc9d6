"""Write a plan's model and layout as a torchtitan TOML, a Megatron-LM argument file or a
DeepSpeed JSON (see budget/emit/__init__.py for the trainer versions followed)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from budget.errors import BudgetError

TRAINERS = ("torchtitan", "megatron", "deepspeed")

# torchtitan's llama3 flavors (torchtitan/models/llama3/__init__.py llama3_configs) by our named model
TORCHTITAN_FLAVORS = {"llama-3-8b": ("llama3", "8B"), "llama-3.1-8b": ("llama3", "8B"),
                      "llama-3-70b": ("llama3", "70B"), "llama-3.1-70b": ("llama3", "70B"),
                      "llama-3.1-405b": ("llama3", "405B")}


@dataclass(frozen=True)
class TrainerPlan:
    """What a trainer needs from a plan: the shape, the layout, the batch, steps and precision."""

    name: str
    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    head_dim: int
    d_ff: int
    vocab_size: int
    n_ctx: int
    mlp: str
    norm: str
    positions: str
    tied_embeddings: bool
    bias: str
    n_experts: int
    experts_per_token: int
    seq_len: int
    tp: int
    pp: int
    dp: int
    cp: int
    ep: int
    vp: int
    sp: bool
    zero: int
    mb: int
    ga: int
    recompute: str
    flash: bool
    num_gpus: int
    global_batch: int
    steps: int
    learning_rate: float
    precision: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_plan(cls, plan: dict[str, Any]) -> "TrainerPlan":
        """From `Plan.to_dict()` (what `--json` prints): its shape, layout and hyperparameters."""
        shape, layout = plan.get("shape"), plan.get("layout")
        if not shape or not layout:
            raise BudgetError("--emit needs a shape and a layout, and this plan has no layout that "
                              "fits (see its layout section); give more --num-gpus or --layout")
        seq_len = int(plan["hyperparameters"]["seq_len"])
        tokens_per_step = layout["global_batch_sequences"] * seq_len
        return cls(name=str(shape.get("name") or ""), seq_len=seq_len,
                   steps=max(1, math.ceil(plan["tokens"] / tokens_per_step)),
                   learning_rate=float(plan["hyperparameters"]["learning_rate"]),
                   precision=plan["precision"], global_batch=int(layout["global_batch_sequences"]),
                   **{k: shape[k] for k in ("n_layer", "d_model", "n_head", "n_kv_head", "head_dim",
                                            "d_ff", "vocab_size", "n_ctx", "mlp", "norm", "positions",
                                            "tied_embeddings", "bias", "n_experts", "experts_per_token")},
                   **{k: layout[k] for k in ("tp", "pp", "dp", "cp", "ep", "vp", "sp", "zero", "mb",
                                             "ga", "recompute", "flash", "num_gpus")})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string for these characters
    raise TypeError(value)


def torchtitan(p: TrainerPlan) -> str:
    """torchtitan's TOML job config (JobConfig sections; `--job.config_file FILE`)."""
    model, flavor = TORCHTITAN_FLAVORS.get(p.name, ("llama3", "custom"))
    sections: dict[str, dict[str, Any]] = {
        "job": {"description": f"compute-budget plan: {p.name or 'proposed shape'}, {p.num_gpus} GPUs",
                "dump_folder": "./outputs"},
        "model": {"name": model, "flavor": flavor},
        "optimizer": {"name": "AdamW", "lr": float(f"{p.learning_rate:.3g}")},
        # per-GPU batch: with pipeline stages it holds the step's ga micro-batches of size mb (the
        # schedule splits it); without, it is one micro-batch and torchtitan accumulates
        # global / (local x dp) of them
        "training": {"local_batch_size": p.mb * p.ga if p.pp > 1 else p.mb, "global_batch_size": p.global_batch,
                     "seq_len": p.seq_len, "steps": p.steps,
                     "mixed_precision_param": "bfloat16" if p.precision in ("bf16", "fp8") else "float32"},
        "parallelism": {
            # torchtitan shards with FSDP (ZeRO-3) or replicates (DDP); ZeRO-1/2 have no switch there
            "data_parallel_replicate_degree": 1 if p.zero == 3 else p.dp,
            "data_parallel_shard_degree": p.dp if p.zero == 3 else 1,
            "tensor_parallel_degree": p.tp, "pipeline_parallel_degree": p.pp,
            "pipeline_parallel_schedule": "Interleaved1F1B" if p.vp > 1 else "1F1B",
            "pipeline_parallel_microbatch_size": p.mb,
            "context_parallel_degree": p.cp, "expert_parallel_degree": p.ep},
        "activation_checkpoint": {"mode": p.recompute},
    }
    lines = ["# torchtitan job config written by `budget plan --emit torchtitan` (compute-budget)",
             "# fields of torchtitan/config/job_config.py (commit 000204a4); run with",
             "#   torchrun --nproc_per_node 8 -m torchtitan.train --job.config_file THIS_FILE",
             f"# model shape: {p.n_layer} layers, d_model {p.d_model}, {p.n_head} heads ({p.n_kv_head} KV) x "
             f"{p.head_dim}, d_ff {p.d_ff}, vocab {p.vocab_size}"]
    if flavor == "custom":
        lines.append("# flavor 'custom': register this shape as a flavor in torchtitan's model registry")
    if p.zero in (1, 2):
        lines.append(f"# the plan chose ZeRO-{p.zero}; torchtitan replicates instead (DDP, no ZeRO-1/2)")
    for section, values in sections.items():
        lines += ["", f"[{section}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def megatron_arguments(p: TrainerPlan) -> list[tuple[str, Any]]:
    """(option, value) pairs of Megatron-LM's pretrain_gpt.py; value True is a bare flag."""
    args: list[tuple[str, Any]] = [
        ("--num-layers", p.n_layer), ("--hidden-size", p.d_model),
        ("--num-attention-heads", p.n_head), ("--kv-channels", p.head_dim),
        ("--ffn-hidden-size", p.d_ff), ("--seq-length", p.seq_len),
        ("--max-position-embeddings", max(p.n_ctx, p.seq_len)), ("--vocab-size", p.vocab_size),
        ("--normalization", "RMSNorm" if p.norm == "rmsnorm" else "LayerNorm"),
        ("--position-embedding-type", "rope" if p.positions == "rotary" else "learned_absolute"),
    ]
    if p.n_kv_head != p.n_head:
        args += [("--group-query-attention", True), ("--num-query-groups", p.n_kv_head)]
    if p.mlp == "gated":
        args.append(("--swiglu", True))
    if not p.tied_embeddings:
        args.append(("--untie-embeddings-and-output-weights", True))
    if p.bias == "none":
        args.append(("--disable-bias-linear", True))
    if p.n_experts:
        args += [("--num-experts", p.n_experts), ("--moe-router-topk", p.experts_per_token)]
    args += [("--tensor-model-parallel-size", p.tp), ("--pipeline-model-parallel-size", p.pp),
             ("--context-parallel-size", p.cp), ("--expert-model-parallel-size", p.ep)]
    if p.vp > 1:
        args.append(("--num-layers-per-virtual-pipeline-stage", p.n_layer // (p.pp * p.vp)))
    if p.sp and p.tp > 1:
        args.append(("--sequence-parallel", True))
    if p.zero >= 1:  # Megatron's distributed optimizer shards optimizer state over dp (ZeRO-1)
        args.append(("--use-distributed-optimizer", True))
    args += [("--micro-batch-size", p.mb), ("--global-batch-size", p.global_batch),
             ("--train-iters", p.steps), ("--lr", float(f"{p.learning_rate:.3g}"))]
    if p.precision in ("bf16", "fp16"):
        args.append((f"--{p.precision}", True))
    if p.recompute == "full":
        args += [("--recompute-granularity", "full"), ("--recompute-method", "uniform"),
                 ("--recompute-num-layers", 1)]
    elif p.recompute == "selective":
        args.append(("--recompute-granularity", "selective"))
    if p.flash:
        args.append(("--use-flash-attn", True))
    return args


def megatron(p: TrainerPlan) -> str:
    lines = ["# Megatron-LM arguments written by `budget plan --emit megatron` (compute-budget)",
             "# option names of megatron/training/arguments.py (core_v0.15.3); data and tokenizer",
             "# options are yours to add. Run: torchrun ... pretrain_gpt.py $(grep -v '^#' THIS_FILE) ...",
             f"# data-parallel size {p.dp} follows from {p.num_gpus} GPUs / (tp x pp x cp)"]
    if p.zero >= 2:
        lines.append(f"# the plan chose ZeRO-{p.zero}; Megatron's distributed optimizer shards the "
                     "optimizer state only (ZeRO-1)")
    for option, value in megatron_arguments(p):
        lines.append(option if value is True else f"{option} {value}")
    return "\n".join(lines) + "\n"


def deepspeed(p: TrainerPlan) -> str:
    """A DeepSpeed JSON config (train_batch_size = micro-batch x accumulation x data-parallel)."""
    config: dict[str, Any] = {
        "train_batch_size": p.mb * p.ga * p.dp,
        "train_micro_batch_size_per_gpu": p.mb,
        "gradient_accumulation_steps": p.ga,
        "zero_optimization": {"stage": p.zero},
        "bf16": {"enabled": p.precision == "bf16"},
        "fp16": {"enabled": p.precision == "fp16"},
        "optimizer": {"type": "AdamW", "params": {"lr": float(f"{p.learning_rate:.3g}")}},
    }
    return json.dumps(config, indent=2) + "\n"


def render(plan: dict[str, Any], trainer: str) -> str:
    """The trainer's config text for `plan` (its `to_dict()`)."""
    writers = {"torchtitan": torchtitan, "megatron": megatron, "deepspeed": deepspeed}
    if trainer not in writers:
        raise BudgetError(f"--emit {trainer!r}: not a trainer; choose from {', '.join(TRAINERS)}")
    return writers[trainer](TrainerPlan.from_plan(plan))


def notes(plan: dict[str, Any], trainer: str) -> list[str]:
    """What the written file cannot say (shown on stderr by the command)."""
    p = TrainerPlan.from_plan(plan)
    if trainer == "deepspeed" and (p.tp > 1 or p.pp > 1 or p.cp > 1):
        return [f"note: DeepSpeed's JSON holds no tensor/pipeline/context degrees: set tp={p.tp}, "
                f"pp={p.pp}, cp={p.cp} in your model code or launcher"]
    return []


def write(plan: dict[str, Any], trainer: str, path: str | Path) -> Path:
    """Write the trainer's config for `plan` to `path` (refusing a folder or an unwritable place)."""
    text = render(plan, trainer)
    out = Path(path)
    try:
        out.write_text(text, encoding="utf-8")
    except (IsADirectoryError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        raise BudgetError(f"--emit {trainer} {str(out)!r}: cannot write it ({exc.strerror}); give a file "
                          "path in an existing folder") from None
    return out
