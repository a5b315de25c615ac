"""Arrays of customers or patterns, and evaluating terms once per distinct value.

Models see their data as a mapping of column name to array. Beside each column ``c`` it
may hold ``c__u`` (the column's distinct values) and ``c__i`` (each row's position among
them): :func:`by_value` and :func:`by_values` then compute an expensive term once per
distinct value (or combination) and spread it to the rows by index. Keys ending in
``__u`` are tables, not rows: :func:`subset` keeps them whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

Arrays = Mapping[str, np.ndarray]
# Pattern keys up to this many possible values are counted densely (no hashing).
_DENSE_KEYS = 4_000_000


def factorize(data: Arrays) -> dict[str, np.ndarray]:
    """``data`` with every column's distinct values (``c__u``) and codes (``c__i``) added."""
    out = dict(data)
    for name in [k for k in data if not k.endswith(("__u", "__i"))]:
        code, unique = pd.factorize(data[name], sort=False)
        out[f"{name}__i"] = code.astype(np.int64)
        out[f"{name}__u"] = np.asarray(unique, dtype=float)
    return out


def subset(data: Arrays, rows: Any) -> dict[str, np.ndarray]:
    """The patterns ``rows`` (a mask or slice) of ``data``; distinct-value tables stay whole."""
    return {k: (v if k.endswith("__u") else v[rows]) for k, v in data.items()}


def compress(data: Arrays, counts: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct rows of ``data`` with the summed ``counts`` of the rows sharing them.

    Each column is factorised on its own and the codes combined into one integer key, which
    is much faster than grouping on several float columns. The result also carries, per
    column, its distinct values (``<col>__u``) and each pattern's position among them
    (``<col>__i``), so likelihoods can evaluate expensive terms once per distinct value
    (see :func:`by_value`).
    """
    names = list(data)
    varied = [name for name in names if not few_distinct(data[name])]
    if varied:
        # A column of (nearly) all-distinct values, such as a mean spend, makes every row
        # its own pattern: only the other columns are worth coding.
        keep = counts > 0
        coded = factorize({n: data[n][keep] for n in names if n not in varied})
        return {**{n: data[n][keep] for n in varied}, **coded}, counts[keep]
    coded = factorize(data)
    codes = [coded[f"{name}__i"] for name in names]
    uniques = [coded[f"{name}__u"] for name in names]
    key = np.zeros(len(counts), dtype=np.int64)
    space = 1
    for code, unique in zip(codes, uniques, strict=True):
        key = key * len(unique) + code
        space *= len(unique)
        if space > _DENSE_KEYS:
            # Re-factorised, the key stays below n, so key * size keeps fitting in int64.
            key = pd.factorize(key, sort=False)[0].astype(np.int64)
            space = int(key.max()) + 1
    n_patterns = space
    weights = np.bincount(key, weights=counts, minlength=n_patterns)
    keep = weights > 0
    any_row = np.empty(n_patterns, dtype=np.int64)
    any_row[key] = np.arange(len(key))  # every row of a pattern holds the same values
    rows = any_row[keep]
    out: dict[str, np.ndarray] = {}
    for name, code, unique in zip(names, codes, uniques, strict=True):
        out[name] = unique[code[rows]]
        out[f"{name}__u"] = unique
        out[f"{name}__i"] = code[rows]
    return out, weights[keep]


def few_distinct(values: np.ndarray, *, sample: int = 20_000, share: float = 0.2) -> bool:
    """Whether ``values`` repeat a lot, judged from evenly spaced values (cheap on any size)."""
    probe = values if len(values) <= sample else values[:: len(values) // sample]
    return len(np.unique(probe)) <= max(16, share * len(probe))


def cached(data: Arrays, key: str, function: Callable[[], np.ndarray]) -> np.ndarray:
    """``function()``, kept in ``data`` under ``key`` for the next call when ``data`` is a dict.

    For terms of the data alone (the log of a spend) that a likelihood needs at every
    evaluation.
    """
    if isinstance(data, dict):
        if key not in data:
            data[key] = function()
        return data[key]
    return function()


def by_value(data: Arrays, column: str, function: Callable[[np.ndarray], Any]) -> Any:
    """``function(data[column])``, evaluated once per distinct value when the data say them.

    After :func:`_compress` the data carry each column's distinct values; an expensive
    term of the likelihood (a log-gamma of the frequency, a log of T) is then computed for
    those few values and spread to the patterns by index. ``function`` may return an
    array with leading axes (parameter draws); the last axis is the column's.
    """
    unique = data.get(f"{column}__u")
    if unique is None:
        return function(data[column])
    return np.take(function(unique), data[f"{column}__i"], axis=-1)


def by_values(data: Arrays, columns: tuple[str, ...], function: Callable[..., Any]) -> Any:
    """``function(*columns)``, evaluated once per distinct combination of the columns.

    Like :func:`by_value` for terms of several columns (a tail integral in the frequency
    and T): the distinct combinations are found once, from the columns' codes, and kept
    in ``data`` for the next evaluation.
    """
    key = "|".join(columns)
    if f"{key}__i" not in data:
        if not all(f"{c}__i" in data for c in columns) or not isinstance(data, dict):
            return function(*(data[c] for c in columns))
        sizes = [len(data[f"{c}__u"]) for c in columns]
        combined = np.zeros(len(data[f"{columns[0]}__i"]), dtype=np.int64)
        for c, size in zip(columns, sizes, strict=True):
            combined = combined * size + data[f"{c}__i"]
        unique, inverse = np.unique(combined, return_inverse=True)
        for c, size in reversed(list(zip(columns, sizes, strict=True))):
            unique, code = np.divmod(unique, size)
            data[f"{key}:{c}__u"] = data[f"{c}__u"][code]
        data[f"{key}__i"] = inverse.ravel()
    values = function(*(data[f"{key}:{c}__u"] for c in columns))
    return np.take(values, data[f"{key}__i"], axis=-1)
