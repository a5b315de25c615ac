"""Run history: every run kept, compared and watched over time."""

from __future__ import annotations

from lifevalue.store.run import MODEL_ROLES, StoredRun

__all__ = ["MODEL_ROLES", "StoredRun"]
