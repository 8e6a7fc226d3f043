"""``ws train-seg``: the fully supervised network trained on pseudo labels (semantic DeepLab or
instance Mask R-CNN), on the shared training loop. The label sources are read by
:mod:`wstools.io.seg_training`, the network, optimizer, step and evaluators come from
:mod:`wstools.seg.training`."""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from ..io.seg_training import (InstanceLoader, LabelSource, SemanticLoader, load_val_manifest, read_coco_training,
                               write_stage1_labels)
from ..io.seg_training import initialise_backbone as _initialise
from .common import command, parse_floats, path_option, progress, resolve_device
from .grow.common import growing_threshold_options
from .training import TrainingRun, run_training
from .training_options import checkpoint_output_option, optimizer_options, training_options


@command("train-seg")
@click.argument("manifest", type=click.Path(dir_okay=False))
@checkpoint_output_option("segmentation")
@click.option("--task", type=click.Choice(["semantic", "instance"]), default="semantic", show_default=True,
              help="semantic: DeepLab on label maps (--labels); instance: Mask R-CNN on a COCO JSON (--coco).")
@click.option("--labels", "labels_path", type=click.Path(), default=None,
              help="Semantic pseudo labels: a `labels` store (`ws grow ...`) or a folder of <id>.png label maps "
                   "(0..K, 255 = ignore). With --grow they are the seeds.")
@path_option("--coco", required=False,
              help="Instance pseudo labels: a COCO instances JSON (`ws export-coco`); category ids must be "
                   "the manifest's.")
@click.option("--val", "val_manifest", type=click.Path(dir_okay=False), default=None,
              help="Validation manifest with ground truth: its mIoU (semantic) or COCO mask AP / AP50 (instance) is "
                   "logged after every epoch.")
@click.option("--arch", default=None,
              help="Network. semantic: tiny | tiny_unet | deeplabv3_resnet50 | deeplabv3_resnet101 (default "
                   "deeplabv3_resnet101, DeepLab as in DSRG / Sun et al.; tiny: a small CPU network; tiny_unet: "
                   "the tiny backbone with a U-Net decoder and full-resolution skips, logits at the input "
                   "resolution); instance: maskrcnn_tiny | "
                   "contour_tiny | maskrcnn_resnet50_fpn (default; LIID). contour_tiny: tiny_unet with an "
                   "instance-contour channel (DCAN, Chen et al. 2016), instances = connected components of each "
                   "class's region less its contours; a proposal-free stand-in for Mask R-CNN on toy data.")
@click.option("--stride", type=click.Choice(["8", "16"]), default="8", show_default=True,
              help="Output stride of the tiny backbone (DeepLabv3 is always 8; tiny_unet's logits are at the "
                   "input resolution whatever the backbone's stride).")
@path_option("--init", required=False,
              help="Initialise the backbone from a `ws cam train` classifier (Sun et al. Sect. 3.5: the "
                   "segmentation network starts from the colour classifier); its arch must match "
                   "(tiny <- tiny, deeplabv3_resnet50 / maskrcnn_resnet50_fpn <- resnet50, ...). Or the whole "
                   "network from a `ws train-seg` checkpoint of the same task, arch, stride and classes (to "
                   "continue from it: DSRG's stage 2 run apart from --retrain starts from its stage 1).")
@click.option("--weights", default="none", show_default=True,
              help="Backbone initialisation when --init is not given: none, imagenet (torchvision's enum) or "
                   "a PATH to a torchvision-style state dict.")
@click.option("--loss", type=click.Choice(["ce", "balanced-seed", "seed"]), default="ce", show_default=True,
              help="ce: cross-entropy on the labels, 255 ignored; balanced-seed: DSRG Eq. 1 (foreground and "
                   "background seeds normalised separately); seed: SEC's seeding loss (Sun et al. Eq. 3).")
@click.option("--boundary-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Weight of the constrain-to-boundary loss (SEC; Sun et al. Eq. 4; DSRG Eq. 2 uses 1): KL "
                   "from the softmax to its dense CRF. 0 = off. Needs the [crf] extra.")
@click.option("--boundary-stride", type=click.IntRange(1), default=1, show_default=True,
              help="Compute the boundary loss (and its dense CRF, once per image and step) on the logits "
                   "average-pooled by this factor. 1 = at the loss resolution (--loss-at); DSRG / SEC have it "
                   "at DeepLab's output stride 8. With --arch tiny_unet (logits at the input resolution) a "
                   "full-resolution CRF per step costs more than the network's step on the CPU; 4 keeps it cheap.")
