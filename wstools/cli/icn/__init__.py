"""``ws icn``: the Instance-aware Cue-propagation Network that enhances peak response maps
(Huang et al., Neurocomputing 2021, Sect. 3.2); one module per sub-command (train, infer)."""

from __future__ import annotations

import click

from ..common import WsGroup


@click.group("icn", cls=WsGroup)
def icn():
    """Train the ICN on pseudo labels from proposals and enhance peak response maps with it.

    Training pairs: every naive PRM of a `ws cam peaks` store with the union
    of its top-3 matched proposals (Eq. 5, greedy, none contained in earlier
    picks) as its target; loss Eq. 4. Inference applies the network 3 times,
    re-normalising the map each step, and writes a `responses` store that `ws
    match` takes like the naive one.

    \b
    Example:
      ws icn train data/toy/train.json --responses prm.h5 --proposals props.h5 --encoder tiny -o icn.pt
      ws icn infer data/toy/val.json --responses prm_val.h5 --model icn.pt -o enhanced_val.h5
      ws match data/toy/val.json --responses enhanced_val.h5 --proposals props_val.h5 -o results.json
    """


from .train import train  # noqa: E402
from .infer import infer  # noqa: E402

for _c in (train, infer):
    icn.add_command(_c)
