"""``ws``: the entry point. Commands are imported only when run, so ``ws --help`` is fast."""

from __future__ import annotations

import importlib

import click

from .. import __version__
from .common import WsGroup

# name -> (module, attribute, one-line help). Only commands that work are listed.
COMMANDS = {
    "toy": ("wstools.cli.toy", "toy", "Write a synthetic weakly-labelled dataset (images, GT, manifests)."),
    "dataset": ("wstools.cli.dataset", "dataset", "Import VOC / COCO / folder datasets into manifests; check one."),
    "info": ("wstools.cli.info", "info", "Describe any manifest or store: kind, provenance, contents."),
    "propose": ("wstools.cli.propose", "propose",
                "Class-agnostic segment proposals with masks: hierarchy / saliency / import."),
    "eval": ("wstools.cli.eval", "eval_group", "Score predictions against ground truth: mIoU, AP, proposals, CAMs, assignment."),
    "graph": ("wstools.cli.graph", "graph", "Dataset-level kNN similarity graph of proposal features."),
    "cut": ("wstools.cli.cut", "cut", "Assign labels to proposals: multi-way cut, Fan et al. Eq. 8, attention."),
    "cam": ("wstools.cli.cam", "cam", "Train the multi-label classifier; write class activation maps; import IRN CAMs."),
    "features": ("wstools.cli.features", "features",
                 "Per-proposal probabilities + semantic features: CAMs + classifier, or LIID's MIL network."),
    "merge": ("wstools.cli.merge", "merge", "Join shards of a per-image store (written with --shard I/N)."),
    "train-seg": ("wstools.cli.train_seg", "train_seg",
                  "Train DeepLab / Mask R-CNN on pseudo labels (DSRG growing, seeding + boundary losses)."),
    "predict": ("wstools.cli.predict", "predict",
                "Semantic labels (+ probabilities) or instance results of a trained train-seg network."),
    "icn": ("wstools.cli.icn", "icn", "Train / apply the ICN enhancer of peak response maps (Huang et al. 2021)."),
    "match": ("wstools.cli.match", "match", "Instance masks: match response maps to proposals (Eq. 5), NMS, COCO results."),
    "export-coco": ("wstools.cli.export_coco", "export_coco", "Pseudo labels out: COCO instances JSON (RLE) or VOC PNGs."),
    "grow": ("wstools.cli.grow", "grow", "Pixel pseudo labels: CAM seed cues, snapping, DSRG region growing, dense CRF."),
    "oracle": ("wstools.cli.oracle", "oracle",
               "Perfect inputs from ground truth (oracle CAMs, oracle assignment): method or inputs?"),
    "viz": ("wstools.cli.viz", "viz", "Draw a manifest's GT or a proposals / cams / labels store over its images."),
}


class LazyGroup(WsGroup):
    """Commands imported when run; click's usage errors below it as one line (WsGroup)."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group("ws", cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ws")
def cli():
    """ws: weakly supervised segmentation from image-level tags.

    Every stage is a command that reads files and writes one file (a JSON
    manifest or an HDF5 store), so stages chain in shell scripts and any of
    them can be replaced by your own program writing the same format.
    Inspect any intermediate file with `ws info FILE`.

    Each command prints a one-line JSON summary on stdout; progress and logs
    go to stderr. Exit codes: 0 success, 1 runtime failure, 2 bad input.
    """