@click.option("--grow", is_flag=True,
              help="DSRG dynamic supervision (Sect. 3.3): grow the original seeds on the current softmax "
                   "after every forward pass and train on the grown labels.")
@click.option("--grow-crf", is_flag=True, help="Grow on the CRF-refined softmax (needs the [crf] extra).")
@growing_threshold_options
@click.option("--retrain", is_flag=True,
              help="DSRG's second stage (Table 2 '+Retrain'): after training, predict labels for the training set "
                   "(restricted to each image's tags; CRF-refined with --grow-crf) into NAME.stage1_labels.h5 and "
                   "train on them for another round with --retrain-loss, from --retrain-init (DSRG Sect. 4.4: 'in "
                   "a fully-supervised way'; --loss, --boundary-weight, --grow apply to stage 1 only). The first "
                   "network is kept as NAME.stage1.pt.")
@click.option("--retrain-loss", type=click.Choice(["ce", "balanced-seed"]),
              help="The loss of --retrain's second stage [default: ce]. ce: softmax cross-entropy, as DSRG's "
                   "DeepLab trains 'in a fully-supervised way' (Sect. 4.4; the released SoftmaxWithLoss); "
                   "balanced-seed: DSRG Eq. 1 on the dense stage-1 labels (foreground and background pixels "
                   "normalised separately), as examples.sh's fully supervised reference trains on ws toy's GT "
                   "maps, and examples.sh's DSRG stage 2 there: on 400-image toy val sets it beat ce beyond "
                   "the seeds' spread (README, Results of the recipes).")
@click.option("--retrain-init", type=click.Choice(["stage1", "init"]),
              help="Where --retrain's second stage starts [default: stage1]. stage1: the stage-1 network's "
                   "weights, as DSRG's released code retrains (run-s.sh: train step 2 with --weights model-s, the "
                   "stage-1 model; the paper's 'training the segmentation network for another round', Sect. "
                   "4.4, does not say); init: a fresh network from --init / --weights, as stage 1 started.")
