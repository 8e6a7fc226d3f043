"""``ws grow``: seed cues, seeded region growing and dense CRF (one module per sub-command)."""

from __future__ import annotations

import click

from ..common import WsGroup


@click.group("grow", cls=WsGroup)
def grow():
    """Turn CAMs into pixel pseudo labels: seed cues (Sun et al. 2020 Sect. 3.1-3.3,
    DSRG Sect. 3.1), seeded region growing (DSRG Sect. 3.2) and dense CRF refinement.
    All sub-commands write `labels` stores: 0 = background, 1..K = class, 255 = unlabelled.

    \b
    Example:
      ws grow seeds cams.h5 --fg top:0.2 --bg cams:0.05 -o seeds.h5
      ws grow region seeds.h5 --probs cams.h5 -o grown.h5
      ws grow crf cams.h5 --manifest data/toy/train.json -o crf.h5
    """


from .seeds import seeds  # noqa: E402
from .region import region  # noqa: E402
from .crf import crf  # noqa: E402

for _c in (seeds, region, crf):
    grow.add_command(_c)
