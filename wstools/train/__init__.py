"""The shared training loop: seeding, schedules, DDP, gathering (see :mod:`wstools.train.loop`)."""

from .loop import (NonFiniteTraining, check_finite_weights, close_distributed, constant_schedule, fit, gather,
                   init_distributed, make_optimizer, non_finite_tensors, poly_lr, poly_schedule, rank_subset,
                   seed_everything, step_schedule)

__all__ = ["NonFiniteTraining", "check_finite_weights", "close_distributed", "constant_schedule", "fit", "gather",
           "init_distributed", "make_optimizer", "non_finite_tensors", "poly_lr", "poly_schedule", "rank_subset",
           "seed_everything", "step_schedule"]
