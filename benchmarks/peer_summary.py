"""A peer library's RFM summary of a Parquet log; runs inside that peer's own environment.

Usage: ``peer_summary.py lifetimes|pymc-marketing FOLDER CALIBRATION_END``. Prints one JSON
object: seconds to read the log into pandas, seconds of the summary call, their total and
the peak memory. Imports nothing from lifevalue (the peers pin older numpy and pandas).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def peak_memory() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    lib, folder, calibration_end = sys.argv[1:4]
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_parquet(folder, columns=["customer_id", "timestamp", "amount"])
    frame = frame[frame["timestamp"] <= pd.Timestamp(calibration_end) + pd.Timedelta(days=1)]
    read = time.perf_counter()
    if lib == "lifetimes":
        from lifetimes.utils import summary_data_from_transaction_data

        summary = summary_data_from_transaction_data(
            frame,
            "customer_id",
            "timestamp",
            monetary_value_col="amount",
            observation_period_end=calibration_end,
            freq="D",
        )
    else:
        from pymc_marketing.clv.utils import rfm_summary

        summary = rfm_summary(
            frame,
            "customer_id",
            "timestamp",
            monetary_value_col="amount",
            observation_period_end=calibration_end,
            time_unit="D",
        )
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "read": read - start,
                "summary": done - read,
                "total": done - start,
                "customers": len(summary),
                "peak_bytes": peak_memory(),
            }
        )
    )


if __name__ == "__main__":
    main()
