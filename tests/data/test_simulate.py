"""Tests of the retail-business simulator: exactness of the purchasing process, the business
around it, the Parquet writer and argument checks."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import betaln, gammaln, hyp2f1

from lifevalue.data.simulate import (
    CATEGORIES,
    DEFAULT_CHANNELS,
    HOUR_PROFILE,
    REPEAT_CHANNELS,
    WEEKDAY_PROFILE,
    Channel,
    SimulatedBusiness,
    simulate_business,
    simulate_summary,
    simulate_to_parquet,
)
from lifevalue.errors import InputError

BG = {"r": 0.6, "alpha": 6.0, "a": 0.8, "b": 3.0}
PARETO = {"r": 0.8, "alpha": 5.0, "s": 1.5, "beta": 20.0}
SPEND = {"p": 6.0, "q": 4.0, "gamma": 40.0}
NEUTRAL = [Channel("all", 1.0)]
DAY = pd.Timedelta(days=1)


# ----------------------------------------------------------------------------- closed forms


def bgnbd_expected(t: float, r: float, alpha: float, a: float, b: float) -> float:
    """E[X(t)] of the BG/NBD (Fader, Hardie & Lee 2005, eq. 9)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def bgnbd_pmf(x: int, t: float, r: float, alpha: float, a: float, b: float) -> float:
    """P(X(t) = x) of the BG/NBD (Fader, Hardie & Lee 2005, eq. 8)."""
    lt = r * np.log(alpha / (alpha + t))
    lz = np.log(t / (alpha + t))
    first = betaln(a, b + x) - betaln(a, b) + gammaln(r + x) - gammaln(r) - gammaln(x + 1)
    out = np.exp(first + lt + x * lz)
    if x > 0:
        j = np.arange(x)
        tail = np.exp(gammaln(r + j) - gammaln(r) - gammaln(j + 1) + j * lz).sum()
        out += np.exp(betaln(a + 1, b + x - 1) - betaln(a, b)) * (1 - np.exp(lt) * tail)
    return float(out)


def pareto_expected(t: float, r: float, alpha: float, s: float, beta: float) -> float:
    """E[X(t)] of the Pareto/NBD (Schmittlein, Morrison & Colombo 1987), s > 1."""
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def pareto_p0(t: float, r: float, alpha: float, s: float, beta: float) -> float:
    """P(X(t) = 0) of the Pareto/NBD: no purchase while alive within (0, t]."""

    def density(y: float) -> float:  # lifetime y < t, then no purchase in (0, y]
        return (alpha / (alpha + y)) ** r * s * beta**s / (beta + y) ** (s + 1)

    alive = (alpha / (alpha + t)) ** r * (beta / (beta + t)) ** s
    return alive + integrate.quad(density, 0.0, t)[0]


def within(observed: float, expected: float, se: float, z: float = 4.0) -> bool:
    return abs(observed - expected) <= z * se


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def business() -> SimulatedBusiness:
    return simulate_business(n_customers=20_000, seed=11)


@pytest.fixture(scope="module")
def exact_bgnbd() -> SimulatedBusiness:
    return simulate_business(
        n_customers=50_000,
        params=BG,
        channels=NEUTRAL,
        seasonality=0.0,
        timing=False,
        return_rate=0.0,
        seed=5,
    )


