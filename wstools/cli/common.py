"""The shared base of every ``ws`` command: common flags, errors, summaries, progress.

A command module defines a click command with ``cls=WsCommand`` (or uses
:func:`command`), adds the shared options it needs with the decorators below,
and ends by calling :func:`emit` with its JSON summary.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid input.
Errors are one line on stderr (``ws NAME: error: FILE: image ID: problem``);
set ``WS_DEBUG=1`` to see the traceback of a runtime failure.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
import traceback

import click
import numpy as np

from ..errors import InputError, Terminated, WsError, note_termination

_STATE = {"quiet": False}


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if hasattr(obj, "__fspath__"):
        return os.fspath(obj)
    return obj


def emit(summary: dict) -> None:
    """Print the command's one-line JSON summary on stdout (NaN and inf become null)."""
    sys.stdout.write(json.dumps(_to_jsonable(summary), allow_nan=False) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """A log line on stderr, silent with --quiet."""
    if not _STATE["quiet"]:
        click.echo(message, err=True)


def warn(message: str) -> None:
    """A warning on stderr (shown even with --quiet)."""
    click.echo(f"warning: {message}", err=True)


def progress(iterable=None, total=None, desc=None, unit="img"):
    """A tqdm progress bar on stderr; silent when stderr is not a TTY or with --quiet."""
    from tqdm import tqdm

    disable = _STATE["quiet"] or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=False)


class Timer:
    """``with Timer() as t: ...; t.seconds``"""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def _param_hint(param) -> str:
    if param is None:
        return ""
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


def usage_error_line(error: click.ClickException) -> str:
    """A click usage error (a range check, a missing option, an unknown flag) as the one line
    every other error has: ``ws cut: error: --time-limit: 0.0 is not in the range x>0 (ws cut --help)``."""
    ctx = getattr(error, "ctx", None)
    name = ctx.command_path if ctx is not None else "ws"
    param = getattr(error, "param", None)
    if isinstance(error, click.MissingParameter):
        kind = error.param_type or (param.param_type_name if param is not None else "parameter")
        problem = f"missing {kind} {_param_hint(param)}".rstrip()
    elif isinstance(error, click.BadParameter) and (param is not None or error.param_hint):
        hint = _param_hint(param) if param is not None else click.exceptions._join_param_hints(error.param_hint)
        problem = f"{hint}: {error.message}"
    elif isinstance(error, click.FileError):
        problem = f"{error.ui_filename}: {error.message}"
    else:
        problem = error.format_message()
    problem = " ".join(str(problem).split()).rstrip(".")
    if ctx is not None:
        return f"{name}: error: {problem} ({name} --help)"
    return f"{name}: error: {problem}"


class OneLineUsageError(click.UsageError):
    """A click error re-raised so that click's standalone handler prints one line, exit 2."""

    exit_code = 2

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line

    def show(self, file=None):
        click.echo(self.line, err=True, file=file)


class _OneLineErrors:
    """Mixin for commands and groups: click's own errors (parsing, range checks, unknown
    commands) as one line. The root group catches everything below it; the mixin on every
    command keeps it so when a command is invoked on its own (``cmd.main()``)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except (click.exceptions.NoArgsIsHelpError, OneLineUsageError):
            raise
        except click.ClickException as e:
            raise OneLineUsageError(usage_error_line(e)) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.NoArgsIsHelpError, OneLineUsageError):
            raise
        except click.ClickException as e:
            raise OneLineUsageError(usage_error_line(e)) from None


class _FiniteFloat:
    """Mixed into a float flag's click type: nan and inf are refused where the flag is parsed."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


_FINITE_TYPES: dict = {}


