"""``ws predict``: run a ``ws train-seg`` network on a manifest's images: semantic labels (and
probabilities) or instance results that ``ws eval`` scores."""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from .common import (Timer, batch_size_option, command, device_option, emit, output_option, parse_floats, path_option,
                     progress, resolve_device, threads_option)
from .stage import image_batches, per_image_options, run_per_image, shard_items


@command("predict")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--model", help="Checkpoint written by `ws train-seg` (its task decides the output).")
@output_option("Semantic: a `labels` store (.h5) of argmax labels. Instance: a COCO results JSON "
               "([{image_id, category_id, segmentation (RLE), score}]).")
@path_option("--probs", required=False,
              help="Semantic: also write the per-pixel probabilities (after amending and CRF) to this `probs` "
                   "store, the input of `ws grow region` and `ws grow crf`.")
@click.option("--scales", default="1.0", show_default=True,
              help="Input scales whose softmax is averaged (DeepLab multi-scale testing, e.g. 0.5,0.75,1.0).")
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="Add each scale's left-right flipped pass.")
@path_option("--classifier", required=False,
              help="Prediction-amended testing (Sun et al. Sect. 3.5): a `ws cam train` classifier run on each "
                   "image; classes it scores below --score-threshold are pushed below the per-pixel ceiling of "
                   "the accepted classes by --margin before the CRF.")
@click.option("--score-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Classifier probability below which a class counts as absent (amended testing).")
@click.option("--margin", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="How far below the ceiling rejected classes are pushed (Sun et al.: 1e-4).")
@click.option("--crf", is_flag=True, help="Dense-CRF post-processing of the probabilities (DSRG, Sun et al.; "
                                          "needs the [crf] extra).")
@click.option("--crf-iterations", type=click.IntRange(1), default=10, show_default=True,
              help="Mean-field iterations of the dense CRF (Kraehenbuehl and Koltun: 10).")
@click.option("--mask-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Instance: mask probability above which a pixel belongs to the instance (torchvision: 0.5).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Instance: detections scored below this are dropped (torchvision's box_score_thresh: 0.05).")
@batch_size_option
@device_option
@threads_option
@per_image_options()
def predict(manifest, model_path, output, probs_path, scales, flip, classifier_path, score_threshold, margin, crf,
            crf_iterations, mask_threshold, min_score, batch_size, device, workers, shard, resume, force):
    """Predict with a `ws train-seg` network on every image of MANIFEST.

    Semantic checkpoints: softmax averaged over --scales (and flips),
    optionally amended by a classifier (Sun et al.) and refined by a dense
    CRF, argmax written to a `labels` store that `ws eval semantic` scores;
    --probs keeps the probabilities. Instance checkpoints: Mask R-CNN
    detections as a COCO results JSON that `ws eval instance` scores.

    Images are streamed and batched (equally sized neighbours share a batch).

    \b
    Example:
      ws predict toy/val.json --model seg.pt -o pred.h5
      ws eval semantic pred.h5 --gt toy/val.json
      ws predict voc_val.json --model dsrg.pt --scales 0.75,1,1.25 --flip \\
          --classifier cls.pt --crf -o pred.h5 --probs probs.h5
      ws predict toy/val.json --model mrcnn.pt -o results.json
      ws eval instance results.json --gt toy/val.json
    """
    from ..io.checkpoint import load_model
    from ..io.dataset import load_manifest

    scale_list = parse_floats(scales, "--scales", positive=True)
    dev = resolve_device(device)
    m = load_manifest(manifest)
    model, ck = load_model(model_path, "segmentation", m.classes, dev)
    if ck["task"] == "instance":
        if probs_path or classifier_path or crf:
            raise InputError("--probs, --classifier and --crf apply to semantic checkpoints; "
                             f"{model_path} is an instance one")
        return _predict_instance(m, model, ck, model_path, output, mask_threshold, min_score, batch_size, dev,
                                 workers, shard, resume, force)
    return _predict_semantic(m, model, ck, model_path, output, probs_path, scale_list, flip, classifier_path,
                             score_threshold, margin, crf, crf_iterations, batch_size, dev, workers, shard, resume,
                             force)


