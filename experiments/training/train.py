"""The training loop of one sweep point, top-down like nanoGPT's `train.py`.

AdamW with decoupled weight decay on matrices only, linear warmup then cosine decay to
`MIN_LR_RATIO` x the peak over exactly the run's token budget (Hoffmann et al. 2022 §3 match
the cosine length to the run), gradient clipping, fixed seeds, bf16 autocast where timed
faster (experiments.training.autotune). A checkpoint every few minutes lets a killed point resume
mid-run. The final validation loss over a fixed set of held-out windows is the number the fits
use (nats per token of the corpus' tokenizer: per byte for the byte-level default). Metrics go to an `on_metrics(step, metrics)` callback so the loop knows nothing of MLflow.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np
import torch

from budget.models.arch import Architecture
from budget.models.families import build
from experiments.errors import TrainingFailed
from experiments.model import build_model, legacy_names
from experiments.training.data import Corpus, batch_starts, val_starts, windows
from experiments.training.hardware import Peak

MIN_LR_RATIO = 0.1  # cosine decays to 10% of the peak lr (Hoffmann et al. 2022 §3, App. B)
LLAMA_ONLY_FIELDS = ("family", "n_kv_head", "head_dim")  # TrainConfig fields a GPT-2 point omits
BETAS = (0.9, 0.95)  # AdamW betas of GPT-3 (Brown et al. 2020 App. B) and Chinchilla
WEIGHT_DECAY = 0.1  # GPT-3 App. B
GRAD_CLIP = 1.0  # global-norm clipping, GPT-3 App. B
CHECKPOINT_EVERY_S = 300.0  # a killed point loses at most this much training

MetricsCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one run; `asdict` of it is what MLflow records as params."""

    n_layer: int
    d_model: int
    n_head: int
    d_ff: int
    n_ctx: int
    vocab_size: int
    params: int  # total parameters (embeddings included), the planner's params_total
    params_non_embedding: int
    tokens: int  # D, the run's training-token budget
    flops_budget: float  # C = 6 N D, the IsoFLOP budget the point belongs to
    batch_size: int  # sequences per step (each n_ctx tokens)
    lr: float
    warmup_frac: float = 0.05
    min_lr_ratio: float = MIN_LR_RATIO
    weight_decay: float = WEIGHT_DECAY
    grad_clip: float = GRAD_CLIP
    seed: int = 0
    eval_tokens: int = 65536  # held-out tokens of the final validation loss
    evals: int = 4  # validation losses logged during the run (on a quarter of eval_tokens)
    dataset: str = ""
    dataset_digest: str = ""
    code_version: str = ""
    family: str = "gpt2"  # the budget.models.families preset experiments.model.Decoder builds
    n_kv_head: int = 0  # llama family: KV heads (0: n_head)
    head_dim: int = 0  # llama family: head dimension (0: d_model // n_head)

    @property
    def architecture(self) -> Architecture:
        """The run's model as the planner counts it and experiments.model.build_model builds it
        (the family's preset; GPT-2 points store 0 for n_kv_head and head_dim: derived)."""
        return build(self.family, self.n_layer, self.d_model, n_head=self.n_head,
                     n_kv_head=self.n_kv_head or None, head_dim=self.head_dim or None,
                     d_ff=self.d_ff, vocab_size=self.vocab_size, n_ctx=self.n_ctx)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.n_ctx

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.tokens / self.tokens_per_step))

    def to_dict(self) -> dict[str, object]:
        """asdict; a GPT-2 point leaves out the llama-only fields, so its logged params and
        config hash are those it had before the llama family existed (sweeps resume)."""
        out = asdict(self)
        if self.family == "gpt2":
            for key in LLAMA_ONLY_FIELDS:
                out.pop(key)
        return out


@dataclass(frozen=True)
class TrainResult:
    """What one finished run measured."""

    val_loss: float
    train_loss: float
    tokens: int
    flops: float  # model FLOPs executed: training_flops_per_token(shape) x tokens
    steps: int
    seconds: float
    tokens_per_s: float
    mfu: float
    curve: list[tuple[int, int, float]] = field(default_factory=list)  # (step, tokens, loss)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("curve")
        return out


