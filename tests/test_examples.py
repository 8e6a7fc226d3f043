"""CI smoke of the five recipes: `bash examples.sh --smoke` on a tiny toy set, end to end.

Numbers at this size mean little; what is asserted is that every recipe runs with `ws`
commands only, every store it writes validates with `ws info`, and every metric of the
results table is a finite number (benchmarks/results.py refuses anything else).
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = ["cam", "fan", "liid", "prm", "sun", "dsrg", "full"]
# what each recipe must report (benchmarks/results.py row keys)
EXPECTED = {
    "cam": ["pseudo_miou", "val_miou"],
    "fan": ["pseudo_miou", "assignment_accuracy", "coverage", "val_miou", "ap50", "ap75", "abo"],
    "liid": ["pseudo_miou", "assignment_accuracy", "coverage", "val_miou", "ap50", "ap75", "abo"],
    "prm": ["pseudo_miou", "val_miou", "ap50", "ap75", "abo"],
    "sun": ["pseudo_miou", "val_miou"],
    "dsrg": ["pseudo_miou", "val_miou"],
    "full": ["val_miou"],
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("examples")
    env = dict(os.environ, OUT=str(out))
    proc = subprocess.run(["bash", str(REPO / "examples.sh"), "--smoke"], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


def test_every_recipe_ran_and_timed_its_stages(smoke):
    out, _ = smoke
    for recipe in ["common"] + RECIPES:
        times = (out / recipe / "times.tsv").read_text().splitlines()
        assert times, recipe
        for line in times:
            stage, seconds = line.split("\t")
            assert stage and math.isfinite(float(seconds)) and float(seconds) >= 0


def test_every_store_validates(smoke):
    out, _ = smoke
    stores = sorted(p for p in out.rglob("*.h5") if not p.name.startswith("."))
    kinds = set()
    for path in stores:
        proc = subprocess.run(["ws", "info", str(path), "--json"], capture_output=True, text=True)
        assert proc.returncode == 0, f"{path}: {proc.stderr}"
        kinds.add(json.loads(proc.stdout.splitlines()[-1])["kind"])
    assert {"proposals", "cams", "features", "graph", "assignment", "labels", "responses"} <= kinds
    exports = sorted(out.glob("*/pseudo.json")) + sorted(out.glob("*/instances_*.json"))
    assert len(exports) >= 5
    for path in exports:
        proc = subprocess.run(["ws", "info", str(path), "--json"], capture_output=True, text=True)
        assert proc.returncode == 0, f"{path}: {proc.stderr}"
        assert json.loads(proc.stdout.splitlines()[-1])["kind"] in ("coco-instances", "coco-results"), path
    assert not list(out.rglob(".*.partial")), "a stage left a half-written output"


def test_results_table_has_a_finite_number_in_every_expected_cell(smoke):
    out, _ = smoke
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import results
    finally:
        sys.path.pop(0)
    rows = {r["recipe"]: r for r in results.rows(out)}
    names = dict(results.RECIPES)
    for recipe, keys in EXPECTED.items():
        row = rows[names[recipe]]
        for key in keys:
            assert row[key] is not None and math.isfinite(row[key]), (recipe, key, row[key])
    ablations = results.ablation_rows(out)
    assert {r["recipe"] for r in ablations} == {names[k] for k in ["fan", "liid", "prm", "sun", "dsrg"]}
    for r in ablations:
        assert math.isfinite(r["on"]) and math.isfinite(r["off"]), r


def test_examples_prints_the_table(smoke):
    _, proc = smoke
    assert "| recipe | pseudo labels mIoU (train)" in proc.stdout
    assert "fully supervised (GT labels)" in proc.stdout


def test_unknown_recipe_is_refused():
    proc = subprocess.run(["bash", str(REPO / "examples.sh"), "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown argument 'nope'" in proc.stderr
