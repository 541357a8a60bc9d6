"""How big and how long: the law registry and the published laws (`laws`: one `Law` entry per
law, read by plan, report, `--law` and the calibrated comparison) and the team's calibrated law
(`calibrated`, read from the versioned fit file). Pure Python; never imports `fits` or
`experiments` (the fit file is the seam, `budget.wiring` loads it from MLflow).
"""
