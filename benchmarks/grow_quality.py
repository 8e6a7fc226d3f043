"""Cue quality on `ws toy` data, with oracle CAMs (`ws oracle cams`: each tagged class's GT mask,
blurred) next to a classifier's CAMs, so each step is seen with perfect and with real input.

Columns: pixel precision and mIoU with unlabelled pixels ignored, foreground-seed precision,
mIoU with unlabelled = background (Sun et al. Table 2 scores cues this way), coverage.
Rows: Sun et al. (raw cues rel:0.3 + features:0.2, snapped, colour + gray fused) and DSRG
(seeds rel:0.2 + saliency:0.3, the former top:0.2 + saliency:0.06, grown on the CAM
probabilities, grown on their dense CRF as DSRG's layer does).

Before them, in-process sweeps on ground truth: background precision and share of DSRG's
saliency rule per threshold, foreground precision of rel:0.2 / top:0.2 against the oracle blur,
and Sun et al.'s snapping at the former (k = min_size = 100) and the current superpixel scale.

Run: OMP_NUM_THREADS=1 python benchmarks/grow_quality.py [--work DIR] [--train 48 --size 64] [--epochs 2]
     [--oracle-only]
Re-run with --cams / --cams-gray to score CAMs from a better classifier (skips training).
"""

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np


def ws(*args):
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"ws {' '.join(map(str, args))}: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}


def score(path, gts, k):
    """(precision, foreground precision, mIoU ignore, mIoU background, coverage) of a labels store."""
    from wstools.eval.semantic import confusion, scores
    from wstools.io.labels import read_labels_group
    from wstools.io.store import open_store

    s = open_store(path, "labels")
    ig = bg = 0
    ok = tot = fok = ftot = lab = px = 0
    for i in s.image_ids():
        x, gt = read_labels_group(s.image(i)), gts[i]
        ig = ig + confusion(gt, x, k, unlabeled="ignore")
        bg = bg + confusion(gt, x, k, unlabeled="background")
        v = (x != 255) & (gt != 255)
        ok, tot = ok + int((x[v] == gt[v]).sum()), tot + int(v.sum())
        f = v & (x != 0)
        fok, ftot = fok + int((x[f] == gt[f]).sum()), ftot + int(f.sum())
        lab, px = lab + int((x != 255).sum()), px + x.size
    return ok / max(tot, 1), fok / max(ftot, 1), scores(ig)["miou"], scores(bg)["miou"], lab / max(px, 1)


def rows(w, tag, cams, cams_gray, man):
    """Run the Sun et al. and DSRG cue steps on one CAM store; returns {row name: labels store}."""
    snap = ["--snap", "felzenszwalb", "--manifest", man]
    sun = ["--fg", "rel:0.3", "--bg", "features:0.2"]
    out = {}

    def seeds(name, *args):
        out[name] = w / f"{tag}_{len(out)}.h5"
        ws("grow", "seeds", *args, "-o", out[name], "--force")

    seeds("Sun: raw cues (rel:0.3, features:0.2)", cams, *sun)
    seeds("Sun: snapped cues", cams, *sun, *snap)
    if cams_gray is not None:
        seeds("Sun: gray snapped cues", cams_gray, *sun, *snap)
        seeds("Sun: colour + gray snapped, fused", out["Sun: snapped cues"], out["Sun: gray snapped cues"])
    seeds("DSRG: seeds (rel:0.2, saliency:0.3)", cams, "--fg", "rel:0.2", "--bg", "saliency:0.3", "--manifest", man)
    seeds("DSRG: former seeds (top:0.2, saliency:0.06)", cams, "--fg", "top:0.2", "--bg", "saliency:0.06",
          "--manifest", man)
    dsrg = out["DSRG: seeds (rel:0.2, saliency:0.3)"]
    out["DSRG: seeds grown on the CAM probabilities"] = w / f"{tag}_grown.h5"
    ws("grow", "region", dsrg, "--probs", cams, "-o", out["DSRG: seeds grown on the CAM probabilities"], "--force")
    out["DSRG: seeds grown on their CRF (--grow-crf)"] = w / f"{tag}_grown_crf.h5"
    ws("grow", "region", dsrg, "--probs", cams, "--grow-crf", "--manifest", man,
       "-o", out["DSRG: seeds grown on their CRF (--grow-crf)"], "--force")
    return out


