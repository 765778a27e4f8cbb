"""The project's error type and warning channel.

Every problem with the input data raises `BuildError` with a message that names the file and
what is wrong; the CLI prints it and exits with code 1. Problems that `--no-verify` downgrades
go through `warn`, and facts worth showing (which archive a build used) through `note`; both log on the
`builders` logger.
"""

import logging

log = logging.getLogger("builders")


class BuildError(Exception):
    """Bad or missing upstream data, a failed check, or a failed download."""


def warn(message: str) -> None:
    log.warning(message)


def note(message: str) -> None:
    """Information the user should see (which file a build used), not a problem."""
    log.info(message)


def check_or_warn(ok: bool, message: str, verify: bool) -> None:
    """Raise `BuildError(message)` when a check fails, or only warn when `verify` is off."""
    if ok:
        return
    if verify:
        raise BuildError(message + " (pass --no-verify to turn this into a warning)")
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
