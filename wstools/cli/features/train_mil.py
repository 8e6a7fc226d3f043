"""``ws features train-mil``: LIID's proposal MIL network on the shared training loop."""

from __future__ import annotations

import math

import click
import numpy as np

from ...errors import InputError
from ..common import command, path_option, progress, resolve_device, warn
from ..training import TrainingRun, run_training
from ..training_options import checkpoint_output_option, optimizer_options, training_options
from .extract import proposals_per_image_option


@command("train-mil")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--proposals", help="Proposal store of MANIFEST's images (`ws propose`).")
@path_option("--cams", help="CAM store (`ws cam infer`): the pseudo proposal labels of LIID Eq. 3 come from it.")
@checkpoint_output_option("mil")
@proposals_per_image_option
@click.option("--arch", type=click.Choice(["tiny", "resnet18", "resnet50", "resnet101", "vgg16"]),
              default="resnet50", show_default=True, help="Backbone (LIID: ResNet-50); `tiny` for CPU runs.")
@click.option("--stride", type=click.Choice(["16", "8"]), default="16", show_default=True,
              help="Output stride of the backbone (as `ws cam train`).")
@path_option("--init", required=False,
              help="Start the backbone from a classifier checkpoint (`ws cam train`) or a torchvision state "
                   "dict (LIID starts from the ImageNet ResNet-50).")
@click.option("--gray", is_flag=True, help="Gray input images (as a gray classifier of `ws cam train --gray`).")
@click.option("--eta", type=click.FloatRange(0, 2), default=0.75, show_default=True,
              help="Threshold on R = mean + max of the CAM in the box for the pseudo labels (LIID Eq. 3, "
                   "Table 5: 0.75).")
