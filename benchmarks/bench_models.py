"""Model fits and predictions: lifevalue against the peer libraries, in the same run.

Data sets (``--sizes``, cached as Parquet under ``benchmarks/.data``, the same file for
every library): ``cdnow``, the CDNOW sample's calibration summary (2,357 customers);
``master``, the CDNOW master summary (23,570 customers, calibration to 1997-09-30; one
customer whose repeat purchases are worth $0 in total is left out, since no library's
Gamma-Gamma model accepts it); and simulated BG/NBD summaries (``100k``, ``1m``, ``10m``
or any count): 78 weeks, dates rounded to whole days as a daily log gives them.

Tasks, each in a fresh process:

- ``fit BG/NBD``, ``fit Pareto/NBD``, ``fit Gamma-Gamma``: maximum-likelihood fits
  (Gamma-Gamma on the customers with repeat purchases);
- ``predict``: BG/NBD expected purchases in the next 52 weeks with a 90% interval,
  P(alive), and 12-month CLV (BG/NBD with Gamma-Gamma spend, 10% a year) with a 90%
  interval. The models are fitted before, untimed (lifevalue loads the fits saved by its
  fit tasks);
- the same with ``lifetimes`` (``BetaGeoFitter``, ``ParetoNBDFitter``, ``GammaGammaFitter``)
  and ``pymc-marketing`` (``fit(method="map")`` with flat priors, so the MAP is the
  maximum-likelihood estimate), when ``make bench-peers`` has built their environments;
  their predictions are point values only. See ``peer_models.py``. They are not run on
  10M customers: they hold one row per customer in pandas (and pymc-marketing in its
  graph), and lifetimes' Pareto/NBD fit already takes 7 to 10 minutes at 1M.

Each task is timed around the call itself: imports and reading the summary are not timed.
It prints seconds per task, the peak memory of each task's process, the speed ratio
against each peer, the fitted parameters with the log-likelihood at them (by lifevalue's
formula, so the libraries' fits compare), and the targets: at 1M customers, BG/NBD and
Pareto/NBD fits at least 20 times faster than both peers; at 10M, the fits within 30 s
and the predictions (with intervals) within 60 s, each task's peak memory under 8 GB.

Usage: ``python benchmarks/bench_models.py [--sizes cdnow,master,100k,1m,10m] [--reps 3]
[--tasks bgnbd,pnbd,gg,predict] [--fastest] [--no-peers] [--peer-timeout 900]``
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, Run, emit, peer_python, python, run_task

SIZES = "cdnow,master,100k,1m,10m"
PEERS = ("lifetimes", "pymc-marketing")
PEER_LIMIT = 1_000_000
TASKS = {
    "bgnbd": "fit BG/NBD",
    "pnbd": "fit Pareto/NBD",
    "gg": "fit Gamma-Gamma",
    "predict": "predict (BG/NBD + GG)",
}
MODEL_NAMES = {"bgnbd": "BG/NBD", "pnbd": "Pareto/NBD", "gg": "Gamma-Gamma"}
# Peers' names of lifevalue's parameters, where they differ.
PEER_NAMES = {"gamma": "v"}
HORIZON_WEEKS = 52
CLV_MONTHS = 12
LEVEL = 0.9
SEED = 7
SPEED_TARGET = 20.0
FIT_TARGET_S = 30.0
PREDICT_TARGET_S = 60.0
MEMORY_TARGET = 8 * 2**30
TARGET_SIZE = 1_000_000
LARGE_SIZE = 10_000_000


# ------------------------------------------------------------------------------ data sets


def parse_size(token: str) -> tuple[str, int | None]:
    """``cdnow``, ``master``, or a number of simulated customers (``100k``, ``1m``, ``250000``)."""
    token = token.strip().lower()
    if token in ("cdnow", "master"):
        return token, None
    scale = {"k": 1_000, "m": 1_000_000}.get(token[-1:], 1)
    digits = token[:-1] if scale > 1 else token
    try:
        n = int(float(digits) * scale)
    except ValueError:
        raise SystemExit(f"unknown size {token!r}: cdnow, master, or a number like 100k") from None
    return f"sim_{n}", n


def dataset(name: str, n: int | None) -> tuple[Path, dict[str, Any]]:
    """A summary as Parquet under ``benchmarks/.data`` (made once) and a description of it.

    Columns ``customer_id``, ``frequency``, ``recency``, ``T`` (weeks), ``monetary_value``:
    the same file for lifevalue and the peers.
    """
    path = DATA / f"models_{name}.parquet"
    info_path = path.with_suffix(".json")
    if path.is_file() and info_path.is_file():
        return path, json.loads(info_path.read_text())
    import numpy as np

    start = time.perf_counter()
    truth: dict[str, Any] = {}
    if name == "cdnow":
        from lifevalue.data import datasets

        frame = datasets.load_cdnow_reference_summary().rename(columns={"ID": "customer_id"})
        title = "CDNOW sample (calibration summary of the BG/NBD paper)"
    elif name == "master":
        from lifevalue.data import datasets, summarize

        summary = summarize(
            datasets.cdnow_master_path(),
            columns=datasets.CDNOW_MASTER_COLUMNS,
            calibration_end=datasets.CDNOW_CALIBRATION_END,
            observation_end=datasets.CDNOW_OBSERVATION_END,
            unit="weeks",
            duplicates=datasets.CDNOW_DUPLICATES,
        )
        frame = summary.to_pandas()
        title = "CDNOW master (calibration to 1997-09-30)"
    else:
        from lifevalue.data.simulate import simulate_summary

        assert n is not None
        print(f"simulating {n:,} customers into {path} ...", flush=True)
        frame = simulate_summary(
            n_customers=n, model="bgnbd", T=(0, 78), spend_params={}, seed=SEED
        )
        truth = {"bgnbd": frame.attrs["params"], "gg": frame.attrs["spend_params"]}
        # Whole days, as a daily log gives them: a repeat purchase is at least a day after
        # the first, and the last purchase is never after the end.
        x = frame["frequency"].to_numpy()
        recency = np.where(x > 0, np.maximum(np.round(frame["recency"].to_numpy() * 7), 1), 0)
        t_days = np.maximum(np.round(frame["T"].to_numpy() * 7), recency)
        frame["recency"] = recency / 7
        frame["T"] = t_days / 7
        title = f"simulated BG/NBD customers (78 weeks, whole days, seed {SEED})"
    frame = frame[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    # Repeat purchases worth nothing in total (one CDNOW master customer) are outside every
    # library's Gamma-Gamma model; they are left out of every task, so all see the same data.
    worthless = (frame["frequency"] > 0) & ~(frame["monetary_value"] > 0)
    frame = frame.loc[~worthless]
    frame = frame.astype({"frequency": "int64", "recency": "float64", "T": "float64"})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    patterns = len(frame[["frequency", "recency", "T"]].drop_duplicates())
    info = {
        "title": title,
        "customers": len(frame),
        "patterns": patterns,
        "repeat_buyers": int((frame["frequency"] > 0).sum()),
        "left_out": int(worthless.sum()),
        "truth": truth,
    }
    info_path.write_text(json.dumps(info))
    if n is not None:
        print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    return path, info


# ------------------------------------------------------------------------------- workers


def _model(name: str) -> Any:
    """The lifevalue model class of ``name``."""
    from lifevalue.models import model_class

    return model_class(name)


def worker(task: str, path: str, models: str) -> None:
    """One timed lifevalue task on the summary at ``path``; fits are saved in ``models``."""
    import pandas as pd

    frame = pd.read_parquet(path)
    frame.attrs["lifevalue"] = {"time_unit": "weeks"}
    folder = Path(models)
    if task != "predict":
        cls = _model(task)
        start = time.perf_counter()
        model = cls().fit(frame)
        seconds = time.perf_counter() - start
        model.save(folder / f"{task}.json")
        emit(
            {
                "seconds": seconds,
                "params": model.params_,
                "log_likelihood": model.log_likelihood_,
                "patterns": model.n_patterns_,
            }
        )
        return
    from lifevalue.models.clv import customer_lifetime_value

    bg = _fitted("bgnbd", frame, folder)
    gg = _fitted("gg", frame, folder)
    start = time.perf_counter()
    expected = bg.expected_purchases_interval(frame, future_t=HORIZON_WEEKS, level=LEVEL)
    expected_at = time.perf_counter()
    alive = bg.probability_alive(frame)
    alive_at = time.perf_counter()
    clv = customer_lifetime_value(
        bg,
        frame,
        spend=gg,
        horizon=CLV_MONTHS,
        horizon_unit="months",
        level=LEVEL,
    )
    done = time.perf_counter()
    emit(
        {
            "seconds": done - start,
            "expected": expected_at - start,
            "alive": alive_at - expected_at,
            "clv": done - alive_at,
            "spend": "Gamma-Gamma",
            "predictions": {
                "expected_purchases_mean": float(expected["expected_purchases"].mean()),
                "p_alive_mean": float(alive.mean()),
                "clv_total": float(clv["clv"].sum()),
                "clv_low_total": float(clv["clv_low"].sum()),
                "clv_high_total": float(clv["clv_high"].sum()),
            },
        }
    )


def _fitted(name: str, frame: Any, folder: Path) -> Any:
    """The fit a fit task saved, or a fresh one (untimed)."""
    from lifevalue.models import load_model

    cls = _model(name)
    saved = folder / f"{name}.json"
    return load_model(saved) if saved.is_file() else cls().fit(frame)


# ---------------------------------------------------------------------------- measuring


def _typical_run(runs: list[Run], *, fastest: bool = False) -> Run:
    """The median run (the fastest with ``fastest``), with the largest peak memory of all."""
    good = [r for r in runs if r.ok and "seconds" in r.timings]
    if not good:
        return runs[-1]
    good.sort(key=lambda r: r.timings["seconds"])
    best = good[0] if fastest else good[len(good) // 2]
    best.peak_bytes = max(r.peak_bytes for r in good)
    return best


def measure(
    path: Path,
    n: int,
    reps: int,
    peers: bool,
    peer_timeout: float,
    timeout: float,
    *,
    tasks: tuple[str, ...] = tuple(TASKS),
    fastest: bool = False,
) -> dict[str, dict[str, Run]]:
    """Runs of every task by every library: ``{library: {task: Run}}``."""
    bench_dir = Path(__file__).resolve().parent
    models = Path(tempfile.mkdtemp(prefix="lifevalue-bench-models-"))
    me = [python(), str(bench_dir / "bench_models.py")]
    results: dict[str, dict[str, Run]] = {"lifevalue": {}}
    try:
        for task, label in TASKS.items():
            if task not in tasks:
                results["lifevalue"][task] = Run(label, False, note="not run (--tasks)")
                continue
            argv = [*me, "--worker", task, str(path), str(models)]
            runs = []
            for _ in range(reps):
                runs.append(run_task(label, argv, timeout=timeout))
                if not runs[-1].ok:
                    break
            results["lifevalue"][task] = _typical_run(runs, fastest=fastest)
            _progress("lifevalue", label, results["lifevalue"][task])
    finally:
        shutil.rmtree(models, ignore_errors=True)
    for peer in PEERS:
        interpreter = peer_python(peer)
        results[peer] = {}
        for task, label in TASKS.items():
            if task not in tasks:
                run = Run(label, False, note="not run (--tasks)")
            elif not peers:
                run = Run(label, False, note="not run (--no-peers)")
            elif interpreter is None:
                run = Run(label, False, note="not installed (make bench-peers)")
            elif n > PEER_LIMIT:
                run = Run(label, False, note="not run above 1M customers")
            else:
                argv = [str(interpreter), str(bench_dir / "peer_models.py"), peer, task, str(path)]
                run = run_task(label, argv, timeout=peer_timeout)
                _progress(peer, label, run)
            results[peer][task] = run
    return results


def _progress(library: str, label: str, run: Run) -> None:
    shown = f"{run.timings['seconds']:.2f} s" if run.ok else run.note
    print(f"  .. {library} {label}: {shown}", flush=True)


# ------------------------------------------------------------------------------ report


def _cell(run: Run) -> str:
    if run.ok:
        return f"{run.timings['seconds']:.2f} s"
    note = run.note
    if note.startswith("stopped"):
        return "timeout"
    if note.startswith("failed"):
        return "failed"
    return "-"


def _ratio(lv: Run, peer: Run) -> str:
    if not (lv.ok and peer.ok):
        return "-"
    return f"{peer.timings['seconds'] / max(lv.timings['seconds'], 1e-9):.1f}x"


def _gb(run: Run) -> str:
    return f"{run.peak_bytes / 2**30:.2f}" if run.ok else "-"


def report(info: dict[str, Any], path: Path, results: dict[str, dict[str, Run]]) -> None:
    print(
        f"\n{info['title']}: {info['customers']:,} customers, {info['repeat_buyers']:,} with "
        f"repeat purchases, {info['patterns']:,} distinct (frequency, recency, T)"
    )
    if info.get("left_out"):
        print(
            f"  {info['left_out']:,} customer(s) left out: repeat purchases worth 0 in total, "
            "which no library's Gamma-Gamma model accepts"
        )
    lv, lt, pm = (results[k] for k in ("lifevalue", *PEERS))
    print(
        f"  {'task':<24}{'lifevalue':>11}{'lifetimes':>11}{'pymc-mkt':>11}"
        f"{'vs lifetimes':>14}{'vs pymc':>9}   peak GB lifevalue / lifetimes / pymc"
    )
    for task, label in TASKS.items():
        print(
            f"  {label:<24}{_cell(lv[task]):>11}{_cell(lt[task]):>11}{_cell(pm[task]):>11}"
            f"{_ratio(lv[task], lt[task]):>14}{_ratio(lv[task], pm[task]):>9}   "
            f"{_gb(lv[task])} / {_gb(lt[task])} / {_gb(pm[task])}"
        )
    notes = _notes(results)
    for line in notes:
        print(f"  note: {line}")
    predict = lv["predict"]
    if predict.ok:
        print(
            f"  lifevalue predict: expected purchases with interval "
            f"{predict.timings['expected']:.2f} s, "
            f"P(alive) {predict.timings['alive']:.2f} s, CLV with interval "
            f"{predict.timings['clv']:.2f} s (spend: {predict.timings['spend']})"
        )
    _agreement(info, path, results)


def _notes(results: dict[str, dict[str, Run]]) -> list[str]:
    """One line per distinct reason something was not measured."""
    reasons: dict[str, list[str]] = {}
    for library, runs in results.items():
        for task, run in runs.items():
            if not run.ok:
                reasons.setdefault(f"{library}: {run.note}", []).append(TASKS[task])
    out = []
    for reason, tasks in reasons.items():
        scope = "every task" if len(tasks) == len(TASKS) else ", ".join(tasks)
        out.append(f"{reason} ({scope})")
    return out


def _agreement(info: dict[str, Any], path: Path, results: dict[str, dict[str, Run]]) -> None:
    """Parameters of each fit, and the log-likelihood at them by lifevalue's own formula."""
    fits: dict[str, dict[str, dict[str, float]]] = {task: {} for task in MODEL_NAMES}
    for library, runs in results.items():
        for task in MODEL_NAMES:
            if runs[task].ok and "params" in runs[task].timings:
                fits[task][library] = runs[task].timings["params"]
    if not any(fits.values()):
        return
    for task, truth in info.get("truth", {}).items():
        fits[task]["truth (simulated)"] = truth
    frame = None
    print("  fitted parameters (log-likelihood at them, by lifevalue's formula):")
    for task, by_library in fits.items():
        if not by_library:
            continue
        cls = _model(task)
        for library, params in by_library.items():
            shown = "  ".join(f"{k} {_num(v)}" for k, v in params.items())
            if frame is None:
                import pandas as pd

                frame = pd.read_parquet(path)
            value = _log_likelihood(cls, params, frame)
            ll = f"   LL {value:,.2f}" if value is not None else ""
            print(f"    {MODEL_NAMES[task]:<12}{library:<19}{shown}{ll}")
    predictions = {
        lib: runs["predict"].timings["predictions"]
        for lib, runs in results.items()
        if runs["predict"].ok and "predictions" in runs["predict"].timings
    }
    if predictions:
        print(
            "  predictions: mean expected purchases in 52 weeks / mean P(alive) / total 12-month "
            "CLV (lifetimes and pymc-marketing discount month by month, lifevalue continuously)"
        )
        for library, p in predictions.items():
            band = ""
            if "clv_low_total" in p:
                band = f" (90%: {p['clv_low_total']:,.0f} to {p['clv_high_total']:,.0f})"
            print(
                f"    {library:<16}{p['expected_purchases_mean']:.4f} / {p['p_alive_mean']:.4f} / "
                f"{p['clv_total']:,.0f}{band}"
            )


