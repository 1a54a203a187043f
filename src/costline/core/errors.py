"""Errors as values with a location, and the one exception type a user may see.

Bad input is never an exception in costline: readers collect :class:`Problem` values (file,
line, field, message) and carry on. :class:`CostlineError` is raised only for conditions that
stop a command as a whole (a missing file, an unreadable catalogue); the CLI prints its message
and exits non-zero, never a traceback.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class Problem(BaseModel):
    """One piece of input costline could not use, and where it was."""

    model_config = ConfigDict(frozen=True)

    path: str | None = None
    line: int | None = None
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.path, self.line) if p is not None)
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}" if where else what


class CostlineError(Exception):
    """A condition that stops a command; its message is written for the user."""


def first_validation_error(exc: ValidationError) -> str:
    """``field.path: message`` of the first error pydantic found, for a one-line report."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}"
