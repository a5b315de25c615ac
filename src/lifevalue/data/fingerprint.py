"""A fingerprint of the accepted transactions, so runs on the same data can be told apart."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import ibis

if TYPE_CHECKING:
    from lifevalue.data.validate import ValidatedTransactions


def data_fingerprint(validated: ValidatedTransactions) -> str:
    """A short hex digest of the accepted rows' contract columns, independent of row order.

    Computed in the engine: each row's columns are hashed, the hashes combined with an
    exclusive or, and the digest taken over that, the row count, the amount total and the
    first and last timestamps (the count keeps rows repeated an even number of times from
    cancelling out).
    """
    table = validated.accepted
    columns = [c for c in validated.roles if c in table.columns]
    text = ibis.literal("|").join([table[c].cast("string").fill_null("<null>") for c in columns])
    figures = table.aggregate(
        rows=table.count(),
        combined=text.hash().bit_xor(),
        amount=table.amount.sum(),
        first=table.timestamp.min().cast("string"),
        last=table.timestamp.max().cast("string"),
    ).to_pandas()
    row = figures.iloc[0]
    payload = "|".join(str(row[k]) for k in ("rows", "combined", "amount", "first", "last"))
    payload += "|" + ",".join(columns)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
