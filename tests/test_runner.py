"""The test runners of tests/conftest.py: ``ws ARGS`` in the test process gives what the installed
entry point gives (exit status, stdout, stderr, the command line a store records), and leaves the
process as it found it (torch threads, --quiet, working folder, argv, SIGTERM handler)."""

from __future__ import annotations

import os
import signal
import sys

import h5py
import pytest
import torch

from conftest import _forks, run_ws, run_ws_inproc, run_ws_subprocess

pytestmark = pytest.mark.cli

CASES = {
    "success": ["dataset", "check", "{toy}/train.json"],
    "bad input": ["dataset", "check", "{tmp}/nope.json"],
    "usage error": ["cut", "{tmp}/nope.h5", "--time-limit", "0", "-o", "{tmp}/a.h5"],
    "unknown command": ["nosuchcommand"],
    "version": ["--version"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_in_process_and_entry_point_agree(case, toy_dir, tmp_path):
    args = [a.format(toy=toy_dir, tmp=tmp_path) for a in CASES[case]]
    here, there = run_ws_inproc(*args, expect=None), run_ws_subprocess(*args, expect=None)
    assert (here.returncode, here.stdout, here.stderr) == (there.returncode, there.stdout, there.stderr)


def test_a_store_records_the_same_command_line(tmp_path):
    run_ws_inproc("toy", tmp_path / "a", "--train", 2, "--val", 0, "--size", 32)
    run_ws_inproc("oracle", "cams", tmp_path / "a" / "train.json", "-o", tmp_path / "a.h5")
    run_ws_subprocess("oracle", "cams", tmp_path / "a" / "train.json", "-o", tmp_path / "b.h5")
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        assert a.attrs["command"] == f"ws oracle cams {tmp_path / 'a' / 'train.json'} -o {tmp_path / 'a.h5'}"
        assert b.attrs["command"] == a.attrs["command"].replace("a.h5", "b.h5")


def test_the_process_is_left_as_it_was(toy_dir, tmp_path):
    from wstools.cli import common

    threads, here, argv = torch.get_num_threads(), os.getcwd(), list(sys.argv)
    handler = signal.getsignal(signal.SIGTERM)
    r = run_ws_inproc("oracle", "cams", "val.json", "-o", tmp_path / "c.h5", "-q", cwd=toy_dir)   # relative input
    assert r.stderr == ""
    run_ws_inproc("graph", tmp_path / "nope.h5", "-o", tmp_path / "g.h5", "--threads", threads + 1, expect=2)
    assert torch.get_num_threads() == threads and common._STATE["quiet"] is False
    assert os.getcwd() == here and sys.argv == argv and signal.getsignal(signal.SIGTERM) is handler


def test_what_needs_its_own_process_gets_one(monkeypatch):
    import conftest

    assert _forks(["propose", "m.json", "--workers", "2"]) and _forks(["cut", "g.h5", "--workers=1"])
    assert not _forks(["propose", "m.json", "--workers", "0"]) and not _forks(["propose", "m.json"])
    calls = []
    monkeypatch.setattr(conftest, "run_ws_subprocess", lambda *a, **kw: calls.append("process"))
    monkeypatch.setattr(conftest, "run_ws_inproc", lambda *a, **kw: calls.append("here"))
    run_ws("--version")
    run_ws("--version", subprocess=True)
    run_ws("--version", env={"OMP_NUM_THREADS": "1"})        # read by a new process at its start
    run_ws("grow", "crf", "c.h5", "--workers", 2)               # forks: never from the test session
    assert calls == ["here", "process", "process", "process"]
