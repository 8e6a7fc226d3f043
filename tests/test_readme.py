"""CI runs exactly the README's set-up commands, and the man pages are current."""

import re
from pathlib import Path

import pytest

from wstools.cli.manpages import generate

pytestmark = pytest.mark.cli

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```\n(.+?)\n```", setup, flags=re.S)
    assert len(commands) == 2, commands
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == commands


def test_man_pages_are_current():
    pages = generate()
    man = REPO / "man"
    committed = {p.name for p in man.glob("ws*.1")}
    assert committed == set(pages), "run: python -m wstools.cli.manpages man"
    for name, text in pages.items():
        assert (man / name).read_text() == text, f"man/{name} is stale: python -m wstools.cli.manpages man"


def _readme_commands():
    """Every `ws ...` command line of the whole README: code blocks and inline spans."""
    from test_guide import _blocks, _command_lines, _ws_args

    lines = []
    for _, code in _blocks(README_TEXT):
        lines += [line for line in _command_lines(code) if ": error:" not in line]
    lines += re.findall(r"`(ws [^`]+)`", re.sub(r"```.*?```", "", README_TEXT, flags=re.S))
    out = []
    lines = [part for line in lines for part in re.split(r" && |; ", line)]
    for line in lines:
        try:
            args = _ws_args(line.replace("\n", " ").replace("\\|", "|"))
        except ValueError:
            continue
        if args:
            out.append(args)
    return out


README_TEXT = (REPO / "README.md").read_text()


def test_every_command_and_flag_the_readme_names_exists():
    """As tests/test_guide.py does for the user's guide, for the whole README (the recipe table,
    the reference, the results sections)."""
    from test_guide import _resolve

    from wstools.cli.main import cli

    commands = _readme_commands()
    assert len(commands) > 100
    bad = []
    for args in commands:
        if not args or args[0].isupper() or args[0].startswith("-"):
            continue
        try:
            cmds, rest = _resolve(cli, args)
        except AssertionError as e:
            bad.append(str(e))
            continue
        for cmd in cmds:
            opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
            bad += [f"`ws {' '.join(args)}`: {cmd.name} has no {t}" for t in rest if t.startswith("--")
                    and any(a.split("=")[0] not in opts for a in t.split("/"))]   # --scales/--flip: both
    assert not bad, bad


def test_readme_claims_about_eval_plot_and_examples_data():
    import click

    from wstools.cli.main import cli

    ctx = click.Context(cli)
    ev = cli.get_command(ctx, "eval")
    plots = sorted(n for n in ev.list_commands(ctx)
                   if "--plot" in {o for p in ev.get_command(ctx, n).params for o in p.opts})
    assert plots == ["cams", "instance", "proposals"]
    assert "`--plot` for `instance`, `proposals` and `cams`" in README_TEXT
    assert "`semantic` and `assignment` have no plot" in README_TEXT
    examples = (REPO / "examples.sh").read_text()
    assert "--arch deeplabv3_resnet50" in examples and "DeepLabv3-ResNet50" in README_TEXT
    assert "deeplabv3_resnet101" not in examples and "DeepLabv3-ResNet101" not in README_TEXT


def test_readme_logging_claim(tmp_path):
    """Under a pipe (not a TTY) progress bars are silent, log lines print unless --quiet."""
    from conftest import run_ws

    r = run_ws("toy", tmp_path / "t", "--train", 2, "--val", 1, "--size", 32)
    assert "it/s" not in r.stderr and "img/s" not in r.stderr          # no tqdm bar
    assert "no problems" in run_ws("dataset", "check", tmp_path / "t" / "train.json").stderr
    assert run_ws("dataset", "check", tmp_path / "t" / "train.json", "-q").stderr == ""
    text = " ".join(README_TEXT.split())
    assert "Progress bars are drawn only when stderr is a TTY; log lines" in text
    assert "print unless `--quiet`; warnings always print" in text


def test_python_api_example_runs(capsys):
    """The README's Python API block runs as printed and prints what the text says it prints."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.+?)```", section, flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "README.md (Python API)", "exec"), {"__name__": "readme_api"})
    out = capsys.readouterr().out
    assert "CAMs (3, 96, 96)" in out and "seg probs (1, 6, 96, 96)" in out
    assert float(re.search(r"grown labels mIoU ([0-9.]+)", out).group(1)) > 0.6
    assert re.search(r"instances \(label, proposal, score\) \[\(", out)
