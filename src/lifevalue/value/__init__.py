"""From predictions to decisions: net-profit CLV and what follows from it."""

from __future__ import annotations

from lifevalue.value.acquisition import acquisition_economics
from lifevalue.value.drivers import group_differences, permutation_importance_table
from lifevalue.value.forecast import revenue_forecast
from lifevalue.value.leads import LeadModel, build_lead_features, rank_leads, validate_out_of_time
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
    "LeadModel",
    "Offer",
    "OfferPolicy",
    "PolicyError",
    "Profit",
    "acquisition_economics",
    "breakdown",
    "build_lead_features",
    "concentration_curve",
    "gini_coefficient",
    "group_differences",
    "lifecycle_states",
    "offer_counts",
    "permutation_importance_table",
    "rank_leads",
    "revenue_forecast",
    "rfm_scores",
    "rfm_segments",
    "score_customers",
    "validate_out_of_time",
    "value_concentration",
    "value_tiers",
]
