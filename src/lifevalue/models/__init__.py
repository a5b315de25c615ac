"""Probabilistic customer-base models: one class per model on one shared base."""

from __future__ import annotations

from lifevalue.models.base import BaseModel, load_model, model_class
from lifevalue.models.bgnbd import BetaGeoModel

__all__ = ["BaseModel", "BetaGeoModel", "load_model", "model_class"]
