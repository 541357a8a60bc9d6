"""`budget plan --emit torchtitan|megatron|deepspeed FILE` writes the plan's model and layout as
that trainer's own config, checked by parsing each file back against the names the projects
publish (tests/data, each with its SOURCE): torchtitan's JobConfig sections and fields
(job_config.py), Megatron-LM's argparse options (arguments.py), DeepSpeed's config keys
(runtime/constants.py, zero/config.py). `--config` reads a torchtitan TOML or a Megatron argument
file back into the same plan."""

from __future__ import annotations

import argparse
import json
import shlex
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main

DATA = Path(__file__).parent / "data"
LLAMA_256 = ["plan", "--model", "llama-3-8b", "--tokens", "15e12", "--gpu", "h100", "--num-gpus", "256"]
# a fixed Megatron-style layout (the plan completes micro-batch and recomputation): the emitted
# arguments must carry tensor and pipeline degrees > 1, whatever the search would choose
MODEL_70B = ["plan", "--params", "70e9", "--tokens", "1.4e12", "--law", "tokens-per-param", "--seq-len",
             "4096", "--num-gpus", "256", "--layout", "tp=8,pp=4,dp=8"]
# the ZeRO stages each trainer's file can state (torchtitan: DDP or FSDP; Megatron: none or its
# distributed optimizer, ZeRO-1): another stage reads back as the nearest one it can
EXPRESSIBLE_ZERO = {"torchtitan": {0, 3}, "megatron": {0, 1}}


def run(args: list[str]) -> dict:
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def emitted(tmp_path: Path, args: list[str], trainer: str, name: str) -> tuple[dict, str]:
    out = tmp_path / name
    plan = run([*args, "--emit", trainer, str(out)])
    return plan, out.read_text(encoding="utf-8")


