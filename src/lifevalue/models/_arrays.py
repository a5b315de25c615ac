"""Arrays of customers or patterns, and evaluating terms once per distinct value.

Models see their data as a mapping of column name to array. Beside each column ``c`` it
may hold ``c__u`` (the column's distinct values) and ``c__i`` (each row's position among
them): :func:`by_value` and :func:`by_values` then compute an expensive term once per
distinct value (or combination) and spread it to the rows by index. Keys ending in
``__u`` are tables, not rows: :func:`subset` keeps them whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

Arrays = Mapping[str, np.ndarray]


def factorize(data: Arrays) -> dict[str, np.ndarray]:
    """``data`` with every column's distinct values (``c__u``) and codes (``c__i``) added."""
    out = dict(data)
    for name in [k for k in data if not k.endswith(("__u", "__i"))]:
        code, unique = pd.factorize(data[name], sort=False)
        out[f"{name}__i"] = code.astype(np.int64)
        out[f"{name}__u"] = np.asarray(unique, dtype=float)
    return out


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product of two vectors without BLAS.

    BLAS's threaded ``ddot`` takes milliseconds on a busy machine where a single pass
    takes a fraction of one, and its threads would fight the fit's own.
    """
    if np.shape(a) != np.shape(b):
        a, b = np.broadcast_arrays(a, b)
    return float(np.einsum("i,i->", a, b))


def subset(data: Arrays, rows: Any) -> dict[str, np.ndarray]:
    """The patterns ``rows`` (a mask or slice) of ``data``; distinct-value tables stay whole."""
    return {k: (v if k.endswith("__u") else v[rows]) for k, v in data.items()}


def compress(
    data: Arrays, counts: np.ndarray, *, drop_empty: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct rows of ``data`` with the summed ``counts`` of the rows sharing them.

    Each column is factorised on its own and the codes combined into one integer key;
    sorting that key groups the rows, which is much faster than grouping on several float
    columns or hashing a million distinct keys. The result also carries, per column, its
    sorted distinct values (``<col>__u``) and each pattern's position among them
    (``<col>__i``), so likelihoods can evaluate expensive terms once per distinct value
    (see :func:`by_value`). Patterns whose counts add up to 0 are left out unless
    ``drop_empty`` is False.
    """
    names = list(data)
    varied = [name for name in names if not few_distinct(data[name])]
    if varied:
        # A column of (nearly) all-distinct values, such as a mean spend, makes every row
        # its own pattern: only the other columns are worth coding.
        keep = counts > 0 if drop_empty else np.ones(len(counts), dtype=bool)
        coded = factorize({n: data[n][keep] for n in names if n not in varied})
        return {**{n: data[n][keep] for n in varied}, **coded}, counts[keep]
    codes, uniques = [], []
    for name in names:
        code, unique = _codes(data[name])
        codes.append(code)
        uniques.append(unique)
    sizes = [len(u) for u in uniques]
    space = math.prod(sizes)
    decodable = space < 2**62
    # The narrowest integer that holds the key: sorting int32 is faster.
    key = codes[0].astype(np.int32 if space < 2**31 else np.int64)
    for code, size in zip(codes[1:], sizes[1:], strict=True):
        if not decodable:
            # Re-factorised, the key stays below n, so key * size keeps fitting in int64.
            key = pd.factorize(key)[0].astype(np.int64)
        key *= size
        np.add(key, code, out=key, casting="unsafe")
    unit_counts = decodable and bool(np.all(counts == 1))
    order = None if unit_counts else np.argsort(key)
    ordered = np.sort(key) if order is None else key[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    if order is None:
        weights = np.diff(np.append(starts, len(ordered))).astype(float)
    else:
        weights = np.add.reduceat(np.asarray(counts, dtype=float)[order], starts)
    keep = weights > 0 if drop_empty else slice(None)
    if decodable:
        # Every pattern's codes are the digits of its key.
        rest = ordered[starts[keep]]
        pattern_codes = []
        for size in reversed(sizes[1:]):
            rest, code = np.divmod(rest, size)
            pattern_codes.append(code)
        pattern_codes.append(rest)
        pattern_codes.reverse()
    else:
        rows = order[starts[keep]]
        pattern_codes = [code[rows] for code in codes]
    out: dict[str, np.ndarray] = {}
    for name, code, unique in zip(names, pattern_codes, uniques, strict=True):
        # Codes of the sorted distinct values, remapped for the patterns only.
        by_value = np.argsort(unique)
        rank = np.empty(len(by_value), dtype=np.int64)
        rank[by_value] = np.arange(len(by_value))
        out[f"{name}__u"] = unique[by_value]
        out[f"{name}__i"] = np.take(rank, code)
        out[name] = np.take(unique, code)
    return out, weights[keep]


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's position among the distinct values, and those values (as floats).

    Small whole numbers (counts of purchases or periods) are their own codes: counting
    them is several times faster than hashing; other values are hashed.
    """
    probe = values[:: max(1, len(values) // 1000)]
    if len(values) and np.all((probe >= 0) & (probe < 1 << 20) & (probe == np.round(probe))):
        with np.errstate(invalid="ignore"):  # NaN or huge values: not whole, hashed below
            whole = values.astype(np.int32)
        if whole.min() >= 0 and whole.max() < 1 << 20 and np.array_equal(whole, values):
            present = np.bincount(whole) > 0
            rank = (np.cumsum(present) - 1).astype(np.int32)
            return np.take(rank, whole), np.flatnonzero(present).astype(float)
    code, unique = pd.factorize(values, use_na_sentinel=False)
    return code, np.asarray(unique, dtype=float)


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


def value_codes(data: Arrays, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``column`` and each row's position among them.

    Taken from the data when :func:`compress` or :func:`factorize` put them there, else
    found (and kept in ``data`` when it is a dict).
    """
    if f"{column}__u" in data and f"{column}__i" in data:
        return data[f"{column}__u"], data[f"{column}__i"]
    unique, index = np.unique(data[column], return_inverse=True)
    if isinstance(data, dict):
        data[f"{column}__u"], data[f"{column}__i"] = unique, index.ravel()
    return unique, index.ravel()


def value_combinations(
    data: Arrays, columns: tuple[str, ...]
) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
    """The distinct combinations of ``columns`` (one array per column) and each row's one.

    Found once from the columns' codes and kept in ``data``; ``None`` when the data carry
    no codes (or cannot keep them).
    """
    key = "|".join(columns)
    if f"{key}__i" not in data:
        if not all(f"{c}__i" in data for c in columns) or not isinstance(data, dict):
            return None
        sizes = [len(data[f"{c}__u"]) for c in columns]
        combined = np.zeros(len(data[f"{columns[0]}__i"]), dtype=np.int64)
        for c, size in zip(columns, sizes, strict=True):
            combined = combined * size + data[f"{c}__i"]
        unique, inverse = np.unique(combined, return_inverse=True)
        for c, size in reversed(list(zip(columns, sizes, strict=True))):
            unique, code = np.divmod(unique, size)
            data[f"{key}:{c}__u"] = data[f"{c}__u"][code]
        data[f"{key}__i"] = inverse.ravel()
    return tuple(data[f"{key}:{c}__u"] for c in columns), data[f"{key}__i"]


def by_values(data: Arrays, columns: tuple[str, ...], function: Callable[..., Any]) -> Any:
    """``function(*columns)``, evaluated once per distinct combination of the columns.

    Like :func:`by_value` for terms of several columns (a tail integral in the frequency
    and T): the distinct combinations are found once, from the columns' codes, and kept
    in ``data`` for the next evaluation.
    """
    found = value_combinations(data, columns)
    if found is None:
        return function(*(data[c] for c in columns))
    values, index = found
    return np.take(function(*values), index, axis=-1)