@click.option("--r", "lse_r", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Log-sum-exp sharpness of the MIL image pooling (LIID Eq. 5: r = 5).")
@click.option("--theta", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Update rate of the class centres (LIID Eq. 8: 0.01).")
@click.option("--alpha", type=click.FloatRange(0), default=0.5, show_default=True,
              help="Weight of the CAM-based loss L_Att (LIID Eq. 9, Table 2: 0.5).")
@click.option("--beta", type=click.FloatRange(0), default=0.5, show_default=True,
              help="Weight of the MIL image loss L_MIL (LIID Eq. 9, Table 2: 0.5).")
@click.option("--gamma", type=click.FloatRange(0), default=0.1, show_default=True,
              help="Weight of the cosine centre loss L_Cent (LIID Eq. 9, Table 1: 0.1).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True, help="Epochs (LIID: 10).")
@click.option("--min-steps", type=click.IntRange(0), default=0, show_default=True,
              help="Train at least this many optimizer steps: --epochs is raised to ceil(N / steps per epoch). "
                   "LIID trains 10 epochs of ~10K images (100K steps); 1 epoch of a toy set of 120 images is 15 "
                   "steps at --batch-size 8, too few for the probabilities to rank true instances above noise "
                   "(README `ws features` benchmarks: AUC by steps).")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True,
              help="Images per step (LIID: 1; each image's loss is averaged over the batch).")
@optimizer_options("LIID", lr=5e-4, momentum=0.9, weight_decay=1e-4, lr_help="Learning rate")
@click.option("--lr-drop", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Fraction of the run after which the rate is divided by 10 (LIID: after 5 "
                                      "of 10 epochs = 0.5).")
@training_options()
def train_mil(manifest, proposals_path, cams_path, output, top, arch, stride, init_path, gray, eta, lse_r, theta,
              alpha, beta, gamma, epochs, min_steps, batch_size, lr, lr_drop, momentum, weight_decay, optimizer,
              stop_after, device, workers, seed, force, resume):
    """Train LIID's proposal MIL network (Liu et al. TPAMI Sect. 4) on
    MANIFEST's tags and the first N proposals of each image.

    Backbone -> ROI-Align of each box on the top feature map -> GAP to f ->
    FC to K+1 scores -> softmax p (Eq. 2). Loss per image (Eq. 9):
    alpha L_Att (Eq. 4, pseudo labels from R = mean + max of the CAMs in each
    box and eta, Eq. 3) + beta L_MIL (Eq. 5-6, log-sum-exp pooling, background
    always present) + gamma L_Cent (Eq. 7, cosine to class centres updated at
    rate theta, Eq. 8). SGD, rate / 10 after half the run, one image per step.
    Images without tags or proposals are skipped. Runs on the shared training
    loop (JSON-lines log, --resume, `torchrun` DDP).

    \b
    Example:
      ws features train-mil data/toy/train.json --proposals props.h5 --cams cams.h5 \\
          --arch tiny --init cls.pt --epochs 2 -o mil.pt
      ws features data/toy/train.json --proposals props.h5 --model mil.pt -o feats_mil.h5
    """
    from ...features.mil import MilNet, mil_optimizer, mil_schedule, mil_step, summarize_mil
    from ...features.probabilities import cam_scores, pseudo_labels
    from ...io.checkpoint import read_state_dict
    from ...io.dataset import load_manifest
    from ...io.store import open_store
    from ...io.torchdata import collate_list
    from ...nn.backbones import build_backbone, load_weights
    from .data import check_inputs, read_cams, read_proposals
    from .mil_data import MilImages

    dev = resolve_device(device)
    stride = int(stride)
    m = load_manifest(manifest)
    args = {"manifest": str(manifest), "proposals": str(proposals_path), "cams": str(cams_path),
            "proposals_per_image": top, "arch": arch, "stride": stride, "init": init_path, "gray": gray, "eta": eta,
            "r": lse_r, "theta": theta, "alpha": alpha, "beta": beta, "gamma": gamma, "epochs": epochs,
            "min_steps": min_steps,
            "batch_size": batch_size, "lr": lr, "lr_drop": lr_drop, "momentum": momentum,
            "weight_decay": weight_decay, "optimizer": optimizer, "seed": seed}
    run = TrainingRun(output, args, kind="mil", classes=m.classes, force=force, resume=resume, epochs=epochs)
    samples, untagged, empty = [], 0, 0
    with open_store(proposals_path, "proposals") as props, open_store(cams_path, "cams") as cams:
        check_inputs(m, props, cams)
        for rec in progress(m.images, desc="pseudo labels"):
            if not m.tag_labels(rec).size:
                untagged += 1
                continue
            if not props.has_image(rec.id):
                raise InputError(f"lacks images of {m.path} (merge all shards first?)", path=proposals_path,
                                 image_id=rec.id)
            boxes, _, _ = read_proposals(props, rec, top, need_masks=False)
            if len(boxes) == 0:
                empty += 1
                continue
            a, labels = read_cams(cams, rec, m.num_classes)
            pseudo = pseudo_labels(cam_scores(a, boxes, "mean+max"), labels, eta)
            samples.append((rec, boxes, pseudo))
    if untagged:
        warn(f"skipping {untagged} images without tags")
    if not samples:
        raise InputError("no tagged image with proposals: nothing to train on", path=proposals_path)

    pseudo_noise = float(np.mean(np.concatenate([s[2] for s in samples]) == 0))

    def build(fresh):
        backbone = build_backbone(arch, stride)
        if fresh and init_path:
            load_weights(backbone, read_state_dict(init_path), source=init_path)
        return MilNet(backbone, m.num_classes)

    def setup(model, dev, world):
        steps_per_epoch = math.ceil(len(samples) / (batch_size * world))
        n = math.ceil(min_steps / steps_per_epoch) if min_steps and epochs * steps_per_epoch < min_steps else epochs
        return {"train_set": MilImages(m, samples, gray), "epochs": n, "batch_size": batch_size,
                "step": mil_step(dev, alpha, beta, gamma, lse_r, theta), "collate": collate_list,
                "optimizer": mil_optimizer(model, optimizer, lr, momentum, weight_decay),
                "schedule": mil_schedule(lr_drop), "summarize": summarize_mil,
                "images": (m, [s[0] for s in samples]),
                "log": f"training MIL ({arch}) on {len(samples)} images, {sum(len(s[1]) for s in samples)} proposals "
                       f"({pseudo_noise:.0%} pseudo-labelled noise), device {dev}",
                "summary": {"arch": arch, "images": len(samples), "skipped_untagged": untagged,
                            "skipped_without_proposals": empty, "pseudo_noise_fraction": round(pseudo_noise, 4),
                            "optimizer_steps": n * steps_per_epoch},
                "base": {"roi_size": model.roi_size}}

    run_training(run, build, setup, device=dev, seed=seed, workers=workers, stop_after=stop_after,
                 base={"arch": arch, "stride": stride, "classes": list(m.classes), "gray": gray})