def lr_at(progress: float, config: TrainConfig) -> float:
    """Linear warmup over `warmup_frac` of the tokens, then cosine to min_lr_ratio x lr at 1."""
    if progress < config.warmup_frac:
        return config.lr * (progress + 1e-9) / config.warmup_frac
    decay = (progress - config.warmup_frac) / max(1e-9, 1.0 - config.warmup_frac)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, decay)))
    return config.lr * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def make_optimizer(model: torch.nn.Module, config: TrainConfig,
                   fused: bool = False) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (>= 2-D), none on biases, norms (nanoGPT). `fused`: the
    single-kernel CUDA AdamW (PyTorch docs: fastest on CUDA; the sweep times it per shape)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    if fused:
        return torch.optim.AdamW(groups, lr=config.lr, betas=BETAS, fused=True)
    return torch.optim.AdamW(groups, lr=config.lr, betas=BETAS)


@dataclass(frozen=True)
class Execution:
    """How a config is run (not what it measures): dtype, fp32 attention, fused AdamW, compile."""

    dtype: torch.dtype = torch.float32
    fp32_attention: bool = True  # attention outside bf16 autocast on CPU (experiments.model)
    fused_adamw: bool = False
    compile: bool = False


class Stepper:
    """The trainer's loop body (batch, forward, backward, clip, AdamW) for one config; the sweep,
    the autotuner and benchmarks/bench_trainer.py all time this same object."""

    def __init__(self, config: TrainConfig, corpus: Corpus, device: torch.device,
                 execution: Execution) -> None:
        from experiments import model as model_module

        model_module.FP32_ATTENTION["on"] = execution.fp32_attention
        torch.manual_seed(config.seed)
        self.config, self.corpus, self.device, self.execution = config, corpus, device, execution
        self.rng = np.random.default_rng(config.seed)
        self.model = build_model(config.architecture).to(device)
        self.optimizer = make_optimizer(self.model, config, fused=execution.fused_adamw)
        self.forward: Callable[..., Any] = torch.compile(self.model) if execution.compile \
            else self.model

    def step(self, batch: int, lr: float) -> float:
        """One optimizer step on `batch` random windows; returns the training loss."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = windows(self.corpus.train, batch_starts(self.corpus.train.size, c.n_ctx, batch,
                                                       self.rng), c.n_ctx)
        with _autocast(self.device, self.execution.dtype):
            _, loss = self.forward(torch.from_numpy(x).to(self.device),
                                   torch.from_numpy(y).to(self.device))
        assert loss is not None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        return float(loss.detach())

    def save(self, path: Path, step: int, tokens_seen: int, curve: list[Any]) -> None:
        """Model, optimizer, data-order RNG and progress, written atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "rng": self.rng.bit_generator.state, "step": step,
                    "tokens_seen": tokens_seen, "curve": curve}, tmp)
        tmp.replace(path)

    def load(self, path: Path) -> tuple[int, int, list[Any]] | None:
        """Restore a checkpoint; returns (steps done, tokens seen, curve so far), or None when it
        holds other parameters (a checkpoint of an older torch module): the point starts over."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        model_state = legacy_names(state["model"])
        mine = self.model.state_dict()
        if set(model_state) != set(mine) or any(model_state[k].shape != v.shape
                                                for k, v in mine.items()):
            return None
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        return int(state["step"]), int(state["tokens_seen"]), list(state["curve"])


def _autocast(device: torch.device, dtype: torch.dtype) -> ContextManager[object]:
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(model: torch.nn.Module, corpus: Corpus, config: TrainConfig, device: torch.device,
             dtype: torch.dtype, n_tokens: int) -> float:
    """Mean next-token loss (nats) over fixed, evenly spaced validation windows."""
    model.eval()
    starts = val_starts(corpus.val.size, config.n_ctx, n_tokens)
    total, count = 0.0, 0
    for chunk in np.array_split(starts, max(1, math.ceil(starts.size / config.batch_size))):
        x, y = windows(corpus.val, chunk, config.n_ctx)
        with _autocast(device, dtype):
            _, loss = model(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device))
        assert loss is not None
        total += float(loss) * chunk.size
        count += chunk.size
    model.train()
    return total / count


def train_run(config: TrainConfig, corpus: Corpus, *, device: torch.device, dtype: torch.dtype,
              peak: Peak, on_metrics: MetricsCallback | None = None, progress: bool = True,
              execution: Execution | None = None, checkpoint: Path | None = None,
              checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> TrainResult:
    """Train one model for exactly `config.tokens` tokens; raise TrainingFailed on NaN or OOM.

    With `checkpoint`, the state is saved there every `checkpoint_every_s` seconds and a run
    finding one resumes from it (same data order: the RNG state is saved); it is deleted when
    the run finishes."""
    execution = execution or Execution(dtype=dtype)
    try:
        return _train(config, corpus, device, execution, peak, on_metrics, progress, checkpoint,
                      checkpoint_every_s)
    except torch.cuda.OutOfMemoryError as exc:
        raise TrainingFailed(f"out of memory: {str(exc).splitlines()[0]}") from exc
    except MemoryError as exc:
        raise TrainingFailed(f"out of memory (host): {exc}") from exc


def _train(config: TrainConfig, corpus: Corpus, device: torch.device, execution: Execution,
           peak: Peak, on_metrics: MetricsCallback | None, progress: bool,
           checkpoint: Path | None, checkpoint_every_s: float) -> TrainResult:
    import click

    dtype = execution.dtype
    stepper = Stepper(config, corpus, device, execution)
    flops_per_token = config.architecture.training_flops_per_token()
    log = on_metrics or (lambda step, metrics: None)
    eval_at = {round(config.steps * k / config.evals) for k in range(1, config.evals)}
    done, tokens_seen = 0, 0
    curve: list[tuple[int, int, float]] = []
    restored = stepper.load(checkpoint) if checkpoint is not None and checkpoint.exists() else None
    if restored is not None:
        done, tokens_seen, curve = restored
        if progress:
            click.echo(f"  resuming from checkpoint at step {done:,} of {config.steps:,}",
                       err=True)
    start = last_save = time.perf_counter()
    start_tokens = tokens_seen
    bar = click.progressbar(length=config.steps - done, label=f"  N={config.params:.3g}",
                            file=sys.stderr if progress else io.StringIO(), show_eta=True,
                            item_show_func=lambda s: s)
    with bar:
        for step in range(done + 1, config.steps + 1):
            batch = min(config.batch_size,
                        math.ceil((config.tokens - tokens_seen) / config.n_ctx))
            lr = lr_at(tokens_seen / config.tokens, config)
            train_loss = stepper.step(batch, lr)
            if not math.isfinite(train_loss):
                raise TrainingFailed(f"loss is {train_loss} at step {step} (diverged)")
            tokens_seen += batch * config.n_ctx
            elapsed = time.perf_counter() - start
            tps = (tokens_seen - start_tokens) / elapsed
            metrics = {"train_loss": train_loss, "lr": lr, "tokens_seen": float(tokens_seen),
                       "flops_seen": flops_per_token * tokens_seen, "tokens_per_s": tps,
                       "mfu": tps * flops_per_token / peak.flops_per_s}
            if step in eval_at:
                metrics["val_loss"] = evaluate(stepper.model, corpus, config, device, dtype,
                                               config.eval_tokens // 4)
            curve.append((step, tokens_seen, train_loss))
            log(step, metrics)
            if checkpoint is not None and (time.perf_counter() - last_save >= checkpoint_every_s
                                           and step < config.steps):
                stepper.save(checkpoint, step, tokens_seen, curve)
                last_save = time.perf_counter()
            bar.update(1, f"{tps:,.0f} tok/s loss {train_loss:.3f}")
    seconds = time.perf_counter() - start
    val_loss = evaluate(stepper.model, corpus, config, device, dtype, config.eval_tokens)
    if not math.isfinite(val_loss):
        raise TrainingFailed(f"final validation loss is {val_loss} (diverged)")
    tps = (tokens_seen - start_tokens) / max(seconds, 1e-9)
    log(config.steps, {"val_loss": val_loss, "final_val_loss": val_loss})
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return TrainResult(val_loss, curve[-1][2], tokens_seen, flops_per_token * tokens_seen,
                       config.steps, seconds, tps, tps * flops_per_token / peak.flops_per_s,
                       curve)