def oracle_sweeps(m, gts, k):
    """In-process sweeps on ground truth: DSRG's saliency background threshold, the foreground rule's
    precision against the oracle blur, and snapping at the former and the current superpixel scale."""
    from wstools.eval.oracle import oracle_cams
    from wstools.eval.semantic import confusion, scores
    from wstools.grow import cue_map
    from wstools.grow.snap import snap_seeds
    from wstools.proposals.hierarchy import superpixels
    from wstools.proposals.saliency import saliency_map

    data = []
    for r in m.images:
        gt = gts[r.id]
        data.append((m.read_image(r), gt, [c for c in range(1, k + 1) if (gt == c).any()]))
    sal = [saliency_map(img) for img, _, _ in data]
    print("| `--bg saliency:T` | " + " | ".join(f"{t:g}" for t in SALIENCY_T) + " |")
    print("|---|" + "---|" * len(SALIENCY_T))
    prec, share = [], []
    for t in SALIENCY_T:
        bg = [(s < t) & (gt != 255) for s, (_, gt, _) in zip(sal, data)]
        prec.append(sum(int((gt[b] == 0).sum()) for b, (_, gt, _) in zip(bg, data)) / max(sum(int(b.sum()) for b in bg), 1))
        share.append(np.mean([b.mean() for b in bg]))
    print("| background precision | " + " | ".join(f"{x:.3f}" for x in prec) + " |")
    print("| share of the image | " + " | ".join(f"{x:.3f}" for x in share) + " |")
    print()
    print("| oracle blur (px) | foreground precision, rel:0.2 | top:0.2 | cue mIoU (ignore) raw rel:0.3 + features:0.2 "
          "| snapped, k = min_size = 100 (former) | snapped, --snap-k 250 per area (default) |")
    print("|---|---|---|---|---|---|")
    former = [superpixels(img, 100) for img, _, _ in data]
    current = [superpixels(img, 250, per_area=True) for img, _, _ in data]
    for sigma in (0.5, 1.0, 2.0):
        fp = {}
        pairs = {"raw": [], "former": [], "current": []}
        for (img, gt, tags), f_seg, c_seg in zip(data, former, current):
            cams, background = oracle_cams(gt, tags, sigma=sigma)
            for rule in (("rel", 0.2), ("top", 0.2)):
                x = cue_map(cams, tags, fg=rule, bg=("none", 0))
                f = (x != 255) & (gt != 255)
                ok, n = fp.get(rule, (0, 0))
                fp[rule] = (ok + int((x[f] == gt[f]).sum()), n + int(f.sum()))
            raw = cue_map(cams, tags, fg=("rel", 0.3), bg=("features", 0.2), background=background)
            pairs["raw"].append((raw, gt))
            pairs["former"].append((snap_seeds(raw, f_seg, k + 1, 0.3), gt))
            pairs["current"].append((snap_seeds(raw, c_seg, k + 1, 0.3), gt))
        miou = {n: scores(sum(confusion(gt, x, k, unlabeled="ignore") for x, gt in v))["miou"] for n, v in pairs.items()}
        print(f"| {sigma:g} | {fp[('rel', 0.2)][0] / max(fp[('rel', 0.2)][1], 1):.3f} | "
              f"{fp[('top', 0.2)][0] / max(fp[('top', 0.2)][1], 1):.3f} | {miou['raw']:.3f} | {miou['former']:.3f} | "
              f"{miou['current']:.3f} |")
    print(f"superpixels per image: former {np.mean([s.max() + 1 for s in former]):.0f}, "
          f"default {np.mean([s.max() + 1 for s in current]):.0f}")
    print()


SALIENCY_T = (0.06, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/grow_quality")
    ap.add_argument("--train", type=int, default=48)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--sigma", type=float, default=2.0, help="blur of the oracle CAMs (ws oracle cams --sigma)")
    ap.add_argument("--oracle-only", action="store_true", help="skip the classifier (oracle rows only)")
    ap.add_argument("--cams")
    ap.add_argument("--cams-gray")
    a = ap.parse_args()
    w = Path(a.work)
    w.mkdir(parents=True, exist_ok=True)
    man = w / "toy/train.json"
    if not man.exists():
        ws("toy", w / "toy", "--train", a.train, "--val", 0, "--size", a.size, "--force")
    from wstools.io.dataset import load_manifest, load_semantic
    m = load_manifest(man)
    gts = {r.id: load_semantic(m, r) for r in m.images}
    k = len(m.classes)
    print(f"{len(m.images)} train images of {a.size} px; "
          f"`OMP_NUM_THREADS=1 python benchmarks/grow_quality.py --train {a.train} --size {a.size}"
          f"{' --oracle-only' if a.oracle_only else ''}`")
    print()
    oracle_sweeps(m, gts, k)
    ws("oracle", "cams", man, "--sigma", a.sigma, "-o", w / "oracle_cams.h5", "--force")
    runs = {f"oracle CAMs (sigma {a.sigma:g})": rows(w, "oracle", w / "oracle_cams.h5", None, man)}
    cams, cams_gray = a.cams, a.cams_gray
    if cams is None and not a.oracle_only:
        for gray, name in ((False, "cls"), (True, "cls_gray")):
            ws("cam", "train", man, "--arch", "tiny", "--epochs", a.epochs, "--crop", a.size, "--device", "cpu",
               "--threads", 1, *(["--gray"] if gray else []), "-o", w / f"{name}.pt", "--force")
        for name in ("cls", "cls_gray"):  # Sun et al.: the feature-map background rule for both classifiers
            ws("cam", "infer", man, "--model", w / f"{name}.pt", "--scales", "1.0", "--background", "features",
               "--device", "cpu", "--threads", 1, "-o", w / f"cams_{name}.h5", "--force")
        cams, cams_gray = w / "cams_cls.h5", w / "cams_cls_gray.h5"
    if cams is not None:
        runs["classifier CAMs"] = rows(w, "real", cams, cams_gray, man)
    print("| input | cues | precision (ignore) | foreground precision | mIoU (ignore) | "
          "mIoU (unlabelled = background) | coverage |")
    print("|---|---|---|---|---|---|---|")
    for source, out in runs.items():
        for name, path in out.items():
            p, fp, mi, mb, cov = score(path, gts, k)
            print(f"| {source} | {name} | {p:.3f} | {fp:.3f} | {mi:.3f} | {mb:.3f} | {cov:.3f} |")


if __name__ == "__main__":
    main()