def finite_float_type(base):
    """``click.FLOAT`` / ``click.FloatRange(...)`` -> the same type refusing nan and inf (help unchanged)."""
    if isinstance(base, _FiniteFloat):
        return base
    cls = type(base)
    if cls not in _FINITE_TYPES:
        _FINITE_TYPES[cls] = type(f"Finite{cls.__name__}", (_FiniteFloat, cls), {})
    finite = object.__new__(_FINITE_TYPES[cls])
    finite.__dict__.update(vars(base))
    return finite


def _finite_float_params(params) -> None:
    for param in params:
        if isinstance(param.type, click.types.FloatParamType):
            param.type = finite_float_type(param.type)
        elif isinstance(param.type, click.Tuple):
            param.type.types = [finite_float_type(t) if isinstance(t, click.types.FloatParamType) else t
                                for t in param.type.types]


class WsCommand(_OneLineErrors, click.Command):
    """A click command whose errors become one-line messages and exit codes; every float
    flag must be a finite number (checked while parsing, before any output exists)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _finite_float_params(self.params)

    def invoke(self, ctx):
        from ..io.store import opened_inputs, release_output_locks

        name = ctx.command_path
        opened_inputs(reset=True)
        previous = _install_sigterm()
        try:
            _check_outputs(ctx)
            return super().invoke(ctx)
        except Terminated:
            click.echo(f"{name}: terminated (resume with --resume)", err=True)
            ctx.exit(143)
        except InputError as e:
            click.echo(f"{name}: error: {e}", err=True)
            ctx.exit(2)
        except WsError as e:
            click.echo(f"{name}: failed: {e}", err=True)
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo(f"{name}: interrupted (resume with --resume)", err=True)
            ctx.exit(130)
        except MemoryError:
            click.echo(f"{name}: failed: out of memory (lower --batch-size or shard the input)", err=True)
            ctx.exit(1)
        except Exception as e:  # a bug or an environment failure: one line unless WS_DEBUG
            corrupt = _corrupt_hdf5_input(e)
            if corrupt is not None:
                if os.environ.get("WS_DEBUG"):
                    traceback.print_exc()
                click.echo(f"{name}: error: {corrupt}", err=True)
                ctx.exit(2)
            if os.environ.get("WS_DEBUG"):
                traceback.print_exc()
            click.echo(f"{name}: failed: {e.__class__.__name__}: {e} (WS_DEBUG=1 shows the traceback)", err=True)
            ctx.exit(1)
        finally:
            release_output_locks()      # a failure may leave an object holding one alive (its traceback)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _corrupt_hdf5_input(error: Exception):
    """The one-line message for an error HDF5 raised while reading an input store that opened
    fine (see :func:`wstools.io.store.unreadable_input_message`), or ``None``."""
    from ..io.store import unreadable_input_message

    return unreadable_input_message(error)


_OUTPUT_PARAMS = ("output", "out_dir", "csv_path", "plot_path", "semantic_dir")


def _check_outputs(ctx) -> None:
    """Before any work: every output's folder must be writable, and ``-o`` must not exist unless
    --force or --resume (a refusal found only when the result is written would cost the run)."""
    from ..io.atomic import check_output, check_writable_folder

    for name in _OUTPUT_PARAMS:
        value = ctx.params.get(name)
        if value is not None and str(value) not in ("", "-"):
            check_writable_folder(value)
    output = ctx.params.get("output")
    if output is not None and str(output) != "-" and "force" in ctx.params and not ctx.params.get("resume"):
        if os.path.exists(output) and not os.path.isdir(output):
            check_output(output, ctx.params["force"])


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)     # a second TERM must not interrupt the cleanup
    note_termination()                                # raised again at the next image or batch if swallowed
    raise Terminated()


def _quiet_swallowed_termination(unraisable):
    """sys.unraisablehook: a Terminated raised where Python cannot propagate it (a weakref
    callback, a ``__del__``) is not printed; raise_if_terminated raises it again at the next
    image or batch. Anything else goes to the hook this one replaced."""
    if isinstance(unraisable.exc_value, Terminated):
        return
    _STATE.get("unraisablehook", sys.__unraisablehook__)(unraisable)


def _install_sigterm():
    """Turn SIGTERM into :class:`Terminated` in the main thread; returns the old handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        return None
    note_termination(False)
    if sys.unraisablehook is not _quiet_swallowed_termination:
        _STATE["unraisablehook"] = sys.unraisablehook
        sys.unraisablehook = _quiet_swallowed_termination
    return previous


