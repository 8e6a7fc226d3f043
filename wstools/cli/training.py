"""The command-line side of every training command (``ws cam train``, ``ws features
train-mil``, ``ws train-seg``, ``ws icn train``): output checks, ``--resume`` from the
per-epoch resume file (refused, naming the differing flags, when the arguments differ),
the JSON-lines log and the final checkpoint. The loop itself is :func:`wstools.train.fit`.

A trainer declares its shared flags with ``@training_options()`` and
``@optimizer_options(...)`` (:mod:`wstools.cli.training_options`), opens its files with
:class:`TrainingRun` (before reading its inputs, so a bad ``-o`` or ``--resume`` fails at
once) and hands the rest to :func:`run_training`: seeding, resume, DDP, stop-after vs
finish, the checkpoint and the JSON summary. Its step, optimizer and schedule come from its
algorithm package (``cam``, ``features``, ``prm``, ``seg``).

Files beside the checkpoint ``NAME.pt``: ``NAME.log.jsonl`` (one JSON line per epoch)
and, while training, ``NAME.last.pt`` (the last finished epoch, with the optimizer state).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .common import Timer, emit, log, progress, warn

def run_paths(output) -> tuple[Path, Path]:
    """``(NAME.log.jsonl, NAME.last.pt)`` beside the checkpoint ``output``."""
    output = Path(output)
    stem = output.with_suffix("") if output.suffix else output
    return stem.with_name(stem.name + ".log.jsonl"), stem.with_name(stem.name + ".last.pt")


class TrainingRun:
    """One training command's files.

    ``TrainingRun(output, args, kind=..., classes=..., force=..., resume=...)`` checks the
    output and, with ``resume`` and an existing ``NAME.last.pt``, loads it: ``start_epoch``,
    ``state_dict``, ``optimizer_state`` and ``resumed`` (the whole dict) are then set, and a
    resume file whose ``args`` or ``classes`` differ is refused naming the differing flags.

    ``with run: ... fit(..., start_epoch=run.start_epoch, on_epoch=run.on_epoch(base)) ...``
    keeps the log open; ``run.finish(ckpt)`` writes the checkpoint and removes the resume file.
    ``base`` is the part of the checkpoint every epoch shares (arch, classes, ...).
    """

    def __init__(self, output, args: dict, *, kind: str, classes, force: bool = False, resume: bool = False,
                 epochs: int | None = None, rank: int = 0):
        import contextlib
        import weakref

        from ..io.store import output_lock

        self.output = Path(output)
        lock = contextlib.ExitStack()
        lock.enter_context(output_lock(self.output))         # a second writer of NAME.pt exits 2 at once
        self._release = weakref.finalize(self, lock.close)   # finish(), a failure, or the run dropped
        try:
            self._setup(output, args, kind=kind, classes=classes, force=force, resume=resume, epochs=epochs,
                        rank=rank)
        except BaseException:
            self._release()
            raise

    def _setup(self, output, args, *, kind, classes, force, resume, epochs, rank):
        from ..io.atomic import check_output
        from ..io.checkpoint import load_checkpoint

        self.output, self.given = Path(output), str(output)
        self.args = json.loads(json.dumps(args))
        self.kind = kind
        self.epochs = epochs
        self.rank = rank
        self.force = force or resume
        self.log_path, self.last_path = run_paths(self.output)
        check_output(self.output, self.force)
        self.start_epoch, self.state_dict, self.optimizer_state, self.resumed = 0, None, None, None
        self.epoch_box = [0]     # the epoch being trained, for augmentation seeded per epoch
        if resume and self.last_path.exists():
            r = load_checkpoint(self.last_path, kind)
            old = r.get("args", {})
            if old != self.args:
                diff = sorted(k for k in set(old) | set(self.args) if old.get(k) != self.args.get(k))
                raise InputError("cannot resume: arguments differ from the earlier run ("
                                 + ", ".join("--" + k.replace("_", "-") for k in diff) + ")", path=self.last_path)
            if list(r.get("classes", [])) != list(classes):
                raise InputError("cannot resume: class list differs from the earlier run", path=self.last_path)
            self.resumed = r
            self.start_epoch = int(r["epoch"])
            self.state_dict = r["state_dict"]
            self.optimizer_state = r.get("optimizer")
        elif resume:
            warn(f"{self.last_path} does not exist: starting from epoch 1")
        self._log = None

    def __enter__(self):
        if self.rank == 0:
            self._log = open(self.log_path, "a" if self.start_epoch > 0 else "w")
        return self

    def __exit__(self, exc_type, exc, tb):
        from ..train.loop import NonFiniteTraining

        if exc is not None:
            self._release()

        if isinstance(exc, NonFiniteTraining):
            kept = (f"{self.last_path} keeps epoch {exc.epoch - 1}; no checkpoint written"
                    if exc.epoch > 1 and self.last_path.exists() else "no checkpoint written")
            exc.args = (f"{exc.args[0]}; {kept}",)
        if self._log is not None:
            self._log.close()
            if self.start_epoch == 0 and self.log_path.stat().st_size == 0:  # failed before the first epoch ended
                self.log_path.unlink()
        return False

    def set_epoch(self, epoch: int) -> None:
        """The loop's ``set_epoch``: datasets holding :attr:`epoch_box` see the epoch being trained."""
        self.epoch_box[0] = epoch

    def on_epoch(self, base: dict):
        """The loop's ``on_epoch``: append the record to the log, save the resume file."""
        from ..io.checkpoint import save_resume

        def callback(epoch, record, model, optimizer):
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
            total = f"/{self.epochs}" if self.epochs else ""
            log(f"epoch {record['epoch']}{total}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in record.items() if k != "epoch" and isinstance(v, float)))
            save_resume(self.last_path, {**base, "args": self.args, "state_dict": model.state_dict(),
                                         "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                                         "metrics": record}, kind=self.kind)
        return callback

    def finish(self, base: dict, model, epochs: int, record: dict) -> None:
        """Write the final checkpoint (CPU tensors) atomically and remove the resume file."""
        from ..io.checkpoint import remove, save_checkpoint
        from ..train.loop import NonFiniteTraining, non_finite_tensors

        try:
            if not record and self.resumed is not None:
                record = self.resumed.get("metrics", {})
            bad = non_finite_tensors(model.state_dict())
            if bad:       # a final output every later stage would read: never NaN
                raise NonFiniteTraining(f"epoch {epochs}: weight {bad[0]} is NaN or inf; no checkpoint written",
                                        epochs)
            save_checkpoint(self.output, {**base, "args": self.args,
                                          "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                          "epoch": epochs, "metrics": record}, force=self.force, kind=self.kind)
            remove(self.last_path)
        finally:
            self._release()


def check_images(manifest, records) -> None:
    """Decode every image of ``records`` once before the first epoch: a truncated or
    unreadable file stops the command at once (exit 2, naming the file and the image), not
    in the middle of a long run. Costs one decode per image (seconds for `ws toy` sets, about
    a minute for VOC's 10,582 training images)."""
    seen = set()
    for rec in progress(list(records), desc="checking images", unit="image") if records else ():
        if rec.id not in seen:
            seen.add(rec.id)
            manifest.read_image(rec)


def run_training(run: TrainingRun, build_model, setup, *, device: str, seed: int, workers: int, stop_after,
                 base: dict, emit_summary: bool = True) -> dict:
    """Train, save and report one run of a training command; returns the last record.

    ``build_model(fresh) -> model`` builds the network after ``torch.manual_seed(seed)``
    (``fresh``: not resumed, so load initial weights); a resumed run's weights are loaded
    here. Then the process joins DDP (under ``torchrun``), the model moves to its device and
    ``setup(model, device, world)`` returns the loop's arguments: ``train_set``, ``step``,
    ``optimizer`` (its resumed state is loaded here), ``epochs``, optionally ``schedule``,
    ``collate``, ``summarize``, ``evaluate``, ``find_unused_parameters``, plus ``log`` (the
    line said before training), ``images`` (``(manifest, records)``: each decoded once before
    training, see :func:`check_images`), ``base`` (more checkpoint entries) and ``summary`` (the
    command's fields of the JSON summary, or ``summary(seconds, epochs_trained) -> dict``).
    :func:`wstools.train.fit` trains; with ``--stop-after`` before the last epoch the resume
    file is kept and the summary has ``output: null``, else the checkpoint ``{**base, args,
    state_dict, epoch, metrics}`` is written and the resume file removed. The summary is emitted on rank 0 (unless not
    ``emit_summary``); the process group is left in every case.
    """
    import torch

    from ..train import close_distributed, fit, init_distributed

    try:
        torch.manual_seed(seed)
        model = build_model(run.resumed is None)
        if run.resumed is not None:
            model.load_state_dict(run.state_dict)
        rank, world, device = init_distributed(device)
        run.rank = rank
        model.to(device)
        plan = dict(setup(model, device, world))
        epochs = run.epochs = plan.pop("epochs")
        fields, message = plan.pop("summary", {}), plan.pop("log", None)
        check_images(*plan.pop("images", (None, ())))
        base = {**base, **plan.pop("base", {})}
        if run.optimizer_state is not None:
            plan["optimizer"].load_state_dict(run.optimizer_state)
        if rank == 0 and message:
            log(message + (f", {world} processes" if world > 1 else ""))
        with run, Timer() as t:
            record = fit(model, plan.pop("train_set"), epochs=epochs, device=device, workers=workers, seed=seed,
                         start_epoch=run.start_epoch, stop_after=stop_after, set_epoch=run.set_epoch,
                         on_epoch=run.on_epoch(base), progress=progress, rank=rank, world=world, **plan)
        stopped = stop_after is not None and stop_after < epochs
        if callable(fields):
            fields = fields(t.seconds, (stop_after if stopped else epochs) - run.start_epoch)
        summary = {"log": str(run.log_path), **fields, "epochs": epochs, "resumed_from_epoch": run.start_epoch,
                   "processes": world}
        if rank == 0 and stopped:
            if emit_summary:
                emit({"output": None, "resume_file": str(run.last_path), **summary, "stopped_after_epoch": stop_after,
                      "metrics": record, "seconds": round(t.seconds, 3)})
        elif rank == 0:
            run.finish(base, model, epochs, record)
            if emit_summary:
                emit({"output": run.given, **summary,
                      "metrics": record or (run.resumed or {}).get("metrics", {}), "seconds": round(t.seconds, 3)})
        return record
    finally:
        close_distributed()
