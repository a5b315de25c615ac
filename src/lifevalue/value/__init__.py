"""From predictions to decisions: net-profit CLV and what follows from it."""

from __future__ import annotations

from lifevalue.value.scores import SCORE_COLUMNS, Profit, score_customers

__all__ = ["SCORE_COLUMNS", "Profit", "score_customers"]