class WsGroup(_OneLineErrors, click.Group):
    command_class = WsCommand


def command(name=None, **kwargs):
    """``@command("toy")`` = ``@click.command("toy", cls=WsCommand)`` with the --quiet flag."""
    kwargs.setdefault("cls", WsCommand)

    def deco(f):
        return click.command(name, **kwargs)(quiet_option(f))

    return deco


# shared options ---------------------------------------------------------------

def _set_quiet(ctx, param, value):
    _STATE["quiet"] = bool(value)
    return value


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, expose_value=False, callback=_set_quiet,
                        is_eager=True, help="No progress bars or log lines on stderr (errors still shown).")(f)


def output_option(help="Output file.", required=True, **kw):
    return click.option("-o", "--output", "output", required=required, type=click.Path(dir_okay=False),
                        help=help, **kw)


force_option = click.option("--force", is_flag=True, help="Overwrite an existing output.")
resume_option = click.option("--resume", is_flag=True,
                             help="Continue an interrupted run (or add missing images to a finished output); "
                                  "images already written are skipped.")
shard_option = click.option("--shard", metavar="I/N", default=None,
                            help="Process only images I, I+N, I+2N, ... (0 <= I < N); join the parts with "
                                 "`ws merge`. For Slurm job arrays and GNU parallel.")
force_mismatch_option = click.option(
    "--force-mismatch", is_flag=True,
    help="Use input stores although their recorded provenance says they were not made from one another "
         "(e.g. the same proposals written again under a new uid).")


def check_provenance(store, source, force_mismatch: bool) -> dict:
    """:func:`wstools.io.store.check_made_from` with the command's warnings: a forced mismatch,
    or a chain that could not be followed (files moved), is said on stderr."""
    from ..io.store import check_made_from

    result = check_made_from(store, source, force=force_mismatch)
    if result["checked"] == "forced":
        warn(f"{source.path}: {result['mismatch']} (--force-mismatch: used anyway)")
    elif result["checked"] == "unverified":
        missing = f": {', '.join(result['missing'][:3])} not found" if result.get("missing") else ""
        warn(f"cannot check that {source.path} is the {source.kind} store {store.path} was made from{missing}")
    return result


seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
workers_option = click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
                              help="Worker processes (0 = in the main process).")
batch_size_option = click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True,
                                 help="Images per batch.")
def _set_threads(ctx, param, value):
    if value:
        import torch

        torch.set_num_threads(value)
    return value


threads_option = click.option("--threads", type=click.IntRange(0), default=0, show_default=True, expose_value=False,
                              callback=_set_threads,
                              help="CPU threads of torch (0 = torch's default, one per core). On a shared machine "
                                   "set it to the cores you own: oversubscribed threads can run many times slower.")
device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                             show_default=True, help="auto = CUDA when available, else CPU.")


def resolve_device(name: str) -> str:
    """``auto|cpu|cuda`` -> a torch device string; CUDA asked for but absent is an input error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA device is available (use --device cpu)")
    return name


def parse_floats(text: str, name: str) -> list[float]:
    """``"1.0,0.5"`` -> ``[1.0, 0.5]``; a malformed list is an input error naming the flag."""
    try:
        values = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{name} {text!r} must be a comma-separated list of numbers") from None
    if not values:
        raise InputError(f"{name} is empty")
    bad = [x for x in values if not math.isfinite(x)]
    if bad:
        raise InputError(f"{name} {text!r}: {bad[0]} is not a finite number")
    return values
