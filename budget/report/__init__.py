"""The proposal (`budget report`): `sections` holds its parts as dataclasses, `build` fills them
from the planner, `html` renders Markdown and HTML, `figures` draws the PNGs (matplotlib lazily),
`calibration` turns a calibrated law into a section, and `proposal` is the one call the command
makes (`make_proposal(ProposalRequest)`: store, calibration, build, write, log). `html`,
`figures` and `calibration` import `sections`, never `build` or each other: no import circle
(tests/test_house.py checks it).
"""
