"""The data layer: sources, validation and quarantine, customer summaries, simulation."""

from __future__ import annotations

from lifevalue.data.contract import ColumnMapping, CsvOptions
from lifevalue.data.engine import Engine, default_engine
from lifevalue.data.sources import TransactionSource, read_transactions
from lifevalue.data.summary import CustomerSummary, OccasionPeriod, summarize
from lifevalue.data.validate import (
    REASONS,
    ReturnsPolicy,
    ValidatedTransactions,
    ValidationReport,
    validate_transactions,
)

__all__ = [
    "REASONS",
    "ColumnMapping",
    "CsvOptions",
    "CustomerSummary",
    "Engine",
    "OccasionPeriod",
    "ReturnsPolicy",
    "TransactionSource",
    "ValidatedTransactions",
    "ValidationReport",
    "default_engine",
    "read_transactions",
    "summarize",
    "validate_transactions",
]
