"""The results tables of the five recipes, from the files `examples.sh` leaves in its work folder(s).

`examples.sh` runs every recipe with `ws` commands only. Each `ws eval` summary it wants in the
table is saved as ``OUT/<recipe>/<name>.json`` (one JSON line, exactly what the command printed),
and every `ws` command's wall time is appended to ``OUT/<recipe>/times.tsv`` (``stage<TAB>seconds``).
This script reads those files and prints (or writes) markdown tables:

    python benchmarks/results.py examples-out                          # one run
    python benchmarks/results.py examples-out/seed0 examples-out/seed1 examples-out/seed2 -o results.md

Given several work folders (one per seed: ``bash examples.sh --seeds 0,1,2``) every figure is the
mean +- the sample standard deviation over the runs, and an ablation or the supervised ceiling
counts as holding only when its difference is larger than that spread ("level" otherwise); the
ceiling is checked against every weak row, and both print the per-seed differences they rest on.

Columns of the main table (every pseudo-label figure is on the training images):

- dense pseudo labels mIoU: the label maps a segmentation network would train on, every pixel
  labelled -- thresholded CAMs (CAM only), exported instances merged per class (Fan, LIID, PRM),
  the stage-1 network's labels that DSRG retrains on, the trained network's labels (Sun et al.,
  whose cues are not dense);
- seeds / cues mIoU with unlabelled pixels ignored, and the labelled fraction (Sun, DSRG);
- oracle input: the same measure from the recipe's pipeline fed perfect input at its weakest stage
  (`ws oracle`): the perfect assignment of its proposals (Fan, LIID, PRM: dense mIoU), CAMs that
  are blurred GT masks (Sun, DSRG: cue mIoU, unlabelled ignored; CAM only: thresholded mIoU);
- assignment accuracy / instance coverage (proposal recipes), final semantic mIoU on val,
  weak / fully-supervised ratio, instance AP50 / AP75 / ABO on val, and the recipe's wall time.

A missing file is a dash (a recipe that was not run, or a stage it does not have); a metric file
that exists but is not a number makes the script fail, so a broken stage never hides behind a dash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RECIPES = [
    ("cam", "CAM only (threshold the CAMs; val: with its tags)"),
    ("fan", "Fan et al. (ECCV 2018)"),
    ("liid", "LIID (TPAMI)"),
    ("prm", "Huang et al. (PRM + ICN)"),
    ("sun", "Sun et al. (cues + superpixels)"),
    ("dsrg", "DSRG (CVPR 2018)"),
    ("full", "fully supervised (GT labels)"),
]
WEAK = [k for k, _ in RECIPES if k != "full"]

# row key -> (metric file, keys); a key "a|b" takes a or, failing that, b
METRICS = {
    "pseudo_miou": ("eval_pseudo_train", ("miou|best_miou",)),
    "cues_miou": ("eval_cues_train", ("miou",)),
    "cues_labeled": ("eval_cues_train", ("labeled_fraction",)),
    "oracle_miou": ("eval_oracle_train", ("miou|best_miou",)),
    "assignment_accuracy": ("eval_assignment", ("accuracy",)),
    "coverage": ("eval_assignment", ("coverage",)),
    "val_miou": ("eval_semantic_val", ("miou|best_miou",)),
    "ap50": ("eval_instance_val", ("coco", "AP50")),
    "ap75": ("eval_instance_val", ("coco", "AP75")),
    "abo": ("eval_instance_val", ("abo",)),
}


def read_json(path: Path):
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"{path}: empty (the stage that writes it failed?)")
    return json.loads(lines[-1])


def metric(folder: Path, name: str, *keys):
    """``folder/name.json`` -> the value under ``keys``; None if the file is absent."""
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
    return sum(float(line.split("\t")[1]) for line in path.read_text().splitlines() if line.strip())


def rows(out: Path) -> list[dict]:
    """One run's table: a dict per recipe that ran (floats, None for a dash)."""
    table = []
    full = metric(out / "full", *METRICS["val_miou"][:1], *METRICS["val_miou"][1])
    for key, name in RECIPES:
        d = out / key
        if not d.exists():
            continue
        r = {"key": key, "recipe": name, "seconds": seconds(d)}
        for column, (file, keys) in METRICS.items():
            r[column] = metric(d, file, *keys)
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
    ("sun", "snapped + fused cues vs raw colour cues", "eval_cues_bg_train", "ablation_off", ("miou|best_miou",),
     "cue mIoU, unlabeled = background (train)", "cue mIoU 44.9 / 36.5 (Res38, VOC trainaug, Table 2)"),
    ("dsrg", "growing + retraining vs balanced seeding loss alone", "eval_semantic_val", "ablation_off",
     ("miou|best_miou",), "mIoU (val)", "mIoU 59.0 / 53.6 (VGG16, VOC val, Table 2)"),
    # Table 2's two steps apart: "+DSRG" (the stage-1 network) over "+BSL", "+Retrain" over "+DSRG"
    ("dsrg", "growing (stage 1) vs balanced seeding loss alone", "eval_stage1_val", "ablation_off",
     ("miou|best_miou",), "mIoU (val)", "mIoU 57.6 / 53.6 (+DSRG / +BSL, Table 2)"),
    ("dsrg", "retraining (stage 2) vs stage 1 alone", "eval_semantic_val", "eval_stage1_val",
     ("miou|best_miou",), "mIoU (val)", "mIoU 59.0 / 57.6 (+Retrain / +DSRG, Table 2)"),
]


