"""The results table of the five recipes, from the files `examples.sh` leaves in its work folder.

`examples.sh` runs every recipe with `ws` commands only. Each `ws eval` summary it wants in the
table is saved as ``OUT/<recipe>/<name>.json`` (one JSON line, exactly what the command printed),
and every `ws` command's wall time is appended to ``OUT/<recipe>/times.tsv`` (``stage<TAB>seconds``).
This script reads those files and prints (or writes) one markdown table:

    python benchmarks/results.py examples-out                 # print
    python benchmarks/results.py examples-out -o benchmarks/results.md

Columns: pseudo-label quality on train (semantic mIoU of the pseudo labels, and the accuracy of
the proposal assignment where a recipe has one), final semantic mIoU on val, instance AP50 / AP75 /
ABO on val, weak / fully-supervised mIoU ratio, and the recipe's wall time. A missing file is a
dash (a recipe that was not run, or a stage it does not have); a metric file that exists but is
not a number makes the script fail, so a broken stage never hides behind a dash.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

RECIPES = [
    ("cam", "CAM only (threshold the CAMs; val: with its tags)"),
    ("fan", "Fan et al. (ECCV 2018)"),
    ("liid", "LIID (TPAMI)"),
    ("prm", "Huang et al. (PRM + ICN)"),
    ("sun", "Sun et al. (cues + superpixels)"),
    ("dsrg", "DSRG (CVPR 2018)"),
    ("full", "fully supervised (GT labels)"),
]


def read_json(path: Path):
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"{path}: empty (the stage that writes it failed?)")
    return json.loads(lines[-1])


def metric(folder: Path, name: str, *keys):
    """``folder/name.json`` -> the value under ``keys``; None if the file is absent.

    A key ``"a|b"`` takes ``a`` or, failing that, ``b`` (``ws eval semantic`` writes ``miou``,
    ``ws eval cams`` ``best_miou``).
    """
    path = folder / f"{name}.json"
    if not path.exists():
        return None
    value = read_json(path)
    for k in keys:
        k = next((a for a in k.split("|") if isinstance(value, dict) and a in value), None)
        if k is None:
            raise SystemExit(f"{path}: has no {'.'.join(keys)}")
        value = value[k]
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SystemExit(f"{path}: {'.'.join(keys)} is {value!r}, not a finite number")
    return float(value)


def seconds(folder: Path):
    path = folder / "times.tsv"
    if not path.exists():
        return None
    total = 0.0
    for line in path.read_text().splitlines():
        if line.strip():
            total += float(line.split("\t")[1])
    return total


def rows(out: Path) -> list[dict]:
    table = []
    full = metric(out / "full", "eval_semantic_val", "miou")
    for key, name in RECIPES:
        d = out / key
        if not d.exists():
            continue
        r = {"recipe": name,
             "pseudo_miou": metric(d, "eval_pseudo_train", "miou|best_miou"),
             "assignment_accuracy": metric(d, "eval_assignment", "accuracy"),
             "coverage": metric(d, "eval_assignment", "coverage"),
             "val_miou": metric(d, "eval_semantic_val", "miou|best_miou"),
             "ap50": metric(d, "eval_instance_val", "coco", "AP50"),
             "ap75": metric(d, "eval_instance_val", "coco", "AP75"),
             "abo": metric(d, "eval_instance_val", "abo"),
             "seconds": seconds(d)}
        r["ratio"] = None if r["val_miou"] is None or not full else r["val_miou"] / full
        table.append(r)
    return table


# Each paper's headline ablation: (recipe, what is switched off, the metric file with it on and
# off, the metric, and the paper's own pair of numbers as printed; "-" where the paper has none).
ABLATIONS = [
    ("fan", "graph partitioning vs attention alone", "eval_pseudo_instances", "ablation_off", ("map_r", "0.5"),
     "pseudo instances mAP^r 0.5 (train)",
     "+2.2 mIoU over attention alone (VOC test, Sect. 5.2; Table 1's values lost in the text)"),
    ("liid", "multi-way cut vs MIL probabilities alone", "eval_pseudo_instances", "ablation_off", ("map_r", "0.5"),
     "pseudo instances mAP^r 0.5 (train)", "AP50 34.8 / 32.5 (pseudo labels, VOC seg train, Table 1)"),
    ("prm", "ICN-enhanced vs naive PRMs", "eval_semantic_val", "ablation_off", ("miou|best_miou",),
     "merged instances mIoU (val)", "mIoU 54.1 / 53.5 (VOC 2012, Table 1)"),
    ("sun", "snapped + fused cues vs raw colour cues", "eval_pseudo_train", "ablation_off", ("miou|best_miou",),
     "cue mIoU, unlabeled = background (train)", "cue mIoU 44.9 / 36.5 (Res38, VOC trainaug, Table 2)"),
    ("dsrg", "growing + retraining vs balanced seeding loss alone", "eval_semantic_val", "ablation_off",
     ("miou|best_miou",), "mIoU (val)", "mIoU 59.0 / 53.6 (VGG16, VOC val, Table 2)"),
]


def ablation_rows(out: Path) -> list[dict]:
    table = []
    for key, what, on, off, keys, measure, paper in ABLATIONS:
        d = out / key
        if not d.exists():
            continue
        table.append({"recipe": dict(RECIPES)[key], "ablation": what, "measure": measure,
                      "on": metric(d, on, *keys), "off": metric(d, off, *keys), "paper": paper})
    return table


def shared_seconds(out: Path):
    return seconds(out / "common")


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(table: list[dict]) -> str:
    head = ("| recipe | pseudo labels mIoU (train) | assignment accuracy / coverage | val mIoU | weak / full | "
            "AP50 | AP75 | ABO | wall s |")
    lines = [head, "|" + "---|" * 9]
    for r in table:
        assignment = "-" if r["assignment_accuracy"] is None else \
            f"{fmt(r['assignment_accuracy'])} / {fmt(r['coverage'])}"
        lines.append(f"| {r['recipe']} | {fmt(r['pseudo_miou'])} | {assignment} | "
                     f"{fmt(r['val_miou'])} | {fmt(r['ratio'], 2)} | {fmt(r['ap50'])} | {fmt(r['ap75'])} | "
                     f"{fmt(r['abo'])} | {fmt(r['seconds'], 0)} |")
    return "\n".join(lines) + "\n"


def ablation_markdown(table: list[dict]) -> str:
    lines = ["| recipe | ablation | measure | with | without | paper (with / without) |", "|" + "---|" * 6]
    for r in table:
        lines.append(f"| {r['recipe']} | {r['ablation']} | {r['measure']} | {fmt(r['on'])} | {fmt(r['off'])} | "
                     f"{r['paper']} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the work folder of examples.sh")
    ap.add_argument("-o", "--output", type=Path, default=None, help="write the table here (markdown)")
    a = ap.parse_args()
    if not a.out.is_dir():
        raise SystemExit(f"{a.out}: not a folder")
    text = markdown(rows(a.out))
    shared = shared_seconds(a.out)
    if shared is not None:
        text += (f"\nShared stages (data, classifier, CAMs, proposals), run once for all recipes: "
                 f"{shared:.0f} s; the recipes' wall times exclude them.\n")
    text += "\n" + ablation_markdown(ablation_rows(a.out))
    info = a.out / "run.json"
    if info.exists():
        text += "\n" + read_json(info).get("caption", "") + "\n"
    if a.output:
        a.output.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
