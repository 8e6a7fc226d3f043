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

# Per command: (files read, files written, the commands before and after it in a recipe). The
# kinds are the README's "Files" table; tests/test_own_photos.py checks every command has a row.
M, P, C, F, G, A, L, PR, R = ("manifest (.json)", "proposals store (.h5)", "cams store (.h5)",
                              "features store (.h5)", "graph store (.h5)", "assignment store (.h5)",
                              "labels store (.h5)", "probs store (.h5)", "responses store (.h5)")
CI, CR, CK = "COCO instances JSON", "COCO results JSON", "checkpoint (.pt)"
STAGES = {
    "ws": ((), (), ()),
    "ws toy": ((), (M, "images and GT PNGs"), ("ws dataset check", "ws propose", "ws cam train")),
    "ws dataset": ((), (M,), ()),
    "ws dataset voc": (("a VOC 2012 folder",), (M,), ("ws dataset check", "ws info", "ws viz")),
    "ws dataset coco": ((CI + " of ground truth", "its images"), (M,), ("ws dataset check", "ws info")),
    "ws dataset folder": (("a folder of images", "a CSV of tags"), (M,), ("ws dataset check", "ws viz")),
    "ws dataset check": ((M,), (), ("ws info", "ws viz")),
    "ws info": (("any manifest, store, checkpoint or COCO JSON",), (), ("ws viz",)),
    "ws viz": ((M, "a per-image store", CI, CR), ("PNG",), ("ws info",)),
    "ws merge": (("per-image or features stores written with --shard",), ("one store of their kind",),
                 ("ws info",)),
    "ws propose": ((M, "proposal masks (COCO JSON or PNGs) with --method import"), (P,),
                   ("ws dataset", "ws features extract", "ws eval proposals", "ws match")),
    "ws cam": ((), (), ()),
    "ws cam train": ((M,), (CK,), ("ws dataset", "ws cam infer", "ws cam peaks", "ws features extract")),
    "ws cam infer": ((M, CK), (C,), ("ws cam train", "ws grow seeds", "ws features extract", "ws eval cams")),
    "ws cam import": ((M, "IRN .npy CAM files"), (C,), ("ws grow seeds", "ws eval cams")),
    "ws cam peaks": ((M, CK), (R,), ("ws cam train", "ws icn train", "ws match")),
    "ws cam clip": ((M, "CLIP checkpoint folder"), (C,), ("ws dataset", "ws grow seeds", "ws features extract",
                                                         "ws eval cams")),
    "ws features": ((), (), ()),
    "ws features extract": ((M, P, C, CK), (F,), ("ws propose", "ws cam infer", "ws graph")),
    "ws features train-mil": ((M, P, C), (CK,), ("ws propose", "ws cam infer", "ws features extract")),
    "ws graph": ((F,), (G,), ("ws features extract", "ws cut")),
    "ws cut": ((G,), (A,), ("ws graph", "ws export-coco", "ws eval assignment")),
    "ws grow": ((), (), ()),
    "ws grow seeds": ((C, L, M), (L,), ("ws cam infer", "ws grow region", "ws train-seg", "ws eval semantic")),
    "ws grow region": ((L, PR, C, M), (L,), ("ws grow seeds", "ws grow crf", "ws train-seg", "ws eval semantic")),
    "ws grow crf": ((PR, C, M), (L,), ("ws grow region", "ws train-seg", "ws eval semantic")),
    "ws export-coco": ((A, P, L, CR, M), (CI, "VOC label PNGs"), ("ws cut", "ws match", "ws train-seg")),
    "ws train-seg": ((M, CI, L, "VOC label PNGs"), (CK,), ("ws export-coco", "ws grow seeds", "ws predict")),
    "ws predict": ((M, CK), (L, PR, CR), ("ws train-seg", "ws eval semantic", "ws eval instance", "ws viz")),
    "ws match": ((M, R, P), (CR,), ("ws cam peaks", "ws icn infer", "ws eval instance", "ws export-coco")),
    "ws icn": ((), (), ()),
    "ws icn train": ((M, R, P), (CK,), ("ws cam peaks", "ws icn infer")),
    "ws icn infer": ((M, R, CK), (R,), ("ws icn train", "ws match")),
    "ws eval": ((), (), ()),
    "ws eval semantic": ((L, "VOC label PNGs", M), ("JSON on stdout, --csv, table on stderr",),
                         ("ws grow", "ws predict")),
    "ws eval instance": ((CR, M), ("JSON on stdout, --csv, --plot",), ("ws match", "ws predict")),
    "ws eval proposals": ((P, M), ("JSON on stdout, --csv, --plot",), ("ws propose",)),
    "ws eval cams": ((C, M), ("JSON on stdout, --csv, --plot",), ("ws cam infer", "ws cam import")),
    "ws eval assignment": ((A, P, M), ("JSON on stdout, --csv",), ("ws cut", "ws oracle assignment")),
    "ws oracle": ((), (), ()),
    "ws oracle assignment": ((P, M), (A,), ("ws export-coco", "ws eval assignment")),
    "ws oracle cams": ((M,), (C,), ("ws grow seeds", "ws features extract")),
    "ws oracle instances": ((M,), (CI,), ("ws train-seg",)),
}


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
        for child, short_help in children:
            lines += [".TP", ".B " + _roff(child), _roff(short_help)]
    reads, writes, related = STAGES.get(" ".join(path), ((), (), ()))
    if reads or writes:
        lines.append(".SH FILES")
        if reads:
            lines += [".TP", ".B Reads", _roff("; ".join(reads))]
        if writes:
            lines += [".TP", ".B Writes", _roff("; ".join(writes))]
    if not _has_example(help_text):
        example = _EXAMPLES.get(" ".join(path))
        if example:
            lines += [".SH EXAMPLE", ".nf", _roff(example), ".fi"]
    parent = [" ".join(path[:-1])] if len(path) > 2 else []
    see = ["ws"] + parent + [c for c, _ in children] + list(related)
    unique = []
    for c in see:
        if c not in unique and c != " ".join(path):
            unique.append(c)
    lines += [".SH SEE ALSO", _roff(", ".join(f"{c.replace(' ', '-')}(1)" for c in unique))]
    return "\n".join(lines) + "\n"


def _short(command: click.Command, limit: int = 100) -> str:
    """The first paragraph of a command's help, cut at a word near ``limit`` characters (click's
    short help stops at the first full stop, e.g. inside "Sun et al.")."""
    import inspect

    if command.short_help:
        return command.short_help
    first = inspect.cleandoc(command.help or "").split("\n\n")[0]
    text = " ".join(line.strip() for line in first.splitlines() if line.strip() != "\b")
    if len(text) <= limit:
        return text
    return text[:text.rfind(" ", 0, limit - 3)].rstrip(",;:") + "..."


def _has_example(help_text: str) -> bool:
    return "Example:" in help_text or "Examples:" in help_text


# examples of the pages whose --help has none
_EXAMPLES = {
    "ws": "ws toy data/toy --train 40 --val 10\nws info data/toy/train.json\nws viz data/toy/train.json -o gt.png",
}


def generate() -> dict[str, str]:
    """File name -> page text for ``ws`` and every command and sub-command."""
    # the settings a real invocation applies (make_context), so -h shows whatever click version runs
    root_ctx = click.Context(cli, info_name="ws", **cli.context_settings)
    entries = list(_walk(cli, root_ctx, ["ws"]))
    pages = {}
    for path, command, ctx in entries:
        children = [(" ".join(p), _short(c)) for p, c, _ in entries
                    if len(p) == len(path) + 1 and p[:len(path)] == path]
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
