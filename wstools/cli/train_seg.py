"""``ws train-seg``: the fully supervised network trained on pseudo labels (semantic DeepLab or
instance Mask R-CNN), on the shared training loop."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import click
import numpy as np

from ..errors import InputError, WsRuntimeError
from .common import (Timer, command, device_option, emit, force_option, log, output_option, parse_floats, progress,
                     resolve_device, seed_option, threads_option, workers_option)

SEMANTIC_ARCHS = ["tiny", "tiny_unet", "deeplabv3_resnet50", "deeplabv3_resnet101"]
INSTANCE_ARCHS = ["maskrcnn_tiny", "contour_tiny", "maskrcnn_resnet50_fpn"]


# label sources ----------------------------------------------------------------

class LabelSource:
    """Per-image label maps from a ``labels`` store or a folder of ``<id>.png``; opened lazily in
    each process (DataLoader workers get their own HDF5 handle). ``read(rec) -> (H, W) uint8``."""

    def __init__(self, path, manifest, records):
        from ..io.store import open_store

        self.path = Path(path)
        self.is_dir = self.path.is_dir()
        self._h5, self._pid = None, None
        if self.is_dir:
            missing = [r.id for r in records if not (self.path / f"{r.id}.png").exists()]
            if missing:
                raise InputError(f"lacks {len(missing)} label maps of {manifest.path} (expected <id>.png)",
                                 path=self.path, image_id=missing[0])
        else:
            with open_store(self.path, "labels") as s:
                s.check_classes(manifest.classes, manifest.path)
                have = set(s.image_ids())
                missing = [r.id for r in records if r.id not in have]
                if missing:
                    raise InputError(f"lacks {len(missing)} images of {manifest.path}", path=self.path,
                                     image_id=missing[0])
                self.uid = s.uid

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_h5"], d["_pid"] = None, None
        return d

    def read(self, rec) -> np.ndarray:
        from ..io.images import read_label_png
        from ..io.labels import read_labels_group
        from ..io.store import open_store

        if self.is_dir:
            return read_label_png(self.path / f"{rec.id}.png", rec.id)
        if self._h5 is None or self._pid != os.getpid():
            self._h5, self._pid = open_store(self.path, "labels"), os.getpid()
        return read_labels_group(self._h5.image(rec.id))

    def where(self, rec):
        return self.path / f"{rec.id}.png" if self.is_dir else self.path


class SemanticLoader:
    """``load(i) -> (image, labels, tags)`` of a training record (picklable for workers)."""

    def __init__(self, manifest, records, source: LabelSource):
        self.manifest, self.records, self.source = manifest, records, source

    def __call__(self, i):
        from ..seg.data import check_label_map

        rec = self.records[i]
        img = self.manifest.read_image(rec)
        lab = check_label_map(self.source.read(rec), img.shape, self.manifest.num_classes,
                              path=self.source.where(rec), image_id=rec.id)
        return img, lab, self.manifest.tag_vector(rec)


def read_coco_training(path, manifest):
    """A ``ws export-coco`` (COCO instances) JSON -> ``{record index: [(label, rle dict), ...]}``
    over the manifest's records, crowd regions left out. Images are matched as
    :func:`wstools.io.coco.read_instances` does (``ws_id``, else ``str(id)``, else file name).
    Refuses categories unknown to the manifest or named otherwise, and images it lacks."""
    from ..io.coco import read_instances, read_json

    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("images"), list):
        raise InputError("a COCO instances file is a JSON object with images, annotations and categories", path=path)
    cat_to_label = {int(c): i + 1 for i, c in enumerate(manifest.category_ids())}
    for c in data.get("categories", []):
        cid = c.get("id") if isinstance(c, dict) else None
        if cid not in cat_to_label:
            raise InputError(f"category {cid!r} ({c.get('name') if isinstance(c, dict) else c!r}) is unknown to "
                             f"{manifest.path} (its category ids: {sorted(cat_to_label)})", path=path)
        name = c.get("name")
        if name is not None and name != manifest.classes[cat_to_label[cid] - 1]:
            raise InputError(f"category {cid} is named {name!r}, {manifest.path} calls it "
                             f"{manifest.classes[cat_to_label[cid] - 1]!r}", path=path)
    index = {r.id: i for i, r in enumerate(manifest.images)}
    return {index[image_id]: [(label, rle) for label, rle, _ in dets]
            for image_id, dets in read_instances(path, manifest, data, crowd=False).items()}


class InstanceLoader:
    def __init__(self, manifest, records, anns, path):
        self.manifest, self.records, self.anns, self.path = manifest, records, anns, path

    def __call__(self, i):
        from .. import masks as codec

        rec = self.records[i]
        img = self.manifest.read_image(rec)
        h, w = img.shape[:2]
        if (h, w) != (rec.height, rec.width):
            raise InputError(f"image is {h}x{w}, the manifest says {rec.height}x{rec.width}", path=self.path,
                             image_id=rec.id)
        anns = self.anns[i]
        m = codec.decode([rle["counts"] for _, rle in anns], h, w) if anns else np.zeros((0, h, w), bool)
        return img, m, np.asarray([label for label, _ in anns], np.int64)


def _rng_of(seed, epoch_box):
    return lambda i: np.random.default_rng([seed, epoch_box[0], i])


# evaluation -------------------------------------------------------------------

def semantic_evaluator(val, device, batch_size):
    """``evaluate(model, rank, world) -> {val_miou, val_pixel_accuracy}`` on the val manifest
    (single scale, no flip; :func:`wstools.seg.semantic.semantic_confusion`)."""
    from ..eval.semantic import scores
    from ..io.dataset import load_semantic
    from ..seg.semantic import semantic_confusion
    from ..train.loop import gather

    def evaluate(model, rank, world):
        samples = ((val.read_image(rec), load_semantic(val, rec)) for rec in val.images[rank::world])
        conf = sum(gather([semantic_confusion(model, samples, val.num_classes, device)], world))
        s = scores(conf, val.classes)
        return {"val_miou": s["miou"], "val_pixel_accuracy": s["pixel_accuracy"]}
    return evaluate


def instance_evaluator(val, device, mask_threshold=0.5):
    """``evaluate(model, rank, world) -> {val_ap, val_ap50, val_map_r50}`` (COCO mask AP with
    :class:`wstools.eval.instance.InstanceEvaluator`, as ``ws eval instance``) on rank 0."""
    from ..eval.instance import InstanceEvaluator
    from ..io.dataset import load_instances
    from ..seg.instance import detect

    def _coco_order(ids):   # the order pycocotools visits images (numeric when all ids are)
        return sorted(ids, key=int) if ids and all(i.isdigit() for i in ids) else sorted(ids)

    def evaluate(model, rank, world):
        if rank != 0:
            return {}
        ev = InstanceEvaluator(range(1, val.num_classes + 1))
        records = val.by_id()
        for image_id in _coco_order(val.ids()):
            rec = records[image_id]
            masks, labels, scores = detect(model, val.read_image(rec), device, mask_threshold)
            inst = load_instances(val, rec)
            ev.add(inst.counts, inst.labels, masks, labels, scores, gt_crowd=inst.iscrowd, height=rec.height,
                   width=rec.width)
        r = ev.result()
        return {"val_ap": r["coco"]["AP"], "val_ap50": r["coco"]["AP50"], "val_map_r50": r["map_r"].get("0.5")}
    return evaluate


# the command ------------------------------------------------------------------

@command("train-seg")
@click.argument("manifest", type=click.Path(dir_okay=False))
@output_option("Checkpoint to write (.pt, kind `segmentation`). Beside it: NAME.log.jsonl (one JSON line per "
               "epoch) and, while training, NAME.last.pt (for --resume).")
@click.option("--task", type=click.Choice(["semantic", "instance"]), default="semantic", show_default=True,
              help="semantic: DeepLab on label maps (--labels); instance: Mask R-CNN on a COCO JSON (--coco).")
@click.option("--labels", "labels_path", type=click.Path(), default=None,
              help="Semantic pseudo labels: a `labels` store (`ws grow ...`) or a folder of <id>.png label maps "
                   "(0..K, 255 = ignore). With --grow they are the seeds.")
@click.option("--coco", "coco_path", type=click.Path(dir_okay=False), default=None,
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
@click.option("--init", "init_path", type=click.Path(dir_okay=False), default=None,
              help="Initialise the backbone from a `ws cam train` classifier (Sun et al. Sect. 3.5: the "
                   "segmentation network starts from the colour classifier); its arch must match "
                   "(tiny <- tiny, deeplabv3_resnet50 / maskrcnn_resnet50_fpn <- resnet50, ...).")
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
@click.option("--theta-fg", type=click.FloatRange(0, 1), default=0.85, show_default=True,
              help="DSRG foreground growing threshold theta_f (Eq. 3).")
@click.option("--theta-bg", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="DSRG background growing threshold theta_b (Eq. 3).")
@click.option("--retrain", is_flag=True,
              help="DSRG's second stage (Table 2 '+Retrain'): after training, predict labels for the training set "
                   "(restricted to each image's tags; CRF-refined with --grow-crf) into NAME.stage1_labels.h5 and "
                   "train a fresh network on them with plain cross-entropy (DSRG Sect. 4.4: 'in a fully-supervised "
                   "way'; --loss, --boundary-weight, --grow apply to stage 1 only). The first network is kept as "
                   "NAME.stage1.pt.")
@click.option("--loss-at", type=click.Choice(["output", "input"]), default="output", show_default=True,
              help="Resolution of the semantic losses: the network's output (DSRG, SEC: labels subsampled) or "
                   "the input crop (logits upsampled; better for small images).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True, help="Epochs.")
@click.option("--batch-size", type=click.IntRange(1), default=20, show_default=True,
              help="Images per batch (DSRG: 20).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Base learning rate of the backbone (DSRG: 1e-3), poly-decayed (power 0.9) per iteration.")
@click.option("--head-lr-mult", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Learning-rate multiplier of the head (DeepLab / DSRG: 10).")
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="SGD momentum (DSRG: 0.9).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=5e-4, show_default=True,
              help="Weight decay (DSRG: 5e-4).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True,
              help="SGD (DSRG) or Adam (for networks trained from scratch, e.g. --arch tiny).")
@click.option("--crop", type=click.IntRange(16), default=321, show_default=True,
              help="Side of the random training crop, padded with ignore (DSRG: 321).")
@click.option("--scales", "scale_range", default="0.5,1.5", show_default=True,
              help="MIN,MAX of the random rescaling factor of a training image.")
@click.option("--min-size", type=click.IntRange(16), default=800, show_default=True,
              help="Instance: Mask R-CNN's short side (torchvision: 800).")
@click.option("--max-size", type=click.IntRange(16), default=1333, show_default=True,
              help="Instance: Mask R-CNN's long-side limit (torchvision: 1333).")
@click.option("--stop-after", type=click.IntRange(1), default=None,
              help="End after epoch N keeping NAME.last.pt; continue with --resume.")
@device_option
@threads_option
@workers_option
@seed_option
@force_option
@click.option("--resume", is_flag=True, help="Continue from NAME.last.pt with the same arguments.")
def train_seg(manifest, output, task, labels_path, coco_path, val_manifest, arch, stride, init_path, weights, loss,
              boundary_weight, boundary_stride, grow, grow_crf, theta_fg, theta_bg, retrain, loss_at, epochs, batch_size, lr, head_lr_mult,
              momentum, weight_decay, optimizer, crop, scale_range, min_size, max_size, stop_after, device, workers,
              seed, force, resume):
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
    import torch

    from ..io.dataset import load_manifest
    from ..train import close_distributed, init_distributed
    from ..train.loop import make_optimizer, poly_schedule
    from ..train.loop import fit as fit_loop
    from .training import TrainingRun

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
    if task == "instance" and (grow or boundary_weight > 0 or loss != "ce"):
        raise InputError("--grow, --boundary-weight and --loss are semantic options")
    dev = resolve_device(device)
    stride = int(stride)
    m = load_manifest(manifest)
    records = list(m.images)
    if not records:
        raise InputError("has no images", path=manifest)
    val = None
    if val_manifest:
        val = load_manifest(val_manifest)
        if val.classes != m.classes:
            raise InputError(f"class list {val.classes} differs from {m.classes} of {m.path}", path=val.path)
        if task == "semantic" and not val.has_semantic_gt():
            raise InputError("has no semantic ground truth for every image (needed by --val)", path=val.path)
        if task == "instance" and not val.has_instance_gt():
            raise InputError("has no instance ground truth for every image (needed by --val)", path=val.path)

    crf_fn = grow_fn = None
    if task == "semantic":
        source = LabelSource(labels_path, m, records)
        if boundary_weight > 0 or grow_crf:
            try:
                from ..grow.crf import dense_crf, require_crf
            except ImportError as e:
                raise WsRuntimeError(f"the dense CRF (wstools.grow.crf) is not available: {e}") from None
            require_crf()
            crf_fn = dense_crf
        if grow:
            try:
                from ..grow import seeded_region_growing
            except ImportError as e:
                raise WsRuntimeError(f"seeded region growing (wstools.grow) is not available: {e}") from None
            grow_fn = partial(seeded_region_growing, theta_fg=theta_fg, theta_bg=theta_bg)
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
    if retrain:
        from ..io.atomic import check_output

        check_output(output, force or resume)     # before stage 1, not after it

    def stage(output, source, labels_path, loss, boundary_weight, crf_fn, grow_fn, grow, grow_crf, dev, extra,
              quiet_summary=False):
        args = {"manifest": str(manifest), "task": task, "labels": labels_path, "coco": coco_path, "val": val_manifest,
                "arch": arch, "stride": stride, "init": init_path, "weights": weights, "loss": loss,
                "boundary_weight": boundary_weight, "boundary_stride": boundary_stride, "grow": grow, "grow_crf": grow_crf, "theta_fg": theta_fg,
                "theta_bg": theta_bg, "loss_at": loss_at, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                "head_lr_mult": head_lr_mult, "momentum": momentum, "weight_decay": weight_decay,
                "optimizer": optimizer, "crop": crop, "scales": [lo, hi], "min_size": min_size, "max_size": max_size,
                "retrain": retrain, "seed": seed}
        run = TrainingRun(output, args, kind="segmentation", classes=m.classes, force=force, resume=resume, epochs=epochs)

        torch.manual_seed(seed)
        model, base = _build(task, arch, stride, m, min_size, max_size)
        if run.resumed is None:
            _initialise(model, task, arch, init_path, weights)
        else:
            model.load_state_dict(run.state_dict)

        rank, world, dev = init_distributed(dev)
        run.rank = rank
        model.to(dev)
        epoch_box = [0]
        if task == "semantic":
            from ..seg.data import SegCrops, collate_crops
            from ..seg.semantic import semantic_step, summarize_labelled

            train_set = SegCrops(len(records), SemanticLoader(m, records, source), _rng_of(seed, epoch_box), crop,
                                 (lo, hi))
            step = semantic_step(dev, loss=loss, boundary_weight=boundary_weight, crf=crf_fn, grow=grow_fn,
                                 grow_crf=grow_crf, at=loss_at, boundary_stride=boundary_stride)
            collate, summarize = collate_crops, summarize_labelled
            groups = model.param_groups(lr, head_lr_mult, weight_decay)
            evaluate = semantic_evaluator(val, dev, batch_size) if val is not None else None
        else:
            from ..seg.instance import InstanceImages, collate_instances, instance_step, summarize_losses

            train_set = InstanceImages(len(records), InstanceLoader(m, records, anns, coco_path),
                                       _rng_of(seed, epoch_box))
            step, collate, summarize = instance_step(dev), collate_instances, summarize_losses
            groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr, "initial_lr": lr,
                       "weight_decay": weight_decay}]
            evaluate = instance_evaluator(val, dev) if val is not None else None
        opt = make_optimizer(groups, optimizer, lr, momentum, weight_decay)
        if run.optimizer_state is not None:
            opt.load_state_dict(run.optimizer_state)
        if rank == 0:
            log(f"training {arch} ({task}) on {len(records)} images, {m.num_classes} classes, device {dev}"
                + (f", {world} processes" if world > 1 else ""))
        try:
            with run, Timer() as t:
                record = fit_loop(model, train_set, step=step, optimizer=opt, epochs=epochs, batch_size=batch_size,
                                  schedule=poly_schedule(0.9), collate=collate, summarize=summarize, evaluate=evaluate,
                                  device=dev, workers=workers, seed=seed, start_epoch=run.start_epoch,
                                  stop_after=stop_after, set_epoch=lambda e: epoch_box.__setitem__(0, e),
                                  on_epoch=run.on_epoch(base), progress=progress, rank=rank, world=world,
                                  find_unused_parameters=task == "instance")
            stopped = stop_after is not None and stop_after < epochs
            summary = {"task": task, "arch": arch, "images": len(records), "epochs": epochs, "log": str(run.log_path),
                       "resumed_from_epoch": run.start_epoch, "processes": world, "device": dev,
                       "seconds": round(t.seconds, 3), **extra,
                       "images_per_second": round(len(records) * (epochs - run.start_epoch if not stopped else
                                                                  stop_after - run.start_epoch) / max(t.seconds, 1e-9), 3)}
            if rank == 0 and stopped:
                if retrain:
                    raise InputError("--stop-after with --retrain: stop and resume the stages separately")
                emit({"output": None, "resume_file": str(run.last_path), "stopped_after_epoch": stop_after,
                      "metrics": record, **summary})
            elif rank == 0:
                run.finish(base, model, epochs, record)
                if not quiet_summary:
                    emit({"output": str(output), "metrics": record or (run.resumed or {}).get("metrics", {}),
                          **summary})
        finally:
            close_distributed()

    if not retrain:
        return stage(output, source if task == "semantic" else None, labels_path, loss, boundary_weight, crf_fn,
                     grow_fn, grow, grow_crf, dev, {})
    # DSRG's retraining (Sect. 4.4 "+Retrain"): predict labels for the training set with the
    # first network (restricted to each image's tags, CRF-refined with --grow-crf), then
    # train a fresh network on them with plain cross-entropy: no boundary loss, no CRF, no growing
    # (DSRG Sect. 4.4: "in a fully-supervised way").
    out = Path(output)
    stem = out.with_suffix("") if out.suffix else out
    first, first_labels = stem.with_name(stem.name + ".stage1.pt"), stem.with_name(stem.name + ".stage1_labels.h5")
    if not (resume and first.exists()):
        stage(first, source, labels_path, loss, boundary_weight, crf_fn, grow_fn, grow, grow_crf, dev, {"stage": 1},
              quiet_summary=True)
    if not (resume and first_labels.exists()):
        _predict_training_labels(first, m, records, first_labels, resolve_device(device), crf_fn if grow_crf else None)
    return stage(output, LabelSource(first_labels, m, records), str(first_labels), "ce", 0.0, None, None, False, False,
                 dev, {"stage": 2, "stage1": str(first), "stage1_labels": str(first_labels)})


def _predict_training_labels(model_path, m, records, out, device, crf):
    """Labels of the training images by the stage-1 network: softmax restricted to background and
    the image's tags (absent classes zeroed), optionally CRF-refined, argmax; a `labels` store."""
    import torch

    from ..cam.augment import normalize
    from ..io.checkpoint import load_checkpoint
    from ..io.labels import write_labels_group
    from ..io.store import create_store
    from ..seg.models import build_semantic
    from ..seg.semantic import predict_probs, present_labels, refine, restrict_to_present

    ck = load_checkpoint(model_path, "segmentation")
    model = build_semantic(ck["arch"], m.num_classes + 1, int(ck.get("stride", 8)))
    model.load_state_dict(ck["state_dict"])
    model.to(device).eval()
    with create_store(out, "labels", classes=m.classes, params={"model": str(model_path), "tags": True,
                                                                 "crf": crf is not None},
                      dataset=m, force=True) as store:
        for rec in progress(records, desc="stage-1 labels"):
            img = m.read_image(rec)
            p = predict_probs(model, torch.from_numpy(normalize(img))[None].to(device))[0].cpu().numpy()
            p = refine(restrict_to_present(p, present_labels(m.tag_vector(rec))), img, crf=crf)
            with store.write_image(rec.id) as g:
                write_labels_group(g, p.argmax(0).astype(np.uint8))


