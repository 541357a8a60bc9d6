"""What is being trained: model descriptions and their parameter and FLOP accounting.

`arch` (Architecture: the one decoder-only description, GPT-2, Llama-style GQA/SwiGLU and MoE),
`families` (llama/gpt2 defaults and the one rule from options or a size to an Architecture),
`named` (published models with the config each shape comes from), `hf_config` (a local
config.json), `count` (the `budget flops` result), `transformer` (the older GPT-2 ModelShape, still
used by the GPT-2 sweeps), `layers` (layer-list accounting for any network), `cnn` (layer-list
networks and the TOML files in `networks/`), `efficientnet` (compound scaling). Pure formulas:
imports numpy and `budget.errors` only.
"""
