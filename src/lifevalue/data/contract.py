"""The transaction-log contract: which columns lifevalue reads and how users map theirs.

A transaction log has one row per purchase (or order line, or return). Three columns
are required, the rest are optional:

========== ======== ==========================================================
role       required meaning
========== ======== ==========================================================
customer_id yes     who bought; text or integer
timestamp  yes      when; a date, a datetime, or text in one date format
amount     yes      money received for the row; negative for a return
order_id   no       groups the lines of one order; returns name the order they undo
quantity   no       units bought
cost       no       cost of goods for the row (margin = amount - cost)
margin     no       gross margin of the row, in money
channel    no       marketing channel of the order (the first order's is the acquisition channel)
campaign   no       marketing campaign of the order
category   no       product category
currency   no       ISO currency code; one currency per analysis
========== ======== ==========================================================
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lifevalue.errors import InputError

REQUIRED_ROLES: tuple[str, ...] = ("customer_id", "timestamp", "amount")
OPTIONAL_ROLES: tuple[str, ...] = (
    "order_id",
    "quantity",
    "cost",
    "margin",
    "channel",
    "campaign",
    "category",
    "currency",
)
ROLES: tuple[str, ...] = REQUIRED_ROLES + OPTIONAL_ROLES
#: Roles read as numbers; text that is not a number is a problem, not a silent null.
NUMERIC_ROLES: tuple[str, ...] = ("amount", "quantity", "cost", "margin")
#: Roles read as labels (trimmed text, empty meaning missing).
LABEL_ROLES: tuple[str, ...] = ("channel", "campaign", "category", "currency")


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column plays each role of the transaction-log contract.

    Required roles default to their own names. An optional role left as ``None`` is used
    when the source has a column of that name (any letter case); an empty string
    switches it off. A name made only of digits that is not a column of the source means
    the column at that 1-based position (for files without a header).
    """

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str = "amount"
    order_id: str | None = None
    quantity: str | None = None
    cost: str | None = None
    margin: str | None = None
    channel: str | None = None
    campaign: str | None = None
    category: str | None = None
    currency: str | None = None

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> ColumnMapping:
        """Build a mapping from ``{role: column}``, rejecting unknown roles."""
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - set(ROLES))
        if unknown:
            raise InputError(
                f"Unknown column role(s) {', '.join(map(repr, unknown))} in the column mapping: "
                f"expected some of {', '.join(ROLES)}."
            )
        values = {}
        for role, column in mapping.items():
            if column is None:
                continue
            if not isinstance(column, str | int):
                raise InputError(
                    f"The column for role {role!r} must be a column name or position. "
                    f"Got {column!r} instead."
                )
            values[role] = str(column)
        return cls(**values)

    def with_overrides(self, **overrides: str | None) -> ColumnMapping:
        """A copy with the given roles replaced; ``None`` values leave a role as it is."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update({role: col for role, col in overrides.items() if col is not None})
        return ColumnMapping(**current)

    def resolve(self, available: Sequence[str], *, where: str = "the source") -> dict[str, str]:
        """Match roles to the columns of a source.

        Parameters
        ----------
        available
            The source's column names, in order.
        where
            How to name the source in messages.

        Returns
        -------
        dict
            ``{role: source column}`` for every role the source provides.

        Raises
        ------
        InputError
            A mapped column does not exist, or two roles share one column.
        """
        available = list(available)
        lower = {c.lower(): c for c in reversed(available)}
        resolved: dict[str, str] = {}
        missing: list[str] = []
        for role in ROLES:
            wanted = getattr(self, role)
            if wanted == "":
                continue
            if wanted is None:
                if role in lower:
                    resolved[role] = lower[role]
                continue
            column = _find(wanted, available)
            if column is None:
                missing.append(f"{role} -> {wanted!r}")
            else:
                resolved[role] = column
        if missing:
            raise InputError(
                f"Column(s) not found in {where}: {'; '.join(missing)}. "
                f"The source has {len(available)} columns: {', '.join(map(repr, available))}. "
                "Map your columns with --customer-col, --date-col, --amount-col and friends, "
                "or a [columns] table in the configuration file."
            )
        by_column: dict[str, list[str]] = {}
        for role, column in resolved.items():
            by_column.setdefault(column, []).append(role)
        shared = {c: r for c, r in by_column.items() if len(r) > 1}
        if shared:
            detail = "; ".join(f"{c!r} is mapped to {', '.join(r)}" for c, r in shared.items())
            raise InputError(f"One source column cannot play two roles: {detail}.")
        if "cost" in resolved and "margin" in resolved:
            # Margin is the profit itself; cost would only be used to derive it.
            explicit_cost = self.cost not in (None, "")
            explicit_margin = self.margin not in (None, "")
            if explicit_cost and explicit_margin:
                raise InputError(
                    f"Map either a cost or a margin column, not both (cost -> "
                    f"{resolved['cost']!r}, margin -> {resolved['margin']!r})."
                )
            del resolved["cost"]
        return resolved


def _find(wanted: str, available: Sequence[str]) -> str | None:
    if wanted in available:
        return wanted
    folded = [c for c in available if c.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    if wanted.isdigit() and 1 <= int(wanted) <= len(available):
        return available[int(wanted) - 1]
    return None


@dataclass(frozen=True)
class CsvOptions:
    """How to read a delimited text file.

    Parameters
    ----------
    delimiter
        Field separator; ``"whitespace"`` for files whose fields are separated by runs of
        spaces or tabs (such as the CDNOW files); ``None`` detects it from the first lines.
    header
        Whether the first line names the columns; ``None`` detects it (a first line with no
        numbers above a line with numbers is a header).
    names
        Column names to use instead of the header (or for a file without one). Without a
        header and without names, columns are called ``column1``, ``column2``, ...
    encoding
        Text encoding of the file.
    quote
        Quote character of delimited files.
    skip_rows
        Lines to skip before the header or the first row.
    """

    delimiter: str | None = None
    header: bool | None = None
    names: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    quote: str = '"'
    skip_rows: int = 0

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> CsvOptions:
        """Build options from a ``[source.csv]`` table, rejecting unknown keys."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(
                f"Unknown CSV option(s) {', '.join(map(repr, unknown))}: "
                f"expected some of {', '.join(sorted(known))}."
            )
        if "names" in options and options["names"] is not None:
            options["names"] = tuple(str(n) for n in options["names"])
        return cls(**options)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML configuration file, with a clear error for a missing or broken file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Configuration file {str(path)!r} does not exist.")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"Configuration file {str(path)!r} is not valid TOML: {exc}.") from exc
