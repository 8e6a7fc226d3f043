"""The command classes of ``ws``: every command (:class:`WsCommand`) and group (:class:`WsGroup`)
prints its errors as one line and exits 0 success, 1 runtime failure, 2 bad usage or invalid
input, 130 on Ctrl-C, 143 on SIGTERM (what was written kept for ``--resume``).

Errors are one line on stderr (``ws NAME: error: FILE: image ID: problem``); set
``WS_DEBUG=1`` to see the traceback of a runtime failure. Before any work a command checks that
its outputs can be written; every float flag must be a finite number.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import traceback

import click

from ..errors import InputError, Terminated, WsError, note_termination

_HOOK: dict = {}


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
    _HOOK.get("unraisablehook", sys.__unraisablehook__)(unraisable)


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
        _HOOK["unraisablehook"] = sys.unraisablehook
        sys.unraisablehook = _quiet_swallowed_termination
    return previous


class WsGroup(_OneLineErrors, click.Group):
    command_class = WsCommand
