"""Shared fixtures: tiny toy datasets and a runner for the installed ``ws`` entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from wstools.io.toy import write_dataset

REPO = Path(__file__).resolve().parents[1]


class WsResult:
    def __init__(self, proc: subprocess.CompletedProcess):
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


def run_ws(*args, cwd=None, expect=0, input=None, env=None) -> WsResult:
    """Run ``ws ARGS...`` through the installed entry point; assert the exit code ``expect``."""
    full_env = dict(os.environ)
    # the package under test, even when the installed entry point belongs to another checkout
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("WS_DEBUG", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([_ws_executable(), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          input=input, env=full_env, timeout=900)
    result = WsResult(proc)
    if expect is not None:
        assert proc.returncode == expect, result
    return result


class _Proc:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_ws_inproc(*args, expect=0) -> WsResult:
    """``ws ARGS`` in this process (click's runner), same contract as :func:`run_ws`: torch is
    imported once per test process, which keeps CLI tests fast where a subprocess proves nothing extra."""
    import traceback

    from click.testing import CliRunner

    from wstools.cli.main import cli

    r = CliRunner().invoke(cli, [str(a) for a in args])
    err = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        err += "".join(traceback.format_exception(r.exception))
    result = WsResult(_Proc(r.exit_code, r.stdout, err))
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