def ablation_rows(out: Path) -> list[dict]:
    table = []
    for key, what, on, off, keys, measure, paper in ABLATIONS:
        d = out / key
        if not d.exists():
            continue
        table.append({"key": (key, what), "recipe": dict(RECIPES)[key], "ablation": what, "measure": measure,
                      "on": metric(d, on, *keys), "off": metric(d, off, *keys), "paper": paper})
    return table


# --- several runs ---------------------------------------------------------------------------------

class Stat:
    """Mean and sample standard deviation of one figure over runs (None values are dashes)."""

    def __init__(self, values):
        self.values = [v for v in values if v is not None]
        self.n = len(self.values)
        self.mean = statistics.fmean(self.values) if self.values else None
        self.std = statistics.stdev(self.values) if self.n > 1 else None

    def fmt(self, digits=3):
        if self.mean is None:
            return "-"
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def aggregate(tables: list[list[dict]], keys) -> list[dict]:
    """Per recipe (first-seen order), a :class:`Stat` per key over the runs' tables."""
    order, by = [], {}
    for table in tables:
        for r in table:
            if r["key"] not in by:
                order.append(r["key"])
                by[r["key"]] = []
            by[r["key"]].append(r)
    out = []
    for k in order:
        runs = by[k]
        row = {name: runs[0][name] for name in runs[0] if name not in keys}
        row.update({name: Stat([r[name] for r in runs]) for name in keys})
        out.append(row)
    return out


def per_seed(values: list[float]) -> str:
    """The per-run differences behind a verdict, so a reversal on one seed is seen."""
    return "per seed " + ", ".join(f"{v:+.3f}" for v in values)


def verdict(on: Stat, off: Stat, diffs: list[float]) -> str:
    """"holds" / "reversed" when the mean difference is larger than the spread, else "level"."""
    if on.mean is None or off.mean is None:
        return "-"
    d = on.mean - off.mean
    if len(diffs) < 2:
        return f"{d:+.3f}, one seed: no spread"
    spread = max(on.std or 0.0, off.std or 0.0, statistics.stdev(diffs))
    word = "level" if abs(d) <= spread else ("holds" if d > 0 else "reversed")
    return f"{word} ({d:+.3f}, spread {spread:.3f}; {per_seed(diffs)})"


CEILING_MEASURE = {"val_miou": "mIoU", "ap50": "AP50"}


def ceiling(column: str, what: str, table: list[dict], tables: list[list[dict]]) -> str | None:
    """Is the fully supervised row above *every* weak row by more than the spread of the two?

    A weak row with a lower mean but a wider spread can fail where the best one passes, so each is
    checked; the line names the best weak row, the per-run margins over it, and every row short of
    the spread."""
    full = next((r for r in table if r["key"] == "full" and r[column].mean is not None), None)
    weak = [r for r in table if r["key"] in WEAK and r[column].mean is not None]
    if full is None or not weak:
        return None
    best = max(weak, key=lambda r: r[column].mean)
    margin = full[column].mean - best[column].mean
    head = (f"{what}: fully supervised val {CEILING_MEASURE[column]} {full[column].fmt()} vs the best weak row "
            f"({best['recipe']}, {best[column].fmt()}): margin {margin:+.3f}")
    if full[column].n < 2:
        return head + (", above (one seed: no spread)." if margin > 0 else ", NOT above (one seed).")
    short = []
    for r in weak:
        m, spread = full[column].mean - r[column].mean, max(full[column].std or 0.0, r[column].std or 0.0)
        if m <= spread:
            short.append(f"{r['recipe']} {m:+.3f}, spread {spread:.3f}")
    margins = []
    for run in tables:
        by = {r["key"]: r[column] for r in run}
        if by.get("full") is not None and by.get(best["key"]) is not None:
            margins.append(by["full"] - by[best["key"]])
    state = "above every weak row beyond the spread" if not short else \
        "not above every weak row beyond the spread (" + "; ".join(short) + ")"
    return f"{head}, {state}; {per_seed(margins)} over {best['recipe']}."


def ceiling_line(table: list[dict], tables: list[list[dict]] = ()) -> str:
    """The semantic and the instance ceiling lines (see :func:`ceiling`)."""
    lines = [line for line in (ceiling("val_miou", "Semantic ceiling", table, list(tables)),
                               ceiling("ap50", "Instance ceiling", table, list(tables))) if line]
    return "\n".join(lines) + ("\n" if lines else "")


