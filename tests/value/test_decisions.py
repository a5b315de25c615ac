"""Scores, segments and offers together on CDNOW: the layers fit one another."""

from __future__ import annotations

from lifevalue.models import BetaGeoModel, GammaGammaModel
from lifevalue.value import (
    OfferPolicy,
    Profit,
    lifecycle_states,
    rfm_segments,
    score_customers,
    value_tiers,
)
from lifevalue.value.segments import LIFECYCLE_STATES


def test_scores_segments_and_the_default_policy(cdnow_calibration) -> None:
    summary = cdnow_calibration.to_pandas()
    scores = score_customers(
        summary,
        BetaGeoModel().fit(summary),
        GammaGammaModel().fit(summary),
        profit=Profit(margin_rate=0.3),
    )
    scores = scores.assign(
        value_tier=value_tiers(scores),
        segment=rfm_segments(scores),
        lifecycle_state=lifecycle_states(scores),
    )
    assert scores["value_tier"].value_counts()["top"] == round(0.05 * len(scores))
    granted = OfferPolicy.default(fields=scores.columns).evaluate(scores, per_customer=True)
    assert len(granted) == len(scores)
    vip = granted["offers"].str.contains("vip_support")
    assert vip.any()
    chosen = scores.loc[vip[vip].index]
    assert (chosen["value_tier"] == "top").all() and (chosen["p_alive"] >= 0.5).all()
    assert set(scores["segment"].astype(str)) <= {
        "champions", "loyal", "potential loyalists", "new", "promising", "need attention",
        "at risk", "can't lose them", "hibernating", "lost",
    }  # fmt: skip
    # Every CDNOW customer first bought in early 1997, long before the as-of date.
    states = set(scores["lifecycle_state"].astype(str))
    assert states <= set(LIFECYCLE_STATES) and "new" not in states