def _log_likelihood(cls: Any, params: dict[str, float], frame: Any) -> float | None:
    import numpy as np

    try:
        values = {
            n: float(params.get(n, params.get(PEER_NAMES.get(n, n)))) for n in cls.param_names
        }
    except (TypeError, ValueError):
        return None
    rows = frame[frame["frequency"] > 0] if cls.model_name == "gg" else frame
    data = {c: rows[c].to_numpy(dtype=float) for c in cls.fit_columns}
    with np.errstate(all="ignore"):
        total = float(np.sum(cls._log_likelihood(values, data)))
    return total if math.isfinite(total) else None


def _num(value: float) -> str:
    return f"{value:.4g}"


def targets(measured: dict[int, dict[str, dict[str, Run]]]) -> None:
    print("\ntargets (2 cores):")
    at_1m = measured.get(TARGET_SIZE)
    for task in ("bgnbd", "pnbd"):
        label = (
            f"1M customers: {MODEL_NAMES[task]} fit >= {SPEED_TARGET:.0f}x faster than both peers"
        )
        if at_1m is None:
            print(f"  {label}: not measured (1m not in --sizes)")
            continue
        lv = at_1m["lifevalue"][task]
        if not lv.ok:
            print(f"  {label}: not measured (lifevalue: {lv.note})")
            continue
        parts, verdicts = [f"lifevalue {lv.timings['seconds']:.2f} s"], []
        for peer in PEERS:
            run = at_1m[peer][task]
            if run.ok:
                ratio = run.timings["seconds"] / lv.timings["seconds"]
                parts.append(f"{peer} {run.timings['seconds']:.1f} s ({ratio:.1f}x)")
                verdicts.append(ratio >= SPEED_TARGET)
            elif run.note.startswith("stopped"):
                # A peer stopped at its timeout took at least that long.
                limit = float(run.note.split()[2])
                ratio = limit / lv.timings["seconds"]
                parts.append(f"{peer} > {limit:.0f} s (> {ratio:.1f}x)")
                verdicts.append(True if ratio >= SPEED_TARGET else None)
            else:
                parts.append(f"{peer} not measured")
                verdicts.append(None)
        if any(v is False for v in verdicts):
            verdict = "MISSED"
        elif all(v is True for v in verdicts):
            verdict = "met"
        else:
            verdict = "not measured against every peer"
        print(f"  {label}: {', '.join(parts)}: {verdict}")
    at_10m = measured.get(LARGE_SIZE)
    if at_10m is None:
        print("  10M customers: not measured (10m not in --sizes)")
        return
    lv = at_10m["lifevalue"]
    fits = [t for t in MODEL_NAMES if lv[t].ok]
    missing = [MODEL_NAMES[t] for t in MODEL_NAMES if not lv[t].ok]
    total = sum(lv[t].timings["seconds"] for t in fits)
    shown = " + ".join(f"{MODEL_NAMES[t]} {lv[t].timings['seconds']:.1f} s" for t in fits)
    verdict = _verdict(total < FIT_TARGET_S) if not missing else (
        f"{'MISSED' if total >= FIT_TARGET_S else 'incomplete'}: "
        f"{', '.join(missing)} not measured"
    )  # fmt: skip
    print(
        f"  10M customers: all three fits < {FIT_TARGET_S:.0f} s: {shown or 'none'} = "
        f"{total:.1f} s: {verdict}"
    )
    predict = lv["predict"]
    if predict.ok:
        seconds = predict.timings["seconds"]
        print(
            f"  10M customers: predict with intervals < {PREDICT_TARGET_S:.0f} s: "
            f"{seconds:.1f} s: {_verdict(seconds < PREDICT_TARGET_S)}"
        )
    else:
        print(f"  10M customers: predict with intervals: not measured ({predict.note})")
    runs = [r for r in lv.values() if r.ok]
    if runs:
        peak = max(r.peak_bytes for r in runs)
        worst = max(runs, key=lambda r: r.peak_bytes).label
        gb = MEMORY_TARGET / 2**30
        print(
            f"  10M customers: peak memory < {gb:.0f} GB: {peak / 2**30:.2f} GB (worst: {worst})"
            f"{'' if len(runs) == len(lv) else ', not every task measured'}: "
            f"{_verdict(peak < MEMORY_TARGET)}"
        )
    print("  peers are not run at 10M customers: they hold one row per customer (pymc-marketing")
    print("  in its graph too), and their Pareto/NBD fits take 5 to 10 minutes at 1M already.")


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help=f"data sets (default {SIZES})")
    parser.add_argument("--reps", type=int, default=3, help="runs per lifevalue task (median)")
    parser.add_argument(
        "--tasks",
        default=",".join(TASKS),
        help=f"tasks to run (default {','.join(TASKS)}); the others are reported as not run",
    )
    parser.add_argument(
        "--fastest",
        action="store_true",
        help="report each lifevalue task's fastest run instead of the median (a shared machine)",
    )
    parser.add_argument("--no-peers", action="store_true", help="run lifevalue only")
    parser.add_argument(
        "--peer-timeout", type=float, default=900, help="seconds before a peer task is stopped"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds before a lifevalue task is stopped"
    )
    parser.add_argument("--worker", nargs=3, metavar=("TASK", "PATH", "MODELS"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}: expected {', '.join(TASKS)}")
    print(
        "Seconds of each call (imports and reading the summary not timed), "
        f"{'fastest' if args.fastest else 'median'} of {args.reps} run(s) for lifevalue, one "
        "per peer; peak memory of each task's process."
    )
    print("vs peer: the peer's seconds / lifevalue's seconds (above 1: lifevalue is faster).")
    print(
        "pymc-marketing: fit(method='map') with flat priors (MAP = maximum likelihood); each "
        "worker first fits the same model on 1,000 customers, untimed, to compile it."
    )
    measured: dict[int, dict[str, dict[str, Run]]] = {}
    for token in args.sizes.split(","):
        name, n = parse_size(token)
        path, info = dataset(name, n)
        customers = n if n is not None else info["customers"]
        print(f"\nmeasuring {info['title']} ({customers:,} customers) ...", flush=True)
        results = measure(
            path, customers, args.reps, not args.no_peers, args.peer_timeout, args.timeout,
            tasks=tasks, fastest=args.fastest,
        )  # fmt: skip
        report(info, path, results)
        if n is not None:
            measured[n] = results
    targets(measured)


if __name__ == "__main__":
    main()
