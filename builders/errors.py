"""The project's error type and warning channel.

Every problem with the input data raises `BuildError` with a message that names the file and
what is wrong; the CLI prints it and exits with code 1. Problems that `--no-verify` downgrades
go through `warn`, and facts worth showing (which archive a build used) through `note`; both log on the
`builders` logger.
"""

import contextlib
import contextvars
import logging

log = logging.getLogger("builders")


class BuildError(Exception):
    """Bad or missing upstream data, a failed check, or a failed download."""


def warn(message: str) -> None:
    log.warning(message)


def note(message: str) -> None:
    """Information the user should see (which file a build used), not a problem."""
    log.info(message)


_verifying = contextvars.ContextVar("verifying", default=True)
_relaxed = contextvars.ContextVar("relaxed", default=None)


@contextlib.contextmanager
def verification(on: bool):
    """The one verification policy, which `check_or_warn` consults: inside the block a failed check raises
    (on) or only warns (off: `--no-verify`). Staging sets it for a build; a builder sets it from its `verify`
    config flag around its own work, which also reaches `--num-proc` worker processes."""
    token = _verifying.set(on)
    try:
        yield
    finally:
        _verifying.reset(token)


@contextlib.contextmanager
def relaxed_checks():
    """Inside the block, collect the messages of the checks `check_or_warn` lets through (verify off)."""
    token = _relaxed.set([])
    try:
        yield _relaxed.get()
    finally:
        _relaxed.reset(token)


def check_or_warn(ok: bool, message: str) -> None:
    """Raise `BuildError(message)` when a check fails, or only warn when verification is off."""
    if ok:
        return
    if _verifying.get():
        raise BuildError(message + " (pass --no-verify to turn this into a warning)")
    if _relaxed.get() is not None:
        _relaxed.get().append(message)
    warn(message)


def find_build_error(exc: BaseException) -> "BuildError | None":
    """The `BuildError` behind an exception (datasets wraps generator errors in its own)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, BuildError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def raise_build_error(exc: BaseException) -> None:
    """Raise the `BuildError` behind `exc` (`datasets` wraps errors raised while generating) as a `BuildError` of
    its message, which also survives the trip back from a --num-proc worker; return if there is none."""
    cause = find_build_error(exc)
    if cause is not None and cause is not exc:
        raise BuildError(str(cause)) from exc


@contextlib.contextmanager
def no_progress_bars():
    """`datasets` progress bars off inside the block (as they were after it): for work that is not the user's
    progress (a column selection, a check's loads, a build's internal parts)."""
    import datasets

    was_enabled = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            datasets.utils.logging.enable_progress_bar()
