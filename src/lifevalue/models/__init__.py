"""Probabilistic customer-base models: one class per model on one shared base."""

from __future__ import annotations

from lifevalue.models.base import BaseModel, load_model, model_class
from lifevalue.models.bgbb import BetaGeoBetaBinomModel
from lifevalue.models.bgnbd import BetaGeoModel
from lifevalue.models.gamma_gamma import GammaGammaModel
from lifevalue.models.mbgnbd import ModifiedBetaGeoModel
from lifevalue.models.pareto_nbd import ParetoNBDModel
from lifevalue.models.sbg import ShiftedBetaGeometricModel

__all__ = [
    "BaseModel",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "ShiftedBetaGeometricModel",
    "load_model",
    "model_class",
]
