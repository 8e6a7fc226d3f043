"""``python -m wstools ...`` = ``ws ...`` (for launchers that need a module, e.g.
``torchrun --nproc_per_node 4 -m wstools cam train ...``)."""

from .cli.main import cli

if __name__ == "__main__":
    cli(prog_name="ws")
