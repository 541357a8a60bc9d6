"""What is being trained: model descriptions and their parameter and FLOP accounting.

`arch` (Architecture: the one decoder-only description, a few dims plus per-layer parts),
`components` (the parts: multi-head / latent / state-space mixers, plain / gated / MoE MLPs),
`families` (llama/gpt2 presets and the one rule from options or a size to an Architecture),
`choice` (that rule applied to the options every command shares), `named` (published models
with the config each shape comes from), `hf_config` and `hf_readers` (a local config.json),
`count` (the `budget flops` result), `layers` (layer-list accounting for any network), `cnn`
(layer-list networks and the TOML files in `networks/`), `efficientnet` (compound scaling). Pure
formulas: imports numpy and `budget.errors` only.
"""
