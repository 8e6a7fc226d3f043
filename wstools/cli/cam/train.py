"""``ws cam train``: the multi-label FCN classifier on image-level tags."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ..common import command, parse_floats, progress, resolve_device, warn
from ..training import TrainingRun, run_training
from ..training_options import checkpoint_output_option, optimizer_options, training_options


ARCH_CHOICES = ["tiny", "resnet18", "resnet50", "resnet101", "vgg16"]

# --recipe: defaults of the options a recipe sets (an option given on the command line wins)
RECIPES = {
    # IRN (Ahn et al. 2019): an ImageNet-initialised ResNet-50 on real images; the option defaults
    "irn": {},
    # a `tiny` residual CNN from scratch on `ws toy` images of 64 px on the CPU, chosen with
    # benchmarks/cam_toy.py (64 px learned faster per CPU second than 96 px; Adam at 0.008 did not
    # learn in the first epoch): Adam, no head multiplier, whole images with flips (crops would cut
    # tagged objects out), output stride 8 for finer CAMs. Train and val mAP stay equal: the
    # network underfits, so quality follows the number of presentations (images x epochs), not
    # the number of distinct images; 8 epochs (one-cycle, SGD, AdamW, other batch sizes and
    # poolings learned no faster per CPU second)
    "toy": {"arch": "tiny", "stride": "8", "weights": "none", "optimizer": "adam", "lr": 0.003,
            "head_lr_mult": 1.0, "weight_decay": 0.0, "batch_size": 16, "crop": 64, "scale_range": "1,1",
            "epochs": 8},
}


def _apply_recipe(recipe: str, values: dict) -> dict:
    """``values`` with the recipe's settings for every option left at its default."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    out = dict(values)
    for name, value in RECIPES[recipe].items():
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            out[name] = value
    return out


def _training_records(manifest, strict: bool, what: str):
    untagged = [r for r in manifest.images if not r.tags]
    if untagged and strict:
        raise InputError(f"{len(untagged)} {what} images have no tags (--strict)", path=manifest.path,
                         image_id=untagged[0].id)
    if untagged:
        warn(f"{manifest.path}: skipping {len(untagged)} images without tags (first: {untagged[0].id}); "
             "--strict refuses them")
    records = [r for r in manifest.images if r.tags]
    if not records:
        raise InputError("no image has tags: nothing to train on", path=manifest.path)
    return records


@command("train")
@click.argument("manifest", type=click.Path(dir_okay=False))
@checkpoint_output_option("classifier")
@click.option("--val", "val_manifest", type=click.Path(dir_okay=False), default=None,
              help="Validation manifest: its classification mAP is logged after every epoch.")
@click.option("--recipe", type=click.Choice(sorted(RECIPES)), default="irn", show_default=True,
              help="Option defaults: `irn` (the defaults shown: IRN's ResNet-50 recipe, for real images with "
                   "--weights imagenet) or `toy` (a tiny residual CNN from scratch on `ws toy` images on the "
                   "CPU, 64 px images: --arch tiny --stride 8 --optimizer adam --lr 0.003 --head-lr-mult 1 "
                   "--weight-decay 0 --batch-size 16 --crop 64 --scales 1,1 --epochs 8). Options given explicitly win.")
@click.option("--arch", type=click.Choice(ARCH_CHOICES), default="resnet50", show_default=True,
              help="Backbone (torchvision; `tiny` is a small CNN for CPU smoke runs). IRN and LIID use "
                   "ResNet-50, Fan et al. VGG-16 or ResNet-101.")
@click.option("--stride", type=click.Choice(["16", "8"]), default="16", show_default=True,
              help="Output stride: the last stage (16) or last two stages (8) are dilated instead of "
                   "strided (IRN: 16).")
@click.option("--weights", default="none", show_default=True,
              help="Backbone initialisation: `none` (random), `imagenet` (torchvision's weights enum; "
                   "needs internet once), or a PATH to a torchvision-style state dict (.pth) or a ws "
                   "checkpoint, read with torch.load(weights_only=True).")
@click.option("--gray", is_flag=True, help="Train on gray images (Sun et al. Sect. 3.3: the gray-image "
                                             "classifier whose cues complement the colour one's).")
@click.option("--epochs", type=click.IntRange(1), default=5, show_default=True, help="Epochs (IRN: 5).")
@click.option(
    "--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Images per batch (IRN: 16).")
@optimizer_options("IRN", lr=0.1, head_lr_mult=10.0, momentum=0.0, weight_decay=1e-4,
                   adam_help="for training from scratch, e.g. --arch tiny; both follow the poly schedule")
@click.option("--crop", type=click.IntRange(16), default=512, show_default=True,
              help="Side of the random square crop, zero-padded when the image is smaller (IRN: 512; "
                   "use ~the image size for small images).")
@click.option("--scales", "scale_range", default="0.5,1.5", show_default=True,
              help="MIN,MAX of the random rescaling factor (IRN: 0.5,1.5).")
