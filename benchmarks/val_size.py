"""The semantic networks of examples.sh scored on a larger val set: how much of a figure's spread
over seeds is the 40 val images, and do the DSRG ablations and the semantic ceiling read the same
with fewer sampling errors?

examples.sh scores every network on the 40 val images of its toy data. An ablation whose two
networks differ by 0.01-0.03 mIoU is then within the noise of which 40 images were drawn. `ws
toy` is prefix-stable (the first 40 val images of ``--val 400`` are the run's 40), so this
script writes, per examples.sh work folder (one per seed), the same toy data with ``--val N``
images, predicts it with each semantic network of the run exactly as examples.sh predicts its
own 40 (``--crf``; Sun et al.'s with ``--classifier``), scores it with ``ws eval semantic``, and
prints both val sizes side by side with results.py's verdicts (mean +- sample standard
deviation over the folders; a difference counts only when it is larger than its spread):

    bash examples.sh --full
    python benchmarks/val_size.py OUT/seed0 OUT/seed1 OUT/seed2 --val 400 --work /tmp/val_size

No network is trained. Per folder: one ``ws toy``, five ``ws predict`` and five ``ws eval
semantic`` (about a minute on 2 cores for 400 images); predictions already in ``--work`` are reused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dsrg_oracle import device_of, recorded_command, ws  # noqa: E402
from results import Stat, metric, verdict  # noqa: E402

# (row, recipe folder, checkpoint, examples.sh's eval summary of its 40 val images, extra predict flags)
NETWORKS = [
    ("Sun et al. (cues + superpixels)", "sun", "deeplab.pt", "eval_semantic_val", ("--classifier", "common/cls.pt")),
    ("DSRG: seeding loss alone", "dsrg", "deeplab_seed_only.pt", "ablation_off", ()),
    ("DSRG: growing (stage 1)", "dsrg", "deeplab.stage1.pt", "eval_stage1_val", ()),
    ("DSRG: growing + retraining (stage 2, the recipe)", "dsrg", "deeplab.pt", "eval_semantic_val", ()),
    ("fully supervised (GT labels)", "full", "deeplab.pt", "eval_semantic_val", ()),
]
# (what, with, without): rows of NETWORKS by position
COMPARISONS = [
    ("DSRG growing + retraining vs seeding loss alone", 3, 1),
    ("DSRG growing (stage 1) vs seeding loss alone", 2, 1),
    ("DSRG retraining (stage 2) vs stage 1 alone", 3, 2),
    ("fully supervised vs DSRG (the recipe)", 4, 3),
    ("fully supervised vs Sun et al.", 4, 0),
]


def larger_val(folder: Path, n: int, work: Path) -> Path:
    """The run's toy data with ``n`` val images in ``work/toy``; refused unless its first val
    images are the run's, pixel for pixel."""
    from PIL import Image

    run = json.loads((folder / "run.json").read_text())
    train = json.loads((folder / "toy" / "train.json").read_text())
    val = json.loads((folder / "toy" / "val.json").read_text())
    size = train["images"][0]["width"]
    ws("toy", work / "toy", "--train", len(train["images"]), "--val", n, "--size", size, "--seed", run["seed"],
       "--force")
    big = json.loads((work / "toy" / "val.json").read_text())
    for mine, theirs in zip(big["images"], val["images"]):
        same = mine["id"] == theirs["id"] and mine["tags"] == theirs["tags"] and all(
            np.array_equal(np.asarray(Image.open(work / "toy" / mine[k])),
                           np.asarray(Image.open(folder / "toy" / theirs[k]))) for k in ("image", "semantic"))
        if not same:
            raise SystemExit(f"{work / 'toy'}: val image {mine['id']} differs from {folder / 'toy'}'s: "
                             "ws toy is not prefix-stable here, the two val sets are not comparable")
    return work / "toy" / "val.json"


def run_folder(folder: Path, n: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    val = larger_val(folder, n, work)
    small, large = [], []
    for i, (_, recipe, checkpoint, summary, extra) in enumerate(NETWORKS):
        model = folder / recipe / checkpoint
        device = device_of(recorded_command(model))
        small.append(metric(folder / recipe, summary, "miou|best_miou"))
        pred, name = work / f"net{i}_val.h5", f"eval_net{i}_val"
        if not ((work / f"{name}.json").exists() and pred.exists()
                and json.loads((work / f"{name}.json").read_text().splitlines()[-1]).get("model") == str(model)):
            flags = [str(folder / x) if x.endswith(".pt") else x for x in extra]
            ws("predict", val, "--model", model, *flags, "--crf", "--device", device, "-o", pred, "--force")
            summary_line = json.loads(ws("eval", "semantic", pred, "--gt", val).splitlines()[-1])
            (work / f"{name}.json").write_text(json.dumps({**summary_line, "model": str(model)}) + "\n")
        large.append(metric(work, name, "miou|best_miou"))
    return {"small": small, "large": large, "seconds": time.time() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+", help="examples.sh work folders, one per seed")
    ap.add_argument("--val", type=int, default=400, help="val images of the larger set (default 400)")
    ap.add_argument("--work", type=Path, required=True, help="where the larger toy sets and predictions go")
    a = ap.parse_args()
    runs = []
    for i, folder in enumerate(a.folders):
        r = run_folder(folder, a.val, a.work / f"{i}_{folder.name}")
        runs.append(r)
        print(f"{folder}: {a.val} val images scored in {r['seconds']:.0f} s", file=sys.stderr)
    sizes = (("small", "40 val images (examples.sh)"), ("large", f"{a.val} val images"))
    n = len(runs)
    print(f"val mIoU, {'mean ± sample standard deviation over ' + str(n) + ' runs' if n > 1 else 'one run'}"
          f" ({', '.join(str(f) for f in a.folders)}):\n")
    print("| network | " + " | ".join(title for _, title in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for i, (row, *_) in enumerate(NETWORKS):
        print(f"| {row} | " + " | ".join(Stat([r[k][i] for r in runs]).fmt() for k, _ in sizes) + " |")
    print("\n| comparison | " + " | ".join(title for _, title in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for what, on, off in COMPARISONS:
        cells = []
        for k, _ in sizes:
            x, y = [r[k][on] for r in runs], [r[k][off] for r in runs]
            # a run made before examples.sh scored a network (DSRG's stage 1) has no 40-image figure
            cells.append(verdict(Stat(x), Stat(y), [p - q for p, q in zip(x, y) if p is not None and q is not None]))
        print(f"| {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
