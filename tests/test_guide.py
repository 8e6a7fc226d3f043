"""The README's user's guide: the "Swap a stage" examples run as written on toy data (Python
blocks in-process, `ws` lines through the installed entry point, in document order, in a
temporary folder) and the next stages accept what they write; every `ws` command and flag the
guide names exists; its links point at headings of the README."""

from __future__ import annotations

import re
import shlex

import click
import numpy as np
import pytest

from conftest import REPO, run_ws

pytestmark = pytest.mark.e2e

README = (REPO / "README.md").read_text()
ENV = {"OMP_NUM_THREADS": "1"}


def _section(text: str, heading: str) -> str:
    """The body of the section whose heading line is ``heading``, up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    start = text.index("\n" + heading + "\n") + len(heading) + 2
    m = re.search(rf"\n{level} ", text[start:])
    return text[start:start + m.start()] if m else text[start:]


GUIDE = _section(README, "## User's guide")
SWAP = _section(GUIDE, "### Swap a stage for your own program")


def _blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks as (language, code), in order."""
    return re.findall(r"^```(\w*)\n(.*?)\n```$", text, flags=re.S | re.M)


def _command_lines(code: str) -> list[str]:
    """Lines of a shell block, backslash continuations joined."""
    return [line.strip() for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def _ws_args(line: str) -> list[str] | None:
    """The arguments after `ws` (or `torchrun ... -m wstools`) of one command line, else None."""
    tokens = shlex.split(line, comments=True)
    if tokens[:1] == ["ws"]:
        return tokens[1:]
    if "-m" in tokens and tokens[tokens.index("-m") + 1:tokens.index("-m") + 2] == ["wstools"]:
        return tokens[tokens.index("-m") + 2:]
    return None


def test_swap_examples_run_and_the_next_stages_accept_their_files(tmp_path, monkeypatch):
    blocks = _blocks(SWAP)
    python = [code for lang, code in blocks if lang == "python"]
    assert len(python) == 4, "expected the CAM store, IRN files, proposal store and import JSON examples"
    for code in python:   # the convention the guide states: paths in variables at the top
        assert re.search(r'^MANIFEST = "toy/train\.json"', code, flags=re.M), code[:200]
        assert re.search(r"^OUT = ", code, flags=re.M), code[:200]
    monkeypatch.chdir(tmp_path)
    ran = []
    for i, (lang, code) in enumerate(blocks):
        if lang == "python":
            exec(compile(code, f"README.md: swap example {i}", "exec"), {"__name__": "__main__"})
            continue
        for line in _command_lines(code):
            args = _ws_args(line)
            assert args is not None, f"a shell block of the swap section runs only ws: {line}"
            run_ws(*args, cwd=tmp_path, env=ENV)
            ran.append(args[:2])
    assert ["toy", "toy"] in ran and ["features", "toy/train.json"] in ran and ["cam", "import"] in ran

    from wstools.io.cams import read_cam_group
    from wstools.io.dataset import load_manifest
    from wstools.io.labels import read_labels_group
    from wstools.io.store import open_store, read_rles

    man = load_manifest("toy/train.json")
    # the hand-written CAM store: one map per tag, and ws grow seeds made cues of those tags only
    with open_store("my_cams.h5", "cams") as cams, open_store("seeds.h5", "labels") as seeds:
        assert cams.image_ids() == seeds.image_ids() == man.ids()
        labelled = 0
        for rec in man.images:
            c = read_cam_group(cams.image(rec.id))
            assert c["labels"].tolist() == man.tag_labels(rec).tolist()
            assert c["cams"].shape == (len(c["labels"]), rec.height, rec.width)
            s = read_labels_group(seeds.image(rec.id))
            fg = set(np.unique(s).tolist()) - {0, 255}
            assert fg <= set(man.tag_labels(rec).tolist()), (rec.id, fg)
            labelled += int((s != 255).sum())
        assert labelled > 0
    # the IRN files came through ws cam import unchanged (float16 storage)
    with open_store("irn_cams.h5", "cams") as irn:
        for rec in man.images:
            d = np.load(f"irn_cams/{rec.id}.npy", allow_pickle=True).item()   # our own test file
            c = read_cam_group(irn.image(rec.id))
            assert c["labels"].tolist() == (np.asarray(d["keys"]) + 1).tolist()
            np.testing.assert_allclose(c["cams"], d["high_res"], atol=1e-3)
    # both proposal routes (store written in Python, JSON through ws propose --method import) hold
    # the same masks in the same order, and ws features took one row per proposal (top 20)
    with open_store("my_proposals.h5", "proposals") as mine, open_store("imported.h5", "proposals") as imp:
        rows = 0
        for rec in man.images:
            a, b = mine.image(rec.id), imp.image(rec.id)
            assert read_rles(a["masks"]) == read_rles(b["masks"])
            np.testing.assert_array_equal(a["boxes"][()], b["boxes"][()])
            rows += min(20, len(read_rles(a["masks"])))
    info = run_ws("info", "features.h5", "--json", cwd=tmp_path).json
    assert info["kind"] == "features" and info["counts"]["proposals"] == rows
    assert {i["kind"] for i in info["inputs"]} == {"proposals", "cams"}


def _commands_in_guide() -> list[list[str]]:
    lines = []
    for _, code in _blocks(GUIDE):
        lines += [line for line in _command_lines(code) if ": error:" not in line]
    lines += [span for span in re.findall(r"`(ws [^`]+)`", re.sub(r"```.*?```", "", GUIDE, flags=re.S))]
    commands = []
    for line in lines:
        try:
            args = _ws_args(line.replace("\n", " "))
        except ValueError:
            continue
        if args:
            commands.append(args)
    return commands


def _resolve(group, args):
    """The click command that ``args`` name (alternatives `a|b` each resolved) and the rest."""
    from wstools.cli.features import DefaultGroup

    cmds, rest = [group], list(args)
    while rest and isinstance(cmds[0], click.Group):
        names = rest[0].split("|")
        subs = [cmds[0].get_command(click.Context(cmds[0]), n) for n in names]
        if any(s is None for s in subs):
            if isinstance(cmds[0], DefaultGroup):   # `ws features MANIFEST` = `ws features extract ...`
                cmds = [cmds[0].get_command(click.Context(cmds[0]), "extract")]
                break
            raise AssertionError(f"no command {rest[0]!r} in `ws {' '.join(args)}`")
        cmds, rest = subs, rest[1:]
    return cmds, rest


def test_every_command_and_flag_in_the_guide_exists():
    from wstools.cli.main import cli

    commands = _commands_in_guide()
    assert len(commands) > 40
    for args in commands:
        if args and args[0].isupper():      # `ws CMD --help`: a placeholder
            continue
        cmds, rest = _resolve(cli, args)
        for cmd in cmds:
            opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
            for token in rest:
                if token.startswith("--"):
                    assert token.split("=")[0] in opts, f"`ws {' '.join(args)}`: {cmd.name} has no {token}"


def _anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower())
    return text.replace(" ", "-")


def test_guide_links_point_at_headings():
    in_code = re.sub(r"```.*?```", "", README, flags=re.S)
    anchors = {_anchor(h) for h in re.findall(r"^#{1,4} .+$", in_code, flags=re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", GUIDE)
    assert links
    for link in links:
        assert link in anchors, link