def _predict_semantic(m, model, ck, model_path, output, probs_path, scale_list, flip, classifier_path,
                      score_threshold, margin, crf, crf_iterations, batch_size, dev, workers, shard, resume, force):
    import torch

    from ..cam.augment import normalize, to_gray
    from ..io.checkpoint import load_model
    from ..io.labels import write_labels_group, write_probs_group
    from ..seg.semantic import predict_probs, refine
    from ..seg.training import crf_and_growing

    crf_fn, _ = crf_and_growing(crf, grow=False)
    classifier, gray = (None, False)
    if classifier_path:
        classifier, classifier_ckpt = load_model(classifier_path, "classifier", m.classes, dev)
        gray = bool(classifier_ckpt["gray"])
    k1 = m.num_classes + 1
    params = {"model": str(model_path), "arch": ck["arch"], "scales": scale_list, "flip": flip,
              "classifier": classifier_path, "score_threshold": score_threshold if classifier_path else None,
              "margin": margin if classifier_path else None, "crf": crf,
              "crf_iterations": crf_iterations if crf else None, "shard": shard}
    n_amended = 0

    def compute(todo):
        nonlocal n_amended
        for recs, x in image_batches(m, todo, lambda img, i: normalize(img), batch_size=batch_size, workers=workers,
                                     device=dev):
            probs = predict_probs(model, x, scale_list, flip).cpu().numpy()
            present = None
            if classifier is not None:
                with torch.no_grad():
                    xc = x if not gray else torch.stack([
                        torch.from_numpy(normalize(to_gray(m.read_image(rec)))) for rec in recs]).to(dev)
                    present = torch.sigmoid(classifier(xc)).cpu().numpy() >= score_threshold
            for j, rec in enumerate(recs):
                keep = None
                if present is not None:
                    keep = np.concatenate([[True], present[j]])
                    n_amended += int((~keep).sum())
                yield refine(probs[j], m.read_image(rec) if crf_fn is not None else None, present=keep,
                             margin=margin, crf=crf_fn, crf_iterations=crf_iterations)

    run = run_per_image(output, "labels", m.images, lambda g, p: write_labels_group(g, p.argmax(0).astype(np.uint8)),
                        also=[(probs_path, "probs", lambda g, p: write_probs_group(g, p, np.arange(k1)))],
                        classes=m.classes, params=params, dataset=m, compute=compute, shard=shard, resume=resume,
                        force=force, desc="predict")
    emit({"output": str(output), "probs": probs_path, "task": "semantic", "images": run.images,
          "skipped_existing": run.skipped, "arch": ck["arch"], "scales": scale_list, "flip": flip,
          "amended": classifier_path is not None, "classes_suppressed": n_amended, "crf": crf, "device": dev,
          "seconds": round(run.seconds, 3), "images_per_second": round(run.images / max(run.seconds, 1e-9), 3)})


def _predict_instance(m, model, ck, model_path, output, mask_threshold, min_score, batch_size, dev, workers, shard,
                      resume, force):
    import torch
    from torch.utils.data import DataLoader

    from ..io.atomic import check_output, write_json_atomic
    from ..io.torchdata import ManifestImages, collate_list, raise_errors
    from ..seg.instance import detections_to_results

    if resume:
        raise InputError("--resume applies to semantic stores; an instance results JSON is written in one go")
    check_output(output, force)
    records = shard_items(m.images, shard)
    cats = m.category_ids()
    results = []
    with Timer() as t:
        ds = ManifestImages(m, records, lambda img, i: np.ascontiguousarray(img.transpose(2, 0, 1)))
        loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_list)
        bar = progress(total=len(records), desc="predict")
        with torch.no_grad():
            for items in loader:
                raise_errors(items)
                outs = model([it["image"].float().div(255.0).to(dev) for it in items])
                for it, o in zip(items, outs):
                    results += detections_to_results(o, it["id"], cats, mask_threshold, min_score)
                bar.update(len(items))
        bar.close()
        write_json_atomic(output, results, force=force)
    emit({"output": str(output), "task": "instance", "images": len(records), "detections": len(results),
          "arch": ck["arch"], "device": dev, "seconds": round(t.seconds, 3),
          "images_per_second": round(len(records) / max(t.seconds, 1e-9), 3)})
