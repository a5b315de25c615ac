"""Validation that loses nothing: every row is accepted or quarantined with a reason.

Each row of the source gets at most one reason code (the first rule it breaks, in the
order of :data:`REASONS`); rows without one are accepted. ``accepted + quarantined ==
rows read`` holds for every source. The rules:

``malformed_row``
    the reader could not split the line into the file's fields.
``missing_customer_id`` / ``invalid_customer_id``
    the customer id is empty, or is a fractional number.
``missing_timestamp`` / ``unparseable_timestamp``
    the timestamp is empty, or does not read in the column's date format.
``missing_amount`` / ``non_numeric_amount`` / ``non_finite_amount``
    the amount is empty, is not a number, or is NaN or infinite.
``invalid_quantity`` / ``invalid_cost`` / ``invalid_margin``
    an optional numeric column holds something that is not a finite number.
``after_observation_end``
    the timestamp is later than the observation end (by default: now).
``missing_currency`` / ``mixed_currency``
    the row has no currency, or another currency than the log's (the one given, or
    else the most common one); amounts in different currencies do not add up.
``return_quarantined``
    a negative amount (a return) under the ``quarantine`` returns policy.
``duplicate_row``
    an exact repeat of an earlier row (every column equal); the first is kept.
``conflicting_order_id``
    the rows of one ``order_id`` name different customers, or purchases on different
    days; every row of such an order is quarantined, since none can be trusted over the
    others. Several lines of one order (same customer, same day) are fine.
``unmatched_return``
    under the ``net`` returns policy, a return with nothing to net against: no purchase
    with its ``order_id``, or (without an order id) no purchase by the customer that day.

Exact repeats are quarantined by default. In a log with dates only and no order ids,
two equal rows can be two real purchases of the same thing on one day (the CDNOW data
has 21 such rows, which the literature counts as purchases); the ``keep`` duplicates
policy accepts them, and the report still counts them.

Returns (negative amounts) follow a policy: ``net`` (the default) nets each return
against the purchase it undoes, in that purchase's occasion; ``keep`` keeps returns as
rows of their own, which reduce revenue but never form or change a purchase occasion;
``quarantine`` sets them aside.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lifevalue.data.contract import (
    LABEL_ROLES,
    NUMERIC_ROLES,
    ColumnMapping,
    CsvOptions,
)
from lifevalue.data.dates import Moment, ParsedTimestamp, parse_moment, read_timestamp
from lifevalue.data.engine import Engine
from lifevalue.data.sources import (
    POS,
    POS_BITS,
    SourceLike,
    TransactionSource,
    read_transactions,
    split_position,
)
from lifevalue.errors import DataValidationError, InputError

logger = logging.getLogger(__name__)

#: Reason codes, in the order rules are applied, with what each means.
REASONS: dict[str, str] = {
    "malformed_row": "the line does not split into the file's fields",
    "missing_customer_id": "customer id is empty",
    "invalid_customer_id": "customer id is a fractional number",
    "missing_timestamp": "timestamp is empty",
    "unparseable_timestamp": "timestamp does not read in the date format",
    "missing_amount": "amount is empty",
    "non_numeric_amount": "amount is not a number",
    "non_finite_amount": "amount is NaN or infinite",
    "invalid_quantity": "quantity is not a finite number",
    "invalid_cost": "cost is not a finite number",
    "invalid_margin": "margin is not a finite number",
    "after_observation_end": "timestamp is after the observation end",
    "missing_currency": "currency is empty",
    "mixed_currency": "currency differs from the log's currency",
    "return_quarantined": "a return, and the returns policy is 'quarantine'",
    "duplicate_row": "exact repeat of an earlier row",
    "conflicting_order_id": "order_id shared by different customers or days",
    "unmatched_return": "return with no purchase to net against",
}

STRICT_LIST_LIMIT = 20

# Typed columns live beside the source's own under these names, so they never collide.
_T = "_lv_"


class DuplicatesPolicy(StrEnum):
    """What to do with rows that repeat an earlier row exactly."""

    QUARANTINE = "quarantine"
    KEEP = "keep"

    @classmethod
    def parse(cls, value: DuplicatesPolicy | str) -> DuplicatesPolicy:
        """Read a policy from its name."""
        try:
            return cls(str(getattr(value, "value", value)).strip().lower())
        except ValueError:
            raise InputError(
                f"Unknown duplicates policy {value!r}: expected one of quarantine, keep."
            ) from None


class ReturnsPolicy(StrEnum):
    """What to do with negative amounts (returns)."""

    NET = "net"
    KEEP = "keep"
    QUARANTINE = "quarantine"

    @classmethod
    def parse(cls, value: ReturnsPolicy | str) -> ReturnsPolicy:
        """Read a policy from its name."""
        try:
            return cls(str(getattr(value, "value", value)).strip().lower())
        except ValueError:
            raise InputError(
                f"Unknown returns policy {value!r}: expected one of net, keep, quarantine."
            ) from None


@dataclass(frozen=True)
class ValidationReport:
    """What validation found, with counts that always add up.

    Attributes
    ----------
    rows_read
        Rows in the source, malformed lines included.
    accepted
        Rows accepted (purchases and kept or netted returns).
    quarantined
        Quarantined rows per reason code.
    returns
        Accepted return rows (negative amounts).
    date_format
        The format text timestamps were read in, or ``None`` for typed timestamps.
    date_format_detected
        Whether that format was detected rather than given.
    currency
        The log's currency, when there is a currency column.
    observation_end
        The latest timestamp accepted.
    returns_policy
        The returns policy applied.
    duplicates_kept
        Exact repeats accepted under the ``keep`` duplicates policy.
    notes
        Other things worth knowing (columns ignored, defaults chosen).
    """

    source: str
    rows_read: int
    accepted: int
    quarantined: Mapping[str, int]
    returns: int
    date_format: str | None
    date_format_detected: bool
    currency: str | None
    observation_end: str
    returns_policy: str
    columns: Mapping[str, str]
    duplicates_kept: int = 0
    notes: tuple[str, ...] = ()

    @property
    def quarantined_total(self) -> int:
        """All quarantined rows."""
        return sum(self.quarantined.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "quarantined": dict(self.quarantined),
            "quarantined_total": self.quarantined_total,
            "returns": self.returns,
            "date_format": self.date_format,
            "date_format_detected": self.date_format_detected,
            "currency": self.currency,
            "observation_end": self.observation_end,
            "returns_policy": self.returns_policy,
            "duplicates_kept": self.duplicates_kept,
            "columns": dict(self.columns),
            "notes": list(self.notes),
        }


@dataclass
class ValidatedTransactions:
    """Transactions that passed validation, the rows that did not, and the report.

    Attributes
    ----------
    accepted
        The accepted rows in contract form: ``customer_id``, ``timestamp``, ``amount``,
        ``is_return``, ``occasion_at`` (when the row's purchase occasion happened: its own
        time for purchases, the netted purchase's time for returns), ``_lv_pos``, and
        whichever of ``order_id``, ``quantity``, ``margin``, ``channel``, ``campaign``,
        ``category``, ``currency`` the source has (``margin`` is ``amount - cost`` when
        the source gives a cost).
    report
        Counts per reason and what was decided.
    source
        The staged source.
    extra_order_lines
        Accepted purchase rows that are the second or later line of an order
        (``customer_id``, ``timestamp``), or ``None``; a customer's orders are their
        purchase rows minus these.
    """

    accepted: ibis.Table
    report: ValidationReport
    source: TransactionSource
    returns_policy: ReturnsPolicy
    observation_end: Moment | None
    extra_order_lines: ibis.Table | None = field(default=None, repr=False)
    _quarantine: ibis.Table = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def roles(self) -> tuple[str, ...]:
        """Contract columns present in :attr:`accepted`."""
        return tuple(self.report.columns)

    @property
    def quarantine(self) -> ibis.Table:
        """Quarantined rows: ``_lv_pos``, ``reason``, ``message``, the source's columns as text."""
        return self._quarantine

    def quarantine_frame(self, limit: int | None = None) -> pd.DataFrame:
        """Quarantined rows in source order, with ``source_row`` (and ``source_file``)."""
        expr = self._quarantine.order_by(POS)
        if limit is not None:
            expr = expr.limit(limit)
        return self._label(expr.to_pyarrow()).to_pandas()

    def write_quarantine(self, path: str | Path) -> Path:
        """Write every quarantined row to ``path`` (CSV, or Parquet by extension).

        Columns: ``source_row`` (1 is the first data row of the source), ``source_file``
        when the source has several files, ``reason``, ``message``, then the source's own
        columns as text.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        reader = self._quarantine.order_by(POS).to_pyarrow_batches()
        writer: Any = None
        try:
            for batch in reader:
                table = self._label(pa.Table.from_batches([batch]))
                if writer is None:
                    writer = _writer(path, table.schema)
                writer.write_table(table)
            if writer is None:
                empty = self._label(self._quarantine.limit(0).to_pyarrow())
                writer = _writer(path, empty.schema)
                writer.write_table(empty)
        finally:
            if writer is not None:
                writer.close()
        return path

    def problems(self, limit: int = STRICT_LIST_LIMIT) -> list[str]:
        """The first quarantined rows as readable lines: ``row 12: missing_amount: ...``."""
        frame = self._quarantine.order_by(POS).limit(limit).execute()
        return [
            f"{self.source.row_label(pos)}: {reason}: {message}"
            for pos, reason, message in zip(
                frame[POS], frame["reason"], frame["message"], strict=True
            )
        ]

    def _label(self, table: pa.Table) -> pa.Table:
        files, rows = split_position(table.column(POS).to_numpy())
        table = table.drop_columns([POS])
        if len(self.source.files) > 1:
            names = np.asarray(self.source.files, dtype=object)[files]
            table = table.add_column(0, "source_file", pa.array(names, type=pa.string()))
        return table.add_column(0, "source_row", pa.array(rows, type=pa.int64()))


def _writer(path: Path, schema: pa.Schema) -> Any:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.ParquetWriter(path, schema)
    return pacsv.CSVWriter(path, schema)


def validate_transactions(
    source: SourceLike | TransactionSource,
    *,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    date_format: str | None = None,
    observation_end: object = None,
    returns: ReturnsPolicy | str = ReturnsPolicy.NET,
    duplicates: DuplicatesPolicy | str = DuplicatesPolicy.QUARANTINE,
    currency: str | None = None,
    strict: bool = False,
    csv_options: CsvOptions | None = None,
    engine: Engine | None = None,
) -> ValidatedTransactions:
    """Validate a transaction log, accepting or quarantining every row.

    Parameters
    ----------
    source
        Anything :func:`~lifevalue.data.read_transactions` reads, or a staged source.
    columns
        Which source column plays which role; the contract's names by default.
    date_format
        strptime format of text timestamps (or ``"iso"``); detected when omitted.
    observation_end
        The end of the observation period: later rows are quarantined. A date means the
        whole day. Default: now.
    returns
        Returns policy: ``"net"`` (default), ``"keep"`` or ``"quarantine"``.
    duplicates
        Exact repeats: ``"quarantine"`` (default) or ``"keep"`` (accepted and counted).
    currency
        The currency of the analysis; by default the most common one in the log.
    strict
        Raise instead of quarantining: any problem is fatal.
    csv_options
        How to read a delimited file.
    engine
        The engine for files and data frames.

    Returns
    -------
    ValidatedTransactions

    Raises
    ------
    InputError
        A column, option or file cannot be used.
    DataValidationError
        With ``strict=True``, when any row would be quarantined; the message lists the first
        20 problems with their rows and counts the rest by reason.
    """
    staged = (
        source
        if isinstance(source, TransactionSource)
        else read_transactions(source, csv_options=csv_options, engine=engine)
    )
    mapping = columns if isinstance(columns, ColumnMapping) else ColumnMapping.from_dict(columns)
    obs = parse_moment(observation_end, name="observation end") if observation_end else None
    validated = _Validator(
        staged,
        mapping,
        ReturnsPolicy.parse(returns),
        DuplicatesPolicy.parse(duplicates),
        obs,
        date_format,
        currency,
    ).run()
    if strict and validated.report.quarantined_total:
        raise DataValidationError(
            strict_message(validated), rule="strict", rows=validated.problems()
        )
    return validated


def strict_message(validated: ValidatedTransactions) -> str:
    """The message of a strict failure: the first problems, then counts of the rest."""
    report = validated.report
    shown = validated.problems(STRICT_LIST_LIMIT)
    lines = [
        f"{report.quarantined_total:,} of {report.rows_read:,} rows of {report.source} break "
        "the transaction-log rules (strict mode):"
    ]
    lines += [f"  {line}" for line in shown]
    rest = report.quarantined_total - len(shown)
    if rest > 0:
        counts = ", ".join(f"{r} {n:,}" for r, n in report.quarantined.items() if n)
        lines.append(f"  ... and {rest:,} more (all problems by reason: {counts}).")
    return "\n".join(lines)


class _Validator:
    """The rules, as Ibis expressions over the staged source."""

    def __init__(
        self,
        source: TransactionSource,
        mapping: ColumnMapping,
        policy: ReturnsPolicy,
        duplicates: DuplicatesPolicy,
        observation_end: Moment | None,
        date_format: str | None,
        currency: str | None,
    ) -> None:
        self.source = source
        self.table = source.table
        self.roles = mapping.resolve(source.columns, where=source.description)
        self.policy = policy
        self.duplicates = duplicates
        self.duplicates_kept = 0
        self.observation_end = observation_end
        self.date_format = date_format
        self.currency = currency.strip().upper() if currency else None
        self.notes: list[str] = []
        self.reason_cases: list[tuple[ibis.Value, str, ibis.Value]] = []

    # -- typed columns and row rules ---------------------------------------------------

    def run(self) -> ValidatedTransactions:
        frame, parsed = self._typed()
        f = {name[len(_T) :]: frame[name] for name in frame.columns if name.startswith(_T)}
        text = {role: frame[col].cast("string") for role, col in self.roles.items()}

        missing_id = f["customer_id"].isnull()
        if "customer_id_frac" in f:
            missing_id = missing_id & ~f["customer_id_frac"]
        self._rule(missing_id, "missing_customer_id", None)
        if "customer_id_frac" in f:
            self._rule(
                f["customer_id_frac"],
                "invalid_customer_id",
                "customer id " + text["customer_id"] + " is not a whole number",
            )
        self._rule(f["timestamp_blank"], "missing_timestamp", None)
        self._rule(
            f["timestamp"].isnull(),
            "unparseable_timestamp",
            "timestamp '" + text["timestamp"] + f"' does not read as {parsed.format or ''}",
        )
        amount = f["amount"]
        self._rule(f["amount_blank"], "missing_amount", None)
        self._rule(
            amount.isnull(), "non_numeric_amount", "amount '" + text["amount"] + "' is not a number"
        )
        self._rule(
            amount.isnan() | amount.isinf(),
            "non_finite_amount",
            "amount '" + text["amount"] + "' is not finite",
        )
        for role in NUMERIC_ROLES[1:]:
            if role in self.roles:
                value = f[role]
                self._rule(
                    ~f[role + "_blank"] & (value.isnull() | value.isnan() | value.isinf()),
                    f"invalid_{role}",
                    f"{role} '" + text[role] + "' is not a finite number",
                )
        now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
        obs_end = self.observation_end.end if self.observation_end else now
        obs_label = (
            str(self.observation_end) if self.observation_end else f"now ({now:%Y-%m-%d %H:%M})"
        )
        self._rule(
            f["timestamp"] > ibis.literal(obs_end),
            "after_observation_end",
            "timestamp " + f["timestamp"].cast("string") + f" is after the observation end "
            f"{obs_label}",
        )
        if "currency" in f:
            self._currency_rules(f["currency"], frame)
        if self.policy is ReturnsPolicy.QUARANTINE:
            self._rule(
                amount < 0,
                "return_quarantined",
                "amount " + amount.cast("string") + " is a return and the returns policy is "
                "'quarantine'",
            )
        reason = ibis.cases(*[(cond, code) for cond, code, _ in self.reason_cases], else_=None)
        frame = frame.mutate(**{_T + "reason": reason})
        return self._finish(frame, parsed.format, parsed.detected, obs_label)

    def _typed(self) -> tuple[ibis.Table, ParsedTimestamp]:
        """The source plus typed columns; materialised once when text had to be parsed.

        Rules then test the typed columns: parsing text is costly, and an engine does not
        share work between the branches of one CASE expression.
        """
        t, roles = self.table, self.roles
        typed: dict[str, ibis.Value] = {}
        cid = t[roles["customer_id"]]
        kind = cid.type()
        if kind.is_floating():
            # Integer ids read through a float column (a pandas column with gaps).
            present = cid.notnull() & ~cid.isnan()
            typed["customer_id"] = ibis.cases(
                (present & (cid == cid.floor()), cid.cast("int64")), else_=None
            )
            typed["customer_id_frac"] = present & (cid != cid.floor())
        elif kind.is_integer():
            typed["customer_id"] = cid
        else:
            typed["customer_id"] = cid.cast("string").strip().nullif("")
        parsed = read_timestamp(t, roles["timestamp"], date_format=self.date_format)
        typed["timestamp"] = parsed.value
        typed["timestamp_blank"] = parsed.blank
        parse_text = parsed.format is not None
        for role in NUMERIC_ROLES:
            if role in roles:
                col = t[roles[role]]
                if col.type().is_string():
                    raw = col.strip().nullif("")
                    typed[role], typed[role + "_blank"] = raw.try_cast("float64"), raw.isnull()
                    parse_text = True
                elif col.type().is_numeric() or col.type().is_boolean():
                    typed[role], typed[role + "_blank"] = col.cast("float64"), col.isnull()
                else:
                    raise InputError(
                        f"The {role} column {roles[role]!r} holds {col.type()} values: expected "
                        "numbers."
                    )
        if "order_id" in roles:
            oid = t[roles["order_id"]]
            typed["order_id"] = oid.strip().nullif("") if oid.type().is_string() else oid
        for role in LABEL_ROLES:
            if role in roles:
                label = t[roles[role]].cast("string")
                # Labels are cleaned (trimmed, empty as missing) where they are aggregated,
                # on far fewer rows; the currency takes part in a rule, so it is cleaned now.
                typed[role] = label.strip().nullif("").upper() if role == "currency" else label
        frame = t.mutate(**{_T + name: value for name, value in typed.items()})
        return (frame.cache() if parse_text else frame), parsed

    def _rule(self, condition: ibis.Value, code: str, message: ibis.Value | None) -> None:
        text = ibis.literal(REASONS[code]) if message is None else message
        self.reason_cases.append((condition.fill_null(False), code, text))

    def _currency_rules(self, cur: ibis.Value, frame: ibis.Table) -> None:
        counts = frame.select(c=cur).group_by("c").aggregate(n=ibis._.count()).execute()
        present = counts.dropna(subset=["c"]).sort_values(["n", "c"], ascending=[False, True])
        if present.empty:
            self.notes.append("the currency column is empty everywhere; it is ignored")
            del self.roles["currency"]
            return
        expected = self.currency
        if expected is None:
            expected = str(present["c"].iloc[0])
            if len(present) > 1:
                self.notes.append(
                    f"several currencies; the most common, {expected}, is the log's currency "
                    "(choose another with --currency)"
                )
        self.currency = expected
        self._rule(cur.isnull(), "missing_currency", f"currency is empty (the log's is {expected})")
        self._rule(
            cur != expected,
            "mixed_currency",
            "currency '" + cur + f"' differs from the log's currency '{expected}'",
        )

    # -- set-level rules: duplicates, order conflicts, returns --------------------------

    def _finish(
        self, frame: ibis.Table, date_format: str | None, detected: bool, obs_label: str
    ) -> ValidatedTransactions:
        reason = frame[_T + "reason"]
        amount = frame[_T + "amount"]
        counts = (
            frame.group_by(reason=reason, ret=(amount < 0).fill_null(False))
            .aggregate(n=ibis._.count())
            .execute()
        )
        quarantined: dict[str, int] = {}
        for code, n in zip(counts["reason"], counts["n"], strict=True):
            if isinstance(code, str):
                quarantined[code] = quarantined.get(code, 0) + int(n)
        rows = int(counts["n"].sum())
        valid_rows = int(counts.loc[counts["reason"].isna(), "n"].sum())
        valid_returns = int(counts.loc[counts["reason"].isna() & counts["ret"], "n"].sum())
        malformed = 0
        if self.source.malformed is not None:
            malformed = int(self.source.malformed.count().execute())
            if malformed:
                quarantined["malformed_row"] = malformed

        valid = self._valid(frame, rows - valid_rows, rows)
        bad, extra_lines = self._repeats(valid) if valid_rows else (None, None)
        returns_ok: ibis.Table | None = None
        if valid_returns:
            returns_ok, unmatched = self._returns(valid, bad)
            if unmatched is not None:
                bad = unmatched if bad is None else bad.union(unmatched)
        bad_counts: dict[str, int] = {}
        if bad is not None:
            bad = bad.cache()
            per_reason = bad.group_by("_lv_bad_reason").aggregate(n=ibis._.count()).execute()
            bad_counts = {
                code: int(n)
                for code, n in zip(per_reason["_lv_bad_reason"], per_reason["n"], strict=True)
            }
            if not bad_counts:
                bad = None
        for code, n in bad_counts.items():
            quarantined[code] = quarantined.get(code, 0) + n

        rows_read = rows + malformed
        report = ValidationReport(
            source=self.source.description,
            rows_read=rows_read,
            accepted=rows_read - sum(quarantined.values()),
            quarantined={code: quarantined[code] for code in REASONS if quarantined.get(code)},
            returns=int(returns_ok.count().execute()) if returns_ok is not None else 0,
            date_format=date_format,
            date_format_detected=detected,
            currency=self.currency if "currency" in self.roles else None,
            observation_end=obs_label,
            returns_policy=self.policy.value,
            columns=dict(self.roles),
            duplicates_kept=self.duplicates_kept,
            notes=tuple(self.notes),
        )
        logger.info(
            "%s: %d rows read, %d accepted, %d quarantined",
            report.source,
            report.rows_read,
            report.accepted,
            report.quarantined_total,
        )
        return ValidatedTransactions(
            accepted=self._accepted(valid, bad, returns_ok),
            report=report,
            source=self.source,
            returns_policy=self.policy,
            observation_end=self.observation_end,
            extra_order_lines=extra_lines,
            _quarantine=self._quarantine_table(frame, bad),
        )

    def _valid(self, frame: ibis.Table, n_bad: int, n_rows: int) -> ibis.Table:
        """Rows no row rule rejected, without re-evaluating the rules where that can be avoided."""
        if n_bad == 0:
            return frame
        if n_bad <= max(100_000, n_rows // 20):
            # A hash anti-join on a few positions is cheaper than the rules again.
            positions = frame.filter(frame[_T + "reason"].notnull()).select(POS).cache()
            return frame.anti_join(positions, POS)
        return frame.filter(frame[_T + "reason"].isnull())

    def _repeats(self, valid: ibis.Table) -> tuple[ibis.Table | None, ibis.Table | None]:
        """Exact repeats and conflicting orders (rows to quarantine), and extra order lines.

        One pass groups the rows that could be repeats or conflicts: rows of one order_id,
        or (without an order id) rows with equal contents. Only groups of two or more rows
        are looked at closely. Extra order lines are the second and later purchase lines of
        an accepted order: a customer's number of orders is their purchase rows minus these.
        """
        content = ibis.struct({c: valid[c] for c in self.source.columns}).hash()
        if "order_id" in self.roles:
            oid = valid[_T + "order_id"]
            # Equal contents are only hashed for rows without an order id.
            keyed = valid.mutate(_lv_k1=oid, _lv_k2=ibis.cases((oid.isnull(), content), else_=None))
            keys = ["_lv_k1", "_lv_k2"]
        else:
            keyed = valid.mutate(_lv_k2=content)
            keys = ["_lv_k2"]
        groups = keyed.group_by(keys).aggregate(_lv_n=ibis._.count())
        shared = groups.filter(groups._lv_n > 1).select(*keys).cache()
        if int(shared.count().execute()) == 0:
            return None, None
        cand = keyed.semi_join(shared, [keyed[k].identical_to(shared[k]) for k in keys]).cache()

        # Exact repeats: the first row (in source order) of each set of equal rows stays.
        same = ibis.window(group_by=[cand[c] for c in self.source.columns])
        cand = cand.mutate(_lv_first=cand[POS].min().over(same))
        dups: ibis.Table | None = cand.filter(cand[POS] != cand._lv_first).select(
            POS,
            _lv_bad_reason=ibis.literal("duplicate_row"),
            _lv_bad_message="exact repeat of " + _row_text(cand._lv_first),
        )
        if self.duplicates is DuplicatesPolicy.KEEP:
            assert dups is not None
            self.duplicates_kept = int(dups.count().execute())
            if self.duplicates_kept:
                self.notes.append(
                    f"{self.duplicates_kept:,} rows repeat an earlier row exactly and are kept "
                    "(duplicates policy 'keep')"
                )
            dups, rest = None, cand
        else:
            rest = cand.filter(cand[POS] == cand._lv_first)
        if "order_id" not in self.roles:
            return dups, None

        rest = rest.filter(rest[_T + "order_id"].notnull())
        oid = rest[_T + "order_id"]
        is_purchase = rest[_T + "amount"] >= 0
        by_order = rest.group_by(_lv_oid=oid).aggregate(
            _lv_customers=rest[_T + "customer_id"].nunique(),
            _lv_days=ibis.cases((is_purchase, rest[_T + "timestamp"].date()), else_=None).nunique(),
        )
        conflicts = by_order.filter((by_order._lv_customers > 1) | (by_order._lv_days > 1)).cache()
        bad_orders = rest.join(conflicts, rest[_T + "order_id"] == conflicts._lv_oid)
        conflicting = bad_orders.select(
            POS,
            _lv_bad_reason=ibis.literal("conflicting_order_id"),
            _lv_bad_message="order_id '"
            + bad_orders[_T + "order_id"].cast("string")
            + "' has rows for "
            + bad_orders._lv_customers.cast("string")
            + " customer(s) with purchases on "
            + bad_orders._lv_days.cast("string")
            + " day(s); an order belongs to one customer on one day",
        )
        lines = rest.filter(rest[_T + "amount"] >= 0).anti_join(
            conflicts, rest[_T + "order_id"] == conflicts._lv_oid
        )
        lines = lines.mutate(
            _lv_first_line=lines[POS].min().over(ibis.window(group_by=lines[_T + "order_id"]))
        )
        extra = (
            lines.filter(lines[POS] != lines._lv_first_line)
            .select(customer_id=lines[_T + "customer_id"], timestamp=lines[_T + "timestamp"])
            .cache()
        )
        return (conflicting if dups is None else dups.union(conflicting)), extra

    def _returns(
        self, valid: ibis.Table, bad: ibis.Table | None
    ) -> tuple[ibis.Table, ibis.Table | None]:
        amount = valid[_T + "amount"]
        returns = valid.filter(amount < 0)
        if bad is not None:
            returns = returns.anti_join(bad, POS)
        returns = returns.cache()
        if self.policy is not ReturnsPolicy.NET:
            return returns.mutate(_lv_occasion_at=returns[_T + "timestamp"]), None
        purchases = valid.filter(amount >= 0)
        matched: list[ibis.Table] = []
        unmatched: list[ibis.Table] = []
        if "order_id" in self.roles:
            by_order = returns.filter(returns[_T + "order_id"].notnull())
            orders = (
                purchases.semi_join(
                    by_order, purchases[_T + "order_id"] == by_order[_T + "order_id"]
                )
                .group_by(_lv_oid=purchases[_T + "order_id"])
                .aggregate(_lv_occasion_at=purchases[_T + "timestamp"].min())
            )
            joined = by_order.left_join(orders, by_order[_T + "order_id"] == orders._lv_oid)
            joined = joined.drop("_lv_oid")
            matched.append(joined.filter(joined._lv_occasion_at.notnull()))
            unmatched.append(
                joined.filter(joined._lv_occasion_at.isnull()).select(
                    POS,
                    _lv_bad_reason=ibis.literal("unmatched_return"),
                    _lv_bad_message="return of "
                    + joined[_T + "amount"].cast("string")
                    + " names order_id '"
                    + joined[_T + "order_id"].cast("string")
                    + "', which has no purchase to net against",
                )
            )
            by_day = returns.filter(returns[_T + "order_id"].isnull())
        else:
            by_day = returns
        day = by_day[_T + "timestamp"].date()
        keyed = by_day.mutate(_lv_day=day)
        pdays = purchases.mutate(_lv_pday=purchases[_T + "timestamp"].date()).select(
            _lv_pcust=_T + "customer_id", _lv_pday="_lv_pday"
        )
        pdays = pdays.semi_join(
            keyed,
            [pdays._lv_pcust == keyed[_T + "customer_id"], pdays._lv_pday == keyed._lv_day],
        ).distinct()
        joined = keyed.left_join(
            pdays,
            [keyed[_T + "customer_id"] == pdays._lv_pcust, keyed._lv_day == pdays._lv_pday],
        )
        hit = joined._lv_pday.notnull()
        matched.append(
            joined.filter(hit)
            .mutate(_lv_occasion_at=joined[_T + "timestamp"])
            .drop("_lv_day", "_lv_pcust", "_lv_pday")
        )
        unmatched.append(
            joined.filter(~hit).select(
                POS,
                _lv_bad_reason=ibis.literal("unmatched_return"),
                _lv_bad_message="return of "
                + joined[_T + "amount"].cast("string")
                + " on "
                + joined._lv_day.cast("string")
                + " has no purchase by this customer that day to net against (the returns "
                "policy 'keep' keeps such returns)",
            )
        )
        ok = (
            matched[0]
            if len(matched) == 1
            else matched[0].union(matched[1].select(*matched[0].columns))
        )
        miss = unmatched[0] if len(unmatched) == 1 else unmatched[0].union(unmatched[1])
        return ok, miss

    def _accepted(
        self, valid: ibis.Table, bad: ibis.Table | None, returns_ok: ibis.Table | None
    ) -> ibis.Table:
        amount = valid[_T + "amount"]
        purchases = valid.filter(amount >= 0) if returns_ok is not None else valid
        if bad is not None:
            purchases = purchases.anti_join(bad, POS)
        purchases = purchases.mutate(_lv_occasion_at=purchases[_T + "timestamp"])
        if returns_ok is None:
            rows = purchases
        else:
            rows = purchases.union(returns_ok.select(*purchases.columns))
        out: dict[str, Any] = {
            "customer_id": rows[_T + "customer_id"],
            "timestamp": rows[_T + "timestamp"],
            "amount": rows[_T + "amount"],
            "is_return": rows[_T + "amount"] < 0,
            "occasion_at": rows._lv_occasion_at,
        }
        for role in ("order_id", "quantity", "channel", "campaign", "category", "currency"):
            if role in self.roles:
                out[role] = rows[_T + role]
        if "margin" in self.roles:
            out["margin"] = rows[_T + "margin"]
        elif "cost" in self.roles:
            out["margin"] = rows[_T + "amount"] - rows[_T + "cost"].fill_null(0.0)
        out[POS] = rows[POS]
        return rows.select(**out)

    def _quarantine_table(self, frame: ibis.Table, bad: ibis.Table | None) -> ibis.Table:
        names = _output_names(self.source.columns)
        text = {names[c]: frame[c].cast("string") for c in self.source.columns}
        message = ibis.cases(
            *[(frame[_T + "reason"] == code, msg) for _, code, msg in self.reason_cases],
            else_=None,
        )
        parts = [
            frame.filter(frame[_T + "reason"].notnull()).select(
                POS, reason=frame[_T + "reason"], message=message, **text
            )
        ]
        if bad is not None:
            joined = bad.join(frame, POS)
            parts.append(
                joined.select(
                    POS,
                    reason=joined._lv_bad_reason,
                    message=joined._lv_bad_message,
                    **{names[c]: joined[c].cast("string") for c in self.source.columns},
                )
            )
        malformed = self.source.malformed
        if malformed is not None:
            parts.append(
                malformed.select(
                    POS,
                    reason=ibis.literal("malformed_row"),
                    message=malformed.message,
                    **{names[c]: ibis.null("string") for c in self.source.columns},
                )
            )
        out = parts[0]
        for part in parts[1:]:
            out = out.union(part)
        return out


def _row_text(pos: ibis.Value) -> ibis.Value:
    row = (pos & ((1 << POS_BITS) - 1)).cast("string")
    file_no = ((pos >> POS_BITS) + 1).cast("string")
    return ibis.cases(
        (pos >> POS_BITS == 0, "row " + row), else_="row " + row + " of file #" + file_no
    )


_OWN_COLUMNS = ("source_row", "source_file", "reason", "message", POS)


def _output_names(columns: tuple[str, ...]) -> dict[str, str]:
    """Quarantine column names for the source's columns, clear of the quarantine's own."""
    return {c: f"{c}_in_source" if c in _OWN_COLUMNS else c for c in columns}