@click.option("--strict", is_flag=True, help="Refuse images without tags instead of skipping them.")
@training_options()
def train(manifest, output, val_manifest, recipe, arch, stride, weights, gray, epochs, batch_size, lr,
          head_lr_mult, momentum, weight_decay, crop, scale_range, optimizer, strict, stop_after, device, workers,
          seed, force, resume):
    """Train the multi-label FCN classifier on MANIFEST's image-level tags.

    A backbone, a 1x1 convolution giving K score maps, global average pooling
    and a sigmoid give K independent class probabilities, trained with Fan et
    al.'s Eq. 1 (the mean of K binary cross-entropies). Images are randomly
    rescaled, flipped and cropped (IRN); SGD with a poly learning rate and a 10x
    rate on the head. One JSON line per epoch (loss, train mAP, val mAP) goes to
    NAME.log.jsonl beside the checkpoint. Runs under `torchrun` with
    DistributedDataParallel (NCCL on GPUs, gloo on CPUs).

    Real images: keep the default recipe (`irn`) with --weights imagenet (or
    a PATH to the ImageNet .pth on an offline machine). On `ws toy` data on a
    CPU: --recipe toy (a tiny residual CNN trained from scratch).

    \b
    Example:
      ws cam train voc_train.json --weights imagenet -o cls.pt
      ws toy data/camtoy --train 3000 --val 50 --size 64
      ws cam train data/camtoy/train.json --val data/camtoy/val.json \\
          --recipe toy --device cpu -o cls.pt
      ws cam train data/camtoy/train.json --recipe toy --gray -o cls_gray.pt
      torchrun --nproc_per_node 4 -m wstools cam train voc_train.json --weights imagenet -o cls.pt
    """
    v = _apply_recipe(recipe, {"arch": arch, "stride": stride, "weights": weights, "optimizer": optimizer,
                               "lr": lr, "head_lr_mult": head_lr_mult, "weight_decay": weight_decay,
                               "batch_size": batch_size, "crop": crop, "scale_range": scale_range,
                               "epochs": epochs})
    arch, stride, weights, optimizer, lr = v["arch"], v["stride"], v["weights"], v["optimizer"], v["lr"]
    head_lr_mult, weight_decay, batch_size = v["head_lr_mult"], v["weight_decay"], v["batch_size"]
    crop, scale_range, epochs = v["crop"], v["scale_range"], v["epochs"]
    if weights == "none" and arch != "tiny" and recipe == "irn":
        warn(f"training a randomly initialised {arch} with the irn recipe (made for ImageNet weights: "
             f"{optimizer} at lr {lr:g}); pass --weights imagenet, or --recipe toy --arch tiny for a small "
             "network from scratch")
    from ...cam.augment import normalize, random_scale_flip_crop, to_gray
    from ...cam.model import CamNet
    from ...cam.train import classifier_evaluator, classifier_optimizer, classifier_step, summarize_map
    from ...io.checkpoint import read_state_dict
    from ...io.dataset import load_manifest
    from ...io.torchdata import ManifestImages
    from ...nn.backbones import build_backbone, imagenet_state_dict, load_weights
    from ...train import poly_schedule

    lo, hi = (parse_floats(scale_range, "--scales") + [None])[:2]
    if hi is None or not 0 < lo <= hi:
        raise InputError(f"--scales {scale_range!r} must be MIN,MAX with 0 < MIN <= MAX")
    dev = resolve_device(device)
    stride = int(stride)
    m = load_manifest(manifest)
    records = _training_records(m, strict, "training")
    val = None
    if val_manifest:
        val = load_manifest(val_manifest)
        if val.classes != m.classes:
            raise InputError(f"class list {val.classes} differs from {m.classes} of {m.path}", path=val.path)
    args = {"manifest": str(manifest), "val": val_manifest, "arch": arch, "stride": stride, "weights": weights,
            "gray": gray, "epochs": epochs, "batch_size": batch_size, "lr": lr, "head_lr_mult": head_lr_mult,
            "momentum": momentum, "weight_decay": weight_decay, "crop": crop, "scales": [lo, hi], "optimizer": optimizer,
            "strict": strict, "seed": seed}
    run = TrainingRun(output, args, kind="classifier", classes=m.classes, force=force, resume=resume, epochs=epochs)
    epoch_box = run.epoch_box

    def build(fresh):
        backbone = build_backbone(arch, stride)
        if fresh and weights != "none":
            state = imagenet_state_dict(arch) if weights == "imagenet" else read_state_dict(weights)
            load_weights(backbone, state, source=weights)
        return CamNet(backbone, m.num_classes)

    def train_transform(img, index):
        rng = np.random.default_rng([seed, epoch_box[0], index])
        return random_scale_flip_crop(to_gray(img) if gray else img, rng, crop, (lo, hi))

    def eval_transform(img, index):
        return normalize(to_gray(img) if gray else img)

    def setup(model, dev, world):
        val_set = ManifestImages(val, val.images, eval_transform) if val is not None else None
        return {"train_set": ManifestImages(m, records, train_transform), "epochs": epochs, "batch_size": batch_size,
                "step": classifier_step(dev), "summarize": summarize_map, "schedule": poly_schedule(0.9),
                "optimizer": classifier_optimizer(model, optimizer, lr, momentum, weight_decay, head_lr_mult),
                "evaluate": classifier_evaluator(val_set, dev, batch_size, workers, progress)
                if val_set is not None else None,
                "images": (m, records),
                "log": f"training {arch} (stride {stride}{', gray' if gray else ''}) on {len(records)} images, "
                       f"{m.num_classes} classes, device {dev}",
                "summary": {"arch": arch, "gray": gray, "images": len(records),
                            "skipped_untagged": len(m.images) - len(records)}}

    run_training(run, build, setup, device=dev, seed=seed, workers=workers, stop_after=stop_after,
                 base={"arch": arch, "stride": stride, "classes": list(m.classes), "gray": gray})
