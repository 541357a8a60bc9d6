"""What is being trained: model descriptions and their parameter and FLOP accounting.

`transformer` (decoder-only shapes, counts, FLOPs per token, a shape for a size), `layers` (layer-list
accounting for any network), `cnn` (layer-list networks and the TOML files in `networks/`),
`efficientnet` (compound scaling). Pure formulas: imports numpy and `budget.errors` only.
"""
