"""Quality of `ws features` probabilities on `ws toy` images (no synthetic features anywhere).

Pipeline (all through the `ws` CLI, CPU, --arch tiny): ws toy -> ws propose --top N ->
ws cam train -> ws cam infer -> ws features (box-mean = Fan Eq. 2, mean+max = LIID Eq. 3)
and ws features train-mil (LIID Eq. 9 with alpha = beta = 0.5, and the CAM-only ablation
alpha = 1, beta = 0 of LIID Table 2) -> ws features from the MIL checkpoint. Each features
store is then cut three ways and scored by `ws eval assignment` on the training images:
attention argmax of the probabilities ("without knowledge graph", LIID Tables 1-5 w1),
and ws graph + ws cut --method multiway / --method fan ("with", w2). Per source also the AUC of
p(true label) (for each tag: its true instances vs the noise proposals of its images;
`wstools.features.quality`). Oracle rows: the CAM box-mean store's probabilities replaced by
oracle ones (0.6 on the true label, the rest spread over the allowed labels,
`wstools.cut.oracle`), then the same `ws graph` + `ws cut`: kept = true instances the cut labels
correctly, of those the oracle's argmax does (all of them); the ceiling of the graph + cut.

``--recipe-oracle``: only the oracle table, on the stores the `liid` and `fan` blocks of
examples.sh make (60 toy images of 96 px, the `--recipe toy` classifier trained 3 epochs on its
own 1,500 toy images of 64 px, segment proposals and salient instances, LIID's MIL network
trained --mil-epochs, default 1 as the default examples.sh run), plus the AUC of each store.

    OMP_NUM_THREADS=1 python benchmarks/features_quality.py              # ~10 min on 2 busy cores
    OMP_NUM_THREADS=1 python benchmarks/features_quality.py --train 200 --cam-epochs 4   # quicker
    OMP_NUM_THREADS=1 python benchmarks/features_quality.py --recipe-oracle --out DIR      # ~3 min
    python benchmarks/features_quality.py --out DIR    # a re-run keeps the files DIR already has

Reports accuracy over all proposals (true label: GT instance of mask IoU >= 0.5, else noise),
noisy proposals kept, good ones rejected, wrong class, and instance coverage (share of GT
instances with a proposal of IoU >= 0.5 labelled with their class) against the oracle.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path


def ws(*args, env=None, timeout=None, reuse=None) -> dict | None:
    """Run ``ws ARGS``; its JSON summary. ``reuse``: an output file that, when it exists already
    (a re-run with --out), is kept (returns {}); ``timeout``: seconds, then None."""
    if reuse is not None and Path(reuse).exists():
        return {}
    try:
        out = subprocess.run(["ws", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        raise SystemExit(f"ws {' '.join(map(str, args))} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--top", type=int, default=20, help="proposals per image (LIID: 20)")
    ap.add_argument("--cam-epochs", type=int, default=8)
    ap.add_argument("--mil-epochs", type=int, default=4)
    ap.add_argument("--mil-min-steps", type=int, default=0, help="ws features train-mil --min-steps")
    ap.add_argument("--mil-optimizer", default="adam", help="adam (tiny net from the classifier) or sgd (LIID)")
    ap.add_argument("--mil-lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fan-timeout", type=float, default=90.0, help="seconds per `ws cut --method fan` run")
    ap.add_argument("--out", default=None)
    ap.add_argument("--recipe-oracle", action="store_true", help="only the oracle table of the recipes' stores")
    a = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    d = Path(a.out or tempfile.mkdtemp(prefix="features_quality_"))
    d.mkdir(parents=True, exist_ok=True)
    T = ["--threads", a.threads, "-q", "--force"]
    if a.recipe_oracle:
        return recipe_oracle(a, d, T, env)
    t0 = time.perf_counter()
    m = d / "toy" / "train.json"
    ws("toy", d / "toy", "--train", a.train, "--val", 0, "--size", a.size, "--seed", 0, "--force", "-q", env=env,
       reuse=m)
    ws("propose", m, "--top", a.top, "-o", d / "props.h5", "--force", "-q", env=env, reuse=d / "props.h5")
    ws("cam", "train", m, "--arch", "tiny", "--optimizer", "adam", "--lr", 0.002, "--head-lr-mult", 1,
             "--weight-decay", 0, "--crop", a.size, "--scales", "1,1", "--epochs", a.cam_epochs, *T,
             "-o", d / "cls.pt", env=env, reuse=d / "cls.pt")
    cls = {"metrics": json.loads((d / "cls.log.jsonl").read_text().splitlines()[-1])}
    ws("cam", "infer", m, "--model", d / "cls.pt", "--scales", "1.0", "--no-flip", *T, "-o", d / "cams.h5", env=env,
       reuse=d / "cams.h5")
    sources = {}
    for prob in ("box-mean", "mean+max"):
        f = d / f"f_{prob}.h5"
        ws("features", m, "--proposals", d / "props.h5", "--cams", d / "cams.h5", "--model", d / "cls.pt",
           "--prob", prob, "--proposals-per-image", a.top, *T, "-o", f, env=env, reuse=f)
        sources[f"CAM {prob}"] = f
    mil = {}
    for name, (alpha, beta) in {"MIL a=b=0.5": (0.5, 0.5), "MIL CAM-only a=1 b=0": (1.0, 0.0)}.items():
        ck = d / f"mil_{alpha}_{beta}.pt"
        r = ws("features", "train-mil", m, "--proposals", d / "props.h5", "--cams", d / "cams.h5", "--arch", "tiny",
               "--init", d / "cls.pt", "--epochs", a.mil_epochs, "--min-steps", a.mil_min_steps, "--optimizer", a.mil_optimizer, "--lr", a.mil_lr,
               "--alpha", alpha, "--beta", beta, "--proposals-per-image", a.top, *T, "-o", ck, env=env, reuse=ck)
        mil[name] = json.loads(ck.with_suffix(".log.jsonl").read_text().splitlines()[-1])
        f = d / f"f_mil_{alpha}_{beta}.h5"
        ws("features", m, "--proposals", d / "props.h5", "--model", ck, *T, "-o", f, env=env, reuse=f)
        sources[name] = f
    rows = []
    for name, f in sources.items():
        g_fan, g_liid = d / "g_fan.h5", d / "g_liid.h5"
        ws("graph", f, "-o", g_fan, "--knn", 3, "--weights", "fan", *T, env=env)
        ws("graph", f, "-o", g_liid, "--weights", "liid", *T, env=env)
        for cut, graph, extra in (("attention", g_fan, []), ("multiway", g_liid, []),
                                  ("fan", g_fan, ["--beta", 30, "--retention", 0.9])):
            asg = d / "asg.h5"
            t1 = time.perf_counter()
            c = ws("cut", graph, "-o", asg, "--method", cut, *extra, "-q", "--force", env=env,
                   timeout=a.fan_timeout if cut == "fan" else None)
            if c is None:
                rows.append((name, cut, None, time.perf_counter() - t1))
                continue
            e = ws("eval", "assignment", asg, "--proposals", d / "props.h5", "--gt", m, "-q", env=env)
            rows.append((name, cut, e, time.perf_counter() - t1))
    print(f"\n`ws toy --train {a.train} --size {a.size}`, `ws propose --top {a.top}`, tiny classifier "
          f"{a.cam_epochs} epochs (train mAP {cls['metrics'].get('train_map', float('nan')):.3f}), MIL "
          f"{a.mil_epochs} epochs ({a.mil_optimizer}, lr {a.mil_lr}); "
          f"{rows[0][2]['proposals']} proposals, {rows[0][2]['true_noise']} of them noise, "
          f"{rows[0][2]['instances']} GT instances, oracle coverage {rows[0][2]['oracle_coverage']:.3f}\n")
    print("| probabilities | cut | accuracy | noisy kept | good rejected | wrong class | coverage |")
    print("|---|---|---|---|---|---|---|")
    for name, cut, e, secs in rows:
        label = {"attention": "argmax (no graph)", "multiway": "graph + multiway", "fan": "graph + fan"}[cut]
        if e is None:
            print(f"| {name} | {label} | not finished in {secs:.0f} s | | | | |")
            continue
        print(f"| {name} | {label} | {e['accuracy']:.3f} | {e['noisy_kept']} | {e['good_rejected']} | "
              f"{e['wrong_class']} | {e['coverage']:.3f} |")
    print("\n| probabilities | AUC p(true label) | AUC 1 - p(noise) | mean p(noise): true instances | noise |")
    print("|---|---|---|---|---|")
    for name, f in sources.items():
        q = _auc(f)
        print(f"| {name} | {q['auc_true_label']:.3f} | {q['auc_objectness']:.3f} | {q['p_noise_true']:.3f} | "
              f"{q['p_noise_noise']:.3f} |")
    print("\nOracle probabilities on the features of the CAM box-mean store (`ws graph` + `ws cut`):\n")
    print("| graph | cut | kept / true instances | components | largest | max degree |")
    print("|---|---|---|---|---|---|")
    for graph_opts, cut_opts, kept, total, g in _oracle_rows(sources["CAM box-mean"], d, T, env):
        print(f"| `{' '.join(map(str, graph_opts))}` | `{' '.join(map(str, cut_opts))}` | {kept} / {total} "
              f"({kept / max(total, 1):.2f}) | {g['components']} | {g['largest_component']} | {g['max_degree']} |")
    print("\nMIL final epoch: " + "; ".join(f"{k}: " + ", ".join(f"{n} {v:.3f}" for n, v in r.items()
                                                              if n.startswith("loss")) for k, r in mil.items()))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; files in {d}")


def recipe_oracle(a, d, T, env):
    t0 = time.perf_counter()
    m = d / "toy" / "train.json"
    ws("toy", d / "toy", "--train", a.train, "--val", 0, "--size", a.size, "--seed", 0, "--force", "-q", env=env,
       reuse=m)
    ws("toy", d / "camtoy", "--train", 1500, "--val", 0, "--size", 64, "--seed", 1, "--force", "-q", env=env,
       reuse=d / "camtoy" / "train.json")
    ws("cam", "train", d / "camtoy" / "train.json", "--recipe", "toy", "--epochs", a.cam_epochs, *T,
       "-o", d / "cls.pt", env=env, reuse=d / "cls.pt")
    ws("cam", "infer", m, "--model", d / "cls.pt", "--scales", "1.0,0.5", "--background", "features", *T,
       "-o", d / "cams.h5", env=env, reuse=d / "cams.h5")
    ws("propose", m, "--top", a.top, "-o", d / "props.h5", "--force", "-q", env=env, reuse=d / "props.h5")
    ws("propose", m, "--method", "saliency", "--nms", 0.7, "--top", a.top, "-o", d / "salient.h5", "--force", "-q",
       env=env, reuse=d / "salient.h5")
    ws("features", "train-mil", m, "--proposals", d / "props.h5", "--cams", d / "cams.h5", "--arch", "tiny",
       "--optimizer", "adam", "--lr", a.mil_lr, "--batch-size", 8, "--init", d / "cls.pt", "--proposals-per-image",
       a.top, "--epochs", a.mil_epochs, "--min-steps", a.mil_min_steps, *T, "-o", d / "mil.pt", env=env,
       reuse=d / "mil.pt")
    stores = {}
    for props in ("props", "salient"):
        f = d / f"f_mil_{props}.h5"
        ws("features", m, "--proposals", d / f"{props}.h5", "--model", d / "mil.pt", "--proposals-per-image", a.top,
           *T, "-o", f, env=env, reuse=f)
        stores[f"MIL, {'segment proposals' if props == 'props' else 'salient instances'}"] = f
    f = d / "f_cls_salient.h5"
    ws("features", m, "--proposals", d / "salient.h5", "--cams", d / "cams.h5", "--model", d / "cls.pt",
       "--prob", "box-mean", "--proposals-per-image", a.top, *T, "-o", f, env=env, reuse=f)
    stores["classifier box-mean, salient instances"] = f
    print(f"\n`ws toy --train {a.train} --size {a.size}`, classifier `--recipe toy --epochs {a.cam_epochs}` on 1,500 "
          f"toy images, MIL {a.mil_epochs} epoch(s) (--min-steps {a.mil_min_steps})\n")
    print("| features | AUC p(true label) | graph | cut | kept / true instances | components | largest | max degree |")
    print("|---|---|---|---|---|---|---|---|")
    for name, f in stores.items():
        q = _auc(f)
        for graph_opts, cut_opts, kept, total, g in _oracle_rows(f, d, T, env):
            print(f"| {name} | {q['auc_true_label']:.3f} | `{' '.join(map(str, graph_opts))}` | "
                  f"`{' '.join(map(str, cut_opts))}` | {kept} / {total} ({kept / max(total, 1):.2f}) | "
                  f"{g['components']} | {g['largest_component']} | {g['max_degree']} |", flush=True)
    print("\nThe stores' own probabilities, `ws graph --weights liid`: true instances the cut labels correctly\n")
    print("| features | `ws cut --method attention` | `multiway --labels tags` | `multiway --labels free` |")
    print("|---|---|---|---|")
    import h5py

    from wstools.cut.oracle import kept_instances

    for name, f in stores.items():
        ws("graph", f, "-o", d / "g_real.h5", "--weights", "liid", *T, env=env)
        cells = []
        for cut_opts in (["--method", "attention"], ["--method", "multiway"], ["--method", "multiway", "--labels",
                                                                                 "free"]):
            ws("cut", d / "g_real.h5", "-o", d / "a_real.h5", *cut_opts, "-q", "--force", env=env)
            with h5py.File(d / "a_real.h5", "r") as h:
                cells.append("%d / %d" % kept_instances(h["labels"][()], h["truth"][()]))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; files in {d}")


def _auc(path) -> dict:
    from wstools.features.quality import true_label_auc
    from wstools.io.flat import read_features
    from wstools.io.store import open_store

    with open_store(path, "features") as s:
        f = read_features(s, len(s.classes))
    return true_label_auc(f["prob"], f["allowed"], f["truth"])


ORACLE_RUNS = (
    (["--weights", "liid"], ["--method", "multiway"]),
    (["--weights", "liid"], ["--method", "multiway", "--labels", "free"]),
    (["--weights", "liid", "--delta", 1], ["--method", "multiway"]),
    (["--weights", "liid", "--knn", 3], ["--method", "multiway"]),
    (["--knn", 3, "--weights", "eq10", "--delta", 5, "--edges", "union"], ["--method", "multiway"]),
    (["--knn", 3, "--weights", "fan"], ["--method", "fan", "--beta", 30, "--retention", 0.9]),
)


def _oracle_rows(features, d, T, env):
    import shutil

    import h5py

    from wstools.cut.oracle import kept_instances, oracle_probabilities

    oracle = d / "f_oracle.h5"
    shutil.copy(features, oracle)
    with h5py.File(oracle, "r+") as h:
        truth = h["truth"][()]
        h["prob"][...] = oracle_probabilities(truth, h["allowed"][()])
    for graph_opts, cut_opts in ORACLE_RUNS:
        g = ws("graph", oracle, "-o", d / "g_oracle.h5", *graph_opts, *T, env=env)
        ws("cut", d / "g_oracle.h5", "-o", d / "a_oracle.h5", *cut_opts, "-q", "--force", env=env)
        with h5py.File(d / "a_oracle.h5", "r") as h:
            kept, total = kept_instances(h["labels"][()], truth)
        yield graph_opts, cut_opts, kept, total, g


if __name__ == "__main__":
    main()
