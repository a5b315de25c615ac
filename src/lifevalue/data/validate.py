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
from lifevalue.data.engine import Engine, Workspace, row_hash
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
    _workspace: Workspace | None = field(default=None, repr=False)

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
        self.ws = source.workspace.child() if source.workspace else Workspace(source.backend)
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
        # A plain boolean says whether a row passes; the reason (text) is only read for the
        # rows that do not, and costs more per row.
        passes = ~ibis.or_(*[cond for cond, _, _ in self.reason_cases])
        self.ruled = frame.mutate(**{_T + "reason": reason, _T + "ok": passes})
        frame = self.ws.view(self.ruled, "lv_rows")
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
                # Labels are cleaned (trimmed, empty as missing) where they are aggregated,
                # on far fewer rows; accepted rows all carry the log's currency.
                typed[role] = t[roles[role]].cast("string")
        frame = t.mutate(**{_T + name: value for name, value in typed.items()})
        # Text is parsed once, into a table; typed sources stay where they are.
        return (self.ws.table(frame, "lv_typed") if parse_text else frame), parsed

    def _rule(self, condition: ibis.Value, code: str, message: ibis.Value | None) -> None:
        text = ibis.literal(REASONS[code]) if message is None else message
        self.reason_cases.append((condition.fill_null(False), code, text))

    def _currency_rules(self, cur: ibis.Value, frame: ibis.Table) -> None:
        """One currency per analysis: the one given, or else the most common one.

        The rules compare each row's raw text with the few distinct spellings found, so no
        row has its currency trimmed or upper-cased.
        """
        counts = frame.select(c=cur).group_by("c").aggregate(n=ibis._.count()).execute()
        codes = {raw: _currency_code(raw) for raw in counts["c"]}
        totals: dict[str, int] = {}
        for raw, n in zip(counts["c"], counts["n"], strict=True):
            if codes[raw] is not None:
                totals[codes[raw]] = totals.get(codes[raw], 0) + int(n)
        if not totals:
            self.notes.append("the currency column is empty everywhere; it is ignored")
            del self.roles["currency"]
            return
        expected = self.currency
        if expected is None:
            expected = min(totals, key=lambda code: (-totals[code], code))
            if len(totals) > 1:
                self.notes.append(
                    f"several currencies; the most common, {expected}, is the log's currency "
                    "(choose another with --currency)"
                )
        self.currency = expected
        blank = [raw for raw, code in codes.items() if code is None and isinstance(raw, str)]
        same = [raw for raw, code in codes.items() if code == expected]
        missing = cur.isnull() | cur.isin(blank) if blank else cur.isnull()
        self._rule(missing, "missing_currency", f"currency is empty (the log's is {expected})")
        self._rule(
            ~cur.isin(same) if same else ibis.literal(True),
            "mixed_currency",
            "currency '" + cur + f"' differs from the log's currency '{expected}'",
        )

    # -- set-level rules: duplicates, order conflicts, returns --------------------------

    def _finish(
        self, frame: ibis.Table, date_format: str | None, detected: bool, obs_label: str
    ) -> ValidatedTransactions:
        reason = frame[_T + "reason"]
        ok = frame[_T + "ok"]
        stats = {
            "rows": frame.count(),
            "valid": ok.sum(),
            "valid_returns": (ok & (frame[_T + "amount"] < 0)).sum(),
        }
        if "order_id" in self.roles:
            stats["without_order"] = (ok & frame[_T + "order_id"].isnull()).sum()
        # One plain aggregate over every row; rows rules rejected are grouped by reason only
        # when there are some.
        row = frame.aggregate(**stats).execute().iloc[0]
        rows, valid_rows = int(row["rows"]), int(row["valid"] or 0)
        valid_returns = int(row["valid_returns"] or 0)
        without_order = int(row.get("without_order") or 0)
        quarantined: dict[str, int] = {}
        if valid_rows < rows:
            per_reason = frame.filter(~ok).group_by(reason=reason).aggregate(n=ibis._.count())
            per_reason = per_reason.execute()
            quarantined = dict(zip(per_reason["reason"], per_reason["n"].astype(int), strict=True))
        malformed = 0
        if self.source.malformed is not None:
            malformed = int(self.source.malformed.count().execute())
            if malformed:
                quarantined["malformed_row"] = malformed

        valid = self._valid(frame, rows - valid_rows, rows)
        sets = None
        if valid_rows:
            sets = _SetRules(
                self, valid, has_returns=valid_returns > 0, rows_without_order=without_order
            )
        bad = sets.bad if sets is not None else None
        for code, n in (sets.quarantined if sets is not None else {}).items():
            quarantined[code] = quarantined.get(code, 0) + n

        rows_read = rows + malformed
        report = ValidationReport(
            source=self.source.description,
            rows_read=rows_read,
            accepted=rows_read - sum(quarantined.values()),
            quarantined={code: quarantined[code] for code in REASONS if quarantined.get(code)},
            returns=sets.n_returns if sets is not None else 0,
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
            accepted=self.ws.view(
                self._accepted(valid, bad, sets.returns if sets is not None else None),
                "lv_accepted",
            ),
            report=report,
            source=self.source,
            returns_policy=self.policy,
            observation_end=self.observation_end,
            extra_order_lines=sets.extra_lines if sets is not None else None,
            # Messages are expressions of the rows before they were named as a view.
            _quarantine=self._quarantine_table(self.ruled, bad),
            _workspace=self.ws,
        )

    def _valid(self, frame: ibis.Table, n_bad: int, n_rows: int) -> ibis.Table:
        """Rows no row rule rejected, without re-evaluating the rules where that can be avoided."""
        if n_bad == 0:
            return frame
        if n_bad <= max(100_000, n_rows // 20):
            # A hash anti-join on a few positions is cheaper than the rules again.
            positions = self.ws.table(frame.filter(~frame[_T + "ok"]).select(POS), "lv_bad_pos")
            return self.ws.view(frame.anti_join(positions, POS), "lv_valid")
        return self.ws.view(frame.filter(frame[_T + "ok"]), "lv_valid")

    def _accepted(
        self, valid: ibis.Table, bad: ibis.Table | None, returns_ok: ibis.Table | None
    ) -> ibis.Table:
        amount = valid[_T + "amount"]
        purchases = valid.filter(amount >= 0) if returns_ok is not None else valid
        if bad is not None:
            purchases = purchases.anti_join(bad, POS)
        rows = self._contract(purchases, purchases[_T + "timestamp"])
        if returns_ok is not None:
            rows = rows.union(self._contract(returns_ok, returns_ok._lv_occasion_at))
        return rows

    def _contract(self, rows: ibis.Table, occasion_at: ibis.Value) -> ibis.Table:
        """Typed rows in the contract's column names."""
        out: dict[str, Any] = {
            "customer_id": rows[_T + "customer_id"],
            "timestamp": rows[_T + "timestamp"],
            "amount": rows[_T + "amount"],
            "is_return": rows[_T + "amount"] < 0,
            "occasion_at": occasion_at,
        }
        for role in ("order_id", "quantity", "channel", "campaign", "category"):
            if role in self.roles:
                out[role] = rows[_T + role]
        if "currency" in self.roles:
            out["currency"] = ibis.literal(self.currency)
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
            frame.filter(~frame[_T + "ok"]).select(
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


class _SetRules:
    """Rules that look at several rows at once: repeats, order conflicts, returns.

    One pass groups the valid rows that could repeat, conflict or be netted: the rows of one
    order_id (or, without an order id, rows with equal contents) when there are two or
    more of them or one is a return. Only those candidate rows, usually a small share of
    the log, are then classified, with aggregations over each order joined back:

    - ``duplicate_row``: an exact repeat of an earlier row (under the quarantine policy);
    - ``conflicting_order_id``: the order's rows name several customers or purchase days;
    - ``return``: a return netted against its order (or kept, under the keep policy);
    - ``unmatched_return``: a return whose order has no purchase;
    - ``extra_line``: the second or later purchase line of an order.

    Returns without an order id are netted against the customer's purchases of that day.
    """

    BAD = ("duplicate_row", "conflicting_order_id", "unmatched_return")

    def __init__(
        self, rules: _Validator, valid: ibis.Table, *, has_returns: bool, rows_without_order: int
    ) -> None:
        self.rules = rules
        self.valid = valid
        self.bad: ibis.Table | None = None
        self.returns: ibis.Table | None = None
        self.extra_lines: ibis.Table | None = None
        self.quarantined: dict[str, int] = {}
        self.n_returns = 0
        self._classify(self._candidates(valid, has_returns, rows_without_order))

    def _candidates(
        self, valid: ibis.Table, has_returns: bool, rows_without_order: int
    ) -> ibis.Table:
        """Valid rows that share their order id (or their contents), or that are returns.

        Stored with their typed columns and a hash of their contents; a row's own columns
        are fetched again only for the few rows whose hash repeats within an order.
        """
        columns = self.rules.source.columns
        ws = self.rules.ws
        roles = self.rules.roles
        typed = [c for c in valid.columns if c.startswith(_T) and c[len(_T) :] in roles]
        # Only what classifying needs travels: the rule flags stay behind unevaluated.
        valid = ws.view(valid.select(POS, *columns, *typed), "lv_slim")
        parts: list[ibis.Table] = []
        if "order_id" in roles:
            oid = valid[_T + "order_id"]
            with_order = (
                ws.view(valid.filter(oid.notnull()), "lv_ordered") if rows_without_order else valid
            )
            parts.append(_sharing(with_order, with_order[_T + "order_id"], has_returns))
            if rows_without_order:
                without = ws.view(valid.filter(oid.isnull()), "lv_unordered")
                parts.append(_sharing(without, row_hash(without, columns), has_returns))
        else:
            parts.append(_sharing(valid, row_hash(valid, columns), has_returns))
        cand = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
        cand = cand.select(POS, *typed, _lv_rowhash=row_hash(cand, columns))
        # Read several times by the classification, the candidates are computed once.
        return ws.stored(cand, "lv_cand")

    def _repeats(self, cand: ibis.Table) -> ibis.Table | None:
        """Positions of exact repeats and of the row each repeats (``_lv_first``), if any.

        Rows can only repeat each other within one order (or one content hash); those whose
        content hash repeats there are compared column by column on the source's own values.
        """
        rules = self.rules
        keys = ["_lv_rowhash"]
        if "order_id" in rules.roles:
            keys.insert(0, _T + "order_id")
        groups = cand.group_by(keys).aggregate(_lv_n=ibis._.count())
        shared = rules.ws.table(groups.filter(groups._lv_n > 1).select(*keys), "lv_same_hash")
        if int(shared.count().execute()) == 0:
            return None
        suspects = cand.semi_join(shared, [cand[k].identical_to(shared[k]) for k in keys])
        source = rules.source.table
        rows = source.semi_join(suspects.select(POS), POS)
        same = ibis.window(group_by=[rows[c] for c in rules.source.columns])
        rows = rows.mutate(_lv_first=rows[POS].min().over(same))
        repeats = rows.filter(rows[POS] != rows._lv_first).select(POS, "_lv_first")
        return rules.ws.table(repeats, "lv_repeats")

    def _classify(self, cand: ibis.Table) -> None:
        rules = self.rules
        pos, amount, ts = cand[POS], cand[_T + "amount"], cand[_T + "timestamp"]
        buy = amount >= 0
        quarantine_dups = rules.duplicates is DuplicatesPolicy.QUARANTINE
        has_orders = "order_id" in rules.roles
        net = rules.policy is ReturnsPolicy.NET
        repeats = self._repeats(cand)
        c = cand
        if repeats is not None:
            c = cand.left_join(repeats, POS).select(*cand.columns, "_lv_first")
        if has_orders:
            oid = cand[_T + "order_id"]
            cust = cand[_T + "customer_id"].cast("string")
            day = ibis.cases((buy, ts.date()), else_=None)
            orders = (
                cand.filter(oid.notnull())
                .group_by(_lv_oid=oid)
                .aggregate(
                    _lv_cmin=cust.min(),
                    _lv_cmax=cust.max(),
                    _lv_dmin=day.min(),
                    _lv_dmax=day.max(),
                    _lv_line1=ibis.cases((buy, pos), else_=None).min(),
                    _lv_order_at=ibis.cases((buy, ts), else_=None).min(),
                )
            )
            c = c.left_join(orders, c[_T + "order_id"] == orders._lv_oid).drop("_lv_oid")
        pos, amount, ts = c[POS], c[_T + "amount"], c[_T + "timestamp"]
        buy = amount >= 0
        is_dup = c._lv_first.notnull() if repeats is not None else ibis.literal(False)
        cases = [(is_dup, "duplicate_row")] if quarantine_dups and repeats is not None else []
        messages: list[tuple[str, ibis.Value]] = []
        if repeats is not None:
            messages.append(("duplicate_row", "exact repeat of " + _row_text(c._lv_first)))
        occasion = ts
        if has_orders:
            oid = c[_T + "order_id"]
            oid_text = oid.cast("string")
            conflict = oid.notnull() & ((c._lv_cmin != c._lv_cmax) | (c._lv_dmin != c._lv_dmax))
            cases.append((conflict, "conflicting_order_id"))
            messages.append(
                (
                    "conflicting_order_id",
                    ibis.cases(
                        (
                            c._lv_cmin != c._lv_cmax,
                            "order_id '"
                            + oid_text
                            + "' has rows for different customers ('"
                            + c._lv_cmin
                            + "' and '"
                            + c._lv_cmax
                            + "')",
                        ),
                        else_="order_id '"
                        + oid_text
                        + "' has purchases on different days ("
                        + c._lv_dmin.cast("string")
                        + " to "
                        + c._lv_dmax.cast("string")
                        + "); an order belongs to one customer on one day",
                    ),
                )
            )
            if net:
                cases.append((~buy & oid.notnull() & c._lv_order_at.isnull(), "unmatched_return"))
                messages.append(
                    (
                        "unmatched_return",
                        "return of "
                        + amount.cast("string")
                        + " names order_id '"
                        + oid_text
                        + "', which has no purchase to net against",
                    )
                )
                cases.append((~buy & oid.isnull(), "return_by_day"))
                occasion = ibis.cases((oid.notnull(), c._lv_order_at), else_=ts)
            cases.append((~buy, "return"))
            cases.append((oid.notnull() & (pos != c._lv_line1), "extra_line"))
        else:
            cases.append((~buy, "return_by_day" if net else "return"))
        kind = ibis.cases(*cases, else_="ok")
        text = (
            ibis.cases(*[(kind == k, m) for k, m in messages], else_=ibis.null("string"))
            if messages
            else ibis.null("string")
        )
        # Stored narrow: writing a table costs per column, and only these are read again.
        typed = [name for name in cand.columns if name.startswith(_T) and name != POS]
        classified = self.rules.ws.stored(
            c.select(
                POS,
                *typed,
                _lv_kind=kind,
                _lv_message=text,
                _lv_occasion_at=occasion,
                _lv_is_dup=is_dup,
            ),
            "lv_classified",
        )

        tally = (
            classified.group_by("_lv_kind")
            .aggregate(n=ibis._.count(), dups=classified._lv_is_dup.cast("int64").sum())
            .execute()
        )
        counts = dict(zip(tally["_lv_kind"], tally["n"].astype(int), strict=True))
        if not quarantine_dups:
            rules.duplicates_kept = int(tally["dups"].sum())
            if rules.duplicates_kept:
                rules.notes.append(
                    f"{rules.duplicates_kept:,} rows repeat an earlier row exactly and are kept "
                    "(duplicates policy 'keep')"
                )
        kind = classified._lv_kind
        bad = (
            [classified.filter(kind.isin(self.BAD))] if any(counts.get(k) for k in self.BAD) else []
        )
        returns = [classified.filter(kind == "return")] if counts.get("return") else []
        if counts.get("return_by_day"):
            matched, unmatched = self._net_by_day(classified.filter(kind == "return_by_day"))
            returns.append(matched)
            bad.append(unmatched)
        if bad:
            union = bad[0] if len(bad) == 1 else bad[0].union(bad[1].select(*bad[0].columns))
            self.bad = self.rules.ws.table(
                union.select(POS, _lv_bad_reason=union._lv_kind, _lv_bad_message=union._lv_message),
                "lv_bad",
            )
            tally_bad = self.bad.group_by("_lv_bad_reason").aggregate(n=ibis._.count()).execute()
            self.quarantined = dict(
                zip(tally_bad["_lv_bad_reason"], tally_bad["n"].astype(int), strict=True)
            )
        if returns and not counts.get("return_by_day"):
            self.returns, self.n_returns = returns[0], counts["return"]
        elif returns:
            ok = returns[0] if len(returns) == 1 else returns[0].union(returns[1])
            self.returns = self.rules.ws.table(ok, "lv_returns")
            self.n_returns = int(self.returns.count().execute())
        if counts.get("extra_line"):
            lines = classified.filter(kind == "extra_line")
            self.extra_lines = lines.select(
                customer_id=lines[_T + "customer_id"], timestamp=lines[_T + "timestamp"]
            )

    def _net_by_day(self, returns: ibis.Table) -> tuple[ibis.Table, ibis.Table]:
        """Net returns without an order id against the customer's purchases that day."""
        valid = self.valid
        purchases = valid.filter(valid[_T + "amount"] >= 0)
        days = purchases.select(
            _lv_pcust=purchases[_T + "customer_id"], _lv_pday=purchases[_T + "timestamp"].date()
        )
        keyed = returns.mutate(_lv_day=returns[_T + "timestamp"].date())
        days = days.semi_join(
            keyed, [days._lv_pcust == keyed[_T + "customer_id"], days._lv_pday == keyed._lv_day]
        ).distinct()
        joined = keyed.left_join(
            days, [keyed[_T + "customer_id"] == days._lv_pcust, keyed._lv_day == days._lv_pday]
        )
        hit = joined._lv_pday.notnull()
        columns = returns.columns
        matched = joined.filter(hit).mutate(_lv_kind=ibis.literal("return")).select(*columns)
        unmatched = (
            joined.filter(~hit)
            .mutate(
                _lv_kind=ibis.literal("unmatched_return"),
                _lv_message="return of "
                + joined[_T + "amount"].cast("string")
                + " on "
                + joined._lv_day.cast("string")
                + " has no purchase by this customer that day to net against (the returns "
                "policy 'keep' keeps such returns)",
            )
            .select(*columns)
        )
        return matched, unmatched


def _sharing(table: ibis.Table, key: ibis.Value, with_returns: bool) -> ibis.Table:
    """Rows of ``table`` whose ``key`` is shared with another row (or, optionally, a return)."""
    # The grouping side reads only the key and the amount; ``table`` is a named view, so
    # each side is planned on its own instead of through one materialised expression.
    slim = table.select(_lv_key=key, _lv_ret=table[_T + "amount"] < 0)
    groups = slim.group_by("_lv_key").aggregate(
        _lv_n=ibis._.count(), _lv_ret=ibis.cases((slim._lv_ret, 1), else_=0).sum()
    )
    wanted = groups._lv_n > 1
    if with_returns:
        wanted = wanted | (groups._lv_ret > 0)
    keyed = table.mutate(_lv_key=key)
    return keyed.semi_join(groups.filter(wanted).select("_lv_key"), "_lv_key").drop("_lv_key")


def _row_text(pos: ibis.Value) -> ibis.Value:
    row = (pos & ((1 << POS_BITS) - 1)).cast("string")
    file_no = ((pos >> POS_BITS) + 1).cast("string")
    return ibis.cases(
        (pos >> POS_BITS == 0, "row " + row), else_="row " + row + " of file #" + file_no
    )


_OWN_COLUMNS = ("source_row", "source_file", "reason", "message", POS)


def _currency_code(raw: object) -> str | None:
    """The currency code a raw value stands for, or None for an empty one."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return None
    code = str(raw).strip().upper()
    return code or None


def _output_names(columns: tuple[str, ...]) -> dict[str, str]:
    """Quarantine column names for the source's columns, clear of the quarantine's own."""
    return {c: f"{c}_in_source" if c in _OWN_COLUMNS else c for c in columns}
