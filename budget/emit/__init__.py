"""The plan handed to the trainer: the chosen model and layout as a trainer's own configuration.

`budget plan ... --emit torchtitan|megatron|deepspeed FILE` writes one of:

- torchtitan: a TOML job config (the `JobConfig` sections of torchtitan/config/job_config.py at
  commit 000204a4, mid-2025: [job], [model], [optimizer], [training], [parallelism],
  [activation_checkpoint]);
- megatron: a Megatron-LM argument file, one `--option value` per line, for
  `pretrain_gpt.py $(grep -v '^#' FILE)` (option names of megatron/training/arguments.py at tag
  core_v0.15.3);
- deepspeed: a DeepSpeed JSON config (keys of deepspeed/runtime/constants.py and the ZeRO section
  of deepspeed/runtime/zero/config.py at tag v0.19.5): batch sizes, ZeRO stage, precision, AdamW.

`read_trainer_config` reads a torchtitan TOML or a Megatron argument file back into model and
layout options (the reverse, for `--config`). The tests parse each written file against the field
and option names those projects publish (copied into tests/data with their source).
"""

from __future__ import annotations

from budget.emit.read import TrainerConfig, is_trainer_config, read_trainer_config
from budget.emit.write import TRAINERS, TrainerPlan, render, write

__all__ = ["TRAINERS", "TrainerConfig", "TrainerPlan", "is_trainer_config", "read_trainer_config",
           "render", "write"]
