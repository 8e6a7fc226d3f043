"""Per-image stores survive SIGKILL / SIGTERM at any instant; ``--resume`` skips exactly the
images completed before the signal and the final store equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO, _ws_executable, run_ws
from wstools.io.toy import write_dataset

pytestmark = pytest.mark.e2e

ENV = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def big_toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("killtoy")
    write_dataset(out, "train", 60, size=64, seed=3)
    return out


@pytest.fixture(scope="module")
def classifier(big_toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("killcls")
    run_ws("cam", "train", big_toy / "train.json", "--arch", "tiny", "--crop", "64", "--epochs", "1",
           "--batch-size", "16", "--threads", "1", "-o", out / "cls.pt", "--quiet")
    return out / "cls.pt"


def _start(args):
    env = dict(os.environ)
    env.update(ENV)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([_ws_executable(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _parts(out):
    folder = out.with_name(f".{out.name}.partial")
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.suffix == ".h5" and p.stem.isdigit()]


def _dump(path):
    """{image id: {dataset path: array}} of a finished per-image store (attrs 'order' aside)."""
    out = {}
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"] == 1
        for key, g in f["images"].items():
            arrays = {}
            g.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset)
                         else None)
            out[key] = arrays
    return out


def _same(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        assert sorted(a[key]) == sorted(b[key]), key
        for name, x in a[key].items():
            y = b[key][name]
            if x.dtype == object:
                assert [bytes(np.asarray(u)) for u in x] == [bytes(np.asarray(v)) for v in y], (key, name)
            else:
                assert np.array_equal(x, y), (key, name)


def _kill_and_resume(args, out, sig, n_images):
    proc = _start(args)
    deadline = time.time() + 120
    while len(_parts(out)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted (make the data bigger)"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    done = len(_parts(out))
    folder = out.with_name(f".{out.name}.partial")
    assert 0 < done < n_images, (proc.returncode, err, sorted(os.listdir(folder)) if folder.exists() else None)
    assert not out.exists()
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and "terminated (resume with --resume)" in lines[0], err
        assert "Traceback" not in err
        folder = out.with_name(f".{out.name}.partial")
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]   # clean state
    else:
        assert proc.returncode == -signal.SIGKILL
    r = run_ws(*args, "--resume", env=ENV).json
    skipped = r["skipped"] if "skipped" in r else r["skipped_existing"]      # ws cam infer's name
    assert skipped == done and r["images"] == n_images - done
    assert out.exists() and not out.with_name(f".{out.name}.partial").exists()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_propose_survives_signal(big_toy, tmp_path, sig):
    man = big_toy / "train.json"
    ref = tmp_path / "ref.h5"
    run_ws("propose", man, "-o", ref, "--quiet", env=ENV)
    out = tmp_path / "p.h5"
    _kill_and_resume(["propose", man, "-o", out, "--quiet"], out, sig, 60)
    _same(_dump(ref), _dump(out))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_cam_infer_survives_signal(big_toy, classifier, tmp_path, sig):
    man = big_toy / "train.json"
    args = ["cam", "infer", man, "--model", classifier, "--scales", "1.0,0.5,1.5", "--batch-size", "1",
            "--threads", "1", "--quiet"]
    ref = tmp_path / "ref.h5"
    run_ws(*args, "-o", ref, env=ENV)
    out = tmp_path / "c.h5"
    _kill_and_resume([*args, "-o", out], out, sig, 60)
    _same(_dump(ref), _dump(out))


@pytest.fixture(scope="module")
def grow_ref(big_toy, tmp_path_factory):
    """`ws grow crf` of blurred-GT CAMs of the 60 images: the CAM store and an uninterrupted run."""
    from eval_stores import write_gt_cams
    from wstools.io.dataset import load_manifest

    out = tmp_path_factory.mktemp("killgrow")
    write_gt_cams(out / "cams.h5", load_manifest(big_toy / "train.json"))
    args = ["grow", "crf", out / "cams.h5", "--manifest", big_toy / "train.json", "--iterations", "20", "--quiet"]
    run_ws(*args, "-o", out / "ref.h5", env=ENV)
    return args, out / "ref.h5"


@pytest.mark.parametrize("sig,workers", [(signal.SIGKILL, 0), (signal.SIGTERM, 2)])
def test_grow_survives_signal(grow_ref, tmp_path, sig, workers):
    """SIGTERM with a worker pool: still one line and exit 143 (the workers end without tracebacks)."""
    args, ref = grow_ref
    out = tmp_path / "g.h5"
    _kill_and_resume([*args, "--workers", workers, "-o", out], out, sig, 60)
    _same(_dump(ref), _dump(out))


SWALLOWED = """
import os, signal, weakref
from wstools.cli.base import _install_sigterm
from wstools.errors import Terminated, raise_if_terminated

_install_sigterm()


class Thing:
    pass


