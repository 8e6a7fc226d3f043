"""Shared fixtures: tiny toy datasets and the ``ws`` runners (in this process, or the installed entry point)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import subprocess as subprocess_module
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import torch

from wstools.io.toy import write_dataset

REPO = Path(__file__).resolve().parents[1]

# One torch thread in the test process, which runs most commands (run_ws_inproc) on tiny inputs:
# on a loaded 2-core machine two threads made them 2-12 times slower (OpenMP waits for a thread
# whose core is busy), e.g. a tiny SAM over 8 images 52 s against 4 s. A test's --threads is
# honoured and put back afterwards; a command in its own process keeps torch's default.
torch.set_num_threads(1)


class WsResult:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def json(self):
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"no JSON summary on stdout; stderr: {self.stderr}"
        return json.loads(lines[-1])

    def __repr__(self):
        return f"WsResult(rc={self.returncode}, stdout={self.stdout[-500:]!r}, stderr={self.stderr[-1500:]!r})"


def _ws_executable():
    exe = shutil.which("ws")
    assert exe, "the `ws` entry point is not installed (pip install -e '.[test]')"
    return exe


def _forks(args) -> bool:
    """Whether ``ws ARGS`` would fork worker processes (``--workers N``, N > 0: a pool or DataLoader
    workers). Forking the test session, which holds the threads of earlier in-process commands,
    can deadlock the child, so such a command runs in its own process."""
    args = [str(a) for a in args]
    for i, a in enumerate(args):
        value = a.split("=", 1)[1] if a.startswith("--workers=") else \
            (args[i + 1] if a == "--workers" and i + 1 < len(args) else None)
        if value is not None and value.strip() not in ("0", ""):
            return True
    return False


def run_ws(*args, cwd=None, expect=0, input=None, env=None, subprocess=False) -> WsResult:
    """``ws ARGS...``; assert the exit code ``expect`` (``None``: any).

    In this process (:func:`run_ws_inproc`) unless the process itself is under test or cannot be
    reproduced here: ``subprocess=True`` (the installed entry point, its exit status), ``env``
    (variables a fresh interpreter reads at start, e.g. ``OMP_NUM_THREADS``), or a command that
    forks workers (:func:`_forks`). Signal and kill tests use :func:`run_ws_subprocess` or Popen."""
    if subprocess or env is not None or _forks(args):
        return run_ws_subprocess(*args, cwd=cwd, expect=expect, input=input, env=env)
    return run_ws_inproc(*args, cwd=cwd, expect=expect, input=input)


def run_ws_subprocess(*args, cwd=None, expect=0, input=None, env=None) -> WsResult:
    """Run ``ws ARGS...`` through the installed entry point in a new process; assert the exit code ``expect``."""
    full_env = dict(os.environ)
    # the package under test, even when the installed entry point belongs to another checkout
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("WS_DEBUG", None)
    if env:
        full_env.update(env)
    proc = subprocess_module.run([_ws_executable(), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                                 input=input, env=full_env, timeout=900)
    result = WsResult(proc)
    if expect is not None:
        assert proc.returncode == expect, result
    return result


class _Proc:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


# the warning filters of a fresh interpreter (python -c "import warnings; print(warnings.filters)"),
# which the entry point runs under; pytest's own filters would hide warnings a user sees
_FRESH_FILTERS = [("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                  ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                  ("ignore", ResourceWarning, "")]


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _fd_output(fd: int):
    """What C code writes to file descriptor ``fd`` meanwhile (libpng, OpenCV, HDF5 diagnostics):
    a process's stderr holds it, click's runner sees only Python's ``sys.stderr``."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        box = []
        try:
            yield box
        finally:
            try:
                ctypes.CDLL(None).fflush(None)      # C stdio buffers into the file before it is read
            except (OSError, AttributeError):
                pass
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            box.append(tmp.read().decode("utf-8", "replace"))


def run_ws_inproc(*args, cwd=None, expect=0, input=None) -> WsResult:
    """``ws ARGS`` in this process (click's runner), same contract as :func:`run_ws_subprocess`:
    torch is imported once per test process, which keeps CLI tests fast where a subprocess proves
    nothing extra. What a process would have to itself is set up and put back: ``sys.argv`` (the
    command line a store records), the working folder, no ``WS_DEBUG``, the warning filters of a
    fresh interpreter with warnings on stderr, C-level output on stderr/stdout, and the state a
    command leaves (``--quiet``, ``--threads``'s torch thread count, the SIGTERM handler). An
    exception that escapes the command is a traceback on stderr and exit 1, as the entry point's."""
    import signal
    import traceback

    from click.testing import CliRunner

    from wstools.cli import common
    from wstools.cli.main import cli

    args = [str(a) for a in args]
    threads = torch.get_num_threads()
    argv, here, sigterm = sys.argv, os.getcwd(), signal.getsignal(signal.SIGTERM)
    try:
        sys.argv = ["ws", *args]
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings(), _fd_output(2) as c_err, _fd_output(1) as c_out:
            warnings.resetwarnings()
            for action, category, module in reversed(_FRESH_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            warnings.showwarning = _show_warning
            r = CliRunner().invoke(cli, args, input=input, env={"WS_DEBUG": None})
    finally:
        sys.argv = argv
        if os.getcwd() != here:   # only when it moved: an unprivileged caller may not enter `here` again
            os.chdir(here)
        common._STATE["quiet"] = False
        signal.signal(signal.SIGTERM, sigterm)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    out, err = r.stdout + c_out[0], r.stderr + c_err[0]
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        err += "".join(traceback.format_exception(r.exception))
    result = WsResult(_Proc(r.exit_code, out, err))
    if expect is not None:
        assert result.returncode == expect, result
    return result


def assert_bad_input(result: WsResult, *fragments):
    """Exit 2, one error line naming every fragment, no traceback."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors, result.stderr
    for frag in fragments:
        assert any(str(frag) in line for line in errors), (frag, result.stderr)


KINDS = ("unit", "cli", "e2e")      # the markers of pyproject.toml; each test module sets one (pytestmark)


def pytest_collection_modifyitems(items):
    """A module without a kind marker is ``cli`` if it runs ws commands (names a runner), else ``unit``."""
    for item in items:
        if not any(item.get_closest_marker(k) for k in KINDS):
            source = Path(str(item.fspath)).read_text()
            item.add_marker("cli" if "run_ws" in source else "unit")


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> Path:
    """A small toy dataset: 24 train and 8 val images of 64 px, 5 classes (read-only: do not modify)."""
    out = tmp_path_factory.mktemp("toy")
    write_dataset(out, "train", 24, size=64, seed=0)
    write_dataset(out, "val", 8, size=64, seed=0)
    return out


@pytest.fixture
def toy_copy(toy_dir, tmp_path) -> Path:
    """A private copy of ``toy_dir`` a test may modify."""
    dst = tmp_path / "toy"
    shutil.copytree(toy_dir, dst)
    return dst
