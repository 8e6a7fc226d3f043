"""``ws features``: per-proposal probabilities and semantic features (one module per
sub-command: extract, the default, and train-mil)."""

from __future__ import annotations

import click

from ..common import WsGroup


class DefaultGroup(WsGroup):
    """A group whose first argument, when it is not a sub-command, goes to ``extract``
    (``ws features MANIFEST ...`` = ``ws features extract MANIFEST ...``)."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["extract", *args]
        return super().parse_args(ctx, args)


@click.group("features", cls=DefaultGroup)
def features():
    """Per-proposal label probabilities (K+1 columns, 0 = noise) and semantic
    feature vectors for every proposal of a `proposals` store, computed from
    the images: the input of `ws graph` and `ws cut`. Two routes:

    \b
    1. a classifier (`ws cam train`) and its CAMs (`ws cam infer`): CAM
       probabilities (Fan et al. Eq. 2 box mean, LIID Eq. 3 mean + max, or
       mask mean) and ROI-Align + GAP features of the classifier's backbone;
    2. LIID's proposal MIL network (`ws features train-mil`): its softmax
       probabilities (LIID Eq. 2) and ROI features.

    `ws features MANIFEST ...` is short for `ws features extract MANIFEST ...`.

    \b
    Example:
      ws features data/toy/train.json --proposals props.h5 --cams cams.h5 --model cls.pt -o feats.h5
      ws features train-mil data/toy/train.json --proposals props.h5 --cams cams.h5 --init cls.pt -o mil.pt
      ws features data/toy/train.json --proposals props.h5 --model mil.pt -o feats_mil.h5
    """


from .extract import extract  # noqa: E402
from .train_mil import train_mil  # noqa: E402

for _c in (extract, train_mil):
    features.add_command(_c)