def _build(task, arch, stride, m, min_size, max_size):
    from ..seg.models import build_instance, build_semantic

    k1 = m.num_classes + 1
    if task == "semantic":
        model = build_semantic(arch, k1, stride)
        base = {"arch": arch, "task": task, "stride": model.stride, "classes": list(m.classes),
                "category_ids": m.category_ids()}
    else:
        model = build_instance(arch, k1, min_size, max_size)
        base = {"arch": arch, "task": task, "classes": list(m.classes), "min_size": min_size,
                "max_size": max_size, "category_ids": m.category_ids()}
    return model, base


def _initialise(model, task, arch, init_path, weights):
    """--init (a classifier checkpoint's backbone) or --weights (imagenet / a state dict)."""
    from ..io.checkpoint import load_checkpoint, read_state_dict
    from ..nn.backbones import imagenet_state_dict
    from ..seg.models import BACKBONE_OF, load_backbone

    want = BACKBONE_OF[arch]
    target = model if task == "semantic" or arch == "contour_tiny" else _Body(model)
    if init_path:
        ck = load_checkpoint(init_path, "classifier")
        if ck["arch"] != want:
            raise InputError(f"is a {ck['arch']} classifier; --arch {arch} needs a {want} one", path=init_path)
        state = {k[len("backbone."):]: v for k, v in ck["state_dict"].items() if k.startswith("backbone.")}
        load_backbone(target, state, init_path)
    elif weights != "none":
        if want == "tiny":
            raise InputError(f"there are no pretrained weights for --arch {arch}; use --weights none or --init")
        state = imagenet_state_dict(want) if weights == "imagenet" else read_state_dict(weights)
        load_backbone(target, state, weights)


class _Body:
    """Mask R-CNN seen by :func:`load_backbone`: ``backbone`` = the ResNet / tiny body."""

    def __init__(self, model):
        self.arch = "mask r-cnn"
        self.backbone = model.backbone.body
