"""What the benchmarks share: simulated data sets on disk, and timed runs in fresh processes.

Every measured task runs in a process of its own, so no cache from an earlier task helps
it, and it reports its own peak memory: the kernel's high-water mark of its resident set
(``VmHWM``), which includes everything the engine and Python held at the worst moment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
PEER_ENVS = {"lifetimes": ROOT / ".venv-lifetimes", "pymc-marketing": ROOT / ".venv-pymc"}


@dataclass
class Run:
    """One timed task: its timings in seconds and its peak memory in bytes."""

    label: str
    ok: bool
    timings: dict[str, float] = field(default_factory=dict)
    peak_bytes: int = 0
    note: str = ""


def simulated_log(n_rows: int, *, seed: int = 7) -> Path:
    """A folder of Parquet files holding about ``n_rows`` simulated transactions.

    Made once with the simulator (all cores) and reused by later runs.
    """
    folder = DATA / f"sim_{n_rows}"
    if not (folder / "truth.json").is_file():
        from lifevalue.data.simulate import simulate_to_parquet

        print(f"simulating {n_rows:,} transactions into {folder} ...", flush=True)
        start = time.perf_counter()
        files = simulate_to_parquet(
            folder, n_transactions=n_rows, workers=None, overwrite=True, seed=seed
        )
        print(
            f"  {files.n_transactions:,} rows of {files.n_customers:,} customers in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return folder / "transactions"


def peer_python(name: str) -> Path | None:
    """The interpreter of a peer library's own environment, if ``make bench-peers`` built it."""
    python = PEER_ENVS[name] / "bin" / "python"
    return python if python.is_file() else None


def run_task(label: str, argv: list[str], *, timeout: float = 3600) -> Run:
    """Run a worker (a program that ends by printing one JSON object) and collect its result."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    except subprocess.TimeoutExpired:
        return Run(label, False, note=f"stopped after {timeout:.0f} s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return Run(label, False, note=f"failed: {last[:160]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    peak = int(result.pop("peak_bytes", 0))
    return Run(label, True, timings=result, peak_bytes=peak)


def peak_memory() -> int:
    """This process's peak resident memory so far, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def emit(timings: dict[str, Any]) -> None:
    """End a worker: print its timings and its peak memory for the harness."""
    print(json.dumps({**timings, "peak_bytes": peak_memory()}), flush=True)


def python() -> str:
    """This interpreter, which runs lifevalue's own workers."""
    return sys.executable
