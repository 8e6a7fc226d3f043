"""Bad input gives one line and exit 2, before any output exists (issue 22)."""

from __future__ import annotations

import os

import pytest

from conftest import assert_bad_input, run_ws_inproc

pytestmark = pytest.mark.cli


def _one_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_click_range_error_is_one_line(tmp_path):
    r = run_ws_inproc("cut", tmp_path / "g.h5", "--time-limit", "0", "-o", tmp_path / "a.h5", expect=2)
    assert _one_line(r) == "ws cut: error: --time-limit: 0.0 is not in the range x>0 (ws cut --help)"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, fragment", [
    (["cut"], "ws cut: error: missing argument GRAPH"),
    (["cut", "g.h5", "--no-such-flag"], "ws cut: error: No such option '--no-such-flag'"),
    (["no-such-command"], "ws: error: No such command 'no-such-command'"),
    (["eval", "assignment"], "ws eval assignment: error: missing argument ASSIGNMENT"),
    (["eval", "nope"], "ws eval: error: No such command 'nope'"),
])
def test_click_usage_errors_are_one_line(args, fragment):
    line = _one_line(run_ws_inproc(*args, expect=2))
    assert line.startswith(fragment), line
    assert "Usage:" not in line


@pytest.mark.parametrize("args, flag", [
    (["graph", "f.h5", "m.json", "-o", "g.h5", "--delta", "nan"], "--delta"),
    (["graph", "f.h5", "m.json", "-o", "g.h5", "--delta", "inf"], "--delta"),
    (["cam", "train", "m.json", "-o", "c.pt", "--lr", "inf"], "--lr"),
    (["cam", "train", "m.json", "-o", "c.pt", "--lr", "nan"], "--lr"),
    (["features", "train-mil", "p.h5", "m.json", "-o", "x.pt", "--r", "nan"], "--r"),
    (["match", "--beta", "nan"], "--beta"),
    (["cut", "g.h5", "-o", "a.h5", "--retention", "-inf"], "--retention"),
])
def test_non_finite_float_flags_are_refused_while_parsing(tmp_path, monkeypatch, args, flag):
    monkeypatch.chdir(tmp_path)
    r = run_ws_inproc(*args, expect=2)
    assert_bad_input(r, flag, "is not a finite number")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, flag", [
    (["propose", "{man}", "-o", "p.h5", "--k", "100,nan"], "--k"),
    (["cam", "infer", "{man}", "--model", "c.pt", "-o", "c.h5", "--scales", "1.0,inf"], "--scales"),
    (["eval", "proposals", "p.h5", "--gt", "{man}", "--iou", "0.5,nan"], "--iou"),
])
def test_non_finite_values_in_float_lists_are_refused(toy_dir, tmp_path, monkeypatch, args, flag):
    monkeypatch.chdir(tmp_path)
    r = run_ws_inproc(*[a.format(man=toy_dir / "val.json") for a in args], expect=2)
    assert_bad_input(r, flag, "is not a finite number")
    assert not list(tmp_path.iterdir())


def test_every_float_flag_refuses_nan():
    """The check is on the command class, so no float flag of any command escapes it."""
    import click

    from wstools.cli.base import _FiniteFloat
    from wstools.cli.main import cli

    def walk(cmd):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(None):
                yield from walk(cmd.get_command(None, name))
        else:
            yield cmd

    floats = 0
    for cmd in walk(cli):
        for param in cmd.params:
            types = param.type.types if isinstance(param.type, click.Tuple) else [param.type]
            for t in types:
                if isinstance(t, click.types.FloatParamType):
                    floats += 1
                    assert isinstance(t, _FiniteFloat), (cmd.name, param.name)
    assert floats > 40


def _empty_manifest(toy_dir, tmp_path):
    import json

    m = json.loads((toy_dir / "train.json").read_text())
    m["images"] = []
    m["root"] = str(toy_dir)
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(m))
    return path


def test_an_empty_manifest_is_refused_by_the_store_writer(toy_dir, tmp_path):
    from wstools.errors import InputError
    from wstools.io.dataset import load_manifest
    from wstools.io.store import create_store

    empty = load_manifest(_empty_manifest(toy_dir, tmp_path))
    for kind in ("proposals", "cams", "labels", "probs", "responses", "features"):
        with pytest.raises(InputError, match="empty.json: the manifest lists no images"):
            with create_store(tmp_path / f"{kind}.h5", kind, classes=empty.classes, params={}, dataset=empty):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.json"]


def test_propose_on_an_empty_manifest_exits_2_and_leaves_nothing(toy_dir, tmp_path):
    empty = _empty_manifest(toy_dir, tmp_path)
    r = run_ws_inproc("propose", empty, "-o", tmp_path / "p.h5", expect=2)
    assert_bad_input(r, "empty.json", "lists no images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.json"]


