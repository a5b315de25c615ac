"""From predictions to decisions: net-profit CLV and what follows from it."""

from __future__ import annotations

from lifevalue.value.acquisition import acquisition_economics
from lifevalue.value.offers import Offer, OfferPolicy, PolicyError, offer_counts
from lifevalue.value.scores import SCORE_COLUMNS, Profit, score_customers
from lifevalue.value.segments import (
    RFM_SEGMENT_RULES,
    breakdown,
    concentration_curve,
    gini_coefficient,
    lifecycle_states,
    rfm_scores,
    rfm_segments,
    value_concentration,
    value_tiers,
)

__all__ = [
    "RFM_SEGMENT_RULES",
    "SCORE_COLUMNS",
    "Offer",
    "OfferPolicy",
    "PolicyError",
    "Profit",
    "acquisition_economics",
    "breakdown",
    "concentration_curve",
    "gini_coefficient",
    "lifecycle_states",
    "offer_counts",
    "rfm_scores",
    "rfm_segments",
    "score_customers",
    "value_concentration",
    "value_tiers",
]
