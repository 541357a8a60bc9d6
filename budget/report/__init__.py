"""The proposal (`budget report`): `sections` holds its parts as dataclasses, `build` fills them
from the planner, `html` renders Markdown and HTML, `figures` draws the PNGs (matplotlib lazily),
`calibration` turns a calibrated law into a section. `html`, `figures` and `calibration` import
`sections`, never `build` or each other: no import circle.
"""
