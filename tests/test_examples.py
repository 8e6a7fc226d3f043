"""The five recipes end to end: a finished run of `bash examples.sh`, every recipe, on toy data.

The run is CI's own when it can be: `.ci/run` runs `bash examples.sh` (the default sizes, into
`examples-out/`) just before the tests, so the examples run once in CI. That folder is used when
its `run.json` says it is a finished run of every recipe (no arguments, or `--smoke`) made by the
code of this checkout (`benchmarks/results.py --source-hash`, recorded by examples.sh; run.json
and results.md are removed when a run starts and written at its end). Otherwise the fixture runs
`bash examples.sh --smoke` on a tiny toy set here.

Numbers at the smoke size mean little; what is asserted is that every recipe runs with `ws`
commands only, every store it writes validates with `ws info`, and every metric of the
results table is a finite number (benchmarks/results.py refuses anything else).
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_ws

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
CI_OUT = REPO / "examples-out"     # where .ci/run's `bash examples.sh` writes, before pytest
RECIPES = ["cam", "fan", "liid", "prm", "sun", "dsrg", "full"]
# what each recipe must report (benchmarks/results.py row keys)
EXPECTED = {
    "cam": ["pseudo_miou", "oracle_miou", "val_miou"],
    "fan": ["pseudo_miou", "oracle_miou", "assignment_accuracy", "coverage", "val_miou", "ap50", "ap75", "abo"],
    "liid": ["pseudo_miou", "oracle_miou", "assignment_accuracy", "coverage", "val_miou", "ap50", "ap75", "abo"],
    "prm": ["pseudo_miou", "oracle_miou", "val_miou", "ap50", "ap75", "abo"],
    "sun": ["pseudo_miou", "cues_miou", "cues_labeled", "oracle_miou", "val_miou"],
    "dsrg": ["pseudo_miou", "cues_miou", "cues_labeled", "oracle_miou", "val_miou"],
    "full": ["val_miou", "ap50", "ap75", "abo"],
}


TIMEOUT = 900   # seconds; the smoke takes about 3 minutes on 2 cores


def _last_stages(out, n=3):
    lines = []
    for times in sorted(out.glob("*/times.tsv"), key=lambda p: p.stat().st_mtime):
        lines += [f"{times.parent.name}: {line}" for line in times.read_text().splitlines()]
    return lines[-n:]


def _dump_stacks(session):
    """SIGABRT every python process of the run: with PYTHONFAULTHANDLER=1 each prints its stacks."""
    ps = subprocess.run(["ps", "-eo", "pid,sid,etime,pcpu,args"], capture_output=True, text=True).stdout
    tree = [line for line in ps.splitlines()[1:] if line.split()[1] == str(session)]
    for line in tree:
        if "python" in line or "/ws " in line or line.split()[4].endswith("ws"):
            try:
                os.kill(int(line.split()[0]), signal.SIGABRT)
            except ProcessLookupError:
                pass
    return tree


def _results():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import results
    finally:
        sys.path.pop(0)
    return results


def finished_run(out: Path):
    """``out`` if it holds a finished `bash examples.sh` or `bash examples.sh --smoke` run (every
    recipe, toy data, seed 0) made by the code under test, else None."""
    info, table = out / "run.json", out / "results.md"
    if not (info.is_file() and table.is_file()):
        return None
    try:
        run = json.loads(info.read_text())
    except ValueError:
        return None
    if run.get("args") not in ([], ["--smoke"]) or run.get("seed") != 0 or not run.get("source"):
        return None
    return out if run["source"] == _results().source_hash() else None


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """(folder, process) of a finished run of every recipe: CI's examples-out/ when it is one made by
    this code (its process's stdout then is the table examples.sh printed last, results.md), else
    `bash examples.sh --smoke` run here."""
    if finished_run(CI_OUT):
        table = (CI_OUT / "results.md").read_text()
        return CI_OUT, subprocess.CompletedProcess(["bash", str(REPO / "examples.sh")], 0, table, "")
    out = tmp_path_factory.mktemp("examples")
    env = dict(os.environ, OUT=str(out), PYTHONFAULTHANDLER="1", OMP_NUM_THREADS="1")   # one thread: tiny inputs
    with open(out / "stdout.txt", "w") as so, open(out / "stderr.txt", "w") as se:
        proc = subprocess.Popen(["bash", str(REPO / "examples.sh"), "--smoke"], env=env, stdout=so, stderr=se,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            # a hang is only fixable with what was running: the last stages, the process tree, the stacks
            tree = _dump_stacks(proc.pid)
            time.sleep(5)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"examples.sh --smoke ran past {TIMEOUT} s; last finished stages: {_last_stages(out)}\n"
                        + "\n".join(tree) + "\n" + (out / "stderr.txt").read_text()[-12000:])
    stdout, stderr = (out / "stdout.txt").read_text(), (out / "stderr.txt").read_text()
    assert proc.returncode == 0, stderr[-4000:]
    return out, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


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
        proc = run_ws("info", path, "--json", expect=None)
        assert proc.returncode == 0, f"{path}: {proc.stderr}"
        kinds.add(json.loads(proc.stdout.splitlines()[-1])["kind"])
    assert {"proposals", "cams", "features", "graph", "assignment", "labels", "responses"} <= kinds
    exports = sorted(out.glob("*/pseudo.json")) + sorted(out.glob("*/instances_*.json"))
    assert len(exports) >= 5
    for path in exports:
        proc = run_ws("info", path, "--json", expect=None)
        assert proc.returncode == 0, f"{path}: {proc.stderr}"
        assert json.loads(proc.stdout.splitlines()[-1])["kind"] in ("coco-instances", "coco-results"), path
    assert not list(out.rglob(".*.partial")), "a stage left a half-written output"


def test_results_table_has_a_finite_number_in_every_expected_cell(smoke):
    out, _ = smoke
    results = _results()
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
    assert "| recipe | dense pseudo labels mIoU (train)" in proc.stdout
    assert "One run (seeds: 0)" in proc.stdout
    assert "fully supervised (GT labels)" in proc.stdout


def test_unknown_recipe_is_refused():
    proc = subprocess.run(["bash", str(REPO / "examples.sh"), "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown argument 'nope'" in proc.stderr


def test_bad_seed_list_is_refused():
    proc = subprocess.run(["bash", str(REPO / "examples.sh"), "--seeds", "0,,x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "--seeds wants numbers" in proc.stderr


def test_seeds_give_one_run_per_seed_and_mean_std_tables(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(REPO / "examples.sh"), "--smoke", "--seeds", "0,1", "cam"], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for seed in (0, 1):
        run = json.loads((tmp_path / f"seed{seed}" / "run.json").read_text())
        assert run["seed"] == seed
        assert (tmp_path / f"seed{seed}" / "cam" / "eval_semantic_val.json").exists()
    # different seeds: different toy data, so the two runs' figures differ and the table shows a spread
    vals = [json.loads((tmp_path / f"seed{s}" / "cam" / "eval_semantic_val.json").read_text().splitlines()[-1])
            for s in (0, 1)]
    assert vals[0]["best_miou"] != vals[1]["best_miou"]
    assert "Mean ± sample standard deviation over 2 runs (seeds: 0, 1)" in proc.stdout
    assert " ± " in proc.stdout.split("| CAM only")[1].splitlines()[0]
    assert (tmp_path / "results.md").read_text() == proc.stdout
