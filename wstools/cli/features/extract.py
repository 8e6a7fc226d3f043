"""``ws features [extract] MANIFEST``: probabilities and features of every proposal."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ..common import (Timer, batch_size_option, command, device_option, emit, output_option, path_option, progress,
                      resolve_device, threads_option, warn)
from ..stage import image_batches, output_store, per_image_options, shard_items


def proposals_per_image_option(f):
    return click.option("--proposals-per-image", "top", type=click.IntRange(1), default=20, show_default=True,
                        help="Use the first N proposals of each image (stored best first; LIID: the top 20 "
                             "SOPs).")(f)


@command("extract")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--proposals", help="Proposal store of MANIFEST's images (`ws propose`).")
@path_option("--model",
              help="A classifier checkpoint (`ws cam train`; needs --cams) or a MIL checkpoint "
                   "(`ws features train-mil`; probabilities from its softmax, LIID Eq. 2).")
@path_option("--cams", required=False,
              help="CAM store of MANIFEST's images (`ws cam infer`); needed with a classifier checkpoint.")
@output_option("Features store to write (.h5, kind `features`).")
@proposals_per_image_option
@click.option("--prob", "prob_method", type=click.Choice(["mean+max", "box-mean", "mask-mean"]),
              default="mean+max", show_default=True,
              help="CAM probabilities (classifier route): LIID Eq. 3 R = mean + max of the CAM in the box, "
                   "Fan et al. Eq. 2 mean in the box (its minus sign is a typo), or the mean in the mask.")
@click.option("--noise", type=click.Choice(["threshold", "1-max", "none"]), default=None,
              help="Noise column (classifier route): threshold = eta / max score (LIID Eq. 3: noise when every "
                   "R < eta) or 1-max = 1 - the largest normalised class score, rows then divided by their sum; "
                   "none = 0, rows left as they are (Fan et al. Eq. 2: p_i is the box mean itself; their Eq. 8 "
                   "rejects noise by the retention ratio). Default: none for --prob box-mean, threshold "
                   "otherwise.")
@click.option("--eta", type=click.FloatRange(0), default=0.75, show_default=True,
              help="LIID Eq. 3 threshold on R (in [0, 2] for mean+max, [0, 1] otherwise).")
@click.option("--feat-dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Storage type of the feature vectors (read back as float32).")
@click.option("--roi-size", type=click.IntRange(1), default=7, show_default=True,
              help="ROI-Align grid (classifier route) before global average pooling (MIL: from its checkpoint).")
@batch_size_option
@device_option
@threads_option
@per_image_options(resume=click.option(
    "--resume", is_flag=True, help="Keep a finished OUTPUT written with the same parameters instead of recomputing it "
                                   "(the store is written whole; for partial restarts run --shard I/N parts and "
                                   "`ws merge` them)."))
def extract(manifest, proposals_path, model_path, cams_path, output, top, prob_method, noise, eta, feat_dtype,
            roi_size, batch_size, device, workers, shard, resume, force):
    """Label probabilities and semantic features of the first N proposals of
    every image of MANIFEST, written to a `features` store (flat over all
    proposals; `ws graph` and `ws cut` read it).

    Features: ROI-Align of each proposal box on the backbone's last feature map
    (spatial scale = map size / image size), then global average pooling
    (128-d for --arch tiny, 2048-d for ResNet-50). Probabilities (K+1 columns,
    0 = noise): from a classifier checkpoint, the CAM scores of --prob
    normalised to [0, 1] (mean+max divided by 2), the noise column of --noise,
    each row divided by its sum (untagged classes 0; --noise none: no noise
    column, no division, Fan et al. Eq. 2); from a MIL checkpoint,
    the network's softmax (LIID Eq. 2). `allowed` = the image's tags + 0.
    `truth` (the class of the GT instance with mask IoU >= 0.5, else 0) is
    filled when MANIFEST has instance ground truth, so `ws eval assignment`
    scores any cut. An image without proposals gives no rows. Images are
    streamed and batched: memory is bounded by a batch.

    \b
    Example:
      ws features data/toy/train.json --proposals props.h5 --cams cams.h5 \\
          --model cls.pt -o feats.h5
      ws features data/toy/train.json --proposals props.h5 --model mil.pt -o feats_mil.h5
      ws features train.json --proposals props.h5 --model mil.pt --shard 0/2 -o f0.h5
      ws merge feats.h5 f0.h5 f1.h5
    """
    import torch

    from ...cam.augment import normalize, to_gray
    from ...features.probabilities import SCORE_MAX, proposal_probabilities
    from ...features.roi import roi_features
    from ...io.checkpoint import load_model
    from ...io.dataset import load_manifest
    from ...io.flat import append_features, write_image_ids
    from ...io.store import open_store
    from .data import check_inputs, read_cams, read_proposals, true_labels_of

    if eta > SCORE_MAX[prob_method]:      # R never reaches it: every proposal would be noise
        raise InputError(f"--eta {eta:g}: R of --prob {prob_method} lies in [0, {SCORE_MAX[prob_method]:g}]")
    dev = resolve_device(device)
    if noise is None:
        noise = "none" if prob_method == "box-mean" else "threshold"
    m = load_manifest(manifest)
    model, ckpt = load_model(model_path, ("classifier", "mil"), m.classes, dev)
    kind = ckpt["ws_kind"]
    if kind == "classifier" and cams_path is None:
        raise InputError("a classifier checkpoint needs --cams (its CAMs give the probabilities)", path=model_path)
    if kind == "mil" and cams_path is not None:
        warn("--cams is not used with a MIL checkpoint (probabilities come from the network)")
        cams_path = None
    K = m.num_classes
    gray = bool(ckpt.get("gray", False))
    with_truth = m.has_instance_gt()
    params = {"model": str(model_path), "model_kind": kind, "arch": ckpt["arch"],
              "proposals_per_image": top, "prob": prob_method if kind == "classifier" else "mil",
              "noise": noise if kind == "classifier" else "softmax", "eta": eta, "feat_dtype": feat_dtype,
              "roi_size": roi_size if kind == "classifier" else int(ckpt.get("roi_size", 7)), "shard": shard}
    from pathlib import Path

    if resume and not force and Path(output).exists():
        with open_store(output, "features") as old:
            if old.params != params or old.classes != m.classes:
                raise InputError(f"cannot resume: written with other parameters ({old.params} vs {params})",
                                 path=output)
            emit({"output": str(output), "resumed": True, "images": len(old.h5["image_ids"]),
                  "proposals": int(old.h5["image"].shape[0])})
            return
    records = shard_items(m.images, shard)
    pos = {r.id: i for i, r in enumerate(records)}
    n_rows = n_empty = 0
    props = open_store(proposals_path, "proposals")
    cams = None
    try:
        if cams_path is not None:
            cams = open_store(cams_path, "cams")
        check_inputs(m, props, cams)
        for rec in records:
            if not props.has_image(rec.id):
                raise InputError(f"lacks images of {m.path} (merge all shards first?)", path=proposals_path,
                                 image_id=rec.id)
        inputs = [props] + ([cams] if cams is not None else [])
        with Timer() as t, output_store(output, "features", classes=m.classes, params=params, dataset=m,
                                        inputs=inputs, force=force) as store:
            D = model.backbone.out_channels
            append_features(store, image=np.zeros(0), proposal=np.zeros(0), box=np.zeros((0, 4)),
                            feat=np.zeros((0, D)), prob=np.zeros((0, K + 1)), allowed=np.zeros((0, K + 1)),
                            truth=np.zeros(0) if with_truth else None, feat_dtype=feat_dtype)
            buf, n_buf, flush_rows = [], 0, 4096

            def flush():
                nonlocal n_buf
                if not buf:
                    return n_rows
                cat = {k: np.concatenate([b[k] for b in buf]) for k in buf[0] if buf[0][k] is not None}
                buf.clear()
                n_buf = 0
                return append_features(store, **cat, feat_dtype=feat_dtype)

            bar = progress(total=len(records), desc="features")
            batches = image_batches(m, records, lambda img, i: normalize(to_gray(img) if gray else img),
                                    batch_size=batch_size, workers=workers, device=dev)
            for recs, x in batches:
                need_masks = kind == "classifier" and prob_method == "mask-mean"
                got = [read_proposals(props, r, top, need_masks=need_masks) for r in recs]
                boxes = [torch.from_numpy(g[0]).to(dev) for g in got]
                with torch.no_grad():
                    if kind == "mil":
                        a, f = model(x, boxes)
                        prob_all = torch.softmax(a, 1).float().cpu().numpy()
                    else:
                        _, feats = model.score_maps(x)
                        f = roi_features(feats[-1], boxes, x.shape[-2:], roi_size)
                f = f.float().cpu().numpy()
                row = 0
                for r, (bx, counts, masks) in zip(recs, got):
                    P = len(bx)
                    n_empty += int(P == 0)
                    if kind == "mil":
                        prob = prob_all[row:row + P]
                    else:
                        a_cams, labels = read_cams(cams, r, K)
                        prob = proposal_probabilities(a_cams, labels, bx, K, method=prob_method, noise=noise,
                                                      eta=eta, masks=masks)
                    allowed = np.zeros((P, K + 1), bool)
                    allowed[:, 0] = True
                    allowed[:, m.tag_labels(r)] = True
                    truth = true_labels_of(m, r, counts) if with_truth else None
                    if with_truth and len(truth) != P:
                        raise InputError("proposals have no masks: cannot compute 'truth'", path=proposals_path,
                                         image_id=r.id)
                    if P:
                        buf.append({"image": np.full(P, pos[r.id], np.int64), "proposal": np.arange(P),
                                    "box": bx, "feat": f[row:row + P], "prob": prob, "allowed": allowed,
                                    "truth": truth})
                        n_buf += P
                    row += P
                bar.update(len(recs))
                if n_buf >= flush_rows:
                    n_rows = flush()
            n_rows = flush()
            bar.close()
            write_image_ids(store, [r.id for r in records])
    finally:
        props.close()
        if cams is not None:
            cams.close()
    emit({"output": str(output), "model_kind": kind, "images": len(records), "proposals": n_rows,
          "images_without_proposals": n_empty, "feature_dim": int(model.backbone.out_channels),
          "prob": params["prob"], "truth": with_truth, "device": dev, "seconds": round(t.seconds, 3),
          "images_per_second": round(len(records) / max(t.seconds, 1e-9), 3)})
