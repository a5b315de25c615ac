"""The exception family of lifevalue.

Every error the library raises on purpose derives from :class:`LifevalueError`, so a
shell (the CLI, the service) can turn all of them into one kind of answer. Messages
say what was expected, what was found, and where.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LifevalueError(Exception):
    """Base class of every error lifevalue raises on purpose."""


class InputError(LifevalueError, ValueError):
    """A source or option the user gave cannot be used (missing file, unknown column, bad date)."""


class DataValidationError(LifevalueError, ValueError):
    """Data broke a rule of a contract.

    Parameters
    ----------
    message
        The full, readable message.
    rule
        Short code of the rule that failed (for example ``"recency_le_T"``), when there is one.
    rows
        Row labels (source row numbers or customer ids) that broke the rule, when known.
    """

    def __init__(
        self, message: str, *, rule: str | None = None, rows: Sequence[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.rows = list(rows) if rows is not None else []


class ConvergenceError(LifevalueError, RuntimeError):
    """A model fit did not converge; ``result`` holds what the optimiser returned."""

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class NotFittedError(LifevalueError, AttributeError):
    """A model was asked for something that needs ``fit`` first."""
