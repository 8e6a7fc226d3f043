"""The flags every training command shares (``ws cam train``, ``ws features train-mil``,
``ws train-seg``, ``ws icn train``): the run's own (``@training_options``) and the optimizer's
(``@optimizer_options``, with the defaults of the paper each trainer follows)."""

from __future__ import annotations

import click

from .common import (device_option, force_option, option_stack, output_option, seed_option, threads_option,
                     workers_option)

stop_after_option = click.option(
    "--stop-after", type=click.IntRange(1), default=None,
    help="End this run after epoch N, keeping NAME.last.pt (e.g. to fit a job's time limit); "
         "continue later with --resume.")
resume_training_option = click.option(
    "--resume", is_flag=True, help="Continue from NAME.last.pt (the last finished epoch) with the same arguments.")


def checkpoint_output_option(kind: str):
    """``-o/--output``: the checkpoint a trainer writes, of ``kind`` (``ws info`` shows it)."""
    return output_option(f"Checkpoint to write (.pt, kind `{kind}`). Beside it: NAME.log.jsonl (one JSON line per "
                         "epoch) and, while training, NAME.last.pt (the last finished epoch, for --resume).")


def training_options(*extra):
    """The flags every training command shares, in this order: ``--stop-after --device --threads
    --workers --seed``, then ``extra`` (more click options of the command), ``--force --resume``.
    Flags whose defaults differ between the trainers (--epochs, --batch-size, --lr) stay with
    each command."""
    return option_stack([stop_after_option, device_option, threads_option, workers_option, seed_option, *extra,
                         force_option, resume_training_option])


def _number(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-") if 0 < x < 0.01 else f"{x:g}"


def optimizer_options(paper: str, *, lr: float, momentum: float, weight_decay: float, head_lr_mult=None,
                      lr_help: str = "Base learning rate of the backbone, poly-decayed (power 0.9) per iteration",
                      adam_help: str = "for a backbone trained from scratch, e.g. --arch tiny"):
    """``--lr [--head-lr-mult] --momentum --weight-decay --optimizer``, defaulting to ``paper``'s
    values (named in each help text)."""
    options = [click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=lr, show_default=True,
                            help=f"{lr_help} ({paper}: {_number(lr)}).")]
    if head_lr_mult is not None:
        options.append(click.option("--head-lr-mult", type=click.FloatRange(min=0), default=head_lr_mult,
                                    show_default=True,
                                    help=f"Learning-rate multiplier of the head ({paper}: {_number(head_lr_mult)})."))
    options += [
        click.option("--momentum", type=click.FloatRange(0, 1), default=momentum, show_default=True,
                     help=f"SGD momentum ({paper}: {_number(momentum) if momentum else 'none'})."),
        click.option("--weight-decay", type=click.FloatRange(min=0), default=weight_decay, show_default=True,
                     help=f"Weight decay ({paper}: {_number(weight_decay)})."),
        click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True,
                     help=f"SGD ({paper}) or Adam ({adam_help})."),
    ]
    return option_stack(options)