def repeats_within(sim: SimulatedBusiness, weeks: float) -> tuple[pd.DataFrame, pd.Series]:
    """Per eligible customer: repeat-purchase times (weeks) within ``weeks`` of acquisition."""
    cu = sim.customers.set_index("customer_id")
    end = pd.Timestamp(sim.truth["end"])
    eligible = cu.index[cu["acquired_at"] <= end - pd.Timedelta(weeks=weeks)]
    orders = sim.transactions[sim.transactions["amount"] > 0]
    orders = orders[orders["customer_id"].isin(eligible)]
    acquired = cu.loc[orders["customer_id"], "acquired_at"].to_numpy()
    kept = orders.assign(since=(orders["timestamp"].to_numpy() - acquired) / (7 * DAY))
    kept = kept[(kept["since"] > 0) & (kept["since"] <= weeks)]
    counts = kept.groupby("customer_id").size()
    return kept, pd.Series(0, index=eligible).add(counts, fill_value=0)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_tables_and_another_seed_does_not() -> None:
    one = simulate_business(n_customers=1500, seed=3)
    two = simulate_business(n_customers=1500, seed=3)
    other = simulate_business(n_customers=1500, seed=4)
    pd.testing.assert_frame_equal(one.transactions, two.transactions)
    pd.testing.assert_frame_equal(one.customers, two.customers)
    pd.testing.assert_frame_equal(one.spend, two.spend)
    assert one.truth == two.truth
    assert not one.transactions.equals(other.transactions)
    assert not np.array_equal(one.customers["lam"], other.customers["lam"])


def test_summary_same_seed_identical_other_seed_different() -> None:
    one = simulate_summary(n_customers=5000, seed=1, spend_params=SPEND)
    pd.testing.assert_frame_equal(
        one, simulate_summary(n_customers=5000, seed=1, spend_params=SPEND)
    )
    assert not one.equals(simulate_summary(n_customers=5000, seed=2, spend_params=SPEND))


# ----------------------------------------------------------------------------- the model, exactly


def test_summary_bgnbd_matches_expected_purchases_and_pmf() -> None:
    t = 30.0
    s = simulate_summary(n_customers=200_000, params=BG, T=t, seed=1)
    x = s["frequency"].to_numpy()
    assert within(x.mean(), bgnbd_expected(t, **BG), x.std() / np.sqrt(x.size))
    for k in (0, 1, 2):
        p = bgnbd_pmf(k, t, **BG)
        assert within(np.mean(x == k), p, np.sqrt(p * (1 - p) / x.size))
    assert np.all(s["recency"] <= s["T"]) and np.all(s.loc[x == 0, "recency"] == 0)
    # Alive iff the customer has not dropped out: a customer without repeats is alive.
    assert s.loc[x == 0, "alive"].all()


def test_summary_pareto_matches_expected_purchases_and_zero_share() -> None:
    t = 40.0
    s = simulate_summary(n_customers=200_000, model="pareto_nbd", params=PARETO, T=t, seed=2)
    x = s["frequency"].to_numpy()
    assert within(x.mean(), pareto_expected(t, **PARETO), x.std() / np.sqrt(x.size))
    p0 = pareto_p0(t, **PARETO)
    assert within(np.mean(x == 0), p0, np.sqrt(p0 * (1 - p0) / x.size))
    assert "mu" in s and "p" not in s


def test_summary_monetary_value_mean_matches_gamma_gamma() -> None:
    s = simulate_summary(n_customers=200_000, params=BG, T=52.0, seed=3, spend_params=SPEND)
    m = s.loc[s["frequency"] > 0, "monetary_value"].to_numpy()
    expected = SPEND["p"] * SPEND["gamma"] / (SPEND["q"] - 1)
    assert within(m.mean(), expected, m.std() / np.sqrt(m.size))
    assert (s.loc[s["frequency"] == 0, "monetary_value"] == 0).all()
    # The latent truth gives each customer's mean: E[monetary | nu] = p / nu.
    heavy = s[s["frequency"] >= 20]
    ratio = heavy["monetary_value"] / (SPEND["p"] / heavy["nu"])
    assert abs(ratio.mean() - 1) < 0.02


def test_summary_T_forms() -> None:
    ranged = simulate_summary(n_customers=1000, T=(10.0, 20.0), seed=0)
    assert ranged["T"].between(10, 20).all() and ranged["T"].nunique() > 900
    given_t = np.linspace(1, 50, 1000)
    np.testing.assert_array_equal(simulate_summary(n_customers=1000, T=given_t)["T"], given_t)
    s = simulate_summary(n_customers=10, T=5.0, unit="days")
    assert (s["T"] == 5.0).all() and s.attrs["unit"] == "days"
    assert s.attrs["params"]["alpha"] == pytest.approx(6.0 * 7)