@click.option("--loss-at", type=click.Choice(["output", "input"]), default="output", show_default=True,
              help="Resolution of the semantic losses: the network's output (DSRG, SEC: labels subsampled) or "
                   "the input crop (logits upsampled; better for small images).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True, help="Epochs.")
@click.option("--batch-size", type=click.IntRange(1), default=20, show_default=True,
              help="Images per batch (DSRG: 20).")
@optimizer_options("DSRG", lr=1e-3, head_lr_mult=10.0, momentum=0.9, weight_decay=5e-4)
@click.option("--crop", type=click.IntRange(16), default=321, show_default=True,
              help="Side of the random training crop, padded with ignore (DSRG: 321).")
@click.option("--scales", "scale_range", default="0.5,1.5", show_default=True,
              help="MIN,MAX of the random rescaling factor of a training image.")
@click.option("--augment", multiple=True, type=click.Choice(["rot90", "channels"]),  # seg.data.AUGMENTATIONS
              help="Augmentation beyond the papers' scale, flip and crop (repeat for both; not in DSRG / Sun et "
                   "al.): rot90 = a random multiple of 90 degrees, for data without an up direction (ws toy; not "
                   "photographs); channels = a random RGB channel permutation, where colour does not identify a class.")
@click.option("--min-size", type=click.IntRange(16), default=800, show_default=True,
              help="Instance: Mask R-CNN's short side (torchvision: 800).")
@click.option("--max-size", type=click.IntRange(16), default=1333, show_default=True,
              help="Instance: Mask R-CNN's long-side limit (torchvision: 1333).")
@training_options()
def train_seg(manifest, output, task, labels_path, coco_path, val_manifest, arch, stride, init_path, weights, loss,
              boundary_weight, boundary_stride, grow, grow_crf, theta_fg, theta_bg, retrain, retrain_loss,
              retrain_init, loss_at, epochs, batch_size, lr, head_lr_mult, momentum, weight_decay, optimizer, crop,
              scale_range, augment, min_size, max_size, stop_after, device, workers, seed, force, resume):
    """Train a segmentation network on MANIFEST's images and pseudo labels.

    Semantic (the last step of DSRG and Sun et al.): DeepLabv3 (or a tiny CPU
    network) on a `labels` store or PNG folder, with cross-entropy (255
    ignored), DSRG's balanced seeding loss and/or the constrain-to-boundary
    loss; --grow adds DSRG's dynamic supervision (seeded region growing on the
    network's own softmax every step, theta_f 0.85, theta_b 0.99). No
    classification loss (Sun et al. Sect. 3.4 drop it).

    Instance (LIID): torchvision Mask R-CNN on a COCO instances JSON.

    One JSON line per epoch goes to NAME.log.jsonl; NAME.last.pt is written
    every epoch for --resume (refused, naming the flags, if they differ). Runs
    under `torchrun` with DistributedDataParallel.

    \b
    Example:
      ws train-seg toy/train.json --labels grown.h5 --arch tiny --optimizer adam \\
          --lr 0.002 --crop 96 --scales 1,1 --loss-at input --epochs 10 -o seg.pt
      ws train-seg voc_train.json --labels seeds.h5 --loss balanced-seed --grow \\
          --boundary-weight 1 --init cls.pt --arch deeplabv3_resnet50 -o dsrg.pt
      ws train-seg toy/train.json --task instance --coco pseudo.json \\
          --arch maskrcnn_tiny --min-size 96 --max-size 96 -o mrcnn.pt
    """
    from ..io.dataset import load_manifest
    from ..seg.models import INSTANCE_ARCHS, SEMANTIC_ARCHS

    lo, hi = (parse_floats(scale_range, "--scales") + [None])[:2]
    if hi is None or not 0 < lo <= hi:
        raise InputError(f"--scales {scale_range!r} must be MIN,MAX with 0 < MIN <= MAX")
    archs = SEMANTIC_ARCHS if task == "semantic" else INSTANCE_ARCHS
    arch = arch or ("deeplabv3_resnet101" if task == "semantic" else "maskrcnn_resnet50_fpn")
    if arch not in archs:
        raise InputError(f"--arch {arch} is not a {task} network (choose from {', '.join(archs)})")
    if arch.startswith("deeplabv3") and batch_size < 2:
        raise InputError("--batch-size must be at least 2 for DeepLabv3 (the BatchNorm of ASPP's image pooling "
                         "needs two images)")
    if task == "semantic" and not labels_path:
        raise InputError("--task semantic needs --labels (a labels store or a folder of <id>.png)")
    if task == "instance" and not coco_path:
        raise InputError("--task instance needs --coco (a COCO instances JSON, e.g. from `ws export-coco`)")
    if task == "instance" and (grow or boundary_weight > 0 or loss != "ce" or augment):
        raise InputError("--grow, --boundary-weight, --loss and --augment are semantic options")
    dev = resolve_device(device)
    m = load_manifest(manifest)
    records = list(m.images)
    if not records:
        raise InputError("has no images", path=manifest)
    val = load_val_manifest(val_manifest, m, task)

    crf_fn = grow_fn = source = anns = None
    if task == "semantic":
        from ..seg.training import crf_and_growing

        source = LabelSource(labels_path, m, records)
        crf_fn, grow_fn = crf_and_growing(boundary_weight > 0 or grow_crf, grow, theta_fg, theta_bg)
    else:
        anns = read_coco_training(coco_path, m)
        records = [r for i, r in enumerate(m.images) if i in anns]
        anns = [anns[i] for i in range(len(m.images)) if i in anns]
        if not records:
            raise InputError("has no image of the manifest", path=coco_path)

    if retrain and task != "semantic":
        raise InputError("--retrain is DSRG's second semantic stage; it does not apply to --task instance")
    if retrain and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("--retrain does not run under torchrun: run the stages as train-seg, predict --probs / "
                         "labels, train-seg")
    if retrain and stop_after is not None and stop_after < epochs:
        raise InputError("--stop-after with --retrain: stop and resume the stages separately")
    if retrain_loss is not None and not retrain:
        raise InputError("--retrain-loss is the loss of --retrain's second stage: give --retrain, or --loss for "
                         "a single stage")
    if retrain_init is not None and not retrain:
        raise InputError("--retrain-init is where --retrain's second stage starts: give --retrain, or --init / "
                         "--weights for a single stage")
    retrain_loss, retrain_init = retrain_loss or "ce", retrain_init or "stage1"
    if retrain:
        from ..io.atomic import check_output

        check_output(output, force or resume)     # before stage 1, not after it

    args = {"manifest": str(manifest), "task": task, "coco": coco_path, "val": val_manifest, "arch": arch,
            "stride": int(stride), "init": init_path, "weights": weights, "boundary_stride": boundary_stride,
            "theta_fg": theta_fg, "theta_bg": theta_bg, "loss_at": loss_at, "epochs": epochs,
            "batch_size": batch_size, "lr": lr, "head_lr_mult": head_lr_mult, "momentum": momentum,
            "weight_decay": weight_decay, "optimizer": optimizer, "crop": crop, "scales": [lo, hi],
            "augment": sorted(set(augment)),
            "min_size": min_size, "max_size": max_size, "retrain": retrain, "seed": seed}

    def stage(out, source, labels_path, losses, extra, quiet=False, start=None):
        """One training run; ``losses``: :func:`wstools.seg.semantic.semantic_step`'s loss arguments;
        ``start``: a segmentation checkpoint whose weights the network starts from (else --init / --weights)."""
        from ..io.seg_training import instance_samples, semantic_samples
        from ..seg.data import SegCrops
        from ..seg.instance import InstanceImages
        from ..seg.training import build_network, instance_evaluator, semantic_evaluator, training_plan

        run = TrainingRun(out, {**args, "labels": labels_path, "loss": losses["loss"], "grow_crf": losses["grow_crf"],
                                "boundary_weight": losses["boundary_weight"], "grow": losses["grow"] is not None,
                                "start": None if start is None else str(start)},
                          kind="segmentation", classes=m.classes, force=force, resume=resume, epochs=epochs)
        box, made = run.epoch_box, {}

        def build(fresh):
            model, made["base"] = build_network(task, arch, int(stride), m.classes, m.category_ids(), min_size,
                                                max_size)
            if fresh:   # a segmentation checkpoint as the start: every weight (initialise_backbone)
                _initialise(model, task, arch, start or init_path, weights, m.classes, int(stride))
            return model

        def setup(model, dev, world):
            def rng_of(i):
                return np.random.default_rng([seed, box[0], i])

            if task == "semantic":
                data = SegCrops(len(records), SemanticLoader(m, records, source), rng_of, crop, (lo, hi),
                                 augment=augment)
                evaluate = semantic_evaluator(semantic_samples(val), val.classes, dev) if val is not None else None
            else:
                data = InstanceImages(len(records), InstanceLoader(m, records, anns, coco_path), rng_of)
                evaluate = instance_evaluator(instance_samples(val), val.num_classes, dev) if val is not None else None
            return {**training_plan(task, model, dev, optimizer=optimizer, lr=lr, momentum=momentum,
                                    weight_decay=weight_decay, head_lr_mult=head_lr_mult, losses=losses, at=loss_at,
                                    boundary_stride=boundary_stride),
                    "train_set": data, "evaluate": evaluate, "epochs": epochs, "batch_size": batch_size,
                    "base": made["base"],
                    "images": (m, records),
                    "log": f"training {arch} ({task}) on {len(records)} images, {m.num_classes} classes, device {dev}",
                    "summary": lambda seconds, trained: {
                        "task": task, "arch": arch, "images": len(records), "device": dev, **extra,
                        "images_per_second": round(len(records) * trained / max(seconds, 1e-9), 3)}}

        run_training(run, build, setup, device=dev, seed=seed, workers=workers, stop_after=stop_after, base={},
                     emit_summary=not quiet)

    losses = {"loss": loss, "boundary_weight": boundary_weight, "crf": crf_fn, "grow": grow_fn, "grow_crf": grow_crf}
    if not retrain:
        return stage(output, source, labels_path, losses, {})
    # DSRG's retraining (Sect. 4.4 "+Retrain"): predict labels for the training set with the
    # first network (restricted to each image's tags, CRF-refined with --grow-crf), then
    # train on them "in a fully-supervised way" (DSRG Sect. 4.4): --retrain-loss, no boundary
    # loss, no CRF, no growing; from the stage-1 weights (the released run-s.sh) or --init.
    stem = Path(output).with_suffix("") if Path(output).suffix else Path(output)
    first, first_labels = stem.with_name(stem.name + ".stage1.pt"), stem.with_name(stem.name + ".stage1_labels.h5")
    if not (resume and first.exists()):
        stage(first, source, labels_path, losses, {"stage": 1}, quiet=True)
    if not (resume and first_labels.exists()):
        write_stage1_labels(first, m, records, first_labels, dev, crf_fn if grow_crf else None, progress)
    plain = {"loss": retrain_loss, "boundary_weight": 0.0, "crf": None, "grow": None, "grow_crf": False}
    return stage(output, LabelSource(first_labels, m, records), str(first_labels), plain,
                 {"stage": 2, "stage1": str(first), "stage1_labels": str(first_labels),
                  "retrain_init": retrain_init}, start=first if retrain_init == "stage1" else None)

