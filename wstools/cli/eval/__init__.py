"""``ws eval semantic|instance|proposals|cams|assignment``: the measuring stick.

Each sub-command (one module each: semantic, instance, proposals, cams, assignment) reads a
prediction file and a manifest with ground truth, calls the metric functions of
:mod:`wstools.eval`, prints a readable table on stderr and the JSON summary (all numbers) on
stdout; ``--csv`` writes the per-class rows and ``--plot`` a figure. The options the modes share
(--gt, --csv, --plot) are in :mod:`wstools.cli.eval.options`.
"""

from __future__ import annotations

import click

from ..common import WsGroup


@click.group("eval", cls=WsGroup)
def eval_group():
    """Measure predictions against the ground truth of a manifest: semantic
    mIoU (PASCAL VOC protocol), instance AP (COCO, identical to pycocotools;
    and mAP^r / ABO of the weakly supervised instance papers), proposal recall
    and ABO, CAM quality (IRN's background-threshold sweep) and tag-assignment
    accuracy (LIID Table 7).

    Every mode prints a table on stderr and one JSON line with all numbers on
    stdout; --csv FILE writes per-class rows, --plot FILE.png a figure (instance, proposals, cams).

    \b
    Example:
      ws eval semantic pred_labels.h5 --gt toy/val.json
      ws eval instance results.json --gt toy/val.json --plot pr.png
      ws eval proposals proposals.h5 --gt toy/train.json --objects all
    """


from .semantic import semantic  # noqa: E402
from .instance import instance  # noqa: E402
from .proposals import proposals  # noqa: E402
from .cams import cams  # noqa: E402
from .assignment import assignment  # noqa: E402

for _c in (proposals, semantic, instance, cams, assignment):
    eval_group.add_command(_c)
