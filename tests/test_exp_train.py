"""The training loop: schedule, loss going down, determinism, NaN detection."""

import math
from dataclasses import replace

import pytest
import torch

from experiments.errors import TrainingFailed
from experiments.sweeps.design import PRESETS, design_sweep
from experiments.training.data import load_corpus
from experiments.training.hardware import Peak, set_threads
from experiments.training.train import MIN_LR_RATIO, lr_at, train_run

pytestmark = pytest.mark.slow  # trains real models (still seconds each)

PEAK = Peak(1e10, "fp32", "test")


@pytest.fixture(scope="module")
def corpus():
    set_threads(1)
    return load_corpus()


@pytest.fixture(scope="module")
def config():
    return replace(design_sweep(PRESETS["smoke"])[1].config, tokens=64 * 32 * 40,
                   eval_tokens=2048)


def test_schedule_warms_up_then_decays_to_ten_percent(config):
    assert lr_at(0.0, config) == pytest.approx(0.0, abs=1e-6)
    assert lr_at(config.warmup_frac, config) == pytest.approx(config.lr)
    assert lr_at(1.0, config) == pytest.approx(MIN_LR_RATIO * config.lr)
    mid = config.warmup_frac + (1 - config.warmup_frac) / 2
    assert lr_at(mid, config) == pytest.approx(config.lr * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) / 2))


def test_loss_goes_down_and_runs_are_deterministic(corpus, config):
    logged = []
    a = train_run(config, corpus, device=torch.device("cpu"), dtype=torch.float32, peak=PEAK,
                  on_metrics=lambda step, m: logged.append((step, m)), progress=False)
    b = train_run(config, corpus, device=torch.device("cpu"), dtype=torch.float32, peak=PEAK,
                  progress=False)
    assert a.tokens == config.tokens and a.steps == 40
    first = sum(c[2] for c in a.curve[:5]) / 5
    last = sum(c[2] for c in a.curve[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert math.log(256) > a.val_loss  # better than uniform over bytes
    assert a.val_loss == b.val_loss and a.curve == b.curve
    keys = set().union(*(m for _, m in logged))
    assert {"train_loss", "val_loss", "lr", "tokens_seen", "flops_seen", "tokens_per_s",
            "mfu", "final_val_loss"} <= keys
    assert 0 < a.mfu < 10


def test_diverging_run_raises_training_failed(corpus, config):
    with pytest.raises(TrainingFailed, match="nan|inf"):
        train_run(replace(config, lr=1e30, grad_clip=1e30), corpus, device=torch.device("cpu"),
                  dtype=torch.float32, peak=PEAK, progress=False)


def test_a_killed_run_resumes_from_its_checkpoint_with_the_same_result(corpus, config, tmp_path):
    """Killed at step 20 of 40 with a checkpoint written every step: the rerun starts at step
    21 (model, AdamW state and data order restored) and ends exactly where an uninterrupted
    run ends; the checkpoint is removed once the run finishes."""
    cpu = torch.device("cpu")
    whole = train_run(config, corpus, device=cpu, dtype=torch.float32, peak=PEAK, progress=False)
    path = tmp_path / "point.pt"

    def kill_at_20(step, metrics):
        if step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, corpus, device=cpu, dtype=torch.float32, peak=PEAK, progress=False,
                  on_metrics=kill_at_20, checkpoint=path, checkpoint_every_s=0.0)
    assert path.exists()
    steps = []
    resumed = train_run(config, corpus, device=cpu, dtype=torch.float32, peak=PEAK,
                        progress=False, on_metrics=lambda s, m: steps.append(s),
                        checkpoint=path, checkpoint_every_s=0.0)
    assert steps[0] == 20  # step 20's metrics came after its checkpoint: it is redone
    assert resumed.val_loss == pytest.approx(whole.val_loss, abs=1e-6)
    assert [c[2] for c in resumed.curve] == pytest.approx([c[2] for c in whole.curve], abs=1e-6)
    assert not path.exists()
