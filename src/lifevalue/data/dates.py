"""Reading timestamps: typed columns as they are, text in one detected or given format.

Text timestamps are read in one format per column. Without an explicit format, the
formats below are tried on the column's values; the one that reads the most values wins,
and the values it cannot read are reported row by row. A column whose values read equally
well day-first and month-first (every day number is 12 or less) is ambiguous: it is
reported, never guessed.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from lifevalue.errors import InputError

logger = logging.getLogger(__name__)

#: ISO 8601 dates and datetimes (``2024-03-01``, ``2024-03-01 14:05:00``, ``...T14:05:00.5``).
ISO = "iso"

_TIMES = ("T%H:%M:%S.%f", "T%H:%M:%S", " %H:%M:%S.%f", " %H:%M:%S", " %H:%M", "")


def _with_times(date_format: str) -> tuple[str, ...]:
    return tuple(date_format + t for t in _TIMES)


# Families of formats, by the name users see; each also accepts a time of day.
FORMATS: dict[str, tuple[str, ...]] = {
    ISO: (),
    "%Y%m%d": ("%Y%m%d%H%M%S", "%Y%m%d"),
    "%Y/%m/%d": _with_times("%Y/%m/%d"),
    "%d/%m/%Y": _with_times("%d/%m/%Y"),
    "%m/%d/%Y": _with_times("%m/%d/%Y"),
    "%d-%m-%Y": _with_times("%d-%m-%Y"),
    "%m-%d-%Y": _with_times("%m-%d-%Y"),
    "%d.%m.%Y": _with_times("%d.%m.%Y"),
    "%m.%d.%Y": _with_times("%m.%d.%Y"),
    "%d/%m/%y": _with_times("%d/%m/%y"),
    "%m/%d/%y": _with_times("%m/%d/%y"),
    "%d-%m-%y": _with_times("%d-%m-%y"),
    "%m-%d-%y": _with_times("%m-%d-%y"),
    "%d.%m.%y": _with_times("%d.%m.%y"),
    "%m.%d.%y": _with_times("%m.%d.%y"),
    "%d %b %Y": _with_times("%d %b %Y"),
    "%d-%b-%Y": _with_times("%d-%b-%Y"),
    "%b %d %Y": _with_times("%b %d %Y"),
    "%b %d, %Y": _with_times("%b %d, %Y"),
    "%d %B %Y": _with_times("%d %B %Y"),
    "%B %d, %Y": _with_times("%B %d, %Y"),
}

#: Day-first formats and their month-first twins.
TWINS: dict[str, str] = {}
for _name in FORMATS:
    if _name.startswith("%d") and ("%m" in _name):
        _twin = _name.replace("%d", "%D").replace("%m", "%d").replace("%D", "%m")
        TWINS[_name] = _twin
        TWINS[_twin] = _name

_SAMPLE_ROWS = 200_000


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(text: str, formats: dt.Array(dt.string)) -> dt.timestamp:  # type: ignore[empty-body,valid-type]
    ...


@dataclass(frozen=True)
class ParsedTimestamp:
    """A parsed timestamp column and how it was read."""

    value: ibis.Value
    raw_text: ibis.Value
    blank: ibis.Value
    format: str | None
    detected: bool


def parse_format(text: ibis.Value, date_format: str, variants: tuple[str, ...] = ()) -> ibis.Value:
    """Parse text as timestamps in one format (a family name above or any strptime format).

    ``variants`` lists the family's formats to try, most common first; a value that fails
    a format costs far more than one that fits, so the order matters on large inputs.
    """
    if date_format == ISO:
        return text.try_cast("timestamp")
    formats = variants or FORMATS.get(date_format) or (date_format,)
    return _try_strptime(text, ibis.literal(list(formats), type="array<string>"))


def read_timestamp(
    table: ibis.Table, column: str, *, date_format: str | None = None
) -> ParsedTimestamp:
    """Turn a source column into timestamps.

    Parameters
    ----------
    table
        The staged source.
    column
        The column holding timestamps: a timestamp, a date, text, or an integer such as
        ``19970101``.
    date_format
        A strptime format such as ``"%d/%m/%Y"`` (or ``"iso"``) for text; detected when
        omitted.

    Returns
    -------
    ParsedTimestamp
        The timestamp expression (null where a value does not parse), the raw text, and the
        format used.

    Raises
    ------
    InputError
        The column holds no readable timestamps, or it is ambiguous between day-first and
        month-first.
    """
    col = table[column]
    kind = col.type()
    if kind.is_timestamp():
        value = col.cast("timestamp") if kind.timezone is not None else col
        return ParsedTimestamp(value, col.cast("string"), col.isnull(), None, False)
    if kind.is_date():
        return ParsedTimestamp(col.cast("timestamp"), col.cast("string"), col.isnull(), None, False)
    if kind.is_integer():
        text = col.cast("string")
    elif kind.is_floating():
        text = col.cast("int64").cast("string")
    elif kind.is_string():
        text = col.strip()
    else:
        raise InputError(
            f"The timestamp column {column!r} holds {kind} values: expected dates, datetimes "
            "or text."
        )
    blank = (text.isnull() | (text == "")).fill_null(True)
    if date_format is not None:
        _check_format(date_format)
        return ParsedTimestamp(parse_format(text, date_format), text, blank, date_format, False)
    detected, variants = detect_format(table, text, column=column)
    return ParsedTimestamp(parse_format(text, detected, variants), text, blank, detected, True)


def _check_format(date_format: str) -> None:
    if date_format != ISO and "%" not in date_format:
        raise InputError(
            f"The date format {date_format!r} has no strptime directive: expected something "
            "like '%Y-%m-%d', '%d/%m/%Y %H:%M' or 'iso'."
        )


def detect_format(
    table: ibis.Table, text: ibis.Value, *, column: str
) -> tuple[str, tuple[str, ...]]:
    """Find the format that reads a text column, refusing to guess day- vs month-first.

    Returns the family's name and its formats, those seen in the sample first.
    """
    values = table.select(v=text).filter(lambda t: t.v.notnull() & (t.v != ""))
    sample = values.limit(_SAMPLE_ROWS).distinct()
    names = list(FORMATS)
    counts = sample.aggregate(
        n=sample.count(),
        **{f"f{i}": parse_format(sample.v, f).count() for i, f in enumerate(names)},
    ).execute()
    n = int(counts["n"].iloc[0])
    if n == 0:
        raise InputError(f"The timestamp column {column!r} is empty.")
    scores = {f: int(counts[f"f{i}"].iloc[0]) for i, f in enumerate(names)}
    best = max(names, key=lambda f: scores[f])  # first of equals: the order above breaks ties
    if scores[best] == 0:
        examples = ", ".join(repr(v) for v in sample.limit(3).execute()["v"])
        raise InputError(
            f"Cannot read the timestamps in column {column!r} (for example {examples}): no "
            "known date format fits. Pass --date-format with a strptime format such as "
            "'%d/%m/%Y %H:%M'."
        )
    twin = TWINS.get(best)
    if twin is not None and scores[twin] == scores[best]:
        # The sample cannot tell; look at every distinct value of the column.
        distinct = values.distinct()
        full = distinct.aggregate(
            a=parse_format(distinct.v, best).count(), b=parse_format(distinct.v, twin).count()
        ).execute()
        a, b = int(full["a"].iloc[0]), int(full["b"].iloc[0])
        if a == b:
            example = _ambiguous_example(distinct, best)
            raise InputError(
                f"The dates in column {column!r} are ambiguous: every value reads both as "
                f"{best!r} (day first) and {twin!r} (month first)"
                + (f", for example {example!r}" if example else "")
                + f". Pass --date-format {best!r} or --date-format {twin!r}."
            )
        best = best if a > b else twin
    logger.info("Timestamps in column %r read as %s", column, best)
    return best, _order_variants(sample, best)


def _order_variants(sample: ibis.Table, family: str) -> tuple[str, ...]:
    formats = FORMATS[family]
    if len(formats) <= 1:
        return formats
    row = sample.aggregate(
        **{f"v{i}": parse_format(sample.v, f, (f,)).count() for i, f in enumerate(formats)}
    ).execute()
    seen = {f: int(row[f"v{i}"].iloc[0]) for i, f in enumerate(formats)}
    return tuple(sorted(formats, key=lambda f: -seen[f]))


def _ambiguous_example(distinct: ibis.Table, date_format: str) -> str | None:
    parsed = parse_format(distinct.v, date_format)
    rows = distinct.filter(parsed.day() != parsed.month()).limit(1).execute()
    return None if rows.empty else str(rows["v"].iloc[0])


@dataclass(frozen=True)
class Moment:
    """A user-given point in time. A date alone means the whole of that day."""

    start: _dt.datetime
    date_only: bool

    @property
    def end(self) -> _dt.datetime:
        """The last instant the moment covers (the end of the day for a date)."""
        if self.date_only:
            return self.start + _dt.timedelta(days=1) - _dt.timedelta(microseconds=1)
        return self.start

    def __str__(self) -> str:
        return self.start.date().isoformat() if self.date_only else self.start.isoformat(" ")


def parse_moment(value: object, *, name: str) -> Moment:
    """Read a date or datetime option given as text, ``date``, ``datetime`` or pandas Timestamp.

    Raises
    ------
    InputError
        The value is not a date.
    """
    if isinstance(value, Moment):
        return value
    if isinstance(value, pd.Timestamp | _dt.datetime):
        stamp = pd.Timestamp(value).tz_localize(None) if pd.Timestamp(value).tz else value
        stamp = pd.Timestamp(stamp).to_pydatetime()
        return Moment(stamp, date_only=False)
    if isinstance(value, _dt.date):
        return Moment(_dt.datetime(value.year, value.month, value.day), date_only=True)
    text = str(value).strip()
    try:
        stamp = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"The {name} {text!r} is not a date: expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS."
        ) from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(_dt.UTC).replace(tzinfo=None)
    date_only = not any(ch in text for ch in "T :")
    return Moment(stamp, date_only=date_only)
