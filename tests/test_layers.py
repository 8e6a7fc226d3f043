"""The layer rule of the design: algorithm packages are plain functions on arrays and tensors.
They never import the file layer (``wstools.io``), the command line (``wstools.cli``, ``click``)
or ``h5py``; RLE helpers live in the neutral ``wstools.masks``. Checked on the import statements
of every module (top-level and inside functions), so a lazy import is caught as well."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PKG = Path(__file__).resolve().parents[1] / "wstools"
ALGORITHMS = ("cam", "cut", "eval", "features", "graph", "grow", "nn", "prm", "proposals", "seg", "toy", "train",
              "viz")
NEUTRAL = ("masks.py", "errors.py", "palette.py", "parallel.py")
FORBIDDEN = ("wstools.io", "wstools.cli", "click", "h5py")
# known exceptions, each a (module, imported module) pair (none left)
KNOWN: set = set()


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                names.add(mod)
                if node.module is None:   # from .. import io
                    names.update(f"{mod}.{a.name}" for a in node.names)
            else:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _violations(path: Path) -> list[str]:
    key = str(path.relative_to(PKG))
    return sorted(n for n in _imports(path) for bad in FORBIDDEN
                  if (n == bad or n.startswith(bad + ".")) and (key, n) not in KNOWN)


def _modules():
    for name in ALGORITHMS:
        yield from sorted((PKG / name).rglob("*.py"))
    for name in NEUTRAL:
        yield PKG / name


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(PKG)))
def test_algorithm_modules_do_not_import_io_cli_click_h5py(path):
    assert _violations(path) == []


@pytest.mark.parametrize("package", ["proposals", "eval"])
def test_proposals_and_eval_use_wstools_masks(package):
    """Issue 14: the RLE helpers moved from wstools/io/masks.py to wstools/masks.py."""
    names = set().union(*(_imports(p) for p in (PKG / package).rglob("*.py")))
    assert not any(n == "wstools.io" or n.startswith("wstools.io.") for n in names), sorted(names)
    assert "wstools.masks" in names


def test_the_checker_catches_io_imports(tmp_path, monkeypatch):
    """The scanner sees absolute, relative, lazy and `from .. import io` imports."""
    fake = PKG / "proposals" / "x_probe.py"
    cases = ["from ..io.masks import encode\n", "import wstools.io.store\n",
             "def f():\n    import h5py\n", "from .. import io\n", "import click\n"]
    for src in cases:
        p = tmp_path / "probe.py"
        p.write_text(src)
        monkeypatch.setattr(Path, "read_text", lambda self, *a, _s=src, **k: _s)
        assert _violations(fake), src
        monkeypatch.undo()
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "from ..masks import encode\nimport numpy\n")
    assert _violations(fake) == []
