"""``ws match``: pick one proposal per instance response map (Huang et al. 2021 Eq. 5 or Zhou
et al.'s plain score), NMS, and write a COCO results JSON."""

from __future__ import annotations

import click

from ..errors import InputError
from .common import (Timer, check_same_manifest_or_warn, command, emit, force_mismatch_option, force_option,
                     option_stack, output_option, path_option, progress)


def proposal_masks(store, image_id, height, width):
    """(boxes (P, 4), counts, masks (P, H, W) bool) of one image of a proposals store, read by the
    store's one reader (:func:`wstools.io.proposals.read_proposals_group`: masks needed, the size
    the manifest's)."""
    from ..io.proposals import read_proposals_group
    from ..masks import decode

    stored = read_proposals_group(store.image(image_id), height, width, path=store.path, image_id=image_id)
    return stored["boxes"], stored["counts"], decode(stored["counts"], height, width)


def responses_with_proposals(m, responses_path, proposals_path, force_mismatch: bool, desc: str):
    """Open a responses and a proposals store of manifest ``m`` (same manifest, images in it) and
    yield ``(record, responses, proposals store)`` for each image of ``m`` the responses store holds,
    ``responses`` as :func:`wstools.io.responses.read_response_group` reads them."""
    from ..io.responses import read_response_group
    from ..io.store import open_store

    with open_store(responses_path, "responses") as resp, open_store(proposals_path, "proposals") as props:
        check_same_manifest_or_warn(resp, props, force_mismatch)
        resp.check_images(m, require_all=False)
        props.check_images(m, require_all=False)
        for rec in progress(m.images, desc=desc):
            if resp.has_image(rec.id):
                yield rec, read_response_group(resp.image(rec.id), m.num_classes, path=responses_path,
                                               image_id=rec.id), props


# the matching-score flags of ``ws match`` and ``ws icn train`` (pseudo labels)
score_options = option_stack([
    click.option("--alpha", type=float, default=0.95, show_default=True,
                 help="Weight of the rebalanced overlap term sum(V*P)/sum(P) (Huang et al. Eq. 5)."),
    click.option("--beta", type=float, default=0.1, show_default=True,
                 help="Weight of the contour term sum(E(V)*P) (Huang et al. Eq. 5)."),
    click.option("--gamma", type=float, default=0.8, show_default=True,
                 help="Weight of the background term sum(B(V)*P), B <= 0 a penalty (Huang et al. Eq. 5)."),
    click.option("--threshold", "bin_threshold", type=click.FloatRange(0, 1), default=0.35, show_default=True,
                 help="Binarisation of the min-max-normalised map V for E and B (our choice; not in the paper)."),
    click.option("--contour", "contour_mode", type=click.Choice(["inner", "band"]), default="inner",
                 show_default=True,
                 help="E(V) of Eq. 5, the contour of the binarised map (the paper does not define E): its "
                      "inner boundary, or the morphological gradient band (inside + outside), whose outer "
                      "half rewards proposals spilling past the outline (with GT-shaped maps it prefers a "
                      "1-pixel-dilated GT proposal to the GT one; tests/test_oracle_prm.py)."),
    click.option("--contour-width", type=click.IntRange(1), default=3, show_default=True,
                 help="Square of the erosion / dilation giving contours, pixels (our choice)."),
    click.option("--bg-dilation", type=click.IntRange(1), default=11, show_default=True,
                 help="Square by which the binarised map is dilated before its complement is "
                      "background, pixels (our choice)."),
    click.option("--binary/--soft", "binary", default=True, show_default=True,
                 help="First term of Eq. 5 on the binarised map (Huang et al. Sect. 4.6: \"we set the final "
                      "enhanced PRM as a binary image\") or on the soft min-max-normalised map."),
])


@command("match")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--responses", help="Response store (`ws cam peaks` naive PRMs or `ws icn infer` enhanced maps).")
@path_option("--proposals", help="Proposal store with masks (`ws propose`).")
@output_option("COCO results JSON to write ([{image_id, category_id, segmentation (RLE), score}]).")
@click.option("--score", "method", type=click.Choice(["rebalanced", "plain"]), default="rebalanced",
              show_default=True, help="Matching score: Huang et al. Eq. 5 (rebalanced) or Zhou et al. 2018's "
                                      "plain score alpha*sum(V*P) + sum(V*C(P)) - beta*sum(Q*P) (ablation).")