def megatron_parser() -> argparse.ArgumentParser:
    """argparse with every option of Megatron-LM core_v0.15.3's arguments.py, as it declares them."""
    parser = argparse.ArgumentParser(allow_abbrev=False)
    for line in (DATA / "megatron_arguments_core_v0.15.3.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        name, kind = line.split()
        if kind == "flag":
            parser.add_argument(name, action="store_true")
        else:
            parser.add_argument(name, nargs="+" if kind == "list" else None)
    return parser


def test_torchtitan_toml_has_the_layout_the_plan_chose(tmp_path):
    """The issue's command: every section and field is one torchtitan's JobConfig declares, and
    the tp/pp/dp/cp degrees are those of the plan's layout."""
    plan, text = emitted(tmp_path, LLAMA_256, "torchtitan", "plan.toml")
    config = tomllib.loads(text)
    published = json.loads((DATA / "torchtitan_job_config_fields.json").read_text())
    for section, values in config.items():
        assert section in published["sections"], section
        unknown = set(values) - set(published["sections"][section])
        assert not unknown, f"[{section}] {unknown} not in torchtitan's JobConfig"
    assert config["activation_checkpoint"]["mode"] in published["choices"]["activation_checkpoint.mode"]
    layout, par = plan["layout"], config["parallelism"]
    assert par["tensor_parallel_degree"] == layout["tp"]
    assert par["pipeline_parallel_degree"] == layout["pp"]
    assert par["context_parallel_degree"] == layout["cp"]
    assert par["data_parallel_shard_degree"] * par["data_parallel_replicate_degree"] == layout["dp"]
    assert layout["tp"] * layout["pp"] * layout["cp"] * layout["dp"] == 256
    assert config["training"]["seq_len"] == 8192 and config["model"] == {"name": "llama3", "flavor": "8B"}
    assert config["training"]["global_batch_size"] == layout["global_batch_sequences"]
    assert config["training"]["steps"] * layout["global_batch_sequences"] * 8192 >= 15e12


def test_megatron_arguments_parse_with_megatrons_own_option_names(tmp_path):
    plan, text = emitted(tmp_path, MODEL_70B, "megatron", "args.txt")
    args = megatron_parser().parse_args(shlex.split(text, comments=True))  # exits on an unknown option
    layout, shape = plan["layout"], plan["shape"]
    assert int(args.tensor_model_parallel_size) == layout["tp"] > 1
    assert int(args.pipeline_model_parallel_size) == layout["pp"] > 1
    assert int(args.context_parallel_size) == layout["cp"]
    assert int(args.micro_batch_size) == layout["mb"]
    assert int(args.global_batch_size) == layout["global_batch_sequences"]
    assert (int(args.num_layers), int(args.hidden_size), int(args.ffn_hidden_size)) == \
        (shape["n_layer"], shape["d_model"], shape["d_ff"])
    assert args.swiglu and args.group_query_attention and int(args.num_query_groups) == shape["n_kv_head"]
    assert args.bf16 and args.normalization == "RMSNorm" and args.position_embedding_type == "rope"
    assert args.sequence_parallel == layout["sp"]


def test_deepspeed_json_uses_deepspeeds_keys_and_batch_identity(tmp_path):
    plan, text = emitted(tmp_path, LLAMA_256, "deepspeed", "ds.json")
    config = json.loads(text)
    published = json.loads((DATA / "deepspeed_config_keys_v0.19.5.json").read_text())
    keys = set(published["constants"].values())
    assert set(config) <= keys
    assert set(config["zero_optimization"]) <= set(published["zero_optimization"])
    layout = plan["layout"]
    assert config["zero_optimization"]["stage"] == layout["zero"]
    assert config["train_micro_batch_size_per_gpu"] == layout["mb"]
    # DeepSpeed's own check: train_batch_size = micro-batch x accumulation x data-parallel size
    assert config["train_batch_size"] == layout["mb"] * layout["ga"] * layout["dp"] \
        == layout["global_batch_sequences"]
    assert config["bf16"] == {"enabled": True}


def test_deepspeed_says_what_its_json_cannot_hold(tmp_path):
    result = CliRunner().invoke(main, [*MODEL_70B, "--emit", "deepspeed", str(tmp_path / "ds.json")])
    assert result.exit_code == 0
    assert "no tensor/pipeline/context degrees" in result.stderr


@pytest.mark.parametrize("trainer,name", [("torchtitan", "plan.toml"), ("megatron", "args.txt")])
def test_config_reads_the_emitted_file_back_to_the_same_plan(tmp_path, trainer, name):
    """The reverse: `--config FILE` gives the model (torchtitan: the flavor; Megatron: the shape)
    and the layout, and the plan's shape, layout and cost are the ones that wrote it."""
    args = LLAMA_256 if trainer == "torchtitan" else MODEL_70B
    plan, _ = emitted(tmp_path, args, trainer, name)
    again = run(["plan", "--config", str(tmp_path / name), "--tokens", args[args.index("--tokens") + 1],
                 "--num-gpus", "256", *(["--law", "tokens-per-param"] if trainer == "megatron" else [])])
    keys = ("tp", "pp", "cp", "dp", "mb", "recompute")
    if plan["layout"]["zero"] in EXPRESSIBLE_ZERO[trainer]:
        keys += ("zero",)
    for key in keys:
        assert again["layout"][key] == plan["layout"][key], key
    for key in ("n_layer", "d_model", "n_head", "n_kv_head", "d_ff", "vocab_size", "mlp", "norm"):
        assert again["shape"][key] == plan["shape"][key], key


def test_bad_emit_and_config_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(main, [*LLAMA_256, "--emit", "torchtitan", str(tmp_path / "no" / "x.toml")])
    assert result.exit_code == 2 and "cannot write it" in result.stderr and "Traceback" not in result.output
    bad = tmp_path / "job.toml"
    bad.write_text('[model]\nname = "llama3"\nflavor = "3B"\n')
    result = CliRunner().invoke(main, ["plan", "--config", str(bad), "--tokens", "1e12"])
    assert result.exit_code == 2 and "flavor '3B'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_guide_shows_the_files_the_commands_write(tmp_path):
    """docs/guide/emit.md's ```toml and ```text blocks are the files its two commands write now
    (refresh them from `budget plan ... --emit` when this fails)."""
    import re

    guide = (Path(__file__).parent.parent / "docs" / "guide" / "emit.md").read_text(encoding="utf-8")
    shown_toml = re.search(r"```toml\n(.*?)```", guide, flags=re.S).group(1)
    shown_args = re.search(r"writes `args.txt`:\n\n```text\n(.*?)```", guide, flags=re.S).group(1)
    assert emitted(tmp_path, LLAMA_256, "torchtitan", "plan.toml")[1] == shown_toml
    assert emitted(tmp_path, MODEL_70B, "megatron", "args.txt")[1] == shown_args


def test_a_proposed_shape_is_a_custom_torchtitan_flavor(tmp_path):
    """torchtitan keeps shapes in its model registry: a shape it has no flavor for is written as
    flavor 'custom' with the shape in a comment, and --config refuses it with one line."""
    _, text = emitted(tmp_path, ["plan", "--flops", "1e21"], "torchtitan", "p.toml")
    assert tomllib.loads(text)["model"]["flavor"] == "custom" and "# model shape: 26 layers" in text
    result = CliRunner().invoke(main, ["plan", "--config", str(tmp_path / "p.toml"), "--tokens", "1e12"])
    assert result.exit_code == 2 and "flavor 'custom'" in result.stderr
