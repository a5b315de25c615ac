"""Transactions to customer summaries: lifevalue against the raw engine and the peer libraries.

For each size (simulated Parquet logs of 1M, 10M and 100M rows by default), in fresh
processes:

- ``raw DuckDB SQL``: a hand-written DuckDB query computing the same columns (daily
  occasions, returns netted against their orders, calibration and holdout figures), written
  to a Parquet file: the engine's own speed, the practical limit;
- ``lifevalue summarize``: the summary of already-validated transactions, written to Parquet;
- ``lifevalue validate + summarize``: the whole job from the raw log;
- ``lifetimes`` and ``pymc-marketing``: their RFM summary functions (frequency, recency, T,
  monetary value only), when ``make bench-peers`` has built their environments. They load
  the whole log into pandas, so they are not run at 100M rows.

It prints seconds, rows per second and peak memory, and the ratios the targets are set on:
summarising within 1.3 times the raw query, validation plus summarising within 2 times.

Usage: ``python benchmarks/bench_summary.py [--sizes 1000000,10000000,100000000]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Run, emit, peer_python, python, run_task, simulated_log

CALIBRATION_END = "2024-06-30"
OBSERVATION_END = "2024-12-31"
PEER_LIMIT = 10_000_000
MEMORY_LIMIT = "4GB"

RAW_SQL = """
WITH src AS (
    SELECT customer_id, order_id, timestamp, amount, quantity, amount - cost AS margin,
           date_trunc('day', timestamp) AS p
    FROM read_parquet({files})
    WHERE timestamp <= TIMESTAMP '{obs} 23:59:59.999999'
),
purchases AS (
    SELECT customer_id, p, count(*) AS n, sum(amount) AS gross, sum(margin) AS margin,
           sum(quantity) AS qty
    FROM src WHERE amount >= 0 GROUP BY customer_id, p
),
returns AS (SELECT * FROM src WHERE amount < 0),
orders AS (
    SELECT order_id, min(p) AS op FROM src
    WHERE amount >= 0 AND order_id IN (SELECT order_id FROM returns) GROUP BY order_id
),
ret AS (
    SELECT r.customer_id, o.op AS p,
           count(*) FILTER (WHERE r.p <= DATE '{cal}') AS n_ret_cal,
           count(*) AS n_ret_all,
           sum(r.amount) FILTER (WHERE r.p <= DATE '{cal}') AS ret_cal,
           sum(r.amount) AS ret_all,
           sum(r.margin) FILTER (WHERE r.p <= DATE '{cal}') AS ret_margin_cal,
           sum(r.quantity) FILTER (WHERE r.p <= DATE '{cal}') AS ret_qty_cal
    FROM returns r JOIN orders o USING (order_id) GROUP BY ALL
),
occ AS (
    SELECT pu.*,
           coalesce(ret.n_ret_cal, 0) AS n_ret_cal, coalesce(ret.ret_cal, 0) AS ret_cal,
           coalesce(ret.ret_all, 0) AS ret_all,
           coalesce(ret.ret_margin_cal, 0) AS ret_margin_cal,
           coalesce(ret.ret_qty_cal, 0) AS ret_qty_cal,
           pu.p <= DATE '{cal}' AS in_cal,
           pu.p <= DATE '{cal}' AND NOT (coalesce(ret.n_ret_cal, 0) > 0
               AND pu.gross + coalesce(ret.ret_cal, 0) <= 0) AS cal_occ,
           pu.p > DATE '{cal}' AND NOT (coalesce(ret.n_ret_all, 0) > 0
               AND pu.gross + coalesce(ret.ret_all, 0) <= 0) AS hold_occ
    FROM purchases pu LEFT JOIN ret USING (customer_id, p)
),
cust AS (
    SELECT customer_id,
           count(*) FILTER (WHERE cal_occ) AS n_cal,
           min(p) FILTER (WHERE cal_occ) AS first_p,
           max(p) FILTER (WHERE cal_occ) AS last_p,
           sum(gross + ret_cal) FILTER (WHERE cal_occ) AS value_sum,
           arg_min(gross + ret_cal, p) FILTER (WHERE cal_occ) AS first_value,
           count(*) FILTER (WHERE hold_occ) AS n_hold,
           sum(gross + ret_all) FILTER (WHERE hold_occ) AS value_hold,
           sum(n) FILTER (WHERE in_cal) AS n_orders,
           coalesce(sum(gross) FILTER (WHERE in_cal), 0) + sum(ret_cal) AS historic_revenue,
           coalesce(sum(margin) FILTER (WHERE in_cal), 0) + sum(ret_margin_cal) AS historic_margin,
           coalesce(sum(qty) FILTER (WHERE in_cal), 0) + sum(ret_qty_cal) AS total_quantity,
           sum(n_ret_cal) AS n_returns, -sum(ret_cal) AS return_value,
           coalesce(sum(gross) FILTER (WHERE NOT in_cal), 0) + sum(ret_all - ret_cal)
               AS revenue_holdout
    FROM occ GROUP BY customer_id
)
SELECT customer_id, n_cal - 1 AS frequency,
       date_diff('day', first_p, last_p) / 7.0 AS recency,
       date_diff('day', first_p, DATE '{cal}') / 7.0 AS T,
       CASE WHEN n_cal > 1 THEN (value_sum - first_value) / (n_cal - 1) ELSE 0 END
           AS monetary_value,
       CAST(first_p AS DATE) AS first_purchase_date, CAST(last_p AS DATE) AS last_purchase_date,
       n_orders, historic_revenue, historic_margin, total_quantity, n_returns, return_value,
       n_hold AS frequency_holdout,
       CASE WHEN n_hold > 0 THEN value_hold / n_hold ELSE 0 END AS monetary_value_holdout,
       revenue_holdout,
       date_diff('day', DATE '{cal}', DATE '{obs}') / 7.0 AS duration_holdout