@settings(max_examples=25, deadline=None)
@given(
    r=st.floats(0.1, 3),
    alpha=st.floats(0.5, 50),
    a=st.floats(0.2, 5),
    b=st.floats(0.2, 5),
    pareto=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_summary_is_always_a_valid_summary(
    r: float, alpha: float, a: float, b: float, pareto: bool, seed: int
) -> None:
    model = "pareto_nbd" if pareto else "bgnbd"
    params = (
        {"r": r, "alpha": alpha, "s": a, "beta": b}
        if pareto
        else {"r": r, "alpha": alpha, "a": a, "b": b}
    )
    s = simulate_summary(n_customers=300, model=model, params=params, seed=seed, T=(0.0, 60.0))
    assert (s["frequency"] >= 0).all()
    assert ((s["recency"] >= 0) & (s["recency"] <= s["T"])).all()
    assert (s.loc[s["frequency"] == 0, "recency"] == 0).all()


def test_transactions_follow_bgnbd_exactly(exact_bgnbd: SimulatedBusiness) -> None:
    weeks = 26.0
    kept, x = repeats_within(exact_bgnbd, weeks)
    assert within(x.mean(), bgnbd_expected(weeks, **BG), x.std() / np.sqrt(x.size))
    for k in (0, 1):
        p = bgnbd_pmf(k, weeks, **BG)
        assert within(np.mean(x == k), p, np.sqrt(p * (1 - p) / x.size))
    # The order statistics agree with the independent Beta draw of simulate_summary: the
    # last repeat's position within the window, among customers with repeats.
    last = kept.groupby("customer_id")["since"].max() / weeks
    s = simulate_summary(n_customers=200_000, params=BG, T=weeks, seed=9)
    ref = s.loc[s["frequency"] > 0, "recency"] / weeks
    se = np.sqrt(last.var() / last.size + ref.var() / ref.size)
    assert within(last.mean(), ref.mean(), se)


def test_transactions_follow_pareto_exactly() -> None:
    sim = simulate_business(
        n_customers=40_000,
        model="pareto_nbd",
        params=PARETO,
        channels=NEUTRAL,
        seasonality=0.0,
        timing=False,
        return_rate=0.0,
        seed=6,
    )
    weeks = 30.0
    _, x = repeats_within(sim, weeks)
    assert within(x.mean(), pareto_expected(weeks, **PARETO), x.std() / np.sqrt(x.size))
    p0 = pareto_p0(weeks, **PARETO)
    assert within(np.mean(x == 0), p0, np.sqrt(p0 * (1 - p0) / x.size))
    cu = sim.customers
    assert {"mu", "lam", "nu"} <= set(cu.columns) and "p" not in cu
    dead = cu[~cu["alive_at_end"]]
    assert (
        dead["dropout_at"].notna().all() and cu.loc[cu["alive_at_end"], "dropout_at"].isna().all()
    )
    assert (dead["dropout_at"] >= dead["acquired_at"]).all()


def test_bgnbd_dropout_is_at_the_last_purchase(exact_bgnbd: SimulatedBusiness) -> None:
    cu = exact_bgnbd.customers.set_index("customer_id")
    last = exact_bgnbd.transactions.groupby("customer_id")["timestamp"].max()
    dead = cu[~cu["alive_at_end"]]
    assert (dead["dropout_at"] == last.loc[dead.index]).all()
    assert cu.loc[cu["alive_at_end"], "dropout_at"].isna().all()
    # Nobody drops out at the first purchase.
    orders = exact_bgnbd.transactions.groupby("customer_id").size()
    assert (orders.loc[dead.index] >= 2).all()


def test_unit_changes_the_scale_not_the_process() -> None:
    weeks = simulate_business(n_customers=3000, seed=8)
    days = simulate_business(n_customers=3000, seed=8, unit="days")
    assert days.truth["params"]["alpha"] == pytest.approx(weeks.truth["params"]["alpha"] * 7)
    np.testing.assert_allclose(days.customers["lam"] * 7, weeks.customers["lam"], rtol=1e-12)
    assert abs(len(days.transactions) / len(weeks.transactions) - 1) < 0.005


# ----------------------------------------------------------------------------- the business


def test_tables_have_the_documented_shape(business: SimulatedBusiness) -> None:
    tx, cu, sp = business.transactions, business.customers, business.spend
    assert list(tx.columns) == [
        "order_id",
        "customer_id",
        "timestamp",
        "amount",
        "quantity",
        "cost",
        "channel",
        "campaign",
        "category",
        "currency",
    ]
    assert tx["timestamp"].dtype == "datetime64[us]"
    assert tx["order_id"].dtype == np.int64 and tx["customer_id"].dtype == np.int64
    assert tx["timestamp"].is_monotonic_increasing
    assert (tx["amount"] != 0).all() and (np.round(tx["amount"], 2) == tx["amount"]).all()
    assert set(tx["currency"]) == {"USD"} and set(tx["category"]) <= set(CATEGORIES)
    assert len(cu) == 20_000 and cu["customer_id"].is_unique
    assert cu["acquired_at"].is_monotonic_increasing
    np.testing.assert_array_equal(cu["customer_id"], np.arange(1, 20_001))
    assert set(cu["age_band"]) == {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    assert {"lam", "p", "nu", "mean_spend", "alive_at_end", "dropout_at"} <= set(cu.columns)
    assert list(sp.columns) == ["date", "channel", "campaign", "spend"]
    json.dumps(business.truth)  # JSON-ready


def test_nothing_outside_the_period(business: SimulatedBusiness) -> None:
    tx = business.transactions
    assert tx["timestamp"].min() >= pd.Timestamp("2023-01-01")
    assert tx["timestamp"].max() < pd.Timestamp("2025-01-01")
    sp = business.spend
    assert sp["date"].min() == pd.Timestamp("2023-01-01")
    assert sp["date"].max() == pd.Timestamp("2024-12-31")


def test_orders_and_their_first_order(business: SimulatedBusiness) -> None:
    tx, cu = business.transactions, business.customers.set_index("customer_id")
    orders = tx[tx["amount"] > 0]
    assert orders["order_id"].is_unique and orders["order_id"].is_monotonic_increasing
    assert (orders["quantity"] >= 1).all() and (orders["cost"] > 0).all()
    first = orders.groupby("customer_id").head(1).set_index("customer_id")
    assert (first["timestamp"] == cu.loc[first.index, "acquired_at"]).all()
    assert (
        first["channel"].astype(str) == cu.loc[first.index, "acquisition_channel"].astype(str)
    ).all()
    same = first["campaign"].astype(object).fillna("") == cu.loc[
        first.index, "acquisition_campaign"
    ].astype(object).fillna("")
    assert same.all()
    later = orders[~orders["order_id"].isin(first["order_id"])]
    assert set(later["channel"].astype(str)) == set(REPEAT_CHANNELS)
    assert later["campaign"].isna().all()
    # Larger orders hold more items.
    assert (
        orders.loc[orders["amount"] > 150, "quantity"].mean()
        > orders.loc[orders["amount"] < 40, "quantity"].mean()
    )


def test_cost_follows_category_margins(business: SimulatedBusiness) -> None:
    orders = business.transactions[business.transactions["amount"] > 0]
    sums = orders.groupby("category", observed=True)[["amount", "cost"]].sum()
    margin = 1 - sums["cost"] / sums["amount"]
    for name, (_, rate) in CATEGORIES.items():
        assert margin[name] == pytest.approx(rate, abs=0.01)


def test_amounts_follow_each_customers_mean_spend(business: SimulatedBusiness) -> None:
    orders = business.transactions[business.transactions["amount"] > 0]
    mean_spend = business.customers.set_index("customer_id")["mean_spend"]
    ratio = orders["amount"].sum() / mean_spend.loc[orders["customer_id"]].sum()
    assert ratio == pytest.approx(1.0, abs=0.02)
    effects = business.truth["attribute_effects"]
    cu = business.customers
    by_age = (cu["mean_spend"]).groupby(cu["age_band"], observed=True).mean()
    assert (by_age["45-54"] > by_age["18-24"]) == (
        effects["age_band"]["45-54"] > effects["age_band"]["18-24"]
    )


def test_returns(business: SimulatedBusiness) -> None:
    tx = business.transactions
    returns = tx[tx["amount"] < 0]
    orders = tx[tx["amount"] > 0].set_index("order_id")
    assert returns["order_id"].is_unique  # at most one return per order
    matched = orders.loc[returns["order_id"]]
    keys = ["customer_id", "channel", "campaign", "category", "currency"]
    for key in keys:
        a = returns[key].astype(object).fillna("").to_numpy()
        b = matched[key].astype(object).fillna("").to_numpy()
        assert (a == b).all(), key
    delay = returns["timestamp"].to_numpy() - matched["timestamp"].to_numpy()
    assert (delay >= np.timedelta64(1, "D")).all() and (delay <= np.timedelta64(30, "D")).all()
    assert (-returns["amount"].to_numpy() <= matched["amount"].to_numpy()).all()
    assert (returns["quantity"] < 0).all() and (returns["cost"] <= 0).all()
    # Orders old enough for every return to have happened are returned at the given rate.
    old = orders[orders["timestamp"] < pd.Timestamp("2025-01-01") - 30 * DAY]
    share = old.index.isin(returns["order_id"]).mean()
    assert within(share, 0.05, np.sqrt(0.05 * 0.95 / len(old)))
    # Later returns do not exist yet; late orders are returned less often.
    late = orders[orders["timestamp"] >= pd.Timestamp("2025-01-01") - 10 * DAY]
    assert late.index.isin(returns["order_id"]).mean() < share


def test_weekday_and_hour_profiles(business: SimulatedBusiness) -> None:
    ts = business.transactions.loc[business.transactions["amount"] > 0, "timestamp"]
    weekday = ts.dt.day_of_week.value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(weekday, WEEKDAY_PROFILE, atol=0.015)
    assert weekday[5:].min() > weekday[:5].max()  # weekends are busiest
    hour = ts.dt.hour.value_counts(normalize=True).sort_index().to_numpy()
    profile = np.asarray(HOUR_PROFILE) / sum(HOUR_PROFILE)
    np.testing.assert_allclose(hour, profile, atol=0.01)
    assert hour[18:22].sum() > 2 * hour[6:10].sum()  # evenings are busiest


def test_heavy_customers_keep_their_weekday(business: SimulatedBusiness) -> None:
    orders = business.transactions[business.transactions["amount"] > 0]
    counts = orders.groupby("customer_id").size()
    heavy = orders[orders["customer_id"].isin(counts.index[counts >= 10])]
    modal = heavy.groupby("customer_id")["timestamp"].agg(lambda t: t.dt.day_of_week.mode().iloc[0])
    preferred = business.customers.set_index("customer_id").loc[modal.index, "preferred_weekday"]
    assert len(modal) > 200
    assert (modal == preferred).mean() > 0.85


def test_without_habits_weekdays_follow_the_profile_alone() -> None:
    sim = simulate_business(n_customers=5000, habit_strength=0.0, seed=2)
    orders = sim.transactions[sim.transactions["amount"] > 0]
    counts = orders.groupby("customer_id").size()
    heavy = orders[orders["customer_id"].isin(counts.index[counts >= 10])]
    modal = heavy.groupby("customer_id")["timestamp"].agg(lambda t: t.dt.day_of_week.mode().iloc[0])
    preferred = sim.customers.set_index("customer_id").loc[modal.index, "preferred_weekday"]
    assert (modal == preferred).mean() < 0.5


def test_seasonality_moves_purchases_to_the_season() -> None:
    def season_ratio(amplitude: float) -> float:
        sim = simulate_business(n_customers=20_000, seasonality=amplitude, seed=4)
        month = sim.customers["acquired_at"].dt.month
        return month.isin([11, 12]).mean() / month.isin([5, 6]).mean()

    assert season_ratio(0.5) > 1.8
    assert season_ratio(0.0) == pytest.approx(1.0, abs=0.1)


def test_spend_table_matches_cpa(business: SimulatedBusiness) -> None:
    sp, cu = business.spend, business.customers
    new = cu["acquisition_channel"].astype(str).value_counts()
    spent = sp.groupby(sp["channel"].astype(str))["spend"].sum()
    paid = {c.name: c.cpa for c in DEFAULT_CHANNELS if c.cpa > 0}
    assert set(spent.index) == set(paid)
    for name, cpa in paid.items():
        assert spent[name] / new[name] == pytest.approx(cpa, rel=0.05)
    # Per day: no spend without new customers.
    daily_new = cu.groupby(
        [cu["acquired_at"].dt.normalize(), cu["acquisition_channel"].astype(str)]
    ).size()
    daily = sp.groupby([sp["date"], sp["channel"].astype(str)])["spend"].sum()
    zero = daily[daily == 0].index
    assert not daily_new.index.isin(zero).any()
    campaigns = sp.loc[sp["channel"] == "paid_search", "campaign"].astype(str)
    assert set(campaigns) == {"brand", "generic", "shopping"}


def test_channels_with_higher_value_bring_more_revenue() -> None:
    channels = [
        Channel("low", 0.5, 10.0, ("a",), purchase_rate=0.6, dropout=1.6, spend=0.7),
        Channel("high", 0.5, 10.0, ("b",), purchase_rate=1.6, dropout=0.6, spend=1.4),
    ]
    sim = simulate_business(n_customers=6000, channels=channels, seed=1)
    per_customer = revenue_per_customer(sim)
    assert per_customer["high"] > 2.5 * per_customer["low"]
    # The default set ranks as documented.
    default = revenue_per_customer(simulate_business(n_customers=20_000, seed=12))
    assert default["referral"] > default["social"] and default["email"] > default["affiliate"]


def revenue_per_customer(sim: SimulatedBusiness) -> pd.Series:
    cu = sim.customers.set_index("customer_id")["acquisition_channel"].astype(str)
    revenue = sim.transactions.groupby("customer_id")["amount"].sum()
    return revenue.groupby(cu.loc[revenue.index].to_numpy()).sum() / cu.value_counts()


# ----------------------------------------------------------------------------- Parquet


def read_parts(files: tuple) -> pd.DataFrame:
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_simulate_to_parquet_writes_the_folder(tmp_path) -> None:
    target = 200_000
    out = simulate_to_parquet(
        tmp_path / "sim", n_transactions=target, chunk_customers=20_000, workers=1, seed=3
    )
    assert len(out.transaction_files) >= 3
    assert [f.name for f in sorted((tmp_path / "sim" / "transactions").iterdir())] == [
        f"part-{i:05d}.parquet" for i in range(len(out.transaction_files))
    ]
    tx = read_parts(out.transaction_files)
    assert len(tx) == out.n_transactions and target <= len(tx) <= 1.03 * target
    orders = tx[tx["amount"] > 0]
    assert len(orders) == out.n_orders and orders["order_id"].is_unique
    np.testing.assert_array_equal(np.sort(orders["order_id"]), np.arange(1, len(orders) + 1))
    assert tx["timestamp"].max() < pd.Timestamp("2025-01-01")
    cu = pq.read_table(out.customers_path).to_pandas()
    assert len(cu) == out.n_customers and cu["customer_id"].is_unique
    assert set(tx["customer_id"]) == set(cu["customer_id"])
    truth = json.loads(out.truth_path.read_text())
    assert truth["n_transactions"] == out.n_transactions and truth["model"] == "bgnbd"
    sp = pq.read_table(out.spend_path).to_pandas()
    spent = sp.groupby(sp["channel"].astype(str))["spend"].sum()
    new = cu["acquisition_channel"].astype(str).value_counts()
    for c in DEFAULT_CHANNELS:
        if c.cpa > 0:
            assert spent[c.name] / new[c.name] == pytest.approx(c.cpa, rel=0.05)
    with pytest.raises(InputError, match="overwrite=True"):
        simulate_to_parquet(tmp_path / "sim", n_transactions=1000)


def test_simulate_to_parquet_does_not_depend_on_workers(tmp_path) -> None:
    options = {"n_transactions": 60_000, "chunk_customers": 5000, "seed": 4}
    one = simulate_to_parquet(tmp_path / "one", workers=1, **options)
    two = simulate_to_parquet(tmp_path / "two", workers=2, **options)
    assert len(one.transaction_files) == len(two.transaction_files) >= 3
    pd.testing.assert_frame_equal(
        read_parts(one.transaction_files), read_parts(two.transaction_files)
    )
    pd.testing.assert_frame_equal(
        pq.read_table(one.customers_path).to_pandas(), pq.read_table(two.customers_path).to_pandas()
    )
    assert one.spend_path.read_bytes() == two.spend_path.read_bytes()


# ----------------------------------------------------------------------------- arguments


def test_error_text_names_parameter_function_and_value() -> None:
    message = "The 'n_customers' parameter of simulate_business must be > 0. Got -1 instead."
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate_business(n_customers=-1)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (
            lambda: simulate_business(n_customers=2.5),
            "'n_customers' parameter of simulate_business must be an integer > 0",
        ),
        (lambda: simulate_business(model="bg"), "must be one of 'bgnbd', 'pareto_nbd'. Got 'bg'"),
        (lambda: simulate_business(unit="fortnight"), "'unit' parameter"),
        (lambda: simulate_business(start="2024-01-01", end="2023-01-01"), "'end' parameter"),
        (lambda: simulate_business(start="not a date"), "'start' parameter"),
        (lambda: simulate_business(return_rate=1.0), "'return_rate' parameter"),
        (lambda: simulate_business(seasonality=-0.1), "'seasonality' parameter"),
        (lambda: simulate_business(habit_strength=1.5), "'habit_strength' parameter"),
        (lambda: simulate_business(params={"r": -1.0}), "\"params['r']\" parameter"),
        (lambda: simulate_business(params={"s": 1.0}), "'params' parameter"),
        (lambda: simulate_business(spend_params={"q": 0}), "spend_params['q']"),
        (lambda: simulate_business(channels=[]), "'channels' parameter"),
        (lambda: simulate_business(channels=[Channel("a", 1), Channel("a", 1)]), "'channels'"),
        (lambda: simulate_business(currency=""), "'currency' parameter"),
        (lambda: simulate_business(seed=-3), "'seed' parameter"),
        (lambda: Channel("x", -1.0), "'share' parameter of Channel must be > 0"),
        (lambda: Channel("x", 1.0, cpa=-5), "'cpa' parameter of Channel must be >= 0"),
        (lambda: Channel("x", 1.0, campaigns=("a", "a")), "'campaigns' parameter of Channel"),
        (lambda: simulate_summary(n_customers=0), "'n_customers' parameter of simulate_summary"),
        (lambda: simulate_summary(n_customers=10, T=(5, 1)), "'T' parameter"),
        (lambda: simulate_summary(n_customers=10, T=[1.0, 2.0]), "'T' parameter"),
        (lambda: simulate_summary(n_customers=10, T=-1.0), "'T' parameter"),
        (lambda: simulate_to_parquet("x", n_transactions=0), "'n_transactions' parameter"),
        (lambda: simulate_to_parquet("x", n_transactions=10, workers=0), "'workers' parameter"),
    ],
)
def test_invalid_arguments_raise(call, fragment: str) -> None:
    with pytest.raises(InputError, match=re.escape(fragment)):
        call()


def test_channel_accepts_a_single_campaign_name() -> None:
    assert Channel("x", 1.0, 5.0, "spring").campaigns == ("spring",)
