"""lifevalue: customer lifetime value as net profit, from a transaction log to decisions."""

from __future__ import annotations

from lifevalue.errors import (
    ConvergenceError,
    DataValidationError,
    InputError,
    LifevalueError,
    NotFittedError,
)
from lifevalue.units import TimeUnit

__version__ = "0.1.0"

__all__ = [
    "ConvergenceError",
    "DataValidationError",
    "InputError",
    "LifevalueError",
    "NotFittedError",
    "TimeUnit",
    "__version__",
]
