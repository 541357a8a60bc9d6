"""Fine-tuning modes (issue 22 scope 4): LoRA/QLoRA adapter counts, memory, FLOPs per token."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.errors import BudgetError
from budget.models.arch import Architecture
from budget.training.finetune import (
    adapter_params,
    finetune_flops_per_token,
    finetune_memory,
)

# LLaMA-65B (Touvron et al. 2023, arXiv:2302.13971 Table 2: dim 8192, 64 heads, 80 layers; d_ff
# 22016 and vocabulary 32000 from huggyllama/llama-65b config.json): 65.2B parameters.
LLAMA_65B = Architecture(n_layer=80, d_model=8192, n_head=64, n_kv_head=64, head_dim=128,
                         d_ff=22016, vocab_size=32000, n_ctx=2048, name="llama-65b")
SEVEN_B = Architecture(n_layer=32, d_model=4096, n_head=32, n_kv_head=32, head_dim=128,
                       d_ff=11008, vocab_size=32000, n_ctx=4096)


def test_lora_rank_8_on_every_projection_of_a_7b_block():
    """HF PEFT's print_trainable_parameters for 32-layer, d 4096, d_ff 11008 MHA models (Llama-2-7B's
    block; printed for Qwen1.5-7B and OLMo-7B) with r = 8 on q,k,v,o,gate,up,down: 19,988,480."""
    assert adapter_params(SEVEN_B, 8) == 19_988_480


def test_qlora_fine_tunes_65b_on_one_48_gb_gpu():
    """Dettmers et al. 2023 (QLoRA, arXiv:2305.14314): a 65B model fine-tuned on a single 48 GB GPU,
    with the settings of artidoro/qlora scripts/finetune_guanaco_65b.sh (r 64 on all linear layers,
    NF4 + double quantization, bf16, gradient checkpointing, micro-batch 1, 16 + 512 tokens).
    16-bit LoRA and full fine-tuning of the same model do not fit."""
    assert LLAMA_65B.params_total() == pytest.approx(65.2e9, rel=0.01)
    q = finetune_memory(LLAMA_65B, "qlora", rank=64, seq_len=528, recompute="full",
                        gpu_memory_bytes=48e9)
    assert q.fits_whole_device and 40e9 < q.total_bytes < 48e9
    assert q.base_weights_bytes == pytest.approx(64.76e9 * 4.127 / 8 + 0.53e9 * 2, rel=0.01)
    assert q.trainable_params / q.params == pytest.approx(0.0122, abs=0.0005)
    lora = finetune_memory(LLAMA_65B, "lora", rank=64, seq_len=528, gpu_memory_bytes=48e9)
    full = finetune_memory(LLAMA_65B, "full", seq_len=528, gpu_memory_bytes=48e9)
    assert not lora.fits_whole_device and not full.fits_whole_device
    assert full.total_bytes > 16 * LLAMA_65B.params_total()


def test_lora_flops_drop_the_weight_gradients():
    """Forward 2N, backward 4N of which 2N are weight gradients (Kaplan et al. 2020 §2.1): a frozen
    base costs 4N per token plus the adapters; full recomputation adds a forward."""
    f = SEVEN_B.forward_flops_per_token(2048, "unhalved")
    full = finetune_flops_per_token(SEVEN_B, "full", seq_len=2048, recompute="selective")
    lora = finetune_flops_per_token(SEVEN_B, "lora", rank=8, seq_len=2048, recompute="selective")
    assert full == pytest.approx(3 * f)
    assert lora == pytest.approx(2 * f + 6 * 19_988_480)
    redo = finetune_flops_per_token(SEVEN_B, "qlora", rank=8, seq_len=2048, recompute="full")
    assert redo == pytest.approx(lora + f)


def test_bad_rank_and_mode():
    with pytest.raises(BudgetError, match="rank"):
        adapter_params(SEVEN_B, 0)
    with pytest.raises(BudgetError, match="fine-tuning mode"):
        finetune_memory(SEVEN_B, "prefix")


def test_cli_memory_and_plan_finetune():
    args = ["--n-layer", "80", "--d-model", "8192", "--n-head", "64", "--d-ff", "22016",
            "--vocab", "32000", "--seq-len", "528"]
    out = CliRunner().invoke(main, ["memory", *args, "--finetune", "qlora", "--rank", "64", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["mode"] == "qlora" and data["rank"] == 64 and data["total_bytes"] < 48e9
    plan = CliRunner().invoke(main, ["plan", "--model", "llama-2-7b", "--tokens", "1e8", "--finetune",
                                     "lora", "--rank", "8", "--num-gpus", "1", "--json"])
    assert plan.exit_code == 0, plan.output
    p = json.loads(plan.output)
    assert p["finetune"]["trainable_params"] == pytest.approx(19_988_480)
    assert "parallel" not in p  # one replica at the MFU: no layout search
    bad = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--finetune", "lora"])
    assert bad.exit_code == 2 and "--finetune prices a given model" in bad.stderr
