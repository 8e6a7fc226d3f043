"""``ws``: the entry point. Commands are imported only when run, so ``ws --help`` is fast."""

from __future__ import annotations

import importlib

import click

from .. import __version__
from .common import WsGroup

# name -> one-line help; the command is the function `name` (dashes as underscores) of the module
# wstools.cli.<name> (ATTRIBUTES where it is not). Only commands that work are listed.
COMMANDS = {
    "toy": "Write a synthetic weakly-labelled dataset (images, GT, manifests).",
    "dataset": "Import VOC / COCO / folder datasets into manifests; check one.",
    "info": "Describe any manifest or store: kind, provenance, contents.",
    "propose": "Class-agnostic segment proposals with masks: hierarchy / saliency / import.",
    "eval": "Score predictions against ground truth: mIoU, AP, proposals, CAMs, assignment.",
    "graph": "Dataset-level kNN similarity graph of proposal features.",
    "cut": "Assign labels to proposals: multi-way cut, Fan et al. Eq. 8, attention.",
    "cam": "Train the multi-label classifier; write class activation maps; import IRN CAMs.",
    "features": "Per-proposal probabilities + semantic features: CAMs + classifier, or LIID's MIL network.",
    "merge": "Join shards of a per-image store (written with --shard I/N).",
    "train-seg": "Train DeepLab / Mask R-CNN on pseudo labels (DSRG growing, seeding + boundary losses).",
    "predict": "Semantic labels (+ probabilities) or instance results of a trained train-seg network.",
    "icn": "Train / apply the ICN enhancer of peak response maps (Huang et al. 2021).",
    "match": "Instance masks: match response maps to proposals (Eq. 5), NMS, COCO results.",
    "export-coco": "Pseudo labels out: COCO instances JSON (RLE) or VOC PNGs.",
    "grow": "Pixel pseudo labels: CAM seed cues, snapping, DSRG region growing, dense CRF.",
    "oracle": "Perfect inputs from ground truth (oracle CAMs, oracle assignment): method or inputs?",
    "viz": "Draw a manifest's GT or a proposals / cams / labels store over its images.",
}
ATTRIBUTES = {"eval": "eval_group"}


class LazyGroup(WsGroup):
    """Commands imported when run; click's usage errors below it as one line (WsGroup)."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = "wstools.cli." + name.replace("-", "_")
        return getattr(importlib.import_module(module), ATTRIBUTES.get(name, name.replace("-", "_")))

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name]) for name in self.list_commands(ctx)]
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
