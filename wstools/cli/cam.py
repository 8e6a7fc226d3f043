"""``ws cam train|infer|import``: the multi-label classifier and its class activation maps."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from .common import (Timer, WsGroup, batch_size_option, command, device_option, threads_option, emit, force_option, log,
                     output_option, parse_floats, progress, resolve_device, resume_option, seed_option,
                     shard_option, warn, workers_option)

ARCH_CHOICES = ["tiny", "resnet18", "resnet50", "resnet101", "vgg16"]


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
    """


def _paths(output: Path):
    stem = output.with_suffix("") if output.suffix else output
    return stem.with_name(stem.name + ".log.jsonl"), stem.with_name(stem.name + ".last.pt")


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
@output_option("Checkpoint to write (.pt). Beside it: NAME.log.jsonl (one JSON line per epoch) and, "
               "while training, NAME.last.pt (the last epoch, for --resume).")
@click.option("--val", "val_manifest", type=click.Path(dir_okay=False), default=None,
              help="Validation manifest: its classification mAP is logged after every epoch.")
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
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.1, show_default=True,
              help="Base learning rate of the backbone, poly-decayed (power 0.9) per iteration (IRN: 0.1).")
@click.option("--head-lr-mult", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Learning-rate multiplier of the 1x1 classifier head (IRN: 10).")
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="SGD momentum (IRN: none).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="SGD weight decay (IRN: 1e-4).")
@click.option("--crop", type=click.IntRange(16), default=512, show_default=True,
              help="Side of the random square crop, zero-padded when the image is smaller (IRN: 512; "
                   "use ~the image size for small images).")
@click.option("--scales", "scale_range", default="0.5,1.5", show_default=True,
              help="MIN,MAX of the random rescaling factor (IRN: 0.5,1.5).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True,
              help="SGD (IRN, for ImageNet-initialised backbones) or Adam (for training from scratch, "
                   "e.g. --arch tiny); both follow the poly schedule.")
@click.option("--strict", is_flag=True, help="Refuse images without tags instead of skipping them.")
@click.option("--stop-after", type=click.IntRange(1), default=None,
              help="End this run after epoch N, keeping NAME.last.pt (e.g. to fit a job's time limit); "
                   "continue later with --resume.")
@device_option
@threads_option
@workers_option
@seed_option
@force_option
@click.option("--resume", is_flag=True, help="Continue from NAME.last.pt (the last finished epoch) with the "
                                              "same arguments.")
def train(manifest, output, val_manifest, arch, stride, weights, gray, epochs, batch_size, lr, head_lr_mult,
          momentum, weight_decay, crop, scale_range, optimizer, strict, stop_after, device, workers, seed, force,
          resume):
    """Train the multi-label FCN classifier on MANIFEST's image-level tags.

    A backbone, a 1x1 convolution giving K score maps, global average pooling
    and a sigmoid give K independent class probabilities, trained with Fan et
    al.'s Eq. 1 (the mean of K binary cross-entropies). Images are randomly
    rescaled, flipped and cropped (IRN); SGD with a poly learning rate and a 10x
    rate on the head. One JSON line per epoch (loss, train mAP, val mAP) goes to
    NAME.log.jsonl beside the checkpoint. Runs under `torchrun` with
    DistributedDataParallel (NCCL on GPUs, gloo on CPUs).

    \b
    Example:
      ws cam train data/toy/train.json --val data/toy/val.json --arch tiny \\
          --optimizer adam --lr 0.002 --head-lr-mult 1 --weight-decay 0 \\
          --crop 128 --scales 1,1 --epochs 10 -o cls.pt
      ws cam train data/toy/train.json --gray --arch tiny --optimizer adam \\
          --lr 0.002 --crop 128 --scales 1,1 -o cls_gray.pt
      torchrun --nproc_per_node 4 -m wstools cam train voc_train.json --weights imagenet -o cls.pt
    """
    import torch

    from ..cam.augment import normalize, random_scale_flip_crop, to_gray
    from ..cam.model import CamNet
    from ..cam.train import close_distributed, fit, init_distributed
    from ..io.checkpoint import load_checkpoint, read_state_dict, remove, save_checkpoint, save_resume
    from ..io.dataset import load_manifest
    from ..io.atomic import check_output
    from ..io.torchdata import ManifestImages
    from ..nn.backbones import build_backbone, imagenet_state_dict, load_weights

    output = Path(output)
    log_path, last_path = _paths(output)
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
    check_output(output, force or resume)
    args = {"manifest": str(manifest), "val": val_manifest, "arch": arch, "stride": stride, "weights": weights,
            "gray": gray, "epochs": epochs, "batch_size": batch_size, "lr": lr, "head_lr_mult": head_lr_mult,
            "momentum": momentum, "weight_decay": weight_decay, "crop": crop, "scales": [lo, hi], "optimizer": optimizer,
            "strict": strict, "seed": seed}

    start_epoch, opt_state, resumed = 0, None, None
    if resume and last_path.exists():
        resumed = load_checkpoint(last_path)
        old = {k: v for k, v in resumed.get("args", {}).items()}
        if old != args:
            diff = sorted(k for k in set(old) | set(args) if old.get(k) != args.get(k))
            raise InputError(f"cannot resume: arguments differ from the earlier run ({', '.join(diff)})",
                             path=last_path)
        if resumed["classes"] != m.classes:
            raise InputError(f"cannot resume: class list differs from {m.path}", path=last_path)
        start_epoch, opt_state = int(resumed["epoch"]), resumed.get("optimizer")
    elif resume:
        warn(f"{last_path} does not exist: starting from epoch 1")

    torch.manual_seed(seed)
    backbone = build_backbone(arch, stride)
    if resumed is None and weights != "none":
        state = imagenet_state_dict(arch) if weights == "imagenet" else read_state_dict(weights)
        load_weights(backbone, state, source=weights)
    model = CamNet(backbone, m.num_classes)
    if resumed is not None:
        model.load_state_dict(resumed["state_dict"])

    rank, world, dev = init_distributed(dev)
    model.to(dev)
    epoch_box = [0]

    def train_transform(img, index):
        rng = np.random.default_rng([seed, epoch_box[0], index])
        return random_scale_flip_crop(to_gray(img) if gray else img, rng, crop, (lo, hi))

    def eval_transform(img, index):
        return normalize(to_gray(img) if gray else img)

    train_set = ManifestImages(m, records, train_transform)
    val_set = ManifestImages(val, val.images, eval_transform) if val is not None else None
    base = {"arch": arch, "stride": stride, "classes": list(m.classes), "gray": gray, "args": args}

    if rank == 0:
        log_file = open(log_path, "a" if start_epoch > 0 else "w")

    def on_epoch(epoch, record, net, opt):
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        log(f"epoch {record['epoch']}/{epochs}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in record.items() if k != "epoch" and isinstance(v, float)))
        save_resume(last_path, {**base, "state_dict": net.state_dict(), "optimizer": opt.state_dict(),
                                "epoch": epoch + 1, "metrics": record})

    if rank == 0:
        log(f"training {arch} (stride {stride}{', gray' if gray else ''}) on {len(records)} images, "
            f"{m.num_classes} classes, device {dev}" + (f", {world} processes" if world > 1 else ""))
    try:
        with Timer() as t:
            record = fit(model, train_set, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                         momentum=momentum, stop_after=stop_after,
                         weight_decay=weight_decay, head_lr_mult=head_lr_mult, device=dev, workers=workers,
                         seed=seed, val_set=val_set, start_epoch=start_epoch, optimizer_state=opt_state,
                         set_epoch=lambda e: epoch_box.__setitem__(0, e), on_epoch=on_epoch,
                         progress=progress, rank=rank, world=world)
        stopped = stop_after is not None and stop_after < epochs
        if rank == 0 and stopped:
            emit({"output": None, "resume_file": str(last_path), "log": str(log_path), "arch": arch,
                  "gray": gray, "images": len(records), "epochs": epochs, "stopped_after_epoch": stop_after,
                  "resumed_from_epoch": start_epoch, "metrics": record, "seconds": round(t.seconds, 3)})
        elif rank == 0:
            if not record and resumed is not None:
                record = resumed.get("metrics", {})
            save_checkpoint(output, {**base, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                     "epoch": epochs, "metrics": record}, force=force or resume)
            remove(last_path)
            emit({"output": str(output), "log": str(log_path), "arch": arch, "gray": gray,
                  "images": len(records), "skipped_untagged": len(m.images) - len(records),
                  "epochs": epochs, "resumed_from_epoch": start_epoch, "processes": world,
                  "metrics": record, "seconds": round(t.seconds, 3)})
    finally:
        if rank == 0:
            log_file.close()
            if start_epoch == 0 and log_path.stat().st_size == 0:   # failed before the first epoch ended
                log_path.unlink()
        close_distributed()


@command("infer")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Classifier checkpoint written by `ws cam train`.")
@output_option("CAM store to write (.h5, kind `cams`).")
@click.option("--scales", default="1.0,0.5,1.5,2.0", show_default=True,
              help="Input scales whose CAMs are summed (IRN: 1.0,0.5,1.5,2.0).")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Add each scale's left-right flipped pass (IRN).")
@click.option("--classes-from", type=click.Choice(["tags", "predicted"]), default="tags", show_default=True,
              help="Which classes get CAMs: the image's tags (a training set) or the classes the classifier "
                   "predicts with probability >= --score-threshold (a test set; at least the top class).")
@click.option("--score-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Probability above which a class counts as predicted (with --classes-from predicted).")
@click.option("--subtract-others", is_flag=True,
              help="Subtract the other selected classes' normalised maps from each map, clip at 0 and "
                   "re-normalise (Sun et al. Sect. 3.2).")
@click.option("--background", type=click.Choice(["none", "features"]), default="none", show_default=True,
              help="Also store a background map: 1 - the normalised sum of the top two layers' feature "
                   "maps (Sun et al. Sect. 3.2; their background cue 'sum < 0.2' is background > 0.8).")
@batch_size_option
@device_option
@threads_option
@workers_option
@shard_option
@resume_option
@force_option
def infer(manifest, model_path, output, scales, flip, classes_from, score_threshold, subtract_others, background,
          batch_size, device, workers, shard, resume, force):
    """Class activation maps of every image of MANIFEST, written to a `cams` store.

    For each image: the classifier's probabilities for all K classes, and for
    the tagged (or predicted) classes their CAMs: ReLU of the score maps, summed
    over --scales and flips, upsampled to the full image size and divided by
    their maximum, stored as float16 in [0, 1]. Images are streamed and
    batched (equally sized neighbours share a batch); memory is bounded by a
    batch. Untagged images (with --classes-from tags) get no CAMs, only scores.

    \b
    Example:
      ws cam infer data/toy/train.json --model cls.pt -o cams.h5
      ws cam infer data/toy/val.json --model cls.pt --classes-from predicted \\
          --subtract-others --background features -o cams_val.h5
      ws info cams.h5
    """
    import torch

    from ..cam.augment import normalize, to_gray
    from ..cam.cams import background_from_features, finalize_cams, forward_cams, select_classes
    from ..cam.model import CamNet
    from ..cam.train import group_by_size
    from ..io.cams import write_cam_group
    from ..io.checkpoint import load_checkpoint
    from ..io.dataset import load_manifest
    from ..io.store import create_store, parse_shard, shard_items
    from ..io.torchdata import ManifestImages, collate_list, raise_errors
    from ..nn.backbones import build_backbone
    from torch.utils.data import DataLoader

    scale_list = parse_floats(scales, "--scales")
    if any(s <= 0 for s in scale_list):
        raise InputError(f"--scales {scales!r} must be positive")
    dev = resolve_device(device)
    sh = parse_shard(shard)
    m = load_manifest(manifest)
    ckpt = load_checkpoint(model_path)
    if list(ckpt["classes"]) != m.classes:
        raise InputError(f"checkpoint classes {list(ckpt['classes'])} differ from {m.classes} of {m.path}",
                         path=model_path)
    model = CamNet(build_backbone(ckpt["arch"], int(ckpt["stride"])), len(m.classes))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise InputError(f"state_dict does not fit arch {ckpt['arch']} ({str(e).splitlines()[0]})",
                         path=model_path) from None
    model.to(dev).eval()
    gray = bool(ckpt["gray"])
    records = shard_items(m.images, sh)
    params = {"model": str(model_path), "arch": ckpt["arch"], "gray": gray, "scales": scale_list, "flip": flip,
              "classes_from": classes_from, "score_threshold": score_threshold,
              "subtract_others": subtract_others, "background": background, "shard": shard}
    n_done = n_skipped = n_untagged = 0
    with Timer() as t, create_store(output, "cams", classes=m.classes, params=params, dataset=m,
                                    force=force, resume=resume) as store:
        todo = [r for r in records if not (resume and store.has_image(r.id))]
        n_skipped = len(records) - len(todo)
        ds = ManifestImages(m, todo, lambda img, i: normalize(to_gray(img) if gray else img))
        loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_list)
        bar = progress(total=len(todo), desc="cams")
        for items in loader:
            raise_errors(items)
            for run in group_by_size(items):
                x = torch.stack([it["image"] for it in run]).to(dev)
                maps, probs, feats = forward_cams(model, x, scale_list, flip, features=background == "features")
                probs_np = probs.cpu().numpy()
                for j, it in enumerate(run):
                    rec = todo[it["index"]]
                    tags = m.tag_labels(rec) if classes_from == "tags" else None
                    n_untagged += int(tags is not None and len(tags) == 0)
                    labels = select_classes(probs_np[j], tags, score_threshold)
                    c = finalize_cams(maps[j], labels, subtract_others).cpu().numpy()
                    bg = background_from_features(feats[j]).cpu().numpy() if feats is not None else None
                    with store.write_image(rec.id) as g:
                        write_cam_group(g, c, labels, probs_np[j], bg)
                    n_done += 1
                bar.update(len(run))
        bar.close()
    if n_untagged:
        warn(f"{n_untagged} images have no tags: stored without CAMs (use --classes-from predicted)")
    emit({"output": str(output), "images": n_done, "skipped_existing": n_skipped, "untagged": n_untagged,
          "arch": ckpt["arch"], "gray": gray, "scales": scale_list, "flip": flip, "device": dev,
          "seconds": round(t.seconds, 3), "images_per_second": round(n_done / max(t.seconds, 1e-9), 3)})


@command("import")
@click.argument("cam_dir", type=click.Path(file_okay=False))
@click.option("--manifest", "manifest_path", required=True, type=click.Path(dir_okay=False),
              help="Manifest of the images (classes, ids, sizes, tags).")
@output_option("CAM store to write (.h5, kind `cams`).")
@click.option("--normalize", is_flag=True, help="Divide each map by its maximum (for CAMs not already in [0, 1]).")
@force_option
def import_(cam_dir, manifest_path, output, normalize, force):
    """Import CAMs written by the IRN code base (Ahn et al. 2019): one `ID.npy` per
    image of the manifest, a dict with `keys` (0-based class indices) and
    `high_res` (C, H, W) maps at full resolution.

    IRN's files are pickles (np.save of a dict holding torch tensors), and
    unpickling an untrusted file can run arbitrary code. They are therefore never
    read with np.load(allow_pickle=True): a restricted unpickler accepts only
    the numpy arrays, OrderedDict and torch tensors (through
    torch.load(weights_only=True)) such a file holds, and refuses a file naming
    anything else. IRN files carry no classifier scores: `scores` is set to the
    tags (1 for the imported classes, 0 otherwise).

    \b
    Example:
      ws cam import irn/result/cam --manifest voc_train.json -o cams.h5
      ws info cams.h5
    """
    from ..io.cams import read_irn_npy, write_cam_group
    from ..io.dataset import load_manifest
    from ..io.store import create_store

    cam_dir = Path(cam_dir)
    if not cam_dir.is_dir():
        raise InputError("CAM folder does not exist", path=cam_dir)
    m = load_manifest(manifest_path)
    K = m.num_classes
    params = {"source": "irn", "dir": str(cam_dir), "normalize": normalize, "scores": "tags"}
    with Timer() as t, create_store(output, "cams", classes=m.classes, params=params, dataset=m,
                                    force=force) as store:
        for rec in progress(m.images, desc="import"):
            path = cam_dir / f"{rec.id}.npy"
            if not path.exists():
                raise InputError("no IRN CAM file for this image", path=path, image_id=rec.id)
            keys, cams = read_irn_npy(path)
            if keys.size and (keys.min() < 0 or keys.max() >= K):
                raise InputError(f"keys {keys.tolist()} outside 0..{K - 1} (K={K} classes of "
                                 f"{m.path})", path=path, image_id=rec.id)
            if len(set(keys.tolist())) != keys.size:
                raise InputError("duplicate keys", path=path, image_id=rec.id)
            if cams.shape[1:] != (rec.height, rec.width):
                raise InputError(f"maps are {cams.shape[2]}x{cams.shape[1]}, the image is "
                                 f"{rec.width}x{rec.height}", path=path, image_id=rec.id)
            if normalize:
                cams = np.maximum(cams, 0)
                cams = cams / (cams.reshape(len(cams), -1).max(1)[:, None, None] + 1e-5) if len(cams) else cams
            elif cams.size and (cams.min() < -1e-3 or cams.max() > 1 + 1e-3):
                raise InputError(f"values in [{cams.min():.3g}, {cams.max():.3g}] are not in [0, 1] "
                                 "(pass --normalize)", path=path, image_id=rec.id)
            order = np.argsort(keys)
            labels = keys[order] + 1
            scores = np.zeros(K, np.float32)
            scores[keys] = 1.0
            with store.write_image(rec.id) as g:
                write_cam_group(g, cams[order], labels, scores)
    emit({"output": str(output), "images": len(m.images), "source": "irn", "seconds": round(t.seconds, 3)})


for _c in (train, infer, import_):
    cam.add_command(_c)
