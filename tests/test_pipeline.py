"""End-to-end smoke runs of the pipelines on tiny toy data, through the command line (conftest.run_ws).

Each stage reads the previous stage's file, exactly as a shell script chains them.
"""

import numpy as np
import pytest

from wstools.eval.assignment import true_labels
from wstools import masks as mask_io
from wstools.io.dataset import load_instances, load_manifest
from wstools.io.flat import write_features
from wstools.io.store import create_store, open_store, read_rles

from conftest import run_ws

pytestmark = pytest.mark.e2e


def _user_features(manifest, proposals_path, out, rng):
    """What a user bringing their own features does: one row per proposal, written as a
    `features` store. Features are noisy one-hot codes of the proposal's true class (from GT),
    probabilities are noisy too (the attention baseline is imperfect)."""
    rows = {k: [] for k in ("image", "proposal", "box", "truth")}
    with open_store(proposals_path, "proposals") as P:
        ids = P.image_ids()
        for i, image_id in enumerate(ids):
            rec = manifest.by_id()[image_id]
            g = P.image(image_id)
            counts = read_rles(g["masks"])
            gt = load_instances(manifest, rec)
            iou = mask_io.iou(counts, gt.counts, rec.height, rec.width)
            truth = true_labels(iou, gt.labels)
            rows["image"] += [i] * len(counts)
            rows["proposal"] += list(range(len(counts)))
            rows["box"].append(g["boxes"][()])
            rows["truth"].append(truth)
        uid = P.as_input()
    truth = np.concatenate(rows["truth"]).astype(np.int64)
    K = manifest.num_classes
    M = len(truth)
    feat = np.eye(K + 1)[truth] * 2.0 + rng.normal(0, 0.6, (M, K + 1))
    feat = np.concatenate([feat, rng.normal(0, 0.3, (M, 8))], 1)
    logits = np.eye(K + 1)[truth] * 1.0 + rng.normal(0, 0.9, (M, K + 1))
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    allowed = np.zeros((M, K + 1), bool)
    allowed[:, 0] = True
    image = np.asarray(rows["image"], dtype=np.int64)
    for i, image_id in enumerate(ids):
        allowed[np.ix_(image == i, manifest.tag_labels(manifest.by_id()[image_id]))] = True
    with create_store(out, "features", classes=manifest.classes, params={"source": "test"}, dataset=manifest,
                      inputs=[uid]) as s:
        write_features(s, image_ids=ids, image=image, proposal=np.asarray(rows["proposal"], dtype=np.int64),
                       box=np.concatenate(rows["box"]), feat=feat, prob=prob, allowed=allowed, truth=truth)


def test_instance_pipeline_propose_graph_cut_eval(toy_dir, tmp_path):
    train = toy_dir / "train.json"
    props = tmp_path / "proposals.h5"
    s = run_ws("propose", train, "-o", props, "--top", "100").json
    assert s["images"] == 24
    ev = run_ws("eval", "proposals", props, "--gt", train).json
    assert ev["mask"]["by_n"]["all"]["recall@0.5"] > 0.5

    m = load_manifest(train)
    feats = tmp_path / "features.h5"
    _user_features(m, props, feats, np.random.default_rng(0))
    run_ws("graph", feats, "-o", tmp_path / "g_liid.h5", "--knn", 3, "--weights", "liid")
    run_ws("graph", feats, "-o", tmp_path / "g_fan.h5", "--knn", 3, "--weights", "fan")
    acc = {}
    for method, graph in (("multiway", "g_liid.h5"), ("attention", "g_liid.h5"), ("fan", "g_fan.h5")):
        out = tmp_path / f"{method}.h5"
        cut = run_ws("cut", tmp_path / graph, "-o", out, "--method", method).json
        assert cut["gap"] is None or cut["gap"] <= 1e-6
        if method == "fan":  # Eq. 8: exactly floor(r n) proposals keep a label
            assert cut["kept"] == cut["target"] == int(0.9 * cut["proposals"])
        res = run_ws("eval", "assignment", out, "--proposals", props, "--gt", train).json
        acc[method] = res["accuracy"]
    # the graph carries the features' evidence: the multi-way cut beats the no-graph baseline.
    # (Fan's retention keeps 90 % while most toy proposals are noise, so its accuracy is low here.)
    assert acc["multiway"] > acc["attention"], acc
    info = run_ws("info", tmp_path / "multiway.h5", "--json").json
    assert info["kind"] == "assignment" and info["inputs"][0]["kind"] == "graph"