def markdown(table: list[dict]) -> str:
    head = ("| recipe | dense pseudo labels mIoU (train) | seeds / cues mIoU, unlabelled ignored (labelled) | "
            "oracle input (same measure) | assignment accuracy / coverage | val mIoU | weak / full | AP50 | AP75 | "
            "ABO | wall s |")
    lines = [head, "|" + "---|" * 11]
    for r in table:
        assignment = "-" if r["assignment_accuracy"].mean is None else \
            f"{r['assignment_accuracy'].fmt()} / {r['coverage'].fmt()}"
        cues = "-" if r["cues_miou"].mean is None else f"{r['cues_miou'].fmt()} ({r['cues_labeled'].fmt(2)})"
        lines.append(f"| {r['recipe']} | {r['pseudo_miou'].fmt()} | {cues} | {r['oracle_miou'].fmt()} | "
                     f"{assignment} | {r['val_miou'].fmt()} | {r['ratio'].fmt(2)} | {r['ap50'].fmt()} | "
                     f"{r['ap75'].fmt()} | {r['abo'].fmt()} | {r['seconds'].fmt(0)} |")
    return "\n".join(lines) + "\n"


def ablation_markdown(tables: list[list[dict]]) -> str:
    agg = aggregate(tables, ["on", "off"])
    diffs = {}
    for table in tables:
        for r in table:
            if r["on"] is not None and r["off"] is not None:
                diffs.setdefault(r["key"], []).append(r["on"] - r["off"])
    lines = ["| recipe | ablation | measure | with | without | with - without | paper (with / without) |",
             "|" + "---|" * 7]
    for r in agg:
        lines.append(f"| {r['recipe']} | {r['ablation']} | {r['measure']} | {r['on'].fmt()} | {r['off'].fmt()} | "
                     f"{verdict(r['on'], r['off'], diffs.get(r['key'], []))} | {r['paper']} |")
    return "\n".join(lines) + "\n"


def report(folders: list[Path]) -> str:
    keys = ["seconds", "ratio", *METRICS]
    tables = [rows(f) for f in folders]
    table = aggregate(tables, keys)
    seeds = []
    for f in folders:
        info = f / "run.json"
        seeds.append(read_json(info).get("seed") if info.exists() else None)
    n = len(folders)
    text = (f"{'Mean ± sample standard deviation over ' + str(n) + ' runs' if n > 1 else 'One run'} "
            f"(seeds: {', '.join('?' if s is None else str(s) for s in seeds)})"
            f"{'' if n > 1 else ': no spread, so no difference below can be called beyond it'}.\n\n")
    text += markdown(table)
    shared = Stat([seconds(f / "common") for f in folders])
    if shared.mean is not None:
        text += (f"\nShared stages (data, classifier, CAMs, proposals), run once for all recipes: "
                 f"{shared.fmt(0)} s; the recipes' wall times exclude them.\n")
    text += "\n" + ceiling_line(table, tables)
    text += "\n" + ablation_markdown([ablation_rows(f) for f in folders])
    info = folders[0] / "run.json"
    if info.exists():
        text += "\n" + read_json(info).get("caption", "") + "\n"
    return text


def source_hash(root: Path = REPO) -> str:
    """A hash of the code a run of examples.sh is made by: every file of the ``wstools`` package
    this Python imports (the one ``ws`` runs; caches aside), and ``examples.sh``,
    ``benchmarks/*.py`` and ``pyproject.toml`` of ``root``, as they are on disk. examples.sh
    records it in ``run.json``; tests/test_examples.py reuses a finished run whose hash is its
    own instead of running the recipes again."""
    import importlib.util

    spec = importlib.util.find_spec("wstools")
    package = Path(spec.origin).parent if spec is not None and spec.origin else root / "wstools"
    files = [("wstools/" + p.relative_to(package).as_posix(), p) for p in package.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    files += [(p.relative_to(root).as_posix(), p) for p in
              [*(root / "benchmarks").glob("*.py"), root / "examples.sh", root / "pyproject.toml"]]
    h = hashlib.sha256()
    for name, p in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, nargs="*", help="the work folder(s) of examples.sh, one per seed")
    ap.add_argument("-o", "--output", type=Path, default=None, help="write the tables here (markdown)")
    ap.add_argument("--source-hash", action="store_true",
                    help="print the hash of the code examples.sh runs (recorded in run.json) and exit")
    a = ap.parse_args()
    if a.source_hash:
        print(source_hash())
        return
    if not a.out:
        ap.error("give the work folder(s) of examples.sh")
    for f in a.out:
        if not f.is_dir():
            raise SystemExit(f"{f}: not a folder")
    text = report(a.out)
    if a.output:
        a.output.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