@pytest.mark.parametrize("sweep, fragment", [
    ("0:1:1e-9", "a sweep of 1000000001 thresholds; at most 1001"),
    ("nan:1:0.1", "must be finite numbers"),
    ("0:inf:0.1", "must be finite numbers"),
    (",".join(["0.5"] * 1002), "lists 1002 thresholds; at most 1001"),
])
def test_eval_cams_threshold_sweeps_are_bounded(tmp_path, sweep, fragment):
    r = run_ws_inproc("eval", "cams", tmp_path / "c.h5", "--gt", tmp_path / "m.json", "--thresholds", sweep,
                      expect=2)
    assert_bad_input(r, "--thresholds", fragment)


# the sweep: every command, every input at once missing / a text file / a truncated file ----------

_DIR_INPUTS = {"cam_dir", "folder", "root", "images_dir"}
_NEEDED = {"train-seg": [("labels", "--labels")]}
_EXT = {"manifest": ".json", "manifest_path": ".json", "gt": ".json", "model_path": ".pt", "tags_csv": ".csv",
        "instances_json": ".json"}


def _commands():
    import click

    from wstools.cli.main import cli

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(None):
                yield from walk(cmd.get_command(None, name), path + [name])
        else:
            yield path, cmd

    return [(path, cmd) for path, cmd in walk(cli, []) if path != ["toy"]]


@pytest.fixture(scope="module")
def truncated_store(tmp_path_factory):
    import numpy as np

    from wstools.io.store import create_store

    path = tmp_path_factory.mktemp("trunc") / "full.h5"
    with create_store(path, "graph", classes=["a"], params={}) as s:
        s.h5["x"] = np.arange(10000)
    return path.read_bytes()[:3000]


@pytest.mark.parametrize("kind", ["missing", "text", "truncated"])
@pytest.mark.parametrize("path", [" ".join(p) for p, _ in _commands()])
def test_bad_input_files_sweep(tmp_path, truncated_store, path, kind):
    """Exit 2, one error line naming a file given, nothing written."""
    import click

    words = path.split()
    cmd = dict((" ".join(p), c) for p, c in _commands())[path]
    out = tmp_path / "out"
    out.mkdir()
    args, given = list(words), []
    for p in cmd.params:
        if not p.required:
            continue
        if p.name in ("output", "out_dir"):
            value = out / ("o.json" if words[0] in ("dataset", "oracle") and words[-1] != "cams" else "o.h5")
        elif p.name in _DIR_INPUTS:
            value = tmp_path / "no_such_dir"
            if kind != "missing":
                value.mkdir(exist_ok=True)
        else:
            ext = _EXT.get(p.name, ".h5")
            value = tmp_path / f"{kind}_{p.name}{ext}"
            if kind == "text":
                value.write_text("hello\n")
            elif kind == "truncated":
                value.write_bytes(truncated_store if ext == ".h5" else b'{"images": [')
            given.append(value.name)
        args += [str(value)] if isinstance(p, click.Argument) else [p.opts[-1], str(value)]
    for name, flag in _NEEDED.get(path, []):          # required together with others' values
        value = tmp_path / f"{kind}_{name}.h5"
        if kind == "text":
            value.write_text("hello\n")
        elif kind == "truncated":
            value.write_bytes(truncated_store)
        given.append(value.name)
        args += [flag, str(value)]
    r = run_ws_inproc(*args, expect=None)
    assert r.returncode == 2, r
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not given or any(name in errors[0] for name in given) or "no_such_dir" in errors[0], errors
    assert not list(out.iterdir())


def test_a_byte_corrupted_store_is_an_input_error_naming_it(toy_dir, tmp_path):
    import h5py
    import numpy as np

    from wstools.io.dataset import load_manifest
    from wstools.io.store import create_store

    man = toy_dir / "val.json"
    m = load_manifest(man)
    path = tmp_path / "l.h5"
    with create_store(path, "labels", classes=m.classes, params={}, dataset=m) as s:
        for rec in m.images:
            with s.write_image(rec.id) as g:
                g.create_dataset("labels", data=np.arange(rec.height * rec.width, dtype=np.uint8).reshape(
                    rec.height, rec.width), chunks=True, compression="gzip")
    with h5py.File(path, "r") as f:
        info = f["images"][next(iter(f["images"]))]["labels"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    data[info.byte_offset:info.byte_offset + info.size] = b"\xff" * info.size
    path.write_bytes(bytes(data))
    r = run_ws_inproc("export-coco", path, "--manifest", man, "--semantic", tmp_path / "png", expect=2)
    assert_bad_input(r, f"{path}: unreadable HDF5 data", "corrupt")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "png").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused_before_any_work(toy_dir, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = run_ws_inproc("propose", toy_dir / "val.json", "-o", ro / "p.h5", expect=2)
        assert_bad_input(r, str(ro), "cannot write in the output folder")
    finally:
        ro.chmod(0o755)