@score_options
@click.option("--plain-alpha", type=float, default=1.0, show_default=True,
              help="alpha of the plain score (Zhou et al. 2018; their value is not restated by Huang et al.).")
@click.option("--plain-beta", type=float, default=1.0, show_default=True,
              help="beta (background penalty) of the plain score (Zhou et al. 2018).")
@click.option("--nms", "nms_iou", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="IoU above which NMS drops a matched instance (Algorithm 1 line 14; the paper gives no value).")
@click.option("--nms-on", "nms_mode", type=click.Choice(["box", "mask", "mask-all"]), default="box",
              show_default=True,
              help="NMS of Algorithm 1 line 14 (the paper gives no details): box IoU per class, mask IoU per "
                   "class, or mask IoU across classes (Zhou et al.'s released code, there at --nms 0.3; on toy "
                   "naive PRMs box and mask are equal, mask-all at 0.3 is 0.01 mAP^r@0.5 lower).")
@click.option("--det-score", type=click.Choice(["peak", "match"]), default="match", show_default=True,
              help="Score of each detection in the results, also the NMS order (the paper gives none): the "
                   "matching score (Zhou et al.'s released code ranks instances by it; on toy naive PRMs "
                   "mAP^r@0.5 0.100 vs 0.053 with Eq. 5) or the class activation at its peak.")
@force_mismatch_option
@force_option
def match(manifest, responses_path, proposals_path, output, method, alpha, beta, gamma, bin_threshold, contour_mode,
          contour_width, bg_dilation, binary, plain_alpha, plain_beta, nms_iou, nms_mode, det_score, force_mismatch, force):
    """Instance masks from response maps and proposals (Huang et al. 2021, Algorithm 1).

    For every instance (one response map V of the responses store) each
    proposal P of its image is scored — by default with Eq. 5, S = alpha *
    sum(V*P)/sum(P) + beta * sum(E(V)*P) + gamma * sum(B(V)*P), V binarised
    at --threshold (Sect. 4.6: the final map is binary), E its inner
    boundary and B = -(1 - dilation of it), so the background term is a
    penalty — and the best one is that instance's mask. Matched instances of a class then go through NMS.
    The result is a COCO results JSON that `ws eval instance` scores. Images
    with no peaks give no detections.

    \b
    Example:
      ws match data/toy/val.json --responses prm_val.h5 --proposals props_val.h5 -o results.json
      ws match data/toy/val.json --responses prm_val.h5 --proposals props_val.h5 --score plain -o plain.json
      ws eval instance results.json --gt data/toy/val.json
    """
    from ..io.atomic import check_output, write_json_atomic
    from ..io.dataset import load_manifest
    from ..masks import encode
    from ..prm.matching import match_image, score_parameters

    check_output(output, force)
    m = load_manifest(manifest, require_images=True)
    kw = score_parameters(method, alpha, beta, gamma, bin_threshold, contour_width, bg_dilation, contour_mode, binary,
                          plain_alpha, plain_beta)
    cats = m.category_ids()
    results = []
    n_inst = n_images = 0
    with Timer() as t:
        for rec, r, props in responses_with_proposals(m, responses_path, proposals_path, force_mismatch, "match"):
            n_images += 1
            n_inst += len(r["peaks"])
            if len(r["peaks"]) == 0:
                continue
            if not props.has_image(rec.id):
                raise InputError("has no proposals for this image", path=proposals_path, image_id=rec.id)
            boxes, counts, masks = proposal_masks(props, rec.id, rec.height, rec.width)
            if r["maps"].shape[1:] != (rec.height, rec.width):
                raise InputError(f"response maps {r['maps'].shape[1:]} differ from the image size",
                                 path=responses_path, image_id=rec.id)
            for lab, j, s, _ in match_image(r["maps"], r["peaks"], masks, boxes, method, nms_iou, det_score,
                                             nms_mode, **kw):
                results.append({"image_id": rec.id, "category_id": int(cats[lab - 1]),
                                "segmentation": {"size": [rec.height, rec.width],
                                                 "counts": encode(masks[j])[0].decode("ascii")},
                                "score": float(s)})
        write_json_atomic(output, results, force=force)
    emit({"output": str(output), "score": method, "images": n_images, "instances": n_inst,
          "detections": len(results), "seconds": round(t.seconds, 3)})
