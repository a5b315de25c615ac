"""One column-validation helper for every model: all failing rules reported at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError

#: How many row labels a message names per failing rule.
MAX_ROWS_NAMED = 10

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Rule:
    """A rule every row of a model's input must satisfy.

    Parameters
    ----------
    code
        Short name of the rule, carried by the error (``DataValidationError.rule``).
    text
        What the rule demands, in words ("recency must not exceed T").
    failing
        Function of the input columns returning a boolean mask of the rows that break it.
    """

    code: str
    text: str
    failing: Callable[[Arrays], np.ndarray]


def finite(*columns: str) -> list[Rule]:
    """Rules: each column holds finite numbers (no NaN, no infinity)."""
    return [
        Rule(f"{c}_finite", f"'{c}' must be a finite number", lambda d, c=c: ~np.isfinite(d[c]))
        for c in columns
    ]


def non_negative(*columns: str) -> list[Rule]:
    """Rules: each column is >= 0."""
    return [
        Rule(f"{c}_non_negative", f"'{c}' must be >= 0", lambda d, c=c: d[c] < 0) for c in columns
    ]


def positive(*columns: str) -> list[Rule]:
    """Rules: each column is > 0."""
    return [
        Rule(f"{c}_positive", f"'{c}' must be > 0", lambda d, c=c: ~(d[c] > 0)) for c in columns
    ]


def integer(*columns: str) -> list[Rule]:
    """Rules: each column holds whole numbers."""
    return [
        Rule(
            f"{c}_integer",
            f"'{c}' must be a whole number",
            lambda d, c=c: np.isfinite(d[c]) & (d[c] != np.round(d[c])),
        )
        for c in columns
    ]


def not_above(low: str, high: str) -> Rule:
    """Rule: column ``low`` never exceeds column ``high``."""
    # A small tolerance absorbs rounding of durations computed in another unit.
    return Rule(
        f"{low}_le_{high}",
        f"'{low}' must not exceed '{high}'",
        lambda d: d[low] > d[high] * (1 + 1e-9) + 1e-9,
    )


def zero_with(column: str, when_zero: str) -> Rule:
    """Rule: ``column`` is 0 wherever ``when_zero`` is 0 (no repeat purchase, no recency)."""
    return Rule(
        f"{column}_zero_when_{when_zero}_zero",
        f"'{column}' must be 0 where '{when_zero}' is 0",
        lambda d: (d[when_zero] == 0) & (d[column] != 0),
    )


def frame_arrays(
    frame: pd.DataFrame, columns: Sequence[str], *, model: str, optional: Iterable[str] = ()
) -> dict[str, np.ndarray]:
    """Take ``columns`` (and those of ``optional`` present) from ``frame`` as float arrays.

    Raises
    ------
    DataValidationError
        If a required column is missing or holds values that are not numbers.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(
            f"{model} expects a pandas DataFrame with columns {', '.join(columns)}; "
            f"got {type(frame).__name__}.",
            rule="columns",
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{model} needs the columns {', '.join(columns)}; missing: {', '.join(missing)}. "
            f"Found: {', '.join(map(str, frame.columns))}.",
            rule="columns",
        )
    out: dict[str, np.ndarray] = {}
    for c in [*columns, *(c for c in optional if c in frame.columns)]:
        values = pd.to_numeric(frame[c], errors="coerce")
        bad = values.isna() & frame[c].notna()
        if bad.any():
            raise DataValidationError(
                f"{model}: column '{c}' must hold numbers; rows {_labels(frame.index[bad])} "
                f"hold {frame[c][bad].iloc[0]!r} and the like.",
                rule=f"{c}_numeric",
                rows=list(frame.index[bad][:MAX_ROWS_NAMED]),
            )
        out[c] = values.to_numpy(dtype=float, na_value=np.nan)
    return out


def check_rules(arrays: Arrays, rules: Iterable[Rule], *, labels: pd.Index, model: str) -> None:
    """Raise one error naming every rule that some rows break, and those rows.

    Raises
    ------
    DataValidationError
        With ``rule`` set to the first failing rule's code and ``rows`` to its rows.
    """
    problems: list[tuple[Rule, pd.Index, int]] = []
    for rule in rules:
        with np.errstate(invalid="ignore"):
            mask = np.asarray(rule.failing(arrays), dtype=bool)
        count = int(mask.sum())
        if count:
            problems.append((rule, labels[mask], count))
    if not problems:
        return
    lines = [
        f"- {rule.text} ({rule.code}): {count:,} row(s), e.g. {_labels(rows)}"
        for rule, rows, count in problems
    ]
    first_rule, first_rows, _ = problems[0]
    raise DataValidationError(
        f"{model} cannot use this summary; {len(problems)} rule(s) broken:\n" + "\n".join(lines),
        rule=first_rule.code,
        rows=list(first_rows[:MAX_ROWS_NAMED]),
    )


def _labels(index: pd.Index) -> str:
    shown = ", ".join(map(str, index[:MAX_ROWS_NAMED]))
    more = len(index) - MAX_ROWS_NAMED
    return shown + (f" and {more:,} more" if more > 0 else "")


def check_horizon(value: Any, name: str, *, scalar: bool = False) -> None:
    """Raise :class:`InputError` unless ``value`` is finite and >= 0 (one number if ``scalar``)."""
    values = np.asarray(value, dtype=float) if _is_numeric(value) else None
    if (
        values is None
        or (scalar and values.ndim > 0)
        or not np.all(np.isfinite(values))
        or np.any(values < 0)
    ):
        what = "a finite number" if scalar else "finite and"
        raise InputError(f"The horizon {name!r} must be {what} >= 0. Got {value!r}.")


def check_counts(k: Any) -> np.ndarray:
    """``k`` as floats after checking it holds whole numbers >= 0 (numbers of purchases)."""
    arr = np.asarray(k, dtype=float) if _is_numeric(k) else None
    if (
        arr is None
        or not np.all(np.isfinite(arr))
        or np.any(arr < 0)
        or np.any(arr != np.round(arr))
    ):
        raise InputError(f"Purchase counts 'k' must be whole numbers >= 0. Got {k!r}.")
    return arr


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return arr.dtype.kind in "iuf"
