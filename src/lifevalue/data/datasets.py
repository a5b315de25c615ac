"""Real reference data sets bundled with lifevalue (see ``bundled/PROVENANCE.md``).

- CDNOW (Fader, Hardie & Lee 2005): purchases at the online CD retailer CDNOW by the
  23,570 customers who first bought in the first quarter of 1997, to the end of June 1998;
  the 1/10 sample (2,357 customers) and the paper's calibration summaries.
- Donations (Fader, Hardie & Shang 2010): 11,104 first-time supporters of a non-profit and
  their repeat donations over six years, in sufficient-statistic form.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

#: Column roles of ``CDNOW_sample.txt`` (no header: master id, sample id, date, CDs, dollars).
CDNOW_SAMPLE_COLUMNS = {"customer_id": "2", "timestamp": "3", "quantity": "4", "amount": "5"}
#: Column roles of ``CDNOW_master.txt`` (header: customer_id, date, number_of_cds, dollar_value).
CDNOW_MASTER_COLUMNS = {
    "customer_id": "customer_id",
    "timestamp": "date",
    "quantity": "number_of_cds",
    "amount": "dollar_value",
}
#: The calibration period of the BG/NBD paper: 39 weeks, 1997-01-01 to 1997-09-30.
CDNOW_CALIBRATION_END = "1997-09-30"
#: The end of the CDNOW data: 39 more weeks of holdout.
CDNOW_OBSERVATION_END = "1998-06-30"
# Some CDNOW customers have several equal records on one day (same CDs, same dollars);
# the literature counts them as purchases, so CDNOW is read with duplicates kept.
CDNOW_DUPLICATES = "keep"


def _path(*parts: str) -> Path:
    return Path(str(resources.files("lifevalue.data").joinpath("bundled", *parts)))


def cdnow_sample_path() -> Path:
    """Path of ``CDNOW_sample.txt``: 6,919 purchase records of 2,357 customers."""
    return _path("cdnow", "CDNOW_sample.txt")


def cdnow_master_path() -> Path:
    """Path of ``CDNOW_master.txt``: 69,659 purchase records of 23,570 customers."""
    return _path("cdnow", "CDNOW_master.txt")


def load_cdnow_reference_summary() -> pd.DataFrame:
    """The BG/NBD paper's calibration summary of the CDNOW sample, in weeks.

    Columns ``ID``, ``frequency`` (x), ``recency`` (t_x), ``T`` and ``monetary_value``
    (zbar, the mean value of the repeat purchases, 0 where x = 0).
    """
    frame = pd.read_csv(_path("cdnow", "cdnow_customers_summary_with_transactions.csv"))
    return frame.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})


def load_donations() -> pd.DataFrame:
    """The donations data: ``frequency`` (x of 6), ``recency`` (t_x), ``periods`` (n), ``weights``.

    ``weights`` is the number of donors with each pattern.
    """
    return pd.read_csv(_path("donations", "donations.csv"))
