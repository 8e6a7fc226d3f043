"""The commands whose --workers fork worker processes (wstools.parallel.worker_map) must fork
before anything has imported torch: a process that forks after torch (its OpenMP / intra-op
thread pools) can deadlock in the child, as a forked pytest process did. Each command runs in
a fresh interpreter, in process, with worker_map replaced by a spy that records whether torch
was imported when it was called."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.cli

SPY = r"""
import json, sys
import wstools.parallel as parallel
import wstools.cli.stage as stage
seen = []
real = parallel.worker_map
def spy(fn, jobs, workers, **kw):
    seen.append("torch" in sys.modules)
    return real(fn, jobs, workers, **kw)
stage.worker_map = parallel.worker_map = spy
from click.testing import CliRunner
from wstools.cli.main import cli
r = CliRunner().invoke(cli, sys.argv[1:])
print(json.dumps({"rc": r.exit_code, "seen": seen, "stderr": r.stderr[-500:]}))
"""


def _run(*args):
    proc = subprocess.run([sys.executable, "-c", SPY, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cams(toy_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fork") / "oracle_cams.h5"
    res = _run("oracle", "cams", toy_dir / "train.json", "-o", out, "-q")
    assert res["rc"] == 0, res
    return out


@pytest.mark.parametrize("command", [
    lambda t, c, o: ["propose", t / "train.json", "--workers", 2, "-o", o / "p.h5", "-q"],
    lambda t, c, o: ["grow", "seeds", c, "--workers", 2, "-o", o / "s.h5", "-q"],
    lambda t, c, o: ["grow", "crf", c, "--manifest", t / "train.json", "--workers", 2, "-o", o / "c.h5", "-q"],
], ids=["propose", "grow-seeds", "grow-crf"])
def test_workers_fork_before_torch_is_imported(command, toy_dir, cams, tmp_path):
    res = _run(*command(toy_dir, cams, tmp_path))
    assert res["rc"] == 0, res
    assert res["seen"] == [False], res      # worker_map was called once, torch not yet imported
