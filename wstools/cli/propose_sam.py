"""The --method sam flags of ``ws propose``: the checkpoint and the settings of SAM's automatic
mask generator (Kirillov et al. 2023, App. A), defaults the official ones."""

from __future__ import annotations

import functools

import click

from .common import option_stack

SAM_DEFAULTS = "Kirillov et al., Segment Anything, ICCV 2023, App. A; the official SamAutomaticMaskGenerator"
# the generator's settings, as wstools.proposals.sam.sam_masks names them
GENERATOR = ("points_per_side", "points_per_batch", "pred_iou_thresh", "stability_thresh", "stability_offset",
             "box_nms", "crop_layers", "crop_nms", "crop_overlap", "crop_points_downscale", "min_region_area")

_OPTIONS = [
    click.option("--checkpoint", type=click.Path(), default=None,
                 help="--method sam: a SAM checkpoint folder as transformers' save_pretrained writes it (config.json + "
                      "model.safetensors, e.g. a download of facebook/sam-vit-huge). Loaded offline; pickle "
                      "files (.pth/.bin) are refused, never unpickled (convert Meta's sam_vit_h_4b8939.pth once "
                      "with transformers' convert_sam_to_hf.py)."),
    click.option("--model-type", type=click.Choice(["auto", "vit_b", "vit_l", "vit_h"]), default="auto",
                 show_default=True,
                 help="--method sam: check that the checkpoint is this SAM (ViT width 768 / 1024 / 1280); auto = "
                      "whatever the folder holds (the official generator's default model is vit_h)."),
    click.option("--points-per-side", type=click.IntRange(1), default=32, show_default=True,
                 help=f"--method sam: the point prompts form an N x N grid ({SAM_DEFAULTS}: 32, i.e. 1024 points)."),
    click.option("--points-per-batch", type=click.IntRange(1), default=64, show_default=True,
                 help="--method sam: point prompts decoded at once (memory only, not the result; official: 64)."),
    click.option("--pred-iou-thresh", type=click.FloatRange(0, 1), default=0.88, show_default=True,
                 help=f"--method sam: keep masks whose predicted IoU is at least this ({SAM_DEFAULTS}: 0.88)."),
    click.option("--stability-thresh", type=click.FloatRange(0, 1), default=0.95, show_default=True,
                 help="--method sam: keep masks whose stability score (IoU of the mask logits thresholded at "
                      f"+-offset) is at least this ({SAM_DEFAULTS}: 0.95)."),
    click.option("--stability-offset", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
                 help="--method sam: the logit offset of the stability score (official: 1.0)."),
    click.option("--box-nms", type=click.FloatRange(0, 1), default=0.7, show_default=True,
                 help="--method sam: box-IoU NMS between SAM's masks (official box_nms_thresh 0.7); --nms is the "
                      "mask-IoU NMS every method gets afterwards."),
    click.option("--crop-layers", type=click.IntRange(0, 4), default=0, show_default=True,
                 help="--method sam: also run on 2^i x 2^i overlapping crops for i = 1..N (SAM App. A uses 2 for "
                      "SA-1B; the official generator's default is 0)."),
    click.option("--crop-nms", type=click.FloatRange(0, 1), default=0.7, show_default=True,
                 help="--method sam, --crop-layers > 0: box NMS between crops, masks of smaller crops preferred "
                      "(official: 0.7)."),
    click.option("--crop-overlap", type=click.FloatRange(0, 1, max_open=True), default=round(512 / 1500, 6),
                 show_default=True,
                 help="--method sam: neighbouring crops overlap by this fraction of the image's shorter side, "
                      "scaled by the crop's size (official: 512/1500)."),
    click.option("--crop-points-downscale", type=click.IntRange(1), default=1, show_default=True,
                 help="--method sam: layer i's grid has points-per-side / this^i points a side (official: 1)."),
    click.option("--min-region-area", type=click.IntRange(0), default=0, show_default=True,
                 help="--method sam: fill holes and delete islands smaller than this many pixels in each mask, "
                      f"then NMS again ({SAM_DEFAULTS}: 0 = off; SA-1B used 100). Not --min-area, which drops "
                      "whole proposals."),
]


def sam_options(f):
    """--checkpoint, --model-type and the generator's flags; the command gets the generator's
    settings as one argument ``sam``, a dict of :data:`GENERATOR` (keywords of ``sam_masks``)."""
    @functools.wraps(f)
    def packed(*args, **kwargs):
        sam = {name: kwargs.pop(name) for name in GENERATOR}
        return f(*args, sam=sam, **kwargs)

    return option_stack(_OPTIONS)(packed)


def load_sam_model(checkpoint, model_type: str, device: str):
    """``(model, device)``: the SAM of the checkpoint folder on ``--device``."""
    from ..io.foundation import load_sam
    from .common import resolve_device

    dev = resolve_device(device)
    return load_sam(checkpoint, dev, model_type), dev
