"""``ws cam peaks``: class peaks (Huang et al. 2021 Eq. 1) and peak response maps (Eq. 2)."""

from __future__ import annotations

import math

import click

from ..common import command, device_option, emit, output_option, path_option, resolve_device, threads_option
from ..stage import image_batches, per_image_options, run_per_image
from .options import classes_from_options


@command("peaks")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--model", help="Classifier checkpoint written by `ws cam train`.")
@output_option("Response store to write (.h5, kind `responses`): per image the peaks and one map per peak.")
@click.option("--sigma", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Std of the Gaussian filter G of Huang et al. Eq. 1, in score-map cells (not given in the "
                   "paper).")
@click.option("--eta", default="mean", show_default=True,
              help="Threshold E_eta of Eq. 1: `mean` (the mean of M_c, the paper's) or a number.")
@click.option("--window", type=click.IntRange(1), default=3, show_default=True,
              help="Side of the neighbourhood in which a peak is a local maximum (score-map cells).")
@click.option("--max-peaks", type=click.IntRange(0), default=0, show_default=True,
              help="Keep at most this many peaks per class, the strongest (0 = all).")
@click.option("--at-least-one/--no-at-least-one", default=True, show_default=True,
              help="A class that Eq. 1 leaves without a peak gets its global maximum as its one peak "
                   "(a tag says at least one instance is present).")
@click.option("--peak-map", type=click.Choice(["cam", "raw"]), default="cam", show_default=True,
              help="M_c of Eq. 1: the CAM, ReLU of the class's score map (as `ws cam` defines CAMs), or the raw "
                   "score map (Sect. 3.1 calls M_c both \"CAM\" and \"the c-th channel of the last convolutional "
                   "layers\": ambiguous).")
@classes_from_options("Whose peaks", "the classifier")
@click.option("--smooth", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Gaussian smoothing (pixels) of each peak's input-gradient magnitude (our choice for Eq. 2).")
@click.option("--gradient", "reduce", type=click.Choice(["abs", "positive"]), default="abs", show_default=True,
              help="How each peak's input gradient (Eq. 2) becomes one map (neither paper says): the magnitudes "
                   "summed over colour channels, or the positive part of the channel sum (Zhou et al.'s "
                   "released code).")
@click.option("--peak-batch", type=click.IntRange(1), default=8, show_default=True,
              help="Peaks back-propagated together: memory grows with it (one forward/backward per batch).")
@device_option
@threads_option
@per_image_options()
def peaks(manifest, model_path, output, sigma, eta, window, max_peaks, at_least_one, peak_map, classes_from,
          score_threshold, smooth, reduce, peak_batch, device, workers, shard, resume, force):
    """Class peaks and peak response maps (PRMs) of every image of MANIFEST.

    For each tagged (or predicted) class c the peak map of Huang et al. Eq. 1,
    P^c = max(M_c - G(M_c) - mean(M_c), 0), is computed on the classifier's
    score map M_c; its local maxima are the instances. Each peak alone is
    back-propagated to the input image (Eq. 2): the response map is the
    gradient of that one score-map value with respect to the input pixels
    (reduced over colour channels by --gradient, Gaussian-smoothed, min-max
    normalised to [0, 1]). Written per image: `peaks` (N, 4) [label, y, x,
    score] in image pixels (score = the class activation at the peak) and
    `maps` (N, H, W) float16. An image with no present class has N = 0.

    \b
    Example:
      ws cam peaks data/toy/train.json --model cls.pt -o prm.h5
      ws cam peaks data/toy/val.json --model cls.pt --classes-from predicted -o prm_val.h5
      ws icn train data/toy/train.json --responses prm.h5 --proposals props.h5 -o icn.pt
    """
    from ...cam.augment import normalize, to_gray
    from ...errors import InputError
    from ...io.checkpoint import load_model
    from ...io.dataset import load_manifest
    from ...io.responses import write_response_group
    from ...prm.response import image_responses

    if eta == "mean":
        eta_value = None
    else:
        try:
            eta_value = float(eta)
        except ValueError:
            raise InputError(f"--eta {eta!r} must be `mean` or a number") from None
        if not math.isfinite(eta_value):
            raise InputError(f"--eta {eta!r} is not a finite number")
    dev = resolve_device(device)
    m = load_manifest(manifest)
    model, ckpt = load_model(model_path, "classifier", m.classes, dev)
    gray = bool(ckpt["gray"])
    params = {"model": str(model_path), "arch": ckpt["arch"], "sigma": sigma, "eta": eta, "window": window,
              "max_peaks": max_peaks, "at_least_one": at_least_one, "peak_map": peak_map, "classes_from": classes_from,
              "score_threshold": score_threshold, "smooth": smooth, "gradient": reduce, "shard": shard}
    n_peaks = n_empty = most = 0

    def compute(todo):
        for (rec,), x in image_batches(m, todo, lambda img, i: normalize(to_gray(img) if gray else img),
                                       batch_size=1, workers=workers, device=dev):
            tags = m.tag_labels(rec) if classes_from == "tags" else None
            yield image_responses(model, x[0], tags, score_threshold, sigma=sigma, eta=eta_value, window=window,
                                  max_peaks=max_peaks, at_least_one=at_least_one, relu=peak_map == "cam",
                                  batch=peak_batch, smooth_sigma=smooth, reduce=reduce)

    def write(g, result):
        nonlocal n_peaks, n_empty, most
        pk, prms = result
        write_response_group(g, pk, prms)
        n_peaks += len(pk)
        n_empty += int(len(pk) == 0)
        most = max(most, len(pk))

    run = run_per_image(output, "responses", m.images, write, classes=m.classes, params=params, dataset=m,
                        compute=compute, shard=shard, resume=resume, force=force, desc="peaks")
    emit({"output": str(output), "images": run.images, "skipped_existing": run.skipped, "peaks": n_peaks,
          "images_without_peaks": n_empty, "max_peaks_per_image": most, "arch": ckpt["arch"], "device": dev,
          "seconds": round(run.seconds, 3), "seconds_per_image": round(run.seconds / max(run.images, 1), 4)})
