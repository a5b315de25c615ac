"""Offers and payment plans: policy reading, validation with line numbers, evaluation."""

from __future__ import annotations

import datetime as dt
import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifevalue.data.simulate import simulate_business
from lifevalue.errors import DataValidationError, InputError
from lifevalue.value.offers import (
    OFFER_COLUMNS,
    Condition,
    Offer,
    OfferPolicy,
    PolicyError,
    offer_counts,
)


def policy(text: str, **kwargs: object) -> OfferPolicy:
    return OfferPolicy.from_toml(textwrap.dedent(text).lstrip("\n"), **kwargs)


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of dedented ``text`` containing ``needle``."""
    lines = textwrap.dedent(text).lstrip("\n").splitlines()
    return next(i + 1 for i, line in enumerate(lines) if needle in line)


def scores_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "value_tier": ["top", "top", "high", "medium", "low", "low", None],
            "p_alive": [0.9, 0.3, 0.5, 0.3, 0.1, 0.1, np.nan],
            "historic_clv": [1000.0, 900.0, 500.0, 200.0, 800.0, 10.0, 50.0],
            "predicted_clv": [800.0, 300.0, 250.0, 60.0, 5.0, 1.0, 0.0],
            "region": ["north", "south", "north", None, "south", "north", "west"],
        },
        index=pd.Index(["a", "b", "c", "d", "e", "f", "g"], name="customer_id"),
    )
    frame.attrs["lifevalue"] = {"as_of": dt.date(2025, 1, 1), "horizon_months": 12}
    return frame


HAND_POLICY = """
[policy]
name = "hand"
max_offers_per_customer = 2

[[offer]]
name = "payment_plan"
action = "0% over 6 months"
priority = 30
when = [
  { field = "value_tier", op = "in", value = ["top", "high"] },
  { field = "p_alive", op = "<", value = 0.6 },
]

[[offer]]
name = "north_gift"
action = "Free gift"
priority = 20
when = [{ field = "region", op = "==", value = "north" }]

