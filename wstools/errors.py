"""Exceptions that map to the command-line exit codes.

``InputError`` is bad usage or invalid input (exit 2): the message names the
file, the image id where there is one, and the problem. ``WsRuntimeError`` is a
failure while doing valid work (exit 1).
"""

from __future__ import annotations


class WsError(Exception):
    exit_code = 1


class InputError(WsError, ValueError):
    """Invalid input: a file, an image or a flag the command cannot use (exit 2)."""

    exit_code = 2

    def __init__(self, problem: str, *, path=None, image_id=None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.image_id = image_id
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if image_id is not None:
            parts.append(f"image {image_id}")
        parts.append(problem)
        super().__init__(": ".join(parts))


class WsRuntimeError(WsError):
    """A failure during valid work (exit 1)."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the handler ``ws`` commands install, so that
    ``finally``/``except BaseException`` cleanup runs (stores keep their completed images for
    ``--resume``); the command exits 143."""


_TERMINATION = {"asked": False}


def note_termination(asked: bool = True) -> None:
    """Record that SIGTERM arrived (the signal handler, before it raises), or clear the record
    (``asked=False``: a command starting in a process that ran another one)."""
    _TERMINATION["asked"] = asked


def raise_if_terminated() -> None:
    """Raise :class:`Terminated` again when SIGTERM arrived but its exception was swallowed.

    A signal handler's exception surfaces wherever the interpreter happens to be; inside a
    weakref callback, a ``__del__`` or a thread's bookkeeping Python prints "Exception ignored"
    and goes on, and the command would run to its end as if never signalled. Loops over images
    and batches call this at every step.
    """
    if _TERMINATION["asked"]:
        raise Terminated()