FROM cust WHERE n_cal > 0
"""


def worker_raw(path: str, memory_limit: str, out: str) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    files = "'" + str(Path(path) / "*.parquet") + "'"
    query = RAW_SQL.format(files=files, cal=CALIBRATION_END, obs=OBSERVATION_END)
    start = time.perf_counter()
    con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet)")
    emit({"total": time.perf_counter() - start})


def worker_lifevalue(path: str, memory_limit: str, out: str) -> None:
    import ibis

    from lifevalue.data import Engine, summarize, validate_transactions

    engine = Engine(memory_limit=memory_limit)
    # Like the imports, Ibis's one-off start-up (its compiler's first use) is not timed.
    engine.backend.execute(ibis.memtable({"a": [1]}).a.sum())
    start = time.perf_counter()
    validated = validate_transactions(path, observation_end=OBSERVATION_END, engine=engine)
    validated_at = time.perf_counter()
    summary = summarize(validated, calibration_end=CALIBRATION_END, unit="weeks")
    summary.write(out)
    done = time.perf_counter()
    emit(
        {
            "validate": validated_at - start,
            "summarize": done - validated_at,
            "total": done - start,
            "customers": summary.accounting["customers"],
        }
    )


def _median_run(runs: list[Run]) -> Run:
    good = [r for r in runs if r.ok]
    if not good:
        return runs[-1]
    good.sort(key=lambda r: r.timings["total"])
    best = good[len(good) // 2]
    best.peak_bytes = max(r.peak_bytes for r in good)
    return best


def measure(size: int, repeat: int, memory_limit: str) -> list[tuple[str, Run, float]]:
    folder = simulated_log(size)
    rows = sum(_rows(p) for p in folder.glob("*.parquet"))
    bench_dir = Path(__file__).resolve().parent
    out = Path(tempfile.mkdtemp(prefix="lifevalue-bench-")) / "summary.parquet"
    me = [python(), str(bench_dir / "bench_summary.py")]
    tasks = {
        "raw": [*me, "--worker", "raw", str(folder), memory_limit, str(out)],
        "lifevalue": [*me, "--worker", "lifevalue", str(folder), memory_limit, str(out)],
    }
    results: list[tuple[str, Run, float]] = []
    for name, argv in tasks.items():
        runs = [run_task(name, argv) for _ in range(repeat)]
        results.append((name, _median_run(runs), rows))
    for peer in ("lifetimes", "pymc-marketing"):
        interpreter = peer_python(peer)
        if interpreter is None:
            results.append((peer, Run(peer, False, note="not installed (make bench-peers)"), rows))
        elif size > PEER_LIMIT:
            note = "not run: loads the whole log into pandas"
            results.append((peer, Run(peer, False, note=note), rows))
        else:
            argv = [
                str(interpreter),
                str(bench_dir / "peer_summary.py"),
                peer,
                str(folder),
                CALIBRATION_END,
            ]
            runs = [run_task(peer, argv, timeout=1800) for _ in range(repeat)]
            results.append((peer, _median_run(runs), rows))
    return results


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def report(size: int, results: list[tuple[str, Run, float]]) -> None:
    rows = results[0][2]
    print(f"\n{rows:,} transactions ({size:,} requested)")
    print(f"  {'task':<34}{'seconds':>9}{'rows/s':>13}{'peak memory':>14}{'x raw':>8}")
    raw = next((r for name, r, _ in results if name == "raw" and r.ok), None)
    raw_s = raw.timings["total"] if raw else float("nan")
    lines: list[tuple[str, float | None, Run]] = []
    for name, run, _ in results:
        if name == "raw":
            lines.append(("raw DuckDB SQL", run.timings.get("total"), run))
        elif name == "lifevalue":
            lines.append(("lifevalue summarize", run.timings.get("summarize"), run))
            lines.append(("lifevalue validate + summarize", run.timings.get("total"), run))
        else:
            lines.append((name, run.timings.get("total"), run))
    for label, seconds, run in lines:
        if not run.ok or seconds is None:
            print(f"  {label:<34}{run.note}")
            continue
        print(
            f"  {label:<34}{seconds:>9.2f}{rows / seconds:>13,.0f}"
            f"{run.peak_bytes / 2**30:>11.2f} GB{seconds / raw_s:>8.2f}"
        )
    lv = next((r for name, r, _ in results if name == "lifevalue" and r.ok), None)
    if lv and raw:
        s_ratio = lv.timings["summarize"] / raw_s
        t_ratio = lv.timings["total"] / raw_s
        print(
            f"  targets: summarize {s_ratio:.2f} x raw (<= 1.3: {_verdict(s_ratio <= 1.3)}), "
            f"validate + summarize {t_ratio:.2f} x raw (<= 2: {_verdict(t_ratio <= 2)})"
        )
        if size >= 100_000_000:
            secs, peak = lv.timings["total"], lv.peak_bytes / 2**30
            ok = secs <= 120 and peak < 6
            print(f"  100M target: {secs:.0f} s (<= 120) and {peak:.2f} GB (< 6): {_verdict(ok)}")


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000,100000000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per task below 100M rows")
    parser.add_argument("--memory-limit", default=MEMORY_LIMIT, help="DuckDB limit, both sides")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "PATH", "LIMIT", "OUT"))
    args = parser.parse_args()
    if args.worker:
        kind, path, limit, out = args.worker
        {"raw": worker_raw, "lifevalue": worker_lifevalue}[kind](path, limit, out)
        return
    print(f"DuckDB memory limit {args.memory_limit} for lifevalue and the raw query; 2 cores.")
    for size in (int(s) for s in args.sizes.split(",")):
        repeat = 1 if size >= 100_000_000 else args.repeat
        report(size, measure(size, repeat, args.memory_limit))


if __name__ == "__main__":
    main()
