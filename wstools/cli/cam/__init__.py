"""``ws cam``: the multi-label classifier and its class activation maps (one module per
sub-command: train, infer, import)."""

from __future__ import annotations

import click

from ..common import WsGroup


@click.group("cam", cls=WsGroup)
def cam():
    """Train the multi-label FCN classifier on image-level tags and extract its
    class activation maps (CAMs): the attention module of Fan et al. (ECCV 2018),
    the CAM source of LIID and DSRG, and the cue generator of Sun et al. (colour
    and gray classifiers).

    \b
    Example:
      ws cam train data/toy/train.json --val data/toy/val.json --arch tiny --crop 128 --scales 1,1 -o cls.pt
      ws cam infer data/toy/train.json --model cls.pt -o cams.h5
      ws cam import irn/cam_out --manifest voc_train.json -o cams.h5
      ws cam peaks data/toy/train.json --model cls.pt -o prm.h5
      ws cam clip data/toy/train.json --checkpoint clip-vit-base-patch16/ -o cams.h5

    `ws cam clip` needs no training: CLIP-ES CAMs (Lin et al., CVPR 2023) from
    a frozen CLIP and the class names, in the same `cams` store.
    """


from .train import train  # noqa: E402
from .infer import infer  # noqa: E402
from .import_ import import_  # noqa: E402
from .peaks import peaks  # noqa: E402
from .clip import clip  # noqa: E402

for _c in (train, infer, import_, peaks, clip):
    cam.add_command(_c)
