"""Run every benchmark in turn (`make bench`); exit non-zero if any misses its goal.

Each prints its table and exits non-zero on a miss; none is given `--report-only` here."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
# The issue 14 set first (scheduler, end to end, bursts), the backend's memory (13), then the
# older ones.
BENCHMARKS = [
    "scheduler_dispatch.py",
    "e2e_latency.py",
    "burst.py",
    "backend_memory.py",
    "grading_overhead.py",
    "llm_timeout.py",
]

failed = []
started = time.monotonic()
for script in BENCHMARKS:
    print(f"== {script}", flush=True)
    began = time.monotonic()
    code = subprocess.run([sys.executable, str(HERE / script)], check=False).returncode
    verdict = "met its goals" if code == 0 else "MISSED"
    print(f"== {script}: {verdict} in {time.monotonic() - began:.0f} s\n", flush=True)
    if code != 0:
        failed.append(script)
print(f"{len(BENCHMARKS)} benchmarks in {time.monotonic() - started:.0f} s")
print("all benchmarks met their goals" if not failed else f"missed: {', '.join(failed)}")
sys.exit(1 if failed else 0)
