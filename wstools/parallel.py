"""Worker processes for work in chunks: :func:`worker_map` runs a function over jobs in forked
processes, results in job order, with the failure handling a command needs (a dead worker is
an error, not a hang; SIGTERM, Ctrl-C or an error stop every worker at once; a parent killed
outright takes its workers with it). Neutral: no files, no flags; the per-image commands
(``wstools.cli.stage``) and the cut engine's component chunks (``wstools.cut.engine``) use it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from .errors import InputError, WsRuntimeError, raise_if_terminated

WORKER_DIED = "a worker process died (killed, or out of memory: lower --workers)"

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this worker when the process that forked it dies (prctl
    PR_SET_PDEATHSIG): a ``kill -9`` of the command must not leave workers holding its files
    (the HDF5 lock of a partial store, which made ``--resume`` fail). Elsewhere a thread
    watches the parent pid. The parent may already be gone by the time this runs: then exit."""
    import ctypes
    import threading

    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:
        os._exit(1)
    if not armed:
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="ws-parent-watch").start()


def _pool_init(initializer, parent_pid=None):
    """Worker start: dies with its parent, default SIGTERM (the pool's terminate() must just end
    it, no traceback), Ctrl-C left to the parent, one OpenCV thread per worker."""
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass
    if initializer is not None:
        initializer()


def _pool_call(fn, job):
    try:
        return True, fn(job)
    except InputError as e:                        # keeps path and image id across the pipe
        return False, (e.problem, e.path, e.image_id)


def _ordered_results(pool, fn, jobs, in_flight, died):
    import collections
    from concurrent.futures.process import BrokenProcessPool

    pending = collections.deque()
    try:
        for job in jobs:
            raise_if_terminated()
            pending.append(pool.submit(_pool_call, fn, job))
            if len(pending) >= in_flight:
                yield _unwrap(pending.popleft().result())
        while pending:
            raise_if_terminated()
            yield _unwrap(pending.popleft().result())
    except BrokenProcessPool:       # from result() or, once the pool knows, from submit()
        raise WsRuntimeError(died) from None


def _unwrap(res):
    ok, value = res
    if ok:
        return value
    problem, path, image_id = value
    raise InputError(problem, path=path, image_id=image_id)


@contextlib.contextmanager
def worker_map(fn, jobs, workers: int, *, initializer=None, ahead: int = 2, hint: str | None = None):
    """``with worker_map(fn, jobs, workers) as results: for r in results: ...``

    ``fn(job)`` for every job, results in job order (so the output does not depend on
    ``workers``). ``workers = 0`` runs in this process; else a pool of ``workers`` forked
    processes with at most ``workers * ahead`` jobs in flight: ``jobs`` (a lazy iterable,
    e.g. a generator reading the inputs) is consumed in this process as results are taken,
    so memory stays bounded. ``fn`` must be a module-level function; an ``InputError`` it
    raises is re-raised here with its path and image id. A worker that dies (the OOM killer,
    a crash in a C library) is a ``WsRuntimeError`` saying :data:`WORKER_DIED` (and ``hint``,
    e.g. how to keep what was written), not a hang. On an error, SIGTERM or Ctrl-C the queued
    jobs are cancelled and the workers ended at once; a parent killed outright (SIGKILL) takes
    its workers with it (:func:`_die_with_parent`). (Not multiprocessing.Pool: it waits
    forever for a dead worker, and its terminate() can deadlock, CPython issues 78178, 96995.)
    """
    if workers <= 0:
        yield (fn(job) for job in jobs)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    died = WORKER_DIED + (f"; {hint}" if hint else "")
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_pool_init,
                               initargs=(initializer, os.getpid()))
    try:
        yield _ordered_results(pool, fn, jobs, max(1, workers * ahead), died)
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:         # the running jobs too: an interrupted command must stop now
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join()
        raise
    pool.shutdown(wait=True)
