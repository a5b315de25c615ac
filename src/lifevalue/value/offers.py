"""Offers and payment plans: a declarative policy, evaluated for every customer.

A policy is a TOML file. Each ``[[offer]]`` names an action and the conditions on score
fields and customer attributes under which a customer qualifies for it::

    [policy]
    name = "spring 2026"
    max_offers_per_customer = 2      # optional; or `exclusive = true` for at most one

    [[offer]]
    name = "vip_support"
    action = "VIP support line"
    priority = 10
    description = "Our most valuable customers who are still with us."   # optional
    when = [
      { field = "value_tier", op = "in", value = ["top"] },
      { field = "p_alive", op = ">=", value = 0.5 },
    ]

Rules, all deterministic:

- **Conditions.** ``field`` is a column of the scores table; ``op`` is one of ``==``,
  ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``between`` (both ends
  included: ``value = [low, high]``) and ``is_missing`` (``value = true``, the default,
  or ``false`` for "is known"). The comparisons and ``between`` may take
  ``quantile = q`` (between 0 and 1; a pair for ``between``) instead of ``value``: the
  threshold is then that quantile of the column over the scored customers, e.g.
  ``{ field = "historic_clv", op = ">=", quantile = 0.8 }`` for the top 20% by history.
- **A missing value satisfies no condition but ``is_missing``**: a customer whose region
  is unknown is neither ``== "north"`` nor ``!= "north"``, so no offer is granted on a
  fact we do not know.
- **All conditions of an offer must hold** (an empty ``when = []`` grants the offer to
  every customer).
- **Resolution.** A customer's qualifying offers are ranked by ``priority`` (higher
  number first), ties broken by the order in the file. With ``max_offers_per_customer
  = n`` (or ``exclusive = true``, which means n = 1) the customer is granted the first
  n; without it, every offer whose conditions hold.
- **Validation** happens when the policy is read, and every problem is reported at once
  with the line of the file where the offer or the condition is written: unknown keys,
  unknown operators, values of the wrong type for an operator, duplicate offer names,
  conditions that can never hold together, fields not in the declared list (the
  ``fields`` argument or ``[policy] fields = [...]``), and two offers with the *same
  priority* whose conditions can both hold for one customer (then which one wins would
  depend on the file order: give them different priorities). Fields are checked again
  against the scores table's columns when the policy is evaluated.

The overlap check is conservative: two offers are taken as able to both hold unless a
field makes that impossible (disjoint ``in`` lists, ranges that do not meet, a value
required and excluded, missing versus present). Quantile thresholds are not known before
evaluation and never prove two offers apart.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError

logger = logging.getLogger(__name__)

#: The operators a condition may use.
OPERATORS: tuple[str, ...] = (
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "between",
    "is_missing",
)

_COMPARISONS = ("<", "<=", ">", ">=")
_OPERATOR_TYPOS = {
    "=": "==",
    "=>": ">=",
    "=<": "<=",
    "<>": "!=",
    "=!": "!=",
    "notin": "not in",
    "not_in": "not in",
    "missing": "is_missing",
    "is missing": "is_missing",
    "isnull": "is_missing",
    "is_null": "is_missing",
}
_OFFER_KEYS = ("name", "action", "priority", "when", "description")
_CONDITION_KEYS = ("field", "op", "value", "quantile")
_POLICY_KEYS = ("name", "description", "exclusive", "max_offers_per_customer", "fields")
_TOP_KEYS = ("policy", "offer")

#: Columns of the table :meth:`OfferPolicy.evaluate` returns, one row per granted offer.
OFFER_COLUMNS: tuple[str, ...] = ("customer_id", "offer", "action", "priority", "rank", "rule")


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy: where (line, offer) and what."""

    message: str
    line: int | None = None
    offer: str | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.offer is not None:
            where.append(f"offer '{self.offer}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class PolicyError(InputError):
    """An offer policy cannot be used; ``problems`` lists every problem found, with lines."""

    def __init__(self, source: str, problems: Sequence[PolicyProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"Offer policy {source} is not valid: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"Offer policy {source} has {len(self.problems)} problems:\n{lines}"
        super().__init__(message)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Condition:
    """One condition of an offer: ``field op value`` (or ``field op quantile``).

    Parameters
    ----------
    field
        Column of the scores table.
    op
        One of :data:`OPERATORS`.
    value
        The value compared with: a scalar, a list for ``in`` / ``not in``, a pair
        ``[low, high]`` for ``between``, a boolean for ``is_missing`` (default true).
    quantile
        Instead of ``value`` for comparisons and ``between``: the threshold is this quantile
        (or pair of quantiles) of the column over the customers evaluated.
    line
        Line of the policy file where the condition is written, when known.
    """

    field: str
    op: str
    value: Any = None
    quantile: Any = None
    line: int | None = None

    def text(self, thresholds: Any = None) -> str:
        """Readable text of the condition, e.g. ``p_alive >= 0.5``.

        ``thresholds`` are the values the quantiles resolved to, shown beside them.
        """
        if self.op == "is_missing":
            return f"{self.field} is {'missing' if self.value in (None, True) else 'known'}"
        if self.quantile is not None:
            qs = self.quantile if self.op == "between" else [self.quantile]
            ts = thresholds if self.op == "between" else [thresholds]
            parts = []
            for i, q in enumerate(qs):
                part = f"{_ordinal(q)} percentile"
                if thresholds is not None:
                    part += f" ({_fmt(ts[i])})"
                parts.append(part)
            if self.op == "between":
                return f"{self.field} between {parts[0]} and {parts[1]}"
            return f"{self.field} {self.op} {parts[0]}"
        if self.op == "between":
            return f"{self.field} between {_fmt(self.value[0])} and {_fmt(self.value[1])}"
        return f"{self.field} {self.op} {_fmt(self.value)}"


@dataclass(frozen=True)
class Offer:
    """One offer of a policy.

    Parameters
    ----------
    name
        Short unique name (``"vip_support"``).
    action
        What the customer is offered, in words (``"VIP support line"``).
    priority
        Higher numbers are granted first when a customer may get only some offers.
    conditions
        All must hold for a customer to qualify; none means every customer qualifies.
    description
        Optional note for the reader.
    line
        Line of the policy file where the offer starts, when known.
    """

    name: str
    action: str
    priority: int
    conditions: tuple[Condition, ...] = ()
    description: str = ""
    line: int | None = None

    @property
    def rule(self) -> str:
        """The conditions as readable text, joined by ``and``."""
        return _rule_text(self.conditions)


def _rule_text(conditions: Sequence[Condition], thresholds: Sequence[Any] | None = None) -> str:
    if not conditions:
        return "every customer"
    ts = thresholds if thresholds is not None else [None] * len(conditions)
    return " and ".join(c.text(t) for c, t in zip(conditions, ts, strict=True))


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _ordinal(q: float) -> str:
    pct = q * 100
    text = f"{pct:g}"
    if text.endswith(("11", "12", "13")):
        return text + "th"
    return text + {"1": "st", "2": "nd", "3": "rd"}.get(text[-1], "th")


# --------------------------------------------------------------------------- lines


_OFFER_HEADER = re.compile(r"^\s*\[\[\s*offer\s*\]\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_FIELD_KEY = re.compile(r"(?:^|[{,\s])field\s*=")


class _SourceMap:
    """Line numbers of the offers and conditions of a TOML text (tomllib gives none)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.blocks: list[tuple[int, int]] = []  # 0-based [start, end) of each [[offer]]
        start: int | None = None
        for i, line in enumerate(self.lines):
            if _OFFER_HEADER.match(line):
                if start is not None:
                    self.blocks.append((start, i))
                start = i
            elif start is not None and (m := _ANY_HEADER.match(line)):
                key = m.group(1).replace(" ", "")
                if not key.startswith("offer."):
                    self.blocks.append((start, i))
                    start = None
        if start is not None:
            self.blocks.append((start, len(self.lines)))

    def offer_line(self, k: int, n_offers: int, name: Any) -> int | None:
        """Line of offer ``k``: its ``[[offer]]`` header, else a ``name = ...`` line."""
        if len(self.blocks) == n_offers:
            return self.blocks[k][0] + 1
        if isinstance(name, str):
            pattern = re.compile(r"(?:^|[{,\s])name\s*=\s*[\"']" + re.escape(name) + r"[\"']")
            for i, line in enumerate(self.lines):
                if pattern.search(line):
                    return i + 1
        return None

    def condition_lines(self, k: int, n_offers: int) -> list[int]:
        """Lines of the ``field = ...`` keys of offer ``k``, in order."""
        if len(self.blocks) != n_offers:
            return []
        start, end = self.blocks[k]
        found = []
        for i in range(start, end):
            found.extend(i + 1 for _ in _FIELD_KEY.finditer(self.lines[i]))
        return found

    def key_line(self, key: str) -> int | None:
        """First line that sets or opens ``key`` outside the offers."""
        pattern = re.compile(r"^\s*(\[\[?\s*)?" + re.escape(key) + r"\b")
        for i, line in enumerate(self.lines):
            if pattern.match(line):
                return i + 1
        return None


# --------------------------------------------------------------------------- checks


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool | dt.date)


def _is_orderable(v: Any) -> bool:
    return (_is_number(v) or isinstance(v, str | dt.date)) and not isinstance(v, dt.time)


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _condition_problems(c: Condition) -> list[str]:
    """What is wrong with one condition's operator and value, in words."""
    if not isinstance(c.field, str) or not c.field:
        return [f"a condition's 'field' must be a non-empty string. Got {c.field!r} instead."]
    if c.op not in OPERATORS:
        guess = _OPERATOR_TYPOS.get(str(c.op).strip().lower())
        close = [guess] if guess else difflib.get_close_matches(str(c.op), OPERATORS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return [
            f"unknown operator {c.op!r} on field '{c.field}'{hint}. "
            f"Expected one of {', '.join(OPERATORS)}."
        ]
    where = f"operator '{c.op}' on field '{c.field}'"
    if c.quantile is not None:
        if c.value is not None:
            return [f"{where} has both 'value' and 'quantile'. Give one of them."]
        if c.op not in (*_COMPARISONS, "between"):
            return [f"{where} cannot take a 'quantile'; only <, <=, >, >= and between can."]
        qs = c.quantile if c.op == "between" else [c.quantile]
        if c.op == "between" and not (isinstance(qs, list | tuple) and len(qs) == 2):
            return [f"{where} needs 'quantile = [low, high]'. Got {c.quantile!r} instead."]
        if not all(_is_number(q) and 0 <= q <= 1 for q in qs):
            return [
                f"the 'quantile' of {where} must be between 0 and 1. Got {c.quantile!r} instead."
            ]
        if c.op == "between" and qs[0] > qs[1]:
            return [f"{where} needs low <= high. Got {c.quantile!r} instead."]
        return []
    v = c.value
    if c.op == "is_missing":
        if v is not None and not isinstance(v, bool):
            return [f"{where} takes 'value = true' or 'value = false'. Got {v!r} instead."]
        return []
    if v is None:
        return [f"{where} needs a 'value'."]
    if _is_nan(v) or (isinstance(v, list) and any(_is_nan(x) for x in v)):
        return [f'{where} cannot compare with nan; use op = "is_missing" for missing values.']
    if c.op in ("==", "!="):
        if not _is_scalar(v) or isinstance(v, dt.time):
            return [
                f"{where} needs a single value (text, number, boolean or date). Got {v!r} instead."
            ]
    elif c.op in _COMPARISONS:
        if not _is_orderable(v):
            return [f"{where} needs a number, a date or a text. Got {v!r} instead."]
    elif c.op in ("in", "not in"):
        if not isinstance(v, list) or not v:
            return [f"{where} needs a non-empty list of values. Got {v!r} instead."]
        bad = [x for x in v if not _is_scalar(x) or isinstance(x, dt.time)]
        if bad:
            return [f"{where} needs a list of single values. Got {bad[0]!r} in the list."]
    elif c.op == "between":
        if not (isinstance(v, list) and len(v) == 2 and all(_is_orderable(x) for x in v)):
            return [f"{where} needs 'value = [low, high]' of numbers or dates. Got {v!r} instead."]
        try:
            if v[0] > v[1]:
                return [f"{where} needs low <= high. Got {v!r} instead."]
        except TypeError:
            return [f"{where} needs low and high of the same kind. Got {v!r} instead."]
    return []


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except TypeError:  # pragma: no cover - == does not raise for TOML values
        return False


def _may_hold_together(conditions: Iterable[Condition]) -> bool:
    """False only when some field makes the conditions provably impossible together."""
    by_field: dict[str, list[Condition]] = {}
    for c in conditions:
        by_field.setdefault(c.field, []).append(c)
    return all(_field_feasible(cs) for cs in by_field.values())


def _field_feasible(cs: Sequence[Condition]) -> bool:
    missing = {c.op == "is_missing" and c.value in (None, True) for c in cs}
    if len(missing) > 1:  # one condition needs the value missing, another needs it known
        return False
    if missing == {True}:
        return True
    allowed: list[Any] | None = None
    excluded: list[Any] = []
    lo: tuple[Any, bool] | None = None
    hi: tuple[Any, bool] | None = None

    def tighten(bound: tuple[Any, bool] | None, v: Any, incl: bool, upper: bool) -> Any:
        if bound is None:
            return (v, incl)
        b, b_incl = bound
        if _same(v, b):
            return (b, b_incl and incl)
        return (v, incl) if ((v < b) if upper else (v > b)) else bound

    try:
        for c in cs:
            if c.quantile is not None or c.op == "is_missing":
                continue
            v = c.value
            if c.op in ("==", "in"):
                vals = [v] if c.op == "==" else list(v)
                allowed = (
                    vals
                    if allowed is None
                    else [a for a in allowed if any(_same(a, x) for x in vals)]
                )
            elif c.op in ("!=", "not in"):
                excluded.extend([v] if c.op == "!=" else v)
            elif c.op in (">", ">="):
                lo = tighten(lo, v, c.op == ">=", upper=False)
            elif c.op in ("<", "<="):
                hi = tighten(hi, v, c.op == "<=", upper=True)
            elif c.op == "between":
                lo = tighten(lo, v[0], True, upper=False)
                hi = tighten(hi, v[1], True, upper=True)
    except TypeError:  # values of different kinds: cannot prove anything
        return True

    def inside(x: Any) -> bool:
        try:
            if lo is not None and (x < lo[0] or (_same(x, lo[0]) and not lo[1])):
                return False
            if hi is not None and (x > hi[0] or (_same(x, hi[0]) and not hi[1])):
                return False
        except TypeError:
            return True
        return True

    def kept(x: Any) -> bool:
        return inside(x) and not any(_same(x, e) for e in excluded)

    if allowed is not None:
        return any(kept(a) for a in allowed)
    if lo is not None and hi is not None:
        try:
            if lo[0] > hi[0]:
                return False
        except TypeError:
            return True
        if _same(lo[0], hi[0]):
            return lo[1] and hi[1] and kept(lo[0])
    return True


def _policy_problems(
    offers: Sequence[Offer],
    *,
    fields: Iterable[str] | None,
) -> list[PolicyProblem]:
    """Every problem with already-parsed offers (operators, values, names, overlaps)."""
    problems: list[PolicyProblem] = []
    known = list(fields) if fields is not None else None
    seen: dict[str, Offer] = {}
    for offer in offers:
        if offer.name in seen:
            first = seen[offer.name]
            at = f" (first defined at line {first.line})" if first.line is not None else ""
            problems.append(
                PolicyProblem(f"duplicate offer name '{offer.name}'{at}.", offer.line, offer.name)
            )
        else:
            seen[offer.name] = offer
        valid = True
        for c in offer.conditions:
            line = c.line if c.line is not None else offer.line
            for msg in _condition_problems(c):
                problems.append(PolicyProblem(msg, line, offer.name))
                valid = False
            if known is not None and isinstance(c.field, str) and c.field not in known:
                close = difflib.get_close_matches(c.field, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(
                    PolicyProblem(
                        f"unknown field '{c.field}'{hint}. Expected one of {', '.join(known)}.",
                        line,
                        offer.name,
                    )
                )
        if valid and not _may_hold_together(offer.conditions):
            problems.append(
                PolicyProblem(
                    f"the conditions can never all hold ({offer.rule}); the offer would "
                    "never be granted.",
                    offer.line,
                    offer.name,
                )
            )
    checked = [
        o
        for o in offers
        if all(not _condition_problems(c) for c in o.conditions) and seen.get(o.name) is o
    ]
    for i, a in enumerate(checked):
        for b in checked[i + 1 :]:
            if a.priority == b.priority and _may_hold_together(a.conditions + b.conditions):
                at = f" (line {a.line})" if a.line is not None else ""
                problems.append(
                    PolicyProblem(
                        f"offers '{a.name}'{at} and '{b.name}' have the same priority "
                        f"{a.priority} and their conditions can both hold for one customer; "
                        "give them different priorities so the winner does not depend on the "
                        "file order.",
                        b.line,
                        b.name,
                    )
                )
    return problems


def _check_cap(max_offers: Any, exclusive: Any, line: int | None) -> list[PolicyProblem]:
    problems = []
    if exclusive is not None and not isinstance(exclusive, bool):
        problems.append(
            PolicyProblem(
                f"The 'exclusive' setting of the offer policy must be true or false. "
                f"Got {exclusive!r} instead.",
                line,
            )
        )
    if max_offers is not None and not (
        isinstance(max_offers, int) and not isinstance(max_offers, bool) and max_offers >= 1
    ):
        problems.append(
            PolicyProblem(
                f"The 'max_offers_per_customer' setting of the offer policy must be an integer "
                f">= 1. Got {max_offers!r} instead.",
                line,
            )
        )
    elif exclusive is True and max_offers not in (None, 1):
        problems.append(
            PolicyProblem(
                f"'exclusive = true' means one offer per customer, but "
                f"'max_offers_per_customer' is {max_offers}. Keep one of them.",
                line,
            )
        )
    return problems


# --------------------------------------------------------------------------- policy


class OfferPolicy:
    """A validated set of offers and how many a customer may get.

    Build it with :meth:`from_toml` (or :meth:`default`); the constructor validates too.

    Parameters
    ----------
    offers
        The offers, in file order (the tie-breaker after priority).
    max_offers_per_customer
        At most this many offers per customer, the highest priority first; ``None`` (the
        default) grants every offer whose conditions hold.
    name
        Name of the policy, for reports.
    fields
        Declared field names; when given, conditions on other fields are errors.
    source
        Where the policy came from, for messages.

    Raises
    ------
    PolicyError
        With every problem found and its line.
    """

    def __init__(
        self,
        offers: Sequence[Offer],
        *,
        max_offers_per_customer: int | None = None,
        name: str = "",
        fields: Iterable[str] | None = None,
        source: str = "<policy>",
    ) -> None:
        self.offers: tuple[Offer, ...] = tuple(offers)
        self.max_offers_per_customer = max_offers_per_customer
        self.name = name
        self.fields = tuple(fields) if fields is not None else None
        self.source = source
        problems = _check_cap(max_offers_per_customer, None, None)
        problems += _policy_problems(self.offers, fields=self.fields)
        if problems:
            raise PolicyError(source, problems)

    def __repr__(self) -> str:
        names = ", ".join(o.name for o in self.offers)
        return (
            f"OfferPolicy(name={self.name!r}, offers=[{names}], "
            f"max_offers_per_customer={self.max_offers_per_customer})"
        )

    # ---------------------------------------------------------------- reading

    @classmethod
    def from_toml(
        cls, source: str | os.PathLike[str], *, fields: Iterable[str] | None = None
    ) -> OfferPolicy:
        """Read and validate a policy from a TOML file or text.

        Parameters
        ----------
        source
            A path (a :class:`pathlib.Path`, or a string without a line break) or the TOML
            text itself (a string with at least one line break).
        fields
            Declared field names (for example the columns of a scores table). Conditions on
            any other field are errors. A ``fields = [...]`` list in the file's ``[policy]``
            table is used when this is not given. Without either, fields are checked when
            the policy is evaluated.

        Returns
        -------
        OfferPolicy

        Raises
        ------
        InputError
            The file cannot be read.
        PolicyError
            The TOML is malformed or the policy breaks a rule; the message lists every
            problem with its line and offer.
        """
        if isinstance(source, str) and "\n" in source:
            text, label = source, "<text>"
        else:
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(
                    f"Cannot read the offer policy file {str(path)!r}: {exc.strerror or exc}."
                ) from exc
            label = str(path)
        return cls._from_text(text, label, fields)

    @classmethod
    def default(cls, *, fields: Iterable[str] | None = None) -> OfferPolicy:
        """The example policy shipped with lifevalue (``default_policy.toml``).

        It grants a flexible payment plan to high-value customers at risk, a retention
        discount to at-risk mid-value customers, VIP support to the top tier and a
        win-back offer to lapsed customers with a high historic value; read the file for
        the thresholds.
        """
        text = resources.files("lifevalue.value").joinpath("default_policy.toml").read_text("utf-8")
        return cls._from_text(text, "default_policy.toml", fields)

    @classmethod
    def _from_text(cls, text: str, label: str, fields: Iterable[str] | None) -> OfferPolicy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(label, [PolicyProblem(f"not valid TOML: {exc}.")]) from exc
        smap = _SourceMap(text)
        problems: list[PolicyProblem] = []
        for key in data:
            if key not in _TOP_KEYS:
                problems.append(
                    PolicyProblem(
                        f"unknown top-level key '{key}'. Expected [policy] and [[offer]] tables.",
                        smap.key_line(key),
                    )
                )
        settings = data.get("policy", {})
        policy_line = smap.key_line("policy")
        if not isinstance(settings, dict):
            problems.append(PolicyProblem("'policy' must be a table [policy].", policy_line))
            settings = {}
        for key in settings:
            if key not in _POLICY_KEYS:
                problems.append(
                    PolicyProblem(
                        f"unknown key '{key}' in [policy]. "
                        f"Expected one of {', '.join(_POLICY_KEYS)}.",
                        smap.key_line(key) or policy_line,
                    )
                )
        exclusive = settings.get("exclusive")
        max_offers = settings.get("max_offers_per_customer")
        problems += _check_cap(max_offers, exclusive, policy_line)
        if exclusive is True and max_offers is None:
            max_offers = 1
        declared = settings.get("fields")
        if declared is not None and not (
            isinstance(declared, list) and all(isinstance(f, str) for f in declared)
        ):
            problems.append(
                PolicyProblem(
                    "'fields' in [policy] must be a list of column names. "
                    f"Got {declared!r} instead.",
                    smap.key_line("fields") or policy_line,
                )
            )
            declared = None
        if fields is None:
            fields = declared
        name = settings.get("name", "")
        if not isinstance(name, str):
            problems.append(PolicyProblem("'name' in [policy] must be a text.", policy_line))
            name = ""

        raw_offers = data.get("offer", [])
        if not isinstance(raw_offers, list):
            problems.append(
                PolicyProblem("offers must be [[offer]] tables.", smap.key_line("offer"))
            )
            raw_offers = []
        if not raw_offers and not problems:
            problems.append(PolicyProblem("the policy has no [[offer]]."))
        offers: list[Offer] = []
        for k, raw in enumerate(raw_offers):
            offer, offer_problems = _parse_offer(raw, k, len(raw_offers), smap)
            problems += offer_problems
            if offer is not None:
                offers.append(offer)
        problems += _policy_problems(offers, fields=fields)
        if problems:
            problems.sort(key=lambda p: (p.line is None, p.line or 0))
            raise PolicyError(label, problems)
        return cls(
            offers,
            max_offers_per_customer=max_offers,
            name=name,
            fields=fields,
            source=label,
        )

    # ---------------------------------------------------------------- evaluating

    def to_frame(self) -> pd.DataFrame:
        """The offers in resolution order: name, action, priority, rule, line, description."""
        ordered = self._ordered()
        return pd.DataFrame(
            {
                "offer": [o.name for o in ordered],
                "action": [o.action for o in ordered],
                "priority": [o.priority for o in ordered],
                "rule": [o.rule for o in ordered],
                "line": pd.array([o.line for o in ordered], dtype="Int64"),
                "description": [o.description for o in ordered],
            }
        )

    def qualify(self, scores: pd.DataFrame) -> pd.DataFrame:
        """Which customers meet all the conditions of which offer, before any cap.

        Parameters
        ----------
        scores
            The scores table, indexed by ``customer_id``; not modified.

        Returns
        -------
        pandas.DataFrame
            Booleans, one row per customer (same index and order as ``scores``), one column
            per offer in resolution order (priority, highest first, then file order).
        """
        masks, _ = self._masks(scores)
        return masks

    def evaluate(self, scores: pd.DataFrame, *, per_customer: bool = False) -> pd.DataFrame:
        """Grant the offers to every customer of a scores table.

        Parameters
        ----------
        scores
            The scores table, indexed by ``customer_id`` (one row per customer), with every
            column the policy's conditions use; not modified.
        per_customer
            False (default): one row per (customer, granted offer), and one row with empty
            offer fields for each customer who gets none, so every customer appears.
            True: one row per customer, indexed by ``customer_id``.

        Returns
        -------
        pandas.DataFrame
            Long form (default): ``customer_id``, ``offer``, ``action``, ``priority``,
            ``rank`` (1 = the customer's highest-priority offer) and ``rule`` (the conditions
            that fired, quantiles resolved to their values); ``offer``, ``action``,
            ``priority``, ``rank`` and ``rule`` are missing for customers with no offer.
            Rows follow the order of ``scores``, then rank.
            Per customer: ``offers`` and ``actions`` (joined by ``"; "`` in rank order, empty
            text when none), ``rules`` (``"name: rule"`` joined by ``"; "``), ``n_offers``
            (granted) and ``n_qualified`` (offers whose conditions held, before the cap of
            ``max_offers_per_customer``).

        Raises
        ------
        PolicyError
            A condition's field is not a column of ``scores``, or cannot be compared with the
            condition's value.
        DataValidationError
            ``scores`` is not a DataFrame or its index has duplicate customer ids.
        """
        masks, rules = self._masks(scores)
        ordered = self._ordered()
        qualified = masks.to_numpy(dtype=bool)
        if self.max_offers_per_customer is not None:
            ranks = np.cumsum(qualified, axis=1)
            granted = qualified & (ranks <= self.max_offers_per_customer)
        else:
            granted = qualified
        ranks = np.cumsum(granted, axis=1)
        names = np.array([o.name for o in ordered], dtype=object)
        actions = np.array([o.action for o in ordered], dtype=object)
        priorities = np.array([o.priority for o in ordered], dtype=np.int64)
        rule_arr = np.array(rules, dtype=object)
        ids = scores.index.to_numpy()
        n = len(scores)

        if per_customer:
            offers_col = np.full(n, "", dtype=object)
            actions_col = np.full(n, "", dtype=object)
            rules_col = np.full(n, "", dtype=object)
            for j in range(len(ordered)):  # loop over offers, not customers
                g = granted[:, j]
                first = g & (ranks[:, j] == 1)
                later = g & ~first
                offers_col[first] = names[j]
                offers_col[later] = offers_col[later] + "; " + names[j]
                actions_col[first] = actions[j]
                actions_col[later] = actions_col[later] + "; " + actions[j]
                text = f"{names[j]}: {rule_arr[j]}"
                rules_col[first] = text
                rules_col[later] = rules_col[later] + "; " + text
            out = pd.DataFrame(
                {
                    "offers": offers_col,
                    "actions": actions_col,
                    "rules": rules_col,
                    "n_offers": granted.sum(axis=1).astype(np.int64),
                    "n_qualified": qualified.sum(axis=1).astype(np.int64),
                },
                index=pd.Index(ids, name="customer_id"),
            )
            return out

        rows, cols = np.nonzero(granted)  # row-major: by customer, then resolution order
        none = np.flatnonzero(~granted.any(axis=1))
        position = np.concatenate([rows, none])
        order = np.argsort(position, kind="stable")
        has = np.concatenate([np.ones(len(rows), bool), np.zeros(len(none), bool)])[order]
        col = np.concatenate([cols, np.zeros(len(none), np.int64)])[order]
        position = position[order]

        def pick(values: np.ndarray) -> np.ndarray:
            out = np.full(len(position), None, dtype=object)
            if len(values):
                out[has] = values[col[has]]
            return out

        priority = pd.array(np.where(has, priorities[col] if len(priorities) else 0, 0), "Int64")
        priority[~has] = pd.NA
        rank = pd.array(np.where(has, ranks[position, col] if len(ordered) else 0, 0), "Int64")
        rank[~has] = pd.NA
        return pd.DataFrame(
            {
                "customer_id": ids[position],
                "offer": pick(names),
                "action": pick(actions),
                "priority": priority,
                "rank": rank,
                "rule": pick(rule_arr),
            }
        )

    # ---------------------------------------------------------------- internals

    def _ordered(self) -> list[Offer]:
        order = sorted(range(len(self.offers)), key=lambda i: (-self.offers[i].priority, i))
        return [self.offers[i] for i in order]

    def _masks(self, scores: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        if not isinstance(scores, pd.DataFrame):
            raise DataValidationError(
                f"The offer policy needs a scores DataFrame indexed by customer_id. "
                f"Got {type(scores).__name__} instead."
            )
        dup = scores.index[scores.index.duplicated()]
        if len(dup):
            raise DataValidationError(
                f"The scores table must have one row per customer; {len(dup)} customer ids "
                f"appear more than once (first: {list(dup[:5])}).",
                rule="unique_customer_id",
                rows=list(dup),
            )
        ordered = self._ordered()
        missing = [
            PolicyProblem(
                f"field '{c.field}' is not a column of the scores table"
                + (
                    f" (did you mean '{close[0]}'?)"
                    if (close := difflib.get_close_matches(c.field, map(str, scores.columns), n=1))
                    else ""
                )
                + ".",
                c.line if c.line is not None else o.line,
                o.name,
            )
            for o in self.offers
            for c in o.conditions
            if c.field not in scores.columns
        ]
        if missing:
            raise PolicyError(self.source, missing)
        masks: dict[str, np.ndarray] = {}
        rules: list[str] = []
        for offer in ordered:
            mask = np.ones(len(scores), dtype=bool)
            thresholds = []
            for c in offer.conditions:
                m, t = _condition_mask(scores[c.field], c, offer, self.source)
                mask &= m
                thresholds.append(t)
            masks[offer.name] = mask
            rules.append(_rule_text(offer.conditions, thresholds))
        frame = pd.DataFrame(masks, index=scores.index, columns=[o.name for o in ordered])
        frame.index.name = "customer_id"
        return frame.astype(bool), rules


def _parse_offer(
    raw: Any, k: int, n: int, smap: _SourceMap
) -> tuple[Offer | None, list[PolicyProblem]]:
    """One ``[[offer]]`` table into an :class:`Offer`, with its structural problems."""
    if not isinstance(raw, dict):
        return None, [PolicyProblem(f"offer #{k + 1} must be a table. Got {raw!r} instead.")]
    name = raw.get("name")
    line = smap.offer_line(k, n, name)
    label = name if isinstance(name, str) and name else f"#{k + 1}"
    problems: list[PolicyProblem] = []

    def bad(message: str, at: int | None = line) -> None:
        problems.append(PolicyProblem(message, at, label))

    suggested: set[str] = set()
    for key in raw:
        if key not in _OFFER_KEYS:
            close = difflib.get_close_matches(key, _OFFER_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            suggested.update(close)
            bad(f"unknown key '{key}'{hint}. Expected one of {', '.join(_OFFER_KEYS)}.")

    def typo(key: str) -> bool:  # a misspelt key was already reported
        return key not in raw and key in suggested

    if (not isinstance(name, str) or not name.strip()) and not typo("name"):
        bad(f"'name' must be a non-empty text. Got {name!r} instead.")
    action = raw.get("action")
    if (not isinstance(action, str) or not action.strip()) and not typo("action"):
        bad(f"'action' must be a non-empty text. Got {action!r} instead.")
    priority = raw.get("priority")
    if (not isinstance(priority, int) or isinstance(priority, bool)) and not typo("priority"):
        bad(f"'priority' must be an integer (higher is granted first). Got {priority!r} instead.")
    description = raw.get("description", "")
    if not isinstance(description, str):
        bad(f"'description' must be a text. Got {description!r} instead.")
    when = raw.get("when")
    if when is None and typo("when"):
        when = []
    elif when is None:
        bad("'when' is missing: give the conditions, or 'when = []' for every customer.")
        when = []
    if not isinstance(when, list):
        bad(f"'when' must be a list of conditions. Got {when!r} instead.")
        when = []
    cond_lines = smap.condition_lines(k, n)
    conditions: list[Condition] = []
    for j, rc in enumerate(when):
        at = cond_lines[j] if j < len(cond_lines) else line
        if not isinstance(rc, dict):
            bad(f"condition #{j + 1} must be a table {{ field, op, value }}. Got {rc!r}.", at)
            continue
        unknown = [key for key in rc if key not in _CONDITION_KEYS]
        if unknown:
            bad(
                f"unknown key '{unknown[0]}' in condition #{j + 1}. "
                f"Expected {', '.join(_CONDITION_KEYS)}.",
                at,
            )
            continue
        if "op" not in rc or "field" not in rc:
            bad(f"condition #{j + 1} needs 'field' and 'op'.", at)
            continue
        conditions.append(
            Condition(rc["field"], rc["op"], rc.get("value"), rc.get("quantile"), line=at)
        )
    if problems:
        return None, problems
    return Offer(name, action, priority, tuple(conditions), description, line), []


def _condition_mask(
    series: pd.Series, c: Condition, offer: Offer, source: str
) -> tuple[np.ndarray, Any]:
    """Boolean mask of the customers meeting one condition, and any resolved threshold."""
    present = series.notna().to_numpy(dtype=bool)
    if c.op == "is_missing":
        return (~present if c.value in (None, True) else present), None
    s = series
    if isinstance(s.dtype, pd.PeriodDtype):
        s = s.astype(str)
    is_dt = pd.api.types.is_datetime64_any_dtype(s)

    def conv(v: Any) -> Any:
        if is_dt and isinstance(v, dt.date | str):
            return pd.Timestamp(v)
        return v

    threshold: Any = None
    value = c.value
    try:
        if c.quantile is not None:
            qs = c.quantile if c.op == "between" else [c.quantile]
            resolved = [s[present].quantile(q) if present.any() else np.nan for q in qs]
            threshold = resolved if c.op == "between" else resolved[0]
            value = threshold
        else:
            value = [conv(v) for v in value] if isinstance(value, list) else conv(value)
        if c.op == "==":
            result = s == value
        elif c.op == "!=":
            result = s != value
        elif c.op == "<":
            result = s < value
        elif c.op == "<=":
            result = s <= value
        elif c.op == ">":
            result = s > value
        elif c.op == ">=":
            result = s >= value
        elif c.op == "in":
            result = s.isin(value)
        elif c.op == "not in":
            result = ~s.isin(value)
        else:  # between
            result = (s >= value[0]) & (s <= value[1])
        mask = pd.Series(result).to_numpy(dtype=bool, na_value=False)
    except (TypeError, ValueError) as exc:
        raise PolicyError(
            source,
            [
                PolicyProblem(
                    f"cannot apply '{c.text()}' to column '{c.field}' of dtype {series.dtype} "
                    f"({exc}).",
                    c.line if c.line is not None else offer.line,
                    offer.name,
                )
            ],
        ) from exc
    if c.op in ("==", "in") and c.quantile is None:
        wanted = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
        absent = [v for v in wanted if not s.isin([v]).any()]
        if absent and len(s):
            logger.warning(
                "Offer '%s' (%s, line %s): value(s) %s never appear in column '%s'.",
                offer.name,
                source,
                c.line,
                ", ".join(map(repr, absent)),
                c.field,
            )
    return mask & present, threshold


def offer_counts(granted: pd.DataFrame) -> pd.DataFrame:
    """How many customers got each offer, from the long table of :meth:`OfferPolicy.evaluate`.

    Returns one row per offer (and ``"(none)"`` for customers without one) with
    ``customers`` and ``share`` of all customers evaluated.
    """
    n_customers = granted["customer_id"].nunique()
    counts = granted["offer"].fillna("(none)").value_counts(sort=False)
    out = counts.rename("customers").to_frame()
    out.index.name = "offer"
    out["share"] = out["customers"] / n_customers if n_customers else np.nan
    return out


__all__ = [
    "OFFER_COLUMNS",
    "OPERATORS",
    "Condition",
    "Offer",
    "OfferPolicy",
    "PolicyError",
    "PolicyProblem",
    "offer_counts",
]
