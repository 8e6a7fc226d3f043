"""The shared training loop: seeding, schedules, DDP, gathering (see :mod:`wstools.train.loop`)."""

from .loop import (close_distributed, constant_schedule, fit, gather, init_distributed, make_optimizer,
                   poly_lr, poly_schedule, rank_subset, seed_everything, step_schedule)

__all__ = ["close_distributed", "constant_schedule", "fit", "gather", "init_distributed", "make_optimizer",
           "poly_lr", "poly_schedule", "rank_subset", "seed_everything", "step_schedule"]