[[offer]]
name = "vip"
action = "VIP support"
priority = 10
when = [
  { field = "value_tier", op = "==", value = "top" },
]
"""


# --------------------------------------------------------------------------- evaluation


def test_hand_built_scores_get_the_known_offers() -> None:
    result = policy(HAND_POLICY).evaluate(scores_frame())
    assert list(result.columns) == list(OFFER_COLUMNS)
    got = {
        cid: list(group["offer"].dropna())
        for cid, group in result.groupby("customer_id", sort=False)
    }
    assert got == {
        "a": ["north_gift", "vip"],
        "b": ["payment_plan", "vip"],
        "c": ["payment_plan", "north_gift"],
        "d": [],
        "e": [],
        "f": ["north_gift"],
        "g": [],
    }
    assert result["customer_id"].tolist() == list("aabbccdefg")
    b = result[result["customer_id"] == "b"]
    assert b["rank"].tolist() == [1, 2]
    assert b["priority"].tolist() == [30, 10]
    assert b["rule"].iloc[0] == 'value_tier in ["top", "high"] and p_alive < 0.6'
    assert b["action"].iloc[0] == "0% over 6 months"
    none = result[result["offer"].isna()]
    assert none["rank"].isna().all() and none["rule"].isna().all()


def test_cap_keeps_highest_priority_and_per_customer_view() -> None:
    text = HAND_POLICY.replace("max_offers_per_customer = 2", "exclusive = true")
    out = policy(text).evaluate(scores_frame(), per_customer=True)
    assert out.index.tolist() == list("abcdefg")
    assert out.index.name == "customer_id"
    assert out["offers"].tolist() == [
        "north_gift",
        "payment_plan",
        "payment_plan",
        "",
        "",
        "north_gift",
        "",
    ]
    assert out["n_offers"].tolist() == [1, 1, 1, 0, 0, 1, 0]
    assert out["n_qualified"].tolist() == [2, 2, 2, 0, 0, 1, 0]
    assert out.loc["b", "rules"] == 'payment_plan: value_tier in ["top", "high"] and p_alive < 0.6'


def test_no_cap_grants_every_qualifying_offer_in_priority_order() -> None:
    text = HAND_POLICY.replace("max_offers_per_customer = 2", "")
    out = policy(text).evaluate(scores_frame(), per_customer=True)
    assert out.loc["a", "offers"] == "north_gift; vip"
    assert out.loc["a", "actions"] == "Free gift; VIP support"
    assert out.loc["b", "offers"] == "payment_plan; vip"


FIELDS_FRAME = pd.DataFrame(
    {
        "x": [1.0, 2.0, 3.0, np.nan],
        "tier": pd.Categorical(["top", "mid", None, "low"]),
        "when": pd.to_datetime(["2024-01-01", "2024-06-01", None, "2025-01-01"]),
        "month": pd.PeriodIndex(["2024-01", "2024-02", "2024-03", None], freq="M"),
    },
    index=pd.Index([10, 11, 12, 13], name="customer_id"),
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('{ field = "x", op = "==", value = 2 }', [11]),
        ('{ field = "x", op = "!=", value = 2 }', [10, 12]),  # missing never qualifies
        ('{ field = "x", op = "<", value = 2 }', [10]),
        ('{ field = "x", op = "<=", value = 2 }', [10, 11]),
        ('{ field = "x", op = ">", value = 2 }', [12]),
        ('{ field = "x", op = ">=", value = 2 }', [11, 12]),
        ('{ field = "x", op = "between", value = [1.5, 3] }', [11, 12]),
        ('{ field = "x", op = "is_missing" }', [13]),
        ('{ field = "x", op = "is_missing", value = false }', [10, 11, 12]),
        ('{ field = "x", op = ">=", quantile = 0.5 }', [11, 12]),
        ('{ field = "x", op = "between", quantile = [0, 0.5] }', [10, 11]),
        ('{ field = "tier", op = "in", value = ["top", "low"] }', [10, 13]),
        ('{ field = "tier", op = "not in", value = ["top"] }', [11, 13]),
        ('{ field = "tier", op = "!=", value = "top" }', [11, 13]),
        ('{ field = "when", op = ">=", value = 2024-06-01 }', [11, 13]),
        ('{ field = "when", op = "<", value = "2024-06-01" }', [10]),
        ('{ field = "month", op = "==", value = "2024-02" }', [11]),
        ('{ field = "month", op = "in", value = ["2024-01", "2024-03"] }', [10, 12]),
    ],
)
def test_each_operator(condition: str, expected: list[int]) -> None:
    text = f"""
    [[offer]]
    name = "o"
    action = "a"
    priority = 1
    when = [{condition}]
    """
    frame = FIELDS_FRAME.copy()
    result = policy(text).evaluate(frame)
    assert result.loc[result["offer"].notna(), "customer_id"].tolist() == expected
    pd.testing.assert_frame_equal(frame, FIELDS_FRAME)  # not mutated


def test_quantile_rule_text_shows_the_resolved_threshold() -> None:
    text = """
    [[offer]]
    name = "o"
    action = "a"
    priority = 1
    when = [{ field = "x", op = ">=", quantile = 0.5 }]
    """
    p = policy(text)
    assert p.offers[0].rule == "x >= 50th percentile"
    result = p.evaluate(FIELDS_FRAME)
    assert result["rule"].dropna().unique().tolist() == ["x >= 50th percentile (2)"]


def test_empty_when_grants_every_customer_and_offer_counts_add_up() -> None:
    text = """
    [[offer]]
    name = "all"
    action = "Newsletter"
    priority = 1
    when = []

    [[offer]]
    name = "big"
    action = "Gift"
    priority = 2
    when = [{ field = "x", op = ">", value = 1.5 }]
    """
    result = policy(text).evaluate(FIELDS_FRAME)
    assert result["rule"][result["offer"] == "all"].unique().tolist() == ["every customer"]
    counts = offer_counts(result)
    assert counts.loc["all", "customers"] == 4
    assert counts.loc["big", "customers"] == 2
    assert counts.loc["all", "share"] == 1.0


def test_unknown_tier_label_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    text = """
    [[offer]]
    name = "o"
    action = "a"
    priority = 1
    when = [{ field = "tier", op = "in", value = ["gold"] }]
    """
    with caplog.at_level(logging.WARNING, logger="lifevalue.value.offers"):
        policy(text).evaluate(FIELDS_FRAME)
    assert "'gold'" in caplog.text and "tier" in caplog.text


def test_default_policy_on_a_small_frame() -> None:
    frame = pd.DataFrame(
        {
            "value_tier": ["top", "top", "high", "medium", "low", "low", "medium", "top"],
            "p_alive": [0.9, 0.3, 0.5, 0.3, 0.1, 0.1, 0.8, 0.55],
            "historic_clv": [100.0, 90.0, 50.0, 20.0, 95.0, 1.0, 2.0, 3.0],
        },
        index=pd.Index(list("abcdefgh"), name="customer_id"),
    )
    p = OfferPolicy.default()
    assert p.max_offers_per_customer == 2
    out = p.evaluate(frame, per_customer=True)
    assert out["offers"].to_dict() == {
        "a": "vip_support",
        "b": "flexible_payment_plan",  # top but p_alive 0.3 < 0.5: no VIP line
        "c": "flexible_payment_plan",
        "d": "retention_discount",
        "e": "win_back",  # lapsed, historic 95 is in the top 20%
        "f": "",  # lapsed with little history
        "g": "",  # medium tier, still active
        "h": "flexible_payment_plan; vip_support",
    }


def test_default_policy_file_documents_its_rules() -> None:
    p = OfferPolicy.default()
    table = p.to_frame()
    assert table["offer"].tolist() == [
        "flexible_payment_plan",
        "win_back",
        "retention_discount",
        "vip_support",
    ]
    assert table["line"].notna().all()
    assert (table["description"].str.len() > 0).all()


def test_simulated_customers_get_offers_exactly_when_the_truth_says() -> None:
    business = simulate_business(n_customers=400, seed=3)
    cust = business.customers.set_index("customer_id")
    frame = pd.DataFrame(
        {
            "p_alive": cust["alive_at_end"].astype(float),
            "region": cust["region"],
            "predicted_clv": np.where(cust["alive_at_end"], cust["lam"] * cust["mean_spend"], 0.0),
        }
    )
    text = """
    [[offer]]
    name = "west_keep"
    action = "Regional loyalty bonus"
    priority = 1
    when = [
      { field = "region", op = "==", value = "west" },
      { field = "p_alive", op = ">=", value = 0.5 },
    ]
    """
    out = policy(text).evaluate(frame, per_customer=True)
    expected = (cust["region"] == "west") & cust["alive_at_end"]
    assert expected.sum() > 10
    assert ((out["offers"] == "west_keep") == expected).all()
    assert len(out) == len(cust)


def test_duplicate_customer_ids_are_rejected() -> None:
    frame = scores_frame()
    frame.index = pd.Index(list("aabcdef"), name="customer_id")
    with pytest.raises(DataValidationError, match="more than once"):
        policy(HAND_POLICY).evaluate(frame)


# --------------------------------------------------------------------------- files


def test_from_path_and_string_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(textwrap.dedent(HAND_POLICY))
    assert len(OfferPolicy.from_toml(path).offers) == 3
    assert OfferPolicy.from_toml(str(path)).source == str(path)
    with pytest.raises(InputError, match="Cannot read the offer policy file"):
        OfferPolicy.from_toml(tmp_path / "missing.toml")


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[offer]]\nname = "x"\naction = "a"\npriority = 1\n'
        'when = [{ field = "p", op = "=>", value = 1 }]\n'
    )
    with pytest.raises(PolicyError) as info:
        OfferPolicy.from_toml(path)
    assert str(path) in str(info.value)
    assert "line 5, offer 'x'" in str(info.value)
    assert isinstance(info.value, InputError)


# --------------------------------------------------------------------------- errors with lines


BAD_CASES = {
    "unknown operator": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [
          { field = "p_alive", op = ">=", value = 0.5 },
          { field = "p_alive", op = "=>", value = 0.5 },
        ]
        """,
        'op = "=>"',
        "unknown operator '=>' on field 'p_alive' (did you mean '>='?)",
    ),
    "list for a comparison": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [{ field = "p_alive", op = "<", value = [1, 2] }]
        """,
        "value = [1, 2]",
        "operator '<' on field 'p_alive' needs a number, a date or a text",
    ),
    "scalar for in": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [{ field = "value_tier", op = "in", value = "top" }]
        """,
        'value = "top"',
        "operator 'in' on field 'value_tier' needs a non-empty list",
    ),
    "between not a pair": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [{ field = "p_alive", op = "between", value = [0.5] }]
        """,
        "between",
        "needs 'value = [low, high]'",
    ),
    "between reversed": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [{ field = "p_alive", op = "between", value = [0.9, 0.1] }]
        """,
        "between",
        "needs low <= high",
    ),
    "missing value": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [{ field = "p_alive", op = ">=" }]
        """,
        "field =",
        "needs a 'value'",
    ),
    "bad quantile": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [{ field = "p_alive", op = ">=", quantile = 80 }]
        """,
        "quantile",
        "must be between 0 and 1. Got 80 instead",
    ),
    "duplicate name": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [{ field = "value_tier", op = "==", value = "top" }]

        [[offer]] # second
        name = "vip"
        action = "VIP again"
        priority = 2
        when = [{ field = "value_tier", op = "==", value = "high" }]
        """,
        "# second",
        "duplicate offer name 'vip' (first defined at line 1)",
    ),
    "overlapping priorities": (
        """
        [[offer]]
        name = "plan"
        action = "Plan"
        priority = 5
        when = [{ field = "value_tier", op = "in", value = ["top", "high"] }]

        [[offer]] # second
        name = "vip"
        action = "VIP"
        priority = 5
        when = [
          { field = "value_tier", op = "==", value = "top" },
          { field = "p_alive", op = ">", value = 0.5 },
        ]
        """,
        "# second",
        "offers 'plan' (line 1) and 'vip' have the same priority 5",
    ),
    "unknown offer key": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        prority = 1
        when = []
        """,
        "[[offer]]",
        "unknown key 'prority' (did you mean 'priority'?)",
    ),
    "missing when": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        """,
        "[[offer]]",
        "'when' is missing",
    ),
    "priority not an integer": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = "high"
        when = []
        """,
        "[[offer]]",
        "'priority' must be an integer",
    ),
    "never holds": (
        """
        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [
          { field = "p_alive", op = ">", value = 0.8 },
          { field = "p_alive", op = "<", value = 0.2 },
        ]
        """,
        "[[offer]]",
        "the conditions can never all hold",
    ),
    "bad cap": (
        """
        [policy]
        max_offers_per_customer = 0

        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = []
        """,
        "[policy]",
        "The 'max_offers_per_customer' setting of the offer policy must be an integer >= 1. "
        "Got 0 instead.",
    ),
    "exclusive with a cap of two": (
        """
        [policy]
        exclusive = true
        max_offers_per_customer = 2

        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = []
        """,
        "[policy]",
        "'exclusive = true' means one offer per customer",
    ),
    "unknown policy key": (
        """
        [policy]
        max_offers = 2

        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = []
        """,
        "max_offers",
        "unknown key 'max_offers' in [policy]",
    ),
    "declared fields": (
        """
        [policy]
        fields = ["value_tier", "p_alive"]

        [[offer]]
        name = "vip"
        action = "VIP"
        priority = 1
        when = [
          { field = "value_tier", op = "==", value = "top" },
          { field = "p_alive", op = ">", value = 0.5 },
          { field = "p_alve", op = ">", value = 0.5 },
        ]
        """,
        "p_alve",
        "unknown field 'p_alve' (did you mean 'p_alive'?)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_policy_names_offer_and_line(case: str) -> None:
    text, needle, message = BAD_CASES[case]
    with pytest.raises(PolicyError) as info:
        policy(text)
    err = info.value
    assert len(err.problems) == 1, err.problems
    problem = err.problems[0]
    assert problem.line == line_of(text, needle)
    assert message in problem.message
    assert f"line {problem.line}" in str(err)
    if problem.offer is not None:
        assert f"offer '{problem.offer}'" in str(err)


def test_declared_fields_argument_and_array_of_tables_lines() -> None:
    text = """
    [[offer]]
    name = "vip"
    action = "VIP"
    priority = 1

    [[offer.when]]
    field = "value_tier"
    op = "=="
    value = "top"

    [[offer.when]]
    field = "segmnt"
    op = "=="
    value = "champions"
    """
    with pytest.raises(PolicyError) as info:
        policy(text, fields=["value_tier", "segment"])
    (problem,) = info.value.problems
    assert problem.line == line_of(text, '"segmnt"')
    assert "did you mean 'segment'?" in problem.message


def test_every_problem_is_reported_at_once() -> None:
    text = """
    [[offer]]
    name = "a"
    action = "A"
    priority = 1
    when = [{ field = "x", op = "~", value = 1 }]

    [[offer]]
    name = "b"
    action = "B"
    priority = 2
    when = [{ field = "x", op = "in", value = [] }]
    """
    with pytest.raises(PolicyError) as info:
        policy(text)
    assert [p.line for p in info.value.problems] == [5, 11]
    assert "2 problems" in str(info.value)


def test_same_priority_is_fine_when_conditions_are_disjoint() -> None:
    text = """
    [[offer]]
    name = "top_plan"
    action = "Plan"
    priority = 5
    when = [{ field = "value_tier", op = "in", value = ["top", "high"] }]

    [[offer]]
    name = "low_risk"
    action = "Discount"
    priority = 5
    when = [{ field = "value_tier", op = "not in", value = ["top", "high"] }]

    [[offer]]
    name = "lapsed"
    action = "Win back"
    priority = 7
    when = [{ field = "p_alive", op = "<", value = 0.2 }]

    [[offer]]
    name = "active"
    action = "Thanks"
    priority = 7
    when = [{ field = "p_alive", op = "between", value = [0.2, 1] }]

    [[offer]]
    name = "unknown"
    action = "Survey"
    priority = 7
    when = [{ field = "p_alive", op = "is_missing" }]
    """
    p = policy(text)
    out = p.evaluate(scores_frame(), per_customer=True)
    assert out.loc["g", "offers"] == "unknown"  # a missing tier is not "not in" anything
    assert out.loc["e", "offers"] == "lapsed; low_risk"


def test_unknown_field_at_evaluation_names_line() -> None:
    text = """
    [[offer]]
    name = "vip"
    action = "VIP"
    priority = 1
    when = [
      { field = "value_tier", op = "==", value = "top" },
      { field = "segment", op = "==", value = "champions" },
    ]
    """
    with pytest.raises(PolicyError) as info:
        policy(text).evaluate(scores_frame())
    (problem,) = info.value.problems
    assert problem.line == line_of(text, '"segment"')
    assert "field 'segment' is not a column of the scores table" in problem.message


def test_incomparable_column_names_line() -> None:
    text = """
    [[offer]]
    name = "o"
    action = "a"
    priority = 1
    when = [{ field = "region", op = ">", value = 3 }]
    """
    with pytest.raises(PolicyError, match=r"line 5, offer 'o': cannot apply 'region > 3'"):
        policy(text).evaluate(scores_frame())


def test_malformed_toml() -> None:
    with pytest.raises(PolicyError, match=r"not valid TOML: .*line 2"):
        OfferPolicy.from_toml('[[offer]]\nname = "x\n')


def test_constructor_validates_too() -> None:
    a = Offer("a", "A", 1, (Condition("x", ">", 1),))
    b = Offer("b", "B", 1, (Condition("x", "<", 5),))
    with pytest.raises(PolicyError, match="same priority 1"):
        OfferPolicy([a, b])
    with pytest.raises(PolicyError, match="must be an integer >= 1"):
        OfferPolicy([a], max_offers_per_customer=0)


# --------------------------------------------------------------------------- properties

TIERS = ["top", "high", "medium", "low"]
conditions = st.one_of(
    st.builds(
        lambda op, v: {"field": "p", "op": op, "value": v},
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
    ),
    st.builds(
        lambda op, v: {"field": "tier", "op": op, "value": v},
        st.sampled_from(["in", "not in"]),
        st.lists(st.sampled_from(TIERS), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda lo, w: {"field": "p", "op": "between", "value": [lo, lo + w]},
        st.sampled_from([0.0, 0.25, 0.5]),
        st.sampled_from([0.0, 0.25, 0.5]),
    ),
    st.builds(
        lambda v: {"field": "tier", "op": "is_missing", "value": v},
        st.booleans(),
    ),
)


def holds(row: pd.Series, c: dict[str, object]) -> bool:
    """Reference: one condition on one customer, written out plainly."""
    x = row[c["field"]]
    if c["op"] == "is_missing":
        return pd.isna(x) == c["value"]
    if pd.isna(x):
        return False
    v = c["value"]
    return {
        "==": lambda: x == v,
        "!=": lambda: x != v,
        "<": lambda: x < v,
        "<=": lambda: x <= v,
        ">": lambda: x > v,
        ">=": lambda: x >= v,
        "in": lambda: x in v,
        "not in": lambda: x not in v,
        "between": lambda: v[0] <= x <= v[1],
    }[c["op"]]()


@settings(max_examples=60, deadline=None)
@given(
    offers=st.lists(st.lists(conditions, max_size=3), min_size=1, max_size=4),
    rows=st.lists(
        st.tuples(
            st.sampled_from([np.nan, 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]),
            st.sampled_from([*TIERS, None]),
        ),
        min_size=1,
        max_size=25,
    ),
    cap=st.sampled_from([None, 1, 2]),
)
def test_property_every_customer_appears_and_offers_only_when_all_conditions_hold(
    offers: list[list[dict[str, object]]], rows: list[tuple[float, str | None]], cap: int | None
) -> None:
    built = [
        Offer(
            f"o{i}",
            f"action {i}",
            i,  # distinct priorities: never an overlap error
            tuple(Condition(c["field"], c["op"], c["value"]) for c in conds),
        )
        for i, conds in enumerate(offers)
    ]
    try:
        p = OfferPolicy(built, max_offers_per_customer=cap)
    except PolicyError as exc:  # only impossible conditions may be rejected
        assert all("never all hold" in pr.message for pr in exc.problems)
        return
    frame = pd.DataFrame(
        {"p": [r[0] for r in rows], "tier": [r[1] for r in rows]},
        index=pd.Index([f"c{i}" for i in range(len(rows))], name="customer_id"),
    )
    result = p.evaluate(frame)
    assert result["customer_id"].drop_duplicates().tolist() == frame.index.tolist()
    granted = result.dropna(subset=["offer"])
    lookup = {f"o{i}": conds for i, conds in enumerate(offers)}
    for cid, name in zip(granted["customer_id"], granted["offer"], strict=True):
        assert all(holds(frame.loc[cid], c) for c in lookup[name])
    qualified = {
        (cid, f"o{i}")
        for cid, row in frame.iterrows()
        for i, conds in enumerate(offers)
        if all(holds(row, c) for c in conds)
    }
    pairs = set(zip(granted["customer_id"], granted["offer"], strict=True))
    assert pairs <= qualified
    per = granted.groupby("customer_id")["offer"].size()
    n_qualified = pd.Series([cid for cid, _ in qualified]).value_counts()
    for cid in frame.index:
        expect = n_qualified.get(cid, 0) if cap is None else min(cap, n_qualified.get(cid, 0))
        assert per.get(cid, 0) == expect
    # the granted ones are the highest priorities among those that qualified
    for cid, group in granted.groupby("customer_id"):
        best = sorted((int(n[1:]) for c, n in qualified if c == cid), reverse=True)
        assert group["priority"].tolist() == best[: len(group)]
        assert group["rank"].tolist() == list(range(1, len(group) + 1))


GRID = pd.DataFrame(
    [
        (p, t)
        for p in [np.nan, 0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.6, 0.75, 0.9, 1.0]
        for t in [*TIERS, None]
    ],
    columns=["p", "tier"],
)
GRID.index = pd.Index([f"g{i}" for i in range(len(GRID))], name="customer_id")


@settings(max_examples=80, deadline=None)
@given(
    first=st.lists(conditions, min_size=1, max_size=3),
    second=st.lists(conditions, min_size=1, max_size=3),
)
def test_property_policies_accepted_at_equal_priority_never_overlap(
    first: list[dict[str, object]], second: list[dict[str, object]]
) -> None:
    def offer(name: str, conds: list[dict[str, object]]) -> Offer:
        return Offer(
            name, name, 1, tuple(Condition(c["field"], c["op"], c["value"]) for c in conds)
        )

    def anyone(conds: list[dict[str, object]]) -> bool:
        return any(all(holds(row, c) for c in conds) for _, row in GRID.iterrows())

    try:
        p = OfferPolicy([offer("a", first), offer("b", second)])
    except PolicyError as exc:
        for problem in exc.problems:
            if "never all hold" in problem.message:  # must really be impossible
                assert not anyone(first if problem.offer == "a" else second)
        return
    # accepted: the two offers were proved disjoint, so nobody qualifies for both
    assert not anyone(first + second)
    assert (p.evaluate(GRID, per_customer=True)["n_qualified"] <= 1).all()
