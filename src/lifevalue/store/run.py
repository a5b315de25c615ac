"""One stored run: what the reports and the monitor read, whichever store it came from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from lifevalue.models import BaseModel

if TYPE_CHECKING:
    from lifevalue.pipeline import AnalysisResult

#: Model roles a run keeps.
MODEL_ROLES: tuple[str, ...] = ("transaction", "spend")


@dataclass
class StoredRun:
    """A run as kept in the run history.

    Attributes
    ----------
    run_id
        The run's id (12 hex digits).
    created_at
        When the run was stored, ISO 8601 in UTC.
    as_of
        The scoring date.
    headline
        :meth:`AnalysisResult.headline`.
    settings, config
        The settings that shaped the numbers and the whole configuration.
    validation
        :meth:`ValidationReport.as_dict`.
    fingerprint
        A digest of the accepted transactions.
    models
        Each fitted model's :meth:`BaseModel.to_dict`, by role (``transaction``, ``spend``).
    tables
        Every output table of the run by name, as :attr:`AnalysisResult.tables`, with
        ``scores`` holding ``customer_id`` as a column.
    alerts
        Alerts raised when the run was stored (see :mod:`lifevalue.store.monitor`).
    """

    run_id: str
    created_at: str
    as_of: str
    headline: dict[str, Any]
    settings: dict[str, Any]
    config: dict[str, Any]
    validation: dict[str, Any]
    fingerprint: str
    models: dict[str, dict[str, Any]]
    tables: dict[str, pd.DataFrame]
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def from_result(cls, result: AnalysisResult, run_id: str | None = None) -> StoredRun:
        """The stored form of a pipeline result (nothing is written anywhere)."""
        models = {"transaction": result.transaction_model.to_dict()}
        if result.spend_model is not None:
            models["spend"] = result.spend_model.to_dict()
        from lifevalue.pipeline import flat_table

        tables = {name: flat_table(table) for name, table in result.tables.items()}
        return cls(
            run_id=run_id or uuid.uuid4().hex[:12],
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            as_of=result.as_of,
            headline=result.headline(),
            settings=dict(result.settings),
            config=dict(result.config),
            validation=result.validation.as_dict(),
            fingerprint=result.fingerprint,
            models=models,
            tables=tables,
        )

    def model(self, role: str = "transaction") -> BaseModel | None:
        """The fitted model of a role, rebuilt from its stored form; ``None`` if absent."""
        payload = self.models.get(role)
        return None if payload is None else BaseModel.from_dict(payload)

    @property
    def scores(self) -> pd.DataFrame:
        """One row per customer (``customer_id`` as a column)."""
        return self.tables["scores"]
