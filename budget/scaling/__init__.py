"""How big and how long: the published scaling laws (`laws`) and the team's calibrated law
(`calibrated`, read from a versioned fit file). Pure numpy; never imports `fits` or `experiments`.
"""
