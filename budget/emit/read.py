"""Read a torchtitan TOML job config or a Megatron-LM argument file back into the model and
layout options of `budget plan` (the reverse of `--emit`, for `--config FILE`)."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from budget.errors import BudgetError

# our named model for a torchtitan (name, flavor), the inverse of write.TORCHTITAN_FLAVORS
_NAMED = {("llama3", "8B"): "llama-3-8b", ("llama3", "70B"): "llama-3-70b",
          ("llama3", "405B"): "llama-3.1-405b"}
_RECOMPUTE = {"none", "selective", "full"}


@dataclass(frozen=True)
class TrainerConfig:
    """What a trainer's config states: a named model or shape options, a layout, a sequence length."""

    source: str
    model: str | None = None
    shape: dict[str, Any] = field(default_factory=dict)  # choice.FIELD_OPTIONS / BLOCK_OPTIONS keys
    layout: str | None = None  # the --layout form, e.g. "tp=2,pp=4,cp=1,mb=1,recompute=full"
    seq_len: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_trainer_config(path: str | Path) -> bool:
    """A .toml file (torchtitan) or a file whose first option line starts with `--` (Megatron)."""
    p = Path(path)
    if p.suffix == ".toml":
        return True
    if p.suffix == ".json" or not p.is_file():
        return False
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError):
        return False
    first = next((ln for ln in lines if ln and not ln.startswith("#")), "")
    return first.startswith("--")


def _layout(degrees: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in degrees.items() if v is not None)


def _int(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        try:
            number = int(str(value))
        except ValueError:
            number = 0
        if number < 1 or isinstance(value, bool):
            raise BudgetError(f"--config {where}: {key} = {value!r} is not a whole number >= 1")
        return number
    return value


def _torchtitan(path: Path) -> TrainerConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"--config {str(path)!r}: not valid TOML ({exc})") from None
    model = data.get("model", {})
    named = _NAMED.get((model.get("name"), model.get("flavor")))
    if named is None:
        raise BudgetError(f"--config {str(path)!r}: torchtitan model {model.get('name')!r} flavor "
                          f"{model.get('flavor')!r} is not one we know the shape of (its shape lives in "
                          f"torchtitan's registry, not the job config); known: "
                          f"{', '.join(f'{n} {f}' for n, f in _NAMED)}; or give --model/--n-layer too")
    par, training = data.get("parallelism", {}), data.get("training", {})
    where = str(path)
    shard = par.get("data_parallel_shard_degree", -1)
    replicate = par.get("data_parallel_replicate_degree", 1)
    degrees: dict[str, Any] = {k: _int(where, f"parallelism.{key}", par[key])
                               for k, key in (("tp", "tensor_parallel_degree"),
                                              ("pp", "pipeline_parallel_degree"),
                                              ("cp", "context_parallel_degree"),
                                              ("ep", "expert_parallel_degree")) if key in par}
    if isinstance(shard, int) and shard > 1:
        degrees.update(dp=shard * _int(where, "parallelism.data_parallel_replicate_degree", replicate), zero=3)
    elif isinstance(replicate, int) and replicate > 1:
        degrees.update(dp=replicate, zero=0)
    if "pipeline_parallel_microbatch_size" in par:
        degrees["mb"] = _int(where, "parallelism.pipeline_parallel_microbatch_size",
                             par["pipeline_parallel_microbatch_size"])
    mode = data.get("activation_checkpoint", {}).get("mode")
    if mode is not None:
        if mode not in _RECOMPUTE:
            raise BudgetError(f"--config {where}: activation_checkpoint.mode {mode!r}; allowed: "
                              f"{', '.join(sorted(_RECOMPUTE))}")
        degrees["recompute"] = mode
    seq = training.get("seq_len")
    return TrainerConfig(source=f"torchtitan config {where}", model=named, layout=_layout(degrees) or None,
                         seq_len=None if seq is None else _int(where, "training.seq_len", seq))


def _megatron_options(path: Path) -> dict[str, str | bool]:
    text = path.read_text(encoding="utf-8")
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as exc:
        raise BudgetError(f"--config {str(path)!r}: cannot split the arguments ({exc})") from None
    options: dict[str, str | bool] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise BudgetError(f"--config {str(path)!r}: {token!r} is not an option (options start with --)")
        if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            options[token], i = tokens[i + 1], i + 2
        else:
            options[token], i = True, i + 1
    return options


def _megatron(path: Path) -> TrainerConfig:
    o, where = _megatron_options(path), str(path)

    def num(option: str) -> int | None:
        return None if option not in o else _int(where, option, o[option])

    shape: dict[str, Any] = {}
    for option, key in (("--num-layers", "n_layer"), ("--hidden-size", "d_model"),
                        ("--num-attention-heads", "n_head"), ("--kv-channels", "head_dim"),
                        ("--ffn-hidden-size", "d_ff"), ("--vocab-size", "vocab"),
                        ("--num-experts", "n_experts"), ("--moe-router-topk", "experts_per_token")):
        if num(option) is not None:
            shape[key] = num(option)
    if "n_layer" not in shape or "d_model" not in shape:
        raise BudgetError(f"--config {where}: a Megatron argument file needs --num-layers and --hidden-size")
    shape["n_kv_head"] = num("--num-query-groups") if o.get("--group-query-attention") else shape.get("n_head")
    shape["mlp"] = "gated" if o.get("--swiglu") else "plain"
    shape["norm"] = "rmsnorm" if o.get("--normalization") == "RMSNorm" else "layernorm"
    shape["positions"] = "rotary" if o.get("--position-embedding-type", "learned_absolute") == "rope" else "learned"
    shape["tied_embeddings"] = not o.get("--untie-embeddings-and-output-weights", False)
    shape["bias"] = "none" if o.get("--disable-bias-linear") else "all"
    degrees: dict[str, Any] = {"tp": num("--tensor-model-parallel-size"), "pp": num("--pipeline-model-parallel-size"),
                               "cp": num("--context-parallel-size"), "ep": num("--expert-model-parallel-size"),
                               "mb": num("--micro-batch-size")}
    per_stage = num("--num-layers-per-virtual-pipeline-stage")
    if per_stage is not None:
        degrees["vp"] = max(1, shape["n_layer"] // ((degrees["pp"] or 1) * per_stage))
    degrees["sp"] = "on" if o.get("--sequence-parallel") else "off"
    degrees["zero"] = 1 if o.get("--use-distributed-optimizer") else 0
    granularity = o.get("--recompute-granularity")
    degrees["recompute"] = granularity if granularity in ("full", "selective") else "none"
    shape = {k: v for k, v in shape.items() if v is not None}
    return TrainerConfig(source=f"Megatron-LM arguments {where}", shape=shape, layout=_layout(degrees),
                         seq_len=num("--seq-length"))


def read_trainer_config(path: str | Path) -> TrainerConfig:
    """The model and layout a torchtitan TOML or a Megatron-LM argument file states."""
    p = Path(path)
    if not p.is_file():
        raise BudgetError(f"--config {str(p)!r}: no such file")
    try:
        return _torchtitan(p) if p.suffix == ".toml" else _megatron(p)
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetError(f"--config {str(p)!r}: cannot read it ({exc})") from None
