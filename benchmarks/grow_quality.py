"""Cue quality on `ws toy` data: precision (ws eval semantic --unlabeled ignore), mIoU with
unlabelled = background, and coverage, for raw / snapped / colour+gray cues, DSRG seeds before
and after region growing, and with CRF.

Run: OMP_NUM_THREADS=1 python benchmarks/grow_quality.py [--work DIR] [--epochs 2]
Re-run with --cams / --cams-gray to score CAMs from a better classifier (skips training).
"""

import argparse
import json
import subprocess
from pathlib import Path


def ws(*args):
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"ws {' '.join(map(str, args))}: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/grow_quality")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--cams")
    ap.add_argument("--cams-gray")
    a = ap.parse_args()
    w = Path(a.work)
    w.mkdir(parents=True, exist_ok=True)
    man = w / "toy/train.json"
    if not man.exists():
        ws("toy", w / "toy", "--train", 48, "--val", 0, "--size", 64, "--force")
    cams, cams_gray = a.cams, a.cams_gray
    if cams is None:
        for gray, name in ((False, "cls"), (True, "cls_gray")):
            ws("cam", "train", man, "--arch", "tiny", "--epochs", a.epochs, "--crop", 64, "--device", "cpu",
               "--threads", 1, *(["--gray"] if gray else []), "-o", w / f"{name}.pt", "--force")
        ws("cam", "infer", man, "--model", w / "cls.pt", "--scales", "1.0", "--background", "features",
           "--device", "cpu", "--threads", 1, "-o", w / "cams.h5", "--force")
        ws("cam", "infer", man, "--model", w / "cls_gray.pt", "--scales", "1.0", "--device", "cpu",
           "--threads", 1, "-o", w / "cams_gray.h5", "--force")
        cams, cams_gray = w / "cams.h5", w / "cams_gray.h5"
    snap = ["--snap", "felzenszwalb", "--manifest", man]
    runs = {
        "raw cues (rel:0.3, bg features:0.2)": ["seeds", cams, "--fg", "rel:0.3", "--bg", "features:0.2"],
        "snapped cues": ["seeds", cams, "--fg", "rel:0.3", "--bg", "features:0.2", *snap],
        "gray snapped cues": ["seeds", cams_gray, "--fg", "rel:0.3", "--bg", "cams:0.05", *snap],
        "DSRG seeds (top:0.2, bg cams:0.05)": ["seeds", cams, "--fg", "top:0.2", "--bg", "cams:0.05"],
        "DSRG seeds + CRF": ["seeds", cams, "--fg", "top:0.2", "--bg", "cams:0.05", "--crf", "--manifest", man],
    }
    out = {}
    for name, args in runs.items():
        out[name] = w / (str(abs(hash(name))) + ".h5")
        ws("grow", *args, "-o", out[name], "--force")
    out["colour+gray merged"] = w / "merged.h5"
    ws("grow", "seeds", out["snapped cues"], out["gray snapped cues"], "-o", out["colour+gray merged"], "--force")
    out["DSRG seeds, grown"] = w / "grown.h5"
    ws("grow", "region", out["DSRG seeds (top:0.2, bg cams:0.05)"], "--probs", cams, "-o", out["DSRG seeds, grown"],
       "--force")
    out["DSRG seeds, grown + CRF"] = w / "grown_crf.h5"
    ws("grow", "region", out["DSRG seeds (top:0.2, bg cams:0.05)"], "--probs", cams, "--crf", "--manifest", man,
       "-o", out["DSRG seeds, grown + CRF"], "--force")
    print("| cues | pixel precision (ignore) | mIoU (ignore) | mIoU (unlabelled = background) | coverage |")
    print("|---|---|---|---|---|")
    import numpy as np
    from wstools.io.labels import read_labels_group
    from wstools.io.store import open_store
    for name, path in out.items():
        ig = ws("eval", "semantic", path, "--gt", man, "--unlabeled", "ignore")
        bg = ws("eval", "semantic", path, "--gt", man, "--unlabeled", "background")
        s = open_store(path, "labels")
        lab = [read_labels_group(s.image(i)) for i in s.image_ids()]
        cov = float(np.mean(np.concatenate([(x != 255).ravel() for x in lab])))
        print(f"| {name} | {ig.get('pixel_accuracy', float('nan')):.3f} | {ig.get('miou', float('nan')):.3f} | "
              f"{bg.get('miou', float('nan')):.3f} | {cov:.3f} |")


if __name__ == "__main__":
    main()
