"""CI runs exactly the README's set-up commands, and the man pages are current."""

import re
from pathlib import Path

from wstools.cli.manpages import generate

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
