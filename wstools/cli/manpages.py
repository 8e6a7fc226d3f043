"""Generate the man pages in ``man/`` from the click definitions.

``python -m wstools.cli.manpages man/`` writes ``ws.1`` and one page per
command (``ws-toy.1``, ``ws-dataset-voc.1``, ...). ``tests/test_man.py`` fails
when a committed page differs from what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import __version__
from .main import cli

DATE = "2026"


def _roff(text: str) -> str:
    out = []
    for line in text.splitlines():
        line = line.replace("\\", "\\\\").replace("-", "\\-")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def _walk(command: click.Command, ctx: click.Context, path: list[str]):
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            sub_ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
            yield from _walk(sub, sub_ctx, path + [name])


def _page(path: list[str], command: click.Command, ctx: click.Context, children: list[str]) -> str:
    name = "-".join(path)
    title = name.upper()
    short = command.get_short_help_str(limit=80)
    lines = [f'.TH "{title}" "1" "{DATE}" "ws {__version__}" "ws manual"', ".SH NAME",
             _roff(f"{name} - {short}"), ".SH SYNOPSIS", ".B " + _roff(" ".join(path)),
             _roff(" ".join(command.collect_usage_pieces(ctx)))]
    import inspect

    help_text = inspect.cleandoc(command.help or "")
    if help_text:
        lines.append(".SH DESCRIPTION")
        for para in click.unstyle(help_text).split("\n\n"):
            para = para.strip("\n")
            if para.startswith("\b"):
                lines += [".PP", ".nf", _roff(para.lstrip("\b").strip("\n")), ".fi"]
            else:
                lines += [".PP", _roff(" ".join(line.strip() for line in para.splitlines()))]
    params = [p for p in command.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]
    if params:
        lines.append(".SH OPTIONS")
        for p in params:
            record = p.get_help_record(ctx)
            if record is None:
                continue
            lines += [".TP", ".B " + _roff(record[0]), _roff(record[1] or "")]
    if children:
        lines.append(".SH COMMANDS")
        for child in children:
            lines += [".TP", ".B " + _roff(child)]
    lines += [".SH SEE ALSO", _roff(", ".join(["ws(1)"] + [f"{c.replace(' ', '-')}(1)" for c in children]))]
    return "\n".join(lines) + "\n"


def generate() -> dict[str, str]:
    """File name -> page text for ``ws`` and every command and sub-command."""
    # the settings a real invocation applies (make_context), so -h shows whatever click version runs
    root_ctx = click.Context(cli, info_name="ws", **cli.context_settings)
    entries = list(_walk(cli, root_ctx, ["ws"]))
    pages = {}
    for path, command, ctx in entries:
        children = [" ".join(p) for p, _, _ in entries if len(p) == len(path) + 1 and p[:len(path)] == path]
        pages[f"{'-'.join(path)}.1"] = _page(path, command, ctx, children)
    return pages


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "man")
    out.mkdir(parents=True, exist_ok=True)
    pages = generate()
    for old in out.glob("ws*.1"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        (out / name).write_text(text)
    print(f"wrote {len(pages)} pages to {out}")


if __name__ == "__main__":
    main()
