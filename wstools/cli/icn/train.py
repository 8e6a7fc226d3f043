"""``ws icn train``: the ICN on naive PRMs and proposal pseudo labels (Huang et al. 2021 Sect. 3.2)."""

from __future__ import annotations

import click

from ...errors import InputError
from ..common import command, force_mismatch_option, path_option, resolve_device
from ..match import proposal_masks, responses_with_proposals, score_options
from ..training import TrainingRun, run_training
from ..training_options import checkpoint_output_option, training_options


@command("train")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--responses", help="Naive PRMs of MANIFEST's images (`ws cam peaks`).")
@path_option("--proposals", help="Proposal store with masks (`ws propose`): the pseudo labels come from it.")
@checkpoint_output_option("icn")
@click.option("--encoder", type=click.Choice(["vgg16", "tiny"]), default="vgg16", show_default=True,
              help="Encoder: torchvision VGG-16 (Huang et al.) or a small CNN for CPU runs.")
@click.option("--top-k", "top_k", type=click.IntRange(1), default=3, show_default=True,
              help="Proposals in the pseudo label: the union of the top k matched ones, none contained in "
                   "earlier picks (Huang et al. Sect. 3.2: k = 3).")
@score_options
@click.option("--size", type=click.IntRange(16), default=320, show_default=True,
              help="Side to which images, maps and targets are resized for training (our choice).")
@click.option("--crop-scale", type=click.FloatRange(0.1, 1), default=0.7, show_default=True,
              help="Random crops: each side times U(SCALE, 1), resized back to --size (Huang et al. Sect. 4.2 "
                   "crops at random without giving a size; 0.7 ours, above no crop on toy data: "
                   "benchmarks/prm_toy.py); 1 = no crop.")
@click.option("--epochs", type=click.IntRange(1), default=120, show_default=True,
              help="Epochs (Huang et al. Sect. 4.2: 120).")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Instances per batch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate (Huang et al. Sect. 4.2: 1e-3).")
@click.option("--decay-every", type=click.IntRange(0), default=20, show_default=True,
              help="Multiply the rate by --decay every N epochs (Huang et al.: 0.5 every 20; 0 = never).")
@click.option("--decay", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Rate decay factor.")
@training_options(force_mismatch_option)
def train(manifest, responses_path, proposals_path, output, encoder, top_k, alpha, beta, gamma, bin_threshold,
          contour_mode, contour_width, bg_dilation, binary, size, crop_scale, epochs, batch_size, lr, decay_every, decay,
          stop_after, device, workers, seed, force_mismatch, force, resume):
    """Train the ICN (Huang et al. 2021 Fig. 3, Eq. 3-4) on MANIFEST's naive PRMs.

    Every instance (peak) of the responses store is one training sample: the
    image and its min-max-normalised PRM in, the union of the top --top-k
    proposals matched to the PRM with the rebalanced score (Eq. 5) as the
    target; pixel-wise cross-entropy (Eq. 4), Adam, the rate halved every 20
    epochs, random flips and crops. Instances whose image has no proposals are skipped.
    Runs on the shared training loop (resume, log, DDP under torchrun).

    \b
    Example:
      ws icn train data/toy/train.json --responses prm.h5 --proposals props.h5 \\
          --encoder tiny --size 96 --epochs 4 -o icn.pt
      ws icn infer data/toy/val.json --responses prm_val.h5 --model icn.pt -o enhanced_val.h5
    """
    from ...io.dataset import load_manifest
    from ...masks import encode
    from ...prm.icn import ICN, collate_icn, icn_optimizer, icn_schedule, icn_step
    from ...prm.matching import pseudo_label, score_parameters
    from .data import IcnPairs

    dev = resolve_device(device)
    m = load_manifest(manifest)
    args = {"manifest": str(manifest), "responses": str(responses_path), "proposals": str(proposals_path),
            "encoder": encoder, "top_k": top_k, "alpha": alpha, "beta": beta, "gamma": gamma,
            "threshold": bin_threshold, "contour": contour_mode, "contour_width": contour_width,
            "bg_dilation": bg_dilation, "binary": binary, "size": size, "crop_scale": crop_scale,
            "epochs": epochs, "batch_size": batch_size, "lr": lr, "decay_every": decay_every, "decay": decay,
            "seed": seed}
    run = TrainingRun(output, args, kind="icn", classes=m.classes, force=force, resume=resume, epochs=epochs)
    kw = score_parameters("rebalanced", alpha, beta, gamma, bin_threshold, contour_width, bg_dilation, contour_mode,
                          binary)
    samples, skipped = [], 0
    for rec, r, props in responses_with_proposals(m, responses_path, proposals_path, force_mismatch,
                                                  "pseudo labels"):
        if len(r["peaks"]) == 0:
            continue
        if not props.has_image(rec.id):
            skipped += len(r["peaks"])
            continue
        _, _, masks = proposal_masks(props, rec.id, rec.height, rec.width)
        for k, v in enumerate(r["maps"]):
            target = pseudo_label(v, masks, top_k, **kw)
            if target.any():
                samples.append((rec, k, encode(target)[0]))
            else:
                skipped += 1
    if not samples:
        raise InputError("no instance with a pseudo label: nothing to train on (no peaks or no proposals?)",
                         path=responses_path)

    def setup(model, dev, world):
        return {"train_set": IcnPairs(m, samples, responses_path, size, seed, run.epoch_box, crop_scale=crop_scale),
                "epochs": epochs, "batch_size": batch_size, "step": icn_step(dev), "collate": collate_icn,
                "optimizer": icn_optimizer(model, lr), "schedule": icn_schedule(epochs, decay_every, decay),
                "images": (m, [s[0] for s in samples]),
                "log": f"training ICN ({encoder}) on {len(samples)} instances, device {dev}",
                "summary": {"encoder": encoder, "instances": len(samples), "skipped_instances": skipped}}

    run_training(run, lambda fresh: ICN(encoder), setup, device=dev, seed=seed, workers=workers,
                 stop_after=stop_after, base={"arch": encoder, "classes": list(m.classes), "size": size})
