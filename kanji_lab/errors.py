"""User-facing errors: bad input ends a command with its message, not a stack trace."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class DataSourceError(ValueError):
    """A data source cannot be used as configured; the message says how to fix it."""


class RunDirError(ValueError):
    """A run directory cannot be used as asked; the message says what to do instead."""


class UserError(Exception):
    """Base of a command's own errors that the user fixes (the message says how)."""


class NetworkConfigError(UserError, ValueError):
    """``model.net`` holds a key or value its architecture refuses."""


USER_ERRORS = (DataSourceError, RunDirError, UserError)
EXIT_CODE = 2

log = logging.getLogger("kanji_lab")


def reports_user_errors(fn: F) -> F:
    """Wrap a command's task: a :data:`USER_ERRORS` exception is logged as one line (on the
    console and in the run's log file) and the process exits with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            log.error("%s", exc)
            raise SystemExit(EXIT_CODE) from exc

    return wrapper  # type: ignore[return-value]