def callback(ref):
    os.kill(os.getpid(), signal.SIGTERM)     # the handler runs in here, where Python cannot raise
    for _ in range(10000):
        pass


thing = Thing()
ref = weakref.ref(thing, callback)
del thing
print("went on", flush=True)
try:
    raise_if_terminated()
except Terminated:
    print("raised at the next step")
"""


def test_sigterm_swallowed_by_a_callback_is_raised_at_the_next_step():
    """A signal handler's exception inside a weakref callback is 'ignored' by Python (seen with
    h5py and process pools): the command must not run to its end as if never signalled."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.split("\n")[:2] == ["went on", "raised at the next step"], proc
    assert proc.stderr == "", proc.stderr      # no "Exception ignored ... Traceback" noise


def _double_but_die_on_three(job):
    if job == 3:
        os.kill(os.getpid(), signal.SIGKILL)        # as the OOM killer would
    return 2 * job


def _check_dead_worker():
    from wstools.parallel import worker_map
    from wstools.errors import WsRuntimeError

    got = []
    with pytest.raises(WsRuntimeError, match="worker process died"):
        with worker_map(_double_but_die_on_three, iter(range(8)), 2) as results:
            for r in results:
                got.append(r)
    assert got == [0, 2, 4][:len(got)]


def test_a_dead_worker_is_an_error_not_a_hang():
    # in a fresh process, as a `ws` command forks its workers: forking the test session, which
    # holds the threads of earlier in-process tests, can deadlock the forked child
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_kill_resume as t; " \
           "t._check_dead_worker()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_new_command_starts_without_an_earlier_termination():
    """In one process (a notebook, click's test runner) a command after a terminated one runs."""
    from wstools.cli.base import _install_sigterm
    from wstools.errors import Terminated, note_termination, raise_if_terminated

    hook = sys.unraisablehook
    note_termination()
    previous = _install_sigterm()
    try:
        raise_if_terminated()
    except Terminated:       # a KeyboardInterrupt: uncaught it would stop the whole test session
        pytest.fail("the earlier command's SIGTERM stopped the next command")
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = hook


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_worker_pool_takes_the_workers_and_resume_is_identical(big_toy, tmp_path):
    """The README's Slurm case: kill -9 of `--workers 2` must not leave workers holding the
    partial store's HDF5 lock; --resume then gives the uninterrupted run's store."""
    man = big_toy / "train.json"
    ref = tmp_path / "ref.h5"
    run_ws("propose", man, "-o", ref, "--quiet", env=ENV)
    out = tmp_path / "p.h5"
    args = ["propose", man, "-o", out, "--quiet", "--workers", "2"]
    proc = _start(args)
    deadline = time.time() + 120
    while (len(_parts(out)) < 3 or len(_children(proc.pid)) < 2) and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert proc.poll() is None and len(workers) == 2, workers
    proc.kill()
    proc.wait(timeout=60)
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "workers outlived their parent"
    proc.communicate(timeout=60)        # (orphans would hold its pipes open)
    done = len(_parts(out))
    r = run_ws(*args, "--resume", env=ENV).json
    assert r["skipped"] == done and r["images"] == 60 - done
    _same(_dump(ref), _dump(out))
    assert not out.with_name(f".{out.name}.partial").exists()


def test_a_second_writer_of_one_output_exits_2_at_once_naming_the_first(big_toy, tmp_path):
    man = big_toy / "train.json"
    out = tmp_path / "p.h5"
    first = _start(["propose", man, "-o", out, "--quiet"])
    deadline = time.time() + 120
    while not _parts(out) and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.poll() is None
    for extra in ([], ["--force"], ["--resume"]):
        t0 = time.time()
        second = run_ws("propose", man, "-o", out, "--quiet", *extra, expect=2, env=ENV)
        assert f"is being written by process {first.pid}" in second.stderr, second
        assert len(second.stderr.strip().splitlines()) == 1
    stdout, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"] == 1 and len(f["images"]) == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]      # no lock or partial left


def test_a_second_training_run_on_one_checkpoint_exits_2_at_once(tmp_path):
    """Two `ws train-seg -o X` (or any training command): the second stops before training."""
    from wstools.cli.training import TrainingRun
    from wstools.errors import InputError

    out = tmp_path / "m.pt"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from wstools.cli.training import TrainingRun; "
         "run = TrainingRun(sys.argv[1], {}, kind='segmentation', classes=['a']); print('held', flush=True); "
         "time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        for force in (False, True):
            with pytest.raises(InputError, match=f"is being written by process {holder.pid}"):
                TrainingRun(out, {}, kind="segmentation", classes=["a"], force=force)
    finally:
        holder.kill()
        holder.wait()
    run = TrainingRun(out, {}, kind="segmentation", classes=["a"])      # the lock died with its holder
    assert (tmp_path / ".m.pt.lock").read_text().strip() == str(os.getpid())
    del run                                                              # dropped: released, removed
    assert not (tmp_path / ".m.pt.lock").exists()
